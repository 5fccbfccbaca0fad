/*
 * log.c - structured logs: one JSON object per line on stderr.
 *
 *   {"ts":"2026-11-21T10:30:00.123Z","level":"info","service":"gateway",
 *    "pid":123,"request_id":"...","traceparent":"...","job_id":"...",
 *    "tenant_id":"...","msg":"..."}
 *
 * Each line is built in a thread-local buffer and handed to one write(2),
 * so lines written by different threads never interleave. The message is
 * escaped for JSON and its invalid UTF-8 replaced, so every line parses.
 *
 * journald: systemd passes a service's stderr to the journal and names
 * that stream in $JOURNAL_STREAM ("device:inode"). When stderr is that
 * very stream (not a file or pipe the variable was inherited across),
 * each line starts with "<N>", the syslog priority of its level, which
 * journald strips and records as the entry's PRIORITY=, so
 * `journalctl -p warning` works; the rest of the line is the same JSON.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "jsonutil.h"
#include "log.h"
#include "utf8.h"

#define LOG_MSG_MAX   4096              /* message bytes kept before "…" */
#define LOG_CTX_MAX   128               /* bytes of a context id or field value */
#define LOG_FIELDS_MAX 12               /* extra fields of one line */
/* Worst case every message byte becomes a six-byte \u00XX escape; so
 * does every byte of the four context ids and the extra fields, each with
 * its key and punctuation. */
#define LOG_LINE_MAX  (LOG_MSG_MAX * 6 + (4 + LOG_FIELDS_MAX) * (LOG_CTX_MAX * 6 + 64) + 512)

static char log_service[32] = "agentgate";
static int log_min_level = LOG_INFO;
static int journal_prefix;             /* stderr is $JOURNAL_STREAM */

static _Thread_local char ctx_request_id[LOG_CTX_MAX];
static _Thread_local char ctx_traceparent[LOG_CTX_MAX];
static _Thread_local char ctx_job_id[LOG_CTX_MAX];
static _Thread_local char ctx_tenant_id[LOG_CTX_MAX];
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

/* True when stderr is the journal stream $JOURNAL_STREAM names. */
static int stderr_is_journal(void)
{
    const char *v = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    char extra;
    struct stat st;
    if (v == NULL || sscanf(v, "%llu:%llu%c", &dev, &ino, &extra) != 2)
        return 0;
    if (fstat(STDERR_FILENO, &st) != 0)
        return 0;
    return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_init(const char *service, const char *level_name)
{
    if (service)
        snprintf(log_service, sizeof log_service, "%s", service);
    int level = level_from_name(level_name);
    log_min_level = level >= 0 ? level : LOG_INFO;
    journal_prefix = stderr_is_journal();
}

int log_journal_prefix(void)
{
    return journal_prefix;
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
    ctx_job_id[0] = '\0';
    ctx_tenant_id[0] = '\0';
}

void log_set_job(const char *job_id, const char *tenant_id)
{
    copy_context(ctx_job_id, job_id);
    copy_context(ctx_tenant_id, tenant_id);
}

/* The saved copies have the context's own size: nothing is cut. */
_Static_assert(sizeof ((log_saved_context *)0)->request_id == LOG_CTX_MAX,
               "log_saved_context matches LOG_CTX_MAX");

void log_context_save(log_saved_context *out)
{
    memcpy(out->request_id, ctx_request_id, LOG_CTX_MAX);
    memcpy(out->traceparent, ctx_traceparent, LOG_CTX_MAX);
    memcpy(out->job_id, ctx_job_id, LOG_CTX_MAX);
    memcpy(out->tenant_id, ctx_tenant_id, LOG_CTX_MAX);
}

void log_context_restore(const log_saved_context *in)
{
    memcpy(ctx_request_id, in->request_id, LOG_CTX_MAX);
    memcpy(ctx_traceparent, in->traceparent, LOG_CTX_MAX);
    memcpy(ctx_job_id, in->job_id, LOG_CTX_MAX);
    memcpy(ctx_tenant_id, in->tenant_id, LOG_CTX_MAX);
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

/* Appends ,"key":"value" when value is not empty. */
static void lw_field_str(line_writer *w, const char *key, const char *value)
{
    if (value[0] == '\0')
        return;
    lw_str(w, ",\"");
    lw_str(w, key);
    lw_str(w, "\":\"");
    lw_escaped(w, value);
    lw_str(w, "\"");
}

/* The syslog priority journald reads from a line's start, by level:
 * debug 7, info 6, warning 4, error 3. */
static const char *const journal_prefixes[] = { "<7>", "<6>", "<4>", "<3>" };

static void log_vwrite(int level, const log_field *fields, size_t nfields,
                       const char *fmt, va_list ap)
{
    if (level < LOG_DEBUG || level > LOG_ERROR)
        level = LOG_ERROR;
    if (level < log_min_level)
        return;

    int saved_errno = errno;    /* callers may log then still read errno */
    int n = vsnprintf(msg_buf, LOG_MSG_MAX + 1, fmt, ap);
    if (n < 0)
        snprintf(msg_buf, sizeof msg_buf, "(unformattable log message)");
    else if (n > LOG_MSG_MAX)
        truncate_message(msg_buf);
    log_redact(msg_buf);

    char ts[32], pid[24];
    clock_format_rfc3339(clock_wall_ms(), ts, sizeof ts);
    snprintf(pid, sizeof pid, "%ld", (long)getpid());

    line_writer w = { line_buf, 0, sizeof line_buf };
    if (journal_prefix)
        lw_str(&w, journal_prefixes[level]);
    lw_str(&w, "{\"ts\":\"");
    lw_str(&w, ts);
    lw_str(&w, "\",\"level\":\"");
    lw_str(&w, level_names[level]);
    lw_str(&w, "\",\"service\":\"");
    lw_escaped(&w, log_service);
    lw_str(&w, "\",\"pid\":");
    lw_str(&w, pid);
    lw_field_str(&w, "request_id", ctx_request_id);
    lw_field_str(&w, "traceparent", ctx_traceparent);
    lw_field_str(&w, "job_id", ctx_job_id);
    lw_field_str(&w, "tenant_id", ctx_tenant_id);
    if (nfields > LOG_FIELDS_MAX)
        nfields = LOG_FIELDS_MAX;
    for (size_t i = 0; i < nfields; i++) {
        const log_field *f = &fields[i];
        if (f->str != NULL) {
            char v[LOG_CTX_MAX];
            snprintf(v, sizeof v, "%s", f->str);
            lw_str(&w, ",\"");
            lw_escaped(&w, f->key);
            lw_str(&w, "\":\"");
            lw_escaped(&w, v);
            lw_str(&w, "\"");
        } else {
            char num[32];
            snprintf(num, sizeof num, "%lld", f->num);
            lw_str(&w, ",\"");
            lw_escaped(&w, f->key);
            lw_str(&w, "\":");
            lw_str(&w, num);
        }
    }
    lw_str(&w, ",\"msg\":\"");
    lw_escaped(&w, msg_buf);
    lw_str(&w, "\"}\n");
    write_all(w.buf, w.len);
    errno = saved_errno;
}

void log_write(int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vwrite(level, NULL, 0, fmt, ap);
    va_end(ap);
}

void log_write_fields(int level, const log_field *fields, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vwrite(level, fields, n, fmt, ap);
    va_end(ap);
}
