"""
Hostile HTTP: caps on the URI, the headers, the body and
JSON nesting; the 100 KB bearer token answered 401 rather than dropped;
heads two parsers could read two ways (request smuggling: Content-Length
with chunked, trailer fields, repeated Authorization or Content-Length, a
NUL in the target, other protocols, folded or spaced header lines)
answered 400 and closed; slow clients (a head trickled in, an idle keep-alive connection) closed;
the per-principal cap on event streams and its release; CORS by origin
list; the security headers on every reply; access_token kept out of logs.

Settings other than the session stack's are tried on a second gateway
started here (module fixture `gw`), on the stack's PostgreSQL and Redis.
"""

import http.client
import json
import os
import re
import socket
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from agentgate_test.client import http_request
from agentgate_test.ports import HTTP_PORT
from agentgate_test.services import own_gateway
from agentgate_test.waiting import TIMEOUT

ORIGIN = "https://app.example.com"
OTHER_ORIGIN = "https://admin.example.com"
EVIL_ORIGIN = "https://evil.example.net"

HEADER_TIMEOUT_MS = 1000
IDLE_TIMEOUT_MS = 1000
BODY_TIMEOUT_MS = 1000
SSE_MAX = 2
MAX_URI = 1024
MAX_HEADER_BYTES = 4096
MAX_HEADERS = 20
MAX_JSON_DEPTH = 8
MAX_BODY = 4096

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
}


# --------------------------------------------------------------------------
# A second gateway with this module's settings
# --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def gw(stack):
    port = int(os.environ.get("AGENTGATE_TEST_HOSTILE_PORT") or 0) or None
    with own_gateway(stack, "hostile", {
        "AGENTGATE_GATEWAY_THREADS": "2",
        "AGENTGATE_LOG_LEVEL": "debug",
        "AGENTGATE_SSE_KEEPALIVE_MS": "300",
        "AGENTGATE_HEADER_TIMEOUT_MS": str(HEADER_TIMEOUT_MS),
        "AGENTGATE_IDLE_TIMEOUT_MS": str(IDLE_TIMEOUT_MS),
        "AGENTGATE_BODY_TIMEOUT_MS": str(BODY_TIMEOUT_MS),
        "AGENTGATE_SSE_MAX_PER_PRINCIPAL": str(SSE_MAX),
        "AGENTGATE_CORS_ORIGINS": f"{ORIGIN}, {OTHER_ORIGIN}",
        "AGENTGATE_MAX_URI_BYTES": str(MAX_URI),
        "AGENTGATE_MAX_HEADER_BYTES": str(MAX_HEADER_BYTES),
        "AGENTGATE_MAX_HEADERS": str(MAX_HEADERS),
        "AGENTGATE_MAX_JSON_DEPTH": str(MAX_JSON_DEPTH),
        "AGENTGATE_MAX_BODY_BYTES": str(MAX_BODY),
    }, port=port) as g:
        yield g


# --------------------------------------------------------------------------
# Raw sockets
# --------------------------------------------------------------------------

def raw_exchange(port, data, timeout=10):
    """Sends data (as much as the server takes) and reads until the server
    closes. Returns (status, headers, body, closed)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass        # refused mid-way: the answer is still to be read
        out = b""
        closed = False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                closed = True
                break
            if not chunk:
                closed = True
                break
            out += chunk
    finally:
        s.close()
    return parse_response(out) + (closed,)


def parse_response(raw):
    assert raw, "the gateway sent no answer at all"
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    m = re.match(r"HTTP/1\.[01] (\d{3}) ", lines[0])
    assert m, f"not an HTTP status line: {lines[0]!r}"
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers.setdefault(k.strip().lower(), v.strip())
    return int(m.group(1)), headers, body


def check_problem(status, headers, body, want_status):
    assert status == want_status, (status, headers, body[:300])
    assert headers.get("content-type", "").startswith("application/problem+json"), headers
    p = json.loads(body)
    assert p["status"] == want_status and p["detail"] and p["type"].startswith("urn:agentgate:problem:")
    assert p["request_id"] == headers.get("x-request-id"), (p, headers)
    for k, v in SECURITY_HEADERS.items():
        assert headers.get(k.lower()) == v, f"{k} missing on {want_status}: {headers}"
    return p


def wait_closed(s, timeout):
    """Seconds until the server closes s (reading and dropping whatever
    arrives), or None if it stays open for timeout seconds."""
    return read_until_closed(s, timeout)[1]


def read_until_closed(s, timeout):
    """(bytes read, seconds until the server closed s or None if it stayed
    open for timeout seconds)."""
    out = b""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        s.settimeout(max(0.05, timeout - (time.monotonic() - t0)))
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            break
        except ConnectionResetError:
            return out, time.monotonic() - t0
        if not chunk:
            return out, time.monotonic() - t0
        out += chunk
    return out, None


# --------------------------------------------------------------------------
# Caps
# --------------------------------------------------------------------------

def test_100kb_bearer_token_is_401_end_to_end(stack, tenant):
    """On the session gateway (default settings): answered, not dropped."""
    token = "eyJ" + "A" * 100_000
    req = (f"GET /v1/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
           "Accept: application/json\r\n\r\n").encode()
    status, headers, body, closed = raw_exchange(HTTP_PORT, req)
    p = check_problem(status, headers, body, 401)
    assert "bearer token is too large" in p["detail"]
    assert headers.get("www-authenticate", "").startswith("Bearer")
    assert headers.get("connection", "").lower() == "close"
    assert closed, "the connection stays open after the refusal"
    # The gateway is fine afterwards, and the token is in no log line.
    tenant.request("GET", "/v1/jobs").expect_json(200)
    with open(os.path.join(stack.dir, "logs", "gateway.log"), errors="replace") as f:
        assert "A" * 200 not in f.read()


def test_uri_over_cap_is_414(gw):
    path = "/v1/jobs?cursor=" + "x" * MAX_URI
    status, headers, body, closed = raw_exchange(
        gw.port, f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    check_problem(status, headers, body, 414)
    assert closed
    # Under the cap the request goes on (to authentication).
    status, _, _ = gw.request("GET", "/v1/jobs?cursor=" + "x" * 100)
    assert status == 401


def test_uri_over_parser_limit_is_414_on_default_settings():
    path = "/v1/jobs/" + "a" * 20_000
    status, headers, body, _ = raw_exchange(
        HTTP_PORT, f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    check_problem(status, headers, body, 414)


def test_header_bytes_over_cap_is_431(gw):
    req = ("GET /v1/health/live HTTP/1.1\r\nHost: x\r\n"
           f"X-Filler: {'f' * MAX_HEADER_BYTES}\r\n\r\n").encode()
    status, headers, body, closed = raw_exchange(gw.port, req)
    check_problem(status, headers, body, 431)
    assert closed


def test_one_header_over_parser_limit_is_431_on_default_settings():
    req = ("GET /v1/health/live HTTP/1.1\r\nHost: x\r\n"
           f"X-Filler: {'f' * 20_000}\r\n\r\n").encode()
    status, headers, body, _ = raw_exchange(HTTP_PORT, req)
    check_problem(status, headers, body, 431)


def test_header_count_over_cap_is_431(gw):
    many = "".join(f"X-H{i}: v\r\n" for i in range(MAX_HEADERS + 5))
    status, headers, body, _ = raw_exchange(
        gw.port, f"GET /v1/health/live HTTP/1.1\r\nHost: x\r\n{many}\r\n".encode())
    check_problem(status, headers, body, 431)
    few = "".join(f"X-H{i}: v\r\n" for i in range(MAX_HEADERS - 3))
    status, _, _, _ = raw_exchange(
        gw.port, f"GET /v1/health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{few}\r\n".encode())
    assert status == 200


def test_body_over_cap_is_413(gw, tenant):
    body = json.dumps({"type": "test", "payload": {"pad": "p" * (MAX_BODY * 2)}})
    status, headers, data = gw.request("POST", "/v1/jobs", body=body, headers={
        "Authorization": "Bearer " + tenant.token, "Content-Type": "application/json"})
    check_problem(status, {k.lower(): v for k, v in headers.items()}, data, 413)


def nested_payload(depth):
    """A job body whose whole nesting (the body object included) is depth."""
    inner = "1"
    for _ in range(depth - 2):
        inner = f"[{inner}]"
    return '{"type":"test","payload":{"x":' + inner + "}}"


def test_json_nesting_over_cap_is_400_naming_the_limit(gw, tenant):
    h = {"Authorization": "Bearer " + tenant.token, "Content-Type": "application/json"}
    status, headers, data = gw.request("POST", "/v1/jobs", body=nested_payload(MAX_JSON_DEPTH + 1), headers=h)
    p = check_problem(status, {k.lower(): v for k, v in headers.items()}, data, 400)
    assert p["type"] == "urn:agentgate:problem:json-too-deep", p
    assert str(MAX_JSON_DEPTH) in p["detail"], p
    # At the limit the depth is fine (the payload is then judged on its own).
    status, headers, data = gw.request("POST", "/v1/jobs", body=nested_payload(MAX_JSON_DEPTH), headers=h)
    assert status != 400 or json.loads(data)["type"] != "urn:agentgate:problem:json-too-deep"
    # Brackets inside strings do not count.
    body = json.dumps({"type": "test", "payload": {"s": "[" * 500}})
    status, _, data = gw.request("POST", "/v1/jobs", body=body, headers=h)
    assert status != 400 or json.loads(data)["type"] != "urn:agentgate:problem:json-too-deep"


# --------------------------------------------------------------------------
# Request smuggling and protocol strictness (RFC 9112)
# --------------------------------------------------------------------------

def status_lines(raw):
    return re.findall(rb"HTTP/1\.[01] \d{3} [^\r\n]*", raw)


def refused_400(data, port=HTTP_PORT):
    """Sends data: the gateway answers one 400 malformed-request (a body
    that is that problem and nothing after it), says close, and closes."""
    status, headers, body, closed = raw_exchange(port, data)
    p = check_problem(status, headers, body, 400)
    assert p["type"] == "urn:agentgate:problem:malformed-request", p
    assert headers.get("connection", "").lower() == "close", headers
    assert closed, "the connection stays open after a refused head"
    return p


SMUGGLED = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"


def test_content_length_with_chunked_is_400_and_nothing_after_it_is_served(stack, tenant):
    """The classic: with both, a reader that goes by Content-Length and
    one that goes by the chunks disagree where the next request starts.
    Before, the bytes after the chunked body were served as a request."""
    body = b"0\r\n\r\n"
    for framing in (b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
                    b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
                    b"Transfer-Encoding: chunked\r\nContent-Length: 40\r\n"):
        head = (b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Authorization: Bearer " + tenant.token.encode() + b"\r\n" + framing + b"\r\n")
        p = refused_400(head + body + SMUGGLED)
        assert "Transfer-Encoding" in p["detail"], p


def test_smuggling_behind_a_pipelined_request_is_judged_too(stack):
    """Pipelined requests pass the same checks as the first one."""
    data = (b"GET /v1/health/live HTTP/1.1\r\nHost: x\r\n\r\n"
            b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + SMUGGLED)
    s = socket.create_connection(("127.0.0.1", HTTP_PORT), timeout=10)
    try:
        s.sendall(data)
        raw, closed_at = read_until_closed(s, 10)
    finally:
        s.close()
    assert closed_at is not None, "the connection stays open after a refused head"
    assert status_lines(raw) == [b"HTTP/1.1 200 OK", b"HTTP/1.1 400 Bad Request"], raw[-600:]


def test_trailer_fields_after_a_chunked_body_are_400_and_nothing_after_is_served(stack, tenant):
    """libevhtp ends a chunked body at its first trailer line and reads the
    lines after it as the next request, where a proxy reads them as more
    trailers: a body with trailers is refused and the rest never read."""
    body = json.dumps({"type": "test", "payload": {"outcome": "succeed"}}).encode()
    head = (b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer " + tenant.token.encode() + b"\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n" + b"%x\r\n" % len(body) + body + b"\r\n")
    for trailer in (b"X-Checksum: 1\r\n" + SMUGGLED, b"X-Checksum\r\n" + SMUGGLED):
        p = refused_400(head + b"0\r\n" + trailer)
        assert "trailer" in p["detail"], p
    # Without trailers a chunked body is fine, and what follows is served.
    s = socket.create_connection(("127.0.0.1", HTTP_PORT), timeout=10)
    try:
        s.sendall(head + b"0\r\n\r\n" + SMUGGLED.replace(b"Host: x", b"Host: x\r\nConnection: close"))
        raw, closed_at = read_until_closed(s, 10)
    finally:
        s.close()
    assert status_lines(raw) == [b"HTTP/1.1 202 Accepted", b"HTTP/1.1 200 OK"], raw[-600:]


def test_transfer_codings_other_than_chunked_alone_are_400(stack):
    for head in (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
                 b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked \r\n\r\n",
                 b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: CHUNKED\r\n\r\n",
                 b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n",
                 b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"):
        refused_400(head + b"0\r\n\r\n" + SMUGGLED)


def test_repeated_or_odd_content_length_is_400(stack):
    for lengths in (b"Content-Length: 5\r\nContent-Length: 6\r\n",
                    b"Content-Length: 5\r\nContent-Length: 5\r\n",
                    b"Content-Length: 5, 6\r\n",
                    b"Content-Length: +5\r\n"):
        p = refused_400(b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\n" + lengths + b"\r\nhello!" + SMUGGLED)
        assert "Content-Length" in p["detail"], p


def test_repeated_authorization_is_400(stack, tenant):
    """Before, the first header won, whatever a proxy in front had checked."""
    good = b"Authorization: Bearer " + tenant.token.encode() + b"\r\n"
    bad = b"Authorization: Bearer not-a-token\r\n"
    for pair in (good + bad, bad + good, good + good):
        p = refused_400(b"GET /v1/jobs HTTP/1.1\r\nHost: x\r\n" + pair + b"\r\n")
        assert "Authorization" in p["detail"], p
    # One is fine.
    status, _, _, _ = raw_exchange(HTTP_PORT, b"GET /v1/jobs HTTP/1.1\r\nHost: x\r\n"
                                   b"Connection: close\r\n" + good + b"\r\n")
    assert status == 200


def test_nul_in_the_target_is_400(stack):
    """Before, /v1/health/live\\0x was served as /v1/health/live."""
    for target in (b"/v1/health/live\x00x", b"/v1/health/live\x00", b"/v1/jobs?a=\x01"):
        p = refused_400(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        assert "control character" in p["detail"], p


def test_protocols_other_than_http_1_0_and_1_1_are_400(stack):
    """Before, HTTP/2.0 in a request line was answered as HTTP/2.0 200 OK."""
    for version in (b"HTTP/2.0", b"HTTP/1.2", b"HTTP/3", b"HTTP/0.9", b"http/1.1"):
        p = refused_400(b"GET /v1/health/live " + version + b"\r\nHost: x\r\n\r\n")
        assert "HTTP/1.0 and HTTP/1.1" in p["detail"], (version, p)
    # No version at all (HTTP/0.9's request line).
    refused_400(b"GET /v1/health/live\r\n\r\n")
    s = socket.create_connection(("127.0.0.1", HTTP_PORT), timeout=10)
    try:
        s.sendall(b"GET /v1/health/live HTTP/2.0\r\nHost: x\r\n\r\n")
        raw, _ = read_until_closed(s, 10)
    finally:
        s.close()
    assert raw.startswith(b"HTTP/1.1 400 Bad Request\r\n"), raw[:100]


def test_folded_spaced_or_bare_lf_header_lines_are_400(stack):
    for head in (b"GET /v1/health/live HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n 2\r\n\r\n",
                 b"GET /v1/health/live HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n\tContent-Length: 5\r\n\r\n",
                 b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Length : 5\r\n\r\nhello",
                 b"GET /v1/health/live HTTP/1.1\nHost: x\n\n",
                 b"GET /v1/health/live HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n",
                 b"GET /v1/health/live HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n"):
        refused_400(head + SMUGGLED)


# --------------------------------------------------------------------------
# Slow clients
# --------------------------------------------------------------------------

def test_slowloris_head_is_closed_after_header_timeout(gw):
    head = b"GET /v1/health/live HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"s" * 200
    s = socket.create_connection(("127.0.0.1", gw.port), timeout=5)
    t0 = time.monotonic()
    closed_at = None
    try:
        for byte in head:
            try:
                s.send(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                closed_at = time.monotonic() - t0
                break
            if wait_closed(s, 0.2) is not None:
                closed_at = time.monotonic() - t0
                break
            assert time.monotonic() - t0 < HEADER_TIMEOUT_MS / 1000 * 4, (
                "the trickling connection is still open")
    finally:
        s.close()
    assert closed_at is not None, "the connection outlived its whole trickled head"
    assert HEADER_TIMEOUT_MS / 1000 * 0.8 <= closed_at <= HEADER_TIMEOUT_MS / 1000 * 3, closed_at


def test_silent_connection_is_closed_after_header_timeout(gw):
    with socket.create_connection(("127.0.0.1", gw.port), timeout=5) as s:
        t = wait_closed(s, HEADER_TIMEOUT_MS / 1000 * 4)
    assert t is not None and t >= HEADER_TIMEOUT_MS / 1000 * 0.8, t


def slow_post_head(length):
    return (f"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {length}\r\n\r\n").encode()


def test_trickled_body_is_408_after_body_timeout(gw):
    """A whole head, then a body a byte at a time: the body's deadline is
    counted from the head and not extended by the bytes, so the client is
    answered 408 and closed however steadily it sends."""
    body = b'{"type":"test","payload":{"pad":"' + b"p" * 200 + b'"}}'
    s = socket.create_connection(("127.0.0.1", gw.port), timeout=5)
    try:
        s.sendall(slow_post_head(len(body)))
        t0 = time.monotonic()
        answer = b""
        for byte in body:
            try:
                s.send(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                break
            s.settimeout(0.1)
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                continue
            except ConnectionResetError:
                break
            answer += chunk
            if not chunk or b"\r\n\r\n" in answer:
                break
            assert time.monotonic() - t0 < BODY_TIMEOUT_MS / 1000 * 4, "still open"
        elapsed = time.monotonic() - t0
        rest, closed_at = read_until_closed(s, BODY_TIMEOUT_MS / 1000 * 4)
    finally:
        s.close()
    assert closed_at is not None, "the connection outlived its trickled body"
    status, headers, body_out = parse_response(answer + rest)
    p = check_problem(status, headers, body_out, 408)
    assert p["type"] == "urn:agentgate:problem:request-timeout", p
    assert headers.get("connection", "").lower() == "close"
    assert BODY_TIMEOUT_MS / 1000 * 0.8 <= elapsed <= BODY_TIMEOUT_MS / 1000 * 3, elapsed


def test_body_sent_in_pieces_within_the_timeout_is_served(gw):
    """Pauses inside the deadline are fine: the request is served (401 here,
    no token) and the connection stays usable."""
    body = b'{"type":"test","payload":{}}'
    with socket.create_connection(("127.0.0.1", gw.port), timeout=5) as s:
        s.sendall(slow_post_head(len(body)))
        for piece in (body[:10], body[10:20], body[20:]):
            time.sleep(0.2)
            s.sendall(piece)
        data = b""
        while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
            chunk = s.recv(4096)
            assert chunk, f"closed before the answer: {data!r}"
            data += chunk
        assert data.startswith(b"HTTP/1.1 401"), data[:200]
        # The body clock stopped with the request: nothing cuts the
        # connection before the idle timeout.
        time.sleep(BODY_TIMEOUT_MS / 1000 * 0.5)
        s.sendall(b"GET /v1/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while not data.rstrip().endswith(b"}"):
            chunk = s.recv(4096)
            assert chunk, "a connection whose body arrived in time was closed"
            data += chunk
        assert data.startswith(b"HTTP/1.1 200"), data[:200]


def test_request_served_longer_than_the_body_timeout_is_not_cut(gw, tenant):
    """The body clock stops once the body is in: a request whose answer
    takes longer (an event stream here) is not cut by it."""
    job = tenant.submit("test", {"outcome": "succeed", "sleep_ms": 60000})["id"]
    try:
        body = b"{}"
        req = (f"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
               f"Authorization: Bearer {tenant.token}\r\nContent-Type: application/json\r\n"
               f"\r\n").encode() + body
        # A POST with a body first, then a stream on the same connection.
        with socket.create_connection(("127.0.0.1", gw.port), timeout=5) as s:
            s.sendall(req)
            data = b""
            while not data.rstrip().endswith(b"}"):
                chunk = s.recv(4096)
                assert chunk, data
                data += chunk
            assert data.startswith(b"HTTP/1.1 4"), data[:200]   # the body is not a job
            s.sendall(f"GET /v1/jobs/{job}/events HTTP/1.1\r\nHost: x\r\n"
                      f"Authorization: Bearer {tenant.token}\r\n\r\n".encode())
            t = wait_closed(s, BODY_TIMEOUT_MS / 1000 * 2.5)
            assert t is None, f"the stream was cut after {t:.2f} s"
    finally:
        tenant.request("DELETE", f"/v1/jobs/{job}")


def test_idle_keepalive_connection_is_closed_but_a_busy_one_is_not(gw):
    req = b"GET /v1/health/live HTTP/1.1\r\nHost: x\r\n\r\n"
    with socket.create_connection(("127.0.0.1", gw.port), timeout=5) as s:
        # Requests every 0.4 s for 2.5 idle timeouts: the connection lives.
        t0 = time.monotonic()
        while True:
            s.sendall(req)
            data = b""
            while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
                chunk = s.recv(4096)
                assert chunk, "a keep-alive connection in use was closed"
                data += chunk
            assert data.startswith(b"HTTP/1.1 200"), data[:100]
            if time.monotonic() - t0 >= IDLE_TIMEOUT_MS / 1000 * 2.5:
                break
            time.sleep(0.4)
        # Then idle: closed after the idle timeout.
        t = wait_closed(s, IDLE_TIMEOUT_MS / 1000 * 4)
    assert t is not None, "an idle keep-alive connection was never closed"
    assert IDLE_TIMEOUT_MS / 1000 * 0.8 <= t <= IDLE_TIMEOUT_MS / 1000 * 3, t


# --------------------------------------------------------------------------
# Event streams: not cut by the timers; capped per principal
# --------------------------------------------------------------------------

class RawStream:
    """An event stream on the hostile gateway, read as raw bytes."""

    def __init__(self, port, path, token, headers=None):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
        h = {"Accept": "text/event-stream", "Authorization": "Bearer " + token}
        h.update(headers or {})
        self.conn.request("GET", path, headers=h)
        self.resp = self.conn.getresponse()
        self.status = self.resp.status
        self.headers = self.resp.headers

    def read_for(self, seconds):
        """Lines read in seconds; stops early at the end of the stream."""
        lines = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.conn.sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                line = self.resp.readline()
            except (socket.timeout, TimeoutError):
                break
            if not line:
                lines.append(None)
                break
            lines.append(line.decode().rstrip("\r\n"))
        return lines

    def read_to_end(self, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.read_for(deadline - time.monotonic())
            if got and got[-1] is None:
                return
        raise AssertionError("stream not ended in time")

    def close(self):
        self.conn.close()


def long_job(tenant, ms=60000):
    return tenant.submit("test", {"outcome": "succeed", "sleep_ms": ms})["id"]


def test_event_stream_outlives_header_and_idle_timeouts(gw, tenant):
    job = long_job(tenant)
    try:
        s = RawStream(gw.port, f"/v1/jobs/{job}/events", tenant.token)
        assert s.status == 200
        for k, v in SECURITY_HEADERS.items():
            assert s.headers.get(k) == v, (k, dict(s.headers))
        assert s.headers.get("Cache-Control") == "no-cache"
        lines = s.read_for((HEADER_TIMEOUT_MS + IDLE_TIMEOUT_MS) / 1000 * 1.5)
        assert None not in lines, f"the stream was cut: {lines}"
        assert any(line.startswith(": keepalive") for line in lines if line), lines
        s.close()
    finally:
        tenant.request("DELETE", f"/v1/jobs/{job}")


def open_until(gw, path, token, want, timeout=10):
    """Opens streams until one answers want (a released slot shows up)."""
    deadline = time.monotonic() + timeout
    while True:
        s = RawStream(gw.port, path, token)
        if s.status == want:
            return s
        s.close()
        assert time.monotonic() < deadline, f"no {want} within {timeout} s (last {s.status})"
        time.sleep(0.1)


def test_event_streams_capped_per_principal_and_released(gw, stack, tenant):
    job = long_job(tenant)
    path = f"/v1/jobs/{job}/events"
    streams = []
    try:
        # SSE_MAX streams, on fresh connections (spread over both loop threads).
        for _ in range(SSE_MAX):
            s = RawStream(gw.port, path, tenant.token)
            assert s.status == 200
            streams.append(s)
        over = RawStream(gw.port, path, tenant.token)
        body = over.resp.read()
        over.close()
        hdrs = {k.lower(): v for k, v in over.headers.items()}
        p = check_problem(over.status, hdrs, body, 429)
        assert str(SSE_MAX) in p["detail"]
        assert int(hdrs["retry-after"]) > 0
        # Another user of the same tenant has slots of their own.
        other = stack.tenant(tenant_id=tenant.tenant_id, sub="other-" + uuid.uuid4().hex[:8])
        s2 = RawStream(gw.port, path, other.token)
        assert s2.status == 200
        s2.close()
        # A client that goes away gives its slot back.
        streams.pop().close()
        streams.append(open_until(gw, path, tenant.token, 200))
        assert RawStream(gw.port, path, tenant.token).status == 429
    finally:
        for s in streams:
            s.close()
        tenant.request("DELETE", f"/v1/jobs/{job}")


def test_stream_slots_released_when_the_job_ends(gw, tenant):
    short = tenant.submit("test", {"outcome": "succeed", "sleep_ms": 1500})["id"]
    streams = [RawStream(gw.port, f"/v1/jobs/{short}/events", tenant.token)
               for _ in range(SSE_MAX)]
    assert [s.status for s in streams] == [200] * SSE_MAX
    for s in streams:
        s.read_to_end()
        s.close()
    job = long_job(tenant)
    try:
        path = f"/v1/jobs/{job}/events"
        a = open_until(gw, path, tenant.token, 200)
        b = open_until(gw, path, tenant.token, 200)
        a.close()
        b.close()
    finally:
        tenant.request("DELETE", f"/v1/jobs/{job}")


# --------------------------------------------------------------------------
# CORS
# --------------------------------------------------------------------------

def preflight(port, origin, method="POST"):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        conn.request("OPTIONS", "/v1/jobs", headers={
            "Origin": origin, "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "authorization, content-type"})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    finally:
        conn.close()


def test_cors_preflight_allowed_origin(gw):
    status, h, body = preflight(gw.port, ORIGIN)
    assert status == 204, (status, h, body)
    assert h["access-control-allow-origin"] == ORIGIN
    assert "POST" in h["access-control-allow-methods"]
    allowed = [x.strip().lower() for x in h["access-control-allow-headers"].split(",")]
    for name in ("authorization", "content-type", "idempotency-key", "last-event-id",
                 "x-request-id", "traceparent"):
        assert name in allowed, allowed
    assert int(h["access-control-max-age"]) > 0
    assert "origin" in h["vary"].lower()
    assert h.get("access-control-allow-credentials") is None
    for k, v in SECURITY_HEADERS.items():
        assert h.get(k.lower()) == v


def test_cors_preflight_denied_origin(gw):
    for origin in (EVIL_ORIGIN, "null", ORIGIN + ".evil.test", "*"):
        status, h, body = preflight(gw.port, origin)
        check_problem(status, h, body, 403)
        assert not any(k.startswith("access-control-") for k in h), h


def test_cors_headers_on_actual_requests(gw, tenant):
    status, h, _ = gw.request("GET", "/v1/jobs", headers={
        "Origin": OTHER_ORIGIN, "Authorization": "Bearer " + tenant.token})
    assert status == 200
    assert h["Access-Control-Allow-Origin"] == OTHER_ORIGIN
    assert "Origin" in h["Vary"]
    exposed = [x.strip() for x in h["Access-Control-Expose-Headers"].split(",")]
    for name in ("Location", "X-Request-Id", "Retry-After", "RateLimit-Limit",
                 "RateLimit-Remaining", "RateLimit-Reset", "Idempotent-Replayed"):
        assert name in exposed, exposed
    # Errors to an allowed origin carry them too (the page must read them).
    status, h, _ = gw.request("GET", "/v1/jobs", headers={"Origin": ORIGIN})
    assert status == 401 and h["Access-Control-Allow-Origin"] == ORIGIN
    # A disallowed origin, or none, gets no CORS headers at all.
    for hdrs in ({"Origin": EVIL_ORIGIN}, {}):
        hdrs["Authorization"] = "Bearer " + tenant.token
        status, h, _ = gw.request("GET", "/v1/jobs", headers=hdrs)
        assert status == 200
        assert not any(k.lower().startswith("access-control-") for k in h.keys()), dict(h)


def test_no_cors_when_no_origins_configured(tenant):
    r = tenant.request("GET", "/v1/jobs", headers={"Origin": ORIGIN})
    r.expect_json(200)
    assert not any(k.lower().startswith("access-control-") for k in r.headers.keys())
    status, h, body = preflight(HTTP_PORT, ORIGIN)
    check_problem(status, h, body, 403)
    assert not any(k.startswith("access-control-") for k in h)


# --------------------------------------------------------------------------
# Security headers
# --------------------------------------------------------------------------

def test_security_headers_on_every_reply(tenant):
    ok = http_request("GET", "/v1/health/live")
    not_found = http_request("GET", "/v1/no-such-thing")
    unauth = tenant.request("GET", "/v1/jobs", token="not-a-jwt")
    listed = tenant.request("GET", "/v1/jobs")
    for r in (ok, not_found, unauth, listed):
        for k, v in SECURITY_HEADERS.items():
            assert r.header(k) == v, f"{k} on {r.describe()}"
    for r in (not_found, unauth, listed):
        assert r.header("Cache-Control") == "no-store", r.describe()
    assert not_found.status == 404 and unauth.status == 401 and listed.status == 200


def test_security_headers_on_event_stream(tenant):
    job = tenant.submit("test", {"outcome": "succeed", "sleep_ms": 0})["id"]
    s = tenant.open_events(job)
    try:
        for k, v in SECURITY_HEADERS.items():
            assert s.headers.get(k) == v, k
        assert s.headers.get("Cache-Control") == "no-cache"
    finally:
        s.close()


# --------------------------------------------------------------------------
# access_token never logged
# --------------------------------------------------------------------------

def test_access_token_redacted_from_logs(gw, stack, tenant):
    secret = "SECRET" + uuid.uuid4().hex
    job = str(uuid.uuid4())
    # Failing requests: a bad token, and one refused before parsing.
    status, _, _ = gw.request("GET", f"/v1/jobs/{job}/events?access_token={secret}&after=0")
    assert status == 401
    long_path = f"/v1/jobs/{job}/events?access_token={secret}&pad=" + "p" * MAX_URI
    status, _, _, _ = raw_exchange(gw.port, f"GET {long_path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert status == 414
    # A real token in the query (the EventSource way), accepted.
    status, _, _ = gw.request("GET", f"/v1/jobs/{job}/events?access_token={tenant.token}")
    assert status == 404
    r = tenant.sse(f"/v1/jobs/{job}/events", token=None, access_token=secret)
    assert r.status == 401
    r.close()
    time.sleep(0.3)
    log = gw.log()
    assert secret not in log
    assert tenant.token.split(".")[2] not in log
    # The debug access log did see those requests, redacted.
    assert "access_token=[redacted]" in log, log[-3000:]
    with open(os.path.join(stack.dir, "logs", "gateway.log"), errors="replace") as f:
        assert secret not in f.read()


# --------------------------------------------------------------------------
# Log lines carry the request they are about, and no other
# --------------------------------------------------------------------------

def test_log_lines_of_batched_submits_carry_their_own_request_id(gw, tenant):
    """Submits that arrive together are inserted by one statement and
    answered from one callback; each answer's lines must still carry its
    own request's id, not that of whichever request the loop ran last."""
    probe = uuid.uuid4().hex[:12]

    def submit(i):
        rid = f"ctx-{probe}-{i}"
        status, _, body = gw.request(
            "POST", "/v1/jobs", body=json.dumps({"type": "test", "payload": {"outcome": "succeed"}}),
            headers={"Authorization": "Bearer " + tenant.token, "Content-Type": "application/json",
                     "X-Request-Id": rid})
        assert status == 202, body
        return json.loads(body)["id"], rid

    with ThreadPoolExecutor(16) as ex:
        sent = dict(ex.map(submit, range(64)))
    time.sleep(0.3)
    seen = {}
    for line in gw.log().splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        m = re.match(r"job ([0-9a-f-]{36}) \(test\) queued$", rec.get("msg", ""))
        if m and m.group(1) in sent:
            seen[m.group(1)] = rec.get("request_id")
    assert len(seen) == len(sent), f"{len(seen)} of {len(sent)} queued lines found"
    wrong = {j: (rid, sent[j]) for j, rid in seen.items() if rid != sent[j]}
    assert not wrong, f"{len(wrong)} lines carry another request's id: {list(wrong.items())[:3]}"
