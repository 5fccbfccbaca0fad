"""Debian's Prometheus server (/usr/bin/prometheus) scrapes the session
gateway and two workers of the test's own, and what it stored is read
back through its HTTP API (/api/v1/query): every target up, both workers
seen, and the jobs the test ran counted as finished. The Grafana dashboard
(deploy/grafana/agentgate.json) is checked against the same server: every
panel's query is accepted by it and names only series the gateway or a
worker exposes.

The two workers share one AGENTGATE_WORKER_METRICS_LISTEN and get their
ports from AGENTGATE_WORKER_METRICS_PORT_OFFSET 1 and 2, as the
agentgate-worker@1 and @2 units do. The stack's own workers are stopped
meanwhile, so the jobs are run by the scraped workers alone.

Ports: AGENTGATE_TEST_PROM_WORKER_PORT (default 20220; the workers use
+1 and +2) and AGENTGATE_TEST_PROMETHEUS_PORT (default 20230).
"""
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request

import pytest

from agentgate_test.metrics_worker import fetch, metrics_worker
from agentgate_test.paths import REPO
from agentgate_test.ports import HTTP_PORT, pick_port
from agentgate_test.prom import Exposition
from agentgate_test.services import own_process
from agentgate_test.stack import WORKERS

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
WORKER_BASE_PORT = pick_port("AGENTGATE_TEST_PROM_WORKER_PORT", 20220)
PROMETHEUS_PORT = pick_port("AGENTGATE_TEST_PROMETHEUS_PORT", 20230)
JOBS = 6
# Prometheus starts, scrapes every second and answers queries within this
# on a loaded machine; the waits end as soon as the answer is there.
WAIT_S = 90

CONFIG = """\
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: agentgate-gateway
    static_configs:
      - targets: ["127.0.0.1:{gateway}"]
  - job_name: agentgate-worker
    static_configs:
      - targets: ["127.0.0.1:{worker1}", "127.0.0.1:{worker2}"]
"""

FINISHED_QUERY = 'sum(agentgate_job_run_duration_seconds_count{outcome="succeeded"})'


def query(expr):
    """Runs expr through Prometheus's instant-query API; returns the
    result vector ([{metric, value: [t, "v"]}])."""
    url = (f"http://127.0.0.1:{PROMETHEUS_PORT}/api/v1/query?"
           + urllib.parse.urlencode({"query": expr}))
    with urllib.request.urlopen(url, timeout=10) as r:
        body = json.load(r)
    assert body["status"] == "success", body
    assert body["data"]["resultType"] == "vector", body
    return body["data"]["result"]


def wait_query(expr, ok, what):
    """Polls expr until ok(result) holds; returns the result."""
    deadline = time.monotonic() + WAIT_S
    result = None
    while time.monotonic() < deadline:
        try:
            result = query(expr)
            if ok(result):
                return result
        except OSError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{what} not seen within {WAIT_S} s; {expr} -> {result}")


@pytest.fixture(scope="module")
def workers(stack):
    """Two scraped workers (offsets 1 and 2), the only ones running."""
    for i in range(1, WORKERS + 1):
        stack.worker("stop", i)
    try:
        with metrics_worker(stack, "prom-1", WORKER_BASE_PORT, 1) as (_, p1), \
             metrics_worker(stack, "prom-2", WORKER_BASE_PORT, 2) as (_, p2):
            yield p1, p2
    finally:
        for i in range(1, WORKERS + 1):
            stack.worker("start", i)


@pytest.fixture(scope="module")
def prometheus(stack, workers):
    """Debian's Prometheus server scraping the gateway and the workers."""
    d = tempfile.mkdtemp(prefix="prometheus-", dir=stack.dir)
    config = os.path.join(d, "prometheus.yml")
    with open(config, "w") as f:
        f.write(CONFIG.format(gateway=HTTP_PORT, worker1=workers[0], worker2=workers[1]))
    check = subprocess.run([PROMTOOL, "check", "config", config], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=60)
    assert check.returncode == 0, check.stdout.decode(errors="replace")
    argv = [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={d}/data",
            f"--web.listen-address=127.0.0.1:{PROMETHEUS_PORT}", "--log.level=warn"]
    log = os.path.join(stack.dir, "logs", "prometheus.log")
    with own_process(argv, dict(os.environ), log) as proc:
        deadline = time.monotonic() + WAIT_S
        while True:
            assert proc.poll() is None, "prometheus exited; see " + log
            try:
                url = f"http://127.0.0.1:{PROMETHEUS_PORT}/-/ready"
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "prometheus not ready; see " + log
            time.sleep(0.2)
        yield proc


def test_prometheus_scrapes_gateway_and_workers(tenant, prometheus):
    up = wait_query("up", lambda r: len(r) == 3 and all(x["value"][1] == "1" for x in r),
                    "three targets up")
    assert sorted(x["metric"]["job"] for x in up) == [
        "agentgate-gateway", "agentgate-worker", "agentgate-worker"], up

    jobs = [tenant.submit("test", {"outcome": "succeed"}) for _ in range(JOBS)]
    for j in jobs:
        assert tenant.wait_job(j["id"])["status"] == "succeeded"

    # The workers are fresh processes and the only ones running: Prometheus
    # must count exactly the jobs this test ran.
    result = wait_query(FINISHED_QUERY,
                        lambda r: len(r) == 1 and float(r[0]["value"][1]) >= JOBS,
                        f"{JOBS} finished jobs")
    print(f"\nPrometheus query: {FINISHED_QUERY}\nresult: {json.dumps(result)}")
    assert float(result[0]["value"][1]) == JOBS, result

    # Both workers were scraped (each reports its process_* metrics), and
    # the gateway's series are stored under their job.
    starts = query('process_start_time_seconds{job="agentgate-worker"}')
    assert len(starts) == 2, starts
    gw = query('count({job="agentgate-gateway", __name__=~"agentgate_.+"})')
    assert gw and float(gw[0]["value"][1]) > 0, gw
    waited = query('sum(agentgate_job_queue_wait_seconds_count{type="test"})')
    assert waited and float(waited[0]["value"][1]) == JOBS, waited


DASHBOARD = os.path.join(REPO, "deploy", "grafana", "agentgate.json")
# Grafana's variables, as a query would run with "All" types over an hour.
GRAFANA_VARS = {"$__rate_interval": "1m", "$__range": "1h", "$type": ".*"}
SERIES_NAME = re.compile(r"\b((?:agentgate|process)_[a-z0-9_]+)")


def dashboard_targets():
    with open(DASHBOARD, encoding="utf-8") as f:
        dash = json.load(f)
    assert dash.get("uid") and dash.get("title") and dash.get("schemaVersion"), "not a dashboard"
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids)), f"panel ids repeat: {ids}"
    out = []
    for p in dash["panels"]:
        if p["type"] == "row":
            continue
        assert p.get("datasource", {}).get("uid") == "${datasource}", p["title"]
        assert p.get("targets"), f"panel {p['title']!r} has no query"
        out += [(p["title"], t["expr"]) for t in p["targets"]]
    return out


def test_dashboard_queries_run_and_name_exposed_series(workers, prometheus):
    exposed = dict(Exposition(fetch(HTTP_PORT)[2]).types)
    for port in workers:
        exposed.update(Exposition(fetch(port)[2]).types)

    targets = dashboard_targets()
    assert len(targets) >= 20, targets
    families = set()
    for title, expr in targets:
        for name in SERIES_NAME.findall(expr):
            base = re.sub(r"_(bucket|count|sum)$", "", name)
            fam = base if exposed.get(base) == "histogram" else name
            assert fam in exposed, f"panel {title!r}: {name} is not exposed ({expr})"
            families.add(fam)
        q = expr
        for var, value in GRAFANA_VARS.items():
            q = q.replace(var, value)
        assert "$" not in q, f"panel {title!r}: unknown variable in {expr}"
        query(q)    # raises on a query the server refuses (HTTP 400)
    # Every worker family is on the dashboard.
    worker_families = {n for n in Exposition(fetch(workers[0])[2]).types
                       if n.startswith("agentgate_") and "otlp" not in n
                       and "retention" not in n}
    assert worker_families <= families, sorted(worker_families - families)
