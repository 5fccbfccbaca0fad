/*
 * mcp_discovery_job.h - the mcp.discover job that fills in an MCP
 * server's tools, as made before the statement that queues it.
 *
 * The gateway queues one when a server is registered, changed or
 * refreshed; a worker queues one when a server announces that its tools
 * changed (notifications/tools/list_changed). Both make it here, so the
 * job is the same whoever asks: a new id, the payload {"server": name}
 * checked against the type's schema, the type's default attempts and
 * timeout, and its job.queued event.
 */
#ifndef AG_MCP_DISCOVERY_JOB_H
#define AG_MCP_DISCOVERY_JOB_H

#include "uuid.h"

#define MCP_DISCOVER_TYPE "mcp.discover"

typedef struct mcp_discovery_job {
    char id[UUID_STR_LEN];
    char attempts[16];          /* max_attempts, as statement text */
    char timeout[16];           /* timeout_s, as statement text */
    char *payload;              /* JSON text, malloc'd */
    char *event;                /* event 1, malloc'd */
} mcp_discovery_job;

/*
 * Makes the discovery job of server (a checked server name) into j.
 * Returns 0, or -1 (logged: the type is not registered, the payload falls
 * outside its schema, or memory ran out) with nothing to free.
 */
int mcp_discovery_job_make(mcp_discovery_job *j, const char *server);

/* Frees what j holds; j may be zeroed or freed already. */
void mcp_discovery_job_free(mcp_discovery_job *j);

#endif
