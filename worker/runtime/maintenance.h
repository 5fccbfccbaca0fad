/*
 * maintenance.h - the worker's housekeeping thread: what keeps jobs
 * moving when something died rather than when something ran.
 *
 *   promote    due ids in jobs:delayed:{type} (run_at, retry backoff) move
 *              to their tenants' lists (common/jobq.h), for the types this
 *              worker serves;
 *   reap       running jobs whose heartbeat is older than the lease go back
 *              to queued with job.retrying (or fail, when no attempt is
 *              left), so another worker runs them;
 *   reconcile  PostgreSQL is the authority: queued jobs Redis holds in no
 *              list and no delayed set (Redis flushed, or a crash between
 *              the INSERT and the enqueue) are enqueued again, tenants with
 *              jobs waiting but no place on their type's ring (a worker
 *              killed between taking the tenant's turn and its job) are
 *              put back on it, and queued jobs whose cancellation was
 *              requested are cancelled;
 *   retention  finished jobs and audit rows past their retention are
 *              deleted in small batches (retention.h);
 *   schedules  due schedules' ticks become jobs, each exactly once
 *              (schedules.h).
 *
 * Every worker runs all five; they do not fight: promotion moves each id
 * with one atomic script that only one worker's call can win, the reaper
 * locks rows with SKIP LOCKED and fences each write by the attempt, and
 * reconciliation runs in one worker at a time under lock:reconciler,
 * retention in one worker at a time under a PostgreSQL advisory lock, and
 * a schedule fires under its row lock and its tick's primary key.
 */
#ifndef AG_WORKER_MAINTENANCE_H
#define AG_WORKER_MAINTENANCE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "job_redis.h"
#include "job_store.h"
#include "worker_state.h"

typedef struct maintenance {
    worker *w;
    pthread_t tid;
    bool started;
    atomic_int stop;
    pg_link pg;
    redis_link rd;
} maintenance;

/* Prepares m for w (no thread, no connection yet). */
void maintenance_init(maintenance *m, worker *w);

/*
 * Hands back, at once, the jobs a previous process with this worker's id
 * left running (it died; a restarted worker need not wait for their
 * leases). Call before any job thread starts, or it would hand back its
 * own. Tries PostgreSQL for up to wait_ms. Returns the number of jobs
 * handed back, or -1 when PostgreSQL could not be reached (their leases
 * will expire instead).
 */
int maintenance_recover_orphans(maintenance *m, long long wait_ms);

/* Starts the thread. Returns 0, or -1 when it cannot (logged). */
int maintenance_start(maintenance *m);

/* Stops the thread, waits for it and closes its connections. */
void maintenance_stop(maintenance *m);

#endif
