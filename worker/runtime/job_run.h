/*
 * job_run.h - one job's run on a job thread: claim, handler, and the one
 * terminal write (or the hand-back at shutdown).
 */
#ifndef AG_WORKER_JOB_RUN_H
#define AG_WORKER_JOB_RUN_H

#include "job_redis.h"
#include "worker_state.h"

/*
 * Runs the job id popped from the list of from on thread t: claims it
 * (pushing the id back to the front of that list when the worker stops
 * before PostgreSQL answers), runs its handler, and records the outcome.
 * Never fails: every problem ends as a log line and, where the job is
 * ours, a terminal state.
 */
void job_run(job_thread *t, const job_origin *from, const char *id);

#endif
