-- 018_queue_depth: the gateway's /metrics queue depth, every tenant's jobs
-- counted per type.
--
-- GET /v1/queues counts one tenant's jobs under its row-level security;
-- the agentgate_queue_depth and agentgate_jobs_running gauges are the
-- platform's, so they need every tenant's rows. This function crosses
-- tenants the way 006's do (SECURITY DEFINER with agentgate.maintenance on)
-- and returns only counts per job type: nothing that tells tenants apart.
-- "Queued" means due to start, as in GET /v1/queues: a job whose run_at is
-- ahead (scheduled, or backing off before a retry) is not yet waiting.
-- Read only; it reads the partial index jobs_unfinished, not the history.

CREATE FUNCTION agentgate_queue_depths()
RETURNS TABLE (o_type text, o_queued bigint, o_running bigint)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = public, pg_temp
SET agentgate.maintenance = 'on'
AS $$
    SELECT j.type,
           count(*) FILTER (WHERE j.status = 'queued'
                              AND (j.run_at IS NULL OR j.run_at <= now())),
           count(*) FILTER (WHERE j.status = 'running')
      FROM jobs j
     WHERE j.status IN ('queued', 'running')
     GROUP BY j.type
$$;

REVOKE ALL ON FUNCTION agentgate_queue_depths() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION agentgate_queue_depths() TO agentgate_app;
