/*
 * mcp_discover.h - the handler of job type mcp.discover: it reaches one
 * of the tenant's MCP servers, lists its tools and records them as the
 * tenant's tool manifests, so agent runs can call them through the tools
 * pipeline (tools.h).
 *
 * Payload {"server": name}. The gateway queues the job when a server is
 * registered, changed or refreshed, and sets the row's refresh_job_id to
 * it; a job that finds another id there has been superseded, and one that
 * finds no row (the server was deleted) is done: both succeed ("status":
 * "superseded" or "gone") and write nothing.
 *
 * Each tool T of server S becomes the manifest "S.T": the server's
 * description and inputSchema, required_scopes {"<resource>:read"} when
 * the server marks it read-only (annotations.readOnlyHint) and
 * {"<resource>:write"} otherwise, the annotations, a default rate limit,
 * and mcp_server/mcp_tool naming it. A name that does not fit the
 * manifest names ([A-Za-z0-9._-]{1,128}) or is a built-in tool's is
 * refused; a schema the validator cannot check keeps the tool but marks
 * it unusable. The server row gets status ready, the protocol version,
 * server_info, a summary of every tool (name, manifest, title,
 * read_only, usable, reason) and last_refresh_at; all of it and the
 * manifests in one transaction. A failure sets status error and
 * last_error (one line, never a header value) and fails the job,
 * retryably when the server could not be reached.
 */
#ifndef AG_MCP_DISCOVER_H
#define AG_MCP_DISCOVER_H

#include <stdbool.h>
#include <stddef.h>
#include <cjson/cJSON.h>

#include "job_ctx.h"
#include "mcp_client.h"

#define MCP_DEFAULT_RATE_LIMIT  600     /* calls per minute per tenant of a discovered tool */
#define MCP_MODEL_NAME_MAX      64      /* bytes of a function name a model is offered */

/* The handler (worker/handler_table.c). */
job_outcome handle_mcp_discover(job_ctx *ctx, job_result *out);

/* ---- the pure parts, for tests ------------------------------------------- */

/*
 * Writes "server.tool" into out (size bytes). Returns 0, or -1 with the
 * reason in why (why_size bytes) when it does not fit the manifest names
 * ([A-Za-z0-9._-]{1,128}).
 */
int mcp_manifest_name(const char *server, const char *tool, char *out, size_t size,
                      char *why, size_t why_size);

/* What the manifests and the server row get from one listing. */
typedef struct mcp_discovered {
    cJSON *manifests;   /* [{name, description, input_schema, required_scopes,
                           rate_limit, mcp_tool, annotations}] */
    cJSON *summary;     /* [{name, manifest, title, read_only, usable, reason}] */
    size_t usable;      /* tools that can be called */
    size_t refused;     /* tools with no manifest */
} mcp_discovered;

/*
 * Builds the manifests and the summary of the tools l lists on server,
 * whose resource scopes them. Returns 0 with *out filled (free with
 * mcp_discovered_free), or -1 when memory runs out.
 */
int mcp_discover_build(const char *server, const char *resource, const mcp_tool_list *l,
                       mcp_discovered *out);

/* Marks the tools of d whose manifest is not among inserted (a JSON
 * array of names) unusable: the tenant has a manifest of that name of
 * its own. */
void mcp_discover_mark_conflicts(mcp_discovered *d, const cJSON *inserted);

void mcp_discovered_free(mcp_discovered *d);

#endif
