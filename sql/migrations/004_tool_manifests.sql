-- 004_tool_manifests: the global manifests of the built-in tools.
--
-- A manifest is what the tools runtime checks before a handler runs: the
-- arguments against input_schema, the caller's scopes against
-- required_scopes, and rate_limit, in calls per minute per tenant (NULL:
-- unlimited). The schemas are the same text as the handlers' own
-- contracts in worker/tools_builtin.c (a unit test compares them). A
-- tenant narrows or withdraws a tool with its own row of the same name
-- (see tools_visible in 003); it cannot widen what a handler accepts,
-- since the handler checks its own schema again.
--
-- A global row an operator already made under one of these names is kept
-- as it is.

INSERT INTO tool_manifests (tenant_id, name, description, input_schema, required_scopes,
                            rate_limit)
SELECT NULL, v.name, v.description, v.input_schema::jsonb, v.required_scopes::text[],
       v.rate_limit
  FROM (VALUES
    ('system.time',
     'The current date and time in UTC (RFC 3339, milliseconds).',
     '{"type":"object","properties":{},"additionalProperties":false}',
     '{}', 600),
    ('system.health',
     'The state of the worker running the job: id, pid, uptime, and whether its database and Redis connections work.',
     '{"type":"object","properties":{},"additionalProperties":false}',
     '{}', 120),
    ('cache.get',
     'Reads a value this tenant stored in the cache under key.',
     '{"type":"object","properties":{"key":{"type":"string","minLength":1,"maxLength":200}},"required":["key"],"additionalProperties":false}',
     '{cache:read}', 600),
    ('cache.set',
     'Stores a text value (at most 64 KB) for this tenant under key, for ttl_s seconds (default 3600, at most 86400).',
     '{"type":"object","properties":{"key":{"type":"string","minLength":1,"maxLength":200},"value":{"type":"string","maxLength":65536},"ttl_s":{"type":"integer","minimum":1,"maximum":86400}},"required":["key","value"],"additionalProperties":false}',
     '{cache:write}', 120),
    ('cache.delete',
     'Deletes this tenant''s cached value under key.',
     '{"type":"object","properties":{"key":{"type":"string","minLength":1,"maxLength":200}},"required":["key"],"additionalProperties":false}',
     '{cache:write}', 120),
    ('agent.history',
     'The earlier runs of this run''s session, oldest first: prompt, output (cut to 500 characters), status and time.',
     '{"type":"object","properties":{"limit":{"type":"integer","minimum":1,"maximum":50}},"additionalProperties":false}',
     '{agent-runs:read}', 60),
    ('jobs.list',
     'Lists this tenant''s jobs, newest first, optionally by status, type and creation time (since, RFC 3339): id, type, status, error, created_at, finished_at.',
     '{"type":"object","properties":{"status":{"type":"string","enum":["queued","running","succeeded","failed","cancelled"]},"type":{"type":"string","minLength":1,"maxLength":64},"since":{"type":"string","format":"date-time","maxLength":40},"limit":{"type":"integer","minimum":1,"maximum":100}},"additionalProperties":false}',
     '{jobs:read}', 60),
    ('jobs.get',
     'One of this tenant''s jobs by id: type, status, error, attempts and times.',
     '{"type":"object","properties":{"id":{"type":"string","format":"uuid","minLength":36,"maxLength":36}},"required":["id"],"additionalProperties":false}',
     '{jobs:read}', 120),
    ('model.list',
     'The language models this tenant can use (global and its own): provider, model and which is the default.',
     '{"type":"object","properties":{},"additionalProperties":false}',
     '{}', 120),
    ('security.describe_principal',
     'Who the run acts for: the caller''s subject, tenant, roles and scopes.',
     '{"type":"object","properties":{},"additionalProperties":false}',
     '{}', 120),
    ('catalog.search',
     'Searches the tools this tenant has by words of the query in their names and descriptions; an empty or general query lists them all.',
     '{"type":"object","properties":{"query":{"type":"string","maxLength":1000}},"required":["query"],"additionalProperties":false}',
     '{}', 120)
  ) AS v(name, description, input_schema, required_scopes, rate_limit)
ON CONFLICT ((coalesce(tenant_id, '')), name) DO NOTHING;
