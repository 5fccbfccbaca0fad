/*
 * mcp_discover.c - the mcp.discover job (see mcp_discover.h): reach the
 * server, list its tools, record them.
 *
 * The work is in three parts. Connecting and listing use a client of
 * their own, made from the row as it is now (mcp_server_client, which
 * checks the operator's settings first), and closed at the end: a refresh
 * always talks to the server afresh. Building turns the listing into
 * manifest rows and the summary, deciding per tool whether it gets a
 * manifest and whether it can be called (pure, mcp_discover_build).
 * Recording happens in one transaction with the server's row locked:
 * the row is read again (a job superseded by a newer refresh writes
 * nothing), the server's old manifests are deleted, the new ones inserted
 * (a name the tenant already uses for a manifest of its own is left to
 * it, and the tool marked unusable), and the row updated.
 */
#include "mcp_discover.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonutil.h"
#include "log.h"
#include "mcp_server.h"
#include "strbuf.h"
#include "tools.h"
#include "tools_builtin.h"
#include "job_store.h"

#define NAME_MAX_BYTES   128        /* of a manifest name (tools.c) */
#define SCHEMA_MAX_BYTES 65536      /* of a manifest's input schema (tools.c) */
#define ERROR_MAX        400        /* bytes of last_error */
#define INFO_MAX         200        /* bytes of a server_info member */

/* ---- names and scopes ------------------------------------------------------------ */

static bool name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '_' || c == '-';
}

int mcp_manifest_name(const char *server, const char *tool, char *out, size_t size,
                      char *why, size_t why_size)
{
    size_t ls = server ? strlen(server) : 0, lt = tool ? strlen(tool) : 0;

    if (size)
        out[0] = '\0';
    if (ls == 0 || lt == 0) {
        errbuf_printf(why, why_size, "it has no name");
        return -1;
    }
    if (ls + 1 + lt > NAME_MAX_BYTES || ls + 1 + lt >= size) {
        errbuf_printf(why, why_size, "its name with the server's in front is %zu bytes, "
                      "more than the %d a tool name may have", ls + 1 + lt, NAME_MAX_BYTES);
        return -1;
    }
    for (const char *p = tool; *p; p++)
        if (!name_char(*p)) {
            errbuf_printf(why, why_size, "its name has characters other than "
                          "[A-Za-z0-9._-]");
            return -1;
        }
    for (const char *p = server; *p; p++)
        if (!name_char(*p) || *p == '.') {
            errbuf_printf(why, why_size, "the server's name cannot prefix a tool name");
            return -1;
        }
    snprintf(out, size, "%s.%s", server, tool);
    return 0;
}

/* The length of name as a model sees it: each '.' goes out as "__"
 * (worker/llm/llm_openai.c, encode_tool_name). */
static size_t model_name_len(const char *name)
{
    size_t n = strlen(name);
    for (const char *p = name; *p; p++)
        n += *p == '.';
    return n;
}

/* ---- building ------------------------------------------------------------------ */

static void add_hint(cJSON *o, const char *key, mcp_hint h, bool *ok)
{
    if (h != MCP_HINT_UNSET)
        json_add_bool(o, key, h == MCP_HINT_TRUE, ok);
}

static cJSON *annotations_json(const mcp_tool *t)
{
    cJSON *a = cJSON_CreateObject();
    bool ok = a != NULL;
    if (t->title)
        json_add_str(a, "title", t->title, &ok);
    add_hint(a, "readOnlyHint", t->read_only, &ok);
    add_hint(a, "destructiveHint", t->destructive, &ok);
    add_hint(a, "idempotentHint", t->idempotent, &ok);
    add_hint(a, "openWorldHint", t->open_world, &ok);
    return json_done(a, ok);
}

/* One manifest row of the INSERT. */
static cJSON *manifest_json(const char *name, const mcp_tool *t, const char *scope)
{
    cJSON *m = cJSON_CreateObject();
    bool ok = m != NULL;
    json_add_str(m, "name", name, &ok);
    json_add_str(m, "description", t->description ? t->description
                                   : t->title ? t->title : "", &ok);
    json_add_item(m, "input_schema", cJSON_Duplicate(t->input_schema, true), &ok);
    cJSON *scopes = cJSON_CreateArray();
    json_append(scopes, cJSON_CreateString(scope), &ok);
    json_add_item(m, "required_scopes", scopes, &ok);
    json_add_num(m, "rate_limit", MCP_DEFAULT_RATE_LIMIT, &ok);
    json_add_str(m, "mcp_tool", t->name, &ok);
    json_add_item(m, "annotations", annotations_json(t), &ok);
    return json_done(m, ok);
}

/* Whether the manifest's schema can be checked; why not in why. */
static bool schema_usable(const mcp_tool *t, char *why, size_t why_size)
{
    char *text = json_print(t->input_schema);
    if (!text) {
        errbuf_printf(why, why_size, "out of memory");
        return false;
    }
    bool ok = strlen(text) <= SCHEMA_MAX_BYTES;
    if (!ok)
        errbuf_printf(why, why_size, "its input schema is larger than %d bytes",
                      SCHEMA_MAX_BYTES);
    else
        ok = tools_schema_check(text, why, why_size);
    free(text);
    return ok;
}

static cJSON *summary_json(const char *manifest, const mcp_tool *t, bool usable,
                           const char *reason)
{
    cJSON *s = cJSON_CreateObject();
    bool ok = s != NULL;
    json_add_str(s, "name", t->name, &ok);
    if (manifest)
        json_add_str(s, "manifest", manifest, &ok);
    else if (ok)
        ok = cJSON_AddNullToObject(s, "manifest") != NULL;
    if (t->title)
        json_add_str(s, "title", t->title, &ok);
    else if (ok)
        ok = cJSON_AddNullToObject(s, "title") != NULL;
    json_add_bool(s, "read_only", t->read_only == MCP_HINT_TRUE, &ok);
    json_add_bool(s, "usable", usable, &ok);
    if (reason && *reason)
        json_add_str(s, "reason", reason, &ok);
    else if (ok)
        ok = cJSON_AddNullToObject(s, "reason") != NULL;
    return json_done(s, ok);
}

/* Adds tool t to d. Returns 0 or -1 (out of memory). */
static int build_one(mcp_discovered *d, const char *server, const char *resource,
                     const mcp_tool *t)
{
    char name[NAME_MAX_BYTES + 1], why[300] = "", scope[MCP_RESOURCE_MAX + 8];
    bool ok = true;

    if (mcp_manifest_name(server, t->name, name, sizeof(name), why, sizeof(why)) < 0 ||
        (tools_builtin_find(name) &&
         (errbuf_printf(why, sizeof(why), "\"%s\" is the name of a built-in tool", name), 1))) {
        d->refused++;
        json_append(d->summary, summary_json(NULL, t, false, why), &ok);
        return ok ? 0 : -1;
    }
    bool usable = schema_usable(t, why, sizeof(why));
    if (usable && model_name_len(name) > MCP_MODEL_NAME_MAX)
        errbuf_printf(why, sizeof(why), "callable by the planner, but not offered to "
                      "language models: its name is longer than %d characters as a "
                      "function name", MCP_MODEL_NAME_MAX);
    snprintf(scope, sizeof(scope), "%s:%s", resource,
             t->read_only == MCP_HINT_TRUE ? "read" : "write");
    d->usable += usable;
    json_append(d->manifests, manifest_json(name, t, scope), &ok);
    json_append(d->summary, summary_json(name, t, usable, why), &ok);
    return ok ? 0 : -1;
}

int mcp_discover_build(const char *server, const char *resource, const mcp_tool_list *l,
                       mcp_discovered *out)
{
    memset(out, 0, sizeof(*out));
    out->manifests = cJSON_CreateArray();
    out->summary = cJSON_CreateArray();
    if (!out->manifests || !out->summary)
        goto oom;
    for (size_t i = 0; i < l->count; i++)
        if (build_one(out, server, resource, &l->tools[i]) < 0)
            goto oom;
    return 0;
oom:
    mcp_discovered_free(out);
    return -1;
}

void mcp_discover_mark_conflicts(mcp_discovered *d, const cJSON *inserted)
{
    cJSON *s;
    cJSON_ArrayForEach(s, d->summary) {
        const char *m = json_get_string(s, "manifest");
        bool found = false;
        const cJSON *n;
        cJSON_ArrayForEach(n, inserted)
            found = found || (cJSON_IsString(n) && m && strcmp(n->valuestring, m) == 0);
        if (!m || found)
            continue;
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(s, "usable")))
            d->usable--;
        cJSON_ReplaceItemInObjectCaseSensitive(s, "usable", cJSON_CreateFalse());
        char why[300];
        snprintf(why, sizeof(why), "the tenant has a tool manifest named \"%s\" of its own, "
                 "which stays", m);
        cJSON_ReplaceItemInObjectCaseSensitive(s, "reason", cJSON_CreateString(why));
    }
}

void mcp_discovered_free(mcp_discovered *d)
{
    cJSON_Delete(d->manifests);
    cJSON_Delete(d->summary);
    memset(d, 0, sizeof(*d));
}

/* ---- the job ---------------------------------------------------------------------- */

/* What one discovery carries between its parts. */
typedef struct discovery {
    job_ctx *ctx;
    const job_info *job;
    PGconn *pg;
    const char *server;
    mcp_server_row row;
    char protocol[32];
    cJSON *server_info;
    mcp_tool_list tools;
    mcp_discovered found;
    size_t skipped;             /* definitions the client refused */
} discovery;

static job_outcome fail(job_result *out, bool retryable, const char *code, const char *msg)
{
    snprintf(out->error_code, sizeof(out->error_code), "%s", code);
    snprintf(out->error_message, sizeof(out->error_message), "%s", msg);
    out->retryable = retryable;
    return JOB_FAILED;
}

/* Runs sql as the job's tenant; the result or NULL (logged) on failure. */
static PGresult *exec_ok(discovery *d, const char *what, const char *sql, int n,
                         const char *const *params, ExecStatusType want)
{
    PGresult *res = store_exec_as(d->pg, d->job->tenant_id, sql, n, params);
    if (PQresultStatus(res) == want)
        return res;
    log_error("mcp.discover %s: %s failed: %s", d->server, what, PQerrorMessage(d->pg));
    PQclear(res);
    return NULL;
}

/* Records the failure on the row, unless a newer refresh owns it. */
static void record_error(discovery *d, const char *reason)
{
    static const char sql[] =
        "UPDATE mcp_servers SET status = 'error', last_error = $3, last_refresh_at = now()"
        " WHERE tenant_id = $1 AND name = $2"
        "   AND (refresh_job_id IS NULL OR refresh_job_id = $4::uuid)";
    strbuf b = {0};
    strbuf_add_flat(&b, reason, ERROR_MAX);
    const char *params[4] = {d->job->tenant_id, d->server, b.s ? b.s : "error", d->job->id};
    PGresult *res = exec_ok(d, "recording the error", sql, 4, params, PGRES_COMMAND_OK);
    PQclear(res);
    strbuf_free(&b);
}

static cJSON *server_info_json(const mcp_client *c)
{
    strbuf n = {0}, v = {0};
    strbuf_add_flat(&n, mcp_client_server_name(c), INFO_MAX);
    strbuf_add_flat(&v, mcp_client_server_version(c), INFO_MAX);
    cJSON *o = cJSON_CreateObject();
    bool ok = o != NULL && !n.oom && !v.oom;
    json_add_str(o, "name", n.s ? n.s : "", &ok);
    json_add_str(o, "version", v.s ? v.s : "", &ok);
    strbuf_free(&n);
    strbuf_free(&v);
    return json_done(o, ok);
}

/* Connects and lists. Returns MCP_OK or an MCP_ERR_* (or 1: refused by
 * the operator's settings) with the reason in err. */
static int reach_server(discovery *d, char *err, size_t err_size)
{
    const ag_config *cfg = job_config(d->ctx);
    mcp_client_options opt = {
        .request_timeout_ms = cfg && cfg->mcp_connect_timeout_ms > 0
                                  ? cfg->mcp_connect_timeout_ms : 0,
        .max_tools = TOOLS_CATALOG_MAX,
    };
    mcp_open_err why;
    mcp_client *c = mcp_server_client(&d->row, d->job->tenant_id, cfg, &opt, &why, err,
                                      err_size);
    if (!c)
        return why == MCP_OPEN_NOMEM ? MCP_ERR_NOMEM : 1;
    int rc = mcp_client_initialize(c, err, err_size);
    if (rc == MCP_OK && job_cancelled(d->ctx))
        rc = MCP_ERR_CANCELLED;
    if (rc == MCP_OK)
        rc = mcp_client_list_tools(c, &d->tools, err, err_size);
    if (rc == MCP_OK) {
        snprintf(d->protocol, sizeof(d->protocol), "%s", mcp_client_protocol_version(c));
        d->server_info = server_info_json(c);
        d->skipped = d->tools.skipped;
        if (!d->server_info)
            rc = MCP_ERR_NOMEM;
    }
    mcp_client_free(c);
    return rc;
}

/* The manifest names the INSERT returned, as a JSON array. */
static cJSON *inserted_names(const PGresult *res)
{
    cJSON *a = cJSON_CreateArray();
    bool ok = a != NULL;
    for (int i = 0; ok && i < PQntuples(res); i++)
        json_append(a, cJSON_CreateString(PQgetvalue(res, i, 0)), &ok);
    return json_done(a, ok);
}

/* The statements of the recording transaction, after the row is locked.
 * Returns 0, or -1 (logged). */
static int write_manifests(discovery *d)
{
    static const char del[] =
        "DELETE FROM tool_manifests WHERE tenant_id = $1 AND mcp_server = $2";
    static const char ins[] =
        "INSERT INTO tool_manifests (tenant_id, name, description, input_schema,"
        "                            required_scopes, rate_limit, enabled, mcp_server,"
        "                            mcp_tool, annotations)"
        " SELECT $1, m->>'name', m->>'description', m->'input_schema',"
        "        ARRAY(SELECT jsonb_array_elements_text(m->'required_scopes')),"
        "        (m->>'rate_limit')::int, true, $2, m->>'mcp_tool', m->'annotations'"
        "   FROM jsonb_array_elements($3::jsonb) AS m"
        " ON CONFLICT ((coalesce(tenant_id, '')), name) DO NOTHING"
        " RETURNING name";
    static const char upd[] =
        "UPDATE mcp_servers SET status = 'ready', protocol_version = $3,"
        "       server_info = $4::jsonb, tools = $5::jsonb, last_refresh_at = now(),"
        "       last_error = NULL"
        " WHERE tenant_id = $1 AND name = $2";

    const char *p2[2] = {d->job->tenant_id, d->server};
    PGresult *res = exec_ok(d, "deleting old manifests", del, 2, p2, PGRES_COMMAND_OK);
    if (!res)
        return -1;
    PQclear(res);
    char *rows = json_print(d->found.manifests);
    const char *p3[3] = {d->job->tenant_id, d->server, rows};
    res = rows ? exec_ok(d, "inserting manifests", ins, 3, p3, PGRES_TUPLES_OK) : NULL;
    free(rows);
    if (!res)
        return -1;
    cJSON *names = inserted_names(res);
    PQclear(res);
    if (!names)
        return -1;
    mcp_discover_mark_conflicts(&d->found, names);
    cJSON_Delete(names);
    char *info = json_print(d->server_info), *tools = json_print(d->found.summary);
    const char *p5[5] = {d->job->tenant_id, d->server, d->protocol, info, tools};
    res = info && tools ? exec_ok(d, "updating the server", upd, 5, p5, PGRES_COMMAND_OK)
                        : NULL;
    free(info);
    free(tools);
    if (!res)
        return -1;
    PQclear(res);
    return 0;
}

/* Records the tools in one transaction. Returns 0, 1 when a newer
 * refresh owns the row (or it is gone), -1 on failure. */
static int record(discovery *d)
{
    mcp_server_row now;
    char err[300];

    if (store_exec(d->pg, "BEGIN") != STORE_OK)
        return -1;
    int rc = mcp_server_row_load(d->pg, d->job->tenant_id, d->server, true, &now, err,
                                 sizeof(err));
    if (rc < 0)
        log_error("mcp.discover %s: %s", d->server, err);
    else if (rc == 0 && now.refresh_job_id[0] && strcmp(now.refresh_job_id, d->job->id) != 0)
        rc = 1;
    mcp_server_row_free(&now);
    if (rc == 0)
        rc = write_manifests(d);
    if (rc != 0) {
        store_exec(d->pg, "ROLLBACK");
        return rc;
    }
    return store_exec(d->pg, "COMMIT") == STORE_OK ? 0 : -1;
}

static cJSON *result_json(const discovery *d, const char *status)
{
    cJSON *o = cJSON_CreateObject();
    bool ok = o != NULL;
    json_add_str(o, "server", d->server, &ok);
    json_add_str(o, "status", status, &ok);
    json_add_num(o, "tools", (double)d->tools.count, &ok);
    json_add_num(o, "usable", (double)d->found.usable, &ok);
    json_add_num(o, "refused", (double)(d->found.refused + d->skipped), &ok);
    return json_done(o, ok);
}

static void discovery_free(discovery *d)
{
    mcp_server_row_free(&d->row);
    cJSON_Delete(d->server_info);
    mcp_tool_list_free(&d->tools);
    mcp_discovered_free(&d->found);
}

static bool reach_retryable(int rc)
{
    return rc == MCP_ERR_TRANSPORT || rc == MCP_ERR_TIMEOUT || rc == MCP_ERR_SESSION_LOST ||
           rc == MCP_ERR_NOMEM;
}

/* Everything after the row was read; d->row holds it. */
static job_outcome discover(discovery *d, job_result *out)
{
    char err[MCP_ERR_MESSAGE_MAX + 128] = "", reason[ERROR_MAX + 64];

    int rc = reach_server(d, err, sizeof(err));
    if (rc == MCP_ERR_CANCELLED || job_cancelled(d->ctx))
        return JOB_CANCELLED;
    if (rc != MCP_OK) {
        errbuf_printf(reason, sizeof(reason), "%s", err[0] ? err : "the server failed");
        record_error(d, reason);
        log_warn("mcp.discover %s/%s: %s", d->job->tenant_id, d->server, reason);
        return fail(out, reach_retryable(rc), rc == 1 ? "mcp_server_refused"
                                                      : "mcp_server_unreachable", reason);
    }
    if (mcp_discover_build(d->server, d->row.resource, &d->tools, &d->found) < 0)
        return fail(out, true, "out_of_memory", "the worker ran out of memory");
    rc = record(d);
    if (rc < 0)
        return fail(out, true, "store_failed", "the server's tools could not be recorded");
    out->result = result_json(d, rc == 1 ? "superseded" : "ready");
    if (!out->result)
        return fail(out, true, "out_of_memory", "the worker ran out of memory");
    log_info("mcp.discover %s/%s: %s, %zu tools (%zu usable, %zu refused, %zu invalid)",
             d->job->tenant_id, d->server, rc == 1 ? "superseded" : "ready", d->tools.count,
             d->found.usable, d->found.refused, d->skipped);
    return JOB_SUCCEEDED;
}

job_outcome handle_mcp_discover(job_ctx *ctx, job_result *out)
{
    discovery d;
    char err[300];

    memset(&d, 0, sizeof(d));
    d.ctx = ctx;
    d.job = job_get_info(ctx);
    d.pg = job_db(ctx);
    d.server = json_get_string(d.job->payload, "server");
    if (!mcp_server_name_valid(d.server))
        return fail(out, false, "invalid_payload", "payload field \"server\" must be a "
                    "server name");
    if (!d.pg)
        return fail(out, true, "store_failed", "no database connection");
    int rc = mcp_server_row_load(d.pg, d.job->tenant_id, d.server, false, &d.row, err,
                                 sizeof(err));
    if (rc < 0) {
        mcp_server_row_free(&d.row);
        return fail(out, true, "store_failed", err);
    }
    /* A server deleted since, or refreshed again: nothing to do here. */
    bool gone = rc > 0;
    if (gone || (d.row.refresh_job_id[0] && strcmp(d.row.refresh_job_id, d.job->id) != 0)) {
        out->result = result_json(&d, gone ? "gone" : "superseded");
        discovery_free(&d);
        return out->result ? JOB_SUCCEEDED
                           : fail(out, true, "out_of_memory", "the worker ran out of memory");
    }
    job_outcome o = discover(&d, out);
    discovery_free(&d);
    return o;
}
