/*
 * req_span.h - the server span of each HTTP request (common/trace.h).
 *
 * A request continues the caller's trace when it sent a valid traceparent
 * and starts a new one otherwise. Its own span's traceparent becomes
 * r->traceparent, so what the request stores (a job's traceparent column)
 * and logs names this span: a job attempt is then its child.
 */
#ifndef AG_REQ_SPAN_H
#define AG_REQ_SPAN_H

#include "gateway.h"

/* Starts r's span as a child of incoming (the traceparent header; NULL or
 * invalid: a new trace) and writes its traceparent into r->traceparent.
 * Out of memory leaves r->span NULL and still gives r a fresh traceparent. */
void req_span_begin(gw_req *r, const char *incoming);

/* Ends r's span with the answer's status (0: no answer, the client left),
 * adding the route, method and status attributes (HTTP server semantic
 * conventions). Does nothing once ended or when r has none. */
void req_span_end(gw_req *r, int status);

#endif
