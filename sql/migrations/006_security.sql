-- 006_security: tenant isolation inside PostgreSQL (row-level security),
-- the services' own non-owner role, and the few SECURITY DEFINER
-- functions that do the cross-tenant work a worker cannot avoid.
--
-- Every statement the services run already filters by tenant_id; the
-- policies below make a statement that forgets to do so see and change
-- nothing of another tenant. The services say whose they are per
-- transaction with
--     SELECT set_config('agentgate.tenant_id', <tenant>, true)
-- sent in the same pipeline segment as the statement (gateway:
-- pg_pool_query_as; worker: store_exec_as), so the setting can never
-- outlive the statement's transaction or leak to the next user of the
-- connection. With no tenant set, no tenant row is visible.
--
-- Roles:
--   the owner  - whoever runs the migrations (AGENTGATE_MIGRATE_DATABASE_URL):
--                owns every table and function, and is the only role that
--                can change the schema. FORCE ROW LEVEL SECURITY puts the
--                owner under the policies too, so even a service wrongly
--                configured with the owner's URL stays inside one tenant;
--                a superuser (the local stack's) bypasses RLS as always.
--   agentgate_app - what the gateway and workers log in as
--                (AGENTGATE_DATABASE_URL): the data privileges they need,
--                no DDL, no BYPASSRLS. Created NOLOGIN here when missing;
--                giving it LOGIN and a password is the DBA's (or
--                deploy/local/agentgate-stack's) job.
--
-- This file assumes the objects live in schema public, like 001-005.

-- --------------------------------------------------------------------------
-- The app role

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'agentgate_app') THEN
        BEGIN
            CREATE ROLE agentgate_app NOLOGIN;
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE EXCEPTION 'role agentgate_app does not exist and % may not create roles',
                current_user
                USING HINT = 'as a superuser: CREATE ROLE agentgate_app LOGIN PASSWORD ''...''; '
                             'then run the migrations again';
        END;
    END IF;
    -- A role that bypasses row-level security would make every policy
    -- below decoration: refuse to set up on top of one.
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'agentgate_app'
                                         AND (rolsuper OR rolbypassrls)) THEN
        RAISE EXCEPTION 'role agentgate_app is a superuser or has BYPASSRLS; '
                        'tenant isolation needs a plain role';
    END IF;
    IF current_user = 'agentgate_app' THEN
        RAISE EXCEPTION 'migrations must run as the owner role, not as agentgate_app'
            USING HINT = 'set AGENTGATE_MIGRATE_DATABASE_URL to the owner''s URL';
    END IF;
END
$$;

-- What the services do, and nothing more: no DELETE of jobs, events or
-- audit rows, no access to schema_migrations, no DDL (PostgreSQL 15 gives
-- PUBLIC no CREATE on schema public).
GRANT USAGE ON SCHEMA public TO agentgate_app;
GRANT SELECT, INSERT, UPDATE         ON jobs           TO agentgate_app;
GRANT SELECT, INSERT                 ON job_events     TO agentgate_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON sessions       TO agentgate_app;
GRANT SELECT, INSERT, UPDATE         ON agent_runs     TO agentgate_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON steps          TO agentgate_app;
GRANT SELECT, INSERT                 ON audit_logs     TO agentgate_app;
GRANT SELECT, INSERT, UPDATE         ON tenants        TO agentgate_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON tool_manifests TO agentgate_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON model_defaults TO agentgate_app;
GRANT USAGE ON SEQUENCE audit_logs_id_seq, tool_manifests_id_seq, model_defaults_id_seq
    TO agentgate_app;

-- --------------------------------------------------------------------------
-- Policies

-- The tenant of the current transaction, or NULL when none is set ('' is
-- what a reset leaves, and means none too). Written out in each policy
-- rather than wrapped in a function, so the planner sees a plain stable
-- expression it can use with the (tenant_id, ...) indexes.

ALTER TABLE jobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE jobs FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_rows ON jobs
    USING (tenant_id = nullif(current_setting('agentgate.tenant_id', true), ''))
    WITH CHECK (tenant_id = nullif(current_setting('agentgate.tenant_id', true), ''));

ALTER TABLE job_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE job_events FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_rows ON job_events
    USING (tenant_id = nullif(current_setting('agentgate.tenant_id', true), ''))
    WITH CHECK (tenant_id = nullif(current_setting('agentgate.tenant_id', true), ''));

ALTER TABLE sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE sessions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_rows ON sessions
    USING (tenant_id = nullif(current_setting('agentgate.tenant_id', true), ''))
    WITH CHECK (tenant_id = nullif(current_setting('agentgate.tenant_id', true), ''));

ALTER TABLE agent_runs ENABLE ROW LEVEL SECURITY;
ALTER TABLE agent_runs FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_rows ON agent_runs
    USING (tenant_id = nullif(current_setting('agentgate.tenant_id', true), ''))
    WITH CHECK (tenant_id = nullif(current_setting('agentgate.tenant_id', true), ''));

ALTER TABLE steps ENABLE ROW LEVEL SECURITY;
ALTER TABLE steps FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_rows ON steps
    USING (tenant_id = nullif(current_setting('agentgate.tenant_id', true), ''))
    WITH CHECK (tenant_id = nullif(current_setting('agentgate.tenant_id', true), ''));

ALTER TABLE audit_logs ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_logs FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_rows ON audit_logs
    USING (tenant_id = nullif(current_setting('agentgate.tenant_id', true), ''))
    WITH CHECK (tenant_id = nullif(current_setting('agentgate.tenant_id', true), ''));

-- A tenant's own row (its name and settings) is its tenant's alone.
ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_rows ON tenants
    USING (id = nullif(current_setting('agentgate.tenant_id', true), ''))
    WITH CHECK (id = nullif(current_setting('agentgate.tenant_id', true), ''));

-- Tool manifests and model defaults with tenant_id NULL are global: every
-- tenant reads them, no service writes them (only the owner, by
-- migration or by hand). A tenant writes only its own rows.
ALTER TABLE tool_manifests ENABLE ROW LEVEL SECURITY;
ALTER TABLE tool_manifests FORCE ROW LEVEL SECURITY;
CREATE POLICY read_own_and_global ON tool_manifests FOR SELECT
    USING (tenant_id IS NULL
           OR tenant_id = nullif(current_setting('agentgate.tenant_id', true), ''));
CREATE POLICY insert_own ON tool_manifests FOR INSERT
    WITH CHECK (tenant_id = nullif(current_setting('agentgate.tenant_id', true), ''));
CREATE POLICY update_own ON tool_manifests FOR UPDATE
    USING (tenant_id = nullif(current_setting('agentgate.tenant_id', true), ''))
    WITH CHECK (tenant_id = nullif(current_setting('agentgate.tenant_id', true), ''));
CREATE POLICY delete_own ON tool_manifests FOR DELETE
    USING (tenant_id = nullif(current_setting('agentgate.tenant_id', true), ''));

ALTER TABLE model_defaults ENABLE ROW LEVEL SECURITY;
ALTER TABLE model_defaults FORCE ROW LEVEL SECURITY;
CREATE POLICY read_own_and_global ON model_defaults FOR SELECT
    USING (tenant_id IS NULL
           OR tenant_id = nullif(current_setting('agentgate.tenant_id', true), ''));
CREATE POLICY insert_own ON model_defaults FOR INSERT
    WITH CHECK (tenant_id = nullif(current_setting('agentgate.tenant_id', true), ''));
CREATE POLICY update_own ON model_defaults FOR UPDATE
    USING (tenant_id = nullif(current_setting('agentgate.tenant_id', true), ''))
    WITH CHECK (tenant_id = nullif(current_setting('agentgate.tenant_id', true), ''));
CREATE POLICY delete_own ON model_defaults FOR DELETE
    USING (tenant_id = nullif(current_setting('agentgate.tenant_id', true), ''));

-- The SECURITY DEFINER functions below run as the owner, whom FORCE puts
-- under the policies too. Each of them carries the function-level setting
-- agentgate.maintenance = on (a SET clause, undone when it returns), and
-- this policy lets the owner - and only the owner: it is granted TO that
-- role - past the tenant filter of jobs and tenants while it is on. The
-- app role may set agentgate.maintenance itself; no policy of its reads it.
DO $$
BEGIN
    EXECUTE format(
        'CREATE POLICY definer_maintenance ON jobs TO %I'
        ' USING (current_setting(''agentgate.maintenance'', true) = ''on'')'
        ' WITH CHECK (current_setting(''agentgate.maintenance'', true) = ''on'')',
        current_user);
    EXECUTE format(
        'CREATE POLICY definer_maintenance ON tenants FOR SELECT TO %I'
        ' USING (current_setting(''agentgate.maintenance'', true) = ''on'')',
        current_user);
END
$$;

-- --------------------------------------------------------------------------
-- Group commit of submissions (gateway/job_batch.c)

-- One gateway batch holds the submissions of several tenants, yet must
-- stay one statement and one transaction (one WAL flush for all). This
-- inserts each tenant's rows under that tenant's setting, so the policies
-- check every row as they check any other write. It is SECURITY INVOKER
-- on purpose: it adds no privilege, it only spares the round trips of a
-- set_config per tenant. Rows come back as (ord, job_json) like the
-- single INSERT of before.
CREATE FUNCTION jobs_submit_batch(p_id uuid[], p_tenant text[], p_type text[],
                                  p_priority int[], p_payload jsonb[], p_max_attempts int[],
                                  p_timeout_s int[], p_created_by text[], p_request_id text[],
                                  p_traceparent text[], p_event_body text[], p_run_at_ms bigint[])
RETURNS TABLE (ord bigint, job json)
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
            RETURNING *),
        e AS (
            INSERT INTO job_events (job_id, tenant_id, seq, type, body)
            SELECT i.id, i.tenant_id, 1, 'job.queued', i.event_body FROM input i)
        SELECT i.n, job_json(j) FROM j JOIN input i ON i.id = j.id;
    END LOOP;
    PERFORM set_config('agentgate.tenant_id', '', true);
END
$$;

-- --------------------------------------------------------------------------
-- The running cap (issue 4): at most max_running jobs of a tenant running
-- across all workers.

-- tenants.settings.max_running when it is a whole number in 0..1000000
-- (what common/tenant_settings.c accepts), else NULL: the caller's
-- default applies. A malformed value can only come from a hand edit;
-- it must not make claims fail.
CREATE FUNCTION tenant_max_running(settings jsonb) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN jsonb_typeof(settings -> 'max_running') = 'number'
                 AND (settings ->> 'max_running') ~ '^[0-9]{1,7}$'
                 AND (settings ->> 'max_running')::integer <= 1000000
                THEN (settings ->> 'max_running')::integer END
$$;

-- What the claim counts: a tenant's running jobs, straight from the index.
CREATE INDEX jobs_running_tenant ON jobs (tenant_id) WHERE status = 'running';

-- --------------------------------------------------------------------------
-- SECURITY DEFINER functions: the worker's cross-tenant work.
--
-- Each one is owned by the owner role, has a fixed search_path (public,
-- then pg_temp last, so no object of another schema or a temporary table
-- can stand in for ours), takes only checked, typed arguments, and does
-- one narrow thing. EXECUTE is revoked from PUBLIC and granted to
-- agentgate_app alone.

-- Claims job p_id for worker p_worker: queued -> running, attempts + 1.
-- Needs to cross tenants because a worker pops a bare job id from Redis
-- and learns the job's tenant only from this row. It also enforces the
-- running cap, which counts the tenant's running jobs of every worker:
-- under a per-tenant advisory transaction lock (held to commit), so two
-- workers cannot both take the last slot. A claim that would pass the cap
-- leaves the job queued, attempts untouched, run_at moved p_retry_ms ahead
-- and queued_at renewed, and answers 'capped'; the worker then puts it in
-- the delayed set (reconciliation would, too). No row: not claimable.
-- p_default_max_running (0: no cap) applies when the tenant has no valid
-- settings.max_running of its own.
CREATE FUNCTION agentgate_claim_job(p_id uuid, p_worker text, p_default_max_running integer,
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
    v_cap := coalesce(v_cap, p_default_max_running, 0);
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

-- Locks (SKIP LOCKED) the running jobs whose lease ran out, or that the
-- worker p_orphans_of left running, for the reaper's transaction. Needs
-- to cross tenants because a lease expires whoever's job it is and the
-- reaper runs on a connection of no tenant. The row locks outlive the
-- call: they belong to the caller's transaction, in which the worker
-- then requeues or fails each job under that job's own tenant.
CREATE FUNCTION agentgate_lock_expired(p_lease_ms bigint, p_orphans_of text, p_limit integer)
RETURNS TABLE (o_id text, o_tenant_id text, o_type text, o_attempts integer,
               o_max_attempts integer, o_last_event_id bigint, o_worker_id text,
               o_cancel_requested boolean)
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = public, pg_temp
SET agentgate.maintenance = 'on'
AS $$
    SELECT j.id::text, j.tenant_id, j.type, j.attempts, j.max_attempts, j.last_event_id,
           coalesce(j.worker_id, ''), j.cancel_requested_at IS NOT NULL
      FROM jobs j
     WHERE j.status = 'running'
       AND (j.heartbeat_at < now() - p_lease_ms * interval '1 millisecond'
            OR j.worker_id = p_orphans_of)
     ORDER BY j.heartbeat_at
     LIMIT p_limit
       FOR UPDATE SKIP LOCKED
$$;

-- Queued jobs that waited longer than p_grace_ms, for reconciliation of
-- Redis with PostgreSQL. Read only. Needs to cross tenants because a job
-- missing from Redis is found by looking at all of them.
CREATE FUNCTION agentgate_queued_jobs(p_grace_ms bigint, p_limit integer)
RETURNS TABLE (o_id text, o_tenant_id text, o_type text, o_attempts integer,
               o_last_event_id bigint, o_due_ms bigint, o_cancel_requested boolean)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = public, pg_temp
SET agentgate.maintenance = 'on'
AS $$
    SELECT j.id::text, j.tenant_id, j.type, j.attempts, j.last_event_id,
           CASE WHEN j.run_at > now() THEN (extract(epoch FROM j.run_at) * 1000)::bigint
                ELSE 0 END,
           j.cancel_requested_at IS NOT NULL
      FROM jobs j
     WHERE j.status = 'queued'
       AND j.queued_at < now() - p_grace_ms * interval '1 millisecond'
     ORDER BY j.queued_at
     LIMIT p_limit
$$;

-- The supervisor's heartbeat for the jobs p_ids that worker p_worker runs:
-- renews heartbeat_at of those still running under it and says which
-- have a cancellation requested. Needs to cross tenants because one
-- worker runs jobs of many tenants and beats for all of them in one
-- statement; it can only touch rows that name p_worker.
CREATE FUNCTION agentgate_heartbeat(p_ids uuid[], p_worker text)
RETURNS TABLE (o_id text, o_cancel_requested boolean)
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = public, pg_temp
SET agentgate.maintenance = 'on'
AS $$
    UPDATE jobs j SET heartbeat_at = now()
     WHERE j.id = ANY (p_ids) AND j.status = 'running' AND j.worker_id = p_worker
    RETURNING j.id::text, j.cancel_requested_at IS NOT NULL
$$;

-- Which of p_ids have a cancellation requested: the supervisor's check
-- while Redis (where the flags normally are) is unreachable. Read only;
-- crosses tenants for the same reason as the heartbeat.
CREATE FUNCTION agentgate_cancel_requested(p_ids uuid[])
RETURNS TABLE (o_id text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = public, pg_temp
SET agentgate.maintenance = 'on'
AS $$
    SELECT j.id::text FROM jobs j
     WHERE j.id = ANY (p_ids) AND j.cancel_requested_at IS NOT NULL
$$;

REVOKE ALL ON FUNCTION agentgate_claim_job(uuid, text, integer, integer),
                       agentgate_lock_expired(bigint, text, integer),
                       agentgate_queued_jobs(bigint, integer),
                       agentgate_heartbeat(uuid[], text),
                       agentgate_cancel_requested(uuid[])
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION agentgate_claim_job(uuid, text, integer, integer),
                          agentgate_lock_expired(bigint, text, integer),
                          agentgate_queued_jobs(bigint, integer),
                          agentgate_heartbeat(uuid[], text),
                          agentgate_cancel_requested(uuid[])
    TO agentgate_app;
