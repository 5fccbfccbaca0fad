/*
 * api_health.c - /v1/health/live, /v1/health/ready, /v1/health/components
 * and /metrics. The health checks answer from the state of the loop thread
 * they run on (its own PostgreSQL pool and Redis links), without any I/O;
 * /metrics renders the process's metrics registry (gw_metrics.h) after one
 * read of the queue depths (below).
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "http.h"
#include "sse.h"
#include "clock.h"
#include "gw_metrics.h"
#include "jobtypes.h"
#include "log.h"
#include "metrics.h"
#include "query.h"
#include "strbuf.h"
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

/*
 * GET /metrics. The queue depth gauges come from PostgreSQL, the source
 * GET /v1/queues reads, through agentgate_queue_depths() (every tenant's
 * jobs, counted per type: no tenant's data shows). The statement is sent
 * like any other, so the loop goes on while it runs; a scrape that finds a
 * read younger than DEPTHS_FRESH_MS (any thread's) reuses it, so scraping
 * fast, or from many places, costs the database one count a second at
 * most. When the database cannot be asked, the answer still goes out with
 * the depths last read.
 */
#define DEPTHS_FRESH_MS 1000

static const char SQL_QUEUE_DEPTHS[] =
    "SELECT o_type, o_queued, o_running FROM agentgate_queue_depths()";

static atomic_llong depths_read_ms = -DEPTHS_FRESH_MS;

static void reply_metrics(gw_req *r)
{
    strbuf b = {0};
    if (metrics_render(&b) != 0) {
        strbuf_free(&b);
        http_reply_problem(r, 503, "unavailable", "out of memory", NULL);
        return;
    }
    http_reply(r, 200, METRICS_CONTENT_TYPE, b.s ? b.s : "", b.len);
    strbuf_free(&b);
}

/* The row of type in res, or -1. */
static int depth_row(const PGresult *res, const char *type)
{
    for (int i = 0; i < PQntuples(res); i++)
        if (strcmp(PQgetvalue(res, i, 0), type) == 0)
            return i;
    return -1;
}

static void on_depths(gw_req *r, PGresult *res, const char *err, const char *sqlstate)
{
    (void)sqlstate;
    if (!res) {
        log_warn("queue depths for /metrics not read: %s", err ? err : "no answer");
        reply_metrics(r);
        return;
    }
    /* Every registered type, 0 when it has no jobs; then any other type
     * the table still holds jobs of. */
    size_t n;
    const job_type *types = jobtypes_all(&n);
    for (size_t i = 0; i < n; i++) {
        int row = depth_row(res, types[i].name);
        metric_set(gw_metric.queue_depth, row < 0 ? 0 : atof(PQgetvalue(res, row, 1)),
                   types[i].name);
        metric_set(gw_metric.jobs_running, row < 0 ? 0 : atof(PQgetvalue(res, row, 2)),
                   types[i].name);
    }
    for (int i = 0; i < PQntuples(res); i++) {
        const char *type = PQgetvalue(res, i, 0);
        if (jobtypes_find(type))
            continue;
        metric_set(gw_metric.queue_depth, atof(PQgetvalue(res, i, 1)), type);
        metric_set(gw_metric.jobs_running, atof(PQgetvalue(res, i, 2)), type);
    }
    atomic_store_explicit(&depths_read_ms, clock_mono_ms(), memory_order_relaxed);
    reply_metrics(r);
}

void api_metrics(gw_req *r)
{
    long long age = clock_mono_ms() - atomic_load_explicit(&depths_read_ms, memory_order_relaxed);
    if (age < DEPTHS_FRESH_MS || !pg_pool_ready(r->thr->pg)) {
        reply_metrics(r);
        return;
    }
    gw_query_static(r, SQL_QUEUE_DEPTHS, 0, NULL, on_depths);
}
