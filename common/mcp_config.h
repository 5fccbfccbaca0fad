/*
 * mcp_config.h - what the operator allows of MCP servers, read by the
 * gateway (to refuse a registration at once) and by the worker (to start
 * or reach a server, checking again).
 *
 * Two settings hold it:
 *   AGENTGATE_MCP_URL_ALLOWLIST   the HTTP servers tenants may register: a
 *                                 comma list of URL prefixes
 *                                 ("https://mcp.example.com/",
 *                                 "http://127.0.0.1:18600/mcp"); empty (the
 *                                 default) allows none.
 *   AGENTGATE_MCP_SERVERS_FILE    the stdio servers: a JSON file the
 *                                 operator writes, the only place a command
 *                                 comes from. Tenants name a server of it,
 *                                 never a command.
 *
 * The servers file:
 *   {"servers": [
 *     {"name": "everything",                 [a-z0-9][a-z0-9_-]{0,47}
 *      "command": "/usr/bin/node",           an absolute path
 *      "args": ["/opt/mcp/everything/dist/index.js", "stdio"],
 *      "env": {"KEY": "value"},              optional; the child gets only
 *                                            PATH, HOME, LANG and these
 *      "cwd": "/var/lib/agentgate",          optional, absolute
 *      "tenants": ["acme", "*"]}             who may use it; "*" is everyone
 *   ]}
 */
#ifndef AG_MCP_CONFIG_H
#define AG_MCP_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#define MCP_SERVER_NAME_MAX   48      /* bytes of a server name */
#define MCP_STDIO_ARGS_MAX    32
#define MCP_STDIO_ENV_MAX     32
#define MCP_STDIO_TENANTS_MAX 256
#define MCP_SERVERS_MAX       64      /* stdio servers in one file */
#define MCP_SERVERS_FILE_MAX  (256 * 1024)   /* bytes of the file */

typedef struct mcp_stdio_server {
    char name[MCP_SERVER_NAME_MAX + 1];
    char *command;                      /* absolute path */
    char *args[MCP_STDIO_ARGS_MAX + 1]; /* NULL-terminated, without argv[0] */
    size_t nargs;
    char *env[MCP_STDIO_ENV_MAX + 1];   /* "KEY=value", NULL-terminated */
    size_t nenv;
    char *cwd;                          /* NULL: the worker's */
    char *tenants[MCP_STDIO_TENANTS_MAX + 1];
    size_t ntenants;
} mcp_stdio_server;

typedef struct mcp_servers_file {
    mcp_stdio_server *servers;
    size_t count;
} mcp_servers_file;

/*
 * Reads and checks the servers file at path (every member bounded and of
 * the right type, names unique, commands absolute). An empty path gives an
 * empty list. Returns 0, or -1 with a one-line reason (naming the file and
 * the member) in err (err_size bytes); *out is then empty. Free with
 * mcp_servers_file_free.
 */
int mcp_servers_file_load(const char *path, mcp_servers_file *out, char *err,
                          size_t err_size);

void mcp_servers_file_free(mcp_servers_file *f);

/* The server called name, or NULL. Borrowed from f. */
const mcp_stdio_server *mcp_servers_file_find(const mcp_servers_file *f, const char *name);

/* True when tenant_id may use s ("*" or its id in s->tenants). */
bool mcp_stdio_server_allows(const mcp_stdio_server *s, const char *tenant_id);

/*
 * True when url is within one of the comma-separated prefixes of
 * allowlist. Both are parsed, not compared as text: the scheme (http or
 * https) and host must be equal (host without regard to case), the port
 * equal (the scheme's default when absent), and the path must start with
 * the prefix's path at a segment boundary ("/mcp" allows "/mcp" and
 * "/mcp/x", not "/mcpx"). A url with user information, a fragment, a
 * backslash, control characters, percent-encoded dots or slashes in its
 * path, or ".." segments is never allowed. An empty allowlist allows
 * nothing.
 */
bool mcp_url_allowed(const char *allowlist, const char *url);

/* True when name is a well-formed server name: [a-z0-9][a-z0-9_-]{0,47}. */
bool mcp_server_name_valid(const char *name);

#endif
