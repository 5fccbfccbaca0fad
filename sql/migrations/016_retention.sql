-- 016_retention: old rows are deleted, in small batches, through two
-- narrow functions the services may call.
--
--   finished jobs (succeeded, failed, cancelled) whose finished_at is older
--   than their tenant's retention - tenants.settings.retention_days, else
--   the operator's default the caller passes (AGENTGATE_RETENTION_DAYS) -
--   go with their events, agent run and steps;
--   audit rows older than the audit retention (AGENTGATE_AUDIT_RETENTION_DAYS)
--   go on their own clock: the audit trail outlives the jobs it names.
--
-- The services' role has no DELETE on jobs, job_events, agent_runs or
-- audit_logs (006), and gets none here: these functions are the only way
-- it deletes them, and neither takes a row id, a tenant or a date - only
-- a number of days, at least one, and a batch size, at most 10000. A job
-- that is queued or running is never touched, however old.
--
-- Each call is one short transaction of at most p_limit jobs (or audit
-- rows): the worker's maintenance thread (worker/runtime/retention.c)
-- calls it again while batches come back full, one worker at a time
-- under a session advisory lock. Job rows are taken FOR UPDATE SKIP
-- LOCKED, so a call never waits on a row another transaction holds.

-- tenants.settings.retention_days when it is a whole number in 1..3650
-- (what common/tenant_settings.c accepts), else NULL: the caller's default
-- applies. A malformed value can only come from a hand edit; it must not
-- make retention fail.
CREATE FUNCTION tenant_retention_days(settings jsonb) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN jsonb_typeof(settings -> 'retention_days') = 'number'
                 AND (settings ->> 'retention_days') ~ '^[0-9]{1,4}$'
                 AND (settings ->> 'retention_days')::integer BETWEEN 1 AND 3650
                THEN (settings ->> 'retention_days')::integer END
$$;

-- A tenant's finished jobs by finish time: what retention deletes, oldest
-- first, and (its leading column) the tenants that have finished jobs,
-- found one index probe each.
CREATE INDEX jobs_finished ON jobs (tenant_id, finished_at)
    WHERE status IN ('succeeded', 'failed', 'cancelled');

-- The SECURITY DEFINER functions run as the owner, whom FORCE ROW LEVEL
-- SECURITY puts under the tenant policies. The jobs' and tenants' rows
-- they read through definer_maintenance (006, agentgate.maintenance =
-- on); the rows of the other tables go through these policies, which
-- need agentgate.retention = on - set only by the functions below, as a
-- SET clause undone when they return - and are granted to the owner
-- alone: the services' role may set the flag, no policy of its reads it.
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['job_events', 'agent_runs', 'steps', 'audit_logs'] LOOP
        EXECUTE format(
            'CREATE POLICY definer_retention_read ON %I FOR SELECT TO %I'
            ' USING (current_setting(''agentgate.retention'', true) = ''on'')',
            t, current_user);
        EXECUTE format(
            'CREATE POLICY definer_retention_delete ON %I FOR DELETE TO %I'
            ' USING (current_setting(''agentgate.retention'', true) = ''on'')',
            t, current_user);
    END LOOP;
END
$$;

-- Deletes up to p_limit finished jobs past their tenant's retention
-- (p_default_days for a tenant without retention_days), oldest first
-- within each tenant, tenants in id order, and with each its agent run,
-- the run's steps and its events. Answers one row: how many rows of each
-- table went, the ids of the jobs, and of those that had failed (only
-- they can be in the Redis log jobs:dead), so the caller can drop what
-- Redis still holds of them. Needs to cross tenants because retention is the
-- operator's housekeeping, run on a connection of no tenant.
CREATE FUNCTION agentgate_retention_jobs(p_default_days integer, p_limit integer)
RETURNS TABLE (o_jobs bigint, o_job_events bigint, o_agent_runs bigint, o_steps bigint,
               o_ids text[], o_failed_ids text[])
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = public, pg_temp
SET agentgate.maintenance = 'on'
SET agentgate.retention = 'on'
AS $$
DECLARE
    v_tenant text;
    v_days integer;
    v_ids uuid[] := '{}';
BEGIN
    IF p_default_days IS NULL OR p_default_days NOT BETWEEN 1 AND 36500 THEN
        RAISE EXCEPTION 'agentgate_retention_jobs: retention must be 1..36500 days, not %',
            p_default_days;
    END IF;
    IF p_limit IS NULL OR p_limit NOT BETWEEN 1 AND 10000 THEN
        RAISE EXCEPTION 'agentgate_retention_jobs: batch must be 1..10000 jobs, not %',
            p_limit;
    END IF;
    o_jobs := 0; o_job_events := 0; o_agent_runs := 0; o_steps := 0;

    -- The tenants with finished jobs, one probe of jobs_finished each.
    v_tenant := (SELECT min(j.tenant_id) FROM jobs j
                  WHERE j.status IN ('succeeded', 'failed', 'cancelled'));
    WHILE v_tenant IS NOT NULL AND cardinality(v_ids) < p_limit LOOP
        v_days := NULL;
        SELECT tenant_retention_days(te.settings) INTO v_days
          FROM tenants te WHERE te.id = v_tenant;
        v_days := coalesce(v_days, p_default_days);
        v_ids := v_ids || ARRAY(
            SELECT j.id FROM jobs j
             WHERE j.tenant_id = v_tenant
               AND j.status IN ('succeeded', 'failed', 'cancelled')
               AND j.finished_at < now() - v_days * interval '1 day'
             ORDER BY j.finished_at
             LIMIT p_limit - cardinality(v_ids)
               FOR UPDATE SKIP LOCKED);
        v_tenant := (SELECT min(j.tenant_id) FROM jobs j
                      WHERE j.status IN ('succeeded', 'failed', 'cancelled')
                        AND j.tenant_id > v_tenant);
    END LOOP;

    IF cardinality(v_ids) > 0 THEN
        -- Children first, so each table's count is its own (the foreign
        -- keys would cascade, uncounted).
        DELETE FROM steps s USING agent_runs r
         WHERE s.run_id = r.id AND r.job_id = ANY (v_ids);
        GET DIAGNOSTICS o_steps = ROW_COUNT;
        DELETE FROM agent_runs r WHERE r.job_id = ANY (v_ids);
        GET DIAGNOSTICS o_agent_runs = ROW_COUNT;
        DELETE FROM job_events e WHERE e.job_id = ANY (v_ids);
        GET DIAGNOSTICS o_job_events = ROW_COUNT;
        WITH d AS (DELETE FROM jobs j WHERE j.id = ANY (v_ids) RETURNING j.id, j.status)
        SELECT count(*), coalesce(array_agg(d.id::text) FILTER (WHERE d.status = 'failed'),
                                  '{}')
          INTO o_jobs, o_failed_ids FROM d;
    ELSE
        o_failed_ids := '{}';
    END IF;
    o_ids := v_ids::text[];
    RETURN NEXT;
END
$$;

-- Deletes up to p_limit audit rows older than p_days, oldest first within
-- each tenant, tenants in id order (one probe of audit_logs_tenant each).
-- Returns the number deleted. Crosses tenants for the same reason as
-- agentgate_retention_jobs.
CREATE FUNCTION agentgate_retention_audit(p_days integer, p_limit integer)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = public, pg_temp
SET agentgate.retention = 'on'
AS $$
DECLARE
    v_tenant text;
    v_n bigint;
    v_total bigint := 0;
BEGIN
    IF p_days IS NULL OR p_days NOT BETWEEN 1 AND 36500 THEN
        RAISE EXCEPTION 'agentgate_retention_audit: retention must be 1..36500 days, not %',
            p_days;
    END IF;
    IF p_limit IS NULL OR p_limit NOT BETWEEN 1 AND 10000 THEN
        RAISE EXCEPTION 'agentgate_retention_audit: batch must be 1..10000 rows, not %',
            p_limit;
    END IF;
    v_tenant := (SELECT min(a.tenant_id) FROM audit_logs a);
    WHILE v_tenant IS NOT NULL AND v_total < p_limit LOOP
        DELETE FROM audit_logs a
         WHERE a.id IN (SELECT a2.id FROM audit_logs a2
                         WHERE a2.tenant_id = v_tenant
                           AND a2.created_at < now() - p_days * interval '1 day'
                         ORDER BY a2.created_at
                         LIMIT p_limit - v_total);
        GET DIAGNOSTICS v_n = ROW_COUNT;
        v_total := v_total + v_n;
        v_tenant := (SELECT min(a.tenant_id) FROM audit_logs a WHERE a.tenant_id > v_tenant);
    END LOOP;
    RETURN v_total;
END
$$;

REVOKE ALL ON FUNCTION agentgate_retention_jobs(integer, integer),
                       agentgate_retention_audit(integer, integer)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION agentgate_retention_jobs(integer, integer),
                          agentgate_retention_audit(integer, integer)
    TO agentgate_app;
