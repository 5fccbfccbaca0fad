/*
 * test_jsonutil.c - unit tests for the bounded JSON parser and helpers:
 * size and depth limits, UTF-8, strict tokens, trailing data, duplicate
 * members, the integer reader, and numbers that would not be kept as sent.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "jsonutil.h"

#define MiB (1024 * 1024)

/* Parses a NUL-terminated text with the production limits. */
static cJSON *parse(const char *text, char *err, size_t err_size)
{
    return json_parse_bounded(text, strlen(text), MiB, JSON_MAX_DEPTH, err, err_size);
}

/* Asserts text is refused with exactly the reason want. */
static void expect_reject(const char *text, size_t len, const char *want)
{
    char err[128] = "";
    cJSON *j = json_parse_bounded(text, len, MiB, JSON_MAX_DEPTH, err, sizeof err);
    if (j != NULL) {
        cJSON_Delete(j);
        fail_msg("accepted: %.*s", (int)len, text);
    }
    assert_string_equal(err, want);
}

static void expect_accept(const char *text, size_t len)
{
    char err[128] = "";
    cJSON *j = json_parse_bounded(text, len, MiB, JSON_MAX_DEPTH, err, sizeof err);
    if (j == NULL)
        fail_msg("refused (%s): %.*s", err, (int)len, text);
    cJSON_Delete(j);
}

#define REJECT(lit, why) expect_reject(lit, sizeof(lit) - 1, why)
#define ACCEPT(lit) expect_accept(lit, sizeof(lit) - 1)

/* Builds depth nested arrays around 1: "[[[1]]]". Caller frees. */
static char *nested_arrays(int depth)
{
    char *s = malloc((size_t)depth * 2 + 2);
    assert_non_null(s);
    memset(s, '[', (size_t)depth);
    s[depth] = '1';
    memset(s + depth + 1, ']', (size_t)depth);
    s[depth * 2 + 1] = '\0';
    return s;
}

static void test_parses_plain_object(void **state)
{
    char err[128] = "";
    cJSON *j = parse(" {\"a\": [1, 2.5, \"x\", true, false, null], \"b\": {}} \n", err, sizeof err);
    assert_non_null(j);
    assert_string_equal(err, "");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "a")), 6);
    cJSON_Delete(j);
}

static void test_scalars_are_values(void **state)
{
    ACCEPT("1");
    ACCEPT("\"s\"");
    ACCEPT("null");
    ACCEPT("-0.5e+10");
}

static void test_depth_exactly_at_limit(void **state)
{
    char *s = nested_arrays(JSON_MAX_DEPTH);
    char err[128] = "";
    cJSON *j = parse(s, err, sizeof err);
    assert_non_null(j);
    cJSON_Delete(j);
    free(s);
}

static void test_depth_one_over_limit(void **state)
{
    char *s = nested_arrays(JSON_MAX_DEPTH + 1);
    expect_reject(s, strlen(s), "JSON nested deeper than 32 levels");
    free(s);
}

static void test_depth_counts_objects_and_arrays(void **state)
{
    char err[128];
    const char *two = "{\"a\":[1]}";
    assert_null(json_parse_bounded(two, strlen(two), MiB, 1, err, sizeof err));
    assert_string_equal(err, "JSON nested deeper than 1 levels");
    cJSON *j = json_parse_bounded(two, strlen(two), MiB, 2, err, sizeof err);
    assert_non_null(j);
    cJSON_Delete(j);
}

static void test_depth_siblings_do_not_add_up(void **state)
{
    /* 40 sibling arrays at depth 2 each: depth is nesting, not a count. */
    char s[256] = "[";
    for (int i = 0; i < 40; i++)
        strcat(s, i ? ",[]" : "[]");
    strcat(s, "]");
    expect_accept(s, strlen(s));
}

static void test_brackets_inside_strings_not_counted(void **state)
{
    /* 100 brackets and braces inside a string, one of them after an
     * escaped quote, do not count toward the depth. */
    char s[512];
    int n = snprintf(s, sizeof s, "{\"k\":\"\\\"");
    for (int i = 0; i < 100; i++)
        s[n++] = i % 2 ? '[' : '{';
    s[n++] = '"';
    s[n++] = '}';
    s[n] = '\0';
    expect_accept(s, (size_t)n);
}

static void test_size_limit(void **state)
{
    char err[128];
    const char *text = "[1,2,3]";   /* 7 bytes */
    assert_null(json_parse_bounded(text, 7, 6, JSON_MAX_DEPTH, err, sizeof err));
    assert_string_equal(err, "body larger than 6 bytes");
    cJSON *j = json_parse_bounded(text, 7, 7, JSON_MAX_DEPTH, err, sizeof err);
    assert_non_null(j);
    cJSON_Delete(j);
}

static void test_size_limit_message_1mib(void **state)
{
    size_t len = MiB + 1;
    char *big = malloc(len);
    assert_non_null(big);
    memset(big, ' ', len);
    big[0] = '1';
    expect_reject(big, len, "body larger than 1048576 bytes");
    free(big);
}

static void test_only_len_bytes_are_read(void **state)
{
    /* The buffer need not be NUL-terminated: len ends the document. */
    const char buf[] = {'[', '1', ']', 'x', 'x'};
    expect_accept(buf, 3);
}

static void test_invalid_utf8(void **state)
{
    REJECT("\"\xff\"", "invalid UTF-8 at byte 1");
    REJECT("\"\xc0\xaf\"", "invalid UTF-8 at byte 1");           /* overlong '/' */
    REJECT("\"\xe0\x80\xaf\"", "invalid UTF-8 at byte 1");       /* overlong, 3 bytes */
    REJECT("\"\xf0\x80\x80\xaf\"", "invalid UTF-8 at byte 1");   /* overlong, 4 bytes */
    REJECT("\"\xed\xa0\x80\"", "invalid UTF-8 at byte 1");       /* surrogate U+D800 */
    REJECT("\"\xf4\x90\x80\x80\"", "invalid UTF-8 at byte 1");   /* above U+10FFFF */
    REJECT("\"ab\x80\"", "invalid UTF-8 at byte 3");             /* stray continuation */
    REJECT("\"\xe2\x82\"", "invalid UTF-8 at byte 1");           /* truncated */
    REJECT("[\"\xe2\x82", "invalid UTF-8 at byte 2");            /* truncated at end */
    REJECT("[\"\\\xc3\xa9\"]", "malformed JSON at byte 2");  /* escape of a non-ASCII char */
}

static void test_valid_utf8(void **state)
{
    ACCEPT("\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xed\x9f\xbf \xf4\x8f\xbf\xbf\"");
    ACCEPT("\"\\ud83d\\ude00\"");   /* a surrogate pair as escapes is fine */
}

static void test_lone_surrogate_escape(void **state)
{
    char err[128];
    assert_null(parse("\"\\udc00\"", err, sizeof err));
    assert_null(parse("\"\\ud800x\"", err, sizeof err));
}

static void test_non_ascii_outside_string(void **state)
{
    REJECT("\xef\xbb\xbf{}", "malformed JSON at byte 0");  /* a BOM */
}

static void test_trailing_garbage(void **state)
{
    REJECT("{} x", "malformed JSON at byte 3");
    REJECT("{}{}", "trailing data after JSON at byte 2");
    REJECT("[1] ]", "trailing data after JSON at byte 4");
    /* A NUL inside len is data, not an end. */
    expect_reject("{}\0", 3, "malformed JSON at byte 2");
    ACCEPT("{} \r\n\t ");
}

static void test_malformed_reports_byte(void **state)
{
    REJECT("{\"a\":1,}", "malformed JSON at byte 7");
    REJECT("{\"a\" 1}", "malformed JSON at byte 5");
    REJECT("[1,2", "malformed JSON at byte 3");
    REJECT("[\"open", "unterminated JSON string at byte 1");
    REJECT("[\"esc\\\"]", "unterminated JSON string at byte 1");
}

static void test_empty_document(void **state)
{
    REJECT("", "empty JSON document");
    REJECT("  \n", "empty JSON document");
    char err[64];
    assert_null(json_parse_bounded(NULL, 0, MiB, 4, err, sizeof err));
    assert_string_equal(err, "empty JSON document");
}

static void test_strict_numbers_and_literals(void **state)
{
    REJECT("01", "malformed JSON at byte 0");
    REJECT("[1.]", "malformed JSON at byte 1");
    REJECT("[.5]", "malformed JSON at byte 1");
    REJECT("[+1]", "malformed JSON at byte 1");
    REJECT("[1e]", "malformed JSON at byte 1");
    REJECT("[-]", "malformed JSON at byte 1");
    REJECT("[NaN]", "malformed JSON at byte 1");
    REJECT("[True]", "malformed JSON at byte 1");
    REJECT("[nul]", "malformed JSON at byte 1");
    REJECT("[0x10]", "malformed JSON at byte 1");
    ACCEPT("[0, -0, 10, 1.5, 1e5, 1E-5, 2.5e+3]");
}

static void test_string_contents(void **state)
{
    REJECT("[\"a\tb\"]", "control character in JSON string at byte 3");
    REJECT("[\"a\\u0000b\"]", "JSON string contains \\u0000 at byte 3");
    REJECT("[\"\\x\"]", "malformed JSON at byte 2");
    REJECT("[\"\\u12g4\"]", "malformed JSON at byte 2");
    ACCEPT("[\"\\\\u0000\"]");   /* an escaped backslash, then text */
    ACCEPT("[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\"]");
}

static void test_duplicate_members(void **state)
{
    REJECT("{\"a\":1,\"b\":2,\"a\":3}", "duplicate member \"a\" in JSON object");
    REJECT("{\"x\":{\"k\":1,\"k\":1}}", "duplicate member \"k\" in JSON object");
    REJECT("[{\"\":1,\"\":2}]", "duplicate member \"\" in JSON object");
    ACCEPT("{\"a\":1,\"A\":2,\"b\":{\"a\":3}}");
}

static void test_many_members_unique(void **state)
{
    /* 20000 distinct members: checked in O(n log n). */
    size_t cap = 20000 * 16 + 16, n = 0;
    char *s = malloc(cap);
    assert_non_null(s);
    s[n++] = '{';
    for (int i = 0; i < 20000; i++)
        n += (size_t)snprintf(s + n, cap - n, "%s\"k%d\":%d", i ? "," : "", i, i);
    s[n++] = '}';
    expect_accept(s, n);
    free(s);
}

static void test_err_may_be_null(void **state)
{
    assert_null(json_parse_bounded("[", 1, MiB, 4, NULL, 0));
    char tiny[8];
    assert_null(json_parse_bounded("[", 1, MiB, 4, tiny, sizeof tiny));
    assert_string_equal(tiny, "malform");   /* truncated, still terminated */
}

static void test_get_string(void **state)
{
    cJSON *j = parse("{\"s\":\"v\",\"n\":1}", NULL, 0);
    assert_non_null(j);
    assert_string_equal(json_get_string(j, "s"), "v");
    assert_null(json_get_string(j, "n"));
    assert_null(json_get_string(j, "missing"));
    assert_null(json_get_string(NULL, "s"));
    cJSON_Delete(j);
}

static void test_get_int(void **state)
{
    cJSON *j = parse("{\"i\":42,\"neg\":-7,\"f\":1.5,\"whole\":3.0,\"s\":\"4\","
                     "\"big\":1e300,\"huge\":9007199254740993,\"b\":true}", NULL, 0);
    assert_non_null(j);
    long long v = 0;
    assert_int_equal(json_get_int(j, "i", 0, 100, &v), 1);
    assert_int_equal(v, 42);
    assert_int_equal(json_get_int(j, "neg", -10, 0, &v), 1);
    assert_int_equal(v, -7);
    assert_int_equal(json_get_int(j, "whole", 0, 10, &v), 1);
    assert_int_equal(v, 3);
    v = 99;
    assert_int_equal(json_get_int(j, "missing", 0, 10, &v), 0);
    assert_int_equal(v, 99);
    assert_int_equal(json_get_int(j, "f", 0, 10, &v), -1);
    assert_int_equal(json_get_int(j, "s", 0, 10, &v), -1);
    assert_int_equal(json_get_int(j, "b", 0, 10, &v), -1);
    assert_int_equal(json_get_int(j, "big", LLONG_MIN, LLONG_MAX, &v), -1);
    assert_int_equal(json_get_int(j, "huge", LLONG_MIN, LLONG_MAX, &v), -1);
    /* Range bounds are inclusive. */
    assert_int_equal(json_get_int(j, "i", 42, 42, &v), 1);
    assert_int_equal(json_get_int(j, "i", 43, 100, &v), -1);
    assert_int_equal(json_get_int(j, "i", 0, 41, &v), -1);
    cJSON_Delete(j);
}

static void test_print(void **state)
{
    cJSON *j = parse("{ \"a\" : [ 1 , 2 ] }", NULL, 0);
    assert_non_null(j);
    char *s = json_print(j);
    assert_string_equal(s, "{\"a\":[1,2]}");
    free(s);
    assert_null(json_print(NULL));
    cJSON_Delete(j);
}

/* The escaper follows PostgreSQL's escape_json byte for byte. */
static void test_escape_matches_postgresql(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(json_quote("a\"b\\c\b\f\n\r\t\x01\x1f/\xc3\xa9", out, sizeof out), 34);
    assert_string_equal(out, "\"a\\\"b\\\\c\\b\\f\\n\\r\\t\\u0001\\u001f/\xc3\xa9\"");
    assert_int_equal(json_escaped_len("a\x01"), 7);
    char e[6];
    assert_int_equal(json_escape_byte('x', e), 0);
    assert_int_equal(json_escape_byte(0x7f, e), 0);       /* DEL is not a control for JSON */
}

static void test_quote_refuses_a_small_buffer(void **state)
{
    (void)state;
    char out[5];
    assert_int_equal(json_quote("abc", out, 5), 0);     /* needs 6 with the NUL */
    assert_int_equal(json_quote("ab", out, 5), 4);
    assert_string_equal(out, "\"ab\"");
}

/* What PostgreSQL prints becomes compact; strings keep their spaces and
 * escaped quotes do not end them. */
static void test_compact_removes_space_between_tokens_only(void **state)
{
    (void)state;
    char text[] = "{\"a\" : 1, \"b\": [1, 2,\n\t{\"c d\" : \"x \\\" , y\"}] }";
    size_t n = json_compact(text, strlen(text));
    text[n] = '\0';
    assert_string_equal(text, "{\"a\":1,\"b\":[1,2,{\"c d\":\"x \\\" , y\"}]}");
    char done[] = "{\"k\":\"v\"}";
    assert_int_equal(json_compact(done, strlen(done)), strlen("{\"k\":\"v\"}"));
}

/* ---- numbers kept exactly --------------------------------------------------- */

/* json_find_inexact_number on text: 0 (all exact) or 1 with the pointer,
 * which must then be want_pointer. */
static void expect_number(const char *text, int want, const char *want_pointer)
{
    char err[128] = "";
    cJSON *j = parse(text, err, sizeof err);
    if (!j) fail_msg("%s: %s", text, err);
    strbuf pointer = {0};
    int rc = json_find_inexact_number(text, strlen(text), j, &pointer);
    if (rc != want)
        fail_msg("%s: %s, expected %s", text, rc == 0 ? "kept exactly" : rc == 1 ?
                 "refused" : "error", want ? "refused" : "kept exactly");
    if (want == 1 && strcmp(pointer.s, want_pointer) != 0)
        fail_msg("%s: pointer \"%s\", expected \"%s\"", text, pointer.s, want_pointer);
    /* What is accepted is printed back as the same value. */
    if (want == 0) {
        char *printed = json_print(j);
        cJSON *again = parse(printed, err, sizeof err);
        assert_non_null(again);
        strbuf p2 = {0};
        assert_int_equal(json_find_inexact_number(printed, strlen(printed), again, &p2), 0);
        strbuf_free(&p2);
        cJSON_Delete(again);
        free(printed);
    }
    strbuf_free(&pointer);
    cJSON_Delete(j);
}

static void test_numbers_that_change_are_found(void **state)
{
    (void)state;
    /* The two of the report: out of range, and more digits than survive. */
    expect_number("{\"payload\":{\"n\":1e400}}", 1, "/payload/n");
    expect_number("{\"payload\":{\"n\":123456789012345678901234567890}}", 1, "/payload/n");
    expect_number("[1e-400]", 1, "/0");
    expect_number("[-1e400]", 1, "/0");
    expect_number("[9007199254740993]", 1, "/0");
    expect_number("[0.1000000000000000055511151231257827]", 1, "/0");   /* 0.1's double, in full */
    expect_number("[1.00000000000000000001]", 1, "/0");
    expect_number("[1e99999999999999999999]", 1, "/0");
    /* The smallest double is 4.94065645841247e-324 as printed, not 5e-324. */
    expect_number("[5e-324]", 1, "/0");
    /* The first one in document order, with its path escaped. */
    expect_number("{\"a\":[1,2,{\"b/c~d\":[0,1e999]}],\"z\":1e999}", 1, "/a/2/b~1c~0d/1");
    expect_number("{\"\":1e999}", 1, "/");
    expect_number("1e999", 1, "");
    /* Numbers inside strings are text, never checked. */
    expect_number("{\"s\":\"1e999 -2 \\\" 3\",\"n\":[true,false,null,1e999]}", 1, "/n/3");
}

static void test_numbers_kept_exactly(void **state)
{
    (void)state;
    expect_number("{\"a\":0,\"b\":-0,\"c\":0.1,\"d\":1E2,\"e\":1e2,\"f\":-1.5e-3}", 0, NULL);
    expect_number("[9007199254740991,-9007199254740991,9007199254740992,2147483647]", 0, NULL);
    expect_number("[0.10,100.000,0.000001,1e-300,1.7976931348623157e308]", 0, NULL);
    expect_number("[1e23,123456789012,0.5,3.14159,2.5e+10,2.2250738585072e-308]", 0, NULL);
    expect_number("[0.30000000000000004,-0.0,0e5,1234567e-2,-0]", 0, NULL);
    expect_number("[1234567890123456789e-2]", 1, "/0");    /* 19 digits */
    expect_number("{\"s\":\"123456789012345678901234567890\"}", 0, NULL);
    expect_number("[]", 0, NULL);
    expect_number("\"x\"", 0, NULL);
}

/* json_print writes every number so that it reads back as the same
 * double, where cJSON's printer alone rounds some to 15 digits. */
static void test_print_keeps_every_double(void **state)
{
    (void)state;
    static const double values[] = {
        9007199254740991.0, 9007199254740992.0, -9007199254740991.0, 0.30000000000000004,
        1.7976931348623157e308, 4.9406564584124654e-324, 0.1, 100, -0.0, 123456789.123456789,
        2.2250738585072014e-308, 1e23,
    };
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        cJSON *a = cJSON_CreateArray();
        cJSON_AddItemToArray(a, cJSON_CreateNumber(values[i]));
        char *text = json_print(a);
        assert_non_null(text);
        cJSON *back = cJSON_Parse(text);
        double got = cJSON_GetArrayItem(back, 0)->valuedouble;
        if (got != values[i]) fail_msg("%.17g printed as %s", values[i], text);
        free(text);
        cJSON_Delete(back);
        cJSON_Delete(a);
    }
    /* Numbers cJSON prints exactly are printed as cJSON prints them. */
    cJSON *o = cJSON_Parse("{\"a\":100,\"b\":0.7,\"c\":-2.5e-7,\"d\":[1e+23],\"e\":\"9.9\"}");
    char *text = json_print(o);
    char *plain = cJSON_PrintUnformatted(o);
    assert_string_equal(text, plain);
    free(text);
    free(plain);
    cJSON_Delete(o);
    /* An infinity has no JSON spelling: null, as before. */
    cJSON *inf = cJSON_CreateArray();
    cJSON_AddItemToArray(inf, cJSON_CreateNumber(HUGE_VAL));
    text = json_print(inf);
    assert_string_equal(text, "[null]");
    free(text);
    cJSON_Delete(inf);
}

static void test_float_fit(void **state)
{
    (void)state;
    static const struct { const char *text; bool fits; const char *shortest; } cases[] = {
        { "0.7", true, "0.7" }, { "0", true, "0" }, { "2", true, "2" }, { "1.5", true, "1.5" },
        { "0.1", true, "0.1" }, { "0.123456789", false, "0.12345679" },
        { "1.0000001", true, "1.0000001" }, { "1.00000001", false, "1" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cJSON *n = cJSON_Parse(cases[i].text);
        char out[32];
        bool fits = json_number_fits_float(n, out, sizeof out);
        if (fits != cases[i].fits || strcmp(out, cases[i].shortest) != 0)
            fail_msg("%s: fits %d as \"%s\"", cases[i].text, fits, out);
        cJSON_Delete(n);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parses_plain_object),
        cmocka_unit_test(test_scalars_are_values),
        cmocka_unit_test(test_depth_exactly_at_limit),
        cmocka_unit_test(test_depth_one_over_limit),
        cmocka_unit_test(test_depth_counts_objects_and_arrays),
        cmocka_unit_test(test_depth_siblings_do_not_add_up),
        cmocka_unit_test(test_brackets_inside_strings_not_counted),
        cmocka_unit_test(test_size_limit),
        cmocka_unit_test(test_size_limit_message_1mib),
        cmocka_unit_test(test_only_len_bytes_are_read),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_valid_utf8),
        cmocka_unit_test(test_lone_surrogate_escape),
        cmocka_unit_test(test_non_ascii_outside_string),
        cmocka_unit_test(test_trailing_garbage),
        cmocka_unit_test(test_malformed_reports_byte),
        cmocka_unit_test(test_empty_document),
        cmocka_unit_test(test_strict_numbers_and_literals),
        cmocka_unit_test(test_string_contents),
        cmocka_unit_test(test_duplicate_members),
        cmocka_unit_test(test_many_members_unique),
        cmocka_unit_test(test_err_may_be_null),
        cmocka_unit_test(test_get_string),
        cmocka_unit_test(test_get_int),
        cmocka_unit_test(test_print),
        cmocka_unit_test(test_escape_matches_postgresql),
        cmocka_unit_test(test_quote_refuses_a_small_buffer),
        cmocka_unit_test(test_compact_removes_space_between_tokens_only),
        cmocka_unit_test(test_numbers_that_change_are_found),
        cmocka_unit_test(test_numbers_kept_exactly),
        cmocka_unit_test(test_print_keeps_every_double),
        cmocka_unit_test(test_float_fit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
