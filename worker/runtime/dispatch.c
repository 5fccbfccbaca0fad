/*
 * dispatch.c - how the job threads get their jobs (see dispatch.h).
 *
 * A job thread with nothing to run calls dispatch_next. When claimed jobs
 * wait on the ready list, it takes the oldest. Otherwise, unless another
 * thread is already taking, it becomes the taker: it counts the threads
 * waiting here, itself included, takes up to that many ids off Redis in
 * one pipeline (redis_take_jobs: what the queues hold, blocking in BRPOP
 * only when every queue is empty, so a job that arrives alone starts at
 * once), claims them with one statement (store_claim_batch: each id
 * fenced and capped as a claim of one id is), puts the claimed jobs on the
 * ready list, wakes the waiting threads and runs one itself. With K
 * threads idle, K jobs cost one Redis round trip, one PostgreSQL round
 * trip and one commit, not K of each. One thread takes at a time; the
 * others wait on the condition variable, and a thread that finishes its
 * job meanwhile joins them and counts in the next take.
 *
 * The ids the claim does not give us are dealt with here: a job its
 * tenant's running cap holds back goes to the delayed set of its type, in
 * its band (not counted as an attempt); one no longer queued (cancelled,
 * or taken) is dropped; a claim that keeps failing puts the ids back at
 * the front of their tenants' lists.
 *
 * A claimed job is the worker's: it stays on the ready list until a job
 * thread runs it, shutdown or not (no thread leaves while one is taking
 * or a job is ready; a job started after the grace is handed straight
 * back by its slot, worker_slot_begin). Ids taken as shutdown began are
 * pushed back unclaimed, for another worker.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "dispatch.h"
#include "jobtypes.h"
#include "log.h"
#include "worker_metrics.h"
#include "worker_state.h"

/* How long an idle take blocks in BRPOP: how soon the taker notices the
 * worker stopping. */
#define TAKE_WAIT_S 1
/* How often a waiting thread looks at the stop flag. */
#define IDLE_POLL_MS 200
#define CLAIM_ERRORS_MAX 3
/* A job its tenant's running cap refused waits this long, plus up to
 * CAP_RETRY_JITTER_MS, before it is tried again (not counted as an attempt). */
#define CAP_RETRY_MS 300
#define CAP_RETRY_JITTER_MS 200

struct dispatch {
    worker *w;
    pthread_mutex_t lock;       /* guards what follows but last and batch */
    pthread_cond_t wake;        /* broadcast when the taker is done */
    int waiting;                /* job threads in dispatch_next without a job */
    bool taking;                /* one of them is taking for the rest */
    dispatched_job *ready;      /* claimed, not yet run: a ring of cap */
    int head, n, cap;
    /* The taker's alone: */
    job_origin last;            /* the turn taken last: the next take's hint */
    dispatched_job *batch;      /* cap */
};

dispatch *dispatch_new(worker *w)
{
    dispatch *d = calloc(1, sizeof *d);
    if (d == NULL)
        goto oom;
    d->w = w;
    d->cap = w->nthreads > 0 ? w->nthreads : 1;
    d->ready = calloc((size_t)d->cap, sizeof *d->ready);
    d->batch = calloc((size_t)d->cap, sizeof *d->batch);
    if (d->ready == NULL || d->batch == NULL)
        goto oom;
    pthread_mutex_init(&d->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&d->wake, &ca);
    pthread_condattr_destroy(&ca);
    return d;
oom:
    log_error("out of memory for the dispatch of %d job threads", w->nthreads);
    if (d != NULL) {
        free(d->ready);
        free(d->batch);
        free(d);
    }
    return NULL;
}

void dispatch_free(dispatch *d)
{
    if (d == NULL)
        return;
    pthread_cond_destroy(&d->wake);
    pthread_mutex_destroy(&d->lock);
    free(d->ready);
    free(d->batch);
    free(d);
}

static bool worker_is_stopping(void *arg)
{
    return worker_stopping(arg);
}

/* ---------------------------------------------------------------------------
 * Ids not claimed
 * ------------------------------------------------------------------------- */

/* Puts a popped id back at the front of its tenant's list. */
static void give_back_popped(job_thread *t, const job_origin *from, const char *id)
{
    if (redis_link_try(&t->rd) != NULL && redis_push_back(&t->rd, from, id) == 0) {
        log_info("job %s: pushed back unstarted onto tenant %s's %s jobs", id, from->tenant,
                 from->type);
        return;
    }
    log_error("job %s: popped from tenant %s's %s jobs but neither claimed nor pushed "
              "back; PostgreSQL still has it queued", id, from->tenant, from->type);
}

static void give_back_all(job_thread *t, const dispatched_job *batch, int n)
{
    for (int i = 0; i < n; i++)
        give_back_popped(t, &batch[i].from, batch[i].id);
}

/* Puts a job its tenant's running cap refused into the delayed set of its
 * type, in its band, due when PostgreSQL's run_at (moved by the claim)
 * says. Should Redis fail, reconciliation finds the queued row and
 * enqueues it. */
static void delay_capped(job_thread *t, const job_origin *from, const char *id,
                         const claimed_job *cj, int retry_ms)
{
    log_debug("job %s: tenant %s is at its running cap; retrying in %d ms", id,
              cj->tenant_id, retry_ms);
    if (jobtypes_find(cj->type) == NULL) {
        give_back_popped(t, from, id);
        return;
    }
    job_redis_state st = { .requeue_type = cj->type, .requeue_tenant = cj->tenant_id,
                           .requeue_band = from->band,
                           .requeue_at_ms = clock_wall_ms() + retry_ms };
    if (redis_link_try(&t->rd) == NULL || redis_write_job(&t->rd, id, NULL, 0, &st) != 0)
        log_warn("job %s: held back by its tenant's running cap but not put in the "
                 "delayed set; reconciliation will enqueue it", id);
}

/* ---------------------------------------------------------------------------
 * Take and claim
 * ------------------------------------------------------------------------- */

/*
 * Claims the n ids of batch in one statement, retrying a lost connection
 * and, a few times, an error. Keeps the claimed jobs at the front of
 * batch (their claim rows filled) and returns their number; the rest are
 * dealt with here.
 */
static int claim_batch(job_thread *t, dispatched_job *batch, int n)
{
    worker *w = t->w;
    char (*ids)[UUID_STR_LEN] = malloc((size_t)n * sizeof *ids);
    store_rc *rcs = malloc((size_t)n * sizeof *rcs);
    claimed_job *cjs = malloc((size_t)n * sizeof *cjs);
    if (ids == NULL || rcs == NULL || cjs == NULL) {
        log_error("claim of %d jobs: out of memory", n);
        give_back_all(t, batch, n);
        free(ids);
        free(rcs);
        free(cjs);
        return 0;
    }
    for (int i = 0; i < n; i++)
        memcpy(ids[i], batch[i].id, UUID_STR_LEN);

    int errors = 0, retry_ms = 0, claimed = 0;
    bool retried = false;
    for (;;) {
        PGconn *c = pg_link_wait(&t->pg, worker_is_stopping, w);
        if (c == NULL) {
            give_back_all(t, batch, n);
            goto out;
        }
        retry_ms = CAP_RETRY_MS + (int)(backoff_random() % CAP_RETRY_JITTER_MS);
        if (store_claim_batch(c, (const char (*)[UUID_STR_LEN])ids, (size_t)n, w->worker_id,
                              w->cfg->tenant_max_running, retry_ms, rcs, cjs) == STORE_OK)
            break;
        if (store_conn_broken(c)) {
            pg_link_drop(&t->pg);
            retried = true;
            continue;
        }
        if (++errors >= CLAIM_ERRORS_MAX) {
            log_error("claim of %d jobs failed %d times; leaving them for later", n, errors);
            give_back_all(t, batch, n);
            clock_sleep_ms(BACKOFF_MAX_MS);     /* no hot loop on a poison entry */
            goto out;
        }
        clock_sleep_ms((long long)BACKOFF_FIRST_MS << errors);
    }

    worker_metrics_claim_batch(n);
    for (int i = 0; i < n; i++) {
        if (rcs[i] == STORE_OK) {
            if (claimed != i)
                batch[claimed] = batch[i];
            batch[claimed++].cj = cjs[i];
        } else if (rcs[i] == STORE_CAPPED) {
            delay_capped(t, &batch[i].from, ids[i], &cjs[i], retry_ms);
        } else if (rcs[i] == STORE_NONE && retried) {
            log_warn("job %s: not claimable after a lost connection; if the lost claim "
                     "committed, the job waits for its lease to expire", ids[i]);
        } else if (rcs[i] == STORE_NONE) {
            log_debug("job %s: no longer queued (cancelled or taken); skipped", ids[i]);
        }
        /* STORE_ERROR: a claimed row the worker could not read (logged);
         * its lease runs out and the reaper queues it again. */
    }
out:
    free(ids);
    free(rcs);
    free(cjs);
    return claimed;
}

/* Takes up to want ids for the waiting threads and claims them into
 * d->batch. Returns the number claimed. */
static int take_batch(dispatch *d, job_thread *t, int want)
{
    worker *w = d->w;
    if (redis_link_wait(&t->rd, worker_is_stopping, w) == NULL)
        return 0;
    /* Not taking while PostgreSQL is down keeps the ids in Redis. */
    if (pg_link_wait(&t->pg, worker_is_stopping, w) == NULL)
        return 0;

    job_origin froms[want];
    char values[want][64];
    int got = redis_take_jobs(&t->rd, &w->queues, want, TAKE_WAIT_S, &d->last, froms, values);
    int n = 0;
    for (int k = 0; k < got; k++) {
        if (!uuid_parse(values[k], d->batch[n].id)) {
            log_warn("%s: dropped queue entry of tenant %s's %s jobs that is not a job id",
                     t->name, froms[k].tenant, froms[k].type);
            continue;
        }
        d->batch[n++].from = froms[k];
    }
    if (n == 0)
        return 0;
    if (worker_stopping(w)) {
        /* Taken as shutdown began: leave them for another worker. */
        give_back_all(t, d->batch, n);
        return 0;
    }
    return claim_batch(t, d->batch, n);
}

/* ---------------------------------------------------------------------------
 * Hand-off
 * ------------------------------------------------------------------------- */

static void ready_push(dispatch *d, const dispatched_job *j)
{
    d->ready[(d->head + d->n) % d->cap] = *j;
    d->n++;
}

static void ready_pop(dispatch *d, dispatched_job *out)
{
    *out = d->ready[d->head];
    d->head = (d->head + 1) % d->cap;
    d->n--;
}

static void wait_a_moment(dispatch *d)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_nsec += IDLE_POLL_MS * 1000000L;
    ts.tv_sec += ts.tv_nsec / 1000000000L;
    ts.tv_nsec %= 1000000000L;
    pthread_cond_timedwait(&d->wake, &d->lock, &ts);
}

int dispatch_next(dispatch *d, job_thread *t, dispatched_job *out)
{
    int rc = -1;
    pthread_mutex_lock(&d->lock);
    d->waiting++;
    for (;;) {
        if (d->n > 0) {
            ready_pop(d, out);
            rc = 1;
            break;
        }
        if (d->taking) {
            wait_a_moment(d);
            continue;
        }
        if (worker_stopping(d->w))
            break;
        /* Every thread waiting has no job (the ready list is empty): take
         * for all of them. Only the taker adds to the list, so the batch
         * fits. */
        int want = d->waiting < d->cap ? d->waiting : d->cap;
        d->taking = true;
        pthread_mutex_unlock(&d->lock);
        int got = take_batch(d, t, want);
        pthread_mutex_lock(&d->lock);
        for (int i = 0; i < got; i++)
            ready_push(d, &d->batch[i]);
        d->taking = false;
        pthread_cond_broadcast(&d->wake);
    }
    d->waiting--;
    pthread_mutex_unlock(&d->lock);
    return rc;
}
