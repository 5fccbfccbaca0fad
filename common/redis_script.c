/*
 * redis_script.c - running Lua scripts by SHA-1 with the fallback to their
 * text (see redis_script.h).
 *
 * The SHA-1 is computed once per script, under the script's own lock, and
 * published with a release store so later callers read it without taking
 * the lock. EVALSHA saves sending the script's text on every call; EVAL
 * after a NOSCRIPT also puts the script back in Redis's cache, so the next
 * call by SHA-1 finds it.
 */
#include <stdlib.h>
#include <string.h>
#include <hiredis/hiredis.h>
#include <mbedtls/sha1.h>
#include <mbedtls/version.h>

#include "redis_script.h"

#define SCRIPT_ARGS_MAX 16      /* words after the SHA-1 in one call */

static void compute_sha(redis_script *s)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char digest[20];
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
    mbedtls_sha1((const unsigned char *)s->text, strlen(s->text), digest);
#else
    mbedtls_sha1_ret((const unsigned char *)s->text, strlen(s->text), digest);
#endif
    for (int i = 0; i < 20; i++) {
        s->sha[2 * i] = hex[digest[i] >> 4];
        s->sha[2 * i + 1] = hex[digest[i] & 15];
    }
    s->sha[40] = '\0';
}

const char *redis_script_sha(redis_script *s)
{
    if (atomic_load_explicit(&s->ready, memory_order_acquire))
        return s->sha;
    pthread_mutex_lock(&s->lock);
    if (!atomic_load_explicit(&s->ready, memory_order_relaxed)) {
        compute_sha(s);
        atomic_store_explicit(&s->ready, true, memory_order_release);
    }
    pthread_mutex_unlock(&s->lock);
    return s->sha;
}

void redis_script_head(redis_script *s, bool by_text, const char **cmd, const char **arg)
{
    *cmd = by_text ? "EVAL" : "EVALSHA";
    *arg = by_text ? s->text : redis_script_sha(s);
}

bool redis_script_missing(const char *err, size_t len)
{
    return err != NULL && len >= 8 && memcmp(err, "NOSCRIPT", 8) == 0;
}

static redisReply *call_once(redisContext *c, redis_script *s, bool by_text, int argc,
                             const char **argv, const size_t *argvlen)
{
    const char *words[SCRIPT_ARGS_MAX + 2];
    size_t lens[SCRIPT_ARGS_MAX + 2];
    redis_script_head(s, by_text, &words[0], &words[1]);
    lens[0] = strlen(words[0]);
    lens[1] = strlen(words[1]);
    for (int i = 0; i < argc; i++) {
        words[i + 2] = argv[i];
        lens[i + 2] = argvlen ? argvlen[i] : strlen(argv[i]);
    }
    return redisCommandArgv(c, argc + 2, words, lens);
}

redisReply *redis_script_call(redisContext *c, redis_script *s, int argc, const char **argv,
                              const size_t *argvlen)
{
    if (argc < 0 || argc > SCRIPT_ARGS_MAX)
        return NULL;
    redisReply *r = call_once(c, s, false, argc, argv, argvlen);
    if (r != NULL && r->type == REDIS_REPLY_ERROR && redis_script_missing(r->str, r->len)) {
        freeReplyObject(r);
        r = call_once(c, s, true, argc, argv, argvlen);
    }
    return r;
}
