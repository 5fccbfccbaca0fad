/*
 * log.h - structured logging, one JSON object per line on stderr.
 *
 * Each thread carries the request id, W3C traceparent, job id and tenant
 * id of the work it is doing, each written as its own field, so every
 * line it writes can be tied back to a request, a job or a tenant. Under
 * systemd (stderr is the journal stream named by $JOURNAL_STREAM) each
 * line starts with its syslog priority, "<3>" to "<7>", which journald
 * takes as the entry's priority and strips. Secrets (tokens) are never
 * passed here.
 */
#ifndef AG_LOG_H
#define AG_LOG_H

#include <stddef.h>

enum { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 };

/* Sets the service name ("gateway", "worker") and minimum level by name.
 * An unknown level name leaves the level at info. */
void log_init(const char *service, const char *level_name);

/* Sets this thread's request id and traceparent (either may be NULL to
 * clear), and clears its job and tenant ids: a new piece of work starts.
 * The strings are copied. */
void log_set_context(const char *request_id, const char *traceparent);

/* Sets this thread's job id and tenant id (either may be NULL to clear),
 * keeping the request id and traceparent; cleared again by the next
 * log_set_context. The strings are copied. */
void log_set_job(const char *job_id, const char *tenant_id);

/* A thread's whole context, kept by log_context_save so a line written
 * for another piece of work can be framed with that work's context and
 * the thread's own put back after (log_context_restore). */
typedef struct log_saved_context {
    char request_id[128], traceparent[128], job_id[128], tenant_id[128];
} log_saved_context;

void log_context_save(log_saved_context *out);
void log_context_restore(const log_saved_context *in);

/* One extra field of a line (log_write_fields): the string str, or, when
 * str is NULL, the integer num. */
typedef struct log_field {
    const char *key;
    const char *str;
    long long num;
} log_field;

/* Writes one line like log_write, with n extra fields (keys are plain
 * identifiers; string values are escaped) before "msg". */
void log_write_fields(int level, const log_field *fields, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* True when lines carry the journald priority prefix (log_init found
 * stderr to be the stream $JOURNAL_STREAM names). */
int log_journal_prefix(void);

/* Writes one line at the given level, printf-style message. */
void log_write(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Replaces, in place, the value of every access_token=VALUE in msg (a
 * NUL-terminated string; the name matched without regard to case, the
 * value running to the next '&', quote, white space or the end) with
 * "[redacted]", or a prefix of it when the value is shorter, so msg never
 * grows. log_write applies it to every line. Returns how many it cut.
 */
size_t log_redact(char *msg);

#define log_debug(...) log_write(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)  log_write(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_write(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_write(LOG_ERROR, __VA_ARGS__)

#endif
