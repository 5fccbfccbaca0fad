/*
 * held_runs.h - release of agent runs held behind the earlier runs of
 * their session (multitask_strategy enqueue, interrupt, rollback).
 *
 * A held run's job is queued with run_at far ahead, so no worker takes
 * it. Once no earlier run of its session is active, a sweep run by every
 * worker's maintenance thread makes it due: Redis first (its member of
 * jobs:delayed:{type} gets the score now, so promotion moves it to its
 * queue), PostgreSQL after (held cleared, run_at now). A sweep that dies
 * in between leaves the run held, and the next one repeats the release,
 * which is harmless: promotion moves an id once.
 */
#ifndef AG_WORKER_HELD_RUNS_H
#define AG_WORKER_HELD_RUNS_H

#include <libpq-fe.h>
#include "job_redis.h"

/* Releases the held runs that may start now (at most a few hundred per
 * call), through rd and conn. Returns how many were released, or -1 when
 * PostgreSQL or Redis failed (logged; the next call tries again). */
int held_runs_release(redis_link *rd, PGconn *conn);

#endif
