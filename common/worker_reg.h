/*
 * worker_reg.h - the worker registry's record, the one format both sides
 * share: what a worker daemon keeps in its worker:{id} hash (keys.h) and
 * how the gateway turns one hash into an item of GET /v1/workers.
 *
 * Every value in the hash is text. The running jobs are one field, a
 * comma list of "{tenant}:{job id}" entries: a tenant id has neither ':'
 * nor ',' (key_tenant_valid) and a job id is a UUID, so the list reads
 * back unambiguously, and the gateway shows a caller only its own
 * tenant's entries.
 */
#ifndef AG_WORKER_REG_H
#define AG_WORKER_REG_H

#include <stddef.h>

#include "strbuf.h"

/* The hash's field names. */
#define WREG_ID           "id"
#define WREG_HOST         "host"
#define WREG_PID          "pid"
#define WREG_STARTED_AT   "started_at"     /* RFC 3339 */
#define WREG_HEARTBEAT_AT "heartbeat_at"   /* RFC 3339, renewed on every beat */
#define WREG_QUEUES       "queues"         /* comma list of job types */
#define WREG_CONCURRENCY  "concurrency"
#define WREG_RUNNING      "running"        /* jobs running now, every tenant's */
#define WREG_JOBS         "jobs"           /* comma list of "{tenant}:{job id}" */

/*
 * Appends the entry for a running job to a jobs list being built in b
 * (a comma first unless b is empty). Returns 0, or -1 (nothing appended)
 * when tenant breaks key_tenant_valid or job_id is not a UUID.
 */
int worker_reg_jobs_add(strbuf *b, const char *tenant, const char *job_id);

/* One piece of text with its length, as a Redis reply holds it (not
 * necessarily NUL-terminated, may hold any bytes). */
typedef struct wreg_text {
    const char *s;
    size_t len;
} wreg_text;

/*
 * Appends one record, given as n field/value pairs (names[i], values[i]),
 * to out as the JSON object GET /v1/workers shows: id, host, started_at,
 * heartbeat_at as strings; pid, concurrency, running as numbers; queues
 * as an array of strings; jobs as the ids of the entries whose tenant is
 * tenant. A field that is missing, or a number that is not one, is null
 * (an array is then empty); unknown fields are left out; text that is not
 * valid UTF-8 has those bytes replaced with '?'. Returns 0, or -1 (nothing
 * appended) when the record has no id.
 */
int worker_reg_json(strbuf *out, const wreg_text *names, const wreg_text *values, size_t n,
                    const char *tenant);

#endif
