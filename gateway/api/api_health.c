/*
 * api_health.c - /v1/health/live, /v1/health/ready, /v1/health/components
 * and /metrics. Each answers from the state of the loop thread it runs on
 * (its own PostgreSQL pool and Redis links), without any I/O.
 */
#include <malloc.h>
#include <stdio.h>
#include <string.h>
#include <event2/buffer.h>

#include "api.h"
#include "http.h"
#include "sse.h"
#include "clock.h"
#include "pg_async.h"
#include "redis_async.h"

void api_health_live(gw_req *r)
{
    static const char body[] = "{\"status\":\"ok\"}";
    http_reply_json(r, 200, body, sizeof body - 1);
}

void api_health_ready(gw_req *r)
{
    bool pg = pg_pool_ready(r->thr->pg), redis = rds_ready(r->thr->redis);
    if (pg && redis) {
        static const char body[] = "{\"status\":\"ready\"}";
        http_reply_json(r, 200, body, sizeof body - 1);
        return;
    }
    char detail[128];
    snprintf(detail, sizeof detail, "not ready:%s%s", pg ? "" : " postgres unreachable",
             redis ? "" : " redis unreachable");
    http_set_header(r, "Retry-After", "1");
    http_reply_problem(r, 503, "not-ready", detail, NULL);
}

void api_health_components(gw_req *r)
{
    gw_thread *t = r->thr;
    bool pg = pg_pool_ready(t->pg), redis = rds_ready(t->redis), sub = rds_pubsub_ready(t->redis);
    char body[512];
    int n = snprintf(body, sizeof body,
                     "{\"status\":\"%s\",\"thread\":%d,\"uptime_s\":%lld,\"components\":{"
                     "\"postgres\":{\"status\":\"%s\",\"in_flight\":%d},"
                     "\"redis\":{\"status\":\"%s\"},"
                     "\"redis_pubsub\":{\"status\":\"%s\"},"
                     "\"sse\":{\"streams\":%d}}}",
                     pg && redis && sub ? "ok" : "degraded", t->index,
                     (clock_mono_ms() - t->srv->started_ms) / 1000,
                     pg ? "up" : "down", pg_pool_in_flight(t->pg),
                     redis ? "up" : "down", sub ? "up" : "down", sse_hub_streams(t->hub));
    http_reply_json(r, pg && redis && sub ? 200 : 503, body, (size_t)n);
}

/* Bytes the process holds through malloc: what its structures cost, apart
 * from the pages freed memory keeps resident (which is what RSS adds). Why
 * both arenas and mmapped blocks: large buffers bypass the arenas. */
static size_t heap_in_use_bytes(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

void api_metrics(gw_req *r)
{
    gw_server *s = r->thr->srv;
    struct evbuffer *b = evbuffer_new();
    if (!b) { http_reply_problem(r, 503, "unavailable", "out of memory", NULL); return; }
#define LOAD(x) atomic_load_explicit(&(x), memory_order_relaxed)
    evbuffer_add_printf(b,
        "# HELP agentgate_http_requests_total HTTP requests received.\n"
        "# TYPE agentgate_http_requests_total counter\n"
        "agentgate_http_requests_total %lld\n"
        "# HELP agentgate_http_responses_total HTTP responses sent, by status class.\n"
        "# TYPE agentgate_http_responses_total counter\n",
        LOAD(s->requests_total));
    for (int c = 1; c < 6; c++)
        evbuffer_add_printf(b, "agentgate_http_responses_total{class=\"%dxx\"} %lld\n", c,
                            LOAD(s->responses_by_class[c]));
    evbuffer_add_printf(b,
        "# HELP agentgate_jobs_submitted_total Jobs accepted (202).\n"
        "# TYPE agentgate_jobs_submitted_total counter\n"
        "agentgate_jobs_submitted_total %lld\n"
        "# HELP agentgate_job_cancel_requests_total Cancellation requests received.\n"
        "# TYPE agentgate_job_cancel_requests_total counter\n"
        "agentgate_job_cancel_requests_total %lld\n"
        "# HELP agentgate_sse_streams_open Event streams currently open.\n"
        "# TYPE agentgate_sse_streams_open gauge\n"
        "agentgate_sse_streams_open %lld\n"
        "# HELP agentgate_sse_events_sent_total Events written to event streams.\n"
        "# TYPE agentgate_sse_events_sent_total counter\n"
        "agentgate_sse_events_sent_total %lld\n"
        "# HELP agentgate_uptime_seconds Seconds since the gateway started.\n"
        "# TYPE agentgate_uptime_seconds gauge\n"
        "agentgate_uptime_seconds %lld\n"
        "# HELP agentgate_heap_in_use_bytes Heap bytes allocated and not yet freed.\n"
        "# TYPE agentgate_heap_in_use_bytes gauge\n"
        "agentgate_heap_in_use_bytes %zu\n",
        LOAD(s->jobs_submitted), LOAD(s->jobs_cancel_requests), LOAD(s->sse_streams_open),
        LOAD(s->sse_events_sent), (clock_mono_ms() - s->started_ms) / 1000,
        heap_in_use_bytes());
#undef LOAD
    size_t len = evbuffer_get_length(b);
    http_reply(r, 200, "text/plain; version=0.0.4", (const char *)evbuffer_pullup(b, -1), len);
    evbuffer_free(b);
}
