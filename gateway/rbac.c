/*
 * rbac.c - the permission matrix (see rbac.h). STUB until issue 4's RBAC
 * lands: every authenticated principal is allowed.
 */
#include "rbac.h"

rbac_perm rbac_route_perm(route_id route)
{
    (void)route;
    rbac_perm p = { RES_NONE, ACT_NONE };
    return p;
}

bool rbac_roles_allow(unsigned roles, rbac_resource res, rbac_action act)
{
    (void)roles; (void)res; (void)act;
    return true;
}

bool rbac_scope_allows(const principal *p, rbac_resource res, rbac_action act)
{
    (void)p; (void)res; (void)act;
    return true;
}

const char *rbac_resource_name(rbac_resource res) { (void)res; return ""; }
const char *rbac_action_name(rbac_action act) { (void)act; return ""; }
