/*
 * mcp_server.h - a tenant's registered MCP server (a row of mcp_servers)
 * as the worker reaches it: reading the row, checking it against what the
 * operator allows, and making an MCP client for it.
 *
 * The operator decides what can be reached (common/mcp_config.h): an HTTP
 * server only when its URL is within AGENTGATE_MCP_URL_ALLOWLIST, a stdio
 * server only when AGENTGATE_MCP_SERVERS_FILE names it and lets the
 * tenant use it. The gateway checked the same when the row was written;
 * the worker checks again every time it makes a client, so a row written
 * before the operator narrowed the settings reaches nothing. No command
 * ever comes from a row: a stdio row names one of the operator's servers.
 *
 * A row's headers (an Authorization bearer, an API key) are secret: they
 * go to the HTTP transport and nowhere else, never into a log line, an
 * error or an event.
 */
#ifndef AG_MCP_SERVER_H
#define AG_MCP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <libpq-fe.h>

#include "config.h"
#include "mcp_client.h"
#include "mcp_config.h"
#include "uuid.h"

/* 32 hex digits naming a server's connection settings (transport, URL,
 * operator server, headers): equal for equal settings, so a pooled client
 * made from older settings is never taken for the current ones. */
#define MCP_CONFIG_ID_LEN 32

/* The SQL expression of a row's config id, for a row alias s (the same
 * text in every statement that reads it, so the ids compare). */
#define MCP_CONFIG_ID_SQL(s) \
    "md5(concat_ws(E'\\n', " s ".transport, coalesce(" s ".url, ''), " \
    "coalesce(" s ".server, ''), " s ".headers::text))"

#define MCP_HEADERS_MAX        32      /* headers of one server */
#define MCP_HEADER_NAME_MAX    64      /* bytes of a header name */
#define MCP_HEADER_VALUE_MAX   4096    /* bytes of a header value */
#define MCP_RESOURCE_MAX       32      /* bytes of a server's resource */

/* A row of mcp_servers, what the worker needs of it. */
typedef struct mcp_server_row {
    char name[MCP_SERVER_NAME_MAX + 1];
    bool http;                          /* transport "http", else "stdio" */
    char *url;                          /* http: the endpoint; malloc'd */
    char *stdio_server;                 /* stdio: the operator's server name; malloc'd */
    char *headers_json;                 /* the headers object as JSON; secret; malloc'd */
    char resource[MCP_RESOURCE_MAX + 1];
    char status[16];                    /* pending | ready | error */
    char config_id[MCP_CONFIG_ID_LEN + 1];
    char refresh_job_id[UUID_STR_LEN];  /* "" when none */
} mcp_server_row;

/*
 * Reads the server called name of tenant (row-level security applies) on
 * pg into *out; with lock, FOR UPDATE (inside the caller's transaction).
 * Returns 0, 1 when there is no such row, or -1 with a one-line reason in
 * err (err_size bytes) when PostgreSQL fails or memory runs out. Free
 * with mcp_server_row_free (also after 1 or -1).
 */
int mcp_server_row_load(PGconn *pg, const char *tenant, const char *name, bool lock,
                        mcp_server_row *out, char *err, size_t err_size);

void mcp_server_row_free(mcp_server_row *r);

/*
 * Loads the operator's stdio servers (cfg->mcp_servers_file) for
 * mcp_server_client. Call once at start, before any job thread runs;
 * cfg is kept (borrowed) for the allow-list. Returns 0, or -1 with the
 * reason (naming the file and the member) in err.
 */
int mcp_servers_setup(const ag_config *cfg, char *err, size_t err_size);

/* Forgets what mcp_servers_setup loaded. */
void mcp_servers_teardown(void);

/* Why a client could not be made. */
typedef enum mcp_open_err {
    MCP_OPEN_OK = 0,
    MCP_OPEN_REFUSED,       /* the operator's settings do not allow the row */
    MCP_OPEN_BAD_ROW,       /* the row cannot be used (bad headers, no URL) */
    MCP_OPEN_NOMEM,
} mcp_open_err;

/*
 * Makes an MCP client for row on behalf of tenant, with opt (may be
 * NULL), after checking the operator allows it (cfg: the allow-list and
 * AGENTGATE_MCP_CONNECT_TIMEOUT_MS; the stdio servers of
 * mcp_servers_setup). Nothing is sent yet: the client connects on its
 * first request. Returns the client (free with mcp_client_free) or NULL
 * with *why set and a one-line reason in err; the reason never holds a
 * header value.
 */
mcp_client *mcp_server_client(const mcp_server_row *row, const char *tenant,
                               const ag_config *cfg, const mcp_client_options *opt,
                               mcp_open_err *why, char *err, size_t err_size);

/* ---- the pure parts, for tests ------------------------------------------ */

/*
 * Turns a headers object ({"Authorization": "Bearer x"}) into "Name:
 * value" strings, NULL-terminated, in *out (free with mcp_headers_free).
 * Names are 1..MCP_HEADER_NAME_MAX token characters, values strings of at
 * most MCP_HEADER_VALUE_MAX bytes without control characters, at most
 * MCP_HEADERS_MAX of them. NULL or "" is no headers. Returns 0, or -1
 * with a reason in err that names the header but never quotes a value.
 */
int mcp_headers_parse(const char *json, char ***out, char *err, size_t err_size);

void mcp_headers_free(char **headers);

/*
 * The environment a stdio server starts with: PATH, HOME and LANG from
 * base (the worker's environment, "KEY=value" strings, NULL-terminated;
 * PATH defaults to /usr/local/bin:/usr/bin:/bin), then the operator's
 * env of s, which wins over them. Returns a NULL-terminated array (free
 * with mcp_headers_free), or NULL when memory runs out.
 */
char **mcp_stdio_envp(const mcp_stdio_server *s, char *const *base);

#endif
