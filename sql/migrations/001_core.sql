-- 001_core: the control-plane tables of agentgate.
-- PostgreSQL is the authority for every job; Redis holds only what can be
-- rebuilt from these rows. Every row that belongs to a tenant carries
-- tenant_id, and every query the services run filters by it.

CREATE TABLE tenants (
    id          text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9._-]{1,64}$'),
    name        text NOT NULL,
    settings    jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE jobs (
    id                  uuid PRIMARY KEY,
    tenant_id           text NOT NULL,
    type                text NOT NULL,
    status              text NOT NULL CHECK (status IN
                            ('queued','running','succeeded','failed','cancelled')),
    priority            integer NOT NULL DEFAULT 0,
    payload             jsonb NOT NULL,
    result              jsonb,
    error_code          text,
    error_message       text,
    attempts            integer NOT NULL DEFAULT 0,
    max_attempts        integer NOT NULL DEFAULT 3 CHECK (max_attempts BETWEEN 1 AND 100),
    timeout_s           integer NOT NULL DEFAULT 300 CHECK (timeout_s BETWEEN 1 AND 86400),
    progress            jsonb,
    run_at              timestamptz,
    created_by          text NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    started_at          timestamptz,
    finished_at         timestamptz,
    heartbeat_at        timestamptz,
    worker_id           text,
    last_event_id       bigint NOT NULL DEFAULT 0,
    cancel_requested_at timestamptz,
    request_id          text,
    traceparent         text
);
-- Listing is newest first per tenant with a (created_at, id) keyset cursor.
CREATE INDEX jobs_tenant_created ON jobs (tenant_id, created_at DESC, id DESC);
-- Reconciliation and lease checks only ever look at unfinished jobs.
CREATE INDEX jobs_unfinished ON jobs (status, heartbeat_at)
    WHERE status IN ('queued','running');

-- Every event a job ever emitted, byte for byte as it went out on Redis, so a
-- resume from an id older than the Redis ring is served with no gap.
CREATE TABLE job_events (
    job_id      uuid NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    tenant_id   text NOT NULL,
    seq         bigint NOT NULL CHECK (seq > 0),
    type        text NOT NULL,
    body        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, seq)
);

CREATE TABLE sessions (
    id          uuid PRIMARY KEY,
    tenant_id   text NOT NULL,
    created_by  text NOT NULL,
    title       text,
    metadata    jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sessions_tenant ON sessions (tenant_id, created_at DESC);

CREATE TABLE agent_runs (
    id              uuid PRIMARY KEY,
    tenant_id       text NOT NULL,
    job_id          uuid NOT NULL UNIQUE REFERENCES jobs(id) ON DELETE CASCADE,
    session_id      uuid REFERENCES sessions(id) ON DELETE SET NULL,
    created_by      text NOT NULL,
    prompt          text NOT NULL,
    model           text,
    temperature     real,
    max_tokens      integer,
    planning_mode   text NOT NULL DEFAULT 'optional'
                        CHECK (planning_mode IN ('full','optional','none')),
    response_mode   text NOT NULL DEFAULT 'llm-best-effort'
                        CHECK (response_mode IN ('fallback-only','llm-best-effort','llm-required')),
    tools           jsonb,
    intent          text,
    output          text,
    todos           jsonb NOT NULL DEFAULT '[]',
    metrics         jsonb NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now(),
    started_at      timestamptz,
    finished_at     timestamptz
);
CREATE INDEX agent_runs_tenant ON agent_runs (tenant_id, created_at DESC);
CREATE INDEX agent_runs_session ON agent_runs (session_id, created_at);

CREATE TABLE steps (
    id          uuid PRIMARY KEY,
    tenant_id   text NOT NULL,
    run_id      uuid NOT NULL REFERENCES agent_runs(id) ON DELETE CASCADE,
    idx         integer NOT NULL,
    action      text NOT NULL,
    input       jsonb,
    output      jsonb,
    status      text NOT NULL DEFAULT 'completed',
    latency_ms  integer,
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    UNIQUE (run_id, idx)
);

-- A NULL tenant_id is a manifest every tenant sees.
CREATE TABLE tool_manifests (
    id              bigserial PRIMARY KEY,
    tenant_id       text,
    name            text NOT NULL,
    description     text NOT NULL,
    input_schema    jsonb NOT NULL DEFAULT '{"type":"object"}',
    required_scopes text[] NOT NULL DEFAULT '{}',
    rate_limit      integer,
    enabled         boolean NOT NULL DEFAULT true,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX tool_manifests_name ON tool_manifests (coalesce(tenant_id, ''), name);

CREATE TABLE model_defaults (
    id          bigserial PRIMARY KEY,
    scope       text NOT NULL CHECK (scope IN ('global','tenant')),
    tenant_id   text,
    provider    text NOT NULL,
    model       text NOT NULL,
    base_url    text,
    params      jsonb NOT NULL DEFAULT '{}',
    is_default  boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CHECK ((scope = 'global') = (tenant_id IS NULL))
);

CREATE TABLE audit_logs (
    id          bigserial PRIMARY KEY,
    tenant_id   text NOT NULL,
    principal   text NOT NULL,
    action      text NOT NULL,
    resource    text NOT NULL,
    outcome     text NOT NULL,
    request_id  text,
    detail      jsonb,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_logs_tenant ON audit_logs (tenant_id, created_at DESC);

INSERT INTO model_defaults (scope, provider, model, is_default, params)
VALUES ('global', 'builtin', 'builtin-deterministic-1', true,
        '{"note":"offline deterministic provider; no network, no real model"}');
