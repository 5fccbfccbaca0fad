/*
 * api_events.c - GET /v1/jobs/{id}/events and GET /v1/agent-runs/{id}/events.
 *
 * Both check that the job is the caller's tenant's (404 otherwise) and
 * that the caller may read what the job belongs to (403), read
 * where the client resumes from (Last-Event-ID, else ?after=, else 0), and
 * hand the stream to the thread's SSE hub, or answer 204 No Content when
 * the job has finished and the client already has its terminal event.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "api_util.h"
#include "http.h"
#include "query.h"
#include "sse.h"
#include "sse_frame.h"
#include "uuid.h"

typedef struct events_state {
    long long after;
    const char *what;
} events_state;

/* Reads the resume point. Returns 0, or answers 400 and returns -1. */
static int read_resume_point(gw_req *r, long long *after)
{
    const char *v = http_header(r, "Last-Event-ID");
    const char *name = "Last-Event-ID";
    if (!v) { v = http_query(r, "after"); name = "after"; }
    *after = 0;
    if (!v) return 0;
    if (sse_parse_event_id(v, after) != 0) {
        char detail[96];
        snprintf(detail, sizeof detail, "%s must be a non-negative whole number", name);
        http_reply_problem(r, 400, "bad-event-id", detail, NULL);
        return -1;
    }
    return 0;
}

static void on_job_found(gw_req *r, PGresult *res, const char *err, const char *sqlstate)
{
    events_state *s = r->state;
    if (!res) { gw_reply_db_error(r, err, sqlstate); return; }
    if (PQntuples(res) == 0) { api_reply_not_found(r, s->what); return; }
    if (!gw_req_alive(r)) return;
    if (api_require_job_access(r, PQgetvalue(res, 0, 3)) != 0) return;
    long long after = s->after;
    char job_id[UUID_STR_LEN];
    snprintf(job_id, sizeof job_id, "%s", PQgetvalue(res, 0, 0));
    bool finished = PQgetvalue(res, 0, 1)[0] == 't';
    long long last = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
    if (finished && after >= last) {
        /* Nothing left to replay and nothing will come. 204 is what tells
         * an EventSource to stop reconnecting (an empty 200 would have it
         * come back every second). The job's state is the one just read,
         * after admission, so a job that ended while the request waited
         * is seen as ended; one still running here gets a stream, which
         * ends with the terminal event. */
        http_reply_no_content(r, 204);
        return;
    }
    /* The hub takes over r->state for the stream. */
    free(r->state);
    r->state = NULL;
    r->state_free = NULL;
    sse_subscribe(r->thr->hub, r, job_id, r->who.tenant_id, after, finished);
}

static void start_events(gw_req *r, const char *what, const char *sql)
{
    char id[UUID_STR_LEN];
    long long after;
    if (!uuid_parse(r->route.param, id)) { api_reply_not_found(r, what); return; }
    if (read_resume_point(r, &after) != 0) return;
    events_state *s = calloc(1, sizeof *s);
    if (!s) { http_reply_problem(r, 503, "unavailable", "out of memory", NULL); return; }
    s->after = after;
    s->what = what;
    r->state = s;
    r->state_free = free;
    const char *params[2] = { id, r->who.tenant_id };
    gw_query(r, sql, 2, params, on_job_found);
}

void api_job_events(gw_req *r)
{
    start_events(r, "job",
                 "SELECT id, status IN ('succeeded', 'failed', 'cancelled'), last_event_id,"
                 " type FROM jobs WHERE id = $1 AND tenant_id = $2");
}

void api_run_events(gw_req *r)
{
    start_events(r, "agent run",
                 "SELECT j.id, j.status IN ('succeeded', 'failed', 'cancelled'), j.last_event_id,"
                 " j.type FROM agent_runs r JOIN jobs j ON j.id = r.job_id AND j.tenant_id = r.tenant_id"
                 " WHERE r.id = $1 AND r.tenant_id = $2");
}
