/*
 * http.c - the request context's life, and the reply helpers (see http.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <ctype.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "http.h"
#include "audit.h"
#include "guard.h"
#include "clock.h"
#include "jsonutil.h"
#include "log.h"
#include "uuid.h"

static const char *status_title(int status)
{
    switch (status) {
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default:  return "Error";
    }
}

void gw_req_hold(gw_req *r) { r->refs++; }

void gw_req_release(gw_req *r)
{
    if (--r->refs > 0) return;
    if (r->state_free && r->state) r->state_free(r->state);
    free(r->idem);
    free(r);
}

void gw_req_defer(gw_req *r)
{
    if (r->req && !r->paused) {
        r->paused = true;
        evhtp_request_pause(r->req);
    }
}

static evhtp_res on_request_fini(evhtp_request_t *req, void *arg)
{
    gw_req *r = arg;
    guard_connection_idle(req->conn);
    r->req = NULL;
    if (r->on_close) {
        void (*cb)(gw_req *) = r->on_close;
        r->on_close = NULL;
        cb(r);
    }
    gw_req_release(r);
    return EVHTP_RES_OK;
}

/* A caller's X-Request-Id is kept when it is short and plain. */
static int request_id_acceptable(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64) return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr("-_.:", s[i])) return 0;
    return 1;
}

static int all_hex(const char *s, size_t n, int *nonzero)
{
    *nonzero = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i])) return 0;
        if (s[i] != '0') *nonzero = 1;
    }
    return 1;
}

/* W3C Trace Context version 00: 00-<32 hex>-<16 hex>-<2 hex>. */
static int traceparent_valid(const char *s)
{
    int nz_trace, nz_span, nz_flags;
    return strlen(s) == 55 && s[0] == '0' && s[1] == '0' && s[2] == '-' &&
           s[35] == '-' && s[52] == '-' &&
           all_hex(s + 3, 32, &nz_trace) && nz_trace &&
           all_hex(s + 36, 16, &nz_span) && nz_span &&
           all_hex(s + 53, 2, &nz_flags);
}

static void traceparent_new(char out[56])
{
    char a[UUID_STR_LEN], b[UUID_STR_LEN], hex[48];
    uuid_v4(a);
    uuid_v4(b);
    size_t n = 0;
    for (const char *p = a; *p && n < 32; p++) if (*p != '-') hex[n++] = *p;
    for (const char *p = b; *p && n < 48; p++) if (*p != '-') hex[n++] = *p;
    snprintf(out, 56, "00-%.32s-%.16s-01", hex, hex + 32);
}

/*
 * libevhtp answers an over-limit body by dropping the connection. Instead,
 * the body is read and discarded past the limit, and the request is marked
 * by this request-level hook so its handler can answer 413 properly.
 */
static evhtp_res discard_body(evhtp_request_t *req, struct evbuffer *buf, void *arg)
{
    (void)req; (void)arg;
    evbuffer_drain(buf, evbuffer_get_length(buf));
    return EVHTP_RES_OK;
}

static evhtp_res limit_body(evhtp_request_t *req, struct evbuffer *buf, void *arg)
{
    const gw_server *srv = arg;
    if (evbuffer_get_length(req->buffer_in) + evbuffer_get_length(buf) <= srv->cfg.max_body_bytes)
        return EVHTP_RES_OK;
    evbuffer_drain(req->buffer_in, evbuffer_get_length(req->buffer_in));
    evhtp_request_set_hook(req, evhtp_hook_on_read, (evhtp_hook)discard_body, NULL);
    return discard_body(req, buf, NULL);
}

/* A client connection on a loop thread's list, so that shutdown can close
 * the ones still open (libevhtp frees only connections that end). */
typedef struct gw_conn {
    evhtp_connection_t *conn;
    gw_thread *thr;
    struct gw_conn *prev, *next;
} gw_conn;

static evhtp_res on_connection_fini(evhtp_connection_t *conn, void *arg)
{
    guard_connection_end(conn);
    gw_conn *c = arg;
    if (!c) return EVHTP_RES_OK;
    if (c->prev) c->prev->next = c->next; else c->thr->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    free(c);
    return EVHTP_RES_OK;
}

evhtp_res http_on_accept(evhtp_connection_t *conn, void *arg)
{
    evhtp_connection_set_hook(conn, evhtp_hook_on_read, (evhtp_hook)limit_body, arg);
    gw_thread *thr = conn->thread ? evthr_get_aux(conn->thread) : NULL;
    gw_conn *c = thr ? calloc(1, sizeof *c) : NULL;
    /* The fini hook also ends the guard, so it is set even without c. */
    evhtp_connection_set_hook(conn, evhtp_hook_on_connection_fini, (evhtp_hook)on_connection_fini, c);
    if (guard_connection_begin(conn, arg) != 0)
        log_warn("cannot guard a new connection (out of memory): served unguarded");
    if (!c) return EVHTP_RES_OK;
    c->conn = conn;
    c->thr = thr;
    c->next = thr->conns;
    if (thr->conns) thr->conns->prev = c;
    thr->conns = c;
    return EVHTP_RES_OK;
}

void http_close_all(gw_thread *thr)
{
    while (thr->conns) evhtp_connection_free(thr->conns->conn); /* fini unlinks it */
}

bool http_body_too_large(gw_req *r)
{
    evhtp_hooks_t *h = r->req ? evhtp_request_get_hooks(r->req) : NULL;
    return h && h->on_read == discard_body;
}

gw_req *http_request_begin(evhtp_request_t *req, gw_thread *thr)
{
    gw_req *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->req = req;
    r->thr = thr;
    r->refs = 1;
    r->started_ms = clock_mono_ms();
    evhtp_request_set_hook(req, evhtp_hook_on_request_fini, (evhtp_hook)on_request_fini, r);

    const char *rid = evhtp_header_find(req->headers_in, "X-Request-Id");
    if (rid && request_id_acceptable(rid)) snprintf(r->request_id, sizeof r->request_id, "%s", rid);
    else uuid_v4(r->request_id);

    const char *tp = evhtp_header_find(req->headers_in, "traceparent");
    if (tp && traceparent_valid(tp)) snprintf(r->traceparent, sizeof r->traceparent, "%s", tp);
    else traceparent_new(r->traceparent);

    log_set_context(r->request_id, r->traceparent);
    http_set_header(r, "X-Request-Id", r->request_id);
    return r;
}

const char *http_header(gw_req *r, const char *name)
{
    return r->req ? evhtp_header_find(r->req->headers_in, name) : NULL;
}

const char *http_query(gw_req *r, const char *name)
{
    if (!r->req || !r->req->uri || !r->req->uri->query) return NULL;
    return evhtp_kv_find(r->req->uri->query, name);
}

const char *http_body(gw_req *r, size_t *len)
{
    *len = 0;
    if (!r->req) return NULL;
    size_t n = evbuffer_get_length(r->req->buffer_in);
    if (n == 0) return NULL;
    *len = n;
    return (const char *)evbuffer_pullup(r->req->buffer_in, -1);
}

void http_set_header(gw_req *r, const char *name, const char *value)
{
    if (strcasecmp(name, "Location") == 0)
        snprintf(r->reply_location, sizeof r->reply_location, "%s", value);
    else if (strcasecmp(name, "Content-Type") == 0)
        snprintf(r->reply_ctype, sizeof r->reply_ctype, "%s", value);
    if (!r->req) return;
    evhtp_headers_add_header(r->req->headers_out, evhtp_header_new(name, value, 1, 1));
}

static void count_response(gw_req *r, int status)
{
    gw_server *srv = r->thr->srv;
    int cls = status / 100;
    if (cls >= 0 && cls < 6) atomic_fetch_add_explicit(&srv->responses_by_class[cls], 1, memory_order_relaxed);
    if (status >= 500) log_warn("%d answered in %lld ms", status, clock_mono_ms() - r->started_ms);
}

/* Every reply, errors and event streams included, tells browsers not to
 * sniff, frame, or leak the URL of what the API sends. */
static const char *const security_headers[][2] = {
    { "X-Content-Type-Options", "nosniff" },
    { "X-Frame-Options", "DENY" },
    { "Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'" },
    { "Referrer-Policy", "no-referrer" },
};
#define N_SECURITY_HEADERS (sizeof security_headers / sizeof security_headers[0])

/* Added as the reply goes out, after the reply hooks: a stored reply that
 * is replayed gets them once, from here, not twice. */
static void add_reply_headers(gw_req *r)
{
    for (size_t i = 0; i < N_SECURITY_HEADERS; i++)
        if (!evhtp_header_find(r->req->headers_out, security_headers[i][0]))
            http_set_header(r, security_headers[i][0], security_headers[i][1]);
    guard_add_cors_headers(r);
}

void http_write_raw_problem(struct evbuffer *out, int status, const char *slug,
                            const char *detail, const char *rid)
{
    char type[128];
    snprintf(type, sizeof type, "urn:agentgate:problem:%s", slug);
    cJSON *p = cJSON_CreateObject();
    bool ok = p != NULL;
    json_add_str(p, "type", type, &ok);
    json_add_str(p, "title", status_title(status), &ok);
    json_add_num(p, "status", status, &ok);
    json_add_str(p, "detail", detail, &ok);
    json_add_str(p, "request_id", rid, &ok);
    p = json_done(p, ok);
    char *text = p ? json_print(p) : NULL;
    cJSON_Delete(p);
    const char *body = text ? text : "";
    evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\n", status, status_title(status));
    evbuffer_add_printf(out, "Content-Type: application/problem+json\r\n"
                             "Content-Length: %zu\r\nConnection: close\r\n"
                             "Cache-Control: no-store\r\nX-Request-Id: %s\r\n",
                        strlen(body), rid);
    if (status == 401) evbuffer_add_printf(out, "WWW-Authenticate: Bearer realm=\"agentgate\"\r\n");
    for (size_t i = 0; i < N_SECURITY_HEADERS; i++)
        evbuffer_add_printf(out, "%s: %s\r\n", security_headers[i][0], security_headers[i][1]);
    evbuffer_add_printf(out, "\r\n%s", body);
    free(text);
}

/* Sends the reply with whatever body buffer_out holds (body, len bytes,
 * is that same text, for the reply hooks). */
static void run_reply_hook(gw_req *r, int status, const char *body, size_t len)
{
    if (!r->on_reply) return;
    void (*hook)(gw_req *, int, const char *, size_t) = r->on_reply;
    r->on_reply = NULL;
    hook(r, status, body, len);
}

/* A client that left before its answer still gets the reply hook: the
 * work behind the answer is done, and a retry must find it. */
static void send_reply(gw_req *r, int status, const char *body, size_t len)
{
    if (r->replied) return;
    r->replied = true;
    if (!r->req) {
        run_reply_hook(r, status, body, len);
        return;
    }
    count_response(r, status);
    run_reply_hook(r, status, body, len);
    audit_on_reply(r, status);
    add_reply_headers(r);
    evhtp_send_reply(r->req, (evhtp_res)status);
    if (r->paused) {
        r->paused = false;
        evhtp_request_resume(r->req);
    }
}

void http_reply(gw_req *r, int status, const char *content_type, const char *body, size_t len)
{
    if (r->replied) return;
    http_set_header(r, "Content-Type", content_type);
    http_set_header(r, "Cache-Control", "no-store");
    if (r->req) evbuffer_add(r->req->buffer_out, body, len);
    send_reply(r, status, body, len);
}

void http_reply_no_content(gw_req *r, int status)
{
    if (!r->req || r->replied) return;
    send_reply(r, status, "", 0);
}

void http_reply_json(gw_req *r, int status, const char *body, size_t len)
{
    http_reply(r, status, "application/json", body, len);
}

void http_reply_problem(gw_req *r, int status, const char *slug,
                        const char *detail, const char *pointer)
{
    if (r->replied || (!r->req && !r->on_reply)) return;
    char type[128];
    snprintf(type, sizeof type, "urn:agentgate:problem:%s", slug);
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "type", type);
    cJSON_AddStringToObject(p, "title", status_title(status));
    cJSON_AddNumberToObject(p, "status", status);
    cJSON_AddStringToObject(p, "detail", detail);
    cJSON_AddStringToObject(p, "request_id", r->request_id);
    if (pointer) {
        cJSON *errs = cJSON_AddArrayToObject(p, "errors");
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "pointer", pointer);
        cJSON_AddStringToObject(e, "detail", detail);
        cJSON_AddItemToArray(errs, e);
    }
    char *text = json_print(p);
    cJSON_Delete(p);
    http_set_header(r, "Content-Type", "application/problem+json");
    http_set_header(r, "Cache-Control", "no-store");
    if (status == 401) http_set_header(r, "WWW-Authenticate", "Bearer realm=\"agentgate\"");
    size_t text_len = text ? strlen(text) : 0;
    if (text && r->req) evbuffer_add(r->req->buffer_out, text, text_len);
    send_reply(r, status, text ? text : "", text_len);
    free(text);
}

void http_start_event_stream(gw_req *r)
{
    if (!r->req || r->replied) return;
    r->replied = true;
    count_response(r, 200);
    audit_on_reply(r, 200);
    http_set_header(r, "Content-Type", "text/event-stream; charset=utf-8");
    http_set_header(r, "Cache-Control", "no-cache");
    http_set_header(r, "X-Accel-Buffering", "no");
    add_reply_headers(r);
    evhtp_send_reply_chunk_start(r->req, EVHTP_RES_OK);
    if (r->paused) {
        r->paused = false;
        evhtp_request_resume(r->req);
    }
}

/*
 * Writes iov straight to the socket when nothing is queued before it, and
 * queues what the kernel did not take. Going through the bufferevent for
 * every event of every subscriber costs two epoll_ctl calls (arm, then
 * disarm the write event) and a writev a turn later; a subscriber keeping
 * up has an empty queue, so the bytes go out now in one writev and libevent
 * is involved only for a subscriber that falls behind.
 */
static void write_or_queue(struct bufferevent *bev, struct evbuffer *out,
                           struct iovec *iov, int n)
{
    ssize_t sent = 0;
    evutil_socket_t fd = bufferevent_getfd(bev);
    if (evbuffer_get_length(out) == 0 && fd >= 0) {
        struct msghdr msg = { .msg_iov = iov, .msg_iovlen = (size_t)n };
        sent = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (sent < 0) sent = 0;   /* EAGAIN or an error: the bufferevent finds out */
    }
    for (int i = 0; i < n; i++) {
        size_t skip = (size_t)sent < iov[i].iov_len ? (size_t)sent : iov[i].iov_len;
        sent -= (ssize_t)skip;
        if (skip < iov[i].iov_len)
            evbuffer_add(out, (const char *)iov[i].iov_base + skip, iov[i].iov_len - skip);
    }
}

size_t http_stream_write(gw_req *r, const char *data, size_t len)
{
    if (!r->req) return 0;
    struct bufferevent *bev = evhtp_request_get_bev(r->req);
    if (!bev) return 0;
    struct evbuffer *out = bufferevent_get_output(bev);
    char size_line[24];
    struct iovec iov[3];
    int n = 0;
    bool chunked = r->req->flags & EVHTP_REQ_FLAG_CHUNKED;
    if (chunked) {
        int w = snprintf(size_line, sizeof size_line, "%zx\r\n", len);
        iov[n++] = (struct iovec){ size_line, (size_t)w };
    }
    iov[n++] = (struct iovec){ (void *)data, len };
    if (chunked) iov[n++] = (struct iovec){ (void *)"\r\n", 2 };
    write_or_queue(bev, out, iov, n);
    return evbuffer_get_length(out);
}

void http_end_event_stream(gw_req *r)
{
    if (!r->req) return;
    evhtp_send_reply_chunk_end(r->req);
}

void http_abort(gw_req *r)
{
    if (!r->req) return;
    evhtp_connection_free(evhtp_request_get_connection(r->req));
}
