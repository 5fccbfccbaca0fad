/*
 * mcp_sse.h - an incremental Server-Sent Events parser for the MCP
 * Streamable HTTP transport, following the WHATWG event-stream rules:
 * lines end in CRLF, LF or CR; "field: value" with one leading space
 * dropped; lines starting with ':' are comments; a blank line dispatches
 * the event; data lines join with '\n'; "id" sets the last event id
 * (ignored when it holds a NUL); "retry" (digits only) sets the
 * reconnection delay; an event with no data is not dispatched, but its id
 * still becomes the last event id (MCP servers prime a stream that way).
 *
 * It does no I/O: bytes go in through mcp_sse_feed in whatever pieces the
 * network delivers. Lines and event data are bounded; past a bound the
 * parser fails with MCP_ERR_TOO_LARGE, and the first error sticks.
 */
#ifndef AG_MCP_SSE_H
#define AG_MCP_SSE_H

#include <stdbool.h>
#include <stddef.h>

#include "strbuf.h"

#define MCP_SSE_ID_MAX     256          /* bytes of an event id kept */
#define MCP_SSE_TYPE_MAX   63           /* bytes of an event type kept */
#define MCP_SSE_RETRY_MAX  600000       /* ms: a larger retry is cut to this */

/* Called for each complete event with data: type ("message" when the
 * server named none), data (data_len bytes, NUL-terminated) and the last
 * event id ("" when none yet). Returns MCP_OK to go on, or a negative
 * MCP_ERR_* that stops the parser and becomes its error. */
typedef int (*mcp_sse_event_fn)(void *user, const char *type, const char *data,
                                size_t data_len, const char *last_id);

typedef struct mcp_sse {
    size_t line_max;            /* bytes of one line */
    size_t data_max;            /* bytes of one event's data */
    strbuf line;
    strbuf data;
    bool have_data;
    bool after_cr;              /* the last byte was CR: an LF next ends nothing */
    bool started;               /* past a possible leading byte-order mark */
    size_t bom_seen;
    char type[MCP_SSE_TYPE_MAX + 1];
    char id_buf[MCP_SSE_ID_MAX + 1];    /* set by "id", committed at dispatch */
    char last_id[MCP_SSE_ID_MAX + 1];   /* what Last-Event-ID sends */
    long long retry_ms;         /* -1 until the server sends retry */
    int error;                  /* first error, MCP_OK until then */
    char error_text[160];
} mcp_sse;

/* Prepares p with the given bounds (bytes). */
void mcp_sse_init(mcp_sse *p, size_t line_max, size_t data_max);

/* Feeds len bytes. Returns MCP_OK, or the parser's sticky error (reason in
 * p->error_text) once a bound is passed or fn refused an event. */
int mcp_sse_feed(mcp_sse *p, const char *buf, size_t len, mcp_sse_event_fn fn,
                 void *user);

/* Frees the buffers; the ids and retry stay readable. */
void mcp_sse_free(mcp_sse *p);

#endif
