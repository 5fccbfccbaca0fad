-- 012_models_unique: a tenant has at most one model_defaults row per model
-- and provider.
--
-- Several rows for one model are the model's fallback chain (docs/api.md,
-- "Models"), so the model name alone cannot be unique: a chain names
-- other providers. Two rows with the same model AND provider add nothing
-- to a chain (the router asks a provider once) and only make the rows
-- ambiguous, so POST and PATCH /v1/models answer 409 for a second one.
-- Global rows (tenant_id NULL, written only by migrations) are not
-- covered.
--
-- Duplicates written before this migration are resolved by keeping the
-- oldest row of each (tenant, model, provider): it is the one the chain
-- already tried first (oldest first), so what the workers do does not
-- change. The newer rows are deleted rather than renamed: a renamed row
-- would name a model nobody asked for and could carry the tenant's
-- default mark to it. If a deleted row held is_default, the kept row
-- takes the mark, so the tenant's default model stays the same model.

-- FORCE puts the owner under the policies too, and no tenant is set in a
-- migration, so every tenant row would be invisible here. The table is
-- released from FORCE for this transaction's statements and put back
-- before it commits (ALTER TABLE is transactional).
ALTER TABLE model_defaults NO FORCE ROW LEVEL SECURITY;

WITH ranked AS (
    SELECT id, is_default,
           min(id) OVER w AS keep_id,
           bool_or(is_default) OVER w AS any_default
      FROM model_defaults
     WHERE scope = 'tenant'
    WINDOW w AS (PARTITION BY tenant_id, model, provider))
UPDATE model_defaults m SET is_default = true
  FROM ranked r
 WHERE m.id = r.id AND r.id = r.keep_id AND r.any_default AND NOT r.is_default;

DELETE FROM model_defaults d
 USING model_defaults k
 WHERE d.scope = 'tenant' AND k.scope = 'tenant'
   AND d.tenant_id = k.tenant_id AND d.model = k.model AND d.provider = k.provider
   AND d.id > k.id;

ALTER TABLE model_defaults FORCE ROW LEVEL SECURITY;

CREATE UNIQUE INDEX model_defaults_tenant_model_provider
    ON model_defaults (tenant_id, model, provider) WHERE scope = 'tenant';
