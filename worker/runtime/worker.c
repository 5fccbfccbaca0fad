/*
 * worker.c - the worker process's life (see worker.h): K job threads
 * running the jobs the dispatch (dispatch.c) takes off the Redis queues
 * and claims for them, the threads that look after them, and
 * the shutdown sequence. The state they share, the running-jobs table
 * included, is worker_state.c's.
 *
 * Shutdown: the first SIGTERM/SIGINT stops the dispatch (its taker wakes
 * within its 1 s BRPOP timeout) and lets running jobs finish for
 * shutdown_grace_ms. Then, or at a second signal, every running handler is
 * told to stop with reason "shutdown" and its job is handed back to the
 * queue rather than cancelled. The process exits 0 when every job thread
 * is done. Signals are taken with sigtimedwait on the main thread (they
 * are blocked everywhere), so no work happens in a signal handler.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "dispatch.h"
#include "job_run.h"
#include "log.h"
#include "maintenance.h"
#include "sd_notify.h"
#include "supervisor.h"
#include "terminal_commit.h"
#include "webhooks.h"
#include "worker.h"
#include "worker_state.h"

#define SIGNAL_POLL_MS 100
#define WORKER_CONNECT_TIMEOUT_S 5
#define ORPHAN_RECOVERY_WAIT_MS 5000

/* ---------------------------------------------------------------------------
 * Job threads
 * ------------------------------------------------------------------------- */

static void *job_thread_main(void *arg)
{
    job_thread *t = arg;
    dispatched_job job;
    while (dispatch_next(t->w->dispatch, t, &job) > 0)
        job_run(t, &job);
    pg_link_close(&t->pg);
    redis_link_close(&t->rd);
    atomic_fetch_sub(&t->w->threads_live, 1);
    return NULL;
}

/* ---------------------------------------------------------------------------
 * The process
 * ------------------------------------------------------------------------- */

int worker_init(worker *w, const ag_config *cfg, const char *worker_id,
                const queue_set *queues)
{
    memset(w, 0, sizeof *w);
    w->cfg = cfg;
    snprintf(w->worker_id, sizeof w->worker_id, "%s", worker_id);
    w->queues = *queues;
    w->nthreads = cfg->worker_concurrency > 0 ? cfg->worker_concurrency : 1;
    atomic_init(&w->stopping, 0);
    atomic_init(&w->hard_stop, 0);
    atomic_init(&w->hard_stop_ms, 0);
    atomic_init(&w->threads_live, 0);
    pthread_mutex_init(&w->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->stop_cond, &ca);
    pthread_condattr_destroy(&ca);

    w->slots = calloc((size_t)w->nthreads, sizeof *w->slots);
    w->threads = calloc((size_t)w->nthreads, sizeof *w->threads);
    w->sup = calloc(1, sizeof *w->sup);
    w->maint = calloc(1, sizeof *w->maint);
    if (w->slots == NULL || w->threads == NULL || w->sup == NULL || w->maint == NULL) {
        log_error("out of memory for %d job threads", w->nthreads);
        worker_free(w);
        return -1;
    }
    for (int i = 0; i < w->nthreads; i++) {
        atomic_init(&w->slots[i].stop, STOP_NONE);
        job_thread *t = &w->threads[i];
        t->w = w;
        t->index = i;
        snprintf(t->name, sizeof t->name, "job thread %d", i);
        pg_link_init(&t->pg, cfg->database_url, t->name, WORKER_CONNECT_TIMEOUT_S);
        redis_link_init(&t->rd, cfg, t->name);
    }
    return 0;
}

void worker_free(worker *w)
{
    free(w->slots);
    free(w->threads);
    free(w->sup);
    free(w->maint);
    w->slots = NULL;
    w->threads = NULL;
    w->sup = NULL;
    w->maint = NULL;
    pthread_cond_destroy(&w->stop_cond);
    pthread_mutex_destroy(&w->lock);
}

static int start_threads(worker *w)
{
    /* Before any job thread claims a job: the orphans of this worker id
     * are a dead process's, never this one's. */
    maintenance_init(w->maint, w);
    maintenance_recover_orphans(w->maint, ORPHAN_RECOVERY_WAIT_MS);
    if (maintenance_start(w->maint) < 0 || supervisor_start(w->sup, w) < 0)
        return -1;
    w->webhooks = webhook_sender_start(w->cfg, w->worker_id);
    w->dispatch = dispatch_new(w);
    if (w->dispatch == NULL)
        return -1;
    w->commit = terminal_commit_start(w->cfg->database_url, w->nthreads);
    if (w->commit == NULL)
        log_warn("no terminal committer: each job thread writes its own outcomes");
    for (int i = 0; i < w->nthreads; i++) {
        job_thread *t = &w->threads[i];
        atomic_fetch_add(&w->threads_live, 1);
        int err = pthread_create(&t->tid, NULL, job_thread_main, t);
        if (err != 0) {
            atomic_fetch_sub(&w->threads_live, 1);
            log_error("cannot start %s: %s", t->name, strerror(err));
            return -1;
        }
        t->started = true;
    }
    return 0;
}

static void join_threads(worker *w)
{
    for (int i = 0; i < w->nthreads; i++)
        if (w->threads[i].started)
            pthread_join(w->threads[i].tid, NULL);
    dispatch_free(w->dispatch);
    w->dispatch = NULL;
    /* Every job thread has its answer by now: none is left to wait. */
    terminal_commit_stop(w->commit);
    w->commit = NULL;
    supervisor_stop(w->sup);
    maintenance_stop(w->maint);
    webhook_sender_stop(w->webhooks);
    w->webhooks = NULL;
}

/* Waits up to SIGNAL_POLL_MS for one of sigs. Returns it, or 0. */
static int wait_signal(const sigset_t *sigs)
{
    struct timespec ts = { 0, SIGNAL_POLL_MS * 1000000L };
    int sig = sigtimedwait(sigs, NULL, &ts);
    return sig > 0 ? sig : 0;
}

int worker_run(worker *w, const sigset_t *sigs)
{
    int exit_code = 0;
    if (start_threads(w) < 0) {
        exit_code = 1;
        atomic_store(&w->stopping, 1);
        worker_stop_all_running(w);
    } else {
        log_info("worker %s started: %d job threads, %zu queues", w->worker_id,
                 w->nthreads, w->queues.count);
        if (sdn_watchdog_start() < 0)
            log_warn("running without the systemd watchdog");
    }

    int signals = 0;
    long long grace_end = 0;
    while (atomic_load(&w->threads_live) > 0) {
        int sig = wait_signal(sigs);
        if (sig == SIGUSR2) {   /* only in sigs with AGENTGATE_TEST_HOOKS=1 */
            supervisor_test_stall(w->sup);
            sig = 0;
        }
        if (sig != 0 && ++signals == 1) {
            atomic_store(&w->stopping, 1);
            sdn_stopping("draining");
            grace_end = clock_mono_ms() + (w->cfg->shutdown_grace_ms > 0
                                           ? w->cfg->shutdown_grace_ms : 0);
            log_info("%s: taking no more jobs; %d running get %d ms to finish",
                     strsignal(sig), worker_running_count(w), w->cfg->shutdown_grace_ms);
        } else if (sig != 0 && signals == 2) {
            log_warn("%s (second signal): handing running jobs back now", strsignal(sig));
            worker_stop_all_running(w);
        } else if (sig != 0) {
            log_error("%s (third signal): exiting without waiting for handlers",
                      strsignal(sig));
            _exit(1);
        }
        if (signals > 0 && !worker_hard_stopping(w) && clock_mono_ms() >= grace_end) {
            if (worker_running_count(w) > 0)
                log_warn("shutdown grace of %d ms is over: handing running jobs back",
                         w->cfg->shutdown_grace_ms);
            worker_stop_all_running(w);
        }
    }

    sdn_watchdog_stop();
    join_threads(w);
    log_info("worker %s stopped", w->worker_id);
    return exit_code;
}
