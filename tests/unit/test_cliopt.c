/*
 * test_cliopt.c - cliopt_value: "--name V" and "--name=V", other options
 * and prefixes left alone, a value missing at the end of argv.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "cliopt.h"

#define ARGC(a) ((int)(sizeof(a) / sizeof *(a)))

static void test_separate_value(void **state)
{
    (void)state;
    char *argv[] = { "prog", "--dir", "sql", "--status" };
    int i = 1;
    bool missing = false;
    assert_string_equal(cliopt_value(ARGC(argv), argv, &i, "--dir", &missing), "sql");
    assert_int_equal(i, 2);            /* past the value */
    assert_false(missing);
}

static void test_equals_value(void **state)
{
    (void)state;
    char *argv[] = { "prog", "--dir=sql", "--config=" };
    int i = 1;
    bool missing = false;
    assert_string_equal(cliopt_value(ARGC(argv), argv, &i, "--dir", &missing), "sql");
    assert_int_equal(i, 1);
    i = 2;
    assert_string_equal(cliopt_value(ARGC(argv), argv, &i, "--config", &missing), "");
    assert_int_equal(i, 2);
    assert_false(missing);
}

static void test_other_arguments(void **state)
{
    (void)state;
    char *argv[] = { "prog", "--dirs", "x", "--di", "--status", "dir" };
    bool missing = false;
    for (int k = 1; k < ARGC(argv); k++) {
        int i = k;
        assert_null(cliopt_value(ARGC(argv), argv, &i, "--dir", &missing));
        assert_int_equal(i, k);
    }
    assert_false(missing);
}

static void test_missing_value(void **state)
{
    (void)state;
    char *argv[] = { "prog", "--status", "--dir" };
    int i = 2;
    bool missing = false;
    assert_null(cliopt_value(ARGC(argv), argv, &i, "--dir", &missing));
    assert_true(missing);
    assert_int_equal(i, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_separate_value),
        cmocka_unit_test(test_equals_value),
        cmocka_unit_test(test_other_arguments),
        cmocka_unit_test(test_missing_value),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
