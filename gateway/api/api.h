/*
 * api.h - the handlers of the HTTP API, one per route (see router.h).
 * Each runs on the request's loop thread after authentication, answers
 * through http.h, and never blocks: database and Redis steps continue in
 * callbacks.
 */
#ifndef AG_API_H
#define AG_API_H

#include "gateway.h"

void api_jobs_create(gw_req *r);
void api_jobs_batch_create(gw_req *r);      /* api_jobs_batch.c */
void api_jobs_list(gw_req *r);
void api_job_get(gw_req *r);
void api_job_cancel(gw_req *r);
void api_job_events(gw_req *r);

void api_runs_create(gw_req *r);
void api_run_get(gw_req *r);
void api_run_cancel(gw_req *r);
/* POST /v1/agent-runs/{id}/approvals (api_approvals.c). */
void api_run_approve(gw_req *r);
void api_run_events(gw_req *r);

/* The JSON Schema (text, static) POST /v1/agent-runs checks its body
 * against, for the OpenAPI document. */
const char *api_runs_body_schema_json(void);

/* The JSON Schema (text, static) of POST /v1/agent-runs/{id}/approvals'
 * body, for the OpenAPI document. */
const char *api_approvals_body_schema_json(void);

void api_sessions_create(gw_req *r);
void api_sessions_list(gw_req *r);
void api_session_get(gw_req *r);
void api_session_delete(gw_req *r);

void api_tools_list(gw_req *r);
void api_tool_get(gw_req *r);

/* True when s is a well-formed tool name, [A-Za-z0-9._-]{1,128}: checked
 * before any name from outside reaches a query. */
bool api_tool_name_valid(const char *s);

void api_models_list(gw_req *r);
void api_models_create(gw_req *r);
void api_model_update(gw_req *r);
void api_model_delete(gw_req *r);

void api_tenants_list(gw_req *r);
void api_tenant_get(gw_req *r);
void api_tenant_update(gw_req *r);

/* The MCP server routes (api_mcp_servers.c). */
void api_mcp_servers_create(gw_req *r);
void api_mcp_servers_list(gw_req *r);
void api_mcp_server_get(gw_req *r);
void api_mcp_server_update(gw_req *r);
void api_mcp_server_delete(gw_req *r);
void api_mcp_server_refresh(gw_req *r);

/* The schedule routes (api_schedules.c). */
void api_schedules_create(gw_req *r);
void api_schedules_list(gw_req *r);
void api_schedule_get(gw_req *r);
void api_schedule_update(gw_req *r);
void api_schedule_delete(gw_req *r);

/*
 * Hands the MCP handlers the operator's stdio servers (mcp_config.h),
 * loaded at start. Call once before the loop threads start; servers is
 * borrowed, read-only, and must outlive them. Until it is called (or with
 * an empty file) no stdio server can be registered.
 */
struct mcp_servers_file;
void api_mcp_servers_setup(const struct mcp_servers_file *servers);

/* Applies the JSON merge patch (RFC 7386) patch to target, which is not
 * changed. Returns the result (caller frees), or NULL when out of memory. */
struct cJSON *api_merge_patch(const struct cJSON *target, const struct cJSON *patch);

void api_health_live(gw_req *r);
void api_health_ready(gw_req *r);
void api_health_components(gw_req *r);
void api_metrics(gw_req *r);

/* GET /openapi.json: the API's OpenAPI document (openapi.h), built once. */
void api_openapi(gw_req *r);

/* The web console (api_console.c): /console redirects to /console/, which
 * is its page; /console/{file} its other files. No token needed. */
void api_console_redirect(gw_req *r);
void api_console_index(gw_req *r);
void api_console_asset(gw_req *r);

/* The operator's view (api_ops.c): GET /v1/queues, the caller's tenant's
 * jobs per type by state; GET /v1/workers, the live workers from the
 * registry the workers keep in Redis. */
void api_queues_list(gw_req *r);
void api_workers_list(gw_req *r);

/* Retries of finished jobs (api_retry.c) and the dead-letter list
 * (api_dead_letters.c); the listing of agent runs (api_runs.c). */
void api_job_retry(gw_req *r);
/* Completion webhooks (api_webhooks.c). */
void api_job_webhook_deliveries(gw_req *r);
void api_tenant_webhook_secret(gw_req *r);
void api_runs_list(gw_req *r);
void api_dead_letters_list(gw_req *r);
void api_dead_letters_retry_all(gw_req *r);
void api_dead_letters_discard_all(gw_req *r);
void api_dead_letter_retry(gw_req *r);
void api_dead_letter_discard(gw_req *r);

#endif
