#!/usr/bin/env python3
"""
openai_standin.py - a stand-in for an OpenAI-compatible chat-completions
server, for agentgate's tests and benchmarks. It is not a model: it
answers with scripted replies, or echoes the last user message.

It speaks the real wire protocol:

  POST <prefix>/v1/chat/completions
      With "stream": true, a text/event-stream of
          data: {"object":"chat.completion.chunk", ...}\\n\\n
      lines (sent with HTTP/1.1 chunked transfer encoding, as OpenAI does):
      a first chunk with the assistant role, one chunk per content piece,
      tool_calls deltas split the way OpenAI splits them (id, type and
      name in the first piece of each call, the arguments spread over
      several), a chunk with finish_reason, a usage chunk with empty
      choices when stream_options.include_usage is true, then
      data: [DONE]. Without "stream", one chat.completion object.
      Anything before /v1 is the prefix, so several "providers" can live on
      one server: http://127.0.0.1:PORT/p1/v1 and http://127.0.0.1:PORT/p2/v1.

Scripting (tests and benchmarks):

  POST /_standin/script {"prefix": "/p1", "model": "m", "responses": [R, ...]}
      queues responses for (prefix, model); each request pops one. R:
        status              HTTP status, default 200
        body                the body of a non-200 answer (default: an
                            OpenAI-style error object)
        headers             extra response headers, e.g. {"Retry-After": "1"}
        chunks              content pieces, e.g. ["Hel", "lo"]
        tool_calls          [{"id": "call_1", "name": "system.time",
                              "arguments": "{}"}]
        usage               {"prompt_tokens": N, "completion_tokens": M};
                            default: counted in words; null sends none
        finish_reason       default "stop", or "tool_calls" with tool calls
        first_byte_delay_ms wait before the response starts
        chunk_delay_ms      wait between chunks
        stall_after_chunks  after that many chunks (role chunk included) ...
        stall_ms            ... wait this long (ends early if the client goes)
        malformed_after_chunks  after that many chunks send a broken one
        close_after_chunks  after that many chunks drop the connection
        echo_tool_results   a prefix: the reply's text is it, then the content
                            of each tool message of the request (what the
                            tools answered), so a test sees a model use them
      With no script left, a request is echoed: "Echo: <last user message>"
      streamed in a few chunks.
  GET /_standin/requests?prefix=&model=
      the requests received, oldest first: {"prefix", "model", "path",
      "client" (its address:port: a kept-alive connection shows the same
      one), "headers", "body", "arrived" (time.time() once its request
      line was read, before its headers and body), "received" (once the
      body was read and parsed), "chunk_times" (time.time() after each
      chunk was flushed, role chunk first), "content_chunk_times",
      "done" (after the last byte of the answer was flushed; null until
      then), "completed" (the answer was sent to its end), "cut" (the
      client went away first), "chunks_sent"}.
  POST /_standin/reset      forgets scripts and requests.

  python3 tests/fakes/openai_standin.py --port N   (0: any free port)
prints "listening on PORT" once it accepts connections.
"""

import argparse
import json
import select
import socket
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 8 * 1024 * 1024

_lock = threading.Lock()
_scripts = {}       # (prefix, model) -> [response, ...]
_requests = []      # records, oldest first
_seq = [0]


class ClientGone(Exception):
    pass


def _words(text):
    return len((text or "").split())


def _last_user_message(body):
    for m in reversed(body.get("messages") or []):
        if isinstance(m, dict) and m.get("role") == "user":
            c = m.get("content")
            if isinstance(c, str):
                return c
            if isinstance(c, list):   # content parts
                return " ".join(p.get("text", "") for p in c if isinstance(p, dict))
    return ""


def _echo_response(body):
    text = "Echo: " + _last_user_message(body)
    words = text.split(" ")
    n = max(1, min(4, len(words)))
    per = (len(words) + n - 1) // n
    chunks = []
    for i in range(0, len(words), per):
        piece = " ".join(words[i:i + per])
        chunks.append(piece if i == 0 else " " + piece)
    return {"chunks": chunks}


def _tool_results_reply(body, prefix):
    """The chunks of a reply quoting every tool result of the request."""
    chunks = [str(prefix)]
    for m in body.get("messages") or []:
        if isinstance(m, dict) and m.get("role") == "tool" and isinstance(m.get("content"), str):
            chunks.append(" " + m["content"])
    return chunks


def _split_arguments(args):
    """OpenAI sends a call's arguments in several pieces."""
    if len(args) <= 4:
        return [args] if args else []
    step = max(1, len(args) // 3)
    return [args[i:i + step] for i in range(0, len(args), step)]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "openai-standin/1"

    def log_message(self, fmt, *args):   # quiet
        pass

    def parse_request(self):
        # Called as soon as the request line was read: when the request
        # arrived, as near as the stand-in can tell.
        self._arrived = time.time()
        return super().parse_request()

    def setup(self):
        super().setup()
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass

    # -- plumbing -----------------------------------------------------------

    def _read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n < 0 or n > MAX_BODY:
            raise ValueError("body too large")
        return self.rfile.read(n) if n else b""

    def _send_json(self, status, obj, headers=None):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _client_gone(self):
        """True when the client closed its end (readable with no data)."""
        try:
            r, _, _ = select.select([self.connection], [], [], 0)
            if not r:
                return False
            return self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def _sleep(self, ms):
        """Sleeps ms, raising ClientGone as soon as the client closes."""
        end = time.monotonic() + ms / 1000.0
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return
            try:
                r, _, _ = select.select([self.connection], [], [], min(left, 0.02))
            except OSError:
                raise ClientGone()
            if r:
                try:
                    if self.connection.recv(1, socket.MSG_PEEK) == b"":
                        raise ClientGone()
                except OSError:
                    raise ClientGone()
                time.sleep(min(left, 0.02))   # pipelined bytes: just wait

    def _write_chunk(self, data):
        try:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()
        except OSError:
            raise ClientGone()

    # -- control endpoints ----------------------------------------------------

    def do_GET(self):
        u = urllib.parse.urlsplit(self.path)
        if u.path == "/_standin/requests":
            q = urllib.parse.parse_qs(u.query)
            prefix = q.get("prefix", [None])[0]
            model = q.get("model", [None])[0]
            with _lock:
                out = [dict(r) for r in _requests
                       if (prefix is None or r["prefix"] == prefix)
                       and (model is None or r["model"] == model)]
                for r in out:
                    r["chunk_times"] = list(r["chunk_times"])
                    r["content_chunk_times"] = list(r["content_chunk_times"])
            self._send_json(200, out)
        elif u.path in ("/health", "/_standin/health"):
            self._send_json(200, {"ok": True})
        elif u.path.endswith("/v1/models"):
            with _lock:
                models = sorted({m for (_, m) in _scripts})
            self._send_json(200, {"object": "list", "data": [
                {"id": m, "object": "model", "owned_by": "standin"} for m in models]})
        else:
            self._send_json(404, {"error": {"message": "not found"}})

    def do_POST(self):
        u = urllib.parse.urlsplit(self.path)
        try:
            raw = self._read_body()
        except ValueError as e:
            self._send_json(413, {"error": {"message": str(e)}})
            return
        if u.path == "/_standin/script":
            try:
                spec = json.loads(raw)
                key = (spec.get("prefix", ""), spec["model"])
                responses = list(spec.get("responses") or [])
            except (ValueError, KeyError, TypeError) as e:
                self._send_json(400, {"error": {"message": f"bad script: {e}"}})
                return
            with _lock:
                _scripts.setdefault(key, []).extend(responses)
                left = len(_scripts[key])
            self._send_json(200, {"queued": left})
        elif u.path == "/_standin/reset":
            with _lock:
                _scripts.clear()
                _requests.clear()
            self._send_json(200, {"ok": True})
        elif u.path.endswith("/v1/chat/completions"):
            prefix = u.path[:-len("/v1/chat/completions")]
            self._completion(prefix, raw)
        else:
            self._send_json(404, {"error": {"message": f"no route {u.path}"}})

    # -- chat completions --------------------------------------------------------

    def _completion(self, prefix, raw):
        try:
            body = json.loads(raw)
            if not isinstance(body, dict):
                raise ValueError("not an object")
        except ValueError as e:
            self._send_json(400, {"error": {"message": f"invalid JSON body: {e}",
                                            "type": "invalid_request_error"}})
            return
        model = body.get("model") if isinstance(body.get("model"), str) else ""
        rec = {"prefix": prefix, "model": model, "path": self.path,
               "client": "%s:%d" % self.client_address[:2],
               "headers": {k: v for k, v in self.headers.items()},
               "body": body, "arrived": getattr(self, "_arrived", None),
               "received": time.time(), "done": None, "chunk_times": [],
               "content_chunk_times": [], "completed": False, "cut": False,
               "chunks_sent": 0}
        with _lock:
            _seq[0] += 1
            rec["seq"] = _seq[0]
            _requests.append(rec)
            queue = _scripts.get((prefix, model))
            resp = queue.pop(0) if queue else None
        if resp is None:
            resp = _echo_response(body)
        if resp.get("echo_tool_results") is not None:
            resp = dict(resp, chunks=_tool_results_reply(body, resp["echo_tool_results"]))
        try:
            if resp.get("first_byte_delay_ms"):
                self._sleep(resp["first_byte_delay_ms"])
            status = int(resp.get("status", 200))
            if status != 200:
                self._error_answer(status, resp)
            elif body.get("stream"):
                self._stream(body, model, resp, rec)
            else:
                self._whole(body, model, resp)
            rec["completed"] = True
        except ClientGone:
            rec["cut"] = True
            self.close_connection = True

    def _error_answer(self, status, resp):
        headers = resp.get("headers") or {}
        if "body" in resp:
            data = resp["body"].encode() if isinstance(resp["body"], str) else \
                json.dumps(resp["body"]).encode()
            ctype = "application/json" if data[:1] in (b"{", b"[") else "text/plain"
        else:
            data = json.dumps({"error": {"message": f"stand-in scripted HTTP {status}",
                                         "type": "server_error" if status >= 500
                                         else "invalid_request_error"}}).encode()
            ctype = "application/json"
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers.items():
            self.send_header(k, str(v))
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _usage(self, body, resp, text, calls):
        if "usage" in resp:
            u = resp["usage"]
            if u is None:
                return None
            return {"prompt_tokens": int(u.get("prompt_tokens", 0)),
                    "completion_tokens": int(u.get("completion_tokens", 0)),
                    "total_tokens": int(u.get("prompt_tokens", 0))
                    + int(u.get("completion_tokens", 0))}
        pin = sum(_words(m.get("content")) for m in body.get("messages") or []
                  if isinstance(m, dict) and isinstance(m.get("content"), str))
        pout = _words(text) + sum(_words(c.get("arguments", "")) for c in calls)
        return {"prompt_tokens": pin, "completion_tokens": pout,
                "total_tokens": pin + pout}

    def _whole(self, body, model, resp):
        chunks = resp.get("chunks") or []
        calls = resp.get("tool_calls") or []
        text = "".join(chunks)
        msg = {"role": "assistant", "content": text if text or not calls else None}
        if calls:
            msg["tool_calls"] = [{"id": c.get("id", f"call_{i}"), "type": "function",
                                  "function": {"name": c["name"],
                                               "arguments": c.get("arguments", "{}")}}
                                 for i, c in enumerate(calls)]
        out = {"id": "chatcmpl-standin", "object": "chat.completion",
               "created": int(time.time()), "model": model,
               "choices": [{"index": 0, "message": msg,
                            "finish_reason": resp.get("finish_reason")
                            or ("tool_calls" if calls else "stop")}]}
        usage = self._usage(body, resp, text, calls)
        if usage is not None:
            out["usage"] = usage
        self._send_json(200, out, resp.get("headers"))

    def _stream(self, body, model, resp, rec):
        chunks = resp.get("chunks") or []
        calls = resp.get("tool_calls") or []
        created = int(time.time())
        base = {"id": f"chatcmpl-standin-{rec['seq']}", "object": "chat.completion.chunk",
                "created": created, "model": model, "system_fingerprint": "fp_standin"}
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

        events = [({"role": "assistant", "content": ""}, None, False)]
        for c in chunks:
            events.append(({"content": c}, None, True))
        for i, c in enumerate(calls):
            args = c.get("arguments", "{}")
            events.append(({"tool_calls": [{"index": i, "id": c.get("id", f"call_{i}"),
                                            "type": "function",
                                            "function": {"name": c["name"],
                                                         "arguments": ""}}]},
                           None, False))
            for piece in _split_arguments(args):
                events.append(({"tool_calls": [{"index": i,
                                                "function": {"arguments": piece}}]},
                               None, False))
        finish = resp.get("finish_reason") or ("tool_calls" if calls else "stop")
        events.append(({}, finish, False))

        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        for k, v in (resp.get("headers") or {}).items():
            self.send_header(k, str(v))
        self.end_headers()
        self.wfile.flush()

        delay = resp.get("chunk_delay_ms") or 0
        stall_after = resp.get("stall_after_chunks")
        malformed_after = resp.get("malformed_after_chunks")
        close_after = resp.get("close_after_chunks")
        sent = 0
        for delta, fin, is_content in events:
            if stall_after is not None and sent == stall_after:
                self._sleep(resp.get("stall_ms", 60000))
            if malformed_after is not None and sent == malformed_after:
                self._write_chunk(b'data: {"id":"broken","choices":[{"index":0,"delta":'
                                  b'{"content":"x"\n\n')
                malformed_after = None
            if close_after is not None and sent == close_after:
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                raise ClientGone()
            if sent > 0 and delay:
                self._sleep(delay)
            obj = dict(base)
            obj["choices"] = [{"index": 0, "delta": delta, "logprobs": None,
                               "finish_reason": fin}]
            if include_usage:
                obj["usage"] = None
            self._write_chunk(b"data: " + json.dumps(obj).encode() + b"\n\n")
            now = time.time()
            rec["chunk_times"].append(now)
            if is_content:
                rec["content_chunk_times"].append(now)
            sent += 1
            rec["chunks_sent"] = sent
        if include_usage:
            usage = self._usage(body, resp, "".join(chunks), calls)
            if usage is not None:
                obj = dict(base)
                obj["choices"] = []
                obj["usage"] = usage
                self._write_chunk(b"data: " + json.dumps(obj).encode() + b"\n\n")
        self._write_chunk(b"data: [DONE]\n\n")
        self._write_chunk(b"")   # the last chunk of the chunked encoding
        rec["done"] = time.time()


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def handle_error(self, request, client_address):
        # A client that hangs up on a kept-alive connection is no news.
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


def main():
    ap = argparse.ArgumentParser(description="OpenAI-compatible stand-in server")
    ap.add_argument("--port", type=int, default=0, help="port (0: any free one)")
    ap.add_argument("--host", default="127.0.0.1")
    a = ap.parse_args()
    srv = Server((a.host, a.port), Handler)
    print(f"listening on {srv.server_address[1]}", flush=True)
    try:
        srv.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        srv.server_close()


if __name__ == "__main__":
    sys.exit(main())
