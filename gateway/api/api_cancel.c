/*
 * api_cancel.c - DELETE /v1/jobs/{id} and DELETE /v1/agent-runs/{id}.
 *
 * A queued job, or one waiting for a tool call's approval (it holds no
 * worker), is cancelled here and now: one conditional statement moves
 * it to cancelled and writes its job.cancelled event, fenced on the status
 * and event id it was read with, so a worker that claims it at the same
 * instant makes the statement miss (and the job is then treated as
 * running). A running job only gets its cancellation requested; its worker
 * stops it and writes the one terminal transition. Repeating is harmless.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "api_util.h"
#include "http.h"
#include "gw_metrics.h"
#include "query.h"
#include "job_publish.h"
#include "events.h"
#include "clock.h"
#include "uuid.h"
#include "log.h"

#define CANCEL_MAX_TRIES 3

static const char SQL_JOB_READ[] =
    "SELECT j.status, j.last_event_id, job_json(j), j.type FROM jobs j"
    " WHERE j.id = $1 AND j.tenant_id = $2";

static const char SQL_CANCEL_QUEUED[] =
    "WITH q AS (UPDATE jobs SET status = 'cancelled', finished_at = now(),"
    "   cancel_requested_at = coalesce(cancel_requested_at, now()),"
    "   error_code = 'cancelled', error_message = 'cancelled by request',"
    "   last_event_id = $3::bigint"
    " WHERE id = $1 AND tenant_id = $2 AND status IN ('queued', 'waiting')"
    "   AND last_event_id = $3::bigint - 1 RETURNING *),"
    " e AS (INSERT INTO job_events (job_id, tenant_id, seq, type, body)"
    "   SELECT id, tenant_id, $3::bigint, 'job.cancelled', $4 FROM q)"
    " SELECT job_json(q) FROM q";

static const char SQL_CANCEL_RUNNING[] =
    "UPDATE jobs SET cancel_requested_at = coalesce(cancel_requested_at, now())"
    " WHERE id = $1 AND tenant_id = $2 AND status = 'running' RETURNING job_json(jobs)";

typedef struct cancel_state {
    char job_id[UUID_STR_LEN];
    char run_id[UUID_STR_LEN];   /* "" when cancelling a plain job */
    int tries;
    char *event_body;
} cancel_state;

static void cancel_state_free(void *p)
{
    cancel_state *s = p;
    free(s->event_body);
    free(s);
}

static void read_job(gw_req *r);

/* Answers with the job, or for a run with {id, job_id, status}. */
static void reply_cancel(gw_req *r, int status, const char *job_json, size_t len,
                         const char *job_status)
{
    cancel_state *s = r->state;
    if (!s->run_id[0]) { http_reply_json(r, status, job_json, len); return; }
    char body[200];
    int n = snprintf(body, sizeof body, "{\"id\":\"%s\",\"job_id\":\"%s\",\"status\":\"%s\"}",
                     s->run_id, s->job_id, job_status);
    http_reply_json(r, status, body, (size_t)n);
}

static void on_running_flagged(gw_req *r, PGresult *res, const char *err, const char *sqlstate)
{
    cancel_state *s = r->state;
    if (!res) { gw_reply_db_error(r, err, sqlstate); return; }
    if (PQntuples(res) == 0) { read_job(r); return; } /* it finished meanwhile */
    gw_redis_flag_cancel(r->thr, s->job_id);
    log_info("cancellation of running job %s requested", s->job_id);
    size_t len;
    const char *json = api_row_json(res, 0, 0, &len);
    reply_cancel(r, 202, json, len, "cancelling");
}

static void on_queued_cancelled(gw_req *r, PGresult *res, const char *err, const char *sqlstate)
{
    cancel_state *s = r->state;
    if (!res) { gw_reply_db_error(r, err, sqlstate); return; }
    if (PQntuples(res) == 0) { read_job(r); return; } /* claimed meanwhile */
    long long seq;
    char type[EVENT_TYPE_MAX];
    if (event_peek(s->event_body, strlen(s->event_body), &seq, type, sizeof type) == 0)
        gw_redis_append_event(r->thr, s->job_id, seq, s->event_body, "cancelled");
    log_info("queued or waiting job %s cancelled", s->job_id);
    size_t len;
    const char *json = api_row_json(res, 0, 0, &len);
    reply_cancel(r, 200, json, len, "cancelled");
}

static void on_job_read(gw_req *r, PGresult *res, const char *err, const char *sqlstate)
{
    cancel_state *s = r->state;
    if (!res) { gw_reply_db_error(r, err, sqlstate); return; }
    if (PQntuples(res) == 0) { api_reply_not_found(r, s->run_id[0] ? "agent run" : "job"); return; }
    /* Before anything changes: an agent run's job is cancelled only by
     * whoever may cancel the run (DELETE /v1/jobs/{id} reaches it too). */
    if (api_require_job_access(r, PQgetvalue(res, 0, 3)) != 0) return;
    const char *status = PQgetvalue(res, 0, 0);
    long long last = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    size_t json_len;
    const char *json = api_row_json(res, 0, 2, &json_len);

    if (strcmp(status, "cancelled") == 0) { reply_cancel(r, 200, json, json_len, status); return; }
    if (strcmp(status, "succeeded") == 0 || strcmp(status, "failed") == 0) {
        char detail[96];
        snprintf(detail, sizeof detail, "the job already finished with status %s", status);
        http_reply_problem(r, 409, "already-finished", detail, NULL);
        return;
    }
    const char *params[4] = { s->job_id, r->who.tenant_id, NULL, NULL };
    if (strcmp(status, "running") == 0) {
        gw_query(r, SQL_CANCEL_RUNNING, 2, params, on_running_flagged);
        return;
    }
    char seq[24];
    snprintf(seq, sizeof seq, "%lld", last + 1);
    free(s->event_body);
    s->event_body = event_encode(s->job_id, last + 1, "job.cancelled", clock_wall_ms(),
                                 "{\"reason\":\"cancelled by request\"}");
    if (!s->event_body) { http_reply_problem(r, 503, "unavailable", "out of memory", NULL); return; }
    params[2] = seq;
    params[3] = s->event_body;
    gw_query(r, SQL_CANCEL_QUEUED, 4, params, on_queued_cancelled);
}

static void read_job(gw_req *r)
{
    cancel_state *s = r->state;
    if (++s->tries > CANCEL_MAX_TRIES) {
        http_reply_problem(r, 409, "conflict", "the job kept changing state; retry", NULL);
        return;
    }
    const char *params[2] = { s->job_id, r->who.tenant_id };
    gw_query(r, SQL_JOB_READ, 2, params, on_job_read);
}

static cancel_state *cancel_begin(gw_req *r)
{
    series_inc(gw_metric.cancel_requests);
    cancel_state *s = calloc(1, sizeof *s);
    if (!s) { http_reply_problem(r, 503, "unavailable", "out of memory", NULL); return NULL; }
    r->state = s;
    r->state_free = cancel_state_free;
    return s;
}

void api_job_cancel(gw_req *r)
{
    char id[UUID_STR_LEN];
    if (!uuid_parse(r->route.param, id)) { api_reply_not_found(r, "job"); return; }
    snprintf(r->audit_resource, sizeof r->audit_resource, "jobs/%s", id);
    cancel_state *s = cancel_begin(r);
    if (!s) return;
    memcpy(s->job_id, id, sizeof id);
    read_job(r);
}

static void on_run_job(gw_req *r, PGresult *res, const char *err, const char *sqlstate)
{
    cancel_state *s = r->state;
    if (!res) { gw_reply_db_error(r, err, sqlstate); return; }
    if (PQntuples(res) == 0) { api_reply_not_found(r, "agent run"); return; }
    snprintf(s->job_id, sizeof s->job_id, "%s", PQgetvalue(res, 0, 0));
    read_job(r);
}

void api_run_cancel(gw_req *r)
{
    char id[UUID_STR_LEN];
    if (!uuid_parse(r->route.param, id)) { api_reply_not_found(r, "agent run"); return; }
    snprintf(r->audit_resource, sizeof r->audit_resource, "agent-runs/%s", id);
    cancel_state *s = cancel_begin(r);
    if (!s) return;
    memcpy(s->run_id, id, sizeof id);
    const char *params[2] = { id, r->who.tenant_id };
    gw_query(r, "SELECT job_id FROM agent_runs WHERE id = $1 AND tenant_id = $2",
             2, params, on_run_job);
}
