"""Cancellation: a queued job never runs; a running one stops promptly;
finished jobs cannot be cancelled."""

import time

from agentgate_test.client import TERMINAL_EVENTS, check_frames
from agentgate_test.stack import WORKERS


def test_cancel_queued_job_never_runs(stack, tenant):
    workers = list(range(1, WORKERS + 1))
    for n in workers:
        stack.worker("stop", n)
    try:
        job = tenant.submit("demo", {"events": 1, "duration_ms": 0})
        assert tenant.get_job(job["id"])["status"] == "queued"

        r = tenant.request("DELETE", f"/v1/jobs/{job['id']}")
        body = r.expect_json(200)
        assert body["id"] == job["id"] and body["status"] == "cancelled", (
            f"DELETE of a queued job: {body}")
        assert body["finished_at"], f"a cancelled job has no finished_at: {body}"

        again = tenant.request("DELETE", f"/v1/jobs/{job['id']}").expect_json(200)
        assert again["status"] == "cancelled", f"second DELETE: {again}"
    finally:
        for n in workers:
            stack.worker("start", n)

    # The cancelled job's id may still sit in the queue ahead of this one.
    # Once a job submitted after it has run, the workers have popped it.
    marker = tenant.submit("demo", {"events": 0, "duration_ms": 0})
    tenant.wait_job(marker["id"], ("succeeded",))
    # Give a worker that popped the cancelled job a moment to (wrongly) run it.
    time.sleep(1.0)

    after = tenant.get_job(job["id"])
    assert after["status"] == "cancelled", f"cancelled job changed: {after}"
    assert after["started_at"] is None and after["attempts"] == 0, (
        f"a job cancelled while queued was started: {after}")
    assert after["worker_id"] is None, f"a worker took it: {after}"
    events = tenant.events(job["id"])
    check_frames(events, job["id"])
    types = [e.event for e in events]
    assert types == ["job.queued", "job.cancelled"], (
        f"events of a job cancelled while queued: {types}")


def test_cancel_running_job_stops_within_a_second(tenant):
    job = tenant.submit("long-running", {"duration_ms": 60000,
                                         "progress_interval_ms": 100})
    s = tenant.open_events(job["id"])
    try:
        s.read_until(lambda e: e.event == "job.progress",
                     what="the first job.progress of a running job")
        t0 = time.monotonic()
        r = tenant.request("DELETE", f"/v1/jobs/{job['id']}")
        body = r.expect_json(202)
        assert body["status"] == "cancelling", (
            f"DELETE of a running job answered {body['status']!r}: {body}")
        term = s.read_until(lambda e: e.event in TERMINAL_EVENTS,
                            what="the terminal event after DELETE")
        elapsed = term.t - t0
        assert term.event == "job.cancelled", f"terminal event {term.event}"
        assert elapsed < 1.0, (
            f"job.cancelled arrived {elapsed:.3f} s after DELETE (limit 1 s)")
        s.read_to_end()
    finally:
        s.close()
    check_frames(s.events, job["id"])

    done = tenant.wait_job(job["id"])
    assert done["status"] == "cancelled", done
    assert done["finished_at"], done
    again = tenant.request("DELETE", f"/v1/jobs/{job['id']}").expect_json(200)
    assert again["status"] == "cancelled", f"DELETE of a cancelled job: {again}"


def test_cancel_finished_jobs_is_409(tenant):
    ok = tenant.submit("demo", {"events": 0, "duration_ms": 0})
    bad = tenant.submit("test", {"outcome": "fail",
                                 "error": {"code": "E", "message": "m"}},
                        max_attempts=1)
    tenant.wait_job(ok["id"], ("succeeded",))
    tenant.wait_job(bad["id"], ("failed",))
    for job, status in ((ok, "succeeded"), (bad, "failed")):
        tenant.request("DELETE", f"/v1/jobs/{job['id']}").expect_problem(409)
        assert tenant.get_job(job["id"])["status"] == status, (
            "a refused DELETE changed the job")
