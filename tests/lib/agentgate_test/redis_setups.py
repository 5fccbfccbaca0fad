"""Redis as platform teams run it, for the tests of the Redis connection
setup (test_redis_auth_tls.py, test_redis_sentinel.py): Debian's
redis-server with a password, an ACL user or TLS, redis-sentinel, a
stunnel4 client in front of a TLS Redis, a test CA made with openssl, and a
small agentgate of the test's own (a gateway and workers on a database of
its own in the session's PostgreSQL, so the session's workers never see its
jobs) with an API client for it."""

import contextlib
import http.client
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.parse
import uuid

from agentgate_test.paths import REPO, bin_path
from agentgate_test.services import own_process, stack_env, stop_process
from agentgate_test.stack import SANITIZER_MARKS
from agentgate_test.tokens import DEFAULT_ROLES, DEFAULT_SCOPE, mint_jwt

TIMEOUT = 30

# The ports these setups listen on: PORT_BASE and up, one block per test
# file (AGENTGATE_TEST_REDIS_SETUP_PORT_BASE moves them), so two runs on one
# machine can be kept apart.
PORT_BASE = int(os.environ.get("AGENTGATE_TEST_REDIS_SETUP_PORT_BASE", "20510"))


def listenable(port):
    """True when a server (which sets SO_REUSEADDR, as Redis, stunnel and
    agentgate do) can listen on 127.0.0.1:port: connections of an earlier
    test lingering in TIME_WAIT do not count."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            s.listen(1)
        except OSError:
            return False
        return True


def ports(offset, n):
    """n consecutive ports from PORT_BASE + offset, each checked free."""
    out = [PORT_BASE + offset + i for i in range(n)]
    for p in out:
        assert listenable(p), f"port {p} is in use (set AGENTGATE_TEST_REDIS_SETUP_PORT_BASE)"
    return out


def wait_until(pred, what, timeout=TIMEOUT, interval=0.1):
    """Polls pred() until it is true; fails with what when it never is."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(interval)


# --------------------------------------------------------------------------
# redis-cli, redis-server, redis-sentinel, stunnel4, openssl
# --------------------------------------------------------------------------

def cli(port, *args, user=None, password=None, timeout=10):
    """redis-cli --raw on 127.0.0.1:port as user/password (when given);
    returns (returncode, stdout stripped)."""
    cmd = ["redis-cli", "-h", "127.0.0.1", "-p", str(port), "--raw", "--no-auth-warning"]
    if user:
        cmd += ["--user", user]
    if password:
        cmd += ["--pass", password]
    r = subprocess.run(cmd + [str(a) for a in args], capture_output=True, text=True,
                       timeout=timeout)
    return r.returncode, (r.stdout + r.stderr).strip()


class RedisProc:
    """A redis-server or redis-sentinel of the test's own, in the
    foreground, its log in d."""

    def __init__(self, d, name, port, args, password=None, sentinel=False):
        self.d, self.name, self.port, self.password = d, name, port, password
        self.log_path = os.path.join(d, f"{name}.log")
        self.conf = None
        if sentinel:
            # Sentinel rewrites its config file: it must be one of its own.
            self.conf = os.path.join(d, f"{name}.conf")
            with open(self.conf, "w", encoding="utf-8") as f:
                f.write("\n".join(args) + "\n")
            argv = ["redis-sentinel", self.conf]
        else:
            argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                    "--save", "", "--appendonly", "no", "--dir", d, *args]
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT)

    def wait_up(self, port=None, user=None, password=None):
        port = port or self.port
        password = password or self.password

        def pong():
            assert self.proc.poll() is None, f"{self.name} exited:\n{self.log_text()}"
            return cli(port, "PING", user=user, password=password)[1] == "PONG"
        wait_until(pong, f"{self.name} to answer PING")
        return self

    def cli(self, *args, user=None, password=None):
        return cli(self.port, *args, user=user, password=password or self.password)

    def log_text(self):
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def stop(self):
        stop_process(self.proc, 10)
        self.log.close()


def make_test_ca(d):
    """A test CA and a server certificate it signed for localhost and
    127.0.0.1, with openssl. Returns a dict of paths: ca, cert, key."""
    ca_key, ca = os.path.join(d, "ca.key"), os.path.join(d, "ca.crt")
    key, csr, cert = (os.path.join(d, n) for n in ("redis.key", "redis.csr", "redis.crt"))
    ext = os.path.join(d, "san.ext")
    with open(ext, "w", encoding="utf-8") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")

    def run(*args):
        r = subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, f"openssl {args[0]}: {r.stderr}"
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
        "/CN=agentgate test CA", "-keyout", ca_key, "-out", ca)
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
        "-keyout", key, "-out", csr)
    run("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
        "-days", "2", "-extfile", ext, "-out", cert)
    for p in (key, ca_key):
        os.chmod(p, 0o600)
    return {"ca": ca, "cert": cert, "key": key}


def stunnel_client_conf(path, accept_port, connect_port, ca, check_host="localhost"):
    """Writes a stunnel4 client configuration like deploy/stunnel's: plain
    TCP on 127.0.0.1:accept_port, TLS to 127.0.0.1:connect_port, the
    server's certificate checked against ca and check_host."""
    with open(path, "w", encoding="utf-8") as f:
        f.write(f"""foreground = yes
pid =
[redis]
client = yes
accept = 127.0.0.1:{accept_port}
connect = 127.0.0.1:{connect_port}
verifyChain = yes
CAfile = {ca}
checkHost = {check_host}
sslVersionMin = TLSv1.2
""")
    return path


@contextlib.contextmanager
def stunnel(d, conf):
    """Runs /usr/bin/stunnel4 with conf until the end of the block."""
    log_path = os.path.join(d, "stunnel.log")
    log = open(log_path, "ab")
    proc = subprocess.Popen([shutil.which("stunnel4") or "/usr/bin/stunnel4", conf],
                            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        stop_process(proc, 5)
        log.close()


# --------------------------------------------------------------------------
# A database of the test's own in the session's PostgreSQL
# --------------------------------------------------------------------------

def url_with(url, dbname=None, netloc=None, query=None):
    """url with its database, host part or query replaced."""
    u = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((u.scheme, netloc or u.netloc,
                                    "/" + dbname if dbname else u.path,
                                    u.query if query is None else query, u.fragment))


@contextlib.contextmanager
def private_database(stack):
    """Creates a database of the test's own, migrated, in the session's
    PostgreSQL; yields (app_url, owner_url) and drops it at the end."""
    name = "it_" + uuid.uuid4().hex[:12]
    stack.sql(f'CREATE DATABASE "{name}"')
    owner_url = url_with(stack.owner_url, dbname=name)
    app_url = url_with(stack.database_url, dbname=name)
    try:
        env = dict(os.environ, AGENTGATE_MIGRATE_DATABASE_URL=owner_url,
                   AGENTGATE_DATABASE_URL=app_url)
        r = subprocess.run([bin_path("agentgate-migrate"), "--dir",
                            os.path.join(REPO, "sql", "migrations")],
                           env={k: v for k, v in env.items()
                                if not k.startswith("AGENTGATE_") or "DATABASE_URL" in k},
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, f"migrations of {name}: {r.stdout}{r.stderr}"
        yield app_url, owner_url
    finally:
        stack.sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --------------------------------------------------------------------------
# An agentgate of the test's own
# --------------------------------------------------------------------------

class MiniStack:
    """A gateway and workers of a test's own (see mini_stack), and an API
    client of one tenant for its gateway."""

    def __init__(self, d, secret, port, env):
        self.d, self.secret, self.port, self.env = d, secret, port, env
        self.tenant_id = "it-e-" + uuid.uuid4().hex[:12]
        now = int(time.time())
        self.token = mint_jwt(secret, {"sub": "u-" + self.tenant_id,
                                       "tenant_id": self.tenant_id, "roles": DEFAULT_ROLES,
                                       "scope": DEFAULT_SCOPE,
                                       "iat": now, "exp": now + 3600})
        self.procs = {}

    def logs(self):
        out = []
        for name in sorted(self.procs):
            with open(os.path.join(self.d, f"{name}.log"), encoding="utf-8",
                      errors="replace") as f:
                out.append(f"===== {name} =====\n" + f.read()[-6000:])
        return "\n".join(out)

    def log_of(self, name):
        with open(os.path.join(self.d, f"{name}.log"), encoding="utf-8",
                  errors="replace") as f:
            return f.read()

    def request(self, method, path, body=None, timeout=TIMEOUT):
        """Returns (status, parsed JSON body or None)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            h = {"Authorization": "Bearer " + self.token, "Accept": "application/json"}
            raw = None
            if body is not None:
                raw = json.dumps(body).encode()
                h["Content-Type"] = "application/json"
            conn.request(method, path, body=raw, headers=h)
            r = conn.getresponse()
            data = r.read()
            try:
                return r.status, json.loads(data) if data else None
            except ValueError:
                return r.status, None
        finally:
            conn.close()

    def ready(self):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
            conn.request("GET", "/v1/health/ready")
            return conn.getresponse().status == 200
        except OSError:
            return False
        finally:
            conn.close()

    def submit(self, type_="demo", payload=None):
        """POST /v1/jobs; returns (status, job)."""
        return self.request("POST", "/v1/jobs",
                            {"type": type_, "payload": payload or {"events": 1,
                                                                   "duration_ms": 0}})

    def wait_job(self, job_id, timeout=TIMEOUT):
        """Polls the job until it is finished; returns it."""
        def done():
            status, job = self.request("GET", f"/v1/jobs/{job_id}")
            if status == 200 and job["status"] in ("succeeded", "failed", "cancelled",
                                                   "dead"):
                return job
            return None
        try:
            return wait_until(done, f"job {job_id} to finish", timeout, 0.05)
        except AssertionError as e:
            raise AssertionError(f"{e}\n{self.logs()}") from None

    def events(self, job_id, last_event_id=None, timeout=TIMEOUT, out=None):
        """Reads the job's event stream until the server closes it (or the
        connection breaks); returns [(id, event)] in order, appended to out
        (when given) as they arrive."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        h = {"Authorization": "Bearer " + self.token, "Accept": "text/event-stream"}
        if last_event_id is not None:
            h["Last-Event-ID"] = str(last_event_id)
        out = [] if out is None else out
        cur_id, cur_ev = None, None
        try:
            conn.request("GET", f"/v1/jobs/{job_id}/events", headers=h)
            r = conn.getresponse()
            if r.status != 200:
                return out
            while True:
                line = r.readline()
                if not line:
                    break
                line = line.decode("utf-8", "replace").rstrip("\r\n")
                if line.startswith("id:"):
                    cur_id = int(line[3:].strip())
                elif line.startswith("event:"):
                    cur_ev = line[6:].strip()
                elif line == "" and cur_ev is not None:
                    out.append((cur_id, cur_ev))
                    cur_id, cur_ev = None, None
        except (OSError, http.client.HTTPException):
            pass
        finally:
            conn.close()
        return out


@contextlib.contextmanager
def mini_stack(stack, d, port, settings, workers=1, check_ready=True, app_url_of=None):
    """Runs a gateway and workers on a database of their own (see
    private_database) with the session's settings and the test's
    (settings: AGENTGATE_* values, the Redis ones among them; None removes
    one), the gateway on port, their logs in d; app_url_of (when given) turns
    the database's URL into the one the services get. Waits for the gateway's readiness (when check_ready) and yields a
    MiniStack."""
    with private_database(stack) as (app_url, owner_url):
        env = stack_env(stack)
        env.update({"AGENTGATE_DATABASE_URL": app_url_of(app_url) if app_url_of else app_url,
                    "AGENTGATE_MIGRATE_DATABASE_URL": owner_url,
                    "AGENTGATE_LISTEN": f"127.0.0.1:{port}",
                    "AGENTGATE_MCP_SERVERS_FILE": ""})
        env.update(settings)
        env = {k: v for k, v in env.items() if v is not None}
        m = MiniStack(d, env["AGENTGATE_JWT_SECRET"], port, env)
        with contextlib.ExitStack() as es:
            m.procs["gateway"] = es.enter_context(own_process(
                [bin_path("agentgate-gateway")], env, os.path.join(d, "gateway.log")))
            for i in range(1, workers + 1):
                wenv = dict(env, AGENTGATE_WORKER_ID=f"e-{i}-{uuid.uuid4().hex[:6]}")
                m.procs[f"worker-{i}"] = es.enter_context(own_process(
                    [bin_path("agentgate-worker")], wenv, os.path.join(d, f"worker-{i}.log")))
            if check_ready:
                try:
                    wait_until(m.ready, "the gateway to be ready")
                except AssertionError as e:
                    raise AssertionError(f"{e}\n{m.logs()}") from None
            yield m
        # Stopped: under ASan/UBSan a report (leaks come at exit) fails the test.
        for name in m.procs:
            text = m.log_of(name)
            for mark in SANITIZER_MARKS:
                i = text.find(mark)
                assert i < 0, f"sanitizer report in {name}'s log:\n{text[i:i + 4000]}"
