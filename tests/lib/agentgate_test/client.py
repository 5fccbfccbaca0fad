"""The HTTP and SSE client of the session stack's gateway: complete
responses with their checks (Resp, RFC 9457 problems), event streams read
frame by frame with bounded reads (SseStream), the frame checks every job
stream must pass (check_frames), and Tenant, an API client acting as one
user of one tenant."""

import http.client
import json
import socket
import time
import urllib.parse

from agentgate_test.ports import HTTP_PORT
from agentgate_test.tokens import DEFAULT_ROLES, DEFAULT_SCOPE, mint_jwt
from agentgate_test.waiting import TIMEOUT

TERMINAL = ("succeeded", "failed", "cancelled")
TERMINAL_EVENTS = ("job.succeeded", "job.failed", "job.cancelled")


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
# A tenant's client
# --------------------------------------------------------------------------

class Tenant:
    """An API client acting as one user of one tenant, with tokens signed
    by stack's secret (a Stack, see stack.py, whose status() goes into a
    failed wait's message)."""

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
