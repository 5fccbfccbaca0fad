/*
 * tools.c - the tools runtime (see tools.h): the catalog of manifests a
 * tenant sees, and the one pipeline every tool call goes through.
 *
 * The pipeline never fails the run. Each stage either passes the call on
 * or ends it with an outcome (not_found, invalid, denied, rate_limited,
 * failed) and a sentence the model can relay; whatever the outcome, the
 * call leaves an audit_logs row and a tool.called event behind, so an
 * operator can see refused calls as well as the ones that ran.
 *
 * The manifest's input schema is what the tenant allows; the handler
 * checks its own schema again (tools_builtin_run), so a tenant row that
 * loosens a schema cannot hand a handler input it was not written for.
 */
#include "tools.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "clock.h"
#include "jsonutil.h"
#include "log.h"
#include "ratelimit.h"
#include "schema.h"
#include "strbuf.h"
#include "tool_env.h"
#include "tools_builtin.h"
#include "job_store.h"

#define NAME_MAX_BYTES     128      /* as the gateway's /v1/tools/{name} */
#define DESCRIPTION_MAX    2000     /* bytes kept of a manifest's description */
#define SCHEMA_MAX_BYTES   65536    /* of a manifest's input schema */
#define SCOPES_MAX         32       /* required scopes per manifest */
#define PREVIEW_BYTES      300      /* of a result summary, in tool.called */

typedef struct manifest {
    char *name;
    char *description;
    char *schema_text;          /* as stored, for model tool definitions */
    cJSON *schema;              /* NULL: unusable, schema_problem says why */
    char schema_problem[160];
    char **scopes;
    size_t n_scopes;
    long long rate_limit;       /* <= 0: unlimited */
    const builtin_tool *handler;/* NULL: no handler in this worker */
} manifest;

/* The model definitions made for one principal's scopes. */
typedef struct defs_set {
    struct defs_set *next;
    char scope[sizeof(((tool_principal *)0)->scope)];
    llm_tool_def *defs;
    size_t n;
} defs_set;

struct tool_catalog {
    manifest *m;
    size_t n, cap;
    defs_set *defs;
};

/* ---- the catalog ---------------------------------------------------------- */

static bool name_valid(const char *s)
{
    size_t n = 0;

    if (!s)
        return false;
    for (; s[n]; n++) {
        char c = s[n];
        if (n >= NAME_MAX_BYTES || !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                                     (c >= '0' && c <= '9') || c == '.' || c == '_' ||
                                     c == '-'))
            return false;
    }
    return n > 0;
}

static void manifest_clear(manifest *m)
{
    free(m->name);
    free(m->description);
    free(m->schema_text);
    cJSON_Delete(m->schema);
    for (size_t i = 0; i < m->n_scopes; i++)
        free(m->scopes[i]);
    free(m->scopes);
    memset(m, 0, sizeof(*m));
}

static void defs_clear(tool_catalog *c)
{
    while (c->defs) {
        defs_set *d = c->defs;
        c->defs = d->next;
        free(d->defs);
        free(d);
    }
}

tool_catalog *tools_catalog_new(void)
{
    return calloc(1, sizeof(tool_catalog));
}

void tools_catalog_free(tool_catalog *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++)
        manifest_clear(&c->m[i]);
    free(c->m);
    defs_clear(c);
    free(c);
}

static manifest *catalog_find(const tool_catalog *c, const char *name)
{
    for (size_t i = 0; c && name && i < c->n; i++)
        if (strcmp(c->m[i].name, name) == 0)
            return &c->m[i];
    return NULL;
}

/* Parses the schema text into m, or records why it cannot be used. */
static void manifest_set_schema(manifest *m)
{
    char perr[120];
    size_t len = strlen(m->schema_text);

    if (len > SCHEMA_MAX_BYTES) {
        snprintf(m->schema_problem, sizeof(m->schema_problem),
                 "its input schema is larger than %d bytes", SCHEMA_MAX_BYTES);
        return;
    }
    m->schema = json_parse_bounded(m->schema_text, len, SCHEMA_MAX_BYTES, JSON_MAX_DEPTH,
                                   perr, sizeof(perr));
    if (!m->schema)
        snprintf(m->schema_problem, sizeof(m->schema_problem),
                 "its input schema is not usable JSON (%s)", perr);
    else if (!cJSON_IsObject(m->schema) && !cJSON_IsBool(m->schema)) {
        cJSON_Delete(m->schema);
        m->schema = NULL;
        snprintf(m->schema_problem, sizeof(m->schema_problem),
                 "its input schema is neither an object nor a boolean");
    }
}

static int manifest_fill(manifest *m, const tool_manifest_row *row)
{
    strbuf desc = {0};

    strbuf_add_flat(&desc, row->description ? row->description : "", DESCRIPTION_MAX);
    m->description = strbuf_take(&desc, NULL);
    m->name = strdup(row->name);
    m->schema_text = strdup(row->input_schema_json ? row->input_schema_json
                                                   : "{\"type\":\"object\"}");
    size_t ns = row->n_required_scopes < SCOPES_MAX ? row->n_required_scopes : SCOPES_MAX;
    m->scopes = calloc(ns ? ns : 1, sizeof(char *));
    if (!m->description || !m->name || !m->schema_text || !m->scopes)
        return -1;
    for (size_t i = 0; i < ns; i++) {
        const char *s = row->required_scopes[i];
        if (!s || !*s)
            continue;
        if (!(m->scopes[m->n_scopes] = strdup(s)))
            return -1;
        m->n_scopes++;
    }
    m->rate_limit = row->rate_limit > 0 ? row->rate_limit : 0;
    m->handler = tools_builtin_find(m->name);
    manifest_set_schema(m);
    return 0;
}

int tools_catalog_add(tool_catalog *c, const tool_manifest_row *row, char *err,
                      size_t err_size)
{
    manifest fresh = {0};

    if (!c || !row) {
        errbuf_printf(err, err_size, "no catalog or manifest");
        return -1;
    }
    if (!name_valid(row->name)) {
        errbuf_printf(err, err_size, "tool name must be 1..%d of [A-Za-z0-9._-]",
                      NAME_MAX_BYTES);
        return -1;
    }
    if (manifest_fill(&fresh, row) != 0) {
        manifest_clear(&fresh);
        errbuf_printf(err, err_size, "out of memory");
        return -1;
    }
    manifest *old = catalog_find(c, row->name);
    if (old) {
        manifest_clear(old);
        *old = fresh;
    } else {
        if (c->n == c->cap) {
            size_t cap = c->cap ? c->cap * 2 : 16;
            manifest *m = realloc(c->m, cap * sizeof(*m));
            if (!m) {
                manifest_clear(&fresh);
                errbuf_printf(err, err_size, "out of memory");
                return -1;
            }
            c->m = m;
            c->cap = cap;
        }
        c->m[c->n++] = fresh;
    }
    defs_clear(c);  /* made from the old entries */
    return 0;
}

/* Reads a JSON array of strings (required_scopes as array_to_json gives
 * it) into scopes (at most SCOPES_MAX, pointing into *tree). */
static size_t parse_scopes(const char *text, cJSON **tree, const char **scopes)
{
    size_t n = 0;

    *tree = text ? json_parse_bounded(text, strlen(text), 65536, 4, NULL, 0) : NULL;
    for (const cJSON *s = *tree ? (*tree)->child : NULL; s && n < SCOPES_MAX; s = s->next)
        if (cJSON_IsString(s))
            scopes[n++] = s->valuestring;
    return n;
}

/* Adds one row of the load query (enabled ones only) to c. */
static int catalog_add_row(tool_catalog *c, PGresult *res, int i, char *err, size_t err_size)
{
    const char *scopes[SCOPES_MAX];
    cJSON *tree = NULL;

    if (strcmp(PQgetvalue(res, i, 5), "t") != 0)
        return 0;   /* disabled: as if it did not exist, and it hides a global row */
    tool_manifest_row row = {
        .name = PQgetvalue(res, i, 0),
        .description = PQgetvalue(res, i, 1),
        .input_schema_json = PQgetvalue(res, i, 2),
        .rate_limit = PQgetisnull(res, i, 4) ? 0 : atoll(PQgetvalue(res, i, 4)),
    };
    row.n_required_scopes = parse_scopes(PQgetvalue(res, i, 3), &tree, scopes);
    row.required_scopes = scopes;
    char why[128];
    int rc = tools_catalog_add(c, &row, why, sizeof(why));
    cJSON_Delete(tree);
    if (rc == 0)
        return 0;
    if (strcmp(why, "out of memory") == 0) {
        errbuf_printf(err, err_size, "out of memory loading tool manifests");
        return -1;
    }
    log_warn("tool manifest \"%.64s\" ignored: %s", row.name, why);
    return 0;
}

tool_catalog *tools_catalog_load(PGconn *pg, const char *tenant_id, char *err,
                                 size_t err_size)
{
    /* tools_visible (003_agent_runs.sql) is the one definition of which
     * rows a tenant sees: its own over the global one of the same name. */
    static const char sql[] =
        "SELECT t.name, t.description, t.input_schema::text,"
        "       array_to_json(t.required_scopes)::text, t.rate_limit, t.enabled"
        "  FROM tools_visible($1) t"
        " ORDER BY t.name LIMIT $2::int";
    char limit[16];

    if (!pg || !tenant_id || !*tenant_id) {
        errbuf_printf(err, err_size, "no database connection or tenant");
        return NULL;
    }
    snprintf(limit, sizeof(limit), "%d", TOOLS_CATALOG_MAX + 1);
    const char *params[2] = {tenant_id, limit};
    /* As the tenant (row-level security): its rows and the global ones. */
    PGresult *res = store_exec_as(pg, tenant_id, sql, 2, params);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        strbuf b = {0};
        strbuf_add_flat(&b, PQerrorMessage(pg), 200);
        errbuf_printf(err, err_size, "loading tool manifests failed: %s",
                      b.s ? b.s : "unknown error");
        strbuf_free(&b);
        PQclear(res);
        return NULL;
    }
    int rows = PQntuples(res);
    if (rows > TOOLS_CATALOG_MAX) {
        log_warn("tenant %s sees more than %d tool manifests; the rest are ignored",
                 tenant_id, TOOLS_CATALOG_MAX);
        rows = TOOLS_CATALOG_MAX;
    }
    tool_catalog *c = tools_catalog_new();
    if (!c)
        errbuf_printf(err, err_size, "out of memory loading tool manifests");
    for (int i = 0; c && i < rows; i++)
        if (catalog_add_row(c, res, i, err, err_size) != 0) {
            tools_catalog_free(c);
            c = NULL;
        }
    PQclear(res);
    return c;
}

bool tools_catalog_has(const tool_catalog *c, const char *name)
{
    return catalog_find(c, name) != NULL;
}

bool tools_principal_has_scope(const tool_principal *p, const char *scope)
{
    size_t n = scope ? strlen(scope) : 0;

    if (!p || n == 0)
        return false;
    for (const char *s = p->scope; *s;) {
        while (*s == ' ')
            s++;
        size_t len = strcspn(s, " ");
        if (len == n && strncmp(s, scope, n) == 0)
            return true;
        s += len;
    }
    return false;
}

/* Whether p holds every scope m requires. */
static bool holds_scopes(const tool_principal *p, const manifest *m)
{
    for (size_t i = 0; i < m->n_scopes; i++)
        if (!tools_principal_has_scope(p, m->scopes[i]))
            return false;
    return true;
}

const llm_tool_def *tools_catalog_defs(tool_catalog *c, const tool_principal *p, size_t *n)
{
    if (n)
        *n = 0;
    if (!c || !p)
        return NULL;    /* nobody to act for: no tool may be offered */
    const char *scope = p->scope;
    for (defs_set *d = c->defs; d; d = d->next)
        if (strcmp(d->scope, scope) == 0) {
            if (n)
                *n = d->n;
            return d->defs;
        }
    defs_set *d = calloc(1, sizeof(*d));
    if (!d || !(d->defs = calloc(c->n ? c->n : 1, sizeof(llm_tool_def)))) {
        free(d);
        return NULL;
    }
    snprintf(d->scope, sizeof(d->scope), "%s", scope);
    for (size_t i = 0; i < c->n; i++) {
        const manifest *m = &c->m[i];
        if (!m->handler || !m->schema || !holds_scopes(p, m))
            continue;
        d->defs[d->n++] = (llm_tool_def){m->name, m->description, m->schema_text};
    }
    d->next = c->defs;
    c->defs = d;
    if (n)
        *n = d->n;
    return d->defs;
}

/* ---- the pipeline ------------------------------------------------------------ */

const char *tool_status_name(tool_status status)
{
    switch (status) {
    case TOOL_CALL_OK: return "ok";
    case TOOL_CALL_NOT_FOUND: return "not_found";
    case TOOL_CALL_INVALID: return "invalid";
    case TOOL_CALL_DENIED: return "denied";
    case TOOL_CALL_RATE_LIMITED: return "rate_limited";
    case TOOL_CALL_FAILED: return "failed";
    }
    return "failed";
}

void tool_call_result_free(tool_call_result *out)
{
    if (!out)
        return;
    cJSON_Delete(out->output);
    out->output = NULL;
}

/* What one call carries through the stages. */
typedef struct call {
    job_ctx *ctx;
    const job_info *job;
    tool_catalog *c;
    const tool_principal *p;
    const tool_run_env *run;
    const cJSON *args;
    char name[NAME_MAX_BYTES * 2 + 8]; /* the asked-for name, flattened, for messages */
    const manifest *m;
    long long retry_after_ms;           /* rate_limited: when to try again */
    tool_call_result *out;
} call;

static tool_status refuse(call *k, tool_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static tool_status refuse(call *k, tool_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(k->out->message, sizeof(k->out->message), fmt, ap);
    va_end(ap);
    return status;
}

/* Stage 1: the tool exists for this tenant, enabled, with a handler, and
 * the principal is this job's tenant's. */
static tool_status stage_lookup(call *k)
{
    if (!k->p)
        return refuse(k, TOOL_CALL_DENIED, "permission denied: the run has no known caller, "
                      "so no tool may be called for it");
    if (strcmp(k->p->tenant_id, k->job->tenant_id) != 0)
        return refuse(k, TOOL_CALL_DENIED, "permission denied: the caller belongs to another "
                      "tenant than this run");
    k->m = catalog_find(k->c, k->name);
    if (!k->m)
        return refuse(k, TOOL_CALL_NOT_FOUND, "no tool named \"%s\" is available to this "
                      "tenant", k->name);
    if (!k->m->handler)
        return refuse(k, TOOL_CALL_NOT_FOUND, "the tool \"%s\" is listed but this worker "
                      "has no handler for it", k->name);
    return TOOL_CALL_OK;
}

/* Stage 2: the arguments fit the manifest's schema. */
static tool_status stage_validate(call *k)
{
    schema_error se;

    if (!k->m->schema)
        return refuse(k, TOOL_CALL_FAILED, "the tool \"%s\" cannot be called: %s", k->name,
                      k->m->schema_problem);
    cJSON *empty = k->args ? NULL : cJSON_CreateObject();
    if (!k->args && !empty)
        return refuse(k, TOOL_CALL_FAILED, "out of memory");
    int rc = schema_validate(k->m->schema, k->args ? k->args : empty, &se);
    cJSON_Delete(empty);
    if (rc == 0)
        return TOOL_CALL_OK;
    /* A fault of the stored schema is the operator's, not the caller's. */
    if (strncmp(se.message, "invalid schema", 14) == 0)
        return refuse(k, TOOL_CALL_FAILED, "the tool \"%s\" cannot be called: its input "
                      "schema is broken (%s)", k->name, se.message);
    return refuse(k, TOOL_CALL_INVALID, "invalid arguments for tool \"%s\": %s: %s", k->name,
                  se.path[0] ? se.path : "(root)", se.message);
}

/* Stage 3: the principal holds every required scope. */
static tool_status stage_scopes(call *k)
{
    strbuf missing = {0};
    size_t n = 0;

    for (size_t i = 0; i < k->m->n_scopes; i++)
        if (!tools_principal_has_scope(k->p, k->m->scopes[i])) {
            strbuf_add(&missing, n++ ? ", \"" : "\"");
            strbuf_add_flat(&missing, k->m->scopes[i], 64);
            strbuf_add(&missing, "\"");
        }
    if (n == 0) {
        strbuf_free(&missing);
        return TOOL_CALL_OK;
    }
    tool_status st = refuse(k, TOOL_CALL_DENIED, "permission denied: the tool \"%s\" needs "
                            "the scope%s %s, which the caller's token does not grant",
                            k->name, n == 1 ? "" : "s", missing.s ? missing.s : "?");
    strbuf_free(&missing);
    return st;
}

/*
 * Stage 4: the tool's rate limit, a bucket per tenant and tool in Redis.
 *
 * When Redis cannot answer, read-only tools are let through (fail open)
 * and tools that change state are refused (fail closed). A rate limit
 * here protects shared capacity from a runaway loop; it is not what keeps
 * a caller out (scopes did that above). Refusing every read while Redis
 * restarts would fail agent runs that would have used a few cheap,
 * harmless lookups, while letting them through costs at most the reads
 * made during the outage. A writing tool is different: the limit is what
 * bounds how much a looping model can change, so without it the call
 * waits for Redis to be back (the cache tools need Redis anyway).
 */
static tool_status stage_rate_limit(call *k)
{
    char key[RATELIMIT_KEY_MAX], why[200];
    ratelimit_result rl;

    if (k->m->rate_limit <= 0)
        return TOOL_CALL_OK;
    if (!ratelimit_key_tool(key, sizeof(key), k->job->tenant_id, k->m->name))
        return refuse(k, TOOL_CALL_FAILED, "the rate limit of tool \"%s\" cannot be keyed",
                      k->name);
    struct redisContext *rc = job_redis_conn(k->ctx);
    int took = rc ? ratelimit_take(rc, key, k->m->rate_limit, TOOLS_RATE_PERIOD_MS, 1, &rl,
                                   why, sizeof(why))
                  : -1;
    if (took != 0) {
        if (!rc)
            snprintf(why, sizeof(why), "Redis is unreachable");
        else if (rc->err)
            job_redis_conn_failed(k->ctx);
        if (k->m->handler->writes)
            return refuse(k, TOOL_CALL_FAILED, "the tool \"%s\" changes data and its rate "
                          "limit cannot be checked now (%s); try again later", k->name, why);
        log_warn("tool %s: rate limit not checked (%s); allowing the read-only call",
                 k->m->name, why);
        return TOOL_CALL_OK;
    }
    if (rl.allowed)
        return TOOL_CALL_OK;
    k->retry_after_ms = rl.retry_after_ms;
    long long s = (rl.retry_after_ms + 999) / 1000;
    return refuse(k, TOOL_CALL_RATE_LIMITED, "rate limit reached: the tool \"%s\" allows %lld "
                  "call%s per minute for this tenant; try again in %lld s", k->name,
                  k->m->rate_limit, k->m->rate_limit == 1 ? "" : "s", s < 1 ? 1 : s);
}

/* What catalog.search sees: every manifest, and whether p may call it. */
static tool_manifest_info *manifest_infos(const call *k)
{
    tool_manifest_info *v = calloc(k->c->n ? k->c->n : 1, sizeof(*v));

    for (size_t i = 0; v && i < k->c->n; i++) {
        const manifest *m = &k->c->m[i];
        v[i] = (tool_manifest_info){m->name, m->description, (const char *const *)m->scopes,
                                    m->n_scopes, m->handler && m->schema && holds_scopes(k->p, m)};
    }
    return v;
}

/* Stage 5: the handler. */
static tool_status stage_handler(call *k)
{
    char err[400] = "";
    tool_manifest_info *infos = manifest_infos(k);

    if (!infos)
        return refuse(k, TOOL_CALL_FAILED, "out of memory");
    tool_call_env env = {
        .tenant_id = k->job->tenant_id,
        .job_id = k->job->id,
        .pg = job_db(k->ctx),
        .redis = job_redis_conn(k->ctx),
        .principal = k->p,
        .run_id = k->run ? k->run->run_id : NULL,
        .session_id = k->run ? k->run->session_id : NULL,
        .manifests = infos,
        .n_manifests = k->c->n,
        .live = true,
    };
    tool_err e = tools_builtin_run(k->m->handler, &env, k->args, &k->out->output, err,
                                   sizeof(err));
    free(infos);
    if (env.redis && env.redis->err)
        job_redis_conn_failed(k->ctx);
    switch (e) {
    case TOOL_OK:
        return TOOL_CALL_OK;
    case TOOL_ERR_BAD_INPUT:
        return refuse(k, TOOL_CALL_INVALID, "invalid arguments for tool \"%s\": %s", k->name,
                      err);
    case TOOL_ERR_NOT_FOUND:
        return refuse(k, TOOL_CALL_NOT_FOUND, "the tool \"%s\" has no handler", k->name);
    case TOOL_ERR_NOMEM:
    case TOOL_ERR_FAILED:
        break;
    }
    return refuse(k, TOOL_CALL_FAILED, "the tool \"%s\" failed: %s", k->name,
                  err[0] ? err : tool_strerror(e));
}

/* The message as one line of valid UTF-8, whatever went into it (a name
 * or property a model made up). */
static void flatten_message(tool_call_result *out)
{
    strbuf b = {0};

    strbuf_add_flat(&b, out->message, sizeof(out->message) - 4);
    snprintf(out->message, sizeof(out->message), "%s", b.s && !b.oom ? b.s : "");
    strbuf_free(&b);
}

static void write_audit(const call *k)
{
    static const char sql[] =
        "INSERT INTO audit_logs (tenant_id, principal, action, resource, outcome, request_id,"
        "                        detail)"
        " VALUES ($1, $2, 'tool.invoke', $3, $4, $5, $6::jsonb)";
    const tool_call_result *out = k->out;
    char resource[sizeof(k->name) + 8];

    cJSON *d = cJSON_CreateObject();
    bool ok = d && cJSON_AddStringToObject(d, "job_id", k->job->id) &&
              (k->run && k->run->run_id ? cJSON_AddStringToObject(d, "run_id", k->run->run_id)
                                        : cJSON_AddNullToObject(d, "run_id")) &&
              cJSON_AddNumberToObject(d, "latency_ms", (double)out->latency_ms) &&
              (out->status == TOOL_CALL_OK ? cJSON_AddNullToObject(d, "reason")
                                           : cJSON_AddStringToObject(d, "reason", out->message));
    if (ok && k->retry_after_ms > 0)
        ok = cJSON_AddNumberToObject(d, "retry_after_ms", (double)k->retry_after_ms) != NULL;
    char *detail = ok ? json_print(d) : NULL;
    cJSON_Delete(d);
    if (!detail) {
        log_error("tool %s: audit row not written: out of memory", k->name);
        return;
    }
    snprintf(resource, sizeof(resource), "tool:%s", k->name);
    const char *principal = k->p && k->p->sub[0] ? k->p->sub
                            : k->job->created_by[0] ? k->job->created_by : "unknown";
    const char *params[6] = {k->job->tenant_id, principal, resource,
                             tool_status_name(out->status), k->job->request_id, detail};
    PGconn *pg = job_db(k->ctx);
    PGresult *res = pg ? store_exec_as(pg, k->job->tenant_id, sql, 6, params) : NULL;
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        log_error("tool %s: audit row not written: %s", k->name,
                  pg ? PQerrorMessage(pg) : "no database connection");
    PQclear(res);
    free(detail);
}

static void emit_called(const call *k)
{
    const tool_call_result *out = k->out;
    cJSON *d = cJSON_CreateObject();
    bool ok = d && cJSON_AddStringToObject(d, "tool", k->name) &&
              cJSON_AddStringToObject(d, "status", tool_status_name(out->status)) &&
              cJSON_AddNumberToObject(d, "latency_ms", (double)out->latency_ms);
    if (ok && out->status != TOOL_CALL_OK)
        ok = cJSON_AddStringToObject(d, "error", out->message) != NULL;
    if (ok && out->status == TOOL_CALL_OK) {
        char *summary = tools_builtin_summary(k->m->name, out->output);
        strbuf b = {0};
        strbuf_add_flat(&b, summary, PREVIEW_BYTES);
        free(summary);
        ok = !b.oom && cJSON_AddStringToObject(d, "output_preview", b.s ? b.s : "") != NULL;
        strbuf_free(&b);
    }
    if (!ok)
        log_error("tool %s: tool.called event not emitted: out of memory", k->name);
    else if (job_emit(k->ctx, "tool.called", d) < 0)
        log_warn("tool %s: tool.called event could not be stored", k->name);
    cJSON_Delete(d);
}

void tools_call(job_ctx *ctx, tool_catalog *c, const tool_principal *p,
                const tool_run_env *run, const char *name, const cJSON *args,
                tool_call_result *out)
{
    long long t0 = clock_mono_ms();
    call k = {.ctx = ctx, .job = job_get_info(ctx), .c = c, .p = p, .run = run,
              .args = args, .out = out};
    strbuf shown = {0};
    tool_principal implied;

    /* agent_runs.principal has no tenant of its own: the run's row, read
     * under the job's tenant, implies it. A different one is refused. */
    if (p && !p->tenant_id[0]) {
        implied = *p;
        snprintf(implied.tenant_id, sizeof(implied.tenant_id), "%s", k.job->tenant_id);
        k.p = &implied;
    }

    memset(out, 0, sizeof(*out));
    strbuf_add_flat(&shown, name ? name : "", NAME_MAX_BYTES * 2);
    snprintf(k.name, sizeof(k.name), "%s", shown.s && !shown.oom ? shown.s : "");
    strbuf_free(&shown);

    tool_status st = stage_lookup(&k);
    if (st == TOOL_CALL_OK)
        st = stage_validate(&k);
    if (st == TOOL_CALL_OK)
        st = stage_scopes(&k);
    if (st == TOOL_CALL_OK)
        st = stage_rate_limit(&k);
    if (st == TOOL_CALL_OK)
        st = stage_handler(&k);
    out->status = st;
    if (st != TOOL_CALL_OK) {
        cJSON_Delete(out->output);
        out->output = NULL;
        flatten_message(out);
    }
    out->latency_ms = clock_mono_ms() - t0;
    if (st == TOOL_CALL_OK)
        log_debug("tool %s: ok in %lld ms", k.name, out->latency_ms);
    else
        log_info("tool %s: %s: %s", k.name, tool_status_name(st), out->message);
    write_audit(&k);
    emit_called(&k);
}
