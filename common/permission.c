/*
 * permission.c - resource and action names, and the role matrix (see
 * permission.h).
 *
 * The matrix is one table a reviewer reads a role's rights from in one
 * line; the gateway's RBAC and the worker's tool calls both ask it, so
 * the two never disagree about a role. tests/unit/gateway/admit/test_rbac.c
 * holds its own copy, written from the contract, and compares every cell.
 */
#include <stdio.h>
#include <string.h>

#include "jwt.h"
#include "permission.h"

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
    /*                  none  agent-runs jobs  tools tenants models mcp-servers graph */
    { ROLE_ADMIN,    { NONE, CRUD,      CRUD, CRUD, CRUD,   CRUD,  CRUD,       CRUD } },
    { ROLE_OPERATOR, { NONE, CRU,       CRUD, R_,   R_,     CRU,   CRUD,       R_   } },
    { ROLE_USER,     { NONE, CR,        CRD,  R_,   NONE,   R_,    NONE,       R_   } },
    { ROLE_VIEWER,   { NONE, R_,        R_,   R_,   R_,     R_,    NONE,       R_   } },
};

static const char *const resource_names[RES_COUNT] = {
    [RES_NONE] = "", [RES_AGENT_RUNS] = "agent-runs", [RES_JOBS] = "jobs",
    [RES_TOOLS] = "tools", [RES_TENANTS] = "tenants", [RES_MODELS] = "models",
    [RES_MCP_SERVERS] = "mcp-servers", [RES_GRAPH] = "graph",
};

const char *rbac_resource_name(rbac_resource res)
{
    return (unsigned)res < RES_COUNT ? resource_names[res] : "";
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

rbac_resource permission_resource_by_name(const char *name)
{
    if (name == NULL || name[0] == '\0')
        return RES_NONE;
    for (int r = RES_NONE + 1; r < RES_COUNT; r++)
        if (strcmp(resource_names[r], name) == 0)
            return (rbac_resource)r;
    return RES_NONE;
}

static bool single_action(rbac_action act)
{
    return act == ACT_CREATE || act == ACT_READ || act == ACT_UPDATE || act == ACT_DELETE;
}

bool permission_roles_allow(unsigned roles, rbac_resource res, rbac_action act)
{
    if (res == RES_NONE) return true;
    if ((unsigned)res >= RES_COUNT || !single_action(act)) return false;
    for (size_t i = 0; i < sizeof matrix / sizeof matrix[0]; i++)
        if ((roles & matrix[i].role) && (matrix[i].acts[res] & (unsigned)act)) return true;
    return false;
}

size_t permission_scope_name(rbac_resource res, rbac_action act, char *out, size_t size)
{
    if (size > 0) out[0] = '\0';
    if (res == RES_NONE || (unsigned)res >= RES_COUNT || !single_action(act)) return 0;
    int n = snprintf(out, size, "%s:%s", resource_names[res], act == ACT_READ ? "read" : "write");
    if (n < 0 || (size_t)n >= size) {
        if (size > 0) out[0] = '\0';
        return 0;
    }
    return (size_t)n;
}

/* Appends " word" (no space first) to out of size bytes holding *len; false
 * when it does not fit. */
static bool append_word(char *out, size_t size, size_t *len, const char *word)
{
    int n = snprintf(out + *len, size - *len, "%s%s", *len ? " " : "", word);
    if (n < 0 || (size_t)n >= size - *len)
        return false;
    *len += (size_t)n;
    return true;
}

size_t permission_role_scopes(unsigned roles, char *out, size_t size)
{
    static const rbac_action writes[] = { ACT_CREATE, ACT_UPDATE, ACT_DELETE };
    size_t len = 0;
    char scope[32];
    if (size == 0)
        return 0;
    out[0] = '\0';
    for (int res = RES_NONE + 1; res < RES_COUNT; res++) {
        bool write = false;
        for (size_t i = 0; i < sizeof writes / sizeof *writes; i++)
            write = write || permission_roles_allow(roles, (rbac_resource)res, writes[i]);
        if (permission_roles_allow(roles, (rbac_resource)res, ACT_READ) &&
            (permission_scope_name((rbac_resource)res, ACT_READ, scope, sizeof scope) == 0 ||
             !append_word(out, size, &len, scope)))
            goto too_small;
        if (write &&
            (permission_scope_name((rbac_resource)res, ACT_CREATE, scope, sizeof scope) == 0 ||
             !append_word(out, size, &len, scope)))
            goto too_small;
    }
    return len;
too_small:
    out[0] = '\0';
    return 0;
}
