/*
 * mcp_sse.c - the Server-Sent Events parser behind mcp_http.
 *
 * Bytes collect into the current line until CR or LF; each complete line
 * is interpreted at once. A CR is a line end by itself, so after one an
 * LF that follows is swallowed, even when the two arrive in different
 * feeds. Event data accumulates in its own buffer and is handed to the
 * callback at the blank line that ends the event.
 */
#include <stdio.h>
#include <string.h>

#include "mcp_jsonrpc.h"
#include "mcp_sse.h"

void mcp_sse_init(mcp_sse *p, size_t line_max, size_t data_max)
{
    memset(p, 0, sizeof *p);
    p->line_max = line_max;
    p->data_max = data_max;
    p->retry_ms = -1;
}

void mcp_sse_free(mcp_sse *p)
{
    strbuf_free(&p->line);
    strbuf_free(&p->data);
}

static int fail(mcp_sse *p, int code, const char *why)
{
    if (p->error == MCP_OK) {
        p->error = code;
        snprintf(p->error_text, sizeof p->error_text, "%s", why);
    }
    return p->error;
}

static void copy_bounded(char *dst, size_t dst_size, const char *src, size_t n)
{
    if (n >= dst_size)
        n = dst_size - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static bool all_digits(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

static void set_retry(mcp_sse *p, const char *v, size_t n)
{
    if (!all_digits(v, n))
        return;
    long long ms = 0;
    for (size_t i = 0; i < n && ms <= MCP_SSE_RETRY_MAX; i++)
        ms = ms * 10 + (v[i] - '0');
    p->retry_ms = ms > MCP_SSE_RETRY_MAX ? MCP_SSE_RETRY_MAX : ms;
}

static int add_data(mcp_sse *p, const char *v, size_t n)
{
    if (p->data.len + n + 1 > p->data_max)
        return fail(p, MCP_ERR_TOO_LARGE, "event data exceeds the size limit");
    strbuf_addn(&p->data, v, n);
    strbuf_addn(&p->data, "\n", 1);
    if (p->data.oom)
        return fail(p, MCP_ERR_NOMEM, "out of memory");
    p->have_data = true;
    return MCP_OK;
}

static int dispatch(mcp_sse *p, mcp_sse_event_fn fn, void *user)
{
    memcpy(p->last_id, p->id_buf, sizeof p->last_id);
    int rc = MCP_OK;
    if (p->have_data) {
        p->data.len--;                  /* the '\n' after the last data line */
        p->data.s[p->data.len] = '\0';
        rc = fn(user, p->type[0] ? p->type : "message", p->data.s, p->data.len,
                p->last_id);
    }
    strbuf_reset(&p->data);
    p->have_data = false;
    p->type[0] = '\0';
    if (rc != MCP_OK)
        return fail(p, rc, "event refused");
    return MCP_OK;
}

static int process_line(mcp_sse *p, const char *s, size_t n, mcp_sse_event_fn fn,
                        void *user)
{
    if (n == 0)
        return dispatch(p, fn, user);
    if (s[0] == ':')
        return MCP_OK;                  /* comment (keep-alive) */
    const char *colon = memchr(s, ':', n);
    size_t name_len = colon ? (size_t)(colon - s) : n;
    const char *v = colon ? colon + 1 : s + n;
    size_t vn = colon ? n - name_len - 1 : 0;
    if (vn > 0 && v[0] == ' ') {
        v++;
        vn--;
    }
    if (name_len == 4 && memcmp(s, "data", 4) == 0)
        return add_data(p, v, vn);
    if (name_len == 5 && memcmp(s, "event", 5) == 0)
        copy_bounded(p->type, sizeof p->type, v, vn);
    else if (name_len == 2 && memcmp(s, "id", 2) == 0 && !memchr(v, '\0', vn))
        copy_bounded(p->id_buf, sizeof p->id_buf, v, vn);
    else if (name_len == 5 && memcmp(s, "retry", 5) == 0)
        set_retry(p, v, vn);
    return MCP_OK;                      /* other fields are ignored */
}

static int end_line(mcp_sse *p, mcp_sse_event_fn fn, void *user)
{
    int rc = process_line(p, p->line.s ? p->line.s : "", p->line.len, fn, user);
    strbuf_reset(&p->line);
    return rc;
}

/* A UTF-8 byte-order mark may open the stream and is not part of it. */
static size_t skip_bom(mcp_sse *p, const char *buf, size_t len)
{
    static const char bom[] = "\xef\xbb\xbf";
    size_t i = 0;
    while (!p->started && i < len) {
        if (buf[i] != bom[p->bom_seen]) {
            /* Not a BOM after all: the bytes matched so far were text. */
            strbuf_addn(&p->line, bom, p->bom_seen);
            p->started = true;
            break;
        }
        i++;
        if (++p->bom_seen == 3)
            p->started = true;
    }
    return i;
}

int mcp_sse_feed(mcp_sse *p, const char *buf, size_t len, mcp_sse_event_fn fn,
                 void *user)
{
    if (p->error != MCP_OK)
        return p->error;
    size_t i = skip_bom(p, buf, len);
    while (i < len) {
        char c = buf[i];
        if (c == '\n' && p->after_cr) {
            p->after_cr = false;
            i++;
            continue;
        }
        p->after_cr = false;
        if (c == '\r' || c == '\n') {
            p->after_cr = c == '\r';
            if (end_line(p, fn, user) != MCP_OK)
                return p->error;
            i++;
            continue;
        }
        /* Copy the run of ordinary bytes up to the next line end at once. */
        size_t j = i;
        while (j < len && buf[j] != '\r' && buf[j] != '\n')
            j++;
        if (p->line.len + (j - i) > p->line_max)
            return fail(p, MCP_ERR_TOO_LARGE, "event-stream line exceeds the size limit");
        strbuf_addn(&p->line, buf + i, j - i);
        if (p->line.oom)
            return fail(p, MCP_ERR_NOMEM, "out of memory");
        i = j;
    }
    return MCP_OK;
}
