/*
 * job_info.h - the job a handler runs and what it reports back: the types
 * both sides of a handler call use. The calls a handler makes are in
 * job_ctx.h; what the worker keeps of a running job is in
 * job_ctx_internal.h. Both build on this header, which includes neither.
 */
#ifndef AG_JOB_INFO_H
#define AG_JOB_INFO_H

#include <stdbool.h>
#include <cjson/cJSON.h>

#include "uuid.h"

/* A running job, as its handler holds it. Opaque to handlers. */
typedef struct job_ctx job_ctx;

/* The job as loaded by the worker when it claimed it. */
typedef struct job_info {
    char id[UUID_STR_LEN];
    char tenant_id[65];
    char type[64];
    char created_by[128];
    int attempt;            /* 1 for the first attempt */
    int max_attempts;
    int timeout_s;
    const cJSON *payload;   /* validated against the type's schema at submission */
    const char *request_id; /* may be NULL */
    const char *traceparent;/* may be NULL */
} job_info;

/* What a handler reports. On JOB_FAILED it fills error_code/error_message;
 * on JOB_SUCCEEDED it may set result (ownership passes to the worker).
 * JOB_WAITING parks the job until a person decides (an agent run's tool
 * call awaiting approval): result is then the approval.requested event's
 * data, and whoever decides queues the job again; the handler runs anew
 * and must resume from what it stored. */
typedef enum job_outcome { JOB_SUCCEEDED, JOB_FAILED, JOB_CANCELLED, JOB_WAITING } job_outcome;

typedef struct job_result {
    cJSON *result;              /* owned by the worker once set */
    char error_code[64];
    char error_message[512];
    bool retryable;             /* on JOB_FAILED: the failure is transient; the job
                                   is retried with backoff while attempts remain */
} job_result;

typedef job_outcome (*job_handler_fn)(job_ctx *ctx, job_result *out);

#endif
