-- 011_mcp_servers: Model Context Protocol servers registered per tenant,
-- and the tool manifests discovered on them.
--
-- A tenant registers a server by name: an HTTP one by URL (which must be
-- within the operator's allow-list), or a stdio one by the name of a
-- server the operator configured (tenants never name a command). The
-- gateway writes the row with status 'pending' and queues an mcp.discover
-- job; the worker that runs it connects, lists the server's tools and
-- writes one tool_manifests row per tool, named {server}.{tool}, then the
-- outcome here (status, tools, last_refresh_at, last_error).
--
-- headers holds what the worker sends with every HTTP request to the
-- server (an Authorization bearer, an API key). It is write-only: no API
-- answer and no log line carries it.

CREATE TABLE mcp_servers (
    tenant_id        text NOT NULL,
    name             text NOT NULL CHECK (name ~ '^[a-z0-9][a-z0-9_-]{0,47}$'),
    transport        text NOT NULL CHECK (transport IN ('http', 'stdio')),
    url              text,
    server           text,
    headers          jsonb NOT NULL DEFAULT '{}',
    resource         text NOT NULL DEFAULT 'tools'
                     CHECK (resource ~ '^[a-z][a-z0-9-]{0,31}$'),
    status           text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'ready', 'error')),
    protocol_version text,
    server_info      jsonb,
    tools            jsonb NOT NULL DEFAULT '[]',
    last_refresh_at  timestamptz,
    last_error       text,
    refresh_job_id   uuid,
    created_by       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, name),
    CHECK ((transport = 'http') = (url IS NOT NULL)),
    CHECK ((transport = 'stdio') = (server IS NOT NULL))
);

-- A discovered tool's manifest remembers its server and the tool's own
-- name there; the manifests go with the server.
ALTER TABLE tool_manifests
    ADD COLUMN mcp_server text,
    ADD COLUMN mcp_tool text,
    ADD COLUMN annotations jsonb,
    ADD CONSTRAINT tool_manifests_mcp_server
        FOREIGN KEY (tenant_id, mcp_server) REFERENCES mcp_servers (tenant_id, name)
        ON DELETE CASCADE,
    ADD CONSTRAINT tool_manifests_mcp_pair
        CHECK ((mcp_server IS NULL) = (mcp_tool IS NULL));

GRANT SELECT, INSERT, UPDATE, DELETE ON mcp_servers TO agentgate_app;

ALTER TABLE mcp_servers ENABLE ROW LEVEL SECURITY;
ALTER TABLE mcp_servers FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_rows ON mcp_servers
    USING (tenant_id = nullif(current_setting('agentgate.tenant_id', true), ''))
    WITH CHECK (tenant_id = nullif(current_setting('agentgate.tenant_id', true), ''));

-- True when the tenant may register one more server under the gateway's
-- cap (AGENTGATE_MCP_MAX_SERVERS, passed as max_servers). The lock, held
-- to the end of the caller's transaction, makes concurrent registrations
-- of one tenant count one after the other; the count is then a query of
-- its own, which in a VOLATILE function sees what those committed (a
-- count in the registering statement itself would use that statement's
-- older snapshot, and two could both see room for one).
CREATE FUNCTION mcp_servers_room(tenant text, max_servers integer) RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('agentgate.mcp_servers/' || tenant, 0));
    RETURN (SELECT count(*) FROM mcp_servers WHERE tenant_id = tenant) < max_servers;
END
$$;

-- A tool as the API shows it: the manifest, and for a tool discovered on
-- an MCP server ({server}.{tool}) that server's name and the tool's
-- annotations (readOnlyHint, destructiveHint, ...) as the server gave them.
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
        'links', json_build_object('self', '/v1/tools/' || t.name))
$$;

-- A server as the API shows it: never its headers, only their names.
CREATE FUNCTION mcp_server_json(s mcp_servers) RETURNS json
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT json_build_object(
        'name', s.name,
        'transport', s.transport,
        'url', s.url,
        'server', s.server,
        'header_names', (SELECT coalesce(json_agg(k ORDER BY k), '[]'::json)
                           FROM jsonb_object_keys(s.headers) AS k),
        'resource', s.resource,
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
