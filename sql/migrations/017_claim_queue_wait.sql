-- 017_claim_queue_wait: a claim reports how long the job waited.
--
-- The worker's agentgate_job_queue_wait_seconds histogram needs, for each
-- job it starts, the time from when the job became due (queued_at: it was
-- submitted, retried or handed back; or run_at when that is later: a
-- scheduled run or a retry's backoff) to its start. The claim computes it
-- in the statement that starts the job, so it costs no extra round trip.
--
-- Same body as 013 with one more output column at the end (o_queue_wait_s,
-- NULL on the 'capped' path). A changed result type cannot be replaced in
-- place, so the function is dropped and created again, with 006's grants.
-- A worker built before this reads the first eleven columns only.

DROP FUNCTION agentgate_claim_job(uuid, text, integer, integer);

CREATE FUNCTION agentgate_claim_job(p_id uuid, p_worker text,
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
     WHERE j.id = p_id AND j.status = 'queued' AND j.cancel_requested_at IS NULL;
    IF NOT FOUND THEN
        RETURN;
    END IF;

    SELECT tenant_max_running(te.settings) INTO v_cap FROM tenants te WHERE te.id = v_tenant;
    v_cap := running_cap(v_cap, p_default_max_running);
    IF v_cap > 0 THEN
        -- 0x61677274 ('agrt'): the key space of the running caps.
        PERFORM pg_advisory_xact_lock(1634169460, hashtext(v_tenant));
        SELECT count(*) INTO v_running FROM jobs j
         WHERE j.tenant_id = v_tenant AND j.status = 'running';
        IF v_running >= v_cap THEN
            RETURN QUERY
            UPDATE jobs j SET run_at = now() + p_retry_ms * interval '1 millisecond',
                              queued_at = now()
             WHERE j.id = p_id AND j.status = 'queued' AND j.cancel_requested_at IS NULL
            RETURNING 'capped'::text, j.tenant_id, j.type, NULL::text, j.attempts,
                      j.max_attempts, j.timeout_s, j.last_event_id, j.created_by,
                      j.request_id, j.traceparent, NULL::double precision;
            RETURN;
        END IF;
    END IF;

    -- clock_timestamp(), not now(): the transaction may have waited for
    -- the running-cap lock, and that wait is queue wait too.
    RETURN QUERY
    UPDATE jobs j SET status = 'running', attempts = j.attempts + 1, started_at = now(),
                      heartbeat_at = now(), worker_id = p_worker
     WHERE j.id = p_id AND j.status = 'queued' AND j.cancel_requested_at IS NULL
    RETURNING 'claimed'::text, j.tenant_id, j.type, j.payload::text, j.attempts,
              j.max_attempts, j.timeout_s, j.last_event_id, j.created_by, j.request_id,
              j.traceparent,
              greatest(0, extract(epoch FROM clock_timestamp()
                       - greatest(j.queued_at, coalesce(j.run_at, j.queued_at))))::double precision;
END
$$;

REVOKE ALL ON FUNCTION agentgate_claim_job(uuid, text, integer, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION agentgate_claim_job(uuid, text, integer, integer) TO agentgate_app;
