"""Processes a test runs of its own beside the session stack: a second
gateway or a worker with other settings (own_process, own_gateway), and
the OpenAI stand-in (tests/fakes/openai_standin.py) with its scripting
client."""

import contextlib
import http.client
import json
import os
import subprocess
import sys
import time
import urllib.parse
import uuid

from agentgate_test.paths import STANDIN_SCRIPT, bin_path
from agentgate_test.ports import free_port
from agentgate_test.stack import read_env_file
from agentgate_test.waiting import TIMEOUT


def stop_process(proc, grace_s):
    """SIGTERM, then SIGKILL if proc has not exited within grace_s seconds."""
    proc.terminate()
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def own_process(argv, env, log_path):
    """Runs a service of the test's own (a second gateway, a worker with
    other settings) with env, its output appended to log_path (under the
    stack's logs/, so the sanitizer scan reads it), and stops it at the end:
    SIGTERM, then SIGKILL after 15 s. Yields the Popen."""
    log = open(log_path, "ab")
    proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        stop_process(proc, 15)
        log.close()


def stack_env(stack):
    """This process's environment with the session stack's settings (its
    agentgate.env) over it: what a service of the test's own starts from."""
    env = dict(os.environ)
    env.update(read_env_file(os.path.join(stack.dir, "agentgate.env")))
    return env


class OwnGateway:
    """A gateway of a test's own (see own_gateway): its port, log and
    process, and a plain HTTP client for it."""

    def __init__(self, port, log_path, proc):
        self.port = port
        self.log_path = log_path
        self.proc = proc

    def log(self):
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def request(self, method, path, body=None, headers=None, timeout=TIMEOUT):
        """Returns (status, headers, body bytes)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            return r.status, r.headers, r.read()
        finally:
            conn.close()


@contextlib.contextmanager
def own_gateway(stack, name, settings, port=None, cls=OwnGateway):
    """Runs a second gateway on the session stack's PostgreSQL and Redis
    with the stack's settings and the test's (settings, a dict of
    AGENTGATE_* values), on port (a free one when None), until it answers
    /v1/health/live; yields it as cls (OwnGateway or a subclass) and stops
    it at the end."""
    port = port or free_port()
    env = stack_env(stack)
    env["AGENTGATE_LISTEN"] = f"127.0.0.1:{port}"
    env.update(settings)
    log_path = os.path.join(stack.dir, "logs", f"gateway-{name}-{port}.log")
    with own_process([bin_path("agentgate-gateway")], env, log_path) as proc:
        g = cls(port, log_path, proc)
        deadline = time.monotonic() + 20
        while True:
            assert proc.poll() is None, f"{name} gateway exited:\n" + g.log()
            try:
                if g.request("GET", "/v1/health/live", timeout=2)[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, f"{name} gateway not up:\n" + g.log()
            time.sleep(0.1)
        yield g


# --------------------------------------------------------------------------
# The OpenAI stand-in
# --------------------------------------------------------------------------

class StandinError(Exception):
    """The stand-in did not start."""


class LlmStandin:
    """A running stand-in OpenAI server. Each test scripts its own
    (prefix, model) pairs, named with unique_name(), so tests never see
    each other's requests."""

    def __init__(self, proc, port):
        self.proc = proc
        self.port = port

    @classmethod
    def start(cls):
        """Starts the stand-in on a free port; raises StandinError (the
        process stopped) when it does not say where it listens."""
        proc = subprocess.Popen([sys.executable, STANDIN_SCRIPT, "--port", "0"],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        try:
            line = proc.stdout.readline()
            if not line.startswith("listening on "):
                proc.kill()
                raise StandinError(f"the OpenAI stand-in did not start: {line!r}"
                                   f"{proc.stdout.read()}")
            return cls(proc, int(line.split()[2]))
        except BaseException:
            stop_process(proc, 5)
            raise

    def stop(self):
        stop_process(self.proc, 5)

    @staticmethod
    def unique_name(kind="m"):
        """A fresh provider or model name ([A-Za-z0-9._-], under 32)."""
        return f"{kind}-{uuid.uuid4().hex[:16]}"

    def base_url(self, prefix):
        """Where a provider at prefix lives: http://127.0.0.1:PORT/p1/v1."""
        return f"http://127.0.0.1:{self.port}{prefix}/v1"

    def _call(self, method, path, body=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=TIMEOUT)
        try:
            data = None if body is None else json.dumps(body).encode()
            c.request(method, path, body=data,
                      headers={"Content-Type": "application/json"})
            r = c.getresponse()
            raw = r.read()
            assert r.status == 200, f"stand-in {method} {path}: {r.status} {raw!r}"
            return json.loads(raw)
        finally:
            c.close()

    def script(self, prefix, model, responses):
        """Queues responses (dicts, see the stand-in's doc) for requests
        to (prefix, model), one per request."""
        return self._call("POST", "/_standin/script",
                          {"prefix": prefix, "model": model,
                           "responses": responses})

    def requests(self, prefix=None, model=None):
        """The requests (prefix, model) received, oldest first."""
        q = {k: v for k, v in (("prefix", prefix), ("model", model))
             if v is not None}
        return self._call("GET", "/_standin/requests"
                          + ("?" + urllib.parse.urlencode(q) if q else ""))

    def register_model(self, stack, tenant_id, model, prefix, provider=None,
                       is_default=False):
        """Adds a model_defaults row giving model to a provider at prefix,
        for tenant_id. Returns the provider's name (unique when not given)."""
        provider = provider or self.unique_name("p")
        stack.sql("INSERT INTO model_defaults (scope, tenant_id, provider, model, "
                  "base_url, is_default) VALUES ('tenant', :'p1', :'p2', :'p3', "
                  ":'p4', :'p5')",
                  tenant_id, provider, model, self.base_url(prefix),
                  "true" if is_default else "false")
        return provider
