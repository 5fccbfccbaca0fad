"""The gateway's /metrics: a real scrape passes Debian's `promtool check
metrics` with no error and no lint warning, and its values move with what
the gateway does: request durations by route template, method and status
code; jobs submitted by type; event streams open; queue depth and running
jobs per type, every tenant's, read from PostgreSQL when scraped (checked
against the jobs table itself); the process_* metrics of the gateway's own
process (checked against /proc). A gateway whose database is unreachable
still answers /metrics.
"""
import os
import socket
import time
import uuid

import pytest

from agentgate_test.client import Resp, http_request
from agentgate_test.ports import HTTP_PORT
from agentgate_test.prom import Exposition, promtool_check
from agentgate_test.services import own_gateway
from agentgate_test.waiting import wait_for

DURATION = "agentgate_http_request_duration_seconds"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Nothing listens here (the metrics helper's own port range): a database
# that cannot be reached.
DEAD_PG_PORT = 20101
OWN_GATEWAY_PORT = 20102


def scrape(get=http_request):
    r = get("GET", "/metrics")
    assert r.status == 200, r.describe()
    assert r.header("Content-Type") == CONTENT_TYPE, r.header("Content-Type")
    return Exposition(r.body.decode("utf-8"))


def count(e, route, method, code):
    return e.value(DURATION + "_count", 0.0, route=route, method=method, code=str(code))


def test_promtool_reports_what_it_should():
    # The check below is only worth something if promtool, run this way,
    # does complain about a bad exposition.
    rc, out = promtool_check("# HELP jobs Jobs.\n# TYPE jobs counter\njobs 1\n")
    assert out.strip(), (rc, out)


def test_scrape_passes_promtool_without_warnings(tenant):
    # Traffic first, so labelled series (histogram buckets, types) exist.
    job = tenant.submit("test", {"outcome": "succeed"})["id"]
    tenant.wait_job(job)
    tenant.request("GET", f"/v1/jobs/{uuid.uuid4()}").expect(404)
    http_request("GET", "/no/such/endpoint").expect(404)
    r = http_request("GET", "/metrics")
    text = r.body.decode("utf-8")
    rc, out = promtool_check(text)
    assert rc == 0 and out == "", f"promtool check metrics exited {rc}:\n{out}"
    e = Exposition(text)
    assert e.types[DURATION] == "histogram"
    for name in ("agentgate_http_requests_total", "agentgate_jobs_submitted_total",
                 "agentgate_sse_events_sent_total", "process_cpu_seconds_total"):
        assert e.types[name] == "counter", name
    for name in ("agentgate_sse_streams_open", "agentgate_queue_depth",
                 "agentgate_jobs_running", "process_resident_memory_bytes",
                 "process_virtual_memory_bytes", "process_open_fds", "process_max_fds",
                 "process_start_time_seconds"):
        assert e.types[name] == "gauge", name


def test_request_durations_by_route_template_method_and_code(tenant):
    job = tenant.submit("test", {"outcome": "succeed"})["id"]
    missing = str(uuid.uuid4())
    before = scrape()
    tenant.get_job(job)
    tenant.get_job(job)
    tenant.request("GET", f"/v1/jobs/{missing}").expect(404)
    http_request("GET", "/no/such/endpoint").expect(404)
    after = scrape()

    route = "/v1/jobs/{id}"
    assert count(after, route, "GET", 200) == count(before, route, "GET", 200) + 2
    assert count(after, route, "GET", 404) == count(before, route, "GET", 404) + 1
    assert count(after, "unmatched", "GET", 404) == count(before, "unmatched", "GET", 404) + 1
    labels = dict(route=route, method="GET", code="200")
    assert (after.value(DURATION + "_sum", **labels)
            > before.value(DURATION + "_sum", 0.0, **labels))

    # Buckets are cumulative, end with +Inf equal to _count, and every
    # series is named by its template: no id ever becomes a label value.
    buckets = {}
    for labels_, v in after.series(DURATION + "_bucket"):
        le = labels_.pop("le")
        buckets.setdefault(tuple(sorted(labels_.items())), []).append(
            (float("inf") if le == "+Inf" else float(le), v))
    assert buckets
    for key, bs in buckets.items():
        values = [v for _, v in sorted(bs)]
        assert values == sorted(values), (key, bs)
        assert max(bs)[0] == float("inf")
        assert values[-1] == after.value(DURATION + "_count", **dict(key)), key
        assert job not in str(key) and missing not in str(key), key


def test_jobs_submitted_by_type(tenant):
    name = "agentgate_jobs_submitted_total"
    before = scrape().value(name, 0.0, type="test")
    demo_before = scrape().value(name, 0.0, type="demo")
    tenant.submit("test", {"outcome": "succeed"})
    tenant.submit("test", {"outcome": "succeed"})
    e = scrape()
    assert e.value(name, type="test") == before + 2
    assert e.value(name, 0.0, type="demo") == demo_before


def test_event_streams_open_and_sent(tenant):
    job = tenant.submit("test", {"outcome": "succeed", "sleep_ms": 60000})["id"]
    base = scrape()
    open_before = base.value("agentgate_sse_streams_open")
    streams_route = count(base, "/v1/jobs/{id}/events", "GET", 200)
    s = tenant.open_events(job)
    try:
        s.next_event()
        wait_for(lambda: scrape().value("agentgate_sse_streams_open") == open_before + 1,
                 what="the open stream counted")
        e = scrape()
        assert count(e, "/v1/jobs/{id}/events", "GET", 200) == streams_route + 1
        assert (e.value("agentgate_sse_events_sent_total")
                >= base.value("agentgate_sse_events_sent_total") + 1)
    finally:
        s.close()
        tenant.request("DELETE", f"/v1/jobs/{job}")
    wait_for(lambda: scrape().value("agentgate_sse_streams_open") == open_before,
             what="the closed stream no longer counted")


def sql_count(stack, type_, status):
    due = " AND (run_at IS NULL OR run_at <= now())" if status == "queued" else ""
    rows = stack.sql(f"SELECT count(*) FROM jobs WHERE type = :'p1' AND status = :'p2'{due}",
                     type_, status)
    return float(rows[0][0])


@pytest.fixture
def no_stack_workers(stack):
    """The stack's workers stopped, so submitted jobs stay queued."""
    with stack.workers_stopped():
        yield


def test_queue_depth_counts_every_tenants_due_jobs(stack, tenant, other_tenant,
                                                    no_stack_workers):
    jobs = [tenant.submit("demo", {"events": 1})["id"] for _ in range(2)]
    jobs.append(other_tenant.submit("demo", {"events": 1})["id"])
    # Scheduled for later: not yet waiting, so not in the depth.
    later = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    jobs.append(tenant.submit("demo", {"events": 1}, run_at=later)["id"])
    try:
        want = sql_count(stack, "demo", "queued")
        assert want >= 3
        # Scrapes within a second of the last read reuse it: wait it out.
        wait_for(lambda: scrape().value("agentgate_queue_depth", type="demo") == want,
                 what=f"agentgate_queue_depth{{type=\"demo\"}} == {want}")
        e = scrape()
        # Every registered type has its series, 0 when nothing waits.
        assert e.value("agentgate_queue_depth", type="long-running") == sql_count(
            stack, "long-running", "queued")
        assert e.value("agentgate_jobs_running", type="demo") == 0
    finally:
        for j in jobs[:3]:
            tenant.request("DELETE", f"/v1/jobs/{j}")
        other_tenant.request("DELETE", f"/v1/jobs/{jobs[2]}")
        tenant.request("DELETE", f"/v1/jobs/{jobs[3]}")
    wait_for(lambda: scrape().value("agentgate_queue_depth", type="demo")
             == sql_count(stack, "demo", "queued"), what="the depth after cancelling")


def test_jobs_running_per_type(stack, tenant):
    job = tenant.submit("test", {"outcome": "succeed", "sleep_ms": 60000})["id"]
    try:
        tenant.wait_job(job, statuses=("running",))
        wait_for(lambda: scrape().value("agentgate_jobs_running", type="test")
                 == sql_count(stack, "test", "running") >= 1,
                 what="the running job counted")
    finally:
        tenant.request("DELETE", f"/v1/jobs/{job}")
    tenant.wait_job(job)
    wait_for(lambda: scrape().value("agentgate_jobs_running", type="test")
             == sql_count(stack, "test", "running"), what="the cancelled job no longer running")


def proc_start_time(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    with open("/proc/stat") as f:
        btime = next(int(line.split()[1]) for line in f if line.startswith("btime "))
    return btime + int(fields[19]) / os.sysconf("SC_CLK_TCK")


def proc_soft_nofile(pid):
    with open(f"/proc/{pid}/limits") as f:
        line = next(line for line in f if line.startswith("Max open files"))
    return float(line.split()[3])


def test_process_metrics_are_the_gateways(stack):
    with open(os.path.join(stack.dir, "pids", "gateway.pid")) as f:
        pid = int(f.read().strip())
    e1 = scrape()
    http_request("GET", "/v1/health/live").expect(200)
    e2 = scrape()
    assert abs(e2.value("process_start_time_seconds") - proc_start_time(pid)) < 1.0
    assert e2.value("process_max_fds") == proc_soft_nofile(pid)
    assert 3 < e2.value("process_open_fds") <= e2.value("process_max_fds")
    # Each connection the gateway holds is a descriptor more.
    fds = e2.value("process_open_fds")
    conns = [socket.create_connection(("127.0.0.1", HTTP_PORT)) for _ in range(10)]
    try:
        wait_for(lambda: scrape().value("process_open_fds") >= fds + 10,
                 what="10 more descriptors counted")
    finally:
        for c in conns:
            c.close()
    wait_for(lambda: scrape().value("process_open_fds") < fds + 10,
             what="closed connections' descriptors gone")
    assert e2.value("process_resident_memory_bytes") > 1 << 20
    assert e2.value("process_virtual_memory_bytes") >= e2.value("process_resident_memory_bytes")
    assert 0 <= e1.value("process_cpu_seconds_total") <= e2.value("process_cpu_seconds_total")
    assert e2.value("agentgate_uptime_seconds") >= 0


def test_metrics_answer_while_the_database_is_unreachable(stack):
    url = f"postgresql://agentgate_app:x@127.0.0.1:{DEAD_PG_PORT}/agentgate"
    with own_gateway(stack, "metrics-nodb", {"AGENTGATE_DATABASE_URL": url},
                     port=OWN_GATEWAY_PORT) as g:
        def get(method, path):
            return Resp(method, path, *g.request(method, path))
        e = scrape(get)
        rc, out = promtool_check(e.text)
        assert rc == 0 and out == "", out
        assert e.value("agentgate_http_requests_total") >= 1
        # Not read: no depth is made up.
        assert e.series("agentgate_queue_depth") == []
        assert e.types["agentgate_queue_depth"] == "gauge"
