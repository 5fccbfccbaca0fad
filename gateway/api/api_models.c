/*
 * api_models.c - GET /v1/models: the models the caller's tenant can name
 * in POST /v1/agent-runs; POST /v1/models, PATCH and DELETE
 * /v1/models/{id}: the tenant's own model_defaults rows.
 *
 * They are the model_defaults rows of the tenant and the global ones, and
 * the model the configured providers serve (AGENTGATE_LLM_MODEL, when
 * AGENTGATE_LLM_PROVIDERS names any). Only names and row ids are shown:
 * never a base URL, a row's params or a key, which may hold credentials.
 *
 * A tenant writes only rows of scope 'tenant' with its own tenant_id;
 * global rows and other tenants' rows are 404 to it. It has at most one
 * row per model and provider (rows of other providers for the same model
 * are its fallback chain); a second is 409. A row names a
 * provider the worker can reach: "builtin", or one this gateway's
 * AGENTGATE_LLM_PROVIDERS names. A base_url moves that provider for the
 * tenant, except for a provider with a configured API key (the key
 * would be sent to an address the tenant chose) and for "builtin".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <event2/buffer.h>

#include "api.h"
#include "api_util.h"
#include "http.h"
#include "query.h"
#include "jsonutil.h"
#include "log.h"

/* A listing larger than this is cut, and says so. */
#define MODELS_LIST_MAX 1000

/* Adds the provider names of "name=base_url,name=base_url" to arr, in
 * their fallback order. */
static void add_provider_names(cJSON *arr, const char *list)
{
    const char *p = list;
    while (*p) {
        size_t len = strcspn(p, ",");
        size_t name_len = strcspn(p, "=,");
        const char *name = p;
        while (name_len && *name == ' ') { name++; name_len--; }
        while (name_len && name[name_len - 1] == ' ') name_len--;
        if (name_len) {
            char buf[256];
            snprintf(buf, sizeof buf, "%.*s", (int)name_len, name);
            cJSON_AddItemToArray(arr, cJSON_CreateString(buf));
        }
        p += len;
        if (*p == ',') p++;
    }
}

/* The configured model as an item, or NULL when none is configured (or
 * memory runs out). Caller frees. */
static char *configured_model_json(const ag_config *cfg)
{
    if (!cfg->llm_providers[0] || !cfg->llm_model[0]) return NULL;
    cJSON *m = cJSON_CreateObject();
    cJSON *names = cJSON_CreateArray();
    add_provider_names(names, cfg->llm_providers);
    const cJSON *first = cJSON_GetArrayItem(names, 0);
    char *text = NULL;
    if (first && cJSON_AddStringToObject(m, "model", cfg->llm_model) &&
        cJSON_AddStringToObject(m, "provider", first->valuestring) &&
        cJSON_AddItemToObject(m, "providers", names)) {
        names = NULL;   /* now owned by m */
        if (cJSON_AddStringToObject(m, "scope", "config") &&
            cJSON_AddTrueToObject(m, "is_default"))
            text = json_print(m);
    }
    cJSON_Delete(names);
    cJSON_Delete(m);
    return text;
}

static void on_models(gw_req *r, PGresult *res, const char *err, const char *sqlstate)
{
    if (!res) { gw_reply_db_error(r, err, sqlstate); return; }
    int rows = PQntuples(res);
    int shown = rows > MODELS_LIST_MAX ? MODELS_LIST_MAX : rows;
    char *configured = configured_model_json(&r->thr->srv->cfg);
    struct evbuffer *b = evbuffer_new();
    if (!b) {
        free(configured);
        http_reply_problem(r, 503, "unavailable", "out of memory", NULL);
        return;
    }
    api_add_items(b, res, shown);
    if (configured) evbuffer_add_printf(b, "%s%s", shown ? "," : "", configured);
    evbuffer_add_printf(b, "],\"truncated\":%s}", rows > shown ? "true" : "false");
    free(configured);
    api_reply_buffer(r, b);
}

void api_models_list(gw_req *r)
{
    char lim[16];
    snprintf(lim, sizeof lim, "%d", MODELS_LIST_MAX + 1);
    const char *params[2] = { r->who.tenant_id, lim };
    /* The tenant's own rows first: they are what it chose. */
    gw_query(r,
             "SELECT model_item_json(m) FROM model_defaults m"
             " WHERE m.scope = 'global' OR (m.scope = 'tenant' AND m.tenant_id = $1)"
             " ORDER BY m.scope = 'global', m.is_default DESC, m.provider, m.model, m.id"
             " LIMIT $2",
             2, params, on_models);
}

/* --- the tenant's rows: checks shared by POST and PATCH ------------------------ */

#define MODEL_NAME_MAX_BYTES 127       /* the worker's MODEL_NAME_MAX less the NUL */
#define MODEL_BASE_URL_MAX_BYTES 511   /* the worker's BASE_URL_MAX less the NUL */
#define MODEL_PARAMS_MAX_BYTES (16 * 1024)
#define MODEL_PATCH_ATTEMPTS 3
#define BUILTIN_PROVIDER "builtin"

static const char *const model_fields[] = {
    "provider", "model", "base_url", "params", "is_default", NULL
};

/* Finds name in a "name=value,name=value" setting; copies its value,
 * trimmed and without trailing slashes, into out. */
static bool config_list_find(const char *list, const char *name, char *out, size_t size)
{
    size_t want = strlen(name);
    for (const char *p = list; *p; ) {
        size_t item = strcspn(p, ",");
        size_t key = strcspn(p, "=,");
        const char *k = p;
        size_t klen = key;
        while (klen && *k == ' ') { k++; klen--; }
        while (klen && k[klen - 1] == ' ') klen--;
        if (klen == want && memcmp(k, name, want) == 0 && key < item) {
            const char *v = p + key + 1;
            size_t vlen = item - key - 1;
            while (vlen && *v == ' ') { v++; vlen--; }
            while (vlen && (v[vlen - 1] == ' ' || v[vlen - 1] == '/')) vlen--;
            snprintf(out, size, "%.*s", (int)vlen, v);
            return true;
        }
        p += item;
        if (*p == ',') p++;
    }
    return false;
}

static bool printable_word(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max) return false;
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f) return false;
    return true;
}

static bool http_url(const char *s)
{
    return printable_word(s, MODEL_BASE_URL_MAX_BYTES) &&
           ((strncmp(s, "http://", 7) == 0 && s[7]) || (strncmp(s, "https://", 8) == 0 && s[8]));
}

static int model_invalid(gw_req *r, const char *pointer, const char *detail)
{
    http_reply_problem(r, 422, "validation-failed", detail, pointer);
    return -1;
}

/* A row's values, checked; the strings point into the checked object. */
typedef struct model_row {
    const char *provider, *model, *base_url;   /* base_url NULL: none */
    char *params;                               /* compact JSON, malloc'd */
    bool is_default;
} model_row;

/*
 * Checks a whole row (the POST body, or a row with a PATCH applied) and
 * fills *out. Answers 422 naming the member (or 503) and returns -1 on the
 * first problem.
 */
static int check_model_row(gw_req *r, const cJSON *m, model_row *out)
{
    const ag_config *cfg = &r->thr->srv->cfg;
    memset(out, 0, sizeof *out);
    const cJSON *provider = cJSON_GetObjectItemCaseSensitive(m, "provider");
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(m, "model");
    const cJSON *base_url = cJSON_GetObjectItemCaseSensitive(m, "base_url");
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(m, "params");
    const cJSON *is_default = cJSON_GetObjectItemCaseSensitive(m, "is_default");
    char configured_url[1024], key[1024];

    if (!cJSON_IsString(provider))
        return model_invalid(r, "/provider", "provider is required and must be a string");
    bool builtin = strcmp(provider->valuestring, BUILTIN_PROVIDER) == 0;
    if (!builtin && !config_list_find(cfg->llm_providers, provider->valuestring,
                                      configured_url, sizeof configured_url))
        return model_invalid(r, "/provider", "provider must be \"builtin\" or a provider this "
                             "gateway is configured with (AGENTGATE_LLM_PROVIDERS)");
    if (!cJSON_IsString(model) || !printable_word(model->valuestring, MODEL_NAME_MAX_BYTES))
        return model_invalid(r, "/model", "model is required and must be 1 to 127 printable "
                             "ASCII characters without spaces");
    if (base_url && !cJSON_IsNull(base_url)) {
        if (!cJSON_IsString(base_url) || !http_url(base_url->valuestring))
            return model_invalid(r, "/base_url", "base_url must be an http:// or https:// URL "
                                 "of at most 511 bytes, without spaces");
        if (builtin)
            return model_invalid(r, "/base_url", "the builtin provider takes no base_url");
        char url[1024];
        snprintf(url, sizeof url, "%s", base_url->valuestring);
        for (size_t n = strlen(url); n && url[n - 1] == '/'; n--) url[n - 1] = '\0';
        if (config_list_find(cfg->llm_api_keys, provider->valuestring, key, sizeof key) &&
            strcmp(url, configured_url) != 0)
            return model_invalid(r, "/base_url", "this provider has a configured API key, "
                                 "so its base_url cannot be changed");
        out->base_url = base_url->valuestring;
    }
    if (params && !cJSON_IsNull(params) && !cJSON_IsObject(params))
        return model_invalid(r, "/params", "params must be a JSON object");
    if (is_default && !cJSON_IsBool(is_default))
        return model_invalid(r, "/is_default", "is_default must be true or false");
    out->provider = provider->valuestring;
    out->model = model->valuestring;
    out->is_default = cJSON_IsTrue(is_default);
    out->params = params && cJSON_IsObject(params) ? json_print(params) : strdup("{}");
    if (!out->params) {
        http_reply_problem(r, 503, "unavailable", "out of memory", NULL);
        return -1;
    }
    if (strlen(out->params) > MODEL_PARAMS_MAX_BYTES) {
        free(out->params);
        out->params = NULL;
        char detail[96];
        snprintf(detail, sizeof detail, "params must be at most %d bytes as compact JSON",
                 MODEL_PARAMS_MAX_BYTES);
        return model_invalid(r, "/params", detail);
    }
    return 0;
}

/* True when s is a model_defaults id as this API shows it (a positive
 * bigint in decimal); the path is then checked before any query. */
static bool model_id_valid(const char *s)
{
    size_t n = strlen(s);
    return n >= 1 && n <= 18 && strspn(s, "0123456789") == n && s[0] != '0';
}

/* unique_violation: the tenant already has a row for this model and
 * provider (model_defaults_tenant_model_provider, 012_models_unique.sql). */
#define SQLSTATE_UNIQUE_VIOLATION "23505"

static void on_model_written(gw_req *r, PGresult *res, const char *err, const char *sqlstate,
                             int status)
{
    if (!res && sqlstate && strcmp(sqlstate, SQLSTATE_UNIQUE_VIOLATION) == 0) {
        http_reply_problem(r, 409, "conflict", "the tenant already has a row for this model "
                           "and provider (PATCH that row instead)", NULL);
        return;
    }
    if (!res) { gw_reply_db_error(r, err, sqlstate); return; }
    if (PQntuples(res) != 1) { gw_reply_db_error(r, "model write answered no row", "XX000"); return; }
    if (status == 201) {
        snprintf(r->audit_resource, sizeof r->audit_resource, "models/%s", PQgetvalue(res, 0, 0));
        char location[64];
        snprintf(location, sizeof location, "/v1/models/%s", PQgetvalue(res, 0, 0));
        http_set_header(r, "Location", location);
    }
    api_reply_row(r, status, res, 0, 1);
}

/* --- POST /v1/models ------------------------------------------------------- */

static void on_model_created(gw_req *r, PGresult *res, const char *err, const char *sqlstate)
{
    on_model_written(r, res, err, sqlstate, 201);
}

/* A new default row takes the mark from the tenant's other rows: the
 * worker would otherwise keep using the oldest default. */
static const char SQL_MODEL_INSERT[] =
    "WITH n AS (INSERT INTO model_defaults (scope, tenant_id, provider, model, base_url,"
    "   params, is_default) VALUES ('tenant', $1, $2, $3, $4, $5::jsonb, $6::boolean)"
    "   RETURNING id, model_item_json(model_defaults) AS j),"
    " c AS (UPDATE model_defaults SET is_default = false"
    "   WHERE $6::boolean AND scope = 'tenant' AND tenant_id = $1 AND is_default"
    "     AND id <> (SELECT id FROM n))"
    " SELECT id, j FROM n";

void api_models_create(gw_req *r)
{
    cJSON *body = api_parse_body(r, model_fields);
    if (!body) return;
    model_row row;
    if (check_model_row(r, body, &row) == 0) {
        const char *params[6] = { r->who.tenant_id, row.provider, row.model, row.base_url,
                                  row.params, row.is_default ? "true" : "false" };
        gw_query(r, SQL_MODEL_INSERT, 6, params, on_model_created);
        free(row.params);
    }
    cJSON_Delete(body);
}

/* --- PATCH /v1/models/{id} --------------------------------------------------- */

typedef struct model_patch_state {
    char id[24];
    cJSON *patch;
    int attempts;
} model_patch_state;

static void model_patch_state_free(void *p)
{
    model_patch_state *s = p;
    cJSON_Delete(s->patch);
    free(s);
}

static void read_model_row(gw_req *r);

static void on_model_updated(gw_req *r, PGresult *res, const char *err, const char *sqlstate)
{
    model_patch_state *s = r->state;
    if (res && PQntuples(res) == 0) {
        /* Changed (or deleted) since it was read: read and merge again. */
        if (++s->attempts < MODEL_PATCH_ATTEMPTS && gw_req_alive(r)) { read_model_row(r); return; }
        http_reply_problem(r, 409, "conflict",
                           "the model was changed by another request meanwhile; retry", NULL);
        return;
    }
    on_model_written(r, res, err, sqlstate, 200);
}

/* Compare and set: the row is written only when it still holds what was
 * read ($8..$12), so a concurrent PATCH is never silently undone. */
static const char SQL_MODEL_UPDATE[] =
    "WITH u AS (UPDATE model_defaults SET provider = $3, model = $4, base_url = $5,"
    "   params = $6::jsonb, is_default = $7::boolean"
    "   WHERE id = $1::bigint AND scope = 'tenant' AND tenant_id = $2"
    "     AND provider = $8 AND model = $9 AND base_url IS NOT DISTINCT FROM $10"
    "     AND params = $11::jsonb AND is_default = $12::boolean"
    "   RETURNING id, model_item_json(model_defaults) AS j),"
    " c AS (UPDATE model_defaults SET is_default = false"
    "   WHERE $7::boolean AND EXISTS (SELECT 1 FROM u) AND scope = 'tenant'"
    "     AND tenant_id = $2 AND is_default AND id <> $1::bigint)"
    " SELECT id, j FROM u";

/* The row as read, as an object a patch applies to; NULL when out of memory. */
static cJSON *row_object(PGresult *res)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *params = cJSON_Parse(PQgetvalue(res, 0, 3));
    bool ok = o && params;
    json_add_str(o, "provider", PQgetvalue(res, 0, 0), &ok);
    json_add_str(o, "model", PQgetvalue(res, 0, 1), &ok);
    if (!PQgetisnull(res, 0, 2)) json_add_str(o, "base_url", PQgetvalue(res, 0, 2), &ok);
    json_add_item(o, "params", params, &ok);
    json_add_bool(o, "is_default", PQgetvalue(res, 0, 4)[0] == 't', &ok);
    return json_done(o, ok);
}

static void on_model_read(gw_req *r, PGresult *res, const char *err, const char *sqlstate)
{
    model_patch_state *s = r->state;
    if (!res) { gw_reply_db_error(r, err, sqlstate); return; }
    if (PQntuples(res) == 0) { api_reply_not_found(r, "model"); return; }
    if (!gw_req_alive(r)) return;
    cJSON *old = row_object(res);
    cJSON *merged = old ? api_merge_patch(old, s->patch) : NULL;
    cJSON_Delete(old);
    if (!merged) { http_reply_problem(r, 503, "unavailable", "out of memory", NULL); return; }
    model_row row;
    if (check_model_row(r, merged, &row) == 0) {
        const char *params[12] = {
            s->id, r->who.tenant_id, row.provider, row.model, row.base_url, row.params,
            row.is_default ? "true" : "false",
            PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1),
            PQgetisnull(res, 0, 2) ? NULL : PQgetvalue(res, 0, 2),
            PQgetvalue(res, 0, 3), PQgetvalue(res, 0, 4)[0] == 't' ? "true" : "false",
        };
        gw_query(r, SQL_MODEL_UPDATE, 12, params, on_model_updated);
        free(row.params);
    }
    cJSON_Delete(merged);
}

static void read_model_row(gw_req *r)
{
    model_patch_state *s = r->state;
    const char *params[2] = { s->id, r->who.tenant_id };
    gw_query(r, "SELECT provider, model, base_url, params::text, is_default FROM model_defaults"
                " WHERE id = $1::bigint AND scope = 'tenant' AND tenant_id = $2",
             2, params, on_model_read);
}

void api_model_update(gw_req *r)
{
    if (!model_id_valid(r->route.param)) { api_reply_not_found(r, "model"); return; }
    snprintf(r->audit_resource, sizeof r->audit_resource, "models/%s", r->route.param);
    cJSON *body = api_parse_body(r, model_fields);
    if (!body) return;
    model_patch_state *s = calloc(1, sizeof *s);
    if (!s) {
        cJSON_Delete(body);
        http_reply_problem(r, 503, "unavailable", "out of memory", NULL);
        return;
    }
    snprintf(s->id, sizeof s->id, "%s", r->route.param);
    s->patch = body;
    r->state = s;
    r->state_free = model_patch_state_free;
    read_model_row(r);
}

/* --- DELETE /v1/models/{id} --------------------------------------------------- */

static void on_model_deleted(gw_req *r, PGresult *res, const char *err, const char *sqlstate)
{
    if (!res) { gw_reply_db_error(r, err, sqlstate); return; }
    if (PQntuples(res) == 0) { api_reply_not_found(r, "model"); return; }
    log_info("model %s of tenant %s deleted", PQgetvalue(res, 0, 0), r->who.tenant_id);
    http_reply(r, 204, "application/json", "", 0);
}

void api_model_delete(gw_req *r)
{
    if (!model_id_valid(r->route.param)) { api_reply_not_found(r, "model"); return; }
    snprintf(r->audit_resource, sizeof r->audit_resource, "models/%s", r->route.param);
    const char *params[2] = { r->route.param, r->who.tenant_id };
    gw_query(r, "DELETE FROM model_defaults WHERE id = $1::bigint AND scope = 'tenant'"
                " AND tenant_id = $2 RETURNING id",
             2, params, on_model_deleted);
}
