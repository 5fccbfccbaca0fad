"""
The worker's statements are prepared once per PostgreSQL connection
(worker/runtime/job_store.c). A lost connection takes its prepared statements with
it: the next connection must prepare them again, never name one that is
not there. These tests cut every worker connection mid-stream and check
that jobs keep finishing with their whole history and that no worker ever
sent a statement name the server did not know.
"""

import glob
import os
import time

from agentgate_test.waiting import TIMEOUT


def _worker_log_sizes(stack):
    return {p: os.path.getsize(p)
            for p in glob.glob(os.path.join(stack.dir, "logs", "worker-*.log"))}


def _worker_log_since(stack, sizes):
    out = []
    for p in glob.glob(os.path.join(stack.dir, "logs", "worker-*.log")):
        with open(p, "rb") as f:
            f.seek(sizes.get(p, 0))
            out.append(f.read().decode("utf-8", "replace"))
    return "".join(out)


def _terminate_worker_connections(stack):
    rows = stack.sql(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE application_name = 'agentgate-worker' AND pid <> pg_backend_pid()")
    return int(rows[0][0])


def _run_jobs(tenant, n):
    ids = [tenant.submit("test", {"outcome": "succeed"})["id"] for _ in range(n)]
    for job_id in ids:
        job = tenant.wait_job(job_id)
        assert job["status"] == "succeeded", job
    return ids


def _check_history(stack, job_id):
    rows = stack.sql("SELECT seq, type FROM job_events WHERE job_id = :'p1' ORDER BY seq",
                     job_id)
    types = [t for _, t in rows]
    assert [int(s) for s, _ in rows] == list(range(1, len(rows) + 1)), rows
    assert types[0] == "job.queued" and types[-1] == "job.succeeded", types
    assert "job.started" in types, types


def test_jobs_finish_after_worker_connections_are_cut(stack, tenant):
    sizes = _worker_log_sizes(stack)
    # Every statement the job path uses has run (and been prepared) on
    # the workers' connections before they are cut.
    _run_jobs(tenant, 12)
    assert _terminate_worker_connections(stack) > 0

    # The first claims may find their connection gone; the worker
    # reconnects, prepares afresh and every job still ends once.
    ids = _run_jobs(tenant, 24)
    for job_id in ids:
        _check_history(stack, job_id)

    # And again, so a connection made after a cut is itself cut.
    assert _terminate_worker_connections(stack) > 0
    for job_id in _run_jobs(tenant, 12):
        _check_history(stack, job_id)

    log = _worker_log_since(stack, sizes)
    assert "does not exist" not in log, (
        "a worker named a prepared statement its connection did not have:\n"
        + "\n".join(l for l in log.splitlines() if "does not exist" in l)[:2000])


def test_cut_during_a_burst_loses_no_job(stack, tenant):
    ids = [tenant.submit("test", {"outcome": "succeed"})["id"] for _ in range(60)]
    time.sleep(0.05)
    _terminate_worker_connections(stack)
    deadline = time.time() + TIMEOUT * 3
    for job_id in ids:
        job = tenant.wait_job(job_id, timeout=max(1.0, deadline - time.time()))
        assert job["status"] == "succeeded", job
        _check_history(stack, job_id)
