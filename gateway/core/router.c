/*
 * router.c - the API's routes as one table (see router.h).
 *
 * A pattern is a path whose "*" segment matches one non-empty segment
 * (the resource id, at most 63 bytes) and whose "+" segment matches one
 * non-empty segment of at most 128 bytes (a name: tool names are longer
 * than any id). Matching is by whole segments, so "/v1/jobs/x/eventsz"
 * or a trailing slash never reaches a handler by accident.
 */
#include <pthread.h>
#include <string.h>
#include <stdio.h>

#include "router.h"

static const route_def routes[] = {
    { VERB_POST,   "/v1/jobs",                 ROUTE_JOBS_CREATE, 1 },
    { VERB_POST,   "/v1/jobs/batch",           ROUTE_JOBS_BATCH_CREATE, 1 },
    { VERB_GET,    "/v1/jobs",                 ROUTE_JOBS_LIST, 1 },
    { VERB_GET,    "/v1/jobs/*",               ROUTE_JOB_GET, 1 },
    { VERB_DELETE, "/v1/jobs/*",               ROUTE_JOB_CANCEL, 1 },
    { VERB_GET,    "/v1/jobs/*/events",        ROUTE_JOB_EVENTS, 1 },
    { VERB_POST,   "/v1/agent-runs",           ROUTE_RUNS_CREATE, 1 },
    { VERB_GET,    "/v1/agent-runs/*",         ROUTE_RUN_GET, 1 },
    { VERB_DELETE, "/v1/agent-runs/*",         ROUTE_RUN_CANCEL, 1 },
    { VERB_GET,    "/v1/agent-runs/*/events",  ROUTE_RUN_EVENTS, 1 },
    { VERB_GET,    "/v1/health/live",          ROUTE_HEALTH_LIVE, 0 },
    { VERB_GET,    "/v1/health/ready",         ROUTE_HEALTH_READY, 0 },
    { VERB_GET,    "/v1/health/components",    ROUTE_HEALTH_COMPONENTS, 0 },
    { VERB_GET,    "/metrics",                 ROUTE_METRICS, 0 },
    { VERB_POST,   "/v1/sessions",             ROUTE_SESSIONS_CREATE, 1 },
    { VERB_GET,    "/v1/sessions",             ROUTE_SESSIONS_LIST, 1 },
    { VERB_GET,    "/v1/sessions/*",           ROUTE_SESSION_GET, 1 },
    { VERB_DELETE, "/v1/sessions/*",           ROUTE_SESSION_DELETE, 1 },
    { VERB_GET,    "/v1/tools",                ROUTE_TOOLS_LIST, 1 },
    { VERB_GET,    "/v1/tools/+",              ROUTE_TOOL_GET, 1 },
    { VERB_GET,    "/v1/models",               ROUTE_MODELS_LIST, 1 },
    { VERB_POST,   "/v1/models",               ROUTE_MODELS_CREATE, 1 },
    { VERB_PATCH,  "/v1/models/*",             ROUTE_MODEL_UPDATE, 1 },
    { VERB_DELETE, "/v1/models/*",             ROUTE_MODEL_DELETE, 1 },
    { VERB_GET,    "/v1/tenants",              ROUTE_TENANTS_LIST, 1 },
    { VERB_GET,    "/v1/tenants/*",            ROUTE_TENANT_GET, 1 },
    { VERB_PATCH,  "/v1/tenants/*",            ROUTE_TENANT_UPDATE, 1 },
    { VERB_POST,   "/v1/mcp-servers",          ROUTE_MCP_SERVERS_CREATE, 1 },
    { VERB_GET,    "/v1/mcp-servers",          ROUTE_MCP_SERVERS_LIST, 1 },
    { VERB_GET,    "/v1/mcp-servers/*",        ROUTE_MCP_SERVER_GET, 1 },
    { VERB_PATCH,  "/v1/mcp-servers/*",        ROUTE_MCP_SERVER_UPDATE, 1 },
    { VERB_DELETE, "/v1/mcp-servers/*",        ROUTE_MCP_SERVER_DELETE, 1 },
    { VERB_POST,   "/v1/mcp-servers/*/refresh", ROUTE_MCP_SERVER_REFRESH, 1 },
    { VERB_GET,    "/openapi.json",            ROUTE_OPENAPI, 0 },
    { VERB_GET,    "/console",                 ROUTE_CONSOLE_REDIRECT, 0 },
    { VERB_GET,    "/console/",                ROUTE_CONSOLE_INDEX, 0 },
    { VERB_GET,    "/console/*",               ROUTE_CONSOLE_ASSET, 0 },
    { VERB_GET,    "/v1/queues",               ROUTE_QUEUES_LIST, 1 },
    { VERB_GET,    "/v1/workers",              ROUTE_WORKERS_LIST, 1 },
    { VERB_POST,   "/v1/jobs/*/retry",         ROUTE_JOB_RETRY, 1 },
    { VERB_GET,    "/v1/agent-runs",           ROUTE_RUNS_LIST, 1 },
    { VERB_GET,    "/v1/dead-letters",         ROUTE_DEAD_LETTERS_LIST, 1 },
    { VERB_POST,   "/v1/dead-letters/retry",   ROUTE_DEAD_LETTERS_RETRY_ALL, 1 },
    { VERB_DELETE, "/v1/dead-letters",         ROUTE_DEAD_LETTERS_DISCARD_ALL, 1 },
    { VERB_POST,   "/v1/dead-letters/*/retry", ROUTE_DEAD_LETTER_RETRY, 1 },
    { VERB_DELETE, "/v1/dead-letters/*",       ROUTE_DEAD_LETTER_DISCARD, 1 },
    { VERB_GET,    "/v1/jobs/*/webhook-deliveries", ROUTE_JOB_WEBHOOK_DELIVERIES, 1 },
    { VERB_POST,   "/v1/tenants/*/webhook-secret", ROUTE_TENANT_WEBHOOK_SECRET, 1 },
    { VERB_POST,   "/v1/schedules",            ROUTE_SCHEDULES_CREATE, 1 },
    { VERB_GET,    "/v1/schedules",            ROUTE_SCHEDULES_LIST, 1 },
    { VERB_GET,    "/v1/schedules/*",          ROUTE_SCHEDULE_GET, 1 },
    { VERB_PATCH,  "/v1/schedules/*",          ROUTE_SCHEDULE_UPDATE, 1 },
    { VERB_DELETE, "/v1/schedules/*",          ROUTE_SCHEDULE_DELETE, 1 },
    { VERB_POST,   "/v1/agent-runs/*/approvals", ROUTE_RUN_APPROVE, 1 },
};

/* Matches path against pattern; on success copies the "*" segment into
 * param and the "+" segment into name. */
static int pattern_match(const char *pattern, const char *path, size_t len,
                         char *param, size_t param_size, char *name, size_t name_size)
{
    size_t i = 0;
    const char *p = pattern;
    while (*p) {
        if (*p == '*' || *p == '+') {
            char *out = *p == '*' ? param : name;
            size_t out_size = *p == '*' ? param_size : name_size;
            size_t start = i;
            while (i < len && path[i] != '/') i++;
            size_t seg = i - start;
            if (seg == 0 || seg >= out_size) return 0;
            memcpy(out, path + start, seg);
            out[seg] = '\0';
            p++;
            continue;
        }
        if (i >= len || path[i] != *p) return 0;
        i++;
        p++;
    }
    return i == len;
}

int router_match(http_verb verb, const char *path, size_t len, route_match *m)
{
    memset(m, 0, sizeof *m);
    /* HEAD is answered like GET by the HTTP layer. */
    http_verb want = verb == VERB_HEAD ? VERB_GET : verb;
    int matched = 0;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        char param[sizeof m->param] = "", name[sizeof m->name] = "";
        if (!pattern_match(routes[i].pattern, path, len, param, sizeof param,
                           name, sizeof name)) continue;
        m->allowed |= routes[i].verb;
        if (routes[i].verb == want && !matched) {
            m->id = routes[i].id;
            m->needs_auth = routes[i].needs_auth;
            memcpy(m->param, param, sizeof m->param);
            memcpy(m->name, name, sizeof m->name);
            matched = 1;
        }
    }
    if (matched) return 200;
    return m->allowed ? 405 : 404;
}

size_t router_route_count(void)
{
    return sizeof routes / sizeof routes[0];
}

const route_def *router_route_at(size_t i)
{
    return i < router_route_count() ? &routes[i] : NULL;
}

/* Filled once from the table (routes sharing a path share a template). */
static char templates[ROUTE_COUNT][64];
static pthread_once_t templates_once = PTHREAD_ONCE_INIT;

static void templates_fill(void)
{
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        char *out = templates[routes[i].id];
        size_t n = 0;
        for (const char *p = routes[i].pattern; *p; p++) {
            const char *piece = *p == '*' ? "{id}" : *p == '+' ? "{name}" : NULL;
            size_t len = piece ? strlen(piece) : 1;
            if (n + len >= sizeof templates[0]) break;
            memcpy(out + n, piece ? piece : p, len);
            n += len;
        }
        out[n] = '\0';
    }
}

const char *router_route_template(route_id id)
{
    if (id <= ROUTE_NONE || id >= ROUTE_COUNT) return "";
    pthread_once(&templates_once, templates_fill);
    return templates[id];
}

void router_allow_header(unsigned allowed, char *out, size_t size)
{
    static const struct { unsigned bit; const char *name; } names[] = {
        { VERB_GET, "GET" }, { VERB_POST, "POST" }, { VERB_PUT, "PUT" },
        { VERB_PATCH, "PATCH" }, { VERB_DELETE, "DELETE" },
    };
    size_t n = 0;
    out[0] = '\0';
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (!(allowed & names[i].bit)) continue;
        int w = snprintf(out + n, size - n, "%s%s", n ? ", " : "", names[i].name);
        if (w < 0 || (size_t)w >= size - n) break;
        n += (size_t)w;
    }
}
