/*
 * jobq.c - the queue scripts and their arguments (see jobq.h).
 *
 * Every key a script touches is passed in KEYS, built by keys.c from a
 * checked tenant id and a registered type: no script ever builds a key
 * from a value it read. That is why a worker's next job takes two calls,
 * take (which tenant) and pop (that tenant's list, now a known key),
 * unless the take was told which tenant to expect (the one the thread
 * served last: at one tenant, always right) and may pop its list itself.
 */
#include <stdio.h>
#include <string.h>

#include "jobq.h"
#include "redis_script.h"

/* KEYS[1] the tenant's list, KEYS[2] the ring, KEYS[3] the active set,
 * KEYS[4] (promotion only) the delayed set; ARGV[1] the id, ARGV[2] the
 * tenant, ARGV[3] 'front' or 'back', ARGV[4] the delayed member. */
const char jobq_enqueue_lua[] =
    "if KEYS[4] and redis.call('ZREM',KEYS[4],ARGV[4])==0 then return -1 end\n"
    "if ARGV[3]=='front' then\n"
    "redis.call('RPUSH',KEYS[1],ARGV[1])\n"
    "else\n"
    "redis.call('LPUSH',KEYS[1],ARGV[1])\n"
    "end\n"
    "if redis.call('SADD',KEYS[3],ARGV[2])==1 then\n"
    "redis.call('LPUSH',KEYS[2],ARGV[2])\n"
    "return 1\n"
    "end\n"
    "return 0\n";

/* KEYS[1..n] the rings, in the worker's order, then, with a hint, the
 * hinted tenant's list and its type's active set; ARGV[1] n, ARGV[2] the
 * hinted ring's index (from 1; '0' for none), ARGV[3] the hinted tenant.
 * LMOVE of a list onto itself rotates it: the tenant's turn is taken
 * without the tenant ever leaving the ring. When the turn is the hinted
 * tenant's, its job is popped here as the pop script pops a rotated turn
 * (the reply's third element, nil when its list was empty). */
const char jobq_take_lua[] =
    "local n=tonumber(ARGV[1])\n"
    "for i=1,n do\n"
    "local t=redis.call('LMOVE',KEYS[i],KEYS[i],'RIGHT','LEFT')\n"
    "if t then\n"
    "if tostring(i)==ARGV[2] and t==ARGV[3] then\n"
    "local id=redis.call('RPOP',KEYS[n+1])\n"
    "if redis.call('LLEN',KEYS[n+1])==0 then\n"
    "redis.call('LREM',KEYS[i],0,t)\n"
    "redis.call('SREM',KEYS[n+2],t)\n"
    "end\n"
    "return {i,t,id}\n"
    "end\n"
    "return {i,t}\n"
    "end\n"
    "end\n"
    "return false\n";

/* KEYS[1] the tenant's list, KEYS[2] the ring, KEYS[3] the active set;
 * ARGV[1] the tenant, ARGV[2] 'held' when the caller took the tenant off
 * the ring (BRPOP), else 'rotated'. A held tenant goes back at the ring's
 * far end while it has ids, unless a repair put it there meanwhile. A
 * tenant whose list is empty leaves the ring (every place it has) and the
 * active set. */
const char jobq_pop_lua[] =
    "local id=redis.call('RPOP',KEYS[1])\n"
    "if redis.call('LLEN',KEYS[1])>0 then\n"
    "if ARGV[2]=='held' and not redis.call('LPOS',KEYS[2],ARGV[1]) then\n"
    "redis.call('LPUSH',KEYS[2],ARGV[1])\n"
    "end\n"
    "else\n"
    "redis.call('LREM',KEYS[2],0,ARGV[1])\n"
    "redis.call('SREM',KEYS[3],ARGV[1])\n"
    "end\n"
    "return id\n";

/* KEYS[1] the tenant's list, KEYS[2] the ring, KEYS[3] the active set;
 * ARGV[1] the tenant. */
const char jobq_repair_lua[] =
    "if redis.call('LPOS',KEYS[2],ARGV[1]) then return 0 end\n"
    "if redis.call('LLEN',KEYS[1])==0 and redis.call('SISMEMBER',KEYS[3],ARGV[1])==0 then\n"
    "return 0\n"
    "end\n"
    "redis.call('SADD',KEYS[3],ARGV[1])\n"
    "redis.call('LPUSH',KEYS[2],ARGV[1])\n"
    "return 1\n";

static redis_script enqueue_script = REDIS_SCRIPT(jobq_enqueue_lua);
static redis_script take_script = REDIS_SCRIPT(jobq_take_lua);
static redis_script pop_script = REDIS_SCRIPT(jobq_pop_lua);
static redis_script repair_script = REDIS_SCRIPT(jobq_repair_lua);

int jobq_keys_of(jobq_keys *k, const char *type, const char *tenant)
{
    if (key_queue(k->list, type, tenant) == NULL)
        return -1;
    key_ready(k->ready, type);
    key_active(k->active, type);
    key_delayed(k->delayed, type);
    memcpy(k->tenant, tenant, strlen(tenant) + 1);
    return 0;
}

static void add(redis_argv *c, const char *s)
{
    c->argv[c->argc] = s;
    c->argvlen[c->argc] = strlen(s);
    c->argc++;
}

/* The head of a call: the command, the script, and the key count. */
static void head(redis_argv *c, redis_script *s, bool use_sha, const char *nkeys)
{
    const char *cmd, *arg;
    redis_script_head(s, !use_sha, &cmd, &arg);
    c->argc = 0;
    add(c, cmd);
    add(c, arg);
    add(c, nkeys);
}

void jobq_enqueue_command(redis_argv *cmd, bool use_sha, const jobq_keys *k,
                          const char *id, jobq_end end, const char *member)
{
    head(cmd, &enqueue_script, use_sha, member ? "4" : "3");
    add(cmd, k->list);
    add(cmd, k->ready);
    add(cmd, k->active);
    if (member)
        add(cmd, k->delayed);
    add(cmd, id);
    add(cmd, k->tenant);
    add(cmd, end == JOBQ_FRONT ? "front" : "back");
    if (member)
        add(cmd, member);
}

int jobq_take_argv(const char **argv, size_t *argvlen, jobq_take_bufs *bufs, bool use_sha,
                   const char (*rings)[KEY_MAX], size_t n, const jobq_keys *hint,
                   int hint_ring)
{
    if (n == 0 || n > JOBQ_TAKE_RINGS_MAX)
        return -1;
    bool hinted = hint != NULL && hint_ring >= 0 && (size_t)hint_ring < n;
    int argc = 0;
    redis_script_head(&take_script, !use_sha, &argv[0], &argv[1]);
    snprintf(bufs->nkeys, sizeof bufs->nkeys, "%zu", n + (hinted ? 2 : 0));
    snprintf(bufs->n, sizeof bufs->n, "%zu", n);
    snprintf(bufs->ring, sizeof bufs->ring, "%d", hinted ? hint_ring + 1 : 0);
    argv[2] = bufs->nkeys;
    argc = 3;
    for (size_t i = 0; i < n; i++)
        argv[argc++] = rings[i];
    if (hinted) {
        argv[argc++] = hint->list;
        argv[argc++] = hint->active;
    }
    argv[argc++] = bufs->n;
    argv[argc++] = bufs->ring;
    argv[argc++] = hinted ? hint->tenant : "";
    for (int i = 0; i < argc; i++)
        argvlen[i] = strlen(argv[i]);
    return argc;
}

void jobq_pop_command(redis_argv *cmd, bool use_sha, const jobq_keys *k, jobq_turn turn)
{
    head(cmd, &pop_script, use_sha, "3");
    add(cmd, k->list);
    add(cmd, k->ready);
    add(cmd, k->active);
    add(cmd, k->tenant);
    add(cmd, turn == JOBQ_HELD ? "held" : "rotated");
}

void jobq_repair_command(redis_argv *cmd, bool use_sha, const jobq_keys *k)
{
    head(cmd, &repair_script, use_sha, "3");
    add(cmd, k->list);
    add(cmd, k->ready);
    add(cmd, k->active);
    add(cmd, k->tenant);
}
