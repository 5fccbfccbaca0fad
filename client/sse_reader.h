/*
 * sse_reader.h - an incremental parser of a text/event-stream, as the
 * HTML standard's "event stream interpretation" defines it, for the
 * agentgate CLI.
 *
 * Bytes are fed as they arrive, in chunks of any size (a line, and even a
 * CR LF pair, may be split across chunks). Each complete event (a blank
 * line after at least one data field) is handed to a callback with its
 * type, its data (lines joined by "\n") and the last event id seen so
 * far; comments (": keepalive") and unknown fields are skipped. The reader
 * remembers the last id and the server's "retry:" delay across
 * reconnections, which is what a client needs to resume a stream with
 * Last-Event-ID. As the standard has it, an "id:" line counts only once
 * the blank line ending its event has arrived, so a stream cut inside an
 * event resumes from the event before it, not from the half-read one. Every buffer is capped: a line or an event's data longer
 * than the cap is an error, never unbounded growth.
 */
#ifndef AG_SSE_READER_H
#define AG_SSE_READER_H

#include <stdbool.h>
#include <stddef.h>

#include "strbuf.h"

/* The longest id kept (the gateway's ids are at most 18 digits). */
#define SSE_MAX_ID 127

/* sse_reader_feed's results other than 0 and a callback's own non-zero. */
#define SSE_ERR_TOO_LONG (-1)   /* a line or an event's data passed max_bytes */
#define SSE_ERR_NOMEM    (-2)

/* One dispatched event; the strings live until the callback returns. */
typedef struct sse_event {
    const char *type;     /* the "event:" field, "message" when none was given */
    const char *data;     /* the data lines joined by "\n", NUL-terminated */
    size_t data_len;
    const char *id;       /* the last event id so far ("" when none) */
} sse_event;

/* Called for each event; a non-zero return stops sse_reader_feed, which
 * returns that value (for example once a terminal event is seen). */
typedef int (*sse_event_fn)(void *ud, const sse_event *ev);

typedef struct sse_reader {
    size_t max_bytes;      /* cap on one line and on one event's data */
    sse_event_fn on_event;
    void *ud;
    strbuf line;           /* the line being read, without its end */
    strbuf data;           /* the event's data so far, each line + "\n" */
    strbuf type;           /* the event's type so far */
    char id_buf[SSE_MAX_ID + 1];   /* the last "id:" read */
    char last_id[SSE_MAX_ID + 1];  /* id_buf as of the last blank line: what resumes */
    long retry_ms;         /* the last valid "retry:", or -1 */
    bool after_cr;         /* the last byte was a CR: a following LF is the same line end */
    bool started;          /* this stream's first line was read (only it may start with a BOM) */
} sse_reader;

/* Prepares r. max_bytes caps a line and an event's data (bytes); on_event
 * is called with ud for each event. */
void sse_reader_init(sse_reader *r, size_t max_bytes, sse_event_fn on_event, void *ud);

/*
 * Parses n bytes of the stream. Returns 0 when all were consumed; the
 * callback's non-zero return, where it stopped; SSE_ERR_TOO_LONG or
 * SSE_ERR_NOMEM (the reader should then be reset or freed).
 */
int sse_reader_feed(sse_reader *r, const char *buf, size_t n);

/* Forgets a partly read line and event, as when a connection ends (an
 * event without its blank line is never dispatched), and expects a new
 * stream (a BOM may lead it). The last id and retry delay are kept. */
void sse_reader_reset(sse_reader *r);

/* Sets the last event id, as a stream resumed after id would have left
 * it (ids longer than SSE_MAX_ID are ignored). */
void sse_reader_set_last_id(sse_reader *r, const char *id);

/* The id of the last event ended by a blank line ("" when none), for
 * Last-Event-ID. */
const char *sse_reader_last_id(const sse_reader *r);

/* The server's reconnection delay in ms, or -1 when it sent none. */
long sse_reader_retry_ms(const sse_reader *r);

/* Frees r's buffers; r may be initialised again. */
void sse_reader_free(sse_reader *r);

#endif
