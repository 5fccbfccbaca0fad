"""A worker of a test's own that serves /metrics (metrics_worker), a scrape
of any /metrics endpoint parsed with prom.Exposition (scrape), and sums
over the series of a family that carry some labels (total): what the
worker metrics and Prometheus server tests read."""

import contextlib
import http.client
import os
import time

from agentgate_test.paths import bin_path
from agentgate_test.ports import port_free
from agentgate_test.prom import Exposition
from agentgate_test.services import own_process, stack_env

EXPOSITION_TYPE = "text/plain; version=0.0.4"


def fetch(port, path="/metrics", method="GET", host="127.0.0.1", timeout=10):
    """method http://host:port/path. Returns (status, headers, body text)."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path)
        r = conn.getresponse()
        return r.status, r.headers, r.read().decode("utf-8")
    finally:
        conn.close()


def scrape(port):
    """GET /metrics on port, which must answer 200; returns an Exposition."""
    status, _, body = fetch(port)
    assert status == 200, f"GET :{port}/metrics -> {status}: {body[:300]}"
    return Exposition(body)


def total(expo, name, **labels):
    """The sum of the samples called name whose labels include labels (0
    when none match)."""
    return sum(v for ls, v in expo.series(name)
               if all(ls.get(k) == want for k, want in labels.items()))


@contextlib.contextmanager
def metrics_worker(stack, name, listen_port, offset=0, settings=None):
    """Runs a worker of the test's own on the session stack with
    AGENTGATE_WORKER_METRICS_LISTEN=127.0.0.1:listen_port and
    AGENTGATE_WORKER_METRICS_PORT_OFFSET=offset (as the worker@N units set
    it) and settings over the stack's, until its /metrics answers; yields
    (process, metrics port) and stops it at the end."""
    env = stack_env(stack)
    env.update({
        "AGENTGATE_WORKER_ID": f"it-metrics-{name}",
        "AGENTGATE_WORKER_METRICS_LISTEN": f"127.0.0.1:{listen_port}",
        "AGENTGATE_WORKER_METRICS_PORT_OFFSET": str(offset),
    })
    env.update(settings or {})
    port = listen_port + offset
    # Else the wait below could take another process's answer for its own.
    assert port_free(port), f"port {port} for worker {name}'s metrics is in use"
    log_path = os.path.join(stack.dir, "logs", f"worker-metrics-{name}.log")
    with own_process([bin_path("agentgate-worker")], env, log_path) as proc:
        deadline = time.monotonic() + 20
        while True:
            if proc.poll() is not None:
                with open(log_path, encoding="utf-8", errors="replace") as f:
                    raise AssertionError(f"worker {name} exited {proc.returncode}:\n"
                                         + f.read()[-3000:])
            try:
                if fetch(port, timeout=2)[0] == 200 and proc.poll() is None:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, f"worker {name}: no /metrics on {port}"
            time.sleep(0.1)
        yield proc, port
