/*
 * dispatch.h - how a worker's job threads get their jobs: in batches,
 * taken and claimed by one idle job thread for every idle one, and handed
 * out in the process (see dispatch.c).
 */
#ifndef AG_DISPATCH_H
#define AG_DISPATCH_H

#include "job_redis.h"
#include "job_store.h"
#include "uuid.h"

struct worker;
struct job_thread;

/* A job claimed for this worker, waiting for a job thread to run it. */
typedef struct dispatched_job {
    job_origin from;            /* where its id waited in Redis */
    char id[UUID_STR_LEN];
    claimed_job cj;             /* the claim's row; the job thread frees it */
} dispatched_job;

typedef struct dispatch dispatch;

/* A dispatcher for the worker's nthreads job threads. Returns NULL when
 * memory ran out (logged). */
dispatch *dispatch_new(struct worker *w);

/* Frees d (NULL is fine). Every job thread must have left dispatch_next,
 * which leaves no claimed job behind. */
void dispatch_free(dispatch *d);

/*
 * Gives job thread t its next job in *out: one claimed for it by another
 * job thread, or, when no thread is taking, ids it takes itself for every
 * job thread waiting here (up to their number, never waiting for more
 * than the queues hold), claims in one statement and hands out. Blocks
 * while the queues are empty. Returns 1 with *out filled, or -1 when the
 * worker is stopping and no claimed job is left to run.
 */
int dispatch_next(dispatch *d, struct job_thread *t, dispatched_job *out);

#endif
