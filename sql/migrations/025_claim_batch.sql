-- 025_claim_batch: a worker claims a batch of popped ids in one statement.
--
-- A worker takes up to as many ids off Redis as it has idle job threads
-- and claims them together: one round trip, one commit, one statement to
-- plan, for the whole batch. Each id goes through agentgate_claim_job
-- (017) exactly as a claim of one id does: the same fence (queued, no
-- cancel requested), the same tenant running cap (its lock is taken once
-- per tenant and held to the end of the transaction, and the count of
-- running jobs sees the batch's own earlier claims), the same 'capped'
-- answer with run_at moved. Ids that are not claimable (cancelled, taken
-- by another worker, unknown) have no row in the answer. o_id says which
-- id a row is about.
--
-- A running cap's lock is held to the end of the transaction, so two
-- batches naming the same tenants must take their locks in one order, or
-- each could wait for the other: the ids are claimed in the order of their
-- tenant's lock key (then as given, so one tenant's ids keep the order
-- they were popped in).

CREATE FUNCTION agentgate_claim_jobs(p_ids uuid[], p_worker text,
                                     p_default_max_running integer,
                                     p_retry_ms integer)
RETURNS TABLE (o_id uuid, o_outcome text, o_tenant_id text, o_type text, o_payload text,
               o_attempts integer, o_max_attempts integer, o_timeout_s integer,
               o_last_event_id bigint, o_created_by text, o_request_id text,
               o_traceparent text, o_queue_wait_s double precision)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = public, pg_temp
SET agentgate.maintenance = 'on'
AS $$
DECLARE
    v_id uuid;
BEGIN
    FOR v_id IN
        SELECT u.id FROM unnest(p_ids) WITH ORDINALITY AS u(id, n)
          LEFT JOIN jobs j ON j.id = u.id
         ORDER BY hashtext(j.tenant_id), j.tenant_id, u.n
    LOOP
        RETURN QUERY
        SELECT v_id, c.* FROM agentgate_claim_job(v_id, p_worker, p_default_max_running,
                                                  p_retry_ms) c;
    END LOOP;
END
$$;

REVOKE ALL ON FUNCTION agentgate_claim_jobs(uuid[], text, integer, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION agentgate_claim_jobs(uuid[], text, integer, integer) TO agentgate_app;
