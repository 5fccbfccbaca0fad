/*
 * mcp_refresh.h - queues a new discovery of a tenant's MCP server from a
 * worker, when a server's client heard notifications/tools/list_changed.
 *
 * The discovery is an mcp.discover job like the one POST
 * /v1/mcp-servers/{name}/refresh queues, through the same statement
 * (mcp_server_refresh in sql/migrations/015_mcp_refresh.sql): none is
 * added while the server's latest one is still queued. It runs on any
 * worker, later, so the call that heard the notification is not held up;
 * the next runs see the tools the server lists now.
 */
#ifndef AG_MCP_REFRESH_H
#define AG_MCP_REFRESH_H

#include "job_ctx.h"

/*
 * Queues a discovery of server (a checked server name) for the tenant of
 * the job ctx runs, in the job's database connection; created_by is the
 * job's principal. After the commit the job goes to its Redis queue; if
 * Redis is unreachable, reconciliation queues it later. Returns 1 when a
 * discovery was queued, 0 when one was already waiting or the server is
 * gone, -1 on failure (logged; the caller carries on, the tools it knows
 * stay as they were).
 */
int mcp_refresh_queue(job_ctx *ctx, const char *server);

#endif
