/*
 * mcp_transport.h - the one small interface the MCP client talks through,
 * whatever carries the messages: a child process's pipes (mcp_stdio) or
 * Streamable HTTP (mcp_http).
 *
 * A transport moves whole JSON-RPC messages as text; it does not match
 * responses to requests (the client does that by id) and it never blocks
 * past the deadline it is given. Deadlines are absolute times on the
 * monotonic clock (clock_mono_ms()), in milliseconds.
 *
 * Like the client on top of it, a transport is used by one thread at a
 * time.
 */
#ifndef AG_MCP_TRANSPORT_H
#define AG_MCP_TRANSPORT_H

#include <stddef.h>

#include "mcp_jsonrpc.h"

typedef struct mcp_transport mcp_transport;

typedef struct mcp_transport_ops {
    /*
     * Makes sure there is something to talk to: starts the server process
     * if it is not running (waiting out a restart backoff within the
     * deadline). Returns 1 when the connection is new and the client must
     * initialize before anything else, 0 when the current one goes on, or
     * a negative MCP_ERR_* with a reason in err.
     */
    int (*connect)(mcp_transport *t, long long deadline_ms, char *err, size_t err_size);

    /*
     * Sends one message (len bytes of JSON text, no newline in it).
     * Returns MCP_OK or a negative MCP_ERR_* with a reason in err;
     * MCP_ERR_SESSION_LOST means the server forgot the session and the
     * client must initialize again.
     */
    int (*send)(mcp_transport *t, const char *msg, size_t len, long long deadline_ms,
                char *err, size_t err_size);

    /*
     * Waits until deadline_ms for the next message from the server.
     * Returns 1 with *msg (malloc'd, NUL-terminated, freed by the caller)
     * and *len set, 0 when the deadline passed first, or a negative
     * MCP_ERR_* with a reason in err when the connection broke.
     */
    int (*receive)(mcp_transport *t, char **msg, size_t *len, long long deadline_ms,
                   char *err, size_t err_size);

    /* Tells the transport the protocol version initialize agreed on
     * (HTTP sends it as MCP-Protocol-Version on every later request). */
    void (*set_protocol_version)(mcp_transport *t, const char *version);

    /* Drops the connection or session, so the next connect starts anew
     * (stdio: stops the server process; HTTP: forgets the session). */
    void (*reset)(mcp_transport *t);

    /* Shuts down cleanly (stdio: close stdin, wait, SIGTERM, SIGKILL;
     * HTTP: DELETE the session) and frees the transport. */
    void (*close)(mcp_transport *t);
} mcp_transport_ops;

/* Every transport struct starts with this. */
struct mcp_transport {
    const mcp_transport_ops *ops;
    char name[64];              /* the server's name, for log lines */
};

#endif
