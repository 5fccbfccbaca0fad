/*
 * test_pg_array.c - quoted elements of PostgreSQL array literals: the
 * size counted first matches what is written, only " and \ are escaped,
 * and the strbuf form builds the same bytes. (That PostgreSQL reads them
 * back as sent is tested end to end by test_submit_batch.py's tricky
 * payload.)
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "pg_array.h"

/* Writes s as an element into a buffer of exactly the counted size plus a
 * guard byte, checks the guard, and returns the element as a string. */
static char *element(const char *s, size_t len)
{
    size_t size = pg_array_element_size(s, len);
    char *out = malloc(size + 2);
    assert_non_null(out);
    out[size] = '#';
    assert_int_equal(pg_array_element_write(out, s, len), size);
    assert_int_equal(out[size], '#');
    out[size] = '\0';
    return out;
}

static void test_plain_text_is_only_quoted(void **state)
{
    (void)state;
    char *e = element("hello, {world} NULL", 19);
    assert_string_equal(e, "\"hello, {world} NULL\"");
    free(e);
}

static void test_quote_and_backslash_are_escaped(void **state)
{
    (void)state;
    const char *s = "a\"b\\c\"\"";
    char *e = element(s, strlen(s));
    assert_string_equal(e, "\"a\\\"b\\\\c\\\"\\\"\"");
    free(e);
}

static void test_empty_text_is_two_quotes(void **state)
{
    (void)state;
    char *e = element("", 0);
    assert_string_equal(e, "\"\"");
    free(e);
}

/* Only len bytes are read: what follows them is not part of the element. */
static void test_length_bounds_the_element(void **state)
{
    (void)state;
    char *e = element("ab\"cd", 3);
    assert_string_equal(e, "\"ab\\\"\"");
    free(e);
}

static void test_strbuf_form_writes_the_same_bytes(void **state)
{
    (void)state;
    const char *items[] = { "x", "{\"k\":\"v\\\\\"}", "", "a,b" };
    strbuf b = {0};
    strbuf_add(&b, "{");
    for (size_t i = 0; i < 4; i++) {
        if (i) strbuf_add(&b, ",");
        pg_array_element_add(&b, items[i]);
    }
    strbuf_add(&b, "}");
    assert_false(b.oom);
    assert_string_equal(b.s, "{\"x\",\"{\\\"k\\\":\\\"v\\\\\\\\\\\"}\",\"\",\"a,b\"}");
    assert_int_equal(b.len, strlen(b.s));
    strbuf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_text_is_only_quoted),
        cmocka_unit_test(test_quote_and_backslash_are_escaped),
        cmocka_unit_test(test_empty_text_is_two_quotes),
        cmocka_unit_test(test_length_bounds_the_element),
        cmocka_unit_test(test_strbuf_form_writes_the_same_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
