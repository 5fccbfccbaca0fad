/*
 * trace.h - OpenTelemetry-style spans: W3C Trace Context ids, the
 * traceparent header, and span records with attributes.
 *
 * A span is started with its parent's context (or none, for a root),
 * collects attributes while the work runs, and is handed on when it ends:
 * to the sink the exporter registered (common/otlp_export.c), or freed
 * when there is none or the trace is not sampled. Starting and ending a
 * span never blocks: the sink only queues it.
 *
 * Each thread has a current context (trace_current): the span that work
 * on this thread belongs to right now (a job attempt, an agent step).
 * Code far below (a model or MCP call) starts its span as a child of it
 * and sends its traceparent on outbound HTTP calls, without the context
 * being passed down through every layer. A span started with
 * span_start_current becomes current itself until it ends, and ending it
 * puts its parent's context back.
 */
#ifndef AG_TRACE_H
#define AG_TRACE_H

#include <stdbool.h>
#include <stdint.h>

#define TRACEPARENT_LEN 55      /* "00-" 32 hex "-" 16 hex "-" 2 hex */

/* A span's identity as carried between processes. Ids of all zeros are
 * invalid: a zeroed trace_ctx means "no context". */
typedef struct trace_ctx {
    uint8_t trace_id[16];
    uint8_t span_id[8];
    uint8_t flags;              /* bit 0: sampled */
} trace_ctx;

#define TRACE_FLAG_SAMPLED 0x01

/* OTLP's SpanKind numbers. */
typedef enum span_kind {
    SPAN_KIND_INTERNAL = 1,
    SPAN_KIND_SERVER = 2,
    SPAN_KIND_CLIENT = 3,
    SPAN_KIND_PRODUCER = 4,
    SPAN_KIND_CONSUMER = 5,
} span_kind;

typedef enum span_attr_type { SPAN_ATTR_STR, SPAN_ATTR_INT, SPAN_ATTR_BOOL, SPAN_ATTR_DOUBLE } span_attr_type;

typedef struct span_attr {
    char *key;                  /* malloc'd */
    span_attr_type type;
    union { char *s; long long i; double d; bool b; } v; /* s malloc'd */
} span_attr;

#define SPAN_MAX_ATTRS 32       /* further attributes are counted, not kept */

/* A span in progress or ended. Fields are read by the exporter; callers
 * use the functions below. */
typedef struct span {
    trace_ctx ctx;
    uint8_t parent_span_id[8];  /* zeros for a root span */
    char *name;                 /* malloc'd */
    span_kind kind;
    long long start_ns, end_ns; /* Unix epoch nanoseconds */
    span_attr attrs[SPAN_MAX_ATTRS];
    int nattrs;
    int dropped_attrs;
    bool error;                 /* status ERROR (else UNSET) */
    char *status_message;       /* malloc'd or NULL */
    bool recording;             /* exported when it ends (a sink is set and the
                                   trace sampled): else attributes are not kept */
    bool made_current;          /* span_start_current: restore prev at end */
    trace_ctx prev;             /* the thread's context before it */
} span;

/*
 * Parses a W3C traceparent (version 00, lowercase hex, ids not all zero)
 * into out. Returns 0, or -1 (out zeroed) when s is NULL or invalid.
 */
int trace_parse(const char *s, trace_ctx *out);

/* Writes ctx as a traceparent into out (TRACEPARENT_LEN + 1 bytes). */
void trace_format(const trace_ctx *ctx, char out[TRACEPARENT_LEN + 1]);

/* True when ctx holds a valid (non-zero) trace id. */
bool trace_valid(const trace_ctx *ctx);

/* Writes the lowercase hex of n bytes at id into out (2n + 1 bytes). */
void trace_hex(const uint8_t *id, int n, char *out);

/*
 * Sets the sampling ratio for new traces (0..1; 1 samples all). A span
 * with a parent follows the parent's sampled flag. Default 1.
 */
void trace_set_sampling(double ratio);

/*
 * Registers the sink that ended, sampled spans are handed to (the exporter
 * queue). The sink takes ownership and must not block; NULL turns export
 * off (spans are freed at end). Set once at start, before other threads
 * start spans.
 */
void trace_set_sink(void (*sink)(span *s));

/* True when a sink is registered (spans are exported). */
bool trace_enabled(void);

/*
 * Starts a span named name (copied) of kind, as a child of parent when it
 * is valid, else as the root of a new trace. Always returns a span with
 * fresh ids (its context is needed to propagate even when nothing is
 * exported), or NULL when out of memory; every function here accepts
 * NULL and does nothing. The span must be ended with span_end.
 */
span *span_start(const char *name, span_kind kind, const trace_ctx *parent);

/* Starts a child of this thread's current context and makes it current
 * until span_end (which puts the previous context back). */
span *span_start_current(const char *name, span_kind kind);

/* Attributes. key and a string value are copied; a NULL string value is
 * skipped. Setting a key twice keeps both (the receiver keeps the last).
 * A span that will not be exported (no sink, or not sampled) keeps none,
 * so tracing switched off costs ids and a clock read per span. */
void span_set_str(span *s, const char *key, const char *value);
void span_set_int(span *s, const char *key, long long value);
void span_set_double(span *s, const char *key, double value);
void span_set_bool(span *s, const char *key, bool value);

/* Renames s (copied; on out of memory the old name stays). */
void span_set_name(span *s, const char *name);

/* Marks the span failed (status ERROR) with message (copied; may be NULL). */
void span_set_error(span *s, const char *message);

/* Ends s now: hands it to the sink when export is on and it is sampled,
 * else frees it. s must not be used afterwards. */
void span_end(span *s);

/* Frees a span without exporting it (the exporter's own disposal). */
void span_free(span *s);

/* Writes s's traceparent into out; "" when s is NULL. */
void span_traceparent(const span *s, char out[TRACEPARENT_LEN + 1]);

/* This thread's current context (zeroed when none). */
trace_ctx trace_current(void);

/* Sets this thread's current context (NULL clears it). */
void trace_set_current(const trace_ctx *ctx);

/* Writes this thread's current traceparent into out and returns true, or
 * returns false (out "") when there is none. For outbound HTTP headers. */
bool trace_current_traceparent(char out[TRACEPARENT_LEN + 1]);

/* The header line "traceparent: <this thread's current traceparent>" for
 * an outbound HTTP request (libcurl's header list form), written into out;
 * false (out "") when the thread has no current context. */
#define TRACE_HEADER_LEN (sizeof "traceparent: " - 1 + TRACEPARENT_LEN)
bool trace_current_header(char out[TRACE_HEADER_LEN + 1]);

#endif
