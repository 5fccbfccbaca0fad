/*
 * otlp_export.c - the bounded background exporter of ended spans, OTLP
 * over HTTP with the JSON encoding.
 *
 * The queue is a ring of span pointers under one mutex. otlp_sink (the
 * trace.h sink, run by whichever thread ends a span: a gateway loop, a
 * job) only copies a pointer in or, when the ring is full, frees the span
 * and counts it: it never waits for the exporter thread or the network.
 * The exporter thread wakes when a batch is full or the interval passes,
 * takes up to a batch out of the ring, builds one ExportTraceServiceRequest
 * (resourceSpans -> scopeSpans -> spans; ids as lowercase hex, 64-bit
 * integers and nanosecond times as decimal strings, as the protobuf JSON
 * mapping writes them) and POSTs it with one reused libcurl handle under
 * AGENTGATE_OTLP_TIMEOUT_MS. A batch the collector did not take (no answer,
 * not 2xx) is dropped and counted: retrying would only let spans pile up
 * while the collector is away. At stop, what is queued gets one more
 * POST, and whatever is in flight then is aborted STOP_GRACE_MS later.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <curl/curl.h>
#include <cjson/cJSON.h>

#include "clock.h"
#include "log.h"
#include "metrics.h"
#include "otlp_export.h"
#include "otlp_settings.h"
#include "strbuf.h"
#include "trace.h"
#include "version.h"

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    span **ring;
    span **batch_buf;           /* the exporter thread's batch being sent */
    size_t cap, head, count;    /* spans at ring[head .. head+count) mod cap */
    bool stopping;
    bool running;
    pthread_t tid;
    size_t batch;
    int interval_ms, timeout_ms;
    char url[OTLP_ENDPOINT_MAX + sizeof "/v1/traces"];
    struct curl_slist *headers;
    char service[64];
    metric_series *m_dropped_full, *m_dropped_failed, *m_exported;
} ex = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };

static atomic_ullong n_dropped_full, n_dropped_failed, n_exported;
/* Set by otlp_export_stop (monotonic ms): past it, a POST in flight is
 * aborted, so a collector that hangs cannot hold up a shutdown. 0: running. */
static atomic_llong stop_deadline_ms;
#define STOP_GRACE_MS 1000

unsigned long long otlp_export_dropped_full(void) { return atomic_load(&n_dropped_full); }
unsigned long long otlp_export_dropped_failed(void) { return atomic_load(&n_dropped_failed); }
unsigned long long otlp_export_exported(void) { return atomic_load(&n_exported); }

static int header_add(const char *name, size_t nlen, const char *val, size_t vlen, void *arg)
{
    struct curl_slist **list = arg;
    strbuf b = {0};
    strbuf_addn(&b, name, nlen);
    strbuf_add(&b, ": ");
    strbuf_addn(&b, val, vlen);
    char *line = strbuf_take(&b, NULL);
    struct curl_slist *n = line ? curl_slist_append(*list, line) : NULL;
    free(line);
    if (!n) return -1;
    *list = n;
    return 0;
}

/* The trace.h sink: queue s, or drop and count it when the queue is full
 * or the exporter has stopped. */
static void otlp_sink(span *s)
{
    pthread_mutex_lock(&ex.mu);
    if (!ex.running || ex.count == ex.cap) {
        pthread_mutex_unlock(&ex.mu);
        span_free(s);
        atomic_fetch_add(&n_dropped_full, 1);
        series_inc(ex.m_dropped_full);
        return;
    }
    ex.ring[(ex.head + ex.count) % ex.cap] = s;
    ex.count++;
    if (ex.count >= ex.batch) pthread_cond_signal(&ex.cv);
    pthread_mutex_unlock(&ex.mu);
}

static void add_ns(cJSON *o, const char *key, long long ns)
{
    char buf[24];
    snprintf(buf, sizeof buf, "%lld", ns);
    cJSON_AddStringToObject(o, key, buf);
}

static cJSON *attr_json(const span_attr *a)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "key", a->key);
    cJSON *v = cJSON_AddObjectToObject(o, "value");
    char buf[24];
    switch (a->type) {
    case SPAN_ATTR_STR:    cJSON_AddStringToObject(v, "stringValue", a->v.s); break;
    case SPAN_ATTR_INT:
        snprintf(buf, sizeof buf, "%lld", a->v.i);
        cJSON_AddStringToObject(v, "intValue", buf);
        break;
    case SPAN_ATTR_DOUBLE: cJSON_AddNumberToObject(v, "doubleValue", a->v.d); break;
    case SPAN_ATTR_BOOL:   cJSON_AddBoolToObject(v, "boolValue", a->v.b); break;
    }
    return o;
}

static cJSON *span_json(const span *s)
{
    char id[33];
    cJSON *o = cJSON_CreateObject();
    trace_hex(s->ctx.trace_id, 16, id);
    cJSON_AddStringToObject(o, "traceId", id);
    trace_hex(s->ctx.span_id, 8, id);
    cJSON_AddStringToObject(o, "spanId", id);
    static const uint8_t zero[8];
    if (memcmp(s->parent_span_id, zero, 8) != 0) {
        trace_hex(s->parent_span_id, 8, id);
        cJSON_AddStringToObject(o, "parentSpanId", id);
    }
    cJSON_AddNumberToObject(o, "flags", s->ctx.flags);
    cJSON_AddStringToObject(o, "name", s->name);
    cJSON_AddNumberToObject(o, "kind", s->kind);
    add_ns(o, "startTimeUnixNano", s->start_ns);
    add_ns(o, "endTimeUnixNano", s->end_ns);
    cJSON *attrs = cJSON_AddArrayToObject(o, "attributes");
    for (int i = 0; i < s->nattrs; i++) cJSON_AddItemToArray(attrs, attr_json(&s->attrs[i]));
    if (s->dropped_attrs) cJSON_AddNumberToObject(o, "droppedAttributesCount", s->dropped_attrs);
    cJSON *st = cJSON_AddObjectToObject(o, "status");
    cJSON_AddNumberToObject(st, "code", s->error ? 2 : 0);  /* STATUS_CODE_ERROR : UNSET */
    if (s->error && s->status_message) cJSON_AddStringToObject(st, "message", s->status_message);
    return o;
}

/* The request body for n spans, malloc'd, or NULL when out of memory. */
static char *encode_batch(span **spans, size_t n)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *rs = cJSON_CreateObject();
    cJSON_AddItemToArray(cJSON_AddArrayToObject(root, "resourceSpans"), rs);
    cJSON *res = cJSON_AddObjectToObject(rs, "resource");
    span_attr svc = { .key = (char *)"service.name", .type = SPAN_ATTR_STR, .v.s = ex.service };
    span_attr ver = { .key = (char *)"service.version", .type = SPAN_ATTR_STR,
                      .v.s = (char *)AGENTGATE_VERSION };
    cJSON *rattrs = cJSON_AddArrayToObject(res, "attributes");
    cJSON_AddItemToArray(rattrs, attr_json(&svc));
    cJSON_AddItemToArray(rattrs, attr_json(&ver));
    cJSON *ss = cJSON_CreateObject();
    cJSON_AddItemToArray(cJSON_AddArrayToObject(rs, "scopeSpans"), ss);
    cJSON *scope = cJSON_AddObjectToObject(ss, "scope");
    cJSON_AddStringToObject(scope, "name", "agentgate");
    cJSON_AddStringToObject(scope, "version", AGENTGATE_VERSION);
    cJSON *arr = cJSON_AddArrayToObject(ss, "spans");
    for (size_t i = 0; i < n; i++) cJSON_AddItemToArray(arr, span_json(spans[i]));
    char *body = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return body;
}

static size_t discard_body(char *p, size_t size, size_t n, void *arg)
{
    (void)p; (void)arg;
    return size * n;
}

/* POSTs n spans; true when the collector took them (2xx). */
static bool post_batch(CURL *e, span **spans, size_t n, bool *warned)
{
    char *body = encode_batch(spans, n);
    if (!body) return false;
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
    CURLcode rc = curl_easy_perform(e);
    long status = 0;
    if (rc == CURLE_OK) curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    free(body);
    bool ok = rc == CURLE_OK && status >= 200 && status < 300;
    /* One line per outage, not one per batch. */
    if (!ok && !*warned) {
        if (rc != CURLE_OK)
            log_warn("trace export to %s failed: %s; spans are dropped until it answers",
                     ex.url, curl_easy_strerror(rc));
        else
            log_warn("trace export to %s answered %ld; spans are dropped until it takes them",
                     ex.url, status);
        *warned = true;
    } else if (ok && *warned) {
        log_info("trace export to %s works again", ex.url);
        *warned = false;
    }
    return ok;
}

static int abort_after_stop(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                            curl_off_t ulnow)
{
    (void)arg; (void)dltotal; (void)dlnow; (void)ultotal; (void)ulnow;
    long long deadline = atomic_load(&stop_deadline_ms);
    return deadline != 0 && clock_mono_ms() > deadline;
}

static CURL *handle_new(void)
{
    CURL *e = curl_easy_init();
    if (!e) return NULL;
    if (curl_easy_setopt(e, CURLOPT_URL, ex.url) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, ex.headers) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)ex.timeout_ms) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)ex.timeout_ms) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard_body) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, abort_after_stop) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_USERAGENT, "agentgate/" AGENTGATE_VERSION) != CURLE_OK) {
        curl_easy_cleanup(e);
        return NULL;
    }
    return e;
}

static void deadline_after(struct timespec *ts, int ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) { ts->tv_sec++; ts->tv_nsec -= 1000000000L; }
}

static void *exporter_main(void *arg)
{
    (void)arg;
    CURL *e = handle_new();
    span **batch = ex.batch_buf;
    bool warned = false;
    if (!e) log_error("trace exporter: cannot set up libcurl; spans are dropped");
    pthread_mutex_lock(&ex.mu);
    for (;;) {
        struct timespec until;
        deadline_after(&until, ex.interval_ms);
        while (!ex.stopping && ex.count < ex.batch)
            if (pthread_cond_timedwait(&ex.cv, &ex.mu, &until) != 0) break;
        bool last = ex.stopping;
        /* At stop, what is queued goes out in as many batches as it takes;
         * spans ended from now on are dropped by the sink. */
        if (last) ex.running = false;
        do {
            size_t n = 0;
            while (n < ex.batch && ex.count > 0) {
                batch[n++] = ex.ring[ex.head];
                ex.head = (ex.head + 1) % ex.cap;
                ex.count--;
            }
            if (n == 0) break;
            pthread_mutex_unlock(&ex.mu);
            bool ok = e && post_batch(e, batch, n, &warned);
            if (ok) {
                atomic_fetch_add(&n_exported, n);
                series_add(ex.m_exported, (double)n);
            } else {
                atomic_fetch_add(&n_dropped_failed, n);
                series_add(ex.m_dropped_failed, (double)n);
            }
            for (size_t i = 0; i < n; i++) span_free(batch[i]);
            pthread_mutex_lock(&ex.mu);
            /* Stopping with the collector away: one try, not one per batch. */
            if (last && !ok) {
                while (ex.count > 0) {
                    span_free(ex.ring[ex.head]);
                    ex.head = (ex.head + 1) % ex.cap;
                    ex.count--;
                    atomic_fetch_add(&n_dropped_failed, 1);
                    series_inc(ex.m_dropped_failed);
                }
            }
        } while (last || ex.count >= ex.batch);
        if (last) break;
    }
    pthread_mutex_unlock(&ex.mu);
    if (e) curl_easy_cleanup(e);
    return NULL;
}

int otlp_export_start(const ag_config *cfg, const char *service_name, char *err, size_t err_size)
{
    /* Registered whether or not export is on, so the series always exist
     * (zero when off). */
    metric *dropped = metric_counter("agentgate_otlp_spans_dropped_total",
                                     "Spans not exported: the queue was full, or the collector "
                                     "did not take their batch.", "reason", NULL);
    metric *exported = metric_counter("agentgate_otlp_spans_exported_total",
                                      "Spans the collector took.", NULL);
    ex.m_dropped_full = metric_with(dropped, "queue_full");
    ex.m_dropped_failed = metric_with(dropped, "export_failed");
    ex.m_exported = metric_with(exported);
    if (cfg->otlp_endpoint[0] == '\0') return 0;
    if (ex.running) return 0;

    snprintf(ex.url, sizeof ex.url, "%s%s", cfg->otlp_endpoint,
             cfg->otlp_endpoint[strlen(cfg->otlp_endpoint) - 1] == '/' ? "v1/traces" : "/v1/traces");
    snprintf(ex.service, sizeof ex.service, "%s", service_name);
    ex.cap = (size_t)cfg->otlp_queue_size;
    ex.batch = (size_t)cfg->otlp_batch_size;
    if (ex.batch > ex.cap) ex.batch = ex.cap;
    ex.interval_ms = cfg->otlp_interval_ms;
    ex.timeout_ms = cfg->otlp_timeout_ms;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(err, err_size, "trace export: cannot initialise libcurl");
        return -1;
    }
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    if (!h || otlp_headers_each(cfg->otlp_headers, header_add, &h) != 0 ||
        !(ex.ring = calloc(ex.cap, sizeof *ex.ring)) ||
        !(ex.batch_buf = calloc(ex.batch, sizeof *ex.batch_buf))) {
        curl_slist_free_all(h);
        free(ex.ring);
        ex.ring = NULL;
        snprintf(err, err_size, "trace export: out of memory");
        return -1;
    }
    ex.headers = h;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_destroy(&ex.cv);
    pthread_cond_init(&ex.cv, &ca);
    pthread_condattr_destroy(&ca);
    ex.stopping = false;
    atomic_store(&stop_deadline_ms, 0);
    ex.running = true;
    int rc = pthread_create(&ex.tid, NULL, exporter_main, NULL);
    if (rc != 0) {
        ex.running = false;
        snprintf(err, err_size, "trace export: cannot start its thread: %s", strerror(rc));
        return -1;
    }
    trace_set_sampling(cfg->otlp_sample_percent / 100.0);
    trace_set_sink(otlp_sink);
    log_info("exporting traces to %s (service.name %s)", ex.url, ex.service);
    return 0;
}

void otlp_export_stop(void)
{
    pthread_mutex_lock(&ex.mu);
    bool was = ex.running;
    if (was) {
        atomic_store(&stop_deadline_ms, clock_mono_ms() + STOP_GRACE_MS);
        ex.stopping = true;
        pthread_cond_signal(&ex.cv);
    }
    pthread_mutex_unlock(&ex.mu);
    if (!was) return;
    pthread_join(ex.tid, NULL);
    /* The sink stays registered (another thread may be ending a span): it
     * sees running false and frees. */
    curl_slist_free_all(ex.headers);
    ex.headers = NULL;
    pthread_mutex_lock(&ex.mu);
    free(ex.ring);
    ex.ring = NULL;
    free(ex.batch_buf);
    ex.batch_buf = NULL;
    pthread_mutex_unlock(&ex.mu);
    curl_global_cleanup();
}
