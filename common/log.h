/*
 * log.h - structured logging, one JSON object per line on stderr.
 *
 * Each thread carries the request id and W3C traceparent of the work it is
 * doing, so every line it writes can be tied back to a request or a job.
 * Secrets (tokens) are never passed here.
 */
#ifndef AG_LOG_H
#define AG_LOG_H

#include <stddef.h>

enum { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 };

/* Sets the service name ("gateway", "worker") and minimum level by name.
 * An unknown level name leaves the level at info. */
void log_init(const char *service, const char *level_name);

/* Sets this thread's request id and traceparent (either may be NULL to
 * clear). The strings are copied. */
void log_set_context(const char *request_id, const char *traceparent);

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
