/*
 * held_runs.c - release of held agent runs (see held_runs.h).
 *
 * Which runs may start is PostgreSQL's to say (agentgate_held_runs_ready,
 * sql/migrations/024_multitask.sql, reads every tenant's held runs as the
 * owner); this file only moves each one to "due now" in Redis and then
 * records that in PostgreSQL, in that order.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "held_runs.h"
#include "job_store.h"
#include "keys.h"
#include "log.h"

#define RELEASE_BATCH 200

static const char SQL_READY[] =
    "SELECT o_job_id, o_tenant_id, o_type FROM agentgate_held_runs_ready($1)";
static const char SQL_RELEASE[] = "SELECT agentgate_release_held_run($1::uuid)";

int held_runs_release(redis_link *rd, PGconn *conn)
{
    char limit[16];
    snprintf(limit, sizeof limit, "%d", RELEASE_BATCH);
    const char *vals[1] = { limit };
    PGresult *res = store_exec_as(conn, NULL, SQL_READY, 1, vals);
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        /* A lost connection is the link's to report (and its outage is
         * logged once there); this sweep only says it did not run. */
        if (store_conn_broken(conn))
            log_debug("held runs: scan skipped: %s", PQerrorMessage(conn));
        else
            log_warn("held runs: scan failed: %s", PQerrorMessage(conn));
        PQclear(res);
        return -1;
    }
    int released = 0, rows = PQntuples(res);
    char now[24];
    snprintf(now, sizeof now, "%lld", clock_wall_ms());
    for (int i = 0; i < rows; i++) {
        const char *id = PQgetvalue(res, i, 0), *tenant = PQgetvalue(res, i, 1);
        char key[KEY_MAX], member[KEY_MEMBER_MAX];
        /* Agent runs have priority 0: the normal band's member, which
         * names no band. */
        if (key_delayed_member(member, tenant, id) == NULL) {
            log_warn("held runs: job %s left held: tenant id %.80s cannot be keyed", id,
                     tenant);
            continue;
        }
        key_delayed(key, PQgetvalue(res, i, 2));
        /* Without NX: the score replaces the far-ahead one it was held with. */
        redis_argv cmd;
        redis_argv_of(&cmd, "ZADD", key, now, member, (const char *)NULL);
        if (redis_link_try(rd) == NULL || redis_pipeline(rd, &cmd, 1, NULL) < 0) {
            PQclear(res);
            return -1;
        }
        const char *rel[1] = { id };
        PGresult *done = store_exec_as(conn, NULL, SQL_RELEASE, 1, rel);
        bool ok = done != NULL && PQresultStatus(done) == PGRES_TUPLES_OK;
        if (!ok)
            log_warn("held runs: release of job %s not recorded: %s", id,
                     PQerrorMessage(conn));
        else if (strcmp(PQgetvalue(done, 0, 0), "t") == 0) {
            released++;
            log_info("agent run job %s released: no earlier run of its session is active",
                     id);
        }
        PQclear(done);
        if (!ok) {
            PQclear(res);
            return -1;
        }
    }
    PQclear(res);
    return released;
}
