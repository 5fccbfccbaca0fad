/*
 * job_run.c - one job's life on a job thread (see job_run.h):
 *
 *   claimed (dispatch.c) -> job.started -> handler ->
 *   one terminal write (succeeded | failed | cancelled), or, when the
 *   worker's shutdown grace ran out, a hand-back to queued.
 *
 * The terminal write and the hand-back are single statements fenced by
 * the claiming attempt, carrying their event with them; Redis is told
 * afterwards. The terminal write goes through the worker's group commit
 * (terminal_commit.c), sharing one transaction with the other job
 * threads' terminal writes of the moment. How the handler's outcome and the stop reason combine:
 *
 *   shutdown, handler did not succeed  -> handed back (job.retrying), at once
 *   job lost to another attempt        -> nothing (the fence refuses it)
 *   cancellation requested             -> cancelled, "cancelled by request"
 *   ran past timeout_s                 -> failed, code "timeout"
 *   handler said JOB_CANCELLED         -> cancelled
 *   handler said JOB_FAILED, retryable,
 *     attempts left                    -> queued again after a backoff
 *                                         (job.retrying; waits in jobs:delayed)
 *   handler said JOB_FAILED            -> failed with its code/message, and
 *                                         listed in the dead-letter list
 *   handler said JOB_SUCCEEDED         -> succeeded with its result
 *   handler said JOB_WAITING           -> parked: waiting, no lease, no queue
 *                                         entry, with its approval.requested
 *                                         event (also at a shutdown)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "dispatch.h"
#include "events.h"
#include "handlers.h"
#include "job_ctx.h"
#include "job_ctx_internal.h"
#include "job_run.h"
#include "job_span.h"
#include "jobtypes.h"
#include "jsonutil.h"
#include "log.h"
#include "schema.h"
#include "terminal_commit.h"
#include "worker_metrics.h"
#include "worker_state.h"

#define FINAL_WAIT_AFTER_HARD_STOP_MS 2000
#define TERMINAL_REDIS_WAIT_MS 3000
#define HAND_BACK_REDIS_WAIT_MS 5000
#define PAYLOAD_MAX_DEFAULT (1024 * 1024)
/* Room in an event body for everything around a result. */
#define EVENT_ENVELOPE_BYTES 512

/* ---------------------------------------------------------------------------
 * Outcome
 * ------------------------------------------------------------------------- */

/* The terminal transition to write. */
typedef struct final_plan {
    const char *status;
    const char *event_type;
    char *result_json;          /* malloc'd, or NULL */
    char error_code[64];
    char error_message[600];
    const char *cancel_reason;  /* for job.cancelled */
    bool retry;                 /* not final after all: queue it again */
    long long retry_delay_ms;
} final_plan;

static void plan_failed(final_plan *p, const char *code, const char *message)
{
    free(p->result_json);
    p->result_json = NULL;
    p->status = "failed";
    p->event_type = "job.failed";
    snprintf(p->error_code, sizeof p->error_code, "%s", code);
    snprintf(p->error_message, sizeof p->error_message, "%s", message);
}

static void plan_cancelled(final_plan *p, const char *reason)
{
    free(p->result_json);
    p->result_json = NULL;
    p->status = "cancelled";
    p->event_type = "job.cancelled";
    p->cancel_reason = reason;
    snprintf(p->error_code, sizeof p->error_code, "cancelled");
    snprintf(p->error_message, sizeof p->error_message, "%s", reason);
}

/* A retryable failure: another attempt after a backoff that doubles with
 * each attempt (with jitter, so a burst of failures does not come back as
 * a burst), or, with no attempts left, the final failure. */
static void plan_retry_or_fail(final_plan *p, const job_ctx *ctx, const char *code,
                               const char *message)
{
    const job_info *ji = &ctx->info;
    if (ji->attempt >= ji->max_attempts) {
        char msg[sizeof p->error_message];
        snprintf(msg, sizeof msg, "%.500s (gave up after %d attempt%s)", message,
                 ji->attempt, ji->attempt == 1 ? "" : "s");
        plan_failed(p, code, msg);
        return;
    }
    plan_failed(p, code, message);
    p->retry = true;
    p->retry_delay_ms = backoff_retry_delay_ms(ji->attempt, ctx->w->cfg->retry_base_ms,
                                               ctx->w->cfg->retry_max_ms, backoff_random());
}

static void plan_succeeded(final_plan *p, const cJSON *result)
{
    p->status = "succeeded";
    p->event_type = "job.succeeded";
    if (result == NULL)
        return;
    p->result_json = json_print(result);
    if (p->result_json == NULL) {
        plan_failed(p, "result_unprintable", "the job's result could not be encoded");
        return;
    }
    size_t len = strlen(p->result_json);
    if (len > EVENT_MAX_BYTES - EVENT_ENVELOPE_BYTES) {
        char msg[160];
        snprintf(msg, sizeof msg, "result of %zu bytes exceeds the limit of %d bytes",
                 len, EVENT_MAX_BYTES - EVENT_ENVELOPE_BYTES);
        plan_failed(p, "result_too_large", msg);
    }
}

/* The terminal event's data. Returns malloc'd JSON text or NULL. */
static char *plan_event_data(const final_plan *p)
{
    if (strcmp(p->status, "succeeded") == 0) {
        const char *r = p->result_json ? p->result_json : "null";
        size_t len = strlen(r) + sizeof "{\"result\":}";
        char *s = malloc(len);
        if (s != NULL)
            snprintf(s, len, "{\"result\":%s}", r);
        return s;
    }
    if (strcmp(p->status, "cancelled") == 0)
        return event_cancelled_data(p->cancel_reason);
    return event_failed_data(p->error_code, p->error_message);
}

/* Decides the terminal transition from the handler's outcome and the stop
 * reason its slot ended with. */
static void plan_outcome(final_plan *p, const job_ctx *ctx, job_outcome outcome,
                         const job_result *res, int reason)
{
    if (reason == STOP_CANCEL) {
        plan_cancelled(p, "cancelled by request");
    } else if (reason == STOP_TIMEOUT) {
        char msg[64];
        snprintf(msg, sizeof msg, "job exceeded timeout_s=%d", ctx->info.timeout_s);
        plan_failed(p, "timeout", msg);
    } else if (outcome == JOB_CANCELLED) {
        plan_cancelled(p, "cancelled by its handler");
    } else if (outcome == JOB_FAILED) {
        const char *code = res->error_code[0] ? res->error_code : "handler_failed";
        const char *msg = res->error_message[0] ? res->error_message
                                                : "the job's handler failed";
        if (res->retryable)
            plan_retry_or_fail(p, ctx, code, msg);
        else
            plan_failed(p, code, msg);
    } else {
        plan_succeeded(p, res->result);
    }
}

/* ---------------------------------------------------------------------------
 * Final writes
 * ------------------------------------------------------------------------- */

typedef struct final_wait {
    worker *w;
    long long started_ms;
    long long deadline_ms;
} final_wait;

/* A final write keeps trying for a lease's length, but once the worker is
 * told to stop at once only for a moment more: counted from the later of
 * that order and the write's start, so it does not depend on who asks
 * (the job thread itself, or the one writing its group). */
static bool final_wait_over(void *arg)
{
    final_wait *fw = arg;
    long long now = clock_mono_ms();
    if (now >= fw->deadline_ms)
        return true;
    long long hard = worker_hard_stop_ms(fw->w);
    if (hard == 0)
        return false;
    long long from = hard > fw->started_ms ? hard : fw->started_ms;
    return now - from >= FINAL_WAIT_AFTER_HARD_STOP_MS;
}

/* The limits of a final write starting now. */
static final_wait final_wait_start(const job_ctx *ctx)
{
    long long lease = ctx->w->cfg->lease_ms > 0 ? ctx->w->cfg->lease_ms : 30000;
    long long now = clock_mono_ms();
    return (final_wait){ ctx->w, now, now + lease };
}

typedef store_rc (*final_write_fn)(PGconn *c, job_ctx *ctx, const void *arg);

/*
 * Runs a final write, reconnecting as needed. A write whose answer was
 * lost with the connection may have committed: then its retry matches
 * nothing, and landed_status tells what to look for.
 */
static store_rc final_write(job_ctx *ctx, final_write_fn fn, const void *arg,
                            const char *landed_status, long long seq)
{
    final_wait fw = final_wait_start(ctx);
    bool retried = false;
    for (;;) {
        PGconn *c = pg_link_wait(&ctx->t->pg, final_wait_over, &fw);
        if (c == NULL)
            return STORE_ERROR;
        store_rc rc = fn(c, ctx, arg);
        if (rc == STORE_ERROR && store_conn_broken(c)) {
            pg_link_drop(&ctx->t->pg);
            retried = true;
            continue;
        }
        if (rc != STORE_OK && rc != STORE_ERROR && retried
            && store_write_landed(c, ctx->info.id, ctx->info.tenant_id, ctx->info.attempt,
                                  landed_status, seq))
            rc = STORE_OK;
        return rc == STORE_DUP ? STORE_NONE : rc;
    }
}

static store_rc finish_fn(PGconn *c, job_ctx *ctx, const void *arg)
{
    return store_finish(c, ctx->info.id, ctx->info.tenant_id, ctx->info.attempt, arg);
}

static long long run_ms(const job_ctx *ctx)
{
    return clock_mono_ms() - ctx->started_ms;
}

static void write_terminal(job_ctx *ctx, final_plan *p)
{
    char *data = plan_event_data(p);
    long long seq = ctx->seq + 1;
    char *body = data ? event_encode(ctx->info.id, seq, p->event_type, clock_wall_ms(), data)
                      : NULL;
    free(data);
    if (body == NULL) {
        log_error("job %s: out of memory writing its outcome", ctx->info.id);
        return;
    }

    job_final f = {
        .status = p->status,
        .result_json = p->result_json,
        .error_code = p->error_code[0] ? p->error_code : NULL,
        .error_message = p->error_code[0] ? p->error_message : NULL,
        .seq = seq,
        .event_type = p->event_type,
        .body = body,
        /* The events still buffered go in the same statement: the job
         * cannot end without them, and it costs no extra WAL flush. */
        .prior = ctx->buf.evs,
        .n_prior = ctx->buf.n,
        .progress_json = ctx->buf.progress_json,
    };
    store_rc rc;
    if (ctx->w->commit != NULL) {
        /* Through the worker's committer, in one transaction with the
         * other job threads' terminal writes of the moment; same limits. */
        final_wait fw = final_wait_start(ctx);
        rc = terminal_commit_finish(ctx->w->commit, ctx->info.id, ctx->info.tenant_id,
                                    ctx->info.attempt, &f, final_wait_over, &fw);
    } else {
        rc = final_write(ctx, finish_fn, &f, p->status, seq);
    }

    if (rc == STORE_OK) {
        event_buffer_clear(&ctx->buf);
        ctx->seq = seq;
        job_redis_state st = { .status = p->status, .lease = LEASE_DELETE,
                               .dead_letter = strcmp(p->status, "failed") == 0 };
        worker_metrics_job_finished(ctx->info.type, p->status, run_ms(ctx) / 1000.0);
        if (st.dead_letter)
            worker_metrics_dead_letter(ctx->info.type);
        job_ctx_mirror(ctx, seq, body, &st, TERMINAL_REDIS_WAIT_MS);
        if (f.error_code != NULL)
            log_info("job %s %s: type=%s attempt=%d duration_ms=%lld code=%s message=%s",
                     ctx->info.id, p->status, ctx->info.type, ctx->info.attempt,
                     run_ms(ctx), f.error_code, f.error_message);
        else
            log_info("job %s %s: type=%s attempt=%d duration_ms=%lld", ctx->info.id,
                     p->status, ctx->info.type, ctx->info.attempt, run_ms(ctx));
    } else if (rc == STORE_NONE) {
        log_warn("job %s: outcome %s not recorded: the job is no longer attempt %d's "
                 "(duration_ms=%lld)", ctx->info.id, p->status, ctx->info.attempt, run_ms(ctx));
    } else {
        log_error("job %s: outcome %s not recorded: PostgreSQL unreachable; the job "
                  "stays running until its lease expires", ctx->info.id, p->status);
    }
    free(body);
}

static store_rc requeue_fn(PGconn *c, job_ctx *ctx, const void *arg)
{
    return store_requeue(c, ctx->info.id, ctx->info.tenant_id, ctx->info.attempt, arg);
}

/* Puts the job back in its queue, at once (delay_ms 0) or after a delay,
 * with its job.retrying event; code/message name the failure, if any.
 * shutdown: handed back by a stopping worker, else a retryable failure
 * (how the metrics tell them apart). */
static void requeue(job_ctx *ctx, const char *reason, bool shutdown, long long delay_ms,
                    const char *code, const char *message)
{
    char *data = event_retrying_data(ctx->info.attempt, reason, delay_ms, code, message);
    long long seq = ctx->seq + 1;
    char *body = data ? event_encode(ctx->info.id, seq, "job.retrying", clock_wall_ms(), data)
                      : NULL;
    free(data);
    if (body == NULL) {
        log_error("job %s: out of memory queueing it again", ctx->info.id);
        return;
    }

    /* The requeue must not move last_event_id past events PostgreSQL does
     * not have: the buffer goes first, or the job stays as it is. */
    if (job_ctx_flush(ctx, true) < 0) {
        log_error("job %s: not queued again: its events could not be stored%s", ctx->info.id,
                  ctx->lost ? " (the job is no longer this attempt's)"
                            : "; it stays running until its lease expires");
        free(body);
        return;
    }
    job_requeue q = { .seq = seq, .body = body, .delay_ms = delay_ms,
                      .error_code = code, .error_message = message };
    store_rc rc = final_write(ctx, requeue_fn, &q, "queued", seq);
    if (rc == STORE_OK) {
        ctx->seq = seq;
        worker_metrics_job_finished(ctx->info.type, shutdown ? "handed_back" : "retried",
                                    run_ms(ctx) / 1000.0);
        worker_metrics_job_retried(ctx->info.type, shutdown ? "shutdown" : "failure");
        job_redis_state st = { .status = "queued", .lease = LEASE_DELETE,
                               .requeue_type = ctx->info.type,
                               .requeue_tenant = ctx->info.tenant_id,
                               .requeue_band = ctx->band,
                               .requeue_at_ms = delay_ms > 0 ? clock_wall_ms() + delay_ms : 0 };
        if (job_ctx_mirror(ctx, seq, body, &st, HAND_BACK_REDIS_WAIT_MS) == 0)
            log_info("job %s queued again (%s): type=%s attempt=%d delay_ms=%lld "
                     "duration_ms=%lld", ctx->info.id, reason, ctx->info.type,
                     ctx->info.attempt, delay_ms, run_ms(ctx));
        else
            log_warn("job %s queued again (%s) in PostgreSQL but not in Redis: type=%s "
                     "attempt=%d; reconciliation will enqueue it", ctx->info.id, reason,
                     ctx->info.type, ctx->info.attempt);
    } else if (rc == STORE_NONE) {
        log_warn("job %s: not queued again: the job is no longer attempt %d's",
                 ctx->info.id, ctx->info.attempt);
    } else {
        log_error("job %s: not queued again: PostgreSQL unreachable; the job stays "
                  "running until its lease expires", ctx->info.id);
    }
    free(body);
}

typedef struct park_args {
    long long seq;
    const char *body;
} park_args;

static store_rc park_fn(PGconn *c, job_ctx *ctx, const void *arg)
{
    const park_args *a = arg;
    return store_park(c, ctx->info.id, ctx->info.tenant_id, ctx->info.attempt, a->seq,
                      a->body);
}

/* Parks the job (JOB_WAITING): its buffered events first, then the move
 * to waiting with the approval.requested event (data) in one statement. */
static void park(job_ctx *ctx, const cJSON *data)
{
    char *d = data ? json_print(data) : NULL;
    long long seq = ctx->seq + 1;
    char *body = d ? event_encode(ctx->info.id, seq, "approval.requested", clock_wall_ms(), d)
                   : NULL;
    free(d);
    if (body == NULL) {
        log_error("job %s: out of memory parking it", ctx->info.id);
        return;
    }
    if (job_ctx_flush(ctx, true) < 0) {
        log_error("job %s: not parked: its events could not be stored; it stays running "
                  "until its lease expires", ctx->info.id);
        free(body);
        return;
    }
    park_args a = { seq, body };
    store_rc rc = final_write(ctx, park_fn, &a, "waiting", seq);
    if (rc == STORE_OK) {
        ctx->seq = seq;
        job_redis_state st = { .status = "waiting", .lease = LEASE_DELETE };
        job_ctx_mirror(ctx, seq, body, &st, HAND_BACK_REDIS_WAIT_MS);
        log_info("job %s waiting for approval: type=%s attempt=%d duration_ms=%lld",
                 ctx->info.id, ctx->info.type, ctx->info.attempt, run_ms(ctx));
    } else if (rc == STORE_NONE) {
        log_warn("job %s: not parked: the job is no longer attempt %d's", ctx->info.id,
                 ctx->info.attempt);
    } else {
        log_error("job %s: not parked: PostgreSQL unreachable; the job stays running "
                  "until its lease expires", ctx->info.id);
    }
    free(body);
}

/* ---------------------------------------------------------------------------
 * The run
 * ------------------------------------------------------------------------- */

/* Parses and checks the claimed payload. Returns 0, or -1 with *p set to
 * the failure. */
static int load_payload(job_ctx *ctx, const claimed_job *cj, final_plan *p)
{
    size_t max = ctx->w->cfg->max_body_bytes > 0 ? ctx->w->cfg->max_body_bytes
                                                 : PAYLOAD_MAX_DEFAULT;
    char err[256], msg[sizeof ((final_plan *)0)->error_message];
    /* The gateway's cap on a body's depth bounds the payload too (it sits
     * one level inside the body), so what it accepted parses here. */
    ctx->payload = json_parse_bounded(cj->payload, strlen(cj->payload), max,
                                      ctx->w->cfg->max_json_depth, err, sizeof err);
    if (ctx->payload == NULL) {
        snprintf(msg, sizeof msg, "payload is not usable JSON: %s", err);
        plan_failed(p, "invalid_payload", msg);
        return -1;
    }
    /* The gateway validated it; a row written by other means is checked
     * here, so a handler can trust the payload's shape. */
    const job_type *jt = jobtypes_find(cj->type);
    schema_error se;
    if (jt != NULL && jt->schema != NULL && schema_validate(jt->schema, ctx->payload, &se) < 0) {
        snprintf(msg, sizeof msg, "payload%s%s %s", se.path[0] ? " at " : "", se.path,
                 se.message);
        plan_failed(p, "invalid_payload", msg);
        return -1;
    }
    ctx->info.payload = ctx->payload;
    return 0;
}

static long long emit_started(job_ctx *ctx)
{
    cJSON *obj = cJSON_CreateObject();
    char *data = NULL;
    if (obj != NULL && cJSON_AddNumberToObject(obj, "attempt", ctx->info.attempt) != NULL
        && cJSON_AddStringToObject(obj, "worker_id", ctx->w->worker_id) != NULL)
        data = json_print(obj);
    cJSON_Delete(obj);
    if (data == NULL)
        return -1;
    job_redis_state st = { .status = "running", .worker_id = ctx->w->worker_id,
                           .lease = LEASE_SET };
    long long seq = job_ctx_emit_json(ctx, "job.started", data, NULL, &st);
    free(data);
    return seq;
}

static void ctx_fill(job_ctx *ctx, job_thread *t, const char *id, const claimed_job *cj)
{
    memset(ctx, 0, sizeof *ctx);
    ctx->t = t;
    ctx->w = t->w;
    snprintf(ctx->info.id, sizeof ctx->info.id, "%s", id);
    memcpy(ctx->info.tenant_id, cj->tenant_id, sizeof ctx->info.tenant_id);
    memcpy(ctx->info.type, cj->type, sizeof ctx->info.type);
    memcpy(ctx->info.created_by, cj->created_by, sizeof ctx->info.created_by);
    ctx->info.attempt = cj->attempt;
    ctx->info.max_attempts = cj->max_attempts;
    ctx->info.timeout_s = cj->timeout_s;
    ctx->info.request_id = cj->request_id;
    ctx->info.traceparent = cj->traceparent;
    ctx->seq = cj->last_event_id;
    ctx->redis_seq = cj->last_event_id;
    ctx->started_ms = clock_mono_ms();
}

void job_run(job_thread *t, dispatched_job *dj)
{
    const char *id = dj->id;
    claimed_job cj = dj->cj;
    memset(&dj->cj, 0, sizeof dj->cj);

    job_ctx ctx;
    ctx_fill(&ctx, t, id, &cj);
    ctx.band = dj->from.band;
    worker_metrics_job_started(cj.type, cj.queue_wait_s);
    /* The attempt's span: the thread's trace context until it ends, and
     * what its log lines carry. */
    span *attempt_span = job_span_begin(&ctx.info);
    char attempt_tp[TRACEPARENT_LEN + 1];
    span_traceparent(attempt_span, attempt_tp);
    log_set_context(cj.request_id, attempt_span ? attempt_tp : cj.traceparent);
    log_set_job(id, cj.tenant_id);
    const char *ended = "lost";
    log_info("job %s claimed: type=%s attempt=%d/%d timeout_s=%d", id, cj.type,
             cj.attempt, cj.max_attempts, cj.timeout_s);
    ctx.slot = worker_slot_begin(t->w, t->index, id, cj.tenant_id, cj.attempt, cj.timeout_s);

    final_plan plan = { 0 };
    job_result res = { 0 };
    job_outcome outcome = JOB_FAILED;
    bool planned = false;

    if (emit_started(&ctx) < 0) {
        if (ctx.lost)
            goto done;
        plan_failed(&plan, "storage_error", "the worker could not record job.started");
        planned = true;
    } else if (load_payload(&ctx, &cj, &plan) < 0) {
        planned = true;
    } else {
        job_handler_fn handler = handler_for_type(ctx.info.type);
        if (handler == NULL) {
            plan_failed(&plan, "no_handler", "this worker has no handler for the job's type");
            planned = true;
        } else {
            outcome = handler(&ctx, &res);
        }
    }

    int reason = worker_slot_finishing(t->w, t->index);
    if (ctx.lost) {
        worker_metrics_job_finished(ctx.info.type, "lost", run_ms(&ctx) / 1000.0);
        log_warn("job %s: lost to another attempt while running; nothing recorded "
                 "(type=%s attempt=%d duration_ms=%lld)", id, ctx.info.type,
                 ctx.info.attempt, run_ms(&ctx));
    } else if (!planned && outcome == JOB_WAITING && reason != STOP_CANCEL
               && reason != STOP_TIMEOUT) {
        park(&ctx, res.result);
        ended = "waiting";
    } else if (reason == STOP_SHUTDOWN && !planned && outcome != JOB_SUCCEEDED) {
        requeue(&ctx, "worker shutdown", true, 0, NULL, NULL);
        ended = "handed_back";
    } else {
        if (!planned)
            plan_outcome(&plan, &ctx, outcome, &res, reason);
        if (plan.retry)
            requeue(&ctx, "retryable failure", false, plan.retry_delay_ms, plan.error_code,
                    plan.error_message);
        else
            write_terminal(&ctx, &plan);
        ended = plan.retry ? "retried" : plan.status;
    }

done:
    job_span_end(attempt_span, ended, plan.error_code);
    worker_slot_end(t->w, t->index);
    free(plan.result_json);
    cJSON_Delete(res.result);
    cJSON_Delete(ctx.payload);
    event_buffer_free(&ctx.buf);
    claimed_job_free(&cj);
    log_set_context(NULL, NULL);
}
