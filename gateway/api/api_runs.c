/*
 * api_runs.c - POST /v1/agent-runs, GET /v1/agent-runs/{id} and the
 * listing GET /v1/agent-runs.
 *
 * A run is a job of type agent.run plus its agent_runs row, inserted with
 * the job's job.queued event in one statement. The body is checked against
 * the API's own schema below; the run's settings and its submitter's
 * principal go to the agent_runs row, which is what the worker reads. The
 * job's payload only names the run (run_id, prompt, session_id), so it
 * stays within the agent.run job schema the worker checks again.
 *
 * The checks that need the database (the model is served to this tenant,
 * the session is one of this tenant's and whether it has an active run)
 * are made by the one statement that inserts (agent_run_submit): it
 * writes nothing unless they hold and says which failed, so a submission
 * still costs one round trip.
 *
 * A session runs one run at a time. A new run in a session whose run is
 * still active follows its multitask_strategy: reject (409, the default),
 * enqueue (held until the runs before it have ended), interrupt or
 * rollback (the active runs' cancellation is requested, here flagged for
 * their workers, and the new run is held until they have ended; an
 * interrupted run stays in the session's context with what it did so far,
 * a rolled back one leaves it). A held run's job is not enqueued here; the
 * workers release it (worker/runtime/held_runs.c).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "api_util.h"
#include "api_submit.h"
#include "api_webhooks.h"
#include "http.h"
#include "gw_metrics.h"
#include "metrics.h"
#include "query.h"
#include "events.h"
#include "clock.h"
#include "job_json.h"
#include "job_publish.h"
#include "jobtypes.h"
#include "jsonutil.h"
#include "schema.h"
#include "uuid.h"
#include "log.h"

/* The body of POST /v1/agent-runs: the API's own contract, wider than the
 * agent.run job schema (max_tokens, max_iterations, timeout_s). The CHECKs
 * on agent_runs.max_iterations and timeout_s (003) hold the same ranges. */
static const char run_body_schema_json[] =
    "{\"type\":\"object\","
    "\"properties\":{"
      "\"prompt\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":32000},"
      "\"session_id\":{\"type\":\"string\"},"
      "\"model\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":128},"
      "\"temperature\":{\"type\":\"number\",\"minimum\":0,\"maximum\":2},"
      "\"max_tokens\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":100000},"
      "\"max_iterations\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":64},"
      "\"timeout_s\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":86400},"
      "\"planning_mode\":{\"type\":\"string\",\"enum\":[\"full\",\"optional\",\"none\"]},"
      "\"response_mode\":{\"type\":\"string\","
        "\"enum\":[\"fallback-only\",\"llm-best-effort\",\"llm-required\"]},"
      "\"tools\":{\"type\":\"array\",\"maxItems\":32,"
        "\"items\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":128}},"
      "\"webhook\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":2048},"
      "\"multitask_strategy\":{\"type\":\"string\","
        "\"enum\":[\"reject\",\"enqueue\",\"interrupt\",\"rollback\"]},"
      "\"approval\":{\"type\":\"string\",\"enum\":[\"manifest\",\"write-tools\"]},"
      "\"approval_timeout_s\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":604800}"
    "},"
    "\"required\":[\"prompt\"],"
    "\"additionalProperties\":false}";

const char *api_runs_body_schema_json(void)
{
    return run_body_schema_json;
}

static cJSON *run_body_schema;
static pthread_once_t run_body_schema_once = PTHREAD_ONCE_INIT;

static void run_body_schema_parse(void)
{
    run_body_schema = cJSON_Parse(run_body_schema_json);
}

/*
 * agent_run_submit (sql/migrations/024_multitask.sql): $1 job id,
 * $2 tenant, $3 payload, $4 max_attempts, $5 job timeout_s, $6 sub,
 * $7 request id, $8 traceparent, $9 session id, $10 job.queued event,
 * $11 run id, $12 prompt, $13 model, $14 temperature, $15 max_tokens,
 * $16 planning_mode, $17 response_mode, $18 tools, $19 principal,
 * $20 max_iterations, $21 run timeout_s, $22 the model the configured
 * providers serve (NULL when none are configured), $23 multitask_strategy,
 * $24 the epoch ms a held run's job waits for until released, $25 webhook,
 * $26 approval, $27 approval_timeout_s.
 *
 * It checks the model and the session (whose row it locks, so runs sent
 * to one session at once are ordered), applies the strategy when the
 * session has an active run, and writes the job, its event and the run,
 * in one round trip. Answers one row: model_ok, session_ok, run_id (NULL
 * when nothing was written), busy_run, held, cancel_jobs.
 */
static const char SQL_RUN_INSERT[] =
    "SELECT model_ok, session_ok, run_id, busy_run, held, cancel_jobs FROM agent_run_submit("
    "$1::uuid, $2, $3::jsonb, $4::int, $5::int, $6, $7, $8, $9::uuid, $10, $11::uuid, $12,"
    " $13, $14::real, $15::int, $16, $17, $18::jsonb, $19::jsonb, $20::int, $21::int, $22,"
    " $23, $24::bigint, $25, $26, $27::int)";

/* How long a held run's job is set to wait: far beyond any run's end, so
 * only its release (held_runs.c in the workers) makes it due. */
#define HOLD_AHEAD_MS (366LL * 86400 * 1000)

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

static void reply_session_not_found(gw_req *r)
{
    http_reply_problem(r, 404, "not-found", "session not found", "/session_id");
}

/* Flags each job of cancel_jobs, a PostgreSQL uuid[] literal, for its
 * worker (their cancellation is already requested in PostgreSQL). */
static void flag_cancelled(gw_req *r, const char *cancel_jobs)
{
    const char *p = cancel_jobs;
    while (*p) {
        while (*p == '{' || *p == ',' || *p == '}') p++;
        size_t n = strcspn(p, ",}");
        char id[UUID_STR_LEN];
        if (n == UUID_STR_LEN - 1) {
            memcpy(id, p, n);
            id[n] = '\0';
            gw_redis_flag_cancel(r->thr, id);
            log_info("job %s: cancellation requested by a later run of its session", id);
        }
        p += n;
    }
}

static void on_run_inserted(gw_req *r, PGresult *res, const char *err, const char *sqlstate)
{
    run_state *s = r->state;
    if (!res) { gw_reply_db_error(r, err, sqlstate); return; }
    if (PQntuples(res) != 1) {
        gw_reply_db_error(r, "run insert answered no row", "XX000");
        return;
    }
    if (strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
        http_reply_problem(r, 422, "validation-failed",
                           "model is not served to this tenant (GET /v1/models lists those it can use)",
                           "/model");
        return;
    }
    if (strcmp(PQgetvalue(res, 0, 1), "t") != 0) {
        reply_session_not_found(r);
        return;
    }
    if (!PQgetisnull(res, 0, 3)) {
        char detail[200];
        snprintf(detail, sizeof detail, "the session has an active run (%s); send "
                 "multitask_strategy enqueue, interrupt or rollback to run another",
                 PQgetvalue(res, 0, 3));
        http_reply_problem(r, 409, "session-busy", detail, "/session_id");
        return;
    }
    if (PQgetisnull(res, 0, 2)) {
        gw_reply_db_error(r, "run insert wrote no run", "XX000");
        return;
    }
    bool held = strcmp(PQgetvalue(res, 0, 4), "t") == 0;
    flag_cancelled(r, PQgetvalue(res, 0, 5));
    if (held) {
        /* Not enqueued: the workers' release makes it due once the runs
         * before it have ended (reconciliation files it as delayed). */
        gw_redis_append_event(r->thr, s->job_id, 1, s->event_body, "queued");
        metric_inc(gw_metric.jobs_submitted, "agent.run");
        log_info("agent run %s queued as job %s, held behind its session's active run",
                 s->run_id, s->job_id);
    } else {
        gw_job_committed(r->thr, s->job_id, "agent.run", r->who.tenant_id, 0, s->event_body, 0);
        log_info("agent run %s queued as job %s", s->run_id, s->job_id);
    }

    char location[64], body[512];
    snprintf(location, sizeof location, "/v1/agent-runs/%s", s->run_id);
    http_set_header(r, "Location", location);
    int n = snprintf(body, sizeof body,
                     "{\"id\":\"%s\",\"job_id\":\"%s\",\"status\":\"queued\",\"held\":%s,"
                     "\"links\":{\"self\":\"/v1/agent-runs/%s\",\"events\":\"/v1/agent-runs/%s/events\","
                     "\"job\":\"/v1/jobs/%s\"}}",
                     s->run_id, s->job_id, held ? "true" : "false", s->run_id, s->run_id,
                     s->job_id);
    http_reply_json(r, 202, body, (size_t)n);
}

/* Answers 422 for the first part of body outside the API's schema. */
static int check_body(gw_req *r, const cJSON *body)
{
    pthread_once(&run_body_schema_once, run_body_schema_parse);
    if (!run_body_schema) {
        http_reply_problem(r, 503, "unavailable", "out of memory", NULL);
        return -1;
    }
    schema_error serr;
    if (schema_validate(run_body_schema, body, &serr) == 0) return 0;
    char detail[1024];
    snprintf(detail, sizeof detail, "%s %s", serr.path[0] ? serr.path + 1 : "body", serr.message);
    http_reply_problem(r, 422, "validation-failed", detail, serr.path);
    return -1;
}

/*
 * The run's temperature is stored as a real (single precision): a value
 * a real does not hold as sent would be stored as another one, so it is
 * answered 422 instead. Writes the text to store into out (at least 32
 * bytes; "" when absent). Returns 0, or -1 after answering.
 */
static int read_temperature(gw_req *r, const cJSON *body, char *out, size_t out_size)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(body, "temperature");
    out[0] = '\0';
    if (!t || json_number_fits_float(t, out, out_size)) return 0;
    char detail[200];
    snprintf(detail, sizeof detail, "temperature cannot be kept exactly as sent: it is "
             "stored in single precision, which holds it as %s", out);
    http_reply_problem(r, 422, "validation-failed", detail, "/temperature");
    return -1;
}

/* Answers 422 for the first entry of tools that cannot be a tool's name. */
static int check_tool_names(gw_req *r, const cJSON *tools)
{
    int i = 0;
    const cJSON *t;
    cJSON_ArrayForEach(t, tools) {
        if (!api_tool_name_valid(t->valuestring)) {
            char pointer[32], detail[160];
            snprintf(pointer, sizeof pointer, "/tools/%d", i);
            snprintf(detail, sizeof detail,
                     "tools/%d must be a tool name: letters, digits, '.', '_' or '-'", i);
            http_reply_problem(r, 422, "validation-failed", detail, pointer);
            return -1;
        }
        i++;
    }
    return 0;
}

char *api_run_principal_json(const principal *who)
{
    static const struct { unsigned bit; const char *name; } role_names[] = {
        { ROLE_ADMIN, "admin" }, { ROLE_OPERATOR, "operator" },
        { ROLE_USER, "user" }, { ROLE_VIEWER, "viewer" },
    };
    cJSON *p = cJSON_CreateObject();
    cJSON *roles = cJSON_AddArrayToObject(p, "roles");
    for (size_t i = 0; roles && i < sizeof role_names / sizeof role_names[0]; i++)
        if (who->roles & role_names[i].bit)
            cJSON_AddItemToArray(roles, cJSON_CreateString(role_names[i].name));
    char *text = NULL;
    if (roles && cJSON_AddStringToObject(p, "sub", who->sub) &&
        cJSON_AddStringToObject(p, "scope", who->scope))
        text = json_print(p);
    cJSON_Delete(p);
    return text;
}

/* The job's payload: the run it is for, checked against the agent.run
 * job schema like any job's. Caller frees; NULL after answering. */
static char *job_payload(gw_req *r, const char *run_id, const char *prompt,
                         const char *session_id)
{
    cJSON *p = cJSON_CreateObject();
    char *text = NULL;
    if (cJSON_AddStringToObject(p, "run_id", run_id) &&
        cJSON_AddStringToObject(p, "prompt", prompt) &&
        (!session_id || cJSON_AddStringToObject(p, "session_id", session_id))) {
        schema_error serr;
        if (schema_validate(jobtypes_find("agent.run")->schema, p, &serr) != 0) {
            log_error("agent.run payload outside its job schema: %s %s", serr.path, serr.message);
            http_reply_problem(r, 500, "internal", "the request failed inside the gateway", NULL);
            cJSON_Delete(p);
            return NULL;
        }
        text = json_print(p);
    }
    cJSON_Delete(p);
    if (!text) http_reply_problem(r, 503, "unavailable", "out of memory", NULL);
    return text;
}

/* A whole-number member (the schema checked it) as PostgreSQL text into
 * buf, or NULL when absent. */
static const char *number_param(const cJSON *body, const char *name, char *buf, size_t size)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, name);
    if (!cJSON_IsNumber(v)) return NULL;
    snprintf(buf, size, "%lld", (long long)v->valuedouble);
    return buf;
}

/*
 * The run's job's timeout_s. The worker ends a run at its own deadline
 * (timeout_s, else AGENTGATE_AGENT_RUN_TIMEOUT_MS) with a run_timeout
 * error and its steps kept; the job's timeout is the backstop behind it,
 * so it is the later of the type's default and that deadline plus a grace
 * period, within the jobs table's 86400 s.
 */
long long api_run_job_timeout_s(const ag_config *cfg, const job_type *type,
                                const char *run_timeout_s)
{
    enum { GRACE_S = 30, JOB_TIMEOUT_MAX_S = 86400 };
    long long run_s = run_timeout_s ? atoll(run_timeout_s)
                    : cfg->agent_run_timeout_ms > 0 ? ((long long)cfg->agent_run_timeout_ms + 999) / 1000
                    : 0;
    long long t = run_s + GRACE_S > type->default_timeout_s ? run_s + GRACE_S
                                                            : type->default_timeout_s;
    return t > JOB_TIMEOUT_MAX_S ? JOB_TIMEOUT_MAX_S : t;
}

void api_runs_create(gw_req *r)
{
    static const char *const fields[] = { "prompt", "session_id", "model", "temperature",
                                          "max_tokens", "max_iterations", "timeout_s",
                                          "planning_mode", "response_mode", "tools", "webhook",
                                          "multitask_strategy", "approval", "approval_timeout_s",
                                          NULL };
    cJSON *body = api_parse_body(r, fields);
    if (!body) return;
    char *payload_text = NULL, *tools_text = NULL, *principal_text = NULL;
    if (check_body(r, body) != 0) goto done;
    const cJSON *tools = cJSON_GetObjectItemCaseSensitive(body, "tools");
    if (tools && check_tool_names(r, tools) != 0) goto done;
    char temperature[40];
    if (read_temperature(r, body, temperature, sizeof temperature) != 0) goto done;
    const char *webhook;
    if (api_read_webhook(r, body, &webhook) != 0) goto done;
    const char *session = json_get_string(body, "session_id");
    char session_id[UUID_STR_LEN];
    if (session && !uuid_parse(session, session_id)) {
        http_reply_problem(r, 422, "validation-failed", "session_id must be a UUID", "/session_id");
        goto done;
    }

    run_state *s = calloc(1, sizeof *s);
    if (!s) { http_reply_problem(r, 503, "unavailable", "out of memory", NULL); goto done; }
    r->state = s;
    r->state_free = run_state_free;
    uuid_v7(s->run_id);
    snprintf(r->audit_resource, sizeof r->audit_resource, "agent-runs/%s", s->run_id);
    uuid_v7(s->job_id);

    const job_type *type = jobtypes_find("agent.run");
    payload_text = job_payload(r, s->run_id, json_get_string(body, "prompt"),
                               session ? session_id : NULL);
    if (!payload_text) goto done;
    s->event_body = job_queued_event(s->job_id, "agent.run", 0);
    tools_text = tools ? json_print(tools) : NULL;
    principal_text = api_run_principal_json(&r->who);
    if (!s->event_body || (tools && !tools_text) || !principal_text) {
        http_reply_problem(r, 503, "unavailable", "out of memory", NULL);
        goto done;
    }

    char attempts[16], job_timeout[24], max_tokens[24], max_iter[24], run_timeout[24];
    char approval_timeout[24];
    snprintf(attempts, sizeof attempts, "%d", type->default_max_attempts);
    const char *run_timeout_p = number_param(body, "timeout_s", run_timeout,
                                             sizeof run_timeout);
    snprintf(job_timeout, sizeof job_timeout, "%lld",
             api_run_job_timeout_s(&r->thr->srv->cfg, type, run_timeout_p));

    const ag_config *cfg = &r->thr->srv->cfg;
    const char *served = cfg->llm_providers[0] && cfg->llm_model[0] ? cfg->llm_model : NULL;
    const char *strategy = json_get_string(body, "multitask_strategy");
    char hold_until[24];
    snprintf(hold_until, sizeof hold_until, "%lld", clock_wall_ms() + HOLD_AHEAD_MS);
    const char *params[27] = {
        s->job_id, r->who.tenant_id, payload_text, attempts, job_timeout,
        r->who.sub, r->request_id, r->traceparent, session ? session_id : NULL, s->event_body,
        s->run_id, json_get_string(body, "prompt"), json_get_string(body, "model"),
        temperature[0] ? temperature : NULL,
        number_param(body, "max_tokens", max_tokens, sizeof max_tokens),
        json_get_string(body, "planning_mode"), json_get_string(body, "response_mode"),
        tools_text, principal_text,
        number_param(body, "max_iterations", max_iter, sizeof max_iter),
        run_timeout_p, served, strategy ? strategy : "reject", hold_until,
        webhook, json_get_string(body, "approval"),
        number_param(body, "approval_timeout_s", approval_timeout, sizeof approval_timeout),
    };
    gw_query(r, SQL_RUN_INSERT, 27, params, on_run_inserted);
done:
    free(payload_text);
    free(tools_text);
    free(principal_text);
    cJSON_Delete(body);
}

static void on_run_row(gw_req *r, PGresult *res, const char *err, const char *sqlstate)
{
    if (!res) { gw_reply_db_error(r, err, sqlstate); return; }
    if (PQntuples(res) == 0) { api_reply_not_found(r, "agent run"); return; }
    api_reply_row(r, 200, res, 0, 0);
}

void api_run_get(gw_req *r)
{
    char id[UUID_STR_LEN];
    if (!uuid_parse(r->route.param, id)) { api_reply_not_found(r, "agent run"); return; }
    const char *params[2] = { id, r->who.tenant_id };
    gw_query(r,
             "SELECT (agent_run_json(r, j)::jsonb || jsonb_build_object("
             "  'multitask_strategy', r.multitask_strategy, 'held', r.held,"
             "  'superseded', r.superseded, 'superseded_by', r.superseded_by))::json"
             " FROM agent_runs r"
             " JOIN jobs j ON j.id = r.job_id AND j.tenant_id = r.tenant_id"
             " WHERE r.id = $1 AND r.tenant_id = $2",
             2, params, on_run_row);
}

/* --- GET /v1/agent-runs --------------------------------------------------- */

/*
 * A run as the listing shows it: a summary (the first 1000 characters of
 * its prompt), with links.self to the whole of it. The status is its
 * job's, as GET /v1/agent-runs/{id} shows it; ?status= filters on the
 * job's stored status, as GET /v1/jobs does.
 */
static const char SQL_RUN_LIST[] =
    "SELECT json_build_object("
    "   'id', r.id, 'job_id', r.job_id, 'session_id', r.session_id,"
    "   'status', api_job_status(j), 'prompt', left(r.prompt, 1000), 'model', r.model,"
    "   'created_at', api_ts(r.created_at),"
    "   'started_at', api_ts(coalesce(r.started_at, j.started_at)),"
    "   'finished_at', api_ts(coalesce(r.finished_at, j.finished_at)),"
    "   'links', json_build_object('self', '/v1/agent-runs/' || r.id,"
    "                              'events', '/v1/agent-runs/' || r.id || '/events',"
    "                              'job', '/v1/jobs/' || r.job_id)),"
    " r.created_at::text, r.id"
    " FROM agent_runs r JOIN jobs j ON j.id = r.job_id AND j.tenant_id = r.tenant_id"
    " WHERE r.tenant_id = $1"
    "   AND ($2::text IS NULL OR j.status = $2)"
    "   AND ($3::uuid IS NULL OR r.session_id = $3::uuid)"
    "   AND ($4::timestamptz IS NULL OR (r.created_at, r.id) < ($4::timestamptz, $5::uuid))"
    " ORDER BY r.created_at DESC, r.id DESC LIMIT $6";

void api_runs_list(gw_req *r)
{
    static const char *const statuses[] = { "queued", "running", "waiting", "succeeded",
                                            "failed", "cancelled", NULL };
    const char *status = http_query(r, "status");
    const char *session = http_query(r, "session_id");
    if (status && !api_one_of(status, statuses)) {
        http_reply_problem(r, 400, "bad-query", "status must be one of queued, running, "
                           "waiting, succeeded, failed, cancelled", NULL);
        return;
    }
    char session_id[UUID_STR_LEN];
    if (session && !uuid_parse(session, session_id)) {
        http_reply_problem(r, 400, "bad-query", "session_id must be a UUID", NULL);
        return;
    }
    int limit;
    api_cursor cur;
    if (api_read_limit(r, &limit) != 0 || api_read_cursor(r, &cur) != 0) return;
    const char *params[6] = { r->who.tenant_id, status, session ? session_id : NULL,
                              cur.present ? cur.created_at : NULL,
                              cur.present ? cur.id : NULL, NULL };
    api_query_page(r, SQL_RUN_LIST, 6, params, limit);
}
