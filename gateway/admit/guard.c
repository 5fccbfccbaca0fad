/*
 * guard.c - defences against hostile HTTP clients (see guard.h).
 *
 * Two layers. In front of libevhtp's parser, a read callback on every
 * connection holds the bytes of a request head until the head is whole,
 * and measures it first: libevhtp drops a connection without a word on a
 * header line over 8 KB, so a head over a cap is answered here (414, 431,
 * or 401 for an oversize bearer token) and the connection closed. The
 * same layer runs each connection's slow-client clock (a head must arrive
 * within header_timeout_ms, its body within body_timeout_ms of the head,
 * an idle keep-alive connection lasts idle_timeout_ms). Then, on the
 * parsed request, guard_request checks the caps again and answers CORS
 * preflights.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "guard.h"
#include "http.h"
#include "jwt.h"
#include "log.h"
#include "uuid.h"

/* --- CORS ------------------------------------------------------------- */

static const char cors_allow_methods[] = "GET, POST, PUT, PATCH, DELETE, OPTIONS";
static const char cors_allow_headers[] =
    "Authorization, Content-Type, Idempotency-Key, Last-Event-ID, X-Request-Id, traceparent";
static const char cors_expose_headers[] =
    "Location, X-Request-Id, Retry-After, RateLimit-Limit, RateLimit-Remaining, "
    "RateLimit-Reset, Idempotent-Replayed";
#define CORS_MAX_AGE "600"

bool guard_origin_allowed(const char *list, const char *origin)
{
    if (!list || !origin || !*origin) return false;
    /* A wildcard would hand every site the API; "null" is what sandboxed
     * frames and file: pages send, which anyone can make. */
    if (strcmp(origin, "*") == 0 || strcmp(origin, "null") == 0) return false;
    size_t olen = strlen(origin);
    const char *p = list;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',') p++;
        const char *end = p + strcspn(p, ",");
        const char *last = end;
        while (last > p && (last[-1] == ' ' || last[-1] == '\t')) last--;
        if ((size_t)(last - p) == olen && memcmp(p, origin, olen) == 0) return true;
        p = end;
    }
    return false;
}

static const char *allowed_origin(gw_req *r)
{
    const char *origin = http_header(r, "Origin");
    return guard_origin_allowed(r->thr->srv->cfg.cors_origins, origin) ? origin : NULL;
}

static bool header_present(gw_req *r, const char *name)
{
    return r->req && evhtp_header_find(r->req->headers_out, name) != NULL;
}

void guard_add_cors_headers(gw_req *r)
{
    if (!r->req || header_present(r, "Access-Control-Allow-Origin")) return;
    const char *origin = allowed_origin(r);
    if (!origin) return;
    http_set_header(r, "Access-Control-Allow-Origin", origin);
    http_set_header(r, "Vary", "Origin");
    http_set_header(r, "Access-Control-Expose-Headers", cors_expose_headers);
}

/* OPTIONS with Origin and Access-Control-Request-Method: answered here,
 * before routing and authentication (browsers send no token with it). */
static int answer_preflight(gw_req *r)
{
    const char *origin = allowed_origin(r);
    if (!origin) {
        http_reply_problem(r, 403, "cors-origin-denied",
                           "this origin may not call the API from a browser", NULL);
        return -1;
    }
    http_set_header(r, "Access-Control-Allow-Methods", cors_allow_methods);
    http_set_header(r, "Access-Control-Allow-Headers", cors_allow_headers);
    http_set_header(r, "Access-Control-Max-Age", CORS_MAX_AGE);
    http_reply_no_content(r, 204);
    return -1;
}

/* --- caps on the parsed request (the raw guard saw most already) ------- */

static size_t uri_length(evhtp_request_t *req)
{
    size_t n = 0;
    if (req->uri && req->uri->path && req->uri->path->full) n += strlen(req->uri->path->full);
    if (req->uri && req->uri->query_raw) n += 1 + strlen((const char *)req->uri->query_raw);
    return n;
}

int guard_request(gw_req *r)
{
    const ag_config *cfg = &r->thr->srv->cfg;
    evhtp_request_t *req = r->req;
    if (!req) return -1;
    /* An access log at debug level; log_write cuts any access_token. */
    log_debug("%s %s%s%s", htparser_get_methodstr_m(evhtp_request_get_method(req)),
              req->uri && req->uri->path && req->uri->path->full ? req->uri->path->full : "",
              req->uri && req->uri->query_raw ? "?" : "",
              req->uri && req->uri->query_raw ? (const char *)req->uri->query_raw : "");

    if (uri_length(req) > cfg->max_uri_bytes) {
        char detail[96];
        snprintf(detail, sizeof detail, "the request target is longer than %zu bytes",
                 cfg->max_uri_bytes);
        http_reply_problem(r, 414, "uri-too-long", detail, NULL);
        return -1;
    }
    size_t bytes = 0;
    int count = 0;
    evhtp_kv_t *kv;
    TAILQ_FOREACH(kv, req->headers_in, next) {
        count++;
        bytes += kv->klen + kv->vlen + 4; /* ": " and CRLF */
    }
    if (count > cfg->max_headers || bytes > cfg->max_header_bytes) {
        char detail[128];
        snprintf(detail, sizeof detail, "the request has more than %d headers or %zu header bytes",
                 cfg->max_headers, cfg->max_header_bytes);
        http_reply_problem(r, 431, "headers-too-large", detail, NULL);
        return -1;
    }
    if (evhtp_request_get_method(req) == htp_method_OPTIONS &&
        http_header(r, "Origin") && http_header(r, "Access-Control-Request-Method"))
        return answer_preflight(r);
    return 0;
}

/* --- the raw head scan (pure) ------------------------------------------ */

static bool is_method_char(char c) { return c >= 'A' && c <= 'Z'; }

/* Length of the line at p (up to len bytes), without its CR LF; *complete
 * says whether its LF was found. */
static size_t line_at(const char *p, size_t len, bool *complete)
{
    const char *lf = memchr(p, '\n', len);
    *complete = lf != NULL;
    size_t n = lf ? (size_t)(lf - p) : len;
    if (lf && n > 0 && p[n - 1] == '\r') n--;
    return n;
}

static head_verdict scan_request_line(const char *p, size_t n, bool complete,
                                      const head_limits *lim)
{
    size_t m = 0;
    while (m < n && m < 32 && is_method_char(p[m])) m++;
    if (m == n) return complete || n >= 32 ? HEAD_NOT_HTTP : HEAD_INCOMPLETE;
    if (m == 0 || p[m] != ' ') return HEAD_NOT_HTTP;
    const char *target = p + m + 1;
    size_t rest = n - m - 1;
    /* The target ends at the last space of a whole line (before the
     * version); a partial line counts everything so far. */
    size_t tlen = rest;
    if (complete) {
        const char *sp = memrchr(target, ' ', rest);
        if (sp) tlen = (size_t)(sp - target);
    }
    size_t cap = lim->max_uri < GUARD_PARSER_FIELD_LIMIT - 1 ? lim->max_uri
                                                             : GUARD_PARSER_FIELD_LIMIT - 1;
    if (tlen > cap) return HEAD_URI_TOO_LONG;
    /* The version is short; a line far longer than its target is junk. */
    if (n > tlen + m + 64) return HEAD_NOT_HTTP;
    return HEAD_COMPLETE;
}

/* One header line (n bytes, maybe not whole yet). */
static head_verdict scan_header_line(const char *p, size_t n, const head_limits *lim)
{
    static const char auth[] = "authorization:";
    const char *colon = memchr(p, ':', n);
    size_t name_len = colon ? (size_t)(colon - p) : n;
    size_t value_len = colon ? n - name_len - 1 : 0;
    const char *value = colon ? colon + 1 : p + n;
    while (value_len > 0 && (*value == ' ' || *value == '\t')) { value++; value_len--; }
    if (name_len == sizeof auth - 2 && strncasecmp(p, auth, sizeof auth - 1) == 0) {
        /* "Bearer " and spaces around it are a few bytes at most. */
        if (value_len > lim->max_token + 16 || value_len >= lim->max_field)
            return HEAD_TOKEN_TOO_LARGE;
    }
    if (name_len >= lim->max_field || value_len >= lim->max_field) return HEAD_TOO_LARGE;
    return HEAD_INCOMPLETE;
}

head_verdict guard_scan_head(const char *buf, size_t len, const head_limits *lim,
                             size_t *head_len)
{
    size_t i = 0;
    while (i < len && (buf[i] == '\r' || buf[i] == '\n')) i++; /* RFC 9112 2.2 */
    if (i == len) return HEAD_INCOMPLETE;

    bool complete;
    size_t n = line_at(buf + i, len - i, &complete);
    head_verdict v = scan_request_line(buf + i, n, complete, lim);
    if (v != HEAD_COMPLETE) return v;
    if (!complete) return HEAD_INCOMPLETE;
    i += (size_t)((const char *)memchr(buf + i, '\n', len - i) - (buf + i)) + 1;

    size_t bytes = 0;
    int count = 0;
    while (i < len) {
        n = line_at(buf + i, len - i, &complete);
        if (complete && n == 0) {
            *head_len = (size_t)((const char *)memchr(buf + i, '\n', len - i) - buf) + 1;
            return HEAD_COMPLETE;
        }
        v = scan_header_line(buf + i, n, lim);
        if (v != HEAD_INCOMPLETE) return v;
        bytes += n + 2;
        if (bytes > lim->max_bytes) return HEAD_TOO_LARGE;
        if (!complete) return HEAD_INCOMPLETE;
        if (++count > lim->max_headers) return HEAD_TOO_LARGE;
        i += (size_t)((const char *)memchr(buf + i, '\n', len - i) - (buf + i)) + 1;
    }
    return HEAD_INCOMPLETE;
}

/* --- the connection guard ---------------------------------------------- */

typedef enum {
    CONN_HEAD,     /* waiting for a whole head; the header clock runs */
    CONN_PARSING,  /* head handed to libevhtp, not parsed yet; the clock runs */
    CONN_BODY,     /* head parsed, body still arriving; the body clock runs */
    CONN_IDLE,     /* between requests; the idle clock runs */
    CONN_BUSY,     /* a request is being served (event streams included) */
    CONN_CLOSING,  /* refused: answering, then closing */
} conn_mode;

typedef struct guard_conn {
    evhtp_connection_t *conn;
    gw_server *srv;
    bufferevent_data_cb parser_readcb; /* libevhtp's own */
    void *parser_arg;
    struct event *timer;
    conn_mode mode;
    size_t scanned;                    /* head bytes seen at the last scan */
    size_t discarded;                  /* bytes drained while closing */
} guard_conn;

#define SCAN_STEP 1024          /* rescan a head without a new line every this much */
#define CLOSING_LINGER_MS 2000  /* how long a refused client may keep sending */
#define CLOSING_DISCARD_MAX (4 * 1024 * 1024)

static evhtp_res on_head_parsed(evhtp_request_t *req, evhtp_headers_t *hdrs, void *arg);

static guard_conn *guard_of(evhtp_connection_t *conn)
{
    if (!conn || !conn->hooks || conn->hooks->on_headers != on_head_parsed) return NULL;
    return conn->hooks->on_headers_arg;
}

static void arm(guard_conn *g, conn_mode mode, int ms)
{
    g->mode = mode;
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
    evtimer_add(g->timer, &tv);
}

static void disarm(guard_conn *g, conn_mode mode)
{
    g->mode = mode;
    evtimer_del(g->timer);
}

/* True when the head says a body follows: chunked, or a Content-Length
 * other than 0. */
static bool head_announces_body(evhtp_headers_t *hdrs)
{
    if (evhtp_header_find(hdrs, "Transfer-Encoding")) return true;
    const char *cl = evhtp_header_find(hdrs, "Content-Length");
    if (!cl) return false;
    while (*cl == ' ' || *cl == '0') cl++;
    return *cl != '\0';
}

/* libevhtp parsed a whole head (also on paths that skip the read hook,
 * such as a pipelined request read from what was buffered). */
static evhtp_res on_head_parsed(evhtp_request_t *req, evhtp_headers_t *hdrs, void *arg)
{
    (void)req;
    guard_conn *g = arg;
    if (g->mode == CONN_CLOSING) return EVHTP_RES_OK;
    /* A body has its own deadline, counted from the head, so a client
     * that trickles one cannot hold the connection (and its buffers)
     * after an honest head. */
    if (head_announces_body(hdrs)) arm(g, CONN_BODY, g->srv->cfg.body_timeout_ms);
    else disarm(g, CONN_BUSY);
    return EVHTP_RES_OK;
}

/* --- refusing a head --------------------------------------------------- */

static void closing_read(struct bufferevent *bev, void *arg)
{
    guard_conn *g = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    g->discarded += evbuffer_get_length(in);
    evbuffer_drain(in, evbuffer_get_length(in));
    if (g->discarded > CLOSING_DISCARD_MAX) evhtp_connection_free(g->conn);
}

/* The answer is out: stop sending, but keep reading a little, so that
 * closing with unread bytes does not reset the connection before the
 * client has read the answer. */
static void closing_written(struct bufferevent *bev, void *arg)
{
    (void)arg;
    shutdown(bufferevent_getfd(bev), SHUT_WR);
}

static void closing_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev; (void)what;
    guard_conn *g = arg;
    evhtp_connection_free(g->conn); /* EOF, error or timeout: done */
}

/* Answers status with a problem written straight to the socket, past
 * libevhtp (which has no whole request to answer), and closes the
 * connection once it is out. what opens the log line. */
static void answer_and_close(guard_conn *g, struct bufferevent *bev, int status,
                             const char *slug, const char *detail, const char *what)
{
    char rid[UUID_STR_LEN];
    uuid_v4(rid);
    log_set_context(rid, NULL);
    log_info("%s with %d: %s", what, status, detail);
    atomic_fetch_add_explicit(&g->srv->requests_total, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&g->srv->responses_by_class[status / 100], 1, memory_order_relaxed);

    struct evbuffer *in = bufferevent_get_input(bev);
    evbuffer_drain(in, evbuffer_get_length(in));
    g->mode = CONN_CLOSING;
    bufferevent_setcb(bev, closing_read, closing_written, closing_event, g);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
    http_write_raw_problem(bufferevent_get_output(bev), status, slug, detail, rid);
    arm(g, CONN_CLOSING, CLOSING_LINGER_MS);
}

static void refuse_head(guard_conn *g, struct bufferevent *bev, head_verdict v)
{
    const ag_config *cfg = &g->srv->cfg;
    char detail[128];
    int status;
    const char *slug;
    switch (v) {
    case HEAD_URI_TOO_LONG:
        status = 414;
        slug = "uri-too-long";
        snprintf(detail, sizeof detail, "the request target is longer than %zu bytes",
                 cfg->max_uri_bytes < GUARD_PARSER_FIELD_LIMIT - 1 ? cfg->max_uri_bytes
                                                                   : (size_t)GUARD_PARSER_FIELD_LIMIT - 1);
        break;
    case HEAD_TOKEN_TOO_LARGE:
        status = 401;
        slug = "unauthorized";
        snprintf(detail, sizeof detail, "the bearer token is too large");
        break;
    default:
        status = 431;
        slug = "headers-too-large";
        snprintf(detail, sizeof detail,
                 "the request has more than %d headers, %zu header bytes, or a header over %d bytes",
                 cfg->max_headers, cfg->max_header_bytes, GUARD_PARSER_FIELD_LIMIT - 1);
        break;
    }
    answer_and_close(g, bev, status, slug, detail, "refused a request head");
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd; (void)what;
    guard_conn *g = arg;
    if (g->mode == CONN_BUSY) return;
    log_set_context(NULL, NULL); /* not the last request's line */
    if (g->mode == CONN_BODY) {
        char detail[96];
        snprintf(detail, sizeof detail, "the request body did not arrive within %d ms of its head",
                 g->srv->cfg.body_timeout_ms);
        answer_and_close(g, evhtp_connection_get_bev(g->conn), 408, "request-timeout", detail,
                         "answered a slow request body");
        return;
    }
    if (g->mode == CONN_IDLE)
        log_debug("closing a keep-alive connection idle for %d ms", g->srv->cfg.idle_timeout_ms);
    else if (g->mode != CONN_CLOSING)
        log_info("closing a connection: no whole request head within %d ms",
                 g->srv->cfg.header_timeout_ms);
    evhtp_connection_free(g->conn); /* connection fini frees g */
}

/* --- the read hook ------------------------------------------------------ */

static bool scan_due(guard_conn *g, struct evbuffer *in, size_t avail)
{
    if (avail >= g->scanned + SCAN_STEP) return true;
    struct evbuffer_ptr from;
    if (evbuffer_ptr_set(in, &from, g->scanned, EVBUFFER_PTR_SET) != 0) return true;
    return evbuffer_search(in, "\n", 1, &from).pos >= 0;
}

static void guarded_read(struct bufferevent *bev, void *arg)
{
    guard_conn *g = guard_of(arg);
    if (!g) return; /* being freed */
    if (g->mode == CONN_BUSY || g->mode == CONN_PARSING || g->mode == CONN_BODY) {
        g->parser_readcb(bev, g->parser_arg);
        return;
    }

    struct evbuffer *in = bufferevent_get_input(bev);
    size_t avail = evbuffer_get_length(in);
    if (avail == 0) return;
    if (g->mode == CONN_IDLE) {
        g->scanned = 0;
        arm(g, CONN_HEAD, g->srv->cfg.header_timeout_ms); /* the first byte starts it */
    }
    if (!scan_due(g, in, avail)) return;
    g->scanned = avail;

    const ag_config *cfg = &g->srv->cfg;
    head_limits lim = { .max_uri = cfg->max_uri_bytes, .max_bytes = cfg->max_header_bytes,
                        .max_headers = cfg->max_headers, .max_field = GUARD_PARSER_FIELD_LIMIT,
                        .max_token = JWT_MAX_TOKEN_BYTES };
    size_t head_len = 0;
    head_verdict v = guard_scan_head((const char *)evbuffer_pullup(in, -1), avail, &lim, &head_len);
    switch (v) {
    case HEAD_INCOMPLETE:
        return;
    case HEAD_COMPLETE:
    case HEAD_NOT_HTTP:
        /* The header clock keeps running until libevhtp says it has the
         * whole head (on_head_parsed), so bytes the scan let through but
         * the parser still waits on cannot hold the connection open. */
        g->mode = CONN_PARSING;
        g->scanned = 0;
        g->parser_readcb(bev, g->parser_arg); /* may free the connection */
        return;
    default:
        refuse_head(g, bev, v);
        return;
    }
}

int guard_connection_begin(evhtp_connection_t *conn, gw_server *srv)
{
    struct bufferevent *bev = evhtp_connection_get_bev(conn);
    guard_conn *g = bev ? calloc(1, sizeof *g) : NULL;
    if (!g) return -1;
    g->conn = conn;
    g->srv = srv;
    g->timer = evtimer_new(conn->evbase, on_timer, g);
    if (!g->timer) { free(g); return -1; }
    bufferevent_data_cb readcb, writecb;
    bufferevent_event_cb eventcb;
    void *cbarg;
    bufferevent_getcb(bev, &readcb, &writecb, &eventcb, &cbarg);
    if (cbarg != conn || !readcb) { /* not the libevhtp this was written for */
        event_free(g->timer);
        free(g);
        return -1;
    }
    g->parser_readcb = readcb;
    g->parser_arg = cbarg;
    if (evhtp_connection_set_hook(conn, evhtp_hook_on_headers, (evhtp_hook)on_head_parsed, g) != 0) {
        event_free(g->timer);
        free(g);
        return -1;
    }
    /* One argument serves all three callbacks, and libevhtp's take the
     * connection: the read hook finds its state from the connection. */
    bufferevent_setcb(bev, guarded_read, writecb, eventcb, cbarg);
    arm(g, CONN_HEAD, srv->cfg.header_timeout_ms);
    return 0;
}

void guard_request_read(evhtp_connection_t *conn)
{
    guard_conn *g = guard_of(conn);
    if (g && g->mode == CONN_BODY) disarm(g, CONN_BUSY);
}

void guard_connection_idle(evhtp_connection_t *conn)
{
    guard_conn *g = guard_of(conn);
    if (!g || g->mode == CONN_CLOSING) return;
    g->scanned = 0;
    arm(g, CONN_IDLE, g->srv->cfg.idle_timeout_ms);
}

void guard_connection_end(evhtp_connection_t *conn)
{
    guard_conn *g = guard_of(conn);
    if (!g) return;
    evhtp_connection_unset_hook(conn, evhtp_hook_on_headers);
    event_free(g->timer);
    free(g);
}
