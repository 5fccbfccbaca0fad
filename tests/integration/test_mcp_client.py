"""
The MCP client (worker/tools/mcp_*.c) through its command-line tool,
agentgate-mcp, against real MCP servers and a scripted fake.

Real servers, pinned in tests/mcp/package.json (installed with `npm ci`
there when node_modules is missing):
  @modelcontextprotocol/server-everything  stdio:  node dist/index.js stdio
                                           HTTP:   PORT=N node dist/index.js streamableHttp
                                                   (endpoint http://127.0.0.1:N/mcp)
  @modelcontextprotocol/server-memory      stdio:  node dist/index.js
                                                   (MEMORY_FILE_PATH picks its file)
tests/mcp/fake_server.py covers what no real server does on demand:
malformed JSON-RPC, 1,000 tools over pagination, oversized results,
server-to-client sampling requests, version mismatches, a crash mid-call,
a lost HTTP session and an event stream that must be resumed.

Environment:
  AGENTGATE_MCP_BIN  the agentgate-mcp binary (default: $AGENTGATE_BIN/
                     agentgate-mcp, then build/bin/agentgate-mcp)

`make test-integration` installs the servers first (`make mcp-servers`);
node and npm come from deploy/local/install-deps.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MCP_DIR = os.path.join(REPO, "tests", "mcp")
FAKE = os.path.join(MCP_DIR, "fake_server.py")
EVERYTHING = os.path.join(MCP_DIR, "node_modules", "@modelcontextprotocol",
                          "server-everything", "dist", "index.js")
MEMORY = os.path.join(MCP_DIR, "node_modules", "@modelcontextprotocol",
                      "server-memory", "dist", "index.js")


def _find_bin():
    if os.environ.get("AGENTGATE_MCP_BIN"):
        return os.environ["AGENTGATE_MCP_BIN"]
    if os.environ.get("AGENTGATE_BIN"):
        cand = os.path.join(os.environ["AGENTGATE_BIN"], "agentgate-mcp")
        if os.path.exists(cand):
            return cand
    return os.path.join(REPO, "build", "bin", "agentgate-mcp")


BIN = _find_bin()


@pytest.fixture(scope="module", autouse=True)
def servers_installed():
    assert shutil.which("node"), "node is not installed (deploy/local/install-deps)"
    assert os.access(BIN, os.X_OK), "agentgate-mcp is not built at %s" % BIN
    assert os.path.exists(EVERYTHING) and os.path.exists(MEMORY), \
        "the MCP servers are not installed: run `make mcp-servers`"


def free_port():
    """A free loopback port below 32768 (the servers are told to use it)."""
    for port in range(18600, 18999):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 18600-18999")


def wait_port(port, proc, seconds=20):
    end = time.time() + seconds
    while time.time() < end:
        if proc.poll() is not None:
            raise RuntimeError("server exited with %s" % proc.returncode)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("server did not listen on %d" % port)


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def everything_url():
    port = free_port()
    proc = subprocess.Popen(["node", EVERYTHING, "streamableHttp"],
                            env=dict(os.environ, PORT=str(port)),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, proc)
        yield "http://127.0.0.1:%d/mcp" % port
    finally:
        stop(proc)


def fake_http(mode):
    port = free_port()
    proc = subprocess.Popen([sys.executable, FAKE, "http", str(port), mode],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port, proc)
    return proc, "http://127.0.0.1:%d/mcp" % port


EVERYTHING_STDIO = ["--stdio", "--", "node", EVERYTHING, "stdio"]


def server_args(transport, url):
    return EVERYTHING_STDIO if transport == "stdio" else [url]


def run(*args, timeout=60, env=None):
    """Runs agentgate-mcp; returns (exit status, stdout, last stderr line)."""
    p = subprocess.run([BIN] + list(args), capture_output=True, text=True, timeout=timeout,
                       env=env)
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    return p.returncode, p.stdout, (lines[-1] if lines else ""), p.stderr


@pytest.fixture(params=["stdio", "http"])
def target(request):
    if request.param == "stdio":
        return EVERYTHING_STDIO
    return [request.getfixturevalue("everything_url")]


# ---------- the command line itself ----------

def test_help_names_every_option():
    rc, out, _, _ = run("--help")
    assert rc == 0
    for opt in ("-H, --header", "--timeout", "--json", "--stdio", "--progress",
                "-v, --verbose", "-h, --help", "--version"):
        assert opt in out
    assert "exit status" in out


def test_version():
    rc, out, _, _ = run("--version")
    assert rc == 0 and out.startswith("agentgate-mcp ") and "2025-11-25" in out


@pytest.mark.parametrize("args, why", [
    ([], "no command"),
    (["frobnicate", "http://127.0.0.1:1/mcp"], "unknown command"),
    (["call", "echo", "http://127.0.0.1:1/mcp"], "TOOL, 'JSON' and the server URL"),
    (["call", "echo", "--stdio", "--"], "TOOL and 'JSON'"),
    (["call", "echo", "[1]", "http://127.0.0.1:1/mcp"], "JSON object"),
    (["call", "echo", "{nope", "http://127.0.0.1:1/mcp"], "not valid JSON"),
    (["call", "bad name", "{}", "http://127.0.0.1:1/mcp"], "tool name"),
    (["list"], "no server URL"),
    (["--timeout", "soon", "list", "http://127.0.0.1:1/mcp"], "--timeout"),
    (["--bogus", "list", "http://127.0.0.1:1/mcp"], "unknown option"),
    (["list", "ftp://127.0.0.1/mcp"], "http"),
    (["-H", "NoColon", "list", "http://127.0.0.1:1/mcp"], "Name: value"),
    (["list", "--stdio"], "COMMAND"),
])
def test_usage_errors_exit_2(args, why):
    rc, _, last, _ = run(*args)
    assert rc == 2
    assert last.startswith("agentgate-mcp: ") and why in last


def test_connection_refused_exits_3():
    rc, _, last, _ = run("--timeout", "3000", "list", "http://127.0.0.1:1/mcp")
    assert rc == 3
    assert "127.0.0.1:1" in last


# ---------- server-everything, over stdio and Streamable HTTP ----------

def test_list_tools(target):
    rc, out, _, _ = run("list", *target)
    assert rc == 0
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "READ-ONLY", "DESCRIPTION"]
    names = {l.split()[0] for l in lines[1:-1]}
    assert {"echo", "get-sum", "trigger-long-running-operation"} <= names
    echo = next(l for l in lines if l.startswith("echo "))
    assert echo.split()[1] == "yes" and "Echoes back" in echo


def test_list_tools_json(target):
    rc, out, _, _ = run("--json", "list", *target)
    assert rc == 0
    tools = {t["name"]: t for t in json.loads(out)["tools"]}
    assert tools["echo"]["inputSchema"]["type"] == "object"
    assert tools["echo"]["annotations"]["readOnlyHint"] is True
    assert "outputSchema" in tools["get-structured-content"]


def test_call_echo(target):
    rc, out, _, _ = run("call", "echo", '{"message": "hello MCP \u00e9"}', *target)
    assert rc == 0
    assert out == "Echo: hello MCP \u00e9\n"


def test_call_add(target):
    rc, out, _, _ = run("call", "get-sum", '{"a": 2, "b": 40}', *target)
    assert rc == 0
    assert "The sum of 2 and 40 is 42." in out


def test_call_structured_content(target):
    rc, out, _, _ = run("call", "get-structured-content", '{"location": "Chicago"}', *target)
    assert rc == 0
    sc = json.loads(out.split("structuredContent:\n", 1)[1])
    assert sc["conditions"] == "Light rain / drizzle"


def test_call_json_output(target):
    rc, out, _, _ = run("--json", "call", "get-sum", '{"a": 1, "b": 2}', *target)
    assert rc == 0
    assert json.loads(out)["content"][0]["text"] == "The sum of 1 and 2 is 3."


def test_progress_reported(target):
    rc, out, _, err = run("--progress", "call", "trigger-long-running-operation",
                          '{"duration": 1, "steps": 3}', *target)
    assert rc == 0
    assert "Long running operation completed" in out
    steps = [l for l in err.splitlines() if "progress" in l]
    assert steps == ["agentgate-mcp: progress %d/3" % i for i in (1, 2, 3)]


def test_tool_error_exits_1(target):
    rc, out, last, _ = run("call", "echo", '{"message": 5}', *target)
    assert rc == 1
    assert "echo" in out                # the server's explanation is printed
    assert last == "agentgate-mcp: tool echo reported an error"


def test_hung_call_times_out(target):
    t0 = time.time()
    rc, _, last, _ = run("--timeout", "1500", "call", "trigger-long-running-operation",
                         '{"duration": 30, "steps": 3}', *target)
    assert rc == 3
    assert "did not answer tools/call within 1500 ms" in last
    assert time.time() - t0 < 10


def test_image_content_summarised(target):
    rc, out, _, _ = run("call", "get-tiny-image", "{}", *target)
    assert rc == 0
    assert "[image: image/png," in out and "bytes base64]" in out


def test_custom_header_sent_not_printed(everything_url):
    rc, out, _, err = run("-v", "-H", "Authorization: Bearer s3cret-token", "call", "echo",
                          '{"message": "x"}', everything_url)
    assert rc == 0 and out == "Echo: x\n"
    assert "s3cret-token" not in err


def children_of(pid):
    kids = []
    for task in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/children" % (pid, task)) as f:
            kids += [int(k) for k in f.read().split()]
    return kids


def test_server_killed_mid_call_stdio():
    p = subprocess.Popen([BIN, "call", "trigger-long-running-operation",
                          '{"duration": 30, "steps": 30}'] + EVERYTHING_STDIO,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        server = None
        end = time.time() + 15
        while time.time() < end and server is None:
            kids = children_of(p.pid)
            server = kids[0] if kids else None
            time.sleep(0.1)
        assert server, "the server process did not start"
        time.sleep(1.5)                 # well into the call
        os.kill(server, signal.SIGKILL)
        out, err = p.communicate(timeout=15)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 3
    last = err.strip().splitlines()[-1]
    assert last == "agentgate-mcp: MCP server node was killed by signal 9 (Killed)"


# ---------- server-memory over stdio ----------

def test_memory_create_then_read(tmp_path):
    env = dict(os.environ, MEMORY_FILE_PATH=str(tmp_path / "memory.jsonl"))
    server = ["--stdio", "--", "node", MEMORY]
    entities = {"entities": [{"name": "agentgate", "entityType": "project",
                              "observations": ["written in C"]}]}
    rc, out, _, _ = run("call", "create_entities", json.dumps(entities), *server, env=env)
    assert rc == 0, out
    rc, out, _, _ = run("--json", "call", "read_graph", "{}", *server, env=env)
    assert rc == 0
    result = json.loads(out)
    graph = result.get("structuredContent") or json.loads(result["content"][0]["text"])
    assert graph["entities"][0]["name"] == "agentgate"
    assert graph["entities"][0]["observations"] == ["written in C"]


# ---------- the scripted fake: what real servers do not do ----------

def fake_stdio(*mode):
    return ["--stdio", "--", sys.executable, FAKE, "stdio"] + list(mode)


def test_thousand_tools_over_pagination():
    rc, out, _, _ = run("--json", "list", *fake_stdio("many-tools", "1000", "50"))
    assert rc == 0
    names = [t["name"] for t in json.loads(out)["tools"]]
    assert len(names) == 1000 and names[0] == "tool_0000" and names[-1] == "tool_0999"


def test_more_tools_than_the_cap():
    rc, _, last, _ = run("list", *fake_stdio("many-tools", "1001", "50"))
    assert rc == 3 and "more than 1000 tools" in last


def test_cursor_loop_refused():
    rc, _, last, _ = run("list", *fake_stdio("cursor-loop"))
    assert rc == 3 and "same cursor" in last


def test_invalid_tool_definitions_skipped():
    rc, out, _, _ = run("--json", "list", *fake_stdio("bad-tools"))
    assert rc == 0
    tools = json.loads(out)["tools"]
    assert [t["name"] for t in tools] == ["good.tool-1", "long_desc"]
    assert len(tools[1]["description"]) == 8192
    assert tools[1]["annotations"] == {"destructiveHint": True}


def test_malformed_message():
    rc, _, last, _ = run("call", "x", "{}", *fake_stdio("malformed"))
    assert rc == 3 and "malformed" in last


def test_oversized_message_refused():
    rc, _, last, _ = run("call", "x", "{}", *fake_stdio("oversized", "5000000"))
    assert rc == 3 and "over 4194304 bytes" in last


def test_large_result_truncated():
    rc, out, _, _ = run("call", "x", "{}", *fake_stdio("oversized", "2000000"))
    assert rc == 0
    assert out.rstrip().endswith("[truncated: the result exceeded 1048576 bytes]")
    assert len(out) < 1100000


def test_server_requests_refused_with_32601():
    rc, out, _, _ = run("--timeout", "10000", "call", "x", "{}", *fake_stdio("sampling"))
    assert rc == 0
    assert out.split() == ["sampling/createMessage=-32601", "elicitation/create=-32601",
                           "roots/list=-32601", "ping=result"]


def test_previous_protocol_version_accepted():
    rc, out, _, _ = run("call", "x", "{}", *fake_stdio("version", "2025-06-18"))
    assert rc == 0 and out == "called x\n"


def test_unknown_protocol_version_refused():
    rc, _, last, _ = run("call", "x", "{}", *fake_stdio("version", "2024-11-05"))
    assert rc == 3
    assert "speaks protocol version 2024-11-05" in last


def test_crash_mid_call():
    rc, _, last, _ = run("call", "x", "{}", *fake_stdio("crash-on-call"))
    assert rc == 3
    assert last == "agentgate-mcp: MCP server python3 exited with status 7" or \
        "exited with status 7" in last


def test_http_session_lost_reinitializes():
    proc, url = fake_http("session-lost")
    try:
        rc, out, _, _ = run("call", "x", "{}", url)
    finally:
        stop(proc)
    assert rc == 0
    assert out == "session 2, version header 2025-11-25\n"


def test_http_get_stream_reopened_no_faster_than_the_floor():
    # The server closes the GET stream at once, asking "retry: 0": the
    # client opens it again while a 2 s call waits, but at most every
    # 0.5 s, not in a loop.
    proc, url = fake_http("listen-retry0")
    try:
        rc, out, _, _ = run("call", "x", "{}", url)
    finally:
        stop(proc)
    assert rc == 0
    n = int(out.strip().rsplit(" ", 1)[1])
    assert 2 <= n <= 6, out


def test_http_stream_resumed_with_last_event_id():
    proc, url = fake_http("resume")
    try:
        rc, out, _, err = run("--progress", "call", "x", "{}", url)
    finally:
        stop(proc)
    assert rc == 0
    assert out == "resumed; version header 2025-11-25\n"
    assert "agentgate-mcp: progress 1/2" in err
