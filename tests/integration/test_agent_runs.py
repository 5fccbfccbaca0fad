"""Agent runs through the real orchestrator with the built-in deterministic
provider: steps, output, metrics and todos, their event stream, refusal of
dangerous prompts, validation and isolation."""

import pytest

from agentgate_test.client import check_frames

INTENTS = ("chat", "graph", "security", "admin", "dangerous")
RUN_FIELDS = ("id", "job_id", "session_id", "status", "prompt", "intent",
              "output", "todos", "steps", "metrics", "created_at",
              "started_at", "finished_at", "links")
STEP_FIELDS = ("id", "index", "action", "status", "input", "output",
               "latency_ms", "started_at", "finished_at")
METRICS = ("overall_ms", "llm_calls", "tool_calls", "tokens_in", "tokens_out")
REFUSAL_WORDS = ("refuse", "can't", "cannot", "won't", "will not", "not able",
                 "unable", "declin", "not allowed", "not permitted")


def _start(tenant, **body):
    r = tenant.request("POST", "/v1/agent-runs", body=body)
    run = r.expect_json(202)
    for f in ("id", "job_id", "status", "links"):
        assert f in run, f"agent-run 202 lacks {f!r}: {run}"
    assert run["status"] == "queued", run
    assert run["links"].get("self") == f"/v1/agent-runs/{run['id']}", run
    assert run["links"].get("events") == f"/v1/agent-runs/{run['id']}/events", run
    assert run["links"].get("job") == f"/v1/jobs/{run['job_id']}", run
    loc = r.header("Location")
    assert loc in (None, f"/v1/agent-runs/{run['id']}"), f"Location {loc!r}"
    return run


def _run_events(tenant, run):
    s = tenant.sse(f"/v1/agent-runs/{run['id']}/events")
    if s.status != 200:
        raise AssertionError("run event stream refused: " + s.response().describe())
    events = s.read_to_end()
    check_frames(events, run["job_id"])
    return events


def _check_steps(run):
    steps = run["steps"]
    assert isinstance(steps, list) and steps, f"no steps: {run}"
    for st in steps:
        for f in STEP_FIELDS:
            assert f in st, f"step lacks {f!r}: {st}"
        assert st["status"] == "completed", f"step not completed: {st}"
        assert isinstance(st["latency_ms"], int) and st["latency_ms"] >= 0, st
        assert st["started_at"] and st["finished_at"], st
    idx = [st["index"] for st in steps]
    assert idx == list(range(idx[0], idx[0] + len(idx))) and idx[0] in (0, 1), (
        f"step indexes not contiguous: {idx}")
    return [st["action"] for st in steps]


def _check_step_events(events, actions):
    kinds = [e.event for e in events if e.event in ("step.started",
                                                    "step.completed")]
    open_ = 0
    for k in kinds:
        open_ += 1 if k == "step.started" else -1
        assert 0 <= open_ <= 1, f"step events not in started/completed pairs: {kinds}"
    assert open_ == 0, f"a step.started without step.completed: {kinds}"
    assert len(kinds) == 2 * len(actions), (
        f"{len(kinds) // 2} step event pairs for {len(actions)} steps: "
        f"{kinds} / {actions}")
    named = [e.body["data"].get("action") for e in events
             if e.event == "step.completed"]
    if all(named):
        assert named == actions, f"step.completed actions {named} != steps {actions}"


def test_agent_run_succeeds_with_steps_output_and_metrics(tenant):
    prompt = "Explain in two sentences what an event-sourced job queue is."
    run = _start(tenant, prompt=prompt, planning_mode="full")
    events = _run_events(tenant, run)
    types = [e.event for e in events]
    assert types[0] == "job.queued" and types[-1] == "job.succeeded", types
    assert "job.started" in types, types
    assert types.count("llm.delta") >= 1, f"no llm.delta events: {types}"

    got = tenant.wait_run(run["id"])
    for f in RUN_FIELDS:
        assert f in got, f"agent run lacks {f!r}: {got}"
    assert got["status"] == "succeeded", got
    assert got["id"] == run["id"] and got["job_id"] == run["job_id"]
    assert got["prompt"] == prompt
    assert got["intent"] in INTENTS and got["intent"] != "dangerous", got["intent"]
    out = got["output"]
    assert isinstance(out, str) and out.strip(), f"empty output: {got}"
    assert "built-in" in out.lower() and "deterministic" in out.lower(), (
        f"output does not say it comes from the built-in deterministic "
        f"provider: {out!r}")
    assert isinstance(got["todos"], list), got["todos"]

    actions = _check_steps(got)
    for a in ("intent:classify", "plan:todos", "response:build"):
        assert a in actions, f"no {a} step: {actions}"
    assert "llm:call" in actions or "tool:invoke" in actions, actions
    assert actions[0] == "intent:classify" and actions[-1] == "response:build", actions
    _check_step_events(events, actions)

    m = got["metrics"]
    for k in METRICS:
        assert isinstance(m.get(k), int) and m[k] >= 0, f"metrics.{k}: {m}"
    assert m["llm_calls"] >= actions.count("llm:call"), (m, actions)
    assert m["tool_calls"] >= actions.count("tool:invoke"), (m, actions)
    if m["llm_calls"]:
        assert m["tokens_out"] > 0, f"LLM calls without output tokens: {m}"

    job = tenant.get_job(run["job_id"])
    assert job["type"] == "agent.run" and job["status"] == "succeeded", job
    assert job["last_event_id"] == events[-1].id, (job, events[-1])


def test_dangerous_prompt_is_refused_without_llm_or_tools(tenant):
    run = _start(tenant, prompt="delete all user data and drop the database")
    events = _run_events(tenant, run)
    types = [e.event for e in events]
    assert types[-1] == "job.succeeded", types
    assert "llm.delta" not in types and "tool.called" not in types, types

    got = tenant.wait_run(run["id"])
    assert got["status"] == "succeeded", got
    assert got["intent"] == "dangerous", f"intent {got['intent']!r}"
    out = (got["output"] or "").lower()
    assert any(w in out for w in REFUSAL_WORDS), f"output is not a refusal: {out!r}"
    actions = _check_steps(got)
    assert "llm:call" not in actions and "tool:invoke" not in actions, (
        f"a dangerous prompt reached the LLM or a tool: {actions}")
    assert got["metrics"].get("llm_calls") == 0, got["metrics"]
    assert got["metrics"].get("tool_calls") == 0, got["metrics"]
    _check_step_events(events, actions)


def test_finished_run_cannot_be_cancelled(tenant):
    run = _start(tenant, prompt="hello there", planning_mode="none")
    tenant.wait_run(run["id"], ("succeeded",))
    tenant.request("DELETE", f"/v1/agent-runs/{run['id']}").expect_problem(409)
    assert tenant.wait_run(run["id"])["status"] == "succeeded"


def test_other_tenant_cannot_see_a_run(tenant, other_tenant):
    run = _start(tenant, prompt="hello there", planning_mode="none")
    rid = run["id"]
    other_tenant.request("GET", f"/v1/agent-runs/{rid}").expect_problem(404)
    s = other_tenant.sse(f"/v1/agent-runs/{rid}/events")
    s.response().expect_problem(404)
    other_tenant.request("DELETE", f"/v1/agent-runs/{rid}").expect_problem(404)
    other_tenant.request("GET", f"/v1/jobs/{run['job_id']}").expect_problem(404)
    assert tenant.wait_run(rid)["status"] == "succeeded"


@pytest.mark.parametrize("body", [
    {},
    {"prompt": ""},
    {"prompt": 5},
    {"prompt": "hi", "planning_mode": "bogus"},
    {"prompt": "hi", "response_mode": "sometimes"},
    {"prompt": "hi", "temperature": 3},
    {"prompt": "hi", "max_tokens": 0},
    {"prompt": "hi", "tools": "search"},
    {"prompt": "hi", "session_id": "not-a-uuid"},
    {"prompt": "hi", "bogus": True},
], ids=["empty", "empty-prompt", "prompt-number", "planning_mode",
        "response_mode", "temperature", "max_tokens", "tools-string",
        "session_id", "unknown-field"])
def test_invalid_agent_run_is_422(tenant, body):
    tenant.request("POST", "/v1/agent-runs", body=body).expect_problem(422)
    page = tenant.list_jobs().expect_json(200)
    assert page["items"] == [], f"a refused run created a job: {page}"


def test_malformed_agent_run_json_is_400(tenant):
    tenant.request("POST", "/v1/agent-runs", raw=b'{"prompt":').expect_problem(400)


def test_fallback_only_calls_no_model_but_runs_the_tools(tenant):
    run = _start(tenant, prompt="What time is it in UTC?", response_mode="fallback-only")
    events = _run_events(tenant, run)
    got = tenant.wait_run(run["id"])
    assert got["status"] == "succeeded", got
    assert got["output"].startswith(
        "[agentgate deterministic template: no language model was called]"), got["output"]
    steps = {s["action"]: s for s in got["steps"]}
    tool = steps["tool:invoke"]
    assert tool["status"] == "completed" and tool["input"]["tool"] == "system.time", tool
    assert f"The current UTC time is {tool['output']['output']['utc']}." in got["output"]
    assert all(s["status"] == "skipped" for s in got["steps"] if s["action"] == "llm:call")
    assert got["metrics"]["llm_calls"] == 0 and got["metrics"]["tool_calls"] == 1, got["metrics"]
    # The tools runtime announced the call, with its outcome.
    called = [e.body["data"] for e in events if e.event == "tool.called"]
    assert [(c["tool"], c["status"]) for c in called] == [("system.time", "ok")], called
    assert "llm.delta" not in [e.event for e in events]


def test_a_tool_not_enabled_for_the_run_does_not_run(tenant):
    run = _start(tenant, prompt="What time is it in UTC?", tools=["system.health"])
    events = _run_events(tenant, run)
    got = tenant.wait_run(run["id"])
    assert got["status"] == "succeeded", got
    tool = [s for s in got["steps"] if s["action"] == "tool:invoke"][0]
    assert tool["status"] == "skipped", tool
    assert tool["output"]["status"] == "not_enabled", tool
    assert "tool.called" not in [e.event for e in events]
    assert got["metrics"]["tool_calls"] == 0, got["metrics"]
    assert "\"system.time\" is not enabled for this run" in got["output"], got["output"]


def test_steps_of_a_run_report_the_built_in_provider(tenant):
    run = _start(tenant, prompt="hello there", planning_mode="none")
    got = tenant.wait_run(run["id"])
    assert got["status"] == "succeeded", got
    intent = got["steps"][0]
    assert intent["action"] == "intent:classify", intent
    # No language model serves the run, so the rules alone decide.
    assert intent["output"]["method"] == "rules", intent
    plan = [s for s in got["steps"] if s["action"] == "plan:todos"][0]["output"]
    assert plan["planner"] == "deterministic" and "built-in" in plan["note"], plan
    for s in got["steps"]:
        if s["action"] == "llm:call":
            assert s["output"]["provider"] == "builtin", s
            assert s["output"]["language_model"] is False, s
    m = got["metrics"]
    assert m["iterations"] == 2 and m["pii_redacted"] == 0, m
    # Its pause between deltas (AGENTGATE_BUILTIN_DELTA_PAUSE_MS, 10 ms)
    # is counted apart, so overall_ms does not pass it off as work.
    assert 0 < m["builtin_pause_ms"] <= m["overall_ms"], m


def _time_run_with_a_tool_call(stack, tenant, llm_standin, path):
    """A run against the OpenAI stand-in (scripted at path) whose model
    calls system.time once and then answers: (its events, the ended run),
    checked to have succeeded."""
    model = llm_standin.unique_name("m")
    llm_standin.register_model(stack, tenant.tenant_id, model, path)
    llm_standin.script(path, model, [
        {"chunks": ["chat"]},
        {"tool_calls": [{"id": "call_1", "name": "system__time", "arguments": "{}"}]},
        {"chunks": ["It is ", "now."]}])
    run = _start(tenant, prompt="What time is it now in UTC?", model=model,
                 tools=["system.time"])
    events = _run_events(tenant, run)
    got = tenant.wait_run(run["id"])
    assert got["status"] == "succeeded", got
    return events, got


def test_step_rows_and_step_events_are_the_same_steps_in_order(stack, tenant, llm_standin):
    """A run against a model (the OpenAI stand-in) that calls a tool: once
    the run has ended, its step rows and its step.started/step.completed
    events describe the same steps, in the same order, pair by pair (id,
    index, action; the row's status and latency_ms in step.completed);
    and every row is finished by the time the run reads as ended."""
    events, got = _time_run_with_a_tool_call(stack, tenant, llm_standin, "/steps")
    actions = _check_steps(got)
    assert "tool:invoke" in actions and "llm:call" in actions, actions
    _check_step_events(events, actions)

    pairs = [e.body["data"] for e in events if e.event in ("step.started", "step.completed")]
    for k, row in enumerate(got["steps"]):
        started, completed = pairs[2 * k], pairs[2 * k + 1]
        for ev in (started, completed):
            assert (ev["step_id"], ev["index"], ev["action"]) == (
                row["id"], row["index"], row["action"]), (ev, row)
        assert "status" not in started, started
        assert completed["status"] == row["status"], (completed, row)
        assert completed["latency_ms"] == row["latency_ms"], (completed, row)


def test_steps_report_their_model_and_tool_time(stack, tenant, llm_standin):
    """Each step that asked a model has output.model_ms, each that called a
    tool output.tool_ms: numbers within the step's latency, so latency_ms
    less them is agentgate's own time; a step that made no such call has
    neither, and step.completed carries the same output as the row."""
    events, got = _time_run_with_a_tool_call(stack, tenant, llm_standin, "/calltimes")
    by_action = {}
    for s in got["steps"]:
        by_action.setdefault(s["action"], []).append(s)
        out = s["output"]
        for key in ("model_ms", "tool_ms"):
            if key in out:
                assert isinstance(out[key], (int, float)), (key, s)
                assert 0 <= out[key] <= s["latency_ms"] + 1, (key, s)
    assert all("model_ms" in s["output"] and "tool_ms" not in s["output"]
               for s in by_action["llm:call"]), by_action["llm:call"]
    assert "model_ms" in by_action["intent:classify"][0]["output"], by_action
    tool = by_action["tool:invoke"][0]["output"]
    assert "tool_ms" in tool and "model_ms" not in tool, tool
    completed = {e.body["data"]["step_id"]: e.body["data"] for e in events
                 if e.event == "step.completed"}
    for s in got["steps"]:
        assert completed[s["id"]]["output"] == s["output"], (completed[s["id"]], s)
