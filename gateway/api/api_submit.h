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
#include "uuid.h"

/* A job to create, already validated. The strings are copied. */
typedef struct api_new_job {
    const char *type;             /* a registered type's name */
    long long priority, max_attempts, timeout_s;
    const char *payload_json;     /* the payload as JSON text */
    long long run_at_ms;          /* epoch ms before which it must not run; 0: none */
    const char *retry_of;         /* canonical id of the job it retries, or NULL */
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
 * ranges of priority, max_attempts, timeout_s and run_at. On success fills
 * job (its strings point into body and *payload_text, which the caller
 * frees) and returns 0; else fills p and returns -1 (*payload_text NULL).
 * Answers nothing, so a batch can name the failing item.
 */
int api_job_validate(const cJSON *body, api_new_job *job, char **payload_text,
                     api_job_problem *p);

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

#endif
