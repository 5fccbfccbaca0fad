/*
 * test_sse_reader.c - the CLI's incremental event-stream parser against
 * the HTML standard's interpretation rules: the three line ends (and a CR
 * LF split across two chunks), the same stream fed whole and one byte at a
 * time, multi-line data, comments and unknown fields, events without data,
 * ids (counted at their blank line, NUL, too long, kept across a reset but
 * not a half-read event's), retry, a leading BOM, the size cap, a callback
 * that stops the feed, and the gateway's own frames.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "sse_reader.h"

#define MAX_SEEN 16

/* What the callback saw, copied out of the reader. */
typedef struct seen {
    int n;
    char type[MAX_SEEN][64];
    char data[MAX_SEEN][256];
    size_t data_len[MAX_SEEN];
    char id[MAX_SEEN][160];
    int stop_after;          /* return 7 at this event (1-based); 0 never */
} seen;

static int record(void *ud, const sse_event *ev)
{
    seen *s = ud;
    assert_true(s->n < MAX_SEEN);
    snprintf(s->type[s->n], sizeof s->type[0], "%s", ev->type);
    assert_true(ev->data_len < sizeof s->data[0]);
    memcpy(s->data[s->n], ev->data, ev->data_len + 1);
    s->data_len[s->n] = ev->data_len;
    snprintf(s->id[s->n], sizeof s->id[0], "%s", ev->id);
    s->n++;
    return s->stop_after == s->n ? 7 : 0;
}

/* Feeds text whole (chunk 0) or in chunks of `chunk` bytes. */
static int feed(sse_reader *r, const char *text, size_t len, size_t chunk)
{
    if (chunk == 0)
        return sse_reader_feed(r, text, len);
    for (size_t i = 0; i < len; i += chunk) {
        size_t n = len - i < chunk ? len - i : chunk;
        int rc = sse_reader_feed(r, text + i, n);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static void parse(const char *text, size_t chunk, seen *s, sse_reader *r)
{
    sse_reader_init(r, 4096, record, s);
    assert_int_equal(feed(r, text, strlen(text), chunk), 0);
}

static void test_basic_event_and_default_type(void **state)
{
    (void)state;
    seen s = {0};
    sse_reader r;
    parse("id: 3\nevent: job.progress\ndata: {\"a\":1}\n\ndata: plain\n\n", 0, &s, &r);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.type[0], "job.progress");
    assert_string_equal(s.data[0], "{\"a\":1}");
    assert_string_equal(s.id[0], "3");
    assert_string_equal(s.type[1], "message");      /* the type does not carry over */
    assert_string_equal(s.data[1], "plain");
    assert_string_equal(s.id[1], "3");              /* the last id does */
    sse_reader_free(&r);
}

/* The same stream with LF, CR LF and CR line ends, fed whole and in every
 * chunk size from 1 to 7, gives the same events. */
static void test_line_ends_and_chunking(void **state)
{
    (void)state;
    const char *streams[] = {
        "id: 1\nevent: e\ndata: x\ndata: y\n\nid: 2\ndata: z\n\n",
        "id: 1\r\nevent: e\r\ndata: x\r\ndata: y\r\n\r\nid: 2\r\ndata: z\r\n\r\n",
        "id: 1\revent: e\rdata: x\rdata: y\r\rid: 2\rdata: z\r\r",
    };
    for (size_t k = 0; k < 3; k++)
        for (size_t chunk = 0; chunk <= 7; chunk++) {
            seen s = {0};
            sse_reader r;
            parse(streams[k], chunk, &s, &r);
            assert_int_equal(s.n, 2);
            assert_string_equal(s.type[0], "e");
            assert_string_equal(s.data[0], "x\ny");
            assert_string_equal(s.id[0], "1");
            assert_string_equal(s.type[1], "message");
            assert_string_equal(s.data[1], "z");
            assert_string_equal(s.id[1], "2");
            sse_reader_free(&r);
        }
}

/* A CR ending one chunk and the LF starting the next are one line end, not
 * two (which would dispatch the event early). */
static void test_cr_lf_split_across_chunks(void **state)
{
    (void)state;
    seen s = {0};
    sse_reader r;
    sse_reader_init(&r, 4096, record, &s);
    assert_int_equal(sse_reader_feed(&r, "data: a\r", 8), 0);
    assert_int_equal(sse_reader_feed(&r, "\ndata: b\r", 9), 0);
    assert_int_equal(s.n, 0);
    assert_int_equal(sse_reader_feed(&r, "\n\r", 2), 0);
    assert_int_equal(s.n, 1);                       /* the CR alone ends the blank line */
    assert_string_equal(s.data[0], "a\nb");
    assert_int_equal(sse_reader_feed(&r, "\n", 1), 0);   /* the LF of that CR: nothing */
    assert_int_equal(s.n, 1);
    sse_reader_free(&r);
}

static void test_fields_comments_and_spaces(void **state)
{
    (void)state;
    seen s = {0};
    sse_reader r;
    parse(": keepalive\n"
          "data:no space\n"
          "data:  two spaces\n"
          "data\n"
          "unknown: field\n"
          "event\n"
          "\n", 0, &s, &r);
    assert_int_equal(s.n, 1);
    /* Only one leading space is dropped; "data" alone is an empty line. */
    assert_string_equal(s.data[0], "no space\n two spaces\n");
    assert_string_equal(s.type[0], "message");      /* "event" alone: empty type */
    sse_reader_free(&r);
}

static void test_event_without_data_is_not_dispatched(void **state)
{
    (void)state;
    seen s = {0};
    sse_reader r;
    parse("id: 9\nevent: lonely\n\ndata:\n\n", 0, &s, &r);
    /* The first has no data: only its id stays. "data:" is data "". */
    assert_int_equal(s.n, 1);
    assert_string_equal(s.type[0], "message");
    assert_string_equal(s.data[0], "");
    assert_int_equal(s.data_len[0], 0);
    assert_string_equal(s.id[0], "9");
    assert_string_equal(sse_reader_last_id(&r), "9");
    sse_reader_free(&r);
}

static void test_ids(void **state)
{
    (void)state;
    seen s = {0};
    sse_reader r;
    char longid[200 + 16];
    memset(longid, '7', 200);
    sprintf(longid + 200, "\n");
    sse_reader_init(&r, 4096, record, &s);
    assert_int_equal(feed(&r, "id: 4\n", 6, 0), 0);
    assert_string_equal(sse_reader_last_id(&r), "");      /* not before its blank line */
    assert_int_equal(feed(&r, "\n", 1, 0), 0);
    assert_string_equal(sse_reader_last_id(&r), "4");
    assert_int_equal(feed(&r, "id: 5\0x\n\n", 9, 0), 0);  /* holds NUL: ignored */
    assert_string_equal(sse_reader_last_id(&r), "4");
    assert_int_equal(feed(&r, "id: ", 4, 0), 0);
    assert_int_equal(feed(&r, longid, strlen(longid), 0), 0);   /* too long: ignored */
    assert_int_equal(feed(&r, "\n", 1, 0), 0);
    assert_string_equal(sse_reader_last_id(&r), "4");
    assert_int_equal(feed(&r, "id\n\n", 4, 0), 0);        /* an empty id clears it */
    assert_string_equal(sse_reader_last_id(&r), "");
    sse_reader_set_last_id(&r, "12");
    assert_string_equal(sse_reader_last_id(&r), "12");
    assert_int_equal(feed(&r, "data: x\n\n", 10, 0), 0);  /* kept by an event without id */
    assert_int_equal(s.n, 1);
    assert_string_equal(s.id[0], "12");
    sse_reader_free(&r);
}

static void test_retry(void **state)
{
    (void)state;
    seen s = {0};
    sse_reader r;
    sse_reader_init(&r, 4096, record, &s);
    assert_int_equal(sse_reader_retry_ms(&r), -1);
    assert_int_equal(feed(&r, "retry: 1000\n", 12, 0), 0);
    assert_int_equal(sse_reader_retry_ms(&r), 1000);
    assert_int_equal(feed(&r, "retry: 12x\nretry:\nretry: -5\n", 28, 0), 0);
    assert_int_equal(sse_reader_retry_ms(&r), 1000);       /* not digits: ignored */
    assert_int_equal(s.n, 0);
    sse_reader_free(&r);
}

/* A BOM is dropped at the start of a stream (also split over chunks), and
 * again after a reset (a new connection), but nowhere else. */
static void test_bom(void **state)
{
    (void)state;
    const char *text = "\xEF\xBB\xBF" "data: a\n\n\xEF\xBB\xBF" "data: b\n\n";
    for (size_t chunk = 0; chunk <= 2; chunk++) {
        seen s = {0};
        sse_reader r;
        parse(text, chunk, &s, &r);
        assert_int_equal(s.n, 1);                   /* the second "data" is another field */
        assert_string_equal(s.data[0], "a");
        sse_reader_reset(&r);
        assert_int_equal(feed(&r, "\xEF\xBB\xBF" "data: c\n\n", 12, chunk), 0);
        assert_int_equal(s.n, 2);
        assert_string_equal(s.data[1], "c");
        sse_reader_free(&r);
    }
}

/* A reset (the connection ended) forgets a half-read event but keeps the
 * last id and retry delay for the next connection. */
static void test_reset_drops_partial_event(void **state)
{
    (void)state;
    seen s = {0};
    sse_reader r;
    sse_reader_init(&r, 4096, record, &s);
    const char *t = "retry: 500\nid: 6\ndata: whole\n\nid: 7\nevent: x\ndata: half";
    assert_int_equal(feed(&r, t, strlen(t), 0), 0);
    assert_int_equal(s.n, 1);
    sse_reader_reset(&r);
    assert_int_equal(feed(&r, "\n\n", 2, 0), 0);
    assert_int_equal(s.n, 1);                       /* "half" never dispatched */
    assert_string_equal(sse_reader_last_id(&r), "6");     /* nor its id kept */
    assert_int_equal(sse_reader_retry_ms(&r), 500);
    assert_int_equal(feed(&r, "data: next\n\n", 12, 0), 0);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.type[1], "message");
    assert_string_equal(s.data[1], "next");
    assert_string_equal(s.id[1], "6");
    sse_reader_free(&r);
}

static void test_size_cap(void **state)
{
    (void)state;
    seen s = {0};
    sse_reader r;
    char big[300];
    memset(big, 'x', sizeof big);

    sse_reader_init(&r, 64, record, &s);             /* one line over the cap */
    assert_int_equal(sse_reader_feed(&r, "data: ", 6), 0);
    assert_int_equal(sse_reader_feed(&r, big, 100), SSE_ERR_TOO_LONG);
    sse_reader_free(&r);

    sse_reader_init(&r, 64, record, &s);             /* short lines, data over the cap */
    int rc = 0;
    for (int i = 0; i < 20 && rc == 0; i++)
        rc = sse_reader_feed(&r, "data: 0123456789\n", 17);
    assert_int_equal(rc, SSE_ERR_TOO_LONG);
    assert_int_equal(s.n, 0);
    sse_reader_free(&r);
}

static void test_callback_stops_feed(void **state)
{
    (void)state;
    seen s = { .stop_after = 2 };
    sse_reader r;
    sse_reader_init(&r, 4096, record, &s);
    const char *t = "data: 1\n\ndata: 2\n\ndata: 3\n\n";
    assert_int_equal(sse_reader_feed(&r, t, strlen(t)), 7);
    assert_int_equal(s.n, 2);
    sse_reader_free(&r);
}

/* Frames exactly as the gateway writes them. */
static void test_gateway_frames(void **state)
{
    (void)state;
    const char *t =
        "retry: 1000\n\n"
        "id: 5\nevent: job.progress\n"
        "data: {\"id\":5,\"job_id\":\"01a2511f-d563-719c-9215-bf297475e32f\",\"type\":\"job.progress\","
        "\"ts\":\"2026-12-07T15:29:30.777Z\",\"data\":{\"current\":3,\"total\":3}}\n\n"
        ": keepalive\n\n"
        "id: 6\nevent: job.succeeded\n"
        "data: {\"id\":6,\"type\":\"job.succeeded\",\"data\":{\"result\":{\"events\":3}}}\n\n";
    for (size_t chunk = 0; chunk <= 13; chunk += 13) {
        seen s = {0};
        sse_reader r;
        parse(t, chunk, &s, &r);
        assert_int_equal(s.n, 2);
        assert_string_equal(s.type[0], "job.progress");
        assert_string_equal(s.id[0], "5");
        assert_non_null(strstr(s.data[0], "\"current\":3"));
        assert_string_equal(s.type[1], "job.succeeded");
        assert_string_equal(s.id[1], "6");
        assert_int_equal(sse_reader_retry_ms(&r), 1000);
        sse_reader_free(&r);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic_event_and_default_type),
        cmocka_unit_test(test_line_ends_and_chunking),
        cmocka_unit_test(test_cr_lf_split_across_chunks),
        cmocka_unit_test(test_fields_comments_and_spaces),
        cmocka_unit_test(test_event_without_data_is_not_dispatched),
        cmocka_unit_test(test_ids),
        cmocka_unit_test(test_retry),
        cmocka_unit_test(test_bom),
        cmocka_unit_test(test_reset_drops_partial_event),
        cmocka_unit_test(test_size_cap),
        cmocka_unit_test(test_callback_stops_feed),
        cmocka_unit_test(test_gateway_frames),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
