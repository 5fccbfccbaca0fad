/*
 * api_jobs.c - POST /v1/jobs, GET /v1/jobs/{id} and GET /v1/jobs.
 *
 * The job routes reach every job of the tenant, an agent run's included;
 * a job that belongs to another resource needs that resource's permission
 * as well (api_require_job_access), and the listing leaves out the kinds
 * the caller may not read.
 *
 * A submission is validated whole before anything is written; then the
 * job and its job.queued event (id 1) are inserted together, in the loop
 * turn's group commit (job_batch.c), and only after that commit is the id
 * enqueued in Redis and 202 answered.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "api_util.h"
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

/* --- POST /v1/jobs ------------------------------------------------------ */

typedef struct submit_state {
    char job_id[UUID_STR_LEN];
    char type[64];
    char *event_body;
    long long run_at_ms;        /* 0: run as soon as possible */
} submit_state;

static void submit_state_free(void *p)
{
    submit_state *s = p;
    free(s->event_body);
    free(s);
}

static void on_job_inserted(gw_req *r, const char *job_json, size_t len,
                            const char *err, const char *sqlstate)
{
    submit_state *s = r->state;
    if (!job_json) { gw_reply_db_error(r, err, sqlstate); return; }
    /* Committed: from here the job exists whether or not the client waits. */
    gw_redis_append_event(r->thr, s->job_id, 1, s->event_body, "queued");
    gw_redis_enqueue_at(r->thr, s->job_id, s->type, r->who.tenant_id, s->run_at_ms);
    atomic_fetch_add_explicit(&r->thr->srv->jobs_submitted, 1, memory_order_relaxed);
    log_debug("job %s (%s) queued", s->job_id, s->type);
    char location[64];
    snprintf(location, sizeof location, "/v1/jobs/%s", s->job_id);
    http_set_header(r, "Location", location);
    http_reply_json(r, 202, job_json, len);
}

/* Reads an optional whole-number member within range; answers 422 if bad. */
static int read_int_field(gw_req *r, const cJSON *body, const char *name,
                          long long min, long long max, long long *out)
{
    int rc = json_get_int(body, name, min, max, out);
    if (rc >= 0) return 0;
    char pointer[64], detail[128];
    snprintf(pointer, sizeof pointer, "/%s", name);
    snprintf(detail, sizeof detail, "%s must be a whole number from %lld to %lld", name, min, max);
    http_reply_problem(r, 422, "validation-failed", detail, pointer);
    return -1;
}

/* How far ahead a job may be scheduled. */
#define RUN_AT_MAX_AHEAD_MS (366LL * 86400 * 1000)

/* Reads the optional run_at (RFC 3339; a past time means now) into
 * *run_at_ms (0 when absent); answers 422 if bad. */
static int read_run_at(gw_req *r, const cJSON *body, long long *run_at_ms)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, "run_at");
    if (v == NULL || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsString(v) || clock_parse_rfc3339(v->valuestring, run_at_ms) != 0) {
        http_reply_problem(r, 422, "validation-failed",
                           "run_at must be an RFC 3339 date-time such as "
                           "2026-11-21T10:30:00Z", "/run_at");
        return -1;
    }
    if (*run_at_ms > clock_wall_ms() + RUN_AT_MAX_AHEAD_MS) {
        http_reply_problem(r, 422, "validation-failed",
                           "run_at must be within a year from now", "/run_at");
        return -1;
    }
    if (*run_at_ms < 1)
        *run_at_ms = 1;     /* 0 means none; a time before 1970 means now */
    return 0;
}

void api_jobs_create(gw_req *r)
{
    static const char *const fields[] = { "type", "payload", "priority", "max_attempts",
                                          "timeout_s", "run_at", NULL };
    cJSON *body = api_parse_body(r, fields);
    if (!body) return;

    const char *type_name = json_get_string(body, "type");
    const job_type *type = type_name ? jobtypes_find(type_name) : NULL;
    if (!type_name) {
        http_reply_problem(r, 422, "validation-failed", "type is required and must be a string", "/type");
        goto done;
    }
    /* An internal type (agent.run, made by POST /v1/agent-runs with its
     * run row) is answered as an unknown one: through this route it would
     * be a job without the record, and the checks, of its own resource. */
    if (!type || type->internal) {
        http_reply_problem(r, 422, "unknown-job-type", "type is not a registered job type", "/type");
        goto done;
    }
    long long run_at_ms = 0;
    if (read_run_at(r, body, &run_at_ms) != 0)
        goto done;

    cJSON *payload = cJSON_GetObjectItemCaseSensitive(body, "payload");
    cJSON *empty = NULL;
    if (!payload) payload = empty = cJSON_CreateObject();
    schema_error serr;
    if (schema_validate(type->schema, payload, &serr) != 0) {
        char pointer[sizeof serr.path + 16], detail[sizeof serr.path + sizeof serr.message + 16];
        snprintf(pointer, sizeof pointer, "/payload%s", serr.path);
        snprintf(detail, sizeof detail, "payload%s %s", serr.path, serr.message);
        http_reply_problem(r, 422, "validation-failed", detail, pointer);
        cJSON_Delete(empty);
        goto done;
    }

    long long priority = 0, max_attempts = type->default_max_attempts,
              timeout_s = type->default_timeout_s;
    if (read_int_field(r, body, "priority", -1000, 1000, &priority) ||
        read_int_field(r, body, "max_attempts", 1, 100, &max_attempts) ||
        read_int_field(r, body, "timeout_s", 1, 86400, &timeout_s)) {
        cJSON_Delete(empty);
        goto done;
    }

    submit_state *s = calloc(1, sizeof *s);
    char *payload_text = json_print(payload);
    cJSON_Delete(empty);
    if (!s || !payload_text) {
        free(s); free(payload_text);
        http_reply_problem(r, 503, "unavailable", "out of memory", NULL);
        goto done;
    }
    uuid_v7(s->job_id);
    snprintf(r->audit_resource, sizeof r->audit_resource, "jobs/%s", s->job_id);
    snprintf(s->type, sizeof s->type, "%s", type->name);
    s->run_at_ms = run_at_ms;
    s->event_body = job_queued_event(s->job_id, type->name, priority);
    r->state = s;
    r->state_free = submit_state_free;

    if (!s->event_body) {
        free(payload_text);
        http_reply_problem(r, 503, "unavailable", "out of memory", NULL);
        goto done;
    }
    job_row row = { .type = type->name, .priority = priority, .payload_json = payload_text,
                    .max_attempts = max_attempts, .timeout_s = timeout_s,
                    .event_body = s->event_body, .run_at_ms = run_at_ms };
    memcpy(row.id, s->job_id, sizeof row.id);
    job_batch_add(r->thr->batch, r, &row, on_job_inserted);
    free(payload_text);
done:
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

/*
 * The registered types whose jobs the caller may not read, as a
 * PostgreSQL array literal ("{}" when none), for the listing to leave
 * out. Returns NULL when out of memory.
 */
static char *unreadable_job_types(gw_req *r)
{
    size_t n;
    const job_type *types = jobtypes_all(&n);
    strbuf b = {0};
    strbuf_add(&b, "{");
    bool first = true;
    for (size_t i = 0; i < n; i++) {
        rbac_perm need = rbac_job_perm(r->perm, types[i].name);
        char detail[160];
        if (need.res == r->perm.res || rbac_allows(&r->who, need, detail, sizeof detail))
            continue;
        if (!first) strbuf_add(&b, ",");
        pg_array_element_add(&b, types[i].name);
        first = false;
    }
    strbuf_add(&b, "}");
    return strbuf_take(&b, NULL);
}

void api_jobs_list(gw_req *r)
{
    static const char *const statuses[] = { "queued", "running", "succeeded", "failed",
                                            "cancelled", NULL };
    const char *status = http_query(r, "status");
    const char *type = http_query(r, "type");
    if (status && !api_one_of(status, statuses)) {
        http_reply_problem(r, 400, "bad-query",
                           "status must be one of queued, running, succeeded, failed, cancelled", NULL);
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

    char *hidden = unreadable_job_types(r);
    if (!hidden) { http_reply_problem(r, 503, "unavailable", "out of memory", NULL); return; }
    const char *params[7] = { r->who.tenant_id, status, type,
                              cur.present ? cur.created_at : NULL,
                              cur.present ? cur.id : NULL, hidden, NULL };
    api_query_page(r, SQL_JOB_LIST, 7, params, limit);
    free(hidden);
}
