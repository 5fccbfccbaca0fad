"""A worker's own /metrics (AGENTGATE_WORKER_METRICS_LISTEN): what it serves
passes Debian's `promtool check metrics`, carries the process_* metrics,
and its job, retry, dead-letter, lease, reconciliation, model-call and
tool-call series move when the worker does those things.

The session stack's workers are stopped for each test, so every job is
run (and every lease reaped) by the test's own worker, whose counters are
read before and after. Ports: AGENTGATE_TEST_WORKER_METRICS_PORT (default
20210) is the listen setting's port; the worker adds an offset of 1 to it,
as a worker@1 unit would.
"""
import json
import os
import signal
import subprocess

import pytest

from agentgate_test.metrics_worker import (EXPOSITION_TYPE, fetch, metrics_worker,
                                           scrape, total)
from agentgate_test.prom import Exposition, promtool_check
from agentgate_test.paths import bin_path
from agentgate_test.ports import pick_port
from agentgate_test.services import own_process, stack_env
from agentgate_test.tokens import DEFAULT_SCOPE
from agentgate_test.waiting import wait_for

BASE_PORT = pick_port("AGENTGATE_TEST_WORKER_METRICS_PORT", 20210)
OFFSET = 1

WORKER_FAMILIES = {
    "agentgate_job_queue_wait_seconds": "histogram",
    "agentgate_job_run_duration_seconds": "histogram",
    "agentgate_job_retries_total": "counter",
    "agentgate_job_dead_letters_total": "counter",
    "agentgate_job_lease_expiries_total": "counter",
    "agentgate_reconciliations_total": "counter",
    "agentgate_reconciled_jobs_total": "counter",
    "agentgate_llm_request_duration_seconds": "histogram",
    "agentgate_llm_time_to_first_token_seconds": "histogram",
    "agentgate_llm_tokens_total": "counter",
    "agentgate_llm_errors_total": "counter",
    "agentgate_llm_circuit_state": "gauge",
    "agentgate_tool_call_duration_seconds": "histogram",
    "agentgate_worker_job_threads": "gauge",
    "agentgate_worker_jobs_running": "gauge",
}
THREADS = 3
PROCESS_METRICS = ("process_cpu_seconds_total", "process_resident_memory_bytes",
                   "process_virtual_memory_bytes", "process_open_fds",
                   "process_max_fds", "process_start_time_seconds")


@pytest.fixture
def only_stack_workers_stopped(stack):
    with stack.workers_stopped():
        yield


@pytest.fixture
def worker(stack, only_stack_workers_stopped):
    """The only worker running: the stack's settings, metrics on
    BASE_PORT + OFFSET, taking the job types these tests run but
    "long-running" (which test_expired_lease_is_counted leaves to a worker
    it kills). Yields its metrics port."""
    with metrics_worker(stack, "main", BASE_PORT, OFFSET,
                             {"AGENTGATE_WORKER_QUEUES": "test,agent.run,mcp.discover",
                              "AGENTGATE_WORKER_CONCURRENCY": str(THREADS)}) as (_, port):
        yield port


def test_scrape_is_valid_and_lint_clean(tenant, worker):
    # A job first, so the job families have series as well as help lines.
    job = tenant.submit("test", {"outcome": "succeed"})
    assert tenant.wait_job(job["id"])["status"] == "succeeded"

    status, headers, body = fetch(worker)
    assert status == 200, body[:300]
    assert headers.get("Content-Type", "").startswith(EXPOSITION_TYPE), headers
    rc, out = promtool_check(body)
    assert rc == 0 and out.strip() == "", (
        f"promtool check metrics: exit {rc}:\n{out}\n---\n{body}")

    e = Exposition(body)
    for name, kind in WORKER_FAMILIES.items():
        assert e.types.get(name) == kind, f"{name}: TYPE {e.types.get(name)}, want {kind}"
    for name in PROCESS_METRICS:
        assert e.series(name), f"no {name} in the worker's scrape"
    assert e.value("process_resident_memory_bytes") > 0
    assert e.value("process_open_fds") > 0
    # The port is the setting's plus the offset (the worker@N pattern).
    assert worker == BASE_PORT + OFFSET


def test_job_series_move_with_outcomes(tenant, worker):
    before = scrape(worker)
    ok = [tenant.submit("test", {"outcome": "succeed"}) for _ in range(3)]
    failed = tenant.submit("test", {"outcome": "fail"}, max_attempts=1)
    retried = tenant.submit("test", {"outcome": "succeed", "fail_attempts": 1},
                            max_attempts=2)
    for j in ok + [retried]:
        assert tenant.wait_job(j["id"])["status"] == "succeeded"
    assert tenant.wait_job(failed["id"])["status"] == "failed"

    after = scrape(worker)

    def delta(name, **labels):
        return total(after, name, **labels) - total(before, name, **labels)

    run = "agentgate_job_run_duration_seconds_count"
    assert delta(run, type="test", outcome="succeeded") == 4
    assert delta(run, type="test", outcome="failed") == 1
    assert delta(run, type="test", outcome="retried") == 1
    assert delta("agentgate_job_retries_total", type="test", reason="failure") == 1
    assert delta("agentgate_job_dead_letters_total", type="test") == 1
    # Six attempts started, each with its wait observed.
    assert delta("agentgate_job_queue_wait_seconds_count", type="test") == 6
    assert delta("agentgate_job_queue_wait_seconds_sum", type="test") >= 0
    # A histogram's +Inf bucket is its count.
    assert (total(after, "agentgate_job_run_duration_seconds_bucket", type="test",
                       outcome="succeeded", le="+Inf")
            == total(after, run, type="test", outcome="succeeded"))


def test_running_jobs_gauge(tenant, worker):
    assert scrape(worker).value("agentgate_worker_job_threads") == THREADS
    assert scrape(worker).value("agentgate_worker_jobs_running") == 0
    job = tenant.submit("test", {"outcome": "succeed", "sleep_ms": 60000})
    tenant.wait_job(job["id"], statuses=("running",))
    assert scrape(worker).value("agentgate_worker_jobs_running") == 1
    tenant.request("DELETE", f"/v1/jobs/{job['id']}").expect_json(200, 202)
    assert tenant.wait_job(job["id"])["status"] == "cancelled"
    wait_for(lambda: scrape(worker).value("agentgate_worker_jobs_running") == 0,
             what="the running gauge back to 0")


def test_reconciliation_rounds_are_counted(worker):
    # With the stack's workers stopped this worker takes every round's lock
    # (AGENTGATE_RECONCILE_INTERVAL_MS is 1 s in the session stack).
    first = total(scrape(worker), "agentgate_reconciliations_total")
    wait_for(lambda: total(scrape(worker), "agentgate_reconciliations_total") > first,
             what="a reconciliation round counted")


def test_agent_run_counts_model_and_tool_calls(tenant, worker):
    before = scrape(worker)
    r = tenant.request("POST", "/v1/agent-runs", body={"prompt": "what time is it in UTC?"})
    run = tenant.wait_run(r.expect_json(202)["id"])
    assert run["status"] == "succeeded", run
    after = scrape(worker)

    def delta(name, **labels):
        return total(after, name, **labels) - total(before, name, **labels)

    m = run["metrics"]
    assert m["llm_calls"] >= 1 and m["tool_calls"] >= 1, m
    assert delta("agentgate_llm_request_duration_seconds_count", provider="builtin",
                 outcome="ok") == m["llm_calls"]
    assert delta("agentgate_llm_tokens_total", provider="builtin",
                 direction="output") == m["tokens_out"]
    assert delta("agentgate_llm_tokens_total", provider="builtin",
                 direction="input") == m["tokens_in"]
    assert delta("agentgate_llm_time_to_first_token_seconds_count",
                 provider="builtin") >= 1
    assert delta("agentgate_tool_call_duration_seconds_count", tool="system.time",
                 outcome="ok") == m["tool_calls"]
    assert delta("agentgate_job_run_duration_seconds_count", type="agent.run",
                 outcome="succeeded") == 1


def test_model_errors_tokens_and_circuit_by_provider(stack, tenant, llm_standin, worker):
    """A model served by two providers of the OpenAI stand-in: the first
    fails (503) until its circuit opens, the second answers with usage."""
    model = llm_standin.unique_name("m")
    p1 = llm_standin.register_model(stack, tenant.tenant_id, model, "/p1")
    p2 = llm_standin.register_model(stack, tenant.tenant_id, model, "/p2")
    llm_standin.script("/p1", model, [{"status": 503}] * 3)    # the stack opens at 3
    llm_standin.script("/p2", model, [{"chunks": ["fine ", "answer"],
                                       "usage": {"prompt_tokens": 7,
                                                 "completion_tokens": 5}}] * 12)
    r = tenant.request("POST", "/v1/agent-runs", body={
        "prompt": "Tell me a short story", "model": model,
        "response_mode": "llm-required", "planning_mode": "none"})
    run = tenant.wait_run(r.expect_json(202)["id"])
    assert run["status"] == "succeeded", run
    e = scrape(worker)
    to_p1 = len(llm_standin.requests("/p1", model))
    to_p2 = len(llm_standin.requests("/p2", model))
    assert to_p1 == 3 and to_p2 >= 1, (to_p1, to_p2)

    assert total(e, "agentgate_llm_errors_total", provider=p1, model=model) == to_p1
    assert total(e, "agentgate_llm_request_duration_seconds_count", provider=p1,
                 model=model, outcome="ok") == 0
    assert total(e, "agentgate_llm_request_duration_seconds_count", provider=p2,
                 model=model, outcome="ok") == to_p2
    assert total(e, "agentgate_llm_time_to_first_token_seconds_count", provider=p2,
                 model=model) == to_p2
    assert total(e, "agentgate_llm_tokens_total", provider=p2, model=model,
                 direction="input") == 7 * to_p2
    assert total(e, "agentgate_llm_tokens_total", provider=p2, model=model,
                 direction="output") == 5 * to_p2
    assert e.value("agentgate_llm_circuit_state", provider=p1) == 1     # open
    assert e.value("agentgate_llm_circuit_state", provider=p2) == 0     # closed


def test_mcp_tool_call_is_counted(stack, tenant, llm_standin, worker):
    """A model calls a tool of an MCP server (the reference "everything"
    server over stdio): counted under the tool's manifest name."""
    tenant.token = tenant.make_token(scope=DEFAULT_SCOPE + " mcp-servers:read mcp-servers:write")
    tenant.request("POST", "/v1/mcp-servers",
                   body={"name": "ev", "transport": "stdio", "server": "everything"}
                   ).expect_json(202)
    wait_for(lambda: tenant.request("GET", "/v1/mcp-servers/ev").expect_json(200)["status"]
             == "ready", timeout=30, what="the MCP server's discovery")
    model = llm_standin.unique_name("m")
    llm_standin.register_model(stack, tenant.tenant_id, model, "/metrics-mcp")
    call = {"id": "call_1", "name": "ev__echo", "arguments": json.dumps({"message": "hi"})}
    llm_standin.script("/metrics-mcp", model, [
        {"chunks": ["chat"]}, {"tool_calls": [call]},
        {"echo_tool_results": "The tools said:"}])
    before = scrape(worker)
    r = tenant.request("POST", "/v1/agent-runs", body={
        "prompt": "Say something nice", "model": model, "planning_mode": "optional"})
    run = tenant.wait_run(r.expect_json(202)["id"])
    assert run["status"] == "succeeded", run
    after = scrape(worker)
    name = "agentgate_tool_call_duration_seconds_count"
    assert (total(after, name, tool="ev.echo", outcome="ok")
            - total(before, name, tool="ev.echo", outcome="ok")) == 1


def test_expired_lease_is_counted(stack, tenant, worker):
    """A job whose worker dies mid-run (SIGKILL: no hand-back) is found by
    the metrics worker's reaper once its lease runs out."""
    before = scrape(worker)
    env = stack_env(stack)
    env.update({"AGENTGATE_WORKER_ID": "it-metrics-doomed",
                "AGENTGATE_WORKER_QUEUES": "long-running"})
    log = os.path.join(stack.dir, "logs", "worker-metrics-doomed.log")
    with own_process([bin_path("agentgate-worker")], env, log) as doomed:
        job = tenant.submit("long-running", {"duration_ms": 60000,
                                             "progress_interval_ms": 100},
                            max_attempts=2)
        got = tenant.wait_job(job["id"], statuses=("running",))
        assert got.get("worker_id") == "it-metrics-doomed", got
        doomed.send_signal(signal.SIGKILL)
        doomed.wait()

    def reaped():
        return total(scrape(worker), "agentgate_job_lease_expiries_total",
                          type="long-running") > total(
            before, "agentgate_job_lease_expiries_total", type="long-running")
    wait_for(reaped, what="the expired lease counted")
    after = scrape(worker)
    assert (total(after, "agentgate_job_retries_total", type="long-running",
                       reason="lease_expired")
            - total(before, "agentgate_job_retries_total", type="long-running",
                         reason="lease_expired")) >= 1
    # Queued again for its second attempt, which no worker here takes.
    tenant.request("DELETE", f"/v1/jobs/{job['id']}").expect_json(200, 202)


def test_only_get_and_head_of_metrics(worker):
    status, _, _ = fetch(worker, path="/nope")
    assert status == 404
    status, headers, _ = fetch(worker, method="POST")
    assert status == 405 and headers.get("Allow") == "GET, HEAD", (status, headers)
    status, headers, body = fetch(worker, method="HEAD")
    assert status == 200 and body == "", (status, body[:100])
    status, _, body = fetch(worker, path="/metrics?x=1")
    assert status == 200 and "process_open_fds" in body


def _start_fails(stack, settings):
    env = stack_env(stack)
    env.update(settings)
    r = subprocess.run([bin_path("agentgate-worker")], env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=30)
    return r.returncode, r.stdout.decode("utf-8", "replace").strip()


@pytest.mark.parametrize("settings, needle", [
    ({"AGENTGATE_WORKER_METRICS_LISTEN": "localhost"}, "AGENTGATE_WORKER_METRICS_LISTEN"),
    ({"AGENTGATE_WORKER_METRICS_LISTEN": "127.0.0.1:70000"},
     "AGENTGATE_WORKER_METRICS_LISTEN"),
    ({"AGENTGATE_WORKER_METRICS_LISTEN": "127.0.0.1:65535",
      "AGENTGATE_WORKER_METRICS_PORT_OFFSET": "1"}, "AGENTGATE_WORKER_METRICS_PORT_OFFSET"),
    ({"AGENTGATE_WORKER_METRICS_PORT_OFFSET": "x"}, "AGENTGATE_WORKER_METRICS_PORT_OFFSET"),
])
def test_bad_setting_stops_the_worker_with_exit_2(stack, settings, needle):
    rc, out = _start_fails(stack, settings)
    assert rc == 2, f"exit {rc}: {out}"
    assert len(out.splitlines()) == 1 and needle in out, out


def test_port_in_use_stops_the_worker(stack, worker):
    rc, out = _start_fails(stack, {"AGENTGATE_WORKER_METRICS_LISTEN": f"127.0.0.1:{worker}",
                                   "AGENTGATE_WORKER_ID": "it-metrics-clash"})
    assert rc == 1, f"exit {rc}: {out}"
    assert f"cannot listen for metrics on 127.0.0.1:{worker}" in out, out
