/*
 * gw_metrics.h - the gateway's metric families (common/metrics.h), made
 * once at start and updated from every loop thread.
 *
 * The handles are process-wide and only ever written through lock-free
 * series_*() calls, so the request path stays free of locks. Until
 * gw_metrics_init() runs they are NULL, and updating a NULL handle does
 * nothing: code linked without it (unit tests) needs no setup.
 */
#ifndef AG_GW_METRICS_H
#define AG_GW_METRICS_H

#include "gateway.h"
#include "metrics.h"

typedef struct gw_metrics {
    metric_series *requests;        /* agentgate_http_requests_total: received */
    metric_series *responses[6];    /* agentgate_http_responses_total{class}, by status/100 */
    metric *duration;               /* agentgate_http_request_duration_seconds{route,method,code} */
    metric *jobs_submitted;         /* agentgate_jobs_submitted_total{type} */
    metric_series *cancel_requests; /* agentgate_job_cancel_requests_total */
    metric_series *sse_open;        /* agentgate_sse_streams_open */
    metric_series *sse_events;      /* agentgate_sse_events_sent_total */
    metric *queue_depth;            /* agentgate_queue_depth{type}: due queued jobs */
    metric *jobs_running;           /* agentgate_jobs_running{type} */
} gw_metrics;

extern gw_metrics gw_metric;

/* Registers the families, and a collector for the gateway's uptime and heap
 * use, reading srv (which must outlive the registry). Call once, before
 * the loop threads start. */
void gw_metrics_init(gw_server *srv);

/* Counts one answer of status to r (its class and, when r is still
 * attached to its request, its duration since http_request_begin under its
 * route template, method and status). Called once per answer, on r's loop
 * thread, event streams included (when their head goes out). */
void gw_metrics_answered(gw_req *r, int status);

#endif
