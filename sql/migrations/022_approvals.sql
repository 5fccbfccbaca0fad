-- 022_approvals: human approval of tool calls.
--
-- A tool call that needs approval parks its run: the job moves to
-- 'waiting' (no worker, no lease), the request is a tool_approvals row,
-- and the run's calls made so far are kept in run_memo so that the worker
-- which resumes the run after the decision replays them instead of making
-- them again (a model is not asked twice, a tool does not run twice).
--
-- Which calls need approval: a manifest with needs_approval (built-ins:
-- cache.delete), a tool of an MCP server that says destructiveHint: true,
-- every tool of a server registered with require_approval, and, for a run
-- submitted with approval 'write-tools', every tool that writes (a
-- required scope "<resource>:write", or an MCP tool not read-only).

ALTER TABLE jobs DROP CONSTRAINT jobs_status_check;
ALTER TABLE jobs ADD CONSTRAINT jobs_status_check CHECK (status IN
    ('queued','running','waiting','succeeded','failed','cancelled'));

ALTER TABLE tool_manifests ADD COLUMN needs_approval boolean NOT NULL DEFAULT false;
UPDATE tool_manifests SET needs_approval = true
 WHERE tenant_id IS NULL AND mcp_server IS NULL AND name = 'cache.delete';

ALTER TABLE mcp_servers ADD COLUMN require_approval boolean NOT NULL DEFAULT false;

-- approval_timeout_s NULL: the operator's AGENTGATE_APPROVAL_TIMEOUT_S.
-- resume_steps: set while the run is parked, the number of steps the
-- resuming worker replays before it goes on.
ALTER TABLE agent_runs
    ADD COLUMN approval text NOT NULL DEFAULT 'manifest'
        CHECK (approval IN ('manifest','write-tools')),
    ADD COLUMN approval_timeout_s integer CHECK (approval_timeout_s BETWEEN 1 AND 604800),
    ADD COLUMN resume_steps integer;

-- One row per call a run made (a model call or a tool call), in the order
-- the run made them: seq 1, 2, 3...
CREATE TABLE run_memo (
    run_id     uuid NOT NULL REFERENCES agent_runs(id) ON DELETE CASCADE,
    tenant_id  text NOT NULL,
    seq        integer NOT NULL CHECK (seq > 0),
    kind       text NOT NULL CHECK (kind IN ('llm','tool')),
    value      jsonb NOT NULL,
    PRIMARY KEY (run_id, seq)
);

CREATE TABLE tool_approvals (
    id          uuid PRIMARY KEY,                  -- the API's tool_call_id
    tenant_id   text NOT NULL,
    run_id      uuid NOT NULL REFERENCES agent_runs(id) ON DELETE CASCADE,
    job_id      uuid NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    memo_seq    integer NOT NULL,                  -- the call's place in run_memo
    tool        text NOT NULL,
    arguments   jsonb NOT NULL,
    status      text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending','approved','denied','expired')),
    note        text,
    decided_by  text,
    requested_at timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    decided_at  timestamptz,
    UNIQUE (run_id, memo_seq)
);
CREATE INDEX tool_approvals_pending ON tool_approvals (expires_at) WHERE status = 'pending';

GRANT SELECT, INSERT, UPDATE, DELETE ON run_memo, tool_approvals TO agentgate_app;

ALTER TABLE run_memo ENABLE ROW LEVEL SECURITY;
ALTER TABLE run_memo FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_rows ON run_memo
    USING (tenant_id = nullif(current_setting('agentgate.tenant_id', true), ''))
    WITH CHECK (tenant_id = nullif(current_setting('agentgate.tenant_id', true), ''));

ALTER TABLE tool_approvals ENABLE ROW LEVEL SECURITY;
ALTER TABLE tool_approvals FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_rows ON tool_approvals
    USING (tenant_id = nullif(current_setting('agentgate.tenant_id', true), ''))
    WITH CHECK (tenant_id = nullif(current_setting('agentgate.tenant_id', true), ''));

-- The sweep below crosses tenants as the owner, as the functions of 006
-- do (see definer_maintenance there).
DO $$
BEGIN
    EXECUTE format(
        'CREATE POLICY definer_maintenance ON tool_approvals TO %I'
        ' USING (current_setting(''agentgate.maintenance'', true) = ''on'')'
        ' WITH CHECK (current_setting(''agentgate.maintenance'', true) = ''on'')',
        current_user);
    EXECUTE format(
        'CREATE POLICY definer_maintenance ON job_events FOR INSERT TO %I'
        ' WITH CHECK (current_setting(''agentgate.maintenance'', true) = ''on'')',
        current_user);
END
$$;

CREATE FUNCTION tool_approval_json(a tool_approvals) RETURNS json
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT json_build_object(
        'tool_call_id', a.id,
        'tool', a.tool,
        'arguments', a.arguments,
        'status', a.status,
        'note', a.note,
        'decided_by', a.decided_by,
        'requested_at', api_ts(a.requested_at),
        'expires_at', api_ts(a.expires_at),
        'decided_at', api_ts(a.decided_at))
$$;

-- As in 003, with the approval options and the run's approvals, the
-- pending one (if any) first among equals as pending_approval.
CREATE OR REPLACE FUNCTION agent_run_json(r agent_runs, j jobs) RETURNS json
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT json_build_object(
        'id', r.id,
        'job_id', r.job_id,
        'session_id', r.session_id,
        'status', api_job_status(j),
        'prompt', r.prompt,
        'model', r.model,
        'temperature', r.temperature,
        'max_tokens', r.max_tokens,
        'max_iterations', r.max_iterations,
        'timeout_s', r.timeout_s,
        'planning_mode', r.planning_mode,
        'response_mode', r.response_mode,
        'tools', r.tools,
        'approval', r.approval,
        'approval_timeout_s', r.approval_timeout_s,
        'intent', r.intent,
        'output', r.output,
        'error', api_job_error(j),
        'todos', r.todos,
        'steps', (SELECT coalesce(json_agg(step_json(s) ORDER BY s.idx), '[]'::json)
                    FROM steps s
                   WHERE s.run_id = r.id AND s.tenant_id = r.tenant_id),
        'pending_approval', (SELECT tool_approval_json(a) FROM tool_approvals a
                              WHERE a.run_id = r.id AND a.tenant_id = r.tenant_id
                                AND a.status = 'pending' AND j.status = 'waiting'
                              ORDER BY a.memo_seq DESC LIMIT 1),
        'approvals', (SELECT coalesce(json_agg(tool_approval_json(a) ORDER BY a.memo_seq),
                                      '[]'::json)
                        FROM tool_approvals a
                       WHERE a.run_id = r.id AND a.tenant_id = r.tenant_id),
        'metrics', r.metrics,
        'attempts', j.attempts,
        'last_event_id', j.last_event_id,
        'created_at', api_ts(r.created_at),
        'started_at', api_ts(coalesce(r.started_at, j.started_at)),
        'finished_at', api_ts(coalesce(r.finished_at, j.finished_at)),
        'links', json_build_object('self', '/v1/agent-runs/' || r.id,
                                   'events', '/v1/agent-runs/' || r.id || '/events',
                                   'approvals', '/v1/agent-runs/' || r.id || '/approvals',
                                   'job', '/v1/jobs/' || r.job_id))
$$;

-- As in 011, with needs_approval.
CREATE OR REPLACE FUNCTION tool_json(t tool_manifests) RETURNS json
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT json_build_object(
        'name', t.name,
        'description', t.description,
        'input_schema', t.input_schema,
        'required_scopes', to_json(t.required_scopes),
        'rate_limit', t.rate_limit,
        'mcp_server', t.mcp_server,
        'annotations', t.annotations,
        'needs_approval', t.needs_approval,
        'links', json_build_object('self', '/v1/tools/' || t.name))
$$;

-- The workers' sweep of approvals nobody decided in time: the pending
-- requests past expires_at whose job still waits. Crosses tenants, as the
-- reaper does.
CREATE FUNCTION agentgate_expired_approvals(p_limit integer)
RETURNS TABLE (o_id text, o_job_id text, o_tenant_id text, o_type text,
               o_last_event_id bigint)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = public, pg_temp
SET agentgate.maintenance = 'on'
AS $$
    SELECT a.id::text, j.id::text, j.tenant_id, j.type, j.last_event_id
      FROM tool_approvals a JOIN jobs j ON j.id = a.job_id
     WHERE a.status = 'pending' AND a.expires_at <= now() AND j.status = 'waiting'
     ORDER BY a.expires_at
     LIMIT p_limit
$$;

-- Expires approval p_id and queues its job again with the
-- approval.resolved event p_body (id p_seq), fenced on the job still
-- waiting at event p_seq - 1: a decision or a cancel that came first wins.
-- Returns whether it did.
CREATE FUNCTION agentgate_expire_approval(p_id uuid, p_seq bigint, p_body text)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = public, pg_temp
SET agentgate.maintenance = 'on'
AS $$
DECLARE
    v_job uuid;
    v_tenant text;
BEGIN
    UPDATE tool_approvals a SET status = 'expired', decided_at = now()
     WHERE a.id = p_id AND a.status = 'pending' AND a.expires_at <= now()
       AND EXISTS (SELECT 1 FROM jobs j WHERE j.id = a.job_id AND j.status = 'waiting'
                                          AND j.last_event_id = p_seq - 1)
    RETURNING a.job_id, a.tenant_id INTO v_job, v_tenant;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    UPDATE jobs SET status = 'queued', queued_at = now(), last_event_id = p_seq
     WHERE id = v_job AND status = 'waiting';
    INSERT INTO job_events (job_id, tenant_id, seq, type, body)
    VALUES (v_job, v_tenant, p_seq, 'approval.resolved', p_body);
    RETURN true;
END
$$;

REVOKE ALL ON FUNCTION agentgate_expired_approvals(integer),
                       agentgate_expire_approval(uuid, bigint, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION agentgate_expired_approvals(integer),
                          agentgate_expire_approval(uuid, bigint, text) TO agentgate_app;

-- As in 011, with require_approval.
CREATE OR REPLACE FUNCTION mcp_server_json(s mcp_servers) RETURNS json
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT json_build_object(
        'name', s.name,
        'transport', s.transport,
        'url', s.url,
        'server', s.server,
        'header_names', (SELECT coalesce(json_agg(k ORDER BY k), '[]'::json)
                           FROM jsonb_object_keys(s.headers) AS k),
        'resource', s.resource,
        'require_approval', s.require_approval,
        'status', s.status,
        'protocol_version', s.protocol_version,
        'server_info', s.server_info,
        'tools', s.tools,
        'tools_count', jsonb_array_length(s.tools),
        'last_refresh_at', api_ts(s.last_refresh_at),
        'last_error', s.last_error,
        'refresh_job_id', s.refresh_job_id,
        'created_by', s.created_by,
        'created_at', api_ts(s.created_at),
        'updated_at', api_ts(s.updated_at),
        'links', json_build_object(
            'self', '/v1/mcp-servers/' || s.name,
            'refresh', '/v1/mcp-servers/' || s.name || '/refresh'))
$$;
