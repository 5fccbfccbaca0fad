/*
 * rbac.h - who may do what: the permission matrix of roles over the API's
 * resources, combined with the token's scopes.
 *
 * The matrix is data (one table in rbac.c) and every route names the one
 * (resource, action) it needs, so a reader checks a route's permission in
 * one place and the tests walk every cell.
 *
 * Roles (a principal may hold several; they add up):
 *   admin    everything
 *   operator create/read/update agent-runs and models, everything on jobs,
 *            read tools and tenants
 *   user     create/read agent-runs, create/read/delete jobs, read tools
 *            and models
 *   viewer   read only
 * Scopes narrow a role, never widen it: read needs "<resource>:read",
 * create/update/delete need "<resource>:write" (resources spelled as in
 * rbac_resource_name: agent-runs, jobs, tools, tenants, models).
 */
#ifndef AG_RBAC_H
#define AG_RBAC_H

#include <stdbool.h>
#include "jwt.h"
#include "permission.h"
#include "router.h"

/* The permission route needs ({RES_NONE, ACT_NONE} for public routes). */
rbac_perm rbac_route_perm(route_id route);

/* True when route has an entry in the route table (public or not); a
 * route without one is refused by rbac_route_perm's answer. */
bool rbac_route_known(route_id route);

/* True when one of the ROLE_* bits in roles grants act on res. */
bool rbac_roles_allow(unsigned roles, rbac_resource res, rbac_action act);

/* True when p's scopes grant act on res ("<resource>:read" / ":write"). */
bool rbac_scope_allows(const principal *p, rbac_resource res, rbac_action act);

#endif
