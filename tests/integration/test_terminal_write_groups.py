"""
A worker writes the terminal transitions of its job threads in groups,
one transaction per group (worker/runtime/terminal_commit.c). Each job in a group
must still get its own outcome, its own full history, and one job whose
write fails must not fail the others of its group.
"""

import glob
import os
import re
import time

import pytest
from concurrent.futures import ThreadPoolExecutor

from agentgate_test.stack import redis_cli


def _worker_logs(stack):
    out = []
    for p in sorted(glob.glob(os.path.join(stack.dir, "logs", "worker-*.log"))):
        with open(p, "rb") as f:
            out.append(f.read().decode("utf-8", "replace"))
    return "".join(out)


def _history(stack, job_id):
    rows = stack.sql("SELECT seq, type FROM job_events WHERE job_id = :'p1' ORDER BY seq",
                     job_id)
    return [int(s) for s, _ in rows], [t for _, t in rows]


def _burst(tenant, n, sleep_ms):
    """n jobs that all finish together: a third fail, the rest succeed
    with a result of their own."""
    jobs = []
    for i in range(n):
        if i % 3 == 2:
            payload = {"sleep_ms": sleep_ms, "outcome": "fail",
                       "error": {"code": f"code_{i}", "message": f"failure {i}"}}
        else:
            payload = {"sleep_ms": sleep_ms, "outcome": "succeed", "result": {"i": i}}
        jobs.append((i, tenant.submit("test", payload)["id"]))
    return jobs


def _committer_totals(stack):
    """(writes, transactions) summed over the committers' stop lines."""
    writes = groups = 0
    for m in re.finditer(r"terminal committer: (\d+) terminal writes in (\d+) transactions",
                         _worker_logs(stack)):
        writes += int(m.group(1))
        groups += int(m.group(2))
    return writes, groups


def test_each_job_of_a_burst_gets_its_own_outcome(stack, tenant, other_tenant):
    # Two tenants in the same groups: each write runs under its own
    # tenant's row-level security.
    jobs = [(tenant, i, j) for i, j in _burst(tenant, 24, 200)]
    jobs += [(other_tenant, i, j) for i, j in _burst(other_tenant, 12, 200)]
    for t, i, job_id in jobs:
        job = t.wait_job(job_id)
        if i % 3 == 2:
            assert job["status"] == "failed", job
            assert job["error"]["code"] == f"code_{i}", job
        else:
            assert job["status"] == "succeeded", job
            assert job["result"] == {"i": i}, job
        seqs, types = _history(stack, job_id)
        assert seqs == list(range(1, len(seqs) + 1)), (job_id, seqs)
        assert types[0] == "job.queued" and "job.started" in types, types
        assert types[-1] == ("job.failed" if i % 3 == 2 else "job.succeeded"), types
        assert types.count(types[-1]) == 1, types


def _cancel_wave(stack, jobs, before_cancel=None):
    """Runs jobs [(tenant, id)] (at most 4: one worker's job threads) on
    worker 1 alone, then cancels them all at once, so their handlers wake
    together and their terminal writes meet at the committer."""
    for t, job_id in jobs:
        t.wait_job(job_id, statuses=("running",))
    if before_cancel:
        before_cancel()
    # The flags all at once, so the supervisor finds them in one round
    # and wakes the handlers together; then the API's own request.
    args = []
    for _, job_id in jobs:
        args += [f"cancel:{job_id}", "1"]
    r = redis_cli("MSET", *args)
    assert r.returncode == 0 and "OK" in r.stdout, r
    with ThreadPoolExecutor(len(jobs)) as ex:
        list(ex.map(lambda tj: tj[0].request("DELETE", f"/v1/jobs/{tj[1]}"), jobs))


def _one_worker(stack):
    stack.worker("stop", 2)


def _restart_workers(stack):
    # The stop writes the committer's totals to the log.
    stack.worker("stop", 1)
    stack.worker("start", 1)
    stack.worker("start", 2)


def _long(t):
    return t.submit("test", {"sleep_ms": 60000, "outcome": "succeed"})["id"]


def test_terminal_writes_finishing_together_share_a_transaction(stack, tenant, other_tenant):
    before = _committer_totals(stack)
    # Whether two of four cancels meet at the committer is up to the
    # scheduler, so a wave where each led alone runs again (the totals
    # are logged when the worker stops); three waves that never share a
    # transaction mean grouping does not happen.
    for _ in range(3):
        _one_worker(stack)
        try:
            jobs = [(tenant, _long(tenant)), (other_tenant, _long(other_tenant)),
                    (tenant, _long(tenant)), (other_tenant, _long(other_tenant))]
            _cancel_wave(stack, jobs)
            for t, job_id in jobs:
                job = t.wait_job(job_id)
                assert job["status"] == "cancelled", job
                seqs, types = _history(stack, job_id)
                assert seqs == list(range(1, len(seqs) + 1)), (job_id, seqs)
                assert types[-1] == "job.cancelled" and types.count("job.cancelled") == 1, types
        finally:
            _restart_workers(stack)
        writes, groups = _committer_totals(stack)
        assert writes - before[0] >= len(jobs), (before, writes, groups)
        if writes - before[0] > groups - before[1]:
            break
    else:
        pytest.fail(f"no two terminal writes shared a transaction: {before} -> {(writes, groups)}")


def test_one_failing_write_does_not_fail_its_group(stack, tenant):
    """A job whose terminal event id is already taken fails its write (a
    unique violation), which rolls its whole group back; the others of the
    group are written again one by one and end as they should."""
    fallbacks = _worker_logs(stack).count("writing them one by one")
    _one_worker(stack)
    try:
        # The first of the four to reach the committer may lead alone:
        # then the bad write had no group, and the wave runs again.
        for _ in range(5):
            bad = _long(tenant)
            good = [_long(tenant) for _ in range(3)]

            def squat():
                # bad's events so far: queued (1), started (2, perhaps
                # still only buffered); its terminal event would be 3.
                stack.sql("INSERT INTO job_events (job_id, tenant_id, seq, type, body) "
                          "VALUES (:'p1', :'p2', 3, 'test.squatter', '{}')",
                          bad, tenant.tenant_id)

            _cancel_wave(stack, [(tenant, bad)] + [(tenant, j) for j in good], squat)
            for job_id in good:
                job = tenant.wait_job(job_id)
                assert job["status"] == "cancelled", job
                seqs, types = _history(stack, job_id)
                assert seqs == list(range(1, len(seqs) + 1)), (job_id, seqs)
                assert types[-1] == "job.cancelled" and types.count("job.cancelled") == 1
            # The bad job's outcome was refused; it stays running until its
            # lease runs out.
            time.sleep(0.3)
            rows = stack.sql("SELECT status FROM jobs WHERE id = :'p1'", bad)
            assert rows[0][0] == "running", rows
            seqs, types = _history(stack, bad)
            assert "job.cancelled" not in types, types
            if _worker_logs(stack).count("writing them one by one") > fallbacks:
                break
        else:
            # Whether four cancels reach the committer together is up to
            # the scheduler; each wave's outcome was checked above. The
            # fallback itself is covered deterministically by
            # tests/unit/test_terminal_commit.c.
            pytest.skip("the failing write never shared a group in five tries "
                        "(outcomes checked; fallback covered by the unit test)")
    finally:
        # Without the squatter the bad jobs end once their lease runs out.
        stack.sql("DELETE FROM job_events WHERE type = 'test.squatter'")
        _restart_workers(stack)
