/*
 * event_buffer.h - a running job's events that are already on their way
 * to SSE clients (appended to the Redis ring) but not yet stored in
 * PostgreSQL: they are stored together, in one multi-row statement, when
 * the buffer fills, when its oldest event has waited EVENT_BUFFER_FLUSH_MS,
 * and always with (or before) the job's terminal or requeue write.
 *
 * One buffer per job, owned by the job thread running it; no locking.
 */
#ifndef AG_WORKER_EVENT_BUFFER_H
#define AG_WORKER_EVENT_BUFFER_H

#include <stdbool.h>
#include <stddef.h>

#include "job_store.h"

#define EVENT_BUFFER_MAX_EVENTS 64
#define EVENT_BUFFER_MAX_BYTES (256 * 1024)
#define EVENT_BUFFER_FLUSH_MS 5

typedef struct event_buffer {
    store_event *evs;       /* n events, seqs consecutive; type and body owned */
    size_t n, cap;
    size_t bytes;           /* of their bodies */
    long long first_ms;     /* monotonic ms when the oldest was added */
    char *progress_json;    /* the newest progress among them, owned; NULL: none */
} event_buffer;

/*
 * Adds event seq (which must follow the last one held) of type with body,
 * taking ownership of body (malloc'd) in every case; progress_json, when
 * not NULL, is copied and replaces the held progress. now_ms is the
 * monotonic clock. Returns 0, or -1 when memory ran out (body is freed,
 * nothing changed).
 */
int event_buffer_add(event_buffer *b, long long seq, const char *type, char *body,
                     const char *progress_json, long long now_ms);

/* True when the buffer holds events that are due to be stored at now_ms:
 * it is full (EVENT_BUFFER_MAX_EVENTS or _BYTES), or its oldest event has
 * waited EVENT_BUFFER_FLUSH_MS. */
bool event_buffer_due(const event_buffer *b, long long now_ms);

/* Forgets the held events (after they were stored); keeps the array. */
void event_buffer_clear(event_buffer *b);

/* Frees everything; b is empty afterwards. */
void event_buffer_free(event_buffer *b);

#endif
