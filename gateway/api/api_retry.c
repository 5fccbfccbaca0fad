/*
 * api_retry.c - POST /v1/jobs/{id}/retry, and the retry machinery the
 * dead-letter routes share (see api_retry.h).
 *
 * A set of retries goes out in at most two ways at once: its plain jobs
 * one by one through api_submit_job (so they join the loop turn's group
 * commit with every other submission), its agent runs' jobs in one
 * statement that copies each run row. Each outcome lands in its item; the
 * set's callback runs when the last one is in. A retried job that failed
 * has its dead letter resolved by the same statement that creates its
 * retry (jobs_submit_rows, or SQL_RUN_RETRY below), so "retried" and "out
 * of the dead-letter list" are never seen apart.
 *
 * A job may be retried only once it is finished as failed or cancelled:
 * those are final, so nothing can change the original under a retry.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "api_retry.h"
#include "api_submit.h"
#include "api_util.h"
#include "events.h"
#include "http.h"
#include "job_json.h"
#include "job_publish.h"
#include "jobtypes.h"
#include "jsonutil.h"
#include "log.h"
#include "pg_array.h"
#include "query.h"
#include "strbuf.h"

/* ---- sets ------------------------------------------------------------ */

retry_set *retry_set_new(int n)
{
    retry_set *set = calloc(1, sizeof *set);
    if (!set) return NULL;
    set->items = calloc(n > 0 ? (size_t)n : 1, sizeof *set->items);
    if (!set->items) { free(set); return NULL; }
    set->n = n;
    return set;
}

void retry_set_free(void *p)
{
    retry_set *set = p;
    if (!set) return;
    for (int i = 0; i < set->n; i++) {
        free(set->items[i].payload);
        free(set->items[i].json);
    }
    free(set->items);
    free(set);
}

const char *retry_refusal(const char *type)
{
    const job_type *t = jobtypes_find(type);
    if (!t) return "jobs of this type cannot be retried: the type is no longer registered";
    if (t->internal && strcmp(t->name, "agent.run") != 0)
        return "jobs of this type are created by their own resource and cannot be retried "
               "here (an MCP server's discovery: POST /v1/mcp-servers/{name}/refresh)";
    return NULL;
}

static bool not_retryable(const job_type *t)
{
    return retry_refusal(t->name) != NULL;
}

char *retry_types_allowed(gw_req *r)
{
    return api_job_types_array(r, true, not_retryable);
}

int retry_item_from_row(retry_set *set, int i, PGresult *res, int row, int col)
{
    retry_item *it = &set->items[i];
    snprintf(it->old_id, sizeof it->old_id, "%s", PQgetvalue(res, row, col));
    snprintf(it->type, sizeof it->type, "%s", PQgetvalue(res, row, col + 1));
    it->priority = strtoll(PQgetvalue(res, row, col + 2), NULL, 10);
    it->payload = strdup(PQgetvalue(res, row, col + 3));
    it->max_attempts = strtoll(PQgetvalue(res, row, col + 4), NULL, 10);
    it->timeout_s = strtoll(PQgetvalue(res, row, col + 5), NULL, 10);
    return it->payload ? 0 : -1;
}

static void item_failed(retry_item *it, const char *err, const char *sqlstate)
{
    it->ok = false;
    snprintf(it->err, sizeof it->err, "%s", err ? err : "the retry was not created");
    snprintf(it->sqlstate, sizeof it->sqlstate, "%s", sqlstate ? sqlstate : "XX000");
}

/* One outcome is in; the last one calls the set's callback. */
static void set_step(gw_req *r, retry_set *set)
{
    if (--set->pending == 0) set->done(r, set);
}

/* ---- plain jobs: the submission path ---------------------------------- */

typedef struct plain_call {
    retry_set *set;
    int i;
} plain_call;

static void on_plain_created(gw_req *r, void *arg, const char *job_id, const char *job_json,
                             size_t len, const char *err, const char *sqlstate)
{
    plain_call *c = arg;
    retry_set *set = c->set;
    retry_item *it = &set->items[c->i];
    free(c);
    snprintf(it->new_id, sizeof it->new_id, "%s", job_id);
    if (job_json && (it->json = malloc(len + 1)) != NULL) {
        memcpy(it->json, job_json, len);
        it->json[len] = '\0';
        it->json_len = len;
        it->ok = true;
    } else if (job_json) {
        item_failed(it, "out of memory (the retry was created)", "53200");
    } else {
        item_failed(it, err, sqlstate);
    }
    set_step(r, set);
}

static void start_plain(gw_req *r, retry_set *set, int i)
{
    retry_item *it = &set->items[i];
    plain_call *c = malloc(sizeof *c);
    api_new_job job = { .type = it->type, .priority = it->priority,
                        .payload_json = it->payload, .max_attempts = it->max_attempts,
                        .timeout_s = it->timeout_s, .retry_of = it->old_id };
    set->pending++;
    if (c) {
        c->set = set;
        c->i = i;
        if (api_submit_job(r, &job, on_plain_created, c, NULL) == 0) return;
        free(c);
    }
    item_failed(it, "out of memory", "53200");
    set->pending--;
}

/* ---- agent runs: one statement for the set's runs --------------------- */

/*
 * $1 the originals' job ids, $2 the new job ids, $3 the new run ids,
 * $4 the new jobs' job.queued events (arrays, one element per run);
 * $5 tenant, $6 sub, $7 request id, $8 traceparent, $9 the retrier's
 * principal. Each new run copies the old run's prompt and options; its
 * job the old job's priority, max_attempts, timeout, webhook and payload (with the
 * new run's id, and the session only while it still exists). The
 * retrier submits it: created_by and the principal its tool calls are
 * checked against are the retrier's. Answers (ord, job_json) per run made.
 */
static const char SQL_RUN_RETRY[] =
    "WITH input AS (SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[])"
    "   WITH ORDINALITY AS u(old_id, id, run_id, event_body, n)),"
    " src AS (SELECT i.*, o.priority, o.payload, o.max_attempts, o.timeout_s, o.webhook_url,"
    "   r.session_id, r.prompt, r.model, r.temperature, r.max_tokens, r.planning_mode,"
    "   r.response_mode, r.tools, r.max_iterations, r.timeout_s AS run_timeout_s"
    "   FROM input i JOIN jobs o ON o.id = i.old_id AND o.tenant_id = $5"
    "   JOIN agent_runs r ON r.job_id = o.id AND r.tenant_id = o.tenant_id"
    "   WHERE o.type = 'agent.run' AND o.status IN ('failed', 'cancelled')),"
    " j AS (INSERT INTO jobs (id, tenant_id, type, status, priority, payload, max_attempts,"
    "   timeout_s, created_by, last_event_id, request_id, traceparent, retry_of, webhook_url)"
    "   SELECT s.id, $5, 'agent.run', 'queued', s.priority,"
    "     (CASE WHEN s.session_id IS NULL THEN s.payload - 'session_id'"
    "           ELSE s.payload || jsonb_build_object('session_id', s.session_id) END)"
    "       || jsonb_build_object('run_id', s.run_id),"
    "     s.max_attempts, s.timeout_s, $6, 1, $7, $8, s.old_id, s.webhook_url"
    "   FROM src s ORDER BY s.n"
    "   RETURNING *),"
    " e AS (INSERT INTO job_events (job_id, tenant_id, seq, type, body)"
    "   SELECT s.id, $5, 1, 'job.queued', s.event_body FROM src s),"
    " ru AS (INSERT INTO agent_runs (id, tenant_id, job_id, session_id, created_by, prompt,"
    "   model, temperature, max_tokens, planning_mode, response_mode, tools, principal,"
    "   max_iterations, timeout_s)"
    "   SELECT s.run_id, $5, s.id, s.session_id, $6, s.prompt, s.model, s.temperature,"
    "     s.max_tokens, s.planning_mode, s.response_mode, s.tools, $9::jsonb,"
    "     s.max_iterations, s.run_timeout_s FROM src s),"
    " d AS (UPDATE jobs o SET dead_resolved_at = now()"
    "   WHERE o.id = ANY ($1::uuid[]) AND o.id IN (SELECT s.old_id FROM src s)"
    "     AND o.tenant_id = $5 AND o.status = 'failed' AND o.dead_resolved_at IS NULL)"
    " SELECT s.n, job_json(j) FROM j JOIN src s ON s.id = j.id";

/* What the statement for a set's runs needs back: which items it holds
 * (ord - 1 indexes this) and their events, to publish once committed. */
typedef struct runs_call {
    retry_set *set;
    int *index;         /* item index of each run, in order */
    char **events;
    int n;
} runs_call;

static void runs_call_free(runs_call *c)
{
    for (int k = 0; c->events && k < c->n; k++) free(c->events[k]);
    free(c->events);
    free(c->index);
    free(c);
}

/* The job's JSON with "run_id" added as its last member. */
static char *with_run_id(const char *json, size_t len, const char *run_id, size_t *out_len)
{
    if (len < 2 || json[len - 1] != '}') return NULL;
    size_t n = len - 1 + strlen(",\"run_id\":\"\"}") + strlen(run_id);
    char *out = malloc(n + 1);
    if (!out) return NULL;
    memcpy(out, json, len - 1);
    snprintf(out + len - 1, n - len + 2, ",\"run_id\":\"%s\"}", run_id);
    *out_len = n;
    return out;
}

static void on_runs_created(gw_req *r, PGresult *res, const char *err, const char *sqlstate)
{
    retry_set *set = r->state;
    runs_call *c = set->runs;
    set->runs = NULL;
    int rows = res ? PQntuples(res) : 0;
    for (int k = 0; k < rows; k++) {
        long ord = strtol(PQgetvalue(res, k, 0), NULL, 10);
        if (ord < 1 || ord > c->n) continue;
        retry_item *it = &set->items[c->index[ord - 1]];
        /* Committed: publish whatever happens to the answer. */
        gw_job_committed(r->thr, it->new_id, "agent.run", r->who.tenant_id, it->priority,
                         c->events[ord - 1], 0);
        log_info("agent run %s queued as job %s, retrying job %s", it->run_id, it->new_id,
                 it->old_id);
        size_t len;
        const char *json = api_row_json(res, k, 1, &len);
        it->json = with_run_id(json, len, it->run_id, &it->json_len);
        it->ok = it->json != NULL;
        if (!it->ok) item_failed(it, "out of memory (the retry was created)", "53200");
    }
    for (int k = 0; k < c->n; k++) {
        retry_item *it = &set->items[c->index[k]];
        if (!it->ok && !it->err[0])
            item_failed(it, res ? "the job or its run was not found" : err,
                        res ? "XX000" : sqlstate);
    }
    runs_call_free(c);
    set_step(r, set);
}

/* Builds the arrays of the runs' statement; -1 when out of memory. */
static int runs_arrays(retry_set *set, runs_call *c, strbuf a[4])
{
    for (int k = 0; k < 4; k++) strbuf_add(&a[k], "{");
    for (int k = 0; k < c->n; k++) {
        retry_item *it = &set->items[c->index[k]];
        const char *vals[4] = { it->old_id, it->new_id, it->run_id, c->events[k] };
        for (int m = 0; m < 4; m++) {
            if (k) strbuf_add(&a[m], ",");
            pg_array_element_add(&a[m], vals[m]);
        }
    }
    bool oom = false;
    for (int k = 0; k < 4; k++) {
        strbuf_add(&a[k], "}");
        oom |= a[k].oom;
    }
    return oom ? -1 : 0;
}

static void start_runs(gw_req *r, retry_set *set, int count)
{
    runs_call *c = calloc(1, sizeof *c);
    if (c) {
        c->set = set;
        c->index = calloc((size_t)count, sizeof *c->index);
        c->events = calloc((size_t)count, sizeof *c->events);
    }
    char *who_json = api_run_principal_json(&r->who);
    strbuf a[4] = {{0}};
    bool ok = c && c->index && c->events && who_json;
    for (int i = 0; ok && i < set->n; i++) {
        retry_item *it = &set->items[i];
        if (strcmp(it->type, "agent.run") != 0) continue;
        uuid_v7(it->new_id);
        uuid_v7(it->run_id);
        c->index[c->n] = i;
        c->events[c->n] = job_queued_event(it->new_id, "agent.run", it->priority);
        if (!c->events[c->n++]) ok = false;
    }
    if (ok && runs_arrays(set, c, a) == 0) {
        const char *params[9] = { a[0].s, a[1].s, a[2].s, a[3].s, r->who.tenant_id,
                                  r->who.sub, r->request_id, r->traceparent, who_json };
        set->runs = c;
        set->pending++;
        /* On a send failure gw_query has answered 503 and will not call back. */
        if (gw_query(r, SQL_RUN_RETRY, 9, params, on_runs_created) != 0) {
            set->runs = NULL;
            set->pending--;
            ok = false;
        }
    } else {
        ok = false;
    }
    if (!ok) {
        for (int i = 0; i < set->n; i++)
            if (strcmp(set->items[i].type, "agent.run") == 0 && !set->items[i].ok)
                item_failed(&set->items[i], "out of memory", "53200");
        if (c && !set->runs) runs_call_free(c);
    }
    for (int k = 0; k < 4; k++) strbuf_free(&a[k]);
    free(who_json);
}

void retry_set_start(gw_req *r, retry_set *set, retry_set_fn done)
{
    set->done = done;
    set->pending = 1;       /* held while starting: no early callback */
    int runs = 0;
    for (int i = 0; i < set->n; i++) {
        if (strcmp(set->items[i].type, "agent.run") == 0) runs++;
        else start_plain(r, set, i);
    }
    if (runs) start_runs(r, set, runs);
    set_step(r, set);
}

static void on_unresolved(gw_req *r, PGresult *res, const char *err, const char *sqlstate)
{
    (void)r;
    if (!res) log_error("dead letters whose retry failed stay resolved: %s (SQLSTATE %s)",
                        err, sqlstate);
}

void retry_unresolve_failed(gw_req *r, const retry_set *set)
{
    strbuf ids = {0};
    strbuf_add(&ids, "{");
    int n = 0;
    for (int i = 0; i < set->n; i++) {
        if (set->items[i].ok) continue;
        if (n++) strbuf_add(&ids, ",");
        pg_array_element_add(&ids, set->items[i].old_id);
    }
    strbuf_add(&ids, "}");
    if (n && !ids.oom) {
        const char *params[2] = { ids.s, r->who.tenant_id };
        log_warn("%d dead letter(s) put back in the list: their retry was not created", n);
        gw_query(r, "UPDATE jobs SET dead_resolved_at = NULL"
                    " WHERE id = ANY ($1::uuid[]) AND tenant_id = $2 AND status = 'failed'",
                 2, params, on_unresolved);
    }
    strbuf_free(&ids);
}

/* ---- POST /v1/jobs/{id}/retry ----------------------------------------- */

void retry_reply_one(gw_req *r, retry_set *set)
{
    retry_item *it = &set->items[0];
    if (!it->ok) { gw_reply_db_error(r, it->err, it->sqlstate); return; }
    char location[64];
    snprintf(location, sizeof location, "/v1/jobs/%s", it->new_id);
    http_set_header(r, "Location", location);
    http_reply_json(r, 202, it->json, it->json_len);
}

static void on_original(gw_req *r, PGresult *res, const char *err, const char *sqlstate)
{
    if (!res) { gw_reply_db_error(r, err, sqlstate); return; }
    if (PQntuples(res) == 0) { api_reply_not_found(r, "job"); return; }
    const char *type = PQgetvalue(res, 0, 1);
    const char *status = PQgetvalue(res, 0, 6);
    if (api_require_job_access(r, type) != 0) return;
    if (strcmp(status, "failed") != 0 && strcmp(status, "cancelled") != 0) {
        char detail[160];
        snprintf(detail, sizeof detail, "only a failed or cancelled job can be retried; "
                 "this one is %s", status);
        http_reply_problem(r, 409, "conflict", detail, NULL);
        return;
    }
    const char *refusal = retry_refusal(type);
    if (refusal) { http_reply_problem(r, 409, "conflict", refusal, NULL); return; }
    retry_set *set = retry_set_new(1);
    if (!set || retry_item_from_row(set, 0, res, 0, 0) != 0) {
        retry_set_free(set);
        http_reply_problem(r, 503, "unavailable", "out of memory", NULL);
        return;
    }
    r->state = set;
    r->state_free = retry_set_free;
    retry_set_start(r, set, retry_reply_one);
}

void api_job_retry(gw_req *r)
{
    char id[UUID_STR_LEN];
    if (!uuid_parse(r->route.param, id)) { api_reply_not_found(r, "job"); return; }
    static const char sql[] =
        "SELECT j.id, j.type, j.priority, j.payload::text, j.max_attempts, j.timeout_s,"
        " api_job_status(j) FROM jobs j WHERE j.id = $1 AND j.tenant_id = $2";
    const char *params[2] = { id, r->who.tenant_id };
    gw_query_static(r, sql, 2, params, on_original);
}
