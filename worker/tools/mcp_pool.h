/*
 * mcp_pool.h - the worker process's MCP clients, kept between tool calls
 * so a job thread reuses a connected server instead of starting a child
 * process or an HTTP session for every call.
 *
 * A client is pooled under its key: the tenant, the server's name and the
 * id of the settings it was made from (mcp_server.h). A changed server
 * gets a new key, and idle clients made from its old settings are closed
 * the next time the pool sees the server. A client is leased to one job
 * thread at a time (mcp_client is single-threaded); two threads calling
 * the same server at once get two clients. Idle clients are closed after
 * MCP_POOL_IDLE_MS, and the least recently used idle one when the pool
 * holds more than its cap; clients closing happens outside the pool's
 * lock, since closing a stdio child or an HTTP session takes time.
 *
 * stdio clients are supervised by their transport: a child that died is
 * restarted (with backoff) by the next call. mcp_pool_shutdown closes
 * every client at worker exit (stdio: the child stopped; HTTP: the
 * session deleted).
 */
#ifndef AG_MCP_POOL_H
#define AG_MCP_POOL_H

#include <stdbool.h>
#include <stddef.h>

#include "mcp_client.h"
#include "mcp_config.h"

#define MCP_POOL_MAX_CLIENTS 32         /* idle and busy; busy ones are never closed */
#define MCP_POOL_IDLE_MS     600000     /* an idle client is closed after this */

typedef struct mcp_pool_key {
    char tenant[65];
    char server[MCP_SERVER_NAME_MAX + 1];
    char config_id[33];
} mcp_pool_key;

/*
 * Makes a client for key (not yet connected) with opt, which carries the
 * pool's log callback and must be passed on to mcp_client_new (the maker
 * adds its own timeouts to a copy). Sets config_id (33 bytes) to the id of
 * the settings the client was made from, which may be newer than key's.
 * Returns NULL with a reason in err, and *retryable telling whether a
 * later try may succeed.
 */
typedef mcp_client *(*mcp_pool_make_fn)(void *user, const mcp_pool_key *key,
                                        const mcp_client_options *opt, char *config_id,
                                        bool *retryable, char *err, size_t err_size);

/* A client leased to one thread. */
typedef struct mcp_lease mcp_lease;

/*
 * Leases an idle client for key, or makes one with make(user, ...)
 * (outside the pool's lock). Returns 0 with *out set, or -1 with a reason
 * in err (and *retryable) when make failed or the pool is shut down.
 */
int mcp_pool_acquire(const mcp_pool_key *key, mcp_pool_make_fn make, void *user,
                     mcp_lease **out, bool *retryable, char *err, size_t err_size);

/* The leased client; valid until mcp_pool_release. */
mcp_client *mcp_lease_client(const mcp_lease *l);

/* Where the client's server log messages (notifications/message) go while
 * the lease lasts; NULL: log_debug. Cleared by mcp_pool_release. */
void mcp_lease_set_log(mcp_lease *l, mcp_log_fn fn, void *user);

/* Gives the client back; discard closes it instead (a server that hung or
 * broke the protocol). NULL is fine. */
void mcp_pool_release(mcp_lease *l, bool discard);

/* Closes every idle client and refuses new leases; busy ones are closed
 * when released. Call at worker exit, after the job threads stopped. */
void mcp_pool_shutdown(void);

/* Lets mcp_pool_acquire lease again after mcp_pool_shutdown (tests). */
void mcp_pool_reopen(void);

/* Sets the cap and the idle time (0: the defaults above); for tests. */
void mcp_pool_set_limits(size_t max_clients, long long idle_ms);

/* Clients in the pool, idle and busy (for tests and logs). */
size_t mcp_pool_size(void);

#endif
