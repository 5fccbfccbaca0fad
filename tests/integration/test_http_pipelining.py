"""
HTTP/1.1 on one connection: requests written in one send (pipelined,
RFC 9112 9.3.2) are all answered, in order, whatever each answer waits for
(nothing, PostgreSQL, Redis, an error, an event stream last), also
to a client that ended its side after sending them; a blank line
after a body does not stall the next request; a client that sends far
more than it reads loses nothing; a HEAD answer has no body to throw the
next one off; and every status line carries its reason phrase.

Raw sockets throughout: http.client never pipelines. Answers are matched
to requests by the X-Request-Id each request sends and its answer echoes.
"""

import json
import socket
import threading
import time
import uuid

import pytest

from agentgate_test.ports import HTTP_PORT
from agentgate_test.waiting import TIMEOUT


@pytest.fixture(autouse=True)
def session_stack(stack):
    """Every test here talks to the session stack's gateway."""
    return stack


# --------------------------------------------------------------------------
# A raw connection that reads whole answers
# --------------------------------------------------------------------------

class Answer:
    def __init__(self, status_line, headers, body):
        self.status_line = status_line
        self.status = int(status_line.split(" ")[1])
        self.headers = headers
        self.body = body

    def header(self, name):
        return self.headers.get(name.lower())

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<{self.status_line!r} {self.headers.get('x-request-id')} {self.body[:120]!r}>"


class Wire:
    """One client connection to the gateway, read answer by answer."""

    def __init__(self, port=HTTP_PORT, timeout=TIMEOUT):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""
        self.eof = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.sock.close()

    def send(self, data):
        self.sock.sendall(data)

    def _more(self, deadline):
        self.sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            raise AssertionError(f"no more bytes within the time; buffered: {self.buf[:300]!r}")
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.eof = True
        self.buf += chunk
        return bool(chunk)

    def _take_until(self, sep, deadline):
        while sep not in self.buf:
            assert self._more(deadline), f"closed before {sep!r}; buffered: {self.buf[:300]!r}"
        part, _, self.buf = self.buf.partition(sep)
        return part

    def _take(self, n, deadline):
        while len(self.buf) < n:
            assert self._more(deadline), f"closed {n - len(self.buf)} bytes short"
        part, self.buf = self.buf[:n], self.buf[n:]
        return part

    def answer(self, head_only=False, timeout=TIMEOUT):
        """The next whole answer; head_only for the answer to a HEAD."""
        deadline = time.monotonic() + timeout
        lines = self._take_until(b"\r\n\r\n", deadline).decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            key = k.strip().lower()
            assert not (key == "content-length" and key in headers), lines
            headers[key] = v.strip()
        a = Answer(lines[0], headers, b"")
        if head_only or a.status in (204, 304):
            return a
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int(self._take_until(b"\r\n", deadline).split(b";")[0], 16)
                if size == 0:
                    self._take_until(b"\r\n", deadline)
                    break
                body += self._take(size, deadline)
                assert self._take(2, deadline) == b"\r\n"
            a.body = body
        elif "content-length" in headers:
            a.body = self._take(int(headers["content-length"]), deadline)
        else:
            while self._more(deadline):
                pass
            a.body, self.buf = self.buf, b""
        return a

    def answers(self, n, timeout=TIMEOUT):
        return [self.answer(timeout=timeout) for _ in range(n)]

    def closed_within(self, seconds):
        """True when the gateway closes the connection within seconds
        (with nothing more sent)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                if not self._more(deadline):
                    return not self.buf
            except AssertionError:
                return False
        return False


def req(method, path, rid, token=None, headers=None, body=None):
    """One request's bytes, with X-Request-Id rid."""
    h = {"Host": "agentgate", "X-Request-Id": rid}
    if token:
        h["Authorization"] = "Bearer " + token
    if body is not None:
        body = body if isinstance(body, bytes) else json.dumps(body).encode()
        h["Content-Type"] = "application/json"
        h["Content-Length"] = str(len(body))
    h.update(headers or {})
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h.items())
    return head.encode() + b"\r\n" + (body or b"")


def rid(tag):
    return f"{tag}-{uuid.uuid4().hex[:10]}"


def assert_in_order(answers, rids, statuses):
    got = [(a.header("X-Request-Id"), a.status) for a in answers]
    assert got == list(zip(rids, statuses)), got


# --------------------------------------------------------------------------
# Pipelines of every kind of answer
# --------------------------------------------------------------------------

def test_immediate_answers_are_all_given_in_order():
    """Health and metrics answer at once; before the fix only the first
    came back and the connection then hung."""
    rids = [rid(t) for t in ("live", "metrics", "live2", "metrics2")]
    paths = ["/v1/health/live", "/metrics", "/v1/health/live", "/metrics"]
    with Wire() as w:
        w.send(b"".join(req("GET", p, r) for p, r in zip(paths, rids)))
        got = w.answers(4)
        assert_in_order(got, rids, [200] * 4)
        assert got[0].json() == {"status": "ok"}
        assert got[1].body.startswith(b"#") or b"agentgate_" in got[1].body, got[1]
        # The connection is still good for more.
        w.send(req("GET", "/v1/health/live", "after"))
        assert w.answer().header("X-Request-Id") == "after"


def test_error_answers_are_all_given_in_order(tenant):
    rids = [rid(t) for t in ("401", "404", "405", "403", "live")]
    viewer = tenant.make_token(roles=["viewer"])
    with Wire() as w:
        w.send(req("GET", "/v1/jobs", rids[0]) +
               req("GET", "/v1/no-such-thing", rids[1]) +
               req("DELETE", "/v1/health/live", rids[2]) +
               req("POST", "/v1/jobs", rids[3], token=viewer, body={"type": "test", "payload": {}}) +
               req("GET", "/v1/health/live", rids[4]))
        got = w.answers(5)
    assert_in_order(got, rids, [401, 404, 405, 403, 200])
    for a in got[:4]:
        assert a.header("Content-Type") == "application/problem+json", a
        assert a.json()["request_id"] == a.header("X-Request-Id"), a


def test_database_answers_interleaved_with_immediate_ones(tenant):
    """A request that waits for PostgreSQL, then two answered at once, then
    another that waits: before the fix the third was never answered."""
    a = tenant.submit("test", {"outcome": "succeed"})["id"]
    b = tenant.submit("test", {"outcome": "succeed"})["id"]
    rids = [rid(t) for t in ("job-a", "live", "metrics", "job-b", "job-a2", "list")]
    with Wire() as w:
        w.send(req("GET", f"/v1/jobs/{a}", rids[0], tenant.token) +
               req("GET", "/v1/health/live", rids[1]) +
               req("GET", "/metrics", rids[2]) +
               req("GET", f"/v1/jobs/{b}", rids[3], tenant.token) +
               req("GET", f"/v1/jobs/{a}", rids[4], tenant.token) +
               req("GET", "/v1/jobs?limit=2", rids[5], tenant.token))
        got = w.answers(6)
    assert_in_order(got, rids, [200] * 6)
    assert [got[0].json()["id"], got[3].json()["id"], got[4].json()["id"]] == [a, b, a]
    assert {j["id"] for j in got[5].json()["items"]} == {a, b}


def set_limits(stack, tenant_id, settings):
    """Stores a tenant's settings before its first request (as
    test_rate_limits.py does)."""
    stack.sql("BEGIN;\n"
              "SELECT set_config('agentgate.tenant_id', :'p1', true);\n"
              "INSERT INTO tenants (id, name, settings) VALUES (:'p1', :'p1', :'p2'::jsonb)\n"
              "  ON CONFLICT (id) DO UPDATE SET settings = EXCLUDED.settings;\n"
              "COMMIT;\n",
              tenant_id, json.dumps(settings))


def test_redis_answers_idempotent_posts_pipelined(tenant):
    """Idempotency-Key claims its key in Redis: the first POST runs, the
    same one again replays its answer, in order, then health at once."""
    key = uuid.uuid4().hex
    body = {"type": "test", "payload": {"outcome": "succeed"}}
    rids = [rid(t) for t in ("first", "again", "live", "other")]
    idem = {"Idempotency-Key": key}
    with Wire() as w:
        w.send(req("POST", "/v1/jobs", rids[0], tenant.token, idem, body) +
               req("POST", "/v1/jobs", rids[1], tenant.token, idem, body) +
               req("GET", "/v1/health/live", rids[2]) +
               req("POST", "/v1/jobs", rids[3], tenant.token, body=body))
        got = w.answers(4)
    assert_in_order(got, rids, [202, 202, 200, 202])
    assert got[0].json()["id"] == got[1].json()["id"]
    assert got[1].header("Idempotent-Replayed") == "true", got[1]
    assert got[3].json()["id"] != got[0].json()["id"]


def test_redis_answers_rate_limited_posts_pipelined(stack):
    t = stack.tenant("it-pipe-rl")
    set_limits(stack, t.tenant_id, {"rate_limits": {"principal": {
        "jobs.create": {"capacity": 2, "period_ms": 600000}}}})
    body = {"type": "test", "payload": {"outcome": "succeed"}}
    rids = [rid(f"post{i}") for i in range(3)] + [rid("metrics"), rid("list")]
    with Wire() as w:
        w.send(b"".join(req("POST", "/v1/jobs", r, t.token, body=body) for r in rids[:3]) +
               req("GET", "/metrics", rids[3]) +
               req("GET", "/v1/jobs", rids[4], t.token))
        got = w.answers(5)
    assert_in_order(got, rids, [202, 202, 429, 200, 200])
    assert got[2].json()["type"] == "urn:agentgate:problem:rate-limited", got[2]
    assert got[2].header("Retry-After"), got[2]


def test_event_stream_last_in_the_pipeline(tenant):
    """Health, a job, then the job's event stream: the stream starts after
    the two answers and carries every event; the connection closes with it."""
    job = tenant.submit("demo", {"events": 3, "duration_ms": 0})["id"]
    tenant.wait_job(job, ("succeeded",))
    rids = [rid(t) for t in ("live", "job", "events")]
    with Wire() as w:
        w.send(req("GET", "/v1/health/live", rids[0]) +
               req("GET", f"/v1/jobs/{job}", rids[1], tenant.token) +
               req("GET", f"/v1/jobs/{job}/events", rids[2], tenant.token,
                   {"Accept": "text/event-stream"}))
        got = w.answers(3)
        assert w.closed_within(5), "the connection stays open after the stream"
    assert_in_order(got, rids, [200, 200, 200])
    assert got[1].json()["status"] == "succeeded"
    assert got[2].header("Content-Type").startswith("text/event-stream"), got[2]
    ids = [int(line[4:]) for line in got[2].body.decode().splitlines() if line.startswith("id: ")]
    assert ids == list(range(1, len(ids) + 1)) and len(ids) >= 3, got[2].body
    assert b"job.succeeded" in got[2].body


def test_event_stream_of_a_running_job_last_in_the_pipeline(tenant):
    """A stream that waits for the job's events, behind answers given at
    once, as the pipeline's last request."""
    job = tenant.submit("test", {"outcome": "succeed", "sleep_ms": 800})["id"]
    rids = [rid(t) for t in ("metrics", "events")]
    with Wire() as w:
        w.send(req("GET", "/metrics", rids[0]) +
               req("GET", f"/v1/jobs/{job}/events", rids[1], tenant.token))
        got = w.answers(2)
    assert_in_order(got, rids, [200, 200])
    assert b"job.succeeded" in got[1].body, got[1].body


def test_a_client_that_ends_its_side_still_gets_every_answer(tenant):
    """The connection is read while a request waits for PostgreSQL, so the
    client's end (it shut down writing after its requests) can arrive
    before the answers: both are still given, in order, and then the
    connection closes."""
    body = {"type": "test", "payload": {"outcome": "succeed"}}
    rids = [rid("one"), rid("two")]
    with Wire() as w:
        w.send(req("POST", "/v1/jobs", rids[0], tenant.token, body=body) +
               req("POST", "/v1/jobs", rids[1], tenant.token, body=body))
        w.sock.shutdown(socket.SHUT_WR)
        got = w.answers(2)
        w._more(time.monotonic() + TIMEOUT)
        assert w.eof and w.buf == b"", w.buf[:200]
    assert_in_order(got, rids, [202, 202])


def test_blank_line_after_a_body_does_not_stall_the_next_request(tenant):
    """A POST whose body is followed by CR LF (some clients add one), then
    a request 0.3-0.5 s later on the same connection: libevhtp stopped
    after the CR and the later request waited for ever."""
    body = json.dumps({"type": "test", "payload": {"outcome": "succeed"}}).encode()
    with Wire() as w:
        w.send(req("POST", "/v1/jobs", "post", tenant.token, body=body) + b"\r\n")
        assert w.answer().status == 202
        for i, pause in enumerate((0.3, 0.5)):
            time.sleep(pause)
            w.send(req("GET", "/v1/health/live", f"later{i}"))
            a = w.answer(timeout=5)
            assert (a.status, a.header("X-Request-Id")) == (200, f"later{i}"), a
        # Blank lines between pipelined requests are ignored too.
        w.send(req("GET", "/metrics", "m1") + b"\r\n\r\n" + req("GET", "/v1/health/live", "l1"))
        assert [a.header("X-Request-Id") for a in w.answers(2, timeout=5)] == ["m1", "l1"]


def test_a_client_that_sends_far_more_than_it_reads_loses_nothing():
    """2000 requests (more than the gateway holds before it stops
    reading) written before reading any answer: every one is answered,
    in order."""
    n = 2000
    data = b"".join(req("GET", "/v1/health/live" if i % 2 else "/v1/no-such",
                        f"r{i}") for i in range(n))
    with Wire() as w:
        sender = threading.Thread(target=w.send, args=(data,))
        sender.start()
        time.sleep(0.5)       # let the gateway fill its buffers and stop reading
        got = w.answers(n, timeout=30)
        sender.join(10)
    assert [a.header("X-Request-Id") for a in got] == [f"r{i}" for i in range(n)]
    assert [a.status for a in got] == [404 if i % 2 == 0 else 200 for i in range(n)]


def test_head_answer_has_no_body_and_the_next_answer_follows(tenant):
    """A HEAD answer tells the length of what a GET would get but sends
    no body: one that did would be read as the start of the next answer."""
    job = tenant.submit("demo", {"events": 1, "duration_ms": 0})["id"]
    last = tenant.wait_job(job, ("succeeded",))["last_event_id"]
    events = f"/v1/jobs/{job}/events"
    with Wire() as w:
        w.send(req("HEAD", "/v1/health/live", "head") + req("GET", "/v1/health/live", "get"))
        head = w.answer(head_only=True)
        get = w.answer()
        assert (head.status, head.header("X-Request-Id")) == (200, "head")
        assert head.header("Content-Length") == get.header("Content-Length") == str(len(get.body))
        assert (get.status, get.header("X-Request-Id"), get.json()) == (200, "get", {"status": "ok"})
        # A finished job's stream with nothing left to send is 204, which
        # has no body whatever the method, and the connection goes on.
        resumed = {"Last-Event-ID": str(last)}
        w.send(req("HEAD", events, "head-empty", tenant.token, resumed) +
               req("GET", events, "get-empty", tenant.token, resumed) +
               req("GET", "/v1/health/live", "get2"))
        head = w.answer(head_only=True)
        empty = w.answer()
        get = w.answer()
        assert [(a.status, a.header("X-Request-Id")) for a in (head, empty, get)] == [
            (204, "head-empty"), (204, "get-empty"), (200, "get2")], (head, empty, get)
        assert get.json() == {"status": "ok"}, get
        for a in (head, empty):
            assert a.header("Content-Length") is None, a
            assert a.header("Transfer-Encoding") is None, a
    with Wire() as w:
        # A stream with events to send: a HEAD gets its head, and then the
        # connection closes as after any stream, without a byte of body.
        w.send(req("HEAD", events, "head-stream", tenant.token))
        head = w.answer(head_only=True)
        assert (head.status, head.header("X-Request-Id")) == (200, "head-stream"), head
        assert w.closed_within(5) and w.buf == b"", w.buf[:200]


# --------------------------------------------------------------------------
# Status lines
# --------------------------------------------------------------------------

def test_every_status_line_carries_its_reason_phrase(stack, tenant):
    """Each status the gateway sends, as the status line says it."""
    t = stack.tenant("it-status")
    set_limits(stack, t.tenant_id, {"rate_limits": {"principal": {
        "jobs.create": {"capacity": 1, "period_ms": 600000}}}})
    done = tenant.submit("demo", {"events": 0, "duration_ms": 0})["id"]
    tenant.wait_job(done, ("succeeded",))
    session = tenant.request("POST", "/v1/sessions", body={}).expect_json(201)["id"]
    viewer = tenant.make_token(roles=["viewer"])
    job = {"type": "test", "payload": {"outcome": "succeed"}}
    cases = [
        ("HTTP/1.1 200 OK", req("GET", "/v1/health/live", "s200")),
        ("HTTP/1.1 201 Created", req("POST", "/v1/sessions", "s201", tenant.token, body={})),
        ("HTTP/1.1 202 Accepted", req("POST", "/v1/jobs", "s202", t.token, body=job)),
        ("HTTP/1.1 204 No Content", req("DELETE", f"/v1/sessions/{session}", "s204", tenant.token)),
        ("HTTP/1.1 400 Bad Request", req("GET", "/v1/jobs?limit=0", "s400", tenant.token)),
        ("HTTP/1.1 401 Unauthorized", req("GET", "/v1/jobs", "s401")),
        ("HTTP/1.1 403 Forbidden", req("POST", "/v1/jobs", "s403", viewer, body=job)),
        ("HTTP/1.1 404 Not Found", req("GET", "/v1/no-such-thing", "s404")),
        ("HTTP/1.1 405 Method Not Allowed", req("DELETE", "/v1/health/live", "s405")),
        ("HTTP/1.1 409 Conflict", req("DELETE", f"/v1/jobs/{done}", "s409", tenant.token)),
        ("HTTP/1.1 413 Content Too Large",
         req("POST", "/v1/jobs", "s413", tenant.token, body=b"{" + b" " * (2 << 20) + b"}")),
        ("HTTP/1.1 415 Unsupported Media Type",
         req("POST", "/v1/jobs", "s415", tenant.token, {"Content-Type": "text/plain"}, body=job)),
        ("HTTP/1.1 422 Unprocessable Content",
         req("POST", "/v1/jobs", "s422", tenant.token, body={"type": "no.such.type"})),
        ("HTTP/1.1 429 Too Many Requests", req("POST", "/v1/jobs", "s429", t.token, body=job)),
        ("HTTP/1.0 200 OK", b"GET /v1/health/live HTTP/1.0\r\nX-Request-Id: s10\r\n\r\n"),
    ]
    for want, data in cases:
        with Wire() as w:
            w.send(data)
            a = w.answer()
        assert a.status_line == want, (want, a)
    # Refused before parsing: the guard's own status lines.
    for want, data in [
        ("HTTP/1.1 400 Bad Request", b"GET /v1/health/live HTTP/2.0\r\n\r\n"),
        ("HTTP/1.1 414 URI Too Long", b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n"),
        ("HTTP/1.1 431 Request Header Fields Too Large",
         b"GET / HTTP/1.1\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n"),
    ]:
        with Wire() as w:
            w.send(data)
            a = w.answer()
        assert a.status_line == want, (want, a)
        assert a.header("Connection") == "close", a
