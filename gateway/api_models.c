/*
 * api_models.c - GET /v1/models: the models the caller's tenant can name
 * in POST /v1/agent-runs.
 *
 * They are the model_defaults rows of the tenant and the global ones, and
 * the model the configured providers serve (AGENTGATE_LLM_MODEL, when
 * AGENTGATE_LLM_PROVIDERS names any). Only names are shown: never a base
 * URL, a row's params or a key, which may hold credentials.
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
             "SELECT model_default_json(m) FROM model_defaults m"
             " WHERE m.scope = 'global' OR (m.scope = 'tenant' AND m.tenant_id = $1)"
             " ORDER BY m.scope = 'global', m.is_default DESC, m.provider, m.model, m.id"
             " LIMIT $2",
             2, params, on_models);
}
