-- 021_schedules: cron schedules that create a job or an agent run at each
-- tick, and the record of every tick fired.
--
-- A schedule holds what it creates (kind 'job': type, payload, priority,
-- attempts, timeout; kind 'agent_run': the run's settings as submitted and
-- its creator's principal, which the run's tool calls are checked against)
-- and next_run_at, the next tick, computed by the gateway and the workers
-- in C (common/cron.c) from cron and timezone.
--
-- Exactly once per tick: a worker fires a due schedule with schedule_fire,
-- which in one transaction locks the row (SKIP LOCKED: another worker on
-- it moves on), inserts the tick's row keyed (schedule_id, tick_at) -
-- whose primary key refuses a second one whatever happens - and the job
-- (its row, its job.queued event, for a run its agent_runs row), and moves
-- next_run_at past the worker's now. A worker killed anywhere leaves
-- either all of it or none of it; a job committed but never enqueued in
-- Redis is enqueued by reconciliation. Ticks missed while no worker ran
-- fire once, as the first of them: next_run_at then goes straight past now.
-- A schedule keeps the rows of its latest 100 ticks.

CREATE TABLE schedules (
    id           uuid PRIMARY KEY,
    tenant_id    text NOT NULL,
    name         text CHECK (length(name) BETWEEN 1 AND 128),
    cron         text NOT NULL CHECK (length(cron) BETWEEN 1 AND 256),
    timezone     text NOT NULL CHECK (length(timezone) BETWEEN 1 AND 64),
    kind         text NOT NULL CHECK (kind IN ('job', 'agent_run')),
    job_type     text NOT NULL,
    priority     integer NOT NULL DEFAULT 0,
    max_attempts integer NOT NULL CHECK (max_attempts BETWEEN 1 AND 100),
    timeout_s    integer NOT NULL CHECK (timeout_s BETWEEN 1 AND 86400),
    payload      jsonb,             -- kind 'job': the job's payload
    run          jsonb,             -- kind 'agent_run': the run's settings
    principal    jsonb,             -- kind 'agent_run': its creator, as agent_runs.principal
    paused       boolean NOT NULL DEFAULT false,
    next_run_at  timestamptz,       -- NULL only while paused
    last_tick_at timestamptz,
    created_by   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CHECK ((kind = 'job') = (payload IS NOT NULL)),
    CHECK ((kind = 'agent_run') = (run IS NOT NULL AND principal IS NOT NULL)),
    CHECK (paused OR next_run_at IS NOT NULL)
);
CREATE INDEX schedules_tenant_created ON schedules (tenant_id, created_at DESC, id DESC);
CREATE INDEX schedules_due ON schedules (next_run_at) WHERE NOT paused;

CREATE TABLE schedule_ticks (
    schedule_id uuid NOT NULL REFERENCES schedules (id) ON DELETE CASCADE,
    tenant_id   text NOT NULL,
    tick_at     timestamptz NOT NULL,
    job_id      uuid NOT NULL,
    run_id      uuid,
    worker_id   text,
    fired_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (schedule_id, tick_at)
);

GRANT SELECT, INSERT, UPDATE, DELETE ON schedules TO agentgate_app;
GRANT SELECT, INSERT, DELETE ON schedule_ticks TO agentgate_app;

ALTER TABLE schedules ENABLE ROW LEVEL SECURITY;
ALTER TABLE schedules FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_rows ON schedules
    USING (tenant_id = nullif(current_setting('agentgate.tenant_id', true), ''))
    WITH CHECK (tenant_id = nullif(current_setting('agentgate.tenant_id', true), ''));
ALTER TABLE schedule_ticks ENABLE ROW LEVEL SECURITY;
ALTER TABLE schedule_ticks FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_rows ON schedule_ticks
    USING (tenant_id = nullif(current_setting('agentgate.tenant_id', true), ''))
    WITH CHECK (tenant_id = nullif(current_setting('agentgate.tenant_id', true), ''));

-- True when the tenant may create one more schedule under the gateway's
-- cap (max_schedules). As mcp_servers_room (011): the lock, held to the end
-- of the caller's transaction, makes concurrent creations of one tenant
-- count one after the other.
CREATE FUNCTION schedules_room(tenant text, max_schedules integer) RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('agentgate.schedules/' || tenant, 0));
    RETURN (SELECT count(*) FROM schedules WHERE tenant_id = tenant) < max_schedules;
END
$$;

-- The owner reads every tenant's schedules inside agentgate_due_schedules
-- only (see definer_maintenance in 006).
DO $$
BEGIN
    EXECUTE format(
        'CREATE POLICY definer_maintenance ON schedules FOR SELECT TO %I'
        ' USING (current_setting(''agentgate.maintenance'', true) = ''on'')',
        current_user);
END
$$;

-- The schedules due at p_now, oldest tick first, for the workers' firing
-- round; next_run_at as the session prints it, for schedule_fire to name
-- the tick exactly. Read only. Needs to cross tenants because any worker fires any
-- tenant's schedule; each is then fired under its own tenant.
CREATE FUNCTION agentgate_due_schedules(p_now timestamptz, p_limit integer)
RETURNS TABLE (o_id text, o_tenant_id text, o_cron text, o_timezone text,
               o_next_run_at text, o_job_type text, o_priority integer)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = public, pg_temp
SET agentgate.maintenance = 'on'
AS $$
    SELECT s.id::text, s.tenant_id, s.cron, s.timezone,
           s.next_run_at::text, s.job_type, s.priority
      FROM schedules s
     WHERE NOT s.paused AND s.next_run_at <= p_now
     ORDER BY s.next_run_at
     LIMIT p_limit
$$;
REVOKE ALL ON FUNCTION agentgate_due_schedules(timestamptz, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION agentgate_due_schedules(timestamptz, integer) TO agentgate_app;

-- Fires tick p_tick of schedule p_id: the tick's row, the job (and run)
-- and next_run_at = p_next, all or nothing. Only while the schedule is
-- still as the caller read it (not paused, same cron, timezone and
-- next_run_at), so a PATCH or another worker in between makes it a no-op.
-- The caller makes the job's id, the run's id and the job.queued event,
-- and enqueues the job in Redis after the commit when `o_fired`. No row:
-- nothing to do (changed, locked by another worker, or gone). Runs under
-- the caller's tenant setting (SECURITY INVOKER).
CREATE FUNCTION schedule_fire(p_id uuid, p_tick timestamptz, p_cron text, p_timezone text,
                              p_next timestamptz, p_job uuid, p_run uuid, p_event text,
                              p_worker text)
RETURNS TABLE (o_fired boolean, o_job_id uuid, o_run_id uuid, o_job_type text)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    s schedules;
BEGIN
    SELECT * INTO s FROM schedules
     WHERE id = p_id AND NOT paused AND next_run_at = p_tick
       AND cron = p_cron AND timezone = p_timezone
       FOR UPDATE SKIP LOCKED;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    UPDATE schedules SET next_run_at = p_next, last_tick_at = p_tick WHERE id = p_id;
    INSERT INTO schedule_ticks (schedule_id, tenant_id, tick_at, job_id, run_id, worker_id)
    VALUES (p_id, s.tenant_id, p_tick, p_job,
            CASE WHEN s.kind = 'agent_run' THEN p_run END, p_worker)
    ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        RETURN QUERY SELECT false, NULL::uuid, NULL::uuid, s.job_type;
        RETURN;
    END IF;
    -- The latest 100 ticks are kept. An older one can never fire again
    -- (next_run_at only moves forward), so its row guards nothing.
    DELETE FROM schedule_ticks t
     WHERE t.schedule_id = p_id
       AND t.tick_at < (SELECT k.tick_at FROM schedule_ticks k WHERE k.schedule_id = p_id
                         ORDER BY k.tick_at DESC OFFSET 99 LIMIT 1);
    INSERT INTO jobs (id, tenant_id, type, status, priority, payload, max_attempts, timeout_s,
                      created_by, last_event_id)
    VALUES (p_job, s.tenant_id, s.job_type, 'queued', s.priority,
            CASE WHEN s.kind = 'job' THEN s.payload
                 ELSE jsonb_build_object('run_id', p_run, 'prompt', s.run ->> 'prompt') END,
            s.max_attempts, s.timeout_s, s.created_by, 1);
    INSERT INTO job_events (job_id, tenant_id, seq, type, body)
    VALUES (p_job, s.tenant_id, 1, 'job.queued', p_event);
    IF s.kind = 'agent_run' THEN
        INSERT INTO agent_runs (id, tenant_id, job_id, session_id, created_by, prompt, model,
                                temperature, max_tokens, planning_mode, response_mode, tools,
                                principal, max_iterations, timeout_s)
        VALUES (p_run, s.tenant_id, p_job, NULL, s.created_by, s.run ->> 'prompt',
                s.run ->> 'model', (s.run ->> 'temperature')::real,
                (s.run ->> 'max_tokens')::integer,
                coalesce(s.run ->> 'planning_mode', 'optional'),
                coalesce(s.run ->> 'response_mode', 'llm-best-effort'),
                s.run -> 'tools', s.principal, (s.run ->> 'max_iterations')::integer,
                (s.run ->> 'timeout_s')::integer);
    END IF;
    RETURN QUERY SELECT true, p_job, CASE WHEN s.kind = 'agent_run' THEN p_run END, s.job_type;
END
$$;

-- A schedule as the API shows it, with its latest p_ticks ticks (newest
-- first) and the status of the job each one created.
CREATE FUNCTION schedule_json(s schedules, p_ticks integer) RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
        'id', s.id,
        'name', s.name,
        'cron', s.cron,
        'timezone', s.timezone,
        'paused', s.paused,
        'next_run_at', api_ts(s.next_run_at),
        'last_tick_at', api_ts(s.last_tick_at),
        'job', CASE WHEN s.kind = 'job' THEN json_build_object(
                   'type', s.job_type, 'payload', s.payload, 'priority', s.priority,
                   'max_attempts', s.max_attempts, 'timeout_s', s.timeout_s) END,
        'agent_run', CASE WHEN s.kind = 'agent_run' THEN s.run END,
        'recent_ticks', (SELECT coalesce(json_agg(json_build_object(
                              'tick_at', api_ts(t.tick_at),
                              'fired_at', api_ts(t.fired_at),
                              'job_id', t.job_id,
                              'run_id', t.run_id,
                              'status', (SELECT api_job_status(j) FROM jobs j
                                          WHERE j.id = t.job_id AND j.tenant_id = t.tenant_id),
                              'links', json_build_object('job', '/v1/jobs/' || t.job_id))
                            ORDER BY t.tick_at DESC), '[]'::json)
                           FROM (SELECT * FROM schedule_ticks t
                                  WHERE t.schedule_id = s.id AND t.tenant_id = s.tenant_id
                                  ORDER BY t.tick_at DESC LIMIT p_ticks) t),
        'created_by', s.created_by,
        'created_at', api_ts(s.created_at),
        'updated_at', api_ts(s.updated_at),
        'links', json_build_object('self', '/v1/schedules/' || s.id))
$$;
