/*
 * log.c - structured logs: one JSON object per line on stderr.
 *
 *   {"ts":"2026-11-21T10:30:00.123Z","level":"info","service":"gateway",
 *    "pid":123,"request_id":"...","traceparent":"...","msg":"..."}
 *
 * Each line is built in a thread-local buffer and handed to one write(2),
 * so lines written by different threads never interleave. The message is
 * escaped for JSON and its invalid UTF-8 replaced, so every line parses.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "jsonutil.h"
#include "log.h"
#include "utf8.h"

#define LOG_MSG_MAX   4096              /* message bytes kept before "…" */
#define LOG_CTX_MAX   128               /* request id / traceparent bytes */
/* Worst case every message byte becomes a six-byte \u00XX escape. */
#define LOG_LINE_MAX  (LOG_MSG_MAX * 6 + 2 * LOG_CTX_MAX * 6 + 512)

static char log_service[32] = "agentgate";
static int log_min_level = LOG_INFO;

static _Thread_local char ctx_request_id[LOG_CTX_MAX];
static _Thread_local char ctx_traceparent[LOG_CTX_MAX];
static _Thread_local char msg_buf[LOG_MSG_MAX + 8];
static _Thread_local char line_buf[LOG_LINE_MAX];

static const char *const level_names[] = { "debug", "info", "warn", "error" };

static int level_from_name(const char *name)
{
    for (int i = 0; name && i < 4; i++)
        if (strcmp(name, level_names[i]) == 0)
            return i;
    return -1;
}

void log_init(const char *service, const char *level_name)
{
    if (service)
        snprintf(log_service, sizeof log_service, "%s", service);
    int level = level_from_name(level_name);
    log_min_level = level >= 0 ? level : LOG_INFO;
}

/* Longer values are cut to LOG_CTX_MAX - 1 bytes: the gateway bounds the
 * ids it accepts well below that, so only a caller's mistake is cut. */
static void copy_context(char *dst, const char *src)
{
    if (src)
        snprintf(dst, LOG_CTX_MAX, "%s", src);
    else
        dst[0] = '\0';
}

void log_set_context(const char *request_id, const char *traceparent)
{
    copy_context(ctx_request_id, request_id);
    copy_context(ctx_traceparent, traceparent);
}

typedef struct line_writer {
    char *buf;
    size_t len, cap;
} line_writer;

static void lw_bytes(line_writer *w, const char *s, size_t n)
{
    if (n > w->cap - w->len)
        n = w->cap - w->len;    /* cannot happen with LOG_LINE_MAX; stay safe */
    memcpy(w->buf + w->len, s, n);
    w->len += n;
}

static void lw_str(line_writer *w, const char *s)
{
    lw_bytes(w, s, strlen(s));
}

/* Appends s as the inside of a JSON string. */
static void lw_escaped(line_writer *w, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    while (n > 0) {
        unsigned c = *p;
        char esc[8];
        size_t e = json_escape_byte((unsigned char)c, esc);
        if (e > 0 || c == 0x7f) {          /* DEL too: lines reach terminals */
            if (e == 0)
                e = (size_t)snprintf(esc, sizeof esc, "\\u%04x", c);
            lw_bytes(w, esc, e);
        } else {
            size_t len = utf8_sequence_len(p, n);
            if (len == 0) {
                lw_str(w, "\xef\xbf\xbd");   /* U+FFFD for a bad byte */
                len = 1;
            } else {
                lw_bytes(w, (const char *)p, len);
            }
            p += len;
            n -= len;
            continue;
        }
        p++;
        n--;
    }
}

/* Cuts msg (longer than LOG_MSG_MAX; vsnprintf kept its first LOG_MSG_MAX
 * bytes) so no character is split, and marks the cut with "…". */
static void truncate_message(char *msg)
{
    size_t lead = LOG_MSG_MAX - 1;
    while (lead > 0 && ((unsigned char)msg[lead] & 0xc0) == 0x80)
        lead--;
    unsigned char c = (unsigned char)msg[lead];
    size_t need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
    size_t cut = lead + need > LOG_MSG_MAX ? lead : LOG_MSG_MAX;
    memcpy(msg + cut, "\xe2\x80\xa6", 4);
}

/*
 * A token passed as ?access_token= (EventSource cannot send headers) must
 * not reach a log through whatever line happens to quote a URI, so every
 * message has the parameter's value cut, to the next '&', quote or white
 * space, whoever wrote it. The name is matched without regard to case.
 */
static const char redact_name[] = "access_token=";
static const char redact_mark[] = "[redacted]";

static int is_value_end(char c)
{
    return c == '\0' || c == '&' || c == ' ' || c == '\t' || c == '\n' ||
           c == '\r' || c == '"' || c == '\'';
}

size_t log_redact(char *msg)
{
    size_t count = 0;
    size_t name_len = sizeof redact_name - 1, mark_len = sizeof redact_mark - 1;
    char *p = msg;
    while ((p = strcasestr(p, redact_name)) != NULL) {
        char *value = p + name_len;
        char *end = value;
        while (!is_value_end(*end)) end++;
        size_t vlen = (size_t)(end - value);
        if (vlen == 0) { p = value; continue; }
        /* The mark may be longer than the value: never grow the message
         * past its buffer, which holds at least strlen(msg) + 1 bytes. */
        size_t put = vlen < mark_len ? vlen : mark_len;
        memcpy(value, redact_mark, put);
        if (put < vlen) memmove(value + put, end, strlen(end) + 1);
        count++;
        p = value + put;
    }
    return count;
}

static void write_all(const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(STDERR_FILENO, buf, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return;     /* nowhere left to report it */
        }
        buf += n;
        len -= (size_t)n;
    }
}

void log_write(int level, const char *fmt, ...)
{
    if (level < LOG_DEBUG || level > LOG_ERROR)
        level = LOG_ERROR;
    if (level < log_min_level)
        return;

    int saved_errno = errno;    /* callers may log then still read errno */
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg_buf, LOG_MSG_MAX + 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        snprintf(msg_buf, sizeof msg_buf, "(unformattable log message)");
    else if (n > LOG_MSG_MAX)
        truncate_message(msg_buf);
    log_redact(msg_buf);

    char ts[32], pid[24];
    clock_format_rfc3339(clock_wall_ms(), ts, sizeof ts);
    snprintf(pid, sizeof pid, "%ld", (long)getpid());

    line_writer w = { line_buf, 0, sizeof line_buf };
    lw_str(&w, "{\"ts\":\"");
    lw_str(&w, ts);
    lw_str(&w, "\",\"level\":\"");
    lw_str(&w, level_names[level]);
    lw_str(&w, "\",\"service\":\"");
    lw_escaped(&w, log_service);
    lw_str(&w, "\",\"pid\":");
    lw_str(&w, pid);
    if (ctx_request_id[0]) {
        lw_str(&w, ",\"request_id\":\"");
        lw_escaped(&w, ctx_request_id);
        lw_str(&w, "\"");
    }
    if (ctx_traceparent[0]) {
        lw_str(&w, ",\"traceparent\":\"");
        lw_escaped(&w, ctx_traceparent);
        lw_str(&w, "\"");
    }
    lw_str(&w, ",\"msg\":\"");
    lw_escaped(&w, msg_buf);
    lw_str(&w, "\"}\n");
    write_all(w.buf, w.len);
    errno = saved_errno;
}
