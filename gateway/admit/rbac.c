/*
 * rbac.c - what each route needs, and which resource a job belongs to
 * (see rbac.h); the role matrix itself is common/permission.c's, which
 * the worker's tool calls ask too.
 *
 * Both are plain tables so a reviewer reads a route's permission or a
 * job type's owner in one line. A route that is missing from route_perms
 * is refused for everyone (fail closed) and fails
 * tests/unit/gateway/admit/test_rbac.c, which walks every route_id.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include "rbac.h"

/* What each route needs. Sessions group agent runs, so they are
 * agent-runs; an event stream is a read; DELETE is the delete action
 * (for jobs and runs it cancels). */
typedef struct route_perm_def {
    bool defined;
    rbac_perm perm;
} route_perm_def;

#define PUBLIC          { true, { RES_NONE, ACT_NONE } }
#define NEEDS(res, act) { true, { res, act } }

static const route_perm_def route_perms[] = {
    [ROUTE_JOBS_CREATE]       = NEEDS(RES_JOBS, ACT_CREATE),
    [ROUTE_JOBS_LIST]         = NEEDS(RES_JOBS, ACT_READ),
    [ROUTE_JOB_GET]           = NEEDS(RES_JOBS, ACT_READ),
    [ROUTE_JOB_CANCEL]        = NEEDS(RES_JOBS, ACT_DELETE),
    [ROUTE_JOB_EVENTS]        = NEEDS(RES_JOBS, ACT_READ),
    [ROUTE_RUNS_CREATE]       = NEEDS(RES_AGENT_RUNS, ACT_CREATE),
    [ROUTE_RUN_GET]           = NEEDS(RES_AGENT_RUNS, ACT_READ),
    [ROUTE_RUN_CANCEL]        = NEEDS(RES_AGENT_RUNS, ACT_DELETE),
    [ROUTE_RUN_EVENTS]        = NEEDS(RES_AGENT_RUNS, ACT_READ),
    [ROUTE_HEALTH_LIVE]       = PUBLIC,
    [ROUTE_HEALTH_READY]      = PUBLIC,
    [ROUTE_HEALTH_COMPONENTS] = PUBLIC,
    [ROUTE_METRICS]           = PUBLIC,
    [ROUTE_SESSIONS_CREATE]   = NEEDS(RES_AGENT_RUNS, ACT_CREATE),
    [ROUTE_SESSIONS_LIST]     = NEEDS(RES_AGENT_RUNS, ACT_READ),
    [ROUTE_SESSION_GET]       = NEEDS(RES_AGENT_RUNS, ACT_READ),
    [ROUTE_SESSION_DELETE]    = NEEDS(RES_AGENT_RUNS, ACT_DELETE),
    [ROUTE_TOOLS_LIST]        = NEEDS(RES_TOOLS, ACT_READ),
    [ROUTE_TOOL_GET]          = NEEDS(RES_TOOLS, ACT_READ),
    [ROUTE_MODELS_LIST]       = NEEDS(RES_MODELS, ACT_READ),
    [ROUTE_MODELS_CREATE]     = NEEDS(RES_MODELS, ACT_CREATE),
    [ROUTE_MODEL_UPDATE]      = NEEDS(RES_MODELS, ACT_UPDATE),
    [ROUTE_MODEL_DELETE]      = NEEDS(RES_MODELS, ACT_DELETE),
    [ROUTE_TENANTS_LIST]      = NEEDS(RES_TENANTS, ACT_READ),
    [ROUTE_TENANT_GET]        = NEEDS(RES_TENANTS, ACT_READ),
    [ROUTE_TENANT_UPDATE]     = NEEDS(RES_TENANTS, ACT_UPDATE),
    /* A refresh changes the server's row (its discovery): an update. */
    [ROUTE_MCP_SERVERS_CREATE] = NEEDS(RES_MCP_SERVERS, ACT_CREATE),
    [ROUTE_MCP_SERVERS_LIST]  = NEEDS(RES_MCP_SERVERS, ACT_READ),
    [ROUTE_MCP_SERVER_GET]    = NEEDS(RES_MCP_SERVERS, ACT_READ),
    [ROUTE_MCP_SERVER_UPDATE] = NEEDS(RES_MCP_SERVERS, ACT_UPDATE),
    [ROUTE_MCP_SERVER_DELETE] = NEEDS(RES_MCP_SERVERS, ACT_DELETE),
    [ROUTE_MCP_SERVER_REFRESH] = NEEDS(RES_MCP_SERVERS, ACT_UPDATE),
    [ROUTE_OPENAPI]           = PUBLIC,
    /* The console's files are public; its page signs in with a token. */
    [ROUTE_CONSOLE_REDIRECT]  = PUBLIC,
    [ROUTE_CONSOLE_INDEX]     = PUBLIC,
    [ROUTE_CONSOLE_ASSET]     = PUBLIC,
    [ROUTE_QUEUES_LIST]       = NEEDS(RES_JOBS, ACT_READ),
    [ROUTE_WORKERS_LIST]      = NEEDS(RES_JOBS, ACT_READ),
    /* A retry creates a job; discarding a dead letter is its delete. An
     * agent run's job needs agent-runs as well (rbac_job_perm). */
    [ROUTE_JOB_RETRY]         = NEEDS(RES_JOBS, ACT_CREATE),
    [ROUTE_RUNS_LIST]         = NEEDS(RES_AGENT_RUNS, ACT_READ),
    [ROUTE_DEAD_LETTERS_LIST] = NEEDS(RES_JOBS, ACT_READ),
    [ROUTE_DEAD_LETTERS_RETRY_ALL] = NEEDS(RES_JOBS, ACT_CREATE),
    [ROUTE_DEAD_LETTERS_DISCARD_ALL] = NEEDS(RES_JOBS, ACT_DELETE),
    [ROUTE_DEAD_LETTER_RETRY] = NEEDS(RES_JOBS, ACT_CREATE),
    [ROUTE_DEAD_LETTER_DISCARD] = NEEDS(RES_JOBS, ACT_DELETE),
    /* A job's deliveries are part of reading it; replacing the signing
     * secret changes the tenant. */
    [ROUTE_JOB_WEBHOOK_DELIVERIES] = NEEDS(RES_JOBS, ACT_READ),
    [ROUTE_TENANT_WEBHOOK_SECRET] = NEEDS(RES_TENANTS, ACT_UPDATE),
    /* A schedule is a source of jobs: changing one is creating its future
     * jobs. One that creates agent runs needs agent-runs as well. */
    [ROUTE_SCHEDULES_CREATE]  = NEEDS(RES_JOBS, ACT_CREATE),
    [ROUTE_SCHEDULES_LIST]    = NEEDS(RES_JOBS, ACT_READ),
    [ROUTE_SCHEDULE_GET]      = NEEDS(RES_JOBS, ACT_READ),
    [ROUTE_SCHEDULE_UPDATE]   = NEEDS(RES_JOBS, ACT_CREATE),
    [ROUTE_SCHEDULE_DELETE]   = NEEDS(RES_JOBS, ACT_DELETE),
    [ROUTE_JOBS_BATCH_CREATE] = NEEDS(RES_JOBS, ACT_CREATE),
    /* A decision on a waiting run's tool call: whoever may submit runs. */
    [ROUTE_RUN_APPROVE]       = NEEDS(RES_AGENT_RUNS, ACT_CREATE),
};

#define N_ROUTE_PERMS (sizeof route_perms / sizeof route_perms[0])

bool rbac_route_known(route_id route)
{
    return (unsigned)route < N_ROUTE_PERMS && route_perms[route].defined;
}

rbac_perm rbac_route_perm(route_id route)
{
    if (rbac_route_known(route)) return route_perms[route].perm;
    /* No entry: a resource no role holds, so the route is refused. */
    rbac_perm closed = { RES_COUNT, ACT_NONE };
    return closed;
}

bool rbac_roles_allow(unsigned roles, rbac_resource res, rbac_action act)
{
    return permission_roles_allow(roles, res, act);
}

bool rbac_scope_allows(const principal *p, rbac_resource res, rbac_action act)
{
    if (res == RES_NONE) return true;
    char want[32];
    if (permission_scope_name(res, act, want, sizeof want) == 0) return false;
    return principal_has_scope(p, want);
}

bool rbac_allows(const principal *p, rbac_perm perm, char *detail, size_t detail_size)
{
    bool role = rbac_roles_allow(p->roles, perm.res, perm.act);
    if (role && rbac_scope_allows(p, perm.res, perm.act)) return true;
    snprintf(detail, detail_size, role ? "the token's scopes do not allow %s on %s"
                                       : "your roles do not allow %s on %s",
             rbac_action_name(perm.act), rbac_resource_name(perm.res));
    return false;
}

/* Job types whose jobs belong to another resource. Each is internal in
 * the registry (POST /v1/jobs cannot create one), so the resource's own
 * create route stays the only way in. */
static const struct {
    const char *type;
    rbac_resource res;
} job_owners[] = {
    { "agent.run", RES_AGENT_RUNS },
    { "mcp.discover", RES_MCP_SERVERS },
};

rbac_perm rbac_job_perm(rbac_perm route_perm, const char *job_type)
{
    for (size_t i = 0; job_type && i < sizeof job_owners / sizeof job_owners[0]; i++)
        if (strcmp(job_owners[i].type, job_type) == 0) {
            rbac_perm owner = { job_owners[i].res, route_perm.act };
            return owner;
        }
    return route_perm;
}
