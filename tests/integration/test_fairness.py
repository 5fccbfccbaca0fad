"""
Fair dispatch between tenants: a job type's queue is one list per tenant
(jobs:queue:{type}:{tenant}) and a ring of the tenants that have work
(jobs:ready:{type}); each turn of the ring gives one tenant one job. So a
tenant's wait depends on its own backlog, not on its neighbours': a burst
from one tenant does not hold back another tenant's one job, and within a
tenant jobs still start in the order they were submitted.

The session stack runs WORKERS workers of SLOTS_PER_WORKER job threads and
a 1 s reconciler (agentgate_test.stack.SESSION_ENV).
"""
import codecs
import concurrent.futures
import os
import re
import time
import uuid

from agentgate_test.paths import REPO
from agentgate_test.stack import WORKERS, redis
from agentgate_test.waiting import TIMEOUT, wait_for

SLOTS_PER_WORKER = 4            # AGENTGATE_WORKER_CONCURRENCY's default
SLOTS = WORKERS * SLOTS_PER_WORKER
BURST = 200
SLEEP_MS = 50


def redis_cli(*args):
    return redis(*args).splitlines()


def burst(tenant, n, payload, threads=32):
    """Submits n "test" jobs for tenant as fast as threads clients can;
    returns them in the order they were answered."""
    with concurrent.futures.ThreadPoolExecutor(threads) as ex:
        return list(ex.map(lambda _: tenant.submit("test", payload), range(n)))


def times(stack, ids):
    """{id: (created, started or None)} in epoch seconds, PostgreSQL's clock."""
    rows = stack.sql("SELECT id, extract(epoch FROM created_at),"
                     " coalesce(extract(epoch FROM started_at)::text, '')"
                     " FROM jobs WHERE id = ANY(:'p1'::uuid[])",
                     "{" + ",".join(ids) + "}")
    return {r[0]: (float(r[1]), float(r[2]) if r[2] else None) for r in rows}


def wait_all_done(stack, ids, timeout):
    def done():
        rows = stack.sql("SELECT count(*) FROM jobs WHERE id = ANY(:'p1'::uuid[])"
                         " AND status IN ('succeeded', 'failed', 'cancelled')",
                         "{" + ",".join(ids) + "}")
        return int(rows[0][0]) == len(ids)
    wait_for(done, timeout=timeout, what=f"{len(ids)} jobs finished")


def stop_all_workers(stack):
    for n in range(1, WORKERS + 1):
        stack.worker("stop", n)


def start_all_workers(stack):
    for n in range(1, WORKERS + 1):
        stack.worker("start", n)


def start_order(stack, ids):
    """ids ordered by when their job started (claimed)."""
    t = times(stack, ids)
    assert all(v[1] is not None for v in t.values()), "a job never started"
    return sorted(ids, key=lambda i: t[i][1])


def test_one_tenants_burst_does_not_hold_back_anothers_job(stack, tenant, other_tenant):
    a, b = tenant, other_tenant
    payload = {"outcome": "succeed", "sleep_ms": SLEEP_MS}
    t0 = time.monotonic()
    a_jobs = burst(a, BURST, payload)
    burst_s = time.monotonic() - t0
    b_job = b.submit("test", payload)
    b_done = b.wait_job(b_job["id"])
    a_ids = [j["id"] for j in a_jobs]
    wait_all_done(stack, a_ids, timeout=4 * TIMEOUT)
    assert b_done["status"] == "succeeded", b_done

    b_created, b_started = times(stack, [b_job["id"]])[b_job["id"]]
    a_times = times(stack, a_ids)
    a_starts = sorted(s for _, s in a_times.values())
    backlog = sum(1 for s in a_starts if s > b_created)
    ahead = sum(1 for s in a_starts if b_created < s < b_started)
    wait_s = b_started - b_created
    a_last = a_starts[-1] - b_created
    print(f"\nfairness: A's {BURST} jobs submitted in {burst_s:.2f} s; B's job waited "
          f"{wait_s * 1000:.0f} ms, {ahead} of A's jobs started between B's submission "
          f"and its start, of {backlog} not started at its submission; A's last job started "
          f"{a_last * 1000:.0f} ms after B's submission")
    # The test means something only if A still had a backlog when B came.
    assert backlog >= BURST // 4, (
        f"A's backlog was gone when B submitted ({backlog} of A's jobs not started): "
        "the burst was too slow to build one")
    # Fair: B's job goes at the next turn of the ring, behind at most one
    # job of A per slot freeing meanwhile, never behind A's backlog.
    assert ahead <= SLOTS, (
        f"{ahead} of A's jobs started before B's one job (waited {wait_s:.2f} s)")
    assert wait_s < 10 * SLEEP_MS / 1000, (
        f"B's job waited {wait_s:.2f} s behind A's burst (A's jobs take {SLEEP_MS} ms)")


def test_backlogged_tenants_take_turns(stack, tenant, other_tenant):
    a, b = tenant, other_tenant
    payload = {"outcome": "succeed", "sleep_ms": 20}
    stop_all_workers(stack)
    try:
        a_ids = [a.submit("test", payload)["id"] for _ in range(30)]
        b_ids = [b.submit("test", payload)["id"] for _ in range(30)]
        start_all_workers(stack)
        wait_all_done(stack, a_ids + b_ids, timeout=2 * TIMEOUT)
    finally:
        start_all_workers(stack)
    order = start_order(stack, a_ids + b_ids)
    first = order[:20]
    b_early = sum(1 for i in first if i in set(b_ids))
    # Round-robin: B, submitted after all of A's, gets about every other
    # turn from the start instead of waiting for A's 30.
    assert b_early >= 6, f"only {b_early} of the first 20 jobs started were B's"


def test_one_tenant_keeps_its_order(stack, tenant):
    payload = {"outcome": "succeed", "sleep_ms": 10}
    key = f"jobs:queue:test:{tenant.tenant_id}"
    stop_all_workers(stack)
    try:
        ids = [tenant.submit("test", payload)["id"] for _ in range(40)]
        # One list for the tenant, oldest at the right (the end workers
        # pop), and the tenant once on the ring of the type.
        assert redis_cli("LRANGE", key, 0, -1) == ids[::-1]
        assert redis_cli("LRANGE", "jobs:ready:test", 0, -1).count(tenant.tenant_id) == 1
        start_all_workers(stack)
        wait_all_done(stack, ids, timeout=2 * TIMEOUT)
    finally:
        start_all_workers(stack)
    order = start_order(stack, ids)
    # FIFO within the tenant: a job may be overtaken only by jobs popped
    # at about the same time by other job threads (their claims race).
    for rank, jid in enumerate(order):
        assert abs(ids.index(jid) - rank) < SLOTS, (
            f"job {ids.index(jid)} of the tenant started {rank}th")
    assert redis_cli("EXISTS", key) == ["0"]
    assert tenant.tenant_id not in redis_cli("SMEMBERS", "jobs:active:test")


def test_tenant_lost_from_its_ring_is_put_back(stack, tenant):
    """A worker killed between taking a tenant off the ring and popping its
    job leaves the tenant active, with work, but off the ring: later
    submissions would not put it back. Reconciliation does."""
    stop_all_workers(stack)
    try:
        first = tenant.submit("test", {"outcome": "succeed"})
        # What the killed worker leaves behind.
        assert redis_cli("LREM", "jobs:ready:test", 0, tenant.tenant_id) == ["1"]
        second = tenant.submit("test", {"outcome": "succeed"})
        assert tenant.tenant_id not in redis_cli("LRANGE", "jobs:ready:test", 0, -1)
        start_all_workers(stack)
        done = [tenant.wait_job(first["id"]), tenant.wait_job(second["id"])]
    finally:
        start_all_workers(stack)
    assert [d["status"] for d in done] == ["succeeded", "succeeded"], done
    assert [d["attempts"] for d in done] == [1, 1], done
    wait_for(lambda: tenant.tenant_id not in redis_cli("SMEMBERS", "jobs:active:test"),
             what="the tenant's membership cleared once its list was empty")


# --------------------------------------------------------------------------
# The scripts themselves, on the stack's Redis, under keys of a type no
# worker serves: the interleavings a test through workers cannot force.
# --------------------------------------------------------------------------

def lua_scripts():
    """{name: text} of the jobq_*_lua scripts, as common/jobq.c spells them:
    string literals, the macros of literals they include (its own and
    events.h's), and STR(X) of a number jobq.h defines."""
    with open(os.path.join(REPO, "common", "jobq.c"), encoding="utf-8") as f:
        src = f.read()
    with open(os.path.join(REPO, "common", "jobq.h"), encoding="utf-8") as f:
        numbers = dict(re.findall(r"#define (\w+) (\d+)\n", f.read()))
    with open(os.path.join(REPO, "common", "events.h"), encoding="utf-8") as f:
        headers = f.read()
    macros = {m.group(1): m.group(2).replace("\\\n", "\n")
              for m in re.finditer(r"#define (\w+) \\\n((?:.*\\\n)*.*\n)", headers + src)}
    token = re.compile(r'"((?:[^"\\]|\\.)*)"|STR\((\w+)\)|(\w+)')

    def expand(text):
        out = []
        for lit, num, name in token.findall(text):
            if num:
                out.append(numbers[num])
            elif name:
                out.append(expand(macros[name]))
            else:
                out.append(codecs.decode(lit, "unicode_escape"))
        return "".join(out)

    scripts = {m.group(1): expand(m.group(2)) for m in re.finditer(
        r"const char (jobq_\w+_lua)\[\] =\s*((?:(?:\"(?:[^\"\\]|\\.)*\"|STR\(\w+\)|\w+)\s*)+);", src)}
    assert set(scripts) == {"jobq_enqueue_lua", "jobq_take_lua", "jobq_pop_lua",
                            "jobq_repair_lua", "jobq_new_jobs_lua"}, scripts
    return scripts


BANDS = ("urgent", "high", "", "low", "bulk")     # highest first; "" the normal list


class Probe:
    """The queues of a type no worker serves, driven as a worker would."""

    TYPE = "fairness-probe"

    def __init__(self):
        self.s = lua_scripts()
        self.ready = f"jobs:ready:{self.TYPE}"
        self.active = f"jobs:active:{self.TYPE}"
        self.delayed = f"jobs:delayed:{self.TYPE}"
        self.turns = f"jobs:turns:{self.TYPE}"

    def list(self, tenant, band=""):
        """The tenant's list of band ("" the normal band's)."""
        return f"jobs:queue:{self.TYPE}:{tenant}" + (f":{band}" if band else "")

    def lists(self, tenant):
        return [self.list(tenant, b) for b in BANDS]

    def enqueue(self, tenant, jid, end="back", member=None, band=""):
        keys = [self.list(tenant, band), self.ready, self.active] + (
            [self.delayed] if member else [])
        args = [jid, tenant, end] + ([member] if member else [])
        return redis_cli("EVAL", self.s["jobq_enqueue_lua"], len(keys), *keys, *args)[0]

    def take(self, hint=None, every=0):
        """A busy worker's turn: the tenant stays on the ring. With a hint
        (the tenant the thread served last), (tenant, id) when the turn is
        the hint's and the script popped its job."""
        keys = [self.ready] + (self.lists(hint) + [self.active, self.turns] if hint else [])
        out = redis_cli("EVAL", self.s["jobq_take_lua"], len(keys), *keys,
                        1, 1 if hint else 0, hint or "", every)
        assert out == [""] or out[0] == "1", out
        if len(out) == 4:
            return out[1], out[2]
        return out[1] if len(out) == 2 else ""

    def hold(self):
        """An idle worker's BRPOP of the ring, without blocking."""
        return redis_cli("RPOP", self.ready)[0]

    def pop(self, tenant, turn="rotated", every=0, band=False):
        """The id popped ("" for none), or with band, (id, its list's index)."""
        keys = self.lists(tenant) + [self.ready, self.active, self.turns]
        out = redis_cli("EVAL", self.s["jobq_pop_lua"], len(keys), *keys, tenant, turn,
                        every)
        return (out[0], out[1] if len(out) > 1 else "") if band else out[0]

    def repair(self, tenant):
        keys = self.lists(tenant) + [self.ready, self.active]
        return redis_cli("EVAL", self.s["jobq_repair_lua"], len(keys), *keys, tenant)[0]

    def ring(self):
        return [t for t in redis_cli("LRANGE", self.ready, 0, -1) if t]

    def actives(self):
        return [t for t in redis_cli("SMEMBERS", self.active) if t]

    def clean(self):
        redis("DEL", *self.lists("probe-a"), *self.lists("probe-b"), self.ready, self.active,
              self.delayed, self.turns)


def ids(n):
    return [str(uuid.uuid4()) for _ in range(n)]


def test_scripts_take_turns_and_keep_one_place_per_tenant(stack):
    q = Probe()
    A, B = "probe-a", "probe-b"
    q.clean()
    try:
        # Round-robin: one job per turn; a tenant whose list runs empty
        # leaves the ring.
        xa, xb = ids(3), ids(1)
        assert [q.enqueue(A, x) for x in xa] == ["1", "0", "0"]
        assert q.enqueue(B, xb[0]) == "1"
        got = []
        while True:
            t = q.take()
            if not t:
                break
            got.append(q.pop(t))
        assert got == [xa[0], xb[0], xa[1], xa[2]]
        assert q.actives() == [] and q.ring() == []

        # Turns of one tenant are taken at once by several job threads:
        # the tenant never leaves the ring while it has ids.
        x = ids(3)
        for j in x:
            q.enqueue(A, j)
        assert q.take() == A and q.take() == A and q.ring() == [A]
        assert q.pop(A) == x[0] and q.pop(A) == x[1] and q.ring() == [A]
        assert q.pop(q.take()) == x[2] and q.ring() == [] and q.actives() == []
        assert q.pop(A) == ""       # a turn whose list ran empty just ends

        # A take told which tenant to expect pops its job in the same call
        # when the turn is that tenant's, exactly as a pop would.
        x, y = ids(2), ids(1)
        for j in x:
            q.enqueue(A, j)
        q.enqueue(B, y[0])
        assert q.take(hint=A) == (A, x[0]) and q.ring() == [A, B]
        assert q.take(hint=A) == B                  # not A's turn: B is popped apart
        assert q.pop(B) == y[0] and q.ring() == [A]
        assert q.take(hint=A) == (A, x[1]) and q.ring() == [] and q.actives() == []
        q.enqueue(A, x[0])
        assert q.take() == A                        # thread 1 takes A's turn
        assert q.take(hint=A) == (A, x[0])          # thread 2 takes A's last job
        assert q.pop(A) == "" and q.ring() == []    # thread 1's turn finds none
        q.enqueue(A, x[1])
        redis("DEL", q.list(A))                     # Redis lost A's list
        assert q.take(hint=A) == (A, "")            # a spent turn cleans A up
        assert q.ring() == [] and q.actives() == []
        assert q.take(hint=A) == ""                 # every ring empty

        # A job that has waited already goes to the front of its tenant's list.
        x = ids(3)
        q.enqueue(A, x[0])
        q.enqueue(A, x[1])
        q.enqueue(A, x[2], end="front")
        assert [q.pop(q.take()) for _ in range(3)] == [x[2], x[0], x[1]]

        # An idle worker's BRPOP holds the turn off the ring; its pop puts
        # the tenant back while ids wait.
        x = ids(2)
        q.enqueue(A, x[0])
        q.enqueue(A, x[1])
        assert q.hold() == A and q.ring() == []
        assert q.pop(A, "held") == x[0] and q.ring() == [A]
        assert q.hold() == A and q.pop(A, "held") == x[1]
        assert q.ring() == [] and q.actives() == []

        # A repair that meets a worker between its BRPOP and its pop: the
        # tenant keeps one place, not two.
        x = ids(3)
        for j in x:
            q.enqueue(A, j)
        assert q.hold() == A                        # an idle worker woke with A
        assert q.repair(A) == "1"                   # reconciliation saw A off the ring
        assert q.pop(q.take()) == x[0] and q.ring() == [A]
        assert q.pop(A, "held") == x[1] and q.ring() == [A]
        assert q.pop(q.take()) == x[2] and q.ring() == [] and q.actives() == []
        assert q.repair(A) == "0"

        # A held turn lost with its worker: enqueues alone never bring the
        # tenant back; the repair does.
        x = ids(2)
        q.enqueue(A, x[0])
        assert q.hold() == A                        # the worker dies here
        assert q.enqueue(A, x[1]) == "0" and q.ring() == []
        assert q.repair(A) == "1" and q.ring() == [A]
        assert q.pop(q.take()) == x[0] and q.pop(q.take()) == x[1]
        assert q.ring() == [] and q.actives() == []

        # Promotion: the id moves only while its delayed member is there.
        jid = ids(1)[0]
        member = f"{A}:{jid}"
        redis("ZADD", q.delayed, 1, member)
        assert q.enqueue(A, jid, member=member) == "1"
        assert q.enqueue(A, jid, member=member) == "-1"     # another worker was first
        assert redis_cli("LRANGE", q.list(A), 0, -1) == [jid]
        assert redis_cli("ZCARD", q.delayed) == ["0"]
    finally:
        q.clean()


def test_scripts_take_the_highest_band_first_and_every_nth_the_lowest(stack):
    q = Probe()
    A = "probe-a"
    q.clean()
    try:
        low, normal, high = ids(3), ids(2), ids(3)
        for j in low:
            q.enqueue(A, j, band="low")
        for j in normal:
            q.enqueue(A, j)
        for j in high:
            q.enqueue(A, j, band="high")
        assert q.ring() == [A]
        # Strictly by band (every 0), oldest first; the answer names the list.
        assert q.pop(q.take(), band=True) == (high[0], "1")
        assert q.take(hint=A) == (A, high[1])
        # Every 3rd pop of the tenant reads the lowest band first; the
        # count is the tenant's, whichever script pops.
        got = [q.pop(q.take(), every=3)]
        got.append(q.take(hint=A, every=3)[1])
        got.append(q.pop(q.take(), every=3))
        got.append(q.take(hint=A, every=3)[1])
        got.append(q.pop(q.take(), every=3))
        got.append(q.pop(q.take(), every=3))
        assert got == [high[2], normal[0], low[0], normal[1], low[1], low[2]], got
        # Empty in every band: the tenant leaves the ring, the active set
        # and the count.
        assert q.ring() == [] and q.actives() == []
        assert redis_cli("HEXISTS", q.turns, A) == ["0"]
        # A repair sees ids in any band.
        jid = ids(1)[0]
        q.enqueue(A, jid, band="bulk")
        assert q.hold() == A and q.repair(A) == "1" and q.ring() == [A]
        assert q.pop(q.take(), band=True) == (jid, "4")
    finally:
        q.clean()
