/*
 * redis_async.c - Redis on a gateway event loop (see redis_async.h).
 *
 * hiredis frees an async context itself after its disconnect callback, so
 * each link only forgets its pointer there and arms a reconnect timer; the
 * backoff doubles up to a ceiling so an outage costs a few wake-ups a
 * second at most.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <hiredis/adapters/libevent.h>

#include "redis_async.h"
#include "log.h"

#define RDS_BACKOFF_MIN_MS 100
#define RDS_BACKOFF_MAX_MS 5000

typedef struct rds_link {
    rds *owner;
    bool pubsub;
    redisAsyncContext *ac;
    bool up;
    struct event *retry;
    int backoff_ms;
} rds_link;

struct rds {
    struct event_base *base;
    char host[256];
    int port;
    int db;
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

static void on_select_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac; (void)privdata;
    redisReply *rep = reply;
    if (rep && rep->type == REDIS_REPLY_ERROR) log_error("redis SELECT failed: %s", rep->str);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    rds_link *l = ac->data;
    if (status != REDIS_OK) {
        log_warn("redis connect failed: %s", ac->errstr);
        l->ac = NULL; /* hiredis frees the context after this callback */
        link_schedule_retry(l);
        return;
    }
    l->up = true;
    l->backoff_ms = RDS_BACKOFF_MIN_MS;
    log_debug("redis %s connection ready", l->pubsub ? "pub/sub" : "command");
    if (l->pubsub && l->owner->h.on_resubscribe) l->owner->h.on_resubscribe(l->owner->h.arg);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    rds_link *l = ac->data;
    if (status != REDIS_OK && !l->owner->closing)
        log_warn("redis %s connection lost: %s", l->pubsub ? "pub/sub" : "command", ac->errstr);
    l->ac = NULL;
    l->up = false;
    link_schedule_retry(l);
    if (l->pubsub && !l->owner->closing && l->owner->h.on_pubsub_lost)
        l->owner->h.on_pubsub_lost(l->owner->h.arg);
}

static void link_connect(rds_link *l)
{
    rds *r = l->owner;
    redisAsyncContext *ac = redisAsyncConnect(r->host, r->port);
    if (!ac || ac->err) {
        log_warn("redis connect failed: %s", ac ? ac->errstr : "out of memory");
        if (ac) redisAsyncFree(ac);
        link_schedule_retry(l);
        return;
    }
    ac->data = l;
    l->ac = ac;
    redisLibeventAttach(ac, r->base);
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    if (r->db != 0) {
        char db[16];
        snprintf(db, sizeof db, "%d", r->db);
        const char *argv[2] = { "SELECT", db };
        redisAsyncCommandArgv(ac, on_select_reply, NULL, 2, argv, NULL);
    }
}

static void link_init(rds *r, rds_link *l, bool pubsub)
{
    l->owner = r;
    l->pubsub = pubsub;
    l->backoff_ms = RDS_BACKOFF_MIN_MS;
    l->retry = evtimer_new(r->base, on_retry, l);
    link_connect(l);
}

rds *rds_new(struct event_base *base, const char *host, int port, int db,
             const rds_handlers *handlers)
{
    rds *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->base = base;
    snprintf(r->host, sizeof r->host, "%s", host);
    r->port = port;
    r->db = db;
    if (handlers) r->h = *handlers;
    link_init(r, &r->cmd, false);
    link_init(r, &r->sub, true);
    return r;
}

static void link_close(rds_link *l)
{
    evtimer_del(l->retry);
    event_free(l->retry);
    if (l->ac) redisAsyncDisconnect(l->ac);
}

void rds_free(rds *r)
{
    if (!r) return;
    r->closing = true;
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
    if (!r->cmd.up || !r->cmd.ac) return -1;
    return redisAsyncCommandArgv(r->cmd.ac, cb ? cb : on_ignored_reply, privdata,
                                 cmd->argc, (const char **)cmd->argv, cmd->argvlen) == REDIS_OK ? 0 : -1;
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

