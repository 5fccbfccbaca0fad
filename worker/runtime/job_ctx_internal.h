/*
 * job_ctx_internal.h - the inside of a running job's context: what the
 * worker keeps of the job a handler runs (its thread and slot, its event
 * numbering and buffer, whether the job was lost), and the calls job_run.c
 * makes on it besides the handler's own (job_ctx.h). Implemented in
 * job_ctx.c; included by it and job_run.c, never by a handler.
 */
#ifndef AG_JOB_CTX_INTERNAL_H
#define AG_JOB_CTX_INTERNAL_H

#include <stdbool.h>
#include <cjson/cJSON.h>
#include <libpq-fe.h>

#include "event_buffer.h"
#include "job_info.h"
#include "job_redis.h"
#include "worker_state.h"

struct job_ctx {
    job_thread *t;
    worker *w;
    run_slot *slot;
    job_info info;
    cJSON *payload;             /* owned */
    long long seq;              /* the last event id given out (stored in
                                   PostgreSQL or held in buf) */
    long long redis_seq;        /* the last event id appended to the Redis ring */
    bool lost;                  /* a fenced write matched nothing: not ours */
    long long started_ms;       /* monotonic, at the claim */
    int band;                   /* the priority band it was taken from (jobq.h):
                                   a retry waits in the same one */
    event_buffer buf;           /* the newest events, up to seq: sent to Redis,
                                   not yet stored in PostgreSQL */
};

/*
 * Gives the next id to an event of type with data_json (JSON text; NULL
 * means {}), appends it to the job's Redis ring at once together with *st
 * (may be NULL), and buffers it for PostgreSQL (with progress_json, when
 * not NULL, as the job's progress), storing the buffer when it is due.
 * Returns the event id, or -1 (ctx->lost is set when the job is no longer
 * this attempt's).
 */
long long job_ctx_emit_json(job_ctx *ctx, const char *type, const char *data_json,
                            const char *progress_json, const job_redis_state *st);

/*
 * Appends event seq (body) to the job's Redis ring, first appending any
 * events PostgreSQL has that the ring missed while Redis was away, and
 * writes *st (may be NULL). With wait_ms > 0 a down Redis is retried for
 * up to that long. Returns 0, or -1 when Redis did not take it (logged).
 */
int job_ctx_mirror(job_ctx *ctx, long long seq, const char *body,
                   const job_redis_state *st, long long wait_ms);

/*
 * Stores the buffered events in PostgreSQL in one statement. With may_wait
 * a broken connection is reconnected for up to a lease; without, only a
 * working connection is used and a failure keeps the events for later.
 * Returns 0 (also when there was nothing to store), or -1: storage failed
 * (the events stay buffered) or the job is no longer this attempt's
 * (ctx->lost is set).
 */
int job_ctx_flush(job_ctx *ctx, bool may_wait);

/* The job thread's PostgreSQL connection, reconnecting as needed until
 * deadline_ms (monotonic) or, when give_up_on_stop, until the job is told
 * to stop. NULL when it could not connect by then. */
PGconn *job_ctx_pg(job_ctx *ctx, long long deadline_ms, bool give_up_on_stop);

#endif
