-- 013_running_cap_ceiling: the operator's running cap is a ceiling.
--
-- In 006 a tenant's own settings.max_running replaced the operator's
-- AGENTGATE_TENANT_MAX_RUNNING (the worker's p_default_max_running), so a
-- tenant admin could lift it: max_running 0 ("no cap") or any number up
-- to 1000000 was obeyed whatever the operator had configured. From here
-- the stricter of the two holds: the smaller cap, where 0 on either side
-- means that side sets no cap. A tenant can lower the operator's cap,
-- never lift it. PATCH /v1/tenants/{id} refuses a max_running over the
-- ceiling; rows written before, or by hand, are held to it here.

-- The cap a claim enforces: the smaller of the tenant's own (NULL or 0:
-- none of its own) and the operator's (0: none); 0 when neither caps.
CREATE FUNCTION running_cap(p_own integer, p_ceiling integer) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN coalesce(p_own, 0) <= 0 THEN greatest(coalesce(p_ceiling, 0), 0)
                WHEN coalesce(p_ceiling, 0) <= 0 THEN p_own
                ELSE least(p_own, p_ceiling) END
$$;

-- As in 006 (see there for why it crosses tenants and how the cap is
-- counted), with p_default_max_running now the operator's ceiling.
-- CREATE OR REPLACE keeps the owner and the grants (EXECUTE to
-- agentgate_app alone).
CREATE OR REPLACE FUNCTION agentgate_claim_job(p_id uuid, p_worker text,
                                               p_default_max_running integer,
                                               p_retry_ms integer)
RETURNS TABLE (o_outcome text, o_tenant_id text, o_type text, o_payload text,
               o_attempts integer, o_max_attempts integer, o_timeout_s integer,
               o_last_event_id bigint, o_created_by text, o_request_id text,
               o_traceparent text)
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
        -- A fresh snapshot (this statement's): every claim that held the
        -- lock before us has committed by now, so its row counts.
        SELECT count(*) INTO v_running FROM jobs j
         WHERE j.tenant_id = v_tenant AND j.status = 'running';
        IF v_running >= v_cap THEN
            RETURN QUERY
            UPDATE jobs j SET run_at = now() + p_retry_ms * interval '1 millisecond',
                              queued_at = now()
             WHERE j.id = p_id AND j.status = 'queued' AND j.cancel_requested_at IS NULL
            RETURNING 'capped'::text, j.tenant_id, j.type, NULL::text, j.attempts,
                      j.max_attempts, j.timeout_s, j.last_event_id, j.created_by,
                      j.request_id, j.traceparent;
            RETURN;
        END IF;
    END IF;

    RETURN QUERY
    UPDATE jobs j SET status = 'running', attempts = j.attempts + 1, started_at = now(),
                      heartbeat_at = now(), worker_id = p_worker
     WHERE j.id = p_id AND j.status = 'queued' AND j.cancel_requested_at IS NULL
    RETURNING 'claimed'::text, j.tenant_id, j.type, j.payload::text, j.attempts,
              j.max_attempts, j.timeout_s, j.last_event_id, j.created_by, j.request_id,
              j.traceparent;
END
$$;
