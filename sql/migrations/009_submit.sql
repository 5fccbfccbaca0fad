-- 009_submit: a leaner group commit of submissions (issue 6).
--
-- jobs_submit_batch (006) answers each row with job_json(j): a SQL
-- function run through its own executor for every row, then
-- json_build_object and a to_char per timestamp. That rendering was about
-- a third of the statement's cost. A fresh job is known to the gateway
-- already, except for what only the insert decides: its created_at (the
-- row's default, now() of this transaction), its run_at as stored, and its
-- payload as jsonb prints it. This function inserts exactly what
-- jobs_submit_batch inserts and answers only those, so the gateway renders
-- the same JSON itself (gateway/api_util.c, api_queued_job_json).
-- Like jobs_submit_batch it is SECURITY INVOKER and sets each tenant in
-- turn for its rows, so row-level security checks every row and the
-- batch stays one statement, one transaction, one WAL flush.

CREATE FUNCTION jobs_submit_rows(p_id uuid[], p_tenant text[], p_type text[],
                                 p_priority int[], p_payload jsonb[], p_max_attempts int[],
                                 p_timeout_s int[], p_created_by text[], p_request_id text[],
                                 p_traceparent text[], p_event_body text[], p_run_at_ms bigint[])
RETURNS TABLE (ord bigint, o_created_at timestamptz, o_run_at timestamptz, o_payload text)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    t text;
BEGIN
    FOR t IN SELECT DISTINCT x FROM unnest(p_tenant) AS x LOOP
        PERFORM set_config('agentgate.tenant_id', t, true);
        RETURN QUERY
        WITH input AS (
            SELECT * FROM unnest(p_id, p_tenant, p_type, p_priority, p_payload,
                                 p_max_attempts, p_timeout_s, p_created_by, p_request_id,
                                 p_traceparent, p_event_body, p_run_at_ms)
                   WITH ORDINALITY AS u(id, tenant_id, type, priority, payload, max_attempts,
                                        timeout_s, created_by, request_id, traceparent,
                                        event_body, run_at_ms, n)
             WHERE u.tenant_id = t),
        j AS (
            INSERT INTO jobs (id, tenant_id, type, status, priority, payload, max_attempts,
                              timeout_s, created_by, last_event_id, request_id, traceparent,
                              run_at)
            SELECT i.id, i.tenant_id, i.type, 'queued', i.priority, i.payload, i.max_attempts,
                   i.timeout_s, i.created_by, 1, i.request_id, i.traceparent,
                   CASE WHEN i.run_at_ms > 0 THEN to_timestamp(i.run_at_ms / 1000.0) END
              FROM input i ORDER BY i.n
            RETURNING jobs.id, jobs.created_at, jobs.run_at, jobs.payload::text AS payload),
        e AS (
            INSERT INTO job_events (job_id, tenant_id, seq, type, body)
            SELECT i.id, i.tenant_id, 1, 'job.queued', i.event_body FROM input i)
        SELECT i.n, j.created_at, j.run_at, j.payload FROM j JOIN input i ON i.id = j.id;
    END LOOP;
    PERFORM set_config('agentgate.tenant_id', '', true);
END
$$;

-- Nothing calls the old function any more.
DROP FUNCTION jobs_submit_batch(uuid[], text[], text[], int[], jsonb[], int[], int[], text[],
                                text[], text[], text[], bigint[]);
