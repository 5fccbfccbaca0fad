/*
 * test_events.c - event bodies byte for byte, event_peek's validation, the
 * type sets, and the Redis script call that appends an event.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "events.h"

#define JOB "0190a6f2-7c3e-7a10-8b2c-1234567890ab"
#define TS_MS 1795257000123LL   /* 2026-11-21T10:30:00.123Z */

static void test_encode_exact(void **state)
{
    (void)state;
    char *b = event_encode(JOB, 7, "step.completed", TS_MS, "{\"step\":2,\"ok\":true}");
    assert_non_null(b);
    assert_string_equal(b,
        "{\"id\":7,\"job_id\":\"" JOB "\",\"type\":\"step.completed\","
        "\"ts\":\"2026-11-21T10:30:00.123Z\",\"data\":{\"step\":2,\"ok\":true}}");
    free(b);

    /* Any JSON value goes in verbatim. */
    b = event_encode(JOB, 1, "log", 0, "[1,\"two\"]");
    assert_non_null(b);
    assert_string_equal(b,
        "{\"id\":1,\"job_id\":\"" JOB "\",\"type\":\"log\","
        "\"ts\":\"1970-01-01T00:00:00.000Z\",\"data\":[1,\"two\"]}");
    free(b);
}

static void test_encode_null_data(void **state)
{
    (void)state;
    char *b = event_encode(JOB, 123456789012LL, "job.queued", TS_MS + 877, NULL);
    assert_non_null(b);
    assert_string_equal(b,
        "{\"id\":123456789012,\"job_id\":\"" JOB "\",\"type\":\"job.queued\","
        "\"ts\":\"2026-11-21T10:30:01.000Z\",\"data\":{}}");
    free(b);
}

static void test_encode_escapes(void **state)
{
    (void)state;
    char *b = event_encode("a\"b\\c\nd\x01\x1f\te", 2, "x\"y", TS_MS, "{}");
    assert_non_null(b);
    assert_string_equal(b,
        "{\"id\":2,\"job_id\":\"a\\\"b\\\\c\\nd\\u0001\\u001f\\te\","
        "\"type\":\"x\\\"y\",\"ts\":\"2026-11-21T10:30:00.123Z\",\"data\":{}}");
    free(b);

    assert_null(event_encode(NULL, 1, "log", TS_MS, NULL));
    assert_null(event_encode(JOB, 1, NULL, TS_MS, NULL));
}

static void test_encode_then_peek(void **state)
{
    (void)state;
    char *b = event_encode(JOB, 42, "llm.delta", TS_MS, "{\"text\":\"hé \\\"q\\\"\"}");
    assert_non_null(b);
    long long seq = 0;
    char type[EVENT_TYPE_MAX] = "";
    assert_int_equal(event_peek(b, strlen(b), &seq, type, sizeof type), 0);
    assert_int_equal(seq, 42);
    assert_string_equal(type, "llm.delta");

    /* Only len bytes count: a cut body is malformed. */
    assert_int_equal(event_peek(b, strlen(b) - 1, &seq, type, sizeof type), -1);
    free(b);
}

/* Expects body to be refused, leaving the outputs alone. */
static void expect_peek_fails(const char *body)
{
    long long seq = -99;
    char type[EVENT_TYPE_MAX] = "keep";
    if (event_peek(body, strlen(body), &seq, type, sizeof type) != -1)
        fail_msg("accepted %s", body);
    assert_int_equal(seq, -99);
    assert_string_equal(type, "keep");
}

static void test_peek_rejects(void **state)
{
    (void)state;
    /* Malformed. */
    expect_peek_fails("");
    expect_peek_fails("{");
    expect_peek_fails("not json");
    expect_peek_fails("{\"id\":1,\"type\":\"log\"} trailing");
    expect_peek_fails("[1,\"log\"]");
    expect_peek_fails("\"log\"");
    /* Unknown or missing type. */
    expect_peek_fails("{\"id\":1,\"type\":\"job.exploded\"}");
    expect_peek_fails("{\"id\":1,\"type\":\"\"}");
    expect_peek_fails("{\"id\":1,\"type\":5}");
    expect_peek_fails("{\"id\":1}");
    /* Bad or missing id. */
    expect_peek_fails("{\"id\":-3,\"type\":\"log\"}");
    expect_peek_fails("{\"id\":0,\"type\":\"log\"}");
    expect_peek_fails("{\"id\":1.5,\"type\":\"log\"}");
    expect_peek_fails("{\"id\":\"7\",\"type\":\"log\"}");
    expect_peek_fails("{\"id\":true,\"type\":\"log\"}");
    expect_peek_fails("{\"id\":1e300,\"type\":\"log\"}");
    expect_peek_fails("{\"type\":\"log\"}");
    /* Deeper than the event nesting bound. */
    expect_peek_fails("{\"id\":1,\"type\":\"log\",\"data\":[[[[[[[[[[1]]]]]]]]]]}");
    assert_int_equal(event_peek(NULL, 0, NULL, NULL, 0), -1);
}

static void test_peek_type_buffer(void **state)
{
    (void)state;
    const char *b = "{\"id\":3,\"type\":\"step.completed\",\"data\":{}}";
    char small[14];     /* "step.completed" needs 15 */
    long long seq = 0;
    assert_int_equal(event_peek(b, strlen(b), &seq, small, sizeof small), -1);
    char fit[15];
    assert_int_equal(event_peek(b, strlen(b), &seq, fit, sizeof fit), 0);
    assert_string_equal(fit, "step.completed");
    assert_int_equal(seq, 3);
    /* Outputs are optional. */
    assert_int_equal(event_peek(b, strlen(b), NULL, NULL, 0), 0);
}

static void test_type_sets(void **state)
{
    (void)state;
    const char *known[] = { "job.queued", "job.started", "job.progress", "job.retrying",
                            "step.started", "step.completed", "llm.delta", "tool.called",
                            "log", "job.succeeded", "job.failed", "job.cancelled" };
    int terminal = 0;
    for (size_t i = 0; i < sizeof known / sizeof *known; i++) {
        assert_true(event_type_known(known[i]));
        assert_true(strlen(known[i]) < EVENT_TYPE_MAX);
        terminal += event_type_terminal(known[i]);
    }
    assert_int_equal(terminal, 3);
    assert_true(event_type_terminal("job.succeeded"));
    assert_true(event_type_terminal("job.failed"));
    assert_true(event_type_terminal("job.cancelled"));
    assert_false(event_type_terminal("job.progress"));
    assert_false(event_type_terminal("job.queued"));

    const char *unknown[] = { "", "job", "job.", "Job.queued", "job.queued ", "logs",
                              "job.cancelling", "step" };
    for (size_t i = 0; i < sizeof unknown / sizeof *unknown; i++) {
        assert_false(event_type_known(unknown[i]));
        assert_false(event_type_terminal(unknown[i]));
    }
    assert_false(event_type_known(NULL));
    assert_false(event_type_terminal(NULL));
}

/* Checks one command's arguments against the expected strings. */
static void assert_argv(const redis_argv *c, int argc, ...)
{
    assert_int_equal(c->argc, argc);
    va_list ap;
    va_start(ap, argc);
    for (int i = 0; i < argc; i++) {
        const char *want = va_arg(ap, const char *);
        assert_int_equal(c->argvlen[i], strlen(want));
        assert_memory_equal(c->argv[i], want, strlen(want));
    }
    va_end(ap);
}

#define APPEND_SHA "fed16c9185d8a0d4309f3d155938dc6852462eef"

static void test_append_script_sha(void **state)
{
    (void)state;
    /* The SHA1 of event_append_lua, as Redis's SCRIPT LOAD names it
     * (python3 -c 'import hashlib; print(hashlib.sha1(script).hexdigest())'):
     * a wrong digest would turn every EVALSHA into NOSCRIPT. Changing the
     * script changes this. */
    assert_string_equal(event_append_sha(), APPEND_SHA);
    assert_ptr_equal(event_append_sha(), event_append_sha());
    /* Every step of the append is in the one script. */
    const char *steps[] = { "'RPUSH',ring,body", "'LTRIM',ring", "'EXPIRE',ring",
                            "'HSET',state,'last_event_id'", "'EXPIRE',state",
                            "'PUBLISH',channel,body",
                            "append(KEYS[1],KEYS[2],ARGV[1],tonumber(ARGV[2]),ARGV[3],"
                            "ARGV[4],ARGV[5],ARGV[6])" };
    for (size_t i = 0; i < sizeof steps / sizeof *steps; i++)
        if (strstr(event_append_lua, steps[i]) == NULL)
            fail_msg("script lacks %s", steps[i]);
}

static void test_append_command(void **state)
{
    (void)state;
    const char *body = "{\"id\":7,\"type\":\"log\"}";
    size_t len = strlen(body);
    event_keys keys;
    redis_argv cmd;
    memset(&cmd, 0x5a, sizeof cmd);
    event_append_command(&cmd, true, JOB, 7, body, len, NULL, 1000, 86400, &keys);

    assert_string_equal(keys.events, "jobs:events:" JOB);
    assert_string_equal(keys.notify, "jobs:notify:" JOB);
    assert_string_equal(keys.state, "jobs:state:" JOB);

    assert_argv(&cmd, 11, "EVALSHA", APPEND_SHA, "2", "jobs:events:" JOB,
                "jobs:state:" JOB, "jobs:notify:" JOB, "1000", "86400", "7", body, "");

    /* The body is referenced, not copied, and may hold any bytes. */
    assert_ptr_equal(cmd.argv[9], body);
    /* Numbers live in the command's own storage. */
    assert_ptr_equal(cmd.argv[6], cmd.numbuf[0]);
    assert_ptr_equal(cmd.argv[7], cmd.numbuf[1]);
    assert_ptr_equal(cmd.argv[8], cmd.numbuf[2]);

    /* The fallback carries the script's text; a status rides along. */
    event_append_command(&cmd, false, JOB, 8, body, len, "queued", 50, 60, &keys);
    assert_argv(&cmd, 11, "EVAL", event_append_lua, "2", "jobs:events:" JOB,
                "jobs:state:" JOB, "jobs:notify:" JOB, "50", "60", "8", body, "queued");
}

static void test_append_command_bounds(void **state)
{
    (void)state;
    const char body[] = "{\"a\":\"x\0y\"}";     /* an embedded NUL is kept */
    event_keys keys;
    redis_argv cmd;
    event_append_command(&cmd, true, JOB, 9007199254740991LL, body, sizeof body - 1,
                         NULL, 1, 1, &keys);
    assert_int_equal(cmd.argc, 11);
    assert_string_equal(cmd.argv[6], "1");
    assert_string_equal(cmd.argv[7], "1");
    assert_string_equal(cmd.argv[8], "9007199254740991");
    assert_int_equal(cmd.argvlen[8], 16);
    assert_int_equal(cmd.argvlen[9], sizeof body - 1);
    assert_memory_equal(cmd.argv[9], body, sizeof body - 1);

    /* Nonsense bounds cannot turn into "keep everything" or "delete now". */
    event_append_command(&cmd, true, JOB, 1, body, sizeof body - 1, NULL, 0, -5, &keys);
    assert_string_equal(cmd.argv[6], "1");
    assert_string_equal(cmd.argv[7], "1");
}

static void test_argv_of(void **state)
{
    (void)state;
    redis_argv cmd;
    redis_argv_of(&cmd, "LPUSH", "k", "v", (const char *)NULL);
    assert_argv(&cmd, 3, "LPUSH", "k", "v");
    /* Capped at REDIS_ARGV_MAX, never past the arrays. */
    redis_argv_of(&cmd, "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m",
                  "n", "o", "p", "q", (const char *)NULL);
    assert_int_equal(cmd.argc, REDIS_ARGV_MAX);
    assert_string_equal(cmd.argv[REDIS_ARGV_MAX - 1], "p");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_exact),
        cmocka_unit_test(test_encode_null_data),
        cmocka_unit_test(test_encode_escapes),
        cmocka_unit_test(test_encode_then_peek),
        cmocka_unit_test(test_peek_rejects),
        cmocka_unit_test(test_peek_type_buffer),
        cmocka_unit_test(test_type_sets),
        cmocka_unit_test(test_append_script_sha),
        cmocka_unit_test(test_append_command),
        cmocka_unit_test(test_append_command_bounds),
        cmocka_unit_test(test_argv_of),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
