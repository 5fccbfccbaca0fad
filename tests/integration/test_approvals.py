"""Human approval of tool calls: a run whose model asks for a tool that
needs approval (cache.delete's manifest says so; with approval
"write-tools" every write tool does) stops before the call in status
`waiting`, with an approval.requested event naming the tool and its
arguments, and holds no worker while it waits. POST
/v1/agent-runs/{id}/approvals approves (the tool runs, the run succeeds)
or denies (the model gets the note as the tool's result); the run resumes
on any worker (also when the worker it waited on was killed) without
asking the model again what it already answered. A cancel ends a waiting
run at once; a wait past approval_timeout_s counts as a denial; an MCP
server registered with require_approval makes its tools wait too.

The model is the OpenAI stand-in (tests/fakes/openai_standin.py), scripted
per test in the order the orchestrator asks: the classification of a
prompt no intent rule is sure of, then the direct path's model call (which
asks for the tool), then the call that gets the tool's result."""

import json
import os
import uuid

import pytest

from agentgate_test import browser as browser_lib
from agentgate_test.client import check_frames
from agentgate_test.paths import bin_path
from agentgate_test.services import own_process, stack_env
from agentgate_test.stack import WORKERS
from agentgate_test.tokens import DEFAULT_SCOPE
from agentgate_test.waiting import TIMEOUT, wait_for

PREFIX = "/approvals"
PROMPT = "Tell me something nice about lighthouses"
CLASSIFY_CHAT = {"chunks": ["chat"]}


def _tool_call(name, arguments, call_id):
    return {"tool_calls": [{"id": call_id, "name": name.replace(".", "__"),
                            "arguments": json.dumps(arguments)}]}


def _grant_cache(tenant):
    """The run's submitter may use the cache tools (cache:read/write)."""
    extra = getattr(tenant, "extra_scope", "")
    tenant.token = tenant.make_token(
        scope=" ".join(x for x in (DEFAULT_SCOPE, "cache:read cache:write", extra) if x))


def _model(stack, tenant, llm_standin, replies):
    _grant_cache(tenant)
    model = llm_standin.unique_name("m")
    llm_standin.register_model(stack, tenant.tenant_id, model, PREFIX)
    llm_standin.script(PREFIX, model, replies)
    return model


def _waiting_run(stack, tenant, llm_standin, tool="cache.delete", args=None,
                 final="Done.", **fields):
    """Submits a run whose model asks for tool; returns (run, model, the
    approval.requested event's data) once the run waits."""
    args = {"key": "k-" + uuid.uuid4().hex[:6]} if args is None else args
    model = _model(stack, tenant, llm_standin, [
        CLASSIFY_CHAT, _tool_call(tool, args, "call_1"), {"chunks": [final]}])
    body = {"prompt": PROMPT, "model": model, "planning_mode": "optional"}
    body.update(fields)
    run = tenant.request("POST", "/v1/agent-runs", body=body).expect_json(202)
    s = tenant.sse(f"/v1/agent-runs/{run['id']}/events")
    try:
        ev = s.read_until(lambda e: e.event == "approval.requested",
                          what="approval.requested")
    finally:
        s.close()
    data = ev.body["data"]
    assert data["tool"] == tool and data["arguments"] == args, data
    assert data["run_id"] == run["id"] and data["expires_at"], data
    return run, model, data


def _steps(run, action):
    return [s for s in run["steps"] if s["action"] == action]


def _decide(tenant, run, call_id, decision, note=None, expect=202):
    body = {"tool_call_id": call_id, "decision": decision}
    if note is not None:
        body["note"] = note
    r = tenant.request("POST", f"/v1/agent-runs/{run['id']}/approvals", body=body)
    return r.expect_json(expect) if expect < 400 else r.expect_problem(expect)


def _all_events(tenant, run):
    s = tenant.sse(f"/v1/agent-runs/{run['id']}/events")
    events = s.read_to_end()
    check_frames(events, run["job_id"])
    return events


def test_cache_delete_needs_approval_in_its_manifest(tenant):
    tool = tenant.request("GET", "/v1/tools/cache.delete").expect_json(200)
    assert tool["needs_approval"] is True, tool
    tool = tenant.request("GET", "/v1/tools/cache.set").expect_json(200)
    assert tool["needs_approval"] is False, tool


def test_approved_call_runs_and_the_run_succeeds(stack, tenant, llm_standin):
    run, model, req = _waiting_run(stack, tenant, llm_standin)
    call_id = req["tool_call_id"]

    waiting = tenant.wait_run(run["id"], ("waiting",))
    assert waiting["pending_approval"]["tool_call_id"] == call_id, waiting
    assert waiting["pending_approval"]["status"] == "pending", waiting
    assert waiting["pending_approval"]["tool"] == "cache.delete", waiting
    # Stopped before the call: no tool:invoke step, and no worker holds it.
    assert _steps(waiting, "tool:invoke") == [], waiting["steps"]
    job = tenant.get_job(run["job_id"])
    assert job["status"] == "waiting" and job["worker_id"] is None, job
    listed = tenant.request("GET", "/v1/agent-runs?status=waiting").expect_json(200)
    assert run["id"] in [i["id"] for i in listed["items"]], listed
    assert len(llm_standin.requests(PREFIX, model)) == 2
    # The calls made so far were kept for the resume: the two model calls.
    kept = stack.sql("SELECT seq, kind FROM run_memo WHERE run_id = :'p1' ORDER BY seq",
                     run["id"])
    assert kept == [["1", "llm"], ["2", "llm"]], kept

    ok = _decide(tenant, run, call_id, "approve")
    assert ok["status"] == "queued" and ok["decision"] == "approved", ok
    done = tenant.wait_run(run["id"])
    assert done["status"] == "succeeded", done
    assert [s["action"] for s in done["steps"]] == [
        "intent:classify", "llm:call", "tool:invoke", "llm:call", "response:build"], done
    assert [s["index"] for s in done["steps"]] == [0, 1, 2, 3, 4], done["steps"]
    tool = _steps(done, "tool:invoke")[0]
    assert tool["status"] == "completed", tool
    assert tool["input"]["approval"]["decision"] == "approved", tool
    assert tool["input"]["approval"]["decided_by"] == tenant.sub, tool
    assert done["output"] == "Done.", done
    assert done["pending_approval"] is None, done
    assert [a["status"] for a in done["approvals"]] == ["approved"], done

    # The resumed run asked the model only what it had not asked before.
    reqs = llm_standin.requests(PREFIX, model)
    assert len(reqs) == 3, reqs
    results = [m for m in reqs[2]["body"]["messages"] if m.get("role") == "tool"]
    assert len(results) == 1 and results[0]["tool_call_id"] == "call_1", results

    events = _all_events(tenant, run)
    types = [e.event for e in events]
    assert types.count("approval.requested") == 1 and types.count("approval.resolved") == 1
    assert types.count("tool.called") == 1, types
    assert types.index("approval.requested") < types.index("approval.resolved") \
        < types.index("tool.called"), types
    # Each step announced once, across both stretches of the run.
    assert types.count("step.started") == 5 and types.count("step.completed") == 5, types
    resolved = next(e for e in events if e.event == "approval.resolved").body["data"]
    assert resolved == {"tool_call_id": call_id, "decision": "approved",
                        "decided_by": tenant.sub}, resolved

    # Decided once: a second decision is a conflict.
    _decide(tenant, run, call_id, "deny", expect=409)


def test_denied_call_tells_the_model_the_note(stack, tenant, llm_standin):
    run, model, req = _waiting_run(stack, tenant, llm_standin, final="Understood.")
    _decide(tenant, run, req["tool_call_id"], "deny", note="not on a Friday")
    done = tenant.wait_run(run["id"])
    assert done["status"] == "succeeded", done
    tool = _steps(done, "tool:invoke")[0]
    assert tool["status"] == "failed", tool
    assert tool["output"]["status"] == "denied_by_approver", tool
    assert "not on a Friday" in tool["output"]["message"], tool
    reqs = llm_standin.requests(PREFIX, model)
    assert len(reqs) == 3, reqs
    results = [m for m in reqs[2]["body"]["messages"] if m.get("role") == "tool"]
    assert len(results) == 1 and "not on a Friday" in results[0]["content"], results
    events = _all_events(tenant, run)
    assert "tool.called" not in [e.event for e in events]
    resolved = next(e for e in events if e.event == "approval.resolved").body["data"]
    assert resolved["decision"] == "denied" and resolved["note"] == "not on a Friday"


def test_write_tools_mode_asks_for_every_write_tool(stack, tenant, llm_standin):
    # Without it, cache.set (a write tool whose manifest does not ask) runs.
    model = _model(stack, tenant, llm_standin, [
        CLASSIFY_CHAT, _tool_call("cache.set", {"key": "a", "value": "1"}, "c1"),
        {"chunks": ["Stored."]}])
    plain = tenant.request("POST", "/v1/agent-runs", body={
        "prompt": PROMPT, "model": model, "planning_mode": "optional"}).expect_json(202)
    done = tenant.wait_run(plain["id"])
    assert done["status"] == "succeeded" and done["approval"] == "manifest", done
    tool = _steps(done, "tool:invoke")[0]
    assert tool["status"] == "completed", json.dumps(tool)
    # A run that never waits keeps no journal.
    assert stack.sql("SELECT count(*) FROM run_memo WHERE run_id = :'p1'",
                     plain["id"]) == [["0"]]

    run, _, req = _waiting_run(stack, tenant, llm_standin, tool="cache.set",
                               args={"key": "b", "value": "2"}, approval="write-tools")
    assert tenant.wait_run(run["id"], ("waiting",))["approval"] == "write-tools"
    _decide(tenant, run, req["tool_call_id"], "approve")
    done = tenant.wait_run(run["id"])
    assert done["status"] == "succeeded", done
    assert _steps(done, "tool:invoke")[0]["output"]["output"], done


def test_cancel_while_waiting_ends_the_run_at_once(stack, tenant, llm_standin):
    run, model, req = _waiting_run(stack, tenant, llm_standin)
    tenant.wait_run(run["id"], ("waiting",))
    r = tenant.request("DELETE", f"/v1/agent-runs/{run['id']}").expect_json(200)
    assert r["status"] == "cancelled", r
    job = tenant.get_job(run["job_id"])
    assert job["status"] == "cancelled", job
    events = _all_events(tenant, run)
    assert events[-1].event == "job.cancelled", events
    p = _decide(tenant, run, req["tool_call_id"], "approve", expect=409)
    assert "cancelled" in p["detail"], p
    assert len(llm_standin.requests(PREFIX, model)) == 2


def test_a_wait_past_its_timeout_counts_as_denied(stack, tenant, llm_standin):
    run, model, req = _waiting_run(stack, tenant, llm_standin, final="Too late.",
                                   approval_timeout_s=1)
    done = tenant.wait_run(run["id"])
    assert done["status"] == "succeeded", done
    tool = _steps(done, "tool:invoke")[0]
    assert tool["status"] == "failed", tool
    assert tool["output"]["status"] == "approval_expired", tool
    assert [a["status"] for a in done["approvals"]] == ["expired"], done
    events = _all_events(tenant, run)
    resolved = [e.body["data"] for e in events if e.event == "approval.resolved"]
    assert resolved == [{"tool_call_id": req["tool_call_id"], "decision": "expired"}]
    reqs = llm_standin.requests(PREFIX, model)
    results = [m for m in reqs[2]["body"]["messages"] if m.get("role") == "tool"]
    assert "nobody approved it within 1 s" in results[0]["content"], results
    _decide(tenant, run, req["tool_call_id"], "approve", expect=409)


def test_bad_decisions_change_nothing(stack, tenant, other_tenant, llm_standin):
    run, model, req = _waiting_run(stack, tenant, llm_standin)
    call_id = req["tool_call_id"]
    path = f"/v1/agent-runs/{run['id']}/approvals"

    p = tenant.request("POST", path, body={"tool_call_id": call_id,
                                           "decision": "maybe"}).expect_problem(422)
    assert p["errors"][0]["pointer"] == "/decision", p
    tenant.request("POST", path, body={"decision": "approve"}).expect_problem(422)
    tenant.request("POST", path, body={"tool_call_id": call_id, "decision": "approve",
                                       "extra": 1}).expect_problem(422)
    tenant.request("POST", path, body={"tool_call_id": "not-a-uuid",
                                       "decision": "approve"}).expect_problem(422)
    tenant.request("POST", path, body={"tool_call_id": call_id, "decision": "deny",
                                       "note": "x" * 2001}).expect_problem(422)
    # Another run's id, and another tenant's run.
    _decide(tenant, run, str(uuid.uuid4()), "approve", expect=409)
    other_tenant.request("POST", path, body={"tool_call_id": call_id,
                                             "decision": "approve"}).expect_problem(404)
    # A viewer may not decide.
    viewer = tenant.make_token(roles=["viewer"])
    r = tenant.request("POST", path, body={"tool_call_id": call_id, "decision": "approve"},
                       token=viewer)
    assert r.status == 403, r.describe()

    still = tenant.wait_run(run["id"], ("waiting",))
    assert still["pending_approval"]["tool_call_id"] == call_id, still
    p = tenant.request("POST", "/v1/agent-runs", body={
        "prompt": "hi", "approval": "always"}).expect_problem(422)
    assert p["errors"][0]["pointer"] == "/approval", p
    tenant.request("POST", "/v1/agent-runs", body={
        "prompt": "hi", "approval_timeout_s": 0}).expect_problem(422)

    _decide(tenant, run, call_id, "approve")
    assert tenant.wait_run(run["id"])["status"] == "succeeded"
    p = _decide(tenant, run, call_id, "approve", expect=409)
    assert "succeeded" in p["detail"], p


def test_a_waiting_run_holds_no_worker_thread(stack, tenant, llm_standin):
    """With the only worker running one job at a time, other work runs
    while a run waits, and the waiting run resumes on that worker."""
    for n in range(1, WORKERS + 1):
        stack.worker("stop", n)
    try:
        env = stack_env(stack)
        env.update({"AGENTGATE_WORKER_ID": "it-approvals-" + uuid.uuid4().hex[:6],
                    "AGENTGATE_WORKER_CONCURRENCY": "1"})
        log = os.path.join(stack.dir, "logs", "worker-approvals.log")
        with own_process([bin_path("agentgate-worker")], env, log) as proc:
            run, _, req = _waiting_run(stack, tenant, llm_standin)
            tenant.wait_run(run["id"], ("waiting",))
            other = tenant.submit("demo", {"events": 1, "duration_ms": 0})
            assert tenant.wait_job(other["id"])["status"] == "succeeded"
            assert proc.poll() is None
            _decide(tenant, run, req["tool_call_id"], "approve")
            done = tenant.wait_run(run["id"])
            assert done["status"] == "succeeded", done
            job = tenant.get_job(run["job_id"])
            assert job["worker_id"] == env["AGENTGATE_WORKER_ID"], job
    finally:
        for n in range(1, WORKERS + 1):
            stack.worker("start", n)
    wait_for(lambda: tenant.wait_job(tenant.submit("demo", {"events": 0, "duration_ms": 0})
                                     ["id"], timeout=TIMEOUT)["status"] == "succeeded",
             what="the stack's workers back")


def test_mcp_server_that_requires_approval(stack, tenant, llm_standin):
    """An MCP server registered with require_approval: its tools wait too."""
    tenant.extra_scope = "mcp-servers:read mcp-servers:write"
    _grant_cache(tenant)
    body = {"name": "ev", "transport": "stdio", "server": "everything",
            "require_approval": True}
    p = tenant.request("POST", "/v1/mcp-servers",
                       body=dict(body, require_approval="yes")).expect_problem(422)
    assert p["errors"][0]["pointer"] == "/require_approval", p
    tenant.request("POST", "/v1/mcp-servers", body=body).expect_json(202)

    def ready():
        s = tenant.request("GET", "/v1/mcp-servers/ev").expect_json(200)
        return s if s["status"] != "pending" else None
    server = wait_for(ready, timeout=30, what="the MCP server's discovery")
    assert server["status"] == "ready" and server["require_approval"] is True, server

    run, _, req = _waiting_run(stack, tenant, llm_standin, tool="ev.echo",
                               args={"message": "hi"}, final="Echoed.")
    _decide(tenant, run, req["tool_call_id"], "approve")
    done = tenant.wait_run(run["id"])
    assert done["status"] == "succeeded", done
    tool = _steps(done, "tool:invoke")[0]
    assert tool["output"]["output"]["content"] == "Echo: hi", json.dumps(tool)

    # Switched off, the same call runs at once.
    off = tenant.request("PATCH", "/v1/mcp-servers/ev",
                         body={"require_approval": False}).expect_json(200)
    assert off["require_approval"] is False, off
    model = _model(stack, tenant, llm_standin, [
        CLASSIFY_CHAT, _tool_call("ev.echo", {"message": "again"}, "c2"),
        {"chunks": ["Echoed."]}])
    plain = tenant.request("POST", "/v1/agent-runs", body={
        "prompt": PROMPT, "model": model, "planning_mode": "optional"}).expect_json(202)
    done = tenant.wait_run(plain["id"])
    assert done["status"] == "succeeded" and done["approvals"] == [], done


def test_the_run_resumes_on_another_worker_when_its_own_is_killed(stack, tenant,
                                                                    llm_standin):
    run, _, req = _waiting_run(stack, tenant, llm_standin)
    s = tenant.sse(f"/v1/agent-runs/{run['id']}/events")
    try:
        started = s.read_until(lambda e: e.event == "job.started", what="job.started")
    finally:
        s.close()
    parked_on = started.body["data"]["worker_id"]
    n = int(parked_on.rsplit("-", 1)[1])
    stack.worker("kill", n)
    try:
        _decide(tenant, run, req["tool_call_id"], "approve")
        done = tenant.wait_run(run["id"])
        assert done["status"] == "succeeded", done
        assert _steps(done, "tool:invoke")[0]["status"] == "completed", done
        job = tenant.get_job(run["job_id"])
        assert job["worker_id"] and job["worker_id"] != parked_on, job
        assert job["attempts"] == 1, job
    finally:
        stack.worker("start", n)


def test_the_console_shows_the_waiting_call_and_approves_it(stack, tenant, llm_standin):
    why = browser_lib.missing()
    if why:
        pytest.fail(why, pytrace=False)
    run, _, req = _waiting_run(stack, tenant, llm_standin, args={"key": "console-k"})
    b = browser_lib.Browser()
    try:
        b.sign_in(tenant.token)
        b.reset_logs()
        b.open(f"#/runs/{run['id']}")
        b.wait("return document.querySelector('#approval')", what="the approval panel")
        b.wait("return document.querySelector('#events li[data-type=\"approval.requested\"]')",
               what="the approval.requested event in the list")
        text = b.js("return document.querySelector('#approval').textContent")
        assert "cache.delete" in text and "console-k" in text, text
        b.screenshot("run-waiting-for-approval")
        b.click("#approve")
        b.wait("return arguments[0] === (document.querySelector('#view .summary .badge') || {})"
               ".dataset?.status", "succeeded", what="the page showing the run succeeded")
        assert not b.js("return document.querySelector('#approval')")
        assert b.js("return document.querySelector("
                    "'#events li[data-type=\"approval.resolved\"]').textContent").find(
                        "approved") >= 0
        assert not b.csp_violations(), b.csp_violations()
    finally:
        b.quit()
    done = tenant.wait_run(run["id"])
    assert done["approvals"][0]["status"] == "approved", done
    assert done["approvals"][0]["decided_by"] == tenant.sub, done
