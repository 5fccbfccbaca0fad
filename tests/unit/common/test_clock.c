/*
 * test_clock.c - RFC 3339 parsing (clock_parse_rfc3339) against known
 * epoch values, offsets and fractions, and what it refuses; and that it
 * reads back what clock_format_rfc3339 writes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "clock.h"

static long long parse(const char *s)
{
    long long ms = -42;
    assert_int_equal(clock_parse_rfc3339(s, &ms), 0);
    return ms;
}

static void test_known_values(void **state)
{
    (void)state;
    assert_int_equal(parse("1970-01-01T00:00:00Z"), 0);
    assert_int_equal(parse("2000-03-01T00:00:00Z"), 951868800000LL);
    assert_int_equal(parse("2026-11-21T10:30:00.123Z"), 1795257000123LL);
    assert_int_equal(parse("2026-11-21t10:30:00z"), 1795257000000LL);
    assert_int_equal(parse("2024-02-29T23:59:59.999Z"), 1709251199999LL);
    assert_int_equal(parse("1969-12-31T23:59:59Z"), -1000);
}

static void test_offsets_and_fractions(void **state)
{
    (void)state;
    assert_int_equal(parse("2026-11-21T11:30:00+01:00"), parse("2026-11-21T10:30:00Z"));
    assert_int_equal(parse("2026-11-21T05:00:00-05:30"), parse("2026-11-21T10:30:00Z"));
    assert_int_equal(parse("2026-11-21T10:30:00.5Z"), parse("2026-11-21T10:30:00Z") + 500);
    assert_int_equal(parse("2026-11-21T10:30:00.123456789Z"),
                     parse("2026-11-21T10:30:00Z") + 123);
}

static void test_round_trip(void **state)
{
    (void)state;
    char buf[32];
    long long values[] = { 0, 1, 1795257000123LL, 4102444799999LL };
    for (size_t i = 0; i < sizeof values / sizeof *values; i++)
        assert_int_equal(parse(clock_format_rfc3339(values[i], buf, sizeof buf)), values[i]);
}

static void test_refused(void **state)
{
    (void)state;
    const char *bad[] = {
        "", "2026", "2026-11-21", "2026-11-21T10:30Z", "2026-11-21T10:30:00",
        "2026-11-21 10:30:00Z", "2026-13-01T00:00:00Z", "2026-00-10T00:00:00Z",
        "2026-02-29T00:00:00Z", "2026-04-31T00:00:00Z", "2026-11-21T24:00:00Z",
        "2026-11-21T10:60:00Z", "2026-11-21T10:30:60Z", "2026-11-21T10:30:00.Z",
        "2026-11-21T10:30:00.1234567890Z", "2026-11-21T10:30:00+1:00",
        "2026-11-21T10:30:00+24:00", "2026-11-21T10:30:00Zjunk", "+2026-11-21T10:30:00Z",
        "2026-11-21T10:30:00 Z", "0000-01-01T00:00:00Z",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        long long ms = 7;
        if (clock_parse_rfc3339(bad[i], &ms) == 0)
            fail_msg("accepted %s", bad[i]);
    }
    long long ms;
    assert_int_equal(clock_parse_rfc3339(NULL, &ms), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_values),
        cmocka_unit_test(test_offsets_and_fractions),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
