"""
Fixtures for the integration tests: one real agentgate stack (PostgreSQL,
Redis, migrations, gateway, two workers) per test session, started and
stopped with deploy/local/agentgate-stack, and small HTTP/SSE/JWT clients
written on the standard library only.

Environment:
  AGENTGATE_BIN              directory with agentgate-gateway, -worker, ...
                             (default: <repo>/build/bin)
  AGENTGATE_TEST_HTTP_PORT   gateway port      (default 18085)
  AGENTGATE_TEST_PG_PORT     PostgreSQL port   (default 55435)
  AGENTGATE_TEST_REDIS_PORT  Redis port        (default 56382)
                             (a default already in use, e.g. by another test
                             run, is replaced by a free port)
  AGENTGATE_TEST_KEEP_DIR    set to 1 to keep the stack directory afterwards

Every test gets its own tenant (uuid-suffixed), so tests do not see each
other's jobs and can run in any order.
"""

import base64
import contextlib
import glob
import hashlib
import hmac
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
STACK = os.path.join(REPO, "deploy", "local", "agentgate-stack")



def _port_free(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _test_port(env, default):
    """The port env names; else default, or, when something already
    listens there (a second test run on the machine), a free one."""
    if os.environ.get(env):
        return int(os.environ[env])
    return default if _port_free(default) else _free_port()


HTTP_PORT = _test_port("AGENTGATE_TEST_HTTP_PORT", 18085)
PG_PORT = _test_port("AGENTGATE_TEST_PG_PORT", 55435)
REDIS_PORT = _test_port("AGENTGATE_TEST_REDIS_PORT", 56382)

# The stack is started with a small ring and a fast keepalive so ring
# overflow and keepalives are seen in seconds.
RING_SIZE = 20
KEEPALIVE_MS = 1000
WORKERS = 2
# The API key the stack gives provider "it-keyed" (test_llm_providers.py).
IT_API_KEY = "sk-it-" + uuid.uuid4().hex

# Bound on any single wait for the product (a job to finish, an SSE frame).
TIMEOUT = 20.0
STACK_UP_TIMEOUT = 240
STACK_CMD_TIMEOUT = 120

TERMINAL = ("succeeded", "failed", "cancelled")
TERMINAL_EVENTS = ("job.succeeded", "job.failed", "job.cancelled")

# The default token may do everything (RBAC, issue 4: only admin cancels
# agent runs and deletes sessions); test_rbac.py checks each role alone.
DEFAULT_ROLES = ["admin"]
DEFAULT_SCOPE = os.environ.get(
    "AGENTGATE_TEST_SCOPE",
    "jobs:read jobs:write agent-runs:read agent-runs:write tools:read tools:write "
    "tenants:read tenants:write models:read models:write")


# --------------------------------------------------------------------------
# JWT
# --------------------------------------------------------------------------

def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def mint_jwt(secret, claims, alg="HS256", header=None):
    """A token over claims signed with HMAC alg (HS256/384/512); any other
    alg (e.g. "none") gives an unsigned token."""
    hdr = {"alg": alg, "typ": "JWT"} if header is None else header
    signing_input = (b64url(json.dumps(hdr, separators=(",", ":")).encode())
                     + "." +
                     b64url(json.dumps(claims, separators=(",", ":")).encode()))
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384,
              "HS512": hashlib.sha512}.get(alg)
    if digest is None:
        return signing_input + "."
    key = secret.encode() if isinstance(secret, str) else secret
    sig = hmac.new(key, signing_input.encode("ascii"), digest).digest()
    return signing_input + "." + b64url(sig)


# --------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------

class Resp:
    """A complete HTTP response: status, headers, body bytes."""

    def __init__(self, method, path, status, headers, body):
        self.method = method
        self.path = path
        self.status = status
        self.headers = headers
        self.body = body

    def header(self, name):
        return self.headers.get(name)

    @property
    def content_type(self):
        return (self.header("Content-Type") or "").split(";")[0].strip().lower()

    def json(self):
        try:
            return json.loads(self.body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as e:
            raise AssertionError(
                f"{self.method} {self.path}: body is not JSON ({e}): "
                f"{self.body[:500]!r}") from None

    def describe(self):
        return (f"{self.method} {self.path} -> {self.status} "
                f"[{self.header('Content-Type')}] {self.body[:800]!r}")

    def expect(self, *statuses):
        """Asserts the status is one of statuses and returns self."""
        assert self.status in statuses, (
            f"expected HTTP {' or '.join(map(str, statuses))}, got "
            + self.describe())
        return self

    def expect_json(self, *statuses):
        self.expect(*statuses)
        assert self.content_type == "application/json", (
            "expected Content-Type application/json: " + self.describe())
        return self.json()

    def expect_problem(self, *statuses):
        """Asserts an RFC 9457 problem with one of statuses; returns it."""
        self.expect(*statuses)
        assert self.content_type == "application/problem+json", (
            "error response is not application/problem+json: "
            + self.describe())
        p = self.json()
        assert isinstance(p, dict), "problem is not an object: " + self.describe()
        for key in ("type", "title", "status", "detail", "request_id"):
            assert key in p, f"problem lacks {key!r}: " + self.describe()
        assert isinstance(p["type"], str) and p["type"], self.describe()
        assert isinstance(p["title"], str) and p["title"], self.describe()
        assert isinstance(p["detail"], str) and p["detail"], self.describe()
        assert p["status"] == self.status, (
            f"problem status {p['status']!r} != HTTP status: " + self.describe())
        rid = self.header("X-Request-Id")
        assert rid, "error response lacks X-Request-Id: " + self.describe()
        assert p["request_id"] == rid, (
            f"problem request_id {p['request_id']!r} != X-Request-Id {rid!r}")
        return p


def http_request(method, path, body=None, headers=None, timeout=TIMEOUT):
    """One request on a fresh connection to the gateway under test."""
    conn = http.client.HTTPConnection("127.0.0.1", HTTP_PORT, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        return Resp(method, path, r.status, r.headers, data)
    except ConnectionError as e:
        raise AssertionError(
            f"{method} {path}: the gateway dropped the connection without an "
            f"HTTP answer ({e.__class__.__name__}: {e})") from None
    finally:
        conn.close()


# --------------------------------------------------------------------------
# Server-Sent Events
# --------------------------------------------------------------------------

class SseEvent:
    def __init__(self, id_, event, data, t):
        self.raw_id = id_
        self.event = event
        self.data = data
        self.t = t          # time.monotonic() when the frame completed
        try:
            self.id = int(id_) if id_ is not None else None
        except ValueError:
            self.id = None
        try:
            self.body = json.loads(data)
        except ValueError:
            self.body = None

    def __repr__(self):
        return f"<{self.raw_id} {self.event}>"


class SseStream:
    """
    A text/event-stream response read line by line. Every read is bounded:
    a stream that neither sends nor closes in time fails the test with what
    it had received so far.
    """

    def __init__(self, path, headers, timeout=TIMEOUT):
        self.path = path
        self.events = []
        self.comments = []          # (time.monotonic(), text)
        self.eof = False
        self.conn = http.client.HTTPConnection("127.0.0.1", HTTP_PORT,
                                               timeout=timeout)
        self.conn.request("GET", path, headers=headers)
        self.resp = self.conn.getresponse()
        self.status = self.resp.status
        self.headers = self.resp.headers
        self._field_id = None
        self._field_event = None
        self._field_data = None
        self._last_id = None
        self.retry = None           # the last retry: field, as sent

    def response(self):
        """For a non-200 answer: the whole body as a Resp."""
        body = self.resp.read()
        self.close()
        return Resp("GET", self.path, self.status, self.headers, body)

    def close(self):
        try:
            self.conn.close()
        except OSError:
            pass

    def _readline(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout()
        if self.conn.sock is not None:
            self.conn.sock.settimeout(max(remaining, 0.05))
        return self.resp.readline(65536)

    def _dispatch(self):
        ev = None
        if self._field_data is not None or self._field_event is not None:
            if self._field_id is not None:
                self._last_id = self._field_id
            ev = SseEvent(self._field_id, self._field_event or "message",
                          self._field_data or "", time.monotonic())
            self.events.append(ev)
        self._field_id = self._field_event = self._field_data = None
        return ev

    def next_event(self, timeout=TIMEOUT, what="the next event"):
        """The next event, or None when the server ended the stream."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                raw = self._readline(deadline)
            except (socket.timeout, TimeoutError):
                raise AssertionError(
                    f"SSE {self.path}: no {what} within {timeout:.0f} s; "
                    f"events so far: {self.events!r}") from None
            if raw == b"":
                self.eof = True
                self._dispatch()
                return None
            line = raw.decode("utf-8").rstrip("\r\n")
            if line == "":
                ev = self._dispatch()
                if ev is not None:
                    return ev
                continue
            if line.startswith(":"):
                self.comments.append((time.monotonic(), line[1:].strip()))
                continue
            name, _, value = line.partition(":")
            if value.startswith(" "):
                value = value[1:]
            if name == "id":
                self._field_id = value
            elif name == "retry":
                self.retry = value
            elif name == "event":
                self._field_event = value
            elif name == "data":
                self._field_data = (value if self._field_data is None
                                    else self._field_data + "\n" + value)

    def read_until(self, pred, timeout=TIMEOUT, what="the awaited event"):
        """Reads until an event satisfies pred; returns it."""
        deadline = time.monotonic() + timeout
        while True:
            ev = self.next_event(max(deadline - time.monotonic(), 0.01), what)
            assert ev is not None, (
                f"SSE {self.path}: stream ended before {what}; "
                f"events: {self.events!r}")
            if pred(ev):
                return ev

    def read_to_end(self, timeout=TIMEOUT):
        """Reads until the server ends the stream; returns all events."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"SSE {self.path}: stream not closed within "
                    f"{timeout:.0f} s; events: {self.events!r}")
            ev = self.next_event(
                remaining, "further event or end of stream (the server should "
                "close the stream after the terminal event)")
            if ev is None:
                self.close()
                return self.events


def check_frames(events, job_id, first_id=1):
    """
    Checks what every job event stream must be: each frame's id, event and
    data agree; data names the job; ids run first_id, first_id+1, ... with
    no gap or duplicate; nothing follows a terminal event.
    """
    ids = [e.id for e in events]
    assert ids == list(range(first_id, first_id + len(events))), (
        f"event ids not contiguous from {first_id}: {ids}")
    for e in events:
        assert e.body is not None, f"event {e.raw_id} data is not JSON: {e.data!r}"
        b = e.body
        assert b.get("id") == e.id, f"data.id {b.get('id')!r} != SSE id {e.id}"
        assert b.get("type") == e.event, (
            f"event {e.id}: data.type {b.get('type')!r} != SSE event {e.event!r}")
        assert b.get("job_id") == job_id, (
            f"event {e.id}: data.job_id {b.get('job_id')!r} != {job_id}")
        assert isinstance(b.get("ts"), str) and b["ts"].endswith("Z"), (
            f"event {e.id}: ts {b.get('ts')!r} is not an RFC 3339 UTC time")
        assert isinstance(b.get("data"), dict), (
            f"event {e.id}: data.data is not an object: {b.get('data')!r}")
    terminal = [i for i, e in enumerate(events) if e.event in TERMINAL_EVENTS]
    if terminal:
        assert len(terminal) == 1 and terminal[0] == len(events) - 1, (
            f"terminal event not last / not unique: {events!r}")


# --------------------------------------------------------------------------
# The stack and the clients
# --------------------------------------------------------------------------

def _stack(*args, timeout=STACK_CMD_TIMEOUT):
    return subprocess.run([STACK, *args], stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=timeout)


def stack_dep(stack, name, action):
    """Stops, starts or restarts a dependency ("redis", "pg") of the
    session stack (agentgate-stack redis|pg ACTION)."""
    r = _stack(name, action, "--dir", stack.dir)
    assert r.returncode == 0, f"agentgate-stack {name} {action}: {r.stdout}"


def bin_path(name):
    """The path of one of agentgate's binaries under test (AGENTGATE_BIN,
    else the repository's build/bin)."""
    return os.path.join(os.path.abspath(os.environ.get(
        "AGENTGATE_BIN", os.path.join(REPO, "build", "bin"))), name)


def stop_process(proc, grace_s):
    """SIGTERM, then SIGKILL if proc has not exited within grace_s seconds."""
    proc.terminate()
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def own_process(argv, env, log_path):
    """Runs a service of the test's own (a second gateway, a worker with
    other settings) with env, its output appended to log_path (under the
    stack's logs/, so the sanitizer scan reads it), and stops it at the end:
    SIGTERM, then SIGKILL after 15 s. Yields the Popen."""
    log = open(log_path, "ab")
    proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        stop_process(proc, 15)
        log.close()


class OwnGateway:
    """A gateway of a test's own (see own_gateway): its port, log and
    process, and a plain HTTP client for it."""

    def __init__(self, port, log_path, proc):
        self.port = port
        self.log_path = log_path
        self.proc = proc

    def log(self):
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def request(self, method, path, body=None, headers=None, timeout=TIMEOUT):
        """Returns (status, headers, body bytes)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            return r.status, r.headers, r.read()
        finally:
            conn.close()


@contextlib.contextmanager
def own_gateway(stack, name, settings, port=None, cls=OwnGateway):
    """Runs a second gateway on the session stack's PostgreSQL and Redis
    with the stack's settings and the test's (settings, a dict of
    AGENTGATE_* values), on port (a free one when None), until it answers
    /v1/health/live; yields it as cls (OwnGateway or a subclass) and stops
    it at the end."""
    port = port or _free_port()
    env = dict(os.environ)
    env.update(_read_env_file(os.path.join(stack.dir, "agentgate.env")))
    env["AGENTGATE_LISTEN"] = f"127.0.0.1:{port}"
    env.update(settings)
    log_path = os.path.join(stack.dir, "logs", f"gateway-{name}-{port}.log")
    with own_process([bin_path("agentgate-gateway")], env, log_path) as proc:
        g = cls(port, log_path, proc)
        deadline = time.monotonic() + 20
        while True:
            assert proc.poll() is None, f"{name} gateway exited:\n" + g.log()
            try:
                if g.request("GET", "/v1/health/live", timeout=2)[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, f"{name} gateway not up:\n" + g.log()
            time.sleep(0.1)
        yield g


def wait_ready(timeout=60):
    """Waits until the gateway answers /v1/health/ready with 200 again."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if http_request("GET", "/v1/health/ready").status == 200:
            return
        time.sleep(0.1)
    raise AssertionError("gateway not ready again")


def _read_env_file(path):
    env = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#") or "=" not in line:
                continue
            k, _, v = line.partition("=")
            v = v.strip()
            if len(v) >= 2 and v[0] == v[-1] and v[0] in "'\"":
                v = v[1:-1]
            env[k.strip()] = v
    return env


def _log_tails(d, lines=80):
    out = []
    for path in sorted(glob.glob(os.path.join(d, "logs", "*.log"))):
        try:
            with open(path, "rb") as f:
                tail = f.read().decode("utf-8", "replace").splitlines()[-lines:]
        except OSError as e:
            tail = [f"(unreadable: {e})"]
        out.append(f"===== {path} (last {lines} lines) =====")
        out.extend(tail)
    return "\n".join(out) if out else f"(no logs under {d}/logs)"


class Stack:
    """A running stack: its directory, JWT secret, and worker control."""

    def __init__(self, d, secret):
        self.dir = d
        self.secret = secret
        env = _read_env_file(os.path.join(d, "agentgate.env"))
        # The services' role (agentgate_app, under row-level security) and
        # the owner the migrations run as (the stack's superuser).
        self.database_url = env.get("AGENTGATE_DATABASE_URL")
        self.owner_url = (env.get("AGENTGATE_MIGRATE_DATABASE_URL")
                          or self.database_url)

    def _psql(self, url, query, params, check=True):
        cmd = ["psql", "-X", "-q", "-A", "-t", "-F", "\x1f",
               "-v", "ON_ERROR_STOP=1", url]
        for i, p in enumerate(params, 1):
            cmd += ["-v", f"p{i}={'' if p is None else p}"]
        r = subprocess.run(cmd, input=query, capture_output=True, text=True,
                           timeout=30)
        if check:
            assert r.returncode == 0, f"psql failed: {r.stderr.strip()}\n{query}"
        return r

    def sql(self, query, *params):
        """Runs query on the stack's database with psql as the owner (who
        sees every tenant's rows, as a DBA would) and returns the rows as
        lists of strings. Parameters are passed as psql variables :'p1',
        :'p2', ... (quoted literals), so test data never needs escaping by
        hand."""
        r = self._psql(self.owner_url, query, params)
        return [line.split("\x1f") for line in r.stdout.splitlines() if line]

    def sql_app(self, query, *params, tenant=None, check=True):
        """Runs query as the services' role (row-level security applies),
        with agentgate.tenant_id set to tenant for the session when given.
        Returns the CompletedProcess when check is False (to look at a
        refusal), else the rows."""
        pre = ""
        if tenant is not None:
            pre = "SELECT set_config('agentgate.tenant_id', :'tenant', false) \\g /dev/null\n"
            params = params + (tenant,)
            pre = pre.replace(":'tenant'", f":'p{len(params)}'")
        r = self._psql(self.database_url, pre + query, params, check=check)
        if not check:
            return r
        return [line.split("\x1f") for line in r.stdout.splitlines() if line]

    def worker(self, action, n):
        r = _stack("worker", action, str(n), "--dir", self.dir)
        assert r.returncode == 0, (
            f"agentgate-stack worker {action} {n} failed ({r.returncode}):\n"
            + r.stdout)

    def status(self):
        """agentgate-stack status output, for failure messages."""
        try:
            return _stack("status", "--dir", self.dir, timeout=30).stdout
        except subprocess.TimeoutExpired:
            return "(agentgate-stack status timed out)"

    def mint(self, claims, **kw):
        return mint_jwt(self.secret, claims, **kw)

    def tenant(self, prefix="it", tenant_id=None, sub=None):
        """A client of a new tenant, or of tenant_id as user sub."""
        return Tenant(self, tenant_id or f"{prefix}-{uuid.uuid4().hex[:12]}",
                      sub)


class Tenant:
    """An API client acting as one user of one tenant."""

    def __init__(self, stack, tenant_id, sub=None):
        self.stack = stack
        self.tenant_id = tenant_id
        self.sub = sub or "user-" + tenant_id
        self.token = self.make_token()

    def claims(self, **overrides):
        now = int(time.time())
        c = {"sub": self.sub, "tenant_id": self.tenant_id, "roles": DEFAULT_ROLES,
             "scope": DEFAULT_SCOPE, "iat": now, "exp": now + 3600}
        c.update(overrides)
        return {k: v for k, v in c.items() if v is not None}

    def make_token(self, secret=None, alg="HS256", **overrides):
        return mint_jwt(self.stack.secret if secret is None else secret,
                        self.claims(**overrides), alg=alg)

    # -- plain HTTP --------------------------------------------------------

    def request(self, method, path, body=None, raw=None, headers=None,
                token=True):
        """token=True uses this tenant's token, a str that token, None none."""
        h = {"Accept": "application/json"}
        if token is True:
            h["Authorization"] = "Bearer " + self.token
        elif token:
            h["Authorization"] = "Bearer " + token
        if body is not None:
            raw = json.dumps(body).encode()
        if raw is not None:
            h["Content-Type"] = "application/json"
        h.update(headers or {})
        return http_request(method, path, body=raw, headers=h)

    def submit(self, type_, payload=None, expect=202, **fields):
        body = {"type": type_, "payload": {} if payload is None else payload}
        body.update(fields)
        r = self.request("POST", "/v1/jobs", body=body)
        job = r.expect_json(expect)
        loc = r.header("Location")
        assert loc == f"/v1/jobs/{job['id']}", (
            f"Location {loc!r} != /v1/jobs/{job['id']}")
        return job

    def get_job(self, job_id):
        return self.request("GET", f"/v1/jobs/{job_id}").expect_json(200)

    def wait_job(self, job_id, statuses=TERMINAL, timeout=TIMEOUT):
        """Polls the job until its status is in statuses; returns it."""
        deadline = time.monotonic() + timeout
        job = None
        while time.monotonic() < deadline:
            job = self.get_job(job_id)
            if job["status"] in statuses:
                return job
            time.sleep(0.05)
        raise AssertionError(
            f"job {job_id} not {'/'.join(statuses)} within {timeout:.0f} s; "
            f"last seen: {json.dumps(job)}\nstack status:\n"
            + self.stack.status())

    def wait_run(self, run_id, statuses=TERMINAL, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        run = None
        while time.monotonic() < deadline:
            run = self.request("GET", f"/v1/agent-runs/{run_id}").expect_json(200)
            if run["status"] in statuses:
                return run
            time.sleep(0.05)
        raise AssertionError(
            f"agent run {run_id} not {'/'.join(statuses)} within "
            f"{timeout:.0f} s; last seen: {json.dumps(run)}")

    def list_jobs(self, **params):
        q = urllib.parse.urlencode({k: v for k, v in params.items()
                                    if v is not None})
        return self.request("GET", "/v1/jobs" + ("?" + q if q else ""))

    # -- SSE -----------------------------------------------------------------

    def sse(self, path, after=None, last_event_id=None, token=True,
            access_token=None, headers=None):
        """Opens an event stream; the caller checks .status first."""
        q = {}
        if after is not None:
            q["after"] = str(after)
        if access_token is not None:
            q["access_token"] = access_token
        if q:
            path += ("&" if "?" in path else "?") + urllib.parse.urlencode(q)
        h = {"Accept": "text/event-stream"}
        if token is True:
            h["Authorization"] = "Bearer " + self.token
        elif token:
            h["Authorization"] = "Bearer " + token
        if last_event_id is not None:
            h["Last-Event-ID"] = str(last_event_id)
        h.update(headers or {})
        return SseStream(path, h)

    def open_events(self, job_id, **kw):
        """An event stream of the job that answered 200 text/event-stream."""
        s = self.sse(f"/v1/jobs/{job_id}/events", **kw)
        if s.status != 200:
            raise AssertionError("event stream refused: "
                                 + s.response().describe())
        ctype = (s.headers.get("Content-Type") or "").split(";")[0].strip()
        assert ctype == "text/event-stream", (
            f"events Content-Type is {ctype!r}, not text/event-stream")
        return s

    def events(self, job_id, timeout=TIMEOUT, **kw):
        """All events of a stream, read until the server closes it."""
        return self.open_events(job_id, **kw).read_to_end(timeout)


_REPORTS = []


def pytest_terminal_summary(terminalreporter):
    for text in _REPORTS:
        terminalreporter.section("agentgate stack", sep="-")
        for line in text.splitlines():
            terminalreporter.write_line(line)


_SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                    "runtime error:")


def _sanitizer_reports(d):
    """The sanitizer reports in the gateway's and workers' logs, each with
    the lines that follow it, or "" when there are none."""
    out = []
    logs = os.path.join(d, "logs")
    for name in sorted(os.listdir(logs)) if os.path.isdir(logs) else []:
        if not (name.startswith("gateway") or name.startswith("worker")):
            continue
        with open(os.path.join(logs, name), errors="replace") as f:
            lines = f.read().splitlines()
        for i, line in enumerate(lines):
            if any(m in line for m in _SANITIZER_MARKS):
                out.append(f"{name}:{i + 1}:\n" + "\n".join(lines[i:i + 30]))
    return "\n\n".join(out)


@pytest.fixture(scope="session")
def stack(request):
    bindir = os.path.abspath(os.environ.get("AGENTGATE_BIN",
                                            os.path.join(REPO, "build", "bin")))
    for name in ("agentgate-gateway", "agentgate-worker", "agentgate-migrate"):
        path = os.path.join(bindir, name)
        if not os.access(path, os.X_OK):
            pytest.fail(f"{path} is missing: build first (make) or set "
                        "AGENTGATE_BIN", pytrace=False)
    if not os.access(STACK, os.X_OK):
        pytest.fail(f"{STACK} is missing or not executable", pytrace=False)

    d = tempfile.mkdtemp(prefix="agentgate-it-")
    os.chmod(d, 0o755)      # PostgreSQL runs as postgres and needs to enter it

    def report(text):
        # Shown at the end of the run, outside pytest's output capture.
        _REPORTS.append(text)

    up = None
    try:
        up = _stack("up", "--dir", d, "--bin", bindir,
                    "--http-port", str(HTTP_PORT), "--pg-port", str(PG_PORT),
                    "--redis-port", str(REDIS_PORT), "--workers", str(WORKERS),
                    "--env", f"AGENTGATE_EVENT_RING_SIZE={RING_SIZE}",
                    "--env", f"AGENTGATE_SSE_KEEPALIVE_MS={KEEPALIVE_MS}",
                    # Leases, the reaper, reconciliation and retry backoff
                    # in seconds, not minutes (test_reliability.py).
                    "--env", "AGENTGATE_LEASE_MS=3000",
                    "--env", "AGENTGATE_HEARTBEAT_MS=500",
                    "--env", "AGENTGATE_REAPER_INTERVAL_MS=500",
                    "--env", "AGENTGATE_RECONCILE_INTERVAL_MS=1000",
                    "--env", "AGENTGATE_RETRY_BASE_MS=200",
                    "--env", "AGENTGATE_RETRY_MAX_MS=1000",
                    "--env", "AGENTGATE_SHUTDOWN_GRACE_MS=2000",
                    # Provider retries, circuits and timeouts in
                    # milliseconds, not seconds (test_llm_providers.py).
                    "--env", "AGENTGATE_LLM_RETRY_BASE_MS=50",
                    "--env", "AGENTGATE_LLM_RETRY_MAX_MS=500",
                    "--env", "AGENTGATE_LLM_CIRCUIT_FAILURES=3",
                    "--env", "AGENTGATE_LLM_CIRCUIT_OPEN_MS=30000",
                    "--env", "AGENTGATE_LLM_FIRST_BYTE_TIMEOUT_MS=2000",
                    "--env", f"AGENTGATE_LLM_API_KEYS=it-keyed={IT_API_KEY}",
                    timeout=STACK_UP_TIMEOUT)
    except subprocess.TimeoutExpired as e:
        up_failure = f"agentgate-stack up timed out after {STACK_UP_TIMEOUT} s"
        up_output = e.output or ""
    else:
        up_failure = (None if up.returncode == 0 else
                      f"agentgate-stack up exited {up.returncode}")
        up_output = up.stdout
    secret = None
    if up_failure is None:
        env_path = os.path.join(d, "agentgate.env")
        try:
            secret = _read_env_file(env_path).get("AGENTGATE_JWT_SECRET")
        except OSError as e:
            up_failure = f"cannot read {env_path}: {e}"
        if up_failure is None and not secret:
            up_failure = f"{env_path} has no AGENTGATE_JWT_SECRET"

    if up_failure is not None:
        report(f"{up_failure}\n{up_output}\n{_log_tails(d)}")
        _stack("down", "--dir", d)
        pytest.fail(f"{up_failure} (stack dir {d}); output:\n{up_output}",
                    pytrace=False)

    s = Stack(d, secret)
    try:
        yield s
    finally:
        failed = request.session.testsfailed > 0
        if failed:
            report(f"integration tests failed; stack dir {d}\n{_log_tails(d)}")
        try:
            down = _stack("down", "--dir", d)
            if down.returncode != 0:
                report(f"agentgate-stack down exited {down.returncode}:\n"
                       + down.stdout)
        except subprocess.TimeoutExpired:
            report("agentgate-stack down timed out")
        # Under ASan/UBSan a server's report (a leak is only reported when
        # it exits, at `down`) must fail the run, not just sit in its log.
        findings = _sanitizer_reports(d)
        if findings:
            report(f"sanitizer reports in the service logs; stack dir {d}\n{findings}")
            pytest.fail("sanitizer reports in the service logs:\n" + findings,
                        pytrace=False)
        if not failed and os.environ.get("AGENTGATE_TEST_KEEP_DIR") != "1":
            shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def tenant(stack):
    """A fresh tenant (and user) for this test alone."""
    return stack.tenant()


@pytest.fixture
def other_tenant(stack):
    """A second fresh tenant, for isolation checks."""
    return stack.tenant("it-b")


# --------------------------------------------------------------------------
# The OpenAI stand-in (tests/fakes/openai_standin.py)
# --------------------------------------------------------------------------

STANDIN = os.path.join(REPO, "tests", "fakes", "openai_standin.py")


class LlmStandin:
    """A running stand-in OpenAI server. Each test scripts its own
    (prefix, model) pairs, named with unique_name(), so tests never see
    each other's requests."""

    def __init__(self, proc, port):
        self.proc = proc
        self.port = port

    @staticmethod
    def unique_name(kind="m"):
        """A fresh provider or model name ([A-Za-z0-9._-], under 32)."""
        return f"{kind}-{uuid.uuid4().hex[:16]}"

    def base_url(self, prefix):
        """Where a provider at prefix lives: http://127.0.0.1:PORT/p1/v1."""
        return f"http://127.0.0.1:{self.port}{prefix}/v1"

    def _call(self, method, path, body=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=TIMEOUT)
        try:
            data = None if body is None else json.dumps(body).encode()
            c.request(method, path, body=data,
                      headers={"Content-Type": "application/json"})
            r = c.getresponse()
            raw = r.read()
            assert r.status == 200, f"stand-in {method} {path}: {r.status} {raw!r}"
            return json.loads(raw)
        finally:
            c.close()

    def script(self, prefix, model, responses):
        """Queues responses (dicts, see the stand-in's doc) for requests
        to (prefix, model), one per request."""
        return self._call("POST", "/_standin/script",
                          {"prefix": prefix, "model": model,
                           "responses": responses})

    def requests(self, prefix=None, model=None):
        """The requests (prefix, model) received, oldest first."""
        q = {k: v for k, v in (("prefix", prefix), ("model", model))
             if v is not None}
        return self._call("GET", "/_standin/requests"
                          + ("?" + urllib.parse.urlencode(q) if q else ""))

    def register_model(self, stack, tenant_id, model, prefix, provider=None,
                       is_default=False):
        """Adds a model_defaults row giving model to a provider at prefix,
        for tenant_id. Returns the provider's name (unique when not given)."""
        provider = provider or self.unique_name("p")
        stack.sql("INSERT INTO model_defaults (scope, tenant_id, provider, model, "
                  "base_url, is_default) VALUES ('tenant', :'p1', :'p2', :'p3', "
                  ":'p4', :'p5')",
                  tenant_id, provider, model, self.base_url(prefix),
                  "true" if is_default else "false")
        return provider


@pytest.fixture(scope="session")
def llm_standin():
    """One stand-in OpenAI server for the session, on a free port."""
    proc = subprocess.Popen([sys.executable, STANDIN, "--port", "0"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        line = proc.stdout.readline()
        if not line.startswith("listening on "):
            proc.kill()
            pytest.fail(f"the OpenAI stand-in did not start: {line!r}"
                        f"{proc.stdout.read()}", pytrace=False)
        yield LlmStandin(proc, int(line.split()[2]))
    finally:
        stop_process(proc, 5)
