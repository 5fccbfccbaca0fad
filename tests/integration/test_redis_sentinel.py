"""Redis Sentinel: Debian's redis-sentinel three times, a master and a
replica (both with a password and an ACL user), and a gateway and two
workers of the test's own that know only the sentinels (their own password
read from a file). Jobs are submitted while `SENTINEL FAILOVER` promotes
the replica: every acknowledged job (202) must finish (PostgreSQL is the
authority; reconciliation re-enqueues what the replica missed), every
process must follow the new master, and an event stream cut by the
failover resumes with Last-Event-ID without a gap or a repeat. The counts
are printed (run with -s to see them). Also: sentinels that do not know
the master, or never answer, are reported or skipped."""

import os
import socket
import threading
import time
import urllib.parse

from agentgate_test.redis_setups import RedisProc, mini_stack, ports, wait_until

MASTER_NAME = "agentgate-it"
PASSWORD = "data-" + os.urandom(4).hex()
SENTINEL_PASSWORD = "sentinel-" + os.urandom(4).hex()
APP_USER = "agentgate-app"
APP_PASSWORD = "app-" + os.urandom(4).hex()
# ROLE is among the dangerous commands; the master check needs it.
APP_ACL = f"{APP_USER} on >{APP_PASSWORD} ~* &* +@all -@dangerous +role"

P_SENTINEL = 40
TERMINAL = ("succeeded", "failed", "cancelled", "dead")


def data_server(d, name, port, replica_of=None):
    args = ["--requirepass", PASSWORD, "--masterauth", PASSWORD, "--user", *APP_ACL.split()]
    if replica_of:
        args += ["--replicaof", "127.0.0.1", str(replica_of)]
    return RedisProc(d, name, port, args, password=PASSWORD)


def sentinel(d, name, port, master_port):
    conf = [f"port {port}", "bind 127.0.0.1", f"dir {d}",
            f"sentinel monitor {MASTER_NAME} 127.0.0.1 {master_port} 2",
            f"sentinel auth-pass {MASTER_NAME} {PASSWORD}",
            f"sentinel down-after-milliseconds {MASTER_NAME} 2000",
            f"sentinel failover-timeout {MASTER_NAME} 10000",
            f"sentinel parallel-syncs {MASTER_NAME} 1",
            f"requirepass {SENTINEL_PASSWORD}",
            f"sentinel sentinel-pass {SENTINEL_PASSWORD}"]
    return RedisProc(d, name, port, conf, password=SENTINEL_PASSWORD, sentinel=True)


def sentinel_view(s):
    """SENTINEL MASTER's fields as a dict."""
    code, out = s.cli("SENTINEL", "MASTER", MASTER_NAME)
    lines = out.splitlines()
    return dict(zip(lines[::2], lines[1::2])) if code == 0 else {}


def master_port(s):
    code, out = s.cli("SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME)
    lines = out.splitlines()
    return int(lines[1]) if code == 0 and len(lines) == 2 else None


class Submitter(threading.Thread):
    """Submits short demo jobs one after another until stopped; keeps the
    ids the gateway acknowledged (202) and counts the others."""

    def __init__(self, m):
        super().__init__(daemon=True)
        self.m = m
        self.stop = threading.Event()
        self.submitted = 0
        self.acked = []
        self.refused = {}

    def run(self):
        while not self.stop.is_set():
            self.submitted += 1
            try:
                status, job = self.m.submit("demo", {"events": 1, "duration_ms": 0})
            except OSError as e:
                status, job = type(e).__name__, None
            if status == 202:
                self.acked.append(job["id"])
            else:
                self.refused[status] = self.refused.get(status, 0) + 1
            time.sleep(0.02)


class Follower(threading.Thread):
    """Reads a job's event stream to its end, opening it again with
    Last-Event-ID whenever it is cut; keeps every (id, event) and how many
    times it connected."""

    def __init__(self, m, job_id):
        super().__init__(daemon=True)
        self.m, self.job_id = m, job_id
        self.events = []
        self.connections = 0

    def run(self):
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            last = self.events[-1][0] if self.events else None
            self.connections += 1
            self.m.events(self.job_id, last_event_id=last, timeout=60, out=self.events)
            if self.events and self.events[-1][1] in ("job.succeeded", "job.failed",
                                                      "job.cancelled", "job.dead"):
                return
            time.sleep(0.2)


def test_jobs_flow_through_a_sentinel_failover(stack, tmp_path):
    d = str(tmp_path)
    os.chmod(d, 0o755)
    mport, rport, s1, s2, s3, gport = ports(P_SENTINEL, 6)
    procs = []
    try:
        master = data_server(d, "master", mport).wait_up()
        procs.append(master)
        replica = data_server(d, "replica", rport, replica_of=mport).wait_up()
        procs.append(replica)
        sentinels = [sentinel(d, f"sentinel-{p}", p, mport) for p in (s1, s2, s3)]
        procs += sentinels
        for s in sentinels:
            s.wait_up()
        # Every sentinel knows the replica and the two other sentinels.
        wait_until(lambda: all(sentinel_view(s).get("num-other-sentinels") == "2"
                               and sentinel_view(s).get("num-slaves") == "1"
                               for s in sentinels), "the sentinels to know each other")

        pw_file = os.path.join(d, "sentinel-password")
        with open(pw_file, "w", encoding="utf-8") as f:
            f.write(SENTINEL_PASSWORD)
        settings = {
            # Host and port of the URL are not used with Sentinel: a name
            # that resolves nowhere proves it.
            "AGENTGATE_REDIS_URL": f"redis://{APP_USER}:{urllib.parse.quote(APP_PASSWORD)}"
                                   "@not-used.invalid:1/0",
            "AGENTGATE_REDIS_SENTINELS": f"127.0.0.1:{s1},127.0.0.1:{s2},127.0.0.1:{s3}",
            "AGENTGATE_REDIS_SENTINEL_MASTER": MASTER_NAME,
            "AGENTGATE_REDIS_SENTINEL_PASSWORD_FILE": pw_file,
        }
        with mini_stack(stack, d, gport, settings, workers=2) as m:
            # A job long enough to be running while the master changes.
            status, long_job = m.submit("demo", {"events": 20, "duration_ms": 20000})
            assert status == 202, long_job
            follower = Follower(m, long_job["id"])
            follower.start()
            sub = Submitter(m)
            sub.start()
            wait_until(lambda: len(sub.acked) >= 20 and len(follower.events) >= 3,
                       "jobs to flow before the failover", timeout=60)

            code, out = sentinels[0].cli("SENTINEL", "FAILOVER", MASTER_NAME)
            assert code == 0 and out == "OK", out
            wait_until(lambda: all(master_port(s) == rport for s in sentinels),
                       "the sentinels to name the replica master", timeout=60)
            wait_until(lambda: replica.cli("ROLE")[1].splitlines()[0] == "master"
                       and master.cli("ROLE")[1].splitlines()[0] == "slave",
                       "the roles to swap", timeout=60)
            acked_at_failover = len(sub.acked)
            wait_until(lambda: len(sub.acked) >= acked_at_failover + 20,
                       "jobs to flow after the failover", timeout=60)
            follower.join(120)
            sub.stop.set()
            sub.join(30)

            unfinished = set(sub.acked)

            def all_finished():
                for job_id in list(unfinished):
                    code, job = m.request("GET", f"/v1/jobs/{job_id}")
                    if code == 200 and job["status"] in TERMINAL:
                        assert job["status"] == "succeeded", job
                        unfinished.discard(job_id)
                return not unfinished
            try:
                wait_until(all_finished, "every acknowledged job to finish", timeout=90,
                           interval=0.5)
            except AssertionError:
                pass
            lost = len(unfinished)
            counts = (f"Sentinel failover: submitted={sub.submitted} "
                      f"acknowledged={len(sub.acked)} (after the failover: "
                      f"{len(sub.acked) - acked_at_failover}) refused={sub.refused} "
                      f"succeeded={len(sub.acked) - lost} lost={lost}; event stream: "
                      f"{len(follower.events)} events over {follower.connections} connections")
            print("\n" + counts)
            assert lost == 0, f"{counts}\nunfinished: {sorted(unfinished)[:5]}\n{m.logs()}"

            # The stream was cut by the failover and resumed where it was.
            ids = [i for i, _ in follower.events]
            assert ids == list(range(1, len(ids) + 1)), f"gap or repeat: {ids}"
            assert follower.events[-1][1] == "job.succeeded", follower.events[-3:]
            assert follower.connections >= 2, counts

            # Every process now talks to the new master, as the ACL user.
            code, out = replica.cli("CLIENT", "LIST")
            assert sum(f" user={APP_USER} " in ln for ln in out.splitlines()) >= 5, out
            code, out = master.cli("CLIENT", "LIST")
            assert not any(f" user={APP_USER} " in ln for ln in out.splitlines()), out
            # They heard of the switch (+switch-master) rather than waiting
            # for the old master to drop them.
            switched = f"Sentinel switched to master {MASTER_NAME} at 127.0.0.1:{rport}"
            for name in m.procs:
                assert switched in m.log_of(name), f"{name}:\n{m.log_of(name)[-3000:]}"
            assert f"at master 127.0.0.1:{rport}" in m.log_of("gateway")
    finally:
        for p in reversed(procs):
            p.stop()


def test_no_sentinel_knows_the_master(stack, tmp_path):
    """Sentinels that answer but do not know the master name: the gateway
    is not ready and says why; nothing is connected."""
    d = str(tmp_path)
    os.chmod(d, 0o755)
    mport, s1, gport = ports(P_SENTINEL + 10, 3)
    procs = []
    try:
        master = data_server(d, "master", mport).wait_up()
        procs.append(master)
        s = sentinel(d, "sentinel", s1, mport).wait_up()
        procs.append(s)
        settings = {"AGENTGATE_REDIS_URL": f"redis://:{PASSWORD}@127.0.0.1:{mport}/0",
                    "AGENTGATE_REDIS_SENTINELS": f"127.0.0.1:{s1}",
                    "AGENTGATE_REDIS_SENTINEL_MASTER": "no-such-master",
                    "AGENTGATE_REDIS_SENTINEL_PASSWORD": SENTINEL_PASSWORD}
        with mini_stack(stack, d, gport, settings, check_ready=False) as m:
            wait_until(lambda: "knows no master" in m.log_of("gateway")
                       and "knows no master" in m.log_of("worker-1"),
                       "the gateway and the worker to say no sentinel knows the master")
            assert not m.ready()
    finally:
        for p in reversed(procs):
            p.stop()


def test_a_sentinel_that_never_answers_is_skipped(stack, tmp_path):
    """The first sentinel listed accepts connections and says nothing (a
    host gone silent): every process moves on to the next within its
    connect timeout and runs jobs."""
    d = str(tmp_path)
    os.chmod(d, 0o755)
    mport, s1, silent_port, gport = ports(P_SENTINEL + 20, 4)
    procs = []
    silent = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        silent.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        silent.bind(("127.0.0.1", silent_port))
        silent.listen(64)       # the kernel completes connects; nobody reads
        master = data_server(d, "master", mport).wait_up()
        procs.append(master)
        procs.append(sentinel(d, "sentinel", s1, mport).wait_up())
        settings = {"AGENTGATE_REDIS_URL": f"redis://:{PASSWORD}@127.0.0.1:1/0",
                    "AGENTGATE_REDIS_SENTINELS": f"127.0.0.1:{silent_port},127.0.0.1:{s1}",
                    "AGENTGATE_REDIS_SENTINEL_MASTER": MASTER_NAME,
                    "AGENTGATE_REDIS_SENTINEL_PASSWORD": SENTINEL_PASSWORD}
        with mini_stack(stack, d, gport, settings) as m:
            status, job = m.submit("demo", {"events": 1, "duration_ms": 0})
            assert status == 202, job
            assert m.wait_job(job["id"])["status"] == "succeeded"
    finally:
        silent.close()
        for p in reversed(procs):
            p.stop()
