/*
 * ratelimit.c - token buckets in Redis (see ratelimit.h).
 *
 * The bucket is a hash {tokens, ts}: the tokens left (fractional, since
 * refill is continuous) at Redis time ts (ms). Everything happens inside
 * one script so the read-refill-take-write sequence is atomic; the C side
 * only builds the command and reads the three numbers back.
 */
#include "ratelimit.h"
#include "redis_script.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "strbuf.h"

/*
 * The script, in Redis's Lua 5.1. Written to be safe whatever the stored
 * state: a missing or unreadable bucket counts as full; a bucket holding
 * more than a (since lowered) capacity is cut down to it; a clock that
 * went back (failover to a replica with a slower clock) refills nothing
 * rather than going negative. Effects replication (the default since
 * Redis 5, the only mode in 7) is asked for explicitly so TIME may be
 * followed by writes on older servers too.
 */
const char ratelimit_lua[] =
    "if redis.replicate_commands then redis.replicate_commands() end\n"
    "local capacity = tonumber(ARGV[1])\n"
    "local period = tonumber(ARGV[2])\n"
    "local cost = tonumber(ARGV[3])\n"
    "if not capacity or not period or not cost or capacity < 1 or period < 1\n"
    "   or cost < 1 or cost > capacity then\n"
    "  return redis.error_reply('ERR ratelimit: bad arguments')\n"
    "end\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')\n"
    "local tokens = tonumber(state[1])\n"
    "local ts = tonumber(state[2])\n"
    "if tokens == nil or ts == nil or tokens < 0 then\n"
    "  tokens = capacity\n"
    "  ts = now\n"
    "end\n"
    "if tokens > capacity then tokens = capacity end\n"
    "if now > ts then\n"
    "  tokens = math.min(capacity, tokens + (now - ts) * capacity / period)\n"
    "  ts = now\n"
    "end\n"
    "local allowed = 0\n"
    "local retry = 0\n"
    "if tokens >= cost then\n"
    "  tokens = tokens - cost\n"
    "  allowed = 1\n"
    "else\n"
    "  retry = math.ceil((cost - tokens) * period / capacity)\n"
    "  if retry < 1 then retry = 1 end\n"
    "end\n"
    "redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens),\n"
    "           'ts', string.format('%.0f', ts))\n"
    "redis.call('PEXPIRE', KEYS[1],\n"
    "           string.format('%.0f', math.ceil((capacity - tokens) * period / capacity) + 1000))\n"
    "return {allowed, math.floor(tokens), retry}\n";

#define MAX_CAPACITY  1000000000LL
#define MAX_PERIOD_MS 10000000000LL

static redis_script bucket_script = REDIS_SCRIPT(ratelimit_lua);

/* ---- keys ---------------------------------------------------------------- */

static bool word_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '_' || c == '-';
}

/* s is 1..max bytes, each word_char (or ':' when colon). */
static bool valid_part(const char *s, size_t max, bool colon)
{
    size_t n = 0;

    if (!s)
        return false;
    for (; s[n]; n++)
        if (n >= max || !(word_char(s[n]) || (colon && s[n] == ':')))
            return false;
    return n > 0;
}

/* A JWT sub: printable ASCII without spaces, and no ':' so that a sub
 * cannot pose as "sub:action" of another key. */
static bool valid_sub(const char *s)
{
    size_t n = 0;

    if (!s)
        return false;
    for (; s[n]; n++)
        if (n >= 128 || s[n] <= ' ' || s[n] > '~' || s[n] == ':')
            return false;
    return n > 0;
}

static char *key_fail(char *out, size_t out_size)
{
    if (out && out_size)
        out[0] = '\0';
    return NULL;
}

char *ratelimit_key(char *out, size_t out_size, const char *tenant, const char *sub,
                    const char *action)
{
    int n;

    if (!out || !valid_part(tenant, 64, false) || !valid_part(action, 160, true) ||
        (sub && !valid_sub(sub)))
        return key_fail(out, out_size);
    if (sub)
        n = snprintf(out, out_size, "rate:%s:%s:%s", tenant, sub, action);
    else
        n = snprintf(out, out_size, "rate:%s:%s", tenant, action);
    if (n < 0 || (size_t)n >= out_size)
        return key_fail(out, out_size);
    return out;
}

char *ratelimit_key_tool(char *out, size_t out_size, const char *tenant, const char *name)
{
    char action[5 + 128 + 1];

    if (!valid_part(name, 128, false))
        return key_fail(out, out_size);
    snprintf(action, sizeof(action), "tool:%s", name);
    return ratelimit_key(out, out_size, tenant, NULL, action);
}

/* ---- the command and its answer ----------------------------------------- */

int ratelimit_cmd_build(ratelimit_cmd *cmd, bool eval, const char *key, long long capacity,
                        long long period_ms, long long cost)
{
    if (!cmd || !key || !*key || capacity < 1 || capacity > MAX_CAPACITY || period_ms < 1 ||
        period_ms > MAX_PERIOD_MS || cost < 1 || cost > capacity)
        return -1;
    snprintf(cmd->num[0], sizeof(cmd->num[0]), "%lld", capacity);
    snprintf(cmd->num[1], sizeof(cmd->num[1]), "%lld", period_ms);
    snprintf(cmd->num[2], sizeof(cmd->num[2]), "%lld", cost);
    redis_script_head(&bucket_script, eval, &cmd->argv[0], &cmd->argv[1]);
    cmd->argv[2] = "1";
    cmd->argv[3] = key;
    cmd->argv[4] = cmd->num[0];
    cmd->argv[5] = cmd->num[1];
    cmd->argv[6] = cmd->num[2];
    cmd->argc = 7;
    for (int i = 0; i < cmd->argc; i++)
        cmd->argvlen[i] = strlen(cmd->argv[i]);
    return 0;
}

int ratelimit_parse_reply(const struct redisReply *reply, ratelimit_result *out, char *err,
                          size_t err_size)
{
    if (!reply) {
        errbuf_printf(err, err_size, "no reply from Redis");
        return RATELIMIT_ERROR;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        const char *msg = reply->str ? reply->str : "";
        if (redis_script_missing(msg, strlen(msg)))
            return RATELIMIT_NOSCRIPT;
        errbuf_printf(err, err_size, "Redis error: %.200s", msg);
        return RATELIMIT_ERROR;
    }
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 3) {
        errbuf_printf(err, err_size, "rate limit script answered something other than "
                      "three numbers");
        return RATELIMIT_ERROR;
    }
    for (size_t i = 0; i < 3; i++)
        if (!reply->element[i] || reply->element[i]->type != REDIS_REPLY_INTEGER ||
            reply->element[i]->integer < 0) {
            errbuf_printf(err, err_size, "rate limit script answered a bad number");
            return RATELIMIT_ERROR;
        }
    long long allowed = reply->element[0]->integer;
    if (allowed > 1) {
        errbuf_printf(err, err_size, "rate limit script answered a bad decision");
        return RATELIMIT_ERROR;
    }
    if (out) {
        out->allowed = allowed == 1;
        out->remaining = reply->element[1]->integer;
        out->retry_after_ms = out->allowed ? 0 : reply->element[2]->integer;
    }
    return RATELIMIT_DECIDED;
}

/* Sends one form of the command; returns as ratelimit_parse_reply, with
 * an I/O failure reported as RATELIMIT_ERROR. */
static int take_once(redisContext *c, bool eval, const char *key, long long capacity,
                     long long period_ms, long long cost, ratelimit_result *out, char *err,
                     size_t err_size)
{
    ratelimit_cmd cmd;

    if (ratelimit_cmd_build(&cmd, eval, key, capacity, period_ms, cost) != 0) {
        errbuf_printf(err, err_size, "rate limit arguments out of range");
        return RATELIMIT_ERROR;
    }
    redisReply *r = redisCommandArgv(c, cmd.argc, cmd.argv, cmd.argvlen);
    if (!r) {
        errbuf_printf(err, err_size, "Redis I/O failed: %.200s",
                      c->errstr[0] ? c->errstr : "no reply");
        return RATELIMIT_ERROR;
    }
    int rc = ratelimit_parse_reply(r, out, err, err_size);
    freeReplyObject(r);
    return rc;
}

int ratelimit_take(struct redisContext *c, const char *key, long long capacity,
                   long long period_ms, long long cost, ratelimit_result *out, char *err,
                   size_t err_size)
{
    if (!c || c->err) {
        errbuf_printf(err, err_size, "Redis is not connected");
        return -1;
    }
    int rc = take_once(c, false, key, capacity, period_ms, cost, out, err, err_size);
    /* A restarted or flushed Redis has forgotten the script: EVAL sends
     * the text, which also caches it for the next EVALSHA. */
    if (rc == RATELIMIT_NOSCRIPT)
        rc = take_once(c, true, key, capacity, period_ms, cost, out, err, err_size);
    if (rc == RATELIMIT_NOSCRIPT) {
        errbuf_printf(err, err_size, "Redis answered NOSCRIPT to EVAL");
        return -1;
    }
    return rc == RATELIMIT_DECIDED ? 0 : -1;
}
