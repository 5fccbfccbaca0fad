"""Double-texting: a new run in a session whose run is still active follows
its multitask_strategy - reject (409, the default), enqueue (it runs after
the active one, in order), interrupt (the active run is cancelled and the
new one sees what it did so far) or rollback (the active run is cancelled
and left out of the session's context).

The active run is kept running by the OpenAI stand-in, whose first answer
for the test's model streams slowly; later requests are echoed. What each run sent
the model (the stand-in's request log) shows the session context it got."""
import json
import subprocess
import time
import uuid

from agentgate_test.client import TERMINAL
from agentgate_test.paths import bin_path
from agentgate_test.ports import HTTP_PORT

PREFIX = "/multitask"


def _model(stack, tenant, llm_standin, busy_ms):
    """A model whose first answer streams slowly for about busy_ms (a
    chunk every 300 ms: never a silence the provider's stall timeout
    would cut); later requests are echoed."""
    model = llm_standin.unique_name("m")
    llm_standin.register_model(stack, tenant.tenant_id, model, PREFIX)
    llm_standin.script(PREFIX, model, [{"chunks": ["tick "] * max(1, busy_ms // 300),
                                        "chunk_delay_ms": 300}])
    return model


def _session(tenant):
    return tenant.request("POST", "/v1/sessions", body={"title": "mt"}).expect_json(201)


def _post(tenant, session, prompt, model=None, **extra):
    body = {"prompt": prompt, "session_id": session["id"], "planning_mode": "none",
            "response_mode": "llm-required"}
    if model:
        body["model"] = model
    body.update(extra)
    return tenant.request("POST", "/v1/agent-runs", body=body)


def _get(tenant, run):
    return tenant.request("GET", f"/v1/agent-runs/{run['id']}").expect_json(200)


def _wait_streaming(tenant, run, llm_standin, model, timeout=20.0):
    """Waits until run is running and the stand-in has taken its first
    request for model, the one that answers slowly: a run cancelled before
    it asked would leave that answer to the next run's first request."""
    tenant.wait_run(run["id"], ("running",))
    deadline = time.monotonic() + timeout
    while not llm_standin.requests(PREFIX, model):
        assert time.monotonic() < deadline, f"run {run['id']} made no model request"
        time.sleep(0.05)


def _start_active(stack, tenant, llm_standin, busy_ms):
    """A session and its run A, running (streaming its first model call)."""
    model = _model(stack, tenant, llm_standin, busy_ms)
    s = _session(tenant)
    a = _post(tenant, s, "first question " + uuid.uuid4().hex[:6], model).expect_json(202)
    assert a["held"] is False, a
    _wait_streaming(tenant, a, llm_standin, model)
    return model, s, a


def _messages_for(llm_standin, model, prompt):
    """The messages of every model request made for the run with prompt."""
    out = []
    for req in llm_standin.requests(PREFIX, model):
        msgs = req["body"]["messages"]
        if msgs and msgs[-1].get("role") == "user" and msgs[-1].get("content") == prompt:
            out.append(msgs)
    return out


def _run_count(stack, session):
    return int(stack.sql("SELECT count(*) FROM agent_runs WHERE session_id = :'p1'",
                         session["id"])[0][0])


def test_reject_is_the_default_and_writes_nothing(stack, tenant, llm_standin):
    model, s, a = _start_active(stack, tenant, llm_standin, 60000)
    before = tenant.request("GET", f"/v1/sessions/{s['id']}").expect_json(200)
    for extra in ({}, {"multitask_strategy": "reject"}):
        p = _post(tenant, s, "second", model, **extra).expect_problem(409)
        assert a["id"] in p["detail"], p
        assert p["type"].endswith("session-busy"), p
    assert _run_count(stack, s) == 1
    after = tenant.request("GET", f"/v1/sessions/{s['id']}").expect_json(200)
    assert after["updated_at"] == before["updated_at"], (before, after)
    tenant.request("DELETE", f"/v1/agent-runs/{a['id']}").expect(202, 200)
    assert tenant.wait_run(a["id"])["status"] == "cancelled"
    # The session is idle again: a new run is taken at once.
    b = _post(tenant, s, "after the cancel", model).expect_json(202)
    assert b["held"] is False, b
    assert tenant.wait_run(b["id"])["status"] == "succeeded"


def test_enqueue_runs_after_the_active_run_in_order(stack, tenant, llm_standin):
    model, s, a = _start_active(stack, tenant, llm_standin, 1500)
    b = _post(tenant, s, "second question", model,
              multitask_strategy="enqueue").expect_json(202)
    c = _post(tenant, s, "third question", model,
              multitask_strategy="enqueue").expect_json(202)
    assert b["held"] is True and c["held"] is True, (b, c)
    got_b = _get(tenant, b)
    assert got_b["status"] == "queued" and got_b["held"] is True, got_b
    assert got_b["multitask_strategy"] == "enqueue", got_b

    done = [tenant.wait_run(r["id"]) for r in (a, b, c)]
    assert [d["status"] for d in done] == ["succeeded"] * 3, done
    # Each started only after the one before it had finished.
    assert done[1]["started_at"] >= done[0]["finished_at"], done
    assert done[2]["started_at"] >= done[1]["finished_at"], done
    assert _get(tenant, c)["held"] is False
    # The later runs saw the earlier ones as the session's history.
    msgs = _messages_for(llm_standin, model, "third question")
    assert msgs, llm_standin.requests(PREFIX, model)
    users = [m["content"] for m in msgs[-1] if m["role"] == "user"]
    assert any(u.startswith("first question") for u in users), users
    assert "second question" in users, users


def test_interrupt_cancels_the_active_run_and_keeps_its_partial_context(
        stack, tenant, llm_standin):
    model, s, a = _start_active(stack, tenant, llm_standin, 60000)
    a_prompt = _get(tenant, a)["prompt"]
    b = _post(tenant, s, "never mind, do this instead", model,
              multitask_strategy="interrupt").expect_json(202)
    assert b["held"] is True, b
    got_a = tenant.wait_run(a["id"])
    assert got_a["status"] == "cancelled", got_a
    assert got_a["superseded"] == "interrupted" and got_a["superseded_by"] == b["id"], got_a
    got_b = tenant.wait_run(b["id"])
    assert got_b["status"] == "succeeded", got_b
    assert got_b["started_at"] >= got_a["finished_at"], (got_a, got_b)

    msgs = _messages_for(llm_standin, model, "never mind, do this instead")
    assert msgs, llm_standin.requests(PREFIX, model)
    # Some of its model calls (the answer's) carry the session's history.
    turns = [(m["role"], m.get("content") or "") for req in msgs for m in req]
    assert ("user", a_prompt) in turns, turns
    assert any(role == "assistant" and "interrupted" in text for role, text in turns), turns


def test_rollback_cancels_the_active_run_and_leaves_it_out(stack, tenant, llm_standin):
    model = _model(stack, tenant, llm_standin, 60000)
    s = _session(tenant)
    # A finished turn first, on the built-in model: the slow answer
    # scripted for model is for the run to roll back.
    kept = _post(tenant, s, "a turn that stays", None,
                 response_mode="fallback-only").expect_json(202)
    assert tenant.wait_run(kept["id"])["status"] == "succeeded"
    a = _post(tenant, s, "a turn to roll back", model).expect_json(202)
    _wait_streaming(tenant, a, llm_standin, model)
    b = _post(tenant, s, "start over", model,
              multitask_strategy="rollback").expect_json(202)
    got_a = tenant.wait_run(a["id"])
    assert got_a["status"] == "cancelled", got_a
    assert got_a["superseded"] == "rolled_back" and got_a["superseded_by"] == b["id"], got_a
    got_b = tenant.wait_run(b["id"])
    assert got_b["status"] == "succeeded", got_b

    msgs = _messages_for(llm_standin, model, "start over")
    assert msgs, llm_standin.requests(PREFIX, model)
    users = [m.get("content") for req in msgs for m in req if m["role"] == "user"]
    assert "a turn that stays" in users, users
    assert "a turn to roll back" not in users, users
    assert not any("interrupted" in (m.get("content") or "") for req in msgs for m in req), msgs


def test_strategy_is_validated_and_ignored_without_an_active_run(stack, tenant):
    s = _session(tenant)
    p = _post(tenant, s, "hi", multitask_strategy="queue").expect_problem(422)
    assert any(e["pointer"] == "/multitask_strategy" for e in p["errors"]), p
    assert _run_count(stack, s) == 0
    for strategy in ("enqueue", "interrupt", "rollback"):
        r = _post(tenant, s, f"idle {strategy}", None, response_mode="fallback-only",
                  multitask_strategy=strategy).expect_json(202)
        assert r["held"] is False, r
        got = tenant.wait_run(r["id"])
        assert got["status"] == "succeeded" and got["multitask_strategy"] == strategy, got
        assert got["superseded"] is None, got


def test_runs_without_a_session_never_wait_for_each_other(tenant):
    runs = [tenant.request("POST", "/v1/agent-runs",
                           body={"prompt": f"solo {i}", "response_mode": "fallback-only",
                                 "planning_mode": "none"}).expect_json(202)
            for i in range(3)]
    assert all(r["held"] is False for r in runs), runs
    for r in runs:
        assert tenant.wait_run(r["id"], TERMINAL)["status"] == "succeeded"


def test_another_tenant_cannot_interrupt_or_see_the_session(stack, tenant, other_tenant,
                                                           llm_standin):
    model, s, a = _start_active(stack, tenant, llm_standin, 60000)
    for strategy in ("interrupt", "rollback", "enqueue"):
        other_tenant.request("POST", "/v1/agent-runs", body={
            "prompt": "hijack", "session_id": s["id"],
            "multitask_strategy": strategy}).expect_problem(404)
    got = _get(tenant, a)
    assert got["status"] == "running" and got["superseded"] is None, got
    assert _run_count(stack, s) == 1
    tenant.request("DELETE", f"/v1/agent-runs/{a['id']}").expect(202, 200)
    assert tenant.wait_run(a["id"])["status"] == "cancelled"


def test_concurrent_submissions_to_one_idle_session_admit_one(stack, tenant, llm_standin):
    """The session's row lock orders simultaneous submissions: of several
    rejects sent at once, exactly one is taken."""
    import threading
    model = _model(stack, tenant, llm_standin, 3000)
    s = _session(tenant)
    statuses, errors = [], []

    def send(i):
        try:
            statuses.append(_post(tenant, s, f"race {i}", model).status)
        except BaseException as e:      # reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=send, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    assert sorted(statuses) == [202] + [409] * 5, statuses
    assert _run_count(stack, s) == 1


def test_interrupt_cancels_every_active_run_the_held_ones_too(stack, tenant, llm_standin):
    model, s, a = _start_active(stack, tenant, llm_standin, 60000)
    b = _post(tenant, s, "queued behind the first", model,
              multitask_strategy="enqueue").expect_json(202)
    assert b["held"] is True, b
    c = _post(tenant, s, "forget both of those", model,
              multitask_strategy="interrupt").expect_json(202)
    got_a, got_b = tenant.wait_run(a["id"]), tenant.wait_run(b["id"])
    for got in (got_a, got_b):
        assert got["status"] == "cancelled", got
        assert got["superseded"] == "interrupted" and got["superseded_by"] == c["id"], got
    assert got_b["started_at"] is None, f"the held run ran: {got_b}"
    got_c = tenant.wait_run(c["id"])
    assert got_c["status"] == "succeeded", got_c
    msgs = _messages_for(llm_standin, model, "forget both of those")
    users = [m.get("content") for req in msgs for m in req if m["role"] == "user"]
    assert "queued behind the first" in users, users


def test_a_held_run_can_be_cancelled_and_the_next_one_still_waits_its_turn(
        stack, tenant, llm_standin):
    model, s, a = _start_active(stack, tenant, llm_standin, 2000)
    b = _post(tenant, s, "second", model, multitask_strategy="enqueue").expect_json(202)
    c = _post(tenant, s, "third", model, multitask_strategy="enqueue").expect_json(202)
    r = tenant.request("DELETE", f"/v1/agent-runs/{b['id']}")
    assert r.expect_json(200)["status"] == "cancelled", r.describe()
    done_a, done_c = tenant.wait_run(a["id"]), tenant.wait_run(c["id"])
    assert done_a["status"] == "succeeded" and done_c["status"] == "succeeded", (done_a, done_c)
    assert done_c["started_at"] >= done_a["finished_at"], (done_a, done_c)
    assert tenant.wait_run(b["id"])["started_at"] is None


def test_the_cli_sends_the_strategy(stack, tenant, llm_standin):
    """agentgate run --session ID --multitask enqueue: a held run; without
    --multitask the CLI's run into a busy session is refused (HTTP error)."""
    model, s, a = _start_active(stack, tenant, llm_standin, 1500)
    env = {"AGENTGATE_URL": f"http://127.0.0.1:{HTTP_PORT}", "AGENTGATE_TOKEN": tenant.token,
           "PATH": "/usr/bin:/bin"}

    def cli(*args):
        return subprocess.run([bin_path("agentgate"), *args], env=env, capture_output=True,
                              text=True, timeout=30, stdin=subprocess.DEVNULL)

    refused = cli("run", "busy?", "--model", model, "--session", s["id"], "--json")
    assert refused.returncode == 5, refused
    assert "409" in refused.stderr and "active run" in refused.stderr, refused.stderr
    ok = cli("run", "after you", "--model", model, "--session", s["id"],
             "--multitask", "enqueue", "--json")
    assert ok.returncode == 0, ok
    body = json.loads(ok.stdout)
    assert body["held"] is True, body
    got = tenant.wait_run(body["id"])
    assert got["status"] == "succeeded" and got["multitask_strategy"] == "enqueue", got
    assert got["started_at"] >= tenant.wait_run(a["id"])["finished_at"], got
