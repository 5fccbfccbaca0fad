#!/usr/bin/env python3
"""bench/mcp_tool_latency.py URL TOKEN --db DATABASE_URL --mcp-port PORT [options]

What a tool call costs through the tools pipeline (manifest, schema,
scopes, rate limit, the call, then audit and tool.called) when an MCP
server serves the tool, next to a built-in tool: server-everything's echo
over stdio (the operator's server "everything") and over Streamable HTTP
(started here on --mcp-port, which the stack's AGENTGATE_MCP_URL_ALLOWLIST
must admit), and the built-in system.time.

TOKEN must be allowed to register MCP servers and run agents
(mcp-servers:write, agent-runs:write, tools:read; role admin or
operator). The servers are registered for its tenant, a model served by
the OpenAI stand-in (tests/fakes/openai_standin.py, started here) is
added through psql on --db, and for each tool --runs agent runs are made
whose model asks for the tool --calls times (8 a reply). Each call
is a tool:invoke step whose latency_ms the tools runtime measured. The
first call of each run is left out and its slowest printed apart: it may
be the first on its worker process, which makes the client (starts the
child or opens the HTTP session) and initializes it.

Prints one line per tool: calls, p50, p99, mean (ms), and the difference
of the MCP tools' p50 and mean from the built-in's. latency_ms is in
whole milliseconds (so percentiles are too); the mean of many calls
resolves below one.
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import REPO, call, pct, start_standin, standin_model  # noqa: E402

EVERYTHING = os.path.join(REPO, "tests", "mcp", "node_modules", "@modelcontextprotocol",
                          "server-everything", "dist", "index.js")







def start_http_server(port):
    p = subprocess.Popen(["node", EVERYTHING, "streamableHttp"],
                         env=dict(os.environ, PORT=str(port)), stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    end = time.time() + 20
    while time.time() < end:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return p
        if p.poll() is not None:
            break
        time.sleep(0.1)
    p.kill()
    sys.exit(f"mcp_tool_latency: server-everything did not listen on {port}")


def register(url, auth, name, body):
    st, data = call(url, "POST", "/v1/mcp-servers", dict(body, name=name), auth)
    if st != 202:
        sys.exit(f"mcp_tool_latency: registering {name} answered {st}: {data[:200]!r}")
    end = time.time() + 30
    while time.time() < end:
        st, data = call(url, "GET", f"/v1/mcp-servers/{name}", None, auth)
        s = json.loads(data) if st == 200 else {}
        if s.get("status") == "ready":
            return
        if s.get("status") == "error":
            sys.exit(f"mcp_tool_latency: {name}: {s.get('last_error')}")
        time.sleep(0.1)
    sys.exit(f"mcp_tool_latency: {name} was not discovered within 30 s")


PER_REPLY = 8       # tool calls a model reply may carry (LLM_MAX_TOOL_CALLS)


def script_run(standin, model, tool, args, calls):
    """Classification, then the calls, PER_REPLY a reply, then an answer."""
    def rnd(n):
        return {"tool_calls": [{"id": f"c{uuid.uuid4().hex[:10]}",
                                "name": tool.replace(".", "__"),
                                "arguments": json.dumps(args)} for _ in range(n)]}
    replies = [{"chunks": ["chat"]}]
    replies += [rnd(min(PER_REPLY, calls - i)) for i in range(0, calls, PER_REPLY)]
    replies.append({"chunks": ["done"]})
    st, _ = call(standin, "POST", "/_standin/script",
                 {"prefix": "/mcpbench", "model": model, "responses": replies})
    if st != 200:
        sys.exit(f"mcp_tool_latency: scripting the stand-in answered {st}")


def run_latencies(url, auth, model, calls):
    """One agent run; the latency_ms of its tool:invoke steps, in order."""
    st, data = call(url, "POST", "/v1/agent-runs",
                    {"prompt": "Call the tool, please.", "model": model,
                     "planning_mode": "optional",
                     "max_iterations": calls + calls // PER_REPLY + 2}, auth)
    if st != 202:
        sys.exit(f"mcp_tool_latency: submit answered {st}: {data[:200]!r}")
    rid = json.loads(data)["id"]
    end = time.time() + 60
    while time.time() < end:
        st, data = call(url, "GET", f"/v1/agent-runs/{rid}", None, auth)
        run = json.loads(data)
        if run.get("status") in ("succeeded", "failed", "cancelled"):
            break
        time.sleep(0.05)
    steps = [s for s in run.get("steps", []) if s["action"] == "tool:invoke"]
    bad = [s for s in steps if s["status"] != "completed"]
    if run.get("status") != "succeeded" or bad or len(steps) != calls:
        sys.exit(f"mcp_tool_latency: run {rid} {run.get('status')}: "
                 f"{len(steps)} calls, {len(bad)} failed "
                 f"{(bad[0]['output'] if bad else run.get('error'))!r}")
    return [s["output"]["latency_ms"] for s in steps]




def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("url")
    ap.add_argument("token")
    ap.add_argument("--db", required=True, help="PostgreSQL URL for model_defaults")
    ap.add_argument("--mcp-port", type=int, required=True,
                    help="where server-everything listens (http://127.0.0.1:PORT/mcp)")
    ap.add_argument("--stdio-server", default="everything",
                    help="the operator's stdio server running server-everything")
    ap.add_argument("--runs", type=int, default=5, help="agent runs per tool")
    ap.add_argument("--calls", type=int, default=24,
                    help="tool calls per run (at most 32, as one model task sends back)")
    a = ap.parse_args()
    if not os.path.exists(EVERYTHING):
        sys.exit("mcp_tool_latency: skipped: the MCP servers are not installed "
                 "(make mcp-servers)")

    auth = {"Authorization": "Bearer " + a.token}
    tag = uuid.uuid4().hex[:6]
    stdio, http_name = f"bs{tag}", f"bh{tag}"
    standin, standin_url = start_standin("mcp_tool_latency")
    server = start_http_server(a.mcp_port)
    try:
        model = standin_model(a.db, a.token, f"{standin_url}/mcpbench/v1")
        register(a.url, auth, stdio, {"transport": "stdio", "server": a.stdio_server})
        register(a.url, auth, http_name, {"transport": "http",
                                          "url": f"http://127.0.0.1:{a.mcp_port}/mcp"})
        tools = [("built-in system.time", "system.time", {}),
                 ("MCP echo, stdio", f"{stdio}.echo", {"message": "bench"}),
                 ("MCP echo, Streamable HTTP", f"{http_name}.echo", {"message": "bench"})]
        results = {}
        for label, tool, args in tools:
            firsts, warm = [], []
            for _ in range(a.runs):
                script_run(standin_url, model, tool, args, a.calls)
                lat = run_latencies(a.url, auth, model, a.calls)
                firsts.append(lat[0])
                warm += lat[1:]
            results[label] = (max(firsts), warm)
        base = results[tools[0][0]][1]
        for label, (first, warm) in results.items():
            line = (f"{label}: {len(warm)} calls, p50 {pct(warm, 0.5)} ms, "
                    f"p99 {pct(warm, 0.99)} ms, mean {sum(warm) / len(warm):.2f} ms")
            if warm is not base:
                line += (f"; added over the built-in: p50 {pct(warm, 0.5) - pct(base, 0.5)} ms,"
                         f" mean {sum(warm) / len(warm) - sum(base) / len(base):.2f} ms;"
                         f" slowest first call of a run (a new client) {first} ms")
            print(line)
    finally:
        for p in (server, standin):
            p.terminate()
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()


if __name__ == "__main__":
    main()
