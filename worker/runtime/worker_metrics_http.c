/*
 * worker_metrics_http.c - the worker's /metrics listener (see
 * worker_metrics_http.h).
 *
 * One thread runs a libevent base with an evhttp server bound to the
 * configured address. A scrape renders the registry (metrics_render: the
 * collectors and the process_* metrics included) into a buffer on this
 * thread and sends it; job threads only ever touch their series' atomics,
 * so nothing here waits for them or they for it. Only GET and HEAD of
 * /metrics are answered; other paths get 404, other methods 405. Requests are small
 * and bounded (headers, no body, a timeout), as the listener is meant for
 * Prometheus on a private address but must not trust whoever connects.
 *
 * Stopping: metrics_http_stop asks the loop to exit from the main thread
 * (libevent is made thread-aware with evthread_use_pthreads before the base
 * exists), joins the thread, then frees the server and the base. loopexit,
 * not loopbreak: a break that lands before the thread enters its loop would
 * be forgotten, the exit is an event the loop still finds.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/thread.h>

#include "log.h"
#include "metrics.h"
#include "strbuf.h"
#include "worker_metrics_http.h"

#define METRICS_PATH            "/metrics"
#define METRICS_TIMEOUT_S       10      /* a connection idle this long is closed */
#define METRICS_MAX_HEADERS     8192    /* bytes of request headers */
#define METRICS_MAX_BODY        0       /* GET and HEAD carry none */

struct metrics_http {
    struct event_base *base;
    struct evhttp *http;
    pthread_t tid;
    int port;
};

static void reply_text(struct evhttp_request *req, int code, const char *reason,
                       const char *text)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", "text/plain; charset=utf-8");
    struct evbuffer *b = evbuffer_new();
    if (b != NULL)
        evbuffer_add(b, text, strlen(text));
    evhttp_send_reply(req, code, reason, b);
    if (b != NULL)
        evbuffer_free(b);
}

/* The path of req's target, without its query (Prometheus adds none, but a
 * person with curl might). */
static int is_metrics_path(struct evhttp_request *req)
{
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    return path != NULL && strcmp(path, METRICS_PATH) == 0;
}

static void on_request(struct evhttp_request *req, void *arg)
{
    (void)arg;
    if (!is_metrics_path(req)) {
        reply_text(req, HTTP_NOTFOUND, "Not Found", "not found: this listener serves GET /metrics\n");
        return;
    }
    enum evhttp_cmd_type method = evhttp_request_get_command(req);
    if (method != EVHTTP_REQ_GET && method != EVHTTP_REQ_HEAD) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
        reply_text(req, 405, "Method Not Allowed", "only GET and HEAD\n");
        return;
    }
    strbuf out = {0};
    if (metrics_render(&out) != 0) {
        strbuf_free(&out);
        reply_text(req, HTTP_SERVUNAVAIL, "Service Unavailable", "out of memory\n");
        return;
    }
    struct evbuffer *b = evbuffer_new();
    if (b == NULL || evbuffer_add(b, out.s ? out.s : "", out.len) != 0) {
        if (b != NULL)
            evbuffer_free(b);
        strbuf_free(&out);
        reply_text(req, HTTP_SERVUNAVAIL, "Service Unavailable", "out of memory\n");
        return;
    }
    strbuf_free(&out);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      METRICS_CONTENT_TYPE);
    /* evhttp sends the headers of a HEAD request and drops the body. */
    evhttp_send_reply(req, HTTP_OK, "OK", b);
    evbuffer_free(b);
}

static void *metrics_http_main(void *arg)
{
    metrics_http *m = arg;
    event_base_dispatch(m->base);
    return NULL;
}

static void metrics_http_free(metrics_http *m)
{
    if (m->http != NULL)
        evhttp_free(m->http);
    if (m->base != NULL)
        event_base_free(m->base);
    free(m);
}

metrics_http *metrics_http_start(const ag_config *cfg, char *err, size_t err_size)
{
    errbuf_printf(err, err_size, "%s", "");
    if (cfg->worker_metrics_listen[0] == '\0')
        return NULL;

    char host[sizeof cfg->worker_metrics_listen];
    int port;
    /* config_load checked the value; this only splits it. */
    if (config_parse_host_port(cfg->worker_metrics_listen, host, sizeof host, &port) != 0) {
        errbuf_printf(err, err_size, "AGENTGATE_WORKER_METRICS_LISTEN is not host:port");
        return NULL;
    }
    port += cfg->worker_metrics_port_offset;

    /* Before the base exists, so that stop can break its loop from
     * another thread. Calling it again is harmless. */
    if (evthread_use_pthreads() != 0) {
        errbuf_printf(err, err_size, "metrics listener: libevent has no pthreads support");
        return NULL;
    }
    metrics_http *m = calloc(1, sizeof *m);
    if (m == NULL) {
        errbuf_printf(err, err_size, "metrics listener: out of memory");
        return NULL;
    }
    m->port = port;
    m->base = event_base_new();
    m->http = m->base ? evhttp_new(m->base) : NULL;
    if (m->http == NULL) {
        errbuf_printf(err, err_size, "metrics listener: out of memory");
        metrics_http_free(m);
        return NULL;
    }
    /* The methods evhttp parses at all; on_request answers 405 to all
     * but GET and HEAD (evhttp itself would say 501). */
    evhttp_set_allowed_methods(m->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
                               EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |
                               EVHTTP_REQ_PATCH);
    evhttp_set_timeout(m->http, METRICS_TIMEOUT_S);
    evhttp_set_max_headers_size(m->http, METRICS_MAX_HEADERS);
    evhttp_set_max_body_size(m->http, METRICS_MAX_BODY);
    evhttp_set_gencb(m->http, on_request, m);

    if (evhttp_bind_socket_with_handle(m->http, host, (ev_uint16_t)port) == NULL) {
        int e = errno;
        errbuf_printf(err, err_size, "cannot listen for metrics on %s:%d: %s", host, port,
                      e ? strerror(e) : "address not usable");
        metrics_http_free(m);
        return NULL;
    }
    int rc = pthread_create(&m->tid, NULL, metrics_http_main, m);
    if (rc != 0) {
        errbuf_printf(err, err_size, "cannot start the metrics listener: %s", strerror(rc));
        metrics_http_free(m);
        return NULL;
    }
    log_info("serving metrics on %s:%d%s", host, port, METRICS_PATH);
    return m;
}

int metrics_http_port(const metrics_http *m)
{
    return m ? m->port : 0;
}

void metrics_http_stop(metrics_http *m)
{
    if (m == NULL)
        return;
    event_base_loopexit(m->base, NULL);
    pthread_join(m->tid, NULL);
    metrics_http_free(m);
}
