/*
 * test_guard.c - unit tests for the pure parts of the hostile-HTTP guard:
 * the JSON nesting pre-scan, CORS origin matching, and the scan of a raw
 * request head against the caps (URI, header bytes and count, one field,
 * the bearer token) and against the heads two parsers could read two ways
 * (request line, target, version, header lines, repeated fields, body
 * framing).
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
    head_scan out;
    head_verdict v = guard_scan_head(head, strlen(head), &lim, &out);
    if (head_len) *head_len = out.head_len;
    return v;
}

/* The verdict on head, and the field the scan names (NULL for none). */
static head_verdict scan_field(const char *head, const char **field)
{
    head_scan out;
    head_verdict v = guard_scan_head(head, strlen(head), &lim, &out);
    *field = out.field;
    return v;
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
    assert_int_equal(scan("\r\nGET / HTTP/1.1\r\n\r\n", &n), HEAD_COMPLETE);
    assert_int_equal(n, 20);
    assert_int_equal(scan("GET / HTTP/1.0\r\n\r\n", &n), HEAD_COMPLETE);
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
    assert_int_equal(scan("GET-X / HTTP/1.1\r\n\r\n", NULL), HEAD_NOT_HTTP);
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

/* A head whose header lines fill the byte cap to the last byte is kept
 * when its final CR and LF arrive apart: the CR alone is no line yet. */
static void test_head_at_the_byte_cap_split_before_its_last_lf(void **state)
{
    (void)state;
    /* One header line of 4096 bytes with its CR LF: exactly the cap. */
    char *h = repeat("GET / HTTP/1.1\r\nX: ", 'a', 4096 - 5, "\r\n\r\n");
    size_t len = strlen(h), n = 0;
    head_scan out;
    assert_int_equal(guard_scan_head(h, len - 1, &lim, &out), HEAD_INCOMPLETE);
    assert_int_equal(scan(h, &n), HEAD_COMPLETE);
    assert_int_equal(n, len);
    free(h);
}

static void test_head_field_over_parser_limit(void **state)
{
    (void)state;
    head_limits wide = lim;
    wide.max_bytes = 1 << 20;
    char *v = repeat("GET / HTTP/1.1\r\nX-Big: ", 'b', GUARD_PARSER_FIELD_LIMIT, "\r\n\r\n");
    assert_int_equal(guard_scan_head(v, strlen(v), &wide, NULL), HEAD_TOO_LARGE);
    char *ok = repeat("GET / HTTP/1.1\r\nX-Big: ", 'b', GUARD_PARSER_FIELD_LIMIT - 1, "\r\n\r\n");
    assert_int_equal(guard_scan_head(ok, strlen(ok), &wide, NULL), HEAD_COMPLETE);
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


/* --- heads two parsers could read two ways ------------------------------ */

/* Every prefix of head (up to the byte where the verdict is due) scans as
 * HEAD_INCOMPLETE or as verdict: a refusal never waits for bytes it does
 * not need, and never depends on how the bytes were split. */
static void assert_prefixes(const char *head, head_verdict verdict)
{
    size_t len = strlen(head);
    bool seen = false;
    for (size_t k = 0; k <= len; k++) {
        head_verdict v = guard_scan_head(head, k, &lim, NULL);
        if (v == HEAD_INCOMPLETE) {
            assert_false(seen);
            continue;
        }
        assert_int_equal(v, verdict);
        seen = true;
    }
    assert_true(seen);
}

static void test_head_methods_the_parser_takes_are_judged(void **state)
{
    (void)state;
    /* libevhtp takes '_' in a method, and methods of any length: such a
     * head must not pass unjudged as "not HTTP". */
    assert_int_equal(scan("POST_ / HTTP/1.1\r\nContent-Length: 5\r\n"
                          "Transfer-Encoding: chunked\r\n\r\n", NULL), HEAD_BAD_FRAMING);
    assert_int_equal(scan("_ / HTTP/1.1\r\n\r\n", NULL), HEAD_COMPLETE);
    char *longest = repeat("", 'M', 32, " / HTTP/1.1\r\n\r\n");
    assert_int_equal(scan(longest, NULL), HEAD_COMPLETE);
    char *longer = repeat("", 'M', 33, " / HTTP/1.1\r\n\r\n");
    assert_prefixes(longer, HEAD_BAD_REQUEST_LINE);
    free(longest); free(longer);
}

static void test_head_request_line_is_strict(void **state)
{
    (void)state;
    /* An HTTP/0.9 line, two spaces, a space inside the target, bare line ends. */
    assert_prefixes("GET /v1/health/live\r\n\r\n", HEAD_BAD_REQUEST_LINE);
    assert_prefixes("GET  /v1/health/live HTTP/1.1\r\n\r\n", HEAD_BAD_REQUEST_LINE);
    assert_prefixes("GET /v1/health/live  HTTP/1.1\r\n\r\n", HEAD_BAD_REQUEST_LINE);
    assert_prefixes("GET /v1/health/live HTTP/1.1 \r\n\r\n", HEAD_BAD_REQUEST_LINE);
    assert_prefixes("GET /v1/jobs HTTP/1.1\nHost: x\n\n", HEAD_BAD_REQUEST_LINE);
    assert_prefixes("GET /v1/jobs HTTP/1.1\rHost: x\r\n\r\n", HEAD_BAD_REQUEST_LINE);
    /* Blank lines before the request line are ignored, within reason. */
    char *blank = repeat("", '\n', GUARD_MAX_LEADING_BLANK + 1, "GET / HTTP/1.1\r\n\r\n");
    assert_int_equal(scan(blank, NULL), HEAD_BAD_REQUEST_LINE);
    blank[1] = '\0';
    assert_int_equal(scan(blank, NULL), HEAD_INCOMPLETE);
    free(blank);
}

static void test_head_target_with_a_control_character_is_400(void **state)
{
    (void)state;
    /* libevhtp keeps the target as a C string: after a NUL it would serve
     * /v1/health/live for a target that is something else. */
    const char nul[] = "GET /v1/health/live\0x HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_int_equal(guard_scan_head(nul, sizeof nul - 1, &lim, NULL), HEAD_BAD_TARGET);
    assert_int_equal(guard_scan_head(nul, 20, &lim, NULL), HEAD_BAD_TARGET);
    assert_int_equal(guard_scan_head(nul, 19, &lim, NULL), HEAD_INCOMPLETE);
    assert_prefixes("GET /v1/jobs?a=\tb HTTP/1.1\r\n\r\n", HEAD_BAD_TARGET);
    assert_prefixes("GET /v1/jobs?a=\x7f HTTP/1.1\r\n\r\n", HEAD_BAD_TARGET);
    assert_prefixes("GET /v1/jobs?a=\x1b HTTP/1.1\r\n\r\n", HEAD_BAD_TARGET);
    /* Bytes past ASCII are not control characters. */
    assert_int_equal(scan("GET /v1/jobs?q=\xc3\xa9 HTTP/1.1\r\n\r\n", NULL), HEAD_COMPLETE);
}

static void test_head_only_http_1_0_and_1_1(void **state)
{
    (void)state;
    assert_prefixes("GET /v1/health/live HTTP/2.0\r\n\r\n", HEAD_BAD_VERSION);
    assert_prefixes("GET /v1/health/live HTTP/1.2\r\n\r\n", HEAD_BAD_VERSION);
    assert_prefixes("GET /v1/health/live HTTP/1.10\r\n\r\n", HEAD_BAD_VERSION);
    assert_prefixes("GET /v1/health/live HTTP/0.9\r\n\r\n", HEAD_BAD_VERSION);
    assert_prefixes("GET /v1/health/live http/1.1\r\n\r\n", HEAD_BAD_VERSION);
    assert_prefixes("GET /v1/health/live HTTP/1.\r\n\r\n", HEAD_BAD_VERSION);
    assert_prefixes("GET /v1/health/live HTTPS/1.1\r\n\r\n", HEAD_BAD_VERSION);
    assert_int_equal(scan("GET /v1/health/live HTTP/1.0\r\n\r\n", NULL), HEAD_COMPLETE);
    assert_int_equal(scan("GET /v1/health/live HTTP/1.1\r\n\r\n", NULL), HEAD_COMPLETE);
}

static void test_head_header_lines_are_strict(void **state)
{
    (void)state;
    /* White space before the colon: libevhtp would read no Content-Length. */
    assert_prefixes("POST /v1/jobs HTTP/1.1\r\nContent-Length : 5\r\n\r\nhello", HEAD_BAD_FIELD);
    assert_prefixes("POST /v1/jobs HTTP/1.1\r\nContent-Length\t: 5\r\n\r\n", HEAD_BAD_FIELD);
    /* Folded lines, with a space or a tab. */
    assert_prefixes("GET / HTTP/1.1\r\nX-A: 1\r\n 2\r\n\r\n", HEAD_BAD_FIELD);
    assert_prefixes("GET / HTTP/1.1\r\nX-A: 1\r\n\tContent-Length: 5\r\n\r\n", HEAD_BAD_FIELD);
    /* No colon, no name, a bad name character. */
    assert_prefixes("GET / HTTP/1.1\r\nX-A 1\r\n\r\n", HEAD_BAD_FIELD);
    assert_prefixes("GET / HTTP/1.1\r\nX-A\r\n\r\n", HEAD_BAD_FIELD);
    assert_prefixes("GET / HTTP/1.1\r\n: 1\r\n\r\n", HEAD_BAD_FIELD);
    assert_prefixes("GET / HTTP/1.1\r\nX(A): 1\r\n\r\n", HEAD_BAD_FIELD);
    /* Control characters in a value, a bare CR or LF. */
    assert_prefixes("GET / HTTP/1.1\r\nX-A: a\x01" "b\r\n\r\n", HEAD_BAD_FIELD);
    assert_prefixes("GET / HTTP/1.1\r\nX-A: a\rb\r\n\r\n", HEAD_BAD_FIELD);
    assert_prefixes("GET / HTTP/1.1\r\nX-A: a\nX-B: b\r\n\r\n", HEAD_BAD_FIELD);
    assert_prefixes("GET / HTTP/1.1\r\nX-A: a\r\n\n", HEAD_BAD_FIELD);
    const char nul[] = "GET / HTTP/1.1\r\nX-A: a\0b\r\n\r\n";
    assert_int_equal(guard_scan_head(nul, sizeof nul - 1, &lim, NULL), HEAD_BAD_FIELD);
    /* Tabs inside and around a value, odd but legal names, empty values. */
    assert_int_equal(scan("GET / HTTP/1.1\r\nX-A:\ta\tb \r\nX_B.c~!: \r\nX-C:\r\n\r\n", NULL),
                     HEAD_COMPLETE);
}

static void test_head_single_fields_appear_once(void **state)
{
    (void)state;
    const char *field;
    /* Two Authorization headers: the first would win, unseen by whoever
     * checked the last. */
    assert_int_equal(scan_field("GET /v1/jobs HTTP/1.1\r\nAuthorization: Bearer a\r\n"
                                "authorization: Bearer b\r\n\r\n", &field), HEAD_REPEATED_FIELD);
    assert_string_equal(field, "Authorization");
    assert_prefixes("GET /v1/jobs HTTP/1.1\r\nAuthorization: Bearer a\r\n"
                    "AUTHORIZATION: Bearer a\r\n\r\n", HEAD_REPEATED_FIELD);
    for (int i = 0; guard_single_fields[i]; i++) {
        char head[256];
        snprintf(head, sizeof head, "GET / HTTP/1.1\r\n%s: 1\r\nX-A: b\r\n%s: 1\r\n\r\n",
                 guard_single_fields[i], guard_single_fields[i]);
        assert_int_equal(scan_field(head, &field), HEAD_REPEATED_FIELD);
        assert_string_equal(field, guard_single_fields[i]);
        bool coding = strcmp(guard_single_fields[i], "Transfer-Encoding") == 0;
        snprintf(head, sizeof head, "GET / HTTP/1.1\r\n%s: %s\r\n\r\n", guard_single_fields[i],
                 coding ? "chunked" : "1");
        assert_int_equal(scan(head, NULL), HEAD_COMPLETE);
    }
    /* Other headers may repeat. */
    assert_int_equal(scan("GET / HTTP/1.1\r\nAccept: a\r\nAccept: b\r\nX-A: 1\r\nX-A: 2\r\n\r\n", NULL),
                     HEAD_COMPLETE);
}

static void test_head_body_framing_is_unambiguous(void **state)
{
    (void)state;
    const char *field;
    /* Both: RFC 9112 6.1, the request smuggling classic. */
    assert_int_equal(scan_field("POST /v1/jobs HTTP/1.1\r\nContent-Length: 5\r\n"
                                "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", &field), HEAD_BAD_FRAMING);
    assert_string_equal(field, "Transfer-Encoding");
    assert_int_equal(scan("POST /v1/jobs HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
                          "Content-Length: 5\r\n\r\n", NULL), HEAD_BAD_FRAMING);
    /* Codings libevhtp would not read as chunked, and would then read the
     * chunks as the next request. */
    const char *codings[] = { "gzip, chunked", "chunked, chunked", "identity", "CHUNKED",
                              "chunked ", "\tchunked", "xchunked", "" };
    for (size_t i = 0; i < sizeof codings / sizeof codings[0]; i++) {
        char head[128];
        snprintf(head, sizeof head, "POST / HTTP/1.1\r\nTransfer-Encoding: %s\r\n\r\n", codings[i]);
        assert_int_equal(scan_field(head, &field), HEAD_BAD_FRAMING);
        assert_string_equal(field, "Transfer-Encoding");
    }
    /* No chunked coding in HTTP/1.0. */
    assert_int_equal(scan("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", NULL),
                     HEAD_BAD_FRAMING);
    /* Content-Length: one number, as libevhtp reads it. */
    const char *lengths[] = { "5, 5", "+5", "-1", "0x10", "5 5", "", "\t5",
                              "1234567890123456789" };
    for (size_t i = 0; i < sizeof lengths / sizeof lengths[0]; i++) {
        char head[128];
        snprintf(head, sizeof head, "POST / HTTP/1.1\r\nContent-Length: %s\r\n\r\n", lengths[i]);
        assert_int_equal(scan_field(head, &field), HEAD_BAD_FRAMING);
        assert_string_equal(field, "Content-Length");
    }
    /* Two Content-Length headers, even equal ones. */
    assert_int_equal(scan_field("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
                                &field), HEAD_REPEATED_FIELD);
    assert_string_equal(field, "Content-Length");
    assert_int_equal(scan("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", NULL),
                     HEAD_REPEATED_FIELD);
    /* Good framing. */
    assert_int_equal(scan("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n", NULL), HEAD_COMPLETE);
    assert_int_equal(scan("POST / HTTP/1.1\r\nContent-Length:  0 \r\n\r\n", NULL), HEAD_COMPLETE);
    assert_int_equal(scan("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", NULL), HEAD_COMPLETE);
    assert_int_equal(scan("POST / HTTP/1.1\r\ntransfer-encoding: Chunked\r\n\r\n", NULL), HEAD_COMPLETE);
    assert_int_equal(scan("POST / HTTP/1.0\r\nContent-Length: 5\r\n\r\n", NULL), HEAD_COMPLETE);
    /* Framing is judged on the whole head, and not before. */
    assert_int_equal(scan("POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n",
                          NULL), HEAD_INCOMPLETE);
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
        cmocka_unit_test(test_head_methods_the_parser_takes_are_judged),
        cmocka_unit_test(test_head_uri_cap),
        cmocka_unit_test(test_head_header_caps),
        cmocka_unit_test(test_head_at_the_byte_cap_split_before_its_last_lf),
        cmocka_unit_test(test_head_field_over_parser_limit),
        cmocka_unit_test(test_head_oversize_token_is_401_not_431),
        cmocka_unit_test(test_head_request_line_is_strict),
        cmocka_unit_test(test_head_target_with_a_control_character_is_400),
        cmocka_unit_test(test_head_only_http_1_0_and_1_1),
        cmocka_unit_test(test_head_header_lines_are_strict),
        cmocka_unit_test(test_head_single_fields_appear_once),
        cmocka_unit_test(test_head_body_framing_is_unambiguous),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
