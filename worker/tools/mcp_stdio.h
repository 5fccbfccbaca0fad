/*
 * mcp_stdio.h - the MCP stdio transport: the server is a child process,
 * messages are lines of JSON on its stdin and stdout, and what it writes
 * to stderr goes to the log line by line (log_warn, with the server name).
 *
 * The command comes from operator configuration only, never from a
 * tenant: it is run with execve, without a shell, in its own process
 * group. Every descriptor is opened O_CLOEXEC, writes never raise
 * SIGPIPE, and every child is waited for (no zombies).
 *
 * When the child dies, the call in flight fails with MCP_ERR_TRANSPORT
 * and the next connect starts a new one, after a delay that doubles with
 * each quick death in a row (a child that ran for 30 s resets the count).
 * Shutdown closes the child's stdin, waits, then sends SIGTERM, then
 * SIGKILL, each after a grace period.
 */
#ifndef AG_MCP_STDIO_H
#define AG_MCP_STDIO_H

#include <stddef.h>
#include <sys/types.h>

#include "mcp_transport.h"

typedef struct mcp_stdio_config {
    const char *name;               /* for log lines; default "stdio" */
    char *const *argv;              /* NULL-terminated; argv[0] is looked up
                                     * in PATH when it has no '/' */
    char *const *envp;              /* NULL-terminated, or NULL to inherit */
    const char *cwd;                /* or NULL to inherit */
    size_t max_message_bytes;       /* 0: MCP_MSG_MAX_DEFAULT */
    long long shutdown_grace_ms;    /* each shutdown step; 0: 2000 */
    long long restart_backoff_ms;   /* first restart delay; 0: 250 */
    long long restart_backoff_max_ms;  /* 0: 10000 */
} mcp_stdio_config;

/*
 * Makes a stdio transport (copying cfg); the child is started by the
 * first connect. Returns NULL with a reason in err (err_size bytes) when
 * cfg is unusable (no argv) or memory runs out. The caller hands it to
 * mcp_client_new or frees it with t->ops->close(t).
 */
mcp_transport *mcp_stdio_open(const mcp_stdio_config *cfg, char *err, size_t err_size);

/* The running child's pid, or -1 when none runs. For tests and logs. */
pid_t mcp_stdio_pid(const mcp_transport *t);

#endif
