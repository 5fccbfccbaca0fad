/*
 * worker.h - the worker process's life: preparing it, running its threads
 * (the job threads, the supervisor, the maintenance thread and the group
 * committer) until the shutdown signals say stop, and freeing it. What
 * those threads share is in worker_state.h.
 */
#ifndef AG_WORKER_WORKER_H
#define AG_WORKER_WORKER_H

#include <signal.h>

#include "config.h"
#include "queues.h"
#include "worker_state.h"

/*
 * Prepares w for cfg (borrowed for w's lifetime) with the given worker id
 * and queues. Returns 0, or -1 on allocation failure (logged).
 */
int worker_init(worker *w, const ag_config *cfg, const char *worker_id,
                const queue_set *queues);

/*
 * Starts the supervisor and the job threads, then waits for the signals in
 * sigs (which the caller has blocked in every thread): the first stops
 * taking jobs and gives running ones cfg->shutdown_grace_ms, after which,
 * or at a second signal, they are handed back; a third exits at once.
 * Returns the process exit code once every thread has finished.
 */
int worker_run(worker *w, const sigset_t *sigs);

void worker_free(worker *w);

#endif
