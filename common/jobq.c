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
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "jobq.h"
#include "redis_script.h"

#define STR_(x) #x
#define STR(x) STR_(x)

/* The enqueue as a Lua function, shared by the enqueue script and the
 * script for new jobs: the id joins the list at its back (LPUSH) or, with
 * front, its front (RPUSH), and the tenant the ring when SADD says it was
 * not active. Returns 1 when the tenant joined the ring, else 0. */
#define ENQUEUE_FUNCTION \
    "local function enqueue(list,ring,active,id,tenant,front)\n" \
    "if front then\n" \
    "redis.call('RPUSH',list,id)\n" \
    "else\n" \
    "redis.call('LPUSH',list,id)\n" \
    "end\n" \
    "if redis.call('SADD',active,tenant)==1 then\n" \
    "redis.call('LPUSH',ring,tenant)\n" \
    "return 1\n" \
    "end\n" \
    "return 0\n" \
    "end\n"

/* KEYS[1] the list of the job's band, KEYS[2] the ring, KEYS[3] the
 * active set, KEYS[4] (promotion only) the delayed set; ARGV[1] the id,
 * ARGV[2] the tenant, ARGV[3] 'front' or 'back', ARGV[4] the delayed
 * member. */
const char jobq_enqueue_lua[] =
    ENQUEUE_FUNCTION
    "if KEYS[4] and redis.call('ZREM',KEYS[4],ARGV[4])==0 then return -1 end\n"
    "return enqueue(KEYS[1],KEYS[2],KEYS[3],ARGV[1],ARGV[2],ARGV[3]=='front')\n";

/* JOBQ_NEW_KEYS keys and JOBQ_NEW_ARGS arguments per job, in
 * jobq_new_job_words' order, after ARGV[1] the ring size and ARGV[2] the
 * TTL: each job's job.queued event (id 1) is appended to its ring and
 * announced, then its id enqueued at the back of its band's list. */
const char jobq_new_jobs_lua[] =
    EVENT_APPEND_FUNCTION
    ENQUEUE_FUNCTION
    "local keep,ttl=tonumber(ARGV[1]),ARGV[2]\n"
    "local n=#KEYS/" STR(JOBQ_NEW_KEYS) "\n"
    "for j=0,n-1 do\n"
    "local k,a=j*" STR(JOBQ_NEW_KEYS) ",2+j*" STR(JOBQ_NEW_ARGS) "\n"
    "append(KEYS[k+1],KEYS[k+2],ARGV[a+1],keep,ttl,'1',ARGV[a+2],'queued')\n"
    "enqueue(KEYS[k+3],KEYS[k+4],KEYS[k+5],ARGV[a+3],ARGV[a+4],false)\n"
    "end\n"
    "return n\n";

/* The pop of a tenant's turn, shared by the take and pop scripts: L the
 * tenant's band lists, highest first. Counts the tenant's pop in the
 * turns hash; every Nth reads the bands from the lowest up. A tenant
 * whose lists are then all empty leaves the ring (every place it has),
 * the active set and the turns hash. Returns the id (false when none),
 * its band from 1 (0 when none) and how many lists still hold ids. */
#define POP_FUNCTION \
    "local B=" STR(JOBQ_BANDS) "\n" \
    "local function pop(L,ring,active,turns,t,every)\n" \
    "local n=1\n" \
    "if every>0 then n=redis.call('HINCRBY',turns,t,1) end\n" \
    "local from,to,step=1,B,1\n" \
    "if every>0 and n%every==0 then from,to,step=B,1,-1 end\n" \
    "local id,band=false,0\n" \
    "for b=from,to,step do\n" \
    "id=redis.call('RPOP',L[b])\n" \
    "if id then band=b break end\n" \
    "end\n" \
    "local left=redis.call('EXISTS',unpack(L))\n" \
    "if left==0 then\n" \
    "redis.call('LREM',ring,0,t)\n" \
    "redis.call('SREM',active,t)\n" \
    "redis.call('HDEL',turns,t)\n" \
    "end\n" \
    "return id,band,left\n" \
    "end\n"

/* KEYS[1..n] the rings, in the worker's order, then, with a hint, the
 * hinted tenant's band lists (highest first), its type's active set and
 * turns hash; ARGV[1] n, ARGV[2] the hinted ring's index (from 1; '0' for
 * none), ARGV[3] the hinted tenant, ARGV[4] the bands' rule's N. LMOVE of
 * a list onto itself rotates it: the tenant's turn is taken without the
 * tenant ever leaving the ring. When the turn is the hinted tenant's, its
 * job is popped here as the pop script pops a rotated turn. */
const char jobq_take_lua[] =
    POP_FUNCTION
    "local n=tonumber(ARGV[1])\n"
    "for i=1,n do\n"
    "local t=redis.call('LMOVE',KEYS[i],KEYS[i],'RIGHT','LEFT')\n"
    "if t then\n"
    "if tostring(i)==ARGV[2] and t==ARGV[3] then\n"
    "local L={}\n"
    "for b=1,B do L[b]=KEYS[n+b] end\n"
    "local id,band=pop(L,KEYS[i],KEYS[n+B+1],KEYS[n+B+2],t,tonumber(ARGV[4]))\n"
    "return {i,t,id,band-1}\n"
    "end\n"
    "return {i,t}\n"
    "end\n"
    "end\n"
    "return false\n";

/* KEYS[1..B] the tenant's band lists (highest first), then the ring, the
 * active set and the turns hash; ARGV[1] the tenant, ARGV[2] 'held' when
 * the caller took the tenant off the ring (BRPOP), else 'rotated',
 * ARGV[3] the bands' rule's N. A held tenant goes back at the ring's far
 * end while it has ids, unless a repair put it there meanwhile. */
const char jobq_pop_lua[] =
    POP_FUNCTION
    "local L={}\n"
    "for b=1,B do L[b]=KEYS[b] end\n"
    "local id,band,left=pop(L,KEYS[B+1],KEYS[B+2],KEYS[B+3],ARGV[1],tonumber(ARGV[3]))\n"
    "if left>0 and ARGV[2]=='held' and not redis.call('LPOS',KEYS[B+1],ARGV[1]) then\n"
    "redis.call('LPUSH',KEYS[B+1],ARGV[1])\n"
    "end\n"
    "if not id then return false end\n"
    "return {id,band-1}\n";

/* KEYS[1..B] the tenant's band lists, then the ring and the active set;
 * ARGV[1] the tenant. */
const char jobq_repair_lua[] =
    "local B=" STR(JOBQ_BANDS) "\n"
    "if redis.call('LPOS',KEYS[B+1],ARGV[1]) then return 0 end\n"
    "local L={}\n"
    "for b=1,B do L[b]=KEYS[b] end\n"
    "if redis.call('EXISTS',unpack(L))==0 and redis.call('SISMEMBER',KEYS[B+2],ARGV[1])==0 then\n"
    "return 0\n"
    "end\n"
    "redis.call('SADD',KEYS[B+2],ARGV[1])\n"
    "redis.call('LPUSH',KEYS[B+1],ARGV[1])\n"
    "return 1\n";

static redis_script enqueue_script = REDIS_SCRIPT(jobq_enqueue_lua);
static redis_script new_jobs_script = REDIS_SCRIPT(jobq_new_jobs_lua);
static redis_script take_script = REDIS_SCRIPT(jobq_take_lua);
static redis_script pop_script = REDIS_SCRIPT(jobq_pop_lua);
static redis_script repair_script = REDIS_SCRIPT(jobq_repair_lua);

_Static_assert(JOBQ_BAND_MAX - JOBQ_BAND_MIN + 1 == JOBQ_BANDS, "one list per band");

/* The bands, highest first (index JOBQ_BAND_MAX - band): the lowest
 * priority each holds, and its name. */
static const struct {
    long long from;
    const char *name;
} bands[JOBQ_BANDS] = {
    { 100, "urgent" }, { 1, "high" }, { 0, "normal" }, { -99, "low" }, { LLONG_MIN, "bulk" },
};

int jobq_band_of(long long priority)
{
    int at = 0;
    while (at < JOBQ_BANDS - 1 && priority < bands[at].from)
        at++;
    return jobq_band_at(at);
}

const char *jobq_band_name(int band)
{
    return band >= JOBQ_BAND_MIN && band <= JOBQ_BAND_MAX ? bands[JOBQ_BAND_MAX - band].name
                                                          : NULL;
}

int jobq_band_named(const char *name)
{
    for (int at = 0; name != NULL && at < JOBQ_BANDS; at++)
        if (strcmp(bands[at].name, name) == 0)
            return jobq_band_at(at);
    return JOBQ_BANDS;
}

const char *jobq_band_suffix(int band)
{
    return band == JOBQ_BAND_NORMAL ? NULL : jobq_band_name(band);
}

int jobq_keys_of(jobq_keys *k, const char *type, const char *tenant)
{
    for (int at = 0; at < JOBQ_BANDS; at++)
        if (key_queue_band(k->lists[at], type, tenant, jobq_band_suffix(jobq_band_at(at)))
            == NULL)
            return -1;
    key_ready(k->ready, type);
    key_active(k->active, type);
    key_delayed(k->delayed, type);
    key_turns(k->turns, type);
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
                          const char *id, int band, jobq_end end, const char *member)
{
    if (band < JOBQ_BAND_MIN || band > JOBQ_BAND_MAX)
        band = JOBQ_BAND_NORMAL;
    head(cmd, &enqueue_script, use_sha, member ? "4" : "3");
    add(cmd, k->lists[JOBQ_BAND_MAX - band]);
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
                   int hint_ring, int every)
{
    if (n == 0 || n > JOBQ_TAKE_RINGS_MAX)
        return -1;
    bool hinted = hint != NULL && hint_ring >= 0 && (size_t)hint_ring < n;
    int argc = 0;
    redis_script_head(&take_script, !use_sha, &argv[0], &argv[1]);
    snprintf(bufs->nkeys, sizeof bufs->nkeys, "%zu", n + (hinted ? JOBQ_BANDS + 2 : 0));
    snprintf(bufs->n, sizeof bufs->n, "%zu", n);
    snprintf(bufs->ring, sizeof bufs->ring, "%d", hinted ? hint_ring + 1 : 0);
    snprintf(bufs->every, sizeof bufs->every, "%d", every > 0 ? every : 0);
    argv[2] = bufs->nkeys;
    argc = 3;
    for (size_t i = 0; i < n; i++)
        argv[argc++] = rings[i];
    if (hinted) {
        for (int b = 0; b < JOBQ_BANDS; b++)
            argv[argc++] = hint->lists[b];
        argv[argc++] = hint->active;
        argv[argc++] = hint->turns;
    }
    argv[argc++] = bufs->n;
    argv[argc++] = bufs->ring;
    argv[argc++] = hinted ? hint->tenant : "";
    argv[argc++] = bufs->every;
    for (int i = 0; i < argc; i++)
        argvlen[i] = strlen(argv[i]);
    return argc;
}

void jobq_pop_command(redis_argv *cmd, bool use_sha, const jobq_keys *k, jobq_turn turn,
                      int every)
{
    snprintf(cmd->numbuf[1], sizeof cmd->numbuf[1], "%d", JOBQ_BANDS + 3);
    head(cmd, &pop_script, use_sha, cmd->numbuf[1]);
    for (int b = 0; b < JOBQ_BANDS; b++)
        add(cmd, k->lists[b]);
    add(cmd, k->ready);
    add(cmd, k->active);
    add(cmd, k->turns);
    add(cmd, k->tenant);
    add(cmd, turn == JOBQ_HELD ? "held" : "rotated");
    snprintf(cmd->numbuf[0], sizeof cmd->numbuf[0], "%d", every > 0 ? every : 0);
    add(cmd, cmd->numbuf[0]);
}

void jobq_repair_command(redis_argv *cmd, bool use_sha, const jobq_keys *k)
{
    snprintf(cmd->numbuf[1], sizeof cmd->numbuf[1], "%d", JOBQ_BANDS + 2);
    head(cmd, &repair_script, use_sha, cmd->numbuf[1]);
    for (int b = 0; b < JOBQ_BANDS; b++)
        add(cmd, k->lists[b]);
    add(cmd, k->ready);
    add(cmd, k->active);
    add(cmd, k->tenant);
}

void jobq_new_jobs_head(bool use_sha, const char **word, const char **script)
{
    redis_script_head(&new_jobs_script, !use_sha, word, script);
}

int jobq_new_job_words(jobq_new_job *w, const char *id, const char *type, const char *tenant,
                       long long priority)
{
    jobq_keys k;
    if (jobq_keys_of(&k, type, tenant) != 0) return -1;
    key_events(w->keys[0], id);
    key_state(w->keys[1], id);
    memcpy(w->keys[2], k.lists[JOBQ_BAND_MAX - jobq_band_of(priority)], KEY_MAX);
    memcpy(w->keys[3], k.ready, KEY_MAX);
    memcpy(w->keys[4], k.active, KEY_MAX);
    key_notify(w->channel, id);
    snprintf(w->id, sizeof w->id, "%s", id);
    snprintf(w->tenant, sizeof w->tenant, "%s", tenant);
    return 0;
}
