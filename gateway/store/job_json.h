/*
 * job_json.h - a just-submitted job's JSON and first event, rendered in
 * the gateway exactly as the API answers the row.
 */
#ifndef AG_JOB_JSON_H
#define AG_JOB_JSON_H

#include <stdbool.h>
#include <stddef.h>

/* What only the insert of a new job decides, and what it already knew. */
typedef struct queued_job {
    const char *id;               /* canonical text form */
    const char *type;
    long long priority, max_attempts, timeout_s;
    const char *payload;          /* as the jsonb column prints it, len bytes */
    size_t payload_len;
    long long created_at_us;      /* microseconds since the Unix epoch, UTC */
    bool has_run_at;
    long long run_at_us;
    const char *retry_of;         /* the job this one retries (canonical uuid), or NULL */
} queued_job;

/*
 * Renders a job that was just inserted (queued, no attempt yet) exactly as
 * the API answers its row (job_json() of sql/migrations/002_api_json.sql,
 * made compact): the same members in the same order, no white space
 * between tokens, timestamps as api_ts() prints them. The result is malloc'd (caller frees), *len its length;
 * NULL when out of memory or when the type name is too long to render.
 */
char *job_json_queued(const queued_job *j, size_t *len);

/* Writes ts (microseconds since the Unix epoch) as api_ts() does:
 * "YYYY-MM-DDTHH:MM:SS.mmmZ", UTC, milliseconds truncated. out holds 32. */
void job_json_ts(long long ts_us, char out[32]);

#endif
