/*
 * retention.h - deleting what is past retention: finished jobs older than
 * their tenant's retention (settings.retention_days, else
 * AGENTGATE_RETENTION_DAYS) with their events, agent runs and steps, and
 * audit rows older than AGENTGATE_AUDIT_RETENTION_DAYS.
 *
 * The deleting is done by PostgreSQL functions the services' role may call
 * (sql/migrations/016_retention.sql), a batch of at most
 * AGENTGATE_RETENTION_BATCH rows per call and per transaction, so no lock
 * is held for long. The maintenance thread (maintenance.h) runs a round
 * every AGENTGATE_RETENTION_INTERVAL_MS (0: never); a round runs in one worker at a
 * time, under a PostgreSQL session advisory lock, and calls the functions
 * again while batches come back full. What Redis still holds of a deleted
 * job (its state hash, event ring, lease, cancellation flag, its id in the
 * dead-letter log) is dropped after each batch. Rows deleted are counted in
 * agentgate_retention_deleted_rows_total{table}.
 */
#ifndef AG_WORKER_RETENTION_H
#define AG_WORKER_RETENTION_H

#include <stdatomic.h>
#include <libpq-fe.h>

#include "config.h"
#include "job_redis.h"

/* Rows one round deleted, by table. */
typedef struct retention_counts {
    long long jobs, job_events, agent_runs, steps, audit_logs;
} retention_counts;

/* Registers the deleted-rows counter family. Call once at start, before
 * any round; calling again is harmless. */
void retention_metrics_init(void);

/* How soon the next round follows one that stopped with more to do. */
#define RETENTION_AGAIN_MS 1000

/*
 * Runs one round on c (a connection of no tenant, outside a transaction)
 * with cfg's retentions and batch size: jobs first, then audit rows, batch
 * after batch while batches come back full, for about half a second at
 * most (the maintenance thread has other work) and while *stop is 0. rd
 * (may be down) gets the Redis clean-up of each batch; a Redis failure is
 * logged and left to the keys' TTLs. *out gets what was deleted. Returns
 * 1 when the round finished, 2 when it stopped with more to delete (run
 * the next one RETENTION_AGAIN_MS later), 0 when another worker holds the
 * retention lock (nothing done), -1 when a statement failed (what was
 * committed before stays deleted and counted; the caller checks
 * store_conn_broken).
 */
int retention_round(PGconn *c, redis_link *rd, const ag_config *cfg, const atomic_int *stop,
                    retention_counts *out);

#endif
