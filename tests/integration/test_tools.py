"""The tools runtime through real agent runs: every tool call the
deterministic planner (or a model) makes goes manifest -> arguments ->
scopes -> rate limit -> handler, and leaves a tool:invoke step, a
tool.called event and an audit_logs row whatever the outcome.

Covered: a tool denied for want of a scope (the run still succeeds and
says why), jobs.list seeing only the caller's tenant, a tenant manifest
with rate_limit 1 (the second call is rate_limited, the bucket is in
Redis under rate:{tenant}:tool:{name}), a tenant manifest whose schema
the planner's arguments do not meet (invalid, with the JSON Pointer),
audit rows for each call, jobs.get / model.list / agent.history /
security.describe_principal / catalog.search reading only what the
caller may see, and the cache tools' tenant-scoped keys through a
model's tool calls (the OpenAI stand-in plays the model)."""

import json
import uuid

from agentgate_test.client import check_frames
from agentgate_test.stack import redis_cli
from agentgate_test.waiting import TIMEOUT

NO_JOBS_SCOPE = "agent-runs:read agent-runs:write"


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

def _as(stack, tenant, scope, sub=None):
    """A client of tenant's tenant whose token carries only scope."""
    c = stack.tenant(tenant_id=tenant.tenant_id, sub=sub or tenant.sub)
    c.token = c.make_token(scope=scope, roles=["user"])
    return c


def _run(client, prompt, request_id=None, **body):
    """Starts a run, waits for it to end, returns (run, its events)."""
    headers = {"X-Request-Id": request_id} if request_id else None
    req = {"prompt": prompt}
    req.update(body)
    started = client.request("POST", "/v1/agent-runs", body=req,
                             headers=headers).expect_json(202)
    run = client.wait_run(started["id"], timeout=TIMEOUT)
    # The run's own stream: a token scoped to agent runs alone may read it.
    stream = client.sse(f"/v1/agent-runs/{run['id']}/events")
    assert stream.status == 200, stream.response().describe()
    events = stream.read_to_end(TIMEOUT)
    check_frames(events, run["job_id"])
    return run, events


def _tool_steps(run, tool=None):
    return [s for s in run["steps"] if s["action"] == "tool:invoke"
            and (tool is None or (s.get("output") or {}).get("tool") == tool
                 or (s.get("input") or {}).get("tool") == tool)]


def _called(events, tool=None):
    return [e.body["data"] for e in events if e.event == "tool.called"
            and (tool is None or e.body["data"].get("tool") == tool)]


def _one_call(run, events, tool):
    """The one tool:invoke step and tool.called event of tool in run."""
    steps = _tool_steps(run, tool)
    assert len(steps) == 1, (
        f"expected one {tool} step, got {[s['action'] for s in run['steps']]}: "
        f"{json.dumps(run['steps'])[:3000]}")
    called = _called(events, tool)
    assert len(called) == 1, f"expected one tool.called for {tool}: {called}"
    return steps[0], called[0]


def _audit(stack, tenant_id, job_id=None):
    rows = stack.sql(
        "SELECT principal, action, resource, outcome, coalesce(request_id, ''),"
        "       detail::text"
        "  FROM audit_logs WHERE tenant_id = :'p1' AND action = 'tool.invoke'"
        "   AND (:'p2' = '' OR detail->>'job_id' = :'p2') ORDER BY id",
        tenant_id, job_id or "")
    return [{"principal": r[0], "action": r[1], "resource": r[2],
             "outcome": r[3], "request_id": r[4], "detail": json.loads(r[5])}
            for r in rows]


def _manifest_like(stack, tenant_id, name, input_schema=None, rate_limit=None):
    """A tenant row for name, copied from the global one with changes."""
    stack.sql(
        "INSERT INTO tool_manifests (tenant_id, name, description, input_schema,"
        "                            required_scopes, rate_limit)"
        " SELECT :'p1', name, description,"
        "        coalesce(nullif(:'p3', '')::jsonb, input_schema),"
        "        required_scopes, nullif(:'p4', '')::int"
        "   FROM tool_manifests WHERE tenant_id IS NULL AND name = :'p2'",
        tenant_id, name, json.dumps(input_schema) if input_schema else "",
        "" if rate_limit is None else str(rate_limit))


def _failed_job(client):
    job = client.submit("test", {"outcome": "fail"}, max_attempts=1)
    done = client.wait_job(job["id"])
    assert done["status"] == "failed", done
    return job["id"]


# --------------------------------------------------------------------------
# the pipeline's outcomes
# --------------------------------------------------------------------------

def test_tool_without_scope_is_denied_and_the_run_explains_it(stack, tenant):
    weak = _as(stack, tenant, NO_JOBS_SCOPE)
    rid = "it-tools-" + uuid.uuid4().hex
    run, events = _run(weak, "what jobs failed today?", request_id=rid)

    assert run["status"] == "succeeded", run
    step, called = _one_call(run, events, "jobs.list")
    assert step["output"]["status"] == "denied", step
    assert "jobs:read" in step["output"]["message"], step
    assert called["status"] == "denied", called
    assert "jobs:read" in called["error"], called
    assert "output_preview" not in called, called
    # The refusal reaches the answer, in words the user can act on.
    assert "permission denied" in run["output"] and "jobs:read" in run["output"], run["output"]

    rows = _audit(stack, tenant.tenant_id, run["job_id"])
    assert [(r["resource"], r["outcome"]) for r in rows] == [
        ("tool:jobs.list", "denied")], rows
    r = rows[0]
    assert r["action"] == "tool.invoke" and r["principal"] == weak.sub, r
    assert r["request_id"] == rid, r
    assert r["detail"]["job_id"] == run["job_id"], r
    assert r["detail"]["run_id"] == run["id"], r
    assert "jobs:read" in r["detail"]["reason"], r
    assert isinstance(r["detail"]["latency_ms"], int), r


def test_jobs_list_sees_only_the_callers_tenant(stack, tenant, other_tenant):
    mine = _failed_job(tenant)
    theirs = _failed_job(other_tenant)
    run, events = _run(tenant, "what jobs failed today?")

    assert run["status"] == "succeeded", run
    step, called = _one_call(run, events, "jobs.list")
    assert step["output"]["status"] == "ok", step
    listed = step["output"]["output"]
    assert listed["filter"]["status"] == "failed", listed
    assert listed["filter"]["since"].endswith("T00:00:00.000Z"), listed
    ids = [j["id"] for j in listed["jobs"]]
    assert mine in ids and theirs not in ids, ids
    assert all(j["status"] == "failed" for j in listed["jobs"]), listed
    job = next(j for j in listed["jobs"] if j["id"] == mine)
    assert set(job) == {"id", "type", "status", "error", "created_at",
                        "finished_at"}, job
    assert job["type"] == "test" and job["error"]["code"], job
    assert called["status"] == "ok" and mine in called["output_preview"], called
    assert mine in run["output"], run["output"]
    assert theirs not in json.dumps(run), "another tenant's job leaked into the run"

    rows = _audit(stack, tenant.tenant_id, run["job_id"])
    assert [(r["resource"], r["outcome"]) for r in rows] == [
        ("tool:jobs.list", "ok")], rows
    assert rows[0]["detail"]["reason"] is None, rows
    assert not _audit(stack, other_tenant.tenant_id), (
        "a call of one tenant was audited under another")


def test_tenant_rate_limit_of_one_refuses_the_second_call(stack, tenant):
    _manifest_like(stack, tenant.tenant_id, "system.time", rate_limit=1)
    first, ev1 = _run(tenant, "what time is it in UTC?")
    second, ev2 = _run(tenant, "what time is it in UTC?")

    step1, called1 = _one_call(first, ev1, "system.time")
    assert step1["output"]["status"] == "ok", step1
    assert called1["status"] == "ok", called1
    step2, called2 = _one_call(second, ev2, "system.time")
    assert second["status"] == "succeeded", second
    assert step2["output"]["status"] == "rate_limited", step2
    assert called2["status"] == "rate_limited", called2
    assert "1 call per minute" in called2["error"], called2
    assert "rate limit reached" in second["output"], second["output"]

    rows = _audit(stack, tenant.tenant_id)
    assert [r["outcome"] for r in rows] == ["ok", "rate_limited"], rows
    assert 0 < rows[1]["detail"]["retry_after_ms"] <= 60000, rows[1]

    key = f"rate:{tenant.tenant_id}:tool:system.time"
    ttl = redis_cli("PTTL", key)
    assert ttl.returncode == 0 and int(ttl.stdout.strip()) > 0, (
        f"bucket {key} not in Redis with a TTL: {ttl.stdout!r} {ttl.stderr!r}")


def test_other_tenants_are_not_limited_by_a_tenants_bucket(stack, tenant, other_tenant):
    _manifest_like(stack, tenant.tenant_id, "system.time", rate_limit=1)
    _run(tenant, "what time is it in UTC?")
    run, events = _run(other_tenant, "what time is it in UTC?")
    step, _ = _one_call(run, events, "system.time")
    assert step["output"]["status"] == "ok", step


def test_arguments_that_miss_the_tenant_schema_are_invalid(stack, tenant):
    _manifest_like(stack, tenant.tenant_id, "system.time", input_schema={
        "type": "object", "properties": {"tz": {"type": "string"}},
        "required": ["tz"]})
    run, events = _run(tenant, "what time is it in UTC?")

    assert run["status"] == "succeeded", run
    step, called = _one_call(run, events, "system.time")
    assert step["output"]["status"] == "invalid", step
    assert "/tz" in called["error"] and "is required" in called["error"], called
    assert "/tz: is required" in run["output"], run["output"]
    rows = _audit(stack, tenant.tenant_id, run["job_id"])
    assert [r["outcome"] for r in rows] == ["invalid"], rows
    assert "/tz" in rows[0]["detail"]["reason"], rows


def test_every_call_of_a_run_is_audited_once(stack, tenant):
    rid = "it-tools-" + uuid.uuid4().hex
    run, events = _run(tenant, "what time is it in UTC, and is the worker healthy?",
                       request_id=rid)
    steps = _tool_steps(run)
    called = _called(events)
    assert {c["tool"] for c in called} == {"system.time", "system.health"}, called
    assert len(steps) == len(called) == 2, (steps, called)
    rows = _audit(stack, tenant.tenant_id, run["job_id"])
    assert sorted(r["resource"] for r in rows) == ["tool:system.health",
                                                  "tool:system.time"], rows
    for r in rows:
        assert r["outcome"] == "ok" and r["request_id"] == rid, r
        assert r["principal"] == tenant.sub, r
        assert r["detail"]["run_id"] == run["id"], r
    health = next(c for c in called if c["tool"] == "system.health")
    assert "database ok, redis ok" in health["output_preview"], health


# --------------------------------------------------------------------------
# what the tools read
# --------------------------------------------------------------------------

def test_jobs_get_finds_own_job_and_not_another_tenants(stack, tenant, other_tenant):
    mine = _failed_job(tenant)
    theirs = _failed_job(other_tenant)

    run, events = _run(tenant, f"what happened to job {mine}?")
    step, _ = _one_call(run, events, "jobs.get")
    out = step["output"]["output"]
    assert out["found"] is True and out["job"]["id"] == mine, out
    assert out["job"]["status"] == "failed", out

    run, events = _run(tenant, f"what happened to job {theirs}?")
    step, called = _one_call(run, events, "jobs.get")
    out = step["output"]["output"]
    assert out == {"id": theirs, "found": False, "job": None}, out
    assert "no job" in called["output_preview"], called


def test_model_list_shows_names_only_and_only_the_tenants(stack, tenant, other_tenant):
    secret = "http://10.9.8.7:1234/secret-" + uuid.uuid4().hex
    mine, theirs = "mine-" + uuid.uuid4().hex[:8], "theirs-" + uuid.uuid4().hex[:8]
    for tid, model in ((tenant.tenant_id, mine), (other_tenant.tenant_id, theirs)):
        stack.sql("INSERT INTO model_defaults (scope, tenant_id, provider, model, base_url,"
                  " params) VALUES ('tenant', :'p1', 'it-prov', :'p2', :'p3',"
                  " '{\"api_key\":\"sk-never-shown\"}')", tid, model, secret)
    run, events = _run(tenant, "which models are available?")
    step, _ = _one_call(run, events, "model.list")
    models = step["output"]["output"]["models"]
    names = {m["model"] for m in models}
    assert mine in names and theirs not in names, models
    assert "builtin-deterministic-1" in names, models
    for m in models:
        assert set(m) == {"provider", "model", "scope", "is_default"}, m
    text = json.dumps(run) + json.dumps([e.body for e in events])
    assert secret not in text and "sk-never-shown" not in text


def test_describe_principal_reports_the_submitters_token(stack, tenant):
    c = _as(stack, tenant, "agent-runs:read agent-runs:write cache:read",
            sub="who-" + uuid.uuid4().hex[:8])
    run, events = _run(c, "who am I and what are my scopes?")
    step, _ = _one_call(run, events, "security.describe_principal")
    out = step["output"]["output"]
    assert out["sub"] == c.sub and out["tenant_id"] == tenant.tenant_id, out
    assert out["scopes"] == ["agent-runs:read", "agent-runs:write", "cache:read"], out
    assert out["roles"] == ["user"], out


def test_catalog_search_marks_what_the_caller_may_not_call(stack, tenant):
    weak = _as(stack, tenant, NO_JOBS_SCOPE)
    run, events = _run(weak, "what tools can you use?")
    step, _ = _one_call(run, events, "catalog.search")
    tools = {t["name"]: t for t in step["output"]["output"]["tools"]}
    for name in ("system.time", "jobs.list", "cache.set", "catalog.search"):
        assert name in tools, sorted(tools)
    assert tools["jobs.list"]["callable"] is False, tools["jobs.list"]
    assert tools["jobs.list"]["required_scopes"] == ["jobs:read"], tools["jobs.list"]
    assert tools["system.time"]["callable"] is True, tools["system.time"]


def test_catalog_search_does_not_show_a_withdrawn_tool(stack, tenant):
    stack.sql("INSERT INTO tool_manifests (tenant_id, name, description, enabled)"
              " VALUES (:'p1', 'model.list', 'withdrawn', false)", tenant.tenant_id)
    run, events = _run(tenant, "what tools can you use?")
    step, _ = _one_call(run, events, "catalog.search")
    names = {t["name"] for t in step["output"]["output"]["tools"]}
    assert "model.list" not in names and "system.time" in names, sorted(names)


def test_agent_history_reads_the_sessions_earlier_runs(stack, tenant):
    session = tenant.request("POST", "/v1/sessions", body={}).expect_json(201)
    first_prompt = "Remember the word pelican, please."
    first, _ = _run(tenant, first_prompt, session_id=session["id"])
    run, events = _run(tenant, "what did I ask in my earlier runs?",
                       session_id=session["id"])
    step, called = _one_call(run, events, "agent.history")
    out = step["output"]["output"]
    assert out["session_id"] == session["id"], out
    assert [r["id"] for r in out["runs"]] == [first["id"]], out
    assert out["runs"][0]["prompt"] == first_prompt, out
    assert "pelican" in called["output_preview"], called

    alone, events = _run(tenant, "what did I ask in my earlier runs?")
    step, _ = _one_call(alone, events, "agent.history")
    out = step["output"]["output"]
    assert out["runs"] == [] and "not part of a session" in out["note"], out


# --------------------------------------------------------------------------
# the cache tools, called by a model (the stand-in)
# --------------------------------------------------------------------------

def _model_run(stack, client, llm_standin, calls):
    """A run whose model classifies the prompt as chat, then asks for calls
    in the first TODO's model step, then answers "done" (and, once the
    script is spent, the stand-in echoes)."""
    model = llm_standin.unique_name("m")
    llm_standin.register_model(stack, client.tenant_id, model, "/tools")
    llm_standin.script("/tools", model, [
        {"chunks": ["chat"]},
        {"tool_calls": calls, "finish_reason": "tool_calls"},
        {"chunks": ["done"]},
    ])
    return _run(client, "use the cache", model=model, planning_mode="none",
                response_mode="llm-required")


def test_cache_tools_keep_tenants_apart(stack, tenant, other_tenant, llm_standin):
    scope = "agent-runs:read agent-runs:write cache:read cache:write"
    a = _as(stack, tenant, scope)
    b = _as(stack, other_tenant, scope)
    key = "shared-" + uuid.uuid4().hex[:8]
    value = "A's value " + uuid.uuid4().hex

    run, events = _model_run(stack, a, llm_standin, [
        {"id": "call_1", "name": "cache.set",
         "arguments": json.dumps({"key": key, "value": value, "ttl_s": 120})}])
    step, called = _one_call(run, events, "cache.set")
    assert step["output"]["status"] == "ok", step
    stored = redis_cli("GET", f"cache:{tenant.tenant_id}:{key}")
    assert stored.stdout.strip() == value, stored

    run, events = _model_run(stack, b, llm_standin, [
        {"id": "call_1", "name": "cache.get", "arguments": json.dumps({"key": key})}])
    step, _ = _one_call(run, events, "cache.get")
    assert step["output"]["status"] == "ok", step
    assert step["output"]["output"]["found"] is False, step
    assert value not in json.dumps(run)

    run, events = _model_run(stack, a, llm_standin, [
        {"id": "call_1", "name": "cache.get", "arguments": json.dumps({"key": key})}])
    step, _ = _one_call(run, events, "cache.get")
    assert step["output"]["output"]["value"] == value, step


def test_cache_write_needs_its_scope_and_a_bad_key_is_invalid(stack, tenant, llm_standin):
    reader = _as(stack, tenant, "agent-runs:read agent-runs:write cache:read")
    run, events = _model_run(stack, reader, llm_standin, [
        {"id": "call_1", "name": "cache.set",
         "arguments": json.dumps({"key": "k", "value": "v"})}])
    step, called = _one_call(run, events, "cache.set")
    assert step["output"]["status"] == "denied", step
    assert "cache:write" in called["error"], called

    writer = _as(stack, tenant, "agent-runs:read agent-runs:write cache:write")
    run, events = _model_run(stack, writer, llm_standin, [
        {"id": "call_1", "name": "cache.set",
         "arguments": json.dumps({"key": "has space", "value": "v"})}])
    step, called = _one_call(run, events, "cache.set")
    assert step["output"]["status"] == "invalid", step
    assert "/key" in called["error"], called
    rows = _audit(stack, tenant.tenant_id)
    assert [r["outcome"] for r in rows] == ["denied", "invalid"], rows
