"""Job lifecycle through the real gateway and workers: submit, run, events,
result, failure."""

from agentgate_test.client import check_frames

JOB_FIELDS = ("id", "type", "status", "priority", "payload", "result", "error",
              "attempts", "max_attempts", "timeout_s", "progress", "run_at",
              "created_at", "started_at", "finished_at", "heartbeat_at",
              "worker_id", "last_event_id", "links")


def test_submit_answers_202_with_the_queued_job(tenant):
    payload = {"events": 0, "duration_ms": 0}
    job = tenant.submit("demo", payload, priority=5, max_attempts=2,
                        timeout_s=60)
    for f in JOB_FIELDS:
        assert f in job, f"job JSON lacks {f!r}: {job}"
    assert job["type"] == "demo"
    assert job["status"] == "queued", f"a new job is not queued: {job}"
    assert job["payload"] == payload or all(
        job["payload"].get(k) == v for k, v in payload.items()), job
    assert job["priority"] == 5 and job["max_attempts"] == 2, job
    assert job["timeout_s"] == 60, job
    assert job["attempts"] == 0 and job["result"] is None, job
    assert job["error"] is None and job["finished_at"] is None, job
    assert job["links"] == {"self": f"/v1/jobs/{job['id']}",
                            "events": f"/v1/jobs/{job['id']}/events"}, job
    got = tenant.get_job(job["id"])
    assert got["id"] == job["id"] and got["type"] == "demo"
    assert got["created_at"] == job["created_at"]


def test_demo_job_streams_all_events_then_succeeds(tenant):
    n = 5
    job = tenant.submit("demo", {"events": n, "duration_ms": 500})
    events = tenant.events(job["id"])
    check_frames(events, job["id"])
    types = [e.event for e in events]
    assert types == (["job.queued", "job.started"] + ["job.progress"] * n
                     + ["job.succeeded"]), f"demo event sequence: {types}"
    assert events[-1].id == n + 3

    done = tenant.wait_job(job["id"])
    assert done["status"] == "succeeded", done
    assert done["result"] == {"events": n}, f"demo result: {done['result']}"
    assert done["error"] is None, done
    assert done["attempts"] == 1, done
    assert done["last_event_id"] == n + 3, done
    assert done["started_at"] and done["finished_at"], done
    assert done["started_at"] <= done["finished_at"], done


def test_finished_job_stream_replays_and_ends(tenant):
    job = tenant.submit("demo", {"events": 2, "duration_ms": 0})
    tenant.wait_job(job["id"], ("succeeded",))
    first = tenant.events(job["id"])
    again = tenant.events(job["id"])
    check_frames(first, job["id"])
    assert [e.event for e in first] == ["job.queued", "job.started",
                                        "job.progress", "job.progress",
                                        "job.succeeded"]
    assert [e.data for e in again] == [e.data for e in first], (
        "a replay of a finished job differs from the first one")


def test_failing_test_job_fails_with_its_error(tenant):
    job = tenant.submit("test", {"outcome": "fail",
                                 "error": {"code": "E_IT_BOOM",
                                           "message": "it failed on purpose"}},
                        max_attempts=1)
    events = tenant.events(job["id"])
    check_frames(events, job["id"])
    types = [e.event for e in events]
    assert types[0] == "job.queued" and "job.started" in types, types
    assert types[-1] == "job.failed", f"events of a failing job: {types}"
    data = events[-1].body["data"]
    err = data.get("error", data)
    assert err.get("code") == "E_IT_BOOM", f"job.failed data: {data}"
    assert err.get("message") == "it failed on purpose", f"job.failed data: {data}"

    done = tenant.wait_job(job["id"])
    assert done["status"] == "failed", done
    assert done["error"] == {"code": "E_IT_BOOM",
                             "message": "it failed on purpose"}, done
    assert done["result"] is None, done
    assert done["attempts"] == 1, done
    assert done["finished_at"], done


def test_succeeding_test_job_keeps_its_result(tenant):
    result = {"answer": 42, "list": [1, "two", None], "nested": {"ok": True}}
    job = tenant.submit("test", {"outcome": "succeed", "result": result,
                                 "sleep_ms": 50})
    done = tenant.wait_job(job["id"])
    assert done["status"] == "succeeded", done
    assert done["result"] == result, f"result not kept as given: {done}"
    events = tenant.events(job["id"])
    check_frames(events, job["id"])
    assert events[-1].event == "job.succeeded"
