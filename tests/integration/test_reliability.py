"""
Nothing lost: retries with backoff, the dead-letter list, delayed jobs
(run_at), the lease reaper, a restarted worker's orphans, fencing of a
worker that lost its job, and reconciliation of Redis with PostgreSQL.

The session stack runs with a 3 s lease, a 500 ms reaper and a 1 s
reconciler (agentgate_test.stack.SESSION_ENV), so each of these takes
seconds.
"""
import datetime
import os
import signal
import time

import pytest

from agentgate_test.client import TERMINAL_EVENTS, check_frames
from agentgate_test.stack import WORKERS, redis
from agentgate_test.waiting import wait_for


def redis_cli(*args):
    return redis(*args).splitlines()


def types_of(events):
    return [e.event for e in events]


def worker_number(job):
    wid = job.get("worker_id") or ""
    assert wid.startswith("local-"), f"unexpected worker id {wid!r}"
    return int(wid.split("-", 1)[1])


def worker_pid(stack, n):
    with open(os.path.join(stack.dir, "pids", f"worker-{n}.pid")) as f:
        return int(f.read().strip())


def parse_ts(s):
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc)


# --------------------------------------------------------------------------
# Retries
# --------------------------------------------------------------------------

def test_retryable_failure_is_retried_with_backoff_then_succeeds(tenant):
    job = tenant.submit("test", {"outcome": "succeed", "fail_attempts": 2},
                        max_attempts=3)
    done = tenant.wait_job(job["id"])
    assert done["status"] == "succeeded", done
    assert done["attempts"] == 3, done
    assert done["result"] == {"attempt": 3}, "result is not the last attempt's"

    events = tenant.events(job["id"])
    check_frames(events, job["id"])
    assert types_of(events) == [
        "job.queued",
        "job.started", "job.retrying",
        "job.started", "job.retrying",
        "job.started", "job.succeeded"], types_of(events)
    retries = [e.body["data"] for e in events if e.event == "job.retrying"]
    assert [r["attempt"] for r in retries] == [1, 2]
    for r in retries:
        assert r["reason"] == "retryable failure"
        assert r["error"]["code"] == "test_transient"
        assert r["delay_ms"] > 0
    # Backoff doubles (with jitter of at most half): the second wait is at
    # least the first schedule's full length.
    starts = [parse_ts(e.body["ts"]) for e in events if e.event == "job.started"]
    fails = [parse_ts(e.body["ts"]) for e in events if e.event == "job.retrying"]
    for f, s, r in zip(fails, starts[1:], retries):
        waited_ms = (s - f).total_seconds() * 1000
        assert waited_ms >= r["delay_ms"] - 250, (
            f"attempt started {waited_ms:.0f} ms after a {r['delay_ms']} ms backoff")


def test_exhausted_retries_fail_and_are_dead_lettered(tenant):
    job = tenant.submit("test", {"outcome": "succeed", "fail_attempts": 10},
                        max_attempts=2)
    done = tenant.wait_job(job["id"])
    assert done["status"] == "failed", done
    assert done["attempts"] == 2
    assert done["error"]["code"] == "test_transient"
    assert "gave up after 2 attempts" in done["error"]["message"], done["error"]

    listed = tenant.list_jobs(status="failed").expect_json(200)
    assert job["id"] in [j["id"] for j in listed["items"]]
    assert job["id"] in redis_cli("LRANGE", "jobs:dead", 0, -1)
    events = tenant.events(job["id"])
    check_frames(events, job["id"])
    assert types_of(events).count("job.retrying") == 1


def test_non_retryable_failure_is_not_retried(tenant):
    job = tenant.submit("test", {"outcome": "fail"}, max_attempts=5)
    done = tenant.wait_job(job["id"])
    assert done["status"] == "failed" and done["attempts"] == 1, done
    assert "job.retrying" not in types_of(tenant.events(job["id"]))


def test_retryable_outcome_fail_retries_until_max_attempts(tenant):
    job = tenant.submit("test", {"outcome": "fail", "retryable": True,
                                 "error": {"code": "upstream_down"}},
                        max_attempts=3)
    done = tenant.wait_job(job["id"])
    assert done["status"] == "failed" and done["attempts"] == 3, done
    assert done["error"]["code"] == "upstream_down"


def test_cancel_while_waiting_for_a_retry(tenant):
    job = tenant.submit("test", {"outcome": "succeed", "fail_attempts": 1},
                        max_attempts=3)
    # Wait until it is queued again after its first failure.
    wait_for(lambda: tenant.get_job(job["id"])["attempts"] == 1
             and tenant.get_job(job["id"])["status"] == "queued",
             what="first retry")
    r = tenant.request("DELETE", f"/v1/jobs/{job['id']}")
    if r.status == 200:
        assert tenant.wait_job(job["id"])["status"] == "cancelled"
    else:
        # The retry was already claimed: cancelling a running job.
        assert r.status in (202, 409), r.describe()


# --------------------------------------------------------------------------
# Delayed jobs
# --------------------------------------------------------------------------

def test_run_at_delays_the_job(tenant):
    at = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=2)
    run_at = at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    job = tenant.submit("test", {"outcome": "succeed"}, run_at=run_at)
    assert job["run_at"] is not None
    assert abs((parse_ts(job["run_at"]) - at).total_seconds()) < 0.01, job["run_at"]
    assert f"{tenant.tenant_id}:{job['id']}" in redis_cli("ZRANGE", "jobs:delayed:test", 0, -1)
    time.sleep(1.0)
    assert tenant.get_job(job["id"])["status"] == "queued"
    done = tenant.wait_job(job["id"])
    assert done["status"] == "succeeded"
    started = [e for e in tenant.events(job["id"]) if e.event == "job.started"][0]
    assert parse_ts(started.body["ts"]) >= at - datetime.timedelta(milliseconds=50), (
        f"started at {started.body['ts']}, before run_at {run_at}")


def test_run_at_in_the_past_runs_at_once(tenant):
    job = tenant.submit("test", {"outcome": "succeed"}, run_at="2001-01-01T00:00:00Z")
    assert tenant.wait_job(job["id"])["status"] == "succeeded"


@pytest.mark.parametrize("bad", ["tomorrow", "2026-13-01T00:00:00Z",
                                 "2026-02-29T00:00:00Z", "2026-11-21 10:00:00Z",
                                 "2026-11-21T10:00:00", 1700000000,
                                 "2999-01-01T00:00:00Z"])
def test_bad_run_at_is_refused(tenant, bad):
    r = tenant.request("POST", "/v1/jobs", body={"type": "test", "payload": {
        "outcome": "succeed"}, "run_at": bad})
    p = r.expect_problem(422)
    assert [e["pointer"] for e in p["errors"]] == ["/run_at"], p


# --------------------------------------------------------------------------
# Leases and the reaper
# --------------------------------------------------------------------------

def running_on_some_worker(tenant, job_id):
    return tenant.wait_job(job_id, statuses=("running",))


def test_killed_worker_job_is_reaped_and_runs_elsewhere(stack, tenant):
    job = tenant.submit("long-running", {"duration_ms": 6000,
                                         "progress_interval_ms": 200},
                        max_attempts=3)
    running = running_on_some_worker(tenant, job["id"])
    victim = worker_number(running)
    try:
        stack.worker("kill", victim)
        killed_at = time.monotonic()
        again = wait_for(lambda: (lambda j: j if j["attempts"] == 2
                                  and j["status"] == "running" else None)(
                                      tenant.get_job(job["id"])),
                         what="second attempt running")
        took = time.monotonic() - killed_at
        assert again["worker_id"] != running["worker_id"]
        print(f"\nSIGKILL to running again elsewhere: {took * 1000:.0f} ms")
    finally:
        stack.worker("start", victim)
    done = tenant.wait_job(job["id"])
    assert done["status"] == "succeeded" and done["attempts"] == 2, done
    events = tenant.events(job["id"])
    check_frames(events, job["id"])
    retry = [e.body["data"] for e in events if e.event == "job.retrying"]
    assert len(retry) == 1 and retry[0]["reason"] == "lease expired", retry
    assert retry[0]["error"]["code"] == "lease_expired"


def test_restarted_worker_hands_back_its_orphans_at_once(stack, tenant):
    job = tenant.submit("long-running", {"duration_ms": 4000,
                                         "progress_interval_ms": 200},
                        max_attempts=3)
    running = running_on_some_worker(tenant, job["id"])
    victim = worker_number(running)
    stack.worker("kill", victim)
    stack.worker("start", victim)
    done = tenant.wait_job(job["id"])
    assert done["status"] == "succeeded" and done["attempts"] == 2, done
    events = tenant.events(job["id"])
    check_frames(events, job["id"])
    retry = [e.body["data"] for e in events if e.event == "job.retrying"]
    # Either the restarted worker found it first, or the reaper did.
    assert len(retry) == 1 and retry[0]["reason"] in (
        "worker restarted", "lease expired"), retry


def test_last_attempt_lost_with_its_worker_fails_the_job(stack, tenant):
    job = tenant.submit("long-running", {"duration_ms": 8000,
                                         "progress_interval_ms": 200},
                        max_attempts=1)
    running = running_on_some_worker(tenant, job["id"])
    victim = worker_number(running)
    try:
        stack.worker("kill", victim)
        done = tenant.wait_job(job["id"])
    finally:
        stack.worker("start", victim)
    assert done["status"] == "failed" and done["attempts"] == 1, done
    assert done["error"]["code"] == "lease_expired"
    assert "no attempts left" in done["error"]["message"]
    assert job["id"] in redis_cli("LRANGE", "jobs:dead", 0, -1)


def test_cancel_requested_before_the_worker_died_ends_cancelled(stack, tenant):
    job = tenant.submit("long-running", {"duration_ms": 20000,
                                         "progress_interval_ms": 200},
                        max_attempts=3)
    running = running_on_some_worker(tenant, job["id"])
    victim = worker_number(running)
    pid = worker_pid(stack, victim)
    os.kill(pid, signal.SIGSTOP)      # it cannot see the cancel
    try:
        r = tenant.request("DELETE", f"/v1/jobs/{job['id']}")
        assert r.status == 202, r.describe()
        os.kill(pid, signal.SIGKILL)
        done = tenant.wait_job(job["id"])
    finally:
        stack.worker("kill", victim)
        stack.worker("start", victim)
    assert done["status"] == "cancelled" and done["attempts"] == 1, done
    check_frames(tenant.events(job["id"]), job["id"])


def test_paused_worker_is_fenced_out_when_it_resumes(stack, tenant):
    """A worker paused past its lease loses the job to another attempt; when
    it resumes and finishes, its terminal write is refused."""
    job = tenant.submit("test", {"outcome": "succeed", "sleep_ms": 1500},
                        max_attempts=3)
    running = running_on_some_worker(tenant, job["id"])
    victim = worker_number(running)
    pid = worker_pid(stack, victim)
    os.kill(pid, signal.SIGSTOP)
    try:
        done = tenant.wait_job(job["id"])
        assert done["status"] == "succeeded" and done["attempts"] == 2, done
    finally:
        os.kill(pid, signal.SIGCONT)
    time.sleep(2.5)     # the resumed worker finishes attempt 1 by now
    job_now = tenant.get_job(job["id"])
    assert job_now["result"] == {"attempt": 2}, job_now
    assert job_now["finished_at"] == done["finished_at"]
    events = tenant.events(job["id"])
    check_frames(events, job["id"])
    assert sum(1 for e in events if e.event in TERMINAL_EVENTS) == 1
    rows = stack.sql("SELECT count(*) FROM job_events WHERE job_id = :'p1' "
                     "AND type IN ('job.succeeded','job.failed','job.cancelled')",
                     job["id"])
    assert rows == [["1"]]


# --------------------------------------------------------------------------
# Reconciliation
# --------------------------------------------------------------------------

def stop_all_workers(stack):
    for n in range(1, WORKERS + 1):
        stack.worker("stop", n)


def start_all_workers(stack):
    for n in range(1, WORKERS + 1):
        stack.worker("start", n)


def test_queued_job_lost_from_redis_is_enqueued_again(stack, tenant):
    stop_all_workers(stack)
    try:
        job = tenant.submit("test", {"outcome": "succeed"})
        assert redis_cli("LREM", f"jobs:queue:test:{tenant.tenant_id}", 0, job["id"]) == ["1"]
        start_all_workers(stack)
        done = tenant.wait_job(job["id"])
    finally:
        start_all_workers(stack)
    assert done["status"] == "succeeded" and done["attempts"] == 1, done


def test_flushed_redis_is_rebuilt_from_postgresql(stack, tenant):
    stop_all_workers(stack)
    try:
        now_job = tenant.submit("test", {"outcome": "succeed"})
        at = (datetime.datetime.now(datetime.timezone.utc)
              + datetime.timedelta(seconds=4)).replace(microsecond=0)
        later = tenant.submit("test", {"outcome": "succeed"},
                              run_at=at.strftime("%Y-%m-%dT%H:%M:%SZ"))
        redis_cli("FLUSHALL")
        start_all_workers(stack)
        done = tenant.wait_job(now_job["id"])
        assert done["status"] == "succeeded", done
        # The delayed one is back in its delayed set, not run early.
        member = f"{tenant.tenant_id}:{later['id']}"
        wait_for(lambda: member in redis_cli("ZRANGE", "jobs:delayed:test", 0, -1)
                 or tenant.get_job(later["id"])["status"] != "queued",
                 what="delayed job restored")
        late = tenant.wait_job(later["id"])
    finally:
        start_all_workers(stack)
    assert late["status"] == "succeeded"
    started = [e for e in tenant.events(later["id"]) if e.event == "job.started"][0]
    assert parse_ts(started.body["ts"]) >= at - datetime.timedelta(milliseconds=50)
    # The event stream is whole though Redis lost the rings.
    check_frames(tenant.events(now_job["id"]), now_job["id"])
