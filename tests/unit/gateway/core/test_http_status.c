/*
 * test_http_status.c - unit tests for the reason phrases of the status
 * lines the gateway writes (http_status_phrase): every status agentgate
 * sends has its RFC 9110 / RFC 6585 phrase, and a status without one gets
 * an empty phrase rather than a made-up word.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "http.h"

/* Each status the gateway answers with somewhere (handlers, the guard,
 * the admission stages, Idempotency-Key replays of those), and its phrase. */
static const struct { int status; const char *phrase; } sent[] = {
    { 200, "OK" },
    { 201, "Created" },
    { 202, "Accepted" },
    { 204, "No Content" },
    { 304, "Not Modified" },
    { 400, "Bad Request" },
    { 401, "Unauthorized" },
    { 403, "Forbidden" },
    { 404, "Not Found" },
    { 405, "Method Not Allowed" },
    { 408, "Request Timeout" },
    { 409, "Conflict" },
    { 413, "Content Too Large" },
    { 414, "URI Too Long" },
    { 415, "Unsupported Media Type" },
    { 422, "Unprocessable Content" },
    { 429, "Too Many Requests" },
    { 431, "Request Header Fields Too Large" },
    { 500, "Internal Server Error" },
    { 502, "Bad Gateway" },
    { 503, "Service Unavailable" },
    { 504, "Gateway Timeout" },
};

static void test_every_status_sent_has_its_phrase(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof sent / sizeof sent[0]; i++)
        assert_string_equal(http_status_phrase(sent[i].status), sent[i].phrase);
}

static void test_phrases_are_plain_text(void **state)
{
    (void)state;
    /* RFC 9112 4: reason-phrase = 1*( HTAB / SP / VCHAR / obs-text ). */
    for (int status = 100; status < 600; status++) {
        const char *p = http_status_phrase(status);
        for (const char *c = p; *c; c++)
            assert_true(*c == ' ' || (*c > 0x20 && *c < 0x7f));
        assert_true(p[0] != ' ');
    }
}

static void test_unknown_status_has_an_empty_phrase(void **state)
{
    (void)state;
    assert_string_equal(http_status_phrase(299), "");
    assert_string_equal(http_status_phrase(418), "");
    assert_string_equal(http_status_phrase(599), "");
    assert_string_equal(http_status_phrase(0), "");
    assert_string_equal(http_status_phrase(-1), "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_status_sent_has_its_phrase),
        cmocka_unit_test(test_phrases_are_plain_text),
        cmocka_unit_test(test_unknown_status_has_an_empty_phrase),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
