/*
 * redis_script.h - a Lua script that Redis runs by its SHA-1 (EVALSHA),
 * sent as text (EVAL) only when Redis answers NOSCRIPT: after a restart,
 * a failover or SCRIPT FLUSH. One helper for every script agentgate runs
 * (the event append, the rate-limit bucket, the circuit breaker).
 */
#ifndef AG_REDIS_SCRIPT_H
#define AG_REDIS_SCRIPT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

struct redisContext;
struct redisReply;

typedef struct redis_script {
    const char *text;           /* the Lua source, static */
    char sha[41];               /* its SHA-1 in hex, filled once */
    atomic_bool ready;
    pthread_mutex_t lock;
} redis_script;

/* Defines a script: static redis_script s = REDIS_SCRIPT("...lua..."); */
#define REDIS_SCRIPT(lua) { .text = (lua), .ready = false, .lock = PTHREAD_MUTEX_INITIALIZER }

/* The script's SHA-1 as 40 hex digits, computed on first use (thread safe).
 * The string lives as long as s. */
const char *redis_script_sha(redis_script *s);

/* The first two words of the command that runs s: "EVALSHA" and the
 * SHA-1, or with by_text "EVAL" and the source. Both strings live as long
 * as s. */
void redis_script_head(redis_script *s, bool by_text, const char **cmd, const char **arg);

/* True when an error reply (err, len bytes) says Redis does not have the
 * script cached: the same call must go again by text. */
bool redis_script_missing(const char *err, size_t len);

/*
 * Runs s on a blocking connection: EVALSHA, then EVAL when Redis answers
 * NOSCRIPT. argv/argvlen hold argc words that follow the SHA-1 (the key
 * count, the keys, the arguments). Returns the reply (caller frees with
 * freeReplyObject; it may be an error reply), or NULL on an I/O error
 * (c->errstr says which).
 */
struct redisReply *redis_script_call(struct redisContext *c, redis_script *s, int argc,
                                     const char **argv, const size_t *argvlen);

#endif
