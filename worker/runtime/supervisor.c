/*
 * supervisor.c - heartbeat, lease renewal, cancellation and timeout watch
 * for all of a worker's running jobs (see supervisor.h).
 *
 * One thread does this for the whole process so the cost is one query and
 * one pipeline per round however many jobs run, and so a handler that is
 * busy (or stuck in a slow call) still has its heartbeat kept.
 *
 * Each round (every cancel_poll_ms) checks the cancel:{id} flags in Redis.
 * Between rounds the thread waits on a subscription to the gateway's
 * cancel:requests channel, so a cancellation starts a round at once
 * rather than at the next poll; the message only wakes it (the flag, set
 * before the message was published, is what the round acts on), so a
 * message lost with the connection costs at most one poll interval.
 * While Redis is unreachable, the same question goes to PostgreSQL
 * (cancel_requested_at) every PG_CANCEL_POLL_MS instead. Every
 * heartbeat_ms the heartbeat UPDATE also reports cancellations and jobs
 * that are no longer this worker's, which covers a cancel flag lost with
 * a Redis restart. The worker's registry entry is renewed on that beat
 * too, also while no job runs: an idle worker is a live one.
 */
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "sd_notify.h"
#include "supervisor.h"

#define PG_CANCEL_POLL_MS 500
#define SUPERVISOR_CONNECT_TIMEOUT_S 2

/* What one round works on: a copy of the running jobs and answers. */
typedef struct round_buf {
    size_t cap;
    running_job *jobs;
    char (*ids)[UUID_STR_LEN];
    bool *cancel;
    bool *alive;
} round_buf;

static int round_buf_init(round_buf *b, size_t cap)
{
    b->cap = cap;
    b->jobs = calloc(cap, sizeof *b->jobs);
    b->ids = calloc(cap, sizeof *b->ids);
    b->cancel = calloc(cap, sizeof *b->cancel);
    b->alive = calloc(cap, sizeof *b->alive);
    return b->jobs && b->ids && b->cancel && b->alive ? 0 : -1;
}

static void round_buf_free(round_buf *b)
{
    free(b->jobs);
    free(b->ids);
    free(b->cancel);
    free(b->alive);
}

static void stop_jobs_marked(worker *w, const round_buf *b, size_t n, const bool *marks,
                             int reason)
{
    for (size_t i = 0; i < n; i++) {
        if (!marks[i] || !worker_stop_job(w, &b->jobs[i], reason))
            continue;
        if (reason == STOP_CANCEL)
            log_info("job %s: cancellation requested; stopping its handler", b->ids[i]);
        else if (reason == STOP_LOST)
            log_warn("job %s: no longer running under this worker; stopping its handler",
                     b->ids[i]);
    }
}

static void check_timeouts(worker *w, const round_buf *b, size_t n, long long now)
{
    for (size_t i = 0; i < n; i++) {
        if (now < b->jobs[i].deadline_ms)
            continue;
        if (worker_stop_job(w, &b->jobs[i], STOP_TIMEOUT))
            log_info("job %s: exceeded timeout_s=%d; stopping its handler", b->ids[i],
                     b->jobs[i].timeout_s);
    }
}

/* Cancel flags (and, when renew, leases) through Redis. Returns 0, or -1
 * when Redis could not answer. */
static int check_redis(supervisor *s, round_buf *b, size_t n, bool renew)
{
    if (redis_link_try(&s->rd) == NULL)
        return -1;
    if (redis_check_jobs(&s->rd, (const char (*)[UUID_STR_LEN])b->ids, n, renew,
                         s->w->worker_id, b->cancel) < 0)
        return -1;
    stop_jobs_marked(s->w, b, n, b->cancel, STOP_CANCEL);
    return 0;
}

/* Runs one PostgreSQL call of the round on the supervisor's connection. */
static PGconn *supervisor_pg(supervisor *s)
{
    return pg_link_try(&s->pg);
}

static void pg_failed(supervisor *s)
{
    if (store_conn_broken(s->pg.conn))
        pg_link_drop(&s->pg);
}

static void check_pg_cancel(supervisor *s, round_buf *b, size_t n)
{
    PGconn *c = supervisor_pg(s);
    if (c == NULL)
        return;
    if (store_cancel_requested(c, (const char (*)[UUID_STR_LEN])b->ids, n, b->cancel) < 0) {
        pg_failed(s);
        return;
    }
    stop_jobs_marked(s->w, b, n, b->cancel, STOP_CANCEL);
}

static void heartbeat(supervisor *s, round_buf *b, size_t n)
{
    PGconn *c = supervisor_pg(s);
    if (c == NULL)
        return;
    if (store_heartbeat(c, s->w->worker_id, (const char (*)[UUID_STR_LEN])b->ids, n,
                        b->alive, b->cancel) < 0) {
        pg_failed(s);
        return;
    }
    stop_jobs_marked(s->w, b, n, b->cancel, STOP_CANCEL);
    for (size_t i = 0; i < n; i++)
        b->alive[i] = !b->alive[i];     /* now: lost */
    stop_jobs_marked(s->w, b, n, b->alive, STOP_LOST);
}

/* Subscribes the sub link when it is up and not subscribed yet. Returns
 * whether it is subscribed. */
static bool cancel_subscription(supervisor *s)
{
    if (s->subscribed && s->sub.c != NULL && !redis_link_stale(&s->sub))
        return true;
    s->subscribed = false;
    redisContext *c = redis_link_try(&s->sub);
    if (c == NULL)
        return false;
    redisReply *r = redisCommand(c, "SUBSCRIBE %s", CHANNEL_CANCEL_REQUESTS);
    if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
        redis_link_drop(&s->sub, r && r->type == REDIS_REPLY_ERROR ? r->str
                                                                : "SUBSCRIBE failed");
        if (r != NULL)
            freeReplyObject(r);
        return false;
    }
    freeReplyObject(r);
    s->subscribed = true;
    return true;
}

/* Reads every message that has arrived. Returns how many, or -1 when the
 * connection failed (the link is dropped). */
static int drain_cancel_messages(supervisor *s)
{
    redisContext *c = s->sub.c;
    if (redisBufferRead(c) != REDIS_OK) {
        redis_link_drop(&s->sub, c->errstr);
        s->subscribed = false;
        return -1;
    }
    int n = 0;
    for (;;) {
        void *reply = NULL;
        if (redisGetReplyFromReader(c, &reply) != REDIS_OK) {
            redis_link_drop(&s->sub, c->errstr);
            s->subscribed = false;
            return -1;
        }
        if (reply == NULL)
            return n;
        freeReplyObject(reply);
        n++;
    }
}

/* Waits up to ms for a cancellation message (at once when one arrives);
 * without a subscription it just sleeps. Returns true when something
 * arrived on the subscription, which ends the wait for the next round. */
static bool wait_between_rounds(supervisor *s, long long ms)
{
    if (ms <= 0)
        return false;
    if (!cancel_subscription(s)) {
        clock_sleep_ms(ms);
        return false;
    }
    struct pollfd pfd = { .fd = s->sub.c->fd, .events = POLLIN };
    int rc = poll(&pfd, 1, (int)ms);
    if (rc > 0 && drain_cancel_messages(s) < 0)
        clock_sleep_ms(ms);     /* the link is down: no hot loop until it is back */
    return rc > 0;
}

static void *supervisor_main(void *arg)
{
    supervisor *s = arg;
    worker *w = s->w;
    const ag_config *cfg = w->cfg;
    long long poll_ms = cfg->cancel_poll_ms > 0 ? cfg->cancel_poll_ms : 50;
    long long heartbeat_ms = cfg->heartbeat_ms > 0 ? cfg->heartbeat_ms : 2000;
    long long next_heartbeat = 0, next_pg_cancel = 0, next_registry = 0;

    round_buf b;
    if (round_buf_init(&b, (size_t)w->nthreads) < 0) {
        log_error("supervisor: out of memory; jobs run without heartbeat");
        round_buf_free(&b);
        return NULL;
    }

    /* The watchdog vouches for this loop: every round ticks it. */
    sdn_loop *wd = sdn_loop_register("worker supervisor");
    long long tick_ms = sdn_tick_interval_ms();
    bool ready = false;

    while (!atomic_load(&s->stop)) {
        sdn_loop_tick(wd);
        while (atomic_load(&s->stall) && !atomic_load(&s->stop))
            clock_sleep_ms(10);
        long long now = clock_mono_ms();
        size_t n = worker_running(w, b.jobs, b.cap);
        for (size_t i = 0; i < n; i++)
            memcpy(b.ids[i], b.jobs[i].job_id, UUID_STR_LEN);

        if (n > 0) {
            bool beat = now >= next_heartbeat;
            check_timeouts(w, &b, n, now);
            if (check_redis(s, &b, n, beat) < 0 && now >= next_pg_cancel) {
                check_pg_cancel(s, &b, n);
                next_pg_cancel = now + PG_CANCEL_POLL_MS;
            }
            if (beat) {
                heartbeat(s, &b, n);
                next_heartbeat = now + heartbeat_ms;
            }
        }
        if (now >= next_registry) {
            int beat_rc = worker_registry_beat(&s->reg, &s->rd, w);
            next_registry = now + heartbeat_ms;
            /* Ready once both stores answer: Redis took the registry
             * beat, and PostgreSQL has a connection. */
            if (!ready && beat_rc == 0 && pg_link_try(&s->pg) != NULL) {
                ready = true;
                log_info("ready: worker %s takes jobs", w->worker_id);
                sdn_ready("taking jobs");
            }
        }

        /* The wait is cut into watchdog ticks: a long poll interval is not
         * a hung loop. */
        long long until = now + poll_ms, left;
        while ((left = until - clock_mono_ms()) > 0 && !atomic_load(&s->stop)) {
            if (tick_ms > 0 && left > tick_ms)
                left = tick_ms;
            bool woke = wait_between_rounds(s, left);
            sdn_loop_tick(wd);
            if (woke)
                break;
        }
    }
    round_buf_free(&b);
    return NULL;
}

int supervisor_start(supervisor *s, worker *w)
{
    memset(s, 0, sizeof *s);
    s->w = w;
    atomic_init(&s->stop, 0);
    worker_registry_init(&s->reg, w);
    pg_link_init(&s->pg, w->cfg->database_url, "supervisor", SUPERVISOR_CONNECT_TIMEOUT_S);
    redis_link_init(&s->rd, w->cfg, "supervisor");
    redis_link_init(&s->sub, w->cfg, "supervisor (cancel requests)");
    int err = pthread_create(&s->tid, NULL, supervisor_main, s);
    if (err != 0) {
        log_error("cannot start the supervisor thread: %s", strerror(err));
        return -1;
    }
    s->started = true;
    return 0;
}

void supervisor_test_stall(supervisor *s)
{
    log_warn("test hook: the supervisor stalls until the worker stops");
    atomic_store(&s->stall, true);
}

void supervisor_stop(supervisor *s)
{
    if (s->started) {
        atomic_store(&s->stop, 1);
        pthread_join(s->tid, NULL);
        s->started = false;
        /* The thread is gone, so no beat can put the entry back. */
        worker_registry_remove(&s->reg, &s->rd, s->w);
    }
    pg_link_close(&s->pg);
    redis_link_close(&s->rd);
    redis_link_close(&s->sub);
}
