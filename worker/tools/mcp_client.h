/*
 * mcp_client.h - a Model Context Protocol client for the worker's tools
 * runtime: it lists a server's tools and calls them, over any
 * mcp_transport (stdio child process or Streamable HTTP).
 *
 * Protocol: JSON-RPC 2.0, revision 2025-11-25 offered at initialize and
 * 2025-06-18 accepted when the server answers with it; any other answer
 * is MCP_ERR_VERSION. The client declares no capabilities (no sampling,
 * elicitation or roots): a server request for one of them, or for any
 * method but ping, is answered at once with -32601 (method not found).
 *
 * Calls block until their deadline. While one waits, the client answers
 * the server's pings, passes on progress and log notifications, notes
 * notifications/tools/list_changed, and polls the caller's cancel check
 * every MCP_CLIENT_POLL_MS; a cancelled or timed-out call sends
 * notifications/cancelled and returns MCP_ERR_CANCELLED or
 * MCP_ERR_TIMEOUT. Initialization is lazy (the first call does it) and
 * repeated when the transport starts a new connection (a restarted stdio
 * server) or the HTTP server ends the session (then the call is retried
 * once).
 *
 * Threads: an mcp_client and its transport may be used by one thread at
 * a time (a worker job thread); different clients are independent.
 *
 * Everything from the server is validated and bounded: tool names, the
 * number of tools and pages, description lengths, result size.
 */
#ifndef AG_MCP_CLIENT_H
#define AG_MCP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <cjson/cJSON.h>

#include "mcp_jsonrpc.h"
#include "mcp_transport.h"
#include "version.h"

#define MCP_PROTOCOL_LATEST    "2025-11-25"
#define MCP_PROTOCOL_PREVIOUS  "2025-06-18"
#define MCP_CLIENT_NAME        "agentgate"
#define MCP_CLIENT_VERSION     AGENTGATE_VERSION

#define MCP_CLIENT_POLL_MS         50       /* how often the cancel check runs */
#define MCP_TOOL_NAME_MAX          128      /* [A-Za-z0-9_.-]{1,128} */
#define MCP_TOOL_TITLE_MAX         256      /* bytes kept of a title */
#define MCP_TOOL_DESCRIPTION_MAX   8192     /* bytes kept of a description */
#define MCP_CURSOR_MAX             4096     /* bytes of a pagination cursor */

typedef struct mcp_client mcp_client;

/* A server log message (notifications/message): level as the server sent
 * it ("debug" .. "emergency"), logger or NULL, and data as one line of
 * text (a string as is, anything else as JSON), cut to 4 KiB. */
typedef void (*mcp_log_fn)(void *user, const char *level, const char *logger,
                           const char *text);

/* Progress of a call: progress so far, total or -1 when the server gave
 * none, message or NULL. */
typedef void (*mcp_progress_fn)(void *user, double progress, double total,
                                const char *message);

/* Polled while a call waits; returns true to cancel it. */
typedef bool (*mcp_cancel_fn)(void *user);

/* Client settings; zero fields take the defaults given. */
typedef struct mcp_client_options {
    const char *client_version;     /* clientInfo.version; MCP_CLIENT_VERSION */
    long long request_timeout_ms;   /* initialize, tools/list (per page), ping; 30000 */
    long long call_timeout_ms;      /* tools/call without its own timeout; 60000 */
    size_t max_tools;               /* tools kept from tools/list; 1000 */
    int max_pages;                  /* tools/list pages followed; 100 */
    size_t max_result_bytes;        /* text kept from a call result; 1 MiB */
    mcp_log_fn on_log;              /* NULL: server log messages go to log_debug */
    void *log_user;
} mcp_client_options;

/*
 * Makes a client over t, which it takes over (freed by mcp_client_free,
 * or here on failure). opt may be NULL. Nothing is sent yet. Returns NULL
 * with a reason in err (err_size bytes) when memory runs out.
 */
mcp_client *mcp_client_new(mcp_transport *t, const mcp_client_options *opt, char *err,
                           size_t err_size);

/* Shuts the transport down (stdio: stops the server; HTTP: deletes the
 * session) and frees everything. NULL is fine. */
void mcp_client_free(mcp_client *c);

/*
 * Connects and runs initialize and notifications/initialized, if not done
 * already on the current connection. Calls do this themselves; calling it
 * first only separates connection errors from call errors. Returns MCP_OK
 * or an MCP_ERR_* with a reason in err.
 */
int mcp_client_initialize(mcp_client *c, char *err, size_t err_size);

/* After a successful initialize: the agreed protocol version, the
 * server's name and version ("" when it gave none) and its instructions
 * (NULL when none). Owned by the client, valid until the next initialize. */
const char *mcp_client_protocol_version(const mcp_client *c);
const char *mcp_client_server_name(const mcp_client *c);
const char *mcp_client_server_version(const mcp_client *c);
const char *mcp_client_instructions(const mcp_client *c);

/* Tool annotation hints: untrusted advice from the server. */
typedef enum mcp_hint {
    MCP_HINT_UNSET = -1,
    MCP_HINT_FALSE = 0,
    MCP_HINT_TRUE = 1,
} mcp_hint;

typedef struct mcp_tool {
    char *name;                 /* [A-Za-z0-9_.-]{1,128} */
    char *title;                /* or NULL; at most MCP_TOOL_TITLE_MAX bytes */
    char *description;          /* or NULL; at most MCP_TOOL_DESCRIPTION_MAX bytes */
    cJSON *input_schema;        /* an object whose "type" is "object" */
    cJSON *output_schema;       /* likewise, or NULL */
    mcp_hint read_only, destructive, idempotent, open_world;
} mcp_tool;

typedef struct mcp_tool_list {
    mcp_tool *tools;
    size_t count;
    size_t skipped;             /* invalid or duplicate definitions left out */
} mcp_tool_list;

/*
 * Lists the server's tools, following nextCursor up to max_pages pages.
 * Fills *out (free with mcp_tool_list_free) and clears the list-changed
 * flag. Invalid definitions are skipped with a log line and counted.
 * Returns MCP_OK, MCP_ERR_TOO_LARGE past max_tools or max_pages,
 * MCP_ERR_PROTOCOL for a malformed page or a repeated cursor, or another
 * MCP_ERR_*; on error *out is empty.
 */
int mcp_client_list_tools(mcp_client *c, mcp_tool_list *out, char *err, size_t err_size);

void mcp_tool_list_free(mcp_tool_list *l);

/* True when the name is 1-128 of [A-Za-z0-9_.-]. */
bool mcp_tool_name_ok(const char *name);

/* Per-call settings; zero fields take the defaults. */
typedef struct mcp_call_options {
    long long timeout_ms;           /* 0: the client's call_timeout_ms */
    mcp_progress_fn on_progress;    /* set: a progressToken is sent in _meta */
    void *progress_user;
    mcp_cancel_fn is_cancelled;     /* polled every MCP_CLIENT_POLL_MS */
    void *cancel_user;
    bool keep_raw;                  /* keep the whole result object in raw */
} mcp_call_options;

typedef struct mcp_call_result {
    char *text;                 /* text items joined by '\n', other items as
                                 * "[image: image/png, N bytes base64]" and
                                 * the like; malloc'd, never NULL on success */
    size_t text_len;
    bool is_error;              /* the tool reported failure (isError) */
    bool truncated;             /* text or structuredContent was cut to
                                 * max_result_bytes (a marker says so) */
    size_t content_count;       /* items in the content array */
    cJSON *structured;          /* structuredContent object, or NULL */
    cJSON *raw;                 /* the whole result when keep_raw, or NULL */
} mcp_call_result;

/*
 * Calls tool name with arguments (an object, or NULL for {}), waiting at
 * most the call's timeout, initialization included. Fills *out (free with
 * mcp_call_result_free) on MCP_OK, which includes a tool that reported
 * failure (out->is_error). Errors: MCP_ERR_INVALID (bad name or
 * arguments), MCP_ERR_TIMEOUT, MCP_ERR_CANCELLED, MCP_ERR_RPC (the server
 * refused the call: unknown tool and the like), MCP_ERR_TRANSPORT,
 * MCP_ERR_PROTOCOL, MCP_ERR_VERSION, MCP_ERR_TOO_LARGE; a reason in err.
 */
int mcp_client_call_tool(mcp_client *c, const char *name, const cJSON *arguments,
                         const mcp_call_options *opt, mcp_call_result *out, char *err,
                         size_t err_size);

void mcp_call_result_free(mcp_call_result *r);

/* Sends ping and waits for the answer (request_timeout_ms). */
int mcp_client_ping(mcp_client *c, char *err, size_t err_size);

/* True when the server said its tool list changed since the last
 * mcp_client_list_tools; clear resets the flag. */
bool mcp_client_tools_changed(mcp_client *c, bool clear);

/* The JSON-RPC error code of the last MCP_ERR_RPC, or 0. */
long long mcp_client_last_rpc_code(const mcp_client *c);

#endif
