/*
 * schedules.c - firing due schedules (see schedules.h).
 *
 * The next tick is computed here, in C (common/cron.h), from the
 * schedule's cron and time zone and this worker's clock, and handed to
 * schedule_fire with the tick being fired exactly as PostgreSQL printed
 * it: the statement does nothing unless the schedule still has that
 * next_run_at, cron and time zone, so a PATCH or another worker's firing
 * in between turns this one into a no-op instead of a second job.
 */
#include "schedules.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cron.h"
#include "events.h"
#include "job_store.h"
#include "jobq.h"
#include "log.h"
#include "uuid.h"

#define DUE_BATCH 100           /* schedules looked at per round */

static const char SQL_DUE[] =
    "SELECT o_id, o_tenant_id, o_cron, o_timezone, o_next_run_at, o_job_type, o_priority"
    " FROM agentgate_due_schedules(to_timestamp($1::bigint / 1000.0), $2::int)";

static const char SQL_FIRE[] =
    "SELECT o_fired, o_job_id, o_run_id, o_job_type FROM schedule_fire($1::uuid,"
    " $2::timestamptz, $3, $4, to_timestamp($5::bigint), $6::uuid, $7::uuid, $8, $9)";

/* Fires row r of the due listing. Returns 1 fired, 0 not (changed, taken
 * by another worker, or its next tick cannot be computed), -1 when
 * PostgreSQL failed. */
static int fire_one(PGconn *c, redis_link *rd, const char *worker_id,
                    long long now_ms, PGresult *due, int r)
{
    const char *id = PQgetvalue(due, r, 0), *tenant = PQgetvalue(due, r, 1);
    const char *cron = PQgetvalue(due, r, 2), *tz = PQgetvalue(due, r, 3);
    const char *tick = PQgetvalue(due, r, 4), *type = PQgetvalue(due, r, 5);
    long long priority = strtoll(PQgetvalue(due, r, 6), NULL, 10);
    char err[200];
    int64_t next = 0;
    int rc = cron_next_text(cron, tz, now_ms / 1000, &next, err, sizeof err);
    if (rc != CRON_OK) {
        log_warn("schedule %s of tenant %.80s: no next tick for \"%s\" in %s (%s); not fired",
                 id, tenant, cron, tz, rc == CRON_BAD_EXPR ? err
                 : rc == CRON_BAD_ZONE ? "unknown time zone" : "never fires");
        return 0;
    }
    char job_id[UUID_STR_LEN], run_id[UUID_STR_LEN], next_s[24];
    uuid_v7(job_id);
    uuid_v7(run_id);
    snprintf(next_s, sizeof next_s, "%lld", (long long)next);
    char *event = job_queued_event(job_id, type, priority);
    if (event == NULL) {
        log_error("schedule %s: out of memory", id);
        return 0;
    }
    const char *params[9] = { id, tick, cron, tz, next_s, job_id, run_id, event, worker_id };
    PGresult *res = store_exec_as(c, tenant, SQL_FIRE, 9, params);
    int fired = 0;
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        log_error("schedule %s of tenant %.80s: firing failed: %s", id, tenant,
                  PQerrorMessage(c));
        fired = -1;
    } else if (PQntuples(res) == 1 && PQgetvalue(res, 0, 0)[0] == 't') {
        redis_publish_queued(rd, job_id, type, tenant, jobq_band_of(priority), event);
        if (PQgetisnull(res, 0, 2))
            log_info("schedule %s of tenant %.80s: tick %s fired as job %s", id, tenant, tick,
                     job_id);
        else
            log_info("schedule %s of tenant %.80s: tick %s fired as agent run %s (job %s)", id,
                     tenant, tick, run_id, job_id);
        fired = 1;
    }
    PQclear(res);
    free(event);
    return fired;
}

int schedules_fire_due(PGconn *c, redis_link *rd, const char *worker_id,
                       long long now_ms)
{
    char now[24], batch[16];
    snprintf(now, sizeof now, "%lld", now_ms);
    snprintf(batch, sizeof batch, "%d", DUE_BATCH);
    const char *params[2] = { now, batch };
    PGresult *due = store_exec_as(c, NULL, SQL_DUE, 2, params);
    if (PQresultStatus(due) != PGRES_TUPLES_OK) {
        log_error("schedules: reading the due ones failed: %s", PQerrorMessage(c));
        PQclear(due);
        return -1;
    }
    int fired = 0;
    for (int r = 0; r < PQntuples(due); r++) {
        int rc = fire_one(c, rd, worker_id, now_ms, due, r);
        if (rc < 0) {
            fired = -1;
            break;
        }
        fired += rc;
    }
    PQclear(due);
    return fired;
}
