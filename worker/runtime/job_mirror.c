/*
 * job_mirror.c - one job's events from PostgreSQL to its Redis ring (see
 * job_mirror.h). Used by a job's own thread after each event and by the
 * reaper for the events of jobs whose worker died; and, for the reaper,
 * the other way: a dead attempt's unstored events from the ring back to
 * PostgreSQL.
 */
#include <stdlib.h>
#include <string.h>

#include "job_mirror.h"
#include "job_store.h"
#include "events.h"
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

/* Collects into evs (room for max) the events of the ring reply r that
 * continue pg_last without a hole. Returns how many. */
static size_t ring_tail(const redisReply *r, long long pg_last, store_event *evs,
                        char (*types)[EVENT_TYPE_MAX], size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < r->elements && n < max; i++) {
        const redisReply *e = r->element[i];
        long long seq;
        if (e->type != REDIS_REPLY_STRING || memchr(e->str, '\0', e->len)
            || event_peek(e->str, e->len, &seq, types[n], EVENT_TYPE_MAX) < 0)
            continue;
        if (seq != pg_last + 1 + (long long)n)
            continue;   /* older than what PostgreSQL has, or past a hole */
        evs[n] = (store_event){ seq, types[n], e->str };
        n++;
    }
    return n;
}

long long job_mirror_recover_tail(redis_link *rd, PGconn *pg, const char *id,
                                  const char *tenant_id, int attempt, long long pg_last)
{
    if (redis_link_try(rd) == NULL || pg == NULL)
        return pg_last;
    char key[KEY_MAX];
    key_events(key, id);
    redis_argv cmd;
    redis_argv_of(&cmd, "LRANGE", key, "0", "-1", (const char *)NULL);
    redisReply *rep = NULL;
    if (redis_pipeline(rd, &cmd, 1, &rep) < 0 || rep == NULL
        || rep->type != REDIS_REPLY_ARRAY || rep->elements == 0) {
        freeReplyObject(rep);
        return pg_last;
    }
    size_t max = rep->elements;
    store_event *evs = malloc(max * sizeof *evs);
    char (*types)[EVENT_TYPE_MAX] = malloc(max * EVENT_TYPE_MAX);
    long long last = pg_last;
    if (evs == NULL || types == NULL) {
        log_error("job %s: out of memory recovering its unstored events", id);
    } else {
        size_t n = ring_tail(rep, pg_last, evs, types, max);
        if (n > 0 && store_append_events(pg, id, tenant_id, attempt, evs, n, NULL) == STORE_OK) {
            last = evs[n - 1].seq;
            log_info("job %s: stored events %lld..%lld of attempt %d from its Redis ring",
                     id, pg_last + 1, last, attempt);
        } else if (n > 0) {
            log_warn("job %s: events %lld..%lld of attempt %d are only in Redis", id,
                     pg_last + 1, evs[n - 1].seq, attempt);
        }
    }
    free(types);
    free(evs);
    freeReplyObject(rep);
    return last;
}
