/*
 * retention.c - a round of retention: batches of deletes through
 * agentgate_retention_jobs and agentgate_retention_audit, under a session
 * advisory lock so one worker at a time runs them (see retention.h).
 *
 * Each call is its own short transaction (autocommit); the lock is a
 * session lock, so it outlives them and is released at the end of the
 * round, or by PostgreSQL when the connection breaks. A round that fails
 * part way keeps what it committed; the next round carries on from there,
 * since the functions always take the oldest rows still past retention.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "job_store.h"
#include "keys.h"
#include "log.h"
#include "metrics.h"
#include "retention.h"
#include "uuid.h"

/* The advisory lock of retention: 0x61677265 ('agre'), 1. Its own key
 * space beside the running caps' ('agrt'). */
#define RETENTION_LOCK_SQL   "SELECT pg_try_advisory_lock(1634169445, 1)"
#define RETENTION_UNLOCK_SQL "SELECT pg_advisory_unlock(1634169445, 1)"

/* How long one round deletes before it hands the maintenance thread back
 * to its other work (promotion, the reaper); the next round follows
 * RETENTION_AGAIN_MS later (retention.h). */
#define RETENTION_SLICE_MS 500

/* Ids per Redis pipeline of the clean-up. */
#define CLEANUP_CHUNK 128
/* Commands per id at most: one DEL of its keys, one LREM from the
 * dead-letter log (failed jobs only). */
#define CLEANUP_CMDS  2

static metric *deleted_rows;
static metric_series *series_jobs, *series_events, *series_runs, *series_steps,
                     *series_audit;

void retention_metrics_init(void)
{
    deleted_rows = metric_counter("agentgate_retention_deleted_rows_total",
                                  "Rows deleted because they were past retention, by table.",
                                  "table", (const char *)NULL);
    series_jobs = metric_with(deleted_rows, "jobs");
    series_events = metric_with(deleted_rows, "job_events");
    series_runs = metric_with(deleted_rows, "agent_runs");
    series_steps = metric_with(deleted_rows, "steps");
    series_audit = metric_with(deleted_rows, "audit_logs");
}

/* Runs sql (no parameters) expecting one boolean; 1 true, 0 false, -1
 * failed. */
static int query_bool(PGconn *c, const char *sql)
{
    PGresult *res = store_exec_as(c, NULL, sql, 0, NULL);
    int rc = -1;
    if (res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
        rc = PQgetvalue(res, 0, 0)[0] == 't';
    else
        log_warn("retention: %s: %s", sql, res ? PQresultErrorMessage(res) : "not sent");
    PQclear(res);
    return rc;
}

/* The commands that drop what Redis holds of each deleted job of ids[0..n)
 * (dead[i]: it had failed), into cmds (*n_cmds of them) with their key
 * names in keys (4 per id). A failed job's id may be in jobs:dead; that
 * list is searched from its tail, where the oldest ids are. */
static void cleanup_commands(char (*ids)[UUID_STR_LEN], const bool *dead, int n,
                             redis_argv *cmds, int *n_cmds, char (*keys)[KEY_MAX])
{
    *n_cmds = 0;
    for (int i = 0; i < n; i++) {
        char (*k)[KEY_MAX] = &keys[i * 4];
        redis_argv_of(&cmds[(*n_cmds)++], "DEL", key_state(k[0], ids[i]),
                      key_events(k[1], ids[i]), key_lease(k[2], ids[i]),
                      key_cancel(k[3], ids[i]), (const char *)NULL);
        if (dead[i])
            redis_argv_of(&cmds[(*n_cmds)++], "LREM", KEY_DEAD_LETTER, "-1", ids[i],
                          (const char *)NULL);
    }
}

/* True when id (36 bytes) is one of the comma-separated ids of csv. */
static bool csv_has(const char *csv, const char *id)
{
    for (const char *p = strstr(csv, id); p != NULL; p = strstr(p + 1, id))
        if ((p == csv || p[-1] == ',') && (p[36] == ',' || p[36] == '\0'))
            return true;
    return false;
}

/* Drops what Redis still holds of the deleted jobs listed in csv ("id,id";
 * those in failed_csv had failed), CLEANUP_CHUNK ids per pipeline. Redis
 * down or failing: logged once per batch; the keys expire by their TTLs
 * and jobs:dead is capped. */
static void redis_cleanup(redis_link *rd, const char *csv, const char *failed_csv)
{
    if (csv[0] == '\0')
        return;
    if (redis_link_try(rd) == NULL) {
        log_warn("retention: Redis unreachable; what it holds of the jobs just deleted "
                 "expires with its TTL");
        return;
    }
    char (*ids)[UUID_STR_LEN] = malloc(CLEANUP_CHUNK * sizeof *ids);
    bool *dead = malloc(CLEANUP_CHUNK * sizeof *dead);
    char (*keys)[KEY_MAX] = malloc(CLEANUP_CHUNK * 4 * sizeof *keys);
    redis_argv *cmds = malloc(CLEANUP_CHUNK * CLEANUP_CMDS * sizeof *cmds);
    const char *p = csv;
    while (ids && dead && keys && cmds && *p != '\0') {
        int n = 0, n_cmds;
        while (*p != '\0' && n < CLEANUP_CHUNK) {
            const char *end = strchr(p, ',');
            size_t len = end ? (size_t)(end - p) : strlen(p);
            /* Only a checked UUID names a key (keys.h). */
            char id[UUID_STR_LEN];
            if (len == UUID_STR_LEN - 1) {
                memcpy(id, p, len);
                id[len] = '\0';
                if (uuid_parse(id, ids[n])) {
                    dead[n] = csv_has(failed_csv, ids[n]);
                    n++;
                }
            }
            p += len + (end != NULL);
        }
        if (n == 0)
            continue;
        cleanup_commands(ids, dead, n, cmds, &n_cmds, keys);
        if (redis_pipeline(rd, cmds, n_cmds, NULL) < 0) {
            log_warn("retention: Redis clean-up of deleted jobs failed; their keys expire "
                     "with their TTL");
            break;
        }
    }
    free(cmds);
    free(keys);
    free(dead);
    free(ids);
}

static long long field_ll(const PGresult *res, int col)
{
    return strtoll(PQgetvalue(res, 0, col), NULL, 10);
}

/* One batch of jobs. Returns the jobs deleted, or -1. */
static long long jobs_batch(PGconn *c, redis_link *rd, const ag_config *cfg,
                            retention_counts *out)
{
    char days[16], batch[16];
    snprintf(days, sizeof days, "%d", cfg->retention_days);
    snprintf(batch, sizeof batch, "%d", cfg->retention_batch);
    const char *vals[2] = { days, batch };
    PGresult *res = store_exec_as(c, NULL,
        "SELECT o_jobs, o_job_events, o_agent_runs, o_steps, array_to_string(o_ids, ','),"
        "       array_to_string(o_failed_ids, ',')"
        "  FROM agentgate_retention_jobs($1::integer, $2::integer)", 2, vals);
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        log_warn("retention of jobs failed: %s",
                 res ? PQresultErrorMessage(res) : "not sent");
        PQclear(res);
        return -1;
    }
    long long jobs = field_ll(res, 0), events = field_ll(res, 1);
    long long runs = field_ll(res, 2), steps = field_ll(res, 3);
    out->jobs += jobs;
    out->job_events += events;
    out->agent_runs += runs;
    out->steps += steps;
    series_add(series_jobs, (double)jobs);
    series_add(series_events, (double)events);
    series_add(series_runs, (double)runs);
    series_add(series_steps, (double)steps);
    redis_cleanup(rd, PQgetvalue(res, 0, 4), PQgetvalue(res, 0, 5));
    PQclear(res);
    return jobs;
}

/* One batch of audit rows. Returns the rows deleted, or -1. */
static long long audit_batch(PGconn *c, const ag_config *cfg, retention_counts *out)
{
    char days[16], batch[16];
    snprintf(days, sizeof days, "%d", cfg->audit_retention_days);
    snprintf(batch, sizeof batch, "%d", cfg->retention_batch);
    const char *vals[2] = { days, batch };
    PGresult *res = store_exec_as(c, NULL,
        "SELECT agentgate_retention_audit($1::integer, $2::integer)", 2, vals);
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        log_warn("retention of audit rows failed: %s",
                 res ? PQresultErrorMessage(res) : "not sent");
        PQclear(res);
        return -1;
    }
    long long n = field_ll(res, 0);
    out->audit_logs += n;
    series_add(series_audit, (double)n);
    PQclear(res);
    return n;
}

int retention_round(PGconn *c, redis_link *rd, const ag_config *cfg, const atomic_int *stop,
                    retention_counts *out)
{
    memset(out, 0, sizeof *out);
    int locked = query_bool(c, RETENTION_LOCK_SQL);
    if (locked == 0)
        log_debug("retention: another worker holds the retention lock; round skipped");
    if (locked <= 0)
        return locked;

    long long deadline = clock_mono_ms() + RETENTION_SLICE_MS;
    bool more = false, failed = false;
    long long n;
    do {
        n = jobs_batch(c, rd, cfg, out);
        more = n == cfg->retention_batch;
    } while (more && clock_mono_ms() < deadline && !atomic_load(stop));
    failed = n < 0;
    if (!failed && !more) {
        do {
            n = audit_batch(c, cfg, out);
            more = n == cfg->retention_batch;
        } while (more && clock_mono_ms() < deadline && !atomic_load(stop));
        failed = n < 0;
    }
    /* A broken connection has released the lock with itself. */
    if (!store_conn_broken(c))
        query_bool(c, RETENTION_UNLOCK_SQL);

    if (out->jobs + out->audit_logs > 0)
        log_info("retention: deleted %lld jobs (%lld events, %lld agent runs, %lld steps) "
                 "and %lld audit rows past retention%s", out->jobs, out->job_events,
                 out->agent_runs, out->steps, out->audit_logs, more ? "; more to do" : "");
    return failed ? -1 : more ? 2 : 1;
}
