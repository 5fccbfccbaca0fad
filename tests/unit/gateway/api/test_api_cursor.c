/*
 * test_api_cursor.c - list cursors: a cursor the API issued decodes back
 * to its parts; a tampered one, whatever was changed, is refused at the
 * edge (api_cursor_parse) instead of reaching PostgreSQL. A table of
 * hand-made tampering, then every one-byte change of a good cursor.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "api_util.h"
#include "base64url.h"

static const char ID[] = "01a2511f-d563-719c-9215-bf297475e32f";

/* The cursor of created_at ts and id, encoded as the API encodes it. */
static char *cursor_of(const char *ts, const char *id)
{
    char raw[256];
    int n = snprintf(raw, sizeof raw, "%s|%s", ts, id);
    return b64url_encode((const unsigned char *)raw, (size_t)n);
}

static bool accepts(const char *ts, const char *id)
{
    char *c = cursor_of(ts, id);
    api_cursor cur;
    bool ok = api_cursor_parse(c, &cur);
    if (ok) {
        assert_true(cur.present);
        assert_string_equal(cur.created_at, ts);
    } else {
        assert_false(cur.present);
    }
    free(c);
    return ok;
}

static void test_issued_cursors_decode(void **state)
{
    (void)state;
    static const char *const good[] = {
        "2026-12-07 15:29:30.467123+00",
        "2026-12-07 15:29:30+00",
        "2026-12-07 15:29:30.4+00",
        "2024-02-29 23:59:59.999999+00",      /* a leap day */
        "2000-02-29 00:00:00+00",             /* 400-year leap */
        "0001-01-01 00:00:00+00",
        "9999-12-31 23:59:59.999999-12",
        "2026-06-01 10:00:00+05:30",
        "1890-06-01 10:00:00+00:53:28",       /* local mean time offsets */
        "2026-06-01 10:00:00-09:30:00",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        if (!accepts(good[i], ID)) fail_msg("refused an issued cursor time \"%s\"", good[i]);
    api_cursor cur;
    char *c = cursor_of(good[0], ID);
    assert_true(api_cursor_parse(c, &cur));
    assert_string_equal(cur.id, ID);
    free(c);
}

static void test_tampered_times_are_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "2026-13-45 10:00:00+00", "0000-00-00 00:00:00+00", "0000-01-01 00:00:00+00",
        "2026-00-10 10:00:00+00", "2026-01-00 10:00:00+00", "2026-01-32 10:00:00+00",
        "2026-02-29 10:00:00+00", "1900-02-29 10:00:00+00", "2026-04-31 10:00:00+00",
        "2026-12-07 24:00:00+00", "2026-12-07 23:60:00+00", "2026-12-07 23:59:60+00",
        "2026-12-07 99:99:99+00", "2026-12-07 15:29:30.1234567+00", "2026-12-07 15:29:30.+00",
        "2026-12-07 15:29:30", "2026-12-07 15:29:30+", "2026-12-07 15:29:30+0",
        "2026-12-07 15:29:30+16", "2026-12-07 15:29:30+99", "2026-12-07 15:29:30+05:60",
        "2026-12-07 15:29:30+05:30:60", "2026-12-07 15:29:30+05:", "2026-12-07 15:29:30+00 ",
        "2026-12-07 15:29:30+00x", "2026-12-07T15:29:30+00", "2026-12-07 15:29:30Z",
        "26-12-07 15:29:30+00", "12026-12-07 15:29:30+00", "2026-1-07 15:29:30+00",
        "2026-12-7 15:29:30+00", "2026-12-07 5:29:30+00", "-2026-12-07 15:29:30+00",
        "2026-12-07 15:29:30+00 BC", "infinity", "-infinity", "now", "epoch", "",
        " 2026-12-07 15:29:30+00", "2026-12-07  15:29:30+00", "2026-12-07 15:29:30 +00",
        "2026-12-07 15:29:30+00'; DROP TABLE jobs; --", "2026-12-07 15:29:30.-1+00",
        "2026-12-07 15:29:30.1e5+00", "2026-12-07 15:29:30+00:00:00:00",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (accepts(bad[i], ID)) fail_msg("accepted a tampered cursor time \"%s\"", bad[i]);
}

static void test_tampered_framing_is_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "", "x", "====", "not base64 at all!", "MjAyNg",          /* "2026", no bar */
    };
    api_cursor cur;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (api_cursor_parse(bad[i], &cur)) fail_msg("accepted cursor \"%s\"", bad[i]);
    const char *ts = "2026-12-07 15:29:30.467123+00";
    assert_false(accepts(ts, "01a2511f-d563-719c-9215-bf297475e32"));    /* short id */
    assert_false(accepts(ts, "01a2511f-d563-719c-9215-bf297475e32ff"));  /* long id */
    assert_false(accepts(ts, "01a2511f-d563-719c-9215-bf297475e32g"));
    assert_false(accepts(ts, ""));
    assert_false(accepts(ts, "01a2511f-d563-719c-9215-bf297475e32f|x"));
    assert_false(accepts("", ID));
    /* A NUL inside the decoded bytes, and a cursor too long to be ours. */
    const unsigned char nul[] = "2026-12-07 15:29:30+00\0|01a2511f-d563-719c-9215-bf297475e32f";
    char *c = b64url_encode(nul, sizeof nul - 1);
    assert_false(api_cursor_parse(c, &cur));
    free(c);
    char longer[400];
    memset(longer, 'A', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    assert_false(api_cursor_parse(longer, &cur));
}

/* Every change of one byte of a good cursor's decoded text, to each of a
 * few bytes, is either still a valid cursor (then its time is one that
 * passes the full check again) or refused; none is half-accepted. */
static void test_every_one_byte_change(void **state)
{
    (void)state;
    const char *ts = "2024-02-29 23:59:59.999999+05:30";
    char raw[128];
    int n = snprintf(raw, sizeof raw, "%s|%s", ts, ID);
    static const char subst[] = "0123456789:-+. |9aZ\x7f\x01\xff";
    int accepted = 0, refused = 0;
    for (int i = 0; i < n; i++)
        for (size_t k = 0; k < sizeof subst - 1; k++) {
            char m[128];
            memcpy(m, raw, (size_t)n);
            if (m[i] == subst[k]) continue;
            m[i] = subst[k];
            char *c = b64url_encode((const unsigned char *)m, (size_t)n);
            api_cursor cur;
            if (api_cursor_parse(c, &cur)) {
                accepted++;
                assert_true(cur.present);
                assert_true(strlen(cur.created_at) < sizeof cur.created_at);
                char *again = cursor_of(cur.created_at, cur.id);
                api_cursor twice;
                assert_true(api_cursor_parse(again, &twice));
                free(again);
            } else {
                refused++;
            }
            free(c);
        }
    /* Most changes break it; some (another digit in range) do not. */
    assert_true(refused > accepted);
    assert_true(accepted > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_issued_cursors_decode),
        cmocka_unit_test(test_tampered_times_are_refused),
        cmocka_unit_test(test_tampered_framing_is_refused),
        cmocka_unit_test(test_every_one_byte_change),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
