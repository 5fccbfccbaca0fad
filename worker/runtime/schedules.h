/*
 * schedules.h - the workers' firing of schedules (POST /v1/schedules):
 * each due tick becomes one job, or agent run, exactly once however many
 * workers look.
 *
 * Every worker's maintenance thread calls schedules_fire_due about once a
 * second. The due schedules are read across tenants (a narrow SECURITY
 * DEFINER function of 021_schedules.sql); each is then fired under its
 * own tenant with schedule_fire, one statement that locks the schedule
 * (SKIP LOCKED: a schedule another worker is firing is left to it),
 * records the tick under the primary key (schedule_id, tick_at), inserts
 * the job and moves next_run_at past now - all or nothing. After the
 * commit the job's first event goes to its Redis ring and its id to its
 * queue; a worker killed in between leaves a queued job that
 * reconciliation enqueues. A schedule whose ticks were missed (no worker
 * ran) fires once, for the first missed tick, and next_run_at goes to the
 * first tick after now.
 */
#ifndef AG_WORKER_SCHEDULES_H
#define AG_WORKER_SCHEDULES_H

#include <libpq-fe.h>

#include "config.h"
#include "job_redis.h"

/*
 * Fires the schedules due at now_ms (epoch milliseconds) on c, up to a
 * batch of them, enqueueing each new job through rd (a failure there is
 * left to reconciliation). worker_id is recorded with each tick. Returns
 * the number of ticks fired, or -1 when PostgreSQL failed (logged; the
 * caller drops a broken connection, store_conn_broken).
 */
int schedules_fire_due(PGconn *c, redis_link *rd, const char *worker_id,
                       long long now_ms);

#endif
