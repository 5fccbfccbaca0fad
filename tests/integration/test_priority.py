"""
Priority orders work among one tenant's queued jobs of a type: a job's
priority (-1000..1000) puts it in one of five bands, urgent (100..1000),
high (1..99), normal (0), low (-99..-1) and bulk (-1000..-100); a worker
takes the oldest job of the highest band that has one, except that every
Nth job a tenant takes of a type (AGENTGATE_PRIORITY_FAIR_EVERY) comes from
its lowest band that has one, so a low band is never starved for ever.

Each test stops the stack's workers, queues its jobs, and runs them on one
worker of its own with one job thread, so the order the jobs start in is
the order the queue gave them out. GET /v1/queues shows the waiting jobs per
band, and the reconciliation of a lost job and the hand-back of a job
interrupted by a shutdown put it back in its own band (Redis's lists are
read to see which).
"""
import contextlib
import datetime
import os
import uuid

from agentgate_test.paths import bin_path
from agentgate_test.services import own_process, stack_env
from agentgate_test.stack import redis
from agentgate_test.waiting import TIMEOUT, wait_for

BANDS = ("urgent", "high", "normal", "low", "bulk")
# A priority in each band, highest band first.
PRIORITY = {"urgent": 500, "high": 10, "normal": 0, "low": -10, "bulk": -500}


def next_month():
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=30)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def redis_cli(*args):
    return redis(*args).splitlines()


def band_list(tenant, band, type_="test"):
    key = f"jobs:queue:{type_}:{tenant.tenant_id}"
    return key if band == "normal" else f"{key}:{band}"


@contextlib.contextmanager
def one_worker(stack, queues="test", fair_every=None):
    """A worker of the test's own with one job thread on queues."""
    worker_id = "it-prio-" + uuid.uuid4().hex[:8]
    env = stack_env(stack)
    env.update({"AGENTGATE_WORKER_ID": worker_id,
                "AGENTGATE_WORKER_QUEUES": queues,
                "AGENTGATE_WORKER_CONCURRENCY": "1"})
    if fair_every is not None:
        env["AGENTGATE_PRIORITY_FAIR_EVERY"] = str(fair_every)
    with own_process([bin_path("agentgate-worker")], env,
                     os.path.join(stack.dir, "logs", f"worker-{worker_id}.log")) as proc:
        yield proc


def start_order(stack, ids):
    """ids in the order their jobs started, once all have finished."""
    def done():
        rows = stack.sql("SELECT count(*) FROM jobs WHERE id = ANY(:'p1'::uuid[])"
                         " AND status = 'succeeded'", "{" + ",".join(ids) + "}")
        return int(rows[0][0]) == len(ids)
    wait_for(done, timeout=2 * TIMEOUT, what=f"{len(ids)} jobs succeeded")
    rows = stack.sql("SELECT id FROM jobs WHERE id = ANY(:'p1'::uuid[])"
                     " ORDER BY started_at, id", "{" + ",".join(ids) + "}")
    return [r[0] for r in rows]


def queue_item(tenant, type_="test"):
    body = tenant.request("GET", "/v1/queues").expect_json(200)
    return next(i for i in body["items"] if i["type"] == type_)


def test_higher_bands_are_taken_first_and_fifo_within_a_band(stack, tenant):
    payload = {"outcome": "succeed"}
    with stack.workers_stopped():
        # Lowest first, two of each band: arrival order is the reverse of
        # the order they should run in.
        jobs = {b: [] for b in BANDS}
        for band in reversed(BANDS):
            for _ in range(2):
                job = tenant.submit("test", payload, priority=PRIORITY[band])
                assert job["priority"] == PRIORITY[band], job
                jobs[band].append(job["id"])
        item = queue_item(tenant)
        assert item["queued"] == 10, item
        assert item["bands"] == {b: 2 for b in BANDS}, item
        for band in BANDS:
            assert redis_cli("LRANGE", band_list(tenant, band), 0, -1) == \
                list(reversed(jobs[band])), band
        with one_worker(stack, fair_every=0):
            order = start_order(stack, [i for b in BANDS for i in jobs[b]])
    assert order == [i for b in BANDS for i in jobs[b]], (
        "jobs did not start highest band first, oldest first within a band")
    item = queue_item(tenant)
    assert item["queued"] == 0 and item["bands"] == {b: 0 for b in BANDS}, item
    # A tenant whose lists are empty leaves the turns count too.
    assert redis_cli("HEXISTS", "jobs:turns:test", tenant.tenant_id) == ["0"]


def test_every_nth_job_comes_from_the_lowest_band(stack, tenant):
    """With N = 4 the low jobs, queued first, are not starved by a larger
    number of high ones queued after them: every fourth job is a low one."""
    payload = {"outcome": "succeed"}
    with stack.workers_stopped():
        low = [tenant.submit("test", payload, priority=-5)["id"] for _ in range(4)]
        high = [tenant.submit("test", payload, priority=5)["id"] for _ in range(12)]
        with one_worker(stack, fair_every=4):
            order = start_order(stack, low + high)
    got = "".join("L" if i in low else "H" for i in order)
    assert got == "HHHL" * 4, got
    # Each band still in its own order.
    assert [i for i in order if i in low] == low
    assert [i for i in order if i in high] == high


def test_strict_bands_without_the_rule_starve_the_low_band(stack, tenant):
    """The rule is what lets low jobs through: with it off (0) every high
    job goes first."""
    payload = {"outcome": "succeed"}
    with stack.workers_stopped():
        low = [tenant.submit("test", payload, priority=-5)["id"] for _ in range(2)]
        high = [tenant.submit("test", payload, priority=5)["id"] for _ in range(8)]
        with one_worker(stack, fair_every=0):
            order = start_order(stack, low + high)
    assert order == high + low


def test_a_delayed_job_waits_with_its_band(stack, tenant):
    job = tenant.submit("test", {"outcome": "succeed"}, priority=50,
                        run_at=next_month())
    try:
        member = f"high/{tenant.tenant_id}:{job['id']}"
        assert redis_cli("ZSCORE", "jobs:delayed:test", member) != [""], member
        assert queue_item(tenant)["delayed"] == 1
    finally:
        tenant.request("DELETE", f"/v1/jobs/{job['id']}").expect(200, 202)


def test_reconciliation_puts_a_lost_job_back_in_its_band(stack, tenant):
    with stack.workers_stopped():
        job = tenant.submit("test", {"outcome": "succeed"}, priority=-50)
        key = band_list(tenant, "low")
        assert redis_cli("LREM", key, 0, job["id"]) == ["1"]
        # A worker that takes no "test" jobs still reconciles every type.
        with one_worker(stack, queues="demo"):
            wait_for(lambda: job["id"] in redis_cli("LRANGE", key, 0, -1),
                     what="the lost job back in its tenant's low list")
        assert job["id"] not in redis_cli("LRANGE", band_list(tenant, "normal"), 0, -1)
    assert tenant.wait_job(job["id"])["status"] == "succeeded"


def test_a_job_handed_back_at_shutdown_keeps_its_band(stack, tenant):
    with stack.workers_stopped():
        job = tenant.submit("test", {"outcome": "succeed", "sleep_ms": 600000},
                            priority=200)
        with one_worker(stack):
            tenant.wait_job(job["id"], statuses=("running",))
        # The worker's SIGTERM (leaving the block) hands the job back.
        queued = tenant.get_job(job["id"])
        assert queued["status"] == "queued" and queued["attempts"] == 1, queued
        assert redis_cli("LRANGE", band_list(tenant, "urgent"), 0, -1) == [job["id"]]
        tenant.request("DELETE", f"/v1/jobs/{job['id']}").expect(200, 202)
    assert tenant.wait_job(job["id"])["status"] == "cancelled"


def test_queues_bands_are_the_callers_own(stack, tenant, other_tenant):
    job = other_tenant.submit("test", {"outcome": "succeed"}, priority=300,
                              run_at=next_month())
    try:
        item = queue_item(tenant)
        assert set(item["bands"]) == set(BANDS)
        assert item["bands"]["urgent"] == 0 and item["delayed"] == 0, item
    finally:
        other_tenant.request("DELETE", f"/v1/jobs/{job['id']}").expect(200, 202)
