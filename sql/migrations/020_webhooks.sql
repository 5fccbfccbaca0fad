-- 020_webhooks: completion webhooks through a transactional outbox.
--
-- A job may carry a webhook URL (jobs.webhook_url, checked by the gateway
-- against the allow-lists). When such a job reaches a terminal state, a
-- trigger on jobs writes a row into webhook_deliveries - the outbox - in
-- the same transaction as the terminal transition, whatever wrote it (the
-- worker's terminal write, the gateway's cancel of a queued job, the
-- reaper giving up on a job). So a delivery exists exactly when the job
-- ended, and nothing that dies afterwards can lose it.
--
-- Workers send the outbox: webhook_claim leases due rows (SKIP LOCKED, a
-- lease in time), so a worker killed mid-delivery only delays the row
-- until its lease expires and another worker claims it; webhook_record
-- writes an attempt's outcome and the next try (or the end). Every
-- attempt has a row in webhook_attempts, an attempt cut short by a lost
-- worker included (it is closed with an error when its row is claimed
-- again).
--
-- Each tenant's signing secret (Standard Webhooks, "whsec_" + base64 of
-- 32 bytes) is in tenant_webhook_secrets: made with the tenant's row, or
-- on first use, and replaced by POST /v1/tenants/{id}/webhook-secret.

ALTER TABLE jobs ADD COLUMN webhook_url text
    CHECK (webhook_url IS NULL OR octet_length(webhook_url) <= 2048);

-- 32 bytes from pg_strong_random (two version-4 uuids: 244 random bits).
CREATE FUNCTION webhook_new_secret() RETURNS text
LANGUAGE sql VOLATILE AS $$
    SELECT 'whsec_' || encode(decode(replace(gen_random_uuid()::text
                                             || gen_random_uuid()::text, '-', ''), 'hex'),
                              'base64')
$$;

CREATE TABLE tenant_webhook_secrets (
    tenant_id   text PRIMARY KEY,
    secret      text NOT NULL CHECK (secret LIKE 'whsec\_%'),
    rotated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE webhook_deliveries (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),  -- the webhook-id header
    tenant_id       text NOT NULL,
    job_id          uuid NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    url             text NOT NULL,
    event_type      text NOT NULL,      -- job.succeeded | job.failed | job.cancelled
    body            text NOT NULL,      -- the JSON sent, fixed at the terminal state
    state           text NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    lease_until     timestamptz,
    leased_by       text,
    last_status     integer,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE state = 'pending';
CREATE INDEX webhook_deliveries_job ON webhook_deliveries (job_id, created_at);

CREATE TABLE webhook_attempts (
    delivery_id  uuid NOT NULL REFERENCES webhook_deliveries(id) ON DELETE CASCADE,
    tenant_id    text NOT NULL,
    attempt      integer NOT NULL,
    worker_id    text,
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    status_code  integer,               -- the receiver's HTTP status; NULL: no answer
    error        text,                  -- NULL for a 2xx
    duration_ms  integer,
    PRIMARY KEY (delivery_id, attempt)
);

-- Tenants that exist already get theirs now (before the policies below,
-- which would hide the rows from the owner running this).
INSERT INTO tenant_webhook_secrets (tenant_id, secret)
SELECT id, webhook_new_secret() FROM tenants;

GRANT SELECT, INSERT, UPDATE ON tenant_webhook_secrets TO agentgate_app;
GRANT SELECT ON webhook_deliveries, webhook_attempts TO agentgate_app;

ALTER TABLE tenant_webhook_secrets ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_webhook_secrets FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_rows ON tenant_webhook_secrets
    USING (tenant_id = nullif(current_setting('agentgate.tenant_id', true), ''))
    WITH CHECK (tenant_id = nullif(current_setting('agentgate.tenant_id', true), ''));
ALTER TABLE webhook_deliveries ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_deliveries FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_rows ON webhook_deliveries
    USING (tenant_id = nullif(current_setting('agentgate.tenant_id', true), ''));
ALTER TABLE webhook_attempts ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_attempts FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_rows ON webhook_attempts
    USING (tenant_id = nullif(current_setting('agentgate.tenant_id', true), ''));

-- The owner, inside the SECURITY DEFINER functions below (and only
-- there: agentgate.maintenance is their SET clause), works across tenants,
-- as in 006.
DO $$
BEGIN
    EXECUTE format(
        'CREATE POLICY definer_maintenance ON tenant_webhook_secrets TO %I'
        ' USING (current_setting(''agentgate.maintenance'', true) = ''on'')'
        ' WITH CHECK (current_setting(''agentgate.maintenance'', true) = ''on'')',
        current_user);
    EXECUTE format(
        'CREATE POLICY definer_maintenance ON webhook_deliveries TO %I'
        ' USING (current_setting(''agentgate.maintenance'', true) = ''on'')'
        ' WITH CHECK (current_setting(''agentgate.maintenance'', true) = ''on'')',
        current_user);
    EXECUTE format(
        'CREATE POLICY definer_maintenance ON webhook_attempts TO %I'
        ' USING (current_setting(''agentgate.maintenance'', true) = ''on'')'
        ' WITH CHECK (current_setting(''agentgate.maintenance'', true) = ''on'')',
        current_user);
END
$$;

-- The outbox write. SECURITY DEFINER because terminal transitions are
-- written under a tenant's setting (worker, gateway) and across tenants
-- (the reaper's definer functions) alike; the row is the job's own tenant's.
CREATE FUNCTION webhook_outbox_write() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public, pg_temp
SET agentgate.maintenance = 'on'
AS $$
BEGIN
    INSERT INTO webhook_deliveries (tenant_id, job_id, url, event_type, body)
    VALUES (NEW.tenant_id, NEW.id, NEW.webhook_url, 'job.' || NEW.status,
            json_build_object('type', 'job.' || NEW.status,
                              'timestamp', api_ts(now()),
                              'data', job_json(NEW))::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER jobs_webhook_outbox AFTER UPDATE OF status ON jobs
    FOR EACH ROW
    WHEN (NEW.webhook_url IS NOT NULL
          AND NEW.status IN ('succeeded', 'failed', 'cancelled')
          AND OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION webhook_outbox_write();

-- A tenant row gets its secret with it.
CREATE FUNCTION webhook_secret_for_new_tenant() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public, pg_temp
SET agentgate.maintenance = 'on'
AS $$
BEGIN
    INSERT INTO tenant_webhook_secrets (tenant_id, secret)
    VALUES (NEW.id, webhook_new_secret()) ON CONFLICT (tenant_id) DO NOTHING;
    RETURN NULL;
END
$$;

CREATE TRIGGER tenants_webhook_secret AFTER INSERT ON tenants
    FOR EACH ROW EXECUTE FUNCTION webhook_secret_for_new_tenant();

-- Leases up to p_limit due deliveries to p_worker for p_lease_ms, opening
-- an attempt row for each; an attempt left open by a worker that lost its
-- lease is closed first, with an error saying so. Returns what the
-- sender needs, the tenant's secret included (made if the tenant has none),
-- and the job's traceparent, which the attempt's span continues.
CREATE FUNCTION webhook_claim(p_worker text, p_limit integer, p_lease_ms integer)
RETURNS TABLE (o_id uuid, o_tenant_id text, o_job_id uuid, o_url text, o_body text,
               o_attempt integer, o_secret text, o_created_ms bigint, o_traceparent text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = public, pg_temp
SET agentgate.maintenance = 'on'
AS $$
DECLARE
    v_ids uuid[];
BEGIN
    v_ids := ARRAY(SELECT d.id FROM webhook_deliveries d
                    WHERE d.state = 'pending' AND d.next_attempt_at <= now()
                      AND (d.lease_until IS NULL OR d.lease_until < now())
                    ORDER BY d.next_attempt_at
                    LIMIT p_limit FOR UPDATE SKIP LOCKED);
    IF cardinality(v_ids) = 0 THEN
        RETURN;
    END IF;
    UPDATE webhook_attempts a
       SET finished_at = now(),
           error = 'worker lost during the attempt (its lease expired)',
           duration_ms = (extract(epoch FROM now() - a.started_at) * 1000)::integer
     WHERE a.delivery_id = ANY (v_ids) AND a.finished_at IS NULL;
    INSERT INTO tenant_webhook_secrets (tenant_id, secret)
    SELECT DISTINCT d.tenant_id, webhook_new_secret() FROM webhook_deliveries d
     WHERE d.id = ANY (v_ids)
    ON CONFLICT (tenant_id) DO NOTHING;
    RETURN QUERY
    WITH u AS (
        UPDATE webhook_deliveries d
           SET attempts = d.attempts + 1, leased_by = p_worker,
               lease_until = clock_timestamp() + p_lease_ms * interval '1 millisecond'
         WHERE d.id = ANY (v_ids)
        RETURNING d.*),
    a AS (
        INSERT INTO webhook_attempts (delivery_id, tenant_id, attempt, worker_id)
        SELECT u.id, u.tenant_id, u.attempts, p_worker FROM u)
    SELECT u.id, u.tenant_id, u.job_id, u.url, u.body, u.attempts, s.secret,
           (extract(epoch FROM u.created_at) * 1000)::bigint, coalesce(j.traceparent, '')
      FROM u JOIN tenant_webhook_secrets s ON s.tenant_id = u.tenant_id
             LEFT JOIN jobs j ON j.id = u.job_id;
END
$$;

-- Records attempt p_attempt of delivery p_id by p_worker: its status code
-- (NULL: no answer), error (NULL: delivered), duration; then the delivery
-- is delivered, failed for good (p_give_up), or due again in p_retry_ms.
-- Only while p_worker still holds the attempt: a worker whose lease was
-- taken over records nothing (returns false).
CREATE FUNCTION webhook_record(p_id uuid, p_worker text, p_attempt integer,
                               p_status integer, p_error text, p_duration_ms integer,
                               p_give_up boolean, p_retry_ms bigint)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = public, pg_temp
SET agentgate.maintenance = 'on'
AS $$
BEGIN
    UPDATE webhook_deliveries d
       SET state = CASE WHEN p_error IS NULL THEN 'delivered'
                        WHEN p_give_up THEN 'failed' ELSE 'pending' END,
           finished_at = CASE WHEN p_error IS NULL OR p_give_up THEN now() END,
           next_attempt_at = CASE WHEN p_error IS NULL OR p_give_up THEN d.next_attempt_at
                                  ELSE now() + p_retry_ms * interval '1 millisecond' END,
           lease_until = NULL, leased_by = NULL,
           last_status = p_status, last_error = p_error
     WHERE d.id = p_id AND d.leased_by = p_worker AND d.attempts = p_attempt
       AND d.state = 'pending';
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    UPDATE webhook_attempts a
       SET finished_at = now(), status_code = p_status, error = p_error,
           duration_ms = p_duration_ms
     WHERE a.delivery_id = p_id AND a.attempt = p_attempt;
    RETURN true;
END
$$;

REVOKE ALL ON FUNCTION webhook_claim(text, integer, integer),
                       webhook_record(uuid, text, integer, integer, text, integer, boolean,
                                      bigint),
                       webhook_outbox_write(), webhook_secret_for_new_tenant()
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION webhook_claim(text, integer, integer),
                          webhook_record(uuid, text, integer, integer, text, integer, boolean,
                                         bigint)
    TO agentgate_app;
GRANT EXECUTE ON FUNCTION webhook_new_secret() TO agentgate_app;

-- A delivery as GET /v1/jobs/{id}/webhook-deliveries shows it, its
-- attempts oldest first.
CREATE FUNCTION webhook_delivery_json(d webhook_deliveries) RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
        'id', d.id,
        'job_id', d.job_id,
        'url', d.url,
        'event_type', d.event_type,
        'state', d.state,
        'attempts', d.attempts,
        'next_attempt_at', CASE WHEN d.state = 'pending' THEN api_ts(d.next_attempt_at) END,
        'last_status', d.last_status,
        'last_error', d.last_error,
        'created_at', api_ts(d.created_at),
        'finished_at', api_ts(d.finished_at),
        'attempt_log', (SELECT coalesce(json_agg(json_build_object(
                                   'attempt', a.attempt,
                                   'worker_id', a.worker_id,
                                   'started_at', api_ts(a.started_at),
                                   'finished_at', api_ts(a.finished_at),
                                   'status_code', a.status_code,
                                   'error', a.error,
                                   'duration_ms', a.duration_ms) ORDER BY a.attempt), '[]'::json)
                          FROM webhook_attempts a
                         WHERE a.delivery_id = d.id AND a.tenant_id = d.tenant_id))
$$;

-- jobs_submit_rows of 014 with p_webhook (NULL elements for none). A
-- retry (p_retry_of) without a webhook of its own keeps the retried job's,
-- so its end is reported where the original's would have been.
-- Everything else as in 014.
CREATE FUNCTION jobs_submit_rows(p_id uuid[], p_tenant text[], p_type text[],
                                 p_priority int[], p_payload jsonb[], p_max_attempts int[],
                                 p_timeout_s int[], p_created_by text[], p_request_id text[],
                                 p_traceparent text[], p_event_body text[], p_run_at_ms bigint[],
                                 p_retry_of uuid[], p_webhook text[])
RETURNS TABLE (ord bigint, o_created_at timestamptz, o_run_at timestamptz, o_payload text)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    t text;
    v_retried uuid[];
BEGIN
    FOR t IN SELECT DISTINCT x FROM unnest(p_tenant) AS x LOOP
        PERFORM set_config('agentgate.tenant_id', t, true);
        RETURN QUERY
        WITH input AS (
            SELECT * FROM unnest(p_id, p_tenant, p_type, p_priority, p_payload,
                                 p_max_attempts, p_timeout_s, p_created_by, p_request_id,
                                 p_traceparent, p_event_body, p_run_at_ms, p_retry_of,
                                 p_webhook)
                   WITH ORDINALITY AS u(id, tenant_id, type, priority, payload, max_attempts,
                                        timeout_s, created_by, request_id, traceparent,
                                        event_body, run_at_ms, retry_of, webhook, n)
             WHERE u.tenant_id = t),
        j AS (
            INSERT INTO jobs (id, tenant_id, type, status, priority, payload, max_attempts,
                              timeout_s, created_by, last_event_id, request_id, traceparent,
                              run_at, retry_of, webhook_url)
            SELECT i.id, i.tenant_id, i.type, 'queued', i.priority, i.payload, i.max_attempts,
                   i.timeout_s, i.created_by, 1, i.request_id, i.traceparent,
                   CASE WHEN i.run_at_ms > 0 THEN to_timestamp(i.run_at_ms / 1000.0) END,
                   i.retry_of,
                   coalesce(i.webhook, (SELECT o.webhook_url FROM jobs o
                                         WHERE i.retry_of IS NOT NULL AND o.id = i.retry_of
                                           AND o.tenant_id = t))
              FROM input i ORDER BY i.n
            RETURNING jobs.id, jobs.created_at, jobs.run_at, jobs.payload::text AS payload),
        e AS (
            INSERT INTO job_events (job_id, tenant_id, seq, type, body)
            SELECT i.id, i.tenant_id, 1, 'job.queued', i.event_body FROM input i)
        SELECT i.n, j.created_at, j.run_at, j.payload FROM j JOIN input i ON i.id = j.id;

        v_retried := ARRAY(SELECT u.r FROM unnest(p_retry_of, p_tenant) AS u(r, tenant_id)
                            WHERE u.r IS NOT NULL AND u.tenant_id = t);
        IF cardinality(v_retried) > 0 THEN
            UPDATE jobs o SET dead_resolved_at = now()
             WHERE o.id = ANY (v_retried) AND o.tenant_id = t
               AND o.status = 'failed' AND o.dead_resolved_at IS NULL;
        END IF;
    END LOOP;
    PERFORM set_config('agentgate.tenant_id', '', true);
END
$$;

DROP FUNCTION jobs_submit_rows(uuid[], text[], text[], int[], jsonb[], int[], int[], text[],
                               text[], text[], text[], bigint[], uuid[]);
