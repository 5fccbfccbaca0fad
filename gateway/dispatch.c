/*
 * dispatch.c - every request's first steps: its context, its route, its
 * principal, then the handler. Unknown paths are 404 and known paths with
 * the wrong method 405 with Allow, both as problem details.
 */
#include <stdio.h>
#include <string.h>

#include "gateway.h"
#include "api.h"
#include "admit.h"
#include "auth.h"
#include "rbac.h"
#include "guard.h"
#include "gw_metrics.h"
#include "http.h"
#include "log.h"

typedef void (*api_fn)(gw_req *r);

static const api_fn handlers[] = {
    [ROUTE_JOBS_CREATE] = api_jobs_create,
    [ROUTE_JOBS_LIST] = api_jobs_list,
    [ROUTE_JOB_GET] = api_job_get,
    [ROUTE_JOB_CANCEL] = api_job_cancel,
    [ROUTE_JOB_EVENTS] = api_job_events,
    [ROUTE_RUNS_CREATE] = api_runs_create,
    [ROUTE_RUN_GET] = api_run_get,
    [ROUTE_RUN_CANCEL] = api_run_cancel,
    [ROUTE_RUN_EVENTS] = api_run_events,
    [ROUTE_HEALTH_LIVE] = api_health_live,
    [ROUTE_HEALTH_READY] = api_health_ready,
    [ROUTE_HEALTH_COMPONENTS] = api_health_components,
    [ROUTE_METRICS] = api_metrics,
    [ROUTE_SESSIONS_CREATE] = api_sessions_create,
    [ROUTE_SESSIONS_LIST] = api_sessions_list,
    [ROUTE_SESSION_GET] = api_session_get,
    [ROUTE_SESSION_DELETE] = api_session_delete,
    [ROUTE_TOOLS_LIST] = api_tools_list,
    [ROUTE_TOOL_GET] = api_tool_get,
    [ROUTE_MODELS_LIST] = api_models_list,
    [ROUTE_MODELS_CREATE] = api_models_create,
    [ROUTE_MODEL_UPDATE] = api_model_update,
    [ROUTE_MODEL_DELETE] = api_model_delete,
    [ROUTE_TENANTS_LIST] = api_tenants_list,
    [ROUTE_TENANT_GET] = api_tenant_get,
    [ROUTE_TENANT_UPDATE] = api_tenant_update,
    [ROUTE_MCP_SERVERS_CREATE] = api_mcp_servers_create,
    [ROUTE_MCP_SERVERS_LIST] = api_mcp_servers_list,
    [ROUTE_MCP_SERVER_GET] = api_mcp_server_get,
    [ROUTE_MCP_SERVER_UPDATE] = api_mcp_server_update,
    [ROUTE_MCP_SERVER_DELETE] = api_mcp_server_delete,
    [ROUTE_MCP_SERVER_REFRESH] = api_mcp_server_refresh,
    [ROUTE_OPENAPI] = api_openapi,
    [ROUTE_CONSOLE_REDIRECT] = api_console_redirect,
    [ROUTE_CONSOLE_INDEX] = api_console_index,
    [ROUTE_CONSOLE_ASSET] = api_console_asset,
    [ROUTE_QUEUES_LIST] = api_queues_list,
    [ROUTE_WORKERS_LIST] = api_workers_list,
    [ROUTE_JOB_RETRY] = api_job_retry,
    [ROUTE_RUNS_LIST] = api_runs_list,
    [ROUTE_DEAD_LETTERS_LIST] = api_dead_letters_list,
    [ROUTE_DEAD_LETTERS_RETRY_ALL] = api_dead_letters_retry_all,
    [ROUTE_DEAD_LETTERS_DISCARD_ALL] = api_dead_letters_discard_all,
    [ROUTE_DEAD_LETTER_RETRY] = api_dead_letter_retry,
    [ROUTE_DEAD_LETTER_DISCARD] = api_dead_letter_discard,
    [ROUTE_JOB_WEBHOOK_DELIVERIES] = api_job_webhook_deliveries,
    [ROUTE_TENANT_WEBHOOK_SECRET] = api_tenant_webhook_secret,
    [ROUTE_SCHEDULES_CREATE] = api_schedules_create,
    [ROUTE_SCHEDULES_LIST] = api_schedules_list,
    [ROUTE_SCHEDULE_GET] = api_schedule_get,
    [ROUTE_SCHEDULE_UPDATE] = api_schedule_update,
    [ROUTE_SCHEDULE_DELETE] = api_schedule_delete,
    [ROUTE_JOBS_BATCH_CREATE] = api_jobs_batch_create,
    [ROUTE_RUN_APPROVE] = api_run_approve,
};

static http_verb verb_of(evhtp_request_t *req)
{
    switch (evhtp_request_get_method(req)) {
    case htp_method_GET: return VERB_GET;
    case htp_method_HEAD: return VERB_HEAD;
    case htp_method_POST: return VERB_POST;
    case htp_method_DELETE: return VERB_DELETE;
    case htp_method_PATCH: return VERB_PATCH;
    case htp_method_PUT: return VERB_PUT;
    case htp_method_OPTIONS: return VERB_OPTIONS;
    default: return VERB_OTHER;
    }
}

static bool is_event_stream(route_id id)
{
    return id == ROUTE_JOB_EVENTS || id == ROUTE_RUN_EVENTS;
}

static void run_handler(gw_req *r)
{
    if (gw_req_alive(r)) handlers[r->route.id](r);
}

static void after_limits(gw_req *r)
{
    if (gw_req_alive(r)) idem_begin(r, run_handler);
}

/* The role and scope check: 403 names what was missing, never more. */
static int authorize(gw_req *r)
{
    if (r->perm.res == RES_NONE) return 0;
    char detail[160];
    if (rbac_allows(&r->who, r->perm, detail, sizeof detail)) return 0;
    http_reply_problem(r, 403, "forbidden", detail, NULL);
    return -1;
}

/* Runs the request through the stages as far as it goes without waiting. */
static void serve(evhtp_request_t *req)
{
    gw_thread *thr = evthr_get_aux(req->conn->thread);
    gw_req *r = http_request_begin(req, thr);
    if (!r) return;     /* out of memory: answered 500 */
    series_inc(gw_metric.requests);

    if (guard_request(r) != 0) return;

    const char *path = req->uri && req->uri->path && req->uri->path->full ? req->uri->path->full : "";
    int rc = router_match(verb_of(req), path, strlen(path), &r->route);
    if (rc == 404) {
        http_reply_problem(r, 404, "not-found", "no such endpoint", NULL);
        return;
    }
    if (rc == 405) {
        char allow[64];
        router_allow_header(r->route.allowed, allow, sizeof allow);
        http_set_header(r, "Allow", allow);
        http_reply_problem(r, 405, "method-not-allowed", "this endpoint does not accept this method", NULL);
        return;
    }
    r->perm = rbac_route_perm(r->route.id);
    if (r->route.needs_auth) {
        if (auth_require(r, is_event_stream(r->route.id)) != 0) return;
        r->authenticated = true;
        log_set_job(NULL, r->who.tenant_id);
        if (authorize(r) != 0) return;
    }
    limits_admit(r, after_limits);
}

void gw_handle_request(evhtp_request_t *req, void *arg)
{
    (void)arg;
    serve(req);     /* http_request_begin set the request's log context */
    log_set_context(NULL, NULL);
}
