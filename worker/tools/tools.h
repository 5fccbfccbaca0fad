/*
 * tools.h - the tools runtime: every tool call an agent run makes goes
 * through here, whoever asked for it (the deterministic planner or a
 * model's tool_calls).
 *
 * A call runs the same pipeline every time:
 *   manifest lookup (tool_manifests: the tenant's rows over global ones)
 *   -> arguments validated against the manifest's input_schema
 *   -> the principal's scopes checked against required_scopes
 *   -> the tool's rate limit (per tenant and tool, a Redis token bucket)
 *   -> the handler
 *   -> an audit_logs row and a tool.called event, whatever the outcome.
 * A refusal at any stage is an outcome with a message the model can read
 * and relay, never an error of the run.
 *
 * A manifest with an MCP server (tool_manifests.mcp_server, written by
 * the mcp.discover job, mcp_discover.h) goes through the same stages; its
 * handler is the server's tool, called through a pooled client
 * (mcp_call.h). Two checks are added for it: its server must be ready,
 * and for a required scope "<resource>:<read|write>" whose resource the
 * role matrix knows (common/permission.h: graph, tools, ...) the
 * principal's roles must allow that action too, as they would for the
 * API call the tool stands for.
 */
#ifndef AG_WORKER_TOOLS_H
#define AG_WORKER_TOOLS_H

#include <stdbool.h>
#include <stddef.h>
#include <cjson/cJSON.h>
#include <libpq-fe.h>

#include "job_ctx.h"
#include "llm.h"
#include "tool_env.h"

/* The run a call belongs to, for tools that read its session. */
typedef struct tool_run_env {
    const char *run_id;         /* checked UUID */
    const char *session_id;     /* checked UUID or NULL */
    long long deadline_ms;      /* clock_mono_ms the run times out; 0: none. A call
                                   to an MCP server never waits past it */
} tool_run_env;

/* The manifests one tenant sees, loaded once per run. Opaque. */
typedef struct tool_catalog tool_catalog;

/*
 * Loads the enabled manifests tenant_id sees (its own rows win over global
 * ones of the same name). Returns a catalog the caller frees with
 * tools_catalog_free, or NULL with a one-line reason in err (err_size
 * bytes) when PostgreSQL fails or memory runs out.
 */
tool_catalog *tools_catalog_load(PGconn *pg, const char *tenant_id, char *err,
                                 size_t err_size);

void tools_catalog_free(tool_catalog *c);

/*
 * The tools p may call, as definitions for a model: those with a handler
 * and whose required scopes p holds. *n gets their number. The array and
 * its strings are owned by the catalog and live as long as it.
 */
const llm_tool_def *tools_catalog_defs(tool_catalog *c, const tool_principal *p,
                                       size_t *n);

/* True when the catalog has an enabled tool called name (whatever p holds). */
bool tools_catalog_has(const tool_catalog *c, const char *name);

/* True when a call of the tool called name waits for a person's approval:
 * its manifest says so (needs_approval, an MCP tool's destructiveHint, or
 * its server's require_approval), or write_tools (the run's approval
 * "write-tools") and the tool may change state. False for a tool the
 * catalog lacks. */
bool tools_catalog_needs_approval(const tool_catalog *c, const char *name, bool write_tools);

/*
 * The manifest name of the tool called tool on the tenant's MCP server
 * whose resource is resource ("graph"), the first such server by name,
 * when it is ready and the tool usable: copied into out (size bytes).
 * Returns false when there is none.
 */
bool tools_catalog_mcp_tool(const tool_catalog *c, const char *resource, const char *tool,
                            char *out, size_t size);

/*
 * A one-line English summary of a tool's output (name as in the catalog),
 * for a model or the deterministic template: the built-in tools' own
 * summaries, an MCP tool's text or knowledge graph. malloc'd; NULL when
 * memory runs out.
 */
char *tools_output_summary(const tool_catalog *c, const char *name, const cJSON *output);

/*
 * Whether the JSON Schema text can be used to check a tool's arguments:
 * JSON of at most 64 KiB, an object or a boolean, that the validator
 * (common/schema.h) can check. False with the reason in why (why_size
 * bytes) when not. The catalog and the MCP discovery decide with it.
 */
bool tools_schema_check(const char *schema_text, char *why, size_t why_size);

typedef enum tool_status {
    TOOL_CALL_OK = 0,
    TOOL_CALL_NOT_FOUND,        /* no such tool, or disabled */
    TOOL_CALL_INVALID,          /* arguments do not fit the input schema */
    TOOL_CALL_DENIED,           /* the principal lacks a required scope */
    TOOL_CALL_RATE_LIMITED,     /* the tool's rate limit is spent */
    TOOL_CALL_FAILED,           /* the handler ran and failed */
} tool_status;

typedef struct tool_call_result {
    tool_status status;
    cJSON *output;              /* TOOL_CALL_OK: the result, owned by the caller */
    char message[512];          /* otherwise: why, in words a model can relay */
    long long latency_ms;       /* the whole pipeline, ms */
    double handler_ms;          /* of it, the tool's own time, ms: its built-in
                                   handler or the call to its MCP server; 0
                                   when refused before */
} tool_call_result;

/*
 * Runs the tool called name with args (NULL means {}) for principal p in
 * the job of ctx, through the whole pipeline above, and fills *out.
 * Writes the audit row and emits tool.called
 * {"tool","status","latency_ms","error"?} whatever the outcome.
 */
void tools_call(job_ctx *ctx, tool_catalog *c, const tool_principal *p,
                const tool_run_env *run, const char *name, const cJSON *args,
                tool_call_result *out);

/* Frees out->output. */
void tool_call_result_free(tool_call_result *out);

/* A short English name of status ("denied", ...), for events and logs. */
const char *tool_status_name(tool_status status);

/* ---- The catalog's limits, filling one by hand (as the tests do), scopes ---- */

/* Rate limits in manifests are calls per this many ms, per tenant. */
#define TOOLS_RATE_PERIOD_MS 60000

/* Most manifests a catalog holds; more rows are ignored with a warning. */
#define TOOLS_CATALOG_MAX 256

/* What a manifest of an MCP server's tool adds. Strings are borrowed. */
typedef struct tool_mcp_row {
    const char *server;             /* the server's name */
    const char *tool;               /* the tool's name on the server */
    const char *status;             /* the server's status: "ready" lets it be called */
    const char *resource;           /* the server's resource ("graph") */
    const char *config_id;          /* the id of the server's settings (mcp_server.h) */
    bool read_only;                 /* annotations.readOnlyHint was true */
} tool_mcp_row;

/* One manifest as the catalog takes it. Strings are borrowed (copied in). */
typedef struct tool_manifest_row {
    const char *name;               /* 1..128 of [A-Za-z0-9._-] */
    const char *description;
    const char *input_schema_json;  /* NULL: {"type":"object"} */
    const char *const *required_scopes;
    size_t n_required_scopes;
    long long rate_limit;           /* calls per minute per tenant; <= 0: unlimited */
    const tool_mcp_row *mcp;        /* a tool of an MCP server; NULL: a built-in one */
    bool needs_approval;            /* calls wait for a person's approval */
} tool_manifest_row;

/* An empty catalog, for tools_catalog_add; NULL when memory runs out. */
tool_catalog *tools_catalog_new(void);

/*
 * Adds an enabled manifest to c, replacing one of the same name. A schema
 * that is not JSON is kept as unusable: calls of the tool then fail with
 * that reason rather than skipping validation. Frees the arrays
 * tools_catalog_defs returned before (fill a catalog first, then use it).
 * Returns 0, or -1 with a reason in err for a bad name or when memory
 * runs out.
 */
int tools_catalog_add(tool_catalog *c, const tool_manifest_row *row, char *err,
                      size_t err_size);

/* True when p's scopes include scope (exact match of one word). */
bool tools_principal_has_scope(const tool_principal *p, const char *scope);

#endif
