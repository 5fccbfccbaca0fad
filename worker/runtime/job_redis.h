/*
 * job_redis.h - the worker's Redis side: its blocking hiredis connections,
 * taking job ids off the queues (fairly between tenants), appending events to a job's ring with
 * their announcements, the job's state hash and lease, and the
 * cancellation flags.
 *
 * Redis is the data plane, never the authority: every write here follows
 * the PostgreSQL write it mirrors, and a failed one is logged and
 * survived.
 */
#ifndef AG_WORKER_JOB_REDIS_H
#define AG_WORKER_JOB_REDIS_H

#include <stdbool.h>
#include <stddef.h>
#include <hiredis/hiredis.h>

#include "backoff.h"
#include "config.h"
#include "events.h"
#include "jobq.h"
#include "keys.h"
#include "queues.h"
#include "uuid.h"

/* One blocking connection and its reconnect schedule. */
typedef struct redis_link {
    redisContext *c;        /* NULL while disconnected */
    const ag_config *cfg;   /* borrowed: host, port, db, ring and TTL sizes */
    const char *who;        /* borrowed: names the owner in log lines */
    backoff bo;
    bool down_logged;       /* a failure was logged since the last success */
    unsigned long epoch;    /* redis_master_epoch() when c was made: a later
                               Sentinel switch closes c (common/redis_conn.h) */
} redis_link;

void redis_link_init(redis_link *l, const ag_config *cfg, const char *who);

/* Returns the connection, connecting first (retrying on the backoff
 * schedule, each failure logged) until it succeeds or stop(arg) is true;
 * NULL then. A connection made before Sentinel's latest master switch is
 * closed first, here and in redis_link_try. */
redisContext *redis_link_wait(redis_link *l, stop_fn stop, void *arg);

/* Returns the connection, or makes one attempt when the schedule says one
 * is due; NULL when down. Never waits for the schedule. */
redisContext *redis_link_try(redis_link *l);

/* True when l's connection was made before Sentinel's latest master
 * switch (the next wait or try replaces it): for a holder that reads a
 * connection without asking for it each time (a subscription). */
bool redis_link_stale(const redis_link *l);

/* Closes a connection found broken (why goes to the log), so the next
 * wait or try reconnects. */
void redis_link_drop(redis_link *l, const char *why);

void redis_link_close(redis_link *l);

/*
 * Sends the n commands as one pipeline and reads their n replies. When
 * replies is not NULL it gets them (the caller frees each with
 * freeReplyObject); otherwise they are freed here. Returns 0 when every
 * reply was read and none is an error reply, -1 otherwise; a connection
 * failure also drops the link (replies then holds NULLs).
 */
int redis_pipeline(redis_link *l, const redis_argv *cmds, int n, redisReply **replies);

/* Where a popped id waited: its type, its tenant's list and the list's
 * priority band, so it can be handed back to the front of the same list
 * or queued again in the same band. */
typedef struct job_origin {
    char type[QUEUE_NAME_MAX];
    char tenant[KEY_TENANT_MAX + 1];
    int band;               /* jobq.h; JOBQ_BAND_NORMAL when unknown */
} job_origin;

/*
 * Takes up to max jobs of the types of qs, fairly between tenants
 * (common/jobq.h), in one pipeline of max take calls: each gives the next
 * tenant's turn, and the pop script the oldest id of that tenant's
 * highest priority band (of its lowest, every
 * AGENTGATE_PRIORITY_FAIR_EVERY-th pop), as max job threads taking one
 * job each in a row would. What is there is taken, never waited for: only
 * when every ring is empty does it wait, in BRPOP over the rings, at most
 * timeout_s seconds, for one job. On entry *last is the turn taken last
 * (type "" for none): a take that gets that tenant's turn pops its job in
 * the same call (at one tenant every take does, so max jobs cost one
 * round trip); a turn of another tenant costs one more call to pop. On
 * return *last is the turn of the last job taken. Job k's type, tenant
 * and band go to froms[k] and its id, as a string, to values[k]. Returns
 * the number taken (0: the wait ran out, the turns' lists were empty, an
 * entry unusable as a tenant or an id was dropped, or Redis refused the
 * BRPOP, which is logged and followed by a 1 s pause), or -1 when the
 * connection failed with nothing taken (the link is dropped).
 */
int redis_take_jobs(redis_link *l, const queue_set *qs, int max, int timeout_s,
                    job_origin *last, job_origin *froms, char (*values)[64]);

/* Puts id back at the front of its tenant's list (the enqueue script), so
 * it is the tenant's next job: one popped but not started. Returns 0 or
 * -1. */
int redis_push_back(redis_link *l, const job_origin *from, const char *id);

/*
 * Runs one script call on l: by_sha, then by_text when Redis answers
 * NOSCRIPT. Returns the reply (the caller frees it), or NULL when Redis
 * failed or refused it (logged; on a connection failure the link is
 * dropped).
 */
redisReply *redis_script_run(redis_link *l, const redis_argv *by_sha,
                             const redis_argv *by_text);

/* One event to append to a job's ring. */
typedef struct redis_event {
    long long seq;
    const char *body;
    size_t len;
} redis_event;

enum { LEASE_KEEP = 0, LEASE_SET, LEASE_DELETE };

/* What else to write about a job next to its events. */
typedef struct job_redis_state {
    const char *status;       /* HSET jobs:state:{id} status, NULL: leave */
    const char *worker_id;    /* HSET worker_id (and the lease's value) */
    int lease;                /* LEASE_*: SET jobs:lease:{id} PX lease_ms, or DEL */
    const char *requeue_type; /* enqueue id again (jobq.h), NULL: don't */
    const char *requeue_tenant; /* with requeue_type: the job's tenant */
    int requeue_band;         /* with requeue_type: its priority band (jobq.h;
                                 0, the normal band, when not set) */
    long long requeue_at_ms;  /* with requeue_type: 0 enqueues it now; else
                                 it waits in jobs:delayed:{type} until this
                                 epoch ms */
    bool dead_letter;         /* LPUSH id onto jobs:dead, capped */
} job_redis_state;

/*
 * Appends the n events (each one call of the append script: RPUSH to the
 * ring, LTRIM, EXPIRE, HSET last_event_id and st->status, EXPIRE, PUBLISH,
 * atomically) and then writes the rest of *st (may be NULL), all as one
 * pipeline. job_id must be a checked UUID, requeue_type a registered type
 * and requeue_tenant the job's tenant.
 * Returns 0, or -1 when Redis failed (logged).
 */
int redis_write_job(redis_link *l, const char *job_id, const redis_event *evs,
                    size_t n, const job_redis_state *st);

/*
 * The supervisor's round: EXISTS cancel:{id} for each of the n ids, and
 * when renew_leases, SET jobs:lease:{id} worker_id PX lease_ms, in one
 * pipeline. cancel[i] gets whether ids[i] has its flag set. Returns 0, or
 * -1 when Redis failed (cancel[] is then all false).
 */
int redis_check_jobs(redis_link *l, const char (*ids)[UUID_STR_LEN], size_t n,
                     bool renew_leases, const char *worker_id, bool *cancel);

/*
 * Publishes a job that a worker queued in PostgreSQL (a schedule's tick,
 * an MCP discovery): appends its first event (event, the job.queued body,
 * event id 1) to its ring and then puts its id on the tenant's queue of
 * type in the given priority band (jobq.h), at the back. Does not wait for
 * a connection. Returns 0, or -1 when Redis was unreachable or refused
 * (logged with job_id); reconciliation queues such a job later, so a
 * failure loses nothing.
 */
int redis_publish_queued(redis_link *l, const char *job_id, const char *type,
                         const char *tenant, int band, const char *event);

#endif
