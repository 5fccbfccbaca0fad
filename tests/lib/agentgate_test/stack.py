"""The stack under test (PostgreSQL, Redis, migrations, gateway, workers)
through deploy/local/agentgate-stack: the session stack's settings,
bringing it up and down, its env file and logs, its workers and
dependencies, and SQL on its database and commands on its Redis."""

import contextlib
import glob
import json
import os
import shutil
import subprocess
import sys
import time
import uuid

from agentgate_test.client import Tenant, http_request
from agentgate_test.paths import REPO, STACK_SCRIPT
from agentgate_test.ports import HTTP_PORT, PG_PORT, REDIS_PORT, pick_port
from agentgate_test.tokens import mint_jwt

# The session stack is started with a small ring and a fast keepalive so
# ring overflow and keepalives are seen in seconds.
RING_SIZE = 20
KEEPALIVE_MS = 1000
WORKERS = 2
# The API key the stack gives provider "it-keyed" (test_llm_providers.py).
IT_API_KEY = "sk-it-" + uuid.uuid4().hex

STACK_UP_TIMEOUT = 240
STACK_CMD_TIMEOUT = 120

# The session stack's settings beyond the defaults.
SESSION_ENV = [
    f"AGENTGATE_EVENT_RING_SIZE={RING_SIZE}",
    f"AGENTGATE_SSE_KEEPALIVE_MS={KEEPALIVE_MS}",
    # Leases, the reaper, reconciliation and retry backoff in seconds, not
    # minutes (test_reliability.py).
    "AGENTGATE_LEASE_MS=3000",
    "AGENTGATE_HEARTBEAT_MS=500",
    "AGENTGATE_REAPER_INTERVAL_MS=500",
    "AGENTGATE_RECONCILE_INTERVAL_MS=1000",
    "AGENTGATE_RETRY_BASE_MS=200",
    "AGENTGATE_RETRY_MAX_MS=1000",
    "AGENTGATE_SHUTDOWN_GRACE_MS=2000",
    # Provider retries, circuits and timeouts in milliseconds, not seconds
    # (test_llm_providers.py).
    "AGENTGATE_LLM_RETRY_BASE_MS=50",
    "AGENTGATE_LLM_RETRY_MAX_MS=500",
    "AGENTGATE_LLM_CIRCUIT_FAILURES=3",
    "AGENTGATE_LLM_CIRCUIT_OPEN_MS=30000",
    "AGENTGATE_LLM_FIRST_BYTE_TIMEOUT_MS=2000",
    f"AGENTGATE_LLM_API_KEYS=it-keyed={IT_API_KEY}",
]

# MCP servers (test_mcp_servers_api.py, the worker's MCP tests). The HTTP
# allow-list admits one prefix, http://127.0.0.1:MCP_HTTP_PORT/mcp: a test
# that needs a reachable HTTP server starts it on MCP_HTTP_PORT with its
# endpoint at /mcp (one at a time). The operator's stdio servers file is
# written into the stack directory at `up` (mcp_servers_file): the
# reference servers of tests/mcp/node_modules (`make mcp-servers`),
# "everything" and "memory" for every tenant, "restricted" (the
# everything server again) for tenant MCP_RESTRICTED_TENANT alone, and
# "slow" (tests/mcp/fake_server.py slow) and "changing" (fake_server.py
# list-changed) for every tenant.
MCP_HTTP_PORT = pick_port("AGENTGATE_TEST_MCP_PORT", 18590)
MCP_HTTP_URL = f"http://127.0.0.1:{MCP_HTTP_PORT}/mcp"
MCP_RESTRICTED_TENANT = "it-mcp-restricted"
# The file "changing" creates when it announces its new tool, in the
# stack directory: every process of it lists the tool from then on.
MCP_CHANGING_FLAG = "mcp-changing.flag"
MCP_SERVERS_FILE_NAME = "mcp-servers.json"
MCP_MODULES = os.path.join(REPO, "tests", "mcp", "node_modules", "@modelcontextprotocol")
SESSION_ENV += [
    f"AGENTGATE_MCP_URL_ALLOWLIST={MCP_HTTP_URL}",
    # Calls and connects in seconds, so a hung server fails a test quickly.
    "AGENTGATE_MCP_CALL_TIMEOUT_MS=10000",
    "AGENTGATE_MCP_CONNECT_TIMEOUT_MS=10000",
]

# Completion webhooks (test_webhooks.py): the allow-list admits
# http://127.0.0.1:WEBHOOK_PORT/hooks/, where a test runs its receiver (one
# at a time); attempts time out in 3 s and retries start after 300 ms.
WEBHOOK_PORT = pick_port("AGENTGATE_TEST_WEBHOOK_PORT", 18596)
WEBHOOK_URL = f"http://127.0.0.1:{WEBHOOK_PORT}/hooks"
WEBHOOK_TIMEOUT_MS = 3000
SESSION_ENV += [
    f"AGENTGATE_WEBHOOK_URL_ALLOWLIST={WEBHOOK_URL}",
    f"AGENTGATE_WEBHOOK_TIMEOUT_MS={WEBHOOK_TIMEOUT_MS}",
    "AGENTGATE_WEBHOOK_RETRY_BASE_MS=300",
    "AGENTGATE_WEBHOOK_RETRY_MAX_MS=2000",
    "AGENTGATE_WEBHOOK_POLL_MS=200",
]

SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                   "runtime error:")


# --------------------------------------------------------------------------
# agentgate-stack
# --------------------------------------------------------------------------

def stack_command(*args, timeout=STACK_CMD_TIMEOUT):
    """Runs agentgate-stack with args; returns the CompletedProcess (stdout
    and stderr together in .stdout)."""
    return subprocess.run([STACK_SCRIPT, *args], stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=timeout)


def missing_binaries(bindir):
    """Why the session stack cannot start from bindir (a binary or the
    stack script missing), or None."""
    for name in ("agentgate-gateway", "agentgate-worker", "agentgate-migrate"):
        path = os.path.join(bindir, name)
        if not os.access(path, os.X_OK):
            return f"{path} is missing: build first (make) or set AGENTGATE_BIN"
    if not os.access(STACK_SCRIPT, os.X_OK):
        return f"{STACK_SCRIPT} is missing or not executable"
    return None


def mcp_servers_file(d):
    """Writes the session's MCP servers file (see MCP_HTTP_PORT above)
    into directory d; returns its path."""
    node = shutil.which("node") or "/usr/bin/node"
    everything = os.path.join(MCP_MODULES, "server-everything", "dist", "index.js")
    memory = os.path.join(MCP_MODULES, "server-memory", "dist", "index.js")
    servers = {"servers": [
        {"name": "everything", "command": node, "args": [everything, "stdio"],
         "tenants": ["*"]},
        {"name": "memory", "command": node, "args": [memory],
         "env": {"MEMORY_FILE_PATH": os.path.join(d, "mcp-memory.json")},
         "tenants": ["*"]},
        {"name": "restricted", "command": node, "args": [everything, "stdio"],
         "tenants": [MCP_RESTRICTED_TENANT]},
        # A call that never ends unless cancelled, which it reports on
        # stderr (the worker's log): test_mcp_tools.py.
        {"name": "slow", "command": sys.executable,
         "args": [os.path.join(REPO, "tests", "mcp", "fake_server.py"), "stdio", "slow"],
         "tenants": ["*"]},
        # Announces notifications/tools/list_changed on its first call and
        # lists one more tool from then on: test_mcp_tools.py.
        {"name": "changing", "command": sys.executable,
         "args": [os.path.join(REPO, "tests", "mcp", "fake_server.py"), "stdio",
                  "list-changed", os.path.join(d, MCP_CHANGING_FLAG)],
         "tenants": ["*"]},
    ]}
    path = os.path.join(d, MCP_SERVERS_FILE_NAME)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(servers, f, indent=1)
    os.chmod(path, 0o644)
    return path


def up(d, bindir):
    """Starts the session stack in directory d from the binaries in bindir,
    on the session's ports and with SESSION_ENV and the MCP servers file.
    Returns (failure, output, secret): failure is None when the stack is
    up, else what went wrong; secret is the stack's JWT secret."""
    env_args = ["--env", f"AGENTGATE_MCP_SERVERS_FILE={mcp_servers_file(d)}"]
    for setting in SESSION_ENV:
        env_args += ["--env", setting]
    try:
        r = stack_command("up", "--dir", d, "--bin", bindir,
                          "--http-port", str(HTTP_PORT), "--pg-port", str(PG_PORT),
                          "--redis-port", str(REDIS_PORT), "--workers", str(WORKERS),
                          *env_args, timeout=STACK_UP_TIMEOUT)
    except subprocess.TimeoutExpired as e:
        return (f"agentgate-stack up timed out after {STACK_UP_TIMEOUT} s",
                e.output or "", None)
    if r.returncode != 0:
        return f"agentgate-stack up exited {r.returncode}", r.stdout, None
    env_path = os.path.join(d, "agentgate.env")
    try:
        secret = read_env_file(env_path).get("AGENTGATE_JWT_SECRET")
    except OSError as e:
        return f"cannot read {env_path}: {e}", r.stdout, None
    if not secret:
        return f"{env_path} has no AGENTGATE_JWT_SECRET", r.stdout, None
    return None, r.stdout, secret


def down(d):
    """Stops the stack in directory d; returns the CompletedProcess."""
    return stack_command("down", "--dir", d)


def stack_dep(stack, name, action):
    """Stops, starts or restarts a dependency ("redis", "pg") of the
    session stack (agentgate-stack redis|pg ACTION)."""
    r = stack_command(name, action, "--dir", stack.dir)
    assert r.returncode == 0, f"agentgate-stack {name} {action}: {r.stdout}"


def wait_ready(timeout=60):
    """Waits until the gateway answers /v1/health/ready with 200 again."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if http_request("GET", "/v1/health/ready").status == 200:
            return
        time.sleep(0.1)
    raise AssertionError("gateway not ready again")


# --------------------------------------------------------------------------
# The stack directory: env file and logs
# --------------------------------------------------------------------------

def read_env_file(path):
    """The KEY=value settings of an env file (agentgate.env), quotes
    around a value removed."""
    env = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#") or "=" not in line:
                continue
            k, _, v = line.partition("=")
            v = v.strip()
            if len(v) >= 2 and v[0] == v[-1] and v[0] in "'\"":
                v = v[1:-1]
            env[k.strip()] = v
    return env


def log_tails(d, lines=80):
    """The last lines of every log under d/logs, for a failure report."""
    out = []
    for path in sorted(glob.glob(os.path.join(d, "logs", "*.log"))):
        try:
            with open(path, "rb") as f:
                tail = f.read().decode("utf-8", "replace").splitlines()[-lines:]
        except OSError as e:
            tail = [f"(unreadable: {e})"]
        out.append(f"===== {path} (last {lines} lines) =====")
        out.extend(tail)
    return "\n".join(out) if out else f"(no logs under {d}/logs)"


def sanitizer_reports(d):
    """The sanitizer reports in the gateway's and workers' logs under
    d/logs, each with the lines that follow it (a list, empty when there
    are none)."""
    out = []
    logs = os.path.join(d, "logs")
    for name in sorted(os.listdir(logs)) if os.path.isdir(logs) else []:
        if not (name.startswith("gateway") or name.startswith("worker")):
            continue
        with open(os.path.join(logs, name), errors="replace") as f:
            lines = f.read().splitlines()
        for i, line in enumerate(lines):
            if any(m in line for m in SANITIZER_MARKS):
                out.append(f"{name}:{i + 1}:\n" + "\n".join(lines[i:i + 30]))
    return out


# --------------------------------------------------------------------------
# psql and redis-cli
# --------------------------------------------------------------------------

def psql(url, query, params=(), record_sep=None, timeout=30):
    """Runs query with psql on url, unaligned and tuples only, fields
    separated by \\x1f (and records by record_sep when given, else by
    newlines); params are passed as psql variables p1, p2, ... (use them as
    :'p1', a quoted literal). Returns the CompletedProcess."""
    cmd = ["psql", "-X", "-q", "-A", "-t", "-F", "\x1f"]
    if record_sep is not None:
        cmd += ["-R", record_sep]
    cmd += ["-v", "ON_ERROR_STOP=1", url]
    for i, p in enumerate(params, 1):
        cmd += ["-v", f"p{i}={'' if p is None else p}"]
    return subprocess.run(cmd, input=query, capture_output=True, text=True,
                          timeout=timeout)


def psql_rows(out, record_sep=None):
    """The rows of psql's output (see psql) as lists of strings."""
    if record_sep is None:
        return [line.split("\x1f") for line in out.splitlines() if line]
    if out.endswith("\n"):
        out = out[:-1]
    return [rec.split("\x1f") for rec in out.split(record_sep) if rec]


def redis_cli(*args, port=REDIS_PORT, timeout=10):
    """Runs redis-cli --raw with args on the Redis at 127.0.0.1:port (the
    session stack's unless given); returns the CompletedProcess."""
    return subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(port), "--raw",
                           *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


def redis(*args):
    """redis-cli with args on the session stack's Redis, which must
    succeed; returns its output."""
    r = redis_cli(*args)
    assert r.returncode == 0, f"redis-cli {args}: {r.stderr}"
    return r.stdout


# --------------------------------------------------------------------------
# The running session stack
# --------------------------------------------------------------------------

class Stack:
    """A running stack: its directory, JWT secret, and worker control."""

    def __init__(self, d, secret):
        self.dir = d
        self.secret = secret
        env = read_env_file(os.path.join(d, "agentgate.env"))
        # The services' role (agentgate_app, under row-level security) and
        # the owner the migrations run as (the stack's superuser).
        self.database_url = env.get("AGENTGATE_DATABASE_URL")
        self.owner_url = (env.get("AGENTGATE_MIGRATE_DATABASE_URL")
                          or self.database_url)

    def _psql(self, url, query, params, check=True):
        r = psql(url, query, params)
        if check:
            assert r.returncode == 0, f"psql failed: {r.stderr.strip()}\n{query}"
        return r

    def sql(self, query, *params):
        """Runs query on the stack's database with psql as the owner (who
        sees every tenant's rows, as a DBA would) and returns the rows as
        lists of strings. Parameters are passed as psql variables :'p1',
        :'p2', ... (quoted literals), so test data never needs escaping by
        hand."""
        r = self._psql(self.owner_url, query, params)
        return psql_rows(r.stdout)

    def sql_app(self, query, *params, tenant=None, check=True):
        """Runs query as the services' role (row-level security applies),
        with agentgate.tenant_id set to tenant for the session when given.
        Returns the CompletedProcess when check is False (to look at a
        refusal), else the rows."""
        pre = ""
        if tenant is not None:
            pre = "SELECT set_config('agentgate.tenant_id', :'tenant', false) \\g /dev/null\n"
            params = params + (tenant,)
            pre = pre.replace(":'tenant'", f":'p{len(params)}'")
        r = self._psql(self.database_url, pre + query, params, check=check)
        if not check:
            return r
        return psql_rows(r.stdout)

    def worker(self, action, n):
        r = stack_command("worker", action, str(n), "--dir", self.dir)
        assert r.returncode == 0, (
            f"agentgate-stack worker {action} {n} failed ({r.returncode}):\n"
            + r.stdout)

    @contextlib.contextmanager
    def workers_stopped(self):
        """The stack's workers stopped while the block runs (submitted jobs
        stay queued, or a test's own worker is the only one), started again
        after it, whatever happens in it."""
        for i in range(1, WORKERS + 1):
            self.worker("stop", i)
        try:
            yield
        finally:
            for i in range(1, WORKERS + 1):
                self.worker("start", i)

    def status(self):
        """agentgate-stack status output, for failure messages."""
        try:
            return stack_command("status", "--dir", self.dir, timeout=30).stdout
        except subprocess.TimeoutExpired:
            return "(agentgate-stack status timed out)"

    def mint(self, claims, **kw):
        return mint_jwt(self.secret, claims, **kw)

    def tenant(self, prefix="it", tenant_id=None, sub=None):
        """A client of a new tenant, or of tenant_id as user sub."""
        return Tenant(self, tenant_id or f"{prefix}-{uuid.uuid4().hex[:12]}",
                      sub)
