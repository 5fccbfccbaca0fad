/*
 * maintenance.c - promotion of delayed jobs, the lease reaper (with the
 * expiry of tool-call approvals nobody decided in time), reconciliation of
 * Redis with PostgreSQL, and the turns of the retention rounds, the
 * schedules and the release of held agent runs (see maintenance.h; their
 * own work is in retention.c, schedules.c and held_runs.c).
 *
 * All of them are idempotent and safe to run in every worker at once; a
 * round that fails (a dependency down) is simply tried again at its next
 * interval, so an outage costs log lines, never a crash or a busy loop.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "events.h"
#include "held_runs.h"
#include "job_mirror.h"
#include "jobq.h"
#include "jobtypes.h"
#include "keys.h"
#include "log.h"
#include "maintenance.h"
#include "redis_script.h"
#include "retention.h"
#include "worker_metrics.h"
#include "schedules.h"

#define TICK_MS               50
#define PROMOTE_INTERVAL_MS   200
#define RELEASE_INTERVAL_MS   500     /* held agent runs looked at (held_runs.h) */
#define PROMOTE_BATCH         500     /* ids moved per type and round */
#define REAP_BATCH            100     /* jobs per reaper transaction */
#define RECONCILE_GRACE_MS    2000    /* a job queued this recently is left alone */
#define RECONCILE_BATCH       10000   /* queued jobs looked at per round */
#define RECONCILE_QUEUE_MAX   1000000 /* a longer queue is not listed */
#define CONNECT_TIMEOUT_S     2
#define SCHEDULE_INTERVAL_MS  1000    /* how often due schedules are fired */
#define EXPIRE_BATCH          100     /* expired approvals handled per round */

/* ---------------------------------------------------------------------------
 * Promotion of due delayed jobs
 * ------------------------------------------------------------------------- */

/* Sends the n enqueue calls of cmds (by SHA-1) as one pipeline; those
 * Redis answers NOSCRIPT go again by text. Returns the number of ids
 * moved (a call answering 1 or 0; -1 means another worker moved it
 * first), or -1 when Redis failed. */
static int run_enqueues(maintenance *m, const redis_argv *cmds, const jobq_keys *keys,
                        char (*ids)[UUID_STR_LEN], char (*members)[KEY_MEMBER_MAX],
                        const int *bands, int n)
{
    redisReply **replies = calloc((size_t)n, sizeof *replies);
    if (replies == NULL)
        return -1;
    int moved = 0;
    int rc = redis_pipeline(&m->rd, cmds, n, replies);
    if (m->rd.c == NULL)
        rc = -2;    /* the connection failed: no answer is trustworthy */
    for (int i = 0; i < n && rc != -2; i++) {
        redisReply *r = replies[i];
        if (r != NULL && r->type == REDIS_REPLY_ERROR && redis_script_missing(r->str, r->len)) {
            redis_argv by_text;
            jobq_enqueue_command(&by_text, false, &keys[i], ids[i], bands[i], JOBQ_BACK,
                                 members[i]);
            freeReplyObject(r);
            replies[i] = NULL;
            if (redis_pipeline(&m->rd, &by_text, 1, &replies[i]) < 0 && m->rd.c == NULL)
                rc = -2;
            r = replies[i];
        }
        if (r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer >= 0)
            moved++;
    }
    for (int i = 0; i < n; i++)
        freeReplyObject(replies[i]);
    free(replies);
    return rc == -2 ? -1 : moved;
}

/* Moves the due members of the delayed set of type (at most
 * PROMOTE_BATCH) to their tenants' lists of the band each names, each
 * with the enqueue script guarded by its ZREM: an id is never in both or
 * in neither, and of workers promoting the same id one wins. A member
 * that is not "[{band}/]{tenant}:{id}" is dropped: PostgreSQL still has
 * the job queued, so reconciliation puts it back as it should be. */
static void promote_type(maintenance *m, const char *type, const char *now)
{
    char delayed[KEY_MAX], batch[16];
    key_delayed(delayed, type);
    snprintf(batch, sizeof batch, "%d", PROMOTE_BATCH);
    redis_argv cmd;
    redis_argv_of(&cmd, "ZRANGEBYSCORE", delayed, "-inf", now, "LIMIT", "0", batch,
                  (const char *)NULL);
    redisReply *due = NULL;
    if (redis_pipeline(&m->rd, &cmd, 1, &due) < 0 || due->type != REDIS_REPLY_ARRAY
        || due->elements == 0) {
        freeReplyObject(due);
        return;
    }

    size_t n = due->elements;
    redis_argv *cmds = calloc(n, sizeof *cmds);
    jobq_keys *keys = calloc(n, sizeof *keys);
    char (*ids)[UUID_STR_LEN] = calloc(n, sizeof *ids);
    char (*members)[KEY_MEMBER_MAX] = calloc(n, sizeof *members);
    int *bands = calloc(n, sizeof *bands);
    int count = 0;
    for (size_t i = 0; cmds && keys && ids && members && bands && i < n; i++) {
        const redisReply *e = due->element[i];
        if (e->type != REDIS_REPLY_STRING)
            continue;
        char tenant[KEY_TENANT_MAX + 1], band[KEY_BAND_MAX + 1];
        bool parsed = key_delayed_member_parse(e->str, e->len, band, tenant, ids[count]) == 0;
        bands[count] = band[0] ? jobq_band_named(band) : JOBQ_BAND_NORMAL;
        if (!parsed || bands[count] == JOBQ_BANDS
            || jobq_keys_of(&keys[count], type, tenant) != 0) {
            log_warn("promotion: dropped %.80s from %s: not \"[{band}/]{tenant}:{id}\"; "
                     "reconciliation enqueues its job if it is still queued", e->str, delayed);
            redis_argv zrem;
            redis_argv_of(&zrem, "ZREM", delayed, e->str, (const char *)NULL);
            zrem.argvlen[2] = e->len;   /* the member as stored, any bytes */
            redis_pipeline(&m->rd, &zrem, 1, NULL);
            continue;
        }
        memcpy(members[count], e->str, e->len + 1);
        jobq_enqueue_command(&cmds[count], true, &keys[count], ids[count], bands[count],
                             JOBQ_BACK, members[count]);
        count++;
    }
    int moved = count > 0 ? run_enqueues(m, cmds, keys, ids, members, bands, count) : 0;
    if (moved > 0)
        log_debug("%d delayed %s jobs due: queued", moved, type);
    free(bands);
    free(members);
    free(ids);
    free(keys);
    free(cmds);
    freeReplyObject(due);
}

static void promote_due(maintenance *m)
{
    const queue_set *qs = &m->w->queues;
    if (qs->count == 0 || redis_link_try(&m->rd) == NULL)
        return;
    char now[24];
    snprintf(now, sizeof now, "%lld", clock_wall_ms());
    for (size_t i = 0; i < qs->count && m->rd.c != NULL; i++)
        promote_type(m, qs->names[i], now);
}

/* ---------------------------------------------------------------------------
 * The reaper
 * ------------------------------------------------------------------------- */

/* What became of one reaped job, to tell Redis once it is committed. */
typedef struct reaped {
    const expired_job *job;
    long long seq;
    char *body;                 /* the encoded event, malloc'd */
    const char *status;         /* "queued", "failed" or "cancelled" */
} reaped;

/* Writes the new state of e with its event; fills *out. Inside the
 * reaper's transaction, e's row locked. */
static store_rc reap_one(maintenance *m, PGconn *c, const expired_job *e, bool orphan,
                         reaped *out)
{
    char message[400], final[sizeof message + 64];
    snprintf(message, sizeof message,
             orphan ? "worker %s restarted while running attempt %d"
                    : "worker %s stopped heartbeating during attempt %d "
                      "(lease of %d ms expired)",
             e->worker_id[0] ? e->worker_id : "(unknown)", e->attempt, m->w->cfg->lease_ms);
    const char *code = orphan ? "worker_restarted" : "lease_expired";
    out->job = e;
    /* The dead attempt may have sent events to the ring that its event
     * buffer had not stored yet: they go to PostgreSQL first, so this
     * event follows them instead of reusing ids clients already saw. */
    long long last = job_mirror_recover_tail(&m->rd, c, e->id, e->tenant_id, e->attempt,
                                             e->last_event_id);
    out->seq = last + 1;

    const char *type;
    char *data;
    if (e->cancel_requested) {
        out->status = "cancelled";
        type = "job.cancelled";
        data = event_cancelled_data("cancelled by request");
    } else if (e->attempt >= e->max_attempts) {
        snprintf(final, sizeof final, "%s; no attempts left (%d of %d)", message,
                 e->attempt, e->max_attempts);
        out->status = "failed";
        type = "job.failed";
        data = event_failed_data(code, final);
    } else {
        out->status = "queued";
        type = "job.retrying";
        data = event_retrying_data(e->attempt, orphan ? "worker restarted" : "lease expired",
                                   0, code, message);
    }
    out->body = data ? event_encode(e->id, out->seq, type, clock_wall_ms(), data) : NULL;
    free(data);
    if (out->body == NULL)
        return STORE_ERROR;

    if (strcmp(out->status, "queued") == 0) {
        job_requeue q = { .seq = out->seq, .body = out->body, .error_code = code,
                          .error_message = message };
        return store_requeue(c, e->id, e->tenant_id, e->attempt, &q);
    }
    bool cancelled = strcmp(out->status, "cancelled") == 0;
    job_final f = { .status = out->status, .seq = out->seq, .event_type = type,
                    .body = out->body,
                    .error_code = cancelled ? "cancelled" : code,
                    .error_message = cancelled ? "cancelled by request" : final };
    return store_finish(c, e->id, e->tenant_id, e->attempt, &f);
}

/* Tells Redis about a committed reaping: the event, the state, and the
 * job back in its queue or in the dead-letter list. */
static void reaped_mirror(maintenance *m, const reaped *r)
{
    if (redis_link_try(&m->rd) == NULL)
        return;     /* reconciliation enqueues it once Redis is back */
    bool queued = strcmp(r->status, "queued") == 0;
    job_redis_state st = { .status = r->status, .lease = LEASE_DELETE,
                           .requeue_type = queued ? r->job->type : NULL,
                           .requeue_tenant = r->job->tenant_id,
                           .requeue_band = jobq_band_of(r->job->priority),
                           .dead_letter = strcmp(r->status, "failed") == 0 };
    job_mirror(&m->rd, m->pg.conn, r->job->id, r->job->tenant_id, JOB_MIRROR_ASK_REDIS,
               r->seq, r->body, &st);
}

/* One transaction's worth. Returns the number of jobs reaped, or -1. */
static int reap_batch(maintenance *m, PGconn *c, const char *orphans_of)
{
    expired_job jobs[REAP_BATCH];
    reaped done[REAP_BATCH];
    int n_done = 0;

    if (store_exec(c, "BEGIN") != STORE_OK)
        return -1;
    int n = store_lock_expired(c, m->w->cfg->lease_ms, orphans_of, REAP_BATCH, jobs);
    bool ok = n >= 0;
    for (int i = 0; ok && i < n; i++) {
        store_rc rc = reap_one(m, c, &jobs[i], orphans_of != NULL, &done[n_done]);
        if (rc == STORE_OK)
            n_done++;
        else
            free(done[n_done].body);
        ok = rc != STORE_ERROR;
    }
    ok = ok && store_exec(c, "COMMIT") == STORE_OK;
    if (!ok) {
        store_exec(c, "ROLLBACK");
        for (int i = 0; i < n_done; i++)
            free(done[i].body);
        return -1;
    }
    for (int i = 0; i < n_done; i++) {
        const expired_job *e = done[i].job;
        log_warn("job %s: %s after %s of worker %s lost it (attempt %d of %d)", e->id,
                 done[i].status, orphans_of ? "a restart" : "the lease",
                 e->worker_id[0] ? e->worker_id : "(unknown)", e->attempt, e->max_attempts);
        reaped_mirror(m, &done[i]);
        free(done[i].body);
        if (orphans_of == NULL)
            worker_metrics_lease_expired(e->type);
        if (strcmp(done[i].status, "queued") == 0)
            worker_metrics_job_retried(e->type, orphans_of ? "worker_restarted"
                                                           : "lease_expired");
        else if (strcmp(done[i].status, "failed") == 0)
            worker_metrics_dead_letter(e->type);
    }
    return n == REAP_BATCH && n_done == 0 ? -1 : n_done;
}

/* Reaps expired leases (orphans_of NULL) or the jobs a previous process
 * of orphans_of left running, a batch at a time while batches come back
 * full. Returns the number reaped, or -1. */
static int reap(maintenance *m, PGconn *c, const char *orphans_of)
{
    int total = 0, n;
    while ((n = reap_batch(m, c, orphans_of)) == REAP_BATCH)
        total += n;
    if (n < 0 && store_conn_broken(c))
        pg_link_drop(&m->pg);
    return n < 0 && total == 0 ? -1 : total + (n > 0 ? n : 0);
}

/* ---------------------------------------------------------------------------
 * Reconciliation
 * ------------------------------------------------------------------------- */

static int compare_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool sorted_has(char *const *sorted, size_t n, const char *s)
{
    return n > 0 && bsearch(&s, sorted, n, sizeof *sorted, compare_str) != NULL;
}

static void sort_strings(char **v, size_t n)
{
    if (n > 1)
        qsort(v, n, sizeof *v, compare_str);
}

#define PIPELINE_CHUNK 256

/* Builds command i of a chunked pipeline into *cmd (keys into key). */
typedef void (*build_fn)(redis_argv *cmd, char *key, size_t i, void *arg);

/* Sends n commands made by build, PIPELINE_CHUNK at a time, and keeps
 * their replies in replies[0..n) (the caller frees them). Returns 0, or
 * -1 when Redis failed or refused one. */
static int pipeline_chunks(maintenance *m, size_t n, build_fn build, void *arg,
                           redisReply **replies)
{
    redis_argv cmds[PIPELINE_CHUNK];
    char (*keys)[KEY_MAX] = malloc(PIPELINE_CHUNK * sizeof *keys);
    if (keys == NULL)
        return -1;
    int rc = 0;
    for (size_t at = 0; at < n && rc == 0; at += PIPELINE_CHUNK) {
        size_t k = n - at < PIPELINE_CHUNK ? n - at : PIPELINE_CHUNK;
        for (size_t i = 0; i < k; i++)
            build(&cmds[i], keys[i], at + i, arg);
        rc = redis_pipeline(&m->rd, cmds, (int)k, replies + at);
    }
    free(keys);
    return rc;
}

/* The string elements of an array reply, as pointers into it. Returns
 * their number; *out is malloc'd (NULL when there are none or memory
 * ran out). */
static size_t reply_strings(const redisReply *r, char ***out)
{
    *out = NULL;
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements == 0)
        return 0;
    char **v = malloc(r->elements * sizeof *v);
    if (v == NULL)
        return 0;
    size_t n = 0;
    for (size_t i = 0; i < r->elements; i++)
        if (r->element[i]->type == REDIS_REPLY_STRING)
            v[n++] = r->element[i]->str;
    *out = v;
    return n;
}

/* What Redis held of one type's queues before PostgreSQL's snapshot. */
typedef struct type_listing {
    const char *type;
    char **tenants;             /* sorted, unique: PostgreSQL's and the active set's */
    size_t n_tenants;
    long long *lens;            /* each tenant's length over its band lists */
    char **ids;                 /* ids in the lists and the delayed set, sorted; */
    size_t n_ids;               /* NULL when the type was too long to list */
    char **adrift;              /* tenants off the ring though active or with ids */
    size_t n_adrift;
    redisReply *ring_state[2];  /* SMEMBERS active, LRANGE ring */
    redisReply **lists;         /* LRANGE of each tenant's band lists */
    redisReply *delayed;        /* ZRANGE of the delayed set */
    char (*own)[KEY_TENANT_MAX + 1]; /* PostgreSQL's tenant ids, copied */
} type_listing;

static void listing_free(type_listing *L)
{
    for (int i = 0; i < 2; i++)
        freeReplyObject(L->ring_state[i]);
    if (L->lists)
        for (size_t i = 0; i < L->n_tenants * JOBQ_BANDS; i++)
            freeReplyObject(L->lists[i]);
    freeReplyObject(L->delayed);
    free(L->lists);
    free(L->tenants);
    free(L->lens);
    free(L->ids);
    free(L->adrift);
    free(L->own);
}

/* SMEMBERS jobs:active:{type} and LRANGE jobs:ready:{type} into two
 * replies. Returns 0 or -1. */
static int read_ring(maintenance *m, const char *type, redisReply *out[2])
{
    char active[KEY_MAX], ready[KEY_MAX];
    redis_argv cmds[2];
    redis_argv_of(&cmds[0], "SMEMBERS", key_active(active, type), (const char *)NULL);
    redis_argv_of(&cmds[1], "LRANGE", key_ready(ready, type), "0", "-1", (const char *)NULL);
    if (redis_pipeline(&m->rd, cmds, 2, out) < 0 || out[0]->type != REDIS_REPLY_ARRAY
        || out[1]->type != REDIS_REPLY_ARRAY)
        return -1;
    return 0;
}

/* Command i of a listing names band i % JOBQ_BANDS (as an index into a
 * jobq_keys' lists) of tenant i / JOBQ_BANDS. */
static void band_list_key(char *key, const type_listing *L, size_t i)
{
    int band = jobq_band_at((int)(i % JOBQ_BANDS));
    key_queue_band(key, L->type, L->tenants[i / JOBQ_BANDS], jobq_band_suffix(band));
}

static void build_llen(redis_argv *cmd, char *key, size_t i, void *arg)
{
    band_list_key(key, arg, i);
    redis_argv_of(cmd, "LLEN", key, (const char *)NULL);
}

static void build_lrange(redis_argv *cmd, char *key, size_t i, void *arg)
{
    band_list_key(key, arg, i);
    redis_argv_of(cmd, "LRANGE", key, "0", "-1", (const char *)NULL);
}

/* The tenants to look at: those PostgreSQL has queued jobs of type for
 * (in first, PostgreSQL's earlier scan) and those Redis has active. */
static int listing_tenants(type_listing *L, PGresult *first)
{
    int rows = PQntuples(first);
    char **active;
    size_t n_active = reply_strings(L->ring_state[0], &active);
    L->own = malloc(((size_t)rows + 1) * sizeof *L->own);
    L->tenants = malloc(((size_t)rows + n_active + 1) * sizeof *L->tenants);
    if (L->own == NULL || L->tenants == NULL) {
        free(active);
        return -1;
    }
    size_t n = 0;
    for (int r = 0; r < rows; r++) {
        const char *t = PQgetvalue(first, r, 1);
        if (strcmp(PQgetvalue(first, r, 2), L->type) == 0 && key_tenant_valid(t)) {
            memcpy(L->own[n], t, strlen(t) + 1);
            L->tenants[n] = L->own[n];
            n++;
        }
    }
    for (size_t i = 0; i < n_active; i++)
        if (key_tenant_valid(active[i]))
            L->tenants[n++] = active[i];
    free(active);
    sort_strings(L->tenants, n);
    size_t u = 0;
    for (size_t i = 0; i < n; i++)
        if (u == 0 || strcmp(L->tenants[u - 1], L->tenants[i]) != 0)
            L->tenants[u++] = L->tenants[i];
    L->n_tenants = u;
    return 0;
}

/* The tenants of L that are active or have ids but are not on the ring
 * that ring_state shows, sorted. Returns 0 or -1. */
static int find_adrift(type_listing *L, redisReply *ring_state[2], char ***out, size_t *n_out)
{
    char **active, **ring;
    size_t n_active = reply_strings(ring_state[0], &active);
    size_t n_ring = reply_strings(ring_state[1], &ring);
    sort_strings(active, n_active);
    sort_strings(ring, n_ring);
    *out = malloc((L->n_tenants + 1) * sizeof **out);
    *n_out = 0;
    if (*out != NULL)
        for (size_t i = 0; i < L->n_tenants; i++)
            if ((L->lens[i] > 0 || sorted_has(active, n_active, L->tenants[i]))
                && !sorted_has(ring, n_ring, L->tenants[i]))
                (*out)[(*n_out)++] = L->tenants[i];
    free(active);
    free(ring);
    return *out != NULL ? 0 : -1;
}

/*
 * Lists what Redis holds of type's queues: the ring and the active set,
 * each tenant's list length, and, unless they hold more than
 * RECONCILE_QUEUE_MAX ids together, the ids of every list and of the
 * delayed set. Returns 0 or -1 (Redis failed).
 */
static int list_type(maintenance *m, const char *type, PGresult *first, type_listing *L)
{
    L->type = type;
    if (read_ring(m, type, L->ring_state) < 0 || listing_tenants(L, first) < 0)
        return -1;
    size_t n = L->n_tenants, nb = n * JOBQ_BANDS;
    redisReply **lens = calloc(nb + 1, sizeof *lens);
    L->lens = calloc(n + 1, sizeof *L->lens);
    if (lens == NULL || L->lens == NULL) {
        free(lens);
        return -1;
    }
    /* Lengths first: a huge queue is not pulled over. */
    int rc = pipeline_chunks(m, nb, build_llen, L, lens);
    long long total = 0;
    for (size_t i = 0; i < nb; i++) {
        long long len = lens[i] && lens[i]->type == REDIS_REPLY_INTEGER ? lens[i]->integer : 0;
        L->lens[i / JOBQ_BANDS] += len;
        total += len;
        freeReplyObject(lens[i]);
    }
    free(lens);
    if (rc < 0 || find_adrift(L, L->ring_state, &L->adrift, &L->n_adrift) < 0)
        return -1;
    if (total > RECONCILE_QUEUE_MAX) {
        log_warn("reconciliation skips the ids of %s: its queues hold %lld", type, total);
        return 0;
    }

    L->lists = calloc(nb + 1, sizeof *L->lists);
    char delayed[KEY_MAX];
    redis_argv zr;
    redis_argv_of(&zr, "ZRANGE", key_delayed(delayed, type), "0", "-1", (const char *)NULL);
    if (L->lists == NULL || pipeline_chunks(m, nb, build_lrange, L, L->lists) < 0
        || redis_pipeline(&m->rd, &zr, 1, &L->delayed) < 0
        || L->delayed->type != REDIS_REPLY_ARRAY)
        return -1;

    size_t cap = L->delayed->elements + 1;
    for (size_t i = 0; i < nb; i++)
        cap += L->lists[i]->type == REDIS_REPLY_ARRAY ? L->lists[i]->elements : 0;
    L->ids = malloc(cap * sizeof *L->ids);
    if (L->ids == NULL)
        return -1;
    for (size_t i = 0; i < nb; i++) {
        const redisReply *r = L->lists[i];
        for (size_t j = 0; r->type == REDIS_REPLY_ARRAY && j < r->elements; j++)
            if (r->element[j]->type == REDIS_REPLY_STRING)
                L->ids[L->n_ids++] = r->element[j]->str;
    }
    /* A delayed member is "[{band}/]{tenant}:{id}": its id is its last 36 bytes. */
    for (size_t j = 0; j < L->delayed->elements; j++) {
        redisReply *e = L->delayed->element[j];
        char tenant[KEY_TENANT_MAX + 1], id[UUID_STR_LEN];
        if (e->type == REDIS_REPLY_STRING
            && key_delayed_member_split(e->str, e->len, tenant, id) == 0)
            L->ids[L->n_ids++] = e->str + e->len - (UUID_STR_LEN - 1);
    }
    sort_strings(L->ids, L->n_ids);
    return 0;
}

/*
 * Puts back on the ring the tenants found off it both at the listing and
 * now, though active or with ids waiting: an idle worker's BRPOP took the
 * tenant off the ring and the worker stopped before popping its job
 * (killed, or its Redis connection lost), so submissions alone would never
 * bring it back. A tenant seen off the ring only once was most likely
 * between a worker's two commands; one seen twice may still be, which is
 * harmless: that worker's pop finds the tenant on the ring and leaves it
 * there once (jobq.h). Returns the number put back, or -1.
 */
static int repair_ring(maintenance *m, type_listing *L)
{
    if (L->n_adrift == 0)
        return 0;
    redisReply *now[2] = { NULL, NULL };
    char **still = NULL;
    size_t n_still = 0;
    int repaired = 0;
    if (read_ring(m, L->type, now) < 0 || find_adrift(L, now, &still, &n_still) < 0)
        repaired = -1;
    for (size_t i = 0; repaired >= 0 && i < n_still; i++) {
        if (!sorted_has(L->adrift, L->n_adrift, still[i]))
            continue;
        jobq_keys k;
        if (jobq_keys_of(&k, L->type, still[i]) != 0)
            continue;
        redis_argv by_sha, by_text;
        jobq_repair_command(&by_sha, true, &k);
        jobq_repair_command(&by_text, false, &k);
        redisReply *r = redis_script_run(&m->rd, &by_sha, &by_text);
        if (r == NULL) {
            repaired = -1;
        } else if (r->type == REDIS_REPLY_INTEGER && r->integer == 1) {
            log_warn("reconciliation: tenant %s had %s jobs waiting but no place on their "
                     "ring (a worker stopped between taking the tenant off the ring and "
                     "popping its job); put back", still[i], L->type);
            repaired++;
        }
        freeReplyObject(r);
    }
    free(still);
    freeReplyObject(now[0]);
    freeReplyObject(now[1]);
    return repaired;
}

/* The priority band of row r of store_queued_jobs's res. */
static int row_band(PGresult *res, int r)
{
    return jobq_band_of(strtoll(PQgetvalue(res, r, 7), NULL, 10));
}

/* Enqueues row r of res (a due job Redis lost) at the front of its
 * tenant's list of its band: it has waited already. Returns 0, 1 when the
 * row's tenant cannot be keyed (skipped), or -1 when Redis failed. */
static int enqueue_lost(maintenance *m, PGresult *res, int r, const char *type)
{
    const char *id = PQgetvalue(res, r, 0), *tenant = PQgetvalue(res, r, 1);
    int band = row_band(res, r);
    jobq_keys k;
    if (jobq_keys_of(&k, type, tenant) != 0) {
        log_warn("reconciliation: job %s left alone: tenant id %.80s cannot be keyed", id,
                 tenant);
        return 1;
    }
    redis_argv by_sha, by_text;
    jobq_enqueue_command(&by_sha, true, &k, id, band, JOBQ_FRONT, NULL);
    jobq_enqueue_command(&by_text, false, &k, id, band, JOBQ_FRONT, NULL);
    redisReply *rep = redis_script_run(&m->rd, &by_sha, &by_text);
    freeReplyObject(rep);
    return rep != NULL ? 0 : -1;
}

/* Cancels queued job row r of res, whose cancellation was requested while
 * it ran (it cannot be claimed again). */
static void cancel_queued(maintenance *m, PGconn *c, PGresult *res, int r)
{
    const char *id = PQgetvalue(res, r, 0), *tenant = PQgetvalue(res, r, 1);
    long long seq = strtoll(PQgetvalue(res, r, 4), NULL, 10) + 1;
    char *data = event_cancelled_data("cancelled by request");
    char *body = data ? event_encode(id, seq, "job.cancelled", clock_wall_ms(), data) : NULL;
    free(data);
    if (body == NULL)
        return;
    job_final f = { .status = "cancelled", .seq = seq, .event_type = "job.cancelled",
                    .body = body, .error_code = "cancelled",
                    .error_message = "cancelled by request", .from_status = "queued" };
    if (store_finish(c, id, tenant, atoi(PQgetvalue(res, r, 3)), &f) == STORE_OK) {
        log_info("job %s: cancelled (its cancellation was requested before it was "
                 "queued again)", id);
        job_redis_state st = { .status = "cancelled" };
        if (redis_link_try(&m->rd) != NULL)
            job_mirror(&m->rd, c, id, tenant, JOB_MIRROR_ASK_REDIS, seq, body, &st);
    }
    free(body);
}

/*
 * Makes Redis hold every queued job of type, and every tenant with jobs
 * waiting a place on the type's ring. Redis is read first and PostgreSQL
 * after it: a job a worker pops between the two reads is then either
 * still in the Redis listing or already claimed (running) in the newer
 * snapshot. In the other order every job popped after the snapshot looked
 * lost - under a backlog, many of the oldest queued jobs each round, since
 * those are the ones being popped - and was pushed a second time. Only a
 * job popped before the Redis read and still unclaimed when the snapshot
 * is taken (a window of one claim) is pushed again, and its second claim
 * finds it taken. first is PostgreSQL's scan that named the type (its
 * tenants are listed). Returns the number enqueued again, or -1.
 */
static int reconcile_type(maintenance *m, PGconn *c, const char *type, PGresult *first)
{
    type_listing L = { 0 };
    if (list_type(m, type, first, &L) < 0) {
        listing_free(&L);
        return -1;
    }
    int pushed = 0, failed = 0;
    PGresult *res = NULL;
    if (L.ids != NULL) {
        res = store_queued_jobs(c, RECONCILE_GRACE_MS, RECONCILE_BATCH);
        if (res == NULL) {
            if (store_conn_broken(c))
                pg_link_drop(&m->pg);
            listing_free(&L);
            return -1;
        }
    }

    char delayed[KEY_MAX];
    key_delayed(delayed, type);
    int rows = res ? PQntuples(res) : 0;
    for (int r = 0; r < rows && !failed; r++) {
        if (strcmp(PQgetvalue(res, r, 2), type) != 0 || PQgetvalue(res, r, 6)[0] == 't')
            continue;
        const char *id = PQgetvalue(res, r, 0);
        const char *due = PQgetvalue(res, r, 5);
        if (strcmp(due, "0") != 0) {
            /* Not due yet: NX keeps the set's own score if it has one. */
            char member[KEY_MEMBER_MAX];
            if (key_delayed_member_band(member, jobq_band_suffix(row_band(res, r)),
                                        PQgetvalue(res, r, 1), id) == NULL)
                continue;
            redis_argv cmd;
            redis_argv_of(&cmd, "ZADD", delayed, "NX", due, member, (const char *)NULL);
            failed = redis_pipeline(&m->rd, &cmd, 1, NULL) < 0;
        } else if (!sorted_has(L.ids, L.n_ids, id)) {
            int rc = enqueue_lost(m, res, r, type);
            failed = rc < 0;
            pushed += rc == 0;
        }
    }
    PQclear(res);
    if (pushed > 0)
        log_warn("reconciliation: %d queued %s jobs were in no Redis queue; enqueued "
                 "again", pushed, type);
    if (!failed && repair_ring(m, &L) < 0)
        failed = 1;
    listing_free(&L);
    return failed ? -1 : pushed;
}

/* True when this worker may reconcile this round (one worker at a time). */
static bool reconcile_lock(maintenance *m)
{
    char px[24];
    snprintf(px, sizeof px, "%d", m->w->cfg->reconcile_interval_ms);
    redis_argv cmd;
    redis_argv_of(&cmd, "SET", KEY_RECONCILE_LOCK, m->w->worker_id, "NX", "PX", px,
                  (const char *)NULL);
    redisReply *rep = NULL;
    bool got = redis_pipeline(&m->rd, &cmd, 1, &rep) == 0 && rep != NULL
               && rep->type == REDIS_REPLY_STATUS;
    freeReplyObject(rep);
    return got;
}

static void reconcile(maintenance *m, PGconn *c)
{
    if (redis_link_try(&m->rd) == NULL || !reconcile_lock(m))
        return;
    PGresult *res = store_queued_jobs(c, RECONCILE_GRACE_MS, RECONCILE_BATCH);
    if (res == NULL) {
        if (store_conn_broken(c))
            pg_link_drop(&m->pg);
        return;
    }
    int rows = PQntuples(res);
    for (int r = 0; r < rows; r++)
        if (PQgetvalue(res, r, 6)[0] == 't')
            cancel_queued(m, c, res, r);

    /* Each type once: the first row of each type reconciles all of them
     * (against a snapshot of its own, see reconcile_type). */
    int requeued = 0;
    for (int r = 0; r < rows; r++) {
        const char *type = PQgetvalue(res, r, 2);
        bool seen = false;
        for (int p = 0; p < r && !seen; p++)
            seen = strcmp(PQgetvalue(res, p, 2), type) == 0;
        if (seen)
            continue;
        if (jobtypes_find(type) == NULL) {
            log_warn("reconciliation: queued jobs of unregistered type %.64s left alone",
                     type);
            continue;
        }
        int n = reconcile_type(m, c, type, res);
        if (n < 0)
            break;
        requeued += n;
    }
    PQclear(res);
    worker_metrics_reconciled(requeued);
}

/* ---------------------------------------------------------------------------
 * Retention
 * ------------------------------------------------------------------------- */

/* One round of retention (retention.h). Returns when the next is due, in
 * ms from now. */
static long long run_retention(maintenance *m, PGconn *c)
{
    const ag_config *cfg = m->w->cfg;
    retention_counts counts;
    int rc = retention_round(c, &m->rd, cfg, &m->stop, &counts);
    if (rc < 0 && store_conn_broken(c))
        pg_link_drop(&m->pg);
    return rc == 2 ? RETENTION_AGAIN_MS : cfg->retention_interval_ms;
}

/* ---------------------------------------------------------------------------
 * Approvals nobody decided in time
 * ------------------------------------------------------------------------- */

/* Each expired approval counts as denied: its job is queued again with
 * approval.resolved {"decision":"expired"}, and the run resumes on
 * whichever worker takes it, telling the model the call was not made. */
static void expire_approvals(maintenance *m, PGconn *c)
{
    PGresult *res = store_expired_approvals(c, EXPIRE_BATCH);
    if (res == NULL) {
        if (store_conn_broken(c))
            pg_link_drop(&m->pg);
        return;
    }
    for (int r = 0; r < PQntuples(res); r++) {
        const char *id = PQgetvalue(res, r, 0), *job = PQgetvalue(res, r, 1);
        const char *tenant = PQgetvalue(res, r, 2), *type = PQgetvalue(res, r, 3);
        long long seq = strtoll(PQgetvalue(res, r, 4), NULL, 10) + 1;
        char data[160];
        snprintf(data, sizeof data, "{\"tool_call_id\":\"%.40s\",\"decision\":\"expired\"}",
                 id);
        char *body = event_encode(job, seq, "approval.resolved", clock_wall_ms(), data);
        if (body == NULL)
            break;
        if (store_expire_approval(c, id, seq, body) == STORE_OK) {
            log_info("job %s: approval %s expired; queued again", job, id);
            job_redis_state st = { .status = "queued", .requeue_type = type,
                                   .requeue_tenant = tenant };
            if (jobtypes_find(type) != NULL && redis_link_try(&m->rd) != NULL)
                job_mirror(&m->rd, c, job, tenant, JOB_MIRROR_ASK_REDIS, seq, body, &st);
        }
        free(body);
    }
    PQclear(res);
}

/* ---------------------------------------------------------------------------
 * The thread
 * ------------------------------------------------------------------------- */

static void *maintenance_main(void *arg)
{
    maintenance *m = arg;
    const ag_config *cfg = m->w->cfg;
    long long now = clock_mono_ms();
    long long next_promote = now, next_reap = now + cfg->reaper_interval_ms;
    long long next_reconcile = now + cfg->reconcile_interval_ms;
    long long next_retention = now + cfg->retention_interval_ms;
    long long next_schedule = now;
    long long next_release = now;

    while (!atomic_load(&m->stop)) {
        now = clock_mono_ms();
        if (now >= next_release) {
            PGconn *c = pg_link_try(&m->pg);
            if (c != NULL && held_runs_release(&m->rd, c) < 0 && store_conn_broken(c))
                pg_link_drop(&m->pg);
            next_release = now + RELEASE_INTERVAL_MS;
        }
        if (now >= next_promote) {
            promote_due(m);
            next_promote = now + PROMOTE_INTERVAL_MS;
        }
        if (now >= next_reap || now >= next_reconcile) {
            PGconn *c = pg_link_try(&m->pg);
            if (c != NULL && now >= next_reap) {
                reap(m, c, NULL);
                c = pg_link_try(&m->pg);
                if (c != NULL)
                    expire_approvals(m, c);
            }
            c = pg_link_try(&m->pg);
            if (c != NULL && now >= next_reconcile)
                reconcile(m, c);
            if (now >= next_reap)
                next_reap = now + cfg->reaper_interval_ms;
            if (now >= next_reconcile)
                next_reconcile = now + cfg->reconcile_interval_ms;
        }
        if (cfg->retention_interval_ms > 0 && now >= next_retention) {
            PGconn *c = pg_link_try(&m->pg);
            next_retention = now + (c != NULL ? run_retention(m, c)
                                              : cfg->retention_interval_ms);
        }
        if (now >= next_schedule) {
            PGconn *c = pg_link_try(&m->pg);
            if (c != NULL && schedules_fire_due(c, &m->rd, m->w->worker_id,
                                                clock_wall_ms()) < 0 && store_conn_broken(c))
                pg_link_drop(&m->pg);
            next_schedule = now + SCHEDULE_INTERVAL_MS;
        }
        clock_sleep_ms(TICK_MS);
    }
    return NULL;
}

void maintenance_init(maintenance *m, worker *w)
{
    memset(m, 0, sizeof *m);
    m->w = w;
    atomic_init(&m->stop, 0);
    pg_link_init(&m->pg, w->cfg->database_url, "maintenance", CONNECT_TIMEOUT_S);
    redis_link_init(&m->rd, w->cfg, "maintenance");
    retention_metrics_init();
}

static bool past_deadline(void *arg)
{
    return clock_mono_ms() >= *(const long long *)arg;
}

int maintenance_recover_orphans(maintenance *m, long long wait_ms)
{
    long long deadline = clock_mono_ms() + wait_ms;
    PGconn *c = pg_link_wait(&m->pg, past_deadline, &deadline);
    if (c == NULL) {
        log_warn("PostgreSQL unreachable at start: jobs a previous run of worker %s "
                 "left running wait for their leases to expire", m->w->worker_id);
        return -1;
    }
    redis_link_try(&m->rd);
    int n = reap(m, c, m->w->worker_id);
    if (n > 0)
        log_warn("handed back %d jobs a previous run of worker %s left running", n,
                 m->w->worker_id);
    return n;
}

int maintenance_start(maintenance *m)
{
    int err = pthread_create(&m->tid, NULL, maintenance_main, m);
    if (err != 0) {
        log_error("cannot start the maintenance thread: %s", strerror(err));
        return -1;
    }
    m->started = true;
    return 0;
}

void maintenance_stop(maintenance *m)
{
    if (m->started) {
        atomic_store(&m->stop, 1);
        pthread_join(m->tid, NULL);
        m->started = false;
    }
    pg_link_close(&m->pg);
    redis_link_close(&m->rd);
}
