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

/* LPUSHes job_id onto jobs:queue:{type}. */
void gw_redis_enqueue(gw_thread *thr, const char *job_id, const char *type);

/* Enqueues job_id to run at epoch ms run_at_ms: in its queue at once when
 * that has come, else in jobs:delayed:{type} until the workers move it. */
void gw_redis_enqueue_at(gw_thread *thr, const char *job_id, const char *type,
                         long long run_at_ms);

/* Sets cancel:{job_id} for the job's worker to see, and publishes the id
 * on CHANNEL_CANCEL_REQUESTS so the worker sees it at once. */
void gw_redis_flag_cancel(gw_thread *thr, const char *job_id);

#endif
