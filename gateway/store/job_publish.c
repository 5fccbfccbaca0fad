/*
 * job_publish.c - the gateway's Redis writes for jobs (see job_publish.h).
 *
 * An event is one EVALSHA of the shared append script (common/events.c):
 * one command per event instead of seven; an enqueue is one EVALSHA of the
 * queue's enqueue script (common/jobq.c). hiredis pipelines every command
 * a loop turn queues, so a group-committed batch of submissions goes to
 * Redis as one write.
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

void gw_job_committed(gw_thread *thr, const char *job_id, const char *type,
                      const char *tenant, long long priority, const char *event_body,
                      long long run_at_ms)
{
    gw_redis_append_event(thr, job_id, 1, event_body, "queued");
    gw_redis_enqueue_at(thr, job_id, type, tenant, priority, run_at_ms);
    metric_inc(gw_metric.jobs_submitted, type);
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
