/*
 * api_jobs.c - POST /v1/jobs, GET /v1/jobs/{id} and GET /v1/jobs.
 *
 * The job routes reach every job of the tenant, an agent run's included;
 * a job that belongs to another resource needs that resource's permission
 * as well (api_require_job_access), and the listing leaves out the kinds
 * the caller may not read.
 *
 * A submission is validated whole before anything is written (by
 * api_job_validate, which POST /v1/jobs/batch uses for each item); then the
 * job and its job.queued event (id 1) are inserted together, in the loop
 * turn's group commit (job_batch.c), and only after that commit is the id
 * enqueued in Redis and 202 answered. api_submit_job (api_submit.h) is
 * that path, shared with the handlers that create jobs of their own.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "api_util.h"
#include "api_submit.h"
#include "api_webhooks.h"
#include "http.h"
#include "query.h"
#include "job_publish.h"
#include "job_batch.h"
#include "job_json.h"
#include "jobtypes.h"
#include "jsonutil.h"
#include "pg_array.h"
#include "rbac.h"
#include "strbuf.h"
#include "schema.h"
#include "events.h"
#include "clock.h"
#include "uuid.h"
#include "log.h"

/* --- creating a job ---------------------------------------------------- */

/* One job on its way through the group commit; freed when it comes back. */
typedef struct submit_call {
    char job_id[UUID_STR_LEN];
    char type[64];
    char *event_body;
    long long priority;
    long long run_at_ms;        /* 0: run as soon as possible */
    api_submit_fn done;
    void *arg;
} submit_call;

static void on_job_inserted(gw_req *r, void *arg, const char *job_json, size_t len,
                            const char *err, const char *sqlstate)
{
    submit_call *c = arg;
    /* Committed: from here the job exists whether or not the client waits. */
    if (job_json) {
        gw_job_committed(r->thr, c->job_id, c->type, r->who.tenant_id, c->priority,
                         c->event_body, c->run_at_ms);
        log_debug("job %s (%s) queued", c->job_id, c->type);
    }
    c->done(r, c->arg, c->job_id, job_json, len, err, sqlstate);
    free(c->event_body);
    free(c);
}

void api_job_row_of(job_row *row, const api_new_job *job, const char *id,
                    const char *event_body)
{
    *row = (job_row){ .type = job->type, .priority = job->priority,
                      .payload_json = job->payload_json, .max_attempts = job->max_attempts,
                      .timeout_s = job->timeout_s, .event_body = event_body,
                      .run_at_ms = job->run_at_ms, .retry_of = job->retry_of,
                      .webhook = job->webhook };
    snprintf(row->id, sizeof row->id, "%s", id);
}

int api_submit_job(gw_req *r, const api_new_job *job, api_submit_fn done, void *arg,
                   char id_out[UUID_STR_LEN])
{
    submit_call *c = calloc(1, sizeof *c);
    if (!c) return -1;
    uuid_v7(c->job_id);
    snprintf(c->type, sizeof c->type, "%s", job->type);
    c->run_at_ms = job->run_at_ms;
    c->priority = job->priority;
    c->done = done;
    c->arg = arg;
    c->event_body = job_queued_event(c->job_id, job->type, job->priority);
    if (!c->event_body) { free(c); return -1; }
    if (id_out) memcpy(id_out, c->job_id, UUID_STR_LEN);
    job_row row;
    api_job_row_of(&row, job, c->job_id, c->event_body);
    job_batch_add(r->thr->batch, r, &row, on_job_inserted, c);
    return 0;
}

/* --- POST /v1/jobs ------------------------------------------------------ */

static void on_job_created(gw_req *r, void *arg, const char *job_id, const char *job_json,
                           size_t len, const char *err, const char *sqlstate)
{
    (void)arg;
    snprintf(r->audit_resource, sizeof r->audit_resource, "jobs/%s", job_id);
    if (!job_json) { gw_reply_db_error(r, err, sqlstate); return; }
    char location[64];
    snprintf(location, sizeof location, "/v1/jobs/%s", job_id);
    http_set_header(r, "Location", location);
    http_reply_json(r, 202, job_json, len);
}

/* Fails p as validation-failed for the member at pointer (relative to the
 * job). */
static int job_problem_set(api_job_problem *p, const char *pointer, const char *detail)
{
    p->slug = "validation-failed";
    snprintf(p->pointer, sizeof p->pointer, "%s", pointer);
    snprintf(p->detail, sizeof p->detail, "%s", detail);
    return -1;
}

/* Reads an optional whole-number member within range into *out. */
static int read_int_field(const cJSON *body, const char *name, long long min, long long max,
                          long long *out, api_job_problem *p)
{
    int rc = json_get_int(body, name, min, max, out);
    if (rc >= 0) return 0;
    char pointer[64], detail[128];
    snprintf(pointer, sizeof pointer, "/%s", name);
    snprintf(detail, sizeof detail, "%s must be a whole number from %lld to %lld", name, min, max);
    return job_problem_set(p, pointer, detail);
}

/* How far ahead a job may be scheduled. */
#define RUN_AT_MAX_AHEAD_MS (366LL * 86400 * 1000)

/* Reads the optional run_at (RFC 3339; a past time means now) into
 * *run_at_ms (0 when absent). */
static int read_run_at(const cJSON *body, long long *run_at_ms, api_job_problem *p)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, "run_at");
    if (v == NULL || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsString(v) || clock_parse_rfc3339(v->valuestring, run_at_ms) != 0)
        return job_problem_set(p, "/run_at",
                               "run_at must be an RFC 3339 date-time such as "
                               "2026-11-21T10:30:00Z");
    if (*run_at_ms > clock_wall_ms() + RUN_AT_MAX_AHEAD_MS)
        return job_problem_set(p, "/run_at",
                               "run_at must be within a year from now");
    if (*run_at_ms < 1)
        *run_at_ms = 1;     /* 0 means none; a time before 1970 means now */
    return 0;
}

const char *const api_job_fields[] = { "type", "payload", "priority", "max_attempts",
                                       "timeout_s", "run_at", "webhook", NULL };

int api_job_validate(gw_req *r, const cJSON *body, api_new_job *job, char **payload_text,
                     api_job_problem *p)
{
    *payload_text = NULL;
    if (!cJSON_IsObject(body))
        return job_problem_set(p, "", "a job must be a JSON object");
    for (const cJSON *m = body->child; m; m = m->next) {
        if (api_one_of(m->string, api_job_fields)) continue;
        char pointer[160], detail[200];
        snprintf(pointer, sizeof pointer, "/%.120s", m->string);
        snprintf(detail, sizeof detail, "%.120s is not a known field", m->string);
        return job_problem_set(p, pointer, detail);
    }
    const char *type_name = json_get_string(body, "type");
    const job_type *type = type_name ? jobtypes_find(type_name) : NULL;
    if (!type_name)
        return job_problem_set(p, "/type",
                               "type is required and must be a string");
    /* An internal type (agent.run, made by POST /v1/agent-runs with its
     * run row) is answered as an unknown one: through this route it would
     * be a job without the record, and the checks, of its own resource. */
    if (!type || type->internal) {
        job_problem_set(p, "/type", "type is not a registered job type");
        p->slug = "unknown-job-type";
        return -1;
    }
    long long run_at_ms = 0;
    if (read_run_at(body, &run_at_ms, p) != 0)
        return -1;
    const char *webhook;
    if (api_check_webhook(r, body, &webhook, p) != 0)
        return -1;

    const cJSON *payload = cJSON_GetObjectItemCaseSensitive(body, "payload");
    cJSON *empty = NULL;
    if (!payload) payload = empty = cJSON_CreateObject();
    schema_error serr;
    if (schema_validate(type->schema, payload, &serr) != 0) {
        char pointer[sizeof serr.path + 16], detail[sizeof serr.path + sizeof serr.message + 16];
        snprintf(pointer, sizeof pointer, "/payload%s", serr.path);
        snprintf(detail, sizeof detail, "payload%s %s", serr.path, serr.message);
        cJSON_Delete(empty);
        return job_problem_set(p, pointer, detail);
    }

    long long priority = 0, max_attempts = type->default_max_attempts,
              timeout_s = type->default_timeout_s;
    if (read_int_field(body, "priority", -1000, 1000, &priority, p) ||
        read_int_field(body, "max_attempts", 1, 100, &max_attempts, p) ||
        read_int_field(body, "timeout_s", 1, 86400, &timeout_s, p)) {
        cJSON_Delete(empty);
        return -1;
    }
    *payload_text = json_print(payload);
    cJSON_Delete(empty);
    if (!*payload_text) {
        p->slug = NULL;     /* out of memory: not the client's fault */
        return -1;
    }
    *job = (api_new_job){ .type = type->name, .priority = priority,
                          .payload_json = *payload_text, .max_attempts = max_attempts,
                          .timeout_s = timeout_s, .run_at_ms = run_at_ms,
                          .webhook = webhook };
    return 0;
}

void api_jobs_create(gw_req *r)
{
    cJSON *body = api_parse_body(r, api_job_fields);
    if (!body) return;
    api_new_job job;
    api_job_problem p;
    char *payload_text;
    if (api_job_validate(r, body, &job, &payload_text, &p) != 0) {
        if (p.slug)
            http_reply_problem(r, 422, p.slug, p.detail, p.pointer);
        else
            http_reply_problem(r, 503, "unavailable", "out of memory", NULL);
    } else if (api_submit_job(r, &job, on_job_created, NULL, NULL) != 0) {
        http_reply_problem(r, 503, "unavailable", "out of memory", NULL);
    }
    free(payload_text);
    cJSON_Delete(body);
}

/* --- GET /v1/jobs/{id} --------------------------------------------------- */

static void on_job_row(gw_req *r, PGresult *res, const char *err, const char *sqlstate)
{
    if (!res) { gw_reply_db_error(r, err, sqlstate); return; }
    if (PQntuples(res) == 0) { api_reply_not_found(r, "job"); return; }
    if (api_require_job_access(r, PQgetvalue(res, 0, 1)) != 0) return;
    api_reply_row(r, 200, res, 0, 0);
}

void api_job_get(gw_req *r)
{
    char id[UUID_STR_LEN];
    if (!uuid_parse(r->route.param, id)) { api_reply_not_found(r, "job"); return; }
    static const char sql[] =
        "SELECT job_json(j), j.type FROM jobs j WHERE j.id = $1 AND j.tenant_id = $2";
    const char *params[2] = { id, r->who.tenant_id };
    gw_query_static(r, sql, 2, params, on_job_row);
}

/* --- GET /v1/jobs -------------------------------------------------------- */

/* $6: the job types the caller may not read (their jobs belong to a
 * resource its roles or scopes do not reach), as an array literal. */
static const char SQL_JOB_LIST[] =
    "SELECT job_json(j), j.created_at::text, j.id FROM jobs j"
    " WHERE j.tenant_id = $1"
    "   AND ($2::text IS NULL OR j.status = $2)"
    "   AND ($3::text IS NULL OR j.type = $3)"
    "   AND ($4::timestamptz IS NULL OR (j.created_at, j.id) < ($4::timestamptz, $5::uuid))"
    "   AND NOT (j.type = ANY ($6::text[]))"
    " ORDER BY j.created_at DESC, j.id DESC LIMIT $7";

void api_jobs_list(gw_req *r)
{
    static const char *const statuses[] = { "queued", "running", "waiting", "succeeded",
                                            "failed", "cancelled", NULL };
    const char *status = http_query(r, "status");
    const char *type = http_query(r, "type");
    if (status && !api_one_of(status, statuses)) {
        http_reply_problem(r, 400, "bad-query",
                           "status must be one of queued, running, waiting, succeeded, failed, "
                           "cancelled", NULL);
        return;
    }
    if (type && !jobtypes_find(type)) {
        http_reply_problem(r, 400, "bad-query", "type is not a registered job type", NULL);
        return;
    }
    /* Asking for a kind of job the caller may not read is refused as the
     * kind's own listing would be, rather than answered with an empty
     * page that would look like "there are none". */
    if (type && api_require_job_access(r, type) != 0) return;
    int limit;
    api_cursor cur;
    if (api_read_limit(r, &limit) != 0 || api_read_cursor(r, &cur) != 0) return;

    char *hidden = api_job_types_array(r, false, NULL);
    if (!hidden) { http_reply_problem(r, 503, "unavailable", "out of memory", NULL); return; }
    const char *params[7] = { r->who.tenant_id, status, type,
                              cur.present ? cur.created_at : NULL,
                              cur.present ? cur.id : NULL, hidden, NULL };
    api_query_page(r, SQL_JOB_LIST, 7, params, limit);
    free(hidden);
}
