/*
 * test_redis_script.c - scripts named by SHA-1 for EVALSHA, the words of
 * either form of the command, and the NOSCRIPT test.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "redis_script.h"

static redis_script abc = REDIS_SCRIPT("abc");

/* SHA-1("abc") from FIPS 180-2's example. */
static void test_sha_is_the_sha1_of_the_text(void **state)
{
    (void)state;
    assert_string_equal(redis_script_sha(&abc), "a9993e364706816aba3e25717850c26c9cd0d89d");
    assert_ptr_equal(redis_script_sha(&abc), redis_script_sha(&abc));  /* computed once */
}

static void test_head_by_sha_or_by_text(void **state)
{
    (void)state;
    const char *cmd, *arg;
    redis_script_head(&abc, false, &cmd, &arg);
    assert_string_equal(cmd, "EVALSHA");
    assert_string_equal(arg, "a9993e364706816aba3e25717850c26c9cd0d89d");
    redis_script_head(&abc, true, &cmd, &arg);
    assert_string_equal(cmd, "EVAL");
    assert_string_equal(arg, "abc");
}

static void test_noscript_is_recognised(void **state)
{
    (void)state;
    const char *e = "NOSCRIPT No matching script. Please use EVAL.";
    assert_true(redis_script_missing(e, strlen(e)));
    assert_false(redis_script_missing("ERR wrong number of arguments", 29));
    assert_false(redis_script_missing("NOSCR", 5));
    assert_false(redis_script_missing(NULL, 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha_is_the_sha1_of_the_text),
        cmocka_unit_test(test_head_by_sha_or_by_text),
        cmocka_unit_test(test_noscript_is_recognised),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
