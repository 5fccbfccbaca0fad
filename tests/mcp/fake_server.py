#!/usr/bin/env python3
"""
fake_server.py - a scripted MCP server for the protocol violations and
edge cases no real server produces on demand. Standard library only.

  fake_server.py stdio MODE [ARG]     MCP over stdin/stdout (one JSON per line)
  fake_server.py http PORT MODE       Streamable HTTP on 127.0.0.1:PORT/mcp

stdio modes:
  many-tools N PAGE  tools/list returns N tools, PAGE per page (nextCursor)
  bad-tools          tools/list mixes valid tools with invalid definitions
  cursor-loop        tools/list returns the same nextCursor forever
  malformed          answers tools/call with a line that is not JSON-RPC
  oversized N        answers tools/call with N bytes of text
  sampling           on tools/call first asks the client for sampling,
                     elicitation, roots and a ping, then reports what the
                     client answered as the tool's text
  version V          answers initialize with protocol version V
  crash-on-call      exits with status 7 when tools/call arrives
  list-changed [F]   sends notifications/tools/list_changed before answering;
                     from then on tools/list also lists the tool "added"
                     (every process of it, when F names a file it creates)
  log                sends notifications/message before answering
  slow               on tools/call sends a log message and a progress report,
                     then never answers; a notifications/cancelled for the
                     call is reported on stderr ("fake server: cancelled
                     request ID: REASON"), which is how a test proves it came

http modes:
  session-lost       the first tools/call after initialize gets 404 (the
                     session is "gone"); later sessions work
  resume             tools/call answers with an event stream that closes
                     after a priming event and one progress event; the
                     response comes on the GET that resumes with
                     Last-Event-ID
  trace              tools/call answers "traceparent: T" with the traceparent
                     header the call came with ("none" without one)
  listen-retry0      the GET stream (a GET without Last-Event-ID) is
                     answered with "retry: 0" and closed at once; tools/call
                     answers after 2 s with how many such GETs came

Every tools/call that succeeds answers with text describing what the
server saw, so the tests can check the client's side of the exchange.
"""

import http.server
import json
import os
import sys
import threading
import time

PROTOCOL = "2025-11-25"
LIST_CHANGED_SENT = False       # list-changed: the notification went out


def result(mid, res):
    return {"jsonrpc": "2.0", "id": mid, "result": res}


def error(mid, code, msg):
    return {"jsonrpc": "2.0", "id": mid, "error": {"code": code, "message": msg}}


def text_result(text, is_error=False):
    return {"content": [{"type": "text", "text": text}], "isError": is_error}


def tool(name, desc="a fake tool", read_only=True):
    return {
        "name": name,
        "description": desc,
        "inputSchema": {"type": "object", "properties": {}},
        "annotations": {"readOnlyHint": read_only},
    }


def initialize_result(version=PROTOCOL):
    return {
        "protocolVersion": version,
        "capabilities": {"tools": {"listChanged": True}, "logging": {}},
        "serverInfo": {"name": "fake", "version": "1.0"},
    }


class Stdio:
    """Line-oriented JSON-RPC on stdin/stdout."""

    def __init__(self):
        self.next_id = 0

    def send(self, msg):
        sys.stdout.write(json.dumps(msg) + "\n")
        sys.stdout.flush()

    def send_raw(self, line):
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    def recv(self):
        while True:
            line = sys.stdin.readline()
            if not line:
                sys.exit(0)
            line = line.strip()
            if line:
                return json.loads(line)

    def ask(self, method, params=None):
        """Sends a request to the client and returns its answer."""
        self.next_id += 1
        rid = "srv-%d" % self.next_id
        msg = {"jsonrpc": "2.0", "id": rid, "method": method}
        if params is not None:
            msg["params"] = params
        self.send(msg)
        while True:
            m = self.recv()
            if m.get("id") == rid and ("result" in m or "error" in m):
                return m


def page_of_tools(n, page, cursor):
    start = int(cursor) if cursor else 0
    tools = [tool("tool_%04d" % i) for i in range(start, min(n, start + page))]
    res = {"tools": tools}
    if start + page < n:
        res["nextCursor"] = str(start + page)
    return res


def bad_tools():
    ok = tool("good.tool-1")
    return {"tools": [
        ok,
        tool("bad name with spaces"),
        {"name": "no_schema"},
        {"name": "array_schema", "inputSchema": []},
        {"name": "x" * 129, "inputSchema": {"type": "object"}},
        dict(tool("good.tool-1")),                      # duplicate
        {"name": "string_schema_type", "inputSchema": {"type": "string"}},
        {"name": "long_desc", "description": "d" * 20000,
         "inputSchema": {"type": "object"},
         "annotations": {"readOnlyHint": "yes", "destructiveHint": True}},
        42,
    ]}


def stdio_main(mode, args):
    io = Stdio()
    sys.stderr.write("fake server (%s) ready\n" % mode)
    sys.stderr.flush()
    while True:
        m = io.recv()
        method = m.get("method")
        mid = m.get("id")
        if method == "initialize":
            version = args[0] if mode == "version" else PROTOCOL
            io.send(result(mid, initialize_result(version)))
        elif mid is None:
            continue                                    # notifications
        elif method == "ping":
            io.send(result(mid, {}))
        elif method == "tools/list":
            cursor = (m.get("params") or {}).get("cursor")
            if mode == "many-tools":
                io.send(result(mid, page_of_tools(int(args[0]), int(args[1]), cursor)))
            elif mode == "bad-tools":
                io.send(result(mid, bad_tools()))
            elif mode == "cursor-loop":
                io.send(result(mid, {"tools": [], "nextCursor": "again"}))
            else:
                changed = LIST_CHANGED_SENT or (mode == "list-changed" and args and
                                                os.path.exists(args[0]))
                tools = [tool("echo")] + ([tool("added")] if changed else [])
                io.send(result(mid, {"tools": tools}))
        elif method == "tools/call":
            stdio_call(io, mode, args, m)
        else:
            io.send(error(mid, -32601, "Method not found"))


def stdio_call(io, mode, args, m):
    mid = m["id"]
    if mode == "malformed":
        io.send_raw('{"jsonrpc": "2.0", "id": %s, "result": ' % json.dumps(mid))
    elif mode == "oversized":
        io.send(result(mid, text_result("x" * int(args[0]))))
    elif mode == "crash-on-call":
        sys.stderr.write("fake server: crashing on purpose\n")
        sys.stderr.flush()
        sys.exit(7)
    elif mode == "sampling":
        seen = []
        for method in ("sampling/createMessage", "elicitation/create", "roots/list"):
            ans = io.ask(method, {"messages": []} if method.startswith("sampling") else {})
            seen.append("%s=%s" % (method, ans.get("error", {}).get("code", "result")))
        pong = io.ask("ping")
        seen.append("ping=%s" % ("result" if "result" in pong else "error"))
        io.send(result(mid, text_result(" ".join(seen))))
    elif mode == "list-changed":
        global LIST_CHANGED_SENT
        LIST_CHANGED_SENT = True
        if args:
            open(args[0], "w").close()
        io.send({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"})
        io.send(result(mid, text_result("list changed sent")))
    elif mode == "log":
        io.send({"jsonrpc": "2.0", "method": "notifications/message",
                 "params": {"level": "warning", "logger": "fake", "data": {"k": "v"}}})
        io.send(result(mid, text_result("log sent")))
    elif mode == "slow":
        slow_call(io, m)
    else:
        io.send(result(mid, text_result("called %s" % m["params"]["name"])))


def slow_call(io, m):
    """Reports work on the call, then waits for its cancellation."""
    mid = m["id"]
    io.send({"jsonrpc": "2.0", "method": "notifications/message",
             "params": {"level": "info", "logger": "fake",
                        "data": "working on %s" % m["params"]["name"]}})
    token = ((m["params"].get("_meta") or {}).get("progressToken"))
    if token is not None:
        io.send({"jsonrpc": "2.0", "method": "notifications/progress",
                 "params": {"progressToken": token, "progress": 1, "total": 2,
                            "message": "half way"}})
    while True:
        n = io.recv()
        if n.get("method") == "ping" and "id" in n:
            io.send(result(n["id"], {}))
        elif n.get("method") == "notifications/cancelled":
            p = n.get("params") or {}
            if p.get("requestId") == mid:
                sys.stderr.write("fake server: cancelled request %s: %s\n"
                                 % (json.dumps(mid), p.get("reason")))
                sys.stderr.flush()
                return


class HttpState:
    def __init__(self, mode):
        self.mode = mode
        self.lock = threading.Lock()
        self.sessions = 0
        self.lost_once = False
        self.current = None
        self.pending = {}       # last event id -> message to replay
        self.listens = 0        # GET streams opened (listen-retry0)


def make_handler(state):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *a):
            sys.stderr.write("fake http: " + (fmt % a) + "\n")

        def reply_json(self, code, obj, headers=()):
            body = json.dumps(obj).encode() if obj is not None else b""
            self.send_response(code)
            if obj is not None:
                self.send_header("Content-Type", "application/json")
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def sse_start(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True

        def sse(self, text):
            self.wfile.write(text.encode())
            self.wfile.flush()

        def do_DELETE(self):
            self.reply_json(200, None)

        def do_GET(self):
            last = self.headers.get("Last-Event-ID")
            sid = self.headers.get("Mcp-Session-Id")
            if state.mode == "listen-retry0" and not last and sid == state.current:
                with state.lock:
                    state.listens += 1
                self.sse_start()
                self.sse("retry: 0\n\n")
                return
            with state.lock:
                msg = state.pending.pop(last, None) if last else None
            if msg is None or sid != state.current:
                self.reply_json(405, None)
                return
            self.sse_start()
            self.sse("id: e3\ndata: %s\n\n" % json.dumps(msg))

        def do_POST(self):
            n = int(self.headers.get("Content-Length", "0"))
            m = json.loads(self.rfile.read(n))
            sid = self.headers.get("Mcp-Session-Id")
            method = m.get("method")
            if method == "initialize":
                with state.lock:
                    state.sessions += 1
                    state.current = "session-%d" % state.sessions
                self.reply_json(200, result(m["id"], initialize_result()),
                                [("Mcp-Session-Id", state.current)])
                return
            if sid != state.current:
                self.reply_json(404, error(None, -32001, "Session not found"))
                return
            if "id" not in m or "method" not in m:
                self.reply_json(202, None)
                return
            if method != "tools/call":
                self.reply_json(200, result(m["id"], {"tools": [tool("echo")]}))
                return
            if state.mode == "session-lost" and not state.lost_once:
                with state.lock:
                    state.lost_once = True
                    state.current = None
                self.reply_json(404, error(None, -32001, "Session not found"))
                return
            if state.mode == "trace":
                self.reply_json(200, result(m["id"], text_result(
                    "traceparent: %s" % (self.headers.get("traceparent") or "none"))))
                return
            if state.mode == "listen-retry0":
                time.sleep(2)
                with state.lock:
                    n = state.listens
                self.reply_json(200, result(m["id"], text_result("GET streams: %d" % n)))
                return
            if state.mode == "resume":
                token = m["params"].get("_meta", {}).get("progressToken")
                final = result(m["id"], text_result(
                    "resumed; version header %s" % self.headers.get("MCP-Protocol-Version")))
                with state.lock:
                    state.pending["e2"] = final
                self.sse_start()
                self.sse("id: e1\nretry: 200\ndata:\n\n")
                if token is not None:
                    self.sse("id: e2\ndata: %s\n\n" % json.dumps({
                        "jsonrpc": "2.0", "method": "notifications/progress",
                        "params": {"progressToken": token, "progress": 1, "total": 2}}))
                else:
                    self.sse("id: e2\n: no progress token\n\n")
                return                  # closes without the response
            self.reply_json(200, result(m["id"], text_result(
                "session %d, version header %s" % (
                    state.sessions, self.headers.get("MCP-Protocol-Version")))))

    return Handler


def http_main(port, mode):
    state = HttpState(mode)
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), make_handler(state))
    sys.stderr.write("fake http server on %d (%s)\n" % (port, mode))
    sys.stderr.flush()
    srv.serve_forever()


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "stdio":
        stdio_main(sys.argv[2], sys.argv[3:])
    elif len(sys.argv) >= 4 and sys.argv[1] == "http":
        http_main(int(sys.argv[2]), sys.argv[3])
    else:
        sys.stderr.write(__doc__)
        sys.exit(2)


if __name__ == "__main__":
    main()
