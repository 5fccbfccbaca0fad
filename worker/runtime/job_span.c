/*
 * job_span.c - one job attempt's span: what ran (job id, type, tenant,
 * attempt of how many) and how it ended. Outcomes other than succeeded
 * and handed back (a worker's shutdown, not the job's fault) mark the span
 * failed, a retried attempt too, with the error code as error.type (the
 * OpenTelemetry name for a failure's class).
 */
#include <stdio.h>
#include <string.h>

#include "job_span.h"

span *job_span_begin(const job_info *ji)
{
    char name[96];
    snprintf(name, sizeof name, "job %s", ji->type);
    trace_ctx parent;
    trace_parse(ji->traceparent, &parent);   /* zeroed when absent: a new trace */
    trace_set_current(&parent);
    span *s = span_start_current(name, SPAN_KIND_CONSUMER);
    if (!s) {
        trace_set_current(NULL);
        return NULL;
    }
    span_set_str(s, "agentgate.job.id", ji->id);
    span_set_str(s, "agentgate.job.type", ji->type);
    span_set_str(s, "agentgate.tenant_id", ji->tenant_id);
    span_set_int(s, "agentgate.job.attempt", ji->attempt);
    span_set_int(s, "agentgate.job.max_attempts", ji->max_attempts);
    if (ji->request_id) span_set_str(s, "agentgate.request_id", ji->request_id);
    return s;
}

void job_span_end(span *s, const char *outcome, const char *error_code)
{
    if (!s) return;
    span_set_str(s, "agentgate.job.outcome", outcome);
    bool ok = strcmp(outcome, "succeeded") == 0 || strcmp(outcome, "handed_back") == 0
              || strcmp(outcome, "waiting") == 0;
    if (!ok) {
        span_set_str(s, "error.type", error_code && error_code[0] ? error_code : outcome);
        span_set_error(s, error_code);
    }
    span_end(s);
    trace_set_current(NULL);
}
