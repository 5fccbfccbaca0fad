/*
 * req_span.c - each request's server span: started when the request's
 * context is made, ended when its answer (or an event stream's head) is
 * written or, without an answer, when the context is freed.
 *
 * Attributes follow the OpenTelemetry HTTP server conventions:
 * http.request.method, url.path, url.scheme, http.route (the route's
 * template, so ids stay out of names), http.response.status_code, plus
 * agentgate.request_id and agentgate.tenant_id once authenticated. The
 * name is "METHOD /route/{id}" ("METHOD" alone when no route matched).
 * 5xx answers mark the span failed.
 */
#include <stdio.h>
#include <string.h>
#include <evhtp.h>

#include "req_span.h"
#include "trace.h"
#include "uuid.h"

void req_span_begin(gw_req *r, const char *incoming)
{
    trace_ctx parent;
    bool has_parent = trace_parse(incoming, &parent) == 0;
    const char *method = htparser_get_methodstr_m(evhtp_request_get_method(r->req));
    span *s = span_start(method ? method : "HTTP", SPAN_KIND_SERVER, has_parent ? &parent : NULL);
    r->span = s;
    if (s) {
        span_set_str(s, "http.request.method", method);
        if (r->req->uri && r->req->uri->path && r->req->uri->path->full)
            span_set_str(s, "url.path", r->req->uri->path->full);
        span_set_str(s, "url.scheme", "http");
        span_set_str(s, "agentgate.request_id", r->request_id);
        span_traceparent(s, r->traceparent);
        return;
    }
    /* No memory for a span: an id of its own all the same, so the job and
     * the logs still carry one. */
    trace_ctx c = {0};
    if (has_parent) {
        c = parent;
    } else {
        uuid_random_bytes(c.trace_id, sizeof c.trace_id);
        c.flags = TRACE_FLAG_SAMPLED;
    }
    uuid_random_bytes(c.span_id, sizeof c.span_id);
    trace_format(&c, r->traceparent);
}

void req_span_end(gw_req *r, int status)
{
    span *s = r->span;
    if (!s) return;
    r->span = NULL;
    const char *route = router_route_template(r->route.id);
    if (route[0]) {
        char name[96];
        snprintf(name, sizeof name, "%s %s", s->name, route);
        span_set_name(s, name);
        span_set_str(s, "http.route", route);
    }
    if (r->authenticated) span_set_str(s, "agentgate.tenant_id", r->who.tenant_id);
    if (status > 0) {
        span_set_int(s, "http.response.status_code", status);
        if (status >= 500) span_set_error(s, NULL);
    } else {
        span_set_str(s, "error.type", "client_closed");
    }
    span_end(s);
}
