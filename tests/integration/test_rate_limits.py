"""
Rate limits: token buckets in Redis per principal and per
tenant and action, configured per tenant in tenants.settings. Refused
requests are 429 with Retry-After and RateLimit-Limit/-Remaining/-Reset;
admitted ones carry the RateLimit-* headers; a tenant without limits is
untouched; while Redis is down or too slow requests are admitted (fail
open). Deployment-wide limits (AGENTGATE_RATE_LIMITS) are checked on a
second gateway started on the same stack.

Each test configures its tenant's settings before the tenant's first
request, since the gateway caches a tenant's settings for a few seconds.
"""
import http.client
import json
import os
import subprocess
import threading
import time

import pytest

from agentgate_test.client import http_request
from agentgate_test.paths import bin_path
from agentgate_test.ports import free_port
from agentgate_test.stack import redis_cli, stack_dep, wait_ready


def set_limits(stack, tenant_id, settings):
    """Stores settings for tenant_id, creating the row when missing. Runs
    as the schema owner when the stack names one (the service role may not
    be allowed to write tenants), with the tenant set for the transaction
    so row-level security lets the write through either way."""
    stack.sql("BEGIN;\n"
              "SELECT set_config('agentgate.tenant_id', :'p1', true);\n"
              "INSERT INTO tenants (id, name, settings) VALUES (:'p1', :'p1', :'p2'::jsonb)\n"
              "  ON CONFLICT (id) DO UPDATE SET settings = EXCLUDED.settings;\n"
              "COMMIT;\n",
              tenant_id, json.dumps(settings))


def limits(principal=None, tenant=None):
    rl = {}
    if principal:
        rl["principal"] = principal
    if tenant:
        rl["tenant"] = tenant
    return {"rate_limits": rl}


def post_job(t):
    return t.request("POST", "/v1/jobs",
                     body={"type": "test", "payload": {"outcome": "succeed"}})


def int_header(r, name):
    v = r.header(name)
    assert v is not None, f"{name} missing: {r.describe()}"
    assert v.isdigit(), f"{name}: {v!r} is not a whole number of seconds"
    return int(v)


def test_429_with_headers_then_admitted_after_retry_after(stack, tenant):
    # 2 tokens, refilled at one a second.
    set_limits(stack, tenant.tenant_id,
               limits(principal={"jobs.create": {"capacity": 2, "period_ms": 2000}}))
    first = post_job(tenant)
    first.expect_json(202)
    assert int_header(first, "RateLimit-Limit") == 2
    assert int_header(first, "RateLimit-Remaining") == 1
    int_header(first, "RateLimit-Reset")
    second = post_job(tenant)
    second.expect_json(202)
    assert int_header(second, "RateLimit-Remaining") == 0

    refused = post_job(tenant)
    problem = refused.expect_problem(429)
    retry = int_header(refused, "Retry-After")
    assert 1 <= retry <= 2, retry
    assert int_header(refused, "RateLimit-Limit") == 2
    assert int_header(refused, "RateLimit-Remaining") == 0
    assert 1 <= int_header(refused, "RateLimit-Reset") <= 2
    assert "jobs.create" in problem["detail"], problem

    # Actions without a limit are not limited (and never touch Redis).
    listing = tenant.list_jobs()
    listing.expect_json(200)
    assert listing.header("RateLimit-Limit") is None, listing.describe()

    time.sleep(retry)
    again = post_job(tenant)
    again.expect_json(202)
    assert int_header(again, "RateLimit-Limit") == 2


def test_principal_and_tenant_buckets_are_independent(stack):
    alice = stack.tenant("it-rl")
    bob = stack.tenant(tenant_id=alice.tenant_id, sub="bob-" + alice.tenant_id)
    set_limits(stack, alice.tenant_id, limits(
        principal={"jobs.create": {"capacity": 2, "period_ms": 600000}},
        tenant={"jobs.create": {"capacity": 4, "period_ms": 600000}}))

    post_job(alice).expect_json(202)
    post_job(alice).expect_json(202)
    # Alice's own bucket is empty ...
    p = post_job(alice).expect_problem(429)
    assert "user" in p["detail"], p
    # ... Bob's is not: his requests pass until the tenant's 4 are gone
    # (alice took 3 of them: a refused request still took its tenant token).
    post_job(bob).expect_json(202)
    refused = post_job(bob)
    p = refused.expect_problem(429)
    assert "tenant" in p["detail"], p
    assert int_header(refused, "RateLimit-Limit") == 4
    n = stack.sql("SELECT count(*) FROM jobs WHERE tenant_id = :'p1'", alice.tenant_id)
    assert n == [["3"]], n


def test_other_tenants_unaffected(stack):
    a = stack.tenant("it-rl", sub="same-user")
    b = stack.tenant("it-rl", sub="same-user")
    c = stack.tenant("it-rl")
    for t in (a, b):
        set_limits(stack, t.tenant_id,
                   limits(principal={"*": {"capacity": 1, "period_ms": 600000}}))
    post_job(a).expect_json(202)
    post_job(a).expect_problem(429)
    # The same subject in another tenant has its own bucket.
    r = post_job(b)
    r.expect_json(202)
    assert int_header(r, "RateLimit-Remaining") == 0
    # A tenant with no limits (and no tenants row) is not limited at all.
    for _ in range(5):
        r = post_job(c)
        r.expect_json(202)
        assert r.header("RateLimit-Limit") is None, r.describe()


def test_wildcard_and_public_routes(stack, tenant):
    set_limits(stack, tenant.tenant_id, limits(
        principal={"*": {"capacity": 1000, "period_ms": 1000}}))
    r = tenant.list_jobs()
    r.expect_json(200)
    assert int_header(r, "RateLimit-Limit") == 1000
    assert int_header(r, "RateLimit-Remaining") == 999
    # Health and metrics are public: never limited.
    h = http_request("GET", "/v1/health/live")
    assert h.status == 200 and h.header("RateLimit-Limit") is None


def test_fail_open_while_redis_is_down(stack, tenant):
    set_limits(stack, tenant.tenant_id,
               limits(principal={"jobs.create": {"capacity": 1, "period_ms": 600000}}))
    post_job(tenant).expect_json(202)
    post_job(tenant).expect_problem(429)
    try:
        stack_dep(stack, "redis", "stop")
        # Over the limit, yet admitted: the limiter cannot decide.
        for _ in range(3):
            r = post_job(tenant)
            r.expect_json(202)
            assert r.header("RateLimit-Limit") is None, r.describe()
    finally:
        stack_dep(stack, "redis", "start")
    wait_ready()
    # Redis kept the bucket (or lost it with a restart): either way the
    # limiter decides again once it is back.
    deadline = time.monotonic() + 10
    while True:
        r = post_job(tenant)
        if r.header("RateLimit-Limit") is not None or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert r.header("RateLimit-Limit") == "1", r.describe()


BUSY_LUA = ("local t0 = redis.call('TIME') "
            "local s = tonumber(t0[1]) * 1000000 + tonumber(t0[2]) "
            "while true do local t = redis.call('TIME') "
            "if tonumber(t[1]) * 1000000 + tonumber(t[2]) - s > tonumber(ARGV[1]) "
            "then break end end return 1")


def redis_busy(ms):
    """Keeps Redis busy (a script spinning) for ms milliseconds, in a
    thread; returns the thread. Redis stays connected but answers nothing."""
    def spin():
        redis_cli("EVAL", BUSY_LUA, "0", str(ms * 1000), timeout=30)
    th = threading.Thread(target=spin)
    th.start()
    time.sleep(0.2)     # the script is running
    return th


def test_slow_redis_admits_within_the_deadline(stack, tenant):
    set_limits(stack, tenant.tenant_id,
               limits(principal={"jobs.create": {"capacity": 1, "period_ms": 600000}}))
    post_job(tenant).expect_json(202)
    post_job(tenant).expect_problem(429)
    th = redis_busy(1500)
    try:
        t0 = time.monotonic()
        r = post_job(tenant)
        took = time.monotonic() - t0
    finally:
        th.join()
    r.expect_json(202)
    assert r.header("RateLimit-Limit") is None, r.describe()
    assert took < 1.0, f"admitted only after {took:.2f} s"


def test_changed_settings_apply_after_the_cache_time(stack, tenant):
    set_limits(stack, tenant.tenant_id,
               limits(principal={"jobs.create": {"capacity": 1, "period_ms": 600000}}))
    post_job(tenant).expect_json(202)
    post_job(tenant).expect_problem(429)
    set_limits(stack, tenant.tenant_id,
               limits(principal={"jobs.create": {"capacity": 1000, "period_ms": 1000}}))
    # AGENTGATE_TENANT_SETTINGS_CACHE_MS is 5000 by default; every loop
    # thread refreshes its own copy after that.
    time.sleep(5)
    deadline = time.monotonic() + 10
    seen = []
    while time.monotonic() < deadline:
        r = post_job(tenant)
        seen.append(r.status)
        if r.status == 202 and r.header("RateLimit-Limit") == "1000":
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"the new limit never applied: {seen}")


# -- limits from AGENTGATE_RATE_LIMITS: a second gateway on the same stack ---

def start_gateway(stack, port, log_path, **env):
    e = dict(os.environ, AGENTGATE_LISTEN=f"127.0.0.1:{port}", **env)
    log = open(log_path, "w")
    return subprocess.Popen([bin_path("agentgate-gateway"), "--config",
                             os.path.join(stack.dir, "agentgate.env")],
                            env=e, stdout=log, stderr=subprocess.STDOUT)


def call(port, t, method, path, body=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        h = {"Authorization": "Bearer " + t.token, "Content-Type": "application/json"}
        conn.request(method, path, body=json.dumps(body).encode() if body else None,
                     headers=h)
        r = conn.getresponse()
        return r.status, r.headers, r.read()
    finally:
        conn.close()


@pytest.fixture
def configured_gateway(stack, tmp_path):
    """A second gateway with deployment-wide limits and no settings cache."""
    port = free_port()
    log_path = str(tmp_path / "gateway.log")
    proc = start_gateway(stack, port, log_path,
                         AGENTGATE_RATE_LIMITS="principal:jobs.create=2/600000, "
                                               "tenant:*=1000/1000",
                         AGENTGATE_TENANT_SETTINGS_CACHE_MS="0")
    deadline = time.monotonic() + 30
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/v1/health/ready")
            if conn.getresponse().status == 200:
                break
        except OSError:
            pass
        assert proc.poll() is None, open(log_path).read()
        assert time.monotonic() < deadline, "second gateway not ready"
        time.sleep(0.1)
    yield port
    proc.terminate()
    proc.wait(timeout=20)
    text = open(log_path).read()
    assert "ERROR: AddressSanitizer" not in text and "runtime error:" not in text, text


def test_configured_limits_apply_and_tenant_settings_only_lower_them(stack,
                                                                    configured_gateway):
    port = configured_gateway
    job = {"type": "test", "payload": {"outcome": "succeed"}}
    plain = stack.tenant("it-rlc")
    for _ in range(2):
        status, h, _ = call(port, plain, "POST", "/v1/jobs", job)
        assert status == 202
    assert h["RateLimit-Limit"] == "2" and h["RateLimit-Remaining"] == "0", dict(h)
    status, h, body = call(port, plain, "POST", "/v1/jobs", job)
    assert status == 429, body
    assert int(h["Retry-After"]) >= 1
    # "tenant:*" applies to reads too, and the tighter bucket is shown.
    status, h, _ = call(port, plain, "GET", "/v1/jobs")
    assert status == 200 and h["RateLimit-Limit"] == "1000", dict(h)

    # A tenant's own lower limit wins ...
    lower = stack.tenant("it-rlc")
    set_limits(stack, lower.tenant_id,
               limits(principal={"jobs.create": {"capacity": 1, "period_ms": 600000}}))
    status, h, body = call(port, lower, "POST", "/v1/jobs", job)
    assert status == 202, body
    assert h["RateLimit-Limit"] == "1" and h["RateLimit-Remaining"] == "0", dict(h)
    assert call(port, lower, "POST", "/v1/jobs", job)[0] == 429
    # ... a higher one (stored before the ceiling was checked, or by hand)
    # does not lift the operator's.
    higher = stack.tenant("it-rlc")
    set_limits(stack, higher.tenant_id,
               limits(principal={"jobs.create": {"capacity": 5, "period_ms": 600000}}))
    for _ in range(2):
        status, h, body = call(port, higher, "POST", "/v1/jobs", job)
        assert status == 202, body
    assert h["RateLimit-Limit"] == "2" and h["RateLimit-Remaining"] == "0", dict(h)
    assert call(port, higher, "POST", "/v1/jobs", job)[0] == 429


BILLION_PER_MS = {"capacity": 1000000000, "period_ms": 1}


def test_a_tenant_admin_cannot_lift_the_operators_limits(stack, tmp_path):
    port = free_port()
    proc = start_gateway(stack, port, str(tmp_path / "gateway.log"),
                         AGENTGATE_RATE_LIMITS="tenant:jobs.create=5/600000",
                         AGENTGATE_TENANT_SETTINGS_CACHE_MS="0")
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/v1/health/ready")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                pass
            assert proc.poll() is None, open(tmp_path / "gateway.log").read()
            assert time.monotonic() < deadline, "gateway not ready"
            time.sleep(0.1)
        t = stack.tenant("it-rlceil")
        # Asking for more than the operator allows is refused, naming it.
        status, _, body = call(port, t, "PATCH", f"/v1/tenants/{t.tenant_id}",
                               {"settings": limits(tenant={"jobs.create": BILLION_PER_MS})})
        assert status == 422, body
        p = json.loads(body)
        assert p["errors"] == [{"pointer": "/settings/rate_limits/tenant/jobs.create",
                                "detail": p["detail"]}], p
        assert "5 per 600000 ms" in p["detail"], p
        status, _, body = call(port, t, "PATCH", f"/v1/tenants/{t.tenant_id}",
                               {"settings": limits(tenant={"*": BILLION_PER_MS})})
        assert status == 422, body
        assert stack.sql("SELECT count(*) FROM tenants WHERE id = :'p1'",
                         t.tenant_id) == [["0"]]
        # Stored anyway (a row written before the check, or by hand), it is
        # held to the ceiling: 5 of 30 submissions pass.
        set_limits(stack, t.tenant_id, limits(principal={"*": BILLION_PER_MS},
                                              tenant={"jobs.create": BILLION_PER_MS,
                                                      "*": BILLION_PER_MS}))
        job = {"type": "test", "payload": {"outcome": "succeed"}}
        statuses = [call(port, t, "POST", "/v1/jobs", job)[0] for _ in range(30)]
        assert statuses.count(202) == 5 and statuses.count(429) == 25, statuses
        assert stack.sql("SELECT count(*) FROM jobs WHERE tenant_id = :'p1'",
                         t.tenant_id) == [["5"]]
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    text = open(tmp_path / "gateway.log").read()
    assert "ERROR: AddressSanitizer" not in text and "runtime error:" not in text, text


def test_bad_configured_limits_stop_the_gateway(stack, tmp_path):
    log_path = str(tmp_path / "gateway.log")
    proc = start_gateway(stack, free_port(), log_path,
                         AGENTGATE_RATE_LIMITS="principal:jobs.create=lots/1000")
    assert proc.wait(timeout=30) != 0
    assert "AGENTGATE_RATE_LIMITS" in open(log_path).read()
