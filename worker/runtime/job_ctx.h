/*
 * job_ctx.h - what a job handler sees of the worker: the job it runs, a
 * way to emit events, the cancellation flag, and its result.
 *
 * A handler runs on one of the worker's job threads and may block. It must
 * call job_cancelled (or job_sleep_ms) at least every 100 ms so a cancel
 * reaches it quickly, and it owns nothing of the context.
 */
#ifndef AG_JOB_CTX_H
#define AG_JOB_CTX_H

#include <stdbool.h>
#include <stddef.h>
#include <cjson/cJSON.h>
#include <libpq-fe.h>

#include "job_info.h"

/* The job being run. */
const job_info *job_get_info(const job_ctx *ctx);

/*
 * Appends an event of type (one of events.h's known types, not a terminal
 * one: the worker writes those) with data (borrowed; NULL means {}) to the
 * job's log in PostgreSQL and its ring in Redis, and announces it to SSE
 * subscribers. Returns the event id, or -1 when the job is no longer this
 * attempt's (its lease was lost) or storage failed.
 */
long long job_emit(job_ctx *ctx, const char *type, const cJSON *data);

/* Emits job.progress {"current","total","message"} and stores the same
 * object as the job's progress. Returns as job_emit. */
long long job_progress(job_ctx *ctx, long long current, long long total,
                       const char *message);

/* True once cancellation was requested or the job passed its timeout. */
bool job_cancelled(const job_ctx *ctx);

/* Sleeps ms milliseconds in slices of at most 50 ms, returning early with
 * true as soon as job_cancelled becomes true. */
bool job_sleep_ms(job_ctx *ctx, long long ms);

/* This job thread's PostgreSQL connection (blocking, autocommit), for
 * handlers that keep their own rows (the orchestrator's runs and steps).
 * Every statement must filter by the job's tenant_id. */
PGconn *job_db(job_ctx *ctx);

/* The worker's settings (borrowed; valid for the whole run). */
const struct ag_config *job_config(const job_ctx *ctx);

/* This job thread's Redis connection (blocking), for handlers that keep
 * tenant-scoped keys or shared state (circuit breakers, tool rate limits).
 * NULL while Redis is unreachable: the handler must carry on without it.
 * Every key a handler builds from tenant data must carry the tenant id. */
struct redisContext *job_redis_conn(job_ctx *ctx);

/* Drops the Redis connection job_redis_conn returned after an I/O error
 * on it, so the next call reconnects. */
void job_redis_conn_failed(job_ctx *ctx);

/* Publishes a job the handler queued in PostgreSQL, of the handler's own
 * tenant: its first event (event, the job.queued body) on its ring, then
 * its id on the tenant's queue of type in priority band band (jobq.h).
 * Returns 0, or -1 when Redis was down or refused (logged; reconciliation
 * queues the job later). See redis_publish_queued. */
int job_publish_queued(job_ctx *ctx, const char *job_id, const char *type, int band,
                       const char *event);

#endif
