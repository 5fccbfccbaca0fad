"""
Event streams on a socket of their own, and their memory per connection:
the gateway hands a started stream's socket from libevhtp to the stream
itself (gateway/core/http.c, http_stream_*). What that must keep: a subscriber
too slow to keep up is cut and resumes with Last-Event-ID with no gap; a
client that leaves is seen at once (its stream and slot go); an HTTP/1.0
client gets an unchunked stream ended by the close; shutdown ends streams
with a retry: hint and the last chunk; and a held stream costs the gateway
little heap: a few KB, not the ~11 KB libevhtp's parser and tables keep. The
heap is read from the gateway's own count in /metrics, not from its
resident pages, which move with what freed memory the allocator keeps.

Run on a second gateway started here (its own settings), on the session
stack's PostgreSQL, Redis and workers.
"""

import re
import resource
import signal
import socket
import time

import pytest

from agentgate_test.services import OwnGateway, own_gateway
from agentgate_test.waiting import TIMEOUT

MAX_BUFFER = 4096          # AGENTGATE_SSE_MAX_BUFFER_BYTES (its minimum)
KEEPALIVE_MS = 300


class StreamGateway(OwnGateway):
    def get(self, path, token=None):
        h = {"Authorization": "Bearer " + token} if token else {}
        status, _, body = self.request("GET", path, headers=h)
        return status, body

    def sanitized(self):
        """True when the gateway runs under AddressSanitizer, whose redzones
        and quarantine make memory figures meaningless."""
        with open(f"/proc/{self.proc.pid}/maps") as f:
            return "libasan" in f.read()

    def heap_in_use(self):
        """The gateway's own count of heap bytes allocated and not freed
        (/metrics). Unlike the process's resident pages it does not move
        with what freed memory the allocator keeps, so it is the cost of
        what is held."""
        status, body = self.get("/metrics")
        assert status == 200, body
        m = re.search(rb"^agentgate_heap_in_use_bytes (\d+)$", body, re.M)
        assert m, body
        return int(m.group(1))


def stream_gateway(stack):
    return own_gateway(stack, "sse-streams", {
        "AGENTGATE_GATEWAY_THREADS": "2",
        "AGENTGATE_SSE_KEEPALIVE_MS": str(KEEPALIVE_MS),
        "AGENTGATE_SSE_MAX_BUFFER_BYTES": str(MAX_BUFFER),
        "AGENTGATE_SSE_MAX_PER_PRINCIPAL": "1000",
    }, cls=StreamGateway)


@pytest.fixture(scope="module")
def gw(stack):
    with stream_gateway(stack) as g:
        yield g


def open_raw(port, path, token, proto="HTTP/1.1", rcvbuf=None, extra=""):
    """A stream request on a plain socket (optionally with a small receive
    buffer, so that the gateway's queue fills when nothing is read)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(TIMEOUT)
    s.connect(("127.0.0.1", port))
    s.sendall(f"GET {path} {proto}\r\nHost: x\r\nAccept: text/event-stream\r\n"
              f"Authorization: Bearer {token}\r\n{extra}\r\n".encode())
    return s


def read_all(s, timeout=TIMEOUT):
    """Everything until the server closes (fails the test past timeout)."""
    data = b""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        assert left > 0, f"not closed within {timeout} s; got {data[-300:]!r}"
        s.settimeout(left)
        chunk = s.recv(65536)
        if not chunk:
            return data
        data += chunk


def split_head(data):
    head, sep, body = data.partition(b"\r\n\r\n")
    assert sep, f"no whole response head in {data[:300]!r}"
    lines = head.decode("iso-8859-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return lines[0], headers, body


def unchunk(body):
    """The chunked body decoded; also whether the last chunk was there."""
    out = b""
    while body:
        size_line, sep, rest = body.partition(b"\r\n")
        if not sep:
            return out, False
        n = int(size_line, 16)
        if n == 0:
            return out, True
        if len(rest) < n + 2:
            return out + rest[:n], False
        out += rest[:n]
        body = rest[n + 2:]
    return out, False


def ids_of(text):
    return [int(m) for m in re.findall(r"^id: (\d+)$", text, re.M)]


def events_of(text):
    return re.findall(r"^event: (\S+)$", text, re.M)


def test_slow_subscriber_is_cut_and_resumes_without_a_gap(gw, tenant):
    # A finished job's 30,000 events (~200 bytes each, 6 MB) are replayed
    # from PostgreSQL 500 at a time, far faster than a client that reads
    # nothing takes them: past the socket buffers (the kernel lets a
    # loopback socket hold ~4 MB) and the 4 KB queue behind them.
    job = tenant.submit("bench.ticker", {"rate": 10000, "duration_s": 3})["id"]
    tenant.wait_job(job, timeout=60)
    path = f"/v1/jobs/{job}/events"
    s = open_raw(gw.port, path, tenant.token, rcvbuf=4096)
    try:
        time.sleep(1.0)
        data = read_all(s)        # what was delivered before the cut
    finally:
        s.close()
    status, headers, body = split_head(data)
    assert status == "HTTP/1.1 200 OK", status
    assert headers.get("transfer-encoding") == "chunked", headers
    text, ended = unchunk(body)
    text = text.decode()
    assert not ended, "the slow stream ended normally instead of being cut"
    assert text.startswith("retry: 1000\n\n"), text[:100]
    # The cut may fall inside a frame: only whole frames count (a frame cut
    # after "id: 1" of "id: 13924" must not read as id 1).
    text = text[:text.rfind("\n\n") + 2]
    got = ids_of(text)
    bad = next((i for i, v in enumerate(got) if v != i + 1), None)
    assert got and bad is None, f"ids out of order at {bad}: {got[max(0, (bad or 0) - 2):(bad or 0) + 3]}"
    assert "job.succeeded" not in events_of(text), "a cut stream reached the end"
    assert "bytes unsent" in gw.log(), "no slow-subscriber line in the log"

    # The client resumes from its last id and gets the rest, in order.
    s = open_raw(gw.port, path, tenant.token, extra=f"Last-Event-ID: {got[-1]}\r\n")
    try:
        status, _, body = split_head(read_all(s))
    finally:
        s.close()
    rest, ended = unchunk(body)
    rest = rest.decode()
    assert ended, "the resumed stream did not end with the last chunk"
    more = ids_of(rest)
    assert more and more == list(range(got[-1] + 1, got[-1] + 1 + len(more))), more[:20]
    assert events_of(rest)[-1] == "job.succeeded", events_of(rest)[-3:]


def test_finished_stream_closes_the_connection(gw, tenant):
    job = tenant.submit("test", {"outcome": "succeed"})["id"]
    tenant.wait_job(job)
    s = open_raw(gw.port, f"/v1/jobs/{job}/events?after=1", tenant.token)
    try:
        data = read_all(s)
    finally:
        s.close()
    status, headers, body = split_head(data)
    assert status == "HTTP/1.1 200 OK"
    assert headers["content-type"].startswith("text/event-stream")
    assert headers.get("x-request-id")
    assert headers.get("x-content-type-options") == "nosniff"
    text, ended = unchunk(body)
    assert ended, body[-100:]
    assert events_of(text.decode())[-1] == "job.succeeded"


def test_http10_stream_is_unchunked_and_ended_by_the_close(gw, tenant):
    job = tenant.submit("demo", {"events": 3, "duration_ms": 300})["id"]
    s = open_raw(gw.port, f"/v1/jobs/{job}/events", tenant.token, proto="HTTP/1.0")
    try:
        data = read_all(s)
    finally:
        s.close()
    status, headers, body = split_head(data)
    assert status == "HTTP/1.0 200 OK", status
    assert "transfer-encoding" not in headers, headers
    text = body.decode()
    got = ids_of(text)
    assert got == list(range(1, len(got) + 1)) and len(got) >= 3, got
    assert events_of(text)[-1] == "job.succeeded", text[-300:]


def streams_open(g):
    status, body = g.get("/metrics")
    assert status == 200
    m = re.search(rb"^agentgate_sse_streams_open (\d+)$", body, re.M)
    assert m, body[:300]
    return int(m.group(1))


def wait_streams_open(g, want, why, timeout=5):
    deadline = time.monotonic() + timeout
    while (n := streams_open(g)) != want:
        assert time.monotonic() < deadline, f"{why}: {n}, not {want}"
        time.sleep(0.05)


def test_client_that_leaves_is_seen_at_once(gw, tenant):
    job = tenant.submit("test", {"outcome": "succeed", "sleep_ms": 60000})["id"]
    try:
        wait_streams_open(gw, 0, "streams of earlier tests still open")
        base = 0
        socks = [open_raw(gw.port, f"/v1/jobs/{job}/events", tenant.token) for _ in range(20)]
        for s in socks:       # each has its head and hello
            s.settimeout(TIMEOUT)
            assert s.recv(4096).startswith(b"HTTP/1.1 200")
        # The head goes out a moment before the stream is counted.
        wait_streams_open(gw, base + 20, "open streams not counted")
        for s in socks:
            s.close()
        wait_streams_open(gw, base, "closed streams still counted as open")
    finally:
        tenant.request("DELETE", f"/v1/jobs/{job}")


def open_streams(g, path, token, n):
    socks = []
    for _ in range(n):
        socks.append(open_raw(g.port, path, token))
    for s in socks:           # each has its head and hello
        s.settimeout(TIMEOUT)
        assert s.recv(4096).startswith(b"HTTP/1.1 200")
    return socks


def settled_heap(g, timeout=5):
    """The gateway's heap once the streams' catch-up reads are done: two
    readings 0.2 s apart within 1 %."""
    last = g.heap_in_use()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = g.heap_in_use()
        if abs(now - last) <= last / 100:
            return now
        last = now
    return last


def test_held_streams_cost_a_few_kb(gw, tenant):
    if gw.sanitized():
        pytest.skip("memory per stream is not measured under AddressSanitizer")
    n = 300
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n + 100:
        if hard != resource.RLIM_INFINITY and hard < n + 100:
            pytest.skip(f"open-files limit {hard} is below {n + 100}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (n + 100, hard))
    job = tenant.submit("test", {"outcome": "succeed", "sleep_ms": 60000})["id"]
    path = f"/v1/jobs/{job}/events"
    socks = []
    try:
        # A first round of streams, closed again, so that what a loop
        # thread allocates once for good (its first connections' and
        # streams' buffers the allocator keeps) is not counted per stream.
        for s in open_streams(gw, path, tenant.token, n):
            s.close()
        before = settled_heap(gw)
        socks = open_streams(gw, path, tenant.token, n)
        per_conn = (settled_heap(gw) - before) / n / 1024
        # About 0.5 KB here (1.6 KB at 1,000 streams in the benchmark),
        # against ~11 KB for the libevhtp connection, request and
        # bufferevent a stream lets go of when it takes its socket.
        assert per_conn < 4.0, f"{per_conn:.2f} KB of gateway heap per held stream"
    finally:
        for s in socks:
            s.close()
        tenant.request("DELETE", f"/v1/jobs/{job}")


def test_shutdown_ends_streams_with_a_retry_hint(stack, tenant):
    job = tenant.submit("test", {"outcome": "succeed", "sleep_ms": 60000})["id"]
    try:
        with stream_gateway(stack) as g:
            s = open_raw(g.port, f"/v1/jobs/{job}/events", tenant.token)
            s.settimeout(TIMEOUT)
            first = s.recv(4096)
            assert first.startswith(b"HTTP/1.1 200")
            g.proc.send_signal(signal.SIGTERM)
            data = first + read_all(s)
            s.close()
            _, _, body = split_head(data)
            text, ended = unchunk(body)
            assert ended, f"no last chunk at shutdown: {body[-80:]!r}"
            assert text.decode().endswith("retry: 1000\n\n"), text[-80:]
            assert g.proc.wait(timeout=10) == 0
    finally:
        tenant.request("DELETE", f"/v1/jobs/{job}")
