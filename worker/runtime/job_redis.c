/*
 * job_redis.c - the worker's blocking hiredis use (see job_redis.h).
 *
 * Writes go out as pipelines of argv commands: one round trip per event
 * or per supervisor round, and binary-safe arguments, so an event body is
 * never parsed as a format string. An event is one EVALSHA of the shared
 * append script (common/events.c), and an enqueue or a pop one of the
 * queue scripts (common/jobq.c), loaded on every new connection, with EVAL
 * as the fallback when Redis lost its script cache.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "job_redis.h"
#include "log.h"
#include "redis_conn.h"
#include "redis_script.h"

#define REDIS_CONNECT_TIMEOUT_MS 2000
/* Longer than any BRPOP wait the worker asks for, so a quiet queue never
 * reads as a dead server. */
#define REDIS_IO_TIMEOUT_MS 5000
#define REFUSED_PAUSE_MS 1000

_Static_assert(QUEUES_MAX <= JOBQ_TAKE_RINGS_MAX, "one take names every ring of a worker");

/* ---------------------------------------------------------------------------
 * Connections
 * ------------------------------------------------------------------------- */

void redis_link_init(redis_link *l, const ag_config *cfg, const char *who)
{
    memset(l, 0, sizeof *l);
    l->cfg = cfg;
    l->who = who;
    backoff_reset(&l->bo);
}

/* Caches the event append and queue scripts on a new connection, so
 * EVALSHA finds them; a failure only means a first call falls back to
 * EVAL. */
static void redis_load_scripts(redisContext *c)
{
    redisReply *r = redisCommand(c, "SCRIPT LOAD %s", event_append_lua);
    if (r != NULL && r->type == REDIS_REPLY_STRING && strcmp(r->str, event_append_sha()) != 0)
        log_warn("Redis names the event script %s, not %s", r->str, event_append_sha());
    if (r)
        freeReplyObject(r);
    const char *const queue_scripts[] = { jobq_enqueue_lua, jobq_take_lua, jobq_pop_lua,
                                          jobq_repair_lua };
    for (size_t i = 0; i < sizeof queue_scripts / sizeof *queue_scripts; i++) {
        r = redisCommand(c, "SCRIPT LOAD %s", queue_scripts[i]);
        if (r)
            freeReplyObject(r);
    }
}

/* One connect: the master's address (asked of Sentinel when configured),
 * AUTH, SELECT and the role check (common/redis_conn.h), then the
 * scripts. */
static int redis_link_attempt(redis_link *l)
{
    char why[256];
    redis_addr at;
    redis_sentinel_watch(l->cfg);
    unsigned long epoch = redis_master_epoch();
    redisContext *c = redis_connect_sync(l->cfg, REDIS_CONNECT_TIMEOUT_MS,
                                         REDIS_IO_TIMEOUT_MS, &at, why, sizeof why);
    if (c != NULL) {
        redis_load_scripts(c);
        l->epoch = epoch;
        if (l->down_logged)
            log_info("%s: connected to Redis again at %s:%d", l->who, at.host, at.port);
        l->c = c;
        l->down_logged = false;
        backoff_reset(&l->bo);
        return 0;
    }

    long long delay = backoff_failed(&l->bo, clock_mono_ms());
    log_warn("%s: cannot connect to Redis at %s:%d (%s); retrying in %lld ms", l->who,
             at.host, at.port, why, delay);
    l->down_logged = true;
    return -1;
}

bool redis_link_stale(const redis_link *l)
{
    return l->c != NULL && l->epoch != redis_master_epoch();
}

/* Closes a connection made before Sentinel's latest master switch: its
 * server may be a demoted master that still answers. */
static void redis_link_check_epoch(redis_link *l)
{
    if (redis_link_stale(l))
        redis_link_drop(l, "Sentinel switched the master");
}

redisContext *redis_link_wait(redis_link *l, stop_fn stop, void *arg)
{
    redis_link_check_epoch(l);
    while (l->c == NULL) {
        if (!backoff_wait(&l->bo, stop, arg))
            return NULL;
        redis_link_attempt(l);
    }
    return l->c;
}

redisContext *redis_link_try(redis_link *l)
{
    redis_link_check_epoch(l);
    if (l->c == NULL && backoff_due(&l->bo, clock_mono_ms()))
        redis_link_attempt(l);
    return l->c;
}

void redis_link_drop(redis_link *l, const char *why)
{
    if (l->c == NULL)
        return;
    log_warn("%s: Redis connection lost (%s); reconnecting", l->who, why);
    redisFree(l->c);
    l->c = NULL;
    l->down_logged = true;
    backoff_reset(&l->bo);
}

void redis_link_close(redis_link *l)
{
    if (l->c != NULL)
        redisFree(l->c);
    l->c = NULL;
}

/* ---------------------------------------------------------------------------
 * Commands
 * ------------------------------------------------------------------------- */

/* Drops the link after an I/O error on it, keeping hiredis's reason. */
static void redis_link_failed(redis_link *l)
{
    char why[sizeof l->c->errstr];
    snprintf(why, sizeof why, "%s", l->c->errstr[0] ? l->c->errstr : "I/O error");
    redis_link_drop(l, why);
}

/* redis_pipeline, except that a NOSCRIPT answer is not an error worth a
 * log line: it returns -2 when every error reply was a NOSCRIPT, for the
 * caller to repeat those calls with EVAL. */
static int redis_pipeline_quiet(redis_link *l, const redis_argv *cmds, int n,
                                redisReply **replies)
{
    if (replies)
        for (int i = 0; i < n; i++)
            replies[i] = NULL;
    if (l->c == NULL)
        return -1;

    for (int i = 0; i < n; i++) {
        if (redisAppendCommandArgv(l->c, cmds[i].argc, (const char **)cmds[i].argv,
                                   cmds[i].argvlen) != REDIS_OK) {
            redis_link_failed(l);
            return -1;
        }
    }

    int rc = 0;
    bool readonly = false;
    for (int i = 0; i < n; i++) {
        redisReply *r = NULL;
        if (redisGetReply(l->c, (void **)&r) != REDIS_OK || r == NULL) {
            /* The unread replies belong to a stream that is now out of
             * step; only a new connection is safe. */
            if (replies)
                for (int j = 0; j < i; j++) {
                    if (replies[j])
                        freeReplyObject(replies[j]);
                    replies[j] = NULL;
                }
            redis_link_failed(l);
            return -1;
        }
        if (r->type == REDIS_REPLY_ERROR && redis_script_missing(r->str, r->len)) {
            if (rc == 0)
                rc = -2;
        } else if (r->type == REDIS_REPLY_ERROR) {
            log_warn("%s: Redis %.*s refused: %s", l->who, (int)cmds[i].argvlen[0],
                     cmds[i].argv[0], r->str);
            readonly = readonly || redis_reply_readonly(r);
            rc = -1;
        }
        if (replies)
            replies[i] = r;
        else
            freeReplyObject(r);
    }
    /* A failover demoted the server: the next connect asks Sentinel anew. */
    if (readonly)
        redis_link_drop(l, "the server became a replica (READONLY)");
    return rc;
}

int redis_pipeline(redis_link *l, const redis_argv *cmds, int n, redisReply **replies)
{
    int rc = redis_pipeline_quiet(l, cmds, n, replies);
    if (rc == -2) {
        log_warn("%s: Redis has no cached script (NOSCRIPT)", l->who);
        rc = -1;
    }
    return rc;
}

redisReply *redis_script_run(redis_link *l, const redis_argv *by_sha,
                             const redis_argv *by_text)
{
    redisReply *r = NULL;
    int rc = redis_pipeline_quiet(l, by_sha, 1, &r);
    if (rc == -2) {
        freeReplyObject(r);
        r = NULL;
        rc = redis_pipeline(l, by_text, 1, &r);
    }
    if (rc < 0) {
        if (r)
            freeReplyObject(r);
        return NULL;
    }
    return r;
}

/* Reads the id and band a pop gave (the script's id, or nil, and its list's index)
 * into value and *band. Returns 1, or 0 when the lists were empty or the
 * entry unusable. */
static int popped_id(redis_link *l, const redisReply *id, const redisReply *b,
                     char *value, size_t value_size, int *band)
{
    if (id == NULL || id->type != REDIS_REPLY_STRING)
        return 0;
    /* A queue entry is outside input: refuse what no id could be,
     * including a string with a NUL inside. */
    if (id->len >= value_size || memchr(id->str, '\0', id->len)) {
        log_warn("%s: dropped an unusable queue entry (%zu bytes)", l->who, id->len);
        return 0;
    }
    memcpy(value, id->str, id->len + 1);
    *band = b != NULL && b->type == REDIS_REPLY_INTEGER && b->integer >= 0
            && b->integer < JOBQ_BANDS ? jobq_band_at((int)b->integer) : JOBQ_BAND_NORMAL;
    return 1;
}

/* Runs the pop script for the tenant of from's type whose turn the
 * caller got as turn says. Returns 1 with the id in value and its band
 * in from, 0 when the tenant's lists were empty or the entry unusable,
 * -1 when Redis failed. */
static int pop_turn(redis_link *l, job_origin *from, jobq_turn turn, char *value,
                    size_t value_size)
{
    const char *type = from->type, *tenant = from->tenant;
    jobq_keys k;
    if (jobq_keys_of(&k, type, tenant) != 0)
        return 0;
    redis_argv by_sha, by_text;
    jobq_pop_command(&by_sha, true, &k, turn, l->cfg->priority_fair_every);
    jobq_pop_command(&by_text, false, &k, turn, l->cfg->priority_fair_every);
    redisReply *r = redis_script_run(l, &by_sha, &by_text);
    if (r == NULL) {
        if (turn == JOBQ_HELD)
            log_warn("%s: the pop of tenant %s's %s job failed after its turn was taken "
                     "off the ring; reconciliation will put the tenant back", l->who,
                     tenant, type);
        return -1;
    }
    int rc = 0;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 2)
        rc = popped_id(l, r->element[0], r->element[1], value, value_size, &from->band);
    freeReplyObject(r);
    return rc;
}

/* Reads a turn from a reply naming ring i (an index into qs) and a
 * tenant: fills *from. Returns 0, or -1 when either is unusable (a ring
 * entry is outside input: only a valid tenant id names a list). */
static int turn_of(redis_link *l, const queue_set *qs, long long i, const redisReply *t,
                   job_origin *from)
{
    if (i < 0 || (size_t)i >= qs->count || t->type != REDIS_REPLY_STRING
        || t->len > KEY_TENANT_MAX || memchr(t->str, '\0', t->len)
        || !key_tenant_valid(t->str)) {
        log_warn("%s: dropped an unusable ring entry", l->who);
        return -1;
    }
    snprintf(from->type, sizeof from->type, "%s", qs->names[i]);
    memcpy(from->tenant, t->str, t->len + 1);
    return 0;
}

/* What a take came back with. */
enum {
    TAKE_FAILED = -1,   /* Redis failed */
    TAKE_NONE,          /* every ring empty, or an unusable entry dropped */
    TAKE_TURN,          /* a tenant's turn: the caller pops */
    TAKE_POPPED,        /* the hinted tenant's turn, its job popped */
    TAKE_SPENT,         /* the hinted tenant's turn, its list empty */
    TAKE_NOSCRIPT,      /* Redis lost its script cache */
};

/* The words of a take over the rings of qs, by sha or by text, into
 * argv/argvlen (room for JOBQ_TAKE_WORDS_MAX), pointing into *bufs and
 * *hk. hint is the turn the caller took last (type "" for none). Returns
 * their number, or -1. */
static int take_argv(const redis_link *l, const queue_set *qs, const job_origin *hint,
                     bool use_sha, const char **argv, size_t *argvlen, jobq_take_bufs *bufs,
                     jobq_keys *hk)
{
    int hint_ring = -1;
    for (size_t i = 0; hint->type[0] && i < qs->count && hint_ring < 0; i++)
        if (strcmp(qs->names[i], hint->type) == 0)
            hint_ring = (int)i;
    if (hint_ring >= 0 && jobq_keys_of(hk, hint->type, hint->tenant) != 0)
        hint_ring = -1;
    return jobq_take_argv(argv, argvlen, bufs, use_sha, qs->rings, qs->count,
                          hint_ring >= 0 ? hk : NULL, hint_ring, l->cfg->priority_fair_every);
}

/* Reads a take's reply r: a tenant's turn that stays on its ring, and
 * when that tenant was the hinted one, its job too. Fills *from on
 * TAKE_TURN, TAKE_POPPED and TAKE_SPENT, and value on TAKE_POPPED. */
static int take_read(redis_link *l, const queue_set *qs, const redisReply *r,
                     job_origin *from, char *value, size_t value_size)
{
    if (r->type == REDIS_REPLY_ERROR && redis_script_missing(r->str, r->len))
        return TAKE_NOSCRIPT;
    if (r->type == REDIS_REPLY_ERROR) {
        log_warn("%s: the take script was refused: %s", l->who, r->str);
        return TAKE_NONE;
    }
    if (r->type != REDIS_REPLY_ARRAY || (r->elements != 2 && r->elements != 4)
        || r->element[0]->type != REDIS_REPLY_INTEGER)
        return TAKE_NONE;
    long long i = r->element[0]->integer - 1;
    const redisReply *t = r->element[1];
    if (turn_of(l, qs, i, t, from) == 0) {
        if (r->elements == 2)
            return TAKE_TURN;
        return popped_id(l, r->element[2], r->element[3], value, value_size, &from->band)
                   ? TAKE_POPPED : TAKE_SPENT;
    }
    if (i >= 0 && (size_t)i < qs->count && t->type == REDIS_REPLY_STRING) {
        /* Rotated, it would come round again: it leaves the ring. */
        redis_argv lrem;
        redis_argv_of(&lrem, "LREM", qs->rings[i], "0", t->str, (const char *)NULL);
        lrem.argvlen[3] = t->len;
        redis_pipeline(l, &lrem, 1, NULL);
    }
    return TAKE_NONE;
}

/*
 * Sends n takes over the rings of qs in one pipeline, each hinted with
 * *hint, and reads their replies into takes[] (TAKE_*), froms[] and
 * values[] (value_size bytes each). A take is what one job thread's call
 * would be, so n of them rotate the rings and pop the bands exactly as n
 * threads' calls in a row would. Returns 0, or -1 when the connection
 * failed (the link is dropped).
 */
static int take_pipeline(redis_link *l, const queue_set *qs, const job_origin *hint, int n,
                         int *takes, job_origin *froms, char (*values)[64])
{
    const char *argv[JOBQ_TAKE_WORDS_MAX];
    size_t argvlen[JOBQ_TAKE_WORDS_MAX];
    jobq_take_bufs bufs;
    jobq_keys hk;
    int argc = take_argv(l, qs, hint, true, argv, argvlen, &bufs, &hk);
    for (int k = 0; k < n; k++)
        takes[k] = TAKE_NONE;
    if (argc < 0)
        return 0;
    for (int k = 0; k < n; k++)
        if (redisAppendCommandArgv(l->c, argc, argv, argvlen) != REDIS_OK) {
            redis_link_failed(l);
            return -1;
        }
    for (int k = 0; k < n; k++) {
        redisReply *r = NULL;
        if (redisGetReply(l->c, (void **)&r) != REDIS_OK || r == NULL) {
            redis_link_failed(l);
            return -1;
        }
        takes[k] = take_read(l, qs, r, &froms[k], values[k], sizeof values[k]);
        freeReplyObject(r);
    }
    return 0;
}

/* Every ring was empty: waits up to timeout_s for a tenant to join one
 * (BRPOP over the rings, which takes the tenant off its ring), then pops
 * its job. Returns as pop_turn does. */
static int wait_for_turn(redis_link *l, const queue_set *qs, int timeout_s, job_origin *from,
                         char *value, size_t value_size)
{
    const char *argv[QUEUES_MAX + 2];
    size_t argvlen[QUEUES_MAX + 2];
    char timeout[16];
    int argc = 0;

    argv[argc] = "BRPOP";
    argvlen[argc++] = 5;
    for (size_t i = 0; i < qs->count; i++) {
        argv[argc] = qs->rings[i];
        argvlen[argc++] = strlen(qs->rings[i]);
    }
    snprintf(timeout, sizeof timeout, "%d", timeout_s);
    argv[argc] = timeout;
    argvlen[argc++] = strlen(timeout);

    redisReply *r = redisCommandArgv(l->c, argc, argv, argvlen);
    if (r == NULL) {
        redis_link_failed(l);
        return -1;
    }

    int got = -1;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 2
        && r->element[0]->type == REDIS_REPLY_STRING) {
        const redisReply *k = r->element[0];
        got = turn_of(l, qs, queues_ring_index(qs, k->str, k->len), r->element[1], from);
    } else if (r->type == REDIS_REPLY_ERROR) {
        log_warn("%s: BRPOP refused: %s", l->who, r->str);
        /* A refusal (e.g. a ring key of the wrong type) would repeat at
         * once: pause rather than spin. */
        clock_sleep_ms(REFUSED_PAUSE_MS);
    }
    freeReplyObject(r);
    if (got < 0)
        return 0;
    return pop_turn(l, from, JOBQ_HELD, value, value_size);
}

int redis_take_jobs(redis_link *l, const queue_set *qs, int max, int timeout_s,
                    job_origin *last, job_origin *froms, char (*values)[64])
{
    if (l->c == NULL)
        return -1;
    if (max < 1)
        max = 1;
    int takes[max];
    job_origin turns[max];
    char turn_values[max][64];
    if (take_pipeline(l, qs, last, max, takes, turns, turn_values) < 0)
        return -1;

    /* The popped ids, in the order their turns came; then the turns of
     * other tenants, each popped by its own call. */
    int n = 0;
    bool any_turn = false, noscript = false;
    for (int k = 0; k < max; k++) {
        if (takes[k] == TAKE_POPPED) {
            froms[n] = turns[k];
            memcpy(values[n], turn_values[k], sizeof values[n]);
            n++;
        }
        any_turn = any_turn || takes[k] == TAKE_TURN || takes[k] == TAKE_SPENT;
        noscript = noscript || takes[k] == TAKE_NOSCRIPT;
    }
    for (int k = 0; k < max && l->c != NULL; k++) {
        if (takes[k] == TAKE_TURN
            && pop_turn(l, &turns[k], JOBQ_ROTATED, values[n], sizeof values[n]) > 0)
            froms[n++] = turns[k];
    }
    if (n > 0)
        *last = froms[n - 1];
    if (noscript) {
        log_warn("%s: Redis has no cached take script (NOSCRIPT); loading it", l->who);
        if (l->c != NULL)
            redis_load_scripts(l->c);
        return n;
    }
    if (n > 0)
        return n;
    if (l->c == NULL)
        return -1;
    if (any_turn)
        return 0;       /* turns that found no job: the caller takes again */

    /* Every ring was empty: wait for a tenant to join one. */
    int rc = wait_for_turn(l, qs, timeout_s, &froms[0], values[0], sizeof values[0]);
    if (rc > 0)
        *last = froms[0];
    return rc;
}

int redis_push_back(redis_link *l, const job_origin *from, const char *id)
{
    jobq_keys k;
    if (jobq_keys_of(&k, from->type, from->tenant) != 0)
        return -1;
    redis_argv by_sha, by_text;
    jobq_enqueue_command(&by_sha, true, &k, id, from->band, JOBQ_FRONT, NULL);
    jobq_enqueue_command(&by_text, false, &k, id, from->band, JOBQ_FRONT, NULL);
    redisReply *r = redis_script_run(l, &by_sha, &by_text);
    if (r == NULL)
        return -1;
    freeReplyObject(r);
    return 0;
}

static void argv_add(redis_argv *c, const char *s)
{
    c->argv[c->argc] = s;
    c->argvlen[c->argc] = strlen(s);
    c->argc++;
}

static void argv_add_num(redis_argv *c, int slot, long long n)
{
    int len = snprintf(c->numbuf[slot], sizeof c->numbuf[slot], "%lld", n);
    c->argv[c->argc] = c->numbuf[slot];
    c->argvlen[c->argc] = (size_t)len;
    c->argc++;
}

/* Storage for the key names of state_commands. */
struct state_keys {
    char state[KEY_MAX];
    char lease[KEY_MAX];
    jobq_keys queue;
    char member[KEY_MEMBER_MAX];
    int band;
    int enqueue_at;         /* the index of the enqueue command, or -1 */
};

#define STATE_CMDS_MAX 7

/* The commands after a job's events: what the append script did not
 * write of the state hash (the worker id, or the status when no event
 * carried it), lease and requeue. keys hold the names the commands point
 * at. Returns how many commands it wrote into out (at most
 * STATE_CMDS_MAX). */
static int state_commands(const ag_config *cfg, const char *job_id, bool events_written,
                          const job_redis_state *st, struct state_keys *keys,
                          redis_argv *out)
{
    int n = 0;
    key_state(keys->state, job_id);
    keys->enqueue_at = -1;

    if (st != NULL && st->status != NULL) {
        /* The script wrote the status with the last event. */
        if (!events_written || st->worker_id != NULL) {
            redis_argv *c = &out[n++];
            argv_add(c, "HSET");
            argv_add(c, keys->state);
            if (!events_written) {
                argv_add(c, "status");
                argv_add(c, st->status);
            }
            if (st->worker_id != NULL) {
                argv_add(c, "worker_id");
                argv_add(c, st->worker_id);
            }
        }
        /* A job back in its queue belongs to no worker. */
        if (strcmp(st->status, "queued") == 0) {
            redis_argv *c = &out[n++];
            argv_add(c, "HDEL");
            argv_add(c, keys->state);
            argv_add(c, "worker_id");
        }
        /* The script gives the hash the ring's lifetime; without an event
         * it is given here. */
        if (!events_written) {
            redis_argv *c = &out[n++];
            argv_add(c, "EXPIRE");
            argv_add(c, keys->state);
            argv_add_num(c, 0, cfg->event_ttl_s > 0 ? cfg->event_ttl_s : 1);
        }
    }
    if (st != NULL && st->lease == LEASE_SET && st->worker_id != NULL) {
        redis_argv *c = &out[n++];
        key_lease(keys->lease, job_id);
        argv_add(c, "SET");
        argv_add(c, keys->lease);
        argv_add(c, st->worker_id);
        argv_add(c, "PX");
        argv_add_num(c, 0, cfg->lease_ms > 0 ? cfg->lease_ms : 1);
    } else if (st != NULL && st->lease == LEASE_DELETE) {
        redis_argv *c = &out[n++];
        key_lease(keys->lease, job_id);
        argv_add(c, "DEL");
        argv_add(c, keys->lease);
    }
    if (st != NULL && st->requeue_type != NULL
        && jobq_keys_of(&keys->queue, st->requeue_type, st->requeue_tenant) != 0) {
        /* PostgreSQL has it queued: reconciliation enqueues it, or says
         * why it cannot. */
        log_error("job %s: not enqueued again: its tenant id is not one a key can carry",
                  job_id);
    } else if (st != NULL && st->requeue_type != NULL && st->requeue_at_ms <= 0) {
        keys->enqueue_at = n;
        keys->band = st->requeue_band;
        jobq_enqueue_command(&out[n++], true, &keys->queue, job_id, keys->band, JOBQ_BACK,
                             NULL);
    } else if (st != NULL && st->requeue_type != NULL) {
        redis_argv *c = &out[n++];
        key_delayed_member_band(keys->member, jobq_band_suffix(st->requeue_band),
                                st->requeue_tenant, job_id);
        argv_add(c, "ZADD");
        argv_add(c, keys->queue.delayed);
        argv_add_num(c, 0, st->requeue_at_ms);
        argv_add(c, keys->member);
    }
    if (st != NULL && st->dead_letter) {
        redis_argv *c = &out[n++];
        argv_add(c, "LPUSH");
        argv_add(c, KEY_DEAD_LETTER);
        argv_add(c, job_id);
        c = &out[n++];
        argv_add(c, "LTRIM");
        argv_add(c, KEY_DEAD_LETTER);
        argv_add(c, "0");
        argv_add_num(c, 0, (cfg->dead_letter_max > 0 ? cfg->dead_letter_max : 1) - 1);
    }
    return n;
}

static bool reply_missing_script(const redisReply *r)
{
    return r != NULL && r->type == REDIS_REPLY_ERROR && redis_script_missing(r->str, r->len);
}

/* Re-sends with EVAL every event, and the enqueue, whose EVALSHA Redis
 * answered NOSCRIPT (its script cache was flushed since this connection
 * loaded it). Their order among themselves is kept. Returns 0 or -1. */
static int resend_missing_scripts(redis_link *l, const char *job_id,
                                  const redis_event *evs, size_t n,
                                  const job_redis_state *st, const struct state_keys *sk,
                                  redisReply **replies)
{
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (!reply_missing_script(replies[i]))
            continue;
        redis_argv cmd;
        event_keys keys;
        event_append_command(&cmd, false, job_id, evs[i].seq, evs[i].body, evs[i].len,
                             i + 1 == n && st ? st->status : NULL, l->cfg->event_ring_size,
                             l->cfg->event_ttl_s, &keys);
        rc = redis_pipeline(l, &cmd, 1, NULL);
    }
    if (rc == 0 && sk->enqueue_at >= 0
        && reply_missing_script(replies[n + (size_t)sk->enqueue_at])) {
        redis_argv cmd;
        jobq_enqueue_command(&cmd, false, &sk->queue, job_id, sk->band, JOBQ_BACK, NULL);
        rc = redis_pipeline(l, &cmd, 1, NULL);
    }
    return rc;
}

int redis_write_job(redis_link *l, const char *job_id, const redis_event *evs,
                    size_t n, const job_redis_state *st)
{
    if (l->c == NULL)
        return -1;

    size_t total = n + STATE_CMDS_MAX;
    redis_argv *cmds = calloc(total, sizeof *cmds);
    redisReply **replies = calloc(total, sizeof *replies);
    if (cmds == NULL || replies == NULL) {
        log_error("%s: out of memory for a Redis pipeline", l->who);
        free(cmds);
        free(replies);
        return -1;
    }

    /* One script call per event, each atomic; the status rides with the
     * last. Every event of one job names the same keys. */
    event_keys ekeys;
    struct state_keys skeys;
    int count = 0;
    for (size_t i = 0; i < n; i++)
        event_append_command(&cmds[count++], true, job_id, evs[i].seq, evs[i].body,
                             evs[i].len, i + 1 == n && st ? st->status : NULL,
                             l->cfg->event_ring_size, l->cfg->event_ttl_s, &ekeys);
    count += state_commands(l->cfg, job_id, n > 0, st, &skeys, &cmds[count]);

    int rc = redis_pipeline_quiet(l, cmds, count, replies);
    if (rc == -2)
        rc = resend_missing_scripts(l, job_id, evs, n, st, &skeys, replies);
    for (int i = 0; i < count; i++)
        if (replies[i])
            freeReplyObject(replies[i]);
    free(replies);
    free(cmds);
    return rc;
}

int redis_check_jobs(redis_link *l, const char (*ids)[UUID_STR_LEN], size_t n,
                     bool renew_leases, const char *worker_id, bool *cancel)
{
    for (size_t i = 0; i < n; i++)
        cancel[i] = false;
    if (l->c == NULL)
        return -1;
    if (n == 0)
        return 0;

    size_t per_job = renew_leases ? 2 : 1;
    redis_argv *cmds = calloc(n * per_job, sizeof *cmds);
    char (*keys)[KEY_MAX] = calloc(n * per_job, KEY_MAX);
    redisReply **replies = calloc(n * per_job, sizeof *replies);
    int rc = -1;
    if (cmds == NULL || keys == NULL || replies == NULL) {
        log_error("%s: out of memory for a Redis pipeline", l->who);
        goto out;
    }

    int count = 0;
    for (size_t i = 0; i < n; i++) {
        redis_argv *c = &cmds[count];
        argv_add(c, "EXISTS");
        argv_add(c, key_cancel(keys[count], ids[i]));
        count++;
        if (renew_leases) {
            c = &cmds[count];
            argv_add(c, "SET");
            argv_add(c, key_lease(keys[count], ids[i]));
            argv_add(c, worker_id);
            argv_add(c, "PX");
            argv_add_num(c, 0, l->cfg->lease_ms > 0 ? l->cfg->lease_ms : 1);
            count++;
        }
    }

    if (redis_pipeline(l, cmds, count, replies) < 0 && l->c == NULL)
        goto out;   /* the connection failed: no answer is trustworthy */
    for (size_t i = 0; i < n; i++) {
        const redisReply *r = replies[i * per_job];
        cancel[i] = r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer > 0;
    }
    rc = 0;
out:
    if (replies)
        for (size_t i = 0; i < n * per_job; i++)
            if (replies[i])
                freeReplyObject(replies[i]);
    free(replies);
    free(keys);
    free(cmds);
    return rc;
}

int redis_publish_queued(redis_link *l, const char *job_id, const char *type,
                         const char *tenant, int band, const char *event)
{
    jobq_keys k;
    if (jobq_keys_of(&k, type, tenant) != 0) {
        log_warn("job %s: its queue cannot be keyed; reconciliation queues it", job_id);
        return -1;
    }
    if (redis_link_try(l) == NULL) {
        log_warn("job %s: Redis is down; reconciliation queues it", job_id);
        return -1;
    }
    /* The event first: a worker that pops the id finds its ring begun. */
    redis_argv append;
    event_keys keys;
    event_append_command(&append, false, job_id, 1, event, strlen(event), "queued",
                         l->cfg->event_ring_size, l->cfg->event_ttl_s, &keys);
    redisReply *rep = NULL;
    bool refused = redis_pipeline(l, &append, 1, &rep) != 0 || rep == NULL
                   || rep->type == REDIS_REPLY_ERROR;
    freeReplyObject(rep);
    if (refused) {
        log_warn("job %s: Redis refused its first event; reconciliation queues it", job_id);
        return -1;
    }
    redis_argv by_sha, by_text;
    jobq_enqueue_command(&by_sha, true, &k, job_id, band, JOBQ_BACK, NULL);
    jobq_enqueue_command(&by_text, false, &k, job_id, band, JOBQ_BACK, NULL);
    rep = redis_script_run(l, &by_sha, &by_text);
    refused = rep == NULL || rep->type == REDIS_REPLY_ERROR;
    freeReplyObject(rep);
    if (refused) {
        log_warn("job %s: Redis refused its queue entry; reconciliation queues it", job_id);
        return -1;
    }
    return 0;
}
