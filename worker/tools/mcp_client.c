/*
 * mcp_client.c - the MCP client: lifecycle, tools/list, tools/call.
 *
 * Every request goes through one loop (wait_response): send it, then read
 * messages until the response with its id arrives, handling on the way
 * whatever else the server sends. Responses with other ids belong to
 * requests given up on earlier and are dropped; requests from the server
 * are answered at once (ping with {}, everything else with -32601);
 * notifications update progress, logs and the list-changed flag. The
 * loop reads in slices of MCP_CLIENT_POLL_MS so the caller's cancel check
 * runs between them, and it never waits past the request's deadline.
 *
 * Session handling sits one level up (rpc): make sure the transport is
 * connected and initialized, send, and when the HTTP server reports the
 * session gone, initialize again and retry once.
 *
 * Results are validated against the 2025-11-25 schema as far as this
 * client reads them, and cut to the configured sizes.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "jsonutil.h"
#include "log.h"
#include "mcp_client.h"
#include "strbuf.h"

#define CLIENT_NOTIFY_TIMEOUT_MS  5000      /* sending a notification or answer */
#define CLIENT_LOG_TEXT_MAX       4096
#define CLIENT_PROGRESS_MSG_MAX   512
#define CLIENT_INSTRUCTIONS_MAX   (64 * 1024)

struct mcp_client {
    mcp_transport *t;
    mcp_client_options opt;
    char client_version[64];
    bool initialized;
    char protocol_version[16];
    char *server_name;
    char *server_version;
    char *instructions;
    long long next_id;
    long long next_progress;    /* progress tokens, unique per client */
    bool tools_changed;
    long long last_rpc_code;
};

/* What a waiting request listens for besides its response. */
typedef struct wait_hooks {
    bool cancellable;           /* initialize must never be cancelled */
    const char *progress_token; /* or NULL */
    mcp_progress_fn on_progress;
    void *progress_user;
    mcp_cancel_fn is_cancelled;
    void *cancel_user;
    long long timeout_ms;       /* for the message when it runs out */
} wait_hooks;

static const char *name_of(const mcp_client *c)
{
    return c->t->name;
}

/* ---------- sending ---------- */

static int send_text(mcp_client *c, char *text, size_t len, long long deadline,
                     char *err, size_t err_size)
{
    if (!text) {
        errbuf_printf(err, err_size, "out of memory");
        return MCP_ERR_NOMEM;
    }
    int rc = c->t->ops->send(c->t, text, len, deadline, err, err_size);
    free(text);
    return rc;
}

static int send_notification(mcp_client *c, const char *method, cJSON *params,
                             char *err, size_t err_size)
{
    size_t len;
    char *text = mcp_jsonrpc_notification(method, params, &len);
    return send_text(c, text, len, clock_mono_ms() + CLIENT_NOTIFY_TIMEOUT_MS, err,
                     err_size);
}

/* Best effort: the server may have finished already, and the caller has
 * its error either way. */
static void send_cancelled(mcp_client *c, const mcp_id *id, const char *reason)
{
    cJSON *p = cJSON_CreateObject();
    bool ok = p != NULL;
    json_add_item(p, "requestId", mcp_id_to_json(id), &ok);
    json_add_str(p, "reason", reason, &ok);
    p = json_done(p, ok);
    char err[256];
    if (!p || send_notification(c, "notifications/cancelled", p, err, sizeof err) != MCP_OK)
        log_debug("mcp server %s: could not send notifications/cancelled: %s", name_of(c),
                  p ? err : "out of memory");
}

/* ---------- what the server sends while we wait ---------- */

static void answer_server_request(mcp_client *c, const mcp_message *m)
{
    size_t len;
    char *text;
    if (strcmp(m->method, "ping") == 0) {
        text = mcp_jsonrpc_result(&m->id, NULL, &len);
    } else {
        /* No sampling, elicitation or roots here: say so at once rather
         * than leave the server waiting on a call that never comes. */
        char msg[64 + MCP_METHOD_MAX];
        snprintf(msg, sizeof msg, "Method not found: %s", m->method);
        text = mcp_jsonrpc_error(&m->id, MCP_RPC_METHOD_NOT_FOUND, msg, &len);
        log_info("mcp server %s asked for %s; refused (not supported)", name_of(c),
                 m->method);
    }
    char err[256];
    if (send_text(c, text, len, clock_mono_ms() + CLIENT_NOTIFY_TIMEOUT_MS, err,
                  sizeof err) != MCP_OK)
        log_warn("mcp server %s: could not answer %s: %s", name_of(c), m->method, err);
}

static bool token_matches(const cJSON *tok, const char *want)
{
    return want && cJSON_IsString(tok) && strcmp(tok->valuestring, want) == 0;
}

static void on_progress(const mcp_message *m, const wait_hooks *hooks)
{
    if (!hooks->on_progress || !m->params)
        return;
    if (!token_matches(cJSON_GetObjectItemCaseSensitive(m->params, "progressToken"),
                       hooks->progress_token))
        return;
    const cJSON *progress = cJSON_GetObjectItemCaseSensitive(m->params, "progress");
    const cJSON *total = cJSON_GetObjectItemCaseSensitive(m->params, "total");
    const char *message = json_get_string(m->params, "message");
    if (!cJSON_IsNumber(progress) || !isfinite(progress->valuedouble))
        return;
    double t = cJSON_IsNumber(total) && isfinite(total->valuedouble) ? total->valuedouble : -1;
    strbuf b = {0};
    strbuf_add_flat(&b, message, CLIENT_PROGRESS_MSG_MAX);
    hooks->on_progress(hooks->progress_user, progress->valuedouble, t,
                       b.s && !b.oom ? b.s : NULL);
    strbuf_free(&b);
}

static bool log_level_ok(const char *level)
{
    static const char *const levels[] = {
        "debug", "info", "notice", "warning", "error", "critical", "alert", "emergency",
    };
    for (size_t i = 0; level && i < sizeof levels / sizeof levels[0]; i++)
        if (strcmp(level, levels[i]) == 0)
            return true;
    return false;
}

static void on_log_message(mcp_client *c, const mcp_message *m)
{
    const char *level = m->params ? json_get_string(m->params, "level") : NULL;
    if (!log_level_ok(level))
        return;
    const char *logger = json_get_string(m->params, "logger");
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(m->params, "data");
    char *printed = data && !cJSON_IsString(data) ? json_print(data) : NULL;
    const char *raw = cJSON_IsString(data) ? data->valuestring : printed;
    strbuf text = {0}, lg = {0};
    strbuf_add_flat(&text, raw ? raw : "", CLIENT_LOG_TEXT_MAX);
    strbuf_add_flat(&lg, logger, 128);
    if (!text.oom && !lg.oom) {
        const char *t = text.s ? text.s : "";
        if (c->opt.on_log)
            c->opt.on_log(c->opt.log_user, level, lg.s, t);
        else
            log_debug("mcp server %s log [%s]%s%s: %s", name_of(c), level,
                      lg.s ? " " : "", lg.s ? lg.s : "", t);
    }
    strbuf_free(&text);
    strbuf_free(&lg);
    free(printed);
}

static void handle_notification(mcp_client *c, const mcp_message *m, const wait_hooks *hooks)
{
    if (strcmp(m->method, "notifications/progress") == 0)
        on_progress(m, hooks);
    else if (strcmp(m->method, "notifications/message") == 0)
        on_log_message(c, m);
    else if (strcmp(m->method, "notifications/tools/list_changed") == 0)
        c->tools_changed = true;
    /* Others (resources, prompts, cancelled for requests we already
     * answered) concern features this client does not use. */
}

/* ---------- one request ---------- */

/* Takes the result out of a response (or the reason out of an error). */
static int take_response(mcp_client *c, mcp_message *m, const char *method, cJSON **result,
                         char *err, size_t err_size)
{
    if (m->kind == MCP_MSG_ERROR) {
        c->last_rpc_code = m->error_code;
        errbuf_printf(err, err_size, "MCP server %s refused %s: %s (%lld)", name_of(c),
                      method, m->error_message[0] ? m->error_message : "no message",
                      m->error_code);
        return MCP_ERR_RPC;
    }
    *result = cJSON_DetachItemFromObjectCaseSensitive(m->root, "result");
    if (!*result) {
        errbuf_printf(err, err_size, "out of memory");
        return MCP_ERR_NOMEM;
    }
    return MCP_OK;
}

/*
 * Reads messages until the response to id arrives or the wait ends.
 * Returns MCP_OK with *result, or an error (after notifications/cancelled
 * when the request is cancellable and was given up on).
 */
static int wait_response(mcp_client *c, const mcp_id *id, const char *method,
                         long long deadline, const wait_hooks *hooks, cJSON **result,
                         char *err, size_t err_size)
{
    for (;;) {
        if (hooks->cancellable && hooks->is_cancelled &&
            hooks->is_cancelled(hooks->cancel_user)) {
            send_cancelled(c, id, "cancelled by the caller");
            errbuf_printf(err, err_size, "%s on MCP server %s was cancelled", method,
                          name_of(c));
            return MCP_ERR_CANCELLED;
        }
        long long now = clock_mono_ms();
        if (now >= deadline) {
            if (hooks->cancellable)
                send_cancelled(c, id, "timed out");
            errbuf_printf(err, err_size, "MCP server %s did not answer %s within %lld ms",
                          name_of(c), method, hooks->timeout_ms);
            return MCP_ERR_TIMEOUT;
        }
        long long slice = now + MCP_CLIENT_POLL_MS < deadline ? now + MCP_CLIENT_POLL_MS
                                                              : deadline;
        char *text = NULL;
        size_t len = 0;
        int r = c->t->ops->receive(c->t, &text, &len, slice, err, err_size);
        if (r == 0)
            continue;
        if (r < 0)
            return r;

        mcp_message m;
        char why[256];
        int prc = mcp_jsonrpc_parse(text, len, (size_t)-1, &m, why, sizeof why);
        free(text);
        if (prc != MCP_OK) {
            if (hooks->cancellable)
                send_cancelled(c, id, "malformed message from the server");
            errbuf_printf(err, err_size, "MCP server %s sent a malformed message: %s",
                          name_of(c), why);
            return MCP_ERR_PROTOCOL;
        }
        int rc = 1;                     /* 1: keep waiting */
        if ((m.kind == MCP_MSG_RESULT || m.kind == MCP_MSG_ERROR) &&
            mcp_id_equal(&m.id, id)) {
            rc = take_response(c, &m, method, result, err, err_size);
        } else if (m.kind == MCP_MSG_ERROR && m.id.kind == MCP_ID_NONE) {
            /* The server could not read what we sent. */
            rc = take_response(c, &m, method, result, err, err_size);
        } else if (m.kind == MCP_MSG_RESULT || m.kind == MCP_MSG_ERROR) {
            char idtext[64];
            mcp_id_format(&m.id, idtext, sizeof idtext);
            log_debug("mcp server %s: dropped a late response to request %s", name_of(c),
                      idtext);
        } else if (m.kind == MCP_MSG_REQUEST) {
            answer_server_request(c, &m);
        } else {
            handle_notification(c, &m, hooks);
        }
        mcp_message_free(&m);
        if (rc != 1)
            return rc;
    }
}

/* Sends one request (params taken over) and waits for its result. */
static int request(mcp_client *c, const char *method, cJSON *params, long long deadline,
                   const wait_hooks *hooks, cJSON **result, char *err, size_t err_size)
{
    mcp_id id = { .kind = MCP_ID_NUM, .num = ++c->next_id };
    size_t len;
    char *text = mcp_jsonrpc_request(&id, method, params, &len);
    int rc = send_text(c, text, len, deadline, err, err_size);
    if (rc != MCP_OK)
        return rc;
    return wait_response(c, &id, method, deadline, hooks, result, err, err_size);
}

/* ---------- lifecycle ---------- */

static void forget_server(mcp_client *c)
{
    free(c->server_name);
    free(c->server_version);
    free(c->instructions);
    c->server_name = c->server_version = c->instructions = NULL;
    c->protocol_version[0] = '\0';
    c->initialized = false;
}

static char *dup_flat(const char *s, size_t max)
{
    strbuf b = {0};
    strbuf_add_flat(&b, s ? s : "", max);
    return strbuf_take(&b, NULL);
}

/* Cuts s to at most max bytes without splitting a UTF-8 sequence. */
static char *dup_bounded(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n > max) {
        n = max;
        while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
            n--;
    }
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

static cJSON *initialize_params(const mcp_client *c)
{
    bool ok = true;
    cJSON *p = cJSON_CreateObject();
    if (!p)
        return NULL;
    json_add_str(p, "protocolVersion", MCP_PROTOCOL_LATEST, &ok);
    /* No sampling, elicitation or roots: an empty capability object. */
    json_add_item(p, "capabilities", cJSON_CreateObject(), &ok);
    cJSON *info = cJSON_CreateObject();
    json_add_str(info, "name", MCP_CLIENT_NAME, &ok);
    json_add_str(info, "version", c->client_version, &ok);
    json_add_item(p, "clientInfo", info, &ok);
    return json_done(p, ok);
}

static int read_initialize_result(mcp_client *c, const cJSON *r, char *err, size_t err_size)
{
    const char *version = json_get_string(r, "protocolVersion");
    if (!version) {
        errbuf_printf(err, err_size, "MCP server %s: initialize result has no protocolVersion",
                      name_of(c));
        return MCP_ERR_PROTOCOL;
    }
    if (strcmp(version, MCP_PROTOCOL_LATEST) != 0 && strcmp(version, MCP_PROTOCOL_PREVIOUS) != 0) {
        strbuf b = {0};
        strbuf_add_flat(&b, version, 40);
        errbuf_printf(err, err_size,
                      "MCP server %s speaks protocol version %s; this client speaks "
                      MCP_PROTOCOL_LATEST " and " MCP_PROTOCOL_PREVIOUS,
                      name_of(c), b.s && !b.oom ? b.s : "?");
        strbuf_free(&b);
        return MCP_ERR_VERSION;
    }
    const cJSON *caps = cJSON_GetObjectItemCaseSensitive(r, "capabilities");
    const cJSON *info = cJSON_GetObjectItemCaseSensitive(r, "serverInfo");
    if (!cJSON_IsObject(caps) || !cJSON_IsObject(info) || !json_get_string(info, "name")) {
        errbuf_printf(err, err_size,
                      "MCP server %s: initialize result lacks capabilities or serverInfo.name",
                      name_of(c));
        return MCP_ERR_PROTOCOL;
    }
    const char *instructions = json_get_string(r, "instructions");
    snprintf(c->protocol_version, sizeof c->protocol_version, "%s", version);
    c->server_name = dup_flat(json_get_string(info, "name"), 128);
    c->server_version = dup_flat(json_get_string(info, "version"), 64);
    c->instructions = instructions ? dup_bounded(instructions, CLIENT_INSTRUCTIONS_MAX) : NULL;
    if (!c->server_name || !c->server_version || (instructions && !c->instructions)) {
        errbuf_printf(err, err_size, "out of memory");
        return MCP_ERR_NOMEM;
    }
    return MCP_OK;
}

static int run_initialize(mcp_client *c, long long deadline, char *err, size_t err_size)
{
    forget_server(c);
    cJSON *params = initialize_params(c);
    if (!params) {
        errbuf_printf(err, err_size, "out of memory");
        return MCP_ERR_NOMEM;
    }
    wait_hooks hooks = { .cancellable = false, .timeout_ms = deadline - clock_mono_ms() };
    cJSON *result = NULL;
    int rc = request(c, "initialize", params, deadline, &hooks, &result, err, err_size);
    if (rc == MCP_OK) {
        rc = read_initialize_result(c, result, err, err_size);
        cJSON_Delete(result);
    }
    if (rc == MCP_OK) {
        c->t->ops->set_protocol_version(c->t, c->protocol_version);
        rc = send_notification(c, "notifications/initialized", NULL, err, err_size);
    }
    if (rc != MCP_OK) {
        /* Whatever state the server is in, start from scratch next time. */
        forget_server(c);
        c->t->ops->reset(c->t);
        return rc;
    }
    c->initialized = true;
    log_info("mcp server %s: %s %s, protocol %s", name_of(c), c->server_name,
             c->server_version, c->protocol_version);
    return MCP_OK;
}

static int ensure_ready(mcp_client *c, long long deadline, char *err, size_t err_size)
{
    int r = c->t->ops->connect(c->t, deadline, err, err_size);
    if (r < 0)
        return r;
    if (r == 1 || !c->initialized)
        return run_initialize(c, deadline, err, err_size);
    return MCP_OK;
}

/*
 * A request on an initialized session; params is copied, not taken, so
 * it can be sent again after the HTTP server lost the session.
 */
static int rpc(mcp_client *c, const char *method, const cJSON *params, long long deadline,
               const wait_hooks *hooks, cJSON **result, char *err, size_t err_size)
{
    c->last_rpc_code = 0;
    for (int attempt = 0;; attempt++) {
        int rc = ensure_ready(c, deadline, err, err_size);
        if (rc != MCP_OK)
            return rc;
        cJSON *p = params ? cJSON_Duplicate(params, 1) : NULL;
        if (params && !p) {
            errbuf_printf(err, err_size, "out of memory");
            return MCP_ERR_NOMEM;
        }
        rc = request(c, method, p, deadline, hooks, result, err, err_size);
        if (rc != MCP_ERR_SESSION_LOST || attempt > 0)
            return rc;
        log_info("mcp server %s ended the session; initializing again", name_of(c));
        c->t->ops->reset(c->t);
        forget_server(c);
    }
}

/* ---------- public: lifecycle ---------- */

mcp_client *mcp_client_new(mcp_transport *t, const mcp_client_options *opt, char *err,
                           size_t err_size)
{
    if (!t) {
        errbuf_printf(err, err_size, "no transport");
        return NULL;
    }
    mcp_client *c = calloc(1, sizeof *c);
    if (!c) {
        t->ops->close(t);
        errbuf_printf(err, err_size, "out of memory");
        return NULL;
    }
    c->t = t;
    if (opt)
        c->opt = *opt;
    if (c->opt.request_timeout_ms <= 0)
        c->opt.request_timeout_ms = 30000;
    if (c->opt.call_timeout_ms <= 0)
        c->opt.call_timeout_ms = 60000;
    if (c->opt.max_tools == 0)
        c->opt.max_tools = 1000;
    if (c->opt.max_pages <= 0)
        c->opt.max_pages = 100;
    if (c->opt.max_result_bytes == 0)
        c->opt.max_result_bytes = 1024 * 1024;
    snprintf(c->client_version, sizeof c->client_version, "%s",
             c->opt.client_version ? c->opt.client_version : MCP_CLIENT_VERSION);
    c->opt.client_version = NULL;       /* copied; the caller's may go away */
    return c;
}

void mcp_client_free(mcp_client *c)
{
    if (!c)
        return;
    c->t->ops->close(c->t);
    forget_server(c);
    free(c);
}

int mcp_client_initialize(mcp_client *c, char *err, size_t err_size)
{
    return ensure_ready(c, clock_mono_ms() + c->opt.request_timeout_ms, err, err_size);
}

const char *mcp_client_protocol_version(const mcp_client *c)
{
    return c->protocol_version;
}

const char *mcp_client_server_name(const mcp_client *c)
{
    return c->server_name ? c->server_name : "";
}

const char *mcp_client_server_version(const mcp_client *c)
{
    return c->server_version ? c->server_version : "";
}

const char *mcp_client_instructions(const mcp_client *c)
{
    return c->instructions;
}

bool mcp_client_tools_changed(mcp_client *c, bool clear)
{
    bool changed = c->tools_changed;
    if (clear)
        c->tools_changed = false;
    return changed;
}

long long mcp_client_last_rpc_code(const mcp_client *c)
{
    return c->last_rpc_code;
}

int mcp_client_ping(mcp_client *c, char *err, size_t err_size)
{
    wait_hooks hooks = { .cancellable = true, .timeout_ms = c->opt.request_timeout_ms };
    cJSON *result = NULL;
    int rc = rpc(c, "ping", NULL, clock_mono_ms() + c->opt.request_timeout_ms, &hooks,
                 &result, err, err_size);
    cJSON_Delete(result);
    return rc;
}

/* ---------- tools/list ---------- */

bool mcp_tool_name_ok(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > MCP_TOOL_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = name[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' || ch == '-';
        if (!ok)
            return false;
    }
    return true;
}

static void free_tool(mcp_tool *t)
{
    free(t->name);
    free(t->title);
    free(t->description);
    cJSON_Delete(t->input_schema);
    cJSON_Delete(t->output_schema);
    memset(t, 0, sizeof *t);
}

void mcp_tool_list_free(mcp_tool_list *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->count; i++)
        free_tool(&l->tools[i]);
    free(l->tools);
    memset(l, 0, sizeof *l);
}

static bool schema_ok(const cJSON *s)
{
    const char *type = cJSON_IsObject(s) ? json_get_string(s, "type") : NULL;
    return type && strcmp(type, "object") == 0;
}

static mcp_hint read_hint(const cJSON *annotations, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(annotations, name);
    if (!cJSON_IsBool(v))
        return MCP_HINT_UNSET;          /* absent, or not the boolean it must be */
    return cJSON_IsTrue(v) ? MCP_HINT_TRUE : MCP_HINT_FALSE;
}

/* Reads one tool definition into *t. Returns NULL or why it is unusable. */
static const char *parse_tool(const cJSON *def, mcp_tool *t)
{
    memset(t, 0, sizeof *t);
    if (!cJSON_IsObject(def))
        return "not an object";
    const char *name = json_get_string(def, "name");
    if (!mcp_tool_name_ok(name))
        return "name is not 1-128 of [A-Za-z0-9_.-]";
    const cJSON *in = cJSON_GetObjectItemCaseSensitive(def, "inputSchema");
    if (!schema_ok(in))
        return "inputSchema is not an object schema";
    const cJSON *out = cJSON_GetObjectItemCaseSensitive(def, "outputSchema");
    if (out && !cJSON_IsNull(out) && !schema_ok(out))
        return "outputSchema is not an object schema";
    const cJSON *title = cJSON_GetObjectItemCaseSensitive(def, "title");
    const cJSON *desc = cJSON_GetObjectItemCaseSensitive(def, "description");
    if ((title && !cJSON_IsString(title) && !cJSON_IsNull(title)) ||
        (desc && !cJSON_IsString(desc) && !cJSON_IsNull(desc)))
        return "title or description is not a string";
    const cJSON *ann = cJSON_GetObjectItemCaseSensitive(def, "annotations");
    if (ann && !cJSON_IsObject(ann) && !cJSON_IsNull(ann))
        return "annotations is not an object";

    t->name = strdup(name);
    t->title = cJSON_IsString(title) ? dup_flat(title->valuestring, MCP_TOOL_TITLE_MAX) : NULL;
    t->description = cJSON_IsString(desc)
                     ? dup_bounded(desc->valuestring, MCP_TOOL_DESCRIPTION_MAX) : NULL;
    t->input_schema = cJSON_Duplicate(in, 1);
    t->output_schema = cJSON_IsObject(out) ? cJSON_Duplicate(out, 1) : NULL;
    t->read_only = read_hint(ann, "readOnlyHint");
    t->destructive = read_hint(ann, "destructiveHint");
    t->idempotent = read_hint(ann, "idempotentHint");
    t->open_world = read_hint(ann, "openWorldHint");
    if (!t->name || (cJSON_IsString(title) && !t->title) ||
        (cJSON_IsString(desc) && !t->description) || !t->input_schema ||
        (cJSON_IsObject(out) && !t->output_schema)) {
        free_tool(t);
        return "out of memory";
    }
    return NULL;
}

static bool have_tool(const mcp_tool_list *l, const char *name)
{
    for (size_t i = 0; i < l->count; i++)
        if (strcmp(l->tools[i].name, name) == 0)
            return true;
    return false;
}

/* Adds the tools of one page. Returns MCP_OK or an error. */
static int add_page(mcp_client *c, const cJSON *tools, mcp_tool_list *l, char *err,
                    size_t err_size)
{
    const cJSON *def;
    cJSON_ArrayForEach(def, tools) {
        mcp_tool t;
        const char *why = parse_tool(def, &t);
        if (why && strcmp(why, "out of memory") == 0) {
            errbuf_printf(err, err_size, "out of memory");
            return MCP_ERR_NOMEM;
        }
        if (!why && have_tool(l, t.name)) {
            free_tool(&t);
            why = "a tool of that name came before";
        }
        if (why) {
            const char *name = cJSON_IsObject(def) ? json_get_string(def, "name") : NULL;
            strbuf b = {0};
            strbuf_add_flat(&b, name ? name : "?", 64);
            log_warn("mcp server %s: skipped tool %s: %s", name_of(c),
                     b.s && !b.oom ? b.s : "?", why);
            strbuf_free(&b);
            l->skipped++;
            continue;
        }
        if (l->count >= c->opt.max_tools) {
            free_tool(&t);
            errbuf_printf(err, err_size, "MCP server %s lists more than %zu tools",
                          name_of(c), c->opt.max_tools);
            return MCP_ERR_TOO_LARGE;
        }
        mcp_tool *grown = realloc(l->tools, (l->count + 1) * sizeof *grown);
        if (!grown) {
            free_tool(&t);
            errbuf_printf(err, err_size, "out of memory");
            return MCP_ERR_NOMEM;
        }
        l->tools = grown;
        l->tools[l->count++] = t;
    }
    return MCP_OK;
}

/* Reads nextCursor into *next (malloc'd, NULL at the end). */
static int read_cursor(mcp_client *c, const cJSON *result, const char *prev, char **next,
                       char *err, size_t err_size)
{
    *next = NULL;
    const cJSON *cur = cJSON_GetObjectItemCaseSensitive(result, "nextCursor");
    if (!cur || cJSON_IsNull(cur))
        return MCP_OK;
    if (!cJSON_IsString(cur) || !cur->valuestring[0] ||
        strlen(cur->valuestring) > MCP_CURSOR_MAX) {
        errbuf_printf(err, err_size, "MCP server %s: nextCursor is not a string of 1-%d bytes",
                      name_of(c), MCP_CURSOR_MAX);
        return MCP_ERR_PROTOCOL;
    }
    if (prev && strcmp(prev, cur->valuestring) == 0) {
        errbuf_printf(err, err_size, "MCP server %s: tools/list repeats the same cursor",
                      name_of(c));
        return MCP_ERR_PROTOCOL;
    }
    if (!(*next = strdup(cur->valuestring))) {
        errbuf_printf(err, err_size, "out of memory");
        return MCP_ERR_NOMEM;
    }
    return MCP_OK;
}

int mcp_client_list_tools(mcp_client *c, mcp_tool_list *out, char *err, size_t err_size)
{
    memset(out, 0, sizeof *out);
    c->tools_changed = false;
    char *cursor = NULL;
    int rc = MCP_OK;
    for (int page = 0;; page++) {
        if (page >= c->opt.max_pages) {
            errbuf_printf(err, err_size, "MCP server %s: tools/list goes past %d pages",
                          name_of(c), c->opt.max_pages);
            rc = MCP_ERR_TOO_LARGE;
            break;
        }
        cJSON *params = NULL;
        if (cursor) {
            bool ok = (params = cJSON_CreateObject()) != NULL;
            json_add_str(params, "cursor", cursor, &ok);
            if (!(params = json_done(params, ok))) {
                errbuf_printf(err, err_size, "out of memory");
                rc = MCP_ERR_NOMEM;
                break;
            }
        }
        wait_hooks hooks = { .cancellable = true, .timeout_ms = c->opt.request_timeout_ms };
        cJSON *result = NULL;
        rc = rpc(c, "tools/list", params, clock_mono_ms() + c->opt.request_timeout_ms,
                 &hooks, &result, err, err_size);
        cJSON_Delete(params);
        if (rc != MCP_OK)
            break;
        const cJSON *tools = cJSON_GetObjectItemCaseSensitive(result, "tools");
        char *next = NULL;
        if (!cJSON_IsArray(tools)) {
            errbuf_printf(err, err_size, "MCP server %s: tools/list result has no tools array",
                          name_of(c));
            rc = MCP_ERR_PROTOCOL;
        } else {
            rc = add_page(c, tools, out, err, err_size);
            if (rc == MCP_OK)
                rc = read_cursor(c, result, cursor, &next, err, err_size);
        }
        cJSON_Delete(result);
        free(cursor);
        cursor = next;
        if (rc != MCP_OK || !cursor)
            break;
    }
    free(cursor);
    if (rc != MCP_OK)
        mcp_tool_list_free(out);
    return rc;
}

/* ---------- tools/call ---------- */

void mcp_call_result_free(mcp_call_result *r)
{
    if (!r)
        return;
    free(r->text);
    cJSON_Delete(r->structured);
    cJSON_Delete(r->raw);
    memset(r, 0, sizeof *r);
}

/* Appends n bytes of s while the text stays within cap, cutting before a
 * UTF-8 sequence rather than inside one. */
static void add_capped(strbuf *b, const char *s, size_t n, size_t cap, bool *truncated)
{
    if (*truncated)
        return;
    if (b->len + n > cap) {
        size_t room = cap > b->len ? cap - b->len : 0;
        while (room > 0 && ((unsigned char)s[room] & 0xc0) == 0x80)
            room--;
        n = room;
        *truncated = true;
    }
    strbuf_addn(b, s, n);
}

static const char *str_or(const cJSON *o, const char *name, const char *dflt)
{
    const char *s = json_get_string(o, name);
    return s ? s : dflt;
}

/* One line for a content item that is not text. */
static void summarise_item(strbuf *line, const char *type, const cJSON *item)
{
    strbuf flat = {0};
    if (strcmp(type, "image") == 0 || strcmp(type, "audio") == 0) {
        const char *data = json_get_string(item, "data");
        strbuf_add_flat(&flat, str_or(item, "mimeType", "unknown type"), 100);
        strbuf_addf(line, "[%s: %s, %zu bytes base64]", type, flat.s ? flat.s : "",
                    data ? strlen(data) : 0);
    } else if (strcmp(type, "resource_link") == 0) {
        strbuf_add_flat(&flat, str_or(item, "name", ""), 200);
        strbuf_add(&flat, " <");
        strbuf_add_flat(&flat, str_or(item, "uri", ""), 1000);
        strbuf_add(&flat, ">");
        strbuf_addf(line, "[resource link: %s]", flat.s ? flat.s : "");
    } else if (strcmp(type, "resource") == 0) {
        const cJSON *res = cJSON_GetObjectItemCaseSensitive(item, "resource");
        const char *body = json_get_string(res, "text");
        if (!body)
            body = json_get_string(res, "blob");
        strbuf_add_flat(&flat, str_or(res, "uri", ""), 1000);
        strbuf_add(&flat, " (");
        strbuf_add_flat(&flat, str_or(res, "mimeType", "unknown type"), 100);
        strbuf_add(&flat, ")");
        strbuf_addf(line, "[embedded resource: %s, %zu bytes]", flat.s ? flat.s : "",
                    body ? strlen(body) : 0);
    } else {
        strbuf_add_flat(&flat, type, 64);
        strbuf_addf(line, "[content of type %s]", flat.s ? flat.s : "");
    }
    strbuf_free(&flat);
}

static int build_text(mcp_client *c, const cJSON *content, mcp_call_result *out, strbuf *b,
                      char *err, size_t err_size)
{
    size_t cap = c->opt.max_result_bytes;
    size_t i = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, content) {
        const char *type = cJSON_IsObject(item) ? json_get_string(item, "type") : NULL;
        if (!type) {
            errbuf_printf(err, err_size, "MCP server %s: content item %zu has no type",
                          name_of(c), i);
            return MCP_ERR_PROTOCOL;
        }
        if (i > 0)
            add_capped(b, "\n", 1, cap, &out->truncated);
        if (strcmp(type, "text") == 0) {
            const char *text = json_get_string(item, "text");
            if (!text) {
                errbuf_printf(err, err_size, "MCP server %s: text item %zu has no text",
                              name_of(c), i);
                return MCP_ERR_PROTOCOL;
            }
            add_capped(b, text, strlen(text), cap, &out->truncated);
        } else {
            strbuf line = {0};
            summarise_item(&line, type, item);
            add_capped(b, line.s ? line.s : "", line.len, cap, &out->truncated);
            strbuf_free(&line);
        }
        i++;
    }
    out->content_count = i;
    return MCP_OK;
}

/* Keeps structuredContent unless it is larger than the text cap. */
static void keep_structured(mcp_client *c, cJSON *result, mcp_call_result *out, strbuf *b)
{
    cJSON *sc = cJSON_GetObjectItemCaseSensitive(result, "structuredContent");
    if (!cJSON_IsObject(sc))
        return;
    char *printed = json_print(sc);
    if (printed && strlen(printed) <= c->opt.max_result_bytes) {
        out->structured = cJSON_DetachItemViaPointer(result, sc);
    } else {
        out->truncated = true;
        strbuf_addf(b, "\n[structuredContent dropped: over %zu bytes]", c->opt.max_result_bytes);
    }
    free(printed);
}

static int read_call_result(mcp_client *c, cJSON *result, const mcp_call_options *opt,
                            mcp_call_result *out, char *err, size_t err_size)
{
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(result, "content");
    const cJSON *is_error = cJSON_GetObjectItemCaseSensitive(result, "isError");
    const cJSON *sc = cJSON_GetObjectItemCaseSensitive(result, "structuredContent");
    if ((content && !cJSON_IsArray(content)) || (!content && !cJSON_IsObject(sc))) {
        errbuf_printf(err, err_size, "MCP server %s: tools/call result has no content array",
                      name_of(c));
        return MCP_ERR_PROTOCOL;
    }
    if (is_error && !cJSON_IsBool(is_error)) {
        errbuf_printf(err, err_size, "MCP server %s: isError is not a boolean", name_of(c));
        return MCP_ERR_PROTOCOL;
    }
    if (sc && !cJSON_IsObject(sc) && !cJSON_IsNull(sc)) {
        errbuf_printf(err, err_size, "MCP server %s: structuredContent is not an object",
                      name_of(c));
        return MCP_ERR_PROTOCOL;
    }
    out->is_error = cJSON_IsTrue(is_error);
    strbuf b = {0};
    int rc = content ? build_text(c, content, out, &b, err, err_size) : MCP_OK;
    if (rc != MCP_OK) {
        strbuf_free(&b);
        return rc;
    }
    if (out->truncated)
        strbuf_addf(&b, "\n[truncated: the result exceeded %zu bytes]", c->opt.max_result_bytes);
    keep_structured(c, result, out, &b);
    out->text = strbuf_take(&b, &out->text_len);
    if (!out->text) {
        errbuf_printf(err, err_size, "out of memory");
        return MCP_ERR_NOMEM;
    }
    if (opt && opt->keep_raw)
        out->raw = result;
    else
        cJSON_Delete(result);
    return MCP_OK;
}

static cJSON *call_params(const char *name, const cJSON *arguments, const char *token)
{
    bool ok = true;
    cJSON *p = cJSON_CreateObject();
    if (!p)
        return NULL;
    json_add_str(p, "name", name, &ok);
    json_add_item(p, "arguments",
                  arguments ? cJSON_Duplicate(arguments, 1) : cJSON_CreateObject(), &ok);
    if (token) {
        cJSON *meta = cJSON_CreateObject();
        json_add_str(meta, "progressToken", token, &ok);
        json_add_item(p, "_meta", meta, &ok);
    }
    return json_done(p, ok);
}

int mcp_client_call_tool(mcp_client *c, const char *name, const cJSON *arguments,
                         const mcp_call_options *opt, mcp_call_result *out, char *err,
                         size_t err_size)
{
    memset(out, 0, sizeof *out);
    if (!mcp_tool_name_ok(name)) {
        errbuf_printf(err, err_size, "tool name must be 1-128 of [A-Za-z0-9_.-]");
        return MCP_ERR_INVALID;
    }
    if (arguments && !cJSON_IsObject(arguments)) {
        errbuf_printf(err, err_size, "tool arguments must be a JSON object");
        return MCP_ERR_INVALID;
    }
    long long timeout = opt && opt->timeout_ms > 0 ? opt->timeout_ms : c->opt.call_timeout_ms;
    char token[48];
    snprintf(token, sizeof token, "agentgate-progress-%lld", ++c->next_progress);
    bool want_progress = opt && opt->on_progress;
    cJSON *params = call_params(name, arguments, want_progress ? token : NULL);
    if (!params) {
        errbuf_printf(err, err_size, "out of memory");
        return MCP_ERR_NOMEM;
    }
    wait_hooks hooks = {
        .cancellable = true,
        .progress_token = token,
        .on_progress = want_progress ? opt->on_progress : NULL,
        .progress_user = opt ? opt->progress_user : NULL,
        .is_cancelled = opt ? opt->is_cancelled : NULL,
        .cancel_user = opt ? opt->cancel_user : NULL,
        .timeout_ms = timeout,
    };
    cJSON *result = NULL;
    int rc = rpc(c, "tools/call", params, clock_mono_ms() + timeout, &hooks, &result, err,
                 err_size);
    cJSON_Delete(params);
    if (rc != MCP_OK)
        return rc;
    rc = read_call_result(c, result, opt, out, err, err_size);
    if (rc != MCP_OK) {
        cJSON_Delete(result);
        mcp_call_result_free(out);
    }
    return rc;
}
