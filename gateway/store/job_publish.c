/*
 * job_publish.c - the gateway's Redis writes for jobs (see job_publish.h).
 *
 * An event is one EVALSHA of the shared append script (common/events.c):
 * one command per event instead of seven; an enqueue is one EVALSHA of the
 * queue's enqueue script (common/jobq.c). hiredis pipelines every command
 * a loop turn queues, so they go to Redis as one write.
 *
 * New jobs (gw_job_committed) are gathered per loop thread instead: the
 * first of a loop turn activates a zero-delay event, and every job
 * committed until it runs (a group commit's whole batch, whose 202
 * answers have gone out by then) leaves in one call of the queue's script
 * for new jobs, which appends each job.queued event and enqueues each id.
 * So a batch costs Redis one command, not two per job.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "job_publish.h"
#include "gw_metrics.h"
#include "clock.h"
#include "events.h"
#include "jobq.h"
#include "redis_script.h"
#include "keys.h"
#include "log.h"
#include "redis_async.h"
#include "uuid.h"

static void send_or_log(gw_thread *thr, const redis_argv *cmd)
{
    if (rds_command(thr->redis, NULL, NULL, cmd) != 0)
        log_warn("redis unavailable: %s not sent", cmd->argv[0]);
}

/* What an EVALSHA needs to be sent again as EVAL: its own copies, since
 * the caller's strings are gone by the time the reply comes. */
typedef struct append_retry {
    gw_thread *thr;
    long long seq;
    size_t len;
    char job_id[64];
    char status[16];
    char body[];
} append_retry;

static void send_append(gw_thread *thr, const append_retry *a, bool use_sha,
                        redisCallbackFn *cb, void *privdata)
{
    const ag_config *cfg = &thr->srv->cfg;
    event_keys keys;
    redis_argv cmd;
    event_append_command(&cmd, use_sha, a->job_id, a->seq, a->body, a->len,
                         a->status[0] ? a->status : NULL, cfg->event_ring_size,
                         cfg->event_ttl_s, &keys);
    if (rds_command(thr->redis, cb, privdata, &cmd) != 0) {
        log_warn("redis unavailable: event %lld of job %s not appended", a->seq, a->job_id);
        free(privdata);
    }
}

/* The EVALSHA's answer: after a NOSCRIPT (Redis restarted or its script
 * cache was flushed) the same append goes again with the script's text,
 * which also caches it for the next EVALSHA. */
static void on_append_reply(redisAsyncContext *c, void *reply, void *privdata)
{
    (void)c;
    append_retry *a = privdata;
    const redisReply *r = reply;
    if (r != NULL && r->type == REDIS_REPLY_ERROR && redis_script_missing(r->str, r->len)) {
        send_append(a->thr, a, false, NULL, NULL);
    } else if (r != NULL && r->type == REDIS_REPLY_ERROR) {
        log_warn("redis refused the append of event %lld of job %s: %s", a->seq,
                 a->job_id, r->str);
    }
    free(a);
}

void gw_redis_append_event(gw_thread *thr, const char *job_id, long long seq,
                           const char *body, const char *status)
{
    size_t len = strlen(body);
    append_retry *a = malloc(sizeof *a + len + 1);
    if (a == NULL || strlen(job_id) >= sizeof a->job_id
        || (status && strlen(status) >= sizeof a->status)) {
        log_error("event %lld of job %s not appended: out of memory or bad id", seq, job_id);
        free(a);
        return;
    }
    a->thr = thr;
    a->seq = seq;
    a->len = len;
    snprintf(a->job_id, sizeof a->job_id, "%s", job_id);
    snprintf(a->status, sizeof a->status, "%s", status ? status : "");
    memcpy(a->body, body, len + 1);
    send_append(thr, a, true, on_append_reply, a);
}

/* An enqueue's own copies of its words, kept until Redis answers, so a
 * NOSCRIPT answer can send it again by text. */
typedef struct enqueue_retry {
    gw_thread *thr;
    jobq_keys keys;
    int band;
    char job_id[UUID_STR_LEN];
} enqueue_retry;

static void send_enqueue(enqueue_retry *e, bool use_sha, redisCallbackFn *cb)
{
    redis_argv cmd;
    jobq_enqueue_command(&cmd, use_sha, &e->keys, e->job_id, e->band, JOBQ_BACK, NULL);
    if (rds_command(e->thr->redis, cb, cb ? e : NULL, &cmd) != 0) {
        log_warn("redis unavailable: job %s not enqueued", e->job_id);
        free(e);
    } else if (cb == NULL) {
        free(e);    /* hiredis copied the command; no answer is awaited */
    }
}

static void on_enqueue_reply(redisAsyncContext *c, void *reply, void *privdata)
{
    (void)c;
    enqueue_retry *e = privdata;
    const redisReply *r = reply;
    if (r != NULL && r->type == REDIS_REPLY_ERROR && redis_script_missing(r->str, r->len)) {
        send_enqueue(e, false, NULL);
        return;
    }
    if (r != NULL && r->type == REDIS_REPLY_ERROR)
        log_warn("redis refused the enqueue of job %s: %s", e->job_id, r->str);
    free(e);
}

void gw_redis_enqueue(gw_thread *thr, const char *job_id, const char *type,
                      const char *tenant, long long priority)
{
    enqueue_retry *e = malloc(sizeof *e);
    if (e == NULL || strlen(job_id) >= sizeof e->job_id
        || jobq_keys_of(&e->keys, type, tenant) != 0) {
        log_error("job %s not enqueued: out of memory or bad tenant id; "
                  "reconciliation will try again", job_id);
        free(e);
        return;
    }
    e->thr = thr;
    e->band = jobq_band_of(priority);
    snprintf(e->job_id, sizeof e->job_id, "%s", job_id);
    send_enqueue(e, true, on_enqueue_reply);
}

void gw_redis_enqueue_at(gw_thread *thr, const char *job_id, const char *type,
                         const char *tenant, long long priority, long long run_at_ms)
{
    if (run_at_ms <= clock_wall_ms()) {
        gw_redis_enqueue(thr, job_id, type, tenant, priority);
        return;
    }
    char key[KEY_MAX], member[KEY_MEMBER_MAX], score[24];
    if (key_delayed_member_band(member, jobq_band_suffix(jobq_band_of(priority)), tenant,
                                job_id) == NULL) {
        log_error("job %s not put in its delayed set: bad tenant id", job_id);
        return;
    }
    key_delayed(key, type);
    snprintf(score, sizeof score, "%lld", run_at_ms);
    redis_argv cmd;
    redis_argv_of(&cmd, "ZADD", key, score, member, (const char *)NULL);
    send_or_log(thr, &cmd);
}

/* --- new jobs, one call per loop turn -------------------------------------- */

/* The most jobs one call carries (a script call holds Redis while it
 * runs); more in one turn leave in further calls. */
#define NEW_JOBS_MAX 1024

/* A job waiting for the turn's call: its words, and its event's body. */
typedef struct new_job {
    jobq_new_job w;
    char *body;
    size_t body_len;
} new_job;

struct new_jobs {
    gw_thread *thr;
    struct event *flush_ev;
    new_job *jobs;
    int n, cap;
};

/* One call in flight: its jobs, kept for a NOSCRIPT answer's EVAL. */
typedef struct new_jobs_call {
    gw_thread *thr;
    new_job *jobs;
    int n;
} new_jobs_call;

static void new_jobs_call_free(new_jobs_call *c)
{
    for (int i = 0; i < c->n; i++) free(c->jobs[i].body);
    free(c->jobs);
    free(c);
}

/* The call's words: argv[i], lens[i] bytes. */
typedef struct words {
    const char **argv;
    size_t *lens;
    int n;
} words;

static void word_add(words *w, const char *s, size_t len)
{
    w->argv[w->n] = s;
    w->lens[w->n++] = len;
}

static void word_str(words *w, const char *s) { word_add(w, s, strlen(s)); }

/* Sends c's jobs as one script call; cb gets the answer (NULL: none is
 * awaited). -1 when Redis is down or memory ran out: nothing was sent. */
static int send_new_jobs(new_jobs_call *c, bool use_sha, redisCallbackFn *cb)
{
    const ag_config *cfg = &c->thr->srv->cfg;
    size_t max = 5 + (size_t)c->n * (JOBQ_NEW_KEYS + JOBQ_NEW_ARGS);
    words w = { malloc(max * sizeof *w.argv), malloc(max * sizeof *w.lens), 0 };
    if (!w.argv || !w.lens) { free(w.argv); free(w.lens); return -1; }
    char nkeys[16], keep[16], ttl[16];
    snprintf(nkeys, sizeof nkeys, "%d", c->n * JOBQ_NEW_KEYS);
    snprintf(keep, sizeof keep, "%d", cfg->event_ring_size > 0 ? cfg->event_ring_size : 1);
    snprintf(ttl, sizeof ttl, "%d", cfg->event_ttl_s > 0 ? cfg->event_ttl_s : 1);
    const char *word, *script;
    jobq_new_jobs_head(use_sha, &word, &script);
    word_str(&w, word);
    word_str(&w, script);
    word_str(&w, nkeys);
    for (int i = 0; i < c->n; i++)
        for (int k = 0; k < JOBQ_NEW_KEYS; k++) word_str(&w, c->jobs[i].w.keys[k]);
    word_str(&w, keep);
    word_str(&w, ttl);
    for (int i = 0; i < c->n; i++) {
        word_str(&w, c->jobs[i].w.channel);
        word_add(&w, c->jobs[i].body, c->jobs[i].body_len);
        word_str(&w, c->jobs[i].w.id);
        word_str(&w, c->jobs[i].w.tenant);
    }
    int rc = rds_command_argv(c->thr->redis, cb, c, w.n, w.argv, w.lens);
    free(w.argv);
    free(w.lens);
    return rc;
}

static void on_new_jobs_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    new_jobs_call *c = privdata;
    const redisReply *r = reply;
    if (r != NULL && r->type == REDIS_REPLY_ERROR && redis_script_missing(r->str, r->len)) {
        if (send_new_jobs(c, false, NULL) != 0)
            log_warn("redis unavailable: %d new jobs not enqueued; reconciliation will "
                     "enqueue them", c->n);
    } else if (r != NULL && r->type == REDIS_REPLY_ERROR) {
        log_warn("redis refused %d new jobs: %s; reconciliation will enqueue them", c->n, r->str);
    }
    new_jobs_call_free(c);
}

static void new_jobs_flush(new_jobs *nj)
{
    if (nj->n == 0) return;
    new_jobs_call *c = malloc(sizeof *c);
    if (!c) {
        log_error("%d new jobs not enqueued: out of memory; reconciliation will enqueue them",
                  nj->n);
        for (int i = 0; i < nj->n; i++) free(nj->jobs[i].body);
        free(nj->jobs);
    } else {
        c->thr = nj->thr;
        c->jobs = nj->jobs;
        c->n = nj->n;
    }
    nj->jobs = NULL;
    nj->n = nj->cap = 0;
    if (c && send_new_jobs(c, true, on_new_jobs_reply) != 0) {
        log_warn("redis unavailable: %d new jobs not enqueued; reconciliation will "
                 "enqueue them", c->n);
        new_jobs_call_free(c);
    }
}

static void on_new_jobs_flush(evutil_socket_t fd, short what, void *arg)
{
    (void)fd; (void)what;
    new_jobs_flush(arg);
}

new_jobs *new_jobs_new(gw_thread *thr)
{
    new_jobs *nj = calloc(1, sizeof *nj);
    if (!nj) return NULL;
    nj->thr = thr;
    nj->flush_ev = event_new(thr->base, -1, 0, on_new_jobs_flush, nj);
    if (!nj->flush_ev) { free(nj); return NULL; }
    return nj;
}

void new_jobs_free(new_jobs *nj)
{
    if (!nj) return;
    new_jobs_flush(nj);
    event_free(nj->flush_ev);
    free(nj);
}

/* Adds a job to the turn's call; -1 when it cannot be (bad tenant id,
 * out of memory). */
static int new_jobs_add(new_jobs *nj, const char *job_id, const char *type, const char *tenant,
                        long long priority, const char *event_body)
{
    if (nj->n == nj->cap) {
        int cap = nj->cap ? nj->cap * 2 : 16;
        new_job *grown = realloc(nj->jobs, (size_t)cap * sizeof *grown);
        if (!grown) return -1;
        nj->jobs = grown;
        nj->cap = cap;
    }
    new_job *j = &nj->jobs[nj->n];
    if (jobq_new_job_words(&j->w, job_id, type, tenant, priority) != 0) return -1;
    j->body_len = strlen(event_body);
    j->body = malloc(j->body_len + 1);
    if (!j->body) return -1;
    memcpy(j->body, event_body, j->body_len + 1);
    if (nj->n++ == 0) event_active(nj->flush_ev, EV_TIMEOUT, 1);
    if (nj->n >= NEW_JOBS_MAX) new_jobs_flush(nj);
    return 0;
}

void gw_job_committed(gw_thread *thr, const char *job_id, const char *type,
                      const char *tenant, long long priority, const char *event_body,
                      long long run_at_ms)
{
    metric_inc(gw_metric.jobs_submitted, type);
    if (run_at_ms <= clock_wall_ms() && thr->new_jobs &&
        new_jobs_add(thr->new_jobs, job_id, type, tenant, priority, event_body) == 0)
        return;
    gw_redis_append_event(thr, job_id, 1, event_body, "queued");
    gw_redis_enqueue_at(thr, job_id, type, tenant, priority, run_at_ms);
}

void gw_redis_flag_cancel(gw_thread *thr, const char *job_id)
{
    char key[KEY_MAX], ttl[24];
    key_cancel(key, job_id);
    snprintf(ttl, sizeof ttl, "%d", thr->srv->cfg.event_ttl_s);
    redis_argv cmd;
    redis_argv_of(&cmd, "SET", key, "1", "EX", ttl, (const char *)NULL);
    send_or_log(thr, &cmd);
    /* After the flag, on the same connection: a supervisor woken by the
     * message finds the flag set. */
    redis_argv_of(&cmd, "PUBLISH", CHANNEL_CANCEL_REQUESTS, job_id, (const char *)NULL);
    send_or_log(thr, &cmd);
}
