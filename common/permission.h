/*
 * permission.h - what a permission is about and who holds it: the API's
 * resources, the actions on them, and the matrix of roles over both. One
 * list and one matrix, shared by the gateway's RBAC (gateway/admit/rbac.h),
 * its audit rows and rate-limit keys, the tenant settings parser
 * (tenant_settings.c) and the worker's tool calls, so an action a tenant
 * may limit is exactly an action the API checks, and a tool call is
 * allowed to the same roles as the API call it stands for.
 */
#ifndef AG_PERMISSION_H
#define AG_PERMISSION_H

#include <stdbool.h>
#include <stddef.h>

typedef enum rbac_resource {
    RES_NONE = 0,        /* a public route (health, metrics): no permission */
    RES_AGENT_RUNS,      /* agent runs and the sessions that group them */
    RES_JOBS,
    RES_TOOLS,
    RES_TENANTS,
    RES_MODELS,
    RES_MCP_SERVERS,     /* the tenant's registered MCP servers */
    RES_GRAPH,           /* no route: the scopes of the graph tools */
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

/* "agent-runs", "jobs", "tools", "tenants", "models", "mcp-servers",
 * "graph"; "" for RES_NONE and anything out of range. Static strings. */
const char *rbac_resource_name(rbac_resource res);

/* "create", "read", "update", "delete"; "" for ACT_NONE. Static strings. */
const char *rbac_action_name(rbac_action act);

/* The resource called name ("mcp-servers"), or RES_NONE when no resource
 * has that name (NULL, "" and unknown names alike; case matters). */
rbac_resource permission_resource_by_name(const char *name);

/*
 * True when one of the ROLE_* bits (jwt.h) in roles grants act on res:
 * THE role matrix. act must be one action, not a combination; RES_NONE
 * is allowed to everyone (public), an out-of-range resource to no one.
 */
bool permission_roles_allow(unsigned roles, rbac_resource res, rbac_action act);

/*
 * Writes the scope that grants act on res into out (size bytes):
 * "<resource>:read" for ACT_READ, "<resource>:write" for create, update
 * and delete. Returns its length, or 0 (out set to "") for RES_NONE, a
 * resource or action out of range, or a buffer too small (32 bytes are
 * always enough).
 */
size_t permission_scope_name(rbac_resource res, rbac_action act, char *out, size_t size);

/*
 * Writes into out (size bytes) the space-separated scopes that let roles
 * (ROLE_* bits) do everything the matrix grants them: "<resource>:read"
 * where they may read, "<resource>:write" where they may create, update
 * or delete. Returns its length, or 0 with out "" when they may do nothing
 * or size is too small (512 bytes are always enough).
 */
size_t permission_role_scopes(unsigned roles, char *out, size_t size);

#endif
