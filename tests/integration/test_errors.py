"""Errors: every refusal is an RFC 9457 problem with the request id, bad
input changes nothing, and authentication is enforced."""

import base64
import json
import time
import uuid
from decimal import Decimal

import pytest


def _assert_nothing_submitted(tenant):
    page = tenant.list_jobs().expect_json(200)
    assert page["items"] == [], f"a refused submission created a job: {page}"


# -- submissions -------------------------------------------------------------

@pytest.mark.parametrize("raw", [b'{"type": "demo", "payload": {', b"not json",
                                 b"", b'{"type":"demo","payload":{}} trailing'])
def test_malformed_json_is_400(tenant, raw):
    tenant.request("POST", "/v1/jobs", raw=raw).expect_problem(400)
    _assert_nothing_submitted(tenant)


@pytest.mark.parametrize("body", [[1, 2], "demo", 42, None])
def test_non_object_body_is_refused(tenant, body):
    tenant.request("POST", "/v1/jobs",
                   raw=json.dumps(body).encode()).expect_problem(400, 422)
    _assert_nothing_submitted(tenant)


@pytest.mark.parametrize("body", [
    {"type": "no-such-type", "payload": {}},
    {"payload": {}},
    {"type": 7, "payload": {}},
    {"type": "agent.run", "payload": {"prompt": "hi"}},
    {"type": "demo", "payload": {}, "bogus": 1},
    {"type": "demo", "payload": {}, "max_attempts": 0},
    {"type": "demo", "payload": {}, "max_attempts": 101},
    {"type": "demo", "payload": {}, "timeout_s": 0},
    {"type": "demo", "payload": {}, "priority": "high"},
    {"type": "demo", "payload": []},
], ids=["unknown-type", "no-type", "type-not-string", "agent.run",
        "unknown-field", "max_attempts-0", "max_attempts-101", "timeout_s-0",
        "priority-string", "payload-array"])
def test_invalid_submission_is_422(tenant, body):
    tenant.request("POST", "/v1/jobs", body=body).expect_problem(422)
    _assert_nothing_submitted(tenant)


@pytest.mark.parametrize("type_,payload,pointer,word", [
    ("demo", {"events": "many"}, "/payload/events", "events"),
    ("demo", {"events": 10001}, "/payload/events", "events"),
    ("demo", {"duration_ms": -1}, "/payload/duration_ms", "duration_ms"),
    ("demo", {"evnts": 1}, "/payload/evnts", "evnts"),
    ("test", {"outcome": "maybe"}, "/payload/outcome", "outcome"),
    ("test", {"outcome": "fail", "error": {"code": 5}},
     "/payload/error/code", "code"),
    ("long-running", {"progress_interval_ms": 1},
     "/payload/progress_interval_ms", "progress_interval_ms"),
])
def test_payload_failing_its_schema_is_422_with_pointer(tenant, type_, payload,
                                                        pointer, word):
    r = tenant.request("POST", "/v1/jobs", body={"type": type_, "payload": payload})
    p = r.expect_problem(422)
    errs = p.get("errors")
    assert isinstance(errs, list) and errs, f"problem lacks errors[]: {p}"
    for e in errs:
        assert set(e) >= {"pointer", "detail"}, f"error entry: {e}"
    assert pointer in [e["pointer"] for e in errs], (
        f"no error at {pointer}: {errs}")
    assert word in p["detail"], (
        f"detail does not name the failing path ({word}): {p['detail']!r}")
    _assert_nothing_submitted(tenant)


# -- numbers that could not be stored as sent --------------------------------
# A body is kept as parsed (doubles) and printed back; a number whose value
# would change on the way is refused with its pointer, never stored as
# something else (1e400 as null, 123456789012345678901234567890 rounded).

REFUSED_NUMBERS = ["1e400", "-1e400", "123456789012345678901234567890", "1e-400",
                   "9007199254740993", "0.1000000000000000055511151231257827", "5e-324"]
# Kept: the same value comes back (spelling aside: 1E2 is 100, -0 is 0).
KEPT_NUMBERS = ["-0", "0.1", "1E2", "9007199254740991", "9007199254740992",
                "0.30000000000000004", "1.7976931348623157e308", "-2.5e-7", "12345678901234568"]


def _post_result(tenant, number):
    raw = ('{"type":"test","payload":{"outcome":"succeed","result":{"n":[1,%s]}}}'
           % number).encode()
    return tenant.request("POST", "/v1/jobs", raw=raw)


@pytest.mark.parametrize("number", REFUSED_NUMBERS)
def test_a_number_that_would_change_is_422_with_its_pointer(stack, tenant, number):
    p = _post_result(tenant, number).expect_problem(422)
    assert p["type"] == "urn:agentgate:problem:validation-failed", p
    assert p["errors"] == [{"pointer": "/payload/result/n/1", "detail": p["detail"]}], p
    assert p["detail"].startswith("payload/result/n/1 is a number that cannot be kept"), p
    _assert_nothing_submitted(tenant)


@pytest.mark.parametrize("number", KEPT_NUMBERS)
def test_a_number_kept_exactly_is_stored_as_sent(stack, tenant, number):
    job = _post_result(tenant, number).expect_json(202)
    # The value stored is the value sent (jsonb numbers are exact decimals).
    assert stack.sql("SELECT payload #> '{result,n,1}' = :'p2'::jsonb FROM jobs"
                     " WHERE id = :'p1'", job["id"], number) == [["t"]], job["payload"]
    r = tenant.request("GET", f"/v1/jobs/{job['id']}")
    r.expect_json(200)
    exact = json.loads(r.body, parse_float=Decimal, parse_int=Decimal)
    got = exact["payload"]["result"]["n"][1]
    assert got == Decimal(number), (number, got)


def test_numbers_are_checked_in_every_body(stack, tenant):
    cases = [
        ("POST", "/v1/sessions", '{"metadata":{"big":123456789012345678901234567890}}',
         "/metadata/big"),
        ("POST", "/v1/models", '{"provider":"builtin","model":"m","params":{"t":1e400}}',
         "/params/t"),
        ("PATCH", f"/v1/tenants/{tenant.tenant_id}",
         '{"settings":{"max_running":1e400}}', "/settings/max_running"),
        ("POST", "/v1/agent-runs", '{"prompt":"hi","temperature":1e-400}', "/temperature"),
    ]
    for method, path, raw, pointer in cases:
        p = tenant.request(method, path, raw=raw.encode()).expect_problem(422)
        assert [e["pointer"] for e in p["errors"]] == [pointer], (path, p)


def test_a_temperature_a_real_cannot_hold_is_422(stack, tenant):
    body = {"prompt": "hi", "planning_mode": "none", "response_mode": "fallback-only"}
    p = tenant.request("POST", "/v1/agent-runs",
                       body=dict(body, temperature=0.123456789)).expect_problem(422)
    assert [e["pointer"] for e in p["errors"]] == ["/temperature"], p
    assert "0.12345679" in p["detail"], p
    run = tenant.request("POST", "/v1/agent-runs",
                         body=dict(body, temperature=0.7)).expect_json(202)
    got = tenant.request("GET", f"/v1/agent-runs/{run['id']}").expect_json(200)
    assert got["temperature"] == 0.7, got


def test_missing_required_payload_field_is_422(tenant):
    r = tenant.request("POST", "/v1/jobs", body={"type": "test", "payload": {}})
    p = r.expect_problem(422)
    errs = p.get("errors") or []
    assert any(e.get("pointer") in ("/payload", "/payload/outcome")
               for e in errs), f"errors do not point at the payload: {errs}"
    assert "outcome" in p["detail"], (
        f"detail does not name the missing field: {p['detail']!r}")


def test_oversized_body_is_413(tenant):
    big = {"type": "test", "payload": {"outcome": "succeed",
                                       "result": "x" * (2 * 1024 * 1024)}}
    tenant.request("POST", "/v1/jobs", body=big).expect_problem(413)
    _assert_nothing_submitted(tenant)


# -- not found and unknown routes --------------------------------------------

def test_unknown_and_malformed_ids_are_404(tenant):
    unknown = str(uuid.uuid4())
    for path in (f"/v1/jobs/{unknown}", "/v1/jobs/not-a-uuid",
                 "/v1/jobs/12345", f"/v1/jobs/{unknown}x",
                 f"/v1/agent-runs/{unknown}", "/v1/agent-runs/nope"):
        tenant.request("GET", path).expect_problem(404)
    tenant.request("DELETE", f"/v1/jobs/{unknown}").expect_problem(404)
    tenant.request("DELETE", "/v1/jobs/not-a-uuid").expect_problem(404)
    for path in (f"/v1/jobs/{unknown}/events", "/v1/jobs/zzz/events"):
        tenant.sse(path).response().expect_problem(404)


@pytest.mark.parametrize("method,path", [
    ("GET", "/v1/no-such-thing"),
    ("GET", "/v2/jobs"),
    ("PUT", "/v1/jobs"),
    ("PATCH", "/v1/jobs/00000000-0000-4000-8000-000000000000"),
    ("POST", "/v1/jobs/00000000-0000-4000-8000-000000000000"),
    ("POST", "/v1/health/live"),
])
def test_unknown_route_or_method_is_404_or_405(tenant, method, path):
    r = tenant.request(method, path, raw=b"{}" if method != "GET" else None)
    r.expect_problem(404, 405)


# -- authentication ------------------------------------------------------------

def _expect_401(tenant, token=None, raw_header=None):
    h = {"Authorization": raw_header} if raw_header is not None else {}
    r = tenant.request("GET", "/v1/jobs", token=token or None, headers=h)
    r.expect_problem(401)
    www = r.header("WWW-Authenticate") or ""
    assert www.lower().startswith("bearer"), (
        f"401 without WWW-Authenticate: Bearer (got {www!r})")
    return r


def test_missing_token_is_401(tenant):
    _expect_401(tenant)
    r = tenant.request("POST", "/v1/jobs", body={"type": "demo", "payload": {}},
                       token=None)
    r.expect_problem(401)
    _assert_nothing_submitted(tenant)


def test_expired_token_is_401(tenant):
    now = int(time.time())
    _expect_401(tenant, tenant.make_token(iat=now - 7200, exp=now - 3600))


def test_not_yet_valid_token_is_401(tenant):
    now = int(time.time())
    _expect_401(tenant, tenant.make_token(nbf=now + 3600))


def test_wrong_signature_is_401(tenant):
    _expect_401(tenant, tenant.make_token(secret="some-other-secret-entirely"))
    # A valid token with its signature altered.
    head, body, sig = tenant.token.split(".")
    flipped = sig[:-2] + ("AA" if sig[-2:] != "AA" else "BB")
    _expect_401(tenant, f"{head}.{body}.{flipped}")
    # Claims altered under a valid signature: another tenant's id.
    claims = tenant.claims(tenant_id="someone-else")
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=")
    _expect_401(tenant, f"{head}.{forged.decode()}.{sig}")


def test_alg_none_is_401(tenant):
    _expect_401(tenant, tenant.make_token(alg="none"))
    _expect_401(tenant, tenant.make_token(alg="HS512"))


@pytest.mark.parametrize("header", ["Bearer garbage", "Bearer a.b.c",
                                    "Bearer ", "Basic dXNlcjpwYXNz",
                                    "garbage", "Bearer " + "x" * 8000])
def test_garbage_authorization_is_401(tenant, header):
    _expect_401(tenant, raw_header=header)


def test_token_without_tenant_is_401(tenant):
    _expect_401(tenant, tenant.make_token(tenant_id=None))
    _expect_401(tenant, tenant.make_token(exp=None))


# -- request ids -------------------------------------------------------------

def test_every_response_has_a_request_id(tenant):
    job = tenant.submit("demo", {"events": 0, "duration_ms": 0})
    responses = [
        tenant.request("POST", "/v1/jobs",
                       body={"type": "demo", "payload": {"events": 0}}),
        tenant.request("GET", f"/v1/jobs/{job['id']}"),
        tenant.list_jobs(),
        tenant.request("GET", "/v1/health/live", token=None),
        tenant.request("GET", "/v1/jobs/nope"),
        tenant.request("GET", "/v1/jobs", token=None),
    ]
    seen = set()
    for r in responses:
        rid = r.header("X-Request-Id")
        assert rid, "no X-Request-Id: " + r.describe()
        assert rid not in seen, f"request id {rid} reused"
        seen.add(rid)
    s = tenant.open_events(job["id"])
    assert s.headers.get("X-Request-Id"), "SSE response lacks X-Request-Id"
    s.close()


def test_caller_request_id_is_echoed(tenant):
    rid = "it-" + uuid.uuid4().hex
    r = tenant.request("GET", "/v1/jobs", headers={"X-Request-Id": rid})
    r.expect(200)
    assert r.header("X-Request-Id") == rid, (
        f"X-Request-Id {r.header('X-Request-Id')!r}, sent {rid!r}")
    r = tenant.request("GET", "/v1/jobs/not-a-uuid",
                       headers={"X-Request-Id": rid})
    p = r.expect_problem(404)
    assert p["request_id"] == rid, p


@pytest.mark.parametrize("bad", ["x" * 1000, 'bad"<id>', "a b c"])
def test_insane_request_id_is_replaced(tenant, bad):
    r = tenant.request("GET", "/v1/jobs/not-a-uuid", headers={"X-Request-Id": bad})
    p = r.expect_problem(404)
    rid = r.header("X-Request-Id")
    assert rid and rid != bad, f"insane X-Request-Id echoed: {rid!r}"
    assert p["request_id"] == rid
