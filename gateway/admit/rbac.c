/*
 * rbac.c - the permission matrix and what each route needs (see rbac.h).
 *
 * Both are plain tables so a reviewer reads a role's rights, or a route's
 * permission, in one line. A route that is missing from route_perms is
 * refused for everyone (fail closed) and fails tests/unit/test_rbac.c,
 * which walks every route_id.
 */
#include <stddef.h>
#include <string.h>
#include "rbac.h"

#define CRUD (ACT_CREATE | ACT_READ | ACT_UPDATE | ACT_DELETE)
#define CRU  (ACT_CREATE | ACT_READ | ACT_UPDATE)
#define CRD  (ACT_CREATE | ACT_READ | ACT_DELETE)
#define CR   (ACT_CREATE | ACT_READ)
#define R_   ACT_READ
#define NONE 0

/* The actions each role may take on each resource: THE matrix. */
static const struct {
    unsigned role;
    unsigned acts[RES_COUNT];
} matrix[] = {
    /*                   none   agent-runs jobs  tools  tenants models */
    { ROLE_ADMIN,    { NONE,  CRUD,      CRUD, CRUD,  CRUD,   CRUD } },
    { ROLE_OPERATOR, { NONE,  CRU,       CRUD, R_,    R_,     CRU  } },
    { ROLE_USER,     { NONE,  CR,        CRD,  R_,    NONE,   R_   } },
    { ROLE_VIEWER,   { NONE,  R_,        R_,   R_,    R_,     R_   } },
};

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
};

#define N_ROUTE_PERMS (sizeof route_perms / sizeof route_perms[0])

static bool single_action(rbac_action act)
{
    return act == ACT_CREATE || act == ACT_READ || act == ACT_UPDATE || act == ACT_DELETE;
}

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
    if (res == RES_NONE) return true;
    if ((unsigned)res >= RES_COUNT || !single_action(act)) return false;
    for (size_t i = 0; i < sizeof matrix / sizeof matrix[0]; i++)
        if ((roles & matrix[i].role) && (matrix[i].acts[res] & (unsigned)act)) return true;
    return false;
}

bool rbac_scope_allows(const principal *p, rbac_resource res, rbac_action act)
{
    if (res == RES_NONE) return true;
    if ((unsigned)res >= RES_COUNT || !single_action(act)) return false;
    char want[32];
    const char *name = rbac_resource_name(res);
    size_t n = strlen(name);
    const char *suffix = act == ACT_READ ? ":read" : ":write";
    memcpy(want, name, n);
    memcpy(want + n, suffix, strlen(suffix) + 1);
    return principal_has_scope(p, want);
}
