/*
 * maintenance.c - promotion of delayed jobs, the lease reaper and
 * reconciliation of Redis with PostgreSQL (see maintenance.h).
 *
 * All three are idempotent and safe to run in every worker at once; a
 * round that fails (a dependency down) is simply tried again at its next
 * interval, so an outage costs log lines, never a crash or a busy loop.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "events.h"
#include "job_mirror.h"
#include "jobtypes.h"
#include "keys.h"
#include "log.h"
#include "maintenance.h"

#define TICK_MS               50
#define PROMOTE_INTERVAL_MS   200
#define PROMOTE_BATCH         500     /* ids moved per type and round */
#define REAP_BATCH            100     /* jobs per reaper transaction */
#define RECONCILE_GRACE_MS    2000    /* a job queued this recently is left alone */
#define RECONCILE_BATCH       10000   /* queued jobs looked at per round */
#define RECONCILE_QUEUE_MAX   1000000 /* a longer queue is not listed */
#define CONNECT_TIMEOUT_S     2

/* ---------------------------------------------------------------------------
 * Promotion of due delayed jobs
 * ------------------------------------------------------------------------- */

/* Moves the due ids of KEYS[1] (a delayed set) to the back of KEYS[2] (its
 * queue) in one step, so no id is ever in neither or popped twice. */
static const char promote_script[] =
    "local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2]) "
    "if #due > 0 then "
    "  redis.call('ZREM', KEYS[1], unpack(due)) "
    "  redis.call('LPUSH', KEYS[2], unpack(due)) "
    "end "
    "return #due";

static void promote_due(maintenance *m)
{
    const queue_set *qs = &m->w->queues;
    if (qs->count == 0 || redis_link_try(&m->rd) == NULL)
        return;
    redis_argv cmds[QUEUES_MAX];
    char delayed[QUEUES_MAX][KEY_MAX], queue[QUEUES_MAX][KEY_MAX];
    char now[24], batch[16];
    snprintf(now, sizeof now, "%lld", clock_wall_ms());
    snprintf(batch, sizeof batch, "%d", PROMOTE_BATCH);
    for (size_t i = 0; i < qs->count; i++) {
        key_delayed(delayed[i], qs->names[i]);
        key_queue(queue[i], qs->names[i]);
        redis_argv_of(&cmds[i], "EVAL", promote_script, "2", delayed[i], queue[i], now,
                      batch, (const char *)NULL);
    }
    redisReply *replies[QUEUES_MAX];
    if (redis_pipeline(&m->rd, cmds, (int)qs->count, replies) < 0) {
        for (size_t i = 0; i < qs->count; i++)
            freeReplyObject(replies[i]);
        return;
    }
    for (size_t i = 0; i < qs->count; i++) {
        if (replies[i] != NULL && replies[i]->type == REDIS_REPLY_INTEGER
            && replies[i]->integer > 0)
            log_debug("%lld delayed %s jobs due: queued", replies[i]->integer,
                      qs->names[i]);
        freeReplyObject(replies[i]);
    }
}

/* ---------------------------------------------------------------------------
 * The reaper
 * ------------------------------------------------------------------------- */

/* What became of one reaped job, to tell Redis once it is committed. */
typedef struct reaped {
    const expired_job *job;
    long long seq;
    char *body;                 /* the encoded event, malloc'd */
    const char *status;         /* "queued", "failed" or "cancelled" */
} reaped;

/* Writes the new state of e with its event; fills *out. Inside the
 * reaper's transaction, e's row locked. */
static store_rc reap_one(maintenance *m, PGconn *c, const expired_job *e, bool orphan,
                         reaped *out)
{
    char message[400], final[sizeof message + 64];
    snprintf(message, sizeof message,
             orphan ? "worker %s restarted while running attempt %d"
                    : "worker %s stopped heartbeating during attempt %d "
                      "(lease of %d ms expired)",
             e->worker_id[0] ? e->worker_id : "(unknown)", e->attempt, m->w->cfg->lease_ms);
    const char *code = orphan ? "worker_restarted" : "lease_expired";
    out->job = e;
    /* The dead attempt may have sent events to the ring that its event
     * buffer had not stored yet: they go to PostgreSQL first, so this
     * event follows them instead of reusing ids clients already saw. */
    long long last = job_mirror_recover_tail(&m->rd, c, e->id, e->tenant_id, e->attempt,
                                             e->last_event_id);
    out->seq = last + 1;

    const char *type;
    char *data;
    if (e->cancel_requested) {
        out->status = "cancelled";
        type = "job.cancelled";
        data = event_cancelled_data("cancelled by request");
    } else if (e->attempt >= e->max_attempts) {
        snprintf(final, sizeof final, "%s; no attempts left (%d of %d)", message,
                 e->attempt, e->max_attempts);
        out->status = "failed";
        type = "job.failed";
        data = event_failed_data(code, final);
    } else {
        out->status = "queued";
        type = "job.retrying";
        data = event_retrying_data(e->attempt, orphan ? "worker restarted" : "lease expired",
                                   0, code, message);
    }
    out->body = data ? event_encode(e->id, out->seq, type, clock_wall_ms(), data) : NULL;
    free(data);
    if (out->body == NULL)
        return STORE_ERROR;

    if (strcmp(out->status, "queued") == 0) {
        job_requeue q = { .seq = out->seq, .body = out->body, .error_code = code,
                          .error_message = message };
        return store_requeue(c, e->id, e->tenant_id, e->attempt, &q);
    }
    bool cancelled = strcmp(out->status, "cancelled") == 0;
    job_final f = { .status = out->status, .seq = out->seq, .event_type = type,
                    .body = out->body,
                    .error_code = cancelled ? "cancelled" : code,
                    .error_message = cancelled ? "cancelled by request" : final };
    return store_finish(c, e->id, e->tenant_id, e->attempt, &f);
}

/* Tells Redis about a committed reaping: the event, the state, and the
 * job back in its queue or in the dead-letter list. */
static void reaped_mirror(maintenance *m, const reaped *r)
{
    if (redis_link_try(&m->rd) == NULL)
        return;     /* reconciliation enqueues it once Redis is back */
    bool queued = strcmp(r->status, "queued") == 0;
    job_redis_state st = { .status = r->status, .lease = LEASE_DELETE,
                           .requeue_type = queued ? r->job->type : NULL,
                           .dead_letter = strcmp(r->status, "failed") == 0 };
    job_mirror(&m->rd, m->pg.conn, r->job->id, r->job->tenant_id, JOB_MIRROR_ASK_REDIS,
               r->seq, r->body, &st);
}

/* One transaction's worth. Returns the number of jobs reaped, or -1. */
static int reap_batch(maintenance *m, PGconn *c, const char *orphans_of)
{
    expired_job jobs[REAP_BATCH];
    reaped done[REAP_BATCH];
    int n_done = 0;

    if (store_exec(c, "BEGIN") != STORE_OK)
        return -1;
    int n = store_lock_expired(c, m->w->cfg->lease_ms, orphans_of, REAP_BATCH, jobs);
    bool ok = n >= 0;
    for (int i = 0; ok && i < n; i++) {
        store_rc rc = reap_one(m, c, &jobs[i], orphans_of != NULL, &done[n_done]);
        if (rc == STORE_OK)
            n_done++;
        else
            free(done[n_done].body);
        ok = rc != STORE_ERROR;
    }
    ok = ok && store_exec(c, "COMMIT") == STORE_OK;
    if (!ok) {
        store_exec(c, "ROLLBACK");
        for (int i = 0; i < n_done; i++)
            free(done[i].body);
        return -1;
    }
    for (int i = 0; i < n_done; i++) {
        const expired_job *e = done[i].job;
        log_warn("job %s: %s after %s of worker %s lost it (attempt %d of %d)", e->id,
                 done[i].status, orphans_of ? "a restart" : "the lease",
                 e->worker_id[0] ? e->worker_id : "(unknown)", e->attempt, e->max_attempts);
        reaped_mirror(m, &done[i]);
        free(done[i].body);
    }
    return n == REAP_BATCH && n_done == 0 ? -1 : n_done;
}

/* Reaps expired leases (orphans_of NULL) or the jobs a previous process
 * of orphans_of left running, a batch at a time while batches come back
 * full. Returns the number reaped, or -1. */
static int reap(maintenance *m, PGconn *c, const char *orphans_of)
{
    int total = 0, n;
    while ((n = reap_batch(m, c, orphans_of)) == REAP_BATCH)
        total += n;
    if (n < 0 && store_conn_broken(c))
        pg_link_drop(&m->pg);
    return n < 0 && total == 0 ? -1 : total + (n > 0 ? n : 0);
}

/* ---------------------------------------------------------------------------
 * Reconciliation
 * ------------------------------------------------------------------------- */

static int compare_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The ids Redis holds for type, in its queue and its delayed set, sorted
 * for bsearch; the strings live in *replies (freed by the caller). Returns
 * a malloc'd array (*n entries), or NULL when Redis failed or the queue
 * is too long to list. */
static char **redis_ids_of_type(maintenance *m, const char *type, size_t *n,
                                redisReply *replies[3])
{
    char queue[KEY_MAX], delayed[KEY_MAX];
    key_queue(queue, type);
    key_delayed(delayed, type);
    redis_argv cmds[3];
    redis_argv_of(&cmds[0], "LLEN", queue, (const char *)NULL);
    redis_argv_of(&cmds[1], "LRANGE", queue, "0", "-1", (const char *)NULL);
    redis_argv_of(&cmds[2], "ZRANGE", delayed, "0", "-1", (const char *)NULL);
    /* LLEN goes first on its own: a huge queue is not pulled over. */
    if (redis_pipeline(&m->rd, cmds, 1, replies) < 0
        || replies[0]->type != REDIS_REPLY_INTEGER)
        return NULL;
    long long len = replies[0]->integer;
    if (len > RECONCILE_QUEUE_MAX) {
        log_warn("reconciliation skips %s: its queue holds %lld ids", type, len);
        return NULL;
    }
    if (redis_pipeline(&m->rd, cmds + 1, 2, replies + 1) < 0
        || replies[1]->type != REDIS_REPLY_ARRAY || replies[2]->type != REDIS_REPLY_ARRAY)
        return NULL;
    size_t total = replies[1]->elements + replies[2]->elements;
    char **ids = malloc((total ? total : 1) * sizeof *ids);
    if (ids == NULL)
        return NULL;
    *n = 0;
    for (int r = 1; r <= 2; r++)
        for (size_t i = 0; i < replies[r]->elements; i++)
            if (replies[r]->element[i]->type == REDIS_REPLY_STRING)
                ids[(*n)++] = replies[r]->element[i]->str;
    qsort(ids, *n, sizeof *ids, compare_str);
    return ids;
}

/* Cancels queued job row r of res, whose cancellation was requested while
 * it ran (it cannot be claimed again). */
static void cancel_queued(maintenance *m, PGconn *c, PGresult *res, int r)
{
    const char *id = PQgetvalue(res, r, 0), *tenant = PQgetvalue(res, r, 1);
    long long seq = strtoll(PQgetvalue(res, r, 4), NULL, 10) + 1;
    char *data = event_cancelled_data("cancelled by request");
    char *body = data ? event_encode(id, seq, "job.cancelled", clock_wall_ms(), data) : NULL;
    free(data);
    if (body == NULL)
        return;
    job_final f = { .status = "cancelled", .seq = seq, .event_type = "job.cancelled",
                    .body = body, .error_code = "cancelled",
                    .error_message = "cancelled by request", .from_status = "queued" };
    if (store_finish(c, id, tenant, atoi(PQgetvalue(res, r, 3)), &f) == STORE_OK) {
        log_info("job %s: cancelled (its cancellation was requested before it was "
                 "queued again)", id);
        job_redis_state st = { .status = "cancelled" };
        if (redis_link_try(&m->rd) != NULL)
            job_mirror(&m->rd, c, id, tenant, JOB_MIRROR_ASK_REDIS, seq, body, &st);
    }
    free(body);
}

/*
 * Makes Redis hold every queued job of type. Redis is read first and
 * PostgreSQL after it: a job a worker pops between the two reads is then
 * either still in the Redis listing or already claimed (running) in the
 * newer snapshot. In the other order every job popped after the snapshot
 * looked lost - under a backlog, many of the oldest queued jobs each round,
 * since those are the ones being popped - and was pushed a second time.
 * Only a job popped before the Redis read and still unclaimed when the
 * snapshot is taken (a window of one claim) is pushed again, and its second
 * claim finds it taken. Returns the number enqueued again, or -1.
 */
static int reconcile_type(maintenance *m, PGconn *c, const char *type)
{
    redisReply *replies[3] = { NULL, NULL, NULL };
    size_t n_ids = 0;
    char **ids = redis_ids_of_type(m, type, &n_ids, replies);
    PGresult *res = ids ? store_queued_jobs(c, RECONCILE_GRACE_MS, RECONCILE_BATCH) : NULL;
    if (res == NULL) {
        if (ids != NULL && store_conn_broken(c))
            pg_link_drop(&m->pg);
        free(ids);
        for (int i = 0; i < 3; i++)
            freeReplyObject(replies[i]);
        return -1;
    }

    char queue[KEY_MAX], delayed[KEY_MAX];
    key_queue(queue, type);
    key_delayed(delayed, type);
    int rows = PQntuples(res), pushed = 0, failed = 0;
    for (int r = 0; r < rows; r++) {
        if (strcmp(PQgetvalue(res, r, 2), type) != 0 || PQgetvalue(res, r, 6)[0] == 't')
            continue;
        const char *id = PQgetvalue(res, r, 0);
        const char *due = PQgetvalue(res, r, 5);
        redis_argv cmd;
        if (strcmp(due, "0") != 0) {
            /* Not due yet: NX keeps the set's own score if it has one. */
            redis_argv_of(&cmd, "ZADD", delayed, "NX", due, id, (const char *)NULL);
        } else if (bsearch(&id, ids, n_ids, sizeof *ids, compare_str) == NULL) {
            /* Overdue: to the front of the line (BRPOP takes from the right). */
            redis_argv_of(&cmd, "RPUSH", queue, id, (const char *)NULL);
            pushed++;
        } else {
            continue;
        }
        if (redis_pipeline(&m->rd, &cmd, 1, NULL) < 0) {
            failed = 1;
            break;
        }
    }
    free(ids);
    PQclear(res);
    for (int i = 0; i < 3; i++)
        freeReplyObject(replies[i]);
    if (pushed > 0)
        log_warn("reconciliation: %d queued %s jobs were in no Redis queue; enqueued "
                 "again", pushed, type);
    return failed ? -1 : pushed;
}

/* True when this worker may reconcile this round (one worker at a time). */
static bool reconcile_lock(maintenance *m)
{
    char px[24];
    snprintf(px, sizeof px, "%d", m->w->cfg->reconcile_interval_ms);
    redis_argv cmd;
    redis_argv_of(&cmd, "SET", KEY_RECONCILE_LOCK, m->w->worker_id, "NX", "PX", px,
                  (const char *)NULL);
    redisReply *rep = NULL;
    bool got = redis_pipeline(&m->rd, &cmd, 1, &rep) == 0 && rep != NULL
               && rep->type == REDIS_REPLY_STATUS;
    freeReplyObject(rep);
    return got;
}

static void reconcile(maintenance *m, PGconn *c)
{
    if (redis_link_try(&m->rd) == NULL || !reconcile_lock(m))
        return;
    PGresult *res = store_queued_jobs(c, RECONCILE_GRACE_MS, RECONCILE_BATCH);
    if (res == NULL) {
        if (store_conn_broken(c))
            pg_link_drop(&m->pg);
        return;
    }
    int rows = PQntuples(res);
    for (int r = 0; r < rows; r++)
        if (PQgetvalue(res, r, 6)[0] == 't')
            cancel_queued(m, c, res, r);

    /* Each type once: the first row of each type reconciles all of them
     * (against a snapshot of its own, see reconcile_type). */
    for (int r = 0; r < rows; r++) {
        const char *type = PQgetvalue(res, r, 2);
        bool seen = false;
        for (int p = 0; p < r && !seen; p++)
            seen = strcmp(PQgetvalue(res, p, 2), type) == 0;
        if (seen)
            continue;
        if (jobtypes_find(type) == NULL) {
            log_warn("reconciliation: queued jobs of unregistered type %.64s left alone",
                     type);
            continue;
        }
        if (reconcile_type(m, c, type) < 0)
            break;
    }
    PQclear(res);
}

/* ---------------------------------------------------------------------------
 * The thread
 * ------------------------------------------------------------------------- */

static void *maintenance_main(void *arg)
{
    maintenance *m = arg;
    const ag_config *cfg = m->w->cfg;
    long long now = clock_mono_ms();
    long long next_promote = now, next_reap = now + cfg->reaper_interval_ms;
    long long next_reconcile = now + cfg->reconcile_interval_ms;

    while (!atomic_load(&m->stop)) {
        now = clock_mono_ms();
        if (now >= next_promote) {
            promote_due(m);
            next_promote = now + PROMOTE_INTERVAL_MS;
        }
        if (now >= next_reap || now >= next_reconcile) {
            PGconn *c = pg_link_try(&m->pg);
            if (c != NULL && now >= next_reap)
                reap(m, c, NULL);
            c = pg_link_try(&m->pg);
            if (c != NULL && now >= next_reconcile)
                reconcile(m, c);
            if (now >= next_reap)
                next_reap = now + cfg->reaper_interval_ms;
            if (now >= next_reconcile)
                next_reconcile = now + cfg->reconcile_interval_ms;
        }
        clock_sleep_ms(TICK_MS);
    }
    return NULL;
}

void maintenance_init(maintenance *m, worker *w)
{
    memset(m, 0, sizeof *m);
    m->w = w;
    atomic_init(&m->stop, 0);
    pg_link_init(&m->pg, w->cfg->database_url, "maintenance", CONNECT_TIMEOUT_S);
    redis_link_init(&m->rd, w->cfg, "maintenance");
}

static bool past_deadline(void *arg)
{
    return clock_mono_ms() >= *(const long long *)arg;
}

int maintenance_recover_orphans(maintenance *m, long long wait_ms)
{
    long long deadline = clock_mono_ms() + wait_ms;
    PGconn *c = pg_link_wait(&m->pg, past_deadline, &deadline);
    if (c == NULL) {
        log_warn("PostgreSQL unreachable at start: jobs a previous run of worker %s "
                 "left running wait for their leases to expire", m->w->worker_id);
        return -1;
    }
    redis_link_try(&m->rd);
    int n = reap(m, c, m->w->worker_id);
    if (n > 0)
        log_warn("handed back %d jobs a previous run of worker %s left running", n,
                 m->w->worker_id);
    return n;
}

int maintenance_start(maintenance *m)
{
    int err = pthread_create(&m->tid, NULL, maintenance_main, m);
    if (err != 0) {
        log_error("cannot start the maintenance thread: %s", strerror(err));
        return -1;
    }
    m->started = true;
    return 0;
}

void maintenance_stop(maintenance *m)
{
    if (m->started) {
        atomic_store(&m->stop, 1);
        pthread_join(m->tid, NULL);
        m->started = false;
    }
    pg_link_close(&m->pg);
    redis_link_close(&m->rd);
}
