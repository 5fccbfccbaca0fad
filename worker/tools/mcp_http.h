/*
 * mcp_http.h - the MCP Streamable HTTP transport over libcurl.
 *
 * Every client message is a POST to the server's one MCP endpoint with
 * "Accept: application/json, text/event-stream". A request is answered
 * with one JSON object or with an event stream that carries the server's
 * notifications and requests and, in the end, the response; both are
 * read incrementally, so progress arrives while a call runs. A
 * notification or response is answered with 202 and no body.
 *
 * The Mcp-Session-Id the server gives with the initialize response is
 * sent on every later request, and so is MCP-Protocol-Version once the
 * version is agreed. A 404 to a request carrying the session id means the
 * server ended the session: the transport forgets it and reports
 * MCP_ERR_SESSION_LOST, and the client initializes again. When an event
 * stream closes before the response, the transport resumes it with a GET
 * carrying Last-Event-ID, after the delay the server's "retry:" asked for.
 * Once the session is set up, a GET stream stays open for what the server
 * sends outside any request (notifications/tools/list_changed, log
 * messages), unless the server answers it 405. Closing sends DELETE for
 * the session.
 *
 * Safety: redirects are not followed, only http and https are allowed,
 * connect and per-call timeouts and a response size cap apply, and the
 * caller's extra headers (Authorization and the like) are never logged.
 */
#ifndef AG_MCP_HTTP_H
#define AG_MCP_HTTP_H

#include <stddef.h>

#include "mcp_transport.h"

#define MCP_SESSION_ID_MAX 1024             /* bytes of a session id */

typedef struct mcp_http_config {
    const char *name;                   /* for log lines; default "http" */
    const char *url;                    /* http:// or https:// MCP endpoint */
    const char *const *headers;         /* "Name: value" strings, NULL-terminated,
                                         * or NULL; secret, never logged */
    long long connect_timeout_ms;       /* 0: 10000 */
    long long close_timeout_ms;         /* the DELETE at close; 0: 2000 */
    size_t max_message_bytes;           /* one message; 0: MCP_MSG_MAX_DEFAULT */
    size_t max_response_bytes;          /* one HTTP response body; 0: 16 MiB */
    long long retry_default_ms;         /* resume delay without "retry:"; 0: 1000 */
    int max_resumes;                    /* stream resumptions per request; 0: 5 */
    const char *user_agent;             /* 0: "agentgate-mcp" */
} mcp_http_config;

/*
 * Makes an HTTP transport (copying cfg). Returns NULL with a reason in
 * err (err_size bytes) when the URL is not http(s), a header is not
 * "Name: value" or sets one of the headers the transport owns
 * (Content-Type, Accept, Mcp-Session-Id, MCP-Protocol-Version,
 * Last-Event-ID, Content-Length, Host), or memory runs out. Nothing is
 * sent until the first message.
 */
mcp_transport *mcp_http_open(const mcp_http_config *cfg, char *err, size_t err_size);

/* The session id the server assigned, or "" when none. For tests. */
const char *mcp_http_session_id(const mcp_transport *t);

#endif
