-- bench/scale_finish.sql - completes the scale bench's history after the
-- shares of bench/scale_history.sql: the history's tenants get their
-- tenants rows, one finished bench job gets :long_events events (the SSE
-- replay's subject; its id is printed as "long_job <id>"), the tables are
-- vacuumed and analyzed, and a sample of the history is checked: 2,000 jobs whose
-- last_event_id must equal their events' count and greatest seq, and
-- whose events must carry their tenant. Run by bench/run through psql as
-- the database owner.
\set ON_ERROR_STOP 1
SET synchronous_commit = off;

INSERT INTO tenants (id, name)
SELECT t, 'scale bench ' || t FROM unnest(ARRAY['bench', 't1', 't2', 't3', 't4']) AS t
ON CONFLICT (id) DO NOTHING;

CREATE TEMP TABLE long_job AS
SELECT (lpad(to_hex((extract(epoch FROM c) * 1000)::bigint), 12, '0') || '7'
        || substr(md5('long'), 1, 3) || '8' || substr(md5('long'), 4, 15))::uuid AS id, c
  FROM (SELECT now() - interval '2 days' AS c) t;

INSERT INTO jobs (id, tenant_id, type, status, priority, payload, result, attempts,
                  max_attempts, timeout_s, created_by, created_at, queued_at, started_at,
                  finished_at, heartbeat_at, worker_id, last_event_id, request_id)
SELECT id, 'bench', 'long-running', 'succeeded', 0,
       '{"duration_ms": 10000, "progress_interval_ms": 10}', '{"attempt": 1}', 1, 3, 300,
       'bench', c, c, c + interval '1 ms', c + interval '10 s', c + interval '10 s',
       'local-1', :long_events, md5('long')::uuid::text
  FROM long_job;

INSERT INTO job_events (job_id, tenant_id, seq, type, body, created_at)
SELECT l.id, 'bench', s, e.type,
       '{"id":' || s || ',"job_id":"' || l.id || '","type":"' || e.type || '","ts":"'
       || to_char((l.c + s * interval '10 ms') AT TIME ZONE 'UTC',
                  'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
       || '","data":' || e.data || '}',
       l.c + s * interval '10 ms'
  FROM long_job l, generate_series(1, :long_events) AS s,
       LATERAL (SELECT CASE WHEN s = 1 THEN 'job.queued' WHEN s = 2 THEN 'job.started'
                            WHEN s < :long_events THEN 'job.progress'
                            ELSE 'job.succeeded' END AS type,
                       CASE WHEN s = 1 THEN '{"type":"long-running","priority":0}'
                            WHEN s = 2 THEN '{"attempt":1,"worker_id":"local-1"}'
                            WHEN s < :long_events
                                THEN '{"progress":{"step":' || (s - 2) || ',"of":'
                                     || (:long_events - 3) || '}}'
                            ELSE '{"result":{"attempt":1}}' END AS data) e;

-- What autovacuum would have done over the days the history took: the
-- visibility map set (index-only scans) and the statistics fresh; without
-- it, autovacuum would start on the 10M new rows in the middle of the
-- measurement.
VACUUM (ANALYZE) jobs;
VACUUM (ANALYZE) job_events;
ANALYZE tenants;

SELECT 'long_job ' || id FROM long_job;

-- The sample: any job whose counter or events disagree is named.
SELECT 'check ' || CASE WHEN count(*) FILTER (WHERE NOT ok) = 0
                        THEN 'ok: ' || count(*) || ' sampled jobs, last_event_id = count = max(seq), tenants match'
                        ELSE 'FAILED: ' || count(*) FILTER (WHERE NOT ok) || ' of ' || count(*)
                             || ' sampled jobs disagree with their events' END
  FROM (SELECT j.last_event_id = count(e.seq) AND j.last_event_id = max(e.seq)
               AND coalesce(bool_and(e.tenant_id = j.tenant_id), false) AS ok
          FROM (SELECT * FROM jobs TABLESAMPLE SYSTEM (1) LIMIT 2000) j
          LEFT JOIN job_events e ON e.job_id = j.id
         GROUP BY j.id, j.last_event_id) s;

SELECT 'size ' || c.relname || ' ' || c.reltuples::bigint || ' rows, table '
       || pg_size_pretty(pg_table_size(c.oid)) || ', indexes '
       || pg_size_pretty(pg_indexes_size(c.oid))
  FROM pg_class c WHERE c.relname IN ('jobs', 'job_events') ORDER BY c.relname DESC;
