/*
 * test_mcp_tools.c - the parts that make MCP servers a tool source,
 * without servers or a database: a server row's headers and a stdio
 * child's environment (mcp_server.c), the manifests and summary a
 * discovery builds (mcp_discover.c), a call's output and its summary
 * (mcp_call.c), and the client pool (mcp_pool.c) over fake clients.
 *
 * The pool is driven with a maker that returns clients over an inert
 * transport (nothing is ever sent: the pool never talks to servers), so
 * the tests see exactly which clients are made, reused and closed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "mcp_call.h"
#include "mcp_discover.h"
#include "mcp_pool.h"
#include "mcp_server.h"

/* ---- headers and environment ------------------------------------------------- */

static void test_headers_are_parsed_and_checked(void **state)
{
    char **h, err[200];

    assert_int_equal(mcp_headers_parse("{\"Authorization\":\"Bearer s3cret\",\"X-Api-Key\":"
                                       "\"k\"}", &h, err, sizeof(err)), 0);
    assert_string_equal(h[0], "Authorization: Bearer s3cret");
    assert_string_equal(h[1], "X-Api-Key: k");
    assert_null(h[2]);
    mcp_headers_free(h);

    assert_int_equal(mcp_headers_parse(NULL, &h, err, sizeof(err)), 0);
    assert_null(h[0]);
    mcp_headers_free(h);

    /* A value with a line break: refused, and the value is never quoted. */
    assert_int_equal(mcp_headers_parse("{\"Authorization\":\"Bearer s3cret\\r\\nX: y\"}", &h,
                                       err, sizeof(err)), -1);
    assert_null(h);
    assert_non_null(strstr(err, "\"Authorization\""));
    assert_null(strstr(err, "s3cret"));
    assert_int_equal(mcp_headers_parse("{\"Bad Name\":\"v\"}", &h, err, sizeof(err)), -1);
    assert_int_equal(mcp_headers_parse("{\"A\":1}", &h, err, sizeof(err)), -1);
    assert_int_equal(mcp_headers_parse("[\"A: b\"]", &h, err, sizeof(err)), -1);

    char many[4096] = "{";
    for (int i = 0; i <= MCP_HEADERS_MAX; i++)
        snprintf(many + strlen(many), sizeof(many) - strlen(many), "%s\"H%d\":\"v\"",
                 i ? "," : "", i);
    strcat(many, "}");
    assert_int_equal(mcp_headers_parse(many, &h, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "more than"));
}

static void test_stdio_child_gets_only_its_environment(void **state)
{
    char *base[] = {"PATH=/opt/bin", "HOME=/home/w", "AGENTGATE_DATABASE_URL=postgres://x",
                    "LANG=C.UTF-8", "AGENTGATE_LLM_API_KEYS=p=sk", NULL};
    mcp_stdio_server s;
    memset(&s, 0, sizeof(s));
    s.env[0] = "MEMORY_FILE_PATH=/tmp/m.json";
    s.env[1] = "HOME=/srv/mcp";
    s.nenv = 2;

    char **env = mcp_stdio_envp(&s, base);
    assert_non_null(env);
    assert_string_equal(env[0], "PATH=/opt/bin");
    assert_string_equal(env[1], "LANG=C.UTF-8");
    assert_string_equal(env[2], "MEMORY_FILE_PATH=/tmp/m.json");
    assert_string_equal(env[3], "HOME=/srv/mcp");
    assert_null(env[4]);
    mcp_headers_free(env);

    char *bare[] = {NULL};
    env = mcp_stdio_envp(NULL, bare);
    assert_string_equal(env[0], "PATH=/usr/local/bin:/usr/bin:/bin");
    assert_null(env[1]);
    mcp_headers_free(env);
}

/* ---- discovery ------------------------------------------------------------------- */

static void test_manifest_names(void **state)
{
    char out[200], why[200];
    char tool[130];

    assert_int_equal(mcp_manifest_name("memory", "search_nodes", out, sizeof(out), why,
                                       sizeof(why)), 0);
    assert_string_equal(out, "memory.search_nodes");
    assert_int_equal(mcp_manifest_name("everything", "get-sum", out, sizeof(out), why,
                                       sizeof(why)), 0);
    memset(tool, 'x', 128);
    tool[128] = '\0';
    assert_int_equal(mcp_manifest_name("memory", tool, out, sizeof(out), why, sizeof(why)),
                     -1);
    assert_non_null(strstr(why, "more than the 128"));
    assert_int_equal(mcp_manifest_name("memory", "a b", out, sizeof(out), why, sizeof(why)),
                     -1);
    assert_int_equal(mcp_manifest_name("", "a", out, sizeof(out), why, sizeof(why)), -1);
}

static mcp_tool make_tool(const char *name, const char *schema, mcp_hint read_only)
{
    mcp_tool t;
    memset(&t, 0, sizeof(t));
    t.name = (char *)name;
    t.title = (char *)"A title";
    t.description = (char *)"What it does";
    t.input_schema = cJSON_Parse(schema);
    t.read_only = read_only;
    t.destructive = t.idempotent = t.open_world = MCP_HINT_UNSET;
    return t;
}

static const cJSON *find_by(const cJSON *arr, const char *key, const char *value)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, arr) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(it, key);
        if (cJSON_IsString(v) && strcmp(v->valuestring, value) == 0)
            return it;
    }
    return NULL;
}

static const char *str(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static bool truth(const cJSON *o, const char *k)
{
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, k));
}

static void test_discovery_builds_manifests_and_summary(void **state)
{
    char longname[130];
    memset(longname, 'n', 125);     /* 132 bytes as "memory.nnn...": too long */
    longname[125] = '\0';
    mcp_tool tools[] = {
        make_tool("search_nodes", "{\"type\":\"object\",\"properties\":{\"query\":"
                  "{\"type\":\"string\"}}}", MCP_HINT_TRUE),
        make_tool("create_entities", "{\"type\":\"object\"}", MCP_HINT_FALSE),
        make_tool("refs", "{\"type\":\"object\",\"properties\":{\"a\":{\"if\":true}}}",
                  MCP_HINT_UNSET),
        make_tool(longname, "{\"type\":\"object\"}", MCP_HINT_TRUE),
        make_tool("time", "{\"type\":\"object\"}", MCP_HINT_TRUE),
    };
    mcp_tool_list l = {tools, 5, 0};
    mcp_discovered d;

    assert_int_equal(mcp_discover_build("memory", "graph", &l, &d), 0);
    assert_int_equal(cJSON_GetArraySize(d.manifests), 4);
    assert_int_equal(cJSON_GetArraySize(d.summary), 5);
    assert_int_equal(d.usable, 3);      /* all but refs */
    assert_int_equal(d.refused, 1);     /* the long name */

    const cJSON *m = find_by(d.manifests, "name", "memory.search_nodes");
    assert_non_null(m);
    assert_string_equal(str(m, "mcp_tool"), "search_nodes");
    assert_string_equal(str(m, "description"), "What it does");
    assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(m, "required_scopes"), 0)
                            ->valuestring, "graph:read");
    assert_int_equal(cJSON_GetObjectItem(m, "rate_limit")->valueint, MCP_DEFAULT_RATE_LIMIT);
    assert_true(truth(cJSON_GetObjectItem(m, "annotations"), "readOnlyHint"));
    assert_string_equal(str(cJSON_GetObjectItem(m, "annotations"), "title"), "A title");
    m = find_by(d.manifests, "name", "memory.create_entities");
    assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(m, "required_scopes"), 0)
                            ->valuestring, "graph:write");
    /* No hint is no promise: the tool may write. */
    m = find_by(d.manifests, "name", "memory.refs");
    assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(m, "required_scopes"), 0)
                            ->valuestring, "graph:write");

    const cJSON *s = find_by(d.summary, "name", "refs");
    assert_false(truth(s, "usable"));
    assert_non_null(strstr(str(s, "reason"), "cannot be checked"));
    assert_string_equal(str(s, "manifest"), "memory.refs");
    s = find_by(d.summary, "name", longname);
    assert_false(truth(s, "usable"));
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(s, "manifest")));
    assert_non_null(strstr(str(s, "reason"), "128"));
    s = find_by(d.summary, "name", "search_nodes");
    assert_true(truth(s, "usable"));
    assert_true(truth(s, "read_only"));
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(s, "reason")));
    assert_string_equal(str(s, "title"), "A title");

    /* A tool the tenant already has a manifest of that name for. */
    cJSON *inserted = cJSON_Parse("[\"memory.create_entities\",\"memory.refs\","
                                  "\"memory.time\"]");
    mcp_discover_mark_conflicts(&d, inserted);
    cJSON_Delete(inserted);
    s = find_by(d.summary, "name", "search_nodes");
    assert_false(truth(s, "usable"));
    assert_non_null(strstr(str(s, "reason"), "of its own"));
    assert_int_equal(d.usable, 2);

    mcp_discovered_free(&d);
    for (size_t i = 0; i < 5; i++)
        cJSON_Delete(tools[i].input_schema);
}

static void test_builtin_names_and_long_model_names(void **state)
{
    mcp_tool tools[] = {
        make_tool("time", "{\"type\":\"object\"}", MCP_HINT_TRUE),
        make_tool("a.very.long.tool.name.with.many.dots.in.it.abcdefghij",
                  "{\"type\":\"object\"}", MCP_HINT_TRUE),
    };
    mcp_tool_list l = {tools, 2, 0};
    mcp_discovered d;

    assert_int_equal(mcp_discover_build("system", "tools", &l, &d), 0);
    const cJSON *s = find_by(d.summary, "name", "time");
    assert_false(truth(s, "usable"));
    assert_non_null(strstr(str(s, "reason"), "built-in tool"));
    assert_null(find_by(d.manifests, "name", "system.time"));
    s = find_by(d.summary, "name", "a.very.long.tool.name.with.many.dots.in.it.abcdefghij");
    assert_true(truth(s, "usable"));
    assert_non_null(strstr(str(s, "reason"), "not offered to language models"));
    mcp_discovered_free(&d);
    for (size_t i = 0; i < 2; i++)
        cJSON_Delete(tools[i].input_schema);
}

/* ---- a call's output ------------------------------------------------------------ */

static void test_call_output_is_capped(void **state)
{
    mcp_call_result r;
    memset(&r, 0, sizeof(r));
    r.text = (char *)"hello";
    r.text_len = 5;
    r.structured = cJSON_Parse("{\"sum\":42}");

    cJSON *o = mcp_call_output(&r, 1024);
    assert_string_equal(str(o, "content"), "hello");
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "structuredContent"), "sum")
                         ->valueint, 42);
    assert_false(truth(o, "isError"));
    assert_null(cJSON_GetObjectItem(o, "truncated"));
    cJSON_Delete(o);

    /* Too big together: structuredContent goes first. */
    o = mcp_call_output(&r, 12);
    assert_null(cJSON_GetObjectItem(o, "structuredContent"));
    assert_string_equal(str(o, "content"), "hello");
    assert_true(truth(o, "truncated"));
    cJSON_Delete(o);
    cJSON_Delete(r.structured);
    r.structured = NULL;

    /* Text cut on a character boundary, never inside "é": the limit
     * leaves room for 100 bytes before the marker, and byte 100 is the
     * second of "é". */
    char text[200];
    memset(text, 'a', sizeof(text));
    memcpy(text + 99, "\xc3\xa9", 2);
    text[199] = '\0';
    r.text = text;
    r.text_len = 199;
    r.is_error = true;
    o = mcp_call_output(&r, 100 + strlen("\n[truncated: the answer was longer than the "
                                         "limit]") + 1);
    const char *c = str(o, "content");
    assert_non_null(strstr(c, "[truncated"));
    assert_int_equal(strncmp(c, text, 99), 0);
    assert_true(c[99] == '\n');
    assert_true(truth(o, "isError"));
    cJSON_Delete(o);
}

static void test_output_summary(void **state)
{
    cJSON *o = cJSON_Parse("{\"content\":\"boom\",\"isError\":true}");
    char *s = mcp_output_summary(o, 100);
    assert_string_equal(s, "error: boom");
    free(s);
    cJSON_Delete(o);
    o = cJSON_Parse("{\"content\":\"0123456789abcdef\",\"isError\":false}");
    s = mcp_output_summary(o, 10);
    assert_true(strlen(s) <= 13);
    free(s);
    cJSON_Delete(o);
    s = mcp_output_summary(NULL, 10);
    assert_string_equal(s, "no output");
    free(s);
}

/* ---- the pool ------------------------------------------------------------------- */

/* A transport that is never used: the pool only makes and frees clients. */
typedef struct inert {
    mcp_transport base;
    int id;
} inert;

static int made, closed;

static int inert_connect(mcp_transport *t, long long d, char *e, size_t n)
{
    return MCP_ERR_TRANSPORT;
}

static int inert_send(mcp_transport *t, const char *m, size_t l, long long d, char *e, size_t n)
{
    return MCP_ERR_TRANSPORT;
}

static int inert_receive(mcp_transport *t, char **m, size_t *l, long long d, char *e, size_t n)
{
    return MCP_ERR_TRANSPORT;
}

static void inert_version(mcp_transport *t, const char *v)
{
}

static void inert_reset(mcp_transport *t)
{
}

static void inert_close(mcp_transport *t)
{
    closed++;
    free(t);
}

static const mcp_transport_ops inert_ops = {inert_connect, inert_send, inert_receive,
                                            inert_version, inert_reset, inert_close};

/* The maker: the settings id it reports is the test's "current" one. */
static const char *current_config = "v1";
static bool fail_next;

static mcp_client *make_inert(void *user, const mcp_pool_key *key,
                              const mcp_client_options *opt, char *config_id, bool *retryable,
                              char *err, size_t err_size)
{
    assert_non_null(opt->on_log);
    if (fail_next) {
        fail_next = false;
        *retryable = true;
        snprintf(err, err_size, "cannot reach it");
        return NULL;
    }
    inert *t = calloc(1, sizeof(*t));
    t->base.ops = &inert_ops;
    t->id = ++made;
    snprintf(config_id, 33, "%s", current_config);
    return mcp_client_new(&t->base, opt, err, err_size);
}

static mcp_pool_key key_of(const char *tenant, const char *server, const char *config)
{
    mcp_pool_key k;
    memset(&k, 0, sizeof(k));
    snprintf(k.tenant, sizeof(k.tenant), "%s", tenant);
    snprintf(k.server, sizeof(k.server), "%s", server);
    snprintf(k.config_id, sizeof(k.config_id), "%s", config);
    return k;
}

static mcp_lease *lease(const char *tenant, const char *server, const char *config)
{
    mcp_pool_key k = key_of(tenant, server, config);
    mcp_lease *l = NULL;
    bool retryable;
    char err[200];
    assert_int_equal(mcp_pool_acquire(&k, make_inert, NULL, &l, &retryable, err,
                                      sizeof(err)), 0);
    return l;
}

static int pool_setup(void **state)
{
    mcp_pool_shutdown();
    mcp_pool_reopen();
    mcp_pool_set_limits(0, 0);
    made = closed = 0;
    current_config = "v1";
    fail_next = false;
    return 0;
}

static void test_pool_reuses_an_idle_client(void **state)
{
    mcp_lease *a = lease("acme", "everything", "v1");
    mcp_client *ca = mcp_lease_client(a);
    mcp_pool_release(a, false);
    mcp_lease *b = lease("acme", "everything", "v1");
    assert_ptr_equal(mcp_lease_client(b), ca);
    assert_int_equal(made, 1);
    mcp_pool_release(b, false);
    /* Another tenant never gets it. */
    mcp_lease *c = lease("other", "everything", "v1");
    assert_ptr_not_equal(mcp_lease_client(c), ca);
    assert_int_equal(made, 2);
    mcp_pool_release(c, false);
    assert_int_equal(mcp_pool_size(), 2);
}

static void test_pool_gives_each_thread_its_own_client(void **state)
{
    mcp_lease *a = lease("acme", "everything", "v1");
    mcp_lease *b = lease("acme", "everything", "v1");
    assert_ptr_not_equal(mcp_lease_client(a), mcp_lease_client(b));
    assert_int_equal(made, 2);
    mcp_pool_release(a, false);
    mcp_pool_release(b, true);      /* discarded: closed at once */
    assert_int_equal(closed, 1);
    assert_int_equal(mcp_pool_size(), 1);
}

static void test_pool_closes_clients_of_older_settings(void **state)
{
    mcp_lease *a = lease("acme", "memory", "v1");
    mcp_pool_release(a, false);
    /* The server was changed: a lease with the new id makes a new client
     * and the idle one of the old settings is closed. */
    current_config = "v2";
    mcp_lease *b = lease("acme", "memory", "v2");
    assert_int_equal(made, 2);
    assert_int_equal(closed, 1);
    assert_int_equal(mcp_pool_size(), 1);
    mcp_pool_release(b, false);
    mcp_lease *c = lease("acme", "memory", "v2");
    assert_int_equal(made, 2);
    mcp_pool_release(c, false);
    /* A caller with an older id (a run that began before the change)
     * gets a client of the current settings, and the pooled one stays. */
    mcp_lease *d = lease("acme", "memory", "v1");
    assert_int_equal(made, 3);
    assert_int_equal(closed, 1);
    mcp_pool_release(d, false);
    assert_int_equal(mcp_pool_size(), 2);
}

static void test_pool_cap_and_idle_time(void **state)
{
    mcp_pool_set_limits(2, 0);
    mcp_lease *a = lease("t1", "s", "v1");
    mcp_lease *b = lease("t2", "s", "v1");
    mcp_lease *c = lease("t3", "s", "v1");
    /* All three busy: over the cap, but none may be closed. */
    assert_int_equal(mcp_pool_size(), 3);
    mcp_pool_release(a, false);     /* the oldest idle one goes */
    assert_int_equal(mcp_pool_size(), 2);
    assert_int_equal(closed, 1);
    mcp_pool_release(b, false);
    mcp_pool_release(c, false);
    assert_int_equal(mcp_pool_size(), 2);

    mcp_pool_set_limits(0, 1);
    usleep(5000);
    mcp_lease *d = lease("t9", "s", "v1");  /* any acquire sweeps */
    assert_int_equal(mcp_pool_size(), 1);
    mcp_pool_release(d, false);
}

static void test_pool_maker_failure_and_shutdown(void **state)
{
    mcp_pool_key k = key_of("acme", "everything", "v1");
    mcp_lease *l = NULL;
    bool retryable = false;
    char err[200];

    fail_next = true;
    assert_int_equal(mcp_pool_acquire(&k, make_inert, NULL, &l, &retryable, err,
                                      sizeof(err)), -1);
    assert_true(retryable);
    assert_string_equal(err, "cannot reach it");
    assert_int_equal(mcp_pool_size(), 0);

    mcp_lease *idle = lease("acme", "everything", "v1");
    mcp_lease *busy = lease("acme", "everything", "v1");
    mcp_pool_release(idle, false);
    mcp_pool_shutdown();
    assert_int_equal(closed, 1);
    assert_int_equal(mcp_pool_acquire(&k, make_inert, NULL, &l, &retryable, err,
                                      sizeof(err)), -1);
    assert_non_null(strstr(err, "shutting down"));
    mcp_pool_release(busy, false);  /* closed when given back */
    assert_int_equal(closed, 2);
    assert_int_equal(mcp_pool_size(), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_headers_are_parsed_and_checked),
        cmocka_unit_test(test_stdio_child_gets_only_its_environment),
        cmocka_unit_test(test_manifest_names),
        cmocka_unit_test(test_discovery_builds_manifests_and_summary),
        cmocka_unit_test(test_builtin_names_and_long_model_names),
        cmocka_unit_test(test_call_output_is_capped),
        cmocka_unit_test(test_output_summary),
        cmocka_unit_test_setup(test_pool_reuses_an_idle_client, pool_setup),
        cmocka_unit_test_setup(test_pool_gives_each_thread_its_own_client, pool_setup),
        cmocka_unit_test_setup(test_pool_closes_clients_of_older_settings, pool_setup),
        cmocka_unit_test_setup(test_pool_cap_and_idle_time, pool_setup),
        cmocka_unit_test_setup(test_pool_maker_failure_and_shutdown, pool_setup),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    mcp_pool_shutdown();
    return rc;
}
