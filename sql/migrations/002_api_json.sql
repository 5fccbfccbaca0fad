-- 002_api_json: how a row looks on the HTTP API, defined once here so the
-- gateway and the workers render jobs, runs and steps the same way.
-- json (not jsonb) keeps keys in the documented order.

-- RFC 3339 UTC with milliseconds, the one timestamp format of the API.
CREATE FUNCTION api_ts(t timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
$$;

-- A running job whose cancellation was asked for shows as 'cancelling'
-- until its worker stops it and records the one terminal status.
CREATE FUNCTION api_job_status(j jobs) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN j.status = 'running' AND j.cancel_requested_at IS NOT NULL
                THEN 'cancelling' ELSE j.status END
$$;

-- A job's error as {code, message}, or null while it has none.
CREATE FUNCTION api_job_error(j jobs) RETURNS json
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN j.error_code IS NULL THEN NULL
                ELSE json_build_object('code', j.error_code, 'message', j.error_message) END
$$;

CREATE FUNCTION job_json(j jobs) RETURNS json
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT json_build_object(
        'id', j.id,
        'type', j.type,
        'status', api_job_status(j),
        'priority', j.priority,
        'payload', j.payload,
        'result', j.result,
        'error', api_job_error(j),
        'attempts', j.attempts,
        'max_attempts', j.max_attempts,
        'timeout_s', j.timeout_s,
        'progress', j.progress,
        'run_at', api_ts(j.run_at),
        'created_at', api_ts(j.created_at),
        'started_at', api_ts(j.started_at),
        'finished_at', api_ts(j.finished_at),
        'heartbeat_at', api_ts(j.heartbeat_at),
        'worker_id', j.worker_id,
        'last_event_id', j.last_event_id,
        'links', json_build_object('self', '/v1/jobs/' || j.id,
                                   'events', '/v1/jobs/' || j.id || '/events'))
$$;

CREATE FUNCTION step_json(s steps) RETURNS json
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT json_build_object(
        'id', s.id,
        'index', s.idx,
        'action', s.action,
        'status', s.status,
        'input', s.input,
        'output', s.output,
        'latency_ms', s.latency_ms,
        'started_at', api_ts(s.started_at),
        'finished_at', api_ts(s.finished_at))
$$;

CREATE FUNCTION agent_run_json(r agent_runs, j jobs) RETURNS json
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT json_build_object(
        'id', r.id,
        'job_id', r.job_id,
        'session_id', r.session_id,
        'status', api_job_status(j),
        'prompt', r.prompt,
        'model', r.model,
        'planning_mode', r.planning_mode,
        'response_mode', r.response_mode,
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
