"""
Dependencies going away: while Redis is down the gateway still takes jobs
(202) and ends event streams with a retry: hint, and a client that comes
back resumes with no gap; while PostgreSQL is down submissions answer 503
with Retry-After and leave nothing behind; when Redis refuses the call
that enqueues newly committed jobs, they stay accepted and reconciliation
enqueues them. Everything recovers by itself.
"""
import time
import uuid

from agentgate_test.client import check_frames, http_request
from agentgate_test.stack import redis, stack_dep, wait_ready
from agentgate_test.waiting import TIMEOUT


def components():
    r = http_request("GET", "/v1/health/components")
    return r.status, r.json()["components"]


def test_redis_down_jobs_accepted_and_streams_resume_without_gap(stack, tenant):
    job = tenant.submit("long-running", {"duration_ms": 5000,
                                         "progress_interval_ms": 200})
    stream = tenant.open_events(job["id"])
    stream.read_until(lambda e: e.event == "job.progress", what="first progress")
    try:
        stack_dep(stack, "redis", "stop")
        # The stream ends cleanly, telling the client when to come back.
        while stream.next_event(timeout=10, what="end of stream") is not None:
            pass
        assert stream.retry is not None and int(stream.retry) > 0, stream.retry
        seen = stream.events
        check_frames(seen, job["id"])

        status, comp = components()
        assert status == 503 and comp["redis"]["status"] == "down", comp
        during = tenant.submit("test", {"outcome": "succeed"})    # still 202

        # Resuming while Redis is away is served from PostgreSQL. The client
        # comes back after the retry it was given, as EventSource does.
        time.sleep(int(stream.retry) / 1000)
        resumed = tenant.open_events(job["id"], last_event_id=seen[-1].id)
        resumed.next_event(timeout=10, what="an event caught up from PostgreSQL")
    finally:
        stack_dep(stack, "redis", "start")
    wait_ready()
    rest = resumed.read_to_end(timeout=TIMEOUT)
    check_frames(rest, job["id"], first_id=seen[-1].id + 1)
    assert rest[-1].event == "job.succeeded", rest

    # The job taken while Redis was down was enqueued by reconciliation.
    assert tenant.wait_job(during["id"])["status"] == "succeeded"


def test_jobs_whose_enqueue_redis_refuses_are_kept_and_reconciled(stack, tenant):
    """The new jobs of a loop turn go to Redis in one call after their
    commit. Here Redis refuses it (the type's set of active tenants is
    not a set): the jobs were still answered 202, are in PostgreSQL, and
    are enqueued by reconciliation once Redis takes them again."""
    key = "jobs:active:test"
    redis("SET", key, "not-a-set")
    try:
        items = [{"type": "test", "payload": {"outcome": "succeed"}} for _ in range(3)]
        jobs = tenant.request("POST", "/v1/jobs/batch",
                              body={"jobs": items}).expect_json(202)["jobs"]
        one = tenant.submit("test", {"outcome": "succeed"})
        ids = [j["id"] for j in jobs] + [one["id"]]
        rows = stack.sql("SELECT count(*) FROM jobs WHERE id = ANY(:'p1'::uuid[])",
                         "{" + ",".join(ids) + "}")
        assert rows == [["4"]], rows
    finally:
        redis("DEL", key)
    for job_id in ids:
        assert tenant.wait_job(job_id)["status"] == "succeeded"


def test_postgres_down_submissions_503_and_nothing_half_written(stack, tenant):
    rid = str(uuid.uuid4())
    try:
        stack_dep(stack, "pg", "stop")
        r = tenant.request("POST", "/v1/jobs", body={
            "type": "test", "payload": {"outcome": "succeed"}},
            headers={"X-Request-Id": rid})
        r.expect_problem(503)
        assert r.header("Retry-After") and int(r.header("Retry-After")) > 0
        status, comp = components()
        assert status == 503 and comp["postgres"]["status"] == "down", comp
    finally:
        stack_dep(stack, "pg", "start")
    wait_ready()
    assert stack.sql("SELECT count(*) FROM jobs WHERE request_id = :'p1'", rid) == [["0"]]
    job = tenant.submit("test", {"outcome": "succeed"})
    assert tenant.wait_job(job["id"], timeout=30)["status"] == "succeeded"
