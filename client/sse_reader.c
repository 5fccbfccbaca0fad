/*
 * sse_reader.c - the incremental text/event-stream parser (see
 * sse_reader.h).
 *
 * Bytes go into the current line until a line end: CR LF, LF or CR alone.
 * A CR at the end of one chunk followed by an LF at the start of the next
 * is one line end, which is why the reader remembers that it just saw a
 * CR. Each complete line is interpreted at once: a field updates the event
 * being built, a blank line dispatches it. Runs of ordinary bytes are
 * copied in one go rather than byte by byte.
 */
#include <stdlib.h>
#include <string.h>

#include "sse_reader.h"

static const char BOM[] = "\xEF\xBB\xBF";

void sse_reader_init(sse_reader *r, size_t max_bytes, sse_event_fn on_event, void *ud)
{
    memset(r, 0, sizeof *r);
    r->max_bytes = max_bytes;
    r->on_event = on_event;
    r->ud = ud;
    r->retry_ms = -1;
}

static bool field_is(const char *name, size_t len, const char *want)
{
    return strlen(want) == len && memcmp(name, want, len) == 0;
}

/* At a blank line: the id read so far becomes the last event id, and the
 * event built so far goes to the callback if it has data. Starts the next
 * event. Returns the callback's result. */
static int dispatch(sse_reader *r)
{
    int rc = 0;
    memcpy(r->last_id, r->id_buf, sizeof r->last_id);
    if (r->data.len > 0) {
        r->data.s[--r->data.len] = '\0';          /* the last line's "\n" */
        sse_event ev = {
            .type = r->type.len > 0 ? r->type.s : "message",
            .data = r->data.s,
            .data_len = r->data.len,
            .id = r->last_id,
        };
        rc = r->on_event(r->ud, &ev);
    }
    strbuf_reset(&r->data);
    strbuf_reset(&r->type);
    return rc;
}

static void set_id(sse_reader *r, const char *v, size_t n)
{
    /* The standard ignores an id holding NUL; one longer than any id this
     * client resumes with is ignored too rather than cut into another id. */
    if (memchr(v, '\0', n) != NULL || n > SSE_MAX_ID)
        return;
    memcpy(r->id_buf, v, n);
    r->id_buf[n] = '\0';
}

static void set_retry(sse_reader *r, const char *v, size_t n)
{
    if (n == 0 || n > 9)
        return;
    long ms = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return;
        ms = ms * 10 + (v[i] - '0');
    }
    r->retry_ms = ms;
}

/* Interprets one complete line (without its end). */
static int process_line(sse_reader *r, const char *s, size_t n)
{
    if (!r->started) {
        r->started = true;
        if (n >= 3 && memcmp(s, BOM, 3) == 0) {
            s += 3;
            n -= 3;
        }
    }
    if (n == 0)
        return dispatch(r);
    if (s[0] == ':')
        return 0;                                  /* a comment */

    const char *colon = memchr(s, ':', n);
    size_t name_len = colon != NULL ? (size_t)(colon - s) : n;
    const char *v = colon != NULL ? colon + 1 : s + n;
    size_t vn = (size_t)(s + n - v);
    if (vn > 0 && v[0] == ' ') {
        v++;
        vn--;
    }

    if (field_is(s, name_len, "data")) {
        if (r->data.len + vn + 1 > r->max_bytes)
            return SSE_ERR_TOO_LONG;
        strbuf_addn(&r->data, v, vn);
        strbuf_addn(&r->data, "\n", 1);
    } else if (field_is(s, name_len, "event")) {
        strbuf_reset(&r->type);
        strbuf_addn(&r->type, v, vn);
    } else if (field_is(s, name_len, "id")) {
        set_id(r, v, vn);
    } else if (field_is(s, name_len, "retry")) {
        set_retry(r, v, vn);
    }
    if (r->data.oom || r->type.oom)
        return SSE_ERR_NOMEM;
    return 0;
}

int sse_reader_feed(sse_reader *r, const char *buf, size_t n)
{
    size_t i = 0;
    while (i < n) {
        char c = buf[i];
        if (r->after_cr) {
            r->after_cr = false;
            if (c == '\n') {                       /* the LF of a CR LF */
                i++;
                continue;
            }
        }
        if (c == '\r' || c == '\n') {
            r->after_cr = (c == '\r');
            i++;
            int rc = process_line(r, r->line.s != NULL ? r->line.s : "", r->line.len);
            strbuf_reset(&r->line);
            if (rc != 0)
                return rc;
            continue;
        }
        size_t j = i;
        while (j < n && buf[j] != '\r' && buf[j] != '\n')
            j++;
        if (r->line.len + (j - i) > r->max_bytes)
            return SSE_ERR_TOO_LONG;
        strbuf_addn(&r->line, buf + i, j - i);
        if (r->line.oom)
            return SSE_ERR_NOMEM;
        i = j;
    }
    return 0;
}

void sse_reader_reset(sse_reader *r)
{
    strbuf_reset(&r->line);
    strbuf_reset(&r->data);
    strbuf_reset(&r->type);
    r->line.oom = r->data.oom = r->type.oom = false;
    r->after_cr = false;
    r->started = false;
    memcpy(r->id_buf, r->last_id, sizeof r->id_buf);   /* a half-read event's id goes */
}

void sse_reader_set_last_id(sse_reader *r, const char *id)
{
    set_id(r, id, strlen(id));
    memcpy(r->last_id, r->id_buf, sizeof r->last_id);
}

const char *sse_reader_last_id(const sse_reader *r)
{
    return r->last_id;
}

long sse_reader_retry_ms(const sse_reader *r)
{
    return r->retry_ms;
}

void sse_reader_free(sse_reader *r)
{
    strbuf_free(&r->line);
    strbuf_free(&r->data);
    strbuf_free(&r->type);
}
