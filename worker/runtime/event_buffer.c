/*
 * event_buffer.c - a running job's events waiting to be stored in
 * PostgreSQL together (see event_buffer.h).
 *
 * Why: with PostgreSQL's default durability each statement is a WAL flush
 * (about a millisecond on this class of disk), and a job emits several
 * events. Storing them per batch, and the last batch inside the terminal
 * write, turns N+1 flushes per job into one or two, while SSE clients
 * still see each event the moment it is emitted (Redis is written at once).
 */
#include <stdlib.h>
#include <string.h>

#include "event_buffer.h"

int event_buffer_add(event_buffer *b, long long seq, const char *type, char *body,
                     const char *progress_json, long long now_ms)
{
    if (b->n > 0 && seq != b->evs[b->n - 1].seq + 1) {
        free(body);
        return -1;      /* a hole would be stored as one; refuse it */
    }
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 8;
        store_event *grown = realloc(b->evs, cap * sizeof *grown);
        if (grown == NULL) {
            free(body);
            return -1;
        }
        b->evs = grown;
        b->cap = cap;
    }
    char *type_copy = strdup(type);
    char *progress = progress_json ? strdup(progress_json) : NULL;
    if (type_copy == NULL || (progress_json != NULL && progress == NULL)) {
        free(type_copy);
        free(progress);
        free(body);
        return -1;
    }
    if (progress != NULL) {
        free(b->progress_json);
        b->progress_json = progress;
    }
    if (b->n == 0)
        b->first_ms = now_ms;
    b->evs[b->n++] = (store_event){ seq, type_copy, body };
    b->bytes += strlen(body);
    return 0;
}

bool event_buffer_due(const event_buffer *b, long long now_ms)
{
    return b->n > 0
        && (b->n >= EVENT_BUFFER_MAX_EVENTS || b->bytes >= EVENT_BUFFER_MAX_BYTES
            || now_ms - b->first_ms >= EVENT_BUFFER_FLUSH_MS);
}

void event_buffer_clear(event_buffer *b)
{
    for (size_t i = 0; i < b->n; i++) {
        free((char *)b->evs[i].type);
        free((char *)b->evs[i].body);
    }
    free(b->progress_json);
    b->progress_json = NULL;
    b->n = 0;
    b->bytes = 0;
    b->first_ms = 0;
}

void event_buffer_free(event_buffer *b)
{
    event_buffer_clear(b);
    free(b->evs);
    b->evs = NULL;
    b->cap = 0;
}
