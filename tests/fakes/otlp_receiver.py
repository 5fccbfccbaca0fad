#!/usr/bin/env python3
"""
otlp_receiver.py - a local stand-in for an OpenTelemetry collector's
OTLP/HTTP receiver (what an OpenTelemetry Collector, Jaeger or Grafana
Tempo listens with on :4318), for agentgate's tests. Debian packages no
collector, so the tests run this one. Standard library only.

It speaks the real wire protocol of the JSON encoding:

  POST /v1/traces   Content-Type: application/json, an
      ExportTraceServiceRequest: {"resourceSpans": [{"resource":
      {"attributes": [...]}, "scopeSpans": [{"scope": {...}, "spans":
      [...]}]}]}. Each span is checked the way the protobuf JSON mapping
      and the OTLP specification write it: traceId 32 and spanId /
      parentSpanId 16 lowercase hex digits (not base64, not all zeros),
      a name, kind 0..5, startTimeUnixNano / endTimeUnixNano as decimal
      strings (64-bit integers) with end >= start, attributes as
      [{"key", "value": {"stringValue" | "intValue" (a decimal string) |
      "boolValue" | "doubleValue" ...}}], status.code 0..2. A request that
      breaks any rule gets 400 and its reason is kept (a real collector
      rejects it too); a good one gets 200 {"partialSuccess": {}}.

Test hooks:

  GET  /_otlp/spans     every span accepted, oldest first, flattened:
                        {"service", "traceId", "spanId", "parentSpanId"
                        ("" for a root), "name", "kind", "start", "end"
                        (ints, ns), "attributes" {key: value, ints as int},
                        "status" {"code", "message"}}
  GET  /_otlp/stats     {"requests", "rejected": [reasons], "headers":
                        [the headers of each accepted POST]}
  POST /_otlp/status    {"status": N} answers later exports with N (a
                        collector refusing), 200 again with {"status": 200}
  POST /_otlp/reset     forgets spans, stats and the status

  python3 tests/fakes/otlp_receiver.py --port N   (0: any free port)
prints "listening on PORT" once it accepts connections.
"""

import argparse
import http.server
import json
import re
import sys
import threading

HEX32 = re.compile(r"^[0-9a-f]{32}$")
HEX16 = re.compile(r"^[0-9a-f]{16}$")
DECIMAL = re.compile(r"^-?[0-9]+$")
VALUE_KINDS = ("stringValue", "intValue", "boolValue", "doubleValue",
               "arrayValue", "kvlistValue", "bytesValue")


class Bad(Exception):
    """The request breaks the encoding; the message says where."""


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        self.spans = []
        self.requests = 0
        self.rejected = []
        self.headers = []
        self.status = 200


def check_id(v, pattern, what):
    if not isinstance(v, str) or not pattern.match(v) or set(v) == {"0"}:
        raise Bad(f"{what} {v!r} is not lowercase hex of the right length, non-zero")
    return v


def check_u64(v, what):
    if not isinstance(v, str) or not DECIMAL.match(v):
        raise Bad(f"{what} {v!r} is not a 64-bit integer written as a decimal string")
    n = int(v)
    if n < 0 or n >= 1 << 64:
        raise Bad(f"{what} {v!r} is out of range")
    return n


def attr_value(v, where):
    if not isinstance(v, dict) or len(v) != 1 or next(iter(v)) not in VALUE_KINDS:
        raise Bad(f"{where}: value {v!r} is not one AnyValue field")
    kind, val = next(iter(v.items()))
    if kind == "stringValue":
        if not isinstance(val, str):
            raise Bad(f"{where}: stringValue is not a string")
        return val
    if kind == "intValue":
        if isinstance(val, bool) or not (isinstance(val, int) or
                                         (isinstance(val, str) and DECIMAL.match(val))):
            raise Bad(f"{where}: intValue {val!r} is not an integer")
        return int(val)
    if kind == "boolValue":
        if not isinstance(val, bool):
            raise Bad(f"{where}: boolValue is not a boolean")
        return val
    if kind == "doubleValue":
        if isinstance(val, bool) or not isinstance(val, (int, float)):
            raise Bad(f"{where}: doubleValue is not a number")
        return float(val)
    return val


def attributes(lst, where):
    if lst is None:
        return {}
    if not isinstance(lst, list):
        raise Bad(f"{where}: attributes is not a list")
    out = {}
    for a in lst:
        if not isinstance(a, dict) or not isinstance(a.get("key"), str) or not a["key"]:
            raise Bad(f"{where}: attribute {a!r} has no key")
        out[a["key"]] = attr_value(a.get("value"), f"{where} attribute {a['key']}")
    return out


def parse_request(body):
    """The spans of one ExportTraceServiceRequest, flattened; raises Bad."""
    try:
        req = json.loads(body)
    except ValueError as e:
        raise Bad(f"not JSON: {e}")
    rss = req.get("resourceSpans") if isinstance(req, dict) else None
    if not isinstance(rss, list):
        raise Bad("no resourceSpans list")
    spans = []
    for rs in rss:
        res = attributes((rs.get("resource") or {}).get("attributes"), "resource")
        service = res.get("service.name")
        if not isinstance(service, str) or not service:
            raise Bad("resource without service.name")
        for ss in rs.get("scopeSpans") or []:
            for s in ss.get("spans") or []:
                name = s.get("name")
                if not isinstance(name, str) or not name:
                    raise Bad(f"span without a name: {s!r}")
                where = f"span {name!r}"
                kind = s.get("kind", 0)
                if not isinstance(kind, int) or not 0 <= kind <= 5:
                    raise Bad(f"{where}: kind {kind!r}")
                start = check_u64(s.get("startTimeUnixNano"), f"{where} startTimeUnixNano")
                end = check_u64(s.get("endTimeUnixNano"), f"{where} endTimeUnixNano")
                if end < start:
                    raise Bad(f"{where}: ends before it starts")
                parent = s.get("parentSpanId", "")
                if parent != "":
                    check_id(parent, HEX16, f"{where} parentSpanId")
                status = s.get("status") or {}
                if status.get("code", 0) not in (0, 1, 2):
                    raise Bad(f"{where}: status code {status.get('code')!r}")
                spans.append({
                    "service": service,
                    "traceId": check_id(s.get("traceId"), HEX32, f"{where} traceId"),
                    "spanId": check_id(s.get("spanId"), HEX16, f"{where} spanId"),
                    "parentSpanId": parent,
                    "name": name,
                    "kind": kind,
                    "start": start,
                    "end": end,
                    "attributes": attributes(s.get("attributes"), where),
                    "status": {"code": status.get("code", 0),
                               "message": status.get("message", "")},
                })
    return spans


def make_handler(state):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *a):
            pass

        def reply(self, code, obj):
            body = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def body(self):
            n = int(self.headers.get("Content-Length", "0"))
            return self.rfile.read(n)

        def do_GET(self):
            with state.lock:
                if self.path == "/_otlp/spans":
                    return self.reply(200, state.spans)
                if self.path == "/_otlp/stats":
                    return self.reply(200, {"requests": state.requests,
                                            "rejected": state.rejected,
                                            "headers": state.headers})
            self.reply(404, {"error": "no such path"})

        def do_POST(self):
            raw = self.body()
            if self.path == "/_otlp/reset":
                with state.lock:
                    state.reset()
                return self.reply(200, {})
            if self.path == "/_otlp/status":
                with state.lock:
                    state.status = int(json.loads(raw)["status"])
                return self.reply(200, {})
            if self.path != "/v1/traces":
                return self.reply(404, {"error": "no such path"})
            with state.lock:
                state.requests += 1
                refuse = state.status
            if refuse != 200:
                return self.reply(refuse, {"code": 14, "message": "refused by the test"})
            ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
            try:
                if ctype != "application/json":
                    raise Bad(f"Content-Type {ctype!r}, not application/json")
                spans = parse_request(raw)
            except Bad as e:
                with state.lock:
                    state.rejected.append(str(e))
                return self.reply(400, {"code": 3, "message": str(e)})
            with state.lock:
                state.spans.extend(spans)
                state.headers.append({k.lower(): v for k, v in self.headers.items()})
            self.reply(200, {"partialSuccess": {}})

    return Handler


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(State()))
    srv.daemon_threads = True
    print(f"listening on {srv.server_address[1]}", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
