-- 003_agent_runs: what a run is submitted with and who submitted it, and
-- how sessions, tool manifests and served models look on the HTTP API.

-- The submitter as the token said ({"sub","roles":[...],"scope":"a b"}):
-- the worker's tools runtime checks each tool's required scopes against
-- this, not against whoever happens to look at the run later.
ALTER TABLE agent_runs
    ADD COLUMN principal      jsonb NOT NULL DEFAULT '{}',
    ADD COLUMN max_iterations integer CHECK (max_iterations BETWEEN 1 AND 64),
    ADD COLUMN timeout_s      integer CHECK (timeout_s BETWEEN 1 AND 86400);

-- Sessions are listed newest first with a (created_at, id) keyset cursor,
-- as jobs are; the index of 001 lacked the id tiebreak.
CREATE INDEX sessions_tenant_created ON sessions (tenant_id, created_at DESC, id DESC);
DROP INDEX sessions_tenant;

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
        'intent', r.intent,
        'output', r.output,
        'error', api_job_error(j),
        'todos', r.todos,
        'steps', (SELECT coalesce(json_agg(step_json(s) ORDER BY s.idx), '[]'::json)
                    FROM steps s
                   WHERE s.run_id = r.id AND s.tenant_id = r.tenant_id),
        'metrics', r.metrics,
        'attempts', j.attempts,
        'last_event_id', j.last_event_id,
        'created_at', api_ts(r.created_at),
        'started_at', api_ts(coalesce(r.started_at, j.started_at)),
        'finished_at', api_ts(coalesce(r.finished_at, j.finished_at)),
        'links', json_build_object('self', '/v1/agent-runs/' || r.id,
                                   'events', '/v1/agent-runs/' || r.id || '/events',
                                   'job', '/v1/jobs/' || r.job_id))
$$;

-- How many of a session's runs its view shows, and how much of each run's
-- prompt and output: a session is a summary; each run's links.self has
-- the whole of it.
CREATE FUNCTION session_runs_shown() RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT 100 $$;

-- The latest session_runs_shown() runs of a session, oldest first, with
-- the number of runs it has in all (runs_total > the items shown: cut).
CREATE FUNCTION session_runs(s sessions, OUT items json, OUT runs_total bigint)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce((SELECT json_agg(x.item ORDER BY x.created_at, x.id)
                       FROM (SELECT json_build_object(
                                        'id', r.id,
                                        'status', api_job_status(j),
                                        'prompt', left(r.prompt, 1000),
                                        'output_preview', left(r.output, 280),
                                        'created_at', api_ts(r.created_at),
                                        'finished_at', api_ts(coalesce(r.finished_at,
                                                                       j.finished_at)),
                                        'links', json_build_object(
                                            'self', '/v1/agent-runs/' || r.id)) AS item,
                                    r.created_at, r.id
                               FROM agent_runs r
                               JOIN jobs j ON j.id = r.job_id AND j.tenant_id = r.tenant_id
                              WHERE r.session_id = s.id AND r.tenant_id = s.tenant_id
                              ORDER BY r.created_at DESC, r.id DESC
                              LIMIT session_runs_shown()) x),
                    '[]'::json),
           (SELECT count(*) FROM agent_runs r
             WHERE r.session_id = s.id AND r.tenant_id = s.tenant_id)
$$;

-- A session; with_runs adds its runs (see session_runs), which the
-- listing leaves out.
CREATE FUNCTION session_json(s sessions, with_runs boolean) RETURNS json
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN with_runs THEN
        (SELECT json_build_object(
            'id', s.id,
            'title', s.title,
            'metadata', s.metadata,
            'created_by', s.created_by,
            'created_at', api_ts(s.created_at),
            'updated_at', api_ts(s.updated_at),
            'runs', sr.items,
            'runs_total', sr.runs_total,
            'runs_truncated', sr.runs_total > session_runs_shown(),
            'links', json_build_object('self', '/v1/sessions/' || s.id))
           FROM session_runs(s) sr)
    ELSE
        json_build_object(
            'id', s.id,
            'title', s.title,
            'metadata', s.metadata,
            'created_by', s.created_by,
            'created_at', api_ts(s.created_at),
            'updated_at', api_ts(s.updated_at),
            'links', json_build_object('self', '/v1/sessions/' || s.id))
    END
$$;

-- The tool manifests a tenant sees: its own row of a name wins over the
-- global one, so a tenant can replace a global tool or, with a disabled
-- row, withdraw it. Disabled rows are returned; callers keep enabled ones.
CREATE FUNCTION tools_visible(tenant text) RETURNS SETOF tool_manifests
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT DISTINCT ON (m.name) m.*
      FROM tool_manifests m
     WHERE m.tenant_id = tenant OR m.tenant_id IS NULL
     ORDER BY m.name, m.tenant_id NULLS LAST
$$;

CREATE FUNCTION tool_json(t tool_manifests) RETURNS json
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT json_build_object(
        'name', t.name,
        'description', t.description,
        'input_schema', t.input_schema,
        'required_scopes', to_json(t.required_scopes),
        'rate_limit', t.rate_limit,
        'links', json_build_object('self', '/v1/tools/' || t.name))
$$;

-- A model_defaults row as the API shows it: never base_url or params,
-- which may hold credentials or internal addresses.
CREATE FUNCTION model_default_json(m model_defaults) RETURNS json
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT json_build_object(
        'model', m.model,
        'provider', m.provider,
        'scope', m.scope,
        'is_default', m.is_default)
$$;
