/*
 * fuzz_sse_resume.c - libFuzzer target for where an event stream resumes
 * from and how its events are framed (gateway/sse_frame.c):
 *
 *   mode 0  the input is a Last-Event-ID header value: sse_parse_event_id
 *           must accept exactly 1 to 18 ASCII digits, with their value;
 *   mode 1  the input is a query string, parsed by libevhtp as the gateway
 *           does, and its "after" value goes to sse_parse_event_id;
 *   mode 2  the input is an event's data: sse_frame must emit one data:
 *           line per line of data (\n, \r\n or \r) and nothing else.
 *
 * Byte 0 picks the mode; the rest is the value.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <evhtp.h>

#include "sse_frame.h"

/* What sse_parse_event_id must answer, written the slow, obvious way. */
static int reference_parse(const char *s, long long *out)
{
    size_t n = strlen(s);
    if (n < 1 || n > 18 || strspn(s, "0123456789") != n) return -1;
    *out = strtoll(s, NULL, 10);
    return 0;
}

static void check_event_id(const char *s)
{
    long long got = -7, want = -7;
    int rc = sse_parse_event_id(s, &got);
    int ref = reference_parse(s, &want);
    if (rc != ref) abort();
    if (rc == 0 && (got != want || got < 0)) abort();
}

static void fuzz_header(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s) return;
    memcpy(s, data, size);
    s[size] = '\0';
    check_event_id(s);
    free(s);
}

static void fuzz_query(const uint8_t *data, size_t size)
{
    evhtp_query_t *q = evhtp_parse_query_wflags((const char *)data, size,
                                                EVHTP_PARSE_QUERY_FLAG_DEFAULT);
    if (!q) return;
    const char *after = evhtp_kv_find(q, "after");
    if (after) check_event_id(after);
    evhtp_kvs_free(q);
}

static void fuzz_frame(const uint8_t *data, size_t size)
{
    size_t out_len = 0;
    char *f = sse_frame(42, "job.progress", (const char *)data, size, &out_len);
    if (!f) return;
    static const char head[] = "id: 42\nevent: job.progress\n";
    if (out_len < sizeof head - 1 + 8 || memcmp(f, head, sizeof head - 1) != 0) abort();
    if (f[out_len - 1] != '\n' || f[out_len - 2] != '\n') abort();
    if (memchr(f, '\r', out_len)) abort();      /* a bare CR would split a line */

    /* Reading the data: lines back must give the data, line breaks as \n. */
    size_t o = sizeof head - 1, j = 0;
    while (o < out_len - 1) {
        if (out_len - o < 6 || memcmp(f + o, "data: ", 6) != 0) abort();
        o += 6;
        const char *nl = memchr(f + o, '\n', out_len - o);
        if (!nl) abort();
        size_t line = (size_t)(nl - (f + o));
        if (j + line > size || memcmp(f + o, data + j, line) != 0) abort();
        j += line;
        o += line + 1;
        if (o < out_len - 1) {                   /* a break in the data here */
            if (j >= size || (data[j] != '\n' && data[j] != '\r')) abort();
            j += data[j] == '\r' && j + 1 < size && data[j + 1] == '\n' ? 2 : 1;
        }
    }
    if (j != size || o != out_len - 1) abort();
    free(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    switch (data[0] % 3) {
    case 0: fuzz_header(data + 1, size - 1); break;
    case 1: fuzz_query(data + 1, size - 1); break;
    default: fuzz_frame(data + 1, size - 1); break;
    }
    return 0;
}
