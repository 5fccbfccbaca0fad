/*
 * api_runs.c - POST /v1/agent-runs and GET /v1/agent-runs/{id}.
 *
 * A run is a job of type agent.run plus its agent_runs row, inserted with
 * the job's job.queued event in one statement. The request body becomes
 * the job's payload (with the run's id added) and is validated against the
 * agent.run schema, so the API and the worker agree on one contract.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "api_util.h"
#include "http.h"
#include "query.h"
#include "job_redis.h"
#include "jobtypes.h"
#include "jsonutil.h"
#include "schema.h"
#include "uuid.h"
#include "log.h"

static const char SQL_RUN_INSERT[] =
    "WITH ok AS (SELECT 1 WHERE $9::uuid IS NULL OR EXISTS"
    "   (SELECT 1 FROM sessions s WHERE s.id = $9::uuid AND s.tenant_id = $2)),"
    " j AS (INSERT INTO jobs (id, tenant_id, type, status, priority, payload, max_attempts,"
    "   timeout_s, created_by, last_event_id, request_id, traceparent)"
    "   SELECT $1, $2, 'agent.run', 'queued', 0, $3::jsonb, $4, $5, $6, 1, $7, $8 FROM ok"
    "   RETURNING *),"
    " e AS (INSERT INTO job_events (job_id, tenant_id, seq, type, body)"
    "   SELECT id, tenant_id, 1, 'job.queued', $10 FROM j),"
    " r AS (INSERT INTO agent_runs (id, tenant_id, job_id, session_id, created_by, prompt,"
    "   model, temperature, max_tokens, planning_mode, response_mode, tools)"
    "   SELECT (j.payload->>'run_id')::uuid, j.tenant_id, j.id, $9::uuid, j.created_by,"
    "     j.payload->>'prompt', j.payload->>'model', (j.payload->>'temperature')::real,"
    "     (j.payload->>'max_tokens')::int, coalesce(j.payload->>'planning_mode', 'optional'),"
    "     coalesce(j.payload->>'response_mode', 'llm-best-effort'), j.payload->'tools'"
    "   FROM j RETURNING id)"
    " SELECT id FROM r";

typedef struct run_state {
    char run_id[UUID_STR_LEN];
    char job_id[UUID_STR_LEN];
    char *event_body;
} run_state;

static void run_state_free(void *p)
{
    run_state *s = p;
    free(s->event_body);
    free(s);
}

static void on_run_inserted(gw_req *r, PGresult *res, const char *err, const char *sqlstate)
{
    run_state *s = r->state;
    if (!res) { gw_reply_db_error(r, err, sqlstate); return; }
    if (PQntuples(res) == 0) {
        http_reply_problem(r, 422, "validation-failed",
                           "session_id does not name a session of this tenant", "/session_id");
        return;
    }
    gw_redis_append_event(r->thr, s->job_id, 1, s->event_body, "queued");
    gw_redis_enqueue(r->thr, s->job_id, "agent.run");
    atomic_fetch_add_explicit(&r->thr->srv->jobs_submitted, 1, memory_order_relaxed);
    log_info("agent run %s queued as job %s", s->run_id, s->job_id);

    char location[64], body[512];
    snprintf(location, sizeof location, "/v1/agent-runs/%s", s->run_id);
    http_set_header(r, "Location", location);
    int n = snprintf(body, sizeof body,
                     "{\"id\":\"%s\",\"job_id\":\"%s\",\"status\":\"queued\",\"links\":{"
                     "\"self\":\"/v1/agent-runs/%s\",\"events\":\"/v1/agent-runs/%s/events\","
                     "\"job\":\"/v1/jobs/%s\"}}",
                     s->run_id, s->job_id, s->run_id, s->run_id, s->job_id);
    http_reply_json(r, 202, body, (size_t)n);
}

void api_runs_create(gw_req *r)
{
    static const char *const fields[] = { "prompt", "session_id", "model", "temperature",
                                          "max_tokens", "planning_mode", "response_mode",
                                          "tools", NULL };
    cJSON *payload = api_parse_body(r, fields);
    if (!payload) return;
    const job_type *type = jobtypes_find("agent.run");

    run_state *s = calloc(1, sizeof *s);
    if (!s) { http_reply_problem(r, 503, "unavailable", "out of memory", NULL); goto done; }
    r->state = s;
    r->state_free = run_state_free;
    uuid_v7(s->run_id);
    uuid_v7(s->job_id);

    const char *session = json_get_string(payload, "session_id");
    char session_id[UUID_STR_LEN];
    if (cJSON_GetObjectItemCaseSensitive(payload, "session_id") &&
        (!session || !uuid_parse(session, session_id))) {
        http_reply_problem(r, 422, "validation-failed", "session_id must be a UUID", "/session_id");
        goto done;
    }
    cJSON_AddStringToObject(payload, "run_id", s->run_id);
    schema_error serr;
    if (schema_validate(type->schema, payload, &serr) != 0) {
        char detail[1024];
        snprintf(detail, sizeof detail, "%s %s", serr.path[0] ? serr.path + 1 : "body", serr.message);
        http_reply_problem(r, 422, "validation-failed", detail, serr.path);
        goto done;
    }

    char *payload_text = json_print(payload);
    s->event_body = api_queued_event(s->job_id, "agent.run", 0);
    if (!payload_text || !s->event_body) {
        free(payload_text);
        http_reply_problem(r, 503, "unavailable", "out of memory", NULL);
        goto done;
    }
    char attempts[16], timeout[16];
    snprintf(attempts, sizeof attempts, "%d", type->default_max_attempts);
    snprintf(timeout, sizeof timeout, "%d", type->default_timeout_s);
    const char *params[10] = { s->job_id, r->who.tenant_id, payload_text, attempts, timeout,
                               r->who.sub, r->request_id, r->traceparent,
                               session ? session_id : NULL, s->event_body };
    gw_query(r, SQL_RUN_INSERT, 10, params, on_run_inserted);
    free(payload_text);
done:
    cJSON_Delete(payload);
}

static void on_run_row(gw_req *r, PGresult *res, const char *err, const char *sqlstate)
{
    if (!res) { gw_reply_db_error(r, err, sqlstate); return; }
    if (PQntuples(res) == 0) { api_reply_not_found(r, "agent run"); return; }
    http_reply_json(r, 200, PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0));
}

void api_run_get(gw_req *r)
{
    char id[UUID_STR_LEN];
    if (!uuid_parse(r->route.param, id)) { api_reply_not_found(r, "agent run"); return; }
    const char *params[2] = { id, r->who.tenant_id };
    gw_query(r,
             "SELECT agent_run_json(r, j) FROM agent_runs r"
             " JOIN jobs j ON j.id = r.job_id AND j.tenant_id = r.tenant_id"
             " WHERE r.id = $1 AND r.tenant_id = $2",
             2, params, on_run_row);
}
