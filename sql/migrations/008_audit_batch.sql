-- 008_audit_batch: audit rows are group-committed like jobs.
--
-- The gateway writes one audit row per mutating call. Inserted one by one,
-- each is its own transaction and its own WAL flush: under load that is one
-- fsync per request, which undid the group commit of submissions. The
-- gateway now gathers the rows of a few ms on each loop thread and inserts them with
-- this one call (one transaction, one flush). Rows may belong to several
-- tenants: each tenant's rows are inserted with that tenant set, so the
-- row-level security policy of audit_logs checks every row (006). Runs as
-- the caller (SECURITY INVOKER): it grants nothing the caller lacks.

CREATE FUNCTION audit_insert_batch(p_rows jsonb) RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    t text;
BEGIN
    IF jsonb_typeof(p_rows) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'audit_insert_batch: expected a JSON array';
    END IF;
    FOR t IN SELECT DISTINCT r->>'tenant_id' FROM jsonb_array_elements(p_rows) AS r LOOP
        PERFORM set_config('agentgate.tenant_id', t, true);
        INSERT INTO audit_logs (tenant_id, principal, action, resource, outcome,
                                request_id, detail)
        SELECT e.r->>'tenant_id', e.r->>'principal', e.r->>'action', e.r->>'resource',
               e.r->>'outcome', e.r->>'request_id', e.r->'detail'
          FROM jsonb_array_elements(p_rows) WITH ORDINALITY AS e(r, n)
         WHERE e.r->>'tenant_id' = t
         ORDER BY e.n;
    END LOOP;
    PERFORM set_config('agentgate.tenant_id', '', true);
END
$$;
