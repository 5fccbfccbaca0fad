-- bench/scale_explain.sql - the statements the gateway and the workers send
-- on the paths the scale bench measures, each run once under EXPLAIN
-- (ANALYZE, BUFFERS) on the loaded history, one line each:
--   plan <statement>: <shared buffers hit> hit + <read> read, <rows> rows,
--        <ms> ms; <the scans of its plan>
-- Buffers count every page the statement touched, those of the functions
-- it calls included; a statement whose buffers grow with the history shows
-- it here. The SECURITY DEFINER functions are called as the services call
-- them; their inner statements appear as "Function Scan", so each is also
-- run on its own ("  inner: ..."). What writes runs in a transaction that
-- is rolled back. Run by bench/run through psql as the database owner,
-- with :deep (how many of the bench tenant's jobs the deep page skips) and
-- :long_job (the history's job with many events).
\set ON_ERROR_STOP 1
\pset tuples_only on
\pset format unaligned

CREATE FUNCTION pg_temp.scans(p jsonb) RETURNS text LANGUAGE sql AS $$
    WITH RECURSIVE n(node) AS (
        SELECT p
        UNION ALL
        SELECT c FROM n, jsonb_array_elements(coalesce(n.node -> 'Plans', '[]')) AS c)
    SELECT coalesce(string_agg(DISTINCT (node ->> 'Node Type')
                               || coalesce(' ' || (node ->> 'Index Name'), '')
                               || coalesce(' on ' || (node ->> 'Relation Name'), ''), ', '),
                    '')
      FROM n WHERE node ->> 'Node Type' ~ 'Scan'
$$;

-- Runs warm (or, without it, q itself) once first, so that the figures
-- are those of a session that has run the statement before (a function's
-- first call in a session reads the catalogs).
CREATE FUNCTION pg_temp.plan_line(label text, q text, warm text DEFAULT NULL)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    j jsonb;
    p jsonb;
BEGIN
    EXECUTE coalesce(warm, q);
    EXECUTE 'EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ' || q INTO j;
    p := j -> 0 -> 'Plan';
    RETURN format('plan %s: %s hit + %s read buffers, %s rows, %s ms; %s', label,
                  (p ->> 'Shared Hit Blocks'), (p ->> 'Shared Read Blocks'),
                  (p ->> 'Actual Rows'),
                  round(((j -> 0 ->> 'Execution Time')::numeric), 2), pg_temp.scans(p));
END
$$;
DO $$ BEGIN
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO agentgate_app', pg_my_temp_schema()::regnamespace);
END $$;

SELECT created_at AS deep_at, id AS deep_id FROM jobs
 WHERE tenant_id = 'bench' ORDER BY created_at DESC, id DESC OFFSET :deep LIMIT 1 \gset

-- The gateway's statements, as its role, under the bench tenant.
SET ROLE agentgate_app;
SELECT set_config('agentgate.tenant_id', 'bench', false) \gset

-- The gateway sends the list as an unnamed statement, planned for its
-- values each time: force_custom_plan does the same for this prepared one.
SET plan_cache_mode = force_custom_plan;
PREPARE job_list(text, text, text, timestamptz, uuid, text[], int) AS
    SELECT job_json(j), j.created_at::text, j.id FROM jobs j
     WHERE j.tenant_id = $1
       AND ($2::text IS NULL OR j.status = $2)
       AND ($3::text IS NULL OR j.type = $3)
       AND ($4::timestamptz IS NULL OR (j.created_at, j.id) < ($4::timestamptz, $5::uuid))
       AND NOT (j.type = ANY ($6::text[]))
     ORDER BY j.created_at DESC, j.id DESC LIMIT $7;

SELECT pg_temp.plan_line('GET /v1/jobs first page',
    $$EXECUTE job_list('bench', NULL, NULL, NULL, NULL, '{mcp.discover}', 51)$$);
SELECT pg_temp.plan_line('GET /v1/jobs deep page (cursor)',
    format($$EXECUTE job_list('bench', NULL, NULL, %L, %L, '{mcp.discover}', 51)$$,
           :'deep_at', :'deep_id'));
SELECT pg_temp.plan_line('GET /v1/jobs?status=failed',
    $$EXECUTE job_list('bench', 'failed', NULL, NULL, NULL, '{mcp.discover}', 51)$$);
SELECT pg_temp.plan_line('GET /v1/jobs?status=running',
    $$EXECUTE job_list('bench', 'running', NULL, NULL, NULL, '{mcp.discover}', 51)$$);
SELECT pg_temp.plan_line('GET /v1/jobs?status=queued',
    $$EXECUTE job_list('bench', 'queued', NULL, NULL, NULL, '{mcp.discover}', 51)$$);
SELECT pg_temp.plan_line('GET /v1/jobs?type=long-running',
    $$EXECUTE job_list('bench', NULL, 'long-running', NULL, NULL, '{mcp.discover}', 51)$$);

SELECT pg_temp.plan_line('SSE: the job of GET /v1/jobs/{id}/events',
    format($$SELECT status, last_event_id, type FROM jobs WHERE id = %L AND tenant_id = 'bench'$$,
           :'long_job'));
SELECT pg_temp.plan_line('SSE replay from PostgreSQL (a page of 500)',
    format($$SELECT body FROM job_events WHERE job_id = %L AND tenant_id = 'bench' AND seq > 0
             ORDER BY seq LIMIT 500$$, :'long_job'));

BEGIN;
SELECT pg_temp.plan_line('submit: jobs_submit_rows, one job',
    $$SELECT * FROM jobs_submit_rows(ARRAY[gen_random_uuid()],
        '{bench}', '{test}', '{0}', ARRAY['{"outcome":"succeed"}']::jsonb[], '{1}', '{300}',
        '{bench}', '{r}', ARRAY[NULL]::text[], ARRAY['{"id":1}'], ARRAY[NULL]::bigint[],
        ARRAY[NULL]::uuid[], ARRAY[NULL]::text[])$$);
-- The worker's claim, as it calls it, of a queued job (after one of
-- another), behind a backlog of 10,000 queued jobs that the statistics do
-- not know of (as after an ANALYZE at a quiet moment).
RESET ROLE;
INSERT INTO jobs (id, tenant_id, type, status, payload, created_by)
SELECT gen_random_uuid(), 'bench', 'test', 'queued', '{"outcome":"succeed"}', 'bench'
  FROM generate_series(1, 10000);
SET ROLE agentgate_app;
SELECT set_config('agentgate.tenant_id', 'bench', false) \gset
SELECT count(*) AS submitted FROM jobs_submit_rows(
        '{01a25300-0000-7000-8000-000000000001,01a25300-0000-7000-8000-000000000002}',
        '{bench,bench}', '{test,test}', '{0,0}',
        ARRAY['{"outcome":"succeed"}', '{"outcome":"succeed"}']::jsonb[], '{1,1}', '{300,300}',
        '{bench,bench}', '{r,r}', ARRAY[NULL, NULL]::text[], ARRAY['{"id":1}', '{"id":1}'],
        ARRAY[NULL, NULL]::bigint[], ARRAY[NULL, NULL]::uuid[], ARRAY[NULL, NULL]::text[]) \gset
SELECT pg_temp.plan_line('claim: agentgate_claim_job (10,000 queued)',
    $$SELECT * FROM agentgate_claim_job('01a25300-0000-7000-8000-000000000001', 'local-1', 0, 100)$$,
    $$SELECT * FROM agentgate_claim_job('01a25300-0000-7000-8000-000000000002', 'local-1', 0, 100)$$);
-- jobs_submit_rows leaves its own tenant setting for the transaction.
SELECT set_config('agentgate.tenant_id', 'bench', true) \gset
SELECT pg_temp.plan_line('  inner: claim, the job by id',
    $$SELECT j.tenant_id FROM jobs j WHERE j.id = '01a25300-0000-7000-8000-000000000001'
        AND (j.status = 'queued' AND j.cancel_requested_at IS NULL) IS TRUE$$);
SELECT pg_temp.plan_line('  inner: claim, the tenant''s running jobs (with a cap)',
    $$SELECT count(*) FROM jobs j WHERE j.tenant_id = 'bench' AND j.status = 'running'$$);
ROLLBACK;

-- The workers' sweeps and the gateway's scrape-time counts, as they run
-- them (no tenant: the functions cross tenants).
SELECT set_config('agentgate.tenant_id', '', false) \gset
BEGIN;
SELECT pg_temp.plan_line('reaper: agentgate_lock_expired',
    $$SELECT * FROM agentgate_lock_expired(30000, NULL, 100)$$);
SELECT pg_temp.plan_line('reaper at start: agentgate_lock_expired of a worker',
    $$SELECT * FROM agentgate_lock_expired(30000, 'local-1', 100)$$);
ROLLBACK;
SELECT pg_temp.plan_line('reconciliation: agentgate_queued_jobs',
    $$SELECT * FROM agentgate_queued_jobs(5000, 10000)$$);
SELECT pg_temp.plan_line('heartbeat/cancel poll: agentgate_cancel_requested',
    format($$SELECT * FROM agentgate_cancel_requested(ARRAY[%L]::uuid[])$$, :'long_job'));
SELECT pg_temp.plan_line('/metrics queue depth: agentgate_queue_depths',
    $$SELECT * FROM agentgate_queue_depths()$$);
BEGIN;
SELECT pg_temp.plan_line('retention: agentgate_retention_jobs (30 days)',
    $$SELECT * FROM agentgate_retention_jobs(30, 1000)$$);
ROLLBACK;
RESET ROLE;
SET agentgate.maintenance = 'on';
SELECT pg_temp.plan_line('  inner: reaper, expired leases',
    $$SELECT j.id FROM jobs j WHERE j.status = 'running'
        AND (j.heartbeat_at < now() - interval '30 s' OR j.worker_id = NULL)
      ORDER BY j.heartbeat_at LIMIT 100$$);
SELECT pg_temp.plan_line('  inner: reaper, a worker''s orphans',
    $$SELECT j.id FROM jobs j WHERE j.status = 'running'
        AND (j.heartbeat_at < now() - interval '30 s' OR j.worker_id = 'local-1')
      ORDER BY j.heartbeat_at LIMIT 100$$);
SELECT pg_temp.plan_line('  inner: queue depth',
    $$SELECT j.type, count(*) FROM jobs j WHERE j.status IN ('queued', 'running') GROUP BY j.type$$);
SELECT pg_temp.plan_line('  inner: retention, the next tenant',
    $$SELECT min(j.tenant_id) FROM jobs j WHERE j.status IN ('succeeded', 'failed', 'cancelled')
        AND j.tenant_id > 'bench'$$);
SELECT pg_temp.plan_line('  inner: retention, a tenant''s expired jobs',
    $$SELECT j.id FROM jobs j WHERE j.tenant_id = 'bench'
        AND j.status IN ('succeeded', 'failed', 'cancelled')
        AND j.finished_at < now() - interval '30 days' ORDER BY j.finished_at LIMIT 1000$$);
