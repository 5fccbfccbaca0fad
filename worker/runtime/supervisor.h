/*
 * supervisor.h - the worker's one watchdog thread. For every job the
 * process runs it keeps the heartbeat in PostgreSQL and the lease in
 * Redis fresh, and tells a job's handler to stop when its cancellation is
 * requested, when it passes its timeout, or when it is no longer this
 * worker's. On the same beat, jobs or none, it renews the worker's entry
 * in the worker registry (worker_registry.h).
 */
#ifndef AG_WORKER_SUPERVISOR_H
#define AG_WORKER_SUPERVISOR_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "job_redis.h"
#include "job_store.h"
#include "worker_registry.h"
#include "worker_state.h"

typedef struct supervisor {
    worker *w;
    pthread_t tid;
    bool started;
    atomic_int stop;
    pg_link pg;
    redis_link rd;
    /* Subscribed to CHANNEL_CANCEL_REQUESTS: a message ends the wait
     * between rounds early. Its own connection, since a subscribed one
     * can run no other command. */
    redis_link sub;
    bool subscribed;
    worker_registry reg;    /* this worker's entry, renewed every heartbeat */
    atomic_bool stall;      /* test hook: the thread hangs while set */
} supervisor;

/* Starts the supervisor thread for w. Returns 0, or -1 when the thread
 * cannot be created (logged). */
int supervisor_start(supervisor *s, worker *w);

/* Stops the thread, waits for it, removes the worker's registry entry
 * and closes its connections. */
void supervisor_stop(supervisor *s);

/*
 * Test hook (AGENTGATE_TEST_HOOKS=1, sd_notify.h): makes the supervisor
 * thread hang, as a stuck loop would, until supervisor_stop. Its watchdog
 * ticks stop with it, so systemd's pings end.
 */
void supervisor_test_stall(supervisor *s);

#endif
