/*
 * worker_registry.h - the worker's entry in the registry GET /v1/workers
 * reads: a worker:{id} hash (the record of common/worker_reg.h) with a
 * TTL, and the worker's id in the workers set scored by its last beat.
 * The supervisor renews both on every heartbeat, whether or not jobs are
 * running, so a worker that stops beating (killed, hung, cut off from
 * Redis) drops out once the TTL passes; a clean shutdown removes the
 * entry at once.
 *
 * Used by the supervisor thread only; Redis failures are logged by the
 * link and survived (the next beat writes the whole record again).
 */
#ifndef AG_WORKER_REGISTRY_H
#define AG_WORKER_REGISTRY_H

#include <stdbool.h>

#include "job_redis.h"
#include "keys.h"
#include "worker_state.h"

/* The parts of the record that do not change while the worker runs. */
typedef struct worker_registry {
    bool enabled;               /* false: the worker id cannot be a key (logged) */
    char key[KEY_MAX];          /* worker:{id} */
    char host[256];
    char pid[16];
    char started_at[32];        /* RFC 3339 */
    char queues[512];           /* comma list of job types */
    char concurrency[16];
    char ttl_ms[16];            /* the hash's PX */
} worker_registry;

/*
 * The TTL of a worker's entry in ms: AGENTGATE_WORKER_REGISTRY_TTL_MS, but
 * never under three heartbeats, so one late beat does not make a live
 * worker vanish.
 */
long long worker_registry_ttl_ms(const ag_config *cfg);

/* Fills reg for w, now. A worker id that breaks key_worker_id_valid
 * disables the registry (logged once); the worker runs all the same. */
void worker_registry_init(worker_registry *reg, const worker *w);

/*
 * Writes the whole record, with the jobs w runs now and the time, renews
 * its TTL and the id's score in the workers set: one MULTI/EXEC on l.
 * Returns 0, or -1 when Redis is down or refused it.
 */
int worker_registry_beat(const worker_registry *reg, redis_link *l, worker *w);

/* Removes the entry (DEL and ZREM) at a clean shutdown. Returns 0, or -1
 * when Redis is down (the entry then expires with its TTL). */
int worker_registry_remove(const worker_registry *reg, redis_link *l, const worker *w);

#endif
