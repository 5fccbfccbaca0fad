/*
 * ratelimit.h - token-bucket rate limits kept in Redis, shared by every
 * worker (and later the gateway) so a limit holds across processes and
 * hosts.
 *
 * A bucket holds up to `capacity` tokens and refills continuously at
 * capacity tokens per `period_ms`; a call takes `cost` tokens or is
 * refused with the time until enough have come back. The whole decision
 * (refill, take, store, expire) is one Lua script run by Redis, so two
 * callers racing for the last token cannot both get it, and the clock is
 * Redis's own (TIME), so hosts with skewed clocks agree.
 *
 *   rate:{tenant}:{action}          one bucket per tenant and action
 *   rate:{tenant}:{sub}:{action}    one per user of a tenant
 *   rate:{tenant}:tool:{name}       a tool's bucket (action "tool:{name}")
 *
 * A bucket's key expires once it would be full again, so idle buckets
 * cost nothing.
 *
 * The blocking call (ratelimit_take) is for workers. An event-loop caller
 * builds the same command with ratelimit_cmd_build, sends it with
 * redisAsyncCommandArgv and reads the answer with ratelimit_parse_reply,
 * falling back from EVALSHA to EVAL when that says RATELIMIT_NOSCRIPT.
 */
#ifndef AG_RATELIMIT_H
#define AG_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>

struct redisContext;
struct redisReply;

#define RATELIMIT_KEY_MAX 384

/* The Lua text of the bucket script. KEYS[1] is the bucket; ARGV are
 * capacity, period_ms and cost (decimal integers). It answers
 * {allowed (1|0), remaining tokens (whole), retry_after_ms (0 if allowed)}. */
extern const char ratelimit_lua[];

typedef struct ratelimit_result {
    bool allowed;
    long long remaining;        /* whole tokens left after this call */
    long long retry_after_ms;   /* refused: ms until the call would pass; else 0 */
} ratelimit_result;

/*
 * Writes "rate:{tenant}:{action}", or "rate:{tenant}:{sub}:{action}" when
 * sub is not NULL, into out (out_size bytes). tenant must be 1..64 of
 * [A-Za-z0-9._-] (the tenants.id rule); sub 1..128 printable ASCII bytes
 * without spaces or ':'; action 1..160 of [A-Za-z0-9._:-]. Returns out, or
 * NULL (out holding "") when a part breaks its rule or the key does not
 * fit, so no outside string can reshape a key.
 */
char *ratelimit_key(char *out, size_t out_size, const char *tenant, const char *sub,
                    const char *action);

/* "rate:{tenant}:tool:{name}", name 1..128 of [A-Za-z0-9._-]; as ratelimit_key. */
char *ratelimit_key_tool(char *out, size_t out_size, const char *tenant, const char *name);

/* One EVALSHA or EVAL command over caller-owned storage, in the argv shape
 * redisCommandArgv and redisAsyncCommandArgv take. */
typedef struct ratelimit_cmd {
    int argc;
    const char *argv[7];
    size_t argvlen[7];
    char num[3][24];            /* storage for the numeric arguments */
} ratelimit_cmd;

/*
 * Fills cmd with EVAL (eval true: sends the script text, which also loads
 * it) or EVALSHA for one take from the bucket key. key is borrowed and must
 * outlive cmd's use. Requires 1 <= capacity <= 1e9, 1 <= period_ms <= 1e10
 * (about 115 days), 1 <= cost <= capacity. Returns 0, or -1 for arguments
 * out of range (cmd untouched).
 */
int ratelimit_cmd_build(ratelimit_cmd *cmd, bool eval, const char *key, long long capacity,
                        long long period_ms, long long cost);

enum {
    RATELIMIT_ERROR = -1,       /* an error reply or a malformed answer */
    RATELIMIT_DECIDED = 0,      /* *out holds the decision */
    RATELIMIT_NOSCRIPT = 1,     /* EVALSHA: Redis does not have the script; send EVAL */
};

/*
 * Reads the script's answer (reply may be NULL, meaning no answer) into
 * *out. Returns one of the values above; on RATELIMIT_ERROR err (err_size
 * bytes) gets a one-line reason.
 */
int ratelimit_parse_reply(const struct redisReply *reply, ratelimit_result *out, char *err,
                          size_t err_size);

/*
 * Takes cost tokens from the bucket key on the blocking connection c:
 * EVALSHA, then EVAL if Redis answers NOSCRIPT. Returns 0 with the
 * decision in *out, or -1 with a reason in err when c is NULL, the
 * arguments are out of range, or Redis fails (after an I/O failure c->err
 * is set and the connection is no longer usable). Deciding what to do
 * when there is no answer (fail open or closed) is the caller's.
 */
int ratelimit_take(struct redisContext *c, const char *key, long long capacity,
                   long long period_ms, long long cost, ratelimit_result *out, char *err,
                   size_t err_size);

#endif
