/*
 * job_mirror.c - one job's events from PostgreSQL to its Redis ring (see
 * job_mirror.h). Used by a job's own thread after each event and by the
 * reaper for the events of jobs whose worker died.
 */
#include <stdlib.h>
#include <string.h>

#include "job_mirror.h"
#include "job_store.h"
#include "keys.h"
#include "log.h"

#define CATCH_UP_MAX 10000      /* events re-sent to Redis at once */

/* The last event id the ring of job id holds, per its state hash; 0 when
 * Redis has no state (flushed, expired), -1 when Redis failed. */
static long long ring_last_seq(redis_link *rd, const char *id)
{
    char key[KEY_MAX];
    key_state(key, id);
    redis_argv cmd;
    redis_argv_of(&cmd, "HGET", key, "last_event_id", (const char *)NULL);
    redisReply *rep = NULL;
    if (redis_pipeline(rd, &cmd, 1, &rep) < 0) {
        freeReplyObject(rep);
        return -1;
    }
    long long seq = 0;
    if (rep != NULL && rep->type == REDIS_REPLY_STRING)
        seq = strtoll(rep->str, NULL, 10);
    freeReplyObject(rep);
    return seq < 0 ? 0 : seq;
}

/* Reads the events after ring_seq and before seq, at most the ring's size
 * of the newest, into a malloc'd array with one more slot for event seq.
 * *n gets the number read and *res their text (the caller clears it);
 * NULL on allocation failure. */
static redis_event *events_missed(redis_link *rd, PGconn *pg, const char *id,
                                  const char *tenant_id, long long ring_seq, long long seq,
                                  size_t *n, PGresult **res)
{
    *n = 0;
    *res = NULL;
    long long gap = seq - 1 - ring_seq;
    long long limit = rd->cfg->event_ring_size;
    if (limit < 1 || limit > CATCH_UP_MAX)
        limit = CATCH_UP_MAX;
    if (gap < 0 || pg == NULL)
        gap = 0;
    if (gap > limit)
        gap = limit;

    redis_event *evs = malloc(((size_t)gap + 1) * sizeof *evs);
    if (evs == NULL || gap == 0)
        return evs;
    *res = store_events_between(pg, id, tenant_id, ring_seq, seq, (int)gap);
    if (*res == NULL)
        return evs;     /* the gap stays; this event still goes out */
    size_t rows = (size_t)PQntuples(*res);
    for (size_t i = 0; i < rows && i < (size_t)gap; i++) {
        evs[i].seq = strtoll(PQgetvalue(*res, (int)i, 0), NULL, 10);
        evs[i].body = PQgetvalue(*res, (int)i, 1);
        evs[i].len = (size_t)PQgetlength(*res, (int)i, 1);
        (*n)++;
    }
    return evs;
}

int job_mirror(redis_link *rd, PGconn *pg, const char *id, const char *tenant_id,
               long long ring_seq, long long seq, const char *body,
               const job_redis_state *st)
{
    if (ring_seq == JOB_MIRROR_ASK_REDIS && (ring_seq = ring_last_seq(rd, id)) < 0) {
        log_warn("job %s: event %lld not appended to Redis; it is in PostgreSQL", id, seq);
        return -1;
    }
    size_t missed;
    PGresult *missed_res;
    redis_event *evs = events_missed(rd, pg, id, tenant_id, ring_seq, seq, &missed,
                                     &missed_res);
    if (evs == NULL) {
        log_error("job %s: out of memory mirroring event %lld", id, seq);
        return -1;
    }
    evs[missed] = (redis_event){ seq, body, strlen(body) };

    int rc = redis_write_job(rd, id, evs, missed + 1, st);
    if (rc == 0 && missed > 0)
        log_info("job %s: re-sent %zu events Redis missed", id, missed);
    else if (rc != 0)
        log_warn("job %s: event %lld not appended to Redis; it is in PostgreSQL", id, seq);
    PQclear(missed_res);
    free(evs);
    return rc;
}
