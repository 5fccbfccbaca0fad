/*
 * tool_env.h - what a tool call carries to a tool's handler and what the
 * handler answers with, shared by the built-in tools (tools_builtin.h)
 * and the pipeline that calls them (tools.h): who the call acts for, the
 * job's connections, the manifests catalog.search sees, and the handler's
 * error codes.
 */
#ifndef AG_TOOL_ENV_H
#define AG_TOOL_ENV_H

#include <stdbool.h>
#include <stddef.h>
#include <libpq-fe.h>

struct redisContext;

/* Who a run acts for, as recorded at submission (agent_runs.principal). */
typedef struct tool_principal {
    char sub[128];
    char tenant_id[65];
    char scope[1024];           /* space-separated scopes, as in the JWT */
    char roles[128];            /* space-separated role names */
} tool_principal;

typedef enum tool_err {
    TOOL_OK = 0,
    TOOL_ERR_NOT_FOUND,    /* no built-in tool of that name */
    TOOL_ERR_BAD_INPUT,    /* input does not fit the tool's input schema */
    TOOL_ERR_NOMEM,
    TOOL_ERR_FAILED,       /* the tool ran and could not produce a result */
} tool_err;

/* A manifest as catalog.search sees it. Strings are borrowed. */
typedef struct tool_manifest_info {
    const char *name;
    const char *description;
    const char *const *required_scopes;
    size_t n_required_scopes;
    bool callable;          /* a handler exists and the principal holds the scopes */
} tool_manifest_info;

/*
 * What a tool knows of the call: the job, the caller and the connections
 * of the job thread. Strings and connections are borrowed; any field may
 * be zero, and a tool that needs one it lacks fails with a reason instead
 * of crashing.
 */
typedef struct tool_call_env {
    const char *worker_id;              /* the worker running the job; NULL if unknown */
    const char *tenant_id;              /* the caller's tenant: every read filters by it */
    const char *job_id;
    PGconn *pg;                         /* the job thread's connection, or NULL */
    struct redisContext *redis;         /* NULL: Redis unreachable */
    const tool_principal *principal;
    const char *run_id;                 /* checked UUID or NULL */
    const char *session_id;             /* checked UUID or NULL */
    const tool_manifest_info *manifests;/* what the tenant sees, for catalog.search */
    size_t n_manifests;
    bool live;              /* pg and redis are the job's real connections, so
                               NULL means unreachable (system.health reports it) */
} tool_call_env;

#endif
