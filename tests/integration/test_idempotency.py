"""
Idempotency-Key on POST (docs/api.md, section 8): the same key with the
same body answers the first answer again with Idempotent-Replayed: true and
creates nothing; the same key with another body is 422; a request still in
flight under the key is 409; keys are per tenant and kept
AGENTGATE_IDEMPOTENCY_TTL_S (24 h); 5xx answers are not kept; without
Redis a request carrying a key is refused with 503 rather than risk running
twice.
"""
import hashlib
import json
import socket
import threading
import time
import uuid

import pytest

from agentgate_test import stack as stack_lib
from agentgate_test.ports import HTTP_PORT
from agentgate_test.stack import stack_dep, wait_ready


def redis(*args):
    return stack_lib.redis(*args).strip()


def redis_key(tenant_id, key):
    return f"idempotency:{tenant_id}:{hashlib.sha256(key.encode()).hexdigest()}"


def job_body(n=1):
    return {"type": "test", "payload": {"outcome": "succeed", "result": {"n": n}}}


def post(t, key, body, path="/v1/jobs"):
    raw = json.dumps(body).encode()
    return t.request("POST", path, raw=raw, headers={"Idempotency-Key": key})


def job_count(stack, tenant_id):
    return int(stack.sql("SELECT count(*) FROM jobs WHERE tenant_id = :'p1'", tenant_id)[0][0])


def test_replay_returns_the_first_answer_and_creates_nothing(stack, tenant):
    key = "order-" + uuid.uuid4().hex
    first = post(tenant, key, job_body())
    job = first.expect_json(202)
    assert first.header("Idempotent-Replayed") is None
    again = post(tenant, key, job_body())
    assert again.status == 202, again.describe()
    assert again.header("Idempotent-Replayed") == "true", again.describe()
    assert again.body == first.body
    assert again.json()["id"] == job["id"]
    assert again.header("Location") == f"/v1/jobs/{job['id']}"
    assert again.content_type == first.content_type
    assert job_count(stack, tenant.tenant_id) == 1
    # Kept for the configured 24 h.
    ttl = int(redis("TTL", redis_key(tenant.tenant_id, key)))
    assert 86000 < ttl <= 86400, ttl


def test_same_key_other_body_is_422(stack, tenant):
    key = str(uuid.uuid4())
    post(tenant, key, job_body(1)).expect_json(202)
    post(tenant, key, job_body(2)).expect_problem(422)
    # Another path with the same key is another request too.
    r = post(tenant, key, {"prompt": "hello"}, path="/v1/agent-runs")
    r.expect_problem(422)
    assert job_count(stack, tenant.tenant_id) == 1


def test_in_flight_is_409(stack, tenant):
    key = "inflight-" + uuid.uuid4().hex
    body = json.dumps(job_body()).encode()
    fp = hashlib.sha256(b"POST\0/v1/jobs\0" + body).hexdigest()
    # A claim as a gateway holds it while the first request runs.
    rk = redis_key(tenant.tenant_id, key)
    redis("SET", rk, f"agidem1 P {fp} 1.2.3.other", "PX", 30000)
    r = tenant.request("POST", "/v1/jobs", raw=body, headers={"Idempotency-Key": key})
    r.expect_problem(409)
    assert r.header("Retry-After") == "1"
    # Another body under the in-flight key is a misuse of the key: 422.
    post(tenant, key, job_body(9)).expect_problem(422)
    assert job_count(stack, tenant.tenant_id) == 0
    redis("DEL", rk)


def test_a_corrupt_record_is_treated_as_absent(stack, tenant):
    key = "corrupt-" + uuid.uuid4().hex
    rk = redis_key(tenant.tenant_id, key)
    body = json.dumps(job_body()).encode()
    fp = hashlib.sha256(b"POST\0/v1/jobs\0" + body).hexdigest()
    # Lengths that do not add up, with a fingerprint that matches.
    redis("SET", rk, f"agidem1 D {fp} 202 16 0 9999\napplication/json{{}}", "EX", 600)
    r = tenant.request("POST", "/v1/jobs", raw=body, headers={"Idempotency-Key": key})
    job = r.expect_json(202)
    assert r.header("Idempotent-Replayed") is None
    again = tenant.request("POST", "/v1/jobs", raw=body, headers={"Idempotency-Key": key})
    assert again.status == 202 and again.header("Idempotent-Replayed") == "true"
    assert again.json()["id"] == job["id"]
    assert job_count(stack, tenant.tenant_id) == 1


def test_concurrent_requests_run_once(stack, tenant):
    key = "race-" + uuid.uuid4().hex
    results = []
    barrier = threading.Barrier(8)

    def go():
        barrier.wait()
        results.append(post(tenant, key, job_body()))

    threads = [threading.Thread(target=go) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    originals = [r for r in results if r.status == 202 and not r.header("Idempotent-Replayed")]
    replays = [r for r in results if r.status == 202 and r.header("Idempotent-Replayed")]
    conflicts = [r for r in results if r.status == 409]
    assert len(originals) == 1, [r.describe() for r in results]
    assert len(originals) + len(replays) + len(conflicts) == 8, [r.describe() for r in results]
    for r in replays:
        assert r.body == originals[0].body
    assert job_count(stack, tenant.tenant_id) == 1


def test_keys_are_per_tenant(stack, tenant, other_tenant):
    key = "shared-" + uuid.uuid4().hex
    a = post(tenant, key, job_body()).expect_json(202)
    r = post(other_tenant, key, job_body())
    b = r.expect_json(202)
    assert r.header("Idempotent-Replayed") is None
    assert a["id"] != b["id"]
    assert job_count(stack, other_tenant.tenant_id) == 1


def test_a_4xx_answer_is_replayed(stack, tenant):
    key = str(uuid.uuid4())
    body = {"type": "no-such-type-" + uuid.uuid4().hex, "payload": {}}
    first = post(tenant, key, body)
    first.expect_problem(422)
    again = post(tenant, key, body)
    assert again.status == 422 and again.header("Idempotent-Replayed") == "true"
    assert again.body == first.body
    assert again.content_type == "application/problem+json"


def test_bad_keys_and_other_methods(stack, tenant):
    post(tenant, "k" * 256, job_body()).expect_problem(400)
    post(tenant, "k" * 255, job_body()).expect_json(202)
    # Only POST: a GET with a key is an ordinary GET.
    r = tenant.request("GET", "/v1/jobs", headers={"Idempotency-Key": "x"})
    r.expect_json(200)
    assert r.header("Idempotent-Replayed") is None
    # Without the header nothing changes: two posts, two jobs.
    tenant.submit("test", {"outcome": "succeed"})
    tenant.submit("test", {"outcome": "succeed"})
    assert job_count(stack, tenant.tenant_id) == 3


def post_when_up(t, key, body, timeout=15):
    """Posts until the answer is not a 503 (connections coming back)."""
    deadline = time.monotonic() + timeout
    while True:
        r = post(t, key, body)
        if r.status != 503 or time.monotonic() > deadline:
            return r
        time.sleep(0.2)


def test_5xx_is_not_kept(stack, tenant):
    key = str(uuid.uuid4())
    try:
        stack_dep(stack, "pg", "stop")
        r = post(tenant, key, job_body())
        r.expect_problem(503)
    finally:
        stack_dep(stack, "pg", "start")
    wait_ready()
    assert redis("EXISTS", redis_key(tenant.tenant_id, key)) == "0"
    r = post_when_up(tenant, key, job_body())
    r.expect_json(202)
    assert r.header("Idempotent-Replayed") is None
    assert job_count(stack, tenant.tenant_id) == 1


def test_redis_down_refuses_keyed_requests_with_503(stack, tenant):
    key = str(uuid.uuid4())
    try:
        stack_dep(stack, "redis", "stop")
        r = post(tenant, key, job_body())
        r.expect_problem(503)
        assert int(r.header("Retry-After")) > 0
        # Without a key the request goes on as usual.
        tenant.submit("test", {"outcome": "succeed"})
    finally:
        stack_dep(stack, "redis", "start")
    wait_ready()
    r = post_when_up(tenant, key, job_body())
    r.expect_json(202)
    assert job_count(stack, tenant.tenant_id) == 2


def test_slow_redis_is_503_and_the_key_stays_usable(stack, tenant):
    from test_rate_limits import redis_busy
    key = str(uuid.uuid4())
    th = redis_busy(1500)
    try:
        t0 = time.monotonic()
        r = post(tenant, key, job_body())
        took = time.monotonic() - t0
    finally:
        th.join()
    r.expect_problem(503)
    assert took < 1.2, f"answered after {took:.2f} s"
    # The claim that reached Redis late was given back: no 409 now.
    r = post_when_up(tenant, key, job_body())
    r.expect_json(202)
    assert r.header("Idempotent-Replayed") is None
    assert job_count(stack, tenant.tenant_id) == 1


def raw_post(t, key_line, body):
    """POST /v1/jobs with the Idempotency-Key header line exactly as given
    (key_line is the bytes after the colon), over a plain socket: what a
    client sends when it fills the header from an empty variable."""
    raw = json.dumps(body).encode()
    head = (b"POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Authorization: Bearer " + t.token.encode() + b"\r\n"
            b"Content-Type: application/json\r\n"
            b"Content-Length: " + str(len(raw)).encode() + b"\r\n"
            b"Connection: close\r\n"
            b"Idempotency-Key:" + key_line + b"\r\n\r\n")
    with socket.create_connection(("127.0.0.1", HTTP_PORT), timeout=10) as s:
        s.sendall(head + raw)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    status = int(data.split(b" ", 2)[1])
    return status, data.split(b"\r\n\r\n", 1)[1]


@pytest.mark.parametrize("key_line", [b"", b" ", b"   ", b"\t", b" \t ", b" a b",
                                      b" a\tb", b" caf\xc3\xa9", b" \x7f", b" \x01"])
def test_empty_or_malformed_key_is_400_and_creates_nothing(stack, tenant, key_line):
    # A control character may already be refused as a malformed header
    # line by the guard, before the key is read: 400 either way.
    types = ["invalid-idempotency-key"]
    if any(c < 0x20 and c != 0x09 or c == 0x7f for c in key_line):
        types.append("malformed-request")
    for _ in range(2):
        status, body = raw_post(tenant, key_line, job_body())
        assert status == 400, (key_line, status, body)
        p = json.loads(body)
        assert p["type"] in ["urn:agentgate:problem:" + t for t in types], p
    assert job_count(stack, tenant.tenant_id) == 0
    assert redis("KEYS", f"idempotency:{tenant.tenant_id}:*") == ""


def test_white_space_around_a_key_is_not_part_of_it(stack, tenant):
    key = "order-" + uuid.uuid4().hex
    status, first = raw_post(tenant, b" " + key.encode(), job_body())
    assert status == 202, first
    status, again = raw_post(tenant, b" \t" + key.encode() + b" \t", job_body())
    assert status == 202 and again == first, (status, again)
    assert job_count(stack, tenant.tenant_id) == 1
    # The draft's sf-string form is a key too, the quotes part of it.
    post(tenant, f'"{key}"', job_body()).expect_json(202)
    assert job_count(stack, tenant.tenant_id) == 2
