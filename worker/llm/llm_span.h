/*
 * llm_span.h - the trace span of one request to a model provider, with
 * the OpenTelemetry generative-AI attributes (gen_ai.*).
 *
 * One span per request to a provider: a retry or a fallback to the next
 * provider is a span of its own, so each shows which provider answered or
 * failed. While the request runs its span is the thread's current
 * context, so the traceparent sent to the provider names it.
 */
#ifndef AG_LLM_SPAN_H
#define AG_LLM_SPAN_H

#include "llm.h"
#include "trace.h"

/* Starts the span of a chat request for model (as the route resolved it)
 * with req's parameters, a child of the thread's current context, and
 * makes it current. NULL when out of memory. */
span *llm_span_begin(const llm_request *req, const char *model);

/* Ends s with the provider that was asked, the outcome e, the response
 * (model that answered, token usage, finish reason) and the time to the
 * first text in seconds (< 0: none came). */
void llm_span_end(span *s, const char *provider, llm_err e, const llm_response *out,
                  double first_token_s);

#endif
