"""The per-tenant running cap: a tenant whose settings.max_running is N
never has more than N jobs running across all workers (counted in
PostgreSQL under a per-tenant lock), a held-back job waits and runs later
without spending an attempt, another tenant's jobs run meanwhile, and a
killed worker's slots come back once the lease reaper releases its jobs.
The operator's cap (AGENTGATE_TENANT_MAX_RUNNING) is a ceiling: a tenant's
own max_running can lower it, never lift it.
"""

import os
import time

import pytest

from agentgate_test.paths import bin_path
from agentgate_test.services import own_process, stack_env
from agentgate_test.stack import WORKERS
from agentgate_test.waiting import TIMEOUT

CAP = 2


def _set_cap(stack, tenant_id, cap):
    stack.sql("INSERT INTO tenants (id, name, settings)"
              " VALUES (:'p1', :'p1', jsonb_build_object('max_running', :'p2'::int))"
              " ON CONFLICT (id) DO UPDATE SET settings = excluded.settings",
              tenant_id, cap)


def _running(stack, tenant_id):
    """(count, worker ids) of tenant_id's running jobs, from PostgreSQL."""
    rows = stack.sql("SELECT coalesce(worker_id, '') FROM jobs"
                     " WHERE tenant_id = :'p1' AND status = 'running'", tenant_id)
    return len(rows), sorted(r[0] for r in rows)


def _sample_until(stack, tenant_id, pred, timeout, what):
    """Samples the running count every 50 ms until pred(count, workers);
    returns the highest count seen. Fails past timeout."""
    peak = 0
    deadline = time.monotonic() + timeout
    while True:
        n, workers = _running(stack, tenant_id)
        peak = max(peak, n)
        assert n <= CAP, f"{n} jobs of a tenant capped at {CAP} running: {workers}"
        if pred(n, workers):
            return peak
        assert time.monotonic() < deadline, f"no {what} within {timeout} s ({n}, {workers})"
        time.sleep(0.05)


def test_cap_holds_across_workers_and_others_still_run(stack, tenant, other_tenant):
    a, b = tenant, other_tenant
    _set_cap(stack, a.tenant_id, CAP)
    jobs = [a.submit("long-running", {"duration_ms": 1500, "progress_interval_ms": 500})
            for _ in range(6)]
    ids = [j["id"] for j in jobs]
    # Another tenant's job is not held back by A's cap.
    theirs = b.submit("long-running", {"duration_ms": 300, "progress_interval_ms": 100})

    peak = 0
    deadline = time.monotonic() + 4 * TIMEOUT
    b_done = None
    while True:
        n, workers = _running(stack, a.tenant_id)
        peak = max(peak, n)
        assert n <= CAP, f"{n} of A's jobs running at once (cap {CAP}): {workers}"
        if b_done is None:
            st = b.get_job(theirs["id"])["status"]
            if st == "succeeded":
                b_done = time.monotonic()
        statuses = stack.sql("SELECT status FROM jobs WHERE id = ANY(:'p1'::uuid[])",
                             "{" + ",".join(ids) + "}")
        if all(s[0] == "succeeded" for s in statuses):
            break
        assert time.monotonic() < deadline, f"A's jobs not done: {statuses}"
        time.sleep(0.05)
    assert peak == CAP, f"the cap was never reached (peak {peak}): too few workers?"
    assert b_done is not None, "B's job did not finish while A's jobs were held back"
    # Held back is not an attempt.
    for jid in ids:
        got = a.get_job(jid)
        assert got["status"] == "succeeded" and got["attempts"] == 1, got


def test_default_cap_applies_and_settings_are_read_safely(stack, tenant):
    # A malformed max_running (a hand edit) falls back to the default
    # (AGENTGATE_TENANT_MAX_RUNNING, 64): jobs run.
    stack.sql("INSERT INTO tenants (id, name, settings)"
              " VALUES (:'p1', 'x', '{\"max_running\": \"two\"}')", tenant.tenant_id)
    job = tenant.submit("demo", {"events": 0, "duration_ms": 0})
    assert tenant.wait_job(job["id"])["status"] == "succeeded"
    rows = stack.sql("SELECT tenant_max_running(:'p1'::jsonb), tenant_max_running('{}'),"
                     " tenant_max_running('{\"max_running\": 0}'),"
                     " tenant_max_running('{\"max_running\": 2.5}'),"
                     " tenant_max_running('{\"max_running\": 99999999}')",
                     '{"max_running": 7}')
    assert rows == [["7", "", "0", "", ""]], rows


def test_killed_workers_slots_are_released_after_the_lease(stack, tenant):
    a = tenant
    _set_cap(stack, a.tenant_id, CAP)
    ids = [a.submit("long-running", {"duration_ms": 60000, "progress_interval_ms": 500},
                    max_attempts=5)["id"] for _ in range(4)]
    try:
        _sample_until(stack, a.tenant_id, lambda n, w: n == CAP, TIMEOUT, "cap reached")
        _, workers = _running(stack, a.tenant_id)
        victim_id = workers[0]
        victim = int(victim_id.rsplit("-", 1)[1])
        stack.worker("kill", victim)
        killed = time.monotonic()
        try:
            # The dead worker's jobs hold their slots until the reaper
            # (lease 3 s) puts them back; then the survivor takes them,
            # never passing the cap.
            _sample_until(stack, a.tenant_id,
                          lambda n, w: n == CAP and victim_id not in w,
                          3 * TIMEOUT, "slots released to the surviving worker")
            took = time.monotonic() - killed
            assert took >= 2.0, f"slots came back in {took:.1f} s, before the 3 s lease"
            print(f"\ncap slots of a SIGKILLed worker back after {took * 1000:.0f} ms")
            # Still at most CAP for a while longer.
            end = time.monotonic() + 2
            while time.monotonic() < end:
                n, w = _running(stack, a.tenant_id)
                assert n <= CAP, w
                time.sleep(0.05)
        finally:
            stack.worker("start", victim)
    finally:
        for jid in ids:
            a.request("DELETE", f"/v1/jobs/{jid}")
    for jid in ids:
        assert a.wait_job(jid, timeout=3 * TIMEOUT)["status"] == "cancelled"


def test_the_effective_cap_is_the_stricter_of_tenant_and_operator(stack):
    # running_cap(own, operator): 0 (or none) on a side is no cap from it.
    rows = stack.sql("SELECT running_cap(NULL, 64), running_cap(0, 64), running_cap(8, 1),"
                     " running_cap(1, 64), running_cap(5, 0), running_cap(NULL, 0),"
                     " running_cap(0, 0), running_cap(1000000, 64)")
    assert rows == [["64", "64", "1", "1", "5", "0", "0", "64"]], rows


@pytest.fixture
def worker_capped_at_one(stack):
    """The stack's workers replaced by one worker of 8 job threads whose
    operator cap (AGENTGATE_TENANT_MAX_RUNNING) is 1."""
    for i in range(1, WORKERS + 1):
        stack.worker("stop", i)
    env = stack_env(stack)
    env.update({"AGENTGATE_WORKER_ID": "it-cap-one",
                "AGENTGATE_WORKER_CONCURRENCY": "8",
                "AGENTGATE_TENANT_MAX_RUNNING": "1"})
    try:
        with own_process([bin_path("agentgate-worker")], env,
                         os.path.join(stack.dir, "logs", "worker-cap-one.log")) as proc:
            yield proc
    finally:
        for i in range(1, WORKERS + 1):
            stack.worker("start", i)


@pytest.mark.parametrize("own", [0, 8, None])
def test_a_tenants_own_cap_cannot_lift_the_operators(stack, tenant, worker_capped_at_one, own):
    # Stored directly: PATCH refuses these (test_tenants_api.py), but a row
    # written before that check, or by hand, must be held to the ceiling.
    if own is not None:
        _set_cap(stack, tenant.tenant_id, own)
    ids = [tenant.submit("long-running", {"duration_ms": 400, "progress_interval_ms": 100})["id"]
           for _ in range(4)]
    peak = 0
    deadline = time.monotonic() + 4 * TIMEOUT
    while True:
        assert worker_capped_at_one.poll() is None, "the test's worker exited"
        n, workers = _running(stack, tenant.tenant_id)
        peak = max(peak, n)
        assert n <= 1, f"{n} jobs running under an operator cap of 1 (own {own}): {workers}"
        done = stack.sql("SELECT count(*) FROM jobs WHERE id = ANY(:'p1'::uuid[])"
                         " AND status = 'succeeded'", "{" + ",".join(ids) + "}")
        if done == [["4"]]:
            break
        assert time.monotonic() < deadline, f"jobs not done: {done}"
        time.sleep(0.02)
    assert peak == 1, peak
