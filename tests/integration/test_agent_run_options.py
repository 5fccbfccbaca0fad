"""POST /v1/agent-runs options: every setting is checked and refused with
422 naming the field (nothing written), accepted at its limits, stored on
the run with the submitter's principal, and a session of another tenant
is 404."""

import json
import uuid

import pytest

from agentgate_test.tokens import DEFAULT_ROLES, DEFAULT_SCOPE


def _post(tenant, **body):
    return tenant.request("POST", "/v1/agent-runs", body=body)


def _assert_nothing_created(tenant):
    page = tenant.list_jobs().expect_json(200)
    assert page["items"] == [], f"a refused run created a job: {page}"


@pytest.mark.parametrize("field,value", [
    ("max_iterations", 0), ("max_iterations", 65), ("max_iterations", 2.5),
    ("max_iterations", "3"), ("max_iterations", None),
    ("timeout_s", 0), ("timeout_s", 86401), ("timeout_s", -5), ("timeout_s", "60"),
    ("temperature", -0.1), ("temperature", 2.01), ("temperature", "hot"),
    ("max_tokens", 0), ("max_tokens", 100001), ("max_tokens", 1.5),
    ("planning_mode", "bogus"), ("planning_mode", 1),
    ("response_mode", "sometimes"),
    ("tools", "system.time"), ("tools", {"a": 1}),
    ("tools", [f"t{i}" for i in range(33)]),
    ("tools", [7]), ("tools", [""]), ("tools", ["x" * 129]),
    ("tools", ["ok.tool", "bad name"]), ("tools", ["semi;colon"]),
    ("model", ""), ("model", "m" * 129), ("model", 5),
    ("session_id", "not-a-uuid"), ("session_id", 12),
    ("prompt", ""), ("prompt", "p" * 32001),
])
def test_bad_option_is_422_naming_the_field(tenant, field, value):
    body = {"prompt": "hello there", field: value}
    p = _post(tenant, **body).expect_problem(422)
    pointers = [e["pointer"] for e in p.get("errors", [])]
    assert len(pointers) == 1 and pointers[0].startswith("/" + field), (
        f"error does not point at /{field}: {p}")
    assert field in p["detail"], f"detail does not name {field}: {p['detail']!r}"
    _assert_nothing_created(tenant)


def test_missing_prompt_is_422(tenant):
    p = _post(tenant, planning_mode="none").expect_problem(422)
    assert "prompt" in p["detail"], p
    _assert_nothing_created(tenant)


def test_unknown_model_is_422(tenant):
    p = _post(tenant, prompt="hi", model="gpt-nonexistent-" + uuid.uuid4().hex[:6]
              ).expect_problem(422)
    assert [e["pointer"] for e in p["errors"]] == ["/model"], p
    _assert_nothing_created(tenant)


def test_unknown_session_is_404(tenant):
    p = _post(tenant, prompt="hi", session_id=str(uuid.uuid4())).expect_problem(404)
    assert p["detail"] == "session not found", p
    _assert_nothing_created(tenant)


def test_session_of_another_tenant_is_404_and_untouched(stack, tenant, other_tenant):
    s = tenant.request("POST", "/v1/sessions", body={"title": "A's"}).expect_json(201)
    p = _post(other_tenant, prompt="hi", session_id=s["id"]).expect_problem(404)
    assert p["detail"] == "session not found", p
    _assert_nothing_created(other_tenant)
    rows = stack.sql("SELECT updated_at = created_at FROM sessions WHERE id = :'p1'", s["id"])
    assert rows == [["t"]], f"B's refused run touched A's session: {rows}"


def test_unknown_model_with_a_session_leaves_the_session_alone(stack, tenant):
    s = tenant.request("POST", "/v1/sessions", body={}).expect_json(201)
    _post(tenant, prompt="hi", session_id=s["id"], model="nope-" + uuid.uuid4().hex
          ).expect_problem(422)
    rows = stack.sql("SELECT updated_at = created_at FROM sessions WHERE id = :'p1'", s["id"])
    assert rows == [["t"]], f"a refused run touched the session: {rows}"
    _assert_nothing_created(tenant)


def test_options_at_their_limits_are_stored_with_the_principal(stack, tenant):
    s = tenant.request("POST", "/v1/sessions", body={"title": "limits"}).expect_json(201)
    tools = ["system.time"] + [f"it.tool-{i}_x" for i in range(31)]
    body = {"prompt": "what time is it in UTC?", "session_id": s["id"].upper(),
            "model": "builtin-deterministic-1", "temperature": 2, "max_tokens": 100000,
            "max_iterations": 64, "timeout_s": 86400, "planning_mode": "none",
            "response_mode": "fallback-only", "tools": tools}
    run = _post(tenant, **body).expect_json(202)
    got = tenant.request("GET", f"/v1/agent-runs/{run['id']}").expect_json(200)
    want = {"session_id": s["id"], "model": "builtin-deterministic-1",
            "temperature": 2, "max_tokens": 100000, "max_iterations": 64,
            "timeout_s": 86400, "planning_mode": "none",
            "response_mode": "fallback-only", "tools": tools}
    for k, v in want.items():
        assert got.get(k) == v, f"{k}: {got.get(k)!r} != {v!r}\n{got}"

    (principal, job_timeout, payload), = stack.sql(
        "SELECT r.principal::text, j.timeout_s, j.payload::text FROM agent_runs r"
        " JOIN jobs j ON j.id = r.job_id WHERE r.id = :'p1'", run["id"])
    assert json.loads(principal) == {"sub": tenant.sub, "roles": DEFAULT_ROLES,
                                     "scope": DEFAULT_SCOPE}, principal
    assert job_timeout == "86400", f"job timeout_s {job_timeout} for a run's 86400"
    assert json.loads(payload) == {"run_id": run["id"], "prompt": body["prompt"],
                                   "session_id": s["id"]}, payload
    assert tenant.wait_run(run["id"])["status"] in ("succeeded", "failed")


def test_defaults_leave_options_unset(stack, tenant):
    run = _post(tenant, prompt="hello there").expect_json(202)
    got = tenant.request("GET", f"/v1/agent-runs/{run['id']}").expect_json(200)
    for k in ("model", "temperature", "max_tokens", "max_iterations", "timeout_s",
              "tools", "session_id"):
        assert got[k] is None, f"{k} is {got[k]!r} though not given"
    assert got["planning_mode"] == "optional" and got["response_mode"] == "llm-best-effort"
    (job_timeout,), = stack.sql("SELECT timeout_s FROM jobs WHERE id = :'p1'", run["job_id"])
    assert job_timeout == "600", job_timeout


@pytest.mark.parametrize("run_timeout,job_timeout", [
    (1, 600), (570, 600), (1000, 1030), (86390, 86400),
])
def test_job_timeout_is_a_backstop_behind_the_runs_own(stack, tenant, run_timeout,
                                                       job_timeout):
    run = _post(tenant, prompt="hello there", timeout_s=run_timeout).expect_json(202)
    rows = stack.sql("SELECT j.timeout_s, r.timeout_s FROM jobs j JOIN agent_runs r"
                     " ON r.job_id = j.id WHERE r.id = :'p1'", run["id"])
    assert rows == [[str(job_timeout), str(run_timeout)]], rows


def test_principal_records_roles_and_scope_of_the_token(stack, tenant):
    token = tenant.make_token(roles=["operator", "viewer"], scope="agent-runs:write jobs:read tools:cache")
    r = tenant.request("POST", "/v1/agent-runs", body={"prompt": "hi there"}, token=token)
    run = r.expect_json(202)
    (principal,), = stack.sql("SELECT principal::text FROM agent_runs WHERE id = :'p1'",
                              run["id"])
    assert json.loads(principal) == {"sub": tenant.sub, "roles": ["operator", "viewer"],
                                     "scope": "agent-runs:write jobs:read tools:cache"}, principal
