/*
 * mcp_call.h - the last stage of the tools pipeline (tools.c) for a tool
 * an MCP server serves: the call itself, through a pooled client
 * (mcp_pool.h), on behalf of a job.
 *
 * While the call waits, the server's progress notifications become the
 * job's job.progress events and its log messages `log` events
 * ({"level","logger","message"}), both bounded per call; the job's
 * cancellation, or the run's deadline, cancels the call at once
 * (notifications/cancelled goes to the server). The call's own limit is
 * AGENTGATE_MCP_CALL_TIMEOUT_MS (never past the run's deadline).
 *
 * The output a model reads is {"content": text, "structuredContent"?:
 * object, "isError": bool}, "truncated": true added when the server's
 * answer was cut to AGENTGATE_MCP_RESULT_MAX_BYTES.
 */
#ifndef AG_MCP_CALL_H
#define AG_MCP_CALL_H

#include <stdbool.h>
#include <stddef.h>
#include <cjson/cJSON.h>

#include "job_ctx.h"
#include "mcp_pool.h"

/* The tool to call: a manifest's server and the tool's own name there. */
typedef struct mcp_call_target {
    const char *server;             /* the tenant's server, as in mcp_servers */
    const char *tool;               /* the tool's name on the server */
    const char *config_id;          /* of the settings the catalog saw, or "" */
    long long deadline_ms;          /* clock_mono_ms the run ends; 0: none */
} mcp_call_target;

typedef enum mcp_call_outcome {
    MCP_CALL_DONE = 0,              /* *output holds the result */
    MCP_CALL_TOOL_ERROR,            /* the tool reported failure (isError); *output
                                       holds it, msg says it in one line */
    MCP_CALL_FAILED,                /* no result: msg says why */
} mcp_call_outcome;

/*
 * Calls t's tool with args (an object; NULL is {}) for the job of ctx,
 * whose tenant owns the server. Sets *output (owned by the caller) on
 * MCP_CALL_DONE and MCP_CALL_TOOL_ERROR; msg (msg_size bytes) says what
 * failed in words a model can relay, never quoting a header.
 */
mcp_call_outcome mcp_call_tool_for_job(job_ctx *ctx, const mcp_call_target *t,
                                       const cJSON *args, cJSON **output, char *msg,
                                       size_t msg_size);

/*
 * The output object for r, capped: text and structuredContent together
 * stay within max_bytes (structuredContent is dropped first, then the
 * text cut on a UTF-8 boundary), "truncated" set when anything was cut.
 * NULL when memory runs out.
 */
cJSON *mcp_call_output(const mcp_call_result *r, size_t max_bytes);

/*
 * A one-line English summary of an MCP tool's output for a model or the
 * deterministic template: a knowledge graph's entities and relations
 * (structuredContent {"entities","relations"}) named one by one, else the
 * text. At most max bytes. malloc'd; NULL when memory runs out.
 */
char *mcp_output_summary(const cJSON *output, size_t max);

#endif
