/*
 * access_log.c - one log line per answer (access_log.h).
 *
 * The line goes through the structured log, so it is JSON with the fields
 * as their own keys, and carries the request's own context (request id,
 * traceparent, tenant) whichever context the thread had when the answer
 * left (a batch answers several requests in one callback): that context
 * is saved and put back around the line. The route is the matched
 * template ("/v1/jobs/{id}"), never the path as sent, so ids and query
 * strings (which may hold an access_token) stay out of the line.
 */
#include <evhtp.h>

#include "access_log.h"
#include "clock.h"
#include "log.h"
#include "router.h"

static bool enabled;

void access_log_enable(bool on)
{
    enabled = on;
}

void access_log_request(const gw_req *r, int status)
{
    if (!enabled || r->req == NULL)
        return;
    const char *route = router_route_template(r->route.id);
    const char *method = htparser_get_methodstr_m(evhtp_request_get_method(r->req));
    log_field f[] = {
        { "method", method ? method : "other", 0 },
        { "route", route[0] ? route : "unmatched", 0 },
        { "status", NULL, status },
        { "latency_ms", NULL, clock_mono_ms() - r->started_ms },
    };
    log_saved_context saved;
    log_context_save(&saved);
    gw_req_log_context(r);
    log_write_fields(LOG_INFO, f, sizeof f / sizeof *f, "%s %s %d", f[0].str, f[1].str, status);
    log_context_restore(&saved);
}
