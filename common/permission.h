/*
 * permission.h - the names of what a permission is about: the API's
 * resources and the actions on them. One list, shared by the gateway's
 * RBAC (gateway/admit/rbac.h), its audit rows and rate-limit keys, and the
 * tenant settings parser (tenant_settings.c), so an action a tenant may
 * limit is exactly an action the API checks.
 */
#ifndef AG_PERMISSION_H
#define AG_PERMISSION_H

typedef enum rbac_resource {
    RES_NONE = 0,        /* a public route (health, metrics): no permission */
    RES_AGENT_RUNS,      /* agent runs and the sessions that group them */
    RES_JOBS,
    RES_TOOLS,
    RES_TENANTS,
    RES_MODELS,
    RES_COUNT
} rbac_resource;

typedef enum rbac_action {
    ACT_NONE   = 0,
    ACT_CREATE = 1 << 0,
    ACT_READ   = 1 << 1,
    ACT_UPDATE = 1 << 2,
    ACT_DELETE = 1 << 3,
} rbac_action;

/* What one route needs: an action on a resource. */
typedef struct rbac_perm {
    rbac_resource res;
    rbac_action act;
} rbac_perm;

/* "agent-runs", "jobs", ... ; "" for RES_NONE. Static strings. */
const char *rbac_resource_name(rbac_resource res);

/* "create", "read", "update", "delete"; "" for ACT_NONE. Static strings. */
const char *rbac_action_name(rbac_action act);

#endif
