/*
 * redis_async.c - Redis on a gateway event loop (see redis_async.h).
 *
 * hiredis frees an async context itself after its disconnect callback, so
 * each link only forgets its pointer there and arms a reconnect timer; the
 * backoff doubles up to a ceiling so an outage costs a few wake-ups a
 * second at most.
 *
 * Every connect starts from the master's address: the URL's, or, with
 * Sentinel, asked of the sentinels in turn over a short-lived async
 * connection (never blocking the loop). The new connection is up only
 * once its handshake (common/redis_conn.h: AUTH, SELECT, ROLE or PING)
 * was answered well; a refusal closes it and the reconnect asks again, so
 * a failover is followed by the next connect. A master demoted while
 * still up keeps its clients for a while: a timer closes connections made
 * before the latest +switch-master the process heard of.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <hiredis/adapters/libevent.h>

#include "redis_async.h"
#include "log.h"
#include "redis_conn.h"

#define RDS_BACKOFF_MIN_MS 100
#define RDS_BACKOFF_MAX_MS 5000
#define EPOCH_TICK_MS 200
/* A sentinel's answer, or a new connection's handshake, must come within
 * this; hiredis's async connect has no timeout of its own, and a host that
 * vanished without a reset would hold the link forever. */
#define RDS_CONNECT_TIMEOUT_MS 3000

typedef struct rds_link {
    rds *owner;
    bool pubsub;
    redisAsyncContext *ac;
    bool up;
    struct event *retry;
    struct event *deadline;        /* RDS_CONNECT_TIMEOUT_MS for the step in progress */
    int backoff_ms;
    redis_argv hs[REDIS_HANDSHAKE_MAX]; /* the handshake, judged reply by reply */
    int hs_count;
    redisAsyncContext *sentinel;   /* the question to a sentinel in flight, or NULL */
    redis_argv sq[2];              /* its commands */
    int sq_count;
    int sentinel_next;             /* the index of the sentinel to ask next */
    char why[600];                 /* the last sentinel's reason, for the log */
    unsigned long epoch;           /* redis_master_epoch() when this connect began */
} rds_link;

struct rds {
    struct event_base *base;
    const ag_config *cfg;
    struct event *epoch_tick;      /* with Sentinel: looks for a master switch */
    rds_handlers h;
    rds_link cmd;
    rds_link sub;
    bool closing;
};

static void link_connect(rds_link *l);

static void link_schedule_retry(rds_link *l)
{
    if (l->owner->closing) return;
    struct timeval tv = { l->backoff_ms / 1000, (l->backoff_ms % 1000) * 1000 };
    evtimer_add(l->retry, &tv);
    l->backoff_ms *= 2;
    if (l->backoff_ms > RDS_BACKOFF_MAX_MS) l->backoff_ms = RDS_BACKOFF_MAX_MS;
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd; (void)what;
    link_connect(arg);
}

static void arm_deadline(rds_link *l)
{
    struct timeval tv = { RDS_CONNECT_TIMEOUT_MS / 1000, (RDS_CONNECT_TIMEOUT_MS % 1000) * 1000 };
    evtimer_add(l->deadline, &tv);
}

/* Gives up on the link's connection at once, whatever it waits for (a
 * reply from a host that is gone never comes): pending callbacks get a
 * NULL reply, and the link reconnects after the backoff. */
static void link_abandon(rds_link *l)
{
    redisAsyncContext *ac = l->ac;
    bool was_up = l->up;
    l->ac = NULL;       /* on_disconnect, if hiredis calls it, sees it abandoned */
    l->up = false;
    evtimer_del(l->deadline);
    redisAsyncFree(ac);
    link_schedule_retry(l);
    if (l->pubsub && was_up && !l->owner->closing && l->owner->h.on_pubsub_lost)
        l->owner->h.on_pubsub_lost(l->owner->h.arg);
}

static void on_pubsub_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    rds *r = privdata;
    redisReply *rep = reply;
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements < 3) return;
    redisReply *kind = rep->element[0], *chan = rep->element[1], *data = rep->element[2];
    if (kind->type != REDIS_REPLY_STRING || chan->type != REDIS_REPLY_STRING) return;
    if (strcmp(kind->str, "message") == 0 && data->type == REDIS_REPLY_STRING) {
        if (r->h.on_message) r->h.on_message(chan->str, data->str, data->len, r->h.arg);
    } else if (strcmp(kind->str, "subscribe") == 0) {
        if (r->h.on_subscribed) r->h.on_subscribed(chan->str, r->h.arg);
    } else if (strcmp(kind->str, "unsubscribe") == 0) {
        if (r->h.on_unsubscribed) r->h.on_unsubscribed(chan->str, r->h.arg);
    }
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    rds_link *l = ac->data;
    if (status != REDIS_OK) {
        log_warn("redis connect to %s:%d failed: %s", ac->c.tcp.host ? ac->c.tcp.host : "?",
                 ac->c.tcp.port, ac->errstr);
        l->ac = NULL; /* hiredis frees the context after this callback */
        evtimer_del(l->deadline);
        link_schedule_retry(l);
    }
    /* Up only once the handshake is answered (on_handshake_reply). */
}

static void on_handshake_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    rds_link *l = ac->data;
    const redis_argv *cmd = privdata;
    if (ac != l->ac || reply == NULL)
        return;     /* a context given up on, or lost: on_disconnect retries */
    char why[300];
    if (!redis_handshake_ok(cmd, reply, why, sizeof why)) {
        log_warn("redis %s connection to %s:%d: %s; reconnecting",
                 l->pubsub ? "pub/sub" : "command", ac->c.tcp.host, ac->c.tcp.port, why);
        redisAsyncDisconnect(ac);
        return;
    }
    if (cmd != &l->hs[l->hs_count - 1])
        return;
    if (l->epoch != redis_master_epoch()) {
        log_info("redis %s connection: Sentinel switched the master meanwhile; reconnecting",
                 l->pubsub ? "pub/sub" : "command");
        redisAsyncDisconnect(ac);
        return;
    }
    evtimer_del(l->deadline);
    l->up = true;
    l->backoff_ms = RDS_BACKOFF_MIN_MS;
    if (redis_uses_sentinel(l->owner->cfg))
        log_info("redis %s connection ready at master %s:%d", l->pubsub ? "pub/sub" : "command",
                 ac->c.tcp.host, ac->c.tcp.port);
    else
        log_debug("redis %s connection ready", l->pubsub ? "pub/sub" : "command");
    if (l->pubsub && l->owner->h.on_resubscribe) l->owner->h.on_resubscribe(l->owner->h.arg);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    rds_link *l = ac->data;
    if (ac != l->ac)
        return;     /* abandoned (link_abandon) */
    evtimer_del(l->deadline);
    if (status != REDIS_OK && !l->owner->closing)
        log_warn("redis %s connection lost: %s", l->pubsub ? "pub/sub" : "command", ac->errstr);
    bool was_up = l->up;
    l->ac = NULL;
    l->up = false;
    link_schedule_retry(l);
    /* A connection closed during its handshake never carried messages. */
    if (l->pubsub && was_up && !l->owner->closing && l->owner->h.on_pubsub_lost)
        l->owner->h.on_pubsub_lost(l->owner->h.arg);
}

/* Connects to the data Redis at host:port and sends the handshake. */
static void master_connect(rds_link *l, const char *host, int port)
{
    rds *r = l->owner;
    redisAsyncContext *ac = redisAsyncConnect(host, port);
    if (!ac || ac->err) {
        log_warn("redis connect to %s:%d failed: %s", host, port,
                 ac ? ac->errstr : "out of memory");
        if (ac) redisAsyncFree(ac);
        link_schedule_retry(l);
        return;
    }
    ac->data = l;
    l->ac = ac;
    arm_deadline(l);
    redisLibeventAttach(ac, r->base);
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    l->hs_count = redis_handshake_commands(r->cfg, l->hs);
    for (int i = 0; i < l->hs_count; i++)
        redisAsyncCommandArgv(ac, on_handshake_reply, &l->hs[i], l->hs[i].argc,
                              l->hs[i].argv, l->hs[i].argvlen);
}

static void sentinel_ask(rds_link *l);

/* Leaves the sentinel connection (its late replies are ignored). */
static void sentinel_drop(rds_link *l, redisAsyncContext *ac)
{
    l->sentinel = NULL;
    redisAsyncDisconnect(ac);
}

/* A sentinel's reply: AUTH's (when its password is set), then the
 * master's address. NULL: the connection failed or was lost. */
static void on_sentinel_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    rds_link *l = ac->data;
    const redis_argv *cmd = privdata;
    if (ac != l->sentinel || l->owner->closing)
        return;
    bool last = cmd == &l->sq[l->sq_count - 1];
    if (reply == NULL) {
        snprintf(l->why, sizeof l->why, "%s:%d: %s", ac->c.tcp.host, ac->c.tcp.port,
                 ac->errstr[0] ? ac->errstr : "connection lost");
        l->sentinel = NULL;     /* hiredis frees it */
        sentinel_ask(l);
        return;
    }
    char why[300];
    redis_addr master;
    if (!last && redis_handshake_ok(cmd, reply, why, sizeof why))
        return;
    if (last && redis_sentinel_reply(reply, &master, why, sizeof why) == 0) {
        sentinel_drop(l, ac);
        master_connect(l, master.host, master.port);
        return;
    }
    snprintf(l->why, sizeof l->why, "%s:%d: %s", ac->c.tcp.host, ac->c.tcp.port, why);
    sentinel_drop(l, ac);
    sentinel_ask(l);
}

/* Asks the next sentinel for the master's address; after the last one,
 * waits for the retry timer to start over. */
static void sentinel_ask(rds_link *l)
{
    rds *r = l->owner;
    redis_addr sentinels[CONFIG_REDIS_SENTINELS_MAX];
    int count = redis_sentinel_addrs(r->cfg, sentinels);
    while (l->sentinel_next < count) {
        const redis_addr *s = &sentinels[l->sentinel_next++];
        redisAsyncContext *ac = redisAsyncConnect(s->host, s->port);
        if (!ac || ac->err) {
            snprintf(l->why, sizeof l->why, "%s:%d: %s", s->host, s->port,
                     ac ? ac->errstr : "out of memory");
            if (ac) redisAsyncFree(ac);
            continue;
        }
        ac->data = l;
        l->sentinel = ac;
        arm_deadline(l);
        redisLibeventAttach(ac, r->base);
        l->sq_count = redis_sentinel_commands(r->cfg, l->sq);
        for (int i = 0; i < l->sq_count; i++)
            redisAsyncCommandArgv(ac, on_sentinel_reply, &l->sq[i], l->sq[i].argc,
                                  l->sq[i].argv, l->sq[i].argvlen);
        return;
    }
    evtimer_del(l->deadline);
    log_warn("redis: no sentinel named master %s (last: %s); retrying",
             r->cfg->redis_sentinel_master, l->why);
    link_schedule_retry(l);
}

static void link_connect(rds_link *l)
{
    rds *r = l->owner;
    if (r->closing)
        return;
    l->epoch = redis_master_epoch();
    if (redis_uses_sentinel(r->cfg)) {
        l->sentinel_next = 0;
        sentinel_ask(l);
    } else {
        master_connect(l, r->cfg->redis_host, r->cfg->redis_port);
    }
}

/* Every EPOCH_TICK_MS with Sentinel: a connection made before the
 * master's latest switch (common/redis_conn.h follows +switch-master) may
 * reach a demoted master that still answers; it is closed, and the
 * reconnect asks the sentinels. */
static void on_epoch_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd; (void)what;
    rds *r = arg;
    unsigned long now = redis_master_epoch();
    rds_link *links[2] = { &r->cmd, &r->sub };
    for (int i = 0; i < 2; i++) {
        rds_link *l = links[i];
        if (l->up && l->ac && l->epoch != now) {
            log_info("redis %s connection: Sentinel switched the master; reconnecting",
                     l->pubsub ? "pub/sub" : "command");
            /* Not a polite disconnect: the old master may be gone, and its
             * replies with it. */
            link_abandon(l);
        }
    }
}

/* The step in progress took too long: the sentinel asked is skipped, or
 * the new connection given up on. */
static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd; (void)what;
    rds_link *l = arg;
    if (l->sentinel) {
        redisAsyncContext *ac = l->sentinel;
        snprintf(l->why, sizeof l->why, "%s:%d: no answer within %d ms", ac->c.tcp.host,
                 ac->c.tcp.port, RDS_CONNECT_TIMEOUT_MS);
        l->sentinel = NULL;
        redisAsyncFree(ac);
        sentinel_ask(l);
    } else if (l->ac && !l->up) {
        log_warn("redis %s connection to %s:%d: no answer within %d ms; reconnecting",
                 l->pubsub ? "pub/sub" : "command", l->ac->c.tcp.host, l->ac->c.tcp.port,
                 RDS_CONNECT_TIMEOUT_MS);
        link_abandon(l);
    }
}

static void link_init(rds *r, rds_link *l, bool pubsub)
{
    l->owner = r;
    l->pubsub = pubsub;
    l->backoff_ms = RDS_BACKOFF_MIN_MS;
    l->retry = evtimer_new(r->base, on_retry, l);
    l->deadline = evtimer_new(r->base, on_deadline, l);
    link_connect(l);
}

rds *rds_new(struct event_base *base, const ag_config *cfg, const rds_handlers *handlers)
{
    rds *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->base = base;
    r->cfg = cfg;
    if (handlers) r->h = *handlers;
    if (redis_uses_sentinel(cfg)) {
        redis_sentinel_watch(cfg);
        r->epoch_tick = event_new(base, -1, EV_PERSIST, on_epoch_tick, r);
        if (!r->epoch_tick) { free(r); return NULL; }
        struct timeval tv = { 0, EPOCH_TICK_MS * 1000 };
        evtimer_add(r->epoch_tick, &tv);
    }
    link_init(r, &r->cmd, false);
    link_init(r, &r->sub, true);
    return r;
}

static void link_close(rds_link *l)
{
    evtimer_del(l->retry);
    event_free(l->retry);
    evtimer_del(l->deadline);
    if (l->sentinel) {
        redisAsyncContext *ac = l->sentinel;
        l->sentinel = NULL;
        redisAsyncFree(ac);
    }
    if (l->ac) redisAsyncDisconnect(l->ac);   /* on_disconnect may use the deadline */
    event_free(l->deadline);
}

void rds_free(rds *r)
{
    if (!r) return;
    r->closing = true;
    if (r->epoch_tick) event_free(r->epoch_tick);
    link_close(&r->cmd);
    link_close(&r->sub);
    free(r);
}

static void on_ignored_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac; (void)privdata;
    redisReply *rep = reply;
    if (rep && rep->type == REDIS_REPLY_ERROR) log_warn("redis command failed: %s", rep->str);
}

int rds_command(rds *r, redisCallbackFn *cb, void *privdata, const redis_argv *cmd)
{
    return rds_command_argv(r, cb, privdata, cmd->argc, (const char **)cmd->argv, cmd->argvlen);
}

int rds_command_argv(rds *r, redisCallbackFn *cb, void *privdata, int argc,
                     const char **argv, const size_t *argvlen)
{
    if (!r->cmd.up || !r->cmd.ac) return -1;
    return redisAsyncCommandArgv(r->cmd.ac, cb ? cb : on_ignored_reply, privdata,
                                 argc, argv, argvlen) == REDIS_OK ? 0 : -1;
}

static int pubsub_send(rds *r, const char *verb, const char *channel)
{
    if (!r->sub.up || !r->sub.ac) return -1;
    const char *argv[2] = { verb, channel };
    return redisAsyncCommandArgv(r->sub.ac, on_pubsub_reply, r, 2, argv, NULL) == REDIS_OK ? 0 : -1;
}

int rds_subscribe(rds *r, const char *channel)   { return pubsub_send(r, "SUBSCRIBE", channel); }
int rds_unsubscribe(rds *r, const char *channel) { return pubsub_send(r, "UNSUBSCRIBE", channel); }

bool rds_ready(const rds *r)        { return r->cmd.up; }
bool rds_pubsub_ready(const rds *r) { return r->sub.up; }

