/*
 * router.h - maps a method and path to the API operation it names and
 * extracts the path's id. Pure, so it is unit tested and fuzzed alone.
 */
#ifndef AG_ROUTER_H
#define AG_ROUTER_H

#include <stddef.h>

typedef enum route_id {
    ROUTE_NONE = 0,
    ROUTE_JOBS_CREATE,
    ROUTE_JOBS_LIST,
    ROUTE_JOB_GET,
    ROUTE_JOB_CANCEL,
    ROUTE_JOB_EVENTS,
    ROUTE_RUNS_CREATE,
    ROUTE_RUN_GET,
    ROUTE_RUN_CANCEL,
    ROUTE_RUN_EVENTS,
    ROUTE_HEALTH_LIVE,
    ROUTE_HEALTH_READY,
    ROUTE_HEALTH_COMPONENTS,
    ROUTE_METRICS,
    ROUTE_SESSIONS_CREATE,
    ROUTE_SESSIONS_LIST,
    ROUTE_SESSION_GET,
    ROUTE_SESSION_DELETE,
    ROUTE_TOOLS_LIST,
    ROUTE_TOOL_GET,
    ROUTE_MODELS_LIST,
    ROUTE_MODELS_CREATE,
    ROUTE_MODEL_UPDATE,
    ROUTE_MODEL_DELETE,
    ROUTE_TENANTS_LIST,
    ROUTE_TENANT_GET,
    ROUTE_TENANT_UPDATE,
    ROUTE_MCP_SERVERS_CREATE,
    ROUTE_MCP_SERVERS_LIST,
    ROUTE_MCP_SERVER_GET,
    ROUTE_MCP_SERVER_UPDATE,
    ROUTE_MCP_SERVER_DELETE,
    ROUTE_MCP_SERVER_REFRESH,
    ROUTE_OPENAPI,
    ROUTE_CONSOLE_REDIRECT,
    ROUTE_CONSOLE_INDEX,
    ROUTE_CONSOLE_ASSET,
    ROUTE_QUEUES_LIST,
    ROUTE_WORKERS_LIST,
    ROUTE_JOB_RETRY,
    ROUTE_RUNS_LIST,
    ROUTE_DEAD_LETTERS_LIST,
    ROUTE_DEAD_LETTERS_RETRY_ALL,
    ROUTE_DEAD_LETTERS_DISCARD_ALL,
    ROUTE_DEAD_LETTER_RETRY,
    ROUTE_DEAD_LETTER_DISCARD,
    ROUTE_JOB_WEBHOOK_DELIVERIES,
    ROUTE_TENANT_WEBHOOK_SECRET,
    ROUTE_SCHEDULES_CREATE,
    ROUTE_SCHEDULES_LIST,
    ROUTE_SCHEDULE_GET,
    ROUTE_SCHEDULE_UPDATE,
    ROUTE_SCHEDULE_DELETE,
    ROUTE_JOBS_BATCH_CREATE,
    ROUTE_RUN_APPROVE,
    ROUTE_COUNT            /* not a route: one past the last, for tables and tests */
} route_id;

typedef enum http_verb {
    VERB_GET = 1 << 0,
    VERB_POST = 1 << 1,
    VERB_DELETE = 1 << 2,
    VERB_HEAD = 1 << 3,
    VERB_OTHER = 1 << 4,
    VERB_PATCH = 1 << 5,
    VERB_PUT = 1 << 6,
    VERB_OPTIONS = 1 << 7,
} http_verb;

typedef struct route_match {
    route_id id;
    char param[64];        /* the {id} segment (an MCP server's {name}) as sent,
                              unchecked */
    unsigned allowed;      /* VERB_* bits the path accepts (for 405 Allow) */
    int needs_auth;        /* 0 for health, metrics and openapi */
    char name[129];        /* the {name} segment (tools) as sent, unchecked;
                              up to 128 bytes, longer ones do not match */
} route_match;

/*
 * Matches path (without query string) for verb. Returns 200 when matched,
 * 405 when the path exists but not for this verb (m->allowed says which
 * verbs do), 404 when no route has this path.
 */
int router_match(http_verb verb, const char *path, size_t len, route_match *m);

/* The path template of route id for labels and span names, "*" written
 * "{id}" and "+" "{name}" ("/v1/jobs/{id}/events"); "" for ROUTE_NONE
 * (no route matched). Static storage, safe from any thread. */
const char *router_route_template(route_id id);

/* Writes the Allow header value for allowed ("GET, DELETE") into out. */
void router_allow_header(unsigned allowed, char *out, size_t size);

/* One row of the route table: a verb, a path pattern ("*" a segment that
 * is an id, "+" a segment that is a name), the route and whether it needs
 * a token. */
typedef struct route_def {
    http_verb verb;
    const char *pattern;
    route_id id;
    int needs_auth;
} route_def;

/* The number of rows in the route table. */
size_t router_route_count(void);

/* Row i of the route table (static, never freed), or NULL when i is not
 * below router_route_count(). For what describes the API (openapi.c) and
 * the tests that check every route is described. */
const route_def *router_route_at(size_t i);

#endif
