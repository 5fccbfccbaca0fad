/*
 * test_cron.c - cron expressions: what the parser accepts and refuses,
 * and the next instant in UTC and in zones with daylight saving time
 * (both hemispheres, dates past the TZif table where the footer's rule
 * applies, the repeated and the skipped hour).
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
#include "cron.h"
#include "tz.h"

static int64_t at(const char *rfc3339)
{
    long long ms;
    if (clock_parse_rfc3339(rfc3339, &ms) != 0)
        fail_msg("bad time %s", rfc3339);
    return ms / 1000;
}

/* Asserts that expr in zone fires next after `after` at `want` (or never,
 * when want is NULL), and returns that instant. */
static int64_t expect_next(const char *expr, const char *zone, const char *after,
                           const char *want)
{
    cron_expr c;
    char err[200];
    if (cron_parse(expr, &c, err, sizeof err) != 0)
        fail_msg("%s: %s", expr, err);
    tz_zone *z = tz_load(zone);
    assert_non_null(z);
    int64_t next = 0;
    int rc = cron_next(&c, z, at(after), &next);
    tz_free(z);
    if (want == NULL) {
        assert_int_equal(rc, -1);
        return 0;
    }
    assert_int_equal(rc, 0);
    char got[40];
    clock_format_rfc3339(next * 1000, got, sizeof got);
    if (next != at(want))
        fail_msg("%s in %s after %s: got %s, want %s", expr, zone, after, got, want);
    return next;
}

static void test_parse_rejects(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "", "* * * *", "* * * * * *", "60 * * * *", "* 24 * * *", "* * 0 * *", "* * 32 * *",
        "* * * 13 *", "* * * * 8", "5-1 * * * *", "*/0 * * * *", "*/61 * * * *", "abc * * * *",
        "1,,2 * * * *", "1- * * * *", "@foo", "@daily extra", "* * * foo *", "-1 * * * *",
        "1/ * * * *",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        cron_expr c;
        char err[200] = "";
        if (cron_parse(bad[i], &c, err, sizeof err) == 0)
            fail_msg("accepted \"%s\"", bad[i]);
        assert_true(err[0] != '\0');
    }
    cron_expr c;
    char err[200];
    assert_int_equal(cron_parse("* 25 * * *", &c, err, sizeof err), -1);
    assert_non_null(strstr(err, "hour"));
    assert_non_null(strstr(err, "25"));
}

static void test_parse_fields(void **state)
{
    (void)state;
    cron_expr c;
    char err[200];
    assert_int_equal(cron_parse("*/15 9-17/4 1,15 JAN-mar mon-fri", &c, err, sizeof err), 0);
    assert_true(c.minute == (1ULL << 0 | 1ULL << 15 | 1ULL << 30 | 1ULL << 45));
    assert_int_equal(c.hour, 1u << 9 | 1u << 13 | 1u << 17);
    assert_int_equal(c.mday, 1u << 1 | 1u << 15);
    assert_int_equal(c.month, 1u << 1 | 1u << 2 | 1u << 3);
    assert_int_equal(c.wday, 0x3e);
    assert_false(c.mday_star);
    assert_false(c.wday_star);
    assert_int_equal(cron_parse("0 0 * * 7", &c, err, sizeof err), 0);
    assert_int_equal(c.wday, 1);            /* 7 is Sunday */
    assert_int_equal(cron_parse("5/20 * * * *", &c, err, sizeof err), 0);
    assert_true(c.minute == (1ULL << 5 | 1ULL << 25 | 1ULL << 45));
    assert_int_equal(cron_parse("  @Hourly ", &c, err, sizeof err), 0);
    assert_true(c.minute == 1);
    assert_int_equal(c.hour, 0xffffff);
}

static void test_next_utc(void **state)
{
    (void)state;
    expect_next("* * * * *", "UTC", "2026-12-07T22:15:30Z", "2026-12-07T22:16:00Z");
    expect_next("* * * * *", "UTC", "2026-12-07T22:16:00Z", "2026-12-07T22:17:00Z");
    expect_next("*/5 * * * *", "UTC", "2026-12-07T23:58:00Z", "2026-12-08T00:00:00Z");
    expect_next("0 0 1 1 *", "UTC", "2026-12-07T00:00:00Z", "2027-01-01T00:00:00Z");
    expect_next("0 12 * * mon", "UTC", "2026-12-07T12:00:00Z", "2026-12-14T12:00:00Z");
    /* Day of month and day of week both restricted: either matches. */
    expect_next("0 0 13 * 5", "UTC", "2026-12-07T00:00:00Z", "2026-12-11T00:00:00Z");
    expect_next("0 0 13 * 5", "UTC", "2026-12-11T00:00:00Z", "2026-12-13T00:00:00Z");
    /* Only one restricted: both must hold (Friday the 13th, star-stepped). */
    expect_next("0 0 13 * */1", "UTC", "2026-12-07T00:00:00Z", "2026-12-13T00:00:00Z");
    expect_next("0 0 29 2 *", "UTC", "2097-03-01T00:00:00Z", "2104-02-29T00:00:00Z");
    expect_next("0 0 31 * *", "UTC", "2026-04-01T00:00:00Z", "2026-05-31T00:00:00Z");
    expect_next("0 0 30 2 *", "UTC", "2026-01-01T00:00:00Z", NULL);
    expect_next("0 0 31 4,6 *", "UTC", "2026-01-01T00:00:00Z", NULL);
    expect_next("0 9 * * *", "Asia/Kolkata", "2026-12-07T00:00:00Z", "2026-12-07T03:30:00Z");
}

static void test_next_dst_berlin(void **state)
{
    (void)state;
    /* 2026-03-29: 02:00 CET becomes 03:00 CEST at 01:00Z. 02:30 is never
     * shown; it fires at the change, once, then at 02:30 the next day. */
    int64_t t = expect_next("30 2 * * *", "Europe/Berlin", "2026-03-28T12:00:00Z",
                            "2026-03-29T01:00:00Z");
    (void)t;
    expect_next("30 2 * * *", "Europe/Berlin", "2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z");
    expect_next("0 12 * * *", "Europe/Berlin", "2026-03-28T12:00:00Z", "2026-03-29T10:00:00Z");
    /* 2026-10-25: 03:00 CEST becomes 02:00 CET at 01:00Z. 02:30 is shown
     * twice and fires at its first showing only. */
    expect_next("30 2 * * *", "Europe/Berlin", "2026-10-24T12:00:00Z", "2026-10-25T00:30:00Z");
    expect_next("30 2 * * *", "Europe/Berlin", "2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z");
    expect_next("*/30 * * * *", "Europe/Berlin", "2026-10-25T00:30:00Z",
                "2026-10-25T02:00:00Z");
    /* Past the fat file's table (2037): the footer's rule. */
    expect_next("0 12 * * *", "Europe/Berlin", "2050-07-01T00:00:00Z", "2050-07-01T10:00:00Z");
    expect_next("0 12 * * *", "Europe/Berlin", "2050-12-01T00:00:00Z", "2050-12-01T11:00:00Z");
}

static void test_next_other_zones(void **state)
{
    (void)state;
    expect_next("0 12 * * *", "America/New_York", "2040-07-01T00:00:00Z",
                "2040-07-01T16:00:00Z");
    expect_next("0 12 * * *", "America/New_York", "2040-01-15T00:00:00Z",
                "2040-01-15T17:00:00Z");
    /* Southern hemisphere: daylight time spans the new year. */
    expect_next("0 12 * * *", "Australia/Sydney", "2041-01-09T12:00:00Z",
                "2041-01-10T01:00:00Z");
    expect_next("0 12 * * *", "Australia/Sydney", "2041-07-09T12:00:00Z",
                "2041-07-10T02:00:00Z");
    /* Footers with half-hour offsets, a 30-minute DST shift, and rule
     * times of 24:00 and -1:00. */
    expect_next("0 9 * * *", "Asia/Tehran", "2040-03-01T00:00:00Z", "2040-03-01T05:30:00Z");
    expect_next("0 12 * * *", "Australia/Lord_Howe", "2041-01-09T12:00:00Z",
                "2041-01-10T01:00:00Z");
    expect_next("0 12 * * *", "Australia/Lord_Howe", "2041-07-09T12:00:00Z",
                "2041-07-10T01:30:00Z");
    expect_next("0 12 * * *", "America/Santiago", "2040-01-15T00:00:00Z",
                "2040-01-15T15:00:00Z");
    expect_next("0 12 * * *", "America/Santiago", "2040-07-15T00:00:00Z",
                "2040-07-15T16:00:00Z");
    expect_next("0 12 * * *", "Pacific/Chatham", "2041-01-09T12:00:00Z",
                "2041-01-09T22:15:00Z");
    /* America/Nuuk, -02, moves to -01 at 23:00 on the Saturday before the
     * last Sunday of March (M3.5.0/-1): 2040-03-24 23:00 -02, 01:00Z. The
     * skipped 23:00 fires at the change; 00:00 -01 is that instant too. */
    expect_next("0 * * * *", "America/Godthab", "2040-03-25T00:30:00Z",
                "2040-03-25T01:00:00Z");
    expect_next("0 * * * *", "America/Godthab", "2040-03-25T01:00:00Z",
                "2040-03-25T02:00:00Z");
    expect_next("0 12 * * *", "America/Godthab", "2040-03-25T00:00:00Z",
                "2040-03-25T13:00:00Z");
}

static void test_zone_names(void **state)
{
    (void)state;
    static const char *const bad[] = { "", "../etc/passwd", "/etc/passwd", "Europe//Berlin",
                                       "Europe/./Berlin", "Europe/Berlin/", "a b", "UTC;x" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_false(tz_name_valid(bad[i]));
        assert_null(tz_load(bad[i]));
    }
    assert_true(tz_name_valid("America/Argentina/Buenos_Aires"));
    assert_true(tz_name_valid("Etc/GMT+5"));
    assert_null(tz_load("Mars/Olympus_Mons"));
    assert_null(tz_load("Europe"));          /* a directory */
    tz_zone *z = tz_load("Etc/GMT+5");
    assert_non_null(z);
    assert_int_equal(tz_offset(z, at("2026-06-01T00:00:00Z")), -5 * 3600);
    tz_free(z);
}

/* The cache hands out one shared zone per name, equal to a fresh load,
 * and caches no failure. */
static void test_zone_cache(void **state)
{
    (void)state;
    const tz_zone *a = tz_cached("Europe/Berlin");
    assert_non_null(a);
    assert_ptr_equal(tz_cached("Europe/Berlin"), a);
    assert_ptr_not_equal(tz_cached("America/New_York"), a);
    tz_zone *fresh = tz_load("Europe/Berlin");
    assert_non_null(fresh);
    int64_t summer = at("2026-07-01T12:00:00Z"), winter = at("2026-01-01T12:00:00Z");
    assert_int_equal(tz_offset(a, summer), tz_offset(fresh, summer));
    assert_int_equal(tz_offset(a, winter), tz_offset(fresh, winter));
    assert_int_equal(tz_offset(a, summer), 2 * 3600);
    tz_free(fresh);
    assert_null(tz_cached("Mars/Olympus_Mons"));
    assert_null(tz_cached("../etc/passwd"));
    assert_null(tz_cached("Mars/Olympus_Mons"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_rejects),
        cmocka_unit_test(test_parse_fields),
        cmocka_unit_test(test_next_utc),
        cmocka_unit_test(test_next_dst_berlin),
        cmocka_unit_test(test_next_other_zones),
        cmocka_unit_test(test_zone_names),
        cmocka_unit_test(test_zone_cache),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
