"""MCP servers as a tool source of agent runs, the worker's side, against
the real reference servers (tests/mcp: server-everything over stdio and
Streamable HTTP, server-memory over stdio) and, where no real server shows
what a test must prove, tests/mcp/fake_server.py ("slow": a call that ends
only when cancelled, which it reports on stderr).

The session stack's operator settings (tests/lib/agentgate_test/stack.py)
name the stdio servers "everything", "memory" and "slow" for every tenant
and allow one HTTP prefix, MCP_HTTP_URL, where a test starts
server-everything itself.

  discovery       registering a server runs mcp.discover: GET
                  /v1/mcp-servers/{name} shows the tools, GET /v1/tools the
                  manifests {server}.{tool}; over stdio and HTTP
  calls           a model (the OpenAI stand-in) calls an MCP tool through
                  the pipeline and reads its result (tool.called, audit);
                  progress notifications become job.progress events and
                  log messages `log` events, also those the server sends
                  outside any request (the GET stream of Streamable HTTP);
                  a server announcing notifications/tools/list_changed
                  gets a discovery queued; a cancelled run cancels the
                  call (the server gets notifications/cancelled); a server
                  killed mid-call fails that call and the next one
                  restarts it; a hung server times out
  permissions     a user's call of a graph write tool is denied (roles),
                  the model hears why, the audit row says denied
  graph           an admin writes entities into server-memory through a
                  run; a user's graph question, planned by the
                  deterministic planner, answers from them
  shutdown        stopping a worker deletes its HTTP sessions and stops
                  its stdio servers

The stand-in's scripts follow the orchestrator's calls: PROMPT matches no
intent rule, so the first call classifies it (scripted "chat"); with
planning_mode "optional" the next one is the direct answer, which asks
for tools; the one after it gets their results and answers (here with
echo_tool_results, so the run's output quotes what the tools returned).
"""

import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid

import pytest

from agentgate_test.client import check_frames
from agentgate_test.stack import MCP_CHANGING_FLAG, MCP_HTTP_PORT, MCP_HTTP_URL, MCP_MODULES
from agentgate_test.tokens import DEFAULT_SCOPE
from agentgate_test.waiting import TIMEOUT, wait_for

PREFIX = "/mcp-tools"
PROMPT = "Tell me something nice about lighthouses"
MCP_SCOPES = "mcp-servers:read mcp-servers:write graph:read graph:write"
EVERYTHING_JS = os.path.join(MCP_MODULES, "server-everything", "dist", "index.js")
CALL_TIMEOUT_S = 10     # AGENTGATE_MCP_CALL_TIMEOUT_MS of the session stack


@pytest.fixture(scope="module", autouse=True)
def servers_installed():
    assert shutil.which("node"), "node is not installed (deploy/local/install-deps)"
    assert os.path.exists(EVERYTHING_JS), "the MCP servers are not installed: make mcp-servers"


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

def _admin(tenant):
    """tenant's client with the scopes of MCP servers and the graph too."""
    tenant.token = tenant.make_token(scope=DEFAULT_SCOPE + " " + MCP_SCOPES)
    return tenant


def _server(tenant, name):
    return tenant.request("GET", f"/v1/mcp-servers/{name}").expect_json(200)


def _register(tenant, name, **fields):
    """Registers a server and waits for its discovery; returns the server."""
    tenant.request("POST", "/v1/mcp-servers", body=dict(name=name, **fields)).expect_json(202)

    def discovered():
        s = _server(tenant, name)
        return s if s["status"] != "pending" else None
    s = wait_for(discovered, timeout=30, what=f"the discovery of MCP server {name}")
    assert s["status"] == "ready", s
    return s


def _tool_names(tenant):
    body = tenant.request("GET", "/v1/tools").expect_json(200)
    return {t["name"]: t for t in body["items"]}


def _text(*chunks, **extra):
    return dict(chunks=list(chunks), **extra)


def _call(name, arguments, call_id=None):
    """One tool call as a model sends it ("ev.echo" goes out as "ev__echo")."""
    return {"id": call_id or "call_" + uuid.uuid4().hex[:8],
            "name": name.replace(".", "__"), "arguments": json.dumps(arguments)}


def _calls(*calls):
    return {"tool_calls": list(calls)}


CLASSIFY_CHAT = _text("chat")
QUOTE_RESULTS = {"echo_tool_results": "The tools said:"}


def _model(stack, tenant, llm_standin, replies):
    model = llm_standin.unique_name("m")
    llm_standin.register_model(stack, tenant.tenant_id, model, PREFIX)
    llm_standin.script(PREFIX, model, replies)
    return model


def _submit(tenant, model=None, prompt=PROMPT, **fields):
    body = {"prompt": prompt, "planning_mode": "optional"}
    if model:
        body["model"] = model
    body.update(fields)
    return tenant.request("POST", "/v1/agent-runs", body=body).expect_json(202)


def _stream(tenant, run):
    s = tenant.sse(f"/v1/agent-runs/{run['id']}/events")
    assert s.status == 200, s.response().describe()
    return s


def _finish(tenant, run, stream=None, timeout=TIMEOUT):
    """Reads the run's events to the end; returns (the run, its events)."""
    events = (stream or _stream(tenant, run)).read_to_end(timeout)
    check_frames(events, run["job_id"])
    return tenant.wait_run(run["id"]), events


def _steps(run, action):
    return [s for s in run["steps"] if s["action"] == action]


def _events_of(events, kind):
    return [e.body["data"] for e in events if e.event == kind]


def _tool_messages(req):
    return [m for m in req["body"]["messages"] if m.get("role") == "tool"]


def _offered(req):
    return {t["function"]["name"] for t in req["body"].get("tools") or []}


def _worker_log_lines(stack, needle):
    out = []
    for path in glob.glob(os.path.join(stack.dir, "logs", "worker*.log")):
        with open(path, errors="replace") as f:
            out += [line for line in f if needle in line]
    return out


def _proc_cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _proc_ppid(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return 0


def _worker_children(marker):
    """Pids of processes whose parent is an agentgate-worker and whose
    command line contains marker: the stack's stdio MCP servers."""
    pids = set()
    for d in os.listdir("/proc"):
        if d.isdigit() and marker in _proc_cmdline(d):
            if "agentgate-worker" in _proc_cmdline(_proc_ppid(d)):
                pids.add(int(d))
    return pids


def _free_port_wait(port, proc, seconds=20):
    end = time.time() + seconds
    while time.time() < end:
        assert proc.poll() is None, "the HTTP MCP server exited"
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"nothing listens on {port}")


@pytest.fixture
def http_everything(stack):
    """server-everything over Streamable HTTP at MCP_HTTP_URL; yields the
    path of its output (it logs each request it gets)."""
    out_path = os.path.join(stack.dir, "logs", "mcp-everything-http.out")
    out = open(out_path, "ab")
    env = dict(os.environ, PORT=str(MCP_HTTP_PORT))
    proc = subprocess.Popen(["node", EVERYTHING_JS, "streamableHttp"], env=env,
                            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    try:
        _free_port_wait(MCP_HTTP_PORT, proc)
        yield out_path
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        out.close()


# --------------------------------------------------------------------------
# discovery
# --------------------------------------------------------------------------

def test_discovery_over_stdio_lists_the_tools(tenant):
    admin = _admin(tenant)
    s = _register(admin, "ev", transport="stdio", server="everything")
    assert s["protocol_version"] in ("2025-11-25", "2025-06-18"), s
    assert s["server_info"]["name"], s
    assert s["last_refresh_at"] and s["last_error"] is None, s
    tools = {t["name"]: t for t in s["tools"]}
    for name in ("echo", "get-sum", "trigger-long-running-operation"):
        assert tools[name]["usable"] and tools[name]["manifest"] == f"ev.{name}", tools[name]
        assert tools[name]["read_only"] is True, tools[name]

    listed = _tool_names(admin)
    assert {"ev.echo", "ev.get-sum", "ev.trigger-long-running-operation"} <= set(listed)
    echo = listed["ev.echo"]
    assert echo["required_scopes"] == ["tools:read"], echo
    assert echo["input_schema"]["required"] == ["message"], echo
    # Another tenant sees none of it.
    rows = admin.stack.sql("SELECT count(*) FROM tool_manifests WHERE mcp_server = 'ev' "
                           "AND tenant_id = :'p1'", admin.tenant_id)
    assert int(rows[0][0]) == len([t for t in s["tools"] if t["manifest"]]), rows


def test_discovery_over_http_and_a_call(stack, tenant, llm_standin, http_everything):
    admin = _admin(tenant)
    s = _register(admin, "evh", transport="http", url=MCP_HTTP_URL)
    assert "evh.get-sum" in _tool_names(admin), s

    model = _model(stack, admin, llm_standin, [
        CLASSIFY_CHAT, _calls(_call("evh.get-sum", {"a": 2, "b": 40})), QUOTE_RESULTS])
    done, events = _finish(admin, _submit(admin, model))
    assert done["status"] == "succeeded", done
    assert "42" in done["output"], done["output"]
    called = _events_of(events, "tool.called")
    assert [(c["tool"], c["status"]) for c in called] == [("evh.get-sum", "ok")], called


def test_unreachable_server_is_an_error_with_a_reason(tenant):
    # Nothing listens at the allowed URL once no test runs the HTTP server
    # there; the discovery fails and says why, in one line.
    admin = _admin(tenant)
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", MCP_HTTP_PORT)) == 0:
            pytest.skip("an HTTP MCP server runs on the allowed port")
    admin.request("POST", "/v1/mcp-servers",
                  body={"name": "gone", "transport": "http", "url": MCP_HTTP_URL}
                  ).expect_json(202)
    s = wait_for(lambda: (lambda v: v if v["status"] != "pending" else None)(
        _server(admin, "gone")), timeout=60, what="the failed discovery")
    assert s["status"] == "error", s
    assert s["last_error"] and "\n" not in s["last_error"], s


# --------------------------------------------------------------------------
# calls
# --------------------------------------------------------------------------

def test_model_calls_an_mcp_tool_and_reads_its_result(stack, tenant, llm_standin):
    admin = _admin(tenant)
    _register(admin, "ev", transport="stdio", server="everything")
    model = _model(stack, admin, llm_standin, [
        CLASSIFY_CHAT,
        _calls(_call("ev.echo", {"message": "hello from the model"}, "call_echo_1")),
        QUOTE_RESULTS,
    ])
    done, events = _finish(admin, _submit(admin, model))
    assert done["status"] == "succeeded", done
    assert "Echo: hello from the model" in done["output"], done["output"]

    tool = _steps(done, "tool:invoke")[0]
    assert tool["status"] == "completed", tool
    assert tool["output"]["output"]["content"] == "Echo: hello from the model", tool
    assert tool["output"]["output"]["isError"] is False, tool
    called = _events_of(events, "tool.called")
    assert called[0]["tool"] == "ev.echo" and called[0]["status"] == "ok", called
    assert "Echo: hello from the model" in called[0]["output_preview"], called

    reqs = llm_standin.requests(PREFIX, model)
    assert "ev__echo" in _offered(reqs[1]), _offered(reqs[1])
    results = _tool_messages(reqs[2])
    assert results[0]["tool_call_id"] == "call_echo_1", results
    assert json.loads(results[0]["content"])["content"] == "Echo: hello from the model"
    rows = stack.sql("SELECT outcome, detail->>'mcp_server' FROM audit_logs "
                     "WHERE tenant_id = :'p1' AND action = 'tool.invoke' "
                     "AND resource = 'tool:ev.echo'", admin.tenant_id)
    assert rows == [["ok", "ev"]], rows


def test_progress_notifications_become_progress_events(stack, tenant, llm_standin):
    admin = _admin(tenant)
    _register(admin, "ev", transport="stdio", server="everything")
    model = _model(stack, admin, llm_standin, [
        CLASSIFY_CHAT,
        _calls(_call("ev.trigger-long-running-operation", {"duration": 1.2, "steps": 4})),
        QUOTE_RESULTS,
    ])
    done, events = _finish(admin, _submit(admin, model))
    assert done["status"] == "succeeded", done
    assert "Long running operation completed" in done["output"], done["output"]
    progress = [p for p in _events_of(events, "job.progress") if p["total"] == 4]
    assert [p["current"] for p in progress] == [1, 2, 3, 4], _events_of(events, "job.progress")


def test_server_messages_on_the_get_stream_reach_the_run(stack, tenant, llm_standin,
                                                        http_everything):
    # server-everything's simulated logging sends a log message every 5 s
    # to the session, outside any request: only the GET stream carries it.
    # The first call starts it; the second, a 7 s operation on the same
    # session (the worker's pooled client), sees messages arrive.
    admin = _admin(tenant)
    _register(admin, "evh", transport="http", url=MCP_HTTP_URL)
    model = _model(stack, admin, llm_standin, [
        CLASSIFY_CHAT,
        _calls(_call("evh.toggle-simulated-logging", {})),
        _calls(_call("evh.trigger-long-running-operation", {"duration": 7, "steps": 7})),
        QUOTE_RESULTS,
    ])
    done, events = _finish(admin, _submit(admin, model))
    assert done["status"] == "succeeded", done
    assert "Started simulated" in done["output"], done["output"]
    logs = [e["message"] for e in _events_of(events, "log")]
    assert any("SessionId" in m for m in logs), logs


def test_tool_list_change_announced_by_the_server_queues_a_discovery(stack, tenant,
                                                                      llm_standin):
    # "changing" sends notifications/tools/list_changed during its first
    # call and lists a second tool, "added", from then on.
    flag = os.path.join(stack.dir, MCP_CHANGING_FLAG)
    if os.path.exists(flag):
        os.remove(flag)
    admin = _admin(tenant)
    first = _register(admin, "ch", transport="stdio", server="changing")
    assert "ch.echo" in _tool_names(admin) and "ch.added" not in _tool_names(admin)
    model = _model(stack, admin, llm_standin, [
        CLASSIFY_CHAT, _calls(_call("ch.echo", {})), QUOTE_RESULTS])
    done, _ = _finish(admin, _submit(admin, model))
    assert done["status"] == "succeeded", done

    # The row points at the new discovery as soon as it is queued, and its
    # status stays "ready" meanwhile: wait for the row that lists the tool.
    def rediscovered():
        s = _server(admin, "ch")
        fresh = s["refresh_job_id"] != first["refresh_job_id"] and s["status"] == "ready"
        return s if fresh and "ch.added" in {t["manifest"] for t in s["tools"]} else None
    s = wait_for(rediscovered, timeout=30, what="the discovery the server's notification asked for")
    # The job ends just after its handler has recorded the tools.
    job = admin.wait_job(s["refresh_job_id"])
    assert (job["type"], job["status"]) == ("mcp.discover", "succeeded"), job
    assert "ch.added" in _tool_names(admin), s


def test_cancel_mid_call_cancels_the_call_on_the_server(stack, tenant, llm_standin):
    admin = _admin(tenant)
    s = _register(admin, "sl", transport="stdio", server="slow")
    assert [t["manifest"] for t in s["tools"]] == ["sl.echo"], s
    model = _model(stack, admin, llm_standin, [
        CLASSIFY_CHAT, _calls(_call("sl.echo", {})), QUOTE_RESULTS])
    run = _submit(admin, model)
    stream = _stream(admin, run)
    # The server is working on the call: its log message and progress.
    log = stream.read_until(lambda e: e.event == "log", what="the server's log event")
    assert log.body["data"] == {"level": "info", "logger": "fake",
                                "message": "working on echo"}, log.body
    stream.read_until(lambda e: e.event == "job.progress" and e.body["data"]["total"] == 2,
                      what="the server's progress")
    t0 = time.monotonic()
    admin.request("DELETE", f"/v1/agent-runs/{run['id']}").expect(200, 202)
    done, events = _finish(admin, run, stream)
    assert done["status"] == "cancelled", done
    assert time.monotonic() - t0 < 5, "the run was not cancelled promptly"
    assert events[-1].event == "job.cancelled", events[-1]
    lines = wait_for(lambda: _worker_log_lines(stack, "fake server: cancelled request"),
                     what="the server's report of notifications/cancelled")
    assert "cancelled" in lines[-1], lines


def test_server_killed_mid_call_fails_it_and_the_next_call_restarts(stack, tenant,
                                                                    llm_standin):
    admin = _admin(tenant)
    _register(admin, "ev", transport="stdio", server="everything")
    before = _worker_children(EVERYTHING_JS)
    model = _model(stack, admin, llm_standin, [
        CLASSIFY_CHAT,
        _calls(_call("ev.trigger-long-running-operation", {"duration": 20, "steps": 20})),
        _calls(_call("ev.echo", {"message": "after the restart"})),
        QUOTE_RESULTS,
    ])
    run = _submit(admin, model)
    stream = _stream(admin, run)
    stream.read_until(lambda e: e.event == "job.progress" and e.body["data"]["total"] == 20,
                      what="the long operation's first progress")
    mine = wait_for(lambda: _worker_children(EVERYTHING_JS) - before,
                    what="the run's server process")
    assert len(mine) == 1, mine
    os.kill(mine.pop(), signal.SIGKILL)
    done, events = _finish(admin, run, stream)
    assert done["status"] == "succeeded", done
    first, second = _steps(done, "tool:invoke")
    assert first["status"] == "failed", first
    assert "killed by signal 9" in first["output"]["message"], first
    assert "next call starts it again" in first["output"]["message"], first
    assert second["status"] == "completed", second
    assert "Echo: after the restart" in done["output"], done["output"]
    assert "killed by signal 9" in done["output"], done["output"]


def test_hung_server_times_out(stack, tenant, llm_standin):
    admin = _admin(tenant)
    _register(admin, "ev", transport="stdio", server="everything")
    model = _model(stack, admin, llm_standin, [
        CLASSIFY_CHAT,
        _calls(_call("ev.trigger-long-running-operation", {"duration": 60, "steps": 2})),
        _calls(_call("ev.echo", {"message": "still there"})),
        QUOTE_RESULTS,
    ])
    t0 = time.monotonic()
    done, _ = _finish(admin, _submit(admin, model), timeout=CALL_TIMEOUT_S + 30)
    took = time.monotonic() - t0
    assert done["status"] == "succeeded", done
    first, second = _steps(done, "tool:invoke")
    assert first["status"] == "failed", first
    assert f"did not answer \"trigger-long-running-operation\" within {CALL_TIMEOUT_S * 1000}" \
        in first["output"]["message"], first
    assert CALL_TIMEOUT_S - 1 <= first["output"]["latency_ms"] / 1000 < CALL_TIMEOUT_S + 5
    assert second["status"] == "completed", second
    assert took < CALL_TIMEOUT_S + 20, took


def test_server_not_ready_is_refused_with_a_reason(stack, tenant, llm_standin):
    admin = _admin(tenant)
    _register(admin, "ev", transport="stdio", server="everything")
    stack.sql("UPDATE mcp_servers SET status = 'error', last_error = 'test' "
              "WHERE tenant_id = :'p1' AND name = 'ev'", admin.tenant_id)
    model = _model(stack, admin, llm_standin, [
        CLASSIFY_CHAT, _calls(_call("ev.echo", {"message": "x"})), QUOTE_RESULTS])
    done, _ = _finish(admin, _submit(admin, model))
    tool = _steps(done, "tool:invoke")[0]
    assert tool["status"] == "failed", tool
    assert "is not ready (status error)" in tool["output"]["message"], tool
    reqs = llm_standin.requests(PREFIX, model)
    assert "ev__echo" not in _offered(reqs[1]), _offered(reqs[1])
    assert "not ready" in _tool_messages(reqs[2])[0]["content"]


# --------------------------------------------------------------------------
# permissions and the graph
# --------------------------------------------------------------------------

def _graph_user(stack, tenant):
    """A user (role user) of tenant who holds the graph scopes."""
    user = stack.tenant(tenant_id=tenant.tenant_id, sub="user-" + uuid.uuid4().hex[:8])
    user.token = user.make_token(roles=["user"], scope="agent-runs:read agent-runs:write "
                                 "graph:read graph:write tools:read")
    return user


def test_graph_write_by_a_user_is_denied(stack, tenant, llm_standin):
    admin = _admin(tenant)
    _register(admin, "mem", transport="stdio", server="memory", resource="graph")
    listed = _tool_names(admin)
    assert listed["mem.create_entities"]["required_scopes"] == ["graph:write"]
    assert listed["mem.search_nodes"]["required_scopes"] == ["graph:read"]
    user = _graph_user(stack, admin)
    entities = {"entities": [{"name": "Nobody-" + uuid.uuid4().hex[:6], "entityType": "x",
                              "observations": []}]}
    model = _model(stack, admin, llm_standin, [
        CLASSIFY_CHAT, _calls(_call("mem.create_entities", entities)), QUOTE_RESULTS])
    done, events = _finish(user, _submit(user, model))
    assert done["status"] == "succeeded", done
    tool = _steps(done, "tool:invoke")[0]
    assert tool["output"]["status"] == "denied", tool
    assert "roles (user) do not allow changing data on graph" in tool["output"]["message"]
    reqs = llm_standin.requests(PREFIX, model)
    # A user is offered the graph's reads, not its writes.
    assert "mem__search_nodes" in _offered(reqs[1]), _offered(reqs[1])
    assert "mem__create_entities" not in _offered(reqs[1]), _offered(reqs[1])
    assert "permission denied" in _tool_messages(reqs[2])[0]["content"]
    assert "permission denied" in done["output"], done["output"]
    rows = stack.sql("SELECT outcome, principal FROM audit_logs WHERE tenant_id = :'p1' "
                     "AND action = 'tool.invoke' AND resource = 'tool:mem.create_entities'",
                     admin.tenant_id)
    assert rows == [["denied", user.sub]], rows


def test_graph_question_answers_from_the_knowledge_graph(stack, tenant, llm_standin):
    admin = _admin(tenant)
    _register(admin, "mem", transport="stdio", server="memory", resource="graph")
    tag = uuid.uuid4().hex[:6]
    person, company = f"Zelda{tag}", f"Orbital{tag}"
    model = _model(stack, admin, llm_standin, [
        CLASSIFY_CHAT,
        _calls(_call("mem.create_entities", {"entities": [
                   {"name": person, "entityType": "person",
                    "observations": ["flies gliders"]},
                   {"name": company, "entityType": "company",
                    "observations": ["builds satellites"]}]}),
               _call("mem.create_relations", {"relations": [
                   {"from": person, "to": company, "relationType": "works_at"}]})),
        _text("Recorded."),
    ])
    done, _ = _finish(admin, _submit(admin, model))
    assert done["status"] == "succeeded", done
    assert [t["status"] for t in _steps(done, "tool:invoke")] == ["completed", "completed"]

    # A user's question, with no model: the deterministic planner reads
    # the graph and the answer quotes what it found.
    user = _graph_user(stack, admin)
    run = user.request("POST", "/v1/agent-runs", body={
        "prompt": f"Who is {person} connected to in the knowledge graph?"}).expect_json(202)
    done, events = _finish(user, run)
    assert done["status"] == "succeeded", done
    assert done["intent"] == "graph", done
    tool = _steps(done, "tool:invoke")[0]
    assert tool["input"]["tool"] == "mem.search_nodes", tool
    assert tool["input"]["arguments"] == {"query": person}, tool
    assert tool["status"] == "completed", tool
    out = done["output"]
    assert f"{person} works_at {company}" in out, out
    assert f"{person} (person: flies gliders)" in out, out


# --------------------------------------------------------------------------
# shutdown
# --------------------------------------------------------------------------

def test_worker_shutdown_closes_its_servers(stack, tenant, llm_standin, http_everything):
    admin = _admin(tenant)
    _register(admin, "evh", transport="http", url=MCP_HTTP_URL)
    _register(admin, "ev", transport="stdio", server="everything")
    before = _worker_children(EVERYTHING_JS)
    model = _model(stack, admin, llm_standin, [
        CLASSIFY_CHAT,
        _calls(_call("evh.echo", {"message": "over http"}),
               _call("ev.echo", {"message": "over stdio"})),
        QUOTE_RESULTS,
    ])
    done, _ = _finish(admin, _submit(admin, model))
    assert done["status"] == "succeeded", done
    assert "over http" in done["output"] and "over stdio" in done["output"], done["output"]
    children = _worker_children(EVERYTHING_JS) - before
    assert children, "no pooled stdio server after the call"
    with open(http_everything, errors="replace") as f:
        deleted_before = f.read().count("Received session termination request")
    for n in (1, 2):
        stack.worker("stop", n)
    try:
        assert not any(os.path.exists(f"/proc/{p}") and _proc_cmdline(p) for p in children), (
            "a stdio MCP server outlived its worker")
        with open(http_everything, errors="replace") as f:
            deleted = f.read().count("Received session termination request")
        assert deleted > deleted_before, "no HTTP session was deleted at shutdown"
    finally:
        for n in (1, 2):
            stack.worker("start", n)
