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

#include <hiredis/hiredis.h>

#include "config.h"
#include "events.h"
#include "job_store.h"
#include "jobq.h"
#include "log.h"
#include "mcp_discovery_job.h"

/* The job's event and queue place in Redis; a failure is left to
 * reconciliation. */
static void publish(job_ctx *ctx, const mcp_discovery_job *j, const char *tenant)
{
    const ag_config *cfg = job_config(ctx);
    redisContext *rc = job_redis_conn(ctx);
    jobq_keys k;
    if (!rc || jobq_keys_of(&k, MCP_DISCOVER_TYPE, tenant) != 0)
        return;
    redis_argv append, enqueue;
    event_keys keys;
    event_append_command(&append, false, j->id, 1, j->event, strlen(j->event), "queued",
                         cfg->event_ring_size, cfg->event_ttl_s, &keys);
    jobq_enqueue_command(&enqueue, false, &k, j->id, JOBQ_BAND_NORMAL, JOBQ_BACK, NULL);
    redis_argv *cmds[2] = {&append, &enqueue};
    for (int i = 0; i < 2; i++) {
        redisReply *r = redisCommandArgv(rc, cmds[i]->argc, cmds[i]->argv, cmds[i]->argvlen);
        bool failed = r == NULL || r->type == REDIS_REPLY_ERROR;
        if (r == NULL)
            job_redis_conn_failed(ctx);
        if (failed) {
            log_warn("mcp refresh job %s: Redis refused it (%s); reconciliation queues it",
                     j->id, r && r->str ? r->str : "connection lost");
            freeReplyObject(r);
            return;
        }
        freeReplyObject(r);
    }
}

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
        publish(ctx, &j, job->tenant_id);
        log_info("mcp server %s of tenant %s announced new tools: discovery queued as job %s",
                 server, job->tenant_id, j.id);
        rc = 1;
    }
    PQclear(res);
    mcp_discovery_job_free(&j);
    return rc;
}
