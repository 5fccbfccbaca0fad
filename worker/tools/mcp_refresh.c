/*
 * mcp_refresh.c - a worker queues a discovery of an MCP server whose
 * tools changed (see mcp_refresh.h).
 *
 * Three steps, each the same as the gateway's: make the job
 * (mcp_discovery_job_make); insert it with
 * mcp_server_refresh, which also points the server's row at it; then,
 * once committed, append the event to the job's Redis ring and put the id
 * at the back of the tenant's queue. The last step is the only one that
 * may fail without harm: reconciliation finds a queued job no Redis queue
 * holds and queues it.
 */
#include "mcp_refresh.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#include "job_store.h"
#include "jobq.h"
#include "log.h"
#include "mcp_discovery_job.h"

int mcp_refresh_queue(job_ctx *ctx, const char *server)
{
    static const char sql[] =
        "SELECT queued FROM mcp_server_refresh($1, $2, $3::uuid, $4::jsonb,"
        " $5::int, $6::int, $7, $8, $9, $10)";
    const job_info *job = job_get_info(ctx);
    PGconn *pg = job_db(ctx);
    mcp_discovery_job j;
    if (!pg || mcp_discovery_job_make(&j, server) != 0)
        return -1;
    const char *params[10] = {
        job->tenant_id, server, j.id, j.payload, j.attempts, j.timeout, job->created_by,
        job->request_id, job->traceparent, j.event,
    };
    PGresult *res = store_exec_as(pg, job->tenant_id, sql, 10, params);
    int rc;
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        log_error("mcp refresh of %s/%s: %s", job->tenant_id, server, PQerrorMessage(pg));
        rc = -1;
    } else if (PQntuples(res) == 0 || strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
        rc = 0;
    } else {
        job_publish_queued(ctx, j.id, MCP_DISCOVER_TYPE, JOBQ_BAND_NORMAL, j.event);
        log_info("mcp server %s of tenant %s announced new tools: discovery queued as job %s",
                 server, job->tenant_id, j.id);
        rc = 1;
    }
    PQclear(res);
    mcp_discovery_job_free(&j);
    return rc;
}
