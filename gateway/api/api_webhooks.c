/*
 * api_webhooks.c - the HTTP side of completion webhooks: the check of a
 * submission's "webhook" URL, GET /v1/jobs/{id}/webhook-deliveries and
 * POST /v1/tenants/{id}/webhook-secret.
 *
 * A webhook URL must be within the operator's allow-list
 * (AGENTGATE_WEBHOOK_URL_ALLOWLIST) and, when the tenant's settings have
 * a webhook_url_allowlist, within that one too: the tenant can narrow
 * what the operator allows, never widen it. Both are matched by
 * mcp_url_allowed, which parses the URL rather than comparing text. The
 * tenant's list is read from this thread's settings cache, which the
 * rate-limit stage filled for this request (so it is at most
 * AGENTGATE_TENANT_SETTINGS_CACHE_MS old).
 *
 * The deliveries themselves are written by PostgreSQL (the outbox trigger
 * of sql/migrations/020_webhooks.sql) and sent by workers
 * (worker/runtime/webhooks.c); this file only reads them.
 *
 * The secret: whoever may change the tenant (tenants.update) may replace
 * its signing secret; the new one is in that answer and never again.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <event2/buffer.h>

#include "api.h"
#include "api_util.h"
#include "api_webhooks.h"
#include "clock.h"
#include "http.h"
#include "mcp_config.h"
#include "query.h"
#include "tenant_cache.h"
#include "uuid.h"

/* Fills *p for a webhook refused with slug and detail. */
static int webhook_problem(api_job_problem *p, const char *slug, const char *detail)
{
    p->slug = slug;
    snprintf(p->pointer, sizeof p->pointer, "/webhook");
    snprintf(p->detail, sizeof p->detail, "%s", detail);
    return -1;
}

int api_check_webhook(gw_req *r, const cJSON *body, const char **out, api_job_problem *p)
{
    *out = NULL;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, "webhook");
    if (v == NULL || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsString(v) || v->valuestring[0] == '\0'
        || strlen(v->valuestring) > API_WEBHOOK_URL_MAX) {
        char detail[96];
        snprintf(detail, sizeof detail, "webhook must be an http or https URL of at most %d bytes",
                 API_WEBHOOK_URL_MAX);
        return webhook_problem(p, "validation-failed", detail);
    }
    const ag_config *cfg = &r->thr->srv->cfg;
    if (!mcp_url_allowed(cfg->webhook_url_allowlist, v->valuestring))
        return webhook_problem(p, "url-not-allowed",
                               "webhook is not within the URL prefixes this gateway allows "
                               "(AGENTGATE_WEBHOOK_URL_ALLOWLIST)");
    bool fresh;
    const tenant_settings *s = tenant_cache_get(r->who.tenant_id, clock_mono_ms(),
                                                cfg->tenant_settings_cache_ms, &fresh);
    if (s && s->has_webhook_allowlist
        && !mcp_url_allowed(s->webhook_allowlist, v->valuestring))
        return webhook_problem(p, "url-not-allowed",
                               "webhook is not within the tenant's "
                               "settings.webhook_url_allowlist");
    *out = v->valuestring;
    return 0;
}

int api_read_webhook(gw_req *r, const cJSON *body, const char **out)
{
    api_job_problem p;
    if (api_check_webhook(r, body, out, &p) == 0)
        return 0;
    http_reply_problem(r, 422, p.slug, p.detail, p.pointer);
    return -1;
}

/* --- GET /v1/jobs/{id}/webhook-deliveries -------------------------------- */

/* The job's type (for its resource's permission), its webhook URL and its
 * deliveries, oldest first: one per terminal state it reached. */
static const char SQL_DELIVERIES[] =
    "SELECT j.type, j.webhook_url,"
    " (SELECT coalesce(json_agg(webhook_delivery_json(d) ORDER BY d.created_at, d.id),"
    "                  '[]'::json)"
    "    FROM webhook_deliveries d WHERE d.job_id = j.id AND d.tenant_id = j.tenant_id)"
    " FROM jobs j WHERE j.id = $1 AND j.tenant_id = $2";

static void on_deliveries(gw_req *r, PGresult *res, const char *err, const char *sqlstate)
{
    if (!res) { gw_reply_db_error(r, err, sqlstate); return; }
    if (PQntuples(res) == 0) { api_reply_not_found(r, "job"); return; }
    if (api_require_job_access(r, PQgetvalue(res, 0, 0)) != 0) return;
    struct evbuffer *b = evbuffer_new();
    if (!b) { http_reply_problem(r, 503, "unavailable", "out of memory", NULL); return; }
    size_t len;
    const char *items = api_row_json(res, 0, 2, &len);
    evbuffer_add_printf(b, "{\"job_id\":\"%s\",\"webhook\":", r->route.param);
    if (PQgetisnull(res, 0, 1)) {
        evbuffer_add(b, "null", 4);
    } else {
        cJSON *url = cJSON_CreateString(PQgetvalue(res, 0, 1));
        char *quoted = url ? cJSON_PrintUnformatted(url) : NULL;
        cJSON_Delete(url);
        if (!quoted) {
            evbuffer_free(b);
            http_reply_problem(r, 503, "unavailable", "out of memory", NULL);
            return;
        }
        evbuffer_add(b, quoted, strlen(quoted));
        cJSON_free(quoted);
    }
    evbuffer_add(b, ",\"items\":", 9);
    evbuffer_add(b, items, len);
    evbuffer_add(b, "}", 1);
    api_reply_buffer(r, b);
}

void api_job_webhook_deliveries(gw_req *r)
{
    char id[UUID_STR_LEN];
    if (!uuid_parse(r->route.param, id)) { api_reply_not_found(r, "job"); return; }
    /* The answer names the job by its canonical id. */
    snprintf(r->route.param, sizeof r->route.param, "%s", id);
    const char *params[2] = { id, r->who.tenant_id };
    gw_query_static(r, SQL_DELIVERIES, 2, params, on_deliveries);
}

/* --- POST /v1/tenants/{id}/webhook-secret --------------------------------- */

static const char SQL_ROTATE[] =
    "INSERT INTO tenant_webhook_secrets (tenant_id, secret) VALUES ($1, webhook_new_secret())"
    " ON CONFLICT (tenant_id) DO UPDATE SET secret = EXCLUDED.secret, rotated_at = now()"
    " RETURNING json_build_object('tenant_id', tenant_id, 'webhook_secret', secret,"
    "                             'rotated_at', api_ts(rotated_at))";

static void on_rotated(gw_req *r, PGresult *res, const char *err, const char *sqlstate)
{
    if (!res) { gw_reply_db_error(r, err, sqlstate); return; }
    if (PQntuples(res) != 1) {
        gw_reply_db_error(r, "secret rotation answered no row", "XX000");
        return;
    }
    http_set_header(r, "Cache-Control", "no-store");
    api_reply_row(r, 200, res, 0, 0);
}

void api_tenant_webhook_secret(gw_req *r)
{
    /* Another tenant's id is answered as one that does not exist. */
    if (strcmp(r->route.param, r->who.tenant_id) != 0) {
        api_reply_not_found(r, "tenant");
        return;
    }
    snprintf(r->audit_resource, sizeof r->audit_resource, "tenants/%s/webhook-secret",
             r->who.tenant_id);
    const char *params[1] = { r->who.tenant_id };
    gw_query(r, SQL_ROTATE, 1, params, on_rotated);
}
