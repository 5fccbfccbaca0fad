/*
 * job_mirror.h - copies a job's newest event to its Redis ring, first
 * re-sending the events PostgreSQL has that the ring missed (written
 * while Redis was away or flushed, or by a worker that died before its
 * Redis write), so the ring never has a hole in the middle.
 */
#ifndef AG_WORKER_JOB_MIRROR_H
#define AG_WORKER_JOB_MIRROR_H

#include <libpq-fe.h>

#include "job_redis.h"

/* ring_seq value asking job_mirror to read the ring's last id from Redis. */
#define JOB_MIRROR_ASK_REDIS (-1)

/*
 * Appends event seq (body) of job id (a checked UUID) to its ring with
 * the events after ring_seq that come before it (read from PostgreSQL on
 * pg, at most the ring's size of the newest; pg may be NULL to skip
 * them), then writes *st (may be NULL), as one pipeline on rd, which must
 * be connected. ring_seq is the last id the ring is known to hold, or
 * JOB_MIRROR_ASK_REDIS. Returns 0, or -1 when Redis did not take it
 * (logged as a warning: PostgreSQL has the event).
 */
int job_mirror(redis_link *rd, PGconn *pg, const char *id, const char *tenant_id,
               long long ring_seq, long long seq, const char *body,
               const job_redis_state *st);

/*
 * For the reaper of a job whose worker died: the events the dead attempt
 * had already sent to the Redis ring but not yet stored (its event buffer,
 * worker/runtime/event_buffer.h) are copied from the ring into PostgreSQL, fenced
 * on attempt, so the reaper's own event follows them instead of reusing
 * their ids. pg_last is the job's last_event_id in PostgreSQL. Only the
 * ring's run of events pg_last+1, pg_last+2, ... is taken. Runs on pg in
 * whatever transaction the caller has open. Returns the job's last event
 * id afterwards: pg_last when there was nothing to copy or Redis or
 * PostgreSQL failed (logged; the reaper then goes on as before).
 */
long long job_mirror_recover_tail(redis_link *rd, PGconn *pg, const char *id,
                                  const char *tenant_id, int attempt, long long pg_last);

#endif
