#!/usr/bin/env python3
"""
chaos.py - agentgate's chaos suite ("Nothing lost").

Starts a stack of its own (PostgreSQL, Redis, gateway, three workers with
short leases) with deploy/local/agentgate-stack, submits at least 1,000
jobs of mixed types from a few client threads at a steady pace, and
meanwhile, at moments drawn from a seeded RNG, SIGKILLs workers and starts
them again, restarts Redis with and without its data (and takes it away for
a moment), and restarts PostgreSQL once. Then it waits, bounded, for every
job to finish and checks from PostgreSQL, for every job:

  - it reached exactly one terminal status, and every acknowledged (202)
    job exists: lost = acknowledged but missing or never terminal = 0;
  - its events are seq 1..N with no gap or duplicate, N = last_event_id,
    the first is job.queued, exactly one is terminal, it is the last and
    its type matches the status;
  - attempts <= max_attempts; a succeeded test job's result came from the
    final attempt (result.attempt = attempts);
  - it ended as its payload asked (a job asked to fail its first
    fail_attempts < max_attempts attempts succeeds; one asked to fail more
    often than it may be tried fails, having used every attempt), allowing
    only a failure by exhausted attempts where chaos hit the job;

and it replays the SSE stream of a sample of jobs (ids 1..N in order, the
same events as PostgreSQL, the stream ends after the terminal event), and
follows a few long jobs live through the chaos, reconnecting with
Last-Event-ID, to see they resume with no gap. It measures the time from a
worker's SIGKILL to each job it was running starting again.

Exit status: 0 all held, 1 a check failed (the first offending jobs are
listed with their events; the stack directory is kept and the logs'
tails printed), 2 the harness itself could not run (bad option, stack
would not start).

Python 3 standard library only, and the tests' shared helpers
(tests/lib/agentgate_test). Run it through tests/chaos/run or `make
chaos`; `chaos.py --help` lists the options.
"""

import argparse
import datetime
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "lib")))

from agentgate_test import ports  # noqa: E402
from agentgate_test.client import TERMINAL, SseEvent  # noqa: E402
from agentgate_test.paths import bin_dir  # noqa: E402
from agentgate_test.stack import (log_tails, psql, psql_rows, read_env_file,  # noqa: E402
                                  redis_cli, sanitizer_reports, stack_command)
from agentgate_test.tokens import mint_jwt  # noqa: E402

TERMINAL_EVENT = {"succeeded": "job.succeeded", "failed": "job.failed",
                  "cancelled": "job.cancelled"}
TERMINAL_EVENTS = set(TERMINAL_EVENT.values())

# Settings of the stack under test: leases short enough that a killed
# worker's jobs come back within seconds, retries fast enough that a job
# asked to fail twice still finishes during the run.
LEASE_MS = 3000
STACK_ENV = {
    "AGENTGATE_WORKER_CONCURRENCY": "4",
    "AGENTGATE_LEASE_MS": str(LEASE_MS),
    "AGENTGATE_HEARTBEAT_MS": "500",
    "AGENTGATE_REAPER_INTERVAL_MS": "500",
    "AGENTGATE_RECONCILE_INTERVAL_MS": "1000",
    "AGENTGATE_RETRY_BASE_MS": "200",
    "AGENTGATE_RETRY_MAX_MS": "2000",
    "AGENTGATE_SHUTDOWN_GRACE_MS": "2000",
}
# Slack added around a Redis or PostgreSQL outage when deciding whether a
# job's lifetime was touched by it: a lease taken away during the outage
# expires and is reaped up to a lease and a reaper turn later.
OUTAGE_SLACK_S = LEASE_MS / 1000.0 + 2.0

HTTP_TIMEOUT = 10.0          # one HTTP request
SUBMIT_GIVE_UP_S = 45.0      # one submission, retries included
STACK_UP_TIMEOUT = 240
STACK_CMD_TIMEOUT = 90

T0 = time.monotonic()
_print_lock = threading.Lock()


def say(msg):
    with _print_lock:
        print(f"[{time.monotonic() - T0:6.1f}s] {msg}", flush=True)


class HarnessError(Exception):
    """The suite itself could not run (not a finding about the product)."""


# --------------------------------------------------------------------------
# Ports, stack commands, SQL
# --------------------------------------------------------------------------

def pick_port(given, env, default):
    """The port given on the command line or in env; else default, or a
    free one when something already listens there."""
    if given:
        return given
    return ports.pick_port(env, default)


class Stack:
    def __init__(self, d, http_port, redis_port):
        self.dir = d
        self.http_port = http_port
        self.redis_port = redis_port
        self.secret = None
        self.database_url = None

    def cmd(self, *args, timeout=STACK_CMD_TIMEOUT):
        """Runs agentgate-stack; returns (exit code, output)."""
        try:
            r = stack_command(*args, "--dir", self.dir, timeout=timeout)
        except subprocess.TimeoutExpired as e:
            return 124, f"timed out after {timeout} s: {e.output or ''}"
        return r.returncode, r.stdout.strip()

    def load_settings(self):
        env = read_env_file(os.path.join(self.dir, "agentgate.env"))
        self.secret = env.get("AGENTGATE_JWT_SECRET")
        # The owner's URL: the checks read every tenant's rows, which the
        # services' role (row-level security) cannot.
        self.database_url = (env.get("AGENTGATE_MIGRATE_DATABASE_URL")
                             or env.get("AGENTGATE_DATABASE_URL"))
        if not self.secret or not self.database_url:
            raise HarnessError(f"{self.dir}/agentgate.env lacks the JWT "
                               "secret or the database URL")

    def sql(self, query, timeout=60):
        """Rows of query (lists of strings; NULL is ''), run with psql."""
        r = psql(self.database_url, query, record_sep="\x1e", timeout=timeout)
        if r.returncode != 0:
            raise RuntimeError(f"psql: {r.stderr.strip()}")
        return psql_rows(r.stdout, record_sep="\x1e")

    def redis(self, *args):
        r = redis_cli(*args, port=self.redis_port)
        if r.returncode != 0:
            raise RuntimeError(f"redis-cli {' '.join(args)}: "
                               f"{(r.stderr or r.stdout).strip()}")
        return r.stdout.strip()


# --------------------------------------------------------------------------
# HTTP, SSE
# --------------------------------------------------------------------------

class Client:
    def __init__(self, port, token):
        self.port = port
        self.token = token

    def request(self, method, path, body=None):
        """(status, headers, body bytes); raises OSError or
        http.client.HTTPException when no HTTP answer came."""
        h = {"Authorization": "Bearer " + self.token,
             "Accept": "application/json"}
        raw = None
        if body is not None:
            raw = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                          timeout=HTTP_TIMEOUT)
        try:
            conn.request(method, path, body=raw, headers=h)
            r = conn.getresponse()
            return r.status, r.headers, r.read()
        finally:
            conn.close()


def sse_read(port, token, job_id, last_event_id=None, timeout=15.0):
    """
    Reads /v1/jobs/{id}/events until the server ends it, the time is up or
    the connection fails. Returns (status, events, how) where how is
    "eof", "timeout" or "error: ..." (and status None when no HTTP answer
    came at all).
    """
    h = {"Authorization": "Bearer " + token, "Accept": "text/event-stream"}
    if last_event_id is not None:
        h["Last-Event-ID"] = str(last_event_id)
    deadline = time.monotonic() + timeout
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=HTTP_TIMEOUT)
    events = []
    try:
        try:
            conn.request("GET", f"/v1/jobs/{job_id}/events", headers=h)
            resp = conn.getresponse()
        except (OSError, http.client.HTTPException) as e:
            return None, events, f"error: {e.__class__.__name__}: {e}"
        if resp.status != 200:
            resp.read()
            return resp.status, events, "eof"
        fid = fev = fdata = None
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return 200, events, "timeout"
            try:
                conn.sock.settimeout(max(left, 0.05))
                raw = resp.readline(1 << 20)
            except (socket.timeout, TimeoutError):
                return 200, events, "timeout"
            except (OSError, http.client.HTTPException) as e:
                return 200, events, f"error: {e.__class__.__name__}: {e}"
            if raw == b"":
                return 200, events, "eof"
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if line == "":
                if fdata is not None or fev is not None:
                    events.append(SseEvent(fid, fev or "message", fdata or "",
                                           time.monotonic()))
                fid = fev = fdata = None
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            if value.startswith(" "):
                value = value[1:]
            if name == "id":
                fid = value
            elif name == "event":
                fev = value
            elif name == "data":
                fdata = value if fdata is None else fdata + "\n" + value
    finally:
        conn.close()


def utc(t):
    """Epoch seconds as the time of day in UTC, as the logs show it."""
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime(
        "%H:%M:%S.%f")[:-3]


def parse_ts(ts):
    """Epoch seconds of an API timestamp (RFC 3339 UTC, milliseconds)."""
    try:
        dt = datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ")
    except (TypeError, ValueError):
        return None
    return dt.replace(tzinfo=datetime.timezone.utc).timestamp()


def event_time(body):
    """The time of day of a stored event body, or '?'."""
    try:
        t = parse_ts(json.loads(body).get("ts"))
    except ValueError:
        t = None
    return "?" if t is None else utc(t)


# --------------------------------------------------------------------------
# The jobs: what is submitted and what each must end as
# --------------------------------------------------------------------------

class Job:
    """One logical submission and everything learnt about it."""

    def __init__(self, n, kind, body, expect):
        self.n = n
        self.kind = kind
        self.body = body
        self.expect = expect            # "succeed" or "fail"
        self.id = None                  # set by the 202
        self.tries = 0                  # POSTs sent for it
        self.rejected = None            # a 4xx answer, described
        self.acked_at = None            # time.time() of the 202
        self.cancel_at = None           # monotonic time to send DELETE, or None
        self.cancel_status = None       # the DELETE's HTTP status, or "error"

    @property
    def payload(self):
        return self.body["payload"]

    @property
    def max_attempts(self):
        return self.body["max_attempts"]


# Kind name, share of the jobs, and a maker returning (body, expectation).
def _demo(r):
    return ({"type": "demo", "max_attempts": 5,
             "payload": {"events": r.randint(0, 5),
                         "duration_ms": r.randint(0, 300)}}, "succeed")


def _test_ok(r):
    return ({"type": "test", "max_attempts": 5,
             "payload": {"outcome": "succeed",
                         "sleep_ms": r.randint(0, 300)}}, "succeed")


def _test_flaky(r):
    # Fails retryably on its first 1 or 2 attempts, then succeeds: with 3
    # attempts allowed it must end succeeded.
    return ({"type": "test", "max_attempts": 3,
             "payload": {"outcome": "succeed", "sleep_ms": r.randint(0, 200),
                         "fail_attempts": r.randint(1, 2)}}, "succeed")


def _test_exhaust(r):
    # Asked to fail more often than it may be tried: ends failed.
    return ({"type": "test", "max_attempts": 2,
             "payload": {"outcome": "succeed", "sleep_ms": r.randint(0, 100),
                         "fail_attempts": r.randint(2, 4)}}, "fail")


def _test_fail_retryable(r):
    return ({"type": "test", "max_attempts": 2,
             "payload": {"outcome": "fail", "retryable": True,
                         "sleep_ms": r.randint(0, 100),
                         "error": {"code": "chaos_retryable",
                                   "message": "asked to fail, retryably"}}},
            "fail")


def _test_fail_fatal(r):
    return ({"type": "test", "max_attempts": 3,
             "payload": {"outcome": "fail", "retryable": False,
                         "sleep_ms": r.randint(0, 100),
                         "error": {"code": "chaos_fatal",
                                   "message": "asked to fail, for good"}}},
            "fail")


def _long(r):
    return ({"type": "long-running", "max_attempts": 5,
             "payload": {"duration_ms": r.randint(500, 3000),
                         "progress_interval_ms": r.randint(100, 500)}},
            "succeed")


KINDS = [
    ("demo", 18, _demo),
    ("test-ok", 28, _test_ok),
    ("test-flaky", 18, _test_flaky),
    ("test-exhaust", 7, _test_exhaust),
    ("test-fail-retryable", 5, _test_fail_retryable),
    ("test-fail-fatal", 9, _test_fail_fatal),
    ("long-running", 15, _long),
]
CANCEL_SHARE = 0.2      # of long-running jobs, cancelled while they run


def make_jobs(count, rng):
    names = [k[0] for k in KINDS]
    weights = [k[1] for k in KINDS]
    makers = {k[0]: k[2] for k in KINDS}
    jobs = []
    for n in range(count):
        kind = rng.choices(names, weights)[0]
        body, expect = makers[kind](rng)
        j = Job(n, kind, body, expect)
        if kind == "long-running" and rng.random() < CANCEL_SHARE:
            j.cancel_at = rng.uniform(0.2, 2.5)     # after the 202
        jobs.append(j)
    return jobs


# --------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------

class Run:
    def __init__(self, args):
        self.args = args
        self.seed = args.seed
        self.stack = None
        self.client = None
        self.jobs = []
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.next_job = 0
        self.http_errors = 0            # connection errors and 5xx seen
        self.error_kinds = {}           # "HTTP 503" -> [count, first body]
        self.kills = []                 # {worker, t, jobs: {id: attempts}}
        self.outages = []               # (what, t_start, t_end)
        self.chaos_log = []
        self.chaos_problems = []        # stack commands that failed
        self.down_workers = set()
        self.followers = []             # live SSE follower results
        self.follow_threads = []
        self.sampled_followers = 0
        self.cancel_queue = []
        self.violations = []            # (job id or None, message)
        self.diagnoses = {}
        self.notes = []

    # -- setup and teardown --------------------------------------------------

    def start_stack(self):
        a = self.args
        d = a.dir or tempfile.mkdtemp(prefix="agentgate-chaos-")
        os.makedirs(d, exist_ok=True)
        os.chmod(d, 0o755)      # PostgreSQL runs as postgres and must enter it
        http_port = pick_port(a.http_port, "AGENTGATE_CHAOS_HTTP_PORT", 18095)
        pg_port = pick_port(a.pg_port, "AGENTGATE_CHAOS_PG_PORT", 55445)
        redis_port = pick_port(a.redis_port, "AGENTGATE_CHAOS_REDIS_PORT", 56392)
        self.stack = Stack(d, http_port, redis_port)
        env = dict(STACK_ENV)
        env["AGENTGATE_WORKER_CONCURRENCY"] = str(a.concurrency)
        argv = ["up", "--bin", a.bin, "--http-port", str(http_port),
                "--pg-port", str(pg_port), "--redis-port", str(redis_port),
                "--workers", str(a.workers)]
        for k, v in env.items():
            argv += ["--env", f"{k}={v}"]
        say(f"stack: {d} (http {http_port}, pg {pg_port}, redis {redis_port}, "
            f"{a.workers} workers x {a.concurrency}, bin {a.bin})")
        rc, out = self.stack.cmd(*argv, timeout=STACK_UP_TIMEOUT)
        if rc != 0:
            raise HarnessError(f"agentgate-stack up failed ({rc}):\n{out}")
        self.stack.load_settings()
        now = int(time.time())
        tenant = f"chaos-{uuid.uuid4().hex[:10]}"
        token = mint_jwt(self.stack.secret, {
            "sub": "chaos", "tenant_id": tenant, "roles": ["user"],
            "scope": "jobs:read jobs:write", "iat": now, "exp": now + 4 * 3600})
        self.client = Client(http_port, token)
        self.tenant = tenant

    def stop_stack(self):
        if self.stack is None:
            return
        rc, out = self.stack.cmd("down", "--timeout", "10")
        if rc != 0:
            self.notes.append(f"agentgate-stack down exited {rc}: {out}")

    # -- submission ----------------------------------------------------------

    def submit(self, job):
        """POSTs job until a 202 (recorded), a 4xx (recorded, not
        retried) or the give-up time; any 5xx or failed connection is not
        an acknowledgement and is tried again."""
        give_up = time.monotonic() + SUBMIT_GIVE_UP_S
        delay = 0.1
        while not self.stop.is_set():
            job.tries += 1
            try:
                status, headers, data = self.client.request("POST", "/v1/jobs",
                                                            job.body)
            except (OSError, http.client.HTTPException) as e:
                status, headers, data = None, {}, f"{e.__class__.__name__}: {e}"
            if status == 202:
                try:
                    jid = json.loads(data)["id"]
                    uuid.UUID(jid)
                except (ValueError, KeyError, TypeError):
                    self.violation(None, f"202 without a job id: {data[:300]!r}")
                    return
                job.id = jid
                job.acked_at = time.time()
                if job.cancel_at is not None:
                    with self.lock:
                        self.cancel_queue.append(
                            (time.monotonic() + job.cancel_at, job))
                return
            if status is not None and 400 <= status < 500 and status != 429:
                job.rejected = f"HTTP {status}: {data[:300]!r}"
                return
            with self.lock:
                self.http_errors += 1
                kind = f"HTTP {status}" if status else "no answer"
                if kind not in self.error_kinds:
                    self.error_kinds[kind] = [0, (data[:160].decode("utf-8", "replace")
                                                  if status else data)]
                self.error_kinds[kind][0] += 1
            if time.monotonic() + delay > give_up:
                return
            retry_after = headers.get("Retry-After") if status else None
            time.sleep(min(float(retry_after), 2.0)
                       if retry_after and retry_after.isdigit() else delay)
            delay = min(delay * 2, 1.0)

    def client_loop(self, t_start, interval):
        while not self.stop.is_set():
            with self.lock:
                n = self.next_job
                if n >= len(self.load_jobs):
                    return
                self.next_job += 1
            due = t_start + n * interval
            wait = due - time.monotonic()
            if wait > 0 and self.stop.wait(wait):
                return
            self.submit(self.load_jobs[n])

    def cancel_loop(self):
        """Sends the DELETEs of the jobs chosen for cancellation, each at
        its time; a failed one is tried again for a few seconds."""
        while not self.stop.is_set():
            job = None
            with self.lock:
                self.cancel_queue.sort(key=lambda x: x[0])
                if self.cancel_queue and self.cancel_queue[0][0] <= time.monotonic():
                    job = self.cancel_queue.pop(0)[1]
                elif not self.cancel_queue and self.submitting_done.is_set():
                    return
            if job is None:
                time.sleep(0.05)
                continue
            deadline = time.monotonic() + 5
            while True:
                try:
                    status, _, _ = self.client.request("DELETE",
                                                       f"/v1/jobs/{job.id}")
                except (OSError, http.client.HTTPException):
                    status = None
                if status is not None and status < 500:
                    job.cancel_status = status
                    break
                if time.monotonic() > deadline:
                    job.cancel_status = "error"
                    break
                time.sleep(0.2)

    # -- live SSE followers --------------------------------------------------

    def follow(self, job):
        """Follows one job's events live until its terminal event,
        reconnecting with Last-Event-ID whenever the stream ends early."""
        events, reconnects, how = [], 0, ""
        deadline = time.monotonic() + self.args.wait + self.args.duration
        while time.monotonic() < deadline:
            last = events[-1].id if events else None
            status, got, how = sse_read(self.client.port, self.client.token,
                                        job.id, last_event_id=last,
                                        timeout=deadline - time.monotonic())
            events.extend(got)
            if events and events[-1].event in TERMINAL_EVENTS:
                break
            reconnects += 1
            time.sleep(0.3)
        self.followers.append((job, events, reconnects, how))

    def watch(self, act):
        """Submits a long job and follows its events live just before a
        Redis or PostgreSQL disruption, so that some stream is open and
        its job running when the dependency goes away."""
        job = Job(len(self.jobs), "long-watch",
                  {"type": "long-running", "max_attempts": 5,
                   "payload": {"duration_ms": 6000,
                               "progress_interval_ms": 250}}, "succeed")
        with self.lock:
            self.jobs.append(job)
        self.submit(job)
        if job.id is None:
            self.notes.append(f"the watch job before {act} was not acknowledged")
            return
        t = threading.Thread(target=self.follow, args=(job,), daemon=True)
        self.follow_threads.append(t)
        t.start()
        time.sleep(1.5)     # picked up and running, stream open

    def maybe_follow(self, job):
        """Follows the job live if it is the next long job due one: the
        followers are spread over the whole load phase."""
        if (job.kind != "long-running" or job.cancel_at is not None
                or self.sampled_followers >= self.args.followers
                or job.n < self.next_follow_n):
            return
        self.sampled_followers += 1
        self.next_follow_n = job.n + len(self.load_jobs) / max(self.args.followers, 1)
        t = threading.Thread(target=self.follow, args=(job,), daemon=True)
        self.follow_threads.append(t)
        t.start()

    def join_followers(self):
        deadline = time.monotonic() + 30
        for t in self.follow_threads:
            t.join(timeout=max(deadline - time.monotonic(), 0.1))
        late = sum(1 for t in self.follow_threads if t.is_alive())
        if late:
            self.violation(None, f"{late} live SSE follower(s) never saw their "
                           "job's terminal event although the job finished")

    # -- chaos ---------------------------------------------------------------

    def plan_chaos(self, rng, window):
        """The seeded list of (time offset, action) over window seconds."""
        lo, hi = 4.0, max(window - 4.0, 6.0)
        acts = ["kill"] * self.args.kills
        acts += ["redis-restart", "redis-restart", "redis-restart-flush",
                 "redis-outage-flush", "pg-restart"]
        plan = sorted((rng.uniform(lo, hi), a) for a in acts)
        return plan

    def stack_cmd(self, *args):
        rc, out = self.stack.cmd(*args)
        if rc != 0:
            self.chaos_problems.append(f"agentgate-stack {' '.join(args)} "
                                       f"exited {rc}: {out}")
            say(f"chaos: agentgate-stack {' '.join(args)} FAILED ({rc}): {out}")
        return rc == 0

    def running_on(self, worker):
        """{job id: attempts} of the jobs PostgreSQL shows running on the
        worker; read right after its SIGKILL, while nothing can change
        them yet (the lease has seconds to run)."""
        try:
            rows = self.stack.sql(
                "SELECT id, attempts FROM jobs WHERE status = 'running' "
                f"AND worker_id = 'local-{int(worker)}'")
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            self.notes.append(f"could not read the jobs of killed worker "
                              f"{worker}: {e}")
            return {}
        return {r[0]: int(r[1]) for r in rows}

    def chaos_loop(self, plan, rng, t_start):
        restarts = []       # (monotonic due, worker)
        for offset, act in plan:
            due = t_start + offset
            while True:
                restarts.sort()
                if restarts and restarts[0][0] <= due:
                    rdue, w = restarts.pop(0)
                    if self.stop.wait(max(rdue - time.monotonic(), 0)):
                        return
                    self.start_worker(w)
                    continue
                break
            if self.stop.wait(max(due - time.monotonic(), 0)):
                return
            self.chaos_act(act, rng, restarts)
        for rdue, w in sorted(restarts):
            if self.stop.wait(max(rdue - time.monotonic(), 0)):
                return
            self.start_worker(w)

    def start_worker(self, w):
        t = time.time()
        if self.stack_cmd("worker", "start", str(w)):
            self.down_workers.discard(w)
            say(f"chaos: worker {w} started again")
            self.chaos_log.append((t, f"start worker {w}"))

    def chaos_act(self, act, rng, restarts):
        if act != "kill":
            self.watch(act)
        if act == "kill":
            alive = [w for w in range(1, self.args.workers + 1)
                     if w not in self.down_workers]
            if not alive:
                say("chaos: every worker is down; skipping a kill")
                return
            w = rng.choice(alive)
            t = time.time()
            if not self.stack_cmd("worker", "kill", str(w)):
                return
            held = self.running_on(w)
            self.down_workers.add(w)
            self.kills.append({"worker": w, "t": t, "jobs": held})
            delay = rng.uniform(0.2, 5.0)
            restarts.append((time.monotonic() + delay, w))
            self.chaos_log.append((t, f"SIGKILL worker {w} ({len(held)} running)"))
            say(f"chaos: SIGKILL worker {w} with {len(held)} job(s) running; "
                f"start again in {delay:.1f} s")
        elif act in ("redis-restart", "redis-restart-flush"):
            flush = act.endswith("flush")
            t = time.time()
            ok = self.stack_cmd("redis", "restart", *(["--flush"] if flush else []))
            t_end = time.time()
            self.outages.append(("redis", t, t_end))
            self.chaos_log.append((t, f"Redis restart{' --flush' if flush else ''}, "
                                      f"back at {utc(t_end)}"))
            say(f"chaos: Redis restarted{' empty' if flush else ' with its data'}"
                f" in {t_end - t:.2f} s{'' if ok else ' (FAILED)'}")
        elif act == "redis-outage-flush":
            gap = rng.uniform(1.0, 3.0)
            t = time.time()
            self.stack_cmd("redis", "stop", "--flush")
            say(f"chaos: Redis stopped (data dropped) for {gap:.1f} s")
            time.sleep(gap)
            self.stack_cmd("redis", "start")
            t_end = time.time()
            self.outages.append(("redis", t, t_end))
            self.chaos_log.append((t, f"Redis stopped (flushed), back at {utc(t_end)}"))
            say("chaos: Redis started again, empty")
        elif act == "pg-restart":
            gap = rng.uniform(0.5, 2.0)
            t = time.time()
            self.stack_cmd("pg", "stop")
            say(f"chaos: PostgreSQL stopped for {gap:.1f} s")
            time.sleep(gap)
            self.stack_cmd("pg", "start")
            t_end = time.time()
            self.outages.append(("postgresql", t, t_end))
            self.chaos_log.append((t, f"PostgreSQL stopped, back at {utc(t_end)}"))
            say(f"chaos: PostgreSQL started again ({t_end - t:.1f} s down)")

    def heal(self):
        """After the chaos: every dependency and worker running again."""
        self.stack_cmd("pg", "start")
        self.stack_cmd("redis", "start")
        for w in range(1, self.args.workers + 1):
            for _ in range(3):
                if self.stack_cmd("worker", "start", str(w)):
                    self.down_workers.discard(w)
                    break
                time.sleep(1)

    # -- the load phase --------------------------------------------------------

    def load_phase(self):
        a = self.args
        job_rng = random.Random(self.seed * 2 + 1)
        chaos_rng = random.Random(self.seed * 2)
        self.load_jobs = make_jobs(a.jobs, job_rng)
        self.jobs = list(self.load_jobs)     # and the chaos thread's watch jobs
        plan = self.plan_chaos(chaos_rng, a.duration)
        say(f"plan: {a.jobs} jobs over {a.duration:.0f} s from {a.clients} "
            f"clients; chaos: " + ", ".join(f"{o:.1f}s {x}" for o, x in plan))
        self.submitting_done = threading.Event()
        t_start = time.monotonic()
        self.load_t0 = time.time()
        interval = a.duration / max(a.jobs, 1)
        clients = [threading.Thread(target=self.client_loop,
                                    args=(t_start, interval), daemon=True)
                   for _ in range(a.clients)]
        chaos = threading.Thread(target=self.chaos_loop,
                                 args=(plan, chaos_rng, t_start), daemon=True)
        canceller = threading.Thread(target=self.cancel_loop, daemon=True)
        for t in clients + [chaos, canceller]:
            t.start()
        self.next_follow_n = 0
        considered = set()
        next_report = time.monotonic() + 10
        while any(t.is_alive() for t in clients):
            time.sleep(0.2)
            for j in self.load_jobs[:self.next_job]:
                if j.id and j.n not in considered:
                    considered.add(j.n)
                    self.maybe_follow(j)
            if time.monotonic() >= next_report:
                next_report += 10
                acked = sum(1 for j in self.jobs if j.id)
                say(f"load: {acked} acknowledged of {self.next_job} started; "
                    f"{self.http_errors} 5xx/connection errors so far")
        self.submitting_done.set()
        chaos.join()
        canceller.join(timeout=30)
        self.load_t1 = time.time()
        self.heal()
        acked = sum(1 for j in self.jobs if j.id)
        say(f"load done in {self.load_t1 - self.load_t0:.1f} s: {acked} of "
            f"{len(self.jobs)} acknowledged; {self.http_errors} 5xx/connection "
            "errors were retried")

    # -- waiting and checking --------------------------------------------------

    def wait_terminal(self):
        """Polls PostgreSQL until every job there is terminal and every
        acknowledged id is there, or the wait is up."""
        acked = {j.id for j in self.jobs if j.id}
        deadline = time.monotonic() + self.args.wait
        next_report = 0
        while True:
            try:
                rows = self.stack.sql("SELECT id, status FROM jobs")
            except (RuntimeError, subprocess.TimeoutExpired) as e:
                rows = None
                say(f"wait: cannot read jobs: {e}")
            if rows is not None:
                status = {r[0]: r[1] for r in rows}
                open_ = [i for i, s in status.items() if s not in TERMINAL]
                missing = [i for i in acked if i not in status]
                if not open_ and not missing:
                    say(f"wait: all {len(status)} jobs terminal")
                    return
                if time.monotonic() >= next_report:
                    next_report = time.monotonic() + 10
                    say(f"wait: {len(open_)} job(s) not terminal, "
                        f"{len(missing)} acknowledged id(s) missing")
            if time.monotonic() >= deadline:
                say(f"wait: gave up after {self.args.wait:.0f} s")
                return
            time.sleep(1)

    def violation(self, job_id, msg):
        with self.lock:
            self.violations.append((job_id, msg))

    def fetch(self):
        rows = self.stack.sql(
            "SELECT id, type, status, payload::text, coalesce(result::text, ''), "
            "coalesce(error_code, ''), attempts, max_attempts, last_event_id, "
            "extract(epoch FROM created_at), "
            "coalesce(extract(epoch FROM finished_at)::text, '') FROM jobs")
        jobs = {}
        for r in rows:
            jobs[r[0]] = {
                "id": r[0], "type": r[1], "status": r[2],
                "payload": json.loads(r[3]),
                "result": json.loads(r[4]) if r[4] else None,
                "error_code": r[5], "attempts": int(r[6]),
                "max_attempts": int(r[7]), "last_event_id": int(r[8]),
                "created": float(r[9]),
                "finished": float(r[10]) if r[10] else None,
                "events": []}
        for r in self.stack.sql("SELECT job_id, seq, type, body FROM job_events "
                                "ORDER BY job_id, seq"):
            if r[0] in jobs:
                jobs[r[0]]["events"].append((int(r[1]), r[2], r[3]))
        return jobs

    def exposed(self, row):
        """True when chaos could have cost the job an attempt: a killed
        worker held it, or its lifetime overlaps a Redis or PostgreSQL
        outage (leases may lapse while a dependency is away)."""
        if any(row["id"] in k["jobs"] for k in self.kills):
            return True
        end = row["finished"] or time.time()
        for _, t0, t1 in self.outages:
            if row["created"] <= t1 + OUTAGE_SLACK_S and end >= t0 - 1.0:
                return True
        return False

    def check_events(self, row):
        """The invariants of one job's event log; returns problems."""
        probs = []
        evs = row["events"]
        seqs = [e[0] for e in evs]
        if seqs != list(range(1, len(evs) + 1)):
            probs.append(f"event seqs are not 1..{len(evs)}: {seqs}")
        if len(evs) != row["last_event_id"]:
            probs.append(f"{len(evs)} events but last_event_id = "
                         f"{row['last_event_id']}")
        if evs and evs[0][1] != "job.queued":
            probs.append(f"first event is {evs[0][1]}, not job.queued")
        term = [i for i, e in enumerate(evs) if e[1] in TERMINAL_EVENTS]
        if row["status"] in TERMINAL:
            if len(term) != 1:
                probs.append(f"{len(term)} terminal events")
            elif term[0] != len(evs) - 1:
                probs.append("the terminal event is not the last")
            elif evs[-1][1] != TERMINAL_EVENT[row["status"]]:
                probs.append(f"status {row['status']} but terminal event "
                             f"{evs[-1][1]}")
        for seq, typ, body in evs:
            try:
                b = json.loads(body)
            except ValueError:
                probs.append(f"event {seq} body is not JSON")
                continue
            if b.get("id") != seq or b.get("type") != typ or b.get("job_id") != row["id"]:
                probs.append(f"event {seq} body says id {b.get('id')!r} type "
                             f"{b.get('type')!r} job {b.get('job_id')!r}")
                break
        return probs

    def check_outcome(self, job, row):
        """Whether the job ended as its payload asked; returns problems
        and, separately, an allowed failure by attempts chaos used up."""
        probs, allowed = [], None
        st, att, mx = row["status"], row["attempts"], row["max_attempts"]
        p = job.payload
        if mx != job.max_attempts:
            probs.append(f"max_attempts {mx}, submitted {job.max_attempts}")
        cancelled_asked = job.cancel_status is not None
        if st == "cancelled":
            if job.cancel_status not in (200, 202):
                probs.append("cancelled, but no cancellation was accepted "
                             f"(DELETE answered {job.cancel_status})")
            return probs, allowed
        if job.cancel_status == 200:
            probs.append(f"DELETE answered 200 (cancelled while queued) "
                         f"but the job ended {st}")
            return probs, allowed
        if cancelled_asked and job.cancel_status == 409 and st not in ("succeeded", "failed"):
            probs.append(f"DELETE answered 409 but the job ended {st}")
        if job.expect == "succeed":
            if st == "failed":
                if att == mx and self.exposed(row):
                    allowed = (f"{job.kind}: failed after {att}/{mx} attempts "
                               f"that chaos interrupted ({row['error_code']})")
                else:
                    probs.append(f"expected to succeed but failed "
                                 f"({row['error_code']}) after {att}/{mx} attempts")
        else:
            if st == "succeeded":
                probs.append(f"expected to fail but succeeded after {att}/{mx}")
        if st == "succeeded" and job.kind.startswith("test"):
            res = row["result"]
            got = res.get("attempt") if isinstance(res, dict) else None
            if got != att:
                probs.append(f"result.attempt is {got!r}, the final attempt "
                             f"is {att} (result {json.dumps(res)[:120]})")
        if st == "succeeded" and "fail_attempts" in p and att <= p["fail_attempts"]:
            probs.append(f"succeeded on attempt {att} though asked to fail "
                         f"attempts 1..{p['fail_attempts']}")
        if st == "succeeded" and job.kind.startswith("long"):
            res = row["result"] or {}
            el = res.get("elapsed_ms") if isinstance(res, dict) else None
            if not isinstance(el, (int, float)) or el < p["duration_ms"] - 5:
                probs.append(f"result.elapsed_ms {el!r} < duration_ms "
                             f"{p['duration_ms']}: not one whole attempt")
        if st == "failed" and job.kind in ("test-exhaust", "test-fail-retryable") \
                and att != mx:
            probs.append(f"a job failing retryably ended failed after "
                         f"{att} of {mx} attempts")
        if st == "failed" and job.kind == "test-fail-fatal" and att > 1 \
                and not self.exposed(row):
            probs.append(f"a non-retryable failure was tried {att} times "
                         "without chaos hitting it")
        if st == "failed" and job.kind == "test-fail-fatal" \
                and row["error_code"] != "chaos_fatal" and allowed is None \
                and not (att == mx and self.exposed(row)):
            probs.append(f"error code {row['error_code']!r}, asked for chaos_fatal")
        return probs, allowed

    def check(self):
        jobs = self.fetch()
        self.db_jobs = jobs
        by_id = {j.id: j for j in self.jobs if j.id}
        self.allowed_failures = []
        self.spurious_retries = 0
        for jid, row in jobs.items():
            probs = []
            if row["status"] not in TERMINAL:
                probs.append(f"not terminal: {row['status']}")
            if row["attempts"] > row["max_attempts"]:
                probs.append(f"attempts {row['attempts']} > max_attempts "
                             f"{row['max_attempts']}")
            if row["status"] in ("succeeded", "failed") and row["attempts"] < 1:
                probs.append(f"{row['status']} with attempts 0")
            probs += self.check_events(row)
            job = by_id.get(jid)
            if job is not None:
                p2, allowed = self.check_outcome(job, row)
                probs += p2
                if allowed:
                    self.allowed_failures.append((jid, allowed))
                if (row["attempts"] > 1 and "fail_attempts" not in job.payload
                        and job.kind not in ("test-fail-retryable",)
                        and not self.exposed(row)):
                    self.spurious_retries += 1
            for msg in probs:
                self.violation(jid, msg)
        # While the stack is still up: where Redis has a few of the jobs
        # that never finished, for the report.
        self.diagnoses = {}
        for jid, row in jobs.items():
            if row["status"] not in TERMINAL and len(self.diagnoses) < 10:
                self.diagnoses[jid] = self.diagnose(jid, row)
        self.lost = []
        for j in self.jobs:
            if j.id is None:
                continue
            row = jobs.get(j.id)
            if row is None:
                self.lost.append(j.id)
                self.violation(j.id, "LOST: acknowledged (202) but not in "
                               "PostgreSQL")
            elif row["status"] not in TERMINAL:
                self.lost.append(j.id)
        if self.lost:
            self.violation(None, f"LOST: {len(self.lost)} acknowledged job(s) "
                           "missing or never terminal")
        for j in self.jobs:
            if j.rejected:
                self.violation(None, f"refused: job {j.n} ({j.kind}): {j.rejected}")
                break
        n_rej = sum(1 for j in self.jobs if j.rejected)
        if n_rej:
            self.violation(None, f"{n_rej} submission(s) refused with a 4xx "
                           f"(kinds: {sorted({j.kind for j in self.jobs if j.rejected})})")
        for p in self.chaos_problems:
            self.notes.append(p)

    def check_sse(self, rng):
        """Replays a sample of finished jobs' streams and compares them
        with PostgreSQL; and checks the live followers."""
        acked = [j for j in self.jobs if j.id and j.id in self.db_jobs]
        killed = [j for j in acked if any(j.id in k["jobs"] for k in self.kills)]
        sample = rng.sample(acked, min(self.args.sse_sample, len(acked)))
        sample += [j for j in killed[:self.args.sse_sample // 2] if j not in sample]
        self.sse_checked = 0
        for j in sample:
            row = self.db_jobs[j.id]
            if row["status"] not in TERMINAL:
                continue
            self.sse_checked += 1
            status, evs, how = sse_read(self.client.port, self.client.token, j.id)
            if status != 200:
                self.violation(j.id, f"SSE replay answered {status} ({how})")
                continue
            self.check_stream(j.id, row, evs, how, "SSE replay")
        for job, evs, reconnects, how in self.followers:
            row = self.db_jobs.get(job.id)
            if row is None:
                continue
            self.check_stream(job.id, row, evs, how,
                              f"live SSE follower ({reconnects} reconnects)")

    def check_stream(self, jid, row, evs, how, what):
        ids = [e.id for e in evs]
        want = list(range(1, row["last_event_id"] + 1))
        if ids != want:
            self.violation(jid, f"{what}: ids {ids[:40]} are not 1..{len(want)}"
                           f" (ended by {how})")
            return
        if what == "SSE replay" and how != "eof":
            self.violation(jid, f"{what}: stream did not end after the "
                           f"terminal event ({how})")
        pg = {seq: (typ, body) for seq, typ, body in row["events"]}
        for e in evs:
            typ, body = pg.get(e.id, (None, None))
            if e.event != typ or e.body != json.loads(body):
                self.violation(jid, f"{what}: event {e.id} is {e.event} "
                               f"{e.data[:120]!r}, PostgreSQL has {typ} "
                               f"{(body or '')[:120]!r}")
                return

    def recovery_times(self):
        """Seconds from each SIGKILL to each job it interrupted starting
        again (its next job.started event)."""
        times, never = [], {}
        for k in self.kills:
            for jid in k["jobs"]:
                row = self.db_jobs.get(jid)
                if row is None:
                    continue
                starts = []
                for _, typ, body in row["events"]:
                    if typ == "job.started":
                        try:
                            ts = parse_ts(json.loads(body).get("ts"))
                        except ValueError:
                            ts = None
                        if ts is not None and ts > k["t"]:
                            starts.append(ts)
                if starts:
                    times.append(min(starts) - k["t"])
                    if min(starts) - k["t"] >= max(times):
                        self.slowest = (jid, k, row)
                else:
                    code = row["error_code"]
                    why = row["status"] + (f" ({code})" if code and code != row["status"] else "")
                    never[why] = never.get(why, 0) + 1
        return times, never

    def explain_recovery(self, jid, kill, row):
        """The events of one interrupted job after its worker's SIGKILL,
        as offsets from the kill: where its recovery time went."""
        parts = [f"job {jid} on worker {kill['worker']}:"]
        for seq, typ, body in row["events"]:
            try:
                b = json.loads(body)
            except ValueError:
                continue
            ts = parse_ts(b.get("ts"))
            if ts is None or ts < kill["t"] or typ == "job.progress":
                continue
            data = b.get("data") if isinstance(b.get("data"), dict) else {}
            detail = {k: v for k, v in data.items()
                      if k in ("reason", "delay_ms", "attempt", "worker_id")}
            if isinstance(data.get("error"), dict) and "code" in data["error"]:
                detail["code"] = data["error"]["code"]
            parts.append(f"+{ts - kill['t']:.2f}s {typ}"
                         + (f" {json.dumps(detail, sort_keys=True)}" if detail else ""))
            if typ == "job.started":
                break
        return " ".join(parts)

    # -- report ----------------------------------------------------------------

    def report(self, total_s):
        jobs = self.jobs
        rows = getattr(self, "db_jobs", {})
        acked = [j for j in jobs if j.id]
        acked_ids = {j.id for j in acked}
        counts = {s: 0 for s in TERMINAL}
        for r in rows.values():
            counts[r["status"]] = counts.get(r["status"], 0) + 1
        retried = sum(1 for r in rows.values() if r["attempts"] > 1)
        try:
            dead = self.stack.redis("LLEN", "jobs:dead")
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            dead = f"? ({e})"
        extra = len([i for i in rows if i not in acked_ids])
        times, never = self.recovery_times() if rows else ([], {})
        if times:
            rec = (f"median {statistics.median(times):.2f} s, max {max(times):.2f} s "
                   f"over {len(times)} job(s)")
        else:
            rec = "no job ran again" if never else "no job was running at a kill"
        rec += " (SIGKILL -> job.started again)"
        if never:
            rec += (f"; {sum(never.values())} interrupted job(s) ended without "
                    "running again: " + ", ".join(f"{n} {w}" for w, n in sorted(never.items())))
        if times:
            rec += "\n  slowest        " + self.explain_recovery(*self.slowest)
        kills = len(self.kills)
        n_redis = sum(1 for o in self.outages if o[0] == "redis")
        n_pg = sum(1 for o in self.outages if o[0] == "postgresql")
        by_kind = {}
        for j in acked:
            r = rows.get(j.id)
            if r:
                by_kind.setdefault(j.kind, {}).setdefault(r["status"], 0)
                by_kind[j.kind][r["status"]] += 1
        lines = [
            "",
            "chaos summary",
            f"  seed           {self.seed}",
            f"  duration       {self.load_t1 - self.load_t0:.1f} s of load, "
            f"{total_s:.1f} s in all",
            f"  submitted      {len(jobs)}",
            f"  acknowledged   {len(acked)} (202); not acknowledged "
            f"{len(jobs) - len(acked)}; stored without a 202 {extra}; "
            f"{self.http_errors} 5xx/connection errors retried",
            f"  succeeded      {counts['succeeded']}",
            f"  failed         {counts['failed']} (of them {len(self.allowed_failures)} "
            "expected to succeed, attempts used up by chaos)",
            f"  cancelled      {counts['cancelled']}",
            f"  retried        {retried} (attempts > 1; {self.spurious_retries} "
            "without a failure or chaos to explain it)",
            f"  dead-letter    {dead} (LLEN jobs:dead; Redis flushes empty it)",
            f"  lost           {len(getattr(self, 'lost', []))}",
            f"  chaos          {kills} worker SIGKILLs, {n_redis} Redis "
            f"restarts/outages, {n_pg} PostgreSQL restart(s)",
            f"  recovery       {rec}",
            f"  sse            {getattr(self, 'sse_checked', 0)} replays checked, "
            f"{len(self.followers)} live followers "
            f"({sum(f[2] for f in self.followers)} reconnects)",
            "  by kind        " + "; ".join(
                f"{k} {json.dumps(v, sort_keys=True)}" for k, v in sorted(by_kind.items())),
            f"  violations     {len(self.violations)}",
        ]
        print("\n".join(lines), flush=True)
        for jid, why in self.allowed_failures[:5]:
            print(f"  note: {jid} {why}")
        for n in self.notes[:10]:
            print(f"  note: {n}")
        for kind, (n, first) in sorted(self.error_kinds.items()):
            print(f"  note: POST /v1/jobs {kind} x{n} (retried), the first: {first}")

    def diagnose(self, jid, row):
        """Where Redis has a job that never finished, for the report."""
        queue = f"jobs:queue:{row['type']}:{self.tenant}"
        try:
            pos = self.stack.redis("LPOS", queue, jid)
            due = self.stack.redis("ZSCORE", f"jobs:delayed:{row['type']}",
                                   f"{self.tenant}:{jid}")
            turn = self.stack.redis("LPOS", f"jobs:ready:{row['type']}", self.tenant)
            active = self.stack.redis("SISMEMBER", f"jobs:active:{row['type']}", self.tenant)
            lease = self.stack.redis("GET", f"jobs:lease:{jid}")
            state = self.stack.redis("HGETALL", f"jobs:state:{jid}")
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            return f"redis: {e}"
        return (f"redis: position in {queue} {pos or 'none'}; "
                f"tenant on the ring at {turn or 'none'}, active {active or '?'}; "
                f"in jobs:delayed:{row['type']} {'due ' + utc(float(due) / 1000) if due else 'no'}; "
                f"lease {lease or 'none'}; jobs:state {' '.join(state.split()) or 'none'}")

    def print_violations(self):
        """The violations grouped by kind, a few jobs of each shown with
        their events."""
        rows = getattr(self, "db_jobs", {})
        by_id = {j.id: j for j in self.jobs if j.id}
        groups = {}
        for jid, msg in self.violations:
            key = re.sub(r"[0-9a-f]{8}-[0-9a-f-]{27}|\d+(\.\d+)?|'[^']*'|[\[{(].*",
                         "#", msg.splitlines()[0])[:60]
            groups.setdefault(key, []).append((jid, msg))
        print("\nchaos timeline (UTC): " + "; ".join(
            f"{utc(t)} {what}" for t, what in sorted(self.chaos_log)))
        print(f"\n{len(self.violations)} violation(s), {len(groups)} kind(s):")
        def order(g):
            # Lost and unfinished jobs first: they are what the suite is for.
            key, items = g
            return (not key.startswith(("LOST", "not terminal")), -len(items))
        for key, items in sorted(groups.items(), key=order):
            print(f"\n  [{len(items)}x] {key}")
            for jid, msg in items[:3]:
                if jid is None:
                    print(f"  - {msg}")
                    continue
                row = rows.get(jid)
                j = by_id.get(jid)
                desc = f"{j.kind} " if j else "(not acknowledged) "
                if row:
                    desc += (f"{row['type']} {row['status']} attempts "
                             f"{row['attempts']}/{row['max_attempts']} "
                             f"error {row['error_code'] or '-'} payload "
                             f"{json.dumps(row['payload'])}")
                    evs = " ".join(f"{s}:{t}@{event_time(b)}" for s, t, b in row["events"])
                    if jid in self.diagnoses:
                        evs += "\n      " + self.diagnoses[jid]
                else:
                    evs = "(no row)"
                print(f"  - job {jid}: {msg}\n      {desc}\n      events: {evs}")


def run(args):
    r = Run(args)
    t_begin = time.monotonic()
    try:
        r.start_stack()
        r.load_phase()
        r.wait_terminal()
        r.join_followers()
        r.check()
        r.check_sse(random.Random(args.seed * 2 + 7))
    except (HarnessError, KeyboardInterrupt, Exception) as e:
        r.stop.set()
        if isinstance(e, HarnessError):
            print(f"chaos: {e}", file=sys.stderr)
        elif isinstance(e, KeyboardInterrupt):
            print("chaos: interrupted", file=sys.stderr)
        else:
            traceback.print_exc()
            print("chaos: the run broke off", file=sys.stderr)
        if r.stack:
            print(log_tails(r.stack.dir, 40), file=sys.stderr)
            r.stop_stack()
            print(f"chaos: stack directory kept: {r.stack.dir}", file=sys.stderr)
        return 2
    r.stop.set()
    r.report(time.monotonic() - t_begin)
    r.stop_stack()
    san = sanitizer_reports(r.stack.dir)
    for s in san:
        r.violation(None, "sanitizer report in a service log:\n" + s)
    print(f"  seed           {r.seed} (repeat with --seed {r.seed})")
    if r.violations:
        r.print_violations()
        print("\n" + log_tails(r.stack.dir, 25))
        print(f"\nchaos: FAIL (seed {r.seed}); stack directory kept: {r.stack.dir}")
        return 1
    if args.keep or args.dir:
        print(f"chaos: stack directory kept: {r.stack.dir}")
    else:
        shutil.rmtree(r.stack.dir, ignore_errors=True)
    print(f"chaos: PASS (seed {r.seed})")
    return 0


def _interrupt(signum, frame):
    raise KeyboardInterrupt()


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="agentgate chaos suite: jobs under worker kills and "
                    "Redis/PostgreSQL restarts; every acknowledged job must "
                    "finish exactly once.")
    ap.add_argument("--seed", type=int, default=None,
                    help="seed of the chaos and job mix (default: random, printed)")
    ap.add_argument("--jobs", type=int, default=1000,
                    help="jobs to submit (default 1000)")
    ap.add_argument("--duration", type=float, default=75.0,
                    help="seconds over which they are submitted while chaos "
                         "runs (default 75)")
    ap.add_argument("--wait", type=float, default=120.0,
                    help="seconds to wait afterwards for every job to finish "
                         "(default 120)")
    ap.add_argument("--clients", type=int, default=4, help="client threads (4)")
    ap.add_argument("--workers", type=int, default=3, help="workers (3)")
    ap.add_argument("--concurrency", type=int, default=4,
                    help="jobs at once per worker (4)")
    ap.add_argument("--kills", type=int, default=8,
                    help="worker SIGKILLs during the run (8)")
    ap.add_argument("--followers", type=int, default=6,
                    help="long jobs followed live over SSE (6)")
    ap.add_argument("--sse-sample", type=int, default=40,
                    help="finished jobs whose SSE replay is checked (40)")
    ap.add_argument("--bin", default=bin_dir(),
                    help="directory of the agentgate binaries "
                         "(default $AGENTGATE_BIN or build/bin)")
    ap.add_argument("--dir", help="stack directory (default: a new temporary "
                                  "one, removed after a passing run)")
    ap.add_argument("--keep", action="store_true",
                    help="keep the stack directory after a passing run too")
    ap.add_argument("--http-port", type=int)
    ap.add_argument("--pg-port", type=int)
    ap.add_argument("--redis-port", type=int)
    args = ap.parse_args(argv)
    if args.jobs < 1 or args.duration <= 0 or args.wait <= 0 or args.clients < 1 \
            or not 1 <= args.workers <= 64 or args.concurrency < 1 or args.kills < 0:
        ap.error("--jobs, --duration, --wait, --clients, --workers and "
                 "--concurrency must be positive, --kills at least 0")
    args.bin = os.path.abspath(args.bin)
    for name in ("agentgate-gateway", "agentgate-worker", "agentgate-migrate"):
        if not os.access(os.path.join(args.bin, name), os.X_OK):
            print(f"chaos: {args.bin}/{name} is missing: build first (make) "
                  "or pass --bin / AGENTGATE_BIN", file=sys.stderr)
            return 2
    for tool in ("psql", "redis-cli"):
        if shutil.which(tool) is None:
            print(f"chaos: {tool} is not installed (deploy/local/install-deps)",
                  file=sys.stderr)
            return 2
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1, 2**31)
    print(f"chaos: seed {args.seed}", flush=True)
    # SIGTERM (a CI timeout) tears the stack down like Ctrl-C does.
    signal.signal(signal.SIGTERM, _interrupt)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
