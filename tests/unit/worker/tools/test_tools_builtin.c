/*
 * test_tools_builtin.c - unit tests for the built-in tools and the tools
 * runtime's pipeline, without servers.
 *
 * The handlers are run with no database or Redis (their input checks,
 * the refusals when a connection is missing, the tools that need
 * neither), the summaries are read as a model would, and the seeded
 * manifests of sql/migrations/004_tool_manifests.sql are compared with the
 * handlers' own schemas.
 *
 * tools_call is run against a stand-in job context defined here
 * (job_get_info, job_emit, job_db, job_redis_conn, ...): no PostgreSQL
 * (so no audit row, which the integration tests check) and no Redis (so
 * rate limits fail open for reading tools and closed for writing ones).
 * The stand-in replaces worker/runtime/job_ctx.o, which nothing else this
 * test links needs; it defines every function of job_ctx.h, since the
 * MCP stage (mcp_call.c) uses the ones tools.c does not.
 *
 * Manifests of MCP servers go through the same pipeline: refused while
 * their server is not ready, refused when the caller's roles do not allow
 * the action their scope stands for, offered to models only under a name
 * a function name can have, and with no database the call itself fails
 * with a reason (the integration tests call real servers).
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
#include "job_ctx.h"
#include "tool_env.h"
#include "tools.h"
#include "tools_builtin.h"

#define EMPTY_SCHEMA "{\"type\":\"object\",\"properties\":{},\"additionalProperties\":false}"

/* ---- the stand-in job context ------------------------------------------ */

struct job_ctx {
    job_info info;
    cJSON *last_event;      /* data of the last tool.called */
    int events;
};

static struct job_ctx fake;

const job_info *job_get_info(const job_ctx *ctx)
{
    return &ctx->info;
}

long long job_emit(job_ctx *ctx, const char *type, const cJSON *data)
{
    assert_string_equal(type, "tool.called");
    cJSON_Delete(ctx->last_event);
    ctx->last_event = cJSON_Duplicate(data, true);
    return ++ctx->events;
}

PGconn *job_db(job_ctx *ctx)
{
    return NULL;
}

struct redisContext *job_redis_conn(job_ctx *ctx)
{
    return NULL;
}

void job_redis_conn_failed(job_ctx *ctx)
{
}

int job_publish_queued(job_ctx *ctx, const char *job_id, const char *type, int band,
                       const char *event)
{
    return -1;      /* Redis down: what these tests' handlers never reach */
}

bool job_cancelled(const job_ctx *ctx)
{
    return false;
}

long long job_progress(job_ctx *ctx, long long current, long long total, const char *message)
{
    return ++ctx->events;
}

const struct ag_config *job_config(const job_ctx *ctx)
{
    return NULL;
}

static int setup_ctx(void **state)
{
    memset(&fake, 0, sizeof(fake));
    strcpy(fake.info.id, "0190d2a4-7e1c-7cc3-9a4e-1f2b3c4d5e6f");
    strcpy(fake.info.tenant_id, "acme");
    strcpy(fake.info.type, "agent.run");
    strcpy(fake.info.created_by, "alice");
    fake.info.request_id = "req-1";
    return 0;
}

static int teardown_ctx(void **state)
{
    cJSON_Delete(fake.last_event);
    fake.last_event = NULL;
    return 0;
}

static const char *event_str(const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(fake.last_event, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* ---- helpers -------------------------------------------------------------- */

static cJSON *parse(const char *json)
{
    cJSON *j = cJSON_Parse(json);
    assert_non_null(j);
    return j;
}

/* Runs tool name on input (JSON text, NULL for none) with env. */
static tool_err run(const char *name, const tool_call_env *env, const char *input,
                    cJSON **out, char *err, size_t err_size)
{
    cJSON *in = input ? parse(input) : NULL;
    err[0] = '\0';
    tool_err e = tools_builtin_run(tools_builtin_find(name), env, in, out, err, err_size);
    cJSON_Delete(in);
    if (e != TOOL_OK)
        assert_null(*out);
    return e;
}

static void expect_bad_input(const char *name, const char *input, const char *pointer)
{
    tool_call_env env = {.tenant_id = "acme"};
    cJSON *out = NULL;
    char err[300];

    assert_int_equal(run(name, &env, input, &out, err, sizeof(err)), TOOL_ERR_BAD_INPUT);
    if (strncmp(err, pointer, strlen(pointer)) != 0)
        fail_msg("%s %s: error \"%s\" does not start with %s", name, input, err, pointer);
}

static const char *str_of(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* ---- the table and the seeded manifests ------------------------------------- */

static void test_every_schema_is_a_closed_object(void **state)
{
    size_t n;
    const builtin_tool *t = tools_builtin_all(&n);

    assert_int_equal(n, 11);
    for (size_t i = 0; i < n; i++) {
        cJSON *s = cJSON_Parse(t[i].input_schema_json);
        if (!s)
            fail_msg("%s: schema is not JSON", t[i].name);
        assert_string_equal(str_of(s, "type"), "object");
        assert_true(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(s, "additionalProperties")));
        assert_ptr_equal(tools_builtin_find(t[i].name), &t[i]);
        cJSON_Delete(s);
    }
    assert_null(tools_builtin_find("no.such"));
    assert_null(tools_builtin_find(NULL));
}

/* The single-quoted literals of an SQL file, '' unescaped, comments skipped. */
static size_t sql_literals(const char *sql, char **lits, size_t max)
{
    size_t n = 0;

    for (const char *p = sql; *p;) {
        if (p[0] == '-' && p[1] == '-') {
            p += strcspn(p, "\n");
            continue;
        }
        if (*p != '\'') {
            p++;
            continue;
        }
        char *buf = malloc(strlen(p) + 1);
        size_t len = 0;
        assert_non_null(buf);
        for (p++; *p; p++) {
            if (*p == '\'' && p[1] == '\'') {
                buf[len++] = '\'';
                p++;
            } else if (*p == '\'') {
                p++;
                break;
            } else {
                buf[len++] = *p;
            }
        }
        buf[len] = '\0';
        if (n < max)
            lits[n++] = buf;
        else
            free(buf);
    }
    return n;
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s (run the unit tests from the repository root)", path);
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

static void test_seeded_manifests_match_the_handlers(void **state)
{
    char *lits[200];
    size_t n = sql_literals(read_file("sql/migrations/004_tool_manifests.sql"), lits, 200), groups = 0;
    size_t ntools;
    const builtin_tool *all = tools_builtin_all(&ntools);
    bool seen[32] = {false};
    static const struct { const char *name, *scopes; } expect_scopes[] = {
        {"jobs.list", "{jobs:read}"}, {"jobs.get", "{jobs:read}"},
        {"agent.history", "{agent-runs:read}"}, {"cache.get", "{cache:read}"},
        {"cache.set", "{cache:write}"}, {"cache.delete", "{cache:write}"},
        {"system.time", "{}"}, {"system.health", "{}"}, {"model.list", "{}"},
        {"security.describe_principal", "{}"}, {"catalog.search", "{}"},
    };

    for (size_t i = 0; i + 3 < n; i++) {
        const builtin_tool *t = tools_builtin_find(lits[i]);
        if (!t)
            continue;
        size_t idx = (size_t)(t - all);
        assert_false(seen[idx]);
        seen[idx] = true;
        groups++;
        assert_string_equal(lits[i + 1], t->description);
        cJSON *seeded = parse(lits[i + 2]), *own = parse(t->input_schema_json);
        if (!cJSON_Compare(seeded, own, true))
            fail_msg("%s: seeded schema differs from the handler's", t->name);
        cJSON_Delete(seeded);
        cJSON_Delete(own);
        bool checked = false;
        for (size_t k = 0; k < sizeof(expect_scopes) / sizeof(expect_scopes[0]); k++)
            if (strcmp(expect_scopes[k].name, t->name) == 0) {
                assert_string_equal(lits[i + 3], expect_scopes[k].scopes);
                checked = true;
            }
        assert_true(checked);
        i += 3;
    }
    assert_int_equal(groups, ntools);
    for (size_t i = 0; i < n; i++)
        free(lits[i]);
}

/* ---- the handlers -------------------------------------------------------------- */

static void test_system_time(void **state)
{
    tool_call_env env = {0};
    cJSON *out = NULL;
    char err[200];
    long long before = clock_wall_ms();

    assert_int_equal(run("system.time", &env, NULL, &out, err, sizeof(err)), TOOL_OK);
    const cJSON *ms = cJSON_GetObjectItemCaseSensitive(out, "epoch_ms");
    assert_true(cJSON_IsNumber(ms));
    assert_true(ms->valuedouble >= (double)before && ms->valuedouble <= clock_wall_ms());
    long long parsed;
    assert_int_equal(clock_parse_rfc3339(str_of(out, "utc"), &parsed), 0);
    assert_int_equal(parsed, (long long)ms->valuedouble);
    char *s = tools_builtin_summary("system.time", out);
    assert_string_equal(s, str_of(out, "utc"));
    free(s);
    cJSON_Delete(out);
}

static void test_input_is_checked_against_the_tools_schema(void **state)
{
    expect_bad_input("system.time", "{\"tz\":\"UTC\"}", "/tz: ");
    expect_bad_input("system.time", "[]", "(root): must be an object");
    expect_bad_input("cache.get", "{}", "/key: is required");
    expect_bad_input("cache.set", "{\"key\":\"k\",\"value\":\"v\",\"ttl_s\":0}", "/ttl_s: ");
    expect_bad_input("cache.set", "{\"key\":\"k\",\"value\":\"v\",\"ttl_s\":86401}", "/ttl_s: ");
    expect_bad_input("cache.set", "{\"key\":\"k\",\"value\":5}", "/value: must be a string");
    expect_bad_input("jobs.list", "{\"status\":\"exploded\"}", "/status: ");
    expect_bad_input("jobs.list", "{\"limit\":0}", "/limit: ");
    expect_bad_input("jobs.list", "{\"limit\":101}", "/limit: ");
    expect_bad_input("jobs.list", "{\"limit\":2.5}", "/limit: ");
    expect_bad_input("jobs.list", "{\"since\":\"yesterday\"}", "/since: ");
    expect_bad_input("jobs.list", "{\"since\":\"2026-02-30T00:00:00Z\"}", "/since: ");
    expect_bad_input("jobs.get", "{}", "/id: is required");
    expect_bad_input("jobs.get", "{\"id\":\"0190d2a4-7e1c-7cc3-9a4e-1f2b3c4d5e6g\"}", "/id: ");
    expect_bad_input("agent.history", "{\"limit\":51}", "/limit: ");
    expect_bad_input("catalog.search", "{}", "/query: is required");
}

static void test_cache_keys(void **state)
{
    char key[300], err[200], long_key[TOOLS_CACHE_KEY_MAX + 2];

    assert_int_equal(tools_cache_key(key, sizeof(key), "acme", "user:42/prefs", err,
                                     sizeof(err)), 0);
    assert_string_equal(key, "cache:acme:user:42/prefs");
    memset(long_key, 'k', sizeof(long_key) - 1);
    long_key[sizeof(long_key) - 1] = '\0';
    assert_int_equal(tools_cache_key(key, sizeof(key), "acme", long_key, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "at most 200 bytes"));
    long_key[TOOLS_CACHE_KEY_MAX] = '\0';
    assert_int_equal(tools_cache_key(key, sizeof(key), "acme", long_key, err, sizeof(err)), 0);

    const char *bad[] = {"", "a b", "tab\there", "new\nline", "caf\xc3\xa9", "del\x7f"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        strcpy(key, "junk");
        assert_int_equal(tools_cache_key(key, sizeof(key), "acme", bad[i], err, sizeof(err)),
                         -1);
        assert_string_equal(key, "");
        assert_non_null(strstr(err, "/key"));
    }
    assert_int_equal(tools_cache_key(key, sizeof(key), "ac:me", "k", err, sizeof(err)), -1);
    assert_int_equal(tools_cache_key(key, sizeof(key), NULL, "k", err, sizeof(err)), -1);
    assert_int_equal(tools_cache_key(key, 10, "acme", "kkkkkkkkkk", err, sizeof(err)), -1);
}

static void test_cache_tools_without_redis(void **state)
{
    tool_call_env env = {.tenant_id = "acme"};
    cJSON *out = NULL;
    char err[300];

    assert_int_equal(run("cache.get", &env, "{\"key\":\"k\"}", &out, err, sizeof(err)),
                     TOOL_ERR_FAILED);
    assert_non_null(strstr(err, "Redis cannot be reached"));
    assert_int_equal(run("cache.delete", &env, "{\"key\":\"k\"}", &out, err, sizeof(err)),
                     TOOL_ERR_FAILED);
    /* The key is checked before Redis is needed. */
    assert_int_equal(run("cache.get", &env, "{\"key\":\"a b\"}", &out, err, sizeof(err)),
                     TOOL_ERR_BAD_INPUT);
    assert_true(tools_builtin_find("cache.set")->writes);
    assert_true(tools_builtin_find("cache.delete")->writes);
    assert_false(tools_builtin_find("cache.get")->writes);
}

/* 64 KB is counted in bytes: text of few characters but many bytes is
 * refused even though the schema's maxLength (characters) lets it by. */
static void test_cache_value_limit_is_bytes(void **state)
{
    tool_call_env env = {.tenant_id = "acme"};
    cJSON *out = NULL;
    char err[300];
    size_t chars = 30000;   /* three bytes each: 90000 bytes */
    char *value = malloc(chars * 3 + 1);

    assert_non_null(value);
    for (size_t i = 0; i < chars; i++)
        memcpy(value + 3 * i, "\xe2\x82\xac", 3);
    value[chars * 3] = '\0';
    cJSON *in = cJSON_CreateObject();
    cJSON_AddStringToObject(in, "key", "k");
    cJSON_AddStringToObject(in, "value", value);
    assert_int_equal(tools_builtin_run(tools_builtin_find("cache.set"), &env, in, &out, err,
                                       sizeof(err)), TOOL_ERR_BAD_INPUT);
    assert_non_null(strstr(err, "/value: must be at most 65536 bytes"));
    cJSON_Delete(in);
    free(value);
}

static void test_database_tools_without_a_database(void **state)
{
    tool_call_env env = {.tenant_id = "acme", .run_id = "0190d2a4-7e1c-7cc3-9a4e-1f2b3c4d5e6f",
                         .session_id = "0190d2a4-7e1c-7cc3-9a4e-1f2b3c4d5e70"};
    cJSON *out = NULL;
    char err[300];

    assert_int_equal(run("jobs.list", &env, "{\"status\":\"failed\","
                         "\"since\":\"2026-11-21T00:00:00Z\"}", &out, err, sizeof(err)),
                     TOOL_ERR_FAILED);
    assert_non_null(strstr(err, "database is unavailable"));
    assert_int_equal(run("jobs.get", &env, "{\"id\":\"0190D2A4-7E1C-7CC3-9A4E-1F2B3C4D5E6F\"}",
                         &out, err, sizeof(err)), TOOL_ERR_FAILED);
    assert_int_equal(run("model.list", &env, NULL, &out, err, sizeof(err)), TOOL_ERR_FAILED);
    assert_int_equal(run("agent.history", &env, NULL, &out, err, sizeof(err)),
                     TOOL_ERR_FAILED);
}

static void test_history_of_a_run_without_session(void **state)
{
    tool_call_env env = {.tenant_id = "acme", .run_id = "0190d2a4-7e1c-7cc3-9a4e-1f2b3c4d5e6f"};
    cJSON *out = NULL;
    char err[300];

    assert_int_equal(run("agent.history", &env, "{\"limit\":5}", &out, err, sizeof(err)),
                     TOOL_OK);
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(out, "session_id")));
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(out, "runs")), 0);
    assert_non_null(strstr(str_of(out, "note"), "not part of a session"));
    char *s = tools_builtin_summary("agent.history", out);
    assert_non_null(strstr(s, "no earlier runs"));
    free(s);
    cJSON_Delete(out);
}

static void test_describe_principal(void **state)
{
    tool_principal p = {.sub = "alice", .tenant_id = "acme", .scope = "jobs:read  cache:read",
                        .roles = "user admin"};
    tool_call_env env = {.tenant_id = "acme", .principal = &p};
    cJSON *out = NULL;
    char err[300];

    assert_int_equal(run("security.describe_principal", &env, "{}", &out, err, sizeof(err)),
                     TOOL_OK);
    char *text = cJSON_PrintUnformatted(out);
    assert_string_equal(text, "{\"sub\":\"alice\",\"tenant_id\":\"acme\","
                              "\"roles\":[\"user\",\"admin\"],"
                              "\"scopes\":[\"jobs:read\",\"cache:read\"]}");
    free(text);
    char *s = tools_builtin_summary("security.describe_principal", out);
    assert_string_equal(s, "acting for alice of tenant acme; roles: user admin; "
                           "scopes: jobs:read cache:read");
    free(s);
    cJSON_Delete(out);

    env.principal = NULL;
    assert_int_equal(run("security.describe_principal", &env, "{}", &out, err, sizeof(err)),
                     TOOL_ERR_FAILED);
}

static const char *const jobs_read[] = {"jobs:read"};

static const tool_manifest_info manifests[] = {
    {"system.time", "The current date and time in UTC.", NULL, 0, true},
    {"jobs.list", "Lists this tenant's jobs, by status.", jobs_read, 1, false},
    {"jobs.get", "One of this tenant's jobs by id.", jobs_read, 1, false},
    {"model.list", "The language models this tenant can use.", NULL, 0, true},
};

static void test_catalog_search_ranks_by_words(void **state)
{
    tool_call_env env = {.tenant_id = "acme", .manifests = manifests, .n_manifests = 4};
    cJSON *out = NULL;
    char err[300];

    assert_int_equal(run("catalog.search", &env, "{\"query\":\"Which tool lists failed JOBS?\"}",
                         &out, err, sizeof(err)), TOOL_OK);
    const cJSON *tools = cJSON_GetObjectItemCaseSensitive(out, "tools");
    /* jobs.list has both words in name and description; jobs.get one;
     * model.list only "list" in its name. system.time none. */
    assert_int_equal(cJSON_GetArraySize(tools), 3);
    assert_string_equal(str_of(cJSON_GetArrayItem(tools, 0), "name"), "jobs.list");
    assert_string_equal(str_of(cJSON_GetArrayItem(tools, 1), "name"), "jobs.get");
    assert_string_equal(str_of(cJSON_GetArrayItem(tools, 2), "name"), "model.list");
    assert_true(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(tools, 0),
                                                               "callable")));
    assert_null(cJSON_GetObjectItemCaseSensitive(out, "note"));
    char *s = tools_builtin_summary("catalog.search", out);
    assert_non_null(strstr(s, "3 tools matched: jobs.list (not callable by you; needs "
                              "jobs:read)"));
    free(s);
    cJSON_Delete(out);
}

static void test_catalog_search_general_query_lists_all(void **state)
{
    tool_call_env env = {.tenant_id = "acme", .manifests = manifests, .n_manifests = 4};
    cJSON *out = NULL;
    char err[300];

    assert_int_equal(run("catalog.search", &env, "{\"query\":\"what can you do?\"}", &out, err,
                         sizeof(err)), TOOL_OK);
    const cJSON *tools = cJSON_GetObjectItemCaseSensitive(out, "tools");
    assert_int_equal(cJSON_GetArraySize(tools), 4);
    assert_string_equal(str_of(cJSON_GetArrayItem(tools, 0), "name"), "jobs.get");
    assert_non_null(str_of(out, "note"));
    cJSON_Delete(out);

    assert_int_equal(run("catalog.search", &env, "{\"query\":\"What tools are available?\"}",
                         &out, err, sizeof(err)), TOOL_OK);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(out, "tools")), 4);
    cJSON_Delete(out);

    env.n_manifests = 0;
    assert_int_equal(run("catalog.search", &env, "{\"query\":\"\"}", &out, err, sizeof(err)),
                     TOOL_OK);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(out, "tools")), 0);
    assert_string_equal(str_of(out, "note"), "this tenant has no tools");
    cJSON_Delete(out);
}

static void test_health_without_connections(void **state)
{
    tool_call_env env = {.worker_id = "w-1", .live = true};
    cJSON *out = NULL;
    char err[300];

    assert_int_equal(run("system.health", &env, NULL, &out, err, sizeof(err)), TOOL_OK);
    assert_string_equal(str_of(out, "status"), "degraded");
    assert_string_equal(str_of(out, "database"), "unreachable");
    assert_string_equal(str_of(out, "redis"), "unreachable");
    char *s = tools_builtin_summary("system.health", out);
    assert_non_null(strstr(s, "worker w-1 (pid "));
    assert_non_null(strstr(s, "database unreachable, redis unreachable"));
    free(s);
    cJSON_Delete(out);
}

/* jobs.list reads "since" with common's RFC 3339 parser, whose own cases
 * are tests/unit/common/test_clock.c's; here only that the tool uses it:
 * the forms it takes get past the input check to the database (missing
 * here), the others are refused as bad input at /since. */
static void test_jobs_list_since_is_rfc3339(void **state)
{
    static const char *const good[] = {
        "1970-01-01T00:00:00Z", "2026-11-21T10:30:00.123Z", "2026-11-21t12:30:00.1+02:00",
        "2024-02-29T00:00:00-00:30",
    };
    static const char *const bad[] = {
        "", "2026-11-21", "2026-11-21T10:30:00", "2026-11-21 10:30:00Z",
        "2025-02-29T00:00:00Z", "2026-11-21T24:00:00Z", "2026-11-21T10:30:00+2:00",
        "2026-11-21T10:30:00.1234567890Z", "today",
    };
    tool_call_env env = {.tenant_id = "acme"};
    char input[128], err[300];

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        cJSON *out = NULL;
        snprintf(input, sizeof(input), "{\"since\":\"%s\"}", good[i]);
        assert_int_equal(run("jobs.list", &env, input, &out, err, sizeof(err)), TOOL_ERR_FAILED);
        if (!strstr(err, "database is unavailable"))
            fail_msg("since \"%s\": %s", good[i], err);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(input, sizeof(input), "{\"since\":\"%s\"}", bad[i]);
        expect_bad_input("jobs.list", input, "/since: ");
    }
}

static void test_summaries(void **state)
{
    cJSON *list = parse("{\"jobs\":[{\"id\":\"j1\",\"type\":\"test\",\"status\":\"failed\","
                        "\"error\":{\"code\":\"test_failure\",\"message\":\"asked to fail\"},"
                        "\"created_at\":\"2026-11-21T10:00:00.000Z\","
                        "\"finished_at\":\"2026-11-21T10:00:01.000Z\"}],\"count\":1,"
                        "\"truncated\":false,\"filter\":{\"status\":\"failed\",\"type\":null,"
                        "\"since\":\"2026-11-21T00:00:00.000Z\",\"limit\":20}}");
    char *s = tools_builtin_summary("jobs.list", list);
    assert_string_equal(s, "1 failed job since 2026-11-21T00:00:00.000Z in this tenant: j1 "
                           "(test, failed: test_failure asked to fail, created "
                           "2026-11-21T10:00:00.000Z, finished 2026-11-21T10:00:01.000Z)");
    free(s);
    cJSON_Delete(list);

    cJSON *none = parse("{\"jobs\":[],\"count\":0,\"truncated\":false,"
                        "\"filter\":{\"status\":\"running\",\"limit\":20}}");
    s = tools_builtin_summary("jobs.list", none);
    assert_string_equal(s, "no running jobs in this tenant");
    free(s);
    cJSON_Delete(none);

    cJSON *missing = parse("{\"id\":\"abc\",\"found\":false,\"job\":null}");
    s = tools_builtin_summary("jobs.get", missing);
    assert_string_equal(s, "no job abc exists in this tenant");
    free(s);
    cJSON_Delete(missing);

    cJSON *models = parse("{\"models\":[{\"provider\":\"builtin\",\"model\":\"m1\","
                          "\"scope\":\"global\",\"is_default\":true}],\"count\":1}");
    s = tools_builtin_summary("model.list", models);
    assert_string_equal(s, "1 model available: builtin/m1 (global, default)");
    free(s);
    cJSON_Delete(models);

    cJSON *hist = parse("{\"session_id\":\"s\",\"runs\":[{\"id\":\"r\",\"prompt\":\"hi\","
                        "\"output\":\"hello\",\"status\":\"succeeded\","
                        "\"created_at\":\"2026-11-21T10:00:00.000Z\"}],\"count\":1}");
    s = tools_builtin_summary("agent.history", hist);
    assert_string_equal(s, "1 earlier run in this session: 2026-11-21T10:00:00.000Z "
                           "[succeeded] \"hi\" -> \"hello\"");
    free(s);
    cJSON_Delete(hist);

    cJSON *got = parse("{\"key\":\"k\",\"found\":true,\"value\":\"v\",\"ttl_s\":30}");
    s = tools_builtin_summary("cache.get", got);
    assert_string_equal(s, "cache key \"k\" holds \"v\" (expires in 30 s)");
    free(s);
    cJSON_Delete(got);

    cJSON *other = parse("{\"a\":1}");
    s = tools_builtin_summary("custom.tool", other);
    assert_string_equal(s, "{\"a\":1}");
    free(s);
    cJSON_Delete(other);
}

/* A tool run with only the job's fields known (no connections, principal
 * or run): enough for system.time and system.health, which then reports
 * no connection state, since none is live. */
static void test_run_with_only_job_fields(void **state)
{
    tool_call_env env = {.worker_id = "w-1", .tenant_id = "acme",
                         .job_id = "0190d2a4-7e1c-7cc3-9a4e-1f2b3c4d5e6f"};
    cJSON *out = NULL;
    char err[200];

    assert_int_equal(run("system.time", &env, NULL, &out, err, sizeof(err)), TOOL_OK);
    cJSON_Delete(out);
    assert_int_equal(run("system.health", &env, NULL, &out, err, sizeof(err)), TOOL_OK);
    assert_string_equal(str_of(out, "worker_id"), "w-1");
    assert_null(cJSON_GetObjectItemCaseSensitive(out, "redis"));    /* not live */
    cJSON_Delete(out);
    out = NULL;
    assert_int_equal(run("nope", &env, NULL, &out, err, sizeof(err)), TOOL_ERR_NOT_FOUND);
}

/* ---- the runtime: catalog and pipeline --------------------------------------------- */

static tool_catalog *test_catalog(void)
{
    static const char *const none[] = {NULL};
    static const char *const cache_write[] = {"cache:write"};
    char err[200];
    tool_catalog *c = tools_catalog_new();
    const tool_manifest_row rows[] = {
        {"system.time", "time", EMPTY_SCHEMA, none, 0, 0, NULL, false},
        {"jobs.list", "list jobs", tools_builtin_find("jobs.list")->input_schema_json,
         jobs_read, 1, 0, NULL, false},
        {"custom.thing", "no handler here", NULL, NULL, 0, 0, NULL, false},
        {"cache.set", "store", tools_builtin_find("cache.set")->input_schema_json,
         cache_write, 1, 5, NULL, false},
        {"cache.delete", "forget", tools_builtin_find("cache.delete")->input_schema_json,
         NULL, 0, 0, NULL, false},
        {"system.health", "health", "not json", NULL, 0, 0, NULL, false},
        {"model.list", "models", "{\"type\":5}", NULL, 0, 0, NULL, false},
    };
    assert_non_null(c);
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        assert_int_equal(tools_catalog_add(c, &rows[i], err, sizeof(err)), 0);
    return c;
}

static tool_principal principal(const char *scope)
{
    tool_principal p = {.sub = "alice", .tenant_id = "acme", .roles = "user"};
    snprintf(p.scope, sizeof(p.scope), "%s", scope);
    return p;
}

static void test_catalog_defs_follow_scopes_and_handlers(void **state)
{
    tool_catalog *c = test_catalog();
    tool_principal reader = principal("jobs:read"), nobody = principal("");
    size_t n;

    const llm_tool_def *d = tools_catalog_defs(c, &reader, &n);
    /* system.time, jobs.list and cache.delete: not model.list, whose
     * schema is JSON the validator refuses to compile */
    assert_int_equal(n, 3);
    assert_string_equal(d[0].name, "system.time");
    assert_string_equal(d[1].name, "jobs.list");
    assert_string_equal(d[1].description, "list jobs");
    assert_string_equal(d[1].parameters_json,
                        tools_builtin_find("jobs.list")->input_schema_json);
    assert_string_equal(d[2].name, "cache.delete");
    const llm_tool_def *d2 = tools_catalog_defs(c, &nobody, &n);
    assert_int_equal(n, 2);
    /* The first array stays valid alongside the second. */
    assert_string_equal(d[1].name, "jobs.list");
    assert_ptr_equal(tools_catalog_defs(c, &reader, &n), d);
    assert_ptr_not_equal(d, d2);

    assert_null(tools_catalog_defs(c, NULL, &n));
    assert_int_equal(n, 0);
    assert_ptr_equal(tools_catalog_defs(c, &nobody, &n), d2);
    assert_int_equal(n, 2);

    assert_true(tools_catalog_has(c, "custom.thing"));
    assert_false(tools_catalog_has(c, "nothing"));
    tools_catalog_free(c);
}

/* Which calls wait for approval: the manifest's flag always; a tool that
 * writes (a built-in write handler, an MCP tool not read-only) only for a
 * run that asks for write tools; a read tool never; an unknown one not. */
static void test_catalog_needs_approval(void **state)
{
    (void)state;
    char err[200];
    tool_catalog *c = tools_catalog_new();
    const tool_manifest_row rows[] = {
        {"system.time", "time", NULL, NULL, 0, 0, NULL, false},
        {"cache.set", "store", NULL, NULL, 0, 0, NULL, false},
        {"cache.delete", "forget", NULL, NULL, 0, 0, NULL, true},
        {"srv.drop", "drop", NULL, NULL, 0, 0,
         &(tool_mcp_row){"srv", "drop", "ready", "tools", "c", false}, false},
        {"srv.look", "look", NULL, NULL, 0, 0,
         &(tool_mcp_row){"srv", "look", "ready", "tools", "c", true}, false},
    };
    assert_non_null(c);
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        assert_int_equal(tools_catalog_add(c, &rows[i], err, sizeof(err)), 0);
    assert_true(tools_catalog_needs_approval(c, "cache.delete", false));
    assert_true(tools_catalog_needs_approval(c, "cache.delete", true));
    assert_false(tools_catalog_needs_approval(c, "cache.set", false));
    assert_true(tools_catalog_needs_approval(c, "cache.set", true));
    assert_false(tools_catalog_needs_approval(c, "srv.drop", false));
    assert_true(tools_catalog_needs_approval(c, "srv.drop", true));
    assert_false(tools_catalog_needs_approval(c, "srv.look", true));
    assert_false(tools_catalog_needs_approval(c, "system.time", true));
    assert_false(tools_catalog_needs_approval(c, "no.such", true));
    tools_catalog_free(c);
}

static void test_catalog_add_checks_and_replaces(void **state)
{
    tool_catalog *c = tools_catalog_new();
    char err[200];
    tool_manifest_row bad = {"bad name", "x", NULL, NULL, 0, 0, NULL, false};
    tool_manifest_row first = {"system.time", "first", NULL, NULL, 0, 0, NULL, false};
    tool_manifest_row second = {"system.time", "second", NULL, NULL, 0, 0, NULL, false};
    size_t n;

    assert_int_equal(tools_catalog_add(c, &bad, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "tool name"));
    assert_int_equal(tools_catalog_add(c, &first, err, sizeof(err)), 0);
    tool_principal p = principal("");
    assert_string_equal(tools_catalog_defs(c, &p, &n)[0].description, "first");
    assert_int_equal(tools_catalog_add(c, &second, err, sizeof(err)), 0);
    const llm_tool_def *d = tools_catalog_defs(c, &p, &n);
    assert_int_equal(n, 1);
    assert_string_equal(d[0].description, "second");
    tools_catalog_free(c);
    tools_catalog_free(NULL);
}

static void test_scope_words_match_exactly(void **state)
{
    tool_principal p = principal("  jobs:readx jobs:write   cache:read ");

    assert_false(tools_principal_has_scope(&p, "jobs:read"));
    assert_true(tools_principal_has_scope(&p, "jobs:write"));
    assert_true(tools_principal_has_scope(&p, "cache:read"));
    assert_false(tools_principal_has_scope(&p, "cache"));
    assert_false(tools_principal_has_scope(&p, ""));
    assert_false(tools_principal_has_scope(NULL, "jobs:write"));
}

/* Calls name with args (JSON text or NULL) and checks the event agrees. */
static void call(tool_catalog *c, const tool_principal *p, const char *name, const char *args,
                 tool_call_result *out)
{
    tool_run_env run = {"0190d2a4-7e1c-7cc3-9a4e-1f2b3c4d5e71", NULL, 0};
    cJSON *a = args ? parse(args) : NULL;
    int before = fake.events;

    tools_call(&fake, c, p, &run, name, a, out);
    cJSON_Delete(a);
    assert_int_equal(fake.events, before + 1);
    assert_string_equal(event_str("status"), tool_status_name(out->status));
    assert_true(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(fake.last_event, "latency_ms")));
    if (out->status == TOOL_CALL_OK) {
        assert_non_null(out->output);
        assert_null(event_str("error"));
        assert_non_null(event_str("output_preview"));
    } else {
        assert_null(out->output);
        assert_string_equal(event_str("error"), out->message);
        assert_null(event_str("output_preview"));
    }
}

static void test_call_ok(void **state)
{
    tool_catalog *c = test_catalog();
    tool_principal p = principal("");
    tool_call_result r;

    call(c, &p, "system.time", NULL, &r);
    assert_int_equal(r.status, TOOL_CALL_OK);
    assert_string_equal(event_str("tool"), "system.time");
    assert_string_equal(event_str("output_preview"), str_of(r.output, "utc"));
    assert_true(r.latency_ms >= 0);
    tool_call_result_free(&r);
    assert_null(r.output);
    tools_catalog_free(c);
}

static void test_call_not_found(void **state)
{
    tool_catalog *c = test_catalog();
    tool_principal p = principal("");
    tool_call_result r;

    call(c, &p, "no.such", NULL, &r);
    assert_int_equal(r.status, TOOL_CALL_NOT_FOUND);
    assert_string_equal(r.message, "no tool named \"no.such\" is available to this tenant");
    call(c, &p, "custom.thing", NULL, &r);
    assert_int_equal(r.status, TOOL_CALL_NOT_FOUND);
    assert_non_null(strstr(r.message, "no handler"));
    /* A made-up name is flattened before it reaches a message or event. */
    call(c, &p, "evil\nname\x01", NULL, &r);
    assert_int_equal(r.status, TOOL_CALL_NOT_FOUND);
    assert_null(strchr(r.message, '\n'));
    assert_null(strchr(event_str("tool"), '\n'));
    call(c, &p, NULL, NULL, &r);
    assert_int_equal(r.status, TOOL_CALL_NOT_FOUND);
    tools_catalog_free(c);
}

static void test_call_invalid_arguments(void **state)
{
    tool_catalog *c = test_catalog();
    tool_principal p = principal("jobs:read");
    tool_call_result r;
    char err[200];
    tool_manifest_row narrowed = {"system.time", "time with a zone",
                                  "{\"type\":\"object\",\"required\":[\"tz\"]}", NULL, 0, 0, NULL, false};

    call(c, &p, "jobs.list", "{\"status\":\"exploded\"}", &r);
    assert_int_equal(r.status, TOOL_CALL_INVALID);
    assert_non_null(strstr(r.message, "invalid arguments for tool \"jobs.list\": /status: "));

    /* A tenant's manifest narrows what the handler would take. */
    assert_int_equal(tools_catalog_add(c, &narrowed, err, sizeof(err)), 0);
    call(c, &p, "system.time", NULL, &r);
    assert_int_equal(r.status, TOOL_CALL_INVALID);
    assert_string_equal(r.message, "invalid arguments for tool \"system.time\": /tz: is required");
    /* ...but cannot widen it: the handler's schema still refuses tz. */
    call(c, &p, "system.time", "{\"tz\":\"UTC\"}", &r);
    assert_int_equal(r.status, TOOL_CALL_INVALID);
    assert_non_null(strstr(r.message, "/tz: "));
    tools_catalog_free(c);
}

static void test_call_denied_without_scope(void **state)
{
    tool_catalog *c = test_catalog();
    tool_principal p = principal("agent-runs:read agent-runs:write");
    tool_call_result r;

    call(c, &p, "jobs.list", "{\"status\":\"failed\"}", &r);
    assert_int_equal(r.status, TOOL_CALL_DENIED);
    assert_string_equal(r.message, "permission denied: the tool \"jobs.list\" needs the scope "
                                   "\"jobs:read\", which the caller's token does not grant");
    /* No principal at all, or one of another tenant: denied too. */
    call(c, NULL, "system.time", NULL, &r);
    assert_int_equal(r.status, TOOL_CALL_DENIED);
    strcpy(p.tenant_id, "other");
    call(c, &p, "system.time", NULL, &r);
    assert_int_equal(r.status, TOOL_CALL_DENIED);
    /* An empty tenant is the job's own. */
    p.tenant_id[0] = '\0';
    call(c, &p, "system.time", NULL, &r);
    assert_int_equal(r.status, TOOL_CALL_OK);
    tool_call_result_free(&r);
    tools_catalog_free(c);
}

static void test_call_rate_limit_without_redis(void **state)
{
    tool_catalog *c = test_catalog();
    tool_principal p = principal("cache:write");
    tool_call_result r;
    char err[200];
    tool_manifest_row limited_time = {"system.time", "time", NULL, NULL, 0, 1, NULL, false};

    /* A reading tool goes ahead when its limit cannot be checked... */
    assert_int_equal(tools_catalog_add(c, &limited_time, err, sizeof(err)), 0);
    call(c, &p, "system.time", NULL, &r);
    assert_int_equal(r.status, TOOL_CALL_OK);
    tool_call_result_free(&r);
    /* ...a writing one does not. */
    call(c, &p, "cache.set", "{\"key\":\"k\",\"value\":\"v\"}", &r);
    assert_int_equal(r.status, TOOL_CALL_FAILED);
    assert_non_null(strstr(r.message, "rate limit cannot be checked"));
    /* Without a limit it reaches its handler, which needs Redis. */
    call(c, &p, "cache.delete", "{\"key\":\"k\"}", &r);
    assert_int_equal(r.status, TOOL_CALL_FAILED);
    assert_non_null(strstr(r.message, "the tool \"cache.delete\" failed: the cache is "
                                      "unavailable"));
    tools_catalog_free(c);
}

static void test_call_with_unusable_schema_fails(void **state)
{
    tool_catalog *c = test_catalog();
    tool_principal p = principal("");
    tool_call_result r;

    call(c, &p, "system.health", NULL, &r);
    assert_int_equal(r.status, TOOL_CALL_FAILED);
    assert_non_null(strstr(r.message, "input schema is not usable JSON"));
    call(c, &p, "model.list", NULL, &r);
    assert_int_equal(r.status, TOOL_CALL_FAILED);
    assert_non_null(strstr(r.message, "cannot be called: its input schema cannot be checked: "
                                      "invalid schema"));
    tools_catalog_free(c);
}

/* ---- manifests of MCP servers ------------------------------------------------- */

static const char *const graph_read[] = {"graph:read"};
static const char *const graph_write[] = {"graph:write"};
static const char *const widgets_write[] = {"widgets:write"};

/* A catalog with the tools of a ready graph server, a pending server and
 * a server whose resource the role matrix does not know. */
static tool_catalog *mcp_catalog(void)
{
    char err[200];
    tool_catalog *c = tools_catalog_new();
    const char *search_schema = "{\"type\":\"object\",\"properties\":{\"query\":"
                                "{\"type\":\"string\"}},\"required\":[\"query\"]}";
    const tool_manifest_row rows[] = {
        {"memory.search_nodes", "search", search_schema, graph_read, 1, 600,
         &(tool_mcp_row){"memory", "search_nodes", "ready", "graph", "c1", true}, false},
        {"memory.create_entities", "create", NULL, graph_write, 1, 600,
         &(tool_mcp_row){"memory", "create_entities", "ready", "graph", "c1", false}, false},
        {"late.echo", "echo", NULL, graph_read, 1, 600,
         &(tool_mcp_row){"late", "echo", "pending", "graph", "c2", true}, false},
        {"shop.order", "order", NULL, widgets_write, 1, 0,
         &(tool_mcp_row){"shop", "order", "ready", "widgets", "c3", false}, false},
        {"system.time", "time", EMPTY_SCHEMA, NULL, 0, 0, NULL, false},
    };
    assert_non_null(c);
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        assert_int_equal(tools_catalog_add(c, &rows[i], err, sizeof(err)), 0);
    return c;
}

static tool_principal with_roles(const char *scope, const char *roles)
{
    tool_principal p = principal(scope);
    snprintf(p.roles, sizeof(p.roles), "%s", roles);
    return p;
}

static void test_mcp_tools_offered_by_scope_role_and_status(void **state)
{
    tool_catalog *c = mcp_catalog();
    tool_principal user = with_roles("graph:read graph:write widgets:write", "user");
    tool_principal admin = with_roles("graph:read graph:write widgets:write", "viewer admin");
    size_t n;

    /* A user may read the graph but not change it; the pending server's
     * tool is offered to nobody; "widgets" is no resource of the matrix,
     * so its scope alone decides. */
    const llm_tool_def *d = tools_catalog_defs(c, &user, &n);
    assert_int_equal(n, 3);
    assert_string_equal(d[0].name, "memory.search_nodes");
    assert_string_equal(d[1].name, "shop.order");
    assert_string_equal(d[2].name, "system.time");
    d = tools_catalog_defs(c, &admin, &n);
    assert_int_equal(n, 4);
    assert_string_equal(d[1].name, "memory.create_entities");

    char name[130];
    assert_true(tools_catalog_mcp_tool(c, "graph", "search_nodes", name, sizeof(name)));
    assert_string_equal(name, "memory.search_nodes");
    assert_false(tools_catalog_mcp_tool(c, "graph", "echo", name, sizeof(name)));
    assert_false(tools_catalog_mcp_tool(c, "tools", "search_nodes", name, sizeof(name)));
    tools_catalog_free(c);
}

static void test_mcp_call_refusals(void **state)
{
    tool_catalog *c = mcp_catalog();
    tool_principal user = with_roles("graph:read graph:write", "user");
    tool_principal reader = with_roles("", "admin");
    tool_call_result r;

    call(c, &user, "memory.create_entities", "{}", &r);
    assert_int_equal(r.status, TOOL_CALL_DENIED);
    assert_string_equal(r.message, "permission denied: the tool \"memory.create_entities\" "
                        "needs \"graph:write\", and the caller's roles (user) do not allow "
                        "changing data on graph");
    call(c, &reader, "memory.search_nodes", "{\"query\":\"x\"}", &r);
    assert_int_equal(r.status, TOOL_CALL_DENIED);
    assert_non_null(strstr(r.message, "needs the scope \"graph:read\""));
    call(c, &user, "late.echo", "{}", &r);
    assert_int_equal(r.status, TOOL_CALL_FAILED);
    assert_non_null(strstr(r.message, "its MCP server \"late\" is not ready (status "
                                      "pending)"));
    call(c, &user, "memory.search_nodes", "{}", &r);
    assert_int_equal(r.status, TOOL_CALL_INVALID);
    /* Allowed, but with no database its server cannot be read. */
    call(c, &user, "memory.search_nodes", "{\"query\":\"x\"}", &r);
    assert_int_equal(r.status, TOOL_CALL_FAILED);
    assert_non_null(strstr(r.message, "the MCP server \"memory\" cannot be used"));
    tools_catalog_free(c);
}

static void test_mcp_write_tool_fails_closed_without_redis(void **state)
{
    tool_catalog *c = mcp_catalog();
    tool_principal admin = with_roles("graph:write", "admin");
    tool_call_result r;

    call(c, &admin, "memory.create_entities", "{}", &r);
    assert_int_equal(r.status, TOOL_CALL_FAILED);
    assert_non_null(strstr(r.message, "rate limit cannot be checked"));
    tools_catalog_free(c);
}

static void test_mcp_schema_the_validator_cannot_check(void **state)
{
    static const char *const none[] = {NULL};
    char err[200], why[200];
    tool_catalog *c = tools_catalog_new();
    tool_manifest_row row = {"srv.refy", "r", "{\"type\":\"object\",\"properties\":{\"a\":"
                             "{\"if\":{\"type\":\"string\"}}}}", none, 0, 0,
                             &(tool_mcp_row){"srv", "refy", "ready", "tools", "c", true}, false};
    size_t n;
    tool_principal p = with_roles("", "admin");
    tool_call_result r;

    assert_int_equal(tools_catalog_add(c, &row, err, sizeof(err)), 0);
    tools_catalog_defs(c, &p, &n);
    assert_int_equal(n, 0);
    call(c, &p, "srv.refy", "{}", &r);
    assert_int_equal(r.status, TOOL_CALL_FAILED);
    assert_non_null(strstr(r.message, "cannot be called: its input schema cannot be checked"));
    assert_non_null(strstr(r.message, "'if'"));
    assert_false(tools_schema_check("{\"$ref\":\"https://example.com/s.json\"}", why,
                                    sizeof(why)));
    assert_non_null(strstr(why, "invalid schema"));
    /* What the validator supports is usable: local $ref, anyOf, ... */
    assert_true(tools_schema_check("{\"$schema\":\"http://json-schema.org/draft-07/schema#\","
                                   "\"type\":\"object\",\"properties\":{\"q\":{\"anyOf\":"
                                   "[{\"type\":\"string\"},{\"$ref\":\"#/$defs/n\"}]}},"
                                   "\"$defs\":{\"n\":{\"type\":\"number\"}}}", why,
                                   sizeof(why)));
    assert_false(tools_schema_check("[1]", why, sizeof(why)));
    tools_catalog_free(c);
}

static void test_model_names_fit_function_names(void **state)
{
    char err[200], longname[80];
    tool_catalog *c = tools_catalog_new();
    /* Two names a model would read as the same "srv__a__b": the first one
     * is offered. 63 bytes with two dots are 65 characters as a function
     * name: too long, never offered. */
    memset(longname, 'a', sizeof(longname));
    memcpy(longname, "srv.x.", 6);
    longname[63] = '\0';
    tool_manifest_row rows[] = {
        {"srv.a__b", "one", NULL, NULL, 0, 0,
         &(tool_mcp_row){"srv", "a__b", "ready", "tools", "c", true}, false},
        {"srv.a.b", "same as a model reads it", NULL, NULL, 0, 0,
         &(tool_mcp_row){"srv", "a.b", "ready", "tools", "c", true}, false},
        {longname, "too long as a function name", NULL, NULL, 0, 0,
         &(tool_mcp_row){"srv", longname + 4, "ready", "tools", "c", true}, false},
    };
    tool_principal p = with_roles("", "admin");
    size_t n;

    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        assert_int_equal(tools_catalog_add(c, &rows[i], err, sizeof(err)), 0);
    const llm_tool_def *d = tools_catalog_defs(c, &p, &n);
    assert_int_equal(n, 1);
    assert_string_equal(d[0].name, "srv.a__b");
    assert_true(tools_catalog_has(c, "srv.a.b"));
    tools_catalog_free(c);
}

static void test_mcp_output_summaries(void **state)
{
    tool_catalog *c = mcp_catalog();
    cJSON *graph = parse("{\"content\":\"{...}\",\"isError\":false,\"structuredContent\":"
                         "{\"entities\":[{\"name\":\"Alice\",\"entityType\":\"person\","
                         "\"observations\":[\"works at Acme\"]},{\"name\":\"Acme\","
                         "\"entityType\":\"company\",\"observations\":[]}],\"relations\":"
                         "[{\"from\":\"Alice\",\"to\":\"Acme\",\"relationType\":"
                         "\"works_at\"}]}}");
    char *s = tools_output_summary(c, "memory.search_nodes", graph);
    assert_string_equal(s, "2 entities: Alice (person: works at Acme), Acme (company); "
                           "1 relation: Alice works_at Acme");
    free(s);
    cJSON *text = parse("{\"content\":\"Echo: hi\\nthere\",\"isError\":false}");
    s = tools_output_summary(c, "memory.search_nodes", text);
    assert_string_equal(s, "Echo: hi there");
    free(s);
    /* A built-in tool keeps its own summary. */
    cJSON *t = parse("{\"utc\":\"2026-01-01T00:00:00.000Z\"}");
    s = tools_output_summary(c, "system.time", t);
    assert_string_equal(s, "2026-01-01T00:00:00.000Z");
    free(s);
    cJSON_Delete(graph);
    cJSON_Delete(text);
    cJSON_Delete(t);
    tools_catalog_free(c);
}

static void test_status_names(void **state)
{
    assert_string_equal(tool_status_name(TOOL_CALL_OK), "ok");
    assert_string_equal(tool_status_name(TOOL_CALL_NOT_FOUND), "not_found");
    assert_string_equal(tool_status_name(TOOL_CALL_INVALID), "invalid");
    assert_string_equal(tool_status_name(TOOL_CALL_DENIED), "denied");
    assert_string_equal(tool_status_name(TOOL_CALL_RATE_LIMITED), "rate_limited");
    assert_string_equal(tool_status_name(TOOL_CALL_FAILED), "failed");
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup_ctx, teardown_ctx)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_every_schema_is_a_closed_object),
        T(test_seeded_manifests_match_the_handlers),
        T(test_system_time),
        T(test_input_is_checked_against_the_tools_schema),
        T(test_cache_keys),
        T(test_cache_tools_without_redis),
        T(test_cache_value_limit_is_bytes),
        T(test_database_tools_without_a_database),
        T(test_history_of_a_run_without_session),
        T(test_describe_principal),
        T(test_catalog_search_ranks_by_words),
        T(test_catalog_search_general_query_lists_all),
        T(test_health_without_connections),
        T(test_jobs_list_since_is_rfc3339),
        T(test_summaries),
        T(test_run_with_only_job_fields),
        T(test_catalog_defs_follow_scopes_and_handlers),
        T(test_catalog_add_checks_and_replaces),
        T(test_catalog_needs_approval),
        T(test_scope_words_match_exactly),
        T(test_call_ok),
        T(test_call_not_found),
        T(test_call_invalid_arguments),
        T(test_call_denied_without_scope),
        T(test_call_rate_limit_without_redis),
        T(test_call_with_unusable_schema_fails),
        T(test_mcp_tools_offered_by_scope_role_and_status),
        T(test_mcp_call_refusals),
        T(test_mcp_write_tool_fails_closed_without_redis),
        T(test_mcp_schema_the_validator_cannot_check),
        T(test_model_names_fit_function_names),
        T(test_mcp_output_summaries),
        T(test_status_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
