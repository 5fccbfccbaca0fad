/*
 * sse.c - SSE subscribers and fan-out on one loop thread (see sse.h).
 *
 * Each subscriber remembers the last id it was sent and only ever writes
 * the next one, so ids go out in order with no gap and no repeat whatever
 * order the sources answer in. Sources, in order of preference:
 *   1. live pub/sub messages on jobs:notify:{id};
 *   2. the ring jobs:events:{id}, read when a subscriber starts, resumes,
 *      or sees a gap (an id ahead of the one it expects);
 *   3. job_events in PostgreSQL, for ids the ring no longer holds.
 * While a catch-up read is in flight, live messages only mark that another
 * read is due, so an event published during the read is never lost.
 *
 * A held stream is small: once its response head is out, the socket is
 * taken from libevhtp (http_stream_open) and the request context is let
 * go, so a subscriber is this file's sse_sub, the http_stream and, only
 * while a catch-up read is in flight, a short-lived request context for
 * the query.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <hiredis/hiredis.h>

#include "sse.h"
#include "sse_frame.h"
#include "sse_quota.h"
#include "http.h"
#include "gw_metrics.h"
#include "query.h"
#include "events.h"
#include "keys.h"
#include "clock.h"
#include "log.h"
#include "uuid.h"
#include "redis_async.h"

#define HUB_BUCKETS 1024
#define PG_CATCHUP_PAGE "500"

typedef struct topic topic;

typedef struct sse_sub {
    sse_hub *hub;
    http_stream *st;       /* NULL once the socket is closed */
    topic *t;              /* NULL once the subscriber has left */
    sse_quota_slot *slot;  /* its principal's stream slot, until given back */
    long long last_sent;
    long long last_write_ms;
    int refs;              /* the stream's, and one per read in flight */
    bool fetching;         /* a catch-up read is in flight */
    bool refetch;          /* something arrived meanwhile: read again after */
    bool ended;
    bool finished;         /* the job had ended in PostgreSQL: replay from there */
    struct sse_sub *prev, *next;
} sse_sub;

struct topic {
    char job_id[UUID_STR_LEN];
    char tenant_id[65];
    char channel[KEY_MAX];
    bool subscribed;       /* the server confirmed the SUBSCRIBE */
    bool unsubscribing;    /* UNSUBSCRIBE sent, not yet confirmed */
    int dispatching;       /* >0 while a loop walks subs: defer freeing */
    sse_sub *subs;
    int nsubs;
    topic *hnext;
};

struct sse_hub {
    gw_thread *thr;
    topic *buckets[HUB_BUCKETS];
    struct event *keepalive;
    int streams;
};

static void catch_up(sse_sub *s);

/* --- topics ------------------------------------------------------------ */

static unsigned bucket_of(const char *job_id)
{
    unsigned h = 2166136261u;
    for (const char *p = job_id; *p; p++) h = (h ^ (unsigned char)*p) * 16777619u;
    return h % HUB_BUCKETS;
}

static topic *topic_find(sse_hub *hub, const char *job_id)
{
    for (topic *t = hub->buckets[bucket_of(job_id)]; t; t = t->hnext)
        if (strcmp(t->job_id, job_id) == 0) return t;
    return NULL;
}

static topic *topic_get(sse_hub *hub, const char *job_id, const char *tenant_id)
{
    /* A topic still unsubscribing is reused: it subscribes again once the
     * UNSUBSCRIBE is confirmed (see sse_on_unsubscribed). */
    topic *t = topic_find(hub, job_id);
    if (t) return t;
    t = calloc(1, sizeof *t);
    if (!t) return NULL;
    snprintf(t->job_id, sizeof t->job_id, "%s", job_id);
    snprintf(t->tenant_id, sizeof t->tenant_id, "%s", tenant_id);
    key_notify(t->channel, job_id);
    unsigned b = bucket_of(job_id);
    t->hnext = hub->buckets[b];
    hub->buckets[b] = t;
    rds_subscribe(hub->thr->redis, t->channel); /* if down: on_resubscribe does it */
    return t;
}

static void topic_free(sse_hub *hub, topic *t)
{
    topic **pp = &hub->buckets[bucket_of(t->job_id)];
    while (*pp && *pp != t) pp = &(*pp)->hnext;
    if (*pp) *pp = t->hnext;
    free(t);
}

/*
 * A topic without subscribers unsubscribes, but stays in the table until
 * Redis confirms: hiredis drops a channel's callback when the UNSUBSCRIBE
 * reply arrives, so a SUBSCRIBE sent before that reply could lose its own
 * callback and leave a new subscriber waiting forever.
 */
static void topic_free_if_empty(sse_hub *hub, topic *t)
{
    if (t->subs || t->dispatching || t->unsubscribing) return;
    if (rds_unsubscribe(hub->thr->redis, t->channel) == 0) {
        t->unsubscribing = true;
        t->subscribed = false;
        return;
    }
    topic_free(hub, t); /* link down: nothing is subscribed server-side */
}

static void topic_unlink(sse_hub *hub, sse_sub *s)
{
    topic *t = s->t;
    if (!t) return;
    if (s->prev) s->prev->next = s->next; else t->subs = s->next;
    if (s->next) s->next->prev = s->prev;
    s->prev = s->next = NULL;
    s->t = NULL;
    t->nsubs--;
    hub->streams--;
    series_add(gw_metric.sse_open, -1);
    topic_free_if_empty(hub, t);
}

/* --- subscriber references ---------------------------------------------- */

static void sub_hold(sse_sub *s) { s->refs++; }

static void sub_release(sse_sub *s)
{
    if (--s->refs > 0) return;
    free(s);
}

static void sub_release_cb(void *s) { sub_release(s); }

/* Still streaming: the socket is open and the subscriber has not left. */
static bool sub_live(const sse_sub *s) { return s->st && s->t && !s->ended; }

/* --- writing ------------------------------------------------------------ */

/* Gives the principal's stream slot back, once. A stream ended by us is
 * done even while its client keeps the connection open, so the slot goes
 * back when the stream ends, not only when the socket closes. */
static void release_slot(sse_sub *s)
{
    sse_quota_give(s->slot);
    s->slot = NULL;
}

/* The subscriber leaves: no more writes; the socket closes later. */
static void sub_leave(sse_hub *hub, sse_sub *s)
{
    s->ended = true;
    topic_unlink(hub, s);
    release_slot(s);
}

static void sub_write(sse_sub *s, const char *frame, size_t len)
{
    if (!s->st || s->ended) return;
    size_t queued = http_stream_send(s->st, frame, len);
    s->last_write_ms = clock_mono_ms();
    if (queued > s->hub->thr->srv->cfg.sse_max_buffer_bytes) {
        /* Too slow to keep up: drop it rather than grow without bound.
         * The client resumes from its Last-Event-ID. */
        log_set_context(NULL, NULL); /* not the line of whichever request ran last */
        log_info("closing SSE subscriber of job %s: %zu bytes unsent", s->t ? s->t->job_id : "?", queued);
        sub_leave(s->hub, s);
        http_stream_abort(s->st);
    }
}

static void sub_end(sse_hub *hub, sse_sub *s)
{
    if (s->ended) return;
    sub_leave(hub, s);
    if (s->st) http_stream_end(s->st);
}

/*
 * An event s already has (its id is at or below the resume point). If it
 * is the terminal one, the client resumed at or past the job's end while
 * the job was still running when the stream started: nothing more will
 * come, so the stream ends rather than waits forever; the client's next
 * request is answered 204.
 */
static void sub_skip(sse_hub *hub, sse_sub *s, const char *type)
{
    if (event_type_terminal(type)) sub_end(hub, s);
}

/*
 * Sends body if it is the next id s expects. Returns 1 when sent, 0 when
 * already sent (or s is gone), -1 when it is ahead (a gap to fill first).
 */
static int sub_offer(sse_hub *hub, sse_sub *s, long long seq, const char *type,
                     const char *frame, size_t frame_len)
{
    if (!sub_live(s)) return 0;
    if (seq <= s->last_sent) { sub_skip(hub, s, type); return 0; }
    if (seq > s->last_sent + 1) return -1;
    sub_write(s, frame, frame_len);
    if (s->ended) return 0;
    s->last_sent = seq;
    series_inc(gw_metric.sse_events);
    if (event_type_terminal(type)) sub_end(hub, s);
    return 1;
}

/* Offers one stored body (ring or table) to s alone. */
static int sub_offer_body(sse_hub *hub, sse_sub *s, const char *body, size_t len)
{
    long long seq;
    char type[EVENT_TYPE_MAX];
    if (event_peek(body, len, &seq, type, sizeof type) != 0) {
        log_warn("skipping a malformed stored event of job %s", s->t ? s->t->job_id : "?");
        return 0;
    }
    if (seq <= s->last_sent) { sub_skip(hub, s, type); return 0; }
    if (seq > s->last_sent + 1) return -1;
    size_t flen;
    char *frame = sse_frame(seq, type, body, len, &flen);
    if (!frame) return 0;
    int rc = sub_offer(hub, s, seq, type, frame, flen);
    free(frame);
    return rc;
}

/* --- catching up ------------------------------------------------------- */

/* A catch-up read ended: go live, or read again if something came meanwhile. */
static void catch_up_done(sse_sub *s)
{
    s->fetching = false;
    if (s->refetch && sub_live(s)) {
        s->refetch = false;
        catch_up(s);
    }
}

#define CATCH_UP_RETRY_MS 1000

static void on_catch_up_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd; (void)what;
    sse_sub *s = arg;
    if (sub_live(s)) catch_up(s);
    sub_release(s);
}

/* A catch-up read could not be made: try again shortly rather than wait
 * for a live event, which never comes if the job has already finished. */
static void catch_up_failed(sse_sub *s, const char *why)
{
    log_set_context(NULL, NULL);
    log_warn("SSE catch-up from PostgreSQL failed: %s; retrying", why);
    s->fetching = false;
    struct timeval tv = { CATCH_UP_RETRY_MS / 1000, (CATCH_UP_RETRY_MS % 1000) * 1000 };
    sub_hold(s);
    if (event_base_once(s->hub->thr->base, -1, EV_TIMEOUT, on_catch_up_retry, s, &tv) != 0)
        sub_release(s);
}

static void on_table_page(gw_req *q, PGresult *res, const char *err, const char *sqlstate)
{
    (void)sqlstate;
    sse_sub *s = q->state;
    if (!sub_live(s)) return;
    if (!res) { catch_up_failed(s, err); return; }
    int rows = PQntuples(res);
    for (int i = 0; i < rows && !s->ended; i++) {
        if (sub_offer_body(s->hub, s, PQgetvalue(res, i, 0), (size_t)PQgetlength(res, i, 0)) < 0) {
            log_warn("gap in job_events of job %s after id %lld", s->t->job_id, s->last_sent);
            break;
        }
    }
    if (s->ended) return;
    if (rows > 0) { s->fetching = false; catch_up(s); return; }
    catch_up_done(s);
}

/*
 * The request context a catch-up statement runs under: the stream's own
 * was let go when it started (it is the biggest thing a stream would keep),
 * so each read gets a short-lived one, authenticated as the job's tenant
 * (row-level security), already "answered" so that nothing is ever sent
 * for it. It holds s until the statement's answer has been handled.
 */
static gw_req *catch_up_request(sse_sub *s)
{
    gw_req *q = calloc(1, sizeof *q);
    if (!q) return NULL;
    q->thr = s->hub->thr;
    q->refs = 1;
    q->replied = true;
    q->authenticated = true;
    snprintf(q->who.tenant_id, sizeof q->who.tenant_id, "%s", s->t->tenant_id);
    q->started_ms = clock_mono_ms();
    sub_hold(s);
    q->state = s;
    q->state_free = sub_release_cb;
    return q;
}

static void read_table(sse_sub *s)
{
    char after[24];
    snprintf(after, sizeof after, "%lld", s->last_sent);
    const char *params[3] = { s->t->job_id, s->t->tenant_id, after };
    gw_req *q = catch_up_request(s);
    if (!q) { catch_up_failed(s, "out of memory"); return; }
    if (gw_query(q,
                 "SELECT body FROM job_events WHERE job_id = $1 AND tenant_id = $2 AND seq > $3 "
                 "ORDER BY seq LIMIT " PG_CATCHUP_PAGE,
                 3, params, on_table_page) != 0)
        catch_up_failed(s, "no database connection is ready");
    gw_req_release(q);
}

static void on_ring(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    sse_sub *s = privdata;
    redisReply *rep = reply;
    if (sub_live(s)) {
        bool need_table = true;
        if (rep && rep->type == REDIS_REPLY_ARRAY) {
            need_table = rep->elements == 0;
            for (size_t i = 0; i < rep->elements && !s->ended; i++) {
                redisReply *e = rep->element[i];
                if (e->type != REDIS_REPLY_STRING) continue;
                if (sub_offer_body(s->hub, s, e->str, e->len) < 0) { need_table = true; break; }
                need_table = false;
            }
        }
        if (!s->ended) {
            /* An empty ring may mean expired or lost: the table decides. */
            if (need_table) read_table(s);
            else catch_up_done(s);
        }
    }
    sub_release(s);
}

static void catch_up(sse_sub *s)
{
    if (s->fetching) { s->refetch = true; return; }
    s->fetching = true;
    s->refetch = false;
    if (s->finished) {
        /* PostgreSQL has every event of a finished job, and Redis may lack
         * the last ones (written while it was away): it cannot be trusted
         * to ever show the terminal event. */
        read_table(s);
        return;
    }
    char key[KEY_MAX];
    key_events(key, s->t->job_id);
    redis_argv cmd;
    redis_argv_of(&cmd, "LRANGE", key, "0", "-1", (const char *)NULL);
    sub_hold(s);
    if (rds_command(s->hub->thr->redis, on_ring, s, &cmd) != 0) {
        sub_release(s);
        read_table(s); /* Redis is down: PostgreSQL has every event */
    }
}

/* --- subscriber life ---------------------------------------------------- */

/* Runs once when the stream's socket closes, however it ended (client
 * gone, job finished, slow-subscriber abort, shutdown): the principal's
 * slot is given back here unless sub_end already did. */
static void on_stream_closed(void *arg)
{
    sse_sub *s = arg;
    s->st = NULL;
    if (!s->ended) sub_leave(s->hub, s);
    sub_release(s);
}

#define SSE_QUOTA_RETRY_AFTER "5"

/* Takes a stream slot of r's principal, or answers 429 and returns NULL. */
static sse_quota_slot *take_stream_slot(gw_req *r)
{
    int max = r->thr->srv->cfg.sse_max_per_principal;
    sse_quota_slot *slot = sse_quota_take(r->who.tenant_id, r->who.sub, max);
    if (slot) return slot;
    char detail[128];
    snprintf(detail, sizeof detail, "this principal already has %d event streams open", max);
    http_set_header(r, "Retry-After", SSE_QUOTA_RETRY_AFTER);
    http_reply_problem(r, 429, "too-many-streams", detail, NULL);
    return NULL;
}

void sse_subscribe(sse_hub *hub, gw_req *r, const char *job_id,
                   const char *tenant_id, long long after, bool finished)
{
    sse_quota_slot *slot = take_stream_slot(r);
    if (!slot) return;
    sse_sub *s = calloc(1, sizeof *s);
    topic *t = s ? topic_get(hub, job_id, tenant_id) : NULL;
    if (t) {
        s->hub = hub;
        s->refs = 1;   /* the stream's, dropped when its socket closes */
        s->st = http_stream_open(r, on_stream_closed, s);
        /* r is not to be used from here on when the stream opened. */
    }
    if (!t || !s->st) {
        free(s);
        sse_quota_give(slot);
        if (t) topic_free_if_empty(hub, t);
        http_reply_problem(r, 503, "unavailable", "cannot start the event stream", NULL);
        return;
    }
    s->slot = slot;
    s->last_sent = after;
    s->finished = finished;

    s->t = t;
    s->next = t->subs;
    if (t->subs) t->subs->prev = s;
    t->subs = s;
    t->nsubs++;
    hub->streams++;
    series_add(gw_metric.sse_open, 1);

    static const char hello[] = "retry: 1000\n\n";
    sub_write(s, hello, sizeof hello - 1);
    if (s->ended) return;
    /* Catch up now if the channel is live; else once SUBSCRIBE is confirmed,
     * so that nothing published in between can fall through. */
    if (t->subscribed || (!t->unsubscribing && !rds_pubsub_ready(hub->thr->redis)))
        catch_up(s);
}

/* --- pub/sub ----------------------------------------------------------- */

static topic *topic_of_channel(sse_hub *hub, const char *channel)
{
    static const char prefix[] = "jobs:notify:";
    if (strncmp(channel, prefix, sizeof prefix - 1) != 0) return NULL;
    return topic_find(hub, channel + sizeof prefix - 1);
}

void sse_on_message(const char *channel, const char *payload, size_t len, void *arg)
{
    sse_hub *hub = arg;
    topic *t = topic_of_channel(hub, channel);
    if (!t) return;
    long long seq;
    char type[EVENT_TYPE_MAX];
    if (event_peek(payload, len, &seq, type, sizeof type) != 0) {
        log_warn("ignoring a malformed event on %s", channel);
        return;
    }
    size_t flen;
    char *frame = sse_frame(seq, type, payload, len, &flen);
    if (!frame) return;
    t->dispatching++;
    for (sse_sub *s = t->subs, *next; s; s = next) {
        next = s->next;
        if (s->fetching) { s->refetch = true; continue; }
        if (sub_offer(hub, s, seq, type, frame, flen) < 0) catch_up(s);
    }
    t->dispatching--;
    free(frame);
    topic_free_if_empty(hub, t);
}

void sse_on_subscribed(const char *channel, void *arg)
{
    sse_hub *hub = arg;
    topic *t = topic_of_channel(hub, channel);
    if (!t || t->subscribed) return;
    t->subscribed = true;
    t->dispatching++;
    for (sse_sub *s = t->subs, *next; s; s = next) {
        next = s->next;
        catch_up(s);
    }
    t->dispatching--;
    topic_free_if_empty(hub, t);
}

void sse_on_unsubscribed(const char *channel, void *arg)
{
    sse_hub *hub = arg;
    topic *t = topic_of_channel(hub, channel);
    if (!t || !t->unsubscribing) return;
    t->unsubscribing = false;
    if (!t->subs) { topic_free(hub, t); return; }
    /* Subscribers joined while it was unsubscribing: subscribe again; they
     * catch up when that is confirmed. */
    if (rds_subscribe(hub->thr->redis, t->channel) != 0) {
        for (sse_sub *s = t->subs; s; s = s->next) catch_up(s);
    }
}

void sse_on_resubscribe(void *arg)
{
    sse_hub *hub = arg;
    /* Messages published while the link was down were missed: every topic
     * with subscribers subscribes again and they catch up once it is
     * confirmed; the others are gone with the old link. */
    for (int b = 0; b < HUB_BUCKETS; b++) {
        for (topic *t = hub->buckets[b], *next; t; t = next) {
            next = t->hnext;
            t->subscribed = false;
            t->unsubscribing = false;
            if (!t->subs && !t->dispatching) { topic_free(hub, t); continue; }
            rds_subscribe(hub->thr->redis, t->channel);
        }
    }
}

void sse_on_pubsub_lost(void *arg)
{
    sse_hub *hub = arg;
    if (hub->streams > 0)
        log_warn("redis pub/sub lost: ending %d event streams with a retry hint",
                 hub->streams);
    sse_hub_close_all(hub);
}

/* --- keepalive ------------------------------------------------------- */

static void on_keepalive(evutil_socket_t fd, short what, void *arg)
{
    (void)fd; (void)what;
    sse_hub *hub = arg;
    static const char ping[] = ": keepalive\n\n";
    long long now = clock_mono_ms();
    long long every = hub->thr->srv->cfg.sse_keepalive_ms;
    for (int b = 0; b < HUB_BUCKETS; b++) {
        for (topic *t = hub->buckets[b], *tnext; t; t = tnext) {
            tnext = t->hnext;
            t->dispatching++;
            for (sse_sub *s = t->subs, *next; s; s = next) {
                next = s->next;
                if (!s->ended && now - s->last_write_ms >= every) sub_write(s, ping, sizeof ping - 1);
            }
            t->dispatching--;
            topic_free_if_empty(hub, t);
        }
    }
}

sse_hub *sse_hub_new(gw_thread *thr)
{
    sse_hub *hub = calloc(1, sizeof *hub);
    if (!hub) return NULL;
    hub->thr = thr;
    hub->keepalive = event_new(thr->base, -1, EV_PERSIST, on_keepalive, hub);
    long long period = thr->srv->cfg.sse_keepalive_ms / 4;
    if (period < 50) period = 50;
    struct timeval tv = { period / 1000, (period % 1000) * 1000 };
    event_add(hub->keepalive, &tv);
    return hub;
}

void sse_hub_close_all(sse_hub *hub)
{
    static const char bye[] = "retry: 1000\n\n";
    for (int b = 0; b < HUB_BUCKETS; b++) {
        /* Ending the last subscriber of a topic frees the topic. */
        while (hub->buckets[b]) {
            topic *t = hub->buckets[b];
            if (!t->subs) { topic_free(hub, t); continue; }
            sse_sub *s = t->subs;
            sub_write(s, bye, sizeof bye - 1);
            if (!s->ended) sub_end(hub, s);
        }
    }
}

void sse_hub_free(sse_hub *hub)
{
    if (!hub) return;
    sse_hub_close_all(hub);
    event_free(hub->keepalive);
    free(hub);
}

int sse_hub_streams(const sse_hub *hub) { return hub->streams; }
