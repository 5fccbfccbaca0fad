/*
 * test_strbuf.c - the growable string builder (appends, long formatted
 * appends, handing the text over, the empty builder, sticky out-of-memory)
 * and errbuf_printf's cut-to-fit and NULL/0 tolerance.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "strbuf.h"
#include "utf8.h"

static void test_append(void **state)
{
    (void)state;
    strbuf b = {0};
    strbuf_add(&b, "hello");
    strbuf_addn(&b, ", world!!!", 7);
    strbuf_addf(&b, " %d+%s", 42, "x");
    strbuf_add(&b, "");
    assert_false(b.oom);
    assert_string_equal(b.s, "hello, world 42+x");
    assert_int_equal(b.len, strlen("hello, world 42+x"));
    strbuf_free(&b);
    assert_null(b.s);
    assert_int_equal(b.len, 0);
}

/* Past the first allocation (256 bytes) and many doublings. */
static void test_append_grows(void **state)
{
    (void)state;
    strbuf b = {0};
    for (int i = 0; i < 10000; i++)
        strbuf_addn(&b, "abc", 3);
    assert_false(b.oom);
    assert_int_equal(b.len, 30000);
    assert_int_equal(strlen(b.s), 30000);
    assert_true(b.cap > b.len);
    assert_memory_equal(b.s + 29997, "abc", 4);     /* with the NUL */
    strbuf_free(&b);
}

/* A formatted append longer than any small scratch buffer is kept whole. */
static void test_addf_longer_than_512(void **state)
{
    (void)state;
    char big[1500];
    for (size_t i = 0; i < sizeof big - 1; i++)
        big[i] = (char)('a' + i % 26);
    big[sizeof big - 1] = '\0';

    strbuf b = {0};
    strbuf_add(&b, "<");
    strbuf_addf(&b, "%s|%zu", big, sizeof big - 1);
    strbuf_add(&b, ">");
    assert_false(b.oom);
    assert_int_equal(b.len, 1 + 1499 + 5 + 1);
    assert_int_equal(strlen(b.s), b.len);
    assert_memory_equal(b.s + 1, big, 1499);
    assert_string_equal(b.s + 1 + 1499, "|1499>");
    strbuf_free(&b);
}

/* extend hands out exactly n writable bytes and keeps the NUL after them. */
static void test_extend_reserves_bytes_to_write(void **state)
{
    (void)state;
    strbuf b = {0};
    strbuf_add(&b, "ab");
    char *at = strbuf_extend(&b, 3);
    assert_non_null(at);
    memcpy(at, "cde", 3);
    assert_int_equal(b.len, 5);
    assert_string_equal(b.s, "abcde");
    at = strbuf_extend(&b, 1000);
    assert_non_null(at);
    memset(at, 'x', 1000);
    assert_int_equal(b.len, 1005);
    assert_int_equal(b.s[1005], '\0');
    assert_int_equal(strlen(b.s), 1005);
    strbuf_free(&b);
}

static void test_take_hands_over_text(void **state)
{
    (void)state;
    strbuf b = {0};
    size_t len = 99;
    strbuf_addf(&b, "run %s", "done");
    char *text = strbuf_take(&b, &len);
    assert_non_null(text);
    assert_string_equal(text, "run done");
    assert_int_equal(len, 8);
    /* b no longer owns it and starts over empty. */
    assert_null(b.s);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
    assert_false(b.oom);
    strbuf_add(&b, "again");
    assert_string_equal(b.s, "again");
    assert_string_equal(text, "run done");
    free(text);
    strbuf_free(&b);
}

static void test_take_without_len(void **state)
{
    (void)state;
    strbuf b = {0};
    strbuf_add(&b, "x");
    char *text = strbuf_take(&b, NULL);
    assert_string_equal(text, "x");
    free(text);
}

/* Nothing appended: the caller still gets a string it can free. */
static void test_empty_builder(void **state)
{
    (void)state;
    strbuf b = {0};
    size_t len = 99;
    assert_null(b.s);
    assert_int_equal(b.len, 0);
    strbuf_reset(&b);                   /* no text yet: a no-op */
    strbuf_free(&b);                    /* nothing to free */
    char *text = strbuf_take(&b, &len);
    assert_non_null(text);
    assert_string_equal(text, "");
    assert_int_equal(len, 0);
    free(text);
}

static void test_reset_keeps_allocation(void **state)
{
    (void)state;
    strbuf b = {0};
    strbuf_add(&b, "some pending delta text");
    char *s = b.s;
    size_t cap = b.cap;
    strbuf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.s, "");
    assert_ptr_equal(b.s, s);
    assert_int_equal(b.cap, cap);
    strbuf_add(&b, "next");
    assert_string_equal(b.s, "next");
    strbuf_free(&b);
}

/* Once an allocation has failed, appends do nothing and take gives NULL:
 * a half-built text is never handed out. */
static void test_oom_is_sticky(void **state)
{
    (void)state;
    strbuf b = {0};
    size_t len = 99;
    strbuf_add(&b, "before");
    b.oom = true;                       /* as a failed realloc leaves it */
    strbuf_add(&b, " after");
    strbuf_addf(&b, " %d", 1);
    assert_null(strbuf_extend(&b, 4));
    assert_string_equal(b.s, "before");
    assert_int_equal(b.len, 6);
    assert_null(strbuf_take(&b, &len));
    assert_int_equal(len, 0);
    assert_null(b.s);
    assert_false(b.oom);                /* emptied, ready for reuse */
}

static void test_errbuf_printf(void **state)
{
    (void)state;
    char err[16];
    errbuf_printf(err, sizeof err, "%s: %d", "port", 70000);
    assert_string_equal(err, "port: 70000");

    errbuf_printf(err, sizeof err, "%s", "a message longer than sixteen bytes");
    assert_int_equal(strlen(err), sizeof err - 1);
    assert_string_equal(err, "a message longe");   /* 15 bytes and the NUL */

    memset(err, 'z', sizeof err);
    errbuf_printf(err, 0, "%s", "nothing written");
    assert_int_equal(err[0], 'z');
    errbuf_printf(NULL, 0, "%s", "no buffer");
    errbuf_printf(NULL, 64, "%s", "no buffer");
}

static char *flat(const char *in, size_t max)
{
    strbuf b = {0};
    strbuf_add_flat(&b, in, max);
    strbuf_add(&b, "");            /* an empty result is still a string */
    return strbuf_take(&b, NULL);
}

static void test_add_flat_folds_whitespace_and_controls(void **state)
{
    (void)state;
    char *s = flat("  a\t\tb\n\r c\x01" "d\x7f ", 100);
    assert_string_equal(s, "a b cd");
    free(s);
}

static void test_add_flat_cuts_before_a_sequence(void **state)
{
    (void)state;
    /* "ab" then U+2603 (3 bytes): 4 bytes allowed, the snowman does not fit. */
    char *s = flat("ab\xe2\x98\x83z", 4);
    assert_string_equal(s, "ab...");
    free(s);
    s = flat("ab\xe2\x98\x83z", 5);
    assert_string_equal(s, "ab\xe2\x98\x83...");
    free(s);
    s = flat("abc", 3);
    assert_string_equal(s, "abc");
    free(s);
}

static void test_add_flat_drops_bytes_that_are_not_utf8(void **state)
{
    (void)state;
    char *s = flat("a\xff\xc0\xaf" "b\xed\xa0\x80" "c", 100);  /* bad byte, overlong, surrogate */
    assert_string_equal(s, "abc");
    free(s);
    strbuf b = {0};
    strbuf_add_flat(&b, NULL, 10);
    assert_null(b.s);
}

static void test_utf8_sequence_len(void **state)
{
    (void)state;
    const unsigned char ascii[] = "A", two[] = "\xc3\xa9", three[] = "\xe2\x98\x83",
                        four[] = "\xf0\x9f\x98\x80", overlong[] = "\xe0\x80\xaf",
                        surrogate[] = "\xed\xa0\x80", too_high[] = "\xf4\x90\x80\x80";
    assert_int_equal(utf8_sequence_len(ascii, 1), 1);
    assert_int_equal(utf8_sequence_len(two, 2), 2);
    assert_int_equal(utf8_sequence_len(three, 3), 3);
    assert_int_equal(utf8_sequence_len(four, 4), 4);
    assert_int_equal(utf8_sequence_len(four, 3), 0);     /* truncated */
    assert_int_equal(utf8_sequence_len(overlong, 3), 0);
    assert_int_equal(utf8_sequence_len(surrogate, 3), 0);
    assert_int_equal(utf8_sequence_len(too_high, 4), 0);
    assert_true(utf8_is_space('\v'));
    assert_false(utf8_is_space(0xa0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append),
        cmocka_unit_test(test_append_grows),
        cmocka_unit_test(test_addf_longer_than_512),
        cmocka_unit_test(test_extend_reserves_bytes_to_write),
        cmocka_unit_test(test_take_hands_over_text),
        cmocka_unit_test(test_take_without_len),
        cmocka_unit_test(test_empty_builder),
        cmocka_unit_test(test_reset_keeps_allocation),
        cmocka_unit_test(test_oom_is_sticky),
        cmocka_unit_test(test_errbuf_printf),
        cmocka_unit_test(test_add_flat_folds_whitespace_and_controls),
        cmocka_unit_test(test_add_flat_cuts_before_a_sequence),
        cmocka_unit_test(test_add_flat_drops_bytes_that_are_not_utf8),
        cmocka_unit_test(test_utf8_sequence_len),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
