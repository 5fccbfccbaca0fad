-- 015_mcp_refresh: one statement queues a discovery of an MCP server.
--
-- Two callers ask for a fresh discovery of a tenant's server: the gateway's
-- POST /v1/mcp-servers/{name}/refresh, and a worker whose client heard the
-- server's notifications/tools/list_changed during a call. Both go through
-- mcp_server_refresh, so the rule is written once: a new mcp.discover job
-- is queued (its row, its first event, the server's refresh_job_id in one
-- statement), unless the server's latest discovery is still queued, which
-- reads the server's row when it runs, so a second one would only repeat
-- it and a server announcing changes in a loop cannot pile up jobs.
--
-- The caller makes the job's id, payload, limits and job.queued event (the
-- same as for any job it queues) and, when `queued` is true, puts the job
-- in its Redis queue after the commit. No row comes back when the tenant
-- has no such server. Row-level security applies as to the caller's own
-- statements (SECURITY INVOKER).

CREATE FUNCTION mcp_server_refresh(p_tenant text, p_name text, p_job uuid, p_payload jsonb,
                                   p_max_attempts integer, p_timeout_s integer,
                                   p_created_by text, p_request_id text,
                                   p_traceparent text, p_event text)
RETURNS TABLE (server json, queued boolean, job_id uuid)
LANGUAGE sql AS $$
    WITH o AS (SELECT s AS srv, s.refresh_job_id FROM mcp_servers s
                WHERE s.tenant_id = p_tenant AND s.name = p_name FOR UPDATE),
         q AS (SELECT jb.id FROM jobs jb, o WHERE jb.id = o.refresh_job_id
                 AND jb.tenant_id = p_tenant AND jb.status = 'queued'),
         j AS (INSERT INTO jobs (id, tenant_id, type, status, priority, payload, max_attempts,
                                 timeout_s, created_by, last_event_id, request_id, traceparent)
               SELECT p_job, p_tenant, 'mcp.discover', 'queued', 0, p_payload, p_max_attempts,
                      p_timeout_s, p_created_by, 1, p_request_id, p_traceparent
                 FROM o WHERE NOT EXISTS (SELECT 1 FROM q)
               RETURNING id, tenant_id),
         e AS (INSERT INTO job_events (job_id, tenant_id, seq, type, body)
               SELECT id, tenant_id, 1, 'job.queued', p_event FROM j),
         u AS (UPDATE mcp_servers s SET refresh_job_id = j.id, updated_at = now() FROM j
                WHERE s.tenant_id = p_tenant AND s.name = p_name
               RETURNING mcp_server_json(s) AS js)
    SELECT coalesce((SELECT js FROM u), mcp_server_json(o.srv)),
           EXISTS (SELECT 1 FROM j), coalesce((SELECT id FROM j), o.refresh_job_id)
      FROM o
$$;
