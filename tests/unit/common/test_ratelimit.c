/*
 * test_ratelimit.c - unit tests for the Redis token bucket's client side:
 * key building (no outside string can reshape a key), the EVALSHA/EVAL
 * command, and reading the script's answer. The script itself runs in
 * Redis; the integration tests drive it through a rate-limited tool.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <hiredis/hiredis.h>
#include <mbedtls/sha1.h>
#include <mbedtls/version.h>

#include "ratelimit.h"

static void test_tool_key(void **state)
{
    char key[RATELIMIT_KEY_MAX];

    assert_non_null(ratelimit_key_tool(key, sizeof(key), "acme-1", "system.time"));
    assert_string_equal(key, "rate:acme-1:tool:system.time");
    assert_non_null(ratelimit_key_tool(key, sizeof(key), "t.x_y", "jobs.list"));
    assert_string_equal(key, "rate:t.x_y:tool:jobs.list");
}

static void test_general_keys(void **state)
{
    char key[RATELIMIT_KEY_MAX];

    assert_non_null(ratelimit_key(key, sizeof(key), "acme", NULL, "http:submit"));
    assert_string_equal(key, "rate:acme:http:submit");
    assert_non_null(ratelimit_key(key, sizeof(key), "acme", "user@example.com|7", "runs"));
    assert_string_equal(key, "rate:acme:user@example.com|7:runs");
}

static void test_bad_parts_give_no_key(void **state)
{
    char key[RATELIMIT_KEY_MAX];
    char long_name[200];

    memset(long_name, 'a', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    const char *bad_tenants[] = {"", "a b", "a:b", "a*", "x\n", NULL};
    for (size_t i = 0; i < sizeof(bad_tenants) / sizeof(bad_tenants[0]); i++) {
        strcpy(key, "junk");
        assert_null(ratelimit_key_tool(key, sizeof(key), bad_tenants[i], "system.time"));
        assert_string_equal(key, "");
    }
    assert_null(ratelimit_key_tool(key, sizeof(key), "acme", "a:b"));
    assert_null(ratelimit_key_tool(key, sizeof(key), "acme", "sys tem"));
    assert_null(ratelimit_key_tool(key, sizeof(key), "acme", ""));
    assert_null(ratelimit_key_tool(key, sizeof(key), "acme", NULL));
    assert_null(ratelimit_key_tool(key, sizeof(key), "acme", long_name));
    /* A sub may not pose as "sub:action", nor carry spaces or controls. */
    assert_null(ratelimit_key(key, sizeof(key), "acme", "u:x", "runs"));
    assert_null(ratelimit_key(key, sizeof(key), "acme", "u x", "runs"));
    assert_null(ratelimit_key(key, sizeof(key), "acme", "u\x01", "runs"));
    assert_null(ratelimit_key(key, sizeof(key), "acme", "", "runs"));
    assert_null(ratelimit_key(key, sizeof(key), "acme", NULL, "a b"));
    /* 65 characters: longer than any tenant id. */
    assert_null(ratelimit_key(key, sizeof(key), long_name + 200 - 1 - 65, NULL, "x"));
}

static void test_key_that_does_not_fit_is_refused(void **state)
{
    char small[16];

    strcpy(small, "junk");
    assert_null(ratelimit_key_tool(small, sizeof(small), "acme", "system.time"));
    assert_string_equal(small, "");
}

/* EVALSHA names the bucket script by the SHA-1 of its text. */
static void test_script_sha1(void **state)
{
    ratelimit_cmd cmd;
    unsigned char digest[20];
    char hex[41];

    assert_int_equal(ratelimit_cmd_build(&cmd, false, "k", 5, 1000, 1), 0);
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
    mbedtls_sha1((const unsigned char *)ratelimit_lua, strlen(ratelimit_lua), digest);
#else
    mbedtls_sha1_ret((const unsigned char *)ratelimit_lua, strlen(ratelimit_lua), digest);
#endif
    for (int i = 0; i < 20; i++)
        snprintf(hex + 2 * i, 3, "%02x", digest[i]);
    assert_string_equal(cmd.argv[1], hex);
}

static void test_evalsha_command(void **state)
{
    ratelimit_cmd cmd;

    assert_int_equal(ratelimit_cmd_build(&cmd, false, "rate:a:tool:x", 60, 60000, 1), 0);
    assert_int_equal(cmd.argc, 7);
    assert_string_equal(cmd.argv[0], "EVALSHA");
    assert_int_equal(strlen(cmd.argv[1]), 40);
    assert_string_equal(cmd.argv[2], "1");
    assert_string_equal(cmd.argv[3], "rate:a:tool:x");
    assert_string_equal(cmd.argv[4], "60");
    assert_string_equal(cmd.argv[5], "60000");
    assert_string_equal(cmd.argv[6], "1");
    for (int i = 0; i < cmd.argc; i++)
        assert_int_equal(cmd.argvlen[i], strlen(cmd.argv[i]));
}

static void test_eval_command_carries_the_script(void **state)
{
    ratelimit_cmd cmd;

    assert_int_equal(ratelimit_cmd_build(&cmd, true, "k", 5, 1000, 5), 0);
    assert_string_equal(cmd.argv[0], "EVAL");
    assert_ptr_equal(cmd.argv[1], ratelimit_lua);
    assert_int_equal(cmd.argvlen[1], strlen(ratelimit_lua));
    assert_string_equal(cmd.argv[6], "5");
}

static void test_command_ranges(void **state)
{
    ratelimit_cmd cmd;

    assert_int_equal(ratelimit_cmd_build(&cmd, false, "k", 0, 1000, 1), -1);
    assert_int_equal(ratelimit_cmd_build(&cmd, false, "k", 10, 0, 1), -1);
    assert_int_equal(ratelimit_cmd_build(&cmd, false, "k", 10, 1000, 0), -1);
    assert_int_equal(ratelimit_cmd_build(&cmd, false, "k", 10, 1000, 11), -1);
    assert_int_equal(ratelimit_cmd_build(&cmd, false, "k", 2000000000LL, 1000, 1), -1);
    assert_int_equal(ratelimit_cmd_build(&cmd, false, "k", 10, 20000000000LL, 1), -1);
    assert_int_equal(ratelimit_cmd_build(&cmd, false, "", 10, 1000, 1), -1);
    assert_int_equal(ratelimit_cmd_build(&cmd, false, NULL, 10, 1000, 1), -1);
    assert_int_equal(ratelimit_cmd_build(NULL, false, "k", 10, 1000, 1), -1);
}

/* ---- replies, built by hand ------------------------------------------- */

typedef struct fake_reply {
    redisReply top;
    redisReply items[3];
    redisReply *ptrs[3];
} fake_reply;

static redisReply *numbers(fake_reply *f, long long a, long long b, long long c)
{
    long long v[3] = {a, b, c};
    memset(f, 0, sizeof(*f));
    f->top.type = REDIS_REPLY_ARRAY;
    f->top.elements = 3;
    f->top.element = f->ptrs;
    for (int i = 0; i < 3; i++) {
        f->items[i].type = REDIS_REPLY_INTEGER;
        f->items[i].integer = v[i];
        f->ptrs[i] = &f->items[i];
    }
    return &f->top;
}

static void test_reply_allowed_and_refused(void **state)
{
    fake_reply f;
    ratelimit_result r;
    char err[128];

    assert_int_equal(ratelimit_parse_reply(numbers(&f, 1, 4, 0), &r, err, sizeof(err)),
                     RATELIMIT_DECIDED);
    assert_true(r.allowed);
    assert_int_equal(r.remaining, 4);
    assert_int_equal(r.retry_after_ms, 0);

    assert_int_equal(ratelimit_parse_reply(numbers(&f, 0, 0, 1500), &r, err, sizeof(err)),
                     RATELIMIT_DECIDED);
    assert_false(r.allowed);
    assert_int_equal(r.remaining, 0);
    assert_int_equal(r.retry_after_ms, 1500);
}

static void test_reply_noscript_and_errors(void **state)
{
    redisReply e = {0};
    fake_reply f;
    ratelimit_result r;
    char err[128];

    e.type = REDIS_REPLY_ERROR;
    e.str = "NOSCRIPT No matching script. Please use EVAL.";
    e.len = strlen(e.str);
    assert_int_equal(ratelimit_parse_reply(&e, &r, err, sizeof(err)), RATELIMIT_NOSCRIPT);

    e.str = "ERR ratelimit: bad arguments";
    err[0] = '\0';
    assert_int_equal(ratelimit_parse_reply(&e, &r, err, sizeof(err)), RATELIMIT_ERROR);
    assert_non_null(strstr(err, "bad arguments"));

    assert_int_equal(ratelimit_parse_reply(NULL, &r, err, sizeof(err)), RATELIMIT_ERROR);

    redisReply *top = numbers(&f, 1, 2, 0);
    top->elements = 2;
    assert_int_equal(ratelimit_parse_reply(top, &r, err, sizeof(err)), RATELIMIT_ERROR);

    top = numbers(&f, 2, 2, 0);     /* a decision is 0 or 1 */
    assert_int_equal(ratelimit_parse_reply(top, &r, err, sizeof(err)), RATELIMIT_ERROR);

    top = numbers(&f, 1, -1, 0);
    assert_int_equal(ratelimit_parse_reply(top, &r, err, sizeof(err)), RATELIMIT_ERROR);

    top = numbers(&f, 1, 2, 0);
    f.items[1].type = REDIS_REPLY_STRING;
    f.items[1].str = "2";
    assert_int_equal(ratelimit_parse_reply(top, &r, err, sizeof(err)), RATELIMIT_ERROR);

    redisReply status = {0};
    status.type = REDIS_REPLY_STATUS;
    status.str = "OK";
    assert_int_equal(ratelimit_parse_reply(&status, &r, err, sizeof(err)), RATELIMIT_ERROR);
}

static void test_take_without_connection(void **state)
{
    ratelimit_result r;
    char err[128] = "";

    assert_int_equal(ratelimit_take(NULL, "k", 1, 1000, 1, &r, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "not connected"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tool_key),
        cmocka_unit_test(test_general_keys),
        cmocka_unit_test(test_bad_parts_give_no_key),
        cmocka_unit_test(test_key_that_does_not_fit_is_refused),
        cmocka_unit_test(test_script_sha1),
        cmocka_unit_test(test_evalsha_command),
        cmocka_unit_test(test_eval_command_carries_the_script),
        cmocka_unit_test(test_command_ranges),
        cmocka_unit_test(test_reply_allowed_and_refused),
        cmocka_unit_test(test_reply_noscript_and_errors),
        cmocka_unit_test(test_take_without_connection),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
