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
 *
 * A tool an MCP server serves has no built-in handler: its manifest names
 * the server (mcp_server, mcp_tool), and the catalog knows the server's
 * status, resource and settings id from the same query. Its last stage
 * is mcp_call.c. Models are offered it under the name the OpenAI-style
 * providers send ('.' as "__", worker/llm/llm_openai.c): a name that is
 * too long for a function name, or that would read the same as another
 * offered tool's, is kept from models (the planner may still call it).
 */
#include "tools.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "clock.h"
#include "jsonutil.h"
#include "jwt.h"
#include "log.h"
#include "mcp_call.h"
#include "mcp_server.h"
#include "permission.h"
#include "ratelimit.h"
#include "schema.h"
#include "strbuf.h"
#include "tool_env.h"
#include "tools_builtin.h"
#include "trace.h"
#include "job_store.h"
#include "worker_metrics.h"

#define NAME_MAX_BYTES     128      /* as the gateway's /v1/tools/{name} */
#define DESCRIPTION_MAX    2000     /* bytes kept of a manifest's description */
#define SCHEMA_MAX_BYTES   65536    /* of a manifest's input schema */
#define SCOPES_MAX         32       /* required scopes per manifest */
#define PREVIEW_BYTES      300      /* of a result summary, in tool.called */
#define MODEL_NAME_MAX     64       /* bytes of a function name a model is offered */
#define SUMMARY_MAX        2000     /* bytes of an MCP tool's output summary */

typedef struct manifest {
    char *name;
    char *description;
    char *schema_text;          /* as stored, for model tool definitions */
    cJSON *schema;              /* NULL: unusable, schema_problem says why */
    schema_compiled *compiled;  /* of schema, which it points into */
    char schema_problem[320];
    char **scopes;
    size_t n_scopes;
    long long rate_limit;       /* <= 0: unlimited */
    const builtin_tool *handler;/* NULL: no handler in this worker */
    /* A tool of an MCP server (mcp_server != NULL). */
    char *mcp_server;
    char *mcp_tool;
    char *mcp_resource;
    char mcp_status[16];
    char mcp_config_id[40];
    bool writes;                /* may change state: its rate limit fails closed */
    bool needs_approval;        /* a call waits for a person's approval */
} manifest;

/* The model definitions made for one principal's scopes and roles. */
typedef struct defs_set {
    struct defs_set *next;
    char scope[sizeof(((tool_principal *)0)->scope)];
    char roles[sizeof(((tool_principal *)0)->roles)];
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
    schema_free(m->compiled);
    cJSON_Delete(m->schema);
    for (size_t i = 0; i < m->n_scopes; i++)
        free(m->scopes[i]);
    free(m->scopes);
    free(m->mcp_server);
    free(m->mcp_tool);
    free(m->mcp_resource);
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

/*
 * Parses and compiles the text of a schema, or says why it cannot be
 * used. The validator refuses a schema with a keyword it does not
 * implement rather than ignore it (which would let through arguments the
 * schema forbids), so such a tool is unusable, never unchecked. Sets
 * *compiled (which points into the returned tree).
 */
static cJSON *schema_parse(const char *text, schema_compiled **compiled, char *why,
                           size_t why_size)
{
    char perr[120];
    size_t len = text ? strlen(text) : 0;

    if (len > SCHEMA_MAX_BYTES) {
        errbuf_printf(why, why_size, "its input schema is larger than %d bytes",
                      SCHEMA_MAX_BYTES);
        return NULL;
    }
    cJSON *schema = json_parse_bounded(text ? text : "", len, SCHEMA_MAX_BYTES,
                                       JSON_MAX_DEPTH, perr, sizeof(perr));
    if (!schema) {
        errbuf_printf(why, why_size, "its input schema is not usable JSON (%s)", perr);
        return NULL;
    }
    if (!cJSON_IsObject(schema) && !cJSON_IsBool(schema)) {
        cJSON_Delete(schema);
        errbuf_printf(why, why_size, "its input schema is neither an object nor a boolean");
        return NULL;
    }
    schema_error se;
    *compiled = schema_compile(schema, &se);
    if (!*compiled) {
        cJSON_Delete(schema);
        errbuf_printf(why, why_size, "its input schema cannot be checked: %s", se.message);
        return NULL;
    }
    return schema;
}

bool tools_schema_check(const char *schema_text, char *why, size_t why_size)
{
    schema_compiled *compiled = NULL;
    cJSON *schema = schema_parse(schema_text, &compiled, why, why_size);
    schema_free(compiled);
    cJSON_Delete(schema);
    return schema != NULL;
}

/* Parses the schema text into m, or records why it cannot be used. */
static void manifest_set_schema(manifest *m)
{
    m->schema = schema_parse(m->schema_text, &m->compiled, m->schema_problem,
                             sizeof(m->schema_problem));
}

/* Copies the MCP server's part of row into m. Returns 0 or -1 (memory). */
static int manifest_fill_mcp(manifest *m, const tool_mcp_row *row)
{
    m->mcp_server = strdup(row->server ? row->server : "");
    m->mcp_tool = strdup(row->tool ? row->tool : "");
    m->mcp_resource = strdup(row->resource ? row->resource : "");
    if (!m->mcp_server || !m->mcp_tool || !m->mcp_resource)
        return -1;
    snprintf(m->mcp_status, sizeof(m->mcp_status), "%s", row->status ? row->status : "pending");
    snprintf(m->mcp_config_id, sizeof(m->mcp_config_id), "%s",
             row->config_id ? row->config_id : "");
    m->writes = !row->read_only;
    return 0;
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
    m->needs_approval = row->needs_approval;
    if (row->mcp) {
        /* Never a built-in handler, whatever the name. */
        if (manifest_fill_mcp(m, row->mcp) < 0)
            return -1;
    } else {
        m->handler = tools_builtin_find(m->name);
        m->writes = m->handler && m->handler->writes;
    }
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

/* A text column of the load query, or NULL. */
static const char *col(const PGresult *res, int i, int c)
{
    return PQgetisnull(res, i, c) ? NULL : PQgetvalue(res, i, c);
}

/* Adds one row of the load query (enabled ones only) to c. */
static int catalog_add_row(tool_catalog *c, PGresult *res, int i, char *err, size_t err_size)
{
    const char *scopes[SCOPES_MAX];
    cJSON *tree = NULL;

    if (strcmp(PQgetvalue(res, i, 5), "t") != 0)
        return 0;   /* disabled: as if it did not exist, and it hides a global row */
    tool_mcp_row mcp = {
        .server = col(res, i, 6),
        .tool = col(res, i, 7),
        .status = col(res, i, 8),
        .resource = col(res, i, 9),
        .config_id = col(res, i, 10),
        .read_only = col(res, i, 11) && strcmp(col(res, i, 11), "t") == 0,
    };
    tool_manifest_row row = {
        .name = PQgetvalue(res, i, 0),
        .description = PQgetvalue(res, i, 1),
        .input_schema_json = PQgetvalue(res, i, 2),
        .rate_limit = PQgetisnull(res, i, 4) ? 0 : atoll(PQgetvalue(res, i, 4)),
        .mcp = mcp.server ? &mcp : NULL,
        .needs_approval = strcmp(PQgetvalue(res, i, 12), "t") == 0,
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
     * rows a tenant sees: its own over the global one of the same name.
     * A tool of an MCP server comes with its server's state (never the
     * server's headers: a client that needs them reads the row). */
    static const char sql[] =
        "SELECT t.name, t.description, t.input_schema::text,"
        "       array_to_json(t.required_scopes)::text, t.rate_limit, t.enabled,"
        "       t.mcp_server, t.mcp_tool, s.status, s.resource, "
        MCP_CONFIG_ID_SQL("s") ","
        "       coalesce(t.annotations->'readOnlyHint' = 'true'::jsonb, false),"
        "       t.needs_approval OR coalesce(s.require_approval, false)"
        "       OR coalesce(t.annotations->'destructiveHint' = 'true'::jsonb, false)"
        "  FROM tools_visible($1) t"
        "  LEFT JOIN mcp_servers s ON s.tenant_id = t.tenant_id AND s.name = t.mcp_server"
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

bool tools_catalog_needs_approval(const tool_catalog *c, const char *name, bool write_tools)
{
    const manifest *m = catalog_find(c, name);
    return m != NULL && (m->needs_approval || (write_tools && m->writes));
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

/* The ROLE_* bits (jwt.h) of p's space-separated role names. */
static unsigned role_bits(const tool_principal *p)
{
    return principal_role_bits(p ? p->roles : NULL);
}

/*
 * Whether p's roles allow what scope ("graph:write") stands for, when the
 * role matrix knows its resource; true for other scopes. A write may
 * create, update or delete, so it needs a role that may do all three.
 */
static bool roles_allow_scope(const tool_principal *p, const char *scope)
{
    char res[48];
    const char *colon = strchr(scope, ':');
    if (!colon || (size_t)(colon - scope) >= sizeof(res))
        return true;
    snprintf(res, sizeof(res), "%.*s", (int)(colon - scope), scope);
    rbac_resource r = permission_resource_by_name(res);
    if (r == RES_NONE)
        return true;
    unsigned bits = role_bits(p);
    if (strcmp(colon + 1, "read") == 0)
        return permission_roles_allow(bits, r, ACT_READ);
    return permission_roles_allow(bits, r, ACT_CREATE) &&
           permission_roles_allow(bits, r, ACT_UPDATE) &&
           permission_roles_allow(bits, r, ACT_DELETE);
}

/* Whether p's roles allow every scope of an MCP tool m (see tools.h). */
static bool roles_allow(const tool_principal *p, const manifest *m)
{
    for (size_t i = 0; m->mcp_server && i < m->n_scopes; i++)
        if (!roles_allow_scope(p, m->scopes[i]))
            return false;
    return true;
}

/* Whether m can run at all in this worker: a handler, or a ready MCP
 * server; and a schema to check its arguments with. */
static bool runnable(const manifest *m)
{
    bool served = m->handler || (m->mcp_server && strcmp(m->mcp_status, "ready") == 0);
    return served && m->schema;
}

/* Whether p may call m (what models are offered and catalog.search shows). */
static bool callable(const tool_principal *p, const manifest *m)
{
    return runnable(m) && holds_scopes(p, m) && roles_allow(p, m);
}

/* name as the OpenAI-style providers send it: each '.' as "__"
 * (worker/llm/llm_openai.c). Returns its length; out gets it when it
 * fits (size bytes). */
static size_t model_name(const char *name, char *out, size_t size)
{
    size_t o = 0;
    for (const char *s = name; *s; s++) {
        const char *put = *s == '.' ? "__" : NULL;
        for (size_t k = 0; k < (put ? 2u : 1u); k++, o++)
            if (o + 1 < size)
                out[o] = put ? put[k] : *s;
    }
    if (size)
        out[o < size ? o : size - 1] = '\0';
    return o;
}

/* Whether m may be offered to a model next to the first n defs: its name
 * fits a function name and reads unlike theirs. */
static bool model_offerable(const manifest *m, const llm_tool_def *defs, size_t n)
{
    char mine[MODEL_NAME_MAX + 1], theirs[MODEL_NAME_MAX + 1];
    if (model_name(m->name, mine, sizeof(mine)) > MODEL_NAME_MAX) {
        log_warn("tool %s is not offered to models: its name is longer than %d "
                 "characters as a function name", m->name, MODEL_NAME_MAX);
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        model_name(defs[i].name, theirs, sizeof(theirs));
        if (strcmp(mine, theirs) == 0) {
            log_warn("tool %s is not offered to models: it reads as %s, as %s does",
                     m->name, mine, defs[i].name);
            return false;
        }
    }
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
        if (strcmp(d->scope, scope) == 0 && strcmp(d->roles, p->roles) == 0) {
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
    snprintf(d->roles, sizeof(d->roles), "%s", p->roles);
    for (size_t i = 0; i < c->n; i++) {
        const manifest *m = &c->m[i];
        if (!callable(p, m) || !model_offerable(m, d->defs, d->n))
            continue;
        d->defs[d->n++] = (llm_tool_def){m->name, m->description, m->schema_text};
    }
    d->next = c->defs;
    c->defs = d;
    if (n)
        *n = d->n;
    return d->defs;
}

bool tools_catalog_mcp_tool(const tool_catalog *c, const char *resource, const char *tool,
                            char *out, size_t size)
{
    const manifest *best = NULL;
    for (size_t i = 0; c && resource && tool && i < c->n; i++) {
        const manifest *m = &c->m[i];
        if (m->mcp_server && runnable(m) && strcmp(m->mcp_resource, resource) == 0 &&
            strcmp(m->mcp_tool, tool) == 0 &&
            (!best || strcmp(m->mcp_server, best->mcp_server) < 0))
            best = m;
    }
    if (best && size)
        snprintf(out, size, "%s", best->name);
    return best != NULL;
}

char *tools_output_summary(const tool_catalog *c, const char *name, const cJSON *output)
{
    const manifest *m = catalog_find(c, name);
    if (m && m->mcp_server)
        return mcp_output_summary(output, SUMMARY_MAX);
    return tools_builtin_summary(name, output);
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
    if (k->m->mcp_server && strcmp(k->m->mcp_status, "ready") != 0)
        return refuse(k, TOOL_CALL_FAILED, "the tool \"%s\" cannot be called now: its MCP "
                      "server \"%s\" is not ready (status %s); an administrator can refresh "
                      "it (POST /v1/mcp-servers/%s/refresh)", k->name, k->m->mcp_server,
                      k->m->mcp_status, k->m->mcp_server);
    if (!k->m->handler && !k->m->mcp_server)
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
    int rc = schema_check(k->m->compiled, k->args ? k->args : empty, &se);
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
    if (n > 0) {
        tool_status st = refuse(k, TOOL_CALL_DENIED, "permission denied: the tool \"%s\" "
                                "needs the scope%s %s, which the caller's token does not "
                                "grant", k->name, n == 1 ? "" : "s",
                                missing.s ? missing.s : "?");
        strbuf_free(&missing);
        return st;
    }
    strbuf_free(&missing);
    for (size_t i = 0; k->m->mcp_server && i < k->m->n_scopes; i++)
        if (!roles_allow_scope(k->p, k->m->scopes[i]))
            return refuse(k, TOOL_CALL_DENIED, "permission denied: the tool \"%s\" needs "
                          "\"%s\", and the caller's roles (%s) do not allow %s on %.*s",
                          k->name, k->m->scopes[i], k->p->roles[0] ? k->p->roles : "none",
                          strstr(k->m->scopes[i], ":read") ? "reading" : "changing data",
                          (int)strcspn(k->m->scopes[i], ":"), k->m->scopes[i]);
    return TOOL_CALL_OK;
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
        if (k->m->writes)
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
                                    m->n_scopes, callable(k->p, m)};
    }
    return v;
}

/* Stage 5 of an MCP server's tool: the call through the pool. */
static tool_status stage_mcp(call *k)
{
    mcp_call_target t = {
        .server = k->m->mcp_server,
        .tool = k->m->mcp_tool,
        .config_id = k->m->mcp_config_id,
        .deadline_ms = k->run ? k->run->deadline_ms : 0,
    };
    char msg[sizeof(k->out->message)];
    mcp_call_outcome o = mcp_call_tool_for_job(k->ctx, &t, k->args, &k->out->output, msg,
                                               sizeof(msg));
    if (o == MCP_CALL_DONE)
        return TOOL_CALL_OK;
    return refuse(k, TOOL_CALL_FAILED, "%s", msg);
}

/* Stage 5: the handler. */
static tool_status stage_handler(call *k)
{
    if (k->m->mcp_server)
        return stage_mcp(k);
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

/* Whether a call's audit row commits only once its WAL is flushed. A
 * call of a tool that may change state (or of none the catalog knows)
 * waits: its record is durable before the run goes on. A read-only
 * tool's does not: PostgreSQL's WAL writer flushes it within a few
 * wal_writer_delay (or the job's next synchronous commit does, which
 * carries every earlier one), so only a database crash in that window
 * could lose it, and the call changed nothing. */
static bool audit_waits_for_flush(const call *k)
{
    return k->m == NULL || k->m->writes;
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
    if (ok && k->m && k->m->mcp_server)
        ok = cJSON_AddStringToObject(d, "mcp_server", k->m->mcp_server) != NULL &&
             cJSON_AddStringToObject(d, "mcp_tool", k->m->mcp_tool) != NULL;
    char *detail = ok ? json_print(d) : NULL;
    cJSON_Delete(d);
    if (!detail) {
        log_error("tool %s: audit row not written: out of memory", k->name);
        return;
    }
    snprintf(resource, sizeof(resource), "tool:%s", k->name);
    const char *who = k->p && k->p->sub[0] ? k->p->sub
                      : k->job->created_by[0] ? k->job->created_by : "unknown";
    const char *params[6] = {k->job->tenant_id, who, resource,
                             tool_status_name(out->status), k->job->request_id, detail};
    PGconn *pg = job_db(k->ctx);
    PGresult *res = NULL;
    if (pg && audit_waits_for_flush(k))
        res = store_exec_as(pg, k->job->tenant_id, sql, 6, params);
    else if (pg)
        res = store_exec_as_unflushed(pg, k->job->tenant_id, sql, 6, params);
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
        char *summary = tools_output_summary(k->c, k->m->name, out->output);
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

/* A tool call's span ("execute_tool <name>", as the generative-AI
 * conventions name it), the thread's current context while the tool runs,
 * so an MCP server is sent its traceparent. */
static span *tool_span_begin(const char *name)
{
    char title[sizeof ((call *)0)->name + 16];
    snprintf(title, sizeof title, "execute_tool %s", name);
    span *sp = span_start_current(title, SPAN_KIND_INTERNAL);
    span_set_str(sp, "gen_ai.operation.name", "execute_tool");
    span_set_str(sp, "gen_ai.tool.name", name);
    return sp;
}

static void tool_span_end(span *sp, const call *k)
{
    if (k->m && k->m->mcp_server) {
        span_set_str(sp, "agentgate.mcp.server", k->m->mcp_server);
        span_set_str(sp, "agentgate.mcp.tool", k->m->mcp_tool);
    }
    span_set_str(sp, "agentgate.tool.status", tool_status_name(k->out->status));
    if (k->out->status != TOOL_CALL_OK) {
        span_set_str(sp, "error.type", tool_status_name(k->out->status));
        span_set_error(sp, k->out->message);
    }
    span_end(sp);
}

void tools_call(job_ctx *ctx, tool_catalog *c, const tool_principal *p,
                const tool_run_env *run, const char *name, const cJSON *args,
                tool_call_result *out)
{
    long long t0 = clock_mono_ms();
    double t0_s = clock_mono_s();
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

    span *sp = tool_span_begin(k.name);
    tool_status st = stage_lookup(&k);
    if (st == TOOL_CALL_OK)
        st = stage_validate(&k);
    if (st == TOOL_CALL_OK)
        st = stage_scopes(&k);
    if (st == TOOL_CALL_OK)
        st = stage_rate_limit(&k);
    if (st == TOOL_CALL_OK) {
        double h0 = clock_mono_s();
        st = stage_handler(&k);
        out->handler_ms = (clock_mono_s() - h0) * 1000.0;
    }
    out->status = st;
    if (st != TOOL_CALL_OK) {
        cJSON_Delete(out->output);
        out->output = NULL;
        flatten_message(out);
    }
    out->latency_ms = clock_mono_ms() - t0;
    /* By manifest name: a name the model made up has none, and must not
     * become a series of its own. */
    worker_metrics_tool_call(k.m ? k.m->name : NULL, tool_status_name(st),
                             clock_mono_s() - t0_s);
    if (st == TOOL_CALL_OK)
        log_debug("tool %s: ok in %lld ms", k.name, out->latency_ms);
    else
        log_info("tool %s: %s: %s", k.name, tool_status_name(st), out->message);
    write_audit(&k);
    emit_called(&k);
    tool_span_end(sp, &k);
}
