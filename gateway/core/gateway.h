/*
 * gateway.h - the gateway's process-wide and per-loop-thread state, and
 * the context one HTTP request carries through its asynchronous steps.
 *
 * Every loop thread owns its PostgreSQL pool, its Redis connections and
 * its SSE subscribers; nothing on the request path is shared between
 * threads, so nothing on it takes a lock.
 */
#ifndef AG_GATEWAY_H
#define AG_GATEWAY_H

#include <stdbool.h>
#include <stdatomic.h>
#include <evhtp.h>

#include "config.h"
#include "jwt.h"
#include "permission.h"
#include "router.h"

/* Owned by a loop thread, defined by the layers above (store/, sse/). */
typedef struct pg_pool pg_pool;
typedef struct rds rds;
typedef struct sse_hub sse_hub;
typedef struct job_batch job_batch;
typedef struct new_jobs new_jobs;

#define GW_MAX_THREADS 256

typedef struct gw_thread gw_thread;

typedef struct gw_server {
    ag_config cfg;
    jwt_config jwt;
    evhtp_t *htp;
    struct event_base *base;
    long long started_ms;
    gw_thread *threads[GW_MAX_THREADS];   /* set as each loop thread starts */
    atomic_int nthreads;
} gw_server;

struct gw_thread {
    gw_server *srv;
    struct event_base *base;
    int index;
    pg_pool *pg;
    rds *redis;
    sse_hub *hub;
    job_batch *batch;     /* group commit of submissions */
    new_jobs *new_jobs;   /* Redis writes of committed jobs, one call per loop turn */
    struct gw_conn *conns; /* open client connections (closed at shutdown) */
};

/*
 * One request in flight. libevhtp owns the evhtp_request_t and may free it
 * (client gone) while a database or Redis answer is still on its way, so
 * the context is reference counted: one reference for libevhtp's side,
 * dropped when the request is freed (req becomes NULL), and one per
 * pending asynchronous step.
 */
typedef struct gw_req {
    evhtp_request_t *req;
    gw_thread *thr;
    int refs;
    bool paused;              /* the connection reads nothing more until the answer
                                 has left (deferred, or with bytes pipelined behind) */
    bool replied;
    char request_id[65];
    char traceparent[56];     /* this request's own span (req_span.h) */
    struct span *span;        /* its server span until the answer; NULL after */
    principal who;
    bool authenticated;       /* who holds a verified principal */
    route_match route;
    rbac_perm perm;           /* what the route needs (rbac_route_perm) */
    char audit_resource[160]; /* "jobs/<id>": set by handlers that know it;
                                 else audit uses the route's resource/param */
    long long started_ms;
    double started_s;         /* clock_mono_s() at arrival, for the duration histogram */
    void *state;              /* the handler's own step state */
    void (*state_free)(void *state);
    void (*on_close)(struct gw_req *r); /* called once when the request is freed */
    /* Called once with the final reply (not for event streams) just before
     * it is sent: body is len bytes, headers_out holds the headers. Used by
     * Idempotency-Key to keep the first answer. */
    void (*on_reply)(struct gw_req *r, int status, const char *body, size_t len);
    void *idem;               /* idempotency.c's state (malloc'd, freed with r) */
    /* The final answer's Content-Type and Location, kept here as well as in
     * the headers: the reply hook still runs when the client has gone (the
     * job was committed all the same) and libevhtp's headers are gone. */
    char reply_ctype[64];
    char reply_location[256];
} gw_req;

/* Adds a reference for an asynchronous step. */
void gw_req_hold(gw_req *r);

/* Drops a reference; frees the context when the last one goes. */
void gw_req_release(gw_req *r);

/* Makes r's request id and traceparent the context of this thread's log
 * lines, for a callback that goes on with r. Such a callback ends with
 * log_set_context(NULL, NULL), so that the lines of whatever the loop runs
 * next (timers, reconnects, another request's answer) do not carry r's. */
void gw_req_log_context(const gw_req *r);

/* True while the client is still there to answer. */
static inline bool gw_req_alive(const gw_req *r) { return r->req != NULL; }

/* Marks r as answered later: the connection stops reading until then. */
void gw_req_defer(gw_req *r);

/* Entry point for every request, registered with libevhtp. */
void gw_handle_request(evhtp_request_t *req, void *arg);

#endif
