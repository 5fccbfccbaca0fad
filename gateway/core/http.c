/*
 * http.c - the HTTP core: a request's context from parse to free, reading
 * what the client sent, and writing the one answer or the event stream.
 *
 * libevhtp parses requests on the loop thread and calls gw_handle_request
 * (gateway/dispatch.c) with each one; http_request_begin gives it a
 * gw_req (request id, traceparent, log context). From there a request
 * lives in three stages:
 *
 *   waiting    a handler that needs PostgreSQL or Redis defers the reply
 *              (gw_req_defer pauses the connection) and holds a reference
 *              per pending step; libevhtp's own reference is dropped when
 *              it frees the request (client gone), so a late answer never
 *              touches freed memory, it only finds r->req NULL.
 *   answered   http_reply* writes the status, the body and the headers
 *              every reply carries (X-Request-Id, Cache-Control, the
 *              security headers, CORS by hook), runs the request's reply
 *              hook (Idempotency-Key keeps the answer) and the process's
 *              (the audit row), and resumes the connection for the next
 *              request. Errors are RFC 9457 problems (http_reply_problem).
 *   streaming  an event stream takes its socket from libevhtp once its
 *              head is out (http_stream_open): the parser, request and
 *              buffers are freed and the stream keeps the socket and only
 *              the bytes the client has not taken yet, writing straight to
 *              the socket when nothing is queued. It ends with the job's
 *              terminal event, the client leaving, or shutdown.
 *
 * The core knows nothing of the layers above it: the guard (head caps,
 * slow clients, CORS) and the audit trail act through http_hooks, set once
 * by gateway/main.c. Request bodies are bounded as they arrive
 * (limit_body): past max_body_bytes the rest is discarded, and the
 * handler answers 413.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <ctype.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <errno.h>
#include <unistd.h>
#include <event2/event.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "http.h"
#include "clock.h"
#include "jsonutil.h"
#include "log.h"
#include "uuid.h"

/* What the layers above do at points of a connection's and a reply's life
 * (the guard, CORS, audit): set once by http_set_hooks before the first
 * connection, read only after. */
static http_hooks hooks;

void http_set_hooks(const http_hooks *h) { hooks = *h; }

static void hook_connection_idle(evhtp_connection_t *conn)
{
    if (hooks.connection_idle) hooks.connection_idle(conn);
}

static void hook_connection_end(evhtp_connection_t *conn)
{
    if (hooks.connection_end) hooks.connection_end(conn);
}

static void hook_replied(gw_req *r, int status)
{
    if (hooks.replied) hooks.replied(r, status);
}

static const char *status_title(int status)
{
    switch (status) {
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
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
    hook_connection_idle(req->conn);
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
 * the ones still open (libevhtp frees only connections that end). conn is
 * NULL for an event stream that has taken its socket (an http_stream, which
 * starts with this link). */
typedef struct gw_conn {
    evhtp_connection_t *conn;
    gw_thread *thr;
    struct gw_conn *prev, *next;
} gw_conn;

static void conn_link(gw_conn *c, gw_thread *thr)
{
    c->thr = thr;
    c->prev = NULL;
    c->next = thr->conns;
    if (thr->conns) thr->conns->prev = c;
    thr->conns = c;
}

static void conn_unlink(gw_conn *c)
{
    if (c->prev) c->prev->next = c->next; else c->thr->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

static evhtp_res on_connection_fini(evhtp_connection_t *conn, void *arg)
{
    hook_connection_end(conn);
    gw_conn *c = arg;
    if (!c) return EVHTP_RES_OK;
    conn_unlink(c);
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
    if (hooks.connection_begin && hooks.connection_begin(conn, arg) != 0)
        log_warn("cannot guard a new connection (out of memory): served unguarded");
    if (!c) return EVHTP_RES_OK;
    c->conn = conn;
    conn_link(c, thr);
    return EVHTP_RES_OK;
}

static void stream_close(http_stream *st);

void http_close_all(gw_thread *thr)
{
    /* Either way the connection leaves the list: libevhtp's fini hook or
     * stream_close unlinks it. */
    while (thr->conns) {
        gw_conn *c = thr->conns;
        if (c->conn) evhtp_connection_free(c->conn);
        else stream_close((http_stream *)c);
    }
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
    if (hooks.request_read) hooks.request_read(evhtp_request_get_connection(req));
    return r;
}

void gw_req_log_context(const gw_req *r)
{
    log_set_context(r->request_id, r->traceparent);
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
    if (hooks.reply_headers) hooks.reply_headers(r);
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
    hook_replied(r, status);
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
    hook_replied(r, 200);
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

void http_end_event_stream(gw_req *r)
{
    if (!r->req) return;
    evhtp_send_reply_chunk_end(r->req);
}

/* --- event streams that own their socket --------------------------------- */

struct http_stream {
    gw_conn link;              /* first: on the thread's list, link.conn NULL */
    evutil_socket_t fd;
    bool chunked;
    bool ending;               /* the last chunk is queued: close once flushed */
    bool closing;              /* close on the loop's next turn */
    bool want_write;           /* ev also waits for the socket to take more */
    char *out;                 /* what the kernel has not taken; NULL when none */
    size_t out_off, out_len, out_cap;
    http_stream_closed_fn on_closed;
    void *arg;
    struct event *ev;          /* lives in the same allocation, after this */
};

#define STREAM_READ_CHUNK 1024

static void stream_on_io(evutil_socket_t fd, short what, void *arg);

/* One allocation: the stream, then libevent's event (its size is asked of
 * libevent, so the layout does not depend on event_struct.h). */
static http_stream *stream_alloc(void)
{
    size_t off = (sizeof(http_stream) + 15) & ~(size_t)15;
    http_stream *st = calloc(1, off + event_get_struct_event_size());
    if (st) st->ev = (struct event *)(void *)((char *)st + off);
    return st;
}

/* (Re)registers the stream's one event: always readable (a client that
 * leaves is seen at once), writable too while bytes are queued. */
static void stream_watch(http_stream *st, bool want_write)
{
    struct event_base *base = event_get_base(st->ev);
    event_del(st->ev);
    event_assign(st->ev, base, st->fd, EV_READ | EV_PERSIST | (want_write ? EV_WRITE : 0),
                 stream_on_io, st);
    event_add(st->ev, NULL);
    st->want_write = want_write;
}

/* Closes on the loop's next turn, so that on_closed never runs inside a
 * caller's loop over its streams. */
static void stream_close_soon(http_stream *st)
{
    if (st->closing) return;
    st->closing = true;
    free(st->out);
    st->out = NULL;
    st->out_off = st->out_len = st->out_cap = 0;
    event_active(st->ev, EV_WRITE, 0);
}

static void stream_close(http_stream *st)
{
    event_del(st->ev);
    close(st->fd);
    free(st->out);
    conn_unlink(&st->link);
    http_stream_closed_fn cb = st->on_closed;
    void *arg = st->arg;
    free(st);
    if (cb) cb(arg);
}

/* Appends len bytes to the queue. -1 when out of memory. */
static int stream_queue(http_stream *st, const char *data, size_t len)
{
    if (len == 0) return 0;
    size_t need = st->out_len + len;
    if (st->out_off + need > st->out_cap) {
        if (st->out_off > 0) {
            memmove(st->out, st->out + st->out_off, st->out_len);
            st->out_off = 0;
        }
        if (need > st->out_cap) {
            size_t cap = st->out_cap ? st->out_cap * 2 : 256;
            while (cap < need) cap *= 2;
            char *p = realloc(st->out, cap);
            if (!p) return -1;
            st->out = p;
            st->out_cap = cap;
        }
    }
    memcpy(st->out + st->out_off + st->out_len, data, len);
    st->out_len += len;
    return 0;
}

/* Hands the kernel what it takes of the queue. -1 on a socket error. */
static int stream_flush(http_stream *st)
{
    while (st->out_len > 0) {
        ssize_t n = send(st->fd, st->out + st->out_off, st->out_len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
            return -1;
        }
        st->out_off += (size_t)n;
        st->out_len -= (size_t)n;
    }
    /* A subscriber that caught up holds no buffer at all. */
    free(st->out);
    st->out = NULL;
    st->out_off = st->out_cap = 0;
    return 0;
}

/*
 * Writes iov straight to the socket when nothing is queued before it, and
 * queues what the kernel did not take. A subscriber keeping up has an empty
 * queue, so the bytes go out now in one sendmsg, and the event loop is
 * involved only for a subscriber that falls behind.
 */
static void stream_writev(http_stream *st, struct iovec *iov, int n)
{
    ssize_t sent = 0;
    if (st->out_len == 0) {
        struct msghdr msg = { .msg_iov = iov, .msg_iovlen = (size_t)n };
        do sent = sendmsg(st->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
        while (sent < 0 && errno == EINTR);
        if (sent < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK) { stream_close_soon(st); return; }
            sent = 0;
        }
    }
    for (int i = 0; i < n; i++) {
        size_t skip = (size_t)sent < iov[i].iov_len ? (size_t)sent : iov[i].iov_len;
        sent -= (ssize_t)skip;
        if (skip < iov[i].iov_len &&
            stream_queue(st, (const char *)iov[i].iov_base + skip, iov[i].iov_len - skip) != 0) {
            log_warn("closing an event stream: out of memory for its queue");
            stream_close_soon(st);
            return;
        }
    }
    if (st->out_len > 0 && !st->want_write) stream_watch(st, true);
}

static void stream_on_io(evutil_socket_t fd, short what, void *arg)
{
    http_stream *st = arg;
    if (st->closing) { stream_close(st); return; }
    if (what & EV_READ) {
        /* A client has nothing to say on an event stream: what it sends is
         * dropped; its end (or an error) ends the stream. */
        char buf[STREAM_READ_CHUNK];
        ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
            stream_close(st);
            return;
        }
    }
    if (what & EV_WRITE) {
        if (stream_flush(st) != 0) { stream_close(st); return; }
        if (st->out_len == 0) {
            if (st->ending) { stream_close(st); return; }
            if (st->want_write) stream_watch(st, false);
        }
    }
}

typedef struct head_writer {
    struct evbuffer *buf;
    int err;
} head_writer;

static int add_head_line(evhtp_kv_t *kv, void *arg)
{
    head_writer *w = arg;
    if (evbuffer_add_printf(w->buf, "%s: %s\r\n", kv->key, kv->val) < 0) w->err = 1;
    return 0;
}

/* The status line and headers of r's event stream, in buf. -1 on failure. */
static int write_stream_head(gw_req *r, struct evbuffer *buf, bool chunked)
{
    head_writer w = { buf, 0 };
    bool http10 = r->req->proto == EVHTP_PROTO_10;
    if (evbuffer_add_printf(buf, "HTTP/1.%d 200 OK\r\n", http10 ? 0 : 1) < 0) return -1;
    evhtp_headers_for_each(r->req->headers_out, add_head_line, &w);
    if (w.err) return -1;
    /* No "Connection: close" although the connection does close after the
     * stream (it has no parser any more): a stream's end is rare, a client
     * that wants another request opens a connection as after any idle
     * close, and clients that read a stream from a kept-alive connection
     * object (Python's http.client) keep working. */
    if (evbuffer_add_printf(buf, "%s\r\n", chunked ? "Transfer-Encoding: chunked\r\n" : "") < 0)
        return -1;
    return 0;
}

/* Copies the response head, after anything libevhtp still had queued on
 * the connection, into the stream's queue. -1 when out of memory. (The
 * bufferevent's output cannot be drained by anyone but its writer: its
 * front is frozen, so its bytes are copied, and go with it.) */
static int take_stream_head(http_stream *st, gw_req *r, struct bufferevent *bev)
{
    struct evbuffer *pending = bufferevent_get_output(bev);
    struct evbuffer *head = evbuffer_new();
    if (!head) return -1;
    int rc = -1;
    size_t plen = evbuffer_get_length(pending);
    if (write_stream_head(r, head, st->chunked) == 0) {
        size_t hlen = evbuffer_get_length(head);
        st->out = malloc(plen + hlen);
        if (st->out &&
            evbuffer_copyout(pending, st->out, plen) == (ev_ssize_t)plen &&
            evbuffer_copyout(head, st->out + plen, hlen) == (ev_ssize_t)hlen) {
            st->out_cap = st->out_len = plen + hlen;
            rc = 0;
        }
    }
    evbuffer_free(head);
    return rc;
}

/* The gw_conn libevhtp's connection fini hook would have freed. */
static gw_conn *conn_entry_of(evhtp_connection_t *conn)
{
    evhtp_hooks_t *h = conn->hooks;
    if (!h || h->on_connection_fini != (evhtp_hook_connection_fini_cb)on_connection_fini) return NULL;
    return h->on_connection_fini_arg;
}

/*
 * Frees libevhtp's connection and request for conn but keeps its socket.
 * Our hooks are taken off first, so neither fini hook runs: the guard is
 * ended and the list entry freed here. The bufferevent forgets the socket
 * (so freeing it does not close it), and the parser, request, header
 * tables, URI and buffers go with the connection.
 */
static void release_connection(evhtp_connection_t *conn, evhtp_request_t *req)
{
    hook_connection_end(conn);
    gw_conn *c = conn_entry_of(conn);
    if (c) { conn_unlink(c); free(c); }
    if (conn->hooks) evhtp_unset_all_hooks(&conn->hooks);
    if (req->hooks) evhtp_unset_all_hooks(&req->hooks);
    bufferevent_setfd(conn->bev, -1);
    evhtp_connection_free(conn);
}

http_stream *http_stream_open(gw_req *r, http_stream_closed_fn on_closed, void *arg)
{
    if (!r->req || r->replied || !r->paused) return NULL;
    evhtp_request_t *req = r->req;
    evhtp_connection_t *conn = evhtp_request_get_connection(req);
    struct bufferevent *bev = conn ? evhtp_connection_get_bev(conn) : NULL;
    evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;
    if (fd < 0) return NULL;
    http_stream *st = stream_alloc();
    if (!st) return NULL;
    st->fd = fd;
    st->chunked = req->proto != EVHTP_PROTO_10;
    st->on_closed = on_closed;
    st->arg = arg;

    http_set_header(r, "Content-Type", "text/event-stream; charset=utf-8");
    http_set_header(r, "Cache-Control", "no-cache");
    http_set_header(r, "X-Accel-Buffering", "no");
    add_reply_headers(r);
    if (take_stream_head(st, r, bev) != 0) {
        free(st->out);
        free(st);
        return NULL;
    }
    r->replied = true;
    count_response(r, 200);
    hook_replied(r, 200);

    gw_thread *thr = r->thr;
    release_connection(conn, req);
    r->req = NULL;
    r->paused = false;
    if (r->on_close) {
        void (*cb)(gw_req *) = r->on_close;
        r->on_close = NULL;
        cb(r);
    }
    conn_link(&st->link, thr);
    event_assign(st->ev, thr->base, fd, EV_READ | EV_PERSIST, stream_on_io, st);
    event_add(st->ev, NULL);
    if (stream_flush(st) != 0) stream_close_soon(st);
    else if (st->out_len > 0) stream_watch(st, true);
    gw_req_release(r);   /* libevhtp's reference: its request is gone */
    return st;
}

size_t http_stream_send(http_stream *st, const char *data, size_t len)
{
    if (st->closing || st->ending || len == 0) return st->out_len;
    char size_line[24];
    struct iovec iov[3];
    int n = 0;
    if (st->chunked) {
        int w = snprintf(size_line, sizeof size_line, "%zx\r\n", len);
        iov[n++] = (struct iovec){ size_line, (size_t)w };
    }
    iov[n++] = (struct iovec){ (void *)data, len };
    if (st->chunked) iov[n++] = (struct iovec){ (void *)"\r\n", 2 };
    stream_writev(st, iov, n);
    return st->out_len;
}

void http_stream_end(http_stream *st)
{
    if (st->closing || st->ending) return;
    if (st->chunked) {
        struct iovec iov = { (void *)"0\r\n\r\n", 5 };
        stream_writev(st, &iov, 1);
        if (st->closing) return;
    }
    st->ending = true;
    if (st->out_len == 0) stream_close_soon(st);
}

void http_stream_abort(http_stream *st)
{
    stream_close_soon(st);
}
