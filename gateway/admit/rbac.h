/*
 * rbac.h - who may do what: the permission matrix of roles over the API's
 * resources, combined with the token's scopes.
 *
 * The matrix is data (one table in common/permission.c, shared with the
 * worker's tool calls) and every route names the one (resource, action)
 * it needs, so a reader checks a route's permission in one place and the
 * tests walk every cell.
 *
 * Roles (a principal may hold several; they add up):
 *   admin    everything
 *   operator create/read/update agent-runs and models, everything on jobs
 *            and mcp-servers, read tools, tenants and graph
 *   user     create/read agent-runs, create/read/delete jobs, read tools,
 *            models and graph
 *   viewer   read only, except mcp-servers: nothing
 * Scopes narrow a role, never widen it: read needs "<resource>:read",
 * create/update/delete need "<resource>:write" (resources spelled as in
 * rbac_resource_name: agent-runs, jobs, tools, tenants, models,
 * mcp-servers, graph).
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

/* True when one of the ROLE_* bits in roles grants act on res
 * (permission_roles_allow). */
bool rbac_roles_allow(unsigned roles, rbac_resource res, rbac_action act);

/* True when p's scopes grant act on res ("<resource>:read" / ":write"). */
bool rbac_scope_allows(const principal *p, rbac_resource res, rbac_action act);

/*
 * True when p's roles and scopes both grant perm. Otherwise false, with
 * the 403's detail in detail (detail_size bytes): which of the two was
 * missing and what, "your roles do not allow delete on agent-runs" or
 * "the token's scopes do not allow read on jobs".
 */
bool rbac_allows(const principal *p, rbac_perm perm, char *detail, size_t detail_size);

/*
 * What a job of type job_type needs, besides route_perm, on a job route
 * (GET/DELETE /v1/jobs/{id}, its events, the listing): a plain job needs
 * nothing more (route_perm itself is answered), an agent run's job
 * (agent.run) the same action on agent-runs. The job routes reach every
 * job, so without this a job that belongs to another resource could be
 * read or cancelled past that resource's own rules.
 */
rbac_perm rbac_job_perm(rbac_perm route_perm, const char *job_type);

#endif
