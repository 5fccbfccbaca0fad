"""A cancellation reaches the worker by the gateway's cancel:requests
message, not only by the supervisor's poll.

The stack's workers are stopped and one worker of the test's own runs with
a cancel poll of 20 s (which also spaces its heartbeats, the other way a
cancel is seen) and a lease long enough not to matter, so a running job
cancelled within a few seconds can only have been stopped by the message.
"""
import os
import time

import pytest

from agentgate_test.client import TERMINAL_EVENTS, check_frames
from agentgate_test.paths import bin_path
from agentgate_test.services import own_process, stack_env
from agentgate_test.stack import WORKERS

SLOW_POLL_MS = 20000


@pytest.fixture
def slow_poll_worker(stack):
    """The only worker running: the stack's settings, a 20 s cancel poll."""
    for i in range(1, WORKERS + 1):
        stack.worker("stop", i)
    env = stack_env(stack)
    env.update({
        "AGENTGATE_WORKER_ID": "it-slow-poll",
        "AGENTGATE_CANCEL_POLL_MS": str(SLOW_POLL_MS),
        "AGENTGATE_HEARTBEAT_MS": "10000",
        "AGENTGATE_LEASE_MS": "60000",
    })
    try:
        with own_process([bin_path("agentgate-worker")], env,
                         os.path.join(stack.dir, "logs", "worker-slow-poll.log")) as proc:
            yield proc
    finally:
        for i in range(1, WORKERS + 1):
            stack.worker("start", i)


def test_cancel_is_pushed_to_the_running_jobs_worker(tenant, slow_poll_worker):
    job = tenant.submit("long-running", {"duration_ms": 60000,
                                         "progress_interval_ms": 100})
    s = tenant.open_events(job["id"])
    try:
        s.read_until(lambda e: e.event == "job.progress",
                     what="the first job.progress of a running job")
        assert slow_poll_worker.poll() is None, "the test's worker exited"
        t0 = time.monotonic()
        tenant.request("DELETE", f"/v1/jobs/{job['id']}").expect_json(202)
        term = s.read_until(lambda e: e.event in TERMINAL_EVENTS,
                            what="the terminal event after DELETE")
        elapsed = term.t - t0
        assert term.event == "job.cancelled", f"terminal event {term.event}"
        # A poll would take up to 20 s; the message takes milliseconds.
        # The margin is for a loaded machine, not a speed claim.
        assert elapsed < 5.0, (
            f"job.cancelled arrived {elapsed:.3f} s after DELETE with a "
            f"{SLOW_POLL_MS} ms poll: the cancel message did not wake the worker")
        s.read_to_end()
    finally:
        s.close()
    check_frames(s.events, job["id"])
    done = tenant.wait_job(job["id"])
    assert done["status"] == "cancelled", done
    assert done["worker_id"] == "it-slow-poll", f"run by another worker: {done}"
