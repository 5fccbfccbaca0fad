/*
 * openapi.c - builds GET /openapi.json (see openapi.h) and serves it.
 *
 * Three kinds of rows live here, each next to what it describes:
 *   ops[]       one per route, keyed by the route's verb and pattern as
 *               router.c spells them: operationId, tag, summary, the
 *               query and header parameters, the body's schema and the
 *               successful answers; the errors every route shares (401,
 *               403, 429 and 503 behind a token, the body errors of a
 *               POST or PATCH, Idempotency-Key's) are added by rule;
 *   schemas[]   the objects the API answers with and the bodies it reads,
 *               as JSON Schema text;
 *   problems[]  every problem slug the gateway answers with.
 * The paths come from walking the route table, never from ops[], so a
 * route cannot be served without being described: the document is not
 * built at all when one has no row, and the unit test names it.
 *
 * Schema text uses ' where JSON has " so it reads as JSON; no schema here
 * holds a ' of its own. The document is built once with cJSON, printed
 * compact, and kept with its ETag for the life of the process.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>

#include "openapi.h"
#include "api.h"
#include "http.h"
#include "rbac.h"
#include "events.h"
#include "jobtypes.h"
#include "version.h"

/* A successful answer: its status and what it carries, a key of schemas[]
 * or one of the media below ("" for no body). */
typedef struct op_answer {
    int status;
    const char *body;
} op_answer;

#define SSE     "@sse"      /* text/event-stream of Event frames */
#define PROM    "@prom"     /* Prometheus text */
#define HTML    "@html"     /* the console's page */
#define FILE_   "@file"     /* one of the console's files (script, style, image) */
#define OPENAPI "@openapi"  /* this document */

typedef struct op_doc {
    http_verb verb;
    const char *pattern;       /* as in router.c */
    const char *operation_id;
    const char *tag;
    const char *summary;
    const char *param;         /* the "*" segment's name; NULL: "id" */
    const char *params;        /* space-separated keys of parameters[] */
    const char *body;          /* the JSON body's key in schemas[]; NULL: none */
    bool body_optional;
    op_answer ok[3];           /* status 0 ends the list */
    const char *errors;        /* statuses beyond the shared ones: "404 409" */
} op_doc;

/* A submission's completion webhook. */
#define WEBHOOK_URL "{'type':['string','null'],'format':'uri','maxLength':2048," \
    "'description':'Completion webhook: POSTed, signed the Standard Webhooks way, when " \
    "the job ends. Must be within the URL allow-lists of the operator and of the tenant.'}"

static const op_doc ops[] = {
    /* Jobs */
    { VERB_POST, "/v1/jobs", "createJob", "Jobs", "Submit a job",
      NULL, "", "JobCreate", false, { { 202, "Job" } }, "" },
    { VERB_GET, "/v1/jobs", "listJobs", "Jobs", "List the tenant's jobs, newest first",
      NULL, "jobStatus jobType limit cursor", NULL, false, { { 200, "JobPage" } }, "400" },
    { VERB_POST, "/v1/jobs/batch", "createJobBatch", "Jobs",
      "Submit up to 1,000 jobs at once, all or nothing",
      NULL, "", "JobBatchCreate", false, { { 202, "JobBatch" } }, "" },
    { VERB_GET, "/v1/jobs/*", "getJob", "Jobs", "Get one job",
      NULL, "", NULL, false, { { 200, "Job" } }, "404" },
    { VERB_DELETE, "/v1/jobs/*", "cancelJob", "Jobs", "Cancel a job",
      NULL, "", NULL, false, { { 200, "Job" }, { 202, "Job" } }, "404 409" },
    { VERB_GET, "/v1/jobs/*/events", "streamJobEvents", "Jobs",
      "Stream a job's events (Server-Sent Events)",
      NULL, "after accessToken lastEventId", NULL, false, { { 200, SSE }, { 204, "" } },
      "400 404" },
    { VERB_GET, "/v1/jobs/*/webhook-deliveries", "listJobWebhookDeliveries", "Jobs",
      "The job's completion webhook deliveries and every attempt of each",
      NULL, "", NULL, false, { { 200, "WebhookDeliveries" } }, "404" },
    { VERB_POST, "/v1/jobs/*/retry", "retryJob", "Jobs",
      "Retry a failed or cancelled job as a new job",
      NULL, "", NULL, false, { { 202, "Job" } }, "404 409" },
    /* Agent runs */
    { VERB_POST, "/v1/agent-runs", "createAgentRun", "Agent runs", "Start an agent run",
      NULL, "", "AgentRunCreate", false, { { 202, "AgentRunCreated" } }, "404 409" },
    { VERB_GET, "/v1/agent-runs", "listAgentRuns", "Agent runs",
      "List the tenant's agent runs, newest first",
      NULL, "runStatus sessionId limit cursor", NULL, false, { { 200, "AgentRunPage" } }, "400" },
    { VERB_GET, "/v1/agent-runs/*", "getAgentRun", "Agent runs", "Get one agent run",
      NULL, "", NULL, false, { { 200, "AgentRun" } }, "404" },
    { VERB_DELETE, "/v1/agent-runs/*", "cancelAgentRun", "Agent runs", "Cancel an agent run",
      NULL, "", NULL, false, { { 200, "AgentRunCancelled" }, { 202, "AgentRunCancelled" } },
      "404 409" },
    { VERB_GET, "/v1/agent-runs/*/events", "streamAgentRunEvents", "Agent runs",
      "Stream an agent run's events (Server-Sent Events)",
      NULL, "after accessToken lastEventId", NULL, false, { { 200, SSE }, { 204, "" } },
      "400 404" },
    { VERB_POST, "/v1/agent-runs/*/approvals", "decideAgentRunApproval", "Agent runs",
      "Approve or deny the tool call a waiting run asks approval for",
      NULL, "", "ApprovalDecision", false, { { 202, "ApprovalDecided" } }, "404 409" },
    /* Sessions */
    { VERB_POST, "/v1/sessions", "createSession", "Sessions", "Create a session",
      NULL, "", "SessionCreate", true, { { 201, "Session" } }, "" },
    { VERB_GET, "/v1/sessions", "listSessions", "Sessions", "List the tenant's sessions",
      NULL, "limit cursor", NULL, false, { { 200, "SessionPage" } }, "400" },
    { VERB_GET, "/v1/sessions/*", "getSession", "Sessions", "Get a session with its runs",
      NULL, "", NULL, false, { { 200, "Session" } }, "404" },
    { VERB_DELETE, "/v1/sessions/*", "deleteSession", "Sessions",
      "Delete a session (its runs stay)",
      NULL, "", NULL, false, { { 204, "" } }, "404" },
    /* Tools */
    { VERB_GET, "/v1/tools", "listTools", "Tools", "List the tools the tenant sees",
      NULL, "", NULL, false, { { 200, "ToolList" } }, "" },
    { VERB_GET, "/v1/tools/+", "getTool", "Tools", "Get one tool",
      NULL, "", NULL, false, { { 200, "Tool" } }, "404" },
    /* Models */
    { VERB_GET, "/v1/models", "listModels", "Models", "List the models served to the tenant",
      NULL, "", NULL, false, { { 200, "ModelList" } }, "" },
    { VERB_POST, "/v1/models", "createModel", "Models", "Add a model row of the tenant",
      NULL, "", "ModelCreate", false, { { 201, "Model" } }, "" },
    { VERB_PATCH, "/v1/models/*", "updateModel", "Models",
      "Change a model row of the tenant (JSON merge patch)",
      NULL, "", "ModelPatch", false, { { 200, "Model" } }, "404 409" },
    { VERB_DELETE, "/v1/models/*", "deleteModel", "Models", "Delete a model row of the tenant",
      NULL, "", NULL, false, { { 204, "" } }, "404" },
    /* Tenants */
    { VERB_GET, "/v1/tenants", "listTenants", "Tenants", "List tenants (the caller's own)",
      NULL, "", NULL, false, { { 200, "TenantPage" } }, "" },
    { VERB_GET, "/v1/tenants/*", "getTenant", "Tenants", "Get the caller's tenant",
      NULL, "", NULL, false, { { 200, "Tenant" } }, "404" },
    { VERB_POST, "/v1/tenants/*/webhook-secret", "rotateTenantWebhookSecret", "Tenants",
      "Make a new webhook signing secret (shown in this answer only)",
      NULL, "", NULL, false, { { 200, "WebhookSecret" } }, "404" },
    { VERB_PATCH, "/v1/tenants/*", "updateTenant", "Tenants",
      "Change the caller's tenant (JSON merge patch)",
      NULL, "", "TenantPatch", false, { { 200, "Tenant" } }, "404 409" },
    /* MCP servers */
    { VERB_POST, "/v1/mcp-servers", "createMcpServer", "MCP servers",
      "Register an MCP server", NULL, "", "McpServerCreate", false,
      { { 202, "McpServer" } }, "409" },
    { VERB_GET, "/v1/mcp-servers", "listMcpServers", "MCP servers",
      "List the tenant's MCP servers", NULL, "", NULL, false, { { 200, "McpServerList" } }, "" },
    { VERB_GET, "/v1/mcp-servers/*", "getMcpServer", "MCP servers", "Get one MCP server",
      "name", "", NULL, false, { { 200, "McpServer" } }, "404" },
    { VERB_PATCH, "/v1/mcp-servers/*", "updateMcpServer", "MCP servers",
      "Change an MCP server (JSON merge patch)", "name", "", "McpServerPatch", false,
      { { 200, "McpServer" }, { 202, "McpServer" } }, "404 409" },
    { VERB_DELETE, "/v1/mcp-servers/*", "deleteMcpServer", "MCP servers",
      "Delete an MCP server and its tools", "name", "", NULL, false, { { 204, "" } }, "404" },
    { VERB_POST, "/v1/mcp-servers/*/refresh", "refreshMcpServer", "MCP servers",
      "Discover an MCP server's tools again", "name", "", NULL, false,
      { { 202, "McpServer" } }, "404" },
    /* Operator */
    { VERB_GET, "/v1/queues", "listQueues", "Operator",
      "Queue depth per job type for the tenant", NULL, "", NULL, false,
      { { 200, "QueueList" } }, "" },
    { VERB_GET, "/v1/workers", "listWorkers", "Operator", "List the live workers",
      NULL, "", NULL, false, { { 200, "WorkerList" } }, "" },
    { VERB_GET, "/v1/dead-letters", "listDeadLetters", "Operator",
      "List the tenant's dead letters (failed jobs not yet retried or discarded)",
      NULL, "jobType limit cursor", NULL, false, { { 200, "JobPage" } }, "400" },
    { VERB_POST, "/v1/dead-letters/retry", "retryAllDeadLetters", "Operator",
      "Retry dead letters, up to 1000 a call", NULL, "jobType", NULL, false,
      { { 200, "DeadLettersRetried" } }, "400" },
    { VERB_DELETE, "/v1/dead-letters", "discardAllDeadLetters", "Operator",
      "Discard dead letters (their jobs stay failed)", NULL, "jobType", NULL, false,
      { { 200, "DeadLettersDiscarded" } }, "400" },
    { VERB_POST, "/v1/dead-letters/*/retry", "retryDeadLetter", "Operator",
      "Retry one dead letter as a new job", NULL, "", NULL, false,
      { { 202, "Job" } }, "404 409" },
    { VERB_DELETE, "/v1/dead-letters/*", "discardDeadLetter", "Operator",
      "Discard one dead letter (its job stays failed)", NULL, "", NULL, false,
      { { 204, "" } }, "404 409" },
    /* Schedules */
    { VERB_POST, "/v1/schedules", "createSchedule", "Schedules",
      "Create a schedule: a job or an agent run at every tick of a cron expression",
      NULL, "", "ScheduleCreate", false, { { 201, "Schedule" } }, "409" },
    { VERB_GET, "/v1/schedules", "listSchedules", "Schedules",
      "List the tenant's schedules, newest first", NULL, "limit cursor", NULL, false,
      { { 200, "SchedulePage" } }, "400" },
    { VERB_GET, "/v1/schedules/*", "getSchedule", "Schedules",
      "Get one schedule with its next run and latest ticks", NULL, "", NULL, false,
      { { 200, "Schedule" } }, "404" },
    { VERB_PATCH, "/v1/schedules/*", "updateSchedule", "Schedules",
      "Pause, resume or change a schedule", NULL, "", "SchedulePatch", false,
      { { 200, "Schedule" } }, "404 409" },
    { VERB_DELETE, "/v1/schedules/*", "deleteSchedule", "Schedules",
      "Delete a schedule (the jobs it created stay)", NULL, "", NULL, false,
      { { 204, "" } }, "404" },
    /* Health, metrics, this document */
    { VERB_GET, "/v1/health/live", "getLiveness", "Health", "Liveness",
      NULL, "", NULL, false, { { 200, "HealthStatus" } }, "" },
    { VERB_GET, "/v1/health/ready", "getReadiness", "Health",
      "Readiness: PostgreSQL and Redis reachable", NULL, "", NULL, false,
      { { 200, "HealthStatus" } }, "503" },
    { VERB_GET, "/v1/health/components", "getHealthComponents", "Health",
      "The state of each component, as this loop thread sees it", NULL, "", NULL, false,
      { { 200, "HealthComponents" }, { 503, "HealthComponents" } }, "" },
    { VERB_GET, "/metrics", "getMetrics", "Health", "Prometheus metrics",
      NULL, "", NULL, false, { { 200, PROM } }, "" },
    { VERB_GET, "/openapi.json", "getOpenApi", "Health", "This OpenAPI document",
      NULL, "", NULL, false, { { 200, OPENAPI }, { 304, "" } }, "" },
    /* The web console */
    { VERB_GET, "/console", "redirectConsole", "Console", "Redirects to /console/",
      NULL, "", NULL, false, { { 301, "" } }, "" },
    { VERB_GET, "/console/", "getConsole", "Console", "The web console",
      NULL, "", NULL, false, { { 200, HTML }, { 304, "" } }, "404" },
    { VERB_GET, "/console/*", "getConsoleFile", "Console", "A file of the web console",
      "file", "", NULL, false, { { 200, FILE_ }, { 304, "" } }, "404" },
};

#define N_OPS (sizeof ops / sizeof ops[0])

/* Query and header parameters, by the keys ops[] names. */
static const struct {
    const char *key;
    const char *json;
} parameters[] = {
    { "limit", "{'name':'limit','in':'query','description':'Items per page.',"
      "'schema':{'type':'integer','minimum':1,'maximum':200,'default':50}}" },
    { "cursor", "{'name':'cursor','in':'query','description':'The next_cursor of the "
      "previous page (opaque).','schema':{'type':'string'}}" },
    { "jobStatus", "{'name':'status','in':'query','description':'Only jobs in this status "
      "(a cancelling job is running here).','schema':{'type':'string',"
      "'enum':['queued','running','waiting','succeeded','failed','cancelled']}}" },
    { "runStatus", "{'name':'status','in':'query','description':'Only runs in this status "
      "(a cancelling run is running here).','schema':{'type':'string',"
      "'enum':['queued','running','waiting','succeeded','failed','cancelled']}}" },
    { "jobType", "{'name':'type','in':'query','description':'Only jobs of this registered "
      "type.','schema':{'type':'string'}}" },
    { "sessionId", "{'name':'session_id','in':'query','description':'Only runs of this "
      "session.','schema':{'type':'string','format':'uuid'}}" },
    { "after", "{'name':'after','in':'query','description':'Resume after this event id "
      "(when Last-Event-ID is absent).','schema':{'type':'string','pattern':'^[0-9]{1,18}$'}}" },
    { "accessToken", "{'name':'access_token','in':'query','description':'The bearer token, "
      "for clients (EventSource) that cannot send Authorization.','schema':{'type':'string'}}" },
    { "lastEventId", "{'name':'Last-Event-ID','in':'header','description':'Resume after this "
      "event id.','schema':{'type':'string','pattern':'^[0-9]{1,18}$'}}" },
    { "idempotencyKey", "{'name':'Idempotency-Key','in':'header','description':'Makes a "
      "retried request answer as the first one did (1-255 visible ASCII characters).',"
      "'schema':{'type':'string','minLength':1,'maxLength':255}}" },
};

#define TS  "{'type':['string','null'],'format':'date-time'}"
#define UUID "{'type':'string','format':'uuid'}"
#define UUID_OR_NULL "{'type':['string','null'],'format':'uuid'}"
#define LINKS "{'type':'object','additionalProperties':{'type':'string'}}"
#define REF(name) "{'$ref':'#/components/schemas/" name "'}"
#define PAGE(item) "{'type':'object','required':['items','next_cursor'],'properties':{" \
    "'items':{'type':'array','items':" REF(item) "},'next_cursor':{'type':['string','null']}}}"
#define LIST(item) "{'type':'object','required':['items','truncated'],'properties':{" \
    "'items':{'type':'array','items':" REF(item) "},'truncated':{'type':'boolean'}}}"

/* The objects of the API. Job, AgentRun and the rest allow members beyond
 * the ones listed: the API may add members to an answer (docs/api.md). */
static const struct {
    const char *name;
    const char *json;
} schemas[] = {
    { "JobStatus", "{'type':'string','enum':['queued','running','cancelling','waiting',"
      "'succeeded','failed','cancelled']}" },
    { "JobError", "{'type':'object','required':['code','message'],'properties':{"
      "'code':{'type':'string'},'message':{'type':'string'}}}" },
    { "Job", "{'type':'object','required':['id','type','status','payload','attempts',"
      "'max_attempts','timeout_s','created_at','last_event_id','links'],'properties':{"
      "'id':" UUID ",'type':{'type':'string'},'status':" REF("JobStatus") ","
      "'priority':{'type':'integer'},'payload':{'type':'object'},"
      "'result':{'description':'The result once succeeded, else null.'},"
      "'error':{'oneOf':[{'type':'null'}," REF("JobError") "]},"
      "'attempts':{'type':'integer'},'max_attempts':{'type':'integer'},"
      "'timeout_s':{'type':'integer'},'progress':{'type':['object','null']},"
      "'run_at':" TS ",'created_at':" TS ",'started_at':" TS ",'finished_at':" TS ","
      "'heartbeat_at':" TS ",'worker_id':{'type':['string','null']},"
      "'last_event_id':{'type':'integer'},'retry_of':" UUID_OR_NULL ","
      "'run_id':{'type':'string','format':'uuid','description':'The new agent run, on the "
      "retry of an agent run job.'},'links':" LINKS "}}" },
    { "JobPage", PAGE("Job") },
    { "JobBatchCreate", "{'type':'object','required':['jobs'],'properties':{"
      "'jobs':{'type':'array','minItems':1,'maxItems':1000,'items':" REF("JobCreate") ","
      "'description':'Each item as the body of POST /v1/jobs. A 422 names the first "
      "item at fault by its index: /jobs/3/payload/n.'}},'additionalProperties':false}" },
    { "JobBatch", "{'type':'object','required':['jobs'],'properties':{"
      "'jobs':{'type':'array','items':" REF("Job") ",'description':'The new jobs, in the "
      "order they were sent.'}}}" },
    { "AgentRunCreated", "{'type':'object','required':['id','job_id','status','links'],"
      "'properties':{'id':" UUID ",'job_id':" UUID ",'status':" REF("JobStatus") ","
      "'held':{'type':'boolean','description':'The run waits for the active runs of its "
      "session to end (multitask_strategy enqueue, interrupt, rollback).'},"
      "'links':" LINKS "}}" },
    { "AgentRunCancelled", "{'type':'object','required':['id','job_id','status'],"
      "'properties':{'id':" UUID ",'job_id':" UUID ",'status':" REF("JobStatus") "}}" },
    { "AgentRun", "{'type':'object','required':['id','job_id','status','prompt'],"
      "'properties':{'id':" UUID ",'job_id':" UUID ",'session_id':" UUID_OR_NULL ","
      "'status':" REF("JobStatus") ",'prompt':{'type':'string'},"
      "'model':{'type':['string','null']},'temperature':{'type':['number','null']},"
      "'max_tokens':{'type':['integer','null']},'max_iterations':{'type':['integer','null']},"
      "'timeout_s':{'type':['integer','null']},'planning_mode':{'type':['string','null']},"
      "'response_mode':{'type':['string','null']},"
      "'tools':{'type':['array','null'],'items':{'type':'string'}},"
      "'approval':{'type':'string','enum':['manifest','write-tools']},"
      "'approval_timeout_s':{'type':['integer','null']},"
      "'pending_approval':{'oneOf':[{'type':'null'}," REF("ToolApproval") "]},"
      "'approvals':{'type':'array','items':" REF("ToolApproval") "},"
      "'intent':{'type':['string','null']},'output':{'type':['string','null']},"
      "'error':{'oneOf':[{'type':'null'}," REF("JobError") "]},"
      "'todos':{'type':'array','items':{'type':'object'}},"
      "'steps':{'type':'array','items':" REF("Step") "},'metrics':{'type':'object'},"
      "'attempts':{'type':'integer'},'last_event_id':{'type':'integer'},"
      "'multitask_strategy':{'type':'string','enum':['reject','enqueue','interrupt',"
      "'rollback']},'held':{'type':'boolean','description':'Waiting for the earlier "
      "runs of its session to end.'},"
      "'superseded':{'type':['string','null'],'enum':['interrupted','rolled_back',null],"
      "'description':'Cancelled by a later run of its session: interrupted runs stay in "
      "the session context with their work so far, rolled back ones leave it.'},"
      "'superseded_by':" UUID_OR_NULL ","
      "'created_at':" TS ",'started_at':" TS ",'finished_at':" TS ",'links':" LINKS "}}" },
    { "ToolApproval", "{'type':'object','required':['tool_call_id','tool','arguments',"
      "'status','requested_at','expires_at'],'properties':{'tool_call_id':" UUID ","
      "'tool':{'type':'string'},'arguments':{'type':'object'},"
      "'status':{'type':'string','enum':['pending','approved','denied','expired']},"
      "'note':{'type':['string','null']},'decided_by':{'type':['string','null']},"
      "'requested_at':" TS ",'expires_at':" TS ",'decided_at':" TS "}}" },
    { "ApprovalDecided", "{'type':'object','required':['id','job_id','status',"
      "'tool_call_id','decision'],'properties':{'id':" UUID ",'job_id':" UUID ","
      "'status':" REF("JobStatus") ",'tool_call_id':" UUID ","
      "'decision':{'type':'string','enum':['approved','denied']}}}" },
    { "AgentRunSummary", "{'type':'object','required':['id','job_id','status'],"
      "'properties':{'id':" UUID ",'job_id':" UUID ",'session_id':" UUID_OR_NULL ","
      "'status':" REF("JobStatus") ",'prompt':{'type':'string'},"
      "'model':{'type':['string','null']},'created_at':" TS ",'started_at':" TS ","
      "'finished_at':" TS ",'links':" LINKS "}}" },
    { "AgentRunPage", PAGE("AgentRunSummary") },
    { "Step", "{'type':'object','properties':{'id':{'type':['string','integer']},"
      "'index':{'type':'integer'},'action':{'type':'string'},"
      "'status':{'type':'string','enum':['running','completed','failed','skipped']},"
      "'input':{'type':['object','null']},'output':{'type':['object','null']},"
      "'latency_ms':{'type':['integer','null']},'started_at':" TS ",'finished_at':" TS "}}" },
    { "SessionCreate", "{'type':'object','properties':{"
      "'title':{'type':['string','null'],'maxLength':256},"
      "'metadata':{'type':['object','null'],'description':'At most 16 KiB as compact JSON.'}},"
      "'additionalProperties':false}" },
    { "Session", "{'type':'object','required':['id','created_at','links'],'properties':{"
      "'id':" UUID ",'title':{'type':['string','null']},'metadata':{'type':'object'},"
      "'created_by':{'type':['string','null']},'created_at':" TS ",'updated_at':" TS ","
      "'runs':{'type':'array','items':{'type':'object'},'description':'The latest 100 runs, "
      "oldest first (GET of one session; empty when created).'},"
      "'runs_total':{'type':'integer'},'runs_truncated':{'type':'boolean'},"
      "'links':" LINKS "}}" },
    { "SessionPage", PAGE("Session") },
    { "ScheduleJob", "{'type':'object','required':['type'],'properties':{"
      "'type':{'type':'string','description':'A registered, non-internal job type.'},"
      "'payload':{'type':'object','description':'Checked against the type schema.'},"
      "'priority':{'type':'integer','minimum':-1000,'maximum':1000},"
      "'max_attempts':{'type':'integer','minimum':1,'maximum':100},"
      "'timeout_s':{'type':'integer','minimum':1,'maximum':86400}},"
      "'additionalProperties':false}" },
    { "ScheduleCreate", "{'type':'object','required':['cron'],'properties':{"
      "'name':{'type':['string','null'],'minLength':1,'maxLength':128},"
      "'cron':{'type':'string','maxLength':256,'description':'Five fields (minute hour "
      "day-of-month month day-of-week) with lists, ranges, steps and month and day names, "
      "or @hourly, @daily, @weekly, @monthly, @yearly.'},"
      "'timezone':{'type':'string','maxLength':64,'default':'UTC',"
      "'description':'An IANA time zone name, e.g. Europe/Berlin.'},"
      "'job':" REF("ScheduleJob") ","
      "'agent_run':{'allOf':[" REF("AgentRunCreate") "],'description':'As POST "
      "/v1/agent-runs takes it, without session_id.'},"
      "'paused':{'type':'boolean','default':false}},"
      "'additionalProperties':false,'description':'Exactly one of job and agent_run.'}" },
    { "SchedulePatch", "{'type':'object','properties':{"
      "'name':{'type':['string','null'],'minLength':1,'maxLength':128},"
      "'cron':{'type':'string','maxLength':256},'timezone':{'type':'string','maxLength':64},"
      "'paused':{'type':'boolean'}},'additionalProperties':false}" },
    { "ScheduleTick", "{'type':'object','required':['tick_at','job_id'],'properties':{"
      "'tick_at':" TS ",'fired_at':" TS ",'job_id':" UUID ",'run_id':" UUID_OR_NULL ","
      "'status':{'oneOf':[{'type':'null'}," REF("JobStatus") "]},'links':" LINKS "}}" },
    { "Schedule", "{'type':'object','required':['id','cron','timezone','paused','links'],"
      "'properties':{'id':" UUID ",'name':{'type':['string','null']},'cron':{'type':'string'},"
      "'timezone':{'type':'string'},'paused':{'type':'boolean'},"
      "'next_run_at':{'type':['string','null'],'format':'date-time',"
      "'description':'The next tick; null while paused.'},"
      "'last_tick_at':{'type':['string','null'],'format':'date-time'},"
      "'job':{'oneOf':[{'type':'null'}," REF("ScheduleJob") "]},"
      "'agent_run':{'type':['object','null']},"
      "'recent_ticks':{'type':'array','items':" REF("ScheduleTick") ",'description':'The "
      "latest ticks fired, newest first (10 for one schedule, 3 in a listing).'},"
      "'created_by':{'type':'string'},'created_at':" TS ",'updated_at':" TS ","
      "'links':" LINKS "}}" },
    { "SchedulePage", PAGE("Schedule") },
    { "Tool", "{'type':'object','required':['name'],'properties':{'name':{'type':'string'},"
      "'description':{'type':['string','null']},'input_schema':{'type':'object'},"
      "'required_scopes':{'type':'array','items':{'type':'string'}},"
      "'rate_limit':{'type':['integer','null']},'mcp_server':{'type':['string','null']},"
      "'annotations':{'type':['object','null']},'needs_approval':{'type':'boolean'},"
      "'links':" LINKS "}}" },
    { "ToolList", LIST("Tool") },
    { "Model", "{'type':'object','required':['model','provider','scope','is_default'],"
      "'properties':{'id':{'type':'string','description':'Decimal; absent on the configured "
      "model.'},'model':{'type':'string'},'provider':{'type':'string'},"
      "'providers':{'type':'array','items':{'type':'string'}},"
      "'scope':{'type':'string','enum':['global','tenant','config']},"
      "'is_default':{'type':'boolean'}}}" },
    { "ModelList", LIST("Model") },
    { "ModelCreate", "{'type':'object','required':['provider','model'],'properties':{"
      "'provider':{'type':'string'},'model':{'type':'string','minLength':1,'maxLength':127},"
      "'base_url':{'type':['string','null'],'maxLength':511},"
      "'params':{'type':['object','null']},'is_default':{'type':'boolean'}},"
      "'additionalProperties':false}" },
    { "ModelPatch", "{'type':'object','properties':{"
      "'provider':{'type':'string'},'model':{'type':'string','minLength':1,'maxLength':127},"
      "'base_url':{'type':['string','null'],'maxLength':511},"
      "'params':{'type':['object','null']},'is_default':{'type':'boolean'}},"
      "'additionalProperties':false}" },
    { "Tenant", "{'type':'object','required':['id','name','settings'],'properties':{"
      "'id':{'type':'string'},'name':{'type':'string'},'settings':{'type':'object'},"
      "'created_at':" TS ",'links':" LINKS "}}" },
    { "TenantPage", PAGE("Tenant") },
    { "TenantPatch", "{'type':'object','properties':{"
      "'name':{'type':'string','minLength':1,'maxLength':256},"
      "'settings':{'type':['object','null'],'properties':{"
        "'max_running':{'type':'integer','minimum':0,'maximum':1000000},"
        "'retention_days':{'type':'integer','minimum':1,'maximum':3650},"
        "'rate_limits':{'type':'object'},"
        "'webhook_url_allowlist':{'type':'array','maxItems':16,"
          "'items':{'type':'string','maxLength':512}}}}},'additionalProperties':false}" },
    { "WebhookSecret", "{'type':'object','required':['tenant_id','webhook_secret','rotated_at'],"
      "'properties':{'tenant_id':{'type':'string'},"
      "'webhook_secret':{'type':'string','pattern':'^whsec_','description':'Standard Webhooks "
      "secret: whsec_ and the base64 HMAC-SHA256 key. Shown only here.'},"
      "'rotated_at':" TS "}}" },
    { "WebhookAttempt", "{'type':'object','required':['attempt','started_at'],'properties':{"
      "'attempt':{'type':'integer'},'worker_id':{'type':['string','null']},"
      "'started_at':" TS ",'finished_at':" TS ","
      "'status_code':{'type':['integer','null']},'error':{'type':['string','null']},"
      "'duration_ms':{'type':['integer','null']}}}" },
    { "WebhookDelivery", "{'type':'object','required':['id','job_id','url','event_type','state',"
      "'attempts','created_at','attempt_log'],'properties':{'id':{'type':'string',"
      "'description':'The webhook-id header: the same on every attempt.'},'job_id':" UUID ","
      "'url':{'type':'string'},'event_type':{'type':'string','enum':['job.succeeded',"
      "'job.failed','job.cancelled']},'state':{'type':'string','enum':['pending','delivered',"
      "'failed']},'attempts':{'type':'integer'},'next_attempt_at':" TS ","
      "'last_status':{'type':['integer','null']},'last_error':{'type':['string','null']},"
      "'created_at':" TS ",'finished_at':" TS ","
      "'attempt_log':{'type':'array','items':" REF("WebhookAttempt") "}}}" },
    { "WebhookDeliveries", "{'type':'object','required':['job_id','webhook','items'],"
      "'properties':{'job_id':" UUID ",'webhook':{'type':['string','null']},"
      "'items':{'type':'array','items':" REF("WebhookDelivery") "}}}" },
    { "McpServerCreate", "{'type':'object','required':['name','transport'],'properties':{"
      "'name':{'type':'string','pattern':'^[a-z0-9][a-z0-9_-]*$','minLength':1,'maxLength':48},"
      "'transport':{'type':'string','enum':['http','stdio']},"
      "'url':{'type':['string','null'],'maxLength':2048},'server':{'type':['string','null']},"
      "'headers':{'type':['object','null'],'maxProperties':16,"
        "'additionalProperties':{'type':'string','maxLength':4096},"
        "'description':'Write-only: never shown in an answer.'},"
      "'resource':{'type':['string','null']},'require_approval':{'type':['boolean','null'],"
      "'description':'Every tool of the server waits for approval before each call.'}},"
      "'additionalProperties':false}" },
    { "McpServerPatch", "{'type':'object','properties':{"
      "'url':{'type':['string','null'],'maxLength':2048},'server':{'type':['string','null']},"
      "'headers':{'type':['object','null'],'maxProperties':16,"
        "'additionalProperties':{'type':'string','maxLength':4096}},"
      "'resource':{'type':['string','null']},'require_approval':{'type':['boolean','null']}},"
      "'additionalProperties':false}" },
    { "McpServer", "{'type':'object','required':['name','transport','status'],'properties':{"
      "'name':{'type':'string'},'transport':{'type':'string','enum':['http','stdio']},"
      "'url':{'type':['string','null']},'server':{'type':['string','null']},"
      "'header_names':{'type':'array','items':{'type':'string'}},'resource':{'type':'string'},"
      "'require_approval':{'type':'boolean'},"
      "'status':{'type':'string','enum':['pending','ready','error']},"
      "'protocol_version':{'type':['string','null']},'server_info':{'type':['object','null']},"
      "'tools':{'type':'array','items':{'type':'object'}},'tools_count':{'type':'integer'},"
      "'last_refresh_at':" TS ",'last_error':{'type':['string','null']},"
      "'refresh_job_id':" UUID_OR_NULL ",'created_by':{'type':['string','null']},"
      "'created_at':" TS ",'updated_at':" TS ",'links':" LINKS "}}" },
    { "McpServerList", LIST("McpServer") },
    { "Queue", "{'type':'object','required':['type','queued','bands','delayed','running','dead',"
      "'oldest_queued_age_ms'],'properties':{'type':{'type':'string'},"
      "'queued':{'type':'integer'},'bands':" REF("QueueBands") ","
      "'delayed':{'type':'integer'},'running':{'type':'integer'},"
      "'dead':{'type':'integer'},'oldest_queued_age_ms':{'type':['integer','null']}}}" },
    { "QueueBands", "{'type':'object','description':'queued split by priority band, in the "
      "order workers take them: urgent (priority 100..1000), high (1..99), normal (0), "
      "low (-99..-1), bulk (-1000..-100)','required':['urgent','high','normal','low','bulk'],"
      "'properties':{'urgent':{'type':'integer'},'high':{'type':'integer'},"
      "'normal':{'type':'integer'},'low':{'type':'integer'},'bulk':{'type':'integer'}},"
      "'additionalProperties':false}" },
    { "QueueList", "{'type':'object','required':['items'],'properties':{"
      "'items':{'type':'array','items':" REF("Queue") "}}}" },
    { "Worker", "{'type':'object','required':['id'],'properties':{'id':{'type':'string'},"
      "'host':{'type':'string'},'pid':{'type':'integer'},'started_at':" TS ","
      "'heartbeat_at':" TS ",'queues':{'type':'array','items':{'type':'string'}},"
      "'concurrency':{'type':'integer'},'running':{'type':'integer'},"
      "'jobs':{'type':'array','items':" UUID ",'description':'The ids of the caller tenant "
      "jobs running there.'}}}" },
    { "WorkerList", "{'type':'object','required':['items'],'properties':{"
      "'items':{'type':'array','items':" REF("Worker") "}}}" },
    { "DeadLettersRetried", "{'type':'object','required':['retried','jobs'],'properties':{"
      "'retried':{'type':'integer'},'jobs':{'type':'array','items':" UUID "}}}" },
    { "DeadLettersDiscarded", "{'type':'object','required':['discarded'],'properties':{"
      "'discarded':{'type':'integer'}}}" },
    { "HealthStatus", "{'type':'object','required':['status'],'properties':{"
      "'status':{'type':'string','enum':['ok','ready']}}}" },
    { "HealthComponents", "{'type':'object','required':['status','components'],"
      "'properties':{'status':{'type':'string','enum':['ok','degraded']},"
      "'thread':{'type':'integer'},'uptime_s':{'type':'integer'},"
      "'components':{'type':'object'}}}" },
};

#define N_SCHEMAS (sizeof schemas / sizeof schemas[0])

/* Every problem the gateway answers with: the slug of its type
 * ("urn:agentgate:problem:<slug>"). tests/integration/test_openapi.py
 * reads the gateway's sources for the slugs they send and fails on one
 * missing here. */
static const char *const problems[] = {
    "bad-event-id", "bad-query", "invalid-idempotency-key", "json-too-deep",
    "malformed-request", "malformed-json", "unauthorized", "forbidden",
    "cors-origin-denied", "not-found", "method-not-allowed", "request-timeout",
    "already-finished", "conflict", "too-many-mcp-servers", "too-many-schedules", "idempotency-key-in-flight",
    "not-waiting", "already-decided",
    "body-too-large", "uri-too-long", "unsupported-media-type", "validation-failed",
    "unknown-job-type", "url-not-allowed", "unknown-mcp-server", "idempotency-key-reused",
    "rate-limited", "too-many-streams", "headers-too-large", "internal",
    "database-unavailable", "unavailable", "not-ready", "session-busy",
};

#define N_PROBLEMS (sizeof problems / sizeof problems[0])

const char *const *openapi_problem_slugs(size_t *count)
{
    *count = N_PROBLEMS;
    return problems;
}

static const op_doc *op_find(http_verb verb, const char *pattern)
{
    for (size_t i = 0; i < N_OPS; i++)
        if (ops[i].verb == verb && strcmp(ops[i].pattern, pattern) == 0) return &ops[i];
    return NULL;
}

bool openapi_describes(http_verb verb, const char *pattern)
{
    return op_find(verb, pattern) != NULL;
}

size_t openapi_described_count(void)
{
    return N_OPS;
}

const char *openapi_described_at(size_t i, http_verb *verb)
{
    if (i >= N_OPS) return NULL;
    *verb = ops[i].verb;
    return ops[i].pattern;
}

int openapi_path_of(const char *pattern, const char *param, char *out, size_t size)
{
    size_t n = 0;
    for (const char *p = pattern; *p; p++) {
        const char *piece = NULL;
        char one[2] = { *p, 0 };
        char named[72];
        if (*p == '*') {
            snprintf(named, sizeof named, "{%s}", param ? param : "id");
            piece = named;
        } else if (*p == '+') {
            piece = "{name}";
        } else {
            piece = one;
        }
        size_t len = strlen(piece);
        if (n + len >= size) return -1;
        memcpy(out + n, piece, len);
        n += len;
    }
    out[n] = '\0';
    return 0;
}

int openapi_route_path(http_verb verb, const char *pattern, char *out, size_t size)
{
    const op_doc *d = op_find(verb, pattern);
    return d ? openapi_path_of(pattern, d->param, out, size) : -1;
}

/* ---- building --------------------------------------------------------- */

/* Parses schema text written with ' for ". NULL when out of memory or
 * when the text is not JSON (a defect the unit test catches). */
static cJSON *parse_quoted(const char *text)
{
    char *s = strdup(text);
    if (!s) return NULL;
    for (char *c = s; *c; c++)
        if (*c == '\'') *c = '"';
    cJSON *j = cJSON_Parse(s);
    free(s);
    return j;
}

static const char *verb_key(http_verb v)
{
    switch (v) {
    case VERB_GET: return "get";
    case VERB_POST: return "post";
    case VERB_DELETE: return "delete";
    case VERB_PATCH: return "patch";
    case VERB_PUT: return "put";
    case VERB_OPTIONS: return "options";
    case VERB_HEAD: return "head";
    default: return NULL;
    }
}

static cJSON *ref_to(const char *where, const char *name)
{
    char ref[128];
    snprintf(ref, sizeof ref, "#/components/%s/%s", where, name);
    cJSON *o = cJSON_CreateObject();
    if (o && !cJSON_AddStringToObject(o, "$ref", ref)) { cJSON_Delete(o); return NULL; }
    return o;
}

/* Adds item to o under key; false (and item freed) when either is NULL. */
static bool add(cJSON *o, const char *key, cJSON *item)
{
    if (!o || !item) { cJSON_Delete(item); return false; }
    cJSON_AddItemToObject(o, key, item);
    return true;
}

/* {content: {media: {schema}}} with description. */
static cJSON *content_of(const char *description, const char *media, cJSON *schema)
{
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "description", description);
    cJSON *content = cJSON_CreateObject();
    cJSON *m = cJSON_CreateObject();
    bool ok = add(m, "schema", schema) && add(content, media, m) && add(r, "content", content);
    if (!ok) { cJSON_Delete(content); cJSON_Delete(r); return NULL; }
    return r;
}

static cJSON *success_answer(const op_answer *a)
{
    const char *phrase = http_status_phrase(a->status);
    if (!a->body[0]) {
        cJSON *r = cJSON_CreateObject();
        if (r) cJSON_AddStringToObject(r, "description", phrase);
        return r;
    }
    if (strcmp(a->body, SSE) == 0) {
        /* OpenAPI 3.2 names a stream's items "itemSchema"; 3.1 has no
         * word for it, so it goes in as an extension. */
        cJSON *r = content_of("An event stream: each frame's data is one Event; it ends "
                              "after the terminal event.", "text/event-stream",
                              parse_quoted("{'type':'string'}"));
        cJSON *media = r ? cJSON_GetObjectItemCaseSensitive(
                               cJSON_GetObjectItemCaseSensitive(r, "content"),
                               "text/event-stream") : NULL;
        if (!add(media, "x-itemSchema", ref_to("schemas", "Event"))) { cJSON_Delete(r); return NULL; }
        return r;
    }
    if (strcmp(a->body, PROM) == 0)
        return content_of("Prometheus text format 0.0.4", "text/plain",
                          parse_quoted("{'type':'string'}"));
    if (strcmp(a->body, HTML) == 0)
        return content_of("The console's page", "text/html", parse_quoted("{'type':'string'}"));
    if (strcmp(a->body, FILE_) == 0)
        return content_of("The file, with the Content-Type of its kind", "*/*",
                          parse_quoted("{'type':'string'}"));
    if (strcmp(a->body, OPENAPI) == 0)
        return content_of("This document (OpenAPI 3.1)", "application/json",
                          parse_quoted("{'type':'object'}"));
    return content_of(phrase, "application/json", ref_to("schemas", a->body));
}

/* Adds the error statuses in list ("404 409") that responses lacks. */
static void add_errors(cJSON *responses, const char *list)
{
    for (const char *p = list; *p; ) {
        char *end;
        long status = strtol(p, &end, 10);
        if (end == p) break;
        p = end;
        char key[8];
        snprintf(key, sizeof key, "%ld", status);
        if (!cJSON_GetObjectItemCaseSensitive(responses, key))
            add(responses, key, ref_to("responses", "Problem"));
    }
}

/* Puts the members of responses in order of status, for the reader. */
static void sort_responses(cJSON *responses)
{
    /* Appending a detached member keeps its name: the holder is only a
     * list, read back in order into responses. */
    cJSON holder = { 0 };
    holder.type = cJSON_Object;
    while (responses->child) {
        cJSON *least = responses->child;
        for (cJSON *c = least->next; c; c = c->next)
            if (strcmp(c->string, least->string) < 0) least = c;
        cJSON_AddItemToArray(&holder, cJSON_DetachItemViaPointer(responses, least));
    }
    while (holder.child)
        cJSON_AddItemToArray(responses, cJSON_DetachItemViaPointer(&holder, holder.child));
}

static void add_param_refs(cJSON *list, const char *keys)
{
    char buf[128];
    snprintf(buf, sizeof buf, "%s", keys);
    for (char *save = NULL, *k = strtok_r(buf, " ", &save); k; k = strtok_r(NULL, " ", &save))
        cJSON_AddItemToArray(list, ref_to("parameters", k));
}

/* The path's own parameters ("{id}", "{name}"). */
static void add_path_params(cJSON *list, const char *pattern, const char *param)
{
    for (const char *p = pattern; *p; p++) {
        if (*p != '*' && *p != '+') continue;
        const char *name = *p == '+' ? "name" : (param ? param : "id");
        cJSON *prm = cJSON_CreateObject();
        cJSON_AddStringToObject(prm, "name", name);
        cJSON_AddStringToObject(prm, "in", "path");
        cJSON_AddBoolToObject(prm, "required", true);
        add(prm, "schema", parse_quoted(*p == '+' ? "{'type':'string','maxLength':128}"
                                                  : "{'type':'string','maxLength':63}"));
        cJSON_AddItemToArray(list, prm);
    }
}

/* security: the bearer token with the scope the route's permission needs,
 * or none for a public route. */
static cJSON *security_of(const route_def *rt)
{
    cJSON *sec = cJSON_CreateArray();
    if (!rt->needs_auth) return sec;
    rbac_perm perm = rbac_route_perm(rt->id);
    char scope[32];
    cJSON *req = cJSON_CreateObject();
    cJSON *scopes = cJSON_CreateArray();
    if (permission_scope_name(perm.res, perm.act, scope, sizeof scope) > 0)
        cJSON_AddItemToArray(scopes, cJSON_CreateString(scope));
    add(req, "bearerAuth", scopes);
    cJSON_AddItemToArray(sec, req);
    return sec;
}

static cJSON *operation_of(const route_def *rt, const op_doc *d)
{
    cJSON *op = cJSON_CreateObject();
    if (!op) return NULL;
    cJSON_AddStringToObject(op, "operationId", d->operation_id);
    cJSON_AddStringToObject(op, "summary", d->summary);
    cJSON *tags = cJSON_AddArrayToObject(op, "tags");
    cJSON_AddItemToArray(tags, cJSON_CreateString(d->tag));
    rbac_perm perm = rbac_route_perm(rt->id);
    if (rt->needs_auth) {
        char text[96];
        snprintf(text, sizeof text, "Needs %s on %s (roles, and the token's scope).",
                 rbac_action_name(perm.act), rbac_resource_name(perm.res));
        cJSON_AddStringToObject(op, "description", text);
    }
    add(op, "security", security_of(rt));

    cJSON *params = cJSON_CreateArray();
    add_path_params(params, rt->pattern, d->param);
    add_param_refs(params, d->params);
    bool idempotent_post = rt->verb == VERB_POST && rt->needs_auth;
    if (idempotent_post) add_param_refs(params, "idempotencyKey");
    if (cJSON_GetArraySize(params) > 0) add(op, "parameters", params);
    else cJSON_Delete(params);

    if (d->body) {
        cJSON *body = content_of("The request body", "application/json",
                                 ref_to("schemas", d->body));
        if (body) cJSON_AddBoolToObject(body, "required", !d->body_optional);
        add(op, "requestBody", body);
    }

    cJSON *responses = cJSON_CreateObject();
    for (size_t i = 0; i < 3 && d->ok[i].status; i++) {
        char key[8];
        snprintf(key, sizeof key, "%d", d->ok[i].status);
        add(responses, key, success_answer(&d->ok[i]));
    }
    add_errors(responses, d->errors);
    if (d->body) add_errors(responses, "400 413 415 422");
    if (idempotent_post) add_errors(responses, "400 409 422 503");
    if (rt->needs_auth) add_errors(responses, "401 403 429 503");
    if (responses) sort_responses(responses);
    add(op, "responses", responses);
    return op;
}

/* JobCreate: oneOf one body per type POST /v1/jobs accepts, told apart
 * by "type"; each type's payload is its registry schema. */
static bool add_job_create(cJSON *components_schemas)
{
    size_t n;
    const job_type *types = jobtypes_all(&n);
    cJSON *one_of = cJSON_CreateArray();
    cJSON *mapping = cJSON_CreateObject();
    bool ok = one_of && mapping;
    for (size_t i = 0; ok && i < n; i++) {
        if (types[i].internal || !types[i].schema) continue;
        char name[96];
        snprintf(name, sizeof name, "JobCreate-%s", types[i].name);
        cJSON *s = parse_quoted(
            "{'type':'object','required':['type'],'properties':{"
            "'type':{'type':'string'},"
            "'priority':{'type':'integer','minimum':-1000,'maximum':1000,'default':0,"
            "'description':'orders work among queued jobs of one tenant and type, by "
            "band: urgent 100..1000, high 1..99, normal 0, low -99..-1, bulk -1000..-100'},"
            "'max_attempts':{'type':'integer','minimum':1,'maximum':100},"
            "'timeout_s':{'type':'integer','minimum':1,'maximum':86400},"
            "'run_at':{'type':['string','null'],'format':'date-time'},"
            "'webhook':" WEBHOOK_URL "},"
            "'additionalProperties':false}");
        cJSON *props = s ? cJSON_GetObjectItemCaseSensitive(s, "properties") : NULL;
        cJSON *type = props ? cJSON_GetObjectItemCaseSensitive(props, "type") : NULL;
        ok = type && cJSON_AddStringToObject(type, "const", types[i].name)
             && cJSON_AddStringToObject(s, "description", types[i].description)
             && add(props, "payload", cJSON_Duplicate(types[i].schema, 1));
        if (!ok) { cJSON_Delete(s); break; }
        char ref[128];
        snprintf(ref, sizeof ref, "#/components/schemas/%s", name);
        cJSON_AddItemToObject(components_schemas, name, s);
        cJSON_AddItemToArray(one_of, ref_to("schemas", name));
        cJSON_AddStringToObject(mapping, types[i].name, ref);
    }
    cJSON *job_create = cJSON_CreateObject();
    cJSON *disc = cJSON_CreateObject();
    ok = ok && job_create && disc && cJSON_AddStringToObject(disc, "propertyName", "type");
    if (!ok) {
        cJSON_Delete(one_of); cJSON_Delete(mapping); cJSON_Delete(job_create); cJSON_Delete(disc);
        return false;
    }
    cJSON_AddItemToObject(disc, "mapping", mapping);
    cJSON_AddItemToObject(job_create, "oneOf", one_of);
    cJSON_AddItemToObject(job_create, "discriminator", disc);
    cJSON_AddItemToObject(components_schemas, "JobCreate", job_create);
    return true;
}

/* An enum of strings: prefix + each of n names. */
static cJSON *string_enum(const char *prefix, const char *const *names, size_t n)
{
    cJSON *s = cJSON_CreateObject();
    cJSON *e = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) {
        char v[128];
        snprintf(v, sizeof v, "%s%s", prefix, names[i]);
        cJSON_AddItemToArray(e, cJSON_CreateString(v));
    }
    cJSON_AddStringToObject(s, "type", "string");
    add(s, "enum", e);
    return s;
}

/* Problem (RFC 9457) with every type the gateway answers; Event with
 * every event type. */
static bool add_table_schemas(cJSON *cs)
{
    cJSON *problem = parse_quoted(
        "{'type':'object','required':['type','title','status','detail','request_id'],"
        "'properties':{'title':{'type':'string'},'status':{'type':'integer'},"
        "'detail':{'type':'string'},'request_id':{'type':'string'},"
        "'errors':{'type':'array','items':{'type':'object','required':['pointer','detail'],"
        "'properties':{'pointer':{'type':'string'},'detail':{'type':'string'}}}}}}");
    cJSON *pprops = problem ? cJSON_GetObjectItemCaseSensitive(problem, "properties") : NULL;
    bool ok = add(pprops, "type", string_enum("urn:agentgate:problem:", problems, N_PROBLEMS));
    if (!ok) { cJSON_Delete(problem); return false; }
    cJSON_AddItemToObject(cs, "Problem", problem);

    cJSON *event = parse_quoted(
        "{'type':'object','required':['id','job_id','type','ts','data'],"
        "'description':'The data of one event-stream frame.','properties':{"
        "'id':{'type':'integer','minimum':1},'job_id':" UUID ","
        "'ts':{'type':'string','format':'date-time'},'data':{'type':'object'}}}");
    cJSON *eprops = event ? cJSON_GetObjectItemCaseSensitive(event, "properties") : NULL;
    size_t n;
    const char *const *types = event_types_all(&n);
    ok = add(eprops, "type", string_enum("", types, n));
    if (!ok) { cJSON_Delete(event); return false; }
    cJSON_AddItemToObject(cs, "Event", event);
    return true;
}

static cJSON *components(void)
{
    cJSON *c = cJSON_CreateObject();
    cJSON *cs = cJSON_CreateObject();
    bool ok = add(c, "schemas", cs);
    for (size_t i = 0; ok && i < N_SCHEMAS; i++)
        ok = add(cs, schemas[i].name, parse_quoted(schemas[i].json));
    ok = ok && add(cs, "AgentRunCreate", parse_quoted(api_runs_body_schema_json()))
         && add(cs, "ApprovalDecision", parse_quoted(api_approvals_body_schema_json()))
         && add_job_create(cs) && add_table_schemas(cs);
    cJSON *params = cJSON_CreateObject();
    ok = ok && add(c, "parameters", params);
    for (size_t i = 0; ok && i < sizeof parameters / sizeof parameters[0]; i++)
        ok = add(params, parameters[i].key, parse_quoted(parameters[i].json));
    cJSON *responses = cJSON_CreateObject();
    ok = ok && add(c, "responses", responses)
         && add(responses, "Problem", content_of("A problem (RFC 9457)", "application/problem+json",
                                                  ref_to("schemas", "Problem")));
    cJSON *schemes = cJSON_CreateObject();
    ok = ok && add(c, "securitySchemes", schemes)
         && add(schemes, "bearerAuth", parse_quoted(
                "{'type':'http','scheme':'bearer','bearerFormat':'JWT','description':'A JWT "
                "naming the tenant, roles and scopes. Scopes listed on an operation are the "
                "ones its permission needs; the roles must allow it too.'}"));
    if (!ok) { cJSON_Delete(c); return NULL; }
    return c;
}

/* paths: one entry per route table row, in the table's order. */
static cJSON *paths(void)
{
    cJSON *paths = cJSON_CreateObject();
    for (size_t i = 0; paths && i < router_route_count(); i++) {
        const route_def *rt = router_route_at(i);
        const op_doc *d = op_find(rt->verb, rt->pattern);
        const char *method = verb_key(rt->verb);
        char path[256];
        if (!d || !method || openapi_path_of(rt->pattern, d->param, path, sizeof path) != 0) {
            fprintf(stderr, "openapi: %s %s has no description in openapi.c\n",
                    method ? method : "?", rt->pattern);
            cJSON_Delete(paths);
            return NULL;
        }
        cJSON *item = cJSON_GetObjectItemCaseSensitive(paths, path);
        if (!item && !add(paths, path, item = cJSON_CreateObject())) {
            cJSON_Delete(paths);
            return NULL;
        }
        if (!add(item, method, operation_of(rt, d))) { cJSON_Delete(paths); return NULL; }
    }
    return paths;
}

/* Marks in used[] (one flag per member of components' section) every
 * "#/components/<section>/<name>" reference inside j. */
static void mark_refs(const cJSON *j, const char *section, const cJSON *table, bool *used)
{
    char prefix[40];
    int plen = snprintf(prefix, sizeof prefix, "#/components/%s/", section);
    for (const cJSON *c = j ? j->child : NULL; c; c = c->next) {
        if (cJSON_IsString(c) && c->string && strcmp(c->string, "$ref") == 0
            && strncmp(c->valuestring, prefix, (size_t)plen) == 0) {
            int i = 0;
            for (const cJSON *t = table->child; t; t = t->next, i++)
                if (strcmp(t->string, c->valuestring + plen) == 0) used[i] = true;
        }
        mark_refs(c, section, table, used);
    }
}

/*
 * Drops the schemas and parameters nothing refers to: their routes are
 * not in this build's table. A schema counts once a path, a response, or
 * a schema still kept refers to it, so the marking repeats until nothing
 * new is marked.
 */
static bool prune_components(cJSON *doc)
{
    cJSON *comp = cJSON_GetObjectItemCaseSensitive(doc, "components");
    const char *sections[] = { "parameters", "schemas" };
    for (size_t s = 0; s < 2; s++) {
        cJSON *table = cJSON_GetObjectItemCaseSensitive(comp, sections[s]);
        int n = cJSON_GetArraySize(table);
        bool *used = calloc((size_t)n + 1, sizeof *used), *seen = calloc((size_t)n + 1, sizeof *seen);
        if (!used || !seen) { free(used); free(seen); return false; }
        mark_refs(cJSON_GetObjectItemCaseSensitive(doc, "paths"), sections[s], table, used);
        mark_refs(cJSON_GetObjectItemCaseSensitive(comp, "responses"), sections[s], table, used);
        for (bool grew = true; grew; ) {
            grew = false;
            int i = 0;
            for (cJSON *t = table->child; t; t = t->next, i++)
                if (used[i] && !seen[i]) { seen[i] = grew = true; mark_refs(t, sections[s], table, used); }
        }
        int i = 0;
        for (cJSON *t = table->child, *next; t; t = next, i++) {
            next = t->next;
            if (!used[i]) cJSON_Delete(cJSON_DetachItemViaPointer(table, t));
        }
        free(used);
        free(seen);
    }
    return true;
}

static cJSON *build(void)
{
    cJSON *doc = cJSON_CreateObject();
    if (!doc) return NULL;
    cJSON_AddStringToObject(doc, "openapi", "3.1.0");
    cJSON *info = cJSON_CreateObject();
    cJSON_AddStringToObject(info, "title", "agentgate API");
    cJSON_AddStringToObject(info, "version", AGENTGATE_VERSION);
    cJSON_AddStringToObject(info, "description",
        "Jobs, agent runs and their live events. Errors are RFC 9457 problems. Built by the "
        "gateway from its route table, permission table and job-type registry.");
    cJSON *license = cJSON_CreateObject();
    cJSON_AddStringToObject(license, "name", "Proprietary");
    cJSON_AddStringToObject(license, "identifier", "LicenseRef-agentgate");
    add(info, "license", license);
    bool ok = add(doc, "info", info);
    cJSON *servers = cJSON_CreateArray();
    cJSON *server = cJSON_CreateObject();
    if (server) cJSON_AddStringToObject(server, "url", "/");
    cJSON_AddItemToArray(servers, server);
    ok = ok && add(doc, "servers", servers) && add(doc, "paths", paths())
         && add(doc, "components", components()) && prune_components(doc);
    if (!ok) { cJSON_Delete(doc); return NULL; }
    return doc;
}

/* ---- the built document ------------------------------------------------ */

static char *doc_text;
static size_t doc_len;
static char doc_etag[24];
static pthread_once_t doc_once = PTHREAD_ONCE_INIT;

/* FNV-1a, 64 bits: enough to tell two builds' documents apart. */
static unsigned long long fnv1a(const char *s, size_t n)
{
    unsigned long long h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static void build_once(void)
{
    cJSON *doc = build();
    doc_text = doc ? cJSON_PrintUnformatted(doc) : NULL;
    cJSON_Delete(doc);
    if (!doc_text) return;
    doc_len = strlen(doc_text);
    snprintf(doc_etag, sizeof doc_etag, "\"%016llx\"", fnv1a(doc_text, doc_len));
}

const char *openapi_document(size_t *len)
{
    pthread_once(&doc_once, build_once);
    if (len) *len = doc_len;
    return doc_text;
}

const char *openapi_etag(void)
{
    pthread_once(&doc_once, build_once);
    return doc_text ? doc_etag : NULL;
}

/* True when If-None-Match (a list, or "*") names etag. */
static bool etag_matches(const char *if_none_match, const char *etag)
{
    if (!if_none_match) return false;
    if (strcmp(if_none_match, "*") == 0) return true;
    return strstr(if_none_match, etag) != NULL;
}

void api_openapi(gw_req *r)
{
    size_t len;
    const char *doc = openapi_document(&len);
    if (!doc) {
        http_reply_problem(r, 500, "internal", "the API description could not be built", NULL);
        return;
    }
    http_set_header(r, "ETag", openapi_etag());
    if (etag_matches(http_header(r, "If-None-Match"), openapi_etag())) {
        http_reply_no_content(r, 304);
        return;
    }
    http_reply_json(r, 200, doc, len);
}
