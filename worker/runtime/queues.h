/*
 * queues.h - the set of job queues one worker process listens on.
 *
 * A worker takes jobs of the types named in AGENTGATE_WORKER_QUEUES, or of
 * every registered type when that setting is empty. Parsing the list is
 * kept apart from the daemon so it can be tested on its own.
 */
#ifndef AG_WORKER_QUEUES_H
#define AG_WORKER_QUEUES_H

#include <stddef.h>

#include "keys.h"

#define QUEUES_MAX 32          /* distinct job types one worker listens on */
#define QUEUE_NAME_MAX 64      /* bytes of a type name, NUL included */

typedef struct queue_set {
    size_t count;
    char names[QUEUES_MAX][QUEUE_NAME_MAX];
    /* Each type's ring of tenants (jobs:ready:{type}, common/jobq.h):
     * the keys a job thread's BRPOP waits on, built once. */
    char rings[QUEUES_MAX][KEY_MAX];
} queue_set;

/*
 * Fills *out from list, a comma-separated list of registered job type
 * names ("demo,test"). Blanks around names are ignored and a repeated
 * name counts once. An empty or all-blank list (or NULL) means every
 * registered type. jobtypes_init must have run.
 * Returns 0, or -1 with a one-line reason in err (err_size bytes) for an
 * empty item ("demo,,test"), an unknown or overlong name, or more than
 * QUEUES_MAX names; *out is then empty.
 */
int queues_parse(const char *list, queue_set *out, char *err, size_t err_size);

/* The index in qs of the type whose ring is key (len bytes, as a BRPOP
 * reply names it), or -1 when it is none of them. */
int queues_ring_index(const queue_set *qs, const char *key, size_t len);

#endif
