-- 007_rbac: how a tenant and a tenant's model rows look on the HTTP API
-- (GET/PATCH /v1/tenants, POST/PATCH /v1/models).

-- A tenant as its members see it. t may be a NULL row: a tenant exists as
-- soon as a token names it, and its row only once PATCH writes one.
CREATE FUNCTION tenant_json(tenant text, t tenants) RETURNS json
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT json_build_object(
        'id', tenant,
        'name', coalesce(t.name, tenant),
        'settings', coalesce(t.settings, '{}'::jsonb),
        'created_at', api_ts(t.created_at),
        'links', json_build_object('self', '/v1/tenants/' || tenant))
$$;

-- A model_defaults row with its id, which PATCH and DELETE /v1/models/{id}
-- take. Like model_default_json, never base_url or params: they may hold
-- credentials or internal addresses.
CREATE FUNCTION model_item_json(m model_defaults) RETURNS json
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT json_build_object(
        'id', m.id::text,
        'model', m.model,
        'provider', m.provider,
        'scope', m.scope,
        'is_default', m.is_default)
$$;
