-- 014_retry_dead_letters: retries of finished jobs, and the dead-letter
-- list an operator works through.
--
-- A retry (POST /v1/jobs/{id}/retry, POST /v1/dead-letters/...) is a NEW
-- job with the old one's type, payload, priority, max_attempts and
-- timeout; retry_of names the job it retries. The old job is left as it
-- was: it keeps its one terminal transition and its ended event log.
--
-- A dead letter is a tenant's failed job that nobody has dealt with yet:
-- status 'failed' and dead_resolved_at NULL. Retrying it or discarding it
-- sets dead_resolved_at (the job itself stays failed), and it leaves the
-- list. PostgreSQL alone says what the list holds. The Redis list
-- jobs:dead is another thing: the workers' capped log of recent failures
-- across tenants, which stays true when a failed job is retried or
-- discarded (the job is still failed), so nothing here or in the gateway
-- changes it.
--
-- The new columns are covered by the tenant_rows policy of 006 like every
-- other column of jobs: no policy or grant changes.

ALTER TABLE jobs
    ADD COLUMN retry_of uuid REFERENCES jobs (id) ON DELETE SET NULL,
    ADD COLUMN dead_resolved_at timestamptz;
-- The retries of a job; also what keeps the foreign key's check cheap when
-- a job is deleted. Only retries are indexed.
CREATE INDEX jobs_retry_of ON jobs (retry_of) WHERE retry_of IS NOT NULL;

-- The dead-letter list of a tenant, newest first with the (created_at, id)
-- keyset cursor of every listing; also what counts a tenant's dead jobs.
-- Only the open entries are indexed, so the index stays as small as the
-- list itself however many failed jobs have been dealt with.
CREATE INDEX jobs_dead_letters ON jobs (tenant_id, created_at DESC, id DESC)
    WHERE status = 'failed' AND dead_resolved_at IS NULL;

-- Agent runs are listed newest first with a (created_at, id) keyset
-- cursor, as jobs and sessions are; the index of 001 lacked the id
-- tiebreak.
CREATE INDEX agent_runs_tenant_created ON agent_runs (tenant_id, created_at DESC, id DESC);
DROP INDEX agent_runs_tenant;

-- job_json of 002 with retry_of, just before links. The gateway renders a
-- just-submitted job itself (gateway/store/job_json.c) and must print the
-- same members in the same order.
CREATE OR REPLACE FUNCTION job_json(j jobs) RETURNS json
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT json_build_object(
        'id', j.id,
        'type', j.type,
        'status', api_job_status(j),
        'priority', j.priority,
        'payload', j.payload,
        'result', j.result,
        'error', api_job_error(j),
        'attempts', j.attempts,
        'max_attempts', j.max_attempts,
        'timeout_s', j.timeout_s,
        'progress', j.progress,
        'run_at', api_ts(j.run_at),
        'created_at', api_ts(j.created_at),
        'started_at', api_ts(j.started_at),
        'finished_at', api_ts(j.finished_at),
        'heartbeat_at', api_ts(j.heartbeat_at),
        'worker_id', j.worker_id,
        'last_event_id', j.last_event_id,
        'retry_of', j.retry_of,
        'links', json_build_object('self', '/v1/jobs/' || j.id,
                                   'events', '/v1/jobs/' || j.id || '/events'))
$$;

-- jobs_submit_rows of 009 with p_retry_of (NULL elements for a plain
-- submission). A row that retries a failed job also resolves that job's
-- dead letter, in the same transaction as the insert, so a retry and the
-- entry leaving the list are never seen apart. That update runs only for
-- a batch with retries in it, by primary key, so plain submissions pay
-- nothing for it. Everything else is as in 009: SECURITY INVOKER, each
-- tenant's rows under that tenant's setting.
CREATE FUNCTION jobs_submit_rows(p_id uuid[], p_tenant text[], p_type text[],
                                 p_priority int[], p_payload jsonb[], p_max_attempts int[],
                                 p_timeout_s int[], p_created_by text[], p_request_id text[],
                                 p_traceparent text[], p_event_body text[], p_run_at_ms bigint[],
                                 p_retry_of uuid[])
RETURNS TABLE (ord bigint, o_created_at timestamptz, o_run_at timestamptz, o_payload text)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    t text;
    v_retried uuid[];
BEGIN
    FOR t IN SELECT DISTINCT x FROM unnest(p_tenant) AS x LOOP
        PERFORM set_config('agentgate.tenant_id', t, true);
        RETURN QUERY
        WITH input AS (
            SELECT * FROM unnest(p_id, p_tenant, p_type, p_priority, p_payload,
                                 p_max_attempts, p_timeout_s, p_created_by, p_request_id,
                                 p_traceparent, p_event_body, p_run_at_ms, p_retry_of)
                   WITH ORDINALITY AS u(id, tenant_id, type, priority, payload, max_attempts,
                                        timeout_s, created_by, request_id, traceparent,
                                        event_body, run_at_ms, retry_of, n)
             WHERE u.tenant_id = t),
        j AS (
            INSERT INTO jobs (id, tenant_id, type, status, priority, payload, max_attempts,
                              timeout_s, created_by, last_event_id, request_id, traceparent,
                              run_at, retry_of)
            SELECT i.id, i.tenant_id, i.type, 'queued', i.priority, i.payload, i.max_attempts,
                   i.timeout_s, i.created_by, 1, i.request_id, i.traceparent,
                   CASE WHEN i.run_at_ms > 0 THEN to_timestamp(i.run_at_ms / 1000.0) END,
                   i.retry_of
              FROM input i ORDER BY i.n
            RETURNING jobs.id, jobs.created_at, jobs.run_at, jobs.payload::text AS payload),
        e AS (
            INSERT INTO job_events (job_id, tenant_id, seq, type, body)
            SELECT i.id, i.tenant_id, 1, 'job.queued', i.event_body FROM input i)
        SELECT i.n, j.created_at, j.run_at, j.payload FROM j JOIN input i ON i.id = j.id;

        v_retried := ARRAY(SELECT u.r FROM unnest(p_retry_of, p_tenant) AS u(r, tenant_id)
                            WHERE u.r IS NOT NULL AND u.tenant_id = t);
        IF cardinality(v_retried) > 0 THEN
            UPDATE jobs o SET dead_resolved_at = now()
             WHERE o.id = ANY (v_retried) AND o.tenant_id = t
               AND o.status = 'failed' AND o.dead_resolved_at IS NULL;
        END IF;
    END LOOP;
    PERFORM set_config('agentgate.tenant_id', '', true);
END
$$;

-- Nothing calls the 009 function any more.
DROP FUNCTION jobs_submit_rows(uuid[], text[], text[], int[], jsonb[], int[], int[], text[],
                               text[], text[], text[], bigint[]);
