/*
 * test_rbac.c - the permission matrix, cell by cell, against a table
 * written here independently of rbac.c (from the contract's words); roles
 * that add up; scopes that narrow; a permission for every route; and the
 * job routes cell by cell for each kind of job they reach.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "jobtypes.h"
#include "rbac.h"
#include "router.h"

static const char *const role_names[] = { "admin", "operator", "user", "viewer" };
static const unsigned role_bits[] = { ROLE_ADMIN, ROLE_OPERATOR, ROLE_USER, ROLE_VIEWER };
static const rbac_resource resources[] = {
    RES_AGENT_RUNS, RES_JOBS, RES_TOOLS, RES_TENANTS, RES_MODELS, RES_MCP_SERVERS, RES_GRAPH
};
#define NRES 7
static const char *const resource_names[NRES] = {
    "agent-runs", "jobs", "tools", "tenants", "models", "mcp-servers", "graph"
};
static const rbac_action actions[] = { ACT_CREATE, ACT_READ, ACT_UPDATE, ACT_DELETE };

/*
 * expected[role][resource][action], as strings "crud" with '-' for a
 * refusal, so the table reads like the sentence:
 *   admin: all; operator: create/read/update on runs and models, all on
 *   jobs, read tools and tenants; user: create/read on runs,
 *   create/read/delete on jobs, read tools and models; viewer: read only.
 *   MCP servers: admin and operator everything, user and viewer nothing.
 *   Graph (the graph tools' scopes): read for every role, write for admin.
 * Columns: agent-runs, jobs, tools, tenants, models, mcp-servers, graph.
 */
static const char *const expected[4][NRES] = {
    /* admin    */ { "crud", "crud", "crud", "crud", "crud", "crud", "crud" },
    /* operator */ { "cru-", "crud", "-r--", "-r--", "cru-", "crud", "-r--" },
    /* user     */ { "cr--", "cr-d", "-r--", "----", "-r--", "----", "-r--" },
    /* viewer   */ { "-r--", "-r--", "-r--", "-r--", "-r--", "----", "-r--" },
};

static bool expect_allowed(int role, int res, int act)
{
    return expected[role][res][act] != '-';
}

static void test_every_cell_of_the_matrix(void **state)
{
    (void)state;
    int cells = 0;
    for (int ro = 0; ro < 4; ro++)
        for (int re = 0; re < NRES; re++)
            for (int ac = 0; ac < 4; ac++) {
                bool got = rbac_roles_allow(role_bits[ro], resources[re], actions[ac]);
                if (got != expect_allowed(ro, re, ac))
                    fail_msg("%s %s %s: rbac says %s, expected %s", role_names[ro],
                             rbac_action_name(actions[ac]), rbac_resource_name(resources[re]),
                             got ? "allow" : "deny", got ? "deny" : "allow");
                cells++;
            }
    assert_int_equal(cells, 4 * NRES * 4);
}

/* Every combination of roles grants exactly the union of its members. */
static void test_roles_add_up(void **state)
{
    (void)state;
    for (unsigned combo = 0; combo < 16; combo++)
        for (int re = 0; re < NRES; re++)
            for (int ac = 0; ac < 4; ac++) {
                bool want = false;
                for (int ro = 0; ro < 4; ro++)
                    if ((combo & role_bits[ro]) && expect_allowed(ro, re, ac)) want = true;
                bool got = rbac_roles_allow(combo, resources[re], actions[ac]);
                if (got != want)
                    fail_msg("roles 0x%x %s %s: got %d", combo, rbac_action_name(actions[ac]),
                             rbac_resource_name(resources[re]), got);
            }
    /* No roles, or only bits no role has, grant nothing. */
    assert_false(rbac_roles_allow(0, RES_JOBS, ACT_READ));
    assert_false(rbac_roles_allow(1u << 20, RES_JOBS, ACT_READ));
    assert_true(rbac_roles_allow(ROLE_USER | ROLE_VIEWER, RES_TENANTS, ACT_READ));
    assert_true(rbac_roles_allow(ROLE_OPERATOR | ROLE_USER, RES_JOBS, ACT_UPDATE));
    assert_false(rbac_roles_allow(ROLE_OPERATOR | ROLE_USER | ROLE_VIEWER, RES_TENANTS,
                                  ACT_UPDATE));
}

static void test_bad_resource_or_action_is_refused(void **state)
{
    (void)state;
    unsigned all = ROLE_ADMIN | ROLE_OPERATOR | ROLE_USER | ROLE_VIEWER;
    assert_false(rbac_roles_allow(all, RES_COUNT, ACT_READ));
    assert_false(rbac_roles_allow(all, (rbac_resource)99, ACT_READ));
    assert_false(rbac_roles_allow(all, RES_JOBS, ACT_NONE));
    assert_false(rbac_roles_allow(all, RES_JOBS, (rbac_action)(ACT_READ | ACT_DELETE)));
    assert_false(rbac_roles_allow(all, RES_JOBS, (rbac_action)(1 << 7)));
    /* A public route needs nothing, from anyone. */
    assert_true(rbac_roles_allow(0, RES_NONE, ACT_NONE));
}

static principal with_scope(const char *scope)
{
    principal p;
    memset(&p, 0, sizeof p);
    snprintf(p.sub, sizeof p.sub, "u");
    snprintf(p.tenant_id, sizeof p.tenant_id, "t");
    p.roles = ROLE_ADMIN;
    snprintf(p.scope, sizeof p.scope, "%s", scope);
    return p;
}

static void test_scopes_narrow(void **state)
{
    (void)state;
    for (int re = 0; re < NRES; re++) {
        char read[32], write[32], both[96];
        snprintf(read, sizeof read, "%s:read", resource_names[re]);
        snprintf(write, sizeof write, "%s:write", resource_names[re]);
        snprintf(both, sizeof both, "other:read %s %s", read, write);
        principal r = with_scope(read), w = with_scope(write), b = with_scope(both),
                  none = with_scope("");
        for (int ac = 0; ac < 4; ac++) {
            bool is_read = actions[ac] == ACT_READ;
            assert_int_equal(rbac_scope_allows(&r, resources[re], actions[ac]), is_read);
            /* write does not imply read */
            assert_int_equal(rbac_scope_allows(&w, resources[re], actions[ac]), !is_read);
            assert_true(rbac_scope_allows(&b, resources[re], actions[ac]));
            assert_false(rbac_scope_allows(&none, resources[re], actions[ac]));
        }
    }
    /* Whole words only: another resource's scope or a prefix is no scope. */
    principal p = with_scope("job:read jobs:readx xjobs:read models:read agent-runs:write");
    assert_false(rbac_scope_allows(&p, RES_JOBS, ACT_READ));
    assert_false(rbac_scope_allows(&p, RES_AGENT_RUNS, ACT_READ));
    assert_true(rbac_scope_allows(&p, RES_MODELS, ACT_READ));
    assert_false(rbac_scope_allows(&p, RES_MODELS, ACT_CREATE));
    assert_false(rbac_scope_allows(&p, RES_COUNT, ACT_READ));
    assert_true(rbac_scope_allows(&p, RES_NONE, ACT_NONE));
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(rbac_resource_name(RES_AGENT_RUNS), "agent-runs");
    assert_string_equal(rbac_resource_name(RES_JOBS), "jobs");
    assert_string_equal(rbac_resource_name(RES_TOOLS), "tools");
    assert_string_equal(rbac_resource_name(RES_TENANTS), "tenants");
    assert_string_equal(rbac_resource_name(RES_MODELS), "models");
    assert_string_equal(rbac_resource_name(RES_MCP_SERVERS), "mcp-servers");
    assert_string_equal(rbac_resource_name(RES_GRAPH), "graph");
    assert_string_equal(rbac_resource_name(RES_NONE), "");
    assert_string_equal(rbac_resource_name(RES_COUNT), "");
    assert_string_equal(rbac_action_name(ACT_CREATE), "create");
    assert_string_equal(rbac_action_name(ACT_READ), "read");
    assert_string_equal(rbac_action_name(ACT_UPDATE), "update");
    assert_string_equal(rbac_action_name(ACT_DELETE), "delete");
    assert_string_equal(rbac_action_name(ACT_NONE), "");
}

/* What each route should need, written here from the API's meaning. */
static const struct {
    route_id id;
    rbac_resource res;
    rbac_action act;
} route_expect[] = {
    { ROUTE_JOBS_CREATE, RES_JOBS, ACT_CREATE },
    { ROUTE_JOBS_LIST, RES_JOBS, ACT_READ },
    { ROUTE_JOB_GET, RES_JOBS, ACT_READ },
    { ROUTE_JOB_CANCEL, RES_JOBS, ACT_DELETE },
    { ROUTE_JOB_EVENTS, RES_JOBS, ACT_READ },
    { ROUTE_RUNS_CREATE, RES_AGENT_RUNS, ACT_CREATE },
    { ROUTE_RUN_GET, RES_AGENT_RUNS, ACT_READ },
    { ROUTE_RUN_CANCEL, RES_AGENT_RUNS, ACT_DELETE },
    { ROUTE_RUN_EVENTS, RES_AGENT_RUNS, ACT_READ },
    { ROUTE_HEALTH_LIVE, RES_NONE, ACT_NONE },
    { ROUTE_HEALTH_READY, RES_NONE, ACT_NONE },
    { ROUTE_HEALTH_COMPONENTS, RES_NONE, ACT_NONE },
    { ROUTE_METRICS, RES_NONE, ACT_NONE },
    { ROUTE_SESSIONS_CREATE, RES_AGENT_RUNS, ACT_CREATE },
    { ROUTE_SESSIONS_LIST, RES_AGENT_RUNS, ACT_READ },
    { ROUTE_SESSION_GET, RES_AGENT_RUNS, ACT_READ },
    { ROUTE_SESSION_DELETE, RES_AGENT_RUNS, ACT_DELETE },
    { ROUTE_TOOLS_LIST, RES_TOOLS, ACT_READ },
    { ROUTE_TOOL_GET, RES_TOOLS, ACT_READ },
    { ROUTE_MODELS_LIST, RES_MODELS, ACT_READ },
    { ROUTE_MODELS_CREATE, RES_MODELS, ACT_CREATE },
    { ROUTE_MODEL_UPDATE, RES_MODELS, ACT_UPDATE },
    { ROUTE_MODEL_DELETE, RES_MODELS, ACT_DELETE },
    { ROUTE_TENANTS_LIST, RES_TENANTS, ACT_READ },
    { ROUTE_TENANT_GET, RES_TENANTS, ACT_READ },
    { ROUTE_TENANT_UPDATE, RES_TENANTS, ACT_UPDATE },
    { ROUTE_MCP_SERVERS_CREATE, RES_MCP_SERVERS, ACT_CREATE },
    { ROUTE_MCP_SERVERS_LIST, RES_MCP_SERVERS, ACT_READ },
    { ROUTE_MCP_SERVER_GET, RES_MCP_SERVERS, ACT_READ },
    { ROUTE_MCP_SERVER_UPDATE, RES_MCP_SERVERS, ACT_UPDATE },
    { ROUTE_MCP_SERVER_DELETE, RES_MCP_SERVERS, ACT_DELETE },
    { ROUTE_MCP_SERVER_REFRESH, RES_MCP_SERVERS, ACT_UPDATE },
    { ROUTE_OPENAPI, RES_NONE, ACT_NONE },
    { ROUTE_QUEUES_LIST, RES_JOBS, ACT_READ },
    { ROUTE_WORKERS_LIST, RES_JOBS, ACT_READ },
    { ROUTE_JOB_RETRY, RES_JOBS, ACT_CREATE },
    { ROUTE_RUNS_LIST, RES_AGENT_RUNS, ACT_READ },
    { ROUTE_DEAD_LETTERS_LIST, RES_JOBS, ACT_READ },
    { ROUTE_DEAD_LETTERS_RETRY_ALL, RES_JOBS, ACT_CREATE },
    { ROUTE_DEAD_LETTERS_DISCARD_ALL, RES_JOBS, ACT_DELETE },
    { ROUTE_DEAD_LETTER_RETRY, RES_JOBS, ACT_CREATE },
    { ROUTE_DEAD_LETTER_DISCARD, RES_JOBS, ACT_DELETE },
    { ROUTE_JOB_WEBHOOK_DELIVERIES, RES_JOBS, ACT_READ },
    { ROUTE_TENANT_WEBHOOK_SECRET, RES_TENANTS, ACT_UPDATE },
    { ROUTE_SCHEDULES_CREATE, RES_JOBS, ACT_CREATE },
    { ROUTE_SCHEDULES_LIST, RES_JOBS, ACT_READ },
    { ROUTE_SCHEDULE_GET, RES_JOBS, ACT_READ },
    { ROUTE_SCHEDULE_UPDATE, RES_JOBS, ACT_CREATE },
    { ROUTE_SCHEDULE_DELETE, RES_JOBS, ACT_DELETE },
    { ROUTE_JOBS_BATCH_CREATE, RES_JOBS, ACT_CREATE },
    { ROUTE_RUN_APPROVE, RES_AGENT_RUNS, ACT_CREATE },
    { ROUTE_CONSOLE_REDIRECT, RES_NONE, ACT_NONE },
    { ROUTE_CONSOLE_INDEX, RES_NONE, ACT_NONE },
    { ROUTE_CONSOLE_ASSET, RES_NONE, ACT_NONE },
};

/* Every route_id has an entry in rbac.c's table, and it is the one above;
 * a route added to router.h without either fails here by name. */
static void test_every_route_has_a_permission(void **state)
{
    (void)state;
    size_t n = sizeof route_expect / sizeof route_expect[0];
    for (int id = ROUTE_NONE + 1; id < ROUTE_COUNT; id++) {
        if (!rbac_route_known((route_id)id))
            fail_msg("route_id %d has no entry in rbac.c's route table", id);
        size_t i = 0;
        while (i < n && route_expect[i].id != (route_id)id) i++;
        if (i == n) fail_msg("route_id %d has no expected permission in test_rbac.c", id);
        rbac_perm p = rbac_route_perm((route_id)id);
        if (p.res != route_expect[i].res || p.act != route_expect[i].act)
            fail_msg("route_id %d needs %s %s; expected %s %s", id, rbac_action_name(p.act),
                     rbac_resource_name(p.res), rbac_action_name(route_expect[i].act),
                     rbac_resource_name(route_expect[i].res));
    }
    assert_int_equal(n, ROUTE_COUNT - 1);
}

/* A route with no entry is refused to every role, not made public. */
static void test_unknown_route_fails_closed(void **state)
{
    (void)state;
    unsigned all = ROLE_ADMIN | ROLE_OPERATOR | ROLE_USER | ROLE_VIEWER;
    route_id bogus[] = { ROUTE_NONE, ROUTE_COUNT, (route_id)1000 };
    for (size_t i = 0; i < sizeof bogus / sizeof bogus[0]; i++) {
        assert_false(rbac_route_known(bogus[i]));
        rbac_perm p = rbac_route_perm(bogus[i]);
        assert_int_not_equal(p.res, RES_NONE);
        assert_false(rbac_roles_allow(all, p.res, p.act));
    }
}

/* The router's public routes (no token) are exactly the RES_NONE ones. */
static void test_public_routes_match_the_router(void **state)
{
    (void)state;
    static const struct { http_verb verb; const char *path; } paths[] = {
        { VERB_GET, "/v1/health/live" }, { VERB_GET, "/v1/health/ready" },
        { VERB_GET, "/v1/health/components" }, { VERB_GET, "/metrics" },
        { VERB_GET, "/v1/jobs" }, { VERB_POST, "/v1/jobs" },
        { VERB_GET, "/v1/jobs/x" }, { VERB_DELETE, "/v1/jobs/x" },
        { VERB_GET, "/v1/jobs/x/events" }, { VERB_POST, "/v1/agent-runs" },
        { VERB_GET, "/v1/agent-runs/x" }, { VERB_DELETE, "/v1/agent-runs/x" },
        { VERB_GET, "/v1/agent-runs/x/events" }, { VERB_POST, "/v1/sessions" },
        { VERB_GET, "/v1/sessions" }, { VERB_GET, "/v1/sessions/x" },
        { VERB_DELETE, "/v1/sessions/x" }, { VERB_GET, "/v1/tools" },
        { VERB_GET, "/v1/tools/a.b" }, { VERB_GET, "/v1/models" },
        { VERB_POST, "/v1/models" }, { VERB_PATCH, "/v1/models/1" },
        { VERB_DELETE, "/v1/models/1" }, { VERB_GET, "/v1/tenants" },
        { VERB_GET, "/v1/tenants/t" }, { VERB_PATCH, "/v1/tenants/t" },
        { VERB_POST, "/v1/mcp-servers" }, { VERB_GET, "/v1/mcp-servers" },
        { VERB_GET, "/v1/mcp-servers/s" }, { VERB_PATCH, "/v1/mcp-servers/s" },
        { VERB_DELETE, "/v1/mcp-servers/s" }, { VERB_POST, "/v1/mcp-servers/s/refresh" },
        { VERB_GET, "/openapi.json" },
        { VERB_GET, "/v1/queues" }, { VERB_GET, "/v1/workers" },
        { VERB_POST, "/v1/jobs/x/retry" }, { VERB_GET, "/v1/agent-runs" },
        { VERB_GET, "/v1/dead-letters" }, { VERB_POST, "/v1/dead-letters/retry" },
        { VERB_DELETE, "/v1/dead-letters" }, { VERB_POST, "/v1/dead-letters/x/retry" },
        { VERB_DELETE, "/v1/dead-letters/x" }, { VERB_POST, "/v1/jobs/batch" },
        { VERB_POST, "/v1/agent-runs/x/approvals" },
        { VERB_GET, "/v1/jobs/x/webhook-deliveries" }, { VERB_POST, "/v1/tenants/t/webhook-secret" },
        { VERB_POST, "/v1/schedules" }, { VERB_GET, "/v1/schedules" },
        { VERB_GET, "/v1/schedules/x" }, { VERB_PATCH, "/v1/schedules/x" },
        { VERB_DELETE, "/v1/schedules/x" },
        { VERB_GET, "/console" }, { VERB_GET, "/console/" }, { VERB_GET, "/console/app.js" },
    };
    bool seen[ROUTE_COUNT] = { false };
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        route_match m;
        assert_int_equal(router_match(paths[i].verb, paths[i].path, strlen(paths[i].path), &m),
                         200);
        seen[m.id] = true;
        rbac_perm p = rbac_route_perm(m.id);
        if ((p.res == RES_NONE) != !m.needs_auth)
            fail_msg("%s: needs_auth %d but permission %s %s", paths[i].path, m.needs_auth,
                     rbac_action_name(p.act), rbac_resource_name(p.res));
    }
    for (int id = ROUTE_NONE + 1; id < ROUTE_COUNT; id++)
        if (!seen[id]) fail_msg("route_id %d is not reached by any path in this test", id);
}

/* ---- jobs that belong to another resource ---------------------------------- */

static principal with_roles_and_scope(unsigned roles, const char *scope)
{
    principal p = with_scope(scope);
    p.roles = roles;
    return p;
}

static const char ALL_SCOPES[] =
    "agent-runs:read agent-runs:write jobs:read jobs:write tools:read tools:write "
    "tenants:read tenants:write models:read models:write mcp-servers:read mcp-servers:write";

/* What the job routes do: the route's own check, then the job's. */
static bool job_route_allows(const principal *p, route_id route, const char *kind)
{
    char detail[160];
    rbac_perm route_perm = rbac_route_perm(route);
    return rbac_allows(p, route_perm, detail, sizeof detail) &&
           rbac_allows(p, rbac_job_perm(route_perm, kind), detail, sizeof detail);
}

/*
 * One cell per job route and job kind: which roles (alone, with every
 * scope) reach a plain job and an agent run's job through it, written
 * from the contract: an agent run's job needs what the run needs, so only
 * admin may cancel one (agent-runs delete) while user and operator may
 * cancel plain jobs. Roles: a(dmin) o(perator) u(ser) v(iewer).
 */
static const struct {
    route_id route;
    const char *kind;
    const char *roles;
} job_cells[] = {
    { ROUTE_JOBS_LIST,  "demo",         "aouv" },
    { ROUTE_JOBS_LIST,  "agent.run",    "aouv" },
    { ROUTE_JOB_GET,    "demo",         "aouv" },
    { ROUTE_JOB_GET,    "test",         "aouv" },
    { ROUTE_JOB_GET,    "agent.run",    "aouv" },
    { ROUTE_JOB_CANCEL, "demo",         "aou-" },
    { ROUTE_JOB_CANCEL, "long-running", "aou-" },
    { ROUTE_JOB_CANCEL, "agent.run",    "a---" },
    { ROUTE_JOB_EVENTS, "demo",         "aouv" },
    { ROUTE_JOB_EVENTS, "bench.ticker", "aouv" },
    { ROUTE_JOB_EVENTS, "agent.run",    "aouv" },
    /* An MCP server's discovery needs what the server needs: mcp-servers
     * is admin's and operator's alone. */
    { ROUTE_JOBS_LIST,  "mcp.discover", "ao--" },
    { ROUTE_JOB_GET,    "mcp.discover", "ao--" },
    { ROUTE_JOB_CANCEL, "mcp.discover", "ao--" },
    { ROUTE_JOB_EVENTS, "mcp.discover", "ao--" },
};

static void test_job_routes_by_role_and_job_kind(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof job_cells / sizeof job_cells[0]; i++)
        for (int ro = 0; ro < 4; ro++) {
            principal p = with_roles_and_scope(role_bits[ro], ALL_SCOPES);
            bool want = job_cells[i].roles[ro] != '-';
            bool got = job_route_allows(&p, job_cells[i].route, job_cells[i].kind);
            if (got != want)
                fail_msg("route_id %d, job %s, role %s: %s, expected %s", job_cells[i].route,
                         job_cells[i].kind, role_names[ro], got ? "allowed" : "refused",
                         want ? "allowed" : "refused");
        }
}

/* Scopes narrow the job routes the same way: an agent run's job needs the
 * agent-runs scope of the action as well as the jobs one. */
static void test_job_routes_by_scope_and_job_kind(void **state)
{
    (void)state;
    static const struct {
        route_id route;
        const char *scope;
        bool plain, run;     /* reaches a plain job, an agent run's job */
    } cells[] = {
        { ROUTE_JOB_GET,    "jobs:read",                   true,  false },
        { ROUTE_JOB_GET,    "jobs:read agent-runs:read",   true,  true  },
        { ROUTE_JOB_GET,    "jobs:read agent-runs:write",  true,  false },
        { ROUTE_JOB_GET,    "agent-runs:read",             false, false },
        { ROUTE_JOB_EVENTS, "jobs:read",                   true,  false },
        { ROUTE_JOB_EVENTS, "jobs:read agent-runs:read",   true,  true  },
        { ROUTE_JOBS_LIST,  "jobs:read",                   true,  false },
        { ROUTE_JOBS_LIST,  "jobs:read agent-runs:read",   true,  true  },
        { ROUTE_JOB_CANCEL, "jobs:write",                  true,  false },
        { ROUTE_JOB_CANCEL, "jobs:write agent-runs:read",  true,  false },
        { ROUTE_JOB_CANCEL, "jobs:write agent-runs:write", true,  true  },
        { ROUTE_JOB_CANCEL, "agent-runs:write",            false, false },
    };
    for (size_t i = 0; i < sizeof cells / sizeof cells[0]; i++) {
        principal p = with_roles_and_scope(ROLE_ADMIN, cells[i].scope);
        bool plain = job_route_allows(&p, cells[i].route, "demo");
        bool run = job_route_allows(&p, cells[i].route, "agent.run");
        if (plain != cells[i].plain || run != cells[i].run)
            fail_msg("route_id %d, scope \"%s\": plain job %d run's job %d, expected %d %d",
                     cells[i].route, cells[i].scope, plain, run, cells[i].plain, cells[i].run);
    }
}

/* The 403 of a job route names the agent-runs permission that was missing. */
static void test_job_route_refusal_names_what_was_missing(void **state)
{
    (void)state;
    char detail[160];
    principal user = with_roles_and_scope(ROLE_USER, ALL_SCOPES);
    rbac_perm need = rbac_job_perm(rbac_route_perm(ROUTE_JOB_CANCEL), "agent.run");
    assert_int_equal(need.res, RES_AGENT_RUNS);
    assert_int_equal(need.act, ACT_DELETE);
    assert_false(rbac_allows(&user, need, detail, sizeof detail));
    assert_string_equal(detail, "your roles do not allow delete on agent-runs");
    principal narrow = with_roles_and_scope(ROLE_ADMIN, "jobs:read");
    need = rbac_job_perm(rbac_route_perm(ROUTE_JOB_GET), "agent.run");
    assert_false(rbac_allows(&narrow, need, detail, sizeof detail));
    assert_string_equal(detail, "the token's scopes do not allow read on agent-runs");
}

/*
 * Every registered type is either a plain job (the job routes' own check
 * is the whole check) or belongs to another resource; one that does must
 * be internal, so POST /v1/jobs cannot make one without that resource's
 * create permission and record. Unknown names are plain jobs.
 */
static void test_job_owners_are_internal_types(void **state)
{
    (void)state;
    assert_int_equal(jobtypes_init(), 0);
    size_t n;
    const job_type *types = jobtypes_all(&n);
    rbac_perm read_jobs = { RES_JOBS, ACT_READ };
    bool saw_run = false;
    for (size_t i = 0; i < n; i++) {
        rbac_perm need = rbac_job_perm(read_jobs, types[i].name);
        assert_int_equal(need.act, ACT_READ);
        if (need.res != RES_JOBS && !types[i].internal)
            fail_msg("job type %s belongs to %s but POST /v1/jobs may create it",
                     types[i].name, rbac_resource_name(need.res));
        if (strcmp(types[i].name, "agent.run") == 0) {
            saw_run = true;
            assert_int_equal(need.res, RES_AGENT_RUNS);
            assert_true(types[i].internal);
        }
    }
    assert_true(saw_run);
    assert_false(jobtypes_find("demo")->internal);
    assert_int_equal(rbac_job_perm(read_jobs, "no.such.type").res, RES_JOBS);
    assert_int_equal(rbac_job_perm(read_jobs, NULL).res, RES_JOBS);
}

/* The names the worker looks resources up by, both ways, and the scope
 * each action needs. */
static void test_permission_names(void **state)
{
    (void)state;
    for (int re = 0; re < NRES; re++) {
        assert_int_equal(permission_resource_by_name(resource_names[re]), resources[re]);
        char want[40], got[40];
        snprintf(want, sizeof want, "%s:read", resource_names[re]);
        assert_int_equal(permission_scope_name(resources[re], ACT_READ, got, sizeof got),
                         strlen(want));
        assert_string_equal(got, want);
        snprintf(want, sizeof want, "%s:write", resource_names[re]);
        for (int ac = 0; ac < 4; ac++) {
            if (actions[ac] == ACT_READ) continue;
            assert_int_equal(permission_scope_name(resources[re], actions[ac], got, sizeof got),
                             strlen(want));
            assert_string_equal(got, want);
        }
    }
    assert_int_equal(permission_resource_by_name(NULL), RES_NONE);
    assert_int_equal(permission_resource_by_name(""), RES_NONE);
    assert_int_equal(permission_resource_by_name("Graph"), RES_NONE);
    assert_int_equal(permission_resource_by_name("graph "), RES_NONE);
    assert_int_equal(permission_resource_by_name("mcp_servers"), RES_NONE);
    char out[32] = "x";
    assert_int_equal(permission_scope_name(RES_NONE, ACT_READ, out, sizeof out), 0);
    assert_string_equal(out, "");
    assert_int_equal(permission_scope_name(RES_COUNT, ACT_READ, out, sizeof out), 0);
    assert_int_equal(permission_scope_name(RES_JOBS, ACT_NONE, out, sizeof out), 0);
    assert_int_equal(permission_scope_name(RES_JOBS, (rbac_action)(ACT_READ | ACT_CREATE),
                                           out, sizeof out), 0);
    char small[9];   /* "jobs:read" needs 10 */
    assert_int_equal(permission_scope_name(RES_JOBS, ACT_READ, small, sizeof small), 0);
    assert_string_equal(small, "");
    /* rbac_roles_allow is the shared matrix, cell for cell. */
    for (unsigned combo = 0; combo < 16; combo++)
        for (int re = 0; re < NRES; re++)
            for (int ac = 0; ac < 4; ac++)
                assert_int_equal(permission_roles_allow(combo, resources[re], actions[ac]),
                                 rbac_roles_allow(combo, resources[re], actions[ac]));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_cell_of_the_matrix),
        cmocka_unit_test(test_roles_add_up),
        cmocka_unit_test(test_bad_resource_or_action_is_refused),
        cmocka_unit_test(test_scopes_narrow),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_permission_names),
        cmocka_unit_test(test_every_route_has_a_permission),
        cmocka_unit_test(test_unknown_route_fails_closed),
        cmocka_unit_test(test_public_routes_match_the_router),
        cmocka_unit_test(test_job_routes_by_role_and_job_kind),
        cmocka_unit_test(test_job_routes_by_scope_and_job_kind),
        cmocka_unit_test(test_job_route_refusal_names_what_was_missing),
        cmocka_unit_test(test_job_owners_are_internal_types),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
