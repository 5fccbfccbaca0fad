/*
 * job_span.h - the span of one job attempt (common/trace.h).
 *
 * The attempt is a child of the span that submitted the job: the
 * traceparent stored with the job is the submitting request's own span
 * (gateway/core/req_span.h). While the attempt runs, its span is the job
 * thread's current context, so the steps, model calls and tool calls
 * below it become its children without being handed the context.
 */
#ifndef AG_JOB_SPAN_H
#define AG_JOB_SPAN_H

#include "job_info.h"
#include "trace.h"

/* Starts the attempt's span ("job <type>", kind consumer) as a child of
 * ji->traceparent (none or invalid: a new trace) and makes it this
 * thread's current context. NULL when out of memory. */
span *job_span_begin(const job_info *ji);

/* Ends the attempt's span with how it ended: outcome ("succeeded",
 * "failed", "cancelled", "retried", "handed_back", "waiting" (parked for
 * an approval), "lost") and, when it failed, error_code (may be NULL).
 * Puts the thread's context back. */
void job_span_end(span *s, const char *outcome, const char *error_code);

#endif
