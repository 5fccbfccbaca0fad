/*
 * gw_metrics.c - the gateway's metric families and the per-answer update
 * (see gw_metrics.h).
 *
 * Request durations are labelled by the route's template ("/v1/jobs/{id}"),
 * never the path as sent, and by a fixed set of method names, so a client
 * cannot grow the number of series: the routes, methods and status codes
 * the gateway answers are all known in advance. A path no route matched is
 * labelled "unmatched".
 */
#include <malloc.h>
#include <stdio.h>
#include <string.h>
#include <evhtp.h>

#include "clock.h"
#include "gw_metrics.h"
#include "router.h"

gw_metrics gw_metric;

static metric *uptime, *heap;

/* Bytes the process holds through malloc: what its structures cost, apart
 * from the pages freed memory keeps resident (which is what RSS adds). Why
 * both arenas and mmapped blocks: large buffers bypass the arenas. */
static size_t heap_in_use_bytes(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

static void collect(void *arg)
{
    gw_server *srv = arg;
    series_set(metric_with(uptime), (double)(clock_mono_ms() - srv->started_ms) / 1000.0);
    series_set(metric_with(heap), (double)heap_in_use_bytes());
}

void gw_metrics_init(gw_server *srv)
{
    gw_metric.requests = metric_with(metric_counter(
        "agentgate_http_requests_total",
        "HTTP requests received, those refused before routing included.", NULL));
    metric *responses = metric_counter("agentgate_http_responses_total",
                                       "HTTP responses sent, by status class.", "class", NULL);
    static const char *const classes[6] = { NULL, "1xx", "2xx", "3xx", "4xx", "5xx" };
    for (int c = 1; c < 6; c++)
        gw_metric.responses[c] = metric_with(responses, classes[c]);
    gw_metric.duration = metric_histogram(
        "agentgate_http_request_duration_seconds",
        "Time from a request's arrival to its answer (an event stream's head), by route "
        "template, method and status code.",
        metric_buckets_request_seconds, metric_buckets_request_seconds_n,
        "route", "method", "code", NULL);
    gw_metric.jobs_submitted = metric_counter("agentgate_jobs_submitted_total",
                                              "Jobs accepted, by job type.", "type", NULL);
    gw_metric.cancel_requests = metric_with(metric_counter(
        "agentgate_job_cancel_requests_total", "Cancellation requests received.", NULL));
    gw_metric.sse_open = metric_with(metric_gauge("agentgate_sse_streams_open",
                                                  "Event streams currently open.", NULL));
    gw_metric.sse_events = metric_with(metric_counter("agentgate_sse_events_sent_total",
                                                      "Events written to event streams.", NULL));
    gw_metric.queue_depth = metric_gauge(
        "agentgate_queue_depth",
        "Jobs queued and due to start, all tenants, by job type (read from PostgreSQL "
        "when scraped).", "type", NULL);
    gw_metric.jobs_running = metric_gauge(
        "agentgate_jobs_running",
        "Jobs running, all tenants, by job type (read from PostgreSQL when scraped).",
        "type", NULL);
    uptime = metric_gauge("agentgate_uptime_seconds", "Seconds since the gateway started.",
                          NULL);
    heap = metric_gauge("agentgate_heap_in_use_bytes", "Heap bytes allocated and not yet freed.",
                        NULL);
    if (metrics_on_collect(collect, srv) != 0)
        fprintf(stderr, "agentgate-gateway: out of memory registering a metrics collector\n");
}

static const char *method_name(evhtp_request_t *req)
{
    switch (evhtp_request_get_method(req)) {
    case htp_method_GET:     return "GET";
    case htp_method_HEAD:    return "HEAD";
    case htp_method_POST:    return "POST";
    case htp_method_PUT:     return "PUT";
    case htp_method_DELETE:  return "DELETE";
    case htp_method_PATCH:   return "PATCH";
    case htp_method_OPTIONS: return "OPTIONS";
    default:                 return "other";
    }
}

void gw_metrics_answered(gw_req *r, int status)
{
    int cls = status / 100;
    if (cls >= 1 && cls < 6)
        series_inc(gw_metric.responses[cls]);
    if (!r->req || !gw_metric.duration)
        return;
    const char *route = router_route_template(r->route.id);
    char code[12];
    snprintf(code, sizeof code, "%d", status);
    series_observe(metric_with(gw_metric.duration, route[0] ? route : "unmatched",
                               method_name(r->req), code),
                   clock_mono_s() - r->started_s);
}
