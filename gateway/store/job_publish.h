/*
 * job_publish.h - the gateway's writes to the Redis data plane, made after
 * the matching PostgreSQL commit: appending an event to a job's ring (and
 * announcing it), enqueueing a job id, and raising a cancellation flag.
 * They are pipelined on the thread's command connection without waiting:
 * PostgreSQL already holds the truth, so a lost write delays, never loses.
 */
#ifndef AG_GW_JOB_PUBLISH_H
#define AG_GW_JOB_PUBLISH_H

#include "gateway.h"

/* Appends the encoded event body (seq) of job_id to its ring and
 * publishes it; also records status in jobs:state:{id} when non-NULL. */
void gw_redis_append_event(gw_thread *thr, const char *job_id, long long seq,
                           const char *body, const char *status);

/* Enqueues job_id of tenant: onto the tenant's list of its type and of
 * the band of priority (the job's), and the tenant onto the type's ring
 * when it was not on it (the enqueue script of common/jobq.h). tenant is
 * the job's tenant id, as the row has it. */
void gw_redis_enqueue(gw_thread *thr, const char *job_id, const char *type,
                      const char *tenant, long long priority);

/* Enqueues job_id of tenant to run at epoch ms run_at_ms: as
 * gw_redis_enqueue at once when that has come, else in
 * jobs:delayed:{type} (as "[{band}/]{tenant}:{id}") until the workers move
 * it. */
void gw_redis_enqueue_at(gw_thread *thr, const char *job_id, const char *type,
                         const char *tenant, long long priority, long long run_at_ms);

/*
 * What follows the commit of a new job (a submission, an agent run, a
 * retry): its job.queued event (event_body, id 1) appended to its ring,
 * its id enqueued for run_at_ms (0: now; gw_redis_enqueue_at), and the
 * gateway's count of submitted jobs. tenant is the job's tenant id,
 * priority its priority (-1000..1000). The Redis writes of the jobs
 * committed in one loop turn leave together, as one command, once the
 * turn's callbacks have run.
 */
void gw_job_committed(gw_thread *thr, const char *job_id, const char *type,
                      const char *tenant, long long priority, const char *event_body,
                      long long run_at_ms);

/* Creates thr's gathering of new jobs (gw_job_committed sends them
 * one call per loop turn). NULL on allocation failure. */
new_jobs *new_jobs_new(gw_thread *thr);

/* Sends what was gathered and frees nj. */
void new_jobs_free(new_jobs *nj);

/* Sets cancel:{job_id} for the job's worker to see, and publishes the id
 * on CHANNEL_CANCEL_REQUESTS so the worker sees it at once. */
void gw_redis_flag_cancel(gw_thread *thr, const char *job_id);

#endif
