/*
 * api_tenants.c - GET /v1/tenants, GET and PATCH /v1/tenants/{id}.
 *
 * Tenants are isolated: a caller sees exactly one tenant, its own, and
 * any other id is answered 404 like a resource that does not exist. A
 * tenant exists as soon as a token names it; its row in `tenants` (name,
 * settings) is written by the first PATCH, so until then it shows with
 * name = id, settings {} and created_at null (tenant_json in 007_rbac.sql).
 *
 * PATCH is a JSON merge patch (RFC 7386) of {name, settings}. The merged
 * settings are checked by tenant_settings_parse, the parser the rate
 * limits and the running cap read them with, so what is stored is what is
 * enforced; and against the operator's configured limits, a ceiling a
 * tenant can only lower (tenant_settings_check_ceiling): a value over it
 * is refused 422 naming the ceiling. The row is read, merged and written
 * back only if nobody changed it in between (compare and set, retried a
 * few times), so two concurrent patches never lose one another's members.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admit.h"
#include "api.h"
#include "api_util.h"
#include "http.h"
#include "query.h"
#include "jsonutil.h"
#include "tenant_settings.h"

#define TENANT_NAME_MAX_BYTES 256
#define TENANT_SETTINGS_MAX_BYTES (16 * 1024)
#define TENANT_PATCH_ATTEMPTS 3

/* A tenant as the API shows it; $1 is the caller's tenant id. */
static const char SQL_TENANT_SELF[] =
    "SELECT tenant_json($1, t) FROM (SELECT 1) one LEFT JOIN tenants t ON t.id = $1";

/* True (after answering 404) when the path names another tenant. */
static bool not_own_tenant(gw_req *r)
{
    if (strcmp(r->route.param, r->who.tenant_id) == 0) return false;
    api_reply_not_found(r, "tenant");
    return true;
}

/* --- GET /v1/tenants, GET /v1/tenants/{id} --------------------------------- */

static void on_tenant_list(gw_req *r, PGresult *res, const char *err, const char *sqlstate)
{
    if (!res) { gw_reply_db_error(r, err, sqlstate); return; }
    api_reply_page(r, res, PQntuples(res) > 0 ? 1 : 0, false);
}

void api_tenants_list(gw_req *r)
{
    const char *params[1] = { r->who.tenant_id };
    gw_query(r, SQL_TENANT_SELF, 1, params, on_tenant_list);
}

static void on_tenant_row(gw_req *r, PGresult *res, const char *err, const char *sqlstate)
{
    if (!res) { gw_reply_db_error(r, err, sqlstate); return; }
    if (PQntuples(res) != 1) { gw_reply_db_error(r, "tenant query answered no row", "XX000"); return; }
    api_reply_row(r, 200, res, 0, 0);
}

void api_tenant_get(gw_req *r)
{
    if (not_own_tenant(r)) return;
    const char *params[1] = { r->who.tenant_id };
    gw_query(r, SQL_TENANT_SELF, 1, params, on_tenant_row);
}

/* --- JSON merge patch --------------------------------------------------- */

cJSON *api_merge_patch(const cJSON *target, const cJSON *patch)
{
    if (!cJSON_IsObject(patch)) return cJSON_Duplicate(patch, 1);
    cJSON *out = cJSON_IsObject(target) ? cJSON_Duplicate(target, 1) : cJSON_CreateObject();
    if (!out) return NULL;
    for (const cJSON *m = patch->child; m; m = m->next) {
        if (cJSON_IsNull(m)) {
            cJSON_DeleteItemFromObjectCaseSensitive(out, m->string);
            continue;
        }
        cJSON *cur = cJSON_GetObjectItemCaseSensitive(out, m->string);
        cJSON *merged = api_merge_patch(cur, m);
        bool ok = merged && (cur ? cJSON_ReplaceItemInObjectCaseSensitive(out, m->string, merged)
                                 : cJSON_AddItemToObject(out, m->string, merged));
        if (!ok) {
            cJSON_Delete(merged);
            cJSON_Delete(out);
            return NULL;
        }
    }
    return out;
}

/* --- PATCH /v1/tenants/{id} -------------------------------------------------- */

typedef struct patch_state {
    cJSON *patch;          /* the request body, checked */
    int attempts;
    char *old_name, *old_settings;   /* as read; NULL when no row yet */
    char *new_name, *new_settings;
} patch_state;

static void patch_state_free(void *p)
{
    patch_state *s = p;
    cJSON_Delete(s->patch);
    free(s->old_name);
    free(s->old_settings);
    free(s->new_name);
    free(s->new_settings);
    free(s);
}

/* Checks the patch's members; answers 422 and returns -1 for a bad one. */
static int check_tenant_patch(gw_req *r, const cJSON *patch)
{
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(patch, "name");
    if (name) {
        bool ok = cJSON_IsString(name) && name->valuestring[0] &&
                  strlen(name->valuestring) <= TENANT_NAME_MAX_BYTES;
        for (const char *c = ok ? name->valuestring : ""; *c; c++)
            if ((unsigned char)*c < 0x20 || *c == 0x7f) ok = false;
        if (!ok) {
            char detail[128];
            snprintf(detail, sizeof detail, "name must be a string of 1 to %d bytes without "
                     "control characters (it cannot be removed)", TENANT_NAME_MAX_BYTES);
            http_reply_problem(r, 422, "validation-failed", detail, "/name");
            return -1;
        }
    }
    const cJSON *settings = cJSON_GetObjectItemCaseSensitive(patch, "settings");
    if (settings && !cJSON_IsObject(settings) && !cJSON_IsNull(settings)) {
        http_reply_problem(r, 422, "validation-failed",
                           "settings must be a JSON object (or null to clear them)", "/settings");
        return -1;
    }
    return 0;
}

static void read_tenant_row(gw_req *r);

static void on_tenant_written(gw_req *r, PGresult *res, const char *err, const char *sqlstate)
{
    patch_state *s = r->state;
    if (!res) { gw_reply_db_error(r, err, sqlstate); return; }
    if (PQntuples(res) == 1) {
        api_reply_row(r, 200, res, 0, 0);
        return;
    }
    /* Someone changed (or created) the row since it was read: merge again. */
    if (++s->attempts < TENANT_PATCH_ATTEMPTS && gw_req_alive(r)) {
        read_tenant_row(r);
        return;
    }
    http_reply_problem(r, 409, "conflict",
                       "the tenant was changed by another request meanwhile; retry", NULL);
}

/*
 * Checks parsed, the settings about to be stored, against the operator's
 * ceiling (AGENTGATE_TENANT_MAX_RUNNING, AGENTGATE_RATE_LIMITS): a value
 * over it is refused, naming the ceiling, unless the stored settings
 * (old_text) hold it already. Returns 0, or answers 422 and returns -1.
 */
static int check_ceiling(gw_req *r, const tenant_settings *parsed, const char *old_text)
{
    tenant_settings before;
    char why[320], at[TENANT_ACTION_MAX + 64];
    cJSON *old = old_text ? cJSON_Parse(old_text) : NULL;
    /* Stored settings that no longer parse spare nothing: all is checked. */
    bool have_before = old && tenant_settings_parse(old, &before, why, sizeof why) == 0;
    cJSON_Delete(old);
    const ag_config *cfg = &r->thr->srv->cfg;
    if (tenant_settings_check_ceiling(parsed, have_before ? &before : NULL,
                                      cfg->tenant_max_running, limits_configured(cfg),
                                      why, sizeof why, at, sizeof at) == 0)
        return 0;
    char detail[360], pointer[sizeof at + 16];
    snprintf(detail, sizeof detail, "settings: %s", why);
    snprintf(pointer, sizeof pointer, "/settings%s", at);
    http_reply_problem(r, 422, "validation-failed", detail, pointer);
    return -1;
}

/* The merged settings as compact JSON, or NULL after answering 422/503. */
static char *merged_settings(gw_req *r, const patch_state *s)
{
    const cJSON *patch = cJSON_GetObjectItemCaseSensitive(s->patch, "settings");
    cJSON *old = s->old_settings ? cJSON_Parse(s->old_settings) : cJSON_CreateObject();
    cJSON *merged;
    if (!patch) {
        merged = old;            /* settings not in the patch: kept as they are */
        old = NULL;
    } else if (cJSON_IsNull(patch)) {
        merged = cJSON_CreateObject();
    } else {
        merged = api_merge_patch(old, patch);
    }
    cJSON_Delete(old);
    if (!merged) {
        http_reply_problem(r, 503, "unavailable", "out of memory", NULL);
        return NULL;
    }
    tenant_settings parsed;
    char why[200];
    if (tenant_settings_parse(merged, &parsed, why, sizeof why) != 0) {
        char detail[256];
        snprintf(detail, sizeof detail, "settings: %s", why);
        http_reply_problem(r, 422, "validation-failed", detail, "/settings");
        cJSON_Delete(merged);
        return NULL;
    }
    if (check_ceiling(r, &parsed, s->old_settings) != 0) {
        cJSON_Delete(merged);
        return NULL;
    }
    char *text = json_print(merged);
    cJSON_Delete(merged);
    if (!text) { http_reply_problem(r, 503, "unavailable", "out of memory", NULL); return NULL; }
    if (strlen(text) > TENANT_SETTINGS_MAX_BYTES) {
        char detail[96];
        snprintf(detail, sizeof detail, "settings must be at most %d bytes as compact JSON",
                 TENANT_SETTINGS_MAX_BYTES);
        http_reply_problem(r, 422, "validation-failed", detail, "/settings");
        free(text);
        return NULL;
    }
    return text;
}

static void write_tenant_row(gw_req *r)
{
    patch_state *s = r->state;
    const char *name = json_get_string(s->patch, "name");
    free(s->new_name);
    free(s->new_settings);
    s->new_name = strdup(name ? name : s->old_name ? s->old_name : r->who.tenant_id);
    s->new_settings = merged_settings(r, s);
    if (!s->new_settings) return;
    if (!s->new_name) { http_reply_problem(r, 503, "unavailable", "out of memory", NULL); return; }
    if (!s->old_name) {
        const char *params[3] = { r->who.tenant_id, s->new_name, s->new_settings };
        gw_query(r, "INSERT INTO tenants (id, name, settings) VALUES ($1, $2, $3::jsonb)"
                    " ON CONFLICT (id) DO NOTHING RETURNING tenant_json(tenants.id, tenants)",
                 3, params, on_tenant_written);
        return;
    }
    const char *params[5] = { r->who.tenant_id, s->new_name, s->new_settings,
                              s->old_name, s->old_settings };
    gw_query(r, "UPDATE tenants SET name = $2, settings = $3::jsonb"
                " WHERE id = $1 AND name = $4 AND settings = $5::jsonb"
                " RETURNING tenant_json(tenants.id, tenants)",
             5, params, on_tenant_written);
}

static void on_tenant_read(gw_req *r, PGresult *res, const char *err, const char *sqlstate)
{
    patch_state *s = r->state;
    if (!res) { gw_reply_db_error(r, err, sqlstate); return; }
    free(s->old_name);
    free(s->old_settings);
    s->old_name = s->old_settings = NULL;
    if (PQntuples(res) == 1) {
        s->old_name = strdup(PQgetvalue(res, 0, 0));
        s->old_settings = strdup(PQgetvalue(res, 0, 1));
        if (!s->old_name || !s->old_settings) {
            http_reply_problem(r, 503, "unavailable", "out of memory", NULL);
            return;
        }
    }
    if (!gw_req_alive(r)) return;    /* nothing written for a client gone */
    write_tenant_row(r);
}

static void read_tenant_row(gw_req *r)
{
    const char *params[1] = { r->who.tenant_id };
    gw_query(r, "SELECT name, settings::text FROM tenants WHERE id = $1",
             1, params, on_tenant_read);
}

void api_tenant_update(gw_req *r)
{
    if (not_own_tenant(r)) return;
    snprintf(r->audit_resource, sizeof r->audit_resource, "tenants/%s", r->who.tenant_id);
    static const char *const fields[] = { "name", "settings", NULL };
    cJSON *body = api_parse_body(r, fields);
    if (!body) return;
    if (check_tenant_patch(r, body) != 0) { cJSON_Delete(body); return; }
    patch_state *s = calloc(1, sizeof *s);
    if (!s) {
        cJSON_Delete(body);
        http_reply_problem(r, 503, "unavailable", "out of memory", NULL);
        return;
    }
    s->patch = body;
    r->state = s;
    r->state_free = patch_state_free;
    read_tenant_row(r);
}
