/*
 * test_guard.c - unit tests for the pure parts of the hostile-HTTP guard:
 * the JSON nesting pre-scan, CORS origin matching, and the scan of a raw
 * request head against the caps (URI, header bytes and count, one field,
 * the bearer token).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "guard.h"
#include "jsonutil.h"

/* --- json_depth_exceeds ------------------------------------------------- */

static char *nested(int depth, char open, char close)
{
    char *s = malloc((size_t)depth * 2 + 1);
    assert_non_null(s);
    for (int i = 0; i < depth; i++) { s[i] = open; s[depth * 2 - 1 - i] = close; }
    s[depth * 2] = '\0';
    return s;
}

static bool deeper(const char *s, int max) { return json_depth_exceeds(s, strlen(s), max); }

static void test_depth_counts_arrays_and_objects(void **state)
{
    (void)state;
    char *a = nested(8, '[', ']');
    assert_false(deeper(a, 8));
    assert_true(deeper(a, 7));
    free(a);
    assert_false(deeper("{\"a\":{\"b\":[1,{\"c\":2}]}}", 4));
    assert_true(deeper("{\"a\":{\"b\":[1,{\"c\":2}]}}", 3));
    assert_false(deeper("{}", 1));
    assert_false(deeper("42", 0));
    assert_true(deeper("[", 0));
}

static void test_depth_ignores_brackets_in_strings(void **state)
{
    (void)state;
    assert_false(deeper("{\"k\":\"[[[[[[[[[[{{{{{{{{\"}", 1));
    /* An escaped quote does not end the string. */
    assert_false(deeper("[\"\\\"[[[[[[\"]", 1));
    /* An escaped backslash does: the brackets after it count. */
    assert_true(deeper("[\"\\\\\",[[[]]]]", 3));
}

static void test_depth_sibling_containers_do_not_add_up(void **state)
{
    (void)state;
    assert_false(deeper("[[1],[2],[3],{\"a\":[4]}]", 3));
    assert_true(deeper("[[1],[2],[3],{\"a\":[4]}]", 2));
    /* Stray closers never make the count negative and hide a deep tail. */
    assert_true(deeper("]]]]]][[[", 2));
}

static void test_depth_huge_input_is_bounded(void **state)
{
    (void)state;
    char *a = nested(100000, '[', ']');
    assert_true(deeper(a, 64));
    assert_false(deeper(a, 100000));
    free(a);
}

/* --- guard_origin_allowed ----------------------------------------------- */

static void test_origin_exact_match(void **state)
{
    (void)state;
    const char *list = "https://app.example.com, https://admin.example.com:8443";
    assert_true(guard_origin_allowed(list, "https://app.example.com"));
    assert_true(guard_origin_allowed(list, "https://admin.example.com:8443"));
    assert_false(guard_origin_allowed(list, "https://admin.example.com"));
    assert_false(guard_origin_allowed(list, "http://app.example.com"));
    assert_false(guard_origin_allowed(list, "https://app.example.com.evil.test"));
    assert_false(guard_origin_allowed(list, "https://evil.test/https://app.example.com"));
    assert_false(guard_origin_allowed(list, "https://app.example.co"));
    assert_false(guard_origin_allowed(list, "HTTPS://APP.EXAMPLE.COM"));
}

static void test_origin_never_wildcard_or_null(void **state)
{
    (void)state;
    assert_false(guard_origin_allowed("*", "https://app.example.com"));
    assert_false(guard_origin_allowed("*", "*"));
    assert_false(guard_origin_allowed("null,https://a.test", "null"));
    assert_false(guard_origin_allowed("", "https://a.test"));
    assert_false(guard_origin_allowed(NULL, "https://a.test"));
    assert_false(guard_origin_allowed("https://a.test", ""));
    assert_false(guard_origin_allowed("https://a.test", NULL));
    assert_true(guard_origin_allowed(" ,https://a.test,, ", "https://a.test"));
}

/* --- guard_scan_head ---------------------------------------------------- */

static const head_limits lim = {
    .max_uri = 1024, .max_bytes = 4096, .max_headers = 10,
    .max_field = GUARD_PARSER_FIELD_LIMIT, .max_token = 8192,
};

static head_verdict scan(const char *head, size_t *head_len)
{
    size_t dummy;
    return guard_scan_head(head, strlen(head), &lim, head_len ? head_len : &dummy);
}

static char *repeat(const char *pre, char c, size_t n, const char *post)
{
    size_t a = strlen(pre), b = strlen(post);
    char *s = malloc(a + n + b + 1);
    assert_non_null(s);
    memcpy(s, pre, a);
    memset(s + a, c, n);
    memcpy(s + a + n, post, b + 1);
    return s;
}

static void test_head_complete_and_incomplete(void **state)
{
    (void)state;
    size_t n = 0;
    const char *h = "GET /v1/jobs HTTP/1.1\r\nHost: x\r\n\r\nBODY";
    assert_int_equal(scan(h, &n), HEAD_COMPLETE);
    assert_int_equal(n, strlen(h) - 4);
    assert_int_equal(scan("GET /v1/jobs HTTP/1.1\nHost: x\n\n", &n), HEAD_COMPLETE);
    assert_int_equal(scan("\r\nGET / HTTP/1.1\r\n\r\n", &n), HEAD_COMPLETE);
    assert_int_equal(scan("", NULL), HEAD_INCOMPLETE);
    assert_int_equal(scan("GE", NULL), HEAD_INCOMPLETE);
    assert_int_equal(scan("GET /v1/jobs HTTP/1.1\r\nHost: x\r\n", NULL), HEAD_INCOMPLETE);
    assert_int_equal(scan("GET /v1/jobs HTTP/1.1\r\nHost: x\r\n\r", NULL), HEAD_INCOMPLETE);
}

static void test_head_not_http_is_left_to_the_parser(void **state)
{
    (void)state;
    assert_int_equal(scan("\x16\x03\x01\x02\x00", NULL), HEAD_NOT_HTTP);
    assert_int_equal(scan("get / HTTP/1.1\r\n\r\n", NULL), HEAD_NOT_HTTP);
}

static void test_head_uri_cap(void **state)
{
    (void)state;
    char *ok = repeat("GET /", 'a', 1023, " HTTP/1.1\r\n\r\n");
    assert_int_equal(scan(ok, NULL), HEAD_COMPLETE);
    char *over = repeat("GET /", 'a', 1024, " HTTP/1.1\r\n\r\n");
    assert_int_equal(scan(over, NULL), HEAD_URI_TOO_LONG);
    /* Known before the line ends: no need to wait for the rest. */
    char *partial = repeat("GET /", 'a', 2000, "");
    assert_int_equal(scan(partial, NULL), HEAD_URI_TOO_LONG);
    free(ok); free(over); free(partial);
}

static void test_head_header_caps(void **state)
{
    (void)state;
    /* Count: 10 headers pass, 11 do not. */
    char buf[1024] = "GET / HTTP/1.1\r\n";
    for (int i = 0; i < 10; i++) snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "X-%d: v\r\n", i);
    strcat(buf, "\r\n");
    assert_int_equal(scan(buf, NULL), HEAD_COMPLETE);
    buf[strlen(buf) - 2] = '\0';
    strcat(buf, "X-10: v\r\n\r\n");
    assert_int_equal(scan(buf, NULL), HEAD_TOO_LARGE);
    /* Bytes: a 5000-byte header is over 4096 before it ends. */
    char *big = repeat("GET / HTTP/1.1\r\nX-Big: ", 'b', 5000, "");
    assert_int_equal(scan(big, NULL), HEAD_TOO_LARGE);
    free(big);
}

static void test_head_field_over_parser_limit(void **state)
{
    (void)state;
    head_limits wide = lim;
    wide.max_bytes = 1 << 20;
    size_t n;
    char *v = repeat("GET / HTTP/1.1\r\nX-Big: ", 'b', GUARD_PARSER_FIELD_LIMIT, "\r\n\r\n");
    assert_int_equal(guard_scan_head(v, strlen(v), &wide, &n), HEAD_TOO_LARGE);
    char *ok = repeat("GET / HTTP/1.1\r\nX-Big: ", 'b', GUARD_PARSER_FIELD_LIMIT - 1, "\r\n\r\n");
    assert_int_equal(guard_scan_head(ok, strlen(ok), &wide, &n), HEAD_COMPLETE);
    free(v); free(ok);
}

static void test_head_oversize_token_is_401_not_431(void **state)
{
    (void)state;
    /* A 100 KB token: judged on its first 9 KB, before the head ends and
     * before the total cap is reached. */
    char *tok = repeat("GET /v1/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ", 'a', 9000, "");
    assert_int_equal(scan(tok, NULL), HEAD_TOKEN_TOO_LARGE);
    char *lower = repeat("GET /v1/jobs HTTP/1.1\r\nauthorization:Bearer ", 'a', 100000, "\r\n\r\n");
    assert_int_equal(scan(lower, NULL), HEAD_TOKEN_TOO_LARGE);
    /* A token of ordinary size is fine. */
    char *fine = repeat("GET /v1/jobs HTTP/1.1\r\nAuthorization: Bearer ", 'a', 900, "\r\n\r\n");
    assert_int_equal(scan(fine, NULL), HEAD_COMPLETE);
    /* Another header just as big is 431. */
    char *other = repeat("GET /v1/jobs HTTP/1.1\r\nX-Authorization: ", 'a', 9000, "");
    assert_int_equal(scan(other, NULL), HEAD_TOO_LARGE);
    free(tok); free(lower); free(fine); free(other);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_depth_counts_arrays_and_objects),
        cmocka_unit_test(test_depth_ignores_brackets_in_strings),
        cmocka_unit_test(test_depth_sibling_containers_do_not_add_up),
        cmocka_unit_test(test_depth_huge_input_is_bounded),
        cmocka_unit_test(test_origin_exact_match),
        cmocka_unit_test(test_origin_never_wildcard_or_null),
        cmocka_unit_test(test_head_complete_and_incomplete),
        cmocka_unit_test(test_head_not_http_is_left_to_the_parser),
        cmocka_unit_test(test_head_uri_cap),
        cmocka_unit_test(test_head_header_caps),
        cmocka_unit_test(test_head_field_over_parser_limit),
        cmocka_unit_test(test_head_oversize_token_is_401_not_431),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
