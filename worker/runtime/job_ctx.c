/*
 * job_ctx.c - what a handler sees of the worker (see job_ctx.h): the job,
 * its events, its cancellation flag, its database connection; and the
 * calls job_run.c makes on the same context (job_ctx_internal.h).
 *
 * Events are numbered here. The job's running attempt is the only writer
 * of its events, so the next id is simply one more than the last this
 * thread gave out, starting from the last_event_id the claim returned; the
 * fence in every write (status running under this attempt) is what makes
 * "only writer" true.
 *
 * An event goes to Redis (the ring SSE clients read) at once, and into
 * the job's event buffer for PostgreSQL, which is stored in one statement
 * when it fills or its oldest event has waited EVENT_BUFFER_FLUSH_MS
 * (checked at every emit and every cancellation poll, so within ~100 ms
 * at worst), before the ring is caught up from PostgreSQL, and always by
 * the terminal or requeue write itself: a job never reaches an end state
 * in PostgreSQL without all its events, and its ids stay 1..N with no
 * gap. A Redis failure only delays an event: the next one that reaches
 * Redis brings the missed ones along, read back from PostgreSQL.
 */
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "events.h"
#include "job_ctx.h"
#include "job_ctx_internal.h"
#include "job_mirror.h"
#include "job_store.h"
#include "jsonutil.h"
#include "log.h"

/* A sleeping handler is woken at once when its job is stopped (see
 * worker_wait_stop); the slice only bounds how late it notices its own
 * timeout deadline passing or a stop set without the wake-up. */
#define JOB_SLEEP_SLICE_MS 250

const job_info *job_get_info(const job_ctx *ctx)
{
    return &ctx->info;
}

static void flush_if_due(job_ctx *ctx);

bool job_cancelled(const job_ctx *ctx)
{
    /* Handlers poll this at least every 100 ms: the moment to store
     * events that have waited long enough. The context is never defined
     * const; the header's const promises the job, not the buffer. */
    flush_if_due((job_ctx *)ctx);
    run_slot *slot = ctx->slot;
    if (atomic_load(&slot->stop) != STOP_NONE)
        return true;
    /* The handler notices its own timeout without waiting for the
     * supervisor's next round. */
    if (clock_mono_ms() >= slot->deadline_ms) {
        int expected = STOP_NONE;
        atomic_compare_exchange_strong(&slot->stop, &expected, STOP_TIMEOUT);
        return true;
    }
    return false;
}

bool job_sleep_ms(job_ctx *ctx, long long ms)
{
    /* A handler going idle: nothing is gained by holding its events, and
     * stored now they survive this process dying while it sleeps. */
    if (ms > 0 && ctx->buf.n > 0)
        job_ctx_flush(ctx, false);
    long long end = clock_mono_ms() + ms;
    for (;;) {
        if (job_cancelled(ctx))
            return true;
        long long left = end - clock_mono_ms();
        if (left <= 0)
            return false;
        long long until_deadline = ctx->slot->deadline_ms - clock_mono_ms();
        long long nap = left < JOB_SLEEP_SLICE_MS ? left : JOB_SLEEP_SLICE_MS;
        if (until_deadline > 0 && until_deadline < nap) nap = until_deadline;
        worker_wait_stop(ctx->w, ctx->slot, nap);
    }
}

/* ---------------------------------------------------------------------------
 * Connections
 * ------------------------------------------------------------------------- */

typedef struct pg_wait {
    job_ctx *ctx;
    long long deadline_ms;
    bool give_up_on_stop;
} pg_wait;

static bool pg_wait_over(void *arg)
{
    const pg_wait *pw = arg;
    if (clock_mono_ms() >= pw->deadline_ms)
        return true;
    return pw->give_up_on_stop && atomic_load(&pw->ctx->slot->stop) != STOP_NONE;
}

PGconn *job_ctx_pg(job_ctx *ctx, long long deadline_ms, bool give_up_on_stop)
{
    pg_link *l = &ctx->t->pg;
    if (l->conn != NULL && store_conn_broken(l->conn))
        pg_link_drop(l);
    pg_wait pw = { ctx, deadline_ms, give_up_on_stop };
    return pg_link_wait(l, pg_wait_over, &pw);
}

PGconn *job_db(job_ctx *ctx)
{
    flush_if_due(ctx);
    long long lease = ctx->w->cfg->lease_ms > 0 ? ctx->w->cfg->lease_ms : 30000;
    return job_ctx_pg(ctx, clock_mono_ms() + lease, true);
}

static bool past_deadline(void *arg)
{
    return clock_mono_ms() >= *(const long long *)arg;
}

/* The thread's Redis connection, retried on its backoff schedule until
 * deadline_ms when wait_ms > 0, else only if a retry is due now. */
static redisContext *job_redis(job_ctx *ctx, long long wait_ms)
{
    redis_link *l = &ctx->t->rd;
    if (wait_ms <= 0)
        return redis_link_try(l);
    long long deadline = clock_mono_ms() + wait_ms;
    for (;;) {
        if (redis_link_try(l) != NULL)
            return l->c;
        if (!backoff_wait(&l->bo, past_deadline, &deadline))
            return NULL;
    }
}

const ag_config *job_config(const job_ctx *ctx)
{
    return ctx->w->cfg;
}

redisContext *job_redis_conn(job_ctx *ctx)
{
    return job_redis(ctx, 0);
}

void job_redis_conn_failed(job_ctx *ctx)
{
    redis_link_drop(&ctx->t->rd, "a handler's command failed");
}

int job_publish_queued(job_ctx *ctx, const char *job_id, const char *type, int band,
                       const char *event)
{
    return redis_publish_queued(&ctx->t->rd, job_id, type, ctx->info.tenant_id, band, event);
}

/* ---------------------------------------------------------------------------
 * Events
 * ------------------------------------------------------------------------- */

int job_ctx_mirror(job_ctx *ctx, long long seq, const char *body,
                   const job_redis_state *st, long long wait_ms)
{
    if (job_redis(ctx, wait_ms) == NULL) {
        if (wait_ms > 0)
            log_warn("job %s: Redis unreachable; event %lld is only in PostgreSQL",
                     ctx->info.id, seq);
        return -1;
    }
    /* The ring missed events: they are re-sent from PostgreSQL, which must
     * hold them first. body may be the buffer's own copy, which the flush
     * frees: keep one. */
    char *kept = NULL;
    if (ctx->redis_seq + 1 < seq && ctx->buf.n > 0) {
        if ((kept = strdup(body)) == NULL || job_ctx_flush(ctx, false) < 0) {
            free(kept);
            return -1;
        }
        body = kept;
    }
    int rc = job_mirror(&ctx->t->rd, ctx->t->pg.conn, ctx->info.id, ctx->info.tenant_id,
                        ctx->redis_seq, seq, body, st);
    if (rc == 0)
        ctx->redis_seq = seq;
    free(kept);
    return rc;
}

/* One attempt at storing the buffer on connection c. */
static store_rc flush_on(job_ctx *ctx, PGconn *c)
{
    return store_append_events(c, ctx->info.id, ctx->info.tenant_id, ctx->info.attempt,
                               ctx->buf.evs, ctx->buf.n, ctx->buf.progress_json);
}

int job_ctx_flush(job_ctx *ctx, bool may_wait)
{
    if (ctx->buf.n == 0)
        return 0;
    if (ctx->lost)
        return -1;

    long long lease = ctx->w->cfg->lease_ms > 0 ? ctx->w->cfg->lease_ms : 30000;
    long long deadline = clock_mono_ms() + lease;
    bool retried = false;
    store_rc rc;
    for (;;) {
        /* Without may_wait only a connection already up is used: a
         * poll must never block on connecting. */
        PGconn *c = may_wait ? job_ctx_pg(ctx, deadline, true) : ctx->t->pg.conn;
        if (c == NULL || (!may_wait && store_conn_broken(c)))
            return -1;
        rc = flush_on(ctx, c);
        if (rc == STORE_ERROR && store_conn_broken(c)) {
            pg_link_drop(&ctx->t->pg);
            if (!may_wait)
                return -1;
            retried = true;
            continue;
        }
        break;
    }
    /* A unique violation after a lost answer is our own write that did
     * commit; without one it means another writer, so the job is not ours. */
    if (rc == STORE_DUP && retried)
        rc = STORE_OK;

    if (rc == STORE_NONE || rc == STORE_DUP) {
        ctx->lost = true;
        log_warn("job %s: events %lld..%lld not stored: the job is no longer attempt %d's",
                 ctx->info.id, ctx->buf.evs[0].seq, ctx->buf.evs[ctx->buf.n - 1].seq,
                 ctx->info.attempt);
        return -1;
    }
    if (rc != STORE_OK) {
        log_error("job %s: events %lld..%lld not stored yet: PostgreSQL failed",
                  ctx->info.id, ctx->buf.evs[0].seq, ctx->buf.evs[ctx->buf.n - 1].seq);
        return -1;
    }
    event_buffer_clear(&ctx->buf);
    return 0;
}

/* Stores the buffer if it is due, without waiting for a connection: for
 * the calls a handler polls. */
static void flush_if_due(job_ctx *ctx)
{
    if (event_buffer_due(&ctx->buf, clock_mono_ms()))
        job_ctx_flush(ctx, false);
}

long long job_ctx_emit_json(job_ctx *ctx, const char *type, const char *data_json,
                            const char *progress_json, const job_redis_state *st)
{
    /* The supervisor found the job taken over: its history is no longer
     * this attempt's to extend, in Redis either. */
    if (atomic_load(&ctx->slot->stop) == STOP_LOST)
        ctx->lost = true;
    if (ctx->lost)
        return -1;

    long long seq = ctx->seq + 1;
    char *body = event_encode(ctx->info.id, seq, type, clock_wall_ms(), data_json);
    if (body == NULL) {
        log_error("job %s: out of memory encoding a %s event", ctx->info.id, type);
        return -1;
    }
    if (strlen(body) > EVENT_MAX_BYTES) {
        log_error("job %s: %s event of %zu bytes is over the %d-byte limit; not stored",
                  ctx->info.id, type, strlen(body), EVENT_MAX_BYTES);
        free(body);
        return -1;
    }
    if (event_buffer_add(&ctx->buf, seq, type, body, progress_json, clock_mono_ms()) < 0) {
        log_error("job %s: out of memory buffering a %s event", ctx->info.id, type);
        return -1;
    }
    ctx->seq = seq;

    /* SSE clients see it now; PostgreSQL gets it with the buffer. */
    job_ctx_mirror(ctx, seq, ctx->buf.evs[ctx->buf.n - 1].body, st, 0);
    if (event_buffer_due(&ctx->buf, clock_mono_ms()) && job_ctx_flush(ctx, true) < 0)
        return -1;
    return seq;
}

long long job_emit(job_ctx *ctx, const char *type, const cJSON *data)
{
    if (!event_type_known(type) || event_type_terminal(type)) {
        log_error("job %s: handler emitted event type \"%s\", which it may not",
                  ctx->info.id, type ? type : "(null)");
        return -1;
    }
    char *data_json = data ? json_print(data) : NULL;
    if (data != NULL && data_json == NULL) {
        log_error("job %s: cannot print the data of a %s event", ctx->info.id, type);
        return -1;
    }
    long long seq = job_ctx_emit_json(ctx, type, data_json, NULL, NULL);
    free(data_json);
    return seq;
}

long long job_progress(job_ctx *ctx, long long current, long long total,
                       const char *message)
{
    cJSON *obj = cJSON_CreateObject();
    char *json = NULL;
    if (obj != NULL
        && cJSON_AddNumberToObject(obj, "current", (double)current) != NULL
        && cJSON_AddNumberToObject(obj, "total", (double)total) != NULL
        && (message ? cJSON_AddStringToObject(obj, "message", message)
                    : cJSON_AddNullToObject(obj, "message")) != NULL)
        json = json_print(obj);
    cJSON_Delete(obj);
    if (json == NULL) {
        log_error("job %s: out of memory building a progress event", ctx->info.id);
        return -1;
    }
    long long seq = job_ctx_emit_json(ctx, "job.progress", json, json, NULL);
    free(json);
    return seq;
}
