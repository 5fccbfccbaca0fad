/*
 * job_json.c - a job's JSON rendered in the gateway, for the answers the
 * insert alone decides: the 202 of a submission and its first event.
 *
 * A submitted job's row is rendered here rather than by job_json() in
 * PostgreSQL, so the insert returns a few scalars instead of a document;
 * the text must still be byte for byte what GET /v1/jobs/{id} answers for
 * the same row, job_json() made compact (tests/unit/gateway/store/
 * test_job_json.c and the integration test comparing the 202 with the GET
 * hold the two together).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "events.h"
#include "job_json.h"
#include "jsonutil.h"

void job_json_ts(long long ts_us, char out[32])
{
    /* Floor division, as PostgreSQL's own split of a timestamp into
     * seconds and a non-negative fraction. */
    long long secs = ts_us / 1000000, frac = ts_us % 1000000;
    if (frac < 0) { frac += 1000000; secs--; }
    time_t t = (time_t)secs;
    struct tm tm;
    if (!gmtime_r(&t, &tm)) { snprintf(out, 32, "1970-01-01T00:00:00.000Z"); return; }
    char buf[96];   /* room for any int the compiler imagines; the real text is 24 */
    int n = snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     (int)(frac / 1000));
    if (n < 0 || n > 31) n = 0;
    memcpy(out, buf, (size_t)n);
    out[n] = '\0';
}

char *job_json_queued(const queued_job *j, size_t *len)
{
    char type[256], created[32], run_at[34] = "null", retry_of[48] = "null";
    if (json_quote(j->type, type, sizeof type) == 0) return NULL;
    job_json_ts(j->created_at_us, created);
    if (j->has_run_at) {
        char ts[32];
        job_json_ts(j->run_at_us, ts);
        snprintf(run_at, sizeof run_at, "\"%s\"", ts);
    }
    if (j->retry_of && strlen(j->retry_of) < sizeof retry_of - 2)
        snprintf(retry_of, sizeof retry_of, "\"%s\"", j->retry_of);
    /* Compact, as every answer: the id is a canonical uuid and needs no
     * escaping; the payload is compacted where it lands. */
    char head[512], tail[832];
    int hn = snprintf(head, sizeof head,
                      "{\"id\":\"%s\",\"type\":%s,\"status\":\"queued\","
                      "\"priority\":%lld,\"payload\":", j->id, type, j->priority);
    int tn = snprintf(tail, sizeof tail,
                      ",\"result\":null,\"error\":null,\"attempts\":0,"
                      "\"max_attempts\":%lld,\"timeout_s\":%lld,\"progress\":null,"
                      "\"run_at\":%s,\"created_at\":\"%s\",\"started_at\":null,"
                      "\"finished_at\":null,\"heartbeat_at\":null,\"worker_id\":null,"
                      "\"last_event_id\":1,\"retry_of\":%s,\"links\":{\"self\":\"/v1/jobs/%s\","
                      "\"events\":\"/v1/jobs/%s/events\"}}",
                      j->max_attempts, j->timeout_s, run_at, created, retry_of, j->id, j->id);
    if (hn < 0 || tn < 0 || (size_t)hn >= sizeof head || (size_t)tn >= sizeof tail) return NULL;
    char *out = malloc((size_t)hn + j->payload_len + (size_t)tn + 1);
    if (!out) return NULL;
    memcpy(out, head, (size_t)hn);
    memcpy(out + hn, j->payload, j->payload_len);
    size_t payload_len = json_compact(out + hn, j->payload_len);
    memcpy(out + (size_t)hn + payload_len, tail, (size_t)tn + 1);
    size_t n = (size_t)hn + payload_len + (size_t)tn;
    *len = n;
    return out;
}

