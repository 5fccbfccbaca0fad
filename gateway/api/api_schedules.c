/*
 * api_schedules.c - POST /v1/schedules, GET /v1/schedules, GET, PATCH and
 * DELETE /v1/schedules/{id}.
 *
 * A schedule creates a job, or an agent run, at every tick of a cron
 * expression in a time zone; the workers fire the ticks (worker/runtime/
 * schedules.c). Here it is validated whole, as POST /v1/jobs or POST
 * /v1/agent-runs would validate what it creates (the 422's pointer names
 * the member inside "job" or "agent_run"), and its first next_run_at is
 * computed (common/cron.h) before the row is written. A PATCH that
 * changes cron or timezone, or resumes it, computes next_run_at again from
 * now: the ticks that passed while it was paused do not fire.
 *
 * Permissions are the jobs' (a schedule is a source of jobs; changing one
 * is creating its future jobs); one that creates agent runs needs the
 * same action on agent-runs too, as an agent run's job does on the job
 * routes. How a schedule looks is schedule_json() in 021_schedules.sql.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "api_util.h"
#include "api_submit.h"
#include "clock.h"
#include "cron.h"
#include "http.h"
#include "query.h"
#include "jobtypes.h"
#include "jsonutil.h"
#include "rbac.h"
#include "schema.h"
#include "utf8.h"
#include "uuid.h"
#include "log.h"

#define SCHEDULE_NAME_MAX_BYTES 128
#define SCHEDULE_TICKS_SHOWN    10      /* recent_ticks of one schedule */
#define SCHEDULE_TICKS_LISTED   3       /* recent_ticks of each in a listing */
#define SCHEDULES_MAX_PER_TENANT 1000   /* a tenant's schedules at most */

/* A 422 whose pointer is the member's. */
static void reply_invalid(gw_req *r, const char *pointer, const char *detail)
{
    http_reply_problem(r, 422, "validation-failed", detail, pointer);
}

/* Reads the optional string member name (at most max bytes) into *out
 * (NULL when absent or null). Answers 422 and returns -1 when bad. */
static int read_string(gw_req *r, const cJSON *body, const char *name, size_t max,
                       const char **out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, name);
    *out = NULL;
    if (v == NULL || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsString(v) || v->valuestring[0] == '\0' || strlen(v->valuestring) > max) {
        char pointer[64], detail[128];
        snprintf(pointer, sizeof pointer, "/%s", name);
        snprintf(detail, sizeof detail, "%s must be a non-empty string of at most %zu bytes",
                 name, max);
        reply_invalid(r, pointer, detail);
        return -1;
    }
    *out = v->valuestring;
    return 0;
}

/* Reads the optional boolean member name into *out (unchanged when
 * absent). Answers 422 and returns -1 when bad. */
static int read_bool(gw_req *r, const cJSON *body, const char *name, int *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, name);
    if (v == NULL)
        return 0;
    if (!cJSON_IsBool(v)) {
        char pointer[64], detail[96];
        snprintf(pointer, sizeof pointer, "/%s", name);
        snprintf(detail, sizeof detail, "%s must be true or false", name);
        reply_invalid(r, pointer, detail);
        return -1;
    }
    *out = cJSON_IsTrue(v);
    return 0;
}

/*
 * The next tick of cron in timezone after now, as epoch milliseconds text
 * into out (24 bytes). Answers 422 on /cron or /timezone and returns -1
 * when either is bad or the expression never fires.
 */
static int next_tick(gw_req *r, const char *cron, const char *timezone, char out[24])
{
    char err[200];
    int64_t next = 0;
    switch (cron_next_text(cron, timezone, clock_wall_ms() / 1000, &next, err, sizeof err)) {
    case CRON_OK:
        snprintf(out, 24, "%lld", (long long)next * 1000);
        return 0;
    case CRON_BAD_EXPR: {
        char detail[256];
        snprintf(detail, sizeof detail, "cron: %s", err);
        reply_invalid(r, "/cron", detail);
        return -1;
    }
    case CRON_BAD_ZONE:
        reply_invalid(r, "/timezone", "timezone must be an IANA time zone name such as "
                      "Europe/Berlin or UTC");
        return -1;
    default:
        reply_invalid(r, "/cron", "cron never fires (no such day within nine years)");
        return -1;
    }
}

/* --- what a schedule creates ------------------------------------------- */

/* The columns of what a schedule creates, ready for the INSERT. */
typedef struct target {
    const char *kind;           /* "job" or "agent_run" */
    const char *job_type;
    char priority[24], max_attempts[24], timeout_s[24];
    char *payload;              /* kind job: JSON text */
    char *run;                  /* kind agent_run: JSON text */
    char *principal;            /* kind agent_run: JSON text */
    const char *model;          /* kind agent_run: the model named, or NULL */
} target;

static void target_free(target *t)
{
    free(t->payload);
    free(t->run);
    free(t->principal);
}

/* Checks "job": {type, payload?, priority?, max_attempts?, timeout_s?}
 * with POST /v1/jobs's own check (api_job_validate); its run_at and
 * webhook have no meaning for a job a tick creates. */
static int read_job(gw_req *r, const cJSON *job, target *t)
{
    static const char *const not_here[] = { "run_at", "webhook", NULL };
    if (!cJSON_IsObject(job)) {
        reply_invalid(r, "/job", "job must be an object");
        return -1;
    }
    for (int i = 0; not_here[i]; i++) {
        if (cJSON_GetObjectItemCaseSensitive(job, not_here[i]) == NULL) continue;
        char pointer[64], detail[128];
        snprintf(pointer, sizeof pointer, "/job/%s", not_here[i]);
        snprintf(detail, sizeof detail, "a scheduled job takes no %s", not_here[i]);
        reply_invalid(r, pointer, detail);
        return -1;
    }
    api_new_job j;
    api_job_problem p;
    if (api_job_validate(r, job, &j, &t->payload, &p) != 0) {
        if (p.slug == NULL) {
            http_reply_problem(r, 503, "unavailable", "out of memory", NULL);
        } else {
            char pointer[sizeof p.pointer + 8], detail[sizeof p.detail + 8];
            snprintf(pointer, sizeof pointer, "/job%s", p.pointer);
            snprintf(detail, sizeof detail, "job: %s", p.detail);
            http_reply_problem(r, 422, p.slug, detail, pointer);
        }
        return -1;
    }
    t->kind = "job";
    t->job_type = j.type;
    snprintf(t->priority, sizeof t->priority, "%lld", j.priority);
    snprintf(t->max_attempts, sizeof t->max_attempts, "%lld", j.max_attempts);
    snprintf(t->timeout_s, sizeof t->timeout_s, "%lld", j.timeout_s);
    return 0;
}

static cJSON *run_schema;
static pthread_once_t run_schema_once = PTHREAD_ONCE_INIT;

static void run_schema_parse(void)
{
    run_schema = cJSON_Parse(api_runs_body_schema_json());
}

/* Checks "agent_run" against POST /v1/agent-runs' body schema and rules;
 * a scheduled run names no session. */
static int read_agent_run(gw_req *r, const cJSON *run, target *t)
{
    if (!cJSON_IsObject(run)) {
        reply_invalid(r, "/agent_run", "agent_run must be an object");
        return -1;
    }
    if (api_require_job_access(r, "agent.run") != 0)
        return -1;
    pthread_once(&run_schema_once, run_schema_parse);
    if (!run_schema) {
        http_reply_problem(r, 503, "unavailable", "out of memory", NULL);
        return -1;
    }
    schema_error serr;
    if (schema_validate(run_schema, run, &serr) != 0) {
        char pointer[sizeof serr.path + 16], detail[sizeof serr.path + sizeof serr.message + 16];
        snprintf(pointer, sizeof pointer, "/agent_run%s", serr.path);
        snprintf(detail, sizeof detail, "agent_run%s %s", serr.path, serr.message);
        reply_invalid(r, pointer, detail);
        return -1;
    }
    if (cJSON_GetObjectItemCaseSensitive(run, "session_id")) {
        reply_invalid(r, "/agent_run/session_id",
                      "a scheduled run belongs to no session: session_id is not allowed here");
        return -1;
    }
    const cJSON *tools = cJSON_GetObjectItemCaseSensitive(run, "tools"), *tool;
    int i = 0;
    cJSON_ArrayForEach(tool, tools) {
        if (!api_tool_name_valid(tool->valuestring)) {
            char pointer[48], detail[160];
            snprintf(pointer, sizeof pointer, "/agent_run/tools/%d", i);
            snprintf(detail, sizeof detail, "agent_run.tools/%d must be a tool name: letters, "
                     "digits, '.', '_' or '-'", i);
            reply_invalid(r, pointer, detail);
            return -1;
        }
        i++;
    }
    const cJSON *temp = cJSON_GetObjectItemCaseSensitive(run, "temperature");
    char kept[40];
    if (temp && !json_number_fits_float(temp, kept, sizeof kept)) {
        char detail[200];
        snprintf(detail, sizeof detail, "agent_run.temperature cannot be kept exactly as sent: "
                 "it is stored in single precision, which holds it as %s", kept);
        reply_invalid(r, "/agent_run/temperature", detail);
        return -1;
    }
    const job_type *type = jobtypes_find("agent.run");
    const cJSON *run_timeout = cJSON_GetObjectItemCaseSensitive(run, "timeout_s");
    char run_timeout_text[24];
    if (cJSON_IsNumber(run_timeout))
        snprintf(run_timeout_text, sizeof run_timeout_text, "%lld",
                 (long long)run_timeout->valuedouble);
    t->kind = "agent_run";
    t->job_type = "agent.run";
    t->model = json_get_string(run, "model");
    snprintf(t->priority, sizeof t->priority, "0");
    snprintf(t->max_attempts, sizeof t->max_attempts, "%d", type->default_max_attempts);
    snprintf(t->timeout_s, sizeof t->timeout_s, "%lld",
             api_run_job_timeout_s(&r->thr->srv->cfg, type,
                                   cJSON_IsNumber(run_timeout) ? run_timeout_text : NULL));
    t->run = json_print(run);
    t->principal = api_run_principal_json(&r->who);
    if (!t->run || !t->principal) {
        http_reply_problem(r, 503, "unavailable", "out of memory", NULL);
        return -1;
    }
    return 0;
}

/* --- POST /v1/schedules ---------------------------------------------------- */

/*
 * $1 id, $2 tenant, $3 name, $4 cron, $5 timezone, $6 kind, $7 job type,
 * $8 priority, $9 max_attempts, $10 timeout_s, $11 payload, $12 run,
 * $13 principal, $14 paused, $15 next_run_at (epoch ms), $16 sub, $17 the
 * run's model, $18 the model the configured providers serve (NULL when
 * none), $19 the tenant's cap. A run's model must be served to the
 * tenant, as on POST /v1/agent-runs, and the tenant must have room for
 * one more: nothing is written otherwise. Answers model_ok, room and the
 * schedule (NULL when nothing was written).
 */
static const char SQL_SCHEDULE_INSERT[] =
    "WITH m AS (SELECT ($17::text IS NULL OR coalesce($17 = $18::text, false) OR EXISTS"
    "     (SELECT 1 FROM model_defaults d WHERE d.model = $17"
    "        AND (d.scope = 'global' OR (d.scope = 'tenant' AND d.tenant_id = $2))))"
    "   AS model_ok),"
    " room AS (SELECT m.model_ok AND schedules_room($2, $19::int) AS ok FROM m),"
    " i AS (INSERT INTO schedules (id, tenant_id, name, cron, timezone, kind, job_type,"
    "   priority, max_attempts, timeout_s, payload, run, principal, paused, next_run_at,"
    "   created_by)"
    "   SELECT $1, $2, $3, $4, $5, $6, $7, $8::int, $9::int, $10::int, $11::jsonb, $12::jsonb,"
    "     $13::jsonb, $14::boolean,"
    "     CASE WHEN NOT $14::boolean THEN to_timestamp($15::bigint / 1000.0) END, $16"
    "   FROM room WHERE room.ok"
    "   RETURNING schedule_json(schedules, 10) AS js)"
    " SELECT m.model_ok, room.ok, (SELECT js FROM i) FROM m, room";

typedef struct create_state { char id[UUID_STR_LEN]; } create_state;

static void on_schedule_inserted(gw_req *r, PGresult *res, const char *err, const char *sqlstate)
{
    create_state *s = r->state;
    if (!res) { gw_reply_db_error(r, err, sqlstate); return; }
    if (PQntuples(res) != 1) {
        gw_reply_db_error(r, "schedule insert answered no row", "XX000");
        return;
    }
    if (strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
        reply_invalid(r, "/agent_run/model",
                      "model is not served to this tenant (GET /v1/models lists those it can use)");
        return;
    }
    if (strcmp(PQgetvalue(res, 0, 1), "t") != 0 || PQgetisnull(res, 0, 2)) {
        char detail[96];
        snprintf(detail, sizeof detail, "the tenant already has the %d schedules it may have",
                 SCHEDULES_MAX_PER_TENANT);
        http_reply_problem(r, 409, "too-many-schedules", detail, NULL);
        return;
    }
    log_info("schedule %s created", s->id);
    char location[64];
    snprintf(location, sizeof location, "/v1/schedules/%s", s->id);
    http_set_header(r, "Location", location);
    api_reply_row(r, 201, res, 0, 2);
}

void api_schedules_create(gw_req *r)
{
    static const char *const fields[] = { "name", "cron", "timezone", "job", "agent_run",
                                          "paused", NULL };
    cJSON *body = api_parse_body(r, fields);
    if (!body) return;
    target t = { 0 };
    const char *name, *cron, *timezone;
    int paused = 0;
    if (read_string(r, body, "name", SCHEDULE_NAME_MAX_BYTES, &name) ||
        read_string(r, body, "cron", CRON_TEXT_MAX, &cron) ||
        read_string(r, body, "timezone", TZ_NAME_MAX, &timezone) ||
        read_bool(r, body, "paused", &paused))
        goto done;
    if (!cron) {
        reply_invalid(r, "/cron", "cron is required: five fields, minute hour day-of-month "
                      "month day-of-week");
        goto done;
    }
    if (!timezone)
        timezone = "UTC";
    char next[24];
    if (next_tick(r, cron, timezone, next) != 0)
        goto done;
    const cJSON *job = cJSON_GetObjectItemCaseSensitive(body, "job");
    const cJSON *run = cJSON_GetObjectItemCaseSensitive(body, "agent_run");
    if ((job == NULL) == (run == NULL)) {
        reply_invalid(r, job ? "/agent_run" : "/job",
                      "a schedule creates either a job or an agent_run: give exactly one");
        goto done;
    }
    if (job ? read_job(r, job, &t) : read_agent_run(r, run, &t))
        goto done;

    create_state *s = calloc(1, sizeof *s);
    if (!s) { http_reply_problem(r, 503, "unavailable", "out of memory", NULL); goto done; }
    r->state = s;
    r->state_free = free;
    uuid_v7(s->id);
    snprintf(r->audit_resource, sizeof r->audit_resource, "schedules/%s", s->id);
    const ag_config *cfg = &r->thr->srv->cfg;
    const char *served = cfg->llm_providers[0] && cfg->llm_model[0] ? cfg->llm_model : NULL;
    char cap[16];
    snprintf(cap, sizeof cap, "%d", SCHEDULES_MAX_PER_TENANT);
    const char *params[19] = {
        s->id, r->who.tenant_id, name, cron, timezone, t.kind, t.job_type, t.priority,
        t.max_attempts, t.timeout_s, t.payload, t.run, t.principal, paused ? "true" : "false",
        next, r->who.sub, t.model, served, cap,
    };
    gw_query(r, SQL_SCHEDULE_INSERT, 19, params, on_schedule_inserted);
done:
    target_free(&t);
    cJSON_Delete(body);
}

/* --- GET /v1/schedules ------------------------------------------------------ */

/* $4: whether the caller may read agent runs (else their schedules are
 * left out, as their jobs are from GET /v1/jobs). */
static const char SQL_SCHEDULE_LIST[] =
    "SELECT schedule_json(s, 3), s.created_at::text, s.id FROM schedules s"
    " WHERE s.tenant_id = $1"
    "   AND ($2::timestamptz IS NULL OR (s.created_at, s.id) < ($2::timestamptz, $3::uuid))"
    "   AND (s.kind = 'job' OR $4::boolean)"
    " ORDER BY s.created_at DESC, s.id DESC LIMIT $5";

/* True when the caller may do the route's action on agent runs too. */
static bool may_reach_runs(gw_req *r)
{
    rbac_perm need = rbac_job_perm(r->perm, "agent.run");
    char detail[160];
    return rbac_allows(&r->who, need, detail, sizeof detail);
}

void api_schedules_list(gw_req *r)
{
    int limit;
    api_cursor cur;
    if (api_read_limit(r, &limit) != 0 || api_read_cursor(r, &cur) != 0) return;
    const char *params[5] = { r->who.tenant_id, cur.present ? cur.created_at : NULL,
                              cur.present ? cur.id : NULL,
                              may_reach_runs(r) ? "true" : "false", NULL };
    api_query_page(r, SQL_SCHEDULE_LIST, 5, params, limit);
}

/* --- GET /v1/schedules/{id} -------------------------------------------------- */

static void on_schedule_row(gw_req *r, PGresult *res, const char *err, const char *sqlstate)
{
    if (!res) { gw_reply_db_error(r, err, sqlstate); return; }
    if (PQntuples(res) == 0) { api_reply_not_found(r, "schedule"); return; }
    if (api_require_job_access(r, PQgetvalue(res, 0, 1)) != 0) return;
    api_reply_row(r, 200, res, 0, 0);
}

void api_schedule_get(gw_req *r)
{
    char id[UUID_STR_LEN];
    if (!uuid_parse(r->route.param, id)) { api_reply_not_found(r, "schedule"); return; }
    const char *params[2] = { id, r->who.tenant_id };
    gw_query(r, "SELECT schedule_json(s, 10), s.job_type FROM schedules s"
                " WHERE s.id = $1 AND s.tenant_id = $2", 2, params, on_schedule_row);
}

/* --- PATCH /v1/schedules/{id} ------------------------------------------------ */

/* A PATCH between its read of the row and its write. */
typedef struct patch_state {
    char id[UUID_STR_LEN];
    char *name;                 /* NULL: unchanged */
    bool clear_name;
    char *cron, *timezone;      /* NULL: unchanged */
    int paused;                 /* -1: unchanged */
} patch_state;

static void patch_state_free(void *p)
{
    patch_state *s = p;
    free(s->name);
    free(s->cron);
    free(s->timezone);
    free(s);
}

static void on_schedule_updated(gw_req *r, PGresult *res, const char *err, const char *sqlstate)
{
    patch_state *s = r->state;
    if (!res) { gw_reply_db_error(r, err, sqlstate); return; }
    if (PQntuples(res) == 0) {
        http_reply_problem(r, 409, "conflict",
                           "the schedule changed or was deleted meanwhile; read it and try again",
                           NULL);
        return;
    }
    log_info("schedule %s updated", s->id);
    api_reply_row(r, 200, res, 0, 0);
}

/*
 * $1 id, $2 tenant, $3..$5 cron, timezone, paused as read (the write
 * happens only if they still hold), $6 name ($7: set it to $6, NULL
 * clears), $8 cron, $9 timezone, $10 paused, $11 whether next_run_at
 * changes, $12 the new next_run_at (epoch ms; NULL when paused).
 */
static const char SQL_SCHEDULE_UPDATE[] =
    "UPDATE schedules SET name = CASE WHEN $7::boolean THEN $6 ELSE name END,"
    "   cron = $8, timezone = $9, paused = $10::boolean,"
    "   next_run_at = CASE WHEN NOT $11::boolean THEN next_run_at"
    "                      ELSE to_timestamp($12::bigint / 1000.0) END,"
    "   updated_at = now()"
    " WHERE id = $1 AND tenant_id = $2 AND cron = $3 AND timezone = $4 AND paused = $5::boolean"
    " RETURNING schedule_json(schedules, 10)";

static void on_patch_read(gw_req *r, PGresult *res, const char *err, const char *sqlstate)
{
    patch_state *s = r->state;
    if (!res) { gw_reply_db_error(r, err, sqlstate); return; }
    if (PQntuples(res) == 0) { api_reply_not_found(r, "schedule"); return; }
    if (api_require_job_access(r, PQgetvalue(res, 0, 3)) != 0) return;
    const char *old_cron = PQgetvalue(res, 0, 0), *old_tz = PQgetvalue(res, 0, 1);
    bool old_paused = PQgetvalue(res, 0, 2)[0] == 't';
    const char *cron = s->cron ? s->cron : old_cron;
    const char *tz = s->timezone ? s->timezone : old_tz;
    bool paused = s->paused < 0 ? old_paused : s->paused;
    bool moved = paused != old_paused || strcmp(cron, old_cron) != 0 || strcmp(tz, old_tz) != 0;
    char next[24] = "";
    /* Checked whenever given, so a bad cron is refused even on a pause. */
    if ((s->cron || s->timezone || moved) && next_tick(r, cron, tz, next) != 0)
        return;
    const char *params[12] = {
        s->id, r->who.tenant_id, old_cron, old_tz, old_paused ? "true" : "false",
        s->name, s->name || s->clear_name ? "true" : "false", cron, tz,
        paused ? "true" : "false", moved ? "true" : "false", paused || !moved ? NULL : next,
    };
    gw_query(r, SQL_SCHEDULE_UPDATE, 12, params, on_schedule_updated);
}

void api_schedule_update(gw_req *r)
{
    static const char *const fields[] = { "name", "cron", "timezone", "paused", NULL };
    char id[UUID_STR_LEN];
    if (!uuid_parse(r->route.param, id)) { api_reply_not_found(r, "schedule"); return; }
    cJSON *body = api_parse_body(r, fields);
    if (!body) return;
    const char *name, *cron, *timezone;
    int paused = -1;
    if (read_string(r, body, "name", SCHEDULE_NAME_MAX_BYTES, &name) ||
        read_string(r, body, "cron", CRON_TEXT_MAX, &cron) ||
        read_string(r, body, "timezone", TZ_NAME_MAX, &timezone) ||
        read_bool(r, body, "paused", &paused))
        goto done;
    const cJSON *nv = cJSON_GetObjectItemCaseSensitive(body, "cron");
    const cJSON *tv = cJSON_GetObjectItemCaseSensitive(body, "timezone");
    if ((nv && cJSON_IsNull(nv)) || (tv && cJSON_IsNull(tv))) {
        reply_invalid(r, nv && cJSON_IsNull(nv) ? "/cron" : "/timezone",
                      "cron and timezone cannot be removed, only changed");
        goto done;
    }
    patch_state *s = calloc(1, sizeof *s);
    if (!s) { http_reply_problem(r, 503, "unavailable", "out of memory", NULL); goto done; }
    r->state = s;
    r->state_free = patch_state_free;
    memcpy(s->id, id, sizeof s->id);
    snprintf(r->audit_resource, sizeof r->audit_resource, "schedules/%s", id);
    s->paused = paused;
    s->clear_name = cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(body, "name"));
    s->name = name ? strdup(name) : NULL;
    s->cron = cron ? strdup(cron) : NULL;
    s->timezone = timezone ? strdup(timezone) : NULL;
    if ((name && !s->name) || (cron && !s->cron) || (timezone && !s->timezone)) {
        http_reply_problem(r, 503, "unavailable", "out of memory", NULL);
        goto done;
    }
    const char *params[2] = { id, r->who.tenant_id };
    gw_query(r, "SELECT s.cron, s.timezone, s.paused, s.job_type FROM schedules s"
                " WHERE s.id = $1 AND s.tenant_id = $2", 2, params, on_patch_read);
done:
    cJSON_Delete(body);
}

/* --- DELETE /v1/schedules/{id} ---------------------------------------------- */

static void on_schedule_deleted(gw_req *r, PGresult *res, const char *err, const char *sqlstate)
{
    if (!res) { gw_reply_db_error(r, err, sqlstate); return; }
    if (PQntuples(res) == 0) { api_reply_not_found(r, "schedule"); return; }
    if (PQgetvalue(res, 0, 1)[0] != 't') {
        api_require_job_access(r, PQgetvalue(res, 0, 0));   /* answers the 403 */
        return;
    }
    log_info("schedule %s deleted", r->route.param);
    http_reply(r, 204, "application/json", "", 0);
}

/* Deletes only when the caller may reach what the schedule creates ($3);
 * answers the schedule's job type and whether it was deleted. Its ticks
 * go with it; the jobs they created stay. */
static const char SQL_SCHEDULE_DELETE[] =
    "WITH s AS (SELECT job_type, kind FROM schedules WHERE id = $1 AND tenant_id = $2),"
    " d AS (DELETE FROM schedules WHERE id = $1 AND tenant_id = $2"
    "   AND (kind = 'job' OR $3::boolean) RETURNING id)"
    " SELECT s.job_type, EXISTS (SELECT 1 FROM d) FROM s";

void api_schedule_delete(gw_req *r)
{
    char id[UUID_STR_LEN];
    if (!uuid_parse(r->route.param, id)) { api_reply_not_found(r, "schedule"); return; }
    snprintf(r->audit_resource, sizeof r->audit_resource, "schedules/%s", id);
    const char *params[3] = { id, r->who.tenant_id, may_reach_runs(r) ? "true" : "false" };
    gw_query(r, SQL_SCHEDULE_DELETE, 3, params, on_schedule_deleted);
}
