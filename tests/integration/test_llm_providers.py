"""Agent runs against OpenAI-compatible providers, played by the stand-in
server (tests/fakes/openai_standin.py): streamed deltas reach SSE clients
in order, 429 with Retry-After is waited out, a failing provider falls
back to the next, an open circuit (circuit:{provider} in Redis) skips a
provider without a request, a stalled stream times out, a malformed chunk
fails its provider clearly, a cancel cuts a stream in flight, and usage
lands in the run's metrics.

Each test registers its own model (a unique name) with one or two
providers (unique names) for its own tenant, so tests never share
scripts, requests or circuits. The stack runs with fast provider settings
(agentgate_test.stack.SESSION_ENV: retry base 50 ms, max 500 ms, 3
failures open a circuit for 30 s, first-byte timeout 2 s, 2 retries by
default)."""

import glob
import json
import os
import time

from agentgate_test.client import check_frames
from agentgate_test.stack import IT_API_KEY, redis
from agentgate_test.waiting import TIMEOUT

MAX_RETRIES = 2             # AGENTGATE_LLM_MAX_RETRIES default
CIRCUIT_FAILURES = 3        # SESSION_ENV's AGENTGATE_LLM_CIRCUIT_FAILURES
FIRST_BYTE_TIMEOUT_S = 2.0  # SESSION_ENV's AGENTGATE_LLM_FIRST_BYTE_TIMEOUT_MS

# A run makes several model calls (steps, the response); scripts give each
# of them the same answer, with plenty to spare.
CALLS = 12

PROMPT = "Tell me a short story about a lighthouse keeper"


def _submit(tenant, model, **extra):
    body = {"prompt": PROMPT, "model": model, "response_mode": "llm-required",
            "planning_mode": "none"}
    body.update(extra)
    return tenant.request("POST", "/v1/agent-runs", body=body).expect_json(202)


def _events(tenant, run, timeout=TIMEOUT):
    s = tenant.sse(f"/v1/agent-runs/{run['id']}/events")
    if s.status != 200:
        raise AssertionError("run event stream refused: " + s.response().describe())
    events = s.read_to_end(timeout)
    check_frames(events, run["job_id"])
    return events


def _delta_text(ev):
    d = (ev.body or {}).get("data") or {}
    return d.get("delta", d.get("text", ""))


def _deltas_by_step(events):
    """{step_id: concatenated delta text}, in the order the steps began."""
    out = {}
    for ev in events:
        if ev.event == "llm.delta":
            sid = ((ev.body or {}).get("data") or {}).get("step_id")
            out[sid] = out.get(sid, "") + _delta_text(ev)
    return out


def _redis_circuit(provider):
    f = redis("HGETALL", f"circuit:{provider}").splitlines()
    return dict(zip(f[0::2], f[1::2]))


def _two_providers(stack, tenant, llm_standin):
    """A fresh model served by two providers, first at /p1, then /p2."""
    model = llm_standin.unique_name("m")
    p1 = llm_standin.register_model(stack, tenant.tenant_id, model, "/p1")
    p2 = llm_standin.register_model(stack, tenant.tenant_id, model, "/p2")
    return model, p1, p2


STORY = ["Once ", "upon ", "a ", "time, ", "a ", "keeper ", "named ", "Ilse ",
         "lit ", "the ", "lamp ", "\u2014 ", "and ", "the ", "ships ", "came ",
         "home. ", "\u2728"]


def test_streamed_deltas_reach_sse_in_order(stack, tenant, llm_standin):
    model = llm_standin.unique_name("m")
    llm_standin.register_model(stack, tenant.tenant_id, model, "/p1")
    # Every call of the run gets the same story.
    llm_standin.script("/p1", model, [{"chunks": STORY, "chunk_delay_ms": 5}] * CALLS)
    run = _submit(tenant, model)
    events = _events(tenant, run)
    done = tenant.wait_run(run["id"])
    assert done["status"] == "succeeded", done
    story = "".join(STORY)
    steps = _deltas_by_step(events)
    assert steps, f"no llm.delta events: {events!r}"
    for sid, text in steps.items():
        assert text == story, f"step {sid}: deltas {text!r} != streamed {story!r}"
    assert story in done["output"], (
        f"the answer {story!r} is not in the stored output {done['output']!r}")
    reqs = llm_standin.requests("/p1", model)
    assert reqs and all(r["completed"] for r in reqs), reqs
    body = reqs[0]["body"]
    assert body["stream"] is True and body["model"] == model, body
    assert body["messages"][0]["role"] == "system", body
    assert any(m.get("role") == "user" and m.get("content") == PROMPT
               for m in body["messages"]), body["messages"]


def test_token_usage_lands_in_metrics(stack, tenant, llm_standin):
    model = llm_standin.unique_name("m")
    llm_standin.register_model(stack, tenant.tenant_id, model, "/p1")
    llm_standin.script("/p1", model, [{"chunks": ["Counted ", "answer."],
                                       "usage": {"prompt_tokens": 1234,
                                                 "completion_tokens": 7}}] * CALLS)
    run = _submit(tenant, model)
    done = tenant.wait_run(run["id"])
    assert done["status"] == "succeeded", done
    n = len(llm_standin.requests("/p1", model))
    assert n >= 1
    m = done["metrics"]
    assert m["llm_calls"] >= n, m
    assert m["tokens_in"] == 1234 * n, (m, n)
    assert m["tokens_out"] == 7 * n, (m, n)


def test_rate_limited_then_success_honours_retry_after(stack, tenant, llm_standin):
    model = llm_standin.unique_name("m")
    llm_standin.register_model(stack, tenant.tenant_id, model, "/p1")
    llm_standin.script("/p1", model, [
        {"status": 429, "headers": {"Retry-After": "1"},
         "body": {"error": {"message": "Rate limit reached", "type": "requests"}}},
        *[{"chunks": ["after ", "the ", "wait"]}] * CALLS])
    run = _submit(tenant, model)
    done = tenant.wait_run(run["id"])
    assert done["status"] == "succeeded", done
    reqs = llm_standin.requests("/p1", model)
    assert len(reqs) >= 2, reqs
    gap = reqs[1]["received"] - reqs[0]["received"]
    assert gap >= 0.99, f"retried {gap:.3f} s after a 429 with Retry-After: 1"
    assert "after the wait" in done["output"], done["output"]


def test_server_error_falls_back_to_second_provider(stack, tenant, llm_standin):
    model, p1, p2 = _two_providers(stack, tenant, llm_standin)
    llm_standin.script("/p1", model, [{"status": 500}] * (MAX_RETRIES + 1))
    llm_standin.script("/p2", model, [{"chunks": ["from ", "the ", "second"]}] * CALLS)
    run = _submit(tenant, model)
    done = tenant.wait_run(run["id"])
    assert done["status"] == "succeeded", done
    # The first was tried and retried, then the second answered.
    assert len(llm_standin.requests("/p1", model)) == MAX_RETRIES + 1
    assert len(llm_standin.requests("/p2", model)) >= 1
    assert "from the second" in done["output"], done["output"]


def test_open_circuit_skips_provider_without_a_request(stack, tenant, llm_standin):
    model, p1, p2 = _two_providers(stack, tenant, llm_standin)
    # Enough failures for the first call to open p1's circuit.
    llm_standin.script("/p1", model, [{"status": 503}] * CIRCUIT_FAILURES)
    run = _submit(tenant, model)
    assert tenant.wait_run(run["id"])["status"] == "succeeded"
    circuit = _redis_circuit(p1)
    assert circuit.get("state") == "open", circuit
    assert int(circuit["failures"]) >= CIRCUIT_FAILURES, circuit
    assert int(circuit["open_until_ms"]) > time.time() * 1000, circuit
    assert _redis_circuit(p2).get("state") in (None, "closed")

    before = len(llm_standin.requests("/p1", model))
    p2_before = len(llm_standin.requests("/p2", model))
    llm_standin.script("/p2", model, [{"chunks": ["second ", "provider ", "again"]}] * CALLS)
    run = _submit(tenant, model)
    done = tenant.wait_run(run["id"])
    assert done["status"] == "succeeded", done
    assert len(llm_standin.requests("/p1", model)) == before, (
        "a provider with an open circuit was sent a request")
    assert len(llm_standin.requests("/p2", model)) > p2_before
    assert "second provider again" in done["output"], done["output"]


def test_stalled_stream_times_out_and_falls_back(stack, tenant, llm_standin):
    model, p1, p2 = _two_providers(stack, tenant, llm_standin)
    # Stalls after the role chunk, before any text: every attempt times out.
    llm_standin.script("/p1", model, [{"chunks": ["never"], "stall_after_chunks": 1,
                                       "stall_ms": 30000}] * (MAX_RETRIES + 1))
    llm_standin.script("/p2", model, [{"chunks": ["steady ", "answer"]}] * CALLS)
    t0 = time.monotonic()
    run = _submit(tenant, model)
    done = tenant.wait_run(run["id"], timeout=TIMEOUT + 10)
    took = time.monotonic() - t0
    assert done["status"] == "succeeded", done
    reqs = llm_standin.requests("/p1", model)
    assert len(reqs) == MAX_RETRIES + 1, reqs
    assert all(r["cut"] and not r["completed"] for r in reqs), (
        "the stalled streams were not cut by the worker")
    assert "steady answer" in done["output"], done["output"]
    assert took >= FIRST_BYTE_TIMEOUT_S * (MAX_RETRIES + 1) * 0.95, took


def test_malformed_chunk_fails_that_provider_clearly(stack, tenant, llm_standin):
    # Alone, the provider's malformed reply fails an llm-required run, and
    # the error says so.
    model = llm_standin.unique_name("m")
    llm_standin.register_model(stack, tenant.tenant_id, model, "/p1")
    llm_standin.script("/p1", model, [{"chunks": ["a", "b"],
                                       "malformed_after_chunks": 1}] * CALLS)
    run = _submit(tenant, model)
    done = tenant.wait_run(run["id"])
    assert done["status"] == "failed", done
    assert "malformed" in json.dumps(done).lower(), done

    # With a second provider, the call that got it goes straight to the
    # second: a malformed reply is not retried.
    model, p1, p2 = _two_providers(stack, tenant, llm_standin)
    llm_standin.script("/p1", model, [{"chunks": ["a", "b"],
                                       "malformed_after_chunks": 1}])
    llm_standin.script("/p1", model, [{"chunks": ["first ", "again"]}] * CALLS)
    llm_standin.script("/p2", model, [{"chunks": ["well ", "formed"]}] * CALLS)
    run = _submit(tenant, model)
    done = tenant.wait_run(run["id"])
    assert done["status"] == "succeeded", done
    r1 = llm_standin.requests("/p1", model)
    r2 = llm_standin.requests("/p2", model)
    assert r1 and r2, (r1, r2)
    assert len(r2) == 1, "only the call that got the malformed reply fell back"
    if len(r1) > 1:
        assert r2[0]["received"] < r1[1]["received"], (
            "the malformed reply was retried on the same provider")


def test_failure_after_a_delta_is_final(stack, tenant, llm_standin):
    """Text already streamed to clients is never streamed twice: a provider
    that breaks after its first delta is neither retried nor replaced."""
    model, p1, p2 = _two_providers(stack, tenant, llm_standin)
    llm_standin.script("/p1", model, [{"chunks": ["half ", "an ", "answer"],
                                       "malformed_after_chunks": 2}] * CALLS)
    llm_standin.script("/p2", model, [{"chunks": ["never ", "asked"]}] * CALLS)
    run = _submit(tenant, model)
    done = tenant.wait_run(run["id"])
    assert done["status"] == "failed", done
    assert llm_standin.requests("/p2", model) == [], "fell back after a delta"
    assert len(llm_standin.requests("/p1", model)) >= 1


def test_cancel_cuts_the_stream_in_flight(stack, tenant, llm_standin):
    model = llm_standin.unique_name("m")
    llm_standin.register_model(stack, tenant.tenant_id, model, "/p1")
    total = 400
    llm_standin.script("/p1", model, [{"chunks": ["tok "] * total,
                                       "chunk_delay_ms": 25}] * CALLS)
    run = _submit(tenant, model)
    s = tenant.sse(f"/v1/agent-runs/{run['id']}/events")
    assert s.status == 200
    s.read_until(lambda e: e.event == "llm.delta", what="a first llm.delta")
    t0 = time.monotonic()
    tenant.request("DELETE", f"/v1/agent-runs/{run['id']}").expect(200, 202)
    end = s.read_until(lambda e: e.event in ("job.cancelled", "job.succeeded",
                                             "job.failed"),
                       what="the run's terminal event")
    latency_ms = (end.t - t0) * 1000
    s.close()
    assert end.event == "job.cancelled", end
    done = tenant.wait_run(run["id"])
    assert done["status"] == "cancelled", done
    # The worker hung up on the provider mid-stream.
    deadline = time.monotonic() + 5
    while True:
        reqs = llm_standin.requests("/p1", model)
        if reqs and reqs[-1]["cut"] or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    last = reqs[-1]
    assert last["cut"] and not last["completed"], last
    assert last["chunks_sent"] < total, last
    print(f"\ncancel mid-stream: job.cancelled reached the SSE client "
          f"{latency_ms:.0f} ms after the DELETE was sent "
          f"(stand-in sent {last['chunks_sent']} of {total + 1} chunks)")


def test_api_key_goes_to_its_provider_only(stack, tenant, llm_standin):
    """AGENTGATE_LLM_API_KEYS (SESSION_ENV: it-keyed=...) is sent as a
    Bearer token to the provider of that name, to no other, and never
    logged."""
    model = llm_standin.unique_name("m")
    llm_standin.register_model(stack, tenant.tenant_id, model, "/pk",
                               provider="it-keyed")
    llm_standin.script("/pk", model, [{"status": 500}] * (MAX_RETRIES + 1))
    other = llm_standin.register_model(stack, tenant.tenant_id, model, "/pn")
    run = _submit(tenant, model)
    assert tenant.wait_run(run["id"])["status"] == "succeeded"
    keyed = llm_standin.requests("/pk", model)
    plain = llm_standin.requests("/pn", model)
    assert keyed and plain, (keyed, plain)
    assert all(r["headers"].get("Authorization") == "Bearer " + IT_API_KEY
               for r in keyed), [r["headers"] for r in keyed]
    assert all("Authorization" not in r["headers"] for r in plain), (
        f"provider {other} got a key: {[r['headers'] for r in plain]}")
    for path in glob.glob(os.path.join(stack.dir, "logs", "*.log")):
        with open(path, errors="replace") as f:
            assert IT_API_KEY not in f.read(), f"the API key is in {path}"


def test_other_tenants_models_are_not_candidates(stack, tenant, llm_standin):
    model = llm_standin.unique_name("m")
    llm_standin.register_model(stack, tenant.tenant_id, model, "/p1")
    other = stack.tenant("it-llm-other")
    r = other.request("POST", "/v1/agent-runs",
                      body={"prompt": PROMPT, "model": model,
                            "response_mode": "llm-required", "planning_mode": "none"})
    if r.status == 202:
        done = other.wait_run(r.json()["id"])
        assert done["status"] == "failed", (
            f"another tenant's model answered: {done}")
    else:
        r.expect_problem(400, 404, 422)
    assert llm_standin.requests("/p1", model) == [], (
        "a request went to another tenant's provider")
