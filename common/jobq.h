/*
 * jobq.h - how job ids wait in Redis for a worker, fairly between tenants,
 * and the Lua scripts every writer and reader of the queues goes through.
 *
 * A job type's queue is one list per tenant, jobs:queue:{type}:{tenant}
 * (newest at the left, oldest at the right), and a ring of the tenants
 * that have ids waiting, jobs:ready:{type}, each tenant on it once, the
 * next turn at the right. jobs:active:{type} holds the tenants with ids
 * waiting, so an enqueue knows in O(1) whether the tenant must join the
 * ring.
 *
 *   enqueue  LPUSH the id on the tenant's list (RPUSH: to its front), and
 *            when SADD says the tenant was not active, LPUSH the tenant on
 *            the ring. With a delayed set and member, first ZREM the
 *            member and do nothing unless it was there (promotion).
 *   take     a worker rotates the first ring of its types that is not
 *            empty (LMOVE from its right end to its left): the tenant whose
 *            turn it is, who stays on the ring, now last in line.
 *   pop      RPOP that tenant's oldest id (of its highest priority band
 *            with one, see below); when its lists are then empty, the
 *            tenant leaves the ring and the active set. A take told
 *            which tenant to expect (the one the thread served last) pops
 *            in the same call when that tenant's turn is the one it got:
 *            at one tenant, every time, so a job costs one call, as the
 *            single BRPOP of one FIFO list did.
 *
 * So each turn of the ring gives one tenant one job: a tenant's wait
 * depends on its own backlog and on how many tenants are waiting, never on
 * how many ids another tenant has queued. At one tenant the ring holds
 * that tenant alone and the order is its list's: FIFO, as before. A turn
 * never leaves Redis, so job threads take turns of the same tenant at
 * once, and a worker that dies between take and pop costs the tenant
 * nothing.
 *
 * Only an idle worker blocks: when take finds every ring empty it BRPOPs
 * them, which hands it a tenant off the ring ("held"), and its pop puts
 * the tenant back when more ids wait. A worker that dies between that
 * BRPOP and its pop leaves the tenant active, with ids, and off the ring;
 * reconciliation puts it back (repair). A repair that met a worker merely
 * between the two commands does no harm: a held pop puts the tenant back
 * only if it is not on the ring already, so a tenant never has two places.
 *
 * Priority orders work inside a tenant's turn. A job's priority
 * (-1000..1000) puts it in one of JOBQ_BANDS bands, each a list of its
 * own per (type, tenant): urgent (100..1000), high (1..99), normal (0, the
 * list named as before bands existed), low (-99..-1) and bulk
 * (-1000..-100). A pop takes the oldest id of the tenant's highest band
 * that is not empty, and the tenant leaves the ring when all its bands
 * are. So among one tenant's queued jobs of a type a higher band is
 * always taken first, and FIFO holds inside a band; the ring and its
 * fairness between tenants stay as they are.
 *
 * Bands would starve the lowest forever while higher ones refill, so a
 * tenant's pops of a type are counted (jobs:turns:{type}, reset when all
 * its bands are empty) and every Nth one (the worker's
 * AGENTGATE_PRIORITY_FAIR_EVERY; 0 turns it off) reads the bands the
 * other way round: it takes the oldest id of the lowest band that is not
 * empty. A low job therefore waits at most about N times the jobs queued
 * ahead of it in its own and lower bands, however many higher ones come.
 * The count and the bands live in the same script call as the pop: a job
 * still costs one call.
 */
#ifndef AG_JOBQ_H
#define AG_JOBQ_H

#include <stdbool.h>
#include <stddef.h>

#include "events.h"
#include "keys.h"

/* The priority bands, from JOBQ_BAND_MIN (bulk) to JOBQ_BAND_MAX
 * (urgent); band 0, the normal one, holds priority 0, so a band left at
 * zero is the normal one. */
#define JOBQ_BANDS 5
#define JOBQ_BAND_MAX 2
#define JOBQ_BAND_MIN (-2)
#define JOBQ_BAND_NORMAL 0

/* The band (JOBQ_BAND_MIN..JOBQ_BAND_MAX) of a job's priority. */
int jobq_band_of(long long priority);

/* The band's name ("urgent", "high", "normal", "low", "bulk"), or NULL
 * when band is out of range. */
const char *jobq_band_name(int band);

/* The band whose name (jobq_band_name) is name, or JOBQ_BANDS when none
 * is. */
int jobq_band_named(const char *name);

/* The band of k->lists[at]: what a take or pop answers as its index. */
#define jobq_band_at(at) (JOBQ_BAND_MAX - (at))

/* The name a key or a delayed member gives band: NULL for the normal
 * band, whose keys and members keep their names from before bands. */
const char *jobq_band_suffix(int band);

/* The keys of one tenant's queue of one type, as the scripts name them. */
typedef struct jobq_keys {
    char lists[JOBQ_BANDS][KEY_MAX]; /* jobs:queue:{type}:{tenant}[:{band}]: lists[i] holds
                                        band JOBQ_BAND_MAX - i, highest first */
    char ready[KEY_MAX];        /* jobs:ready:{type} */
    char active[KEY_MAX];       /* jobs:active:{type} */
    char delayed[KEY_MAX];      /* jobs:delayed:{type} */
    char turns[KEY_MAX];        /* jobs:turns:{type} */
    char tenant[KEY_TENANT_MAX + 1];
} jobq_keys;

/* Fills k for tenant's queue of type (a registered type name). Returns 0,
 * or -1 when tenant breaks its rule (k is then unusable). */
int jobq_keys_of(jobq_keys *k, const char *type, const char *tenant);

/* Which end of the tenant's list an id joins: the back (a new or retried
 * job) or the front (one that has waited already: handed back unstarted,
 * or found lost by reconciliation). */
typedef enum { JOBQ_BACK, JOBQ_FRONT } jobq_end;

/*
 * Fills cmd with the enqueue script's call for job id (a checked UUID)
 * onto the list of band (jobq_band_of the job's priority; one out of
 * range counts as the normal band): EVALSHA when use_sha, else EVAL with its
 * text (the fallback after a NOSCRIPT). With member (a delayed set's "{tenant}:{id}", see
 * key_delayed_member), the id moves from k->delayed only if member is
 * still there, atomically: of several workers promoting it, one wins.
 * cmd points into k, id and member, which must outlive it. The reply is
 * 1 (the tenant joined the ring), 0 (it was on it already) or -1 (member
 * was gone: nothing done).
 */
void jobq_enqueue_command(redis_argv *cmd, bool use_sha, const jobq_keys *k,
                          const char *id, int band, jobq_end end, const char *member);

/* The most rings one take names, and the most words of its call. */
#define JOBQ_TAKE_RINGS_MAX 32
#define JOBQ_TAKE_WORDS_MAX (JOBQ_TAKE_RINGS_MAX + JOBQ_BANDS + 10)

/* Numbers a take's call points at. */
typedef struct jobq_take_bufs {
    char nkeys[16];
    char n[16];
    char ring[16];
    char every[16];
} jobq_take_bufs;

/*
 * Fills argv/argvlen (room for JOBQ_TAKE_WORDS_MAX words) with the take
 * script's call over the n rings (jobs:ready:{type}, in the order the
 * worker prefers its types), by SHA-1 or by text. hint (may be NULL) is a
 * tenant whose turn on ring hint_ring (an index into rings) the caller
 * expects, usually the one it served last: when that turn comes, the
 * script pops the tenant's job itself, saving the pop's round trip, with
 * every as jobq_pop_command's. The call points into rings, hint and bufs.
 * Returns the number of words, or -1 when n is 0 or above
 * JOBQ_TAKE_RINGS_MAX. The reply is nil when every ring is empty, else
 * [i, tenant]: ring i (from 1) gave the tenant's turn, or
 * [i, tenant, id, at] when it was the hint's (id nil and at -1 when its
 * lists were empty), popped as jobq_pop_command pops a rotated turn.
 */
int jobq_take_argv(const char **argv, size_t *argvlen, jobq_take_bufs *bufs, bool use_sha,
                   const char (*rings)[KEY_MAX], size_t n, const jobq_keys *hint,
                   int hint_ring, int every);

/* How the caller came by the tenant's turn. */
typedef enum {
    JOBQ_ROTATED,   /* take: the tenant is still on the ring */
    JOBQ_HELD,      /* BRPOP: the tenant was taken off the ring */
} jobq_turn;

/* Fills cmd with the pop script's call for the tenant whose turn the
 * caller got as turn says; every is the bands' rule's N (0: strictly by
 * band). numbuf[0] of cmd holds every. The reply is [id, at]: the oldest
 * id of the tenant's highest band that is not empty (of the lowest on
 * every Nth pop) and its list's index in k->lists (jobq_band_at), or nil
 * when all were empty (the turn is spent; the worker takes the next). */
void jobq_pop_command(redis_argv *cmd, bool use_sha, const jobq_keys *k, jobq_turn turn,
                      int every);

/* Fills cmd with the repair script's call: puts the tenant back on the
 * ring when it is not on it and has ids waiting in any band or is still
 * active. The reply is 1 when it did, else 0. */
void jobq_repair_command(redis_argv *cmd, bool use_sha, const jobq_keys *k);

/*
 * The script for jobs just committed (a group commit's, or a batch's):
 * for each, what jobq_enqueue_command and event_append_command would do
 * with its job.queued event (id 1, status "queued") and its id (at the
 * back of its band's list), all in one call, so a batch of submissions
 * costs Redis one command. The call is the head (jobq_new_jobs_head),
 * the number of keys, JOBQ_NEW_KEYS keys per job (w->keys, job by job),
 * then the ring size, the TTL in seconds and, job by job, the channel,
 * the event's body, the id and the tenant. The reply is the number of
 * jobs.
 */
#define JOBQ_NEW_KEYS 5
#define JOBQ_NEW_ARGS 4

/* One job's words of the call for new jobs. */
typedef struct jobq_new_job {
    char keys[JOBQ_NEW_KEYS][KEY_MAX];  /* its ring, state, band list; the type's ring and
                                           active set */
    char channel[KEY_MAX];
    char id[40];
    char tenant[KEY_TENANT_MAX + 1];
} jobq_new_job;

/* Fills w for job id (a checked UUID) of type and tenant, enqueued in the
 * band of priority. Returns 0, or -1 when tenant breaks its rule. */
int jobq_new_job_words(jobq_new_job *w, const char *id, const char *type, const char *tenant,
                       long long priority);

/* The first two words of the call for new jobs: EVALSHA and its SHA-1,
 * or (not use_sha) EVAL and its text. Static strings. */
void jobq_new_jobs_head(bool use_sha, const char **word, const char **script);

/* The scripts' texts, for SCRIPT LOAD on a new connection. */
extern const char jobq_enqueue_lua[];
extern const char jobq_take_lua[];
extern const char jobq_pop_lua[];
extern const char jobq_repair_lua[];
extern const char jobq_new_jobs_lua[];

#endif
