"""benchlib.py - what the Python benchmark drivers share: the tenant of a
token, one HTTP call, the OpenAI stand-in started on a free port and a
model it serves, and a percentile. Imported by bench/llm_stream_latency.py,
bench/mcp_tool_latency.py, bench/agent_step_overhead.py and
bench/scale_reads.py (all run from bench/run)."""

import base64
import http.client
import json
import os
import subprocess
import sys
import urllib.parse
import uuid

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


def standin_model(db, token, base_url):
    """Registers a new model for token's tenant, served by the stand-in at
    base_url (a model_defaults row, through psql on db); returns its name."""
    model = f"bench-{uuid.uuid4().hex[:12]}"
    subprocess.run(
        ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", db,
         "-v", f"t={tenant_of(token)}", "-v", f"p=p{model}", "-v", f"m={model}",
         "-v", f"u={base_url}"],
        input="INSERT INTO model_defaults (scope, tenant_id, provider, model, base_url) "
              "VALUES ('tenant', :'t', :'p', :'m', :'u');\n",
        text=True, check=True, capture_output=True)
    return model


def pct(xs, q):
    """The q-quantile (0..1) of xs, nearest rank."""
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * q))]
