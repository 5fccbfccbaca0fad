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
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <hiredis/hiredis.h>

#include "sse.h"
#include "sse_frame.h"
#include "sse_quota.h"
#include "http.h"
#include "query.h"
#include "events.h"
#include "keys.h"
#include "clock.h"
#include "log.h"
#include "uuid.h"

#define HUB_BUCKETS 1024
#define PG_CATCHUP_PAGE "500"

typedef struct topic topic;

typedef struct sse_sub {
    gw_req *r;
    topic *t;              /* NULL once the subscriber has left */
    long long last_sent;
    bool fetching;         /* a catch-up read is in flight */
    bool refetch;          /* something arrived meanwhile: read again after */
    bool ended;
    bool finished;         /* the job had ended in PostgreSQL: replay from there */
    long long last_write_ms;
    bool quota_held;       /* holds a slot of its principal (sse_quota) */
    char tenant_id[65];    /* the principal whose slot it holds */
    char sub[128];
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
    atomic_fetch_sub_explicit(&hub->thr->srv->sse_streams_open, 1, memory_order_relaxed);
    topic_free_if_empty(hub, t);
}

/* --- writing ------------------------------------------------------------ */

static void sub_write(sse_sub *s, const char *frame, size_t len)
{
    size_t queued = http_stream_write(s->r, frame, len);
    s->last_write_ms = clock_mono_ms();
    if (queued > s->r->thr->srv->cfg.sse_max_buffer_bytes) {
        /* Too slow to keep up: drop it rather than grow without bound.
         * The client resumes from its Last-Event-ID. */
        log_info("closing SSE subscriber of job %s: %zu bytes unsent", s->t ? s->t->job_id : "?", queued);
        s->ended = true;
        http_abort(s->r); /* runs on_close, which unlinks s */
    }
}

/* Gives the principal's stream slot back, once. A stream ended by us is
 * done even while its client keeps the connection open, so the slot goes
 * back when the stream ends, not only when the request is freed. */
static void release_slot(sse_sub *s)
{
    if (!s->quota_held) return;
    s->quota_held = false;
    sse_quota_release(s->tenant_id, s->sub);
}

static void sub_end(sse_hub *hub, sse_sub *s)
{
    if (s->ended) return;
    s->ended = true;
    topic_unlink(hub, s);
    release_slot(s);
    http_end_event_stream(s->r);
}

/*
 * Sends body if it is the next id s expects. Returns 1 when sent, 0 when
 * already sent (or s is gone), -1 when it is ahead (a gap to fill first).
 */
static int sub_offer(sse_hub *hub, sse_sub *s, long long seq, const char *type,
                     const char *frame, size_t frame_len)
{
    if (s->ended || !s->t) return 0;
    if (seq <= s->last_sent) return 0;
    if (seq > s->last_sent + 1) return -1;
    sub_write(s, frame, frame_len);
    if (s->ended) return 0;
    s->last_sent = seq;
    atomic_fetch_add_explicit(&hub->thr->srv->sse_events_sent, 1, memory_order_relaxed);
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
    if (seq <= s->last_sent) return 0;
    if (seq > s->last_sent + 1) return -1;
    size_t flen;
    char *frame = sse_frame(seq, type, body, len, &flen);
    if (!frame) return 0;
    int rc = sub_offer(hub, s, seq, type, frame, flen);
    free(frame);
    return rc;
}

/* --- catching up ------------------------------------------------------- */

static sse_hub *hub_of(sse_sub *s) { return s->r->thr->hub; }

/* A catch-up read ended: go live, or read again if something came meanwhile. */
static void catch_up_done(sse_sub *s)
{
    s->fetching = false;
    if (s->refetch && !s->ended && s->t) {
        s->refetch = false;
        catch_up(s);
    }
}

#define CATCH_UP_RETRY_MS 1000

static void on_catch_up_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd; (void)what;
    gw_req *r = arg;
    sse_sub *s = r->state;
    if (gw_req_alive(r) && s->t && !s->ended) catch_up(s);
    gw_req_release(r);
}

/* A catch-up read could not be made: try again shortly rather than wait
 * for a live event, which never comes if the job has already finished. */
static void catch_up_failed(sse_sub *s, const char *why)
{
    log_warn("SSE catch-up from PostgreSQL failed: %s; retrying", why);
    s->fetching = false;
    struct timeval tv = { CATCH_UP_RETRY_MS / 1000, (CATCH_UP_RETRY_MS % 1000) * 1000 };
    gw_req_hold(s->r);
    if (event_base_once(s->r->thr->base, -1, EV_TIMEOUT, on_catch_up_retry, s->r, &tv) != 0)
        gw_req_release(s->r);
}

static void on_table_page(gw_req *r, PGresult *res, const char *err, const char *sqlstate)
{
    (void)sqlstate;
    sse_sub *s = r->state;
    if (!gw_req_alive(r) || !s->t || s->ended) return;
    if (!res) { catch_up_failed(s, err); return; }
    int rows = PQntuples(res);
    sse_hub *hub = hub_of(s);
    for (int i = 0; i < rows && !s->ended; i++) {
        if (sub_offer_body(hub, s, PQgetvalue(res, i, 0), (size_t)PQgetlength(res, i, 0)) < 0) {
            log_warn("gap in job_events of job %s after id %lld", s->t->job_id, s->last_sent);
            break;
        }
    }
    if (s->ended) return;
    if (rows > 0) { s->fetching = false; catch_up(s); return; }
    catch_up_done(s);
}

static void read_table(sse_sub *s)
{
    char after[24];
    snprintf(after, sizeof after, "%lld", s->last_sent);
    const char *params[3] = { s->t->job_id, s->t->tenant_id, after };
    /* On a started stream gw_query's own 503 answer is moot: retry instead. */
    if (gw_query(s->r,
                 "SELECT body FROM job_events WHERE job_id = $1 AND tenant_id = $2 AND seq > $3 "
                 "ORDER BY seq LIMIT " PG_CATCHUP_PAGE,
                 3, params, on_table_page) != 0)
        catch_up_failed(s, "no database connection is ready");
}

static void on_ring(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    gw_req *r = privdata;
    sse_sub *s = r->state;
    redisReply *rep = reply;
    if (gw_req_alive(r) && s->t && !s->ended) {
        sse_hub *hub = hub_of(s);
        bool need_table = true;
        if (rep && rep->type == REDIS_REPLY_ARRAY) {
            need_table = rep->elements == 0;
            for (size_t i = 0; i < rep->elements && !s->ended; i++) {
                redisReply *e = rep->element[i];
                if (e->type != REDIS_REPLY_STRING) continue;
                if (sub_offer_body(hub, s, e->str, e->len) < 0) { need_table = true; break; }
                need_table = false;
            }
        }
        if (!s->ended) {
            /* An empty ring may mean expired or lost: the table decides. */
            if (need_table) read_table(s);
            else catch_up_done(s);
        }
    }
    gw_req_release(r);
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
    gw_req_hold(s->r);
    if (rds_command(s->r->thr->redis, on_ring, s->r, &cmd) != 0) {
        gw_req_release(s->r);
        read_table(s); /* Redis is down: PostgreSQL has every event */
    }
}

/* --- subscriber life ---------------------------------------------------- */

/* Runs once when the stream's request is freed, however it ended (client
 * gone, job finished, slow-subscriber abort, shutdown): the principal's
 * slot is given back here unless sub_end already did. */
static void on_stream_closed(gw_req *r)
{
    sse_sub *s = r->state;
    s->ended = true;
    topic_unlink(r->thr->hub, s);
    release_slot(s);
}

#define SSE_QUOTA_RETRY_AFTER "5"

/* Takes a stream slot of r's principal, or answers 429 and returns -1. */
static int take_stream_slot(gw_req *r)
{
    int max = r->thr->srv->cfg.sse_max_per_principal;
    if (sse_quota_acquire(r->who.tenant_id, r->who.sub, max)) return 0;
    char detail[128];
    snprintf(detail, sizeof detail, "this principal already has %d event streams open", max);
    http_set_header(r, "Retry-After", SSE_QUOTA_RETRY_AFTER);
    http_reply_problem(r, 429, "too-many-streams", detail, NULL);
    return -1;
}

void sse_subscribe(sse_hub *hub, gw_req *r, const char *job_id,
                   const char *tenant_id, long long after, bool finished)
{
    if (take_stream_slot(r) != 0) return;
    sse_sub *s = calloc(1, sizeof *s);
    topic *t = s ? topic_get(hub, job_id, tenant_id) : NULL;
    if (!t) {
        free(s);
        sse_quota_release(r->who.tenant_id, r->who.sub);
        http_reply_problem(r, 503, "unavailable", "out of memory", NULL);
        return;
    }
    s->quota_held = true;
    snprintf(s->tenant_id, sizeof s->tenant_id, "%s", r->who.tenant_id);
    snprintf(s->sub, sizeof s->sub, "%s", r->who.sub);
    s->r = r;
    s->last_sent = after;
    s->finished = finished;
    r->state = s;
    r->state_free = free;
    r->on_close = on_stream_closed;

    s->t = t;
    s->next = t->subs;
    if (t->subs) t->subs->prev = s;
    t->subs = s;
    t->nsubs++;
    hub->streams++;
    atomic_fetch_add_explicit(&hub->thr->srv->sse_streams_open, 1, memory_order_relaxed);

    http_start_event_stream(r);
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
            http_stream_write(s->r, bye, sizeof bye - 1);
            sub_end(hub, s);
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
