/*
 * worker_registry.c - the worker's entry in the registry (see
 * worker_registry.h).
 *
 * Each beat writes the whole record rather than only what changed: after
 * a Redis restart, or once the TTL ran out while Redis was unreachable,
 * the next beat brings the entry back complete. The record's two HSETs,
 * its PEXPIRE and the ZADD go in one MULTI/EXEC, so a reader never sees a
 * hash without its TTL or half of a record.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "strbuf.h"
#include "worker_reg.h"
#include "worker_registry.h"

long long worker_registry_ttl_ms(const ag_config *cfg)
{
    long long ttl = cfg->worker_registry_ttl_ms;
    long long floor = 3LL * (cfg->heartbeat_ms > 0 ? cfg->heartbeat_ms : 2000);
    return ttl > floor ? ttl : floor;
}

void worker_registry_init(worker_registry *reg, const worker *w)
{
    memset(reg, 0, sizeof *reg);
    if (key_worker(reg->key, w->worker_id) == NULL) {
        log_warn("worker id \"%s\" is not 1 to %d visible ASCII characters: this worker "
                 "is left out of the worker registry (GET /v1/workers)", w->worker_id,
                 KEY_WORKER_ID_MAX);
        return;
    }
    if (gethostname(reg->host, sizeof reg->host) != 0)
        snprintf(reg->host, sizeof reg->host, "unknown");
    reg->host[sizeof reg->host - 1] = '\0';
    snprintf(reg->pid, sizeof reg->pid, "%ld", (long)getpid());
    clock_format_rfc3339(clock_wall_ms(), reg->started_at, sizeof reg->started_at);
    size_t len = 0;
    for (size_t i = 0; i < w->queues.count; i++) {
        int n = snprintf(reg->queues + len, sizeof reg->queues - len, "%s%s",
                         i ? "," : "", w->queues.names[i]);
        if (n < 0 || (size_t)n >= sizeof reg->queues - len) {
            reg->queues[len] = '\0';    /* whole names only */
            break;
        }
        len += (size_t)n;
    }
    snprintf(reg->concurrency, sizeof reg->concurrency, "%d", w->nthreads);
    snprintf(reg->ttl_ms, sizeof reg->ttl_ms, "%lld", worker_registry_ttl_ms(w->cfg));
    reg->enabled = true;
}

/* The jobs w runs now as the record's jobs list; *count gets their
 * number. Returns NULL when out of memory. */
static char *running_jobs(worker *w, int *count)
{
    running_job *jobs = calloc((size_t)w->nthreads, sizeof *jobs);
    if (jobs == NULL)
        return NULL;
    size_t n = worker_running(w, jobs, (size_t)w->nthreads);
    strbuf b = {0};
    for (size_t i = 0; i < n; i++)
        worker_reg_jobs_add(&b, jobs[i].tenant_id, jobs[i].job_id);
    free(jobs);
    *count = (int)n;
    return strbuf_take(&b, NULL);
}

int worker_registry_beat(const worker_registry *reg, redis_link *l, worker *w)
{
    if (!reg->enabled || redis_link_try(l) == NULL)
        return -1;
    int running = 0;
    char *jobs = running_jobs(w, &running);
    if (jobs == NULL) {
        log_warn("worker registry: out of memory; beat skipped");
        return -1;
    }
    long long now = clock_wall_ms();
    char beat_at[32], score[24], running_s[16];
    clock_format_rfc3339(now, beat_at, sizeof beat_at);
    snprintf(score, sizeof score, "%lld", now);
    snprintf(running_s, sizeof running_s, "%d", running);

    redis_argv cmds[6];
    redis_argv_of(&cmds[0], "MULTI", (const char *)NULL);
    redis_argv_of(&cmds[1], "HSET", reg->key, WREG_ID, w->worker_id, WREG_HOST, reg->host,
                  WREG_PID, reg->pid, WREG_STARTED_AT, reg->started_at,
                  WREG_QUEUES, reg->queues, (const char *)NULL);
    redis_argv_of(&cmds[2], "HSET", reg->key, WREG_HEARTBEAT_AT, beat_at,
                  WREG_CONCURRENCY, reg->concurrency, WREG_RUNNING, running_s,
                  WREG_JOBS, jobs, (const char *)NULL);
    redis_argv_of(&cmds[3], "PEXPIRE", reg->key, reg->ttl_ms, (const char *)NULL);
    redis_argv_of(&cmds[4], "ZADD", KEY_WORKERS, score, w->worker_id, (const char *)NULL);
    redis_argv_of(&cmds[5], "EXEC", (const char *)NULL);
    int rc = redis_pipeline(l, cmds, 6, NULL);
    free(jobs);
    return rc;
}

int worker_registry_remove(const worker_registry *reg, redis_link *l, const worker *w)
{
    if (!reg->enabled || redis_link_try(l) == NULL)
        return -1;
    redis_argv cmds[2];
    redis_argv_of(&cmds[0], "DEL", reg->key, (const char *)NULL);
    redis_argv_of(&cmds[1], "ZREM", KEY_WORKERS, w->worker_id, (const char *)NULL);
    return redis_pipeline(l, cmds, 2, NULL);
}
