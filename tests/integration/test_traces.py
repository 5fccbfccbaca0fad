"""OpenTelemetry traces: one agent run is one trace, from the request that
submitted it down to its last step, exported over OTLP/HTTP (JSON) to a
local receiver (tests/fakes/otlp_receiver.py, the stand-in for a
collector, which rejects anything the encoding does not allow); and the
exporter drops and counts spans, without holding up a request, when the
collector is away.

The stack's workers are stopped for the traced tests and a worker and a
gateway of the test's own run with AGENTGATE_OTLP_ENDPOINT set, so every
job is run by a traced worker. The run asks the OpenAI stand-in for its
model calls and calls two tools: the built-in system.time and an MCP tool
over Streamable HTTP (tests/mcp/fake_server.py http trace, which answers
with the traceparent header the call came with), so the test sees both
outbound calls carry the span that made them.

Span tree checked (names as exported):

  POST /v1/agent-runs            gateway, server, child of the caller's span
    job agent.run                worker, consumer
      step <action>              one per row of the run's steps
        chat <model>             a model request (gen_ai.* attributes)
        execute_tool <tool>      a tool call (under its tool:invoke step)
"""

import json
import os
import subprocess
import sys
import time
import uuid

import pytest

from agentgate_test.paths import REPO, bin_path
from agentgate_test.ports import free_port
from agentgate_test.services import own_gateway, own_process, stack_env, stop_process
from agentgate_test.stack import MCP_HTTP_PORT, MCP_HTTP_URL, WORKERS
from agentgate_test.tokens import DEFAULT_SCOPE
from agentgate_test.waiting import TIMEOUT, wait_for

RECEIVER = os.path.join(REPO, "tests", "fakes", "otlp_receiver.py")
FAKE_MCP = os.path.join(REPO, "tests", "mcp", "fake_server.py")
PREFIX = "/traces"
PROMPT = "Tell me something nice about lighthouses"
CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
CALLER_TP = f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"
# Spans leave every 50 ms, so a test waits for them briefly.
TRACE_ENV = {"AGENTGATE_OTLP_INTERVAL_MS": "50", "AGENTGATE_OTLP_TIMEOUT_MS": "2000",
             "AGENTGATE_OTLP_HEADERS": "x-test-key=k1"}


class Receiver:
    def __init__(self, proc, port):
        self.proc = proc
        self.port = port
        self.endpoint = f"http://127.0.0.1:{port}"

    def _call(self, method, path, body=None):
        import http.client
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=TIMEOUT)
        try:
            c.request(method, path, body=None if body is None else json.dumps(body),
                      headers={"Content-Type": "application/json"})
            r = c.getresponse()
            raw = r.read()
            assert r.status == 200, f"receiver {path}: {r.status} {raw!r}"
            return json.loads(raw)
        finally:
            c.close()

    def spans(self):
        return self._call("GET", "/_otlp/spans")

    def stats(self):
        return self._call("GET", "/_otlp/stats")


@pytest.fixture(scope="module")
def receiver():
    proc = subprocess.Popen([sys.executable, RECEIVER, "--port", "0"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("listening on "), f"receiver did not start: {line!r}"
        yield Receiver(proc, int(line.split()[2]))
    finally:
        stop_process(proc, 5)


@pytest.fixture(scope="module")
def traced(stack, receiver):
    """A traced gateway and the only worker, both exporting to receiver."""
    settings = dict(TRACE_ENV, AGENTGATE_OTLP_ENDPOINT=receiver.endpoint)
    for i in range(1, WORKERS + 1):
        stack.worker("stop", i)
    env = stack_env(stack)
    env.update(settings)
    env["AGENTGATE_WORKER_ID"] = "it-traced"
    try:
        with own_process([bin_path("agentgate-worker")], env,
                         os.path.join(stack.dir, "logs", "worker-traced.log")) as worker:
            with own_gateway(stack, "traced", settings) as g:
                yield g, worker
    finally:
        for i in range(1, WORKERS + 1):
            stack.worker("start", i)


@pytest.fixture
def fake_mcp(stack):
    """tests/mcp/fake_server.py in "trace" mode at MCP_HTTP_URL."""
    log = open(os.path.join(stack.dir, "logs", "mcp-fake-trace.log"), "ab")
    proc = subprocess.Popen([sys.executable, FAKE_MCP, "http", str(MCP_HTTP_PORT), "trace"],
                            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    try:
        import socket

        def up():
            assert proc.poll() is None, "the fake MCP server exited"
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", MCP_HTTP_PORT)) == 0
        wait_for(up, timeout=20, what="the fake MCP server")
        yield
    finally:
        stop_process(proc, 5)
        log.close()


def _api(g, tenant, method, path, body=None, headers=None, expect=(200,)):
    h = {"Authorization": "Bearer " + tenant.token, "Accept": "application/json"}
    raw = None
    if body is not None:
        raw = json.dumps(body).encode()
        h["Content-Type"] = "application/json"
    h.update(headers or {})
    status, _, data = g.request(method, path, body=raw, headers=h)
    assert status in expect, f"{method} {path}: {status} {data[:500]!r}"
    return json.loads(data) if data else None


def _tool_call(name, arguments, call_id):
    return {"id": call_id, "name": name.replace(".", "__"), "arguments": json.dumps(arguments)}


def _by_id(spans):
    return {s["spanId"]: s for s in spans}


def _tree(spans, root_parent):
    """The spans as an indented tree under root_parent, children by start."""
    kids = {}
    for s in spans:
        kids.setdefault(s["parentSpanId"], []).append(s)
    lines = []

    def walk(parent, depth):
        for s in sorted(kids.get(parent, []), key=lambda x: x["start"]):
            a = s["attributes"]
            extra = ""
            if "gen_ai.request.model" in a:
                extra = (f" [{a.get('gen_ai.provider.name')} in={a.get('gen_ai.usage.input_tokens')}"
                         f" out={a.get('gen_ai.usage.output_tokens')}]")
            elif "http.response.status_code" in a:
                extra = f" [{a['http.response.status_code']}]"
            elif "agentgate.tool.status" in a:
                extra = f" [{a['agentgate.tool.status']}]"
            lines.append(f"{'  ' * depth}{s['name']} ({s['service']}, "
                         f"{(s['end'] - s['start']) / 1e6:.1f} ms){extra}")
            walk(s["spanId"], depth + 1)
    walk(root_parent, 0)
    return "\n".join(lines)


def test_one_agent_run_is_one_trace(stack, llm_standin, receiver, traced, fake_mcp):
    g, worker = traced
    tenant = stack.tenant("it-trace")
    tenant.token = tenant.make_token(scope=DEFAULT_SCOPE + " mcp-servers:read mcp-servers:write")

    # An MCP server over HTTP; its discovery is a job of the traced worker.
    _api(g, tenant, "POST", "/v1/mcp-servers",
         {"name": "fk", "transport": "http", "url": MCP_HTTP_URL}, expect=(202,))
    server = wait_for(lambda: (lambda s: s if s["status"] != "pending" else None)(
        _api(g, tenant, "GET", "/v1/mcp-servers/fk")), timeout=30, what="the discovery of fk")
    assert server["status"] == "ready", server

    model = llm_standin.unique_name("m")
    provider = llm_standin.register_model(stack, tenant.tenant_id, model, PREFIX)
    llm_standin.script(PREFIX, model, [
        {"chunks": ["chat"]},
        {"tool_calls": [_tool_call("system.time", {}, "call_time"),
                        _tool_call("fk.echo", {"message": "hi"}, "call_echo")]},
        {"echo_tool_results": "The tools said:",
         "usage": {"prompt_tokens": 31, "completion_tokens": 7}},
    ])

    run = _api(g, tenant, "POST", "/v1/agent-runs",
               {"prompt": PROMPT, "model": model, "planning_mode": "optional"},
               headers={"traceparent": CALLER_TP}, expect=(202,))

    def finished():
        r = _api(g, tenant, "GET", f"/v1/agent-runs/{run['id']}")
        return r if r["status"] in ("succeeded", "failed", "cancelled") else None
    done = wait_for(finished, timeout=TIMEOUT, what="the agent run")
    assert done["status"] == "succeeded", done
    assert worker.poll() is None, "the traced worker exited"

    def trace_complete():
        spans = [s for s in receiver.spans() if s["traceId"] == CALLER_TRACE]
        # Each process sends its spans in the order they end: the job's
        # span ends after all of its steps', the request's before them all,
        # but the two processes export independently.
        jobs = [s for s in spans if s["name"] == "job agent.run"
                and s["attributes"].get("agentgate.job.id") == run["job_id"]]
        posts = [s for s in spans if s["service"] == "agentgate-gateway"
                 and s["name"] == "POST /v1/agent-runs"]
        return spans if jobs and posts else None
    spans = wait_for(trace_complete, timeout=20,
                     what="the run's request and job spans at the receiver")
    tree = _tree(spans, CALLER_SPAN)
    print("\nspan tree of one agent run (trace " + CALLER_TRACE + "):\n" + tree)
    with open(os.path.join(stack.dir, "logs", "trace-tree.txt"), "w") as f:
        f.write(tree + "\n")
    ids = _by_id(spans)
    assert receiver.stats()["rejected"] == [], receiver.stats()["rejected"]

    # The submitting request: a server span, child of the caller's.
    posts = [s for s in spans if s["name"] == "POST /v1/agent-runs"]
    assert len(posts) == 1, tree
    post = posts[0]
    assert post["service"] == "agentgate-gateway" and post["kind"] == 2, post
    assert post["parentSpanId"] == CALLER_SPAN, post
    a = post["attributes"]
    assert a["http.request.method"] == "POST" and a["http.route"] == "/v1/agent-runs", a
    assert a["http.response.status_code"] == 202 and a["url.path"] == "/v1/agent-runs", a
    assert a["agentgate.tenant_id"] == tenant.tenant_id, a

    # The job attempt: the worker's consumer span, child of the request.
    job = next(s for s in spans if s["name"] == "job agent.run")
    assert job["service"] == "agentgate-worker" and job["kind"] == 5, job
    assert job["parentSpanId"] == post["spanId"], (job, post)
    assert job["attributes"]["agentgate.job.id"] == run["job_id"], job
    assert job["attributes"]["agentgate.job.outcome"] == "succeeded", job
    assert job["attributes"]["agentgate.job.attempt"] == 1, job

    # The worker's log lines about the job carry the attempt's traceparent.
    job_tp = f"00-{CALLER_TRACE}-{job['spanId']}-01"
    with open(os.path.join(stack.dir, "logs", "worker-traced.log"), errors="replace") as f:
        lines = [json.loads(line) for line in f
                 if line.startswith("{") and run["job_id"] in line and "claimed" in line]
    assert lines and all(x.get("traceparent") == job_tp for x in lines), lines

    # Every step of the run, each a child of the attempt.
    steps = [s for s in spans if s["name"].startswith("step ")]
    assert sorted(s["attributes"]["agentgate.step.id"] for s in steps) == \
        sorted(s["id"] for s in done["steps"]), tree
    for s in steps:
        assert s["parentSpanId"] == job["spanId"], s
        assert s["attributes"]["agentgate.run_id"] == run["id"], s
        assert s["name"] == "step " + s["attributes"]["agentgate.step.action"], s
    last = max(done["steps"], key=lambda s: s["index"])
    assert any(s["attributes"]["agentgate.step.id"] == last["id"] for s in steps)

    # Model calls: under a step, with the gen_ai attributes, and the
    # traceparent each request carried names its span.
    chats = [s for s in spans if s["name"] == f"chat {model}"]
    reqs = llm_standin.requests(PREFIX, model)
    assert len(chats) == len(reqs) == 3, tree
    for c in chats:
        assert c["kind"] == 3 and ids[c["parentSpanId"]]["name"].startswith("step "), c
        a = c["attributes"]
        assert a["gen_ai.operation.name"] == "chat", a
        assert a["gen_ai.request.model"] == model and a["gen_ai.response.model"] == model, a
        assert a["gen_ai.provider.name"] == provider and a["gen_ai.system"] == provider, a
        assert a["gen_ai.usage.input_tokens"] >= 0 and a["gen_ai.usage.output_tokens"] >= 0, a
    assert any(c["attributes"]["gen_ai.usage.input_tokens"] == 31 and
               c["attributes"]["gen_ai.usage.output_tokens"] == 7 for c in chats), tree
    sent = sorted(r["headers"].get("traceparent") or r["headers"].get("Traceparent")
                  for r in reqs)
    assert sent == sorted(f"00-{CALLER_TRACE}-{c['spanId']}-01" for c in chats), sent

    # Tool calls: under their tool:invoke steps; the MCP server was sent
    # the tool span's traceparent.
    tools = {s["attributes"]["gen_ai.tool.name"]: s for s in spans
             if s["name"].startswith("execute_tool ")}
    assert set(tools) == {"system.time", "fk.echo"}, tree
    for t in tools.values():
        assert t["attributes"]["agentgate.tool.status"] == "ok", t
        assert ids[t["parentSpanId"]]["name"] == "step tool:invoke", t
    assert tools["fk.echo"]["attributes"]["agentgate.mcp.server"] == "fk"
    echo_step = next(s for s in done["steps"] if s["action"] == "tool:invoke"
                     and s["output"].get("tool") == "fk.echo")
    text = json.dumps(echo_step["output"])
    assert f"traceparent: 00-{CALLER_TRACE}-{tools['fk.echo']['spanId']}-01" in text, text

    # The configured headers went with every export.
    assert all(h.get("x-test-key") == "k1" for h in receiver.stats()["headers"])


def _metric(text, name, **labels):
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    key = f"{name}{{{want}}}" if want else name
    for line in text.splitlines():
        if line.startswith(key + " "):
            return float(line.split()[1])
    raise AssertionError(f"{key} not in the scrape")


def test_exporter_drops_and_counts_when_the_collector_hangs(stack):
    """A collector that accepts connections and never answers: the one
    export in flight waits (its timeout is a minute), the queue (16 spans)
    fills and every span after it is dropped and counted, while every
    request is answered. The gateway still stops at once: the hung export
    is aborted."""
    import socket
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(64)
    try:
        settings = {"AGENTGATE_OTLP_ENDPOINT": f"http://127.0.0.1:{hole.getsockname()[1]}",
                    "AGENTGATE_OTLP_QUEUE_SIZE": "16", "AGENTGATE_OTLP_BATCH_SIZE": "4",
                    "AGENTGATE_OTLP_INTERVAL_MS": "10", "AGENTGATE_OTLP_TIMEOUT_MS": "60000"}
        with own_gateway(stack, "otlp-hole", settings) as g:
            n = 100
            for _ in range(n):
                assert g.request("GET", "/v1/health/live")[0] == 200
            scrape = g.request("GET", "/metrics")[2].decode()
            full = _metric(scrape, "agentgate_otlp_spans_dropped_total", reason="queue_full")
            # Of the requests before the scrape (n, and the readiness probes
            # of own_gateway), only a queue and the batch in flight are kept.
            assert full >= n - 16 - 4, scrape
            assert _metric(scrape, "agentgate_otlp_spans_exported_total") == 0
            assert _metric(scrape, "agentgate_otlp_spans_dropped_total",
                           reason="export_failed") == 0
            g.proc.terminate()
            # SIGKILL would come after 15 s (own_process); the hung export
            # is aborted a second after the stop begins.
            assert g.proc.wait(timeout=10) == 0, g.log()
            assert "trace export to" in g.log() and "failed" in g.log(), g.log()
    finally:
        hole.close()


def test_exporter_recovers_when_the_collector_comes_back(stack, receiver):
    """Refused exports (503) are dropped and counted, once logged; when the
    collector takes spans again they flow and the gateway says so."""
    receiver._call("POST", "/_otlp/status", {"status": 503})
    try:
        settings = dict(TRACE_ENV, AGENTGATE_OTLP_ENDPOINT=receiver.endpoint)
        with own_gateway(stack, "otlp-503", settings) as g:
            tp = f"00-{uuid.uuid4().hex}-{CALLER_SPAN}-01"
            assert g.request("GET", "/v1/health/live", headers={"traceparent": tp})[0] == 200

            def refused():
                s = g.request("GET", "/metrics")[2].decode()
                return _metric(s, "agentgate_otlp_spans_dropped_total",
                               reason="export_failed") > 0
            wait_for(refused, timeout=20, what="a refused export counted")
            assert "answered 503" in g.log()
            receiver._call("POST", "/_otlp/status", {"status": 200})
            tp = f"00-{uuid.uuid4().hex}-{CALLER_SPAN}-01"
            assert g.request("GET", "/v1/health/live", headers={"traceparent": tp})[0] == 200
            trace = tp[3:35]
            spans = wait_for(lambda: [s for s in receiver.spans() if s["traceId"] == trace],
                             timeout=20, what="the span after the collector came back")
            assert spans[0]["name"] == "GET /v1/health/live", spans
            assert spans[0]["attributes"]["http.response.status_code"] == 200, spans
            wait_for(lambda: "works again" in g.log(), timeout=10, what="the recovery line")
    finally:
        receiver._call("POST", "/_otlp/status", {"status": 200})


@pytest.mark.parametrize("name,value", [
    ("AGENTGATE_OTLP_ENDPOINT", "ftp://collector:4318"),
    ("AGENTGATE_OTLP_HEADERS", "no-equals-sign"),
    ("AGENTGATE_OTLP_QUEUE_SIZE", "0"),
])
def test_bad_trace_settings_stop_the_start(stack, name, value):
    env = stack_env(stack)
    env[name] = value
    env["AGENTGATE_LISTEN"] = f"127.0.0.1:{free_port()}"
    for prog in ("agentgate-gateway", "agentgate-worker"):
        r = subprocess.run([bin_path(prog)], env=env, stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 2, (prog, r.returncode, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and name in lines[0], (prog, r.stderr)
