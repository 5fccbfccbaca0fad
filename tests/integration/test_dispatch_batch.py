"""Batch dispatch: a worker's idle job threads get their jobs from one
take and one claim statement (agentgate_claim_jobs), counted by the
worker's agentgate_worker_claim_batch_size histogram. Jobs queued before
the worker starts are claimed in fewer statements than jobs; a job alone
still runs; an id whose cancellation was requested is skipped while the
rest of its batch runs; a capped tenant's ids are delayed, not lost.

The session stack's workers are stopped for each test, so the test's own
worker (metrics on AGENTGATE_TEST_DISPATCH_METRICS_PORT + 1, default
20231) takes every job.
"""
import time

import pytest

from agentgate_test.metrics_worker import metrics_worker, scrape, total
from agentgate_test.ports import pick_port
from agentgate_test.waiting import TIMEOUT

BASE_PORT = pick_port("AGENTGATE_TEST_DISPATCH_METRICS_PORT", 20230)
THREADS = 4
BATCH = "agentgate_worker_claim_batch_size"


@pytest.fixture
def no_stack_workers(stack):
    with stack.workers_stopped():
        yield


def _worker(stack, name):
    return metrics_worker(stack, name, BASE_PORT, 1,
                          {"AGENTGATE_WORKER_QUEUES": "test",
                           "AGENTGATE_WORKER_CONCURRENCY": str(THREADS)})


def _statuses(stack, ids):
    rows = stack.sql("SELECT id, status, attempts FROM jobs WHERE id = ANY(:'p1'::uuid[])",
                     "{" + ",".join(ids) + "}")
    return {r[0]: (r[1], int(r[2])) for r in rows}


def _wait_statuses(stack, ids, want, timeout=TIMEOUT):
    deadline = time.monotonic() + timeout
    while True:
        got = _statuses(stack, ids)
        if all(got.get(i, ("?",))[0] == want[i] for i in ids):
            return got
        assert time.monotonic() < deadline, f"not {want}: {got}"
        time.sleep(0.05)


def test_queued_jobs_are_claimed_in_batches(stack, tenant, no_stack_workers):
    jobs = [tenant.submit("test", {"outcome": "succeed"}) for _ in range(12)]
    ids = [j["id"] for j in jobs]
    with _worker(stack, "batch") as (_, port):
        _wait_statuses(stack, ids, {i: "succeeded" for i in ids})
        m = scrape(port)
    claims = total(m, BATCH + "_count")
    claimed = total(m, BATCH + "_sum")
    assert claimed == len(ids), (claims, claimed)
    # Four idle threads and twelve queued jobs: the first take alone is four.
    assert 1 <= claims < len(ids), f"{claims} claim statements for {len(ids)} jobs"
    assert total(m, BATCH + "_bucket", le="1") < claims


def test_a_job_alone_still_runs(stack, tenant, no_stack_workers):
    with _worker(stack, "alone") as (_, port):
        for _ in range(3):
            job = tenant.submit("test", {"outcome": "succeed"})
            assert tenant.wait_job(job["id"])["status"] == "succeeded"
        m = scrape(port)
    # Each arrived on empty queues: taken alone, never waited for company.
    assert total(m, BATCH + "_sum") == 3


def test_a_cancelled_id_in_a_batch_is_skipped(stack, tenant, no_stack_workers):
    jobs = [tenant.submit("test", {"outcome": "succeed"}) for _ in range(THREADS)]
    ids = [j["id"] for j in jobs]
    # Its cancellation requested in PostgreSQL, its id still in Redis.
    stack.sql("UPDATE jobs SET cancel_requested_at = now() WHERE id = :'p1'", ids[1])
    with _worker(stack, "cancelled") as (_, port):
        rest = [i for i in ids if i != ids[1]]
        got = _wait_statuses(stack, rest, {i: "succeeded" for i in rest})
        m = scrape(port)
    assert all(got[i][1] == 1 for i in rest), got
    assert _statuses(stack, [ids[1]])[ids[1]][0] in ("queued", "cancelled")
    assert _statuses(stack, [ids[1]])[ids[1]][1] == 0
    assert total(m, BATCH + "_sum") >= len(ids)


def test_capped_ids_of_a_batch_are_delayed_not_lost(stack, tenant, no_stack_workers):
    stack.sql("INSERT INTO tenants (id, name, settings)"
              " VALUES (:'p1', :'p1', '{\"max_running\": 1}')"
              " ON CONFLICT (id) DO UPDATE SET settings = excluded.settings",
              tenant.tenant_id)
    try:
        jobs = [tenant.submit("test", {"outcome": "succeed", "sleep_ms": 200})
                for _ in range(THREADS)]
        ids = [j["id"] for j in jobs]
        with _worker(stack, "capped") as (_, port):
            got = _wait_statuses(stack, ids, {i: "succeeded" for i in ids},
                                 timeout=4 * TIMEOUT)
            m = scrape(port)
        # The first take claimed one and held back the rest of its batch.
        assert total(m, BATCH + "_sum") > len(ids), "no id was held back"
        # Held back is not an attempt.
        assert all(a == 1 for _, a in got.values()), got
    finally:
        stack.sql("UPDATE tenants SET settings = '{}' WHERE id = :'p1'", tenant.tenant_id)
