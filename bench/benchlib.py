"""benchlib.py - what the Python benchmark drivers share: the tenant of a
token, one HTTP call, the OpenAI stand-in started on a free port, and a
percentile. Imported by bench/llm_stream_latency.py and
bench/mcp_tool_latency.py (both run from bench/run)."""

import base64
import http.client
import json
import os
import subprocess
import sys
import urllib.parse

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
STANDIN = os.path.join(REPO, "tests", "fakes", "openai_standin.py")


def tenant_of(token):
    """The tenant_id claim of a JWT (not verified: it is our own token)."""
    payload = token.split(".")[1]
    payload += "=" * (-len(payload) % 4)
    return json.loads(base64.urlsafe_b64decode(payload))["tenant_id"]


def call(base, method, path, body=None, headers=None, timeout=60):
    """One request on a fresh connection to base; (status, body bytes)."""
    u = urllib.parse.urlsplit(base)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    h = {"Content-Type": "application/json"}
    h.update(headers or {})
    c.request(method, path, None if body is None else json.dumps(body), h)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, data


def start_standin(prog):
    """Starts the OpenAI stand-in on a free port: (process, base URL).
    Exits with a line naming prog when it does not start."""
    p = subprocess.Popen([sys.executable, STANDIN, "--port", "0"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    line = p.stdout.readline()
    if not line.startswith("listening on "):
        p.kill()
        sys.exit(f"{prog}: the stand-in did not start: {line!r}")
    return p, f"http://127.0.0.1:{int(line.split()[2])}"


def pct(xs, q):
    """The q-quantile (0..1) of xs, nearest rank."""
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * q))]
