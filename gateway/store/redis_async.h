/*
 * redis_async.h - Redis on a gateway event loop through hiredis's async
 * API and its libevent adapter: one connection for commands and one for
 * pub/sub per loop thread, each reconnecting with backoff on its own.
 */
#ifndef AG_REDIS_ASYNC_H
#define AG_REDIS_ASYNC_H

#include <stdbool.h>
#include <stddef.h>
#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include "config.h"
#include "events.h"

typedef struct rds rds;

/* Called for every pub/sub message: channel and payload are valid only
 * during the call. */
typedef void (*rds_message_fn)(const char *channel, const char *payload,
                               size_t len, void *arg);

/* Called when a SUBSCRIBE to channel is confirmed by the server. */
typedef void (*rds_subscribed_fn)(const char *channel, void *arg);

/* Called when an UNSUBSCRIBE from channel is confirmed by the server. */
typedef void (*rds_unsubscribed_fn)(const char *channel, void *arg);

/* Called after the pub/sub connection was re-established (every channel
 * must be subscribed again, and anything published meanwhile was missed). */
typedef void (*rds_resubscribe_fn)(void *arg);

/* Called when the pub/sub connection is lost (not at shutdown): nothing
 * published reaches the subscribers until on_resubscribe. */
typedef void (*rds_lost_fn)(void *arg);

typedef struct rds_handlers {
    rds_message_fn on_message;
    rds_subscribed_fn on_subscribed;
    rds_unsubscribed_fn on_unsubscribed;
    rds_resubscribe_fn on_resubscribe;
    void *arg;
    rds_lost_fn on_pubsub_lost;     /* may be NULL */
} rds_handlers;

/* Starts connecting both connections on base, to the Redis cfg names
 * (borrowed: it must outlive the rds; address or Sentinel, credentials and
 * db, see common/redis_conn.h). Returns NULL on allocation failure only;
 * connection failures are retried in the background. */
rds *rds_new(struct event_base *base, const ag_config *cfg, const rds_handlers *handlers);

/* Disconnects and frees; pending command callbacks get a NULL reply. */
void rds_free(rds *r);

/* Sends one command. cb may be NULL (fire and forget; errors are logged).
 * Returns 0, or -1 when the command connection is down. */
int rds_command(rds *r, redisCallbackFn *cb, void *privdata, const redis_argv *cmd);

/* Sends one command of argc words (argv[i], argvlen[i] bytes; hiredis
 * copies them before returning), for commands longer than a redis_argv
 * holds. Returns as rds_command does. */
int rds_command_argv(rds *r, redisCallbackFn *cb, void *privdata, int argc,
                     const char **argv, const size_t *argvlen);

/* SUBSCRIBE / UNSUBSCRIBE on the pub/sub connection. Return 0 or -1 (down). */
int rds_subscribe(rds *r, const char *channel);
int rds_unsubscribe(rds *r, const char *channel);

/* True when the command connection (resp. pub/sub one) is up. */
bool rds_ready(const rds *r);
bool rds_pubsub_ready(const rds *r);


#endif
