/*
 * sse.h - a loop thread's Server-Sent Events subscribers, grouped by job.
 *
 * A job's events reach the gateway once per thread (Redis pub/sub on the
 * job's channel), are framed once, and the same bytes are written to every
 * subscriber of that job on that thread. A subscriber that is behind (it
 * resumed, or it joined late) catches up from the job's Redis ring and,
 * for ids older than the ring, from PostgreSQL, so no id is skipped.
 */
#ifndef AG_SSE_H
#define AG_SSE_H

#include <stddef.h>
#include "gateway.h"

/* Creates the hub of thr (keepalive timer included). NULL on allocation failure. */
sse_hub *sse_hub_new(gw_thread *thr);

/* Ends every stream of the hub and frees it. */
void sse_hub_free(sse_hub *hub);

/*
 * Streams the events of job_id after the id `after` to r, which has been
 * authenticated and checked to belong to tenant_id; the stream ends after
 * the job's terminal event (without sending it when `after` is already at
 * or past it). finished says the job had already ended in
 * PostgreSQL, so its events are replayed from there, not from Redis.
 * r must be deferred (an asynchronous step's callback): the stream takes
 * its socket (http_stream_open) and lets libevhtp's request go, so the
 * caller does nothing with r afterwards except drop its own reference.
 * On refusal (429, 503) r is answered as usual.
 */
void sse_subscribe(sse_hub *hub, gw_req *r, const char *job_id,
                   const char *tenant_id, long long after,
                   bool finished);

/* Ends every open stream with a retry: hint (shutdown); clients resume
 * elsewhere with Last-Event-ID. */
void sse_hub_close_all(sse_hub *hub);

/* Redis pub/sub handlers; arg is the hub. */
void sse_on_message(const char *channel, const char *payload, size_t len, void *arg);
void sse_on_subscribed(const char *channel, void *arg);
void sse_on_unsubscribed(const char *channel, void *arg);
void sse_on_resubscribe(void *arg);

/* rds handler: the pub/sub link to Redis is lost, so live events stop.
 * Every stream ends with a retry: hint; a client that comes back is
 * caught up from PostgreSQL and goes live again when Redis returns. */
void sse_on_pubsub_lost(void *arg);

/* Open streams on this hub. */
int sse_hub_streams(const sse_hub *hub);

#endif
