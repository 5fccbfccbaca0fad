/*
 * api_approvals.c - POST /v1/agent-runs/{id}/approvals: a person's
 * decision on the tool call a waiting run asks approval for.
 *
 * A run whose tool call needs approval parks its job in 'waiting' (no
 * worker holds it) with a pending tool_approvals row. The decision is one
 * conditional statement: the approval row moves from pending to approved
 * or denied, the job from waiting to queued, and the approval.resolved
 * event is stored, fenced on the event id the job was read with, so a
 * cancel, an expiry or a second decision at the same instant makes it
 * miss (the state is read again and answered). After the commit the
 * event goes to the job's ring and the job to its queue, like a new one;
 * whichever worker takes it resumes the run.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "api_util.h"
#include "clock.h"
#include "events.h"
#include "http.h"
#include "job_publish.h"
#include "jsonutil.h"
#include "log.h"
#include "query.h"
#include "schema.h"
#include "uuid.h"

#define DECIDE_MAX_TRIES 3

static const char body_schema_json[] =
    "{\"type\":\"object\","
    "\"properties\":{"
      "\"tool_call_id\":{\"type\":\"string\",\"format\":\"uuid\",\"minLength\":36,"
        "\"maxLength\":36},"
      "\"decision\":{\"type\":\"string\",\"enum\":[\"approve\",\"deny\"]},"
      "\"note\":{\"type\":\"string\",\"maxLength\":2000}"
    "},"
    "\"required\":[\"tool_call_id\",\"decision\"],"
    "\"additionalProperties\":false}";

const char *api_approvals_body_schema_json(void)
{
    return body_schema_json;
}

static cJSON *body_schema;
static pthread_once_t body_schema_once = PTHREAD_ONCE_INIT;

static void body_schema_parse(void)
{
    body_schema = cJSON_Parse(body_schema_json);
}

/* The run's job and, when it is one of the run's, the approval named. */
static const char SQL_READ[] =
    "SELECT j.id, j.status, j.last_event_id, j.type, a.status"
    " FROM agent_runs r JOIN jobs j ON j.id = r.job_id AND j.tenant_id = r.tenant_id"
    " LEFT JOIN tool_approvals a ON a.run_id = r.id AND a.tenant_id = r.tenant_id"
    "   AND a.id = $3::uuid"
    " WHERE r.id = $1 AND r.tenant_id = $2";

/* $1 job, $2 tenant, $3 approval, $4 status, $5 note, $6 decided_by,
 * $7 event id, $8 event body. */
static const char SQL_DECIDE[] =
    "WITH a AS (UPDATE tool_approvals SET status = $4, note = $5, decided_by = $6,"
    "   decided_at = now()"
    " WHERE id = $3::uuid AND tenant_id = $2 AND job_id = $1::uuid AND status = 'pending'"
    "   AND EXISTS (SELECT 1 FROM jobs WHERE id = $1::uuid AND tenant_id = $2"
    "               AND status = 'waiting' AND last_event_id = $7::bigint - 1)"
    " RETURNING job_id),"
    " q AS (UPDATE jobs SET status = 'queued', queued_at = now(), last_event_id = $7::bigint"
    "   FROM a WHERE jobs.id = a.job_id AND jobs.tenant_id = $2 AND jobs.status = 'waiting'"
    "   RETURNING jobs.id, jobs.tenant_id),"
    " e AS (INSERT INTO job_events (job_id, tenant_id, seq, type, body)"
    "   SELECT id, tenant_id, $7::bigint, 'approval.resolved', $8 FROM q)"
    " SELECT id FROM q";

typedef struct decide_state {
    char run_id[UUID_STR_LEN];
    char job_id[UUID_STR_LEN];
    char call_id[UUID_STR_LEN];
    bool approve;
    char *note;                 /* NULL when none */
    int tries;
    char *event_body;
} decide_state;

static void decide_state_free(void *p)
{
    decide_state *s = p;
    free(s->note);
    free(s->event_body);
    free(s);
}

static void read_run(gw_req *r);

static void on_decided(gw_req *r, PGresult *res, const char *err, const char *sqlstate)
{
    decide_state *s = r->state;
    if (!res) { gw_reply_db_error(r, err, sqlstate); return; }
    if (PQntuples(res) == 0) { read_run(r); return; }     /* it changed meanwhile */
    long long seq;
    char type[EVENT_TYPE_MAX];
    if (event_peek(s->event_body, strlen(s->event_body), &seq, type, sizeof type) == 0)
        gw_redis_append_event(r->thr, s->job_id, seq, s->event_body, "queued");
    gw_redis_enqueue(r->thr, s->job_id, "agent.run", r->who.tenant_id, 0);
    log_info("agent run %s: tool call %s %s by %s; job %s queued again", s->run_id,
             s->call_id, s->approve ? "approved" : "denied", r->who.sub, s->job_id);
    char body[400];
    int n = snprintf(body, sizeof body,
                     "{\"id\":\"%s\",\"job_id\":\"%s\",\"status\":\"queued\","
                     "\"tool_call_id\":\"%s\",\"decision\":\"%s\"}",
                     s->run_id, s->job_id, s->call_id, s->approve ? "approved" : "denied");
    http_reply_json(r, 202, body, (size_t)n);
}

/* approval.resolved's data. Returns the encoded event or NULL. */
static char *resolved_event(gw_req *r, decide_state *s, long long seq)
{
    cJSON *d = cJSON_CreateObject();
    bool ok = d != NULL;
    json_add_str(d, "tool_call_id", s->call_id, &ok);
    json_add_str(d, "decision", s->approve ? "approved" : "denied", &ok);
    if (s->note)
        json_add_str(d, "note", s->note, &ok);
    json_add_str(d, "decided_by", r->who.sub, &ok);
    d = json_done(d, ok);
    char *data = d ? json_print(d) : NULL;
    cJSON_Delete(d);
    char *body = data ? event_encode(s->job_id, seq, "approval.resolved", clock_wall_ms(), data)
                      : NULL;
    free(data);
    return body;
}

static void on_run_read(gw_req *r, PGresult *res, const char *err, const char *sqlstate)
{
    decide_state *s = r->state;
    if (!res) { gw_reply_db_error(r, err, sqlstate); return; }
    if (PQntuples(res) == 0) { api_reply_not_found(r, "agent run"); return; }
    if (api_require_job_access(r, PQgetvalue(res, 0, 3)) != 0) return;
    snprintf(s->job_id, sizeof s->job_id, "%s", PQgetvalue(res, 0, 0));
    const char *status = PQgetvalue(res, 0, 1);
    char detail[200];
    if (strcmp(status, "waiting") != 0) {
        snprintf(detail, sizeof detail, "the run is %s, not waiting for an approval", status);
        http_reply_problem(r, 409, "not-waiting", detail, NULL);
        return;
    }
    if (PQgetisnull(res, 0, 4)) {
        http_reply_problem(r, 409, "not-waiting",
                           "the run is not waiting for a tool call with this tool_call_id",
                           "/tool_call_id");
        return;
    }
    if (strcmp(PQgetvalue(res, 0, 4), "pending") != 0) {
        snprintf(detail, sizeof detail, "this tool call was already decided (%s)",
                 PQgetvalue(res, 0, 4));
        http_reply_problem(r, 409, "already-decided", detail, "/tool_call_id");
        return;
    }
    long long seq = strtoll(PQgetvalue(res, 0, 2), NULL, 10) + 1;
    free(s->event_body);
    s->event_body = resolved_event(r, s, seq);
    if (!s->event_body) { http_reply_problem(r, 503, "unavailable", "out of memory", NULL); return; }
    char seq_s[24];
    snprintf(seq_s, sizeof seq_s, "%lld", seq);
    const char *params[8] = { s->job_id, r->who.tenant_id, s->call_id,
                              s->approve ? "approved" : "denied", s->note, r->who.sub, seq_s,
                              s->event_body };
    gw_query(r, SQL_DECIDE, 8, params, on_decided);
}

static void read_run(gw_req *r)
{
    decide_state *s = r->state;
    if (++s->tries > DECIDE_MAX_TRIES) {
        http_reply_problem(r, 409, "conflict", "the run kept changing state; retry", NULL);
        return;
    }
    const char *params[3] = { s->run_id, r->who.tenant_id, s->call_id };
    gw_query(r, SQL_READ, 3, params, on_run_read);
}

/* Answers 422 for the first part of body outside the schema. */
static int check_body(gw_req *r, const cJSON *body)
{
    pthread_once(&body_schema_once, body_schema_parse);
    if (!body_schema) {
        http_reply_problem(r, 503, "unavailable", "out of memory", NULL);
        return -1;
    }
    schema_error serr;
    if (schema_validate(body_schema, body, &serr) == 0) return 0;
    char detail[1024];
    snprintf(detail, sizeof detail, "%s %s", serr.path[0] ? serr.path + 1 : "body", serr.message);
    http_reply_problem(r, 422, "validation-failed", detail, serr.path);
    return -1;
}

void api_run_approve(gw_req *r)
{
    static const char *const fields[] = { "tool_call_id", "decision", "note", NULL };
    char id[UUID_STR_LEN];
    if (!uuid_parse(r->route.param, id)) { api_reply_not_found(r, "agent run"); return; }
    snprintf(r->audit_resource, sizeof r->audit_resource, "agent-runs/%s", id);
    cJSON *body = api_parse_body(r, fields);
    if (!body) return;
    if (check_body(r, body) != 0) { cJSON_Delete(body); return; }
    char call_id[UUID_STR_LEN];
    if (!uuid_parse(json_get_string(body, "tool_call_id"), call_id)) {
        http_reply_problem(r, 422, "validation-failed", "tool_call_id must be a UUID",
                           "/tool_call_id");
        cJSON_Delete(body);
        return;
    }
    decide_state *s = calloc(1, sizeof *s);
    const char *note = json_get_string(body, "note");
    if (s && note)
        s->note = strdup(note);
    if (!s || (note && !s->note)) {
        if (s) decide_state_free(s);
        http_reply_problem(r, 503, "unavailable", "out of memory", NULL);
        cJSON_Delete(body);
        return;
    }
    r->state = s;
    r->state_free = decide_state_free;
    memcpy(s->run_id, id, sizeof id);
    memcpy(s->call_id, call_id, sizeof call_id);
    s->approve = strcmp(json_get_string(body, "decision"), "approve") == 0;
    cJSON_Delete(body);
    read_run(r);
}
