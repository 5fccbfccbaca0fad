/*
 * mcp_call.c - an MCP tool call on behalf of a job (see mcp_call.h).
 *
 * The call leases a client from the pool under the key (tenant, server,
 * settings id). A client the pool has to make reads the server's row
 * again (mcp_server_row_load) and passes the operator's checks
 * (mcp_server_client) before anything connects. Initialization is done
 * first, on its own (AGENTGATE_MCP_CONNECT_TIMEOUT_MS), so that a server
 * that cannot be reached is told apart from a call that failed.
 *
 * What the server sends while the call runs is bounded before it becomes
 * an event: job.progress at most every PROGRESS_MIN_MS (the last report
 * of a finished total always goes out) and PROGRESS_MAX per call, `log`
 * events at most LOG_MAX per call, every text flattened and cut.
 *
 * After a timeout or a protocol error the client is closed rather than
 * pooled: a server that hung or spoke garbage once is started afresh for
 * the next call. A server that died (stdio) is restarted by its
 * transport on the next call, with backoff; the call in flight fails
 * with the reason ("was killed by signal 9").
 *
 * A client that heard notifications/tools/list_changed (during this call,
 * or while earlier ones on it ran) has a discovery of the server queued
 * after the call (mcp_refresh_queue), so the tenant's manifests follow
 * what the server lists now without holding this call up.
 */
#include "mcp_call.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "config.h"
#include "jsonutil.h"
#include "log.h"
#include "mcp_refresh.h"
#include "mcp_server.h"
#include "strbuf.h"
#include "utf8.h"

#define PROGRESS_MIN_MS   100
#define PROGRESS_MAX      200       /* job.progress events of one call */
#define LOG_MAX           50        /* log events of one call */
#define LOG_TEXT_MAX      1000      /* bytes of a log event's message */
#define PROGRESS_TEXT_MAX 200       /* bytes of a progress message */
#define ERROR_TEXT_MAX    300       /* bytes of a tool's error text in a message */
#define DEFAULT_CALL_MS   30000
#define DEFAULT_CONNECT_MS 10000
#define DEFAULT_RESULT_MAX 262144

/* What the callbacks of one call share. */
typedef struct call_state {
    job_ctx *ctx;
    long long last_progress_ms;
    int progress_events;
    int log_events;
} call_state;

/* ---- while the call runs ---------------------------------------------------- */

static bool cancelled(void *user)
{
    const call_state *s = user;
    return job_cancelled(s->ctx);
}

static void on_progress(void *user, double progress, double total, const char *message)
{
    call_state *s = user;
    long long now = clock_mono_ms();
    bool last = total > 0 && progress >= total;

    if (s->progress_events >= PROGRESS_MAX ||
        (!last && s->progress_events > 0 && now - s->last_progress_ms < PROGRESS_MIN_MS))
        return;
    if (!isfinite(progress) || !isfinite(total))
        return;
    strbuf m = {0};
    strbuf_add_flat(&m, message, PROGRESS_TEXT_MAX);
    job_progress(s->ctx, llround(progress), total > 0 ? llround(total) : 0,
                 m.s && !m.oom ? m.s : NULL);
    strbuf_free(&m);
    s->progress_events++;
    s->last_progress_ms = now;
}

/* A level word as the server sent it, if it looks like one. */
static const char *level_word(const char *level)
{
    static const char *const levels[] = {"debug", "info", "notice", "warning", "error",
                                         "critical", "alert", "emergency"};
    for (size_t i = 0; level && i < sizeof(levels) / sizeof(levels[0]); i++)
        if (strcmp(level, levels[i]) == 0)
            return levels[i];
    return "info";
}

static void on_log(void *user, const char *level, const char *logger, const char *text)
{
    call_state *s = user;

    if (s->log_events >= LOG_MAX) {
        log_debug("mcp: a server log message of job %s dropped (over %d)",
                  job_get_info(s->ctx)->id, LOG_MAX);
        return;
    }
    strbuf lg = {0}, msg = {0};
    strbuf_add_flat(&lg, logger, 64);
    strbuf_add_flat(&msg, text, LOG_TEXT_MAX);
    cJSON *d = cJSON_CreateObject();
    bool ok = d != NULL && !lg.oom && !msg.oom;
    json_add_str(d, "level", level_word(level), &ok);
    if (lg.s && *lg.s)
        json_add_str(d, "logger", lg.s, &ok);
    else if (ok)
        ok = cJSON_AddNullToObject(d, "logger") != NULL;
    json_add_str(d, "message", msg.s ? msg.s : "", &ok);
    if (ok && job_emit(s->ctx, "log", d) >= 0)
        s->log_events++;
    cJSON_Delete(d);
    strbuf_free(&lg);
    strbuf_free(&msg);
}

/* ---- making a client ---------------------------------------------------------- */

typedef struct maker {
    job_ctx *ctx;
    const ag_config *cfg;
} maker;

static mcp_client *make_client(void *user, const mcp_pool_key *key,
                               const mcp_client_options *base, char *config_id,
                               bool *retryable, char *err, size_t err_size)
{
    const maker *mk = user;
    mcp_server_row row;

    int rc = mcp_server_row_load(job_db(mk->ctx), key->tenant, key->server, false, &row, err,
                                 err_size);
    if (rc != 0) {
        *retryable = rc < 0;
        if (rc > 0)
            errbuf_printf(err, err_size, "the MCP server \"%s\" is not registered any more",
                          key->server);
        mcp_server_row_free(&row);
        return NULL;
    }
    mcp_client_options opt = *base;
    const ag_config *cfg = mk->cfg;
    opt.request_timeout_ms = cfg && cfg->mcp_connect_timeout_ms > 0
                                 ? cfg->mcp_connect_timeout_ms : DEFAULT_CONNECT_MS;
    opt.call_timeout_ms = cfg && cfg->mcp_call_timeout_ms > 0 ? cfg->mcp_call_timeout_ms
                                                              : DEFAULT_CALL_MS;
    opt.max_result_bytes = cfg && cfg->mcp_result_max_bytes > 0 ? cfg->mcp_result_max_bytes
                                                                : DEFAULT_RESULT_MAX;
    mcp_open_err why;
    mcp_client *c = mcp_server_client(&row, key->tenant, cfg, &opt, &why, err, err_size);
    snprintf(config_id, MCP_CONFIG_ID_LEN + 1, "%s", row.config_id);
    *retryable = !c && why == MCP_OPEN_NOMEM;
    mcp_server_row_free(&row);
    return c;
}

/* ---- the output ------------------------------------------------------------------ */

/* The length of at most max bytes of s (len bytes), cut before a UTF-8
 * sequence rather than inside it. */
static size_t utf8_cut(const char *s, size_t len, size_t max)
{
    if (len <= max)
        return len;
    size_t n = max;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    return n;
}

cJSON *mcp_call_output(const mcp_call_result *r, size_t max_bytes)
{
    static const char marker[] = "\n[truncated: the answer was longer than the limit]";
    const char *text = r->text ? r->text : "";
    size_t text_len = r->text ? r->text_len : 0;
    bool truncated = r->truncated;
    cJSON *structured = NULL;

    if (r->structured) {
        char *printed = json_print(r->structured);
        if (!printed)
            return NULL;
        if (strlen(printed) + text_len <= max_bytes) {
            structured = cJSON_Duplicate(r->structured, true);
            if (!structured) {
                free(printed);
                return NULL;
            }
        } else {
            truncated = true;
        }
        free(printed);
    }
    strbuf t = {0};
    if (text_len > max_bytes) {
        size_t keep = max_bytes > sizeof(marker) ? max_bytes - sizeof(marker) : 0;
        strbuf_addn(&t, text, utf8_cut(text, text_len, keep));
        strbuf_add(&t, marker);
        truncated = true;
    } else {
        strbuf_addn(&t, text, text_len);
    }
    cJSON *o = cJSON_CreateObject();
    bool ok = o != NULL && !t.oom;
    json_add_str(o, "content", t.s ? t.s : "", &ok);
    if (structured)
        json_add_item(o, "structuredContent", structured, &ok);
    json_add_bool(o, "isError", r->is_error, &ok);
    if (truncated)
        json_add_bool(o, "truncated", true, &ok);
    strbuf_free(&t);
    return json_done(o, ok);
}

/* ---- summaries ---------------------------------------------------------------------- */

static const char *str_member(const cJSON *o, const char *k)
{
    const char *v = json_get_string(o, k);
    return v ? v : "?";
}

/* "Alice (person: works at Acme; likes tea)". */
static void add_entity(strbuf *b, const cJSON *e)
{
    strbuf_add_flat(b, str_member(e, "name"), 80);
    const char *type = json_get_string(e, "entityType");
    const cJSON *obs = cJSON_GetObjectItemCaseSensitive(e, "observations");
    int n = 0;
    if (type) {
        strbuf_add(b, " (");
        strbuf_add_flat(b, type, 40);
    }
    for (const cJSON *o = cJSON_IsArray(obs) ? obs->child : NULL; o && n < 5; o = o->next) {
        if (!cJSON_IsString(o))
            continue;
        strbuf_add(b, n++ ? "; " : type ? ": " : " (");
        strbuf_add_flat(b, o->valuestring, 120);
    }
    if (type || n)
        strbuf_add(b, ")");
}

/* The entities and relations of a knowledge graph, one by one. Returns
 * false when output is not a graph. */
static bool graph_summary(strbuf *b, const cJSON *output, size_t max)
{
    const cJSON *sc = cJSON_GetObjectItemCaseSensitive(output, "structuredContent");
    const cJSON *ents = cJSON_GetObjectItemCaseSensitive(sc, "entities");
    const cJSON *rels = cJSON_GetObjectItemCaseSensitive(sc, "relations");
    if (!cJSON_IsArray(ents) || !cJSON_IsArray(rels))
        return false;
    int ne = cJSON_GetArraySize(ents), nr = cJSON_GetArraySize(rels), i = 0;
    strbuf_addf(b, "%d entit%s", ne, ne == 1 ? "y" : "ies");
    for (const cJSON *e = ents->child; e && b->len < max; e = e->next, i++) {
        strbuf_add(b, i ? ", " : ": ");
        if (cJSON_IsObject(e))
            add_entity(b, e);
    }
    strbuf_addf(b, "; %d relation%s", nr, nr == 1 ? "" : "s");
    i = 0;
    for (const cJSON *r = rels->child; r && b->len < max; r = r->next, i++) {
        strbuf_add(b, i ? ", " : ": ");
        strbuf_add_flat(b, str_member(r, "from"), 80);
        strbuf_add(b, " ");
        strbuf_add_flat(b, str_member(r, "relationType"), 60);
        strbuf_add(b, " ");
        strbuf_add_flat(b, str_member(r, "to"), 80);
    }
    return true;
}

char *mcp_output_summary(const cJSON *output, size_t max)
{
    strbuf b = {0};

    if (!output) {
        strbuf_add(&b, "no output");
    } else if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(output, "isError"))) {
        strbuf_add(&b, "error: ");
        strbuf_add_flat(&b, json_get_string(output, "content"), max > 8 ? max - 8 : 0);
    } else if (!graph_summary(&b, output, max)) {
        const char *text = json_get_string(output, "content");
        strbuf_add_flat(&b, text && *text ? text : "(no text)", max);
    }
    if (b.len > max) {
        size_t n = utf8_cut(b.s, b.len, max > 3 ? max - 3 : 0);
        b.len = n;
        b.s[n] = '\0';
        strbuf_add(&b, "...");
    }
    return strbuf_take(&b, NULL);
}

/* ---- the call ------------------------------------------------------------------------- */

/* Why the call failed, in words a model can relay. */
static void failure_message(int rc, const char *server, const char *tool, long long timeout,
                            bool deadline_bound, const char *err, char *msg, size_t size)
{
    switch (rc) {
    case MCP_ERR_TIMEOUT:
        if (deadline_bound)
            errbuf_printf(msg, size, "the run ran out of time while the MCP server \"%s\" "
                          "worked on \"%s\"; the call was cancelled", server, tool);
        else
            errbuf_printf(msg, size, "the MCP server \"%s\" did not answer \"%s\" within "
                          "%lld ms; the call was cancelled", server, tool, timeout);
        return;
    case MCP_ERR_CANCELLED:
        errbuf_printf(msg, size, "the call of \"%s\" on the MCP server \"%s\" was cancelled "
                      "with the run", tool, server);
        return;
    case MCP_ERR_RPC:
        errbuf_printf(msg, size, "the MCP server \"%s\" refused the call: %s", server, err);
        return;
    case MCP_ERR_TRANSPORT:
        errbuf_printf(msg, size, "the MCP server \"%s\" failed during the call (%s); the "
                      "next call starts it again", server, err);
        return;
    default:
        errbuf_printf(msg, size, "the call on the MCP server \"%s\" failed: %s", server, err);
    }
}

static size_t result_cap(const ag_config *cfg)
{
    return cfg && cfg->mcp_result_max_bytes > 0 ? cfg->mcp_result_max_bytes
                                                 : DEFAULT_RESULT_MAX;
}

/* The call's time limit: the setting, not past the run's deadline. */
static long long call_timeout(const ag_config *cfg, long long deadline_ms, bool *bound)
{
    long long t = cfg && cfg->mcp_call_timeout_ms > 0 ? cfg->mcp_call_timeout_ms
                                                      : DEFAULT_CALL_MS;
    *bound = false;
    if (deadline_ms > 0 && deadline_ms - clock_mono_ms() < t) {
        t = deadline_ms - clock_mono_ms();
        *bound = true;
    }
    return t;
}

mcp_call_outcome mcp_call_tool_for_job(job_ctx *ctx, const mcp_call_target *t,
                                       const cJSON *args, cJSON **output, char *msg,
                                       size_t msg_size)
{
    const job_info *job = job_get_info(ctx);
    const ag_config *cfg = job_config(ctx);
    char err[MCP_ERR_MESSAGE_MAX + 64] = "";
    bool bound, retryable;

    *output = NULL;
    long long timeout = call_timeout(cfg, t->deadline_ms, &bound);
    if (timeout <= 0) {
        errbuf_printf(msg, msg_size, "the run has no time left for a call of \"%s\"", t->tool);
        return MCP_CALL_FAILED;
    }
    mcp_pool_key key;
    memset(&key, 0, sizeof(key));
    snprintf(key.tenant, sizeof(key.tenant), "%s", job->tenant_id);
    snprintf(key.server, sizeof(key.server), "%s", t->server);
    snprintf(key.config_id, sizeof(key.config_id), "%s", t->config_id ? t->config_id : "");
    maker mk = {ctx, cfg};
    mcp_lease *lease;
    if (mcp_pool_acquire(&key, make_client, &mk, &lease, &retryable, err, sizeof(err)) < 0) {
        errbuf_printf(msg, msg_size, "the MCP server \"%s\" cannot be used: %s", t->server, err);
        return MCP_CALL_FAILED;
    }
    call_state st = {.ctx = ctx};
    mcp_lease_set_log(lease, on_log, &st);
    mcp_client *c = mcp_lease_client(lease);

    int rc = mcp_client_initialize(c, err, sizeof(err));
    if (rc != MCP_OK) {
        mcp_pool_release(lease, rc == MCP_ERR_PROTOCOL || rc == MCP_ERR_VERSION);
        errbuf_printf(msg, msg_size, "the MCP server \"%s\" cannot be reached: %s", t->server,
                      err);
        return MCP_CALL_FAILED;
    }
    mcp_call_options co = {
        .timeout_ms = call_timeout(cfg, t->deadline_ms, &bound),
        .on_progress = on_progress,
        .progress_user = &st,
        .is_cancelled = cancelled,
        .cancel_user = &st,
    };
    if (co.timeout_ms <= 0)
        co.timeout_ms = 1;
    mcp_call_result r;
    memset(&r, 0, sizeof(r));
    rc = mcp_client_call_tool(c, t->tool, args, &co, &r, err, sizeof(err));
    /* Heard during this call or the ones before it on this client. */
    bool tools_changed = mcp_client_tools_changed(c, true);
    mcp_pool_release(lease, rc == MCP_ERR_TIMEOUT || rc == MCP_ERR_PROTOCOL ||
                            rc == MCP_ERR_VERSION);
    if (tools_changed)
        mcp_refresh_queue(ctx, t->server);
    if (rc != MCP_OK) {
        failure_message(rc, t->server, t->tool, co.timeout_ms, bound, err, msg, msg_size);
        return MCP_CALL_FAILED;
    }
    *output = mcp_call_output(&r, result_cap(cfg));
    bool is_error = r.is_error;
    if (is_error) {
        strbuf b = {0};
        strbuf_add_flat(&b, r.text, ERROR_TEXT_MAX);
        errbuf_printf(msg, msg_size, "the tool \"%s\" of the MCP server \"%s\" reported an "
                      "error: %s", t->tool, t->server, b.s && *b.s ? b.s : "(no text)");
        strbuf_free(&b);
    }
    mcp_call_result_free(&r);
    if (!*output) {
        errbuf_printf(msg, msg_size, "out of memory");
        return MCP_CALL_FAILED;
    }
    return is_error ? MCP_CALL_TOOL_ERROR : MCP_CALL_DONE;
}
