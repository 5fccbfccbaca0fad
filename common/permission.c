/*
 * permission.c - resource and action names (see permission.h).
 */
#include "permission.h"

const char *rbac_resource_name(rbac_resource res)
{
    static const char *const names[RES_COUNT] = {
        [RES_NONE] = "", [RES_AGENT_RUNS] = "agent-runs", [RES_JOBS] = "jobs",
        [RES_TOOLS] = "tools", [RES_TENANTS] = "tenants", [RES_MODELS] = "models",
    };
    return (unsigned)res < RES_COUNT ? names[res] : "";
}

const char *rbac_action_name(rbac_action act)
{
    switch (act) {
    case ACT_CREATE: return "create";
    case ACT_READ: return "read";
    case ACT_UPDATE: return "update";
    case ACT_DELETE: return "delete";
    default: return "";
    }
}
