/*
 * api_submit.h - creating a job the one way POST /v1/jobs does, for the
 * handlers that create jobs of their own (retries, dead letters): a new
 * id, its job.queued event, the loop turn's group commit (job_batch.h),
 * and only after that commit the event on its ring and the id on its
 * queue (gw_job_committed).
 */
#ifndef AG_API_SUBMIT_H
#define AG_API_SUBMIT_H

#include <stddef.h>
#include <cjson/cJSON.h>
#include "gateway.h"
#include "job_batch.h"
#include "uuid.h"

/* A job to create, already validated. The strings are copied. */
typedef struct api_new_job {
    const char *type;             /* a registered type's name */
    long long priority, max_attempts, timeout_s;
    const char *payload_json;     /* the payload as JSON text */
    long long run_at_ms;          /* epoch ms before which it must not run; 0: none */
    const char *retry_of;         /* canonical id of the job it retries, or NULL */
    const char *webhook;          /* completion webhook URL (api_read_webhook), or NULL */
} api_new_job;

/* Why a job was refused: problem slug (NULL: out of memory, answer 503),
 * the JSON pointer of the member at fault relative to the job ("/payload/n"),
 * and a sentence for the problem's detail. */
typedef struct api_job_problem {
    const char *slug;
    char pointer[320];
    char detail[640];
} api_job_problem;

/* The members a job body (POST /v1/jobs, an item of POST /v1/jobs/batch)
 * may have, NULL-terminated. */
extern const char *const api_job_fields[];

/*
 * Validates body as one job of POST /v1/jobs: an object of api_job_fields,
 * a registered public type, its payload against the type's schema, the
 * ranges of priority, max_attempts, timeout_s and run_at, and its webhook
 * against the allow-lists (the operator's, r's tenant's). On success fills
 * job (its strings point into body and *payload_text, which the caller
 * frees) and returns 0; else fills p and returns -1 (*payload_text NULL).
 * Answers nothing, so a batch can name the failing item.
 */
int api_job_validate(gw_req *r, const cJSON *body, api_new_job *job, char **payload_text,
                     api_job_problem *p);

/* Fills *row (job_batch.h) with job's columns, its id and its job.queued
 * event body: what the group commit writes. Strings are borrowed. */
void api_job_row_of(job_row *row, const api_new_job *job, const char *id,
                    const char *event_body);

/*
 * The outcome of one api_submit_job: job_json (len bytes) is the new job
 * as the API shows it, committed and enqueued; or NULL with err/sqlstate
 * (for gw_reply_db_error) when it was not inserted. job_id is its id
 * either way. Called even when the client has gone.
 */
typedef void (*api_submit_fn)(gw_req *r, void *arg, const char *job_id,
                              const char *job_json, size_t len,
                              const char *err, const char *sqlstate);

/*
 * Creates job for request r (its tenant, subject, request id and
 * traceparent) and calls done(r, arg, ...) once it is committed or failed.
 * Writes the new id into id_out when it is not NULL. Returns 0; or -1
 * when out of memory, with done not called and nothing answered.
 */
int api_submit_job(gw_req *r, const api_new_job *job, api_submit_fn done, void *arg,
                   char id_out[UUID_STR_LEN]);

/* The submitter as agent_runs.principal records it, {"sub","roles":[...],
 * "scope"}: what the worker's tools runtime checks a run's tool calls
 * against. Caller frees; NULL when out of memory. (api_runs.c) */
char *api_run_principal_json(const principal *who);

/* The timeout_s of an agent run's job: the later of type's default and
 * the run's own deadline (run_timeout_s, its decimal text, or NULL for
 * the configured default) plus a grace period, within 86400 s.
 * (api_runs.c) */
struct job_type;
long long api_run_job_timeout_s(const ag_config *cfg, const struct job_type *type,
                                const char *run_timeout_s);

#endif
