-- 026_scale: statements whose cost grew with the jobs table, made to read
-- a bounded number of rows whatever the history or the backlog holds.
--
-- GET /v1/jobs with a status or a type filter. The list is newest first
-- per tenant (jobs_tenant_created); with a filter, walking that index and
-- dropping the rows that do not match costs as many rows as the tenant has
-- jobs between two matching ones: for a status or a type that is rare in
-- a long history (the failed jobs of a tenant that seldom fails, the one
-- kind of job among a million of another) a page reads a share of the
-- tenant's history that grows with it. With the filter's column second, a
-- page is one index range in (created_at, id) order. The gateway sends the
-- list as an unnamed statement, planned for its values each time, so its
-- "$2 IS NULL OR j.status = $2" becomes the status test and these indexes
-- serve it. Cost: each job row version gets two more index entries (a
-- status change is never a HOT update anyway: jobs_unfinished holds the
-- status). Built here inside the migration's transaction, they hold off
-- writes to jobs while they are built (seconds per million jobs); on a
-- large table an operator can first build them by hand with CREATE INDEX
-- CONCURRENTLY under these names, and the migration then keeps them.
CREATE INDEX IF NOT EXISTS jobs_tenant_status_created
    ON jobs (tenant_id, status, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS jobs_tenant_type_created
    ON jobs (tenant_id, type, created_at DESC, id DESC);

-- The claim finds its job by id. Written as "j.id = p_id AND j.status =
-- 'queued'", the planner may take the partial index of queued jobs
-- (jobs_queued, jobs_unfinished) instead of the primary key whenever its
-- statistics say few jobs are queued (after an ANALYZE of a quiet moment),
-- and then every claim walks the whole backlog to find one id: a drain of
-- n queued jobs costs n^2. The status tests below are written "(...) IS
-- TRUE", which no partial index's predicate matches, so the primary key
-- is the only index these statements can use. Otherwise as in 017.
CREATE OR REPLACE FUNCTION agentgate_claim_job(p_id uuid, p_worker text,
                                               p_default_max_running integer,
                                               p_retry_ms integer)
RETURNS TABLE (o_outcome text, o_tenant_id text, o_type text, o_payload text,
               o_attempts integer, o_max_attempts integer, o_timeout_s integer,
               o_last_event_id bigint, o_created_by text, o_request_id text,
               o_traceparent text, o_queue_wait_s double precision)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = public, pg_temp
SET agentgate.maintenance = 'on'
AS $$
DECLARE
    v_tenant text;
    v_cap integer;
    v_running bigint;
BEGIN
    SELECT j.tenant_id INTO v_tenant FROM jobs j
     WHERE j.id = p_id AND (j.status = 'queued' AND j.cancel_requested_at IS NULL) IS TRUE;
    IF NOT FOUND THEN
        RETURN;
    END IF;

    SELECT tenant_max_running(te.settings) INTO v_cap FROM tenants te WHERE te.id = v_tenant;
    v_cap := running_cap(v_cap, p_default_max_running);
    IF v_cap > 0 THEN
        PERFORM pg_advisory_xact_lock(1634169460, hashtext(v_tenant));
        SELECT count(*) INTO v_running FROM jobs j
         WHERE j.tenant_id = v_tenant AND j.status = 'running';
        IF v_running >= v_cap THEN
            RETURN QUERY
            UPDATE jobs j SET run_at = now() + p_retry_ms * interval '1 millisecond',
                              queued_at = now()
             WHERE j.id = p_id
               AND (j.status = 'queued' AND j.cancel_requested_at IS NULL) IS TRUE
            RETURNING 'capped'::text, j.tenant_id, j.type, NULL::text, j.attempts,
                      j.max_attempts, j.timeout_s, j.last_event_id, j.created_by,
                      j.request_id, j.traceparent, NULL::double precision;
            RETURN;
        END IF;
    END IF;

    RETURN QUERY
    UPDATE jobs j SET status = 'running', attempts = j.attempts + 1, started_at = now(),
                      heartbeat_at = now(), worker_id = p_worker
     WHERE j.id = p_id AND (j.status = 'queued' AND j.cancel_requested_at IS NULL) IS TRUE
    RETURNING 'claimed'::text, j.tenant_id, j.type, j.payload::text, j.attempts,
              j.max_attempts, j.timeout_s, j.last_event_id, j.created_by, j.request_id,
              j.traceparent,
              greatest(0, extract(epoch FROM clock_timestamp()
                       - greatest(j.queued_at, coalesce(j.run_at, j.queued_at))))::double precision;
END
$$;
