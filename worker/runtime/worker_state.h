/*
 * worker_state.h - what the worker's threads share: the worker itself
 * (settings, stop flags), its job threads and the running-jobs table, and
 * the calls that read and change that table. The threads are started and
 * stopped by worker.c; the job threads (job_run.c), the supervisor and the
 * maintenance thread only use what is here.
 *
 * Each job thread owns one PostgreSQL and one Redis connection and runs
 * one job at a time; their terminal writes share one more PostgreSQL
 * connection, the group committer's (terminal_commit.h). The
 * running-jobs table has one slot per job thread; the slot's fields are
 * guarded by the worker's mutex, except its stop reason, an atomic the
 * handler polls without locking.
 */
#ifndef AG_WORKER_STATE_H
#define AG_WORKER_STATE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "job_redis.h"
#include "job_store.h"
#include "queues.h"
#include "uuid.h"

#define WORKER_ID_MAX 128

/* Why a running job's handler is told to stop. The first reason wins. */
enum stop_reason {
    STOP_NONE = 0,
    STOP_CANCEL,    /* cancellation was requested */
    STOP_TIMEOUT,   /* the job ran past its timeout_s */
    STOP_SHUTDOWN,  /* the worker's shutdown grace is over: hand it back */
    STOP_LOST,      /* the job is no longer this attempt's */
};

/* A name for a stop reason, for logs. */
const char *stop_reason_name(int reason);

enum slot_state { SLOT_IDLE = 0, SLOT_RUNNING, SLOT_FINISHING };

typedef struct run_slot {
    int state;                      /* SLOT_*; under worker.lock */
    unsigned long generation;       /* bumped for each job; under the lock */
    char job_id[UUID_STR_LEN];      /* under the lock */
    char tenant_id[KEY_TENANT_MAX + 1]; /* the job's tenant; under the lock */
    int attempt;                    /* under the lock */
    int timeout_s;                  /* under the lock */
    long long deadline_ms;          /* monotonic; written before RUNNING */
    atomic_int stop;                /* enum stop_reason */
} run_slot;

struct worker;

typedef struct job_thread {
    struct worker *w;
    int index;                      /* its slot in the running-jobs table */
    pthread_t tid;
    bool started;
    char name[32];                  /* "job thread 3", for logs */
    pg_link pg;
    redis_link rd;
} job_thread;

struct supervisor;
struct maintenance;
struct terminal_commit;

typedef struct worker {
    const ag_config *cfg;
    char worker_id[WORKER_ID_MAX];
    queue_set queues;
    int nthreads;
    atomic_int stopping;            /* no new jobs are taken */
    atomic_int hard_stop;           /* grace is over: running jobs go back */
    atomic_llong hard_stop_ms;      /* monotonic ms hard_stop was set; 0 before */
    atomic_int threads_live;        /* job threads not yet returned */
    pthread_mutex_t lock;           /* guards the slots */
    pthread_cond_t stop_cond;       /* broadcast (under lock) when a slot's stop
                                       is set, so sleeping handlers wake at once */
    run_slot *slots;                /* nthreads */
    job_thread *threads;            /* nthreads */
    struct supervisor *sup;
    struct maintenance *maint;
    struct terminal_commit *commit; /* the job threads' group committer; NULL:
                                       each writes its own terminal transition */
    struct webhook_sender *webhooks; /* the webhook sender; NULL: none here */
    struct dispatch *dispatch;      /* hands the job threads their jobs */
} worker;

/* A copy of one running job, taken by the supervisor. */
typedef struct running_job {
    int slot;
    unsigned long generation;
    char job_id[UUID_STR_LEN];
    char tenant_id[KEY_TENANT_MAX + 1];
    long long deadline_ms;
    int timeout_s;
} running_job;

bool worker_stopping(const worker *w);
bool worker_hard_stopping(const worker *w);

/* When the worker was told to stop at once (monotonic ms), or 0. */
long long worker_hard_stop_ms(const worker *w);

/*
 * Sleeps the calling job thread up to ms (monotonic), returning early once
 * slot's stop is set (worker_stop_job, shutdown): a cancelled handler
 * wakes when the flag is set, not at its next poll.
 */
void worker_wait_stop(worker *w, run_slot *slot, long long ms);

/* The job thread at index marks its slot running job_id of tenant_id
 * (attempt, timeout_s from now). Returns the slot. */
run_slot *worker_slot_begin(worker *w, int index, const char *job_id, const char *tenant_id,
                            int attempt, int timeout_s);

/* The job's handler returned: the slot stops taking stop reasons, and the
 * reason it ended with is returned. */
int worker_slot_finishing(worker *w, int index);

/* The job thread is done with its job. */
void worker_slot_end(worker *w, int index);

/* Copies the running jobs into out (room for max). Returns their number. */
size_t worker_running(worker *w, running_job *out, size_t max);

/* The number of slots not idle (running or finishing a job). */
int worker_running_count(worker *w);

/* Tells the job copied in *rj to stop for reason, if it still runs and
 * has no reason yet. Returns true when this call set it. */
bool worker_stop_job(worker *w, const running_job *rj, int reason);

/* Sets the worker's hard stop and tells every running handler to stop
 * with reason shutdown: their jobs are handed back. */
void worker_stop_all_running(worker *w);

#endif
