/*
 * job_run.h - one claimed job's run on a job thread: job.started, the
 * handler, and the one terminal write (or the hand-back at shutdown).
 */
#ifndef AG_WORKER_JOB_RUN_H
#define AG_WORKER_JOB_RUN_H

#include "dispatch.h"
#include "worker_state.h"

/*
 * Runs the job dj, claimed for this worker by the dispatch (dispatch.h),
 * on thread t: its handler, then its outcome recorded. Takes dj->cj (and
 * frees it). Never fails: every problem ends as a log line and, where the
 * job is ours, a terminal state.
 */
void job_run(job_thread *t, dispatched_job *dj);

#endif
