/*
 * test_mcp_client.c - the MCP client's protocol logic over a scripted
 * in-memory transport: version negotiation, the initialized notification,
 * pagination and its caps, tool validation, server requests (ping
 * answered, sampling and the rest refused with -32601), progress and log
 * notifications, list_changed, cancellation and timeouts (both send
 * notifications/cancelled), a lost HTTP session (initialize again, retry
 * once), a new connection (initialize again), late responses, malformed
 * messages, and how results are read and cut.
 *
 * The fake transport answers each message the client sends from a small
 * simulated server below, and records everything sent for the checks.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "clock.h"
#include "log.h"
#include "mcp_client.h"
#include "mcp_http.h"

#define MAX_Q 512

typedef struct fake {
    mcp_transport base;
    char *queue[MAX_Q];
    int qhead, qtail;
    char *sent[MAX_Q];
    int n_sent;
    int connect_result;         /* returned once by the next connect */
    int session_lost_calls;     /* tools/call sends that fail SESSION_LOST */
    int resets, inits;
    bool closed;
    char version[32];
    /* the simulated server */
    const char *init_version;
    int pages, per_page;
    bool loop_cursor;
    const char **call_script;   /* lines queued on tools/call; $ID is its id */
    const char *tool_defs;      /* a tools array for tools/list, or NULL */
} fake;

static fake *F;

static void push(fake *f, const char *text)
{
    assert_true(f->qtail < MAX_Q);
    f->queue[f->qtail++] = strdup(text);
}

/* Queues fmt with "$ID" replaced by the request's id. */
static void push_with_id(fake *f, const char *fmt, const mcp_id *id)
{
    char idtext[64];
    mcp_id_format(id, idtext, sizeof idtext);
    char out[16384];
    const char *at = strstr(fmt, "$ID");
    if (at)
        snprintf(out, sizeof out, "%.*s%s%s", (int)(at - fmt), fmt, idtext, at + 3);
    else
        snprintf(out, sizeof out, "%s", fmt);
    push(f, out);
}

static void serve_tools_list(fake *f, const mcp_message *m)
{
    if (f->tool_defs) {
        char body[8192];
        snprintf(body, sizeof body, "{\"jsonrpc\":\"2.0\",\"id\":$ID,\"result\":{\"tools\":%s}}",
                 f->tool_defs);
        push_with_id(f, body, &m->id);
        return;
    }
    const char *cursor = m->params ? cJSON_GetObjectItem(m->params, "cursor") ?
                         cJSON_GetObjectItem(m->params, "cursor")->valuestring : NULL : NULL;
    int page = cursor ? atoi(cursor + 1) : 0;
    cJSON *res = cJSON_CreateObject();
    cJSON *tools = cJSON_AddArrayToObject(res, "tools");
    for (int i = 0; i < f->per_page; i++) {
        char name[32];
        snprintf(name, sizeof name, "t%d_%d", page, i);
        cJSON *t = cJSON_CreateObject();
        cJSON_AddStringToObject(t, "name", name);
        cJSON *schema = cJSON_AddObjectToObject(t, "inputSchema");
        cJSON_AddStringToObject(schema, "type", "object");
        cJSON_AddItemToArray(tools, t);
    }
    if (f->loop_cursor) {
        cJSON_AddStringToObject(res, "nextCursor", "p1");
    } else if (page + 1 < f->pages) {
        char next[16];
        snprintf(next, sizeof next, "p%d", page + 1);
        cJSON_AddStringToObject(res, "nextCursor", next);
    }
    char *text = mcp_jsonrpc_result(&m->id, res, NULL);
    push(f, text);
    free(text);
}

static void serve(fake *f, const mcp_message *m)
{
    if (m->kind == MCP_MSG_NOTIFICATION || m->kind == MCP_MSG_RESULT ||
        m->kind == MCP_MSG_ERROR)
        return;
    if (strcmp(m->method, "initialize") == 0) {
        f->inits++;
        char body[512];
        snprintf(body, sizeof body,
                 "{\"jsonrpc\":\"2.0\",\"id\":$ID,\"result\":{\"protocolVersion\":\"%s\","
                 "\"capabilities\":{\"tools\":{}},\"serverInfo\":{\"name\":\"fake\","
                 "\"version\":\"9\"},\"instructions\":\"be nice\"}}", f->init_version);
        push_with_id(f, body, &m->id);
    } else if (strcmp(m->method, "tools/list") == 0) {
        serve_tools_list(f, m);
    } else if (strcmp(m->method, "tools/call") == 0) {
        for (const char **line = f->call_script; line && *line; line++)
            push_with_id(f, *line, &m->id);
    } else if (strcmp(m->method, "ping") == 0) {
        push_with_id(f, "{\"jsonrpc\":\"2.0\",\"id\":$ID,\"result\":{}}", &m->id);
    }
}

static int fake_connect(mcp_transport *t, long long deadline, char *err, size_t n)
{
    fake *f = (fake *)t;
    int r = f->connect_result;
    f->connect_result = 0;
    return r;
}

static int fake_send(mcp_transport *t, const char *msg, size_t len, long long deadline,
                     char *err, size_t n)
{
    fake *f = (fake *)t;
    assert_null(memchr(msg, '\n', len));
    assert_true(f->n_sent < MAX_Q);
    f->sent[f->n_sent++] = strdup(msg);
    mcp_message m;
    assert_int_equal(mcp_jsonrpc_parse(msg, len, MCP_MSG_MAX_DEFAULT, &m, NULL, 0), MCP_OK);
    if (m.kind == MCP_MSG_REQUEST && strcmp(m.method, "tools/call") == 0 &&
        f->session_lost_calls > 0) {
        f->session_lost_calls--;
        mcp_message_free(&m);
        snprintf(err, n, "session gone");
        return MCP_ERR_SESSION_LOST;
    }
    serve(f, &m);
    mcp_message_free(&m);
    return MCP_OK;
}

static int fake_receive(mcp_transport *t, char **msg, size_t *len, long long deadline,
                        char *err, size_t n)
{
    fake *f = (fake *)t;
    if (f->qhead < f->qtail) {
        *msg = f->queue[f->qhead];
        f->queue[f->qhead++] = NULL;
        *len = strlen(*msg);
        return 1;
    }
    long long left = deadline - clock_mono_ms();
    if (left > 0)
        clock_sleep_ms(left);
    return 0;
}

static void fake_set_version(mcp_transport *t, const char *v)
{
    snprintf(((fake *)t)->version, sizeof ((fake *)t)->version, "%s", v);
}

static void fake_reset(mcp_transport *t)
{
    ((fake *)t)->resets++;
}

static void fake_close(mcp_transport *t)
{
    ((fake *)t)->closed = true;    /* freed by the test's teardown */
}

static const mcp_transport_ops fake_ops = {
    fake_connect, fake_send, fake_receive, fake_set_version, fake_reset, fake_close,
};

static int setup(void **state)
{
    F = calloc(1, sizeof *F);
    F->base.ops = &fake_ops;
    snprintf(F->base.name, sizeof F->base.name, "fake");
    F->connect_result = 1;
    F->init_version = MCP_PROTOCOL_LATEST;
    F->pages = 1;
    F->per_page = 2;
    return 0;
}

static int teardown(void **state)
{
    for (int i = 0; i < F->n_sent; i++)
        free(F->sent[i]);
    for (int i = F->qhead; i < F->qtail; i++)
        free(F->queue[i]);
    free(F);
    F = NULL;
    return 0;
}

static mcp_client *new_client(const mcp_client_options *opt)
{
    char err[256];
    mcp_client *c = mcp_client_new(&F->base, opt, err, sizeof err);
    assert_non_null(c);
    return c;
}

/* The n-th sent message whose method is method (n from 0), or NULL. */
static cJSON *sent_with_method(const char *method, int n)
{
    for (int i = 0; i < F->n_sent; i++) {
        cJSON *j = cJSON_Parse(F->sent[i]);
        const cJSON *m = cJSON_GetObjectItem(j, "method");
        if (cJSON_IsString(m) && strcmp(m->valuestring, method) == 0 && n-- == 0)
            return j;
        cJSON_Delete(j);
    }
    return NULL;
}

/* The n-th sent response (to a server request), or NULL. */
static cJSON *sent_response(int n)
{
    for (int i = 0; i < F->n_sent; i++) {
        cJSON *j = cJSON_Parse(F->sent[i]);
        if (!cJSON_GetObjectItem(j, "method") && n-- == 0)
            return j;
        cJSON_Delete(j);
    }
    return NULL;
}

static void test_initialize_negotiates_latest(void **state)
{
    mcp_client *c = new_client(NULL);
    char err[256] = "";
    assert_int_equal(mcp_client_initialize(c, err, sizeof err), MCP_OK);
    assert_string_equal(mcp_client_protocol_version(c), MCP_PROTOCOL_LATEST);
    assert_string_equal(mcp_client_server_name(c), "fake");
    assert_string_equal(mcp_client_server_version(c), "9");
    assert_string_equal(mcp_client_instructions(c), "be nice");
    assert_string_equal(F->version, MCP_PROTOCOL_LATEST);

    cJSON *init = sent_with_method("initialize", 0);
    assert_non_null(init);
    cJSON *p = cJSON_GetObjectItem(init, "params");
    assert_string_equal(cJSON_GetObjectItem(p, "protocolVersion")->valuestring, "2025-11-25");
    cJSON *caps = cJSON_GetObjectItem(p, "capabilities");
    assert_true(cJSON_IsObject(caps));
    assert_null(caps->child);                   /* no sampling, elicitation, roots */
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(p, "clientInfo"), "name")
                        ->valuestring, "agentgate");
    cJSON_Delete(init);
    cJSON *done = sent_with_method("notifications/initialized", 0);
    assert_non_null(done);
    assert_null(cJSON_GetObjectItem(done, "id"));
    cJSON_Delete(done);

    /* Already initialized: nothing more is sent. */
    int before = F->n_sent;
    assert_int_equal(mcp_client_initialize(c, err, sizeof err), MCP_OK);
    assert_int_equal(F->n_sent, before);
    mcp_client_free(c);
    assert_true(F->closed);
}

static void test_initialize_accepts_previous_version(void **state)
{
    F->init_version = MCP_PROTOCOL_PREVIOUS;
    mcp_client *c = new_client(NULL);
    char err[256];
    assert_int_equal(mcp_client_initialize(c, err, sizeof err), MCP_OK);
    assert_string_equal(mcp_client_protocol_version(c), "2025-06-18");
    assert_string_equal(F->version, "2025-06-18");
    mcp_client_free(c);
}

static void test_initialize_refuses_other_versions(void **state)
{
    F->init_version = "2024-11-05";
    mcp_client *c = new_client(NULL);
    char err[256] = "";
    assert_int_equal(mcp_client_initialize(c, err, sizeof err), MCP_ERR_VERSION);
    assert_non_null(strstr(err, "2024-11-05"));
    assert_int_equal(F->resets, 1);             /* disconnected */
    cJSON *done = sent_with_method("notifications/initialized", 0);
    assert_null(done);
    mcp_client_free(c);
}

static void test_list_tools_paginates(void **state)
{
    F->pages = 3;
    F->per_page = 4;
    mcp_client *c = new_client(NULL);
    mcp_tool_list l;
    char err[256] = "";
    assert_int_equal(mcp_client_list_tools(c, &l, err, sizeof err), MCP_OK);
    assert_int_equal(l.count, 12);
    assert_string_equal(l.tools[0].name, "t0_0");
    assert_string_equal(l.tools[11].name, "t2_3");
    cJSON *second = sent_with_method("tools/list", 1);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(second, "params"), "cursor")
                        ->valuestring, "p1");
    cJSON_Delete(second);
    cJSON *first = sent_with_method("tools/list", 0);
    assert_null(cJSON_GetObjectItem(first, "params"));    /* no cursor on page one */
    cJSON_Delete(first);
    mcp_tool_list_free(&l);
    mcp_client_free(c);
}

static void test_list_tools_caps(void **state)
{
    F->pages = 3;
    F->per_page = 4;
    mcp_client_options opt = { .max_tools = 10 };
    mcp_client *c = new_client(&opt);
    mcp_tool_list l;
    char err[256] = "";
    assert_int_equal(mcp_client_list_tools(c, &l, err, sizeof err), MCP_ERR_TOO_LARGE);
    assert_non_null(strstr(err, "more than 10 tools"));
    assert_int_equal(l.count, 0);
    assert_null(l.tools);
    mcp_client_free(c);

    teardown(state);
    setup(state);
    F->pages = 5;
    F->per_page = 1;
    mcp_client_options opt2 = { .max_pages = 3 };
    c = new_client(&opt2);
    assert_int_equal(mcp_client_list_tools(c, &l, err, sizeof err), MCP_ERR_TOO_LARGE);
    assert_non_null(strstr(err, "3 pages"));
    mcp_client_free(c);

    teardown(state);
    setup(state);
    F->loop_cursor = true;
    c = new_client(NULL);
    assert_int_equal(mcp_client_list_tools(c, &l, err, sizeof err), MCP_ERR_PROTOCOL);
    assert_non_null(strstr(err, "same cursor"));
    mcp_client_free(c);
}

static void test_tool_definitions_validated(void **state)
{
    F->tool_defs =
        "[{\"name\":\"ok.tool_1-x\",\"title\":\"OK\",\"description\":\"does\\nthings\","
        "\"inputSchema\":{\"type\":\"object\"},\"outputSchema\":{\"type\":\"object\"},"
        "\"annotations\":{\"readOnlyHint\":true,\"destructiveHint\":false,"
        "\"idempotentHint\":\"yes\"}},"
        "{\"name\":\"no spaces\",\"inputSchema\":{\"type\":\"object\"}},"
        "{\"name\":\"no_schema\"},"
        "{\"name\":\"string_schema\",\"inputSchema\":{\"type\":\"string\"}},"
        "{\"name\":\"bad_output\",\"inputSchema\":{\"type\":\"object\"},\"outputSchema\":5},"
        "{\"name\":\"bad_desc\",\"inputSchema\":{\"type\":\"object\"},\"description\":7},"
        "{\"name\":\"ok.tool_1-x\",\"inputSchema\":{\"type\":\"object\"}},"
        "{\"name\":\"\",\"inputSchema\":{\"type\":\"object\"}},"
        "\"not an object\","
        "{\"name\":\"plain\",\"inputSchema\":{\"type\":\"object\"},\"annotations\":null}]";
    mcp_client *c = new_client(NULL);
    mcp_tool_list l;
    char err[256] = "";
    assert_int_equal(mcp_client_list_tools(c, &l, err, sizeof err), MCP_OK);
    assert_int_equal(l.count, 2);
    assert_int_equal(l.skipped, 8);
    const mcp_tool *t = &l.tools[0];
    assert_string_equal(t->name, "ok.tool_1-x");
    assert_string_equal(t->title, "OK");
    assert_string_equal(t->description, "does\nthings");
    assert_non_null(t->output_schema);
    assert_int_equal(t->read_only, MCP_HINT_TRUE);
    assert_int_equal(t->destructive, MCP_HINT_FALSE);
    assert_int_equal(t->idempotent, MCP_HINT_UNSET);    /* not a boolean */
    assert_int_equal(t->open_world, MCP_HINT_UNSET);
    assert_string_equal(l.tools[1].name, "plain");
    assert_null(l.tools[1].description);
    mcp_tool_list_free(&l);
    mcp_client_free(c);
}

static void test_tool_name_rule(void **state)
{
    char name[MCP_TOOL_NAME_MAX + 2];
    memset(name, 'a', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    assert_false(mcp_tool_name_ok(name));
    name[MCP_TOOL_NAME_MAX] = '\0';
    assert_true(mcp_tool_name_ok(name));
    assert_true(mcp_tool_name_ok("admin.tools.list"));
    assert_false(mcp_tool_name_ok(""));
    assert_false(mcp_tool_name_ok(NULL));
    assert_false(mcp_tool_name_ok("a/b"));
    assert_false(mcp_tool_name_ok("a,b"));
    assert_false(mcp_tool_name_ok("caf\xc3\xa9"));
}

static const char *sampling_script[] = {
    "{\"jsonrpc\":\"2.0\",\"id\":\"s1\",\"method\":\"sampling/createMessage\","
    "\"params\":{\"messages\":[]}}",
    "{\"jsonrpc\":\"2.0\",\"id\":77,\"method\":\"elicitation/create\",\"params\":{}}",
    "{\"jsonrpc\":\"2.0\",\"id\":\"r\",\"method\":\"roots/list\"}",
    "{\"jsonrpc\":\"2.0\",\"id\":\"p\",\"method\":\"ping\"}",
    "{\"jsonrpc\":\"2.0\",\"id\":$ID,\"result\":{\"content\":[{\"type\":\"text\","
    "\"text\":\"done\"}]}}",
    NULL,
};

static void test_server_requests_answered(void **state)
{
    F->call_script = sampling_script;
    mcp_client *c = new_client(NULL);
    mcp_call_result r;
    char err[256] = "";
    assert_int_equal(mcp_client_call_tool(c, "x", NULL, NULL, &r, err, sizeof err), MCP_OK);
    assert_string_equal(r.text, "done");
    mcp_call_result_free(&r);

    const char *ids[] = { "\"s1\"", "77", "\"r\"" };
    for (int i = 0; i < 3; i++) {
        cJSON *resp = sent_response(i);
        assert_non_null(resp);
        char *id = cJSON_PrintUnformatted(cJSON_GetObjectItem(resp, "id"));
        assert_string_equal(id, ids[i]);
        free(id);
        assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(resp, "error"), "code")
                         ->valueint, -32601);
        cJSON_Delete(resp);
    }
    cJSON *pong = sent_response(3);
    assert_string_equal(cJSON_GetObjectItem(pong, "id")->valuestring, "p");
    assert_true(cJSON_IsObject(cJSON_GetObjectItem(pong, "result")));
    cJSON_Delete(pong);
    mcp_client_free(c);
}

typedef struct progress_seen {
    int n;
    double last, total;
    char message[64];
} progress_seen;

static void record_progress(void *user, double progress, double total, const char *message)
{
    progress_seen *p = user;
    p->n++;
    p->last = progress;
    p->total = total;
    snprintf(p->message, sizeof p->message, "%s", message ? message : "");
}

static const char *progress_script[] = {
    "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":"
    "{\"progressToken\":\"agentgate-progress-1\",\"progress\":1,\"total\":3}}",
    "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":"
    "{\"progressToken\":\"someone-else\",\"progress\":9}}",
    "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":"
    "{\"progressToken\":\"agentgate-progress-1\",\"progress\":2.5,\"message\":\"almost\\n\"}}",
    "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":"
    "{\"level\":\"warning\",\"logger\":\"db\",\"data\":{\"k\":1}}}",
    "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":"
    "{\"level\":\"shouting\",\"data\":\"bad level\"}}",
    "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/tools/list_changed\"}",
    "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/resources/updated\",\"params\":{}}",
    "{\"jsonrpc\":\"2.0\",\"id\":$ID,\"result\":{\"content\":[]}}",
    NULL,
};

typedef struct log_seen {
    int n;
    char text[256];
} log_seen;

static void record_log(void *user, const char *level, const char *logger, const char *text)
{
    log_seen *l = user;
    l->n++;
    snprintf(l->text, sizeof l->text, "%s %s %s", level, logger ? logger : "-", text);
}

static void test_progress_logs_and_list_changed(void **state)
{
    F->call_script = progress_script;
    log_seen logs = {0};
    mcp_client_options copt = { .on_log = record_log, .log_user = &logs };
    mcp_client *c = new_client(&copt);
    progress_seen p = {0};
    mcp_call_options opt = { .on_progress = record_progress, .progress_user = &p };
    mcp_call_result r;
    char err[256] = "";
    assert_int_equal(mcp_client_call_tool(c, "x", NULL, &opt, &r, err, sizeof err), MCP_OK);
    assert_int_equal(p.n, 2);
    assert_true(p.last == 2.5);
    assert_true(p.total == -1);
    assert_string_equal(p.message, "almost");
    assert_int_equal(logs.n, 1);
    assert_string_equal(logs.text, "warning db {\"k\":1}");
    assert_true(mcp_client_tools_changed(c, true));
    assert_false(mcp_client_tools_changed(c, false));
    assert_string_equal(r.text, "");
    mcp_call_result_free(&r);

    cJSON *call = sent_with_method("tools/call", 0);
    cJSON *meta = cJSON_GetObjectItem(cJSON_GetObjectItem(call, "params"), "_meta");
    assert_string_equal(cJSON_GetObjectItem(meta, "progressToken")->valuestring,
                        "agentgate-progress-1");
    assert_true(cJSON_IsObject(cJSON_GetObjectItem(cJSON_GetObjectItem(call, "params"),
                                                   "arguments")));
    cJSON_Delete(call);
    mcp_client_free(c);
}

static int polls;

static bool cancel_after_three(void *user)
{
    return ++polls > 3;
}

static void test_cancel_sends_cancelled(void **state)
{
    polls = 0;
    mcp_client *c = new_client(NULL);
    mcp_call_options opt = { .is_cancelled = cancel_after_three, .timeout_ms = 10000 };
    mcp_call_result r;
    char err[256] = "";
    long long t0 = clock_mono_ms();
    assert_int_equal(mcp_client_call_tool(c, "slow", NULL, &opt, &r, err, sizeof err),
                     MCP_ERR_CANCELLED);
    long long took = clock_mono_ms() - t0;
    assert_true(took >= 2 * MCP_CLIENT_POLL_MS && took < 2000);
    assert_non_null(strstr(err, "cancelled"));
    cJSON *call = sent_with_method("tools/call", 0);
    cJSON *cancel = sent_with_method("notifications/cancelled", 0);
    assert_non_null(cancel);
    cJSON *cp = cJSON_GetObjectItem(cancel, "params");
    assert_int_equal(cJSON_GetObjectItem(cp, "requestId")->valueint,
                     cJSON_GetObjectItem(call, "id")->valueint);
    assert_non_null(cJSON_GetObjectItem(cp, "reason"));
    cJSON_Delete(call);
    cJSON_Delete(cancel);
    mcp_client_free(c);
}

static const char *late_script[] = {
    "{\"jsonrpc\":\"2.0\",\"id\":999,\"result\":{\"content\":[]}}",     /* someone else's */
    NULL,
};

static void test_timeout_sends_cancelled(void **state)
{
    F->call_script = late_script;
    mcp_client *c = new_client(NULL);
    mcp_call_options opt = { .timeout_ms = 200 };
    mcp_call_result r;
    char err[256] = "";
    long long t0 = clock_mono_ms();
    assert_int_equal(mcp_client_call_tool(c, "slow", NULL, &opt, &r, err, sizeof err),
                     MCP_ERR_TIMEOUT);
    long long took = clock_mono_ms() - t0;
    assert_true(took >= 200 && took < 1000);
    assert_non_null(strstr(err, "within 200 ms"));
    cJSON *cancel = sent_with_method("notifications/cancelled", 0);
    assert_non_null(cancel);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(cancel, "params"), "reason")
                        ->valuestring, "timed out");
    cJSON_Delete(cancel);
    mcp_client_free(c);
}

static const char *echo_script[] = {
    "{\"jsonrpc\":\"2.0\",\"id\":$ID,\"result\":{\"content\":[{\"type\":\"text\","
    "\"text\":\"ok\"}]}}",
    NULL,
};

static void test_session_lost_reinitializes_once(void **state)
{
    F->call_script = echo_script;
    F->session_lost_calls = 1;
    mcp_client *c = new_client(NULL);
    mcp_call_result r;
    char err[256] = "";
    assert_int_equal(mcp_client_call_tool(c, "x", NULL, NULL, &r, err, sizeof err), MCP_OK);
    assert_string_equal(r.text, "ok");
    mcp_call_result_free(&r);
    assert_int_equal(F->inits, 2);
    assert_int_equal(F->resets, 1);

    /* Lost twice in a row: the retry is not repeated. */
    F->session_lost_calls = 2;
    assert_int_equal(mcp_client_call_tool(c, "x", NULL, NULL, &r, err, sizeof err),
                     MCP_ERR_SESSION_LOST);
    assert_int_equal(F->inits, 3);
    mcp_client_free(c);
}

static void test_new_connection_reinitializes(void **state)
{
    F->call_script = echo_script;
    mcp_client *c = new_client(NULL);
    mcp_call_result r;
    char err[256] = "";
    assert_int_equal(mcp_client_call_tool(c, "x", NULL, NULL, &r, err, sizeof err), MCP_OK);
    mcp_call_result_free(&r);
    assert_int_equal(F->inits, 1);
    F->connect_result = 1;                      /* e.g. a restarted stdio server */
    assert_int_equal(mcp_client_call_tool(c, "x", NULL, NULL, &r, err, sizeof err), MCP_OK);
    mcp_call_result_free(&r);
    assert_int_equal(F->inits, 2);
    mcp_client_free(c);
}

static const char *malformed_script[] = { "{\"jsonrpc\":\"2.0\",\"id\":", NULL };
static const char *rpc_error_script[] = {
    "{\"jsonrpc\":\"2.0\",\"id\":$ID,\"error\":{\"code\":-32602,\"message\":\"Unknown tool\"}}",
    NULL,
};

static void test_malformed_and_rpc_errors(void **state)
{
    F->call_script = malformed_script;
    mcp_client *c = new_client(NULL);
    mcp_call_result r;
    char err[256] = "";
    assert_int_equal(mcp_client_call_tool(c, "x", NULL, NULL, &r, err, sizeof err),
                     MCP_ERR_PROTOCOL);
    assert_non_null(strstr(err, "malformed"));

    F->call_script = rpc_error_script;
    assert_int_equal(mcp_client_call_tool(c, "x", NULL, NULL, &r, err, sizeof err),
                     MCP_ERR_RPC);
    assert_non_null(strstr(err, "Unknown tool"));
    assert_int_equal(mcp_client_last_rpc_code(c), -32602);
    mcp_client_free(c);
}

static void test_invalid_call_arguments(void **state)
{
    mcp_client *c = new_client(NULL);
    mcp_call_result r;
    char err[256] = "";
    assert_int_equal(mcp_client_call_tool(c, "bad name", NULL, NULL, &r, err, sizeof err),
                     MCP_ERR_INVALID);
    cJSON *arr = cJSON_CreateArray();
    assert_int_equal(mcp_client_call_tool(c, "x", arr, NULL, &r, err, sizeof err),
                     MCP_ERR_INVALID);
    cJSON_Delete(arr);
    assert_int_equal(F->n_sent, 0);             /* refused before connecting */
    mcp_client_free(c);
}

static const char *mixed_script[] = {
    "{\"jsonrpc\":\"2.0\",\"id\":$ID,\"result\":{\"content\":["
    "{\"type\":\"text\",\"text\":\"one\"},"
    "{\"type\":\"image\",\"data\":\"AAAA\",\"mimeType\":\"image/png\"},"
    "{\"type\":\"audio\",\"data\":\"BB\",\"mimeType\":\"audio/wav\"},"
    "{\"type\":\"resource_link\",\"uri\":\"file:///a\",\"name\":\"a\"},"
    "{\"type\":\"resource\",\"resource\":{\"uri\":\"file:///b\",\"mimeType\":\"text/plain\","
    "\"text\":\"hello\"}},"
    "{\"type\":\"hologram\"},"
    "{\"type\":\"text\",\"text\":\"two\"}],"
    "\"isError\":true,\"structuredContent\":{\"n\":1}}}",
    NULL,
};

static void test_result_content_summarised(void **state)
{
    F->call_script = mixed_script;
    mcp_client *c = new_client(NULL);
    mcp_call_options opt = { .keep_raw = true };
    mcp_call_result r;
    char err[256] = "";
    assert_int_equal(mcp_client_call_tool(c, "x", NULL, &opt, &r, err, sizeof err), MCP_OK);
    assert_true(r.is_error);
    assert_false(r.truncated);
    assert_int_equal(r.content_count, 7);
    assert_string_equal(r.text,
                        "one\n[image: image/png, 4 bytes base64]\n"
                        "[audio: audio/wav, 2 bytes base64]\n"
                        "[resource link: a <file:///a>]\n"
                        "[embedded resource: file:///b (text/plain), 5 bytes]\n"
                        "[content of type hologram]\ntwo");
    assert_int_equal(r.text_len, strlen(r.text));
    assert_int_equal(cJSON_GetObjectItem(r.structured, "n")->valueint, 1);
    assert_non_null(r.raw);
    assert_non_null(cJSON_GetObjectItem(r.raw, "content"));
    mcp_call_result_free(&r);
    mcp_client_free(c);
}

static char big_line[8192];
static const char *big_script[] = { big_line, NULL };

static void test_result_truncated(void **state)
{
    char text[3000];
    memset(text, 'x', sizeof text - 1);
    text[sizeof text - 1] = '\0';
    text[99] = '\xc3';                          /* a two-byte character across the cut */
    text[100] = '\xa9';
    snprintf(big_line, sizeof big_line,
             "{\"jsonrpc\":\"2.0\",\"id\":$ID,\"result\":{\"content\":[{\"type\":\"text\","
             "\"text\":\"%s\"}],\"structuredContent\":{\"long\":\"%s\"}}}", text, text);
    F->call_script = big_script;
    mcp_client_options copt = { .max_result_bytes = 100 };
    mcp_client *c = new_client(&copt);
    mcp_call_result r;
    char err[256] = "";
    assert_int_equal(mcp_client_call_tool(c, "x", NULL, NULL, &r, err, sizeof err), MCP_OK);
    assert_true(r.truncated);
    assert_null(r.structured);                  /* too big to keep */
    assert_int_equal(strspn(r.text, "x"), 99);  /* cut before the split character */
    assert_non_null(strstr(r.text, "[truncated: the result exceeded 100 bytes]"));
    assert_non_null(strstr(r.text, "[structuredContent dropped: over 100 bytes]"));
    mcp_call_result_free(&r);
    mcp_client_free(c);
}

static const char *bad_result_scripts[][2] = {
    { "{\"jsonrpc\":\"2.0\",\"id\":$ID,\"result\":{\"content\":{}}}", NULL },
    { "{\"jsonrpc\":\"2.0\",\"id\":$ID,\"result\":{}}", NULL },
    { "{\"jsonrpc\":\"2.0\",\"id\":$ID,\"result\":{\"content\":[],\"isError\":\"no\"}}", NULL },
    { "{\"jsonrpc\":\"2.0\",\"id\":$ID,\"result\":{\"content\":[{\"text\":\"x\"}]}}", NULL },
    { "{\"jsonrpc\":\"2.0\",\"id\":$ID,\"result\":{\"content\":[{\"type\":\"text\"}]}}", NULL },
    { "{\"jsonrpc\":\"2.0\",\"id\":$ID,\"result\":{\"content\":[],\"structuredContent\":[1]}}",
      NULL },
};

static void test_bad_results_refused(void **state)
{
    mcp_client *c = new_client(NULL);
    for (size_t i = 0; i < sizeof bad_result_scripts / sizeof bad_result_scripts[0]; i++) {
        F->call_script = bad_result_scripts[i];
        mcp_call_result r;
        char err[256] = "";
        if (mcp_client_call_tool(c, "x", NULL, NULL, &r, err, sizeof err) != MCP_ERR_PROTOCOL)
            fail_msg("script %zu was accepted", i);
        assert_null(r.text);
    }
    mcp_client_free(c);
}

static void test_ping(void **state)
{
    mcp_client *c = new_client(NULL);
    char err[256] = "";
    assert_int_equal(mcp_client_ping(c, err, sizeof err), MCP_OK);
    cJSON *ping = sent_with_method("ping", 0);
    assert_non_null(ping);
    cJSON_Delete(ping);
    mcp_client_free(c);
}

/* The HTTP transport's configuration checks, which need no server. */
static void test_http_config_checked(void **state)
{
    char err[256] = "";
    mcp_http_config cfg = { .url = "ftp://example/mcp" };
    assert_null(mcp_http_open(&cfg, err, sizeof err));
    assert_non_null(strstr(err, "http"));
    cfg.url = "http://127.0.0.1:1/mcp with space";
    assert_null(mcp_http_open(&cfg, err, sizeof err));

    cfg.url = "http://127.0.0.1:1/mcp";
    const char *reserved[] = { "Mcp-Session-Id: x", NULL };
    cfg.headers = reserved;
    assert_null(mcp_http_open(&cfg, err, sizeof err));
    assert_non_null(strstr(err, "set by the MCP client"));
    const char *no_colon[] = { "Authorization Bearer x", NULL };
    cfg.headers = no_colon;
    assert_null(mcp_http_open(&cfg, err, sizeof err));
    const char *crlf[] = { "Authorization: Bearer s3cret\r\nX-Evil: 1", NULL };
    cfg.headers = crlf;
    assert_null(mcp_http_open(&cfg, err, sizeof err));
    assert_null(strstr(err, "s3cret"));        /* a value is never quoted */

    const char *good[] = { "Authorization: Bearer s3cret", "X-Tenant: a", NULL };
    cfg.headers = good;
    mcp_transport *t = mcp_http_open(&cfg, err, sizeof err);
    assert_non_null(t);
    assert_string_equal(mcp_http_session_id(t), "");
    t->ops->close(t);
}

/* Nothing listens on port 1: a clear transport error, quickly. */
static void test_http_connection_refused(void **state)
{
    char err[256] = "";
    mcp_http_config cfg = { .url = "http://127.0.0.1:1/mcp", .name = "nowhere" };
    mcp_transport *t = mcp_http_open(&cfg, err, sizeof err);
    assert_non_null(t);
    mcp_client_options opt = { .request_timeout_ms = 3000 };
    mcp_client *c = mcp_client_new(t, &opt, err, sizeof err);
    assert_int_equal(mcp_client_initialize(c, err, sizeof err), MCP_ERR_TRANSPORT);
    assert_non_null(strstr(err, "nowhere"));
    mcp_client_free(c);
}

int main(void)
{
    log_init("test", "error");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_initialize_negotiates_latest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_initialize_accepts_previous_version, setup, teardown),
        cmocka_unit_test_setup_teardown(test_initialize_refuses_other_versions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_tools_paginates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_tools_caps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tool_definitions_validated, setup, teardown),
        cmocka_unit_test(test_tool_name_rule),
        cmocka_unit_test_setup_teardown(test_server_requests_answered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_progress_logs_and_list_changed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_sends_cancelled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout_sends_cancelled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_session_lost_reinitializes_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_connection_reinitializes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_and_rpc_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_call_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_result_content_summarised, setup, teardown),
        cmocka_unit_test_setup_teardown(test_result_truncated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_results_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ping, setup, teardown),
        cmocka_unit_test(test_http_config_checked),
        cmocka_unit_test(test_http_connection_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
