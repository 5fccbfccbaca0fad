-- 023_priority_bands: the reaper and reconciliation learn each job's
-- priority.
--
-- A job waits in Redis in the list of its priority band (common/jobq.h).
-- A worker that queues a job again after running it knows the band it
-- took the job from; the reaper (a job whose worker died) and
-- reconciliation (a queued job Redis lost) start from PostgreSQL, so the
-- two cross-tenant functions that feed them now also return the job's
-- priority. Their result type changes, so they are dropped and created
-- again, with the same privileges as in 006_security.sql.

DROP FUNCTION agentgate_lock_expired(bigint, text, integer);
DROP FUNCTION agentgate_queued_jobs(bigint, integer);

-- Locks (SKIP LOCKED) the running jobs whose lease ran out, or that the
-- worker p_orphans_of left running, for the reaper's transaction (see
-- 006_security.sql).
CREATE FUNCTION agentgate_lock_expired(p_lease_ms bigint, p_orphans_of text, p_limit integer)
RETURNS TABLE (o_id text, o_tenant_id text, o_type text, o_attempts integer,
               o_max_attempts integer, o_last_event_id bigint, o_worker_id text,
               o_cancel_requested boolean, o_priority integer)
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = public, pg_temp
SET agentgate.maintenance = 'on'
AS $$
    SELECT j.id::text, j.tenant_id, j.type, j.attempts, j.max_attempts, j.last_event_id,
           coalesce(j.worker_id, ''), j.cancel_requested_at IS NOT NULL, j.priority
      FROM jobs j
     WHERE j.status = 'running'
       AND (j.heartbeat_at < now() - p_lease_ms * interval '1 millisecond'
            OR j.worker_id = p_orphans_of)
     ORDER BY j.heartbeat_at
     LIMIT p_limit
       FOR UPDATE SKIP LOCKED
$$;

-- Queued jobs that waited longer than p_grace_ms, for reconciliation of
-- Redis with PostgreSQL (see 006_security.sql).
CREATE FUNCTION agentgate_queued_jobs(p_grace_ms bigint, p_limit integer)
RETURNS TABLE (o_id text, o_tenant_id text, o_type text, o_attempts integer,
               o_last_event_id bigint, o_due_ms bigint, o_cancel_requested boolean,
               o_priority integer)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = public, pg_temp
SET agentgate.maintenance = 'on'
AS $$
    SELECT j.id::text, j.tenant_id, j.type, j.attempts, j.last_event_id,
           CASE WHEN j.run_at > now() THEN (extract(epoch FROM j.run_at) * 1000)::bigint
                ELSE 0 END,
           j.cancel_requested_at IS NOT NULL, j.priority
      FROM jobs j
     WHERE j.status = 'queued'
       AND j.queued_at < now() - p_grace_ms * interval '1 millisecond'
     ORDER BY j.queued_at
     LIMIT p_limit
$$;

REVOKE ALL ON FUNCTION agentgate_lock_expired(bigint, text, integer),
                       agentgate_queued_jobs(bigint, integer)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION agentgate_lock_expired(bigint, text, integer),
                          agentgate_queued_jobs(bigint, integer)
    TO agentgate_app;
