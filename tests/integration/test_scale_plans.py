"""Plans at scale: with a history of 50,000 finished jobs and their events
in one tenant, the statements of a list page, an SSE replay from
PostgreSQL and a claim read a bounded number of buffers through an index,
not rows in proportion to the history (or, for the claim, to the backlog).

Each statement is the one the services send (gateway/api/api_jobs.c's
list, gateway/sse/sse.c's catch-up read, the worker's call of
agentgate_claim_job), run under EXPLAIN (ANALYZE, BUFFERS) as the
services' role under the tenant's row-level security. The history is
written with SQL as the owner (as bench/scale_history.sql does for the
scale bench) and deleted afterwards. Each bound is far below what the same
statement reads without its index: the test drops the index inside a
transaction that is rolled back and checks that the plan then reads more
than the bound, so the test fails if the index were gone.
"""

import json
import uuid

import pytest

from agentgate_test.stack import psql

JOBS = 50_000
EVENTS_PER_JOB = 5
LONG_EVENTS = 1000
# Far above what a page reads through its index (tens of buffers), far
# below what the same statement reads walking the history (thousands).
BOUND = 300

# gateway/api/api_jobs.c SQL_JOB_LIST, with the values the gateway binds.
# psql variables cannot be NULL: an empty one stands for NULL (NULLIF folds
# to the constant at planning, as a bound value does).
LIST = """SELECT job_json(j), j.created_at::text, j.id FROM jobs j
 WHERE j.tenant_id = :'p1'
   AND (NULLIF(:'p2', '')::text IS NULL OR j.status = NULLIF(:'p2', ''))
   AND (NULLIF(:'p3', '')::text IS NULL OR j.type = NULLIF(:'p3', ''))
   AND (NULL::timestamptz IS NULL OR (j.created_at, j.id) < (NULL::timestamptz, NULL::uuid))
   AND NOT (j.type = ANY ('{mcp.discover}'::text[]))
 ORDER BY j.created_at DESC, j.id DESC LIMIT 51"""

# gateway/sse/sse.c read_table.
REPLAY = """SELECT body FROM job_events WHERE job_id = :'p2' AND tenant_id = :'p1' AND seq > 0
 ORDER BY seq LIMIT 500"""


@pytest.fixture(scope="module")
def history(stack):
    """A tenant with JOBS finished jobs over the last three days: one in
    500 failed and one in 500 of type long-running (rare, so a filtered
    page without its index walks the history), EVENTS_PER_JOB events each,
    and one job with LONG_EVENTS events. Yields (tenant id, long job id)."""
    tenant = f"it-scale-{uuid.uuid4().hex[:8]}"
    long_job = str(uuid.uuid4())
    stack.sql("""
INSERT INTO jobs (id, tenant_id, type, status, payload, result, error_code, error_message,
                  attempts, created_by, created_at, queued_at, started_at, finished_at,
                  heartbeat_at, worker_id, last_event_id)
SELECT gen_random_uuid(), :'p1', CASE WHEN i % 500 = 7 THEN 'long-running' ELSE 'test' END,
       CASE WHEN i % 500 = 3 THEN 'failed' ELSE 'succeeded' END,
       '{"outcome": "succeed"}', '{"attempt": 1}',
       CASE WHEN i % 500 = 3 THEN 'test_failure' END,
       CASE WHEN i % 500 = 3 THEN 'the test job was asked to fail' END,
       1, 'it', c, c, c, c + interval '20 ms', c + interval '20 ms', 'it-1', :'p2'
  FROM generate_series(1, :'p3'::int) AS i,
       LATERAL (SELECT now() - interval '3 days' + interval '3 days' * i / :'p3'::int
                       - interval '1 minute' AS c) t;
INSERT INTO job_events (job_id, tenant_id, seq, type, body)
SELECT j.id, j.tenant_id, s, 'job.progress', '{"id":' || s || ',"data":{}}'
  FROM jobs j, generate_series(1, :'p2'::int) AS s WHERE j.tenant_id = :'p1';
INSERT INTO jobs (id, tenant_id, type, status, payload, attempts, created_by, created_at,
                  finished_at, last_event_id)
VALUES (:'p4', :'p1', 'long-running', 'succeeded', '{}', 1, 'it', now() - interval '2 days',
        now() - interval '2 days', :'p5');
INSERT INTO job_events (job_id, tenant_id, seq, type, body)
SELECT :'p4', :'p1', s, 'job.progress', '{"id":' || s || ',"data":{}}'
  FROM generate_series(1, :'p5'::int) AS s;
ANALYZE jobs;
ANALYZE job_events;
""", tenant, EVENTS_PER_JOB, JOBS, long_job, LONG_EVENTS)
    yield tenant, long_job
    stack.sql("DELETE FROM job_events WHERE tenant_id = :'p1'; "
              "DELETE FROM jobs WHERE tenant_id = :'p1'", tenant)


def _explain(stack, stmt, tenant, *params, setup="", owner_pre=""):
    """EXPLAIN (ANALYZE, BUFFERS) of stmt in a transaction that is rolled
    back: owner_pre first as the owner, then setup and stmt as the
    services' role under tenant. params are :'p2', :'p3', ... (:'p1' is
    the tenant). Returns the plan's root node (JSON)."""
    text = ("BEGIN;\n" + owner_pre
            + "SET LOCAL ROLE agentgate_app;\n"
            + "SELECT set_config('agentgate.tenant_id', :'p1', true) \\g /dev/null\n"
            + setup
            + "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + stmt + ";\nROLLBACK;\n")
    r = psql(stack.owner_url, text, (tenant,) + params)
    assert r.returncode == 0, f"psql failed: {r.stderr}\n{text}"
    out = r.stdout
    return json.loads(out[out.index("["):out.rindex("]") + 1])[0]["Plan"]


def _buffers(plan):
    return int(plan["Shared Hit Blocks"]) + int(plan["Shared Read Blocks"])


def _scans(plan):
    """(node type, index name) of every scan in plan."""
    found = []
    if "Scan" in plan["Node Type"]:
        found.append((plan["Node Type"], plan.get("Index Name")))
    for child in plan.get("Plans", []):
        found += _scans(child)
    return found


def _assert_bounded(plan, index, what):
    scans = _scans(plan)
    assert any(i == index for _, i in scans), f"{what}: no scan of {index}: {scans}"
    assert all(t != "Seq Scan" for t, _ in scans), f"{what}: a sequential scan: {scans}"
    assert _buffers(plan) < BOUND, (
        f"{what}: {_buffers(plan)} buffers for {plan['Actual Rows']} rows ({scans})")


def _assert_unbounded_without(stack, script, tenant, params, index, what):
    """The same statement with index dropped (rolled back) reads more than
    BOUND: the bound above does tell the index's presence."""
    plan = _explain(stack, script, tenant, *params, owner_pre=f"DROP INDEX {index};\n")
    assert _buffers(plan) >= BOUND, (
        f"{what} without {index}: only {_buffers(plan)} buffers; the bound tells nothing")


@pytest.mark.parametrize("status,type_,index", [
    ("", "", "jobs_tenant_created"),
    ("failed", "", "jobs_tenant_status_created"),
    ("", "long-running", "jobs_tenant_type_created"),
])
def test_list_page_reads_one_index_range(stack, history, status, type_, index):
    tenant, _ = history
    what = f"GET /v1/jobs?status={status}&type={type_}"
    plan = _explain(stack, LIST, tenant, status, type_)
    assert plan["Actual Rows"] == 51, what
    _assert_bounded(plan, index, what)
    if status or type_:
        _assert_unbounded_without(stack, LIST, tenant, (status, type_), index, what)


def test_replay_reads_the_job_by_primary_key(stack, history):
    tenant, long_job = history
    plan = _explain(stack, REPLAY, tenant, long_job)
    assert plan["Actual Rows"] == 500
    _assert_bounded(plan, "job_events_pkey", "SSE replay")


def test_claim_finds_its_job_by_primary_key_behind_a_backlog(stack, history):
    """20,000 queued jobs the statistics do not know of (the history was
    analyzed with none queued): the claim still reads its one job by id,
    not the backlog. A first claim warms the session (a function's first
    call reads the catalogs); the second is measured."""
    tenant, _ = history
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    setup = f"""
INSERT INTO jobs (id, tenant_id, type, status, payload, created_by)
SELECT gen_random_uuid(), :'p1', 'test', 'queued', '{{}}', 'it' FROM generate_series(1, 20000);
INSERT INTO jobs (id, tenant_id, type, status, payload, created_by)
VALUES ('{first}', :'p1', 'test', 'queued', '{{}}', 'it'),
       ('{second}', :'p1', 'test', 'queued', '{{}}', 'it');
SELECT count(*) FROM agentgate_claim_job('{first}', 'it-claim', 0, 100) \\g /dev/null
"""
    claim = f"SELECT * FROM agentgate_claim_job('{second}', 'it-claim', 0, 100)"
    plan = _explain(stack, claim, tenant, setup=setup)
    assert plan["Actual Rows"] == 1
    assert _buffers(plan) < BOUND / 3, f"claim: {_buffers(plan)} buffers behind 20,000 queued jobs"
    inner = _explain(stack, f"""SELECT j.tenant_id FROM jobs j WHERE j.id = '{second}'
        AND (j.status = 'queued' AND j.cancel_requested_at IS NULL) IS TRUE""", tenant,
                     setup=setup)
    _assert_bounded(inner, "jobs_pkey", "the claim's lookup")
