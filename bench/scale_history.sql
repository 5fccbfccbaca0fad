-- bench/scale_history.sql - one share of the scale bench's history: finished
-- jobs and their events, written straight into PostgreSQL by psql as the
-- database owner (bench/run starts two of these at once, one per share).
--
-- psql variables: jobs (all shares together), events_per_job, part (0-based)
-- and parts. Share part holds jobs number part*jobs/parts+1 ..
-- (part+1)*jobs/parts; job i was created at now() - 3 days + i/jobs of
-- (3 days - 10 minutes), so the history ends 10 minutes ago and is well
-- inside retention (30 days by default): nothing is deleted mid-bench.
--
-- The rows are what the services write for a finished job: every NOT NULL
-- column, one tenant in five the bench tenant and the rest t1..t4, types
-- test and long-running, 80 % succeeded (a result), 10 % failed (an error
-- code and message), 10 % cancelled (cancel_requested_at too) in every
-- tenant, one
-- attempt, last_event_id = the number of events, and events 1..n with the
-- body a worker writes: job.queued, job.started, job.progress x (n - 3),
-- the terminal event. Ids are UUIDv7 from created_at, as the gateway
-- makes them. The events go in with session_replication_role = replica:
-- PostgreSQL then skips the foreign-key check of each event (a lookup per
-- row, queued until the statement ends); every event's job is inserted
-- just before by this same script, and bench/run checks a sample after.
\set ON_ERROR_STOP 1
SET synchronous_commit = off;

CREATE TEMP TABLE h AS
SELECT i,
       (lpad(to_hex((extract(epoch FROM c) * 1000)::bigint), 12, '0') || '7'
        || substr(md5(i::text), 1, 3) || '8' || substr(md5(i::text), 4, 15))::uuid AS id,
       CASE WHEN i % 5 = 0 THEN 'bench' ELSE 't' || (i % 5) END AS tenant_id,
       CASE WHEN i % 7 = 0 THEN 'long-running' ELSE 'test' END AS type,
       CASE (i / 5) % 10 WHEN 3 THEN 'failed' WHEN 7 THEN 'cancelled' ELSE 'succeeded' END
           AS status,
       c AS created_at
  FROM generate_series(:part::bigint * :jobs / :parts + 1,
                       (:part::bigint + 1) * :jobs / :parts) AS i,
       LATERAL (SELECT now() - interval '3 days'
                       + (interval '3 days' - interval '10 minutes') * i / :jobs AS c) t;

INSERT INTO jobs (id, tenant_id, type, status, priority, payload, result, error_code,
                  error_message, attempts, max_attempts, timeout_s, created_by, created_at,
                  queued_at, started_at, finished_at, heartbeat_at, worker_id, last_event_id,
                  cancel_requested_at, request_id, traceparent)
SELECT h.id, h.tenant_id, h.type, h.status, 0,
       CASE WHEN h.type = 'test'
            THEN jsonb_build_object('outcome', 'succeed', 'sleep_ms', 0,
                                    'note', 'history row ' || h.i)
            ELSE jsonb_build_object('duration_ms', 200, 'progress_interval_ms', 20) END,
       CASE WHEN h.status = 'succeeded'
            THEN jsonb_build_object('attempt', 1, 'rows', h.i % 1000) END,
       CASE h.status WHEN 'failed' THEN 'test_failure' WHEN 'cancelled' THEN 'cancelled' END,
       CASE h.status WHEN 'failed' THEN 'the test job was asked to fail'
                     WHEN 'cancelled' THEN 'cancelled by request' END,
       1, 3, 300, 'bench', h.created_at, h.created_at,
       h.created_at + interval '2 ms', h.created_at + interval '25 ms',
       h.created_at + interval '25 ms', 'local-' || (1 + h.i % 2), :events_per_job,
       CASE WHEN h.status = 'cancelled' THEN h.created_at + interval '10 ms' END,
       md5('r' || h.i)::uuid::text,
       '00-' || md5('t' || h.i) || '-' || substr(md5('s' || h.i), 1, 16) || '-01'
  FROM h;

SET session_replication_role = replica;
INSERT INTO job_events (job_id, tenant_id, seq, type, body, created_at)
SELECT h.id, h.tenant_id, e.seq, e.type,
       '{"id":' || e.seq || ',"job_id":"' || h.id || '","type":"' || e.type || '","ts":"'
       || to_char(e.ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') || '","data":'
       || e.data || '}',
       e.ts
  FROM h,
       LATERAL (SELECT s AS seq,
                       CASE WHEN s = 1 THEN 'job.queued'
                            WHEN s = 2 THEN 'job.started'
                            WHEN s < :events_per_job THEN 'job.progress'
                            ELSE 'job.' || h.status END AS type,
                       CASE WHEN s = 1 THEN '{"type":"' || h.type || '","priority":0}'
                            WHEN s = 2 THEN '{"attempt":1,"worker_id":"local-' || (1 + h.i % 2) || '"}'
                            WHEN s < :events_per_job
                                THEN '{"progress":{"step":' || (s - 2) || ',"of":'
                                     || (:events_per_job - 3) || '}}'
                            WHEN h.status = 'succeeded'
                                THEN '{"result":{"attempt":1,"rows":' || (h.i % 1000) || '}}'
                            WHEN h.status = 'failed'
                                THEN '{"error":{"code":"test_failure","message":"the test job was asked to fail"}}'
                            ELSE '{"error":{"code":"cancelled","message":"cancelled by request"}}'
                       END AS data,
                       h.created_at + s * interval '2 ms' AS ts
                  FROM generate_series(1, :events_per_job) AS s) e;
RESET session_replication_role;
