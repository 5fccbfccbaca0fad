#!/usr/bin/env python3
"""bench/pg_work.py URL TOKEN --db DATABASE_URL --stack CMD [options]

PostgreSQL work per no-op job: statements, round trips and commits, for
the gateway and the workers apart. It measures and changes nothing.

Needs the stack's PostgreSQL started with pg_stat_statements preloaded
(bench/run restarts it so: shared_preload_libraries, track = all) and
--db a superuser URL (to read every role's statements and strace the
backends, it runs as root or as the backends' owner).

Three phases of --jobs no-op "test" jobs, each after a warm-up (so every
connection is open):
  gateway  the workers stopped: the submissions alone; the jobs stay
           queued;
  worker   one worker process started on that backlog, draining it
           (its start-up included);
  pipeline one worker process running idle, then the jobs submitted and
           run to their end; the round trips of each side come from here.

Counted over each phase, divided by the jobs:
  claims       the claim statements among them (agentgate_claim_job or
               agentgate_claim_jobs): jobs over claims is the mean claim
               batch;
  statements   pg_stat_statements calls of the app role (agentgate_app):
               those the client sent (toplevel) and those run inside
               functions and triggers (nested); BEGIN and COMMIT included;
  round trips  the backends' reads of client data (strace -c of recvfrom
               on each backend, calls minus EAGAIN errors), per backend
               group: application_name agentgate-worker, or the gateway's.
               A request arriving in pieces is read more than once, so
               this is an upper bound;
  commits      pg_stat_database.xact_commit (read-only transactions too;
               read after PostgreSQL's stats flush, 11 s after the phase),
               the WAL's commit records (pg_waldump between the phase's
               LSNs: commits that wrote, the ones that wait for an fsync),
               and pg_stat_wal.wal_sync (WAL fsyncs).
The bench's own psql calls use another role and a few transactions,
which are left in xact_commit (under 0.01 per job at 2,000 jobs).

Prints lines "label: value".
"""
import argparse
import glob
import http.client
import json
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.parse

SETTLE_S = 11       # PostgreSQL 15 flushes an idle backend's stats within 10 s
APP_ROLE = "agentgate_app"
WORKER_APP = "agentgate-worker"


def psql(db, sql):
    r = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", db, "-c", sql],
                       text=True, check=True, capture_output=True)
    return r.stdout.strip()


def submit(url, token, n, threads=8):
    """Submits n no-op jobs over threads kept-alive connections."""
    u = urllib.parse.urlsplit(url)
    body = json.dumps({"type": "test", "payload": {"outcome": "succeed"}})
    hdr = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
    errors = []

    def loop(k):
        c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        for _ in range(k):
            c.request("POST", "/v1/jobs", body, hdr)
            r = c.getresponse()
            r.read()
            if r.status != 202:
                errors.append(r.status)
        c.close()

    ts = [threading.Thread(target=loop, args=(n // threads + (i < n % threads),))
          for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        sys.exit(f"pg_work: {len(errors)} submissions failed, first {errors[0]}")


def wait_done(db, since, timeout=120):
    """Waits until the test jobs created since (a timestamptz) are done;
    jobs of earlier bench parts are not waited for."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if psql(db, "SELECT count(*) FROM jobs WHERE status IN ('queued', 'running') "
                    f"AND type = 'test' AND created_at >= '{since}'") == "0":
            return
        time.sleep(0.2)
    sys.exit("pg_work: the jobs did not finish")


def backends(db):
    """{'gateway': [pid...], 'worker': [pid...]} of the app role."""
    out = {"gateway": [], "worker": []}
    rows = psql(db, "SELECT pid, application_name FROM pg_stat_activity "
                    f"WHERE usename = '{APP_ROLE}' AND backend_type = 'client backend'")
    for line in rows.splitlines():
        pid, app = line.split("|", 1)
        out["worker" if app == WORKER_APP else "gateway"].append(int(pid))
    return out


def strace_start(pids, path):
    if not pids:
        return None
    args = ["strace", "-c", "-e", "trace=recvfrom", "-o", path]
    for p in pids:
        args += ["-p", str(p)]
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)     # attached to every backend before the phase starts
    return p


def strace_stop(p, path):
    """Reads made with data: calls minus errors (EAGAIN) of recvfrom."""
    if p is None:
        return 0
    p.send_signal(signal.SIGINT)
    p.wait(timeout=10)
    with open(path) as f:
        for line in f:
            m = re.match(r"\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(\d+)?\s*recvfrom", line)
            if m:
                return int(m.group(1)) - int(m.group(2) or 0)
    return 0


def snapshot(db):
    time.sleep(SETTLE_S)
    row = psql(db, "SELECT (SELECT xact_commit FROM pg_stat_database WHERE datname = "
                   "current_database()), (SELECT wal_sync FROM pg_stat_wal), "
                   "pg_current_wal_flush_lsn()")
    x, sync, lsn = row.split("|")
    return int(x), int(sync), lsn


def wal_commits(waldir, lo, hi):
    tools = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_waldump"))
    if not tools or lo == hi:
        return 0
    r = subprocess.run([tools[-1], "-p", waldir, "-s", lo, "-e", hi, "-r", "Transaction"],
                       text=True, capture_output=True)
    return sum(1 for line in r.stdout.splitlines() if "desc: COMMIT" in line)


def statements(db):
    """(toplevel calls, nested calls, [(calls, query)...] toplevel by calls)."""
    rows = psql(db, "SELECT toplevel, calls, regexp_replace(query, '\\s+', ' ', 'g') "
                    "FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid "
                    f"WHERE r.rolname = '{APP_ROLE}' ORDER BY calls DESC")
    top = nested = 0
    listing = []
    for line in rows.splitlines():
        lvl, calls, q = line.split("|", 2)
        if lvl == "t":
            top += int(calls)
            listing.append((int(calls), q))
        else:
            nested += int(calls)
    return top, nested, listing


def measure(a, name, pids, act):
    """Counts over act(): a dict of the phase's figures."""
    x0, s0, l0 = snapshot(a.db)
    psql(a.db, "SELECT pg_stat_statements_reset()")
    st = {g: strace_start(p, f"{a.out}/strace-{name}-{g}.txt") for g, p in pids.items()}
    t0 = time.time()
    act()
    secs = time.time() - t0
    rt = {g: strace_stop(p, f"{a.out}/strace-{name}-{g}.txt") for g, p in st.items()}
    top, nested, listing = statements(a.db)
    a.stack_cmd("worker", "stop", "1")  # its backends exit: their stats flush now
    x1, s1, l1 = snapshot(a.db)
    return {"top": top, "nested": nested, "listing": listing, "rt": rt, "secs": secs,
            "xact": x1 - x0, "wal_sync": s1 - s0,
            "wal_commits": wal_commits(a.waldir, l0, l1), "pids": pids}


def drop_queued(a):
    psql(a.db, "UPDATE jobs SET status = 'cancelled', finished_at = now() WHERE status = 'queued'")
    subprocess.run(["redis-cli", "-p", str(a.redis_port), "del", "jobs:queue:test:bench",
                    "jobs:ready:test", "jobs:active:test"], capture_output=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("url")
    ap.add_argument("token")
    ap.add_argument("--db", required=True, help="superuser PostgreSQL URL")
    ap.add_argument("--stack", required=True, help="agentgate-stack command with its --dir")
    ap.add_argument("--waldir", required=True, help="the stack's pg_wal directory")
    ap.add_argument("--redis-port", type=int, required=True)
    ap.add_argument("--jobs", type=int, default=2000)
    ap.add_argument("--out", default="/tmp")
    a = ap.parse_args()
    stack = a.stack.split()
    a.stack_cmd = lambda *args: subprocess.run(stack[:1] + list(args) + stack[1:],
                                               check=True, capture_output=True)
    if psql(a.db, "SELECT count(*) FROM pg_extension WHERE extname = 'pg_stat_statements'") == "0":
        psql(a.db, "CREATE EXTENSION pg_stat_statements")

    n = a.jobs
    t0 = psql(a.db, "SELECT now()")
    # gateway: the workers stopped, n submissions (warmed up first, then
    # the warm-up's jobs dropped); the n jobs stay queued for the next.
    a.stack_cmd("worker", "stop", "1")
    submit(a.url, a.token, 50)
    drop_queued(a)
    g = measure(a, "gateway", {"gateway": backends(a.db)["gateway"]},
                lambda: submit(a.url, a.token, n))

    # worker: one worker process started on that backlog and draining it
    # (its start-up is in the count: a few statements for n jobs).
    def drain():
        a.stack_cmd("worker", "start", "1")
        wait_done(a.db, t0)
    w = measure(a, "worker", {}, drain)

    # pipeline: the worker running idle, then n jobs submitted and run to
    # their end; round trips per backend group come from this phase.
    a.stack_cmd("worker", "start", "1")
    time.sleep(1)
    submit(a.url, a.token, 50)
    wait_done(a.db, t0)

    def pipeline():
        submit(a.url, a.token, n)
        wait_done(a.db, t0)
    p = measure(a, "pipeline", backends(a.db), pipeline)

    def per(x):
        return f"{x / n:.2f}"

    for name, ph in (("gateway (intake, no worker)", g), ("worker (draining the backlog)", w),
                     ("whole pipeline", p)):
        print(f"statements per job, {name}: {per(ph['top'])} sent by the client, "
              f"{per(ph['nested'])} more run inside functions/triggers")
    print(f"round trips per job (backend reads of client data, an upper bound): gateway "
          f"{per(p['rt']['gateway'])} ({len(p['pids']['gateway'])} connections), worker "
          f"{per(p['rt']['worker'])} ({len(p['pids']['worker'])} connections), in the whole "
          f"pipeline; gateway alone {per(g['rt']['gateway'])}")
    for name, ph in (("gateway", g), ("worker", w), ("whole pipeline", p)):
        print(f"commits per job, {name}: xact_commit {per(ph['xact'])}, WAL commit records "
              f"{per(ph['wal_commits'])}, WAL fsyncs {per(ph['wal_sync'])}")
    for name, ph in (("worker (draining the backlog)", w), ("whole pipeline", p)):
        claims = sum(c for c, q in ph["listing"] if "agentgate_claim_job" in q)
        print(f"claim statements per job, {name}: {per(claims)} (a claim batch of "
              f"{n / claims if claims else 0:.2f} ids on the mean)")
    print(f"phases: {n} jobs each; intake {g['secs']:.1f} s, drain {w['secs']:.1f} s, "
          f"pipeline {p['secs']:.1f} s (strace attached to the backends in the intake and "
          f"pipeline phases: slower than without)")
    for name, ph in (("gateway", g), ("worker", w)):
        lines = [f"{c / n:.2f} {q[:100]}" for c, q in ph["listing"][:12] if c / n >= 0.05]
        print(f"statements of the {name} phase, per job: " + " | ".join(lines))


if __name__ == "__main__":
    main()
