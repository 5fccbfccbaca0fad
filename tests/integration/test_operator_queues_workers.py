"""The operator's view: GET /v1/queues and GET /v1/workers.

Queue counts come from PostgreSQL for the caller's tenant: they move as
jobs are queued, scheduled, run and fail, and another tenant's jobs never
show in them. Workers come from the registry the worker daemons keep in
Redis: the stack's workers show with their queues and concurrency and the
caller's running jobs (never another tenant's); a worker of the test's
own, with a short registry TTL, drops out within the TTL of a SIGKILL and
at once on a clean shutdown. Both need jobs read.
"""
import os
import re
import signal
import time
import uuid

import pytest

from agentgate_test.paths import bin_path
from agentgate_test.services import own_process, stack_env
from agentgate_test.stack import WORKERS, redis
from agentgate_test.waiting import TIMEOUT, wait_for

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
# The types a token with the default roles and scopes may read (mcp.discover
# needs mcp-servers read, which the default scope leaves out).
DEFAULT_TYPES = ["demo", "test", "long-running", "agent.run", "bench.ticker"]
COUNTS = ("queued", "delayed", "running", "dead")


def queues(tenant, token=True):
    r = tenant.request("GET", "/v1/queues", token=token)
    body = r.expect_json(200)
    assert list(body) == ["items"], body
    return {item["type"]: item for item in body["items"]}


def workers(tenant, token=True):
    body = tenant.request("GET", "/v1/workers", token=token).expect_json(200)
    assert list(body) == ["items"], body
    return {item["id"]: item for item in body["items"]}


def counts(q, type_):
    return {k: q[type_][k] for k in COUNTS}


@pytest.fixture
def no_stack_workers(stack):
    """The stack's workers stopped for the test, so submitted jobs stay
    queued until the test starts them again (start_stack_workers)."""
    for i in range(1, WORKERS + 1):
        stack.worker("stop", i)
    try:
        yield
    finally:
        start_stack_workers(stack)


def start_stack_workers(stack):
    for i in range(1, WORKERS + 1):
        stack.worker("start", i)


def in_the_hour():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))


# --------------------------------------------------------------------------
# GET /v1/queues
# --------------------------------------------------------------------------

def test_queues_list_every_readable_type_with_zero_counts(tenant):
    q = tenant.request("GET", "/v1/queues").expect_json(200)["items"]
    assert [item["type"] for item in q] == DEFAULT_TYPES
    for item in q:
        assert item == {"type": item["type"], "queued": 0, "delayed": 0, "running": 0,
                        "dead": 0, "oldest_queued_age_ms": None,
                        "bands": {"urgent": 0, "high": 0, "normal": 0, "low": 0,
                                  "bulk": 0}}, item
    # Only jobs read: the agent runs' type is left out, as GET /v1/jobs
    # leaves out their jobs.
    jobs_only = tenant.make_token(scope="jobs:read")
    assert list(queues(tenant, token=jobs_only)) == [
        t for t in DEFAULT_TYPES if t != "agent.run"]


def test_queue_counts_follow_the_jobs(stack, tenant, other_tenant, no_stack_workers):
    failing = [tenant.submit("test", {"outcome": "fail"})["id"] for _ in range(2)]
    later = tenant.submit("test", {"outcome": "succeed"}, run_at=in_the_hour())["id"]
    submitted = time.monotonic()

    q = queues(tenant)
    assert counts(q, "test") == {"queued": 2, "delayed": 1, "running": 0, "dead": 0}
    first_age = q["test"]["oldest_queued_age_ms"]
    assert isinstance(first_age, int) and first_age >= 0, q["test"]
    for t in DEFAULT_TYPES:
        if t != "test":
            assert counts(q, t) == dict.fromkeys(COUNTS, 0), q[t]
            assert q[t]["oldest_queued_age_ms"] is None, q[t]

    # The age grows while the jobs wait.
    time.sleep(0.4)
    age = queues(tenant)["test"]["oldest_queued_age_ms"]
    assert age >= first_age + 300, (first_age, age)
    assert age <= (time.monotonic() - submitted) * 1000 + 1000, age

    # Another tenant's counts are its own.
    other = other_tenant.submit("test", {"outcome": "fail"})["id"]
    assert counts(queues(other_tenant), "test") == {
        "queued": 1, "delayed": 0, "running": 0, "dead": 0}
    assert counts(queues(tenant), "test")["queued"] == 2

    # Workers back: the due jobs run and fail (dead), the scheduled one waits.
    start_stack_workers(stack)
    for job_id in failing:
        assert tenant.wait_job(job_id)["status"] == "failed"
    assert other_tenant.wait_job(other)["status"] == "failed"
    q = queues(tenant)
    assert counts(q, "test") == {"queued": 0, "delayed": 1, "running": 0, "dead": 2}
    assert q["test"]["oldest_queued_age_ms"] is None
    assert counts(queues(other_tenant), "test") == {
        "queued": 0, "delayed": 0, "running": 0, "dead": 1}
    # A dead letter dealt with (retried or discarded: dead_resolved_at set)
    # is no longer counted; the job stays failed.
    stack.sql("UPDATE jobs SET dead_resolved_at = now() WHERE id = :'p1'", failing[0])
    assert counts(queues(tenant), "test")["dead"] == 1

    # A running job counts as running while it runs.
    long_job = tenant.submit("long-running", {"duration_ms": 60000,
                                              "progress_interval_ms": 100})["id"]
    try:
        tenant.wait_job(long_job, statuses=("running",))
        assert counts(queues(tenant), "long-running") == {
            "queued": 0, "delayed": 0, "running": 1, "dead": 0}
        assert counts(queues(other_tenant), "long-running")["running"] == 0
    finally:
        tenant.request("DELETE", f"/v1/jobs/{long_job}").expect(200, 202)
        tenant.request("DELETE", f"/v1/jobs/{later}").expect(200, 202)
    tenant.wait_job(long_job)
    q = queues(tenant)
    assert counts(q, "long-running") == dict.fromkeys(COUNTS, 0)
    # A cancelled job is neither waiting nor dead.
    assert counts(q, "test") == {"queued": 0, "delayed": 0, "running": 0, "dead": 1}


# --------------------------------------------------------------------------
# GET /v1/workers
# --------------------------------------------------------------------------

def check_worker_shape(w):
    assert list(w) == ["id", "host", "pid", "started_at", "heartbeat_at", "queues",
                       "concurrency", "running", "jobs"], w
    assert isinstance(w["host"], str) and w["host"], w
    assert isinstance(w["pid"], int) and w["pid"] > 0, w
    assert RFC3339.match(w["started_at"]) and RFC3339.match(w["heartbeat_at"]), w
    assert w["started_at"] <= w["heartbeat_at"], w
    assert isinstance(w["queues"], list) and w["queues"], w
    assert isinstance(w["concurrency"], int) and w["concurrency"] >= 1, w
    assert isinstance(w["running"], int) and 0 <= w["running"] <= w["concurrency"], w
    assert isinstance(w["jobs"], list) and len(w["jobs"]) <= w["running"], w


def test_workers_show_the_callers_running_jobs_only(tenant, other_tenant):
    long_run = {"duration_ms": 60000, "progress_interval_ms": 100}
    mine = tenant.submit("long-running", long_run)["id"]
    theirs = other_tenant.submit("long-running", long_run)["id"]
    try:
        mine_job = tenant.wait_job(mine, statuses=("running",))
        theirs_job = other_tenant.wait_job(theirs, statuses=("running",))

        # The registry is renewed on each heartbeat: wait for one.
        ws = wait_for(lambda: (lambda ws: ws if any(mine in w["jobs"] for w in ws.values())
                               else None)(workers(tenant)),
                      what="the running job in its worker's entry")
        for w in ws.values():
            check_worker_shape(w)
            assert theirs not in w["jobs"], w
        holder = next(w for w in ws.values() if mine in w["jobs"])
        assert holder["id"] == mine_job["worker_id"], (holder, mine_job)
        assert holder["running"] >= 1
        assert "long-running" in holder["queues"]

        theirs_ws = wait_for(
            lambda: (lambda ws: ws if any(theirs in w["jobs"] for w in ws.values())
                     else None)(workers(other_tenant)),
            what="the other tenant's running job in its worker's entry")
        for w in theirs_ws.values():
            assert mine not in w["jobs"], w
        assert next(w for w in theirs_ws.values()
                    if theirs in w["jobs"])["id"] == theirs_job["worker_id"]
        # The same workers either way: only the jobs differ.
        assert set(theirs_ws) == set(ws)
    finally:
        tenant.request("DELETE", f"/v1/jobs/{mine}").expect(200, 202)
        other_tenant.request("DELETE", f"/v1/jobs/{theirs}").expect(200, 202)
    tenant.wait_job(mine)
    other_tenant.wait_job(theirs)


# A worker of the test's own: a fast heartbeat, a short registry TTL, one
# queue nobody else's tests use, two job threads.
BEAT_MS = 200
SHORT_TTL_MS = 1500


def own_worker(stack, worker_id, ttl_ms):
    env = stack_env(stack)
    env.update({
        "AGENTGATE_WORKER_ID": worker_id,
        "AGENTGATE_WORKER_QUEUES": "bench.ticker",
        "AGENTGATE_WORKER_CONCURRENCY": "2",
        "AGENTGATE_HEARTBEAT_MS": str(BEAT_MS),
        "AGENTGATE_WORKER_REGISTRY_TTL_MS": str(ttl_ms),
    })
    return own_process([bin_path("agentgate-worker")], env,
                       os.path.join(stack.dir, "logs", f"worker-{worker_id}.log"))


def wait_listed(tenant, worker_id, proc):
    def listed():
        assert proc.poll() is None, f"worker {worker_id} exited"
        return workers(tenant).get(worker_id)
    return wait_for(listed, what=f"worker {worker_id} in GET /v1/workers")


def in_registry(worker_id):
    """Whether Redis still holds anything of the worker's entry."""
    return (redis("ZSCORE", "workers", worker_id).strip() != ""
            or redis("EXISTS", f"worker:{worker_id}").strip() != "0")


def test_killed_worker_drops_out_after_the_ttl(stack, tenant):
    worker_id = "it-reg-kill-" + uuid.uuid4().hex[:8]
    with own_worker(stack, worker_id, SHORT_TTL_MS) as proc:
        w = wait_listed(tenant, worker_id, proc)
        check_worker_shape(w)
        assert w["queues"] == ["bench.ticker"], w
        assert w["concurrency"] == 2 and w["running"] == 0 and w["jobs"] == [], w
        assert w["pid"] == proc.pid, w
        # Its heartbeat moves while it lives, idle or not.
        beat = w["heartbeat_at"]
        wait_for(lambda: workers(tenant)[worker_id]["heartbeat_at"] > beat,
                 what="a newer heartbeat_at")

        proc.send_signal(signal.SIGKILL)
        proc.wait()
        killed = time.monotonic()
        wait_for(lambda: worker_id not in workers(tenant),
                 timeout=SHORT_TTL_MS / 1000 + 5, what="the killed worker dropping out")
        gone_after = time.monotonic() - killed
    # Gone by the TTL, not by anything the dead process did: its last beat
    # was at most one heartbeat before the kill.
    assert gone_after >= (SHORT_TTL_MS - BEAT_MS) / 1000 - 0.2, gone_after
    # The read that skipped it also pruned it from the workers set.
    assert not in_registry(worker_id)


def test_clean_shutdown_removes_the_worker_at_once(stack, tenant, other_tenant):
    worker_id = "it-reg-stop-" + uuid.uuid4().hex[:8]
    # A TTL of a minute: only the worker's own removal can make it go now.
    with own_worker(stack, worker_id, 60000) as proc:
        wait_listed(tenant, worker_id, proc)
        # Every tenant sees the worker (without each other's jobs).
        assert worker_id in workers(other_tenant)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=TIMEOUT) == 0
        assert worker_id not in workers(tenant)
        assert not in_registry(worker_id)


# --------------------------------------------------------------------------
# Permissions
# --------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/v1/queues", "/v1/workers"])
def test_needs_jobs_read(tenant, path):
    no_jobs = tenant.make_token(scope="agent-runs:read tools:read")
    p = tenant.request("GET", path, token=no_jobs).expect_problem(403)
    assert p["type"] == "urn:agentgate:problem:forbidden", p
    assert "jobs" in p["detail"], p
    assert tenant.request("GET", path, token=None).status == 401
    viewer = tenant.make_token(roles=["viewer"], scope="jobs:read")
    tenant.request("GET", path, token=viewer).expect_json(200)
