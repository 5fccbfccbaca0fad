/*
 * job_redis.h - the gateway's writes to the Redis data plane, made after
 * the matching PostgreSQL commit: appending an event to a job's ring (and
 * announcing it), enqueueing a job id, and raising a cancellation flag.
 * They are pipelined on the thread's command connection without waiting:
 * PostgreSQL already holds the truth, so a lost write delays, never loses.
 */
#ifndef AG_GW_JOB_REDIS_H
#define AG_GW_JOB_REDIS_H

#include "gateway.h"

/* Appends the encoded event body (seq) of job_id to its ring and
 * publishes it; also records status in jobs:state:{id} when non-NULL. */
void gw_redis_append_event(gw_thread *thr, const char *job_id, long long seq,
                           const char *body, const char *status);

/* LPUSHes job_id onto jobs:queue:{type}. */
void gw_redis_enqueue(gw_thread *thr, const char *job_id, const char *type);

/* Sets cancel:{job_id} for the job's worker to see. */
void gw_redis_flag_cancel(gw_thread *thr, const char *job_id);

#endif
