-- 024_multitask: what a new run does when its session already has an
-- active one (multitask_strategy), runs held until the runs before them in
-- their session end, and runs cancelled by a later one (superseded).
--
-- reject     the new run is refused (409); the default.
-- enqueue    the new run is held: its job is queued with run_at far ahead,
--            so no worker takes it, until no earlier run of its session is
--            active; then a worker's release sweep makes it due now.
-- interrupt  the active runs get their cancellation requested and are
--            marked superseded = 'interrupted': a later run's session
--            context keeps their prompt and what they did so far. The new
--            run is held until they have ended.
-- rollback   as interrupt, marked 'rolled_back': left out of the session's
--            context from then on.

ALTER TABLE agent_runs
    ADD COLUMN multitask_strategy text NOT NULL DEFAULT 'reject'
        CHECK (multitask_strategy IN ('reject', 'enqueue', 'interrupt', 'rollback')),
    ADD COLUMN held boolean NOT NULL DEFAULT false,
    ADD COLUMN superseded text CHECK (superseded IN ('interrupted', 'rolled_back')),
    ADD COLUMN superseded_by uuid;

-- The release sweep reads only the held runs.
CREATE INDEX agent_runs_held ON agent_runs (created_at) WHERE held;

-- The states in which a run still counts as its session's active run.
CREATE FUNCTION agent_run_active_status(p_status text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT p_status IN ('queued', 'running', 'waiting')
$$;

-- A new agent run: its job, the job's job.queued event and its agent_runs
-- row, after the checks that need the database. Runs as the caller (the
-- gateway, with its tenant set), so row-level security holds throughout.
--
-- The session's row is locked first; each statement after the lock sees
-- what concurrent submissions to the same session committed before it, so
-- two runs sent at once cannot both find the session idle.
--
-- Answers one row: model_ok, session_ok (nothing written unless both),
-- run_id (NULL when nothing was written), busy_run (the active run that
-- refused a reject), held (the run waits for earlier ones) and
-- cancel_jobs (the jobs whose cancellation an interrupt or rollback
-- requested: the gateway flags them for their workers).
CREATE FUNCTION agent_run_submit(
    p_job_id uuid, p_tenant text, p_payload jsonb, p_max_attempts integer,
    p_job_timeout_s integer, p_sub text, p_request_id text, p_traceparent text,
    p_session uuid, p_event text, p_run_id uuid, p_prompt text, p_model text,
    p_temperature real, p_max_tokens integer, p_planning_mode text,
    p_response_mode text, p_tools jsonb, p_principal jsonb, p_max_iterations integer,
    p_run_timeout_s integer, p_served_model text, p_strategy text, p_hold_until_ms bigint,
    p_webhook text, p_approval text, p_approval_timeout_s integer,
    OUT model_ok boolean, OUT session_ok boolean, OUT run_id uuid, OUT busy_run uuid,
    OUT held boolean, OUT cancel_jobs uuid[])
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_active uuid[];
    v_active_jobs uuid[];
BEGIN
    session_ok := true;
    held := false;
    cancel_jobs := '{}';
    model_ok := p_model IS NULL OR coalesce(p_model = p_served_model, false) OR EXISTS
        (SELECT 1 FROM model_defaults d WHERE d.model = p_model
            AND (d.scope = 'global' OR (d.scope = 'tenant' AND d.tenant_id = p_tenant)));
    IF NOT model_ok THEN
        RETURN;
    END IF;

    IF p_session IS NOT NULL THEN
        PERFORM 1 FROM sessions s WHERE s.id = p_session AND s.tenant_id = p_tenant
            FOR UPDATE;
        IF NOT FOUND THEN
            session_ok := false;
            RETURN;
        END IF;

        SELECT coalesce(array_agg(r.id ORDER BY r.created_at, r.id), '{}'),
               coalesce(array_agg(r.job_id ORDER BY r.created_at, r.id), '{}')
          INTO v_active, v_active_jobs
          FROM agent_runs r JOIN jobs j ON j.id = r.job_id AND j.tenant_id = r.tenant_id
         WHERE r.session_id = p_session AND r.tenant_id = p_tenant
           AND agent_run_active_status(j.status);

        IF cardinality(v_active) > 0 THEN
            IF p_strategy = 'reject' THEN
                busy_run := v_active[cardinality(v_active)];
                RETURN;
            END IF;
            held := true;
            IF p_strategy IN ('interrupt', 'rollback') THEN
                UPDATE jobs SET cancel_requested_at = coalesce(cancel_requested_at, now())
                 WHERE id = ANY (v_active_jobs) AND tenant_id = p_tenant
                   AND agent_run_active_status(status);
                UPDATE agent_runs
                   SET superseded = CASE p_strategy WHEN 'interrupt' THEN 'interrupted'
                                                    ELSE 'rolled_back' END,
                       superseded_by = p_run_id
                 WHERE id = ANY (v_active) AND tenant_id = p_tenant;
                cancel_jobs := v_active_jobs;
            END IF;
        END IF;
        -- Only once the run is taken: a refused one changes nothing.
        UPDATE sessions SET updated_at = now()
         WHERE id = p_session AND tenant_id = p_tenant;
    END IF;

    INSERT INTO jobs (id, tenant_id, type, status, priority, payload, max_attempts,
                      timeout_s, created_by, last_event_id, request_id, traceparent, run_at,
                      webhook_url)
    VALUES (p_job_id, p_tenant, 'agent.run', 'queued', 0, p_payload, p_max_attempts,
            p_job_timeout_s, p_sub, 1, p_request_id, p_traceparent,
            CASE WHEN held THEN to_timestamp(p_hold_until_ms / 1000.0) END, p_webhook);
    INSERT INTO job_events (job_id, tenant_id, seq, type, body)
    VALUES (p_job_id, p_tenant, 1, 'job.queued', p_event);
    INSERT INTO agent_runs (id, tenant_id, job_id, session_id, created_by, prompt, model,
                            temperature, max_tokens, planning_mode, response_mode, tools,
                            principal, max_iterations, timeout_s, multitask_strategy, held,
                            approval, approval_timeout_s)
    VALUES (p_run_id, p_tenant, p_job_id, p_session, p_sub, p_prompt, p_model,
            p_temperature, p_max_tokens, coalesce(p_planning_mode, 'optional'),
            coalesce(p_response_mode, 'llm-best-effort'), p_tools, p_principal,
            p_max_iterations, p_run_timeout_s, p_strategy, held,
            coalesce(p_approval, 'manifest'), p_approval_timeout_s);
    run_id := p_run_id;
END
$$;

REVOKE ALL ON FUNCTION agent_run_submit(uuid, text, jsonb, integer, integer, text, text, text,
    uuid, text, uuid, text, text, real, integer, text, text, jsonb, jsonb, integer, integer,
    text, text, bigint, text, text, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION agent_run_submit(uuid, text, jsonb, integer, integer, text, text,
    text, uuid, text, uuid, text, text, real, integer, text, text, jsonb, jsonb, integer,
    integer, text, text, bigint, text, text, integer) TO agentgate_app;

-- The release sweep below reads held runs of every tenant, as the owner
-- with agentgate.maintenance on (see 006's definer_maintenance on jobs).
DO $$
BEGIN
    EXECUTE format(
        'CREATE POLICY definer_multitask ON agent_runs TO %I'
        ' USING (current_setting(''agentgate.maintenance'', true) = ''on'')'
        ' WITH CHECK (current_setting(''agentgate.maintenance'', true) = ''on'')',
        current_user);
END
$$;

-- The held runs that may start now: queued, no cancellation asked, and no
-- earlier run of their session still active (a run whose session was
-- deleted has none). Oldest first.
CREATE FUNCTION agentgate_held_runs_ready(p_limit integer)
RETURNS TABLE (o_job_id text, o_tenant_id text, o_type text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = public, pg_temp
SET agentgate.maintenance = 'on'
AS $$
    SELECT j.id::text, j.tenant_id, j.type
      FROM agent_runs r JOIN jobs j ON j.id = r.job_id AND j.tenant_id = r.tenant_id
     WHERE r.held AND j.status = 'queued' AND j.cancel_requested_at IS NULL
       AND NOT EXISTS (
           SELECT 1 FROM agent_runs e
             JOIN jobs ej ON ej.id = e.job_id AND ej.tenant_id = e.tenant_id
            WHERE e.session_id = r.session_id AND e.tenant_id = r.tenant_id
              AND (e.created_at, e.id) < (r.created_at, r.id)
              AND agent_run_active_status(ej.status))
     ORDER BY r.created_at, r.id
     LIMIT p_limit
$$;

-- Marks the held run of job p_job_id released, its job due now. Called
-- after Redis was told (the delayed set's score made now), so a sweep
-- that dies in between only repeats the release. Returns whether it was
-- still held.
CREATE FUNCTION agentgate_release_held_run(p_job_id uuid)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = public, pg_temp
SET agentgate.maintenance = 'on'
AS $$
BEGIN
    UPDATE agent_runs SET held = false WHERE job_id = p_job_id AND held;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    -- queued_at too: reconciliation leaves a job queued this recently
    -- alone, long enough for promotion to move it from the delayed set.
    UPDATE jobs SET run_at = now(), queued_at = now()
     WHERE id = p_job_id AND status = 'queued';
    RETURN true;
END
$$;

REVOKE ALL ON FUNCTION agentgate_held_runs_ready(integer),
                       agentgate_release_held_run(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION agentgate_held_runs_ready(integer),
                          agentgate_release_held_run(uuid) TO agentgate_app;
