/*
 * test_mcp_sse.c - the Server-Sent Events parser of the MCP HTTP
 * transport: events split at every byte, the three line endings, multi-
 * line data, comments, event types, ids (including the priming event with
 * an id and no data), retry, a leading byte-order mark, and the bounds.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "mcp_jsonrpc.h"
#include "mcp_sse.h"

typedef struct seen {
    int n;
    char type[8][64];
    char data[8][256];
    char id[8][64];
} seen;

static int collect(void *user, const char *type, const char *data, size_t len,
                   const char *last_id)
{
    seen *s = user;
    if (s->n < 8) {
        snprintf(s->type[s->n], sizeof s->type[0], "%s", type);
        snprintf(s->data[s->n], sizeof s->data[0], "%.*s", (int)len, data);
        snprintf(s->id[s->n], sizeof s->id[0], "%s", last_id);
    }
    s->n++;
    return MCP_OK;
}

static int feed_all(mcp_sse *p, const char *text, seen *s)
{
    return mcp_sse_feed(p, text, strlen(text), collect, s);
}

static void test_basic_event(void **state)
{
    (void)state;
    mcp_sse p;
    seen s = {0};
    mcp_sse_init(&p, 1024, 1024);
    assert_int_equal(feed_all(&p, "data: {\"a\":1}\n\n", &s), MCP_OK);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.type[0], "message");
    assert_string_equal(s.data[0], "{\"a\":1}");
    assert_string_equal(s.id[0], "");
    mcp_sse_free(&p);
}

/* The same stream fed one byte at a time gives the same events. */
static void test_split_anywhere(void **state)
{
    (void)state;
    const char *stream = "id: 1\r\ndata: first\r\n\r\n: keep-alive\rdata: sec\rdata: ond\r\r"
                         "event: message\nid: 3\ndata:third\n\n";
    for (int bytewise = 0; bytewise < 2; bytewise++) {
        mcp_sse p;
        seen s = {0};
        mcp_sse_init(&p, 1024, 1024);
        if (bytewise) {
            for (size_t i = 0; stream[i]; i++)
                assert_int_equal(mcp_sse_feed(&p, stream + i, 1, collect, &s), MCP_OK);
        } else {
            assert_int_equal(feed_all(&p, stream, &s), MCP_OK);
        }
        assert_int_equal(s.n, 3);
        assert_string_equal(s.data[0], "first");
        assert_string_equal(s.id[0], "1");
        assert_string_equal(s.data[1], "sec\nond");
        assert_string_equal(s.id[1], "1");      /* the id carries over */
        assert_string_equal(s.data[2], "third"); /* no space after the colon */
        assert_string_equal(s.id[2], "3");
        mcp_sse_free(&p);
    }
}

/* MCP servers prime a stream with an id and no data: nothing is
 * dispatched, but the id is what a resumption sends. */
static void test_priming_event_sets_last_id(void **state)
{
    (void)state;
    mcp_sse p;
    seen s = {0};
    mcp_sse_init(&p, 1024, 1024);
    assert_int_equal(feed_all(&p, "id: prime-7\n\n", &s), MCP_OK);
    assert_int_equal(s.n, 0);
    assert_string_equal(p.last_id, "prime-7");
    /* "data:" with an empty value is an event with empty data. */
    assert_int_equal(feed_all(&p, "id: e8\ndata:\n\n", &s), MCP_OK);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.data[0], "");
    assert_string_equal(p.last_id, "e8");
    mcp_sse_free(&p);
}

static void test_event_type_and_unknown_fields(void **state)
{
    (void)state;
    mcp_sse p;
    seen s = {0};
    mcp_sse_init(&p, 1024, 1024);
    assert_int_equal(feed_all(&p, "event: endpoint\nfoo: bar\ndata\ndata: x\n\ndata: y\n\n",
                              &s), MCP_OK);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.type[0], "endpoint");
    assert_string_equal(s.data[0], "\nx");     /* "data" alone adds an empty line */
    assert_string_equal(s.type[1], "message"); /* the type does not carry over */
    mcp_sse_free(&p);
}

static void test_retry(void **state)
{
    (void)state;
    mcp_sse p;
    seen s = {0};
    mcp_sse_init(&p, 1024, 1024);
    assert_int_equal(p.retry_ms, -1);
    feed_all(&p, "retry: 2500\n", &s);
    assert_int_equal(p.retry_ms, 2500);
    feed_all(&p, "retry: 12x\nretry:\nretry: -5\n", &s);
    assert_int_equal(p.retry_ms, 2500);         /* not digits only: ignored */
    feed_all(&p, "retry: 99999999999999999999\n", &s);
    assert_int_equal(p.retry_ms, MCP_SSE_RETRY_MAX);
    mcp_sse_free(&p);
}

static void test_id_with_nul_ignored(void **state)
{
    (void)state;
    mcp_sse p;
    seen s = {0};
    mcp_sse_init(&p, 1024, 1024);
    static const char stream[] = "id: good\n\nid: b\0d\n\n";
    assert_int_equal(mcp_sse_feed(&p, stream, sizeof stream - 1, collect, &s), MCP_OK);
    assert_string_equal(p.last_id, "good");
    mcp_sse_free(&p);
}

static void test_byte_order_mark(void **state)
{
    (void)state;
    mcp_sse p;
    seen s = {0};
    mcp_sse_init(&p, 1024, 1024);
    const char *stream = "\xef\xbb\xbf" "data: after bom\n\n";
    for (size_t i = 0; stream[i]; i++)
        mcp_sse_feed(&p, stream + i, 1, collect, &s);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.data[0], "after bom");
    mcp_sse_free(&p);

    /* Bytes that only start like a BOM are text. */
    mcp_sse_init(&p, 1024, 1024);
    memset(&s, 0, sizeof s);
    feed_all(&p, "\xef" "data: x\n\n", &s);
    assert_int_equal(s.n, 0);                   /* field "\xefdata" is unknown */
    feed_all(&p, "data: y\n\n", &s);
    assert_int_equal(s.n, 1);
    mcp_sse_free(&p);
}

static void test_line_limit(void **state)
{
    (void)state;
    mcp_sse p;
    seen s = {0};
    mcp_sse_init(&p, 16, 1024);
    assert_int_equal(feed_all(&p, "data: 0123456789abcdef\n\n", &s), MCP_ERR_TOO_LARGE);
    assert_non_null(strstr(p.error_text, "line"));
    /* The error sticks. */
    assert_int_equal(feed_all(&p, "data: x\n\n", &s), MCP_ERR_TOO_LARGE);
    assert_int_equal(s.n, 0);
    mcp_sse_free(&p);
}

static void test_data_limit(void **state)
{
    (void)state;
    mcp_sse p;
    seen s = {0};
    mcp_sse_init(&p, 1024, 10);
    assert_int_equal(feed_all(&p, "data: 12345\ndata: 67890\n\n", &s), MCP_ERR_TOO_LARGE);
    assert_int_equal(s.n, 0);
    mcp_sse_free(&p);
}

static int refuse_event(void *user, const char *type, const char *data, size_t len,
                        const char *last_id)
{
    return MCP_ERR_PROTOCOL;
}

static void test_callback_error_sticks(void **state)
{
    (void)state;
    mcp_sse p;
    mcp_sse_init(&p, 1024, 1024);
    const char *stream = "data: a\n\n";
    assert_int_equal(mcp_sse_feed(&p, stream, strlen(stream), refuse_event, NULL),
                     MCP_ERR_PROTOCOL);
    assert_int_equal(p.error, MCP_ERR_PROTOCOL);
    mcp_sse_free(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic_event),
        cmocka_unit_test(test_split_anywhere),
        cmocka_unit_test(test_priming_event_sets_last_id),
        cmocka_unit_test(test_event_type_and_unknown_fields),
        cmocka_unit_test(test_retry),
        cmocka_unit_test(test_id_with_nul_ignored),
        cmocka_unit_test(test_byte_order_mark),
        cmocka_unit_test(test_line_limit),
        cmocka_unit_test(test_data_limit),
        cmocka_unit_test(test_callback_error_sticks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
