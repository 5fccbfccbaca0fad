/*
 * test_router.c - routes, the id segment, 404 versus 405 and Allow, the
 * MCP server routes, and the routes' templates.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "router.h"

static int match(http_verb verb, const char *path, route_match *m)
{
    return router_match(verb, path, strlen(path), m);
}

static void test_collection_routes(void **state)
{
    (void)state;
    route_match m;
    assert_int_equal(match(VERB_POST, "/v1/jobs", &m), 200);
    assert_int_equal(m.id, ROUTE_JOBS_CREATE);
    assert_int_equal(m.needs_auth, 1);
    assert_int_equal(match(VERB_GET, "/v1/jobs", &m), 200);
    assert_int_equal(m.id, ROUTE_JOBS_LIST);
    assert_int_equal(match(VERB_POST, "/v1/agent-runs", &m), 200);
    assert_int_equal(m.id, ROUTE_RUNS_CREATE);
}

static void test_item_routes_capture_the_id(void **state)
{
    (void)state;
    route_match m;
    assert_int_equal(match(VERB_GET, "/v1/jobs/abc-123", &m), 200);
    assert_int_equal(m.id, ROUTE_JOB_GET);
    assert_string_equal(m.param, "abc-123");
    assert_int_equal(match(VERB_DELETE, "/v1/jobs/abc", &m), 200);
    assert_int_equal(m.id, ROUTE_JOB_CANCEL);
    assert_int_equal(match(VERB_GET, "/v1/jobs/abc/events", &m), 200);
    assert_int_equal(m.id, ROUTE_JOB_EVENTS);
    assert_string_equal(m.param, "abc");
    assert_int_equal(match(VERB_GET, "/v1/agent-runs/r1/events", &m), 200);
    assert_int_equal(m.id, ROUTE_RUN_EVENTS);
    assert_string_equal(m.param, "r1");
}

static void test_health_needs_no_auth(void **state)
{
    (void)state;
    route_match m;
    assert_int_equal(match(VERB_GET, "/v1/health/live", &m), 200);
    assert_int_equal(m.id, ROUTE_HEALTH_LIVE);
    assert_int_equal(m.needs_auth, 0);
    assert_int_equal(match(VERB_HEAD, "/v1/health/ready", &m), 200);
    assert_int_equal(m.id, ROUTE_HEALTH_READY);
    assert_int_equal(match(VERB_GET, "/openapi.json", &m), 200);
    assert_int_equal(m.id, ROUTE_OPENAPI);
    assert_int_equal(m.needs_auth, 0);
}

static void test_unknown_paths_are_404(void **state)
{
    (void)state;
    route_match m;
    const char *paths[] = { "/", "", "/v1", "/v1/jobs/", "/v1/jobs//events", "/v1/jobs/a/eventsz",
                            "/v1/jobs/a/events/", "/v2/jobs", "/v1/jobsx", "/v1/jobs/a/b", NULL };
    for (int i = 0; paths[i]; i++) assert_int_equal(match(VERB_GET, paths[i], &m), 404);
}

static void test_wrong_method_is_405_with_allow(void **state)
{
    (void)state;
    route_match m;
    char allow[64];
    assert_int_equal(match(VERB_DELETE, "/v1/jobs", &m), 405);
    router_allow_header(m.allowed, allow, sizeof allow);
    assert_string_equal(allow, "GET, POST");
    assert_int_equal(match(VERB_POST, "/v1/jobs/x", &m), 405);
    router_allow_header(m.allowed, allow, sizeof allow);
    assert_string_equal(allow, "GET, DELETE");
    assert_int_equal(match(VERB_OTHER, "/v1/health/live", &m), 405);
}

static void test_overlong_id_segment_is_404(void **state)
{
    (void)state;
    route_match m;
    char path[200] = "/v1/jobs/";
    memset(path + 9, 'a', 100);
    path[109] = '\0';
    assert_int_equal(match(VERB_GET, path, &m), 404);
}

static void test_mcp_server_routes(void **state)
{
    (void)state;
    route_match m;
    char allow[64];
    assert_int_equal(match(VERB_POST, "/v1/mcp-servers", &m), 200);
    assert_int_equal(m.id, ROUTE_MCP_SERVERS_CREATE);
    assert_int_equal(m.needs_auth, 1);
    assert_int_equal(match(VERB_GET, "/v1/mcp-servers", &m), 200);
    assert_int_equal(m.id, ROUTE_MCP_SERVERS_LIST);
    assert_int_equal(match(VERB_GET, "/v1/mcp-servers/everything", &m), 200);
    assert_int_equal(m.id, ROUTE_MCP_SERVER_GET);
    assert_string_equal(m.param, "everything");
    assert_int_equal(match(VERB_PATCH, "/v1/mcp-servers/my-server_2", &m), 200);
    assert_int_equal(m.id, ROUTE_MCP_SERVER_UPDATE);
    assert_string_equal(m.param, "my-server_2");
    assert_int_equal(match(VERB_DELETE, "/v1/mcp-servers/x", &m), 200);
    assert_int_equal(m.id, ROUTE_MCP_SERVER_DELETE);
    assert_int_equal(match(VERB_POST, "/v1/mcp-servers/x/refresh", &m), 200);
    assert_int_equal(m.id, ROUTE_MCP_SERVER_REFRESH);
    assert_string_equal(m.param, "x");
    assert_int_equal(m.needs_auth, 1);

    assert_int_equal(match(VERB_DELETE, "/v1/mcp-servers", &m), 405);
    router_allow_header(m.allowed, allow, sizeof allow);
    assert_string_equal(allow, "GET, POST");
    assert_int_equal(match(VERB_POST, "/v1/mcp-servers/x", &m), 405);
    router_allow_header(m.allowed, allow, sizeof allow);
    assert_string_equal(allow, "GET, PATCH, DELETE");
    assert_int_equal(match(VERB_GET, "/v1/mcp-servers/x/refresh", &m), 405);
    router_allow_header(m.allowed, allow, sizeof allow);
    assert_string_equal(allow, "POST");

    const char *paths[] = { "/v1/mcp-servers/", "/v1/mcp-servers//refresh",
                            "/v1/mcp-servers/x/refreshz", "/v1/mcp-servers/x/refresh/",
                            "/v1/mcp-serversx", "/v1/mcp-servers/x/tools", NULL };
    for (int i = 0; paths[i]; i++) assert_int_equal(match(VERB_POST, paths[i], &m), 404);
}

/* The operator's collections: GET only, a token needed, nothing below them. */
static void test_operator_routes(void **state)
{
    (void)state;
    route_match m;
    char allow[64];
    assert_int_equal(match(VERB_GET, "/v1/queues", &m), 200);
    assert_int_equal(m.id, ROUTE_QUEUES_LIST);
    assert_int_equal(m.needs_auth, 1);
    assert_int_equal(match(VERB_GET, "/v1/workers", &m), 200);
    assert_int_equal(m.id, ROUTE_WORKERS_LIST);
    assert_int_equal(m.needs_auth, 1);
    assert_int_equal(match(VERB_HEAD, "/v1/workers", &m), 200);
    assert_int_equal(m.id, ROUTE_WORKERS_LIST);

    assert_int_equal(match(VERB_POST, "/v1/queues", &m), 405);
    router_allow_header(m.allowed, allow, sizeof allow);
    assert_string_equal(allow, "GET");
    assert_int_equal(match(VERB_DELETE, "/v1/workers", &m), 405);

    const char *paths[] = { "/v1/queues/", "/v1/queues/demo", "/v1/workers/",
                            "/v1/workers/w-1", "/v1/queuesx", "/v1/worker", NULL };
    for (int i = 0; paths[i]; i++) assert_int_equal(match(VERB_GET, paths[i], &m), 404);
}

/* Retries and the dead-letter list: the word "retry" after the collection
 * is the retry of all, after an id the retry of one. */
static void test_retry_and_dead_letter_routes(void **state)
{
    (void)state;
    route_match m;
    char allow[64];
    assert_int_equal(match(VERB_POST, "/v1/jobs/j1/retry", &m), 200);
    assert_int_equal(m.id, ROUTE_JOB_RETRY);
    assert_string_equal(m.param, "j1");
    assert_int_equal(m.needs_auth, 1);
    assert_int_equal(match(VERB_GET, "/v1/agent-runs", &m), 200);
    assert_int_equal(m.id, ROUTE_RUNS_LIST);
    assert_int_equal(match(VERB_GET, "/v1/dead-letters", &m), 200);
    assert_int_equal(m.id, ROUTE_DEAD_LETTERS_LIST);
    assert_int_equal(match(VERB_DELETE, "/v1/dead-letters", &m), 200);
    assert_int_equal(m.id, ROUTE_DEAD_LETTERS_DISCARD_ALL);
    assert_int_equal(match(VERB_POST, "/v1/dead-letters/retry", &m), 200);
    assert_int_equal(m.id, ROUTE_DEAD_LETTERS_RETRY_ALL);
    assert_int_equal(match(VERB_POST, "/v1/dead-letters/d1/retry", &m), 200);
    assert_int_equal(m.id, ROUTE_DEAD_LETTER_RETRY);
    assert_string_equal(m.param, "d1");
    assert_int_equal(match(VERB_DELETE, "/v1/dead-letters/d1", &m), 200);
    assert_int_equal(m.id, ROUTE_DEAD_LETTER_DISCARD);
    assert_string_equal(m.param, "d1");

    assert_int_equal(match(VERB_GET, "/v1/jobs/j1/retry", &m), 405);
    router_allow_header(m.allowed, allow, sizeof allow);
    assert_string_equal(allow, "POST");
    assert_int_equal(match(VERB_POST, "/v1/dead-letters", &m), 405);
    router_allow_header(m.allowed, allow, sizeof allow);
    assert_string_equal(allow, "GET, DELETE");
    assert_int_equal(match(VERB_GET, "/v1/dead-letters/d1", &m), 405);
    router_allow_header(m.allowed, allow, sizeof allow);
    assert_string_equal(allow, "DELETE");

    const char *paths[] = { "/v1/jobs//retry", "/v1/jobs/j1/retry/", "/v1/jobs/j1/retryz",
                            "/v1/dead-letters/", "/v1/dead-letters/d1/retry/",
                            "/v1/dead-lettersx", NULL };
    for (int i = 0; paths[i]; i++) assert_int_equal(match(VERB_POST, paths[i], &m), 404);
}

/* POST /v1/jobs/batch is its own route; other verbs on that path are the
 * job routes' (a job named "batch" is simply not found). */
static void test_batch_route(void **state)
{
    (void)state;
    route_match m;
    assert_int_equal(match(VERB_POST, "/v1/jobs/batch", &m), 200);
    assert_int_equal(m.id, ROUTE_JOBS_BATCH_CREATE);
    assert_int_equal(m.needs_auth, 1);
    assert_int_equal(match(VERB_GET, "/v1/jobs/batch", &m), 200);
    assert_int_equal(m.id, ROUTE_JOB_GET);
    assert_int_equal(match(VERB_POST, "/v1/jobs/batch/", &m), 404);
    /* Any other id is a job's path, which takes no POST. */
    assert_int_equal(match(VERB_POST, "/v1/jobs/batchx", &m), 405);
}

/* The console: /console (a redirect), /console/ (its page) and one file
 * name below it, each needing no token; nothing deeper, GET only. */
static void test_console_routes(void **state)
{
    (void)state;
    route_match m;
    char allow[64];
    assert_int_equal(match(VERB_GET, "/console", &m), 200);
    assert_int_equal(m.id, ROUTE_CONSOLE_REDIRECT);
    assert_int_equal(m.needs_auth, 0);
    assert_int_equal(match(VERB_GET, "/console/", &m), 200);
    assert_int_equal(m.id, ROUTE_CONSOLE_INDEX);
    assert_int_equal(m.needs_auth, 0);
    assert_int_equal(match(VERB_HEAD, "/console/", &m), 200);
    assert_int_equal(m.id, ROUTE_CONSOLE_INDEX);
    assert_int_equal(match(VERB_GET, "/console/app.js", &m), 200);
    assert_int_equal(m.id, ROUTE_CONSOLE_ASSET);
    assert_string_equal(m.param, "app.js");
    assert_int_equal(m.needs_auth, 0);

    assert_int_equal(match(VERB_POST, "/console/", &m), 405);
    router_allow_header(m.allowed, allow, sizeof allow);
    assert_string_equal(allow, "GET");
    assert_int_equal(match(VERB_DELETE, "/console/app.js", &m), 405);

    const char *paths[] = { "/console//", "/console/a/b.js", "/console/app.js/", "/consolex",
                            "/console//app.js", "/v1/console/", NULL };
    for (int i = 0; paths[i]; i++) assert_int_equal(match(VERB_GET, paths[i], &m), 404);
}

/* Labels and span names use the template, never the path as sent. */
static void test_route_templates(void **state)
{
    (void)state;
    assert_string_equal(router_route_template(ROUTE_NONE), "");
    assert_string_equal(router_route_template(ROUTE_COUNT), "");
    assert_string_equal(router_route_template(ROUTE_JOBS_CREATE), "/v1/jobs");
    assert_string_equal(router_route_template(ROUTE_JOB_EVENTS), "/v1/jobs/{id}/events");
    assert_string_equal(router_route_template(ROUTE_TOOL_GET), "/v1/tools/{name}");
    assert_string_equal(router_route_template(ROUTE_DEAD_LETTER_RETRY),
                        "/v1/dead-letters/{id}/retry");
    for (size_t i = 0; i < router_route_count(); i++) {
        const route_def *d = router_route_at(i);
        const char *t = router_route_template(d->id);
        assert_true(t[0] == '/');
        assert_null(strchr(t, '*'));
        assert_null(strchr(t, '+'));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_collection_routes),
        cmocka_unit_test(test_route_templates),
        cmocka_unit_test(test_item_routes_capture_the_id),
        cmocka_unit_test(test_health_needs_no_auth),
        cmocka_unit_test(test_unknown_paths_are_404),
        cmocka_unit_test(test_wrong_method_is_405_with_allow),
        cmocka_unit_test(test_overlong_id_segment_is_404),
        cmocka_unit_test(test_mcp_server_routes),
        cmocka_unit_test(test_operator_routes),
        cmocka_unit_test(test_retry_and_dead_letter_routes),
        cmocka_unit_test(test_batch_route),
        cmocka_unit_test(test_console_routes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
