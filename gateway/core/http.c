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
 *              (gw_req_defer pauses the connection; so does a request with
 *              bytes after it, see http_request_begin) and holds a
 *              reference per pending step; libevhtp's own reference is
 *              dropped when it frees the request (client gone), so a late
 *              answer never touches freed memory, it only finds r->req
 *              NULL.
 *   answered   http_reply* writes the status line, the headers every reply
 *              carries (X-Request-Id, Cache-Control, the security headers,
 *              CORS by hook) and the body, runs the request's reply hook
 *              (Idempotency-Key keeps the answer) and the process's (the
 *              audit row), and resumes the connection. Errors are RFC 9457
 *              problems (http_reply_problem). The answer goes straight to
 *              the socket when nothing is queued before it (send_direct).
 *   streaming  an event stream takes its socket from libevhtp once its
 *              head is out (http_stream_open): the parser, request and
 *              buffers are freed and the stream keeps the socket and only
 *              the bytes the client has not taken yet, writing straight to
 *              the socket when nothing is queued. It ends with the job's
 *              terminal event, the client leaving, or shutdown.
 *
 * One request at a time. libevhtp's parser stops at the end of every
 * request (and after every blank line before one) and counts on resuming
 * the connection to parse the rest, which it does only for a connection
 * that was paused: a request pipelined behind one answered at once would
 * wait for bytes that never come, and one behind a paused request would
 * be parsed from libevhtp's resume path, past the guard that judges every
 * request head. So the core sits between the bufferevent and the parser
 * (core_read): once a request has been read whole, whatever follows is
 * held here, out of the parser's sight, and when that request's answer
 * has left, release_next hands it back through the bufferevent's read
 * callback (the guard's) as the next request. Answers go out in the order
 * of the requests, every head is judged, and a client that sends faster
 * than it reads makes the gateway keep one answer and about one read of
 * its requests.
 *
 * No epoll_ctl per request: a served connection stays armed for reading
 * (the core holds what comes, conn_pause raises only libevhtp's flag) and
 * an answer is written to the socket at once rather than armed for
 * writing, so a keep-alive client costs its reads and writes and nothing
 * more; only an answer the socket cannot take whole waits for writability.
 *
 * Status lines are written here only (write_head, http_write_raw_problem),
 * with the phrases of http_status_phrase: libevhtp's writer has a table of
 * its own that lacks 422 and 429.
 *
 * The core knows nothing of the layers above it: the guard (head checks,
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
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/uio.h>
#include <errno.h>
#include <unistd.h>
#include <event2/event.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "http.h"
#include "access_log.h"
#include "clock.h"
#include "gw_metrics.h"
#include "jsonutil.h"
#include "log.h"
#include "req_span.h"
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

/* --- status lines -------------------------------------------------------- */

const char *http_status_phrase(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 203: return "Non-Authoritative Information";
    case 204: return "No Content";
    case 205: return "Reset Content";
    case 206: return "Partial Content";
    case 300: return "Multiple Choices";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 407: return "Proxy Authentication Required";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 421: return "Misdirected Request";
    case 422: return "Unprocessable Content";
    case 426: return "Upgrade Required";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default:  return "";
    }
}

/* A problem's title: the status phrase, or a word for a status without one. */
static const char *problem_title(int status)
{
    const char *p = http_status_phrase(status);
    return p[0] ? p : "Error";
}

/* 1xx, 204 and 304 answers have no body and no Content-Length (RFC 9110,
 * 8.6 and 6.4.1). */
static bool status_has_body(int status)
{
    return status >= 200 && status != 204 && status != 304;
}

/* How the end of an answer's body is known. */
typedef enum {
    FRAMED_BY_LENGTH,   /* Content-Length */
    FRAMED_BY_CHUNKS,   /* Transfer-Encoding: chunked (event streams on HTTP/1.1) */
    FRAMED_BY_CLOSE,    /* the connection closes (event streams on HTTP/1.0) */
} body_framing;

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

/* The status line of an answer to a request of HTTP/1.minor. */
static int add_status_line(struct evbuffer *out, int minor, int status)
{
    return evbuffer_add_printf(out, "HTTP/1.%d %d %s\r\n", minor, status,
                               http_status_phrase(status)) < 0 ? -1 : 0;
}

/* The Connection header an answer needs, if any: whether the connection
 * stays open is libevhtp's reading of the request (HTTP/1.1 stays open
 * unless the client said close, HTTP/1.0 closes unless it said
 * keep-alive), and a body framed by the close never keeps it open. */
static const char *connection_header(const evhtp_request_t *req, body_framing framing)
{
    bool keep = (req->flags & EVHTP_REQ_FLAG_KEEPALIVE) && framing != FRAMED_BY_CLOSE;
    if (req->proto == EVHTP_PROTO_10) return keep ? "Connection: keep-alive\r\n" : "";
    return keep ? "" : "Connection: close\r\n";
}

/*
 * Writes the head of req's answer to out: the status line, the headers set
 * on req, then the framing (length is the body's, for a status that has
 * one) and the Connection header. The one writer of an answer's head,
 * replies and event streams alike. -1 when out of memory.
 */
static int write_head(evhtp_request_t *req, int status, struct evbuffer *out,
                      body_framing framing, size_t length)
{
    head_writer w = { out, 0 };
    if (add_status_line(out, req->proto == EVHTP_PROTO_10 ? 0 : 1, status) != 0) return -1;
    evhtp_headers_for_each(req->headers_out, add_head_line, &w);
    if (w.err) return -1;
    int rc = 0;
    if (framing == FRAMED_BY_LENGTH && status_has_body(status))
        rc = evbuffer_add_printf(out, "Content-Length: %zu\r\n", length);
    else if (framing == FRAMED_BY_CHUNKS)
        rc = evbuffer_add_printf(out, "Transfer-Encoding: chunked\r\n");
    if (rc < 0) return -1;
    return evbuffer_add_printf(out, "%s\r\n", connection_header(req, framing)) < 0 ? -1 : 0;
}

void gw_req_hold(gw_req *r) { r->refs++; }

void gw_req_release(gw_req *r)
{
    if (--r->refs > 0) return;
    req_span_end(r, 0);   /* never answered: the client left */
    if (r->state_free && r->state) r->state_free(r->state);
    free(r->idem);
    free(r);
}

/*
 * Pausing a connection, for libevhtp, is two things: its PAUSED flag
 * (its parser stops at the end of the request, its read and write
 * callbacks leave the connection alone) and disabling the socket's read
 * event, which costs an epoll_ctl now and another when it is enabled
 * again. The second is not needed here: while a request is served,
 * core_read holds whatever else the client sends. So a deferred request
 * only raises the flag (and the status libevhtp's read callback looks
 * at), and the socket stays armed for reading all along.
 */
static void conn_pause(evhtp_request_t *req)
{
    req->status = EVHTP_RES_PAUSE;
    req->conn->flags |= EVHTP_CONN_FLAG_PAUSED;
}

static void conn_unpause(evhtp_connection_t *conn)
{
    conn->flags &= ~EVHTP_CONN_FLAG_PAUSED;
    if (conn->request) conn->request->status = EVHTP_RES_OK;
}

void gw_req_defer(gw_req *r)
{
    if (r->req && !r->paused) {
        r->paused = true;
        conn_pause(r->req);
    }
}

/* --- connections: one request at a time ---------------------------------- */

/* A client connection on a loop thread's list, so that shutdown can close
 * the ones still open (libevhtp frees only connections that end). conn is
 * NULL for an event stream that has taken its socket (an http_stream, which
 * starts with this link). */
typedef struct gw_conn {
    evhtp_connection_t *conn;
    gw_thread *thr;
    struct gw_conn *prev, *next;
} gw_conn;

/* What the core keeps for a connection libevhtp serves. */
typedef struct http_conn {
    gw_conn link;                     /* first: on the thread's list */
    bufferevent_data_cb parser_read;  /* libevhtp's read callback */
    bufferevent_event_cb parser_event; /* libevhtp's event callback */
    struct evbuffer *held;            /* what the client sent after the request being served */
    struct evbuffer *reply;           /* an answer on its way straight to the socket */
    struct event *next_ev;            /* release_next, on the loop's next turn */
    short held_event;                 /* the client's end (EOF, error) seen while serving */
    bool serving;                     /* a request was read whole; its answer has not left */
    bool parsing;                     /* inside libevhtp's parser */
    bool unpause_after_parse;         /* answered inside the parser: unpause once it returns */
    bool sent_direct;                 /* the answer left by send_direct: libevhtp is owed
                                         its write callback */
    bool lone_head;                   /* it was given one request head and nothing more */
    bool *gone;                       /* set true when the connection is freed */
} http_conn;

/* Past this much held, the connection stops reading until its turn. */
#define HELD_MAX (64 * 1024)

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

static void http_conn_free(http_conn *c)
{
    if (c->gone) *c->gone = true;
    if (c->link.thr) conn_unlink(&c->link);
    if (c->next_ev) event_free(c->next_ev);
    if (c->held) evbuffer_free(c->held);
    if (c->reply) evbuffer_free(c->reply);
    free(c);
}

static evhtp_res on_connection_fini(evhtp_connection_t *conn, void *arg)
{
    hook_connection_end(conn);
    /* Unhooked first: libevhtp frees the request after this, and its fini
     * must not find the entry freed here. */
    evhtp_connection_unset_hook(conn, evhtp_hook_on_connection_fini);
    http_conn_free(arg);
    return EVHTP_RES_OK;
}

/* The core's entry for conn; NULL once it is being freed. */
static http_conn *conn_entry_of(evhtp_connection_t *conn)
{
    evhtp_hooks_t *h = conn ? conn->hooks : NULL;
    if (!h || h->on_connection_fini != (evhtp_hook_connection_fini_cb)on_connection_fini) return NULL;
    return h->on_connection_fini_arg;
}

/* True while libevhtp has a request in hand on conn: one being parsed, or
 * one read whole that it has not finished. */
static bool parser_busy(const evhtp_connection_t *conn)
{
    return (conn->flags & EVHTP_CONN_FLAG_PAUSED) ||
           (conn->request && !(conn->request->flags & EVHTP_REQ_FLAG_FINISHED));
}

/* Blank lines before a request line are ignored (RFC 9112, 2.2). libevhtp
 * skips them too, but stops after each one: they go here instead. */
static void drop_blank_lines(struct evbuffer *in)
{
    enum { PEEK = 256 };
    for (;;) {
        size_t len = evbuffer_get_length(in), n = 0;
        size_t peek = len < PEEK ? len : PEEK;
        const char *p = peek ? (const char *)evbuffer_pullup(in, (ev_ssize_t)peek) : NULL;
        while (p && n < peek && (p[n] == '\r' || p[n] == '\n')) n++;
        evbuffer_drain(in, n);
        if (n < PEEK) return;
    }
}

/* True when in holds one request head and nothing after it: its first
 * empty line ends it. */
static bool is_one_head(struct evbuffer *in)
{
    struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
    return end.pos >= 0 && (size_t)end.pos + 4 == evbuffer_get_length(in);
}

/* Keeps what the client sent after the request being served, out of the
 * parser's sight, until that request's answer has left. */
static void hold_input(http_conn *c, struct bufferevent *bev)
{
    evbuffer_add_buffer(c->held, bufferevent_get_input(bev));
    if (evbuffer_get_length(c->held) > HELD_MAX) bufferevent_disable(bev, EV_READ);
}

static bool release_held_event(http_conn *c, struct bufferevent *bev);

/*
 * The read callback between the guard and libevhtp's parser (the guard
 * calls it with what it let through). While a request is served its
 * successors are held; otherwise libevhtp parses, and whatever follows
 * the request it completed is held.
 */
static void core_read(struct bufferevent *bev, void *arg)
{
    evhtp_connection_t *conn = arg;
    http_conn *c = conn_entry_of(conn);
    if (!c) return;
    struct evbuffer *in = bufferevent_get_input(bev);
    if (c->serving) { hold_input(c, bev); return; }
    bool boundary = !parser_busy(conn);
    if (boundary) drop_blank_lines(in);
    if (evbuffer_get_length(in) == 0) return;
    bool gone = false;
    c->gone = &gone;
    c->parsing = true;
    c->lone_head = boundary && is_one_head(in);
    c->parser_read(bev, conn);      /* may free the connection */
    if (gone) return;
    c->parsing = false;
    c->gone = NULL;
    if (c->unpause_after_parse) {
        c->unpause_after_parse = false;
        conn_unpause(conn);
    }
    if (c->serving) hold_input(c, bev);
    else release_held_event(c, bev);  /* may free the connection */
}

/*
 * The event callback between the bufferevent and libevhtp's. The socket
 * stays armed for reading while a request is served, so the client's end
 * (EOF, or a reset seen on reading) can arrive before its answer has
 * left; libevhtp would free the connection, answer unsent. It is held
 * until the answer has left (release_next) and given to libevhtp then.
 * Events of writing pass at once: they end the answer itself.
 */
static void core_event(struct bufferevent *bev, short what, void *arg)
{
    http_conn *c = conn_entry_of(arg);
    if (c && c->serving && (what & BEV_EVENT_READING)) {
        c->held_event = what;
        return;
    }
    if (c) c->parser_event(bev, what, arg);
}

/* Gives libevhtp the client's end held by core_event. True when that
 * freed the connection. */
static bool release_held_event(http_conn *c, struct bufferevent *bev)
{
    if (!c->held_event) return false;
    short what = c->held_event;
    c->held_event = 0;
    c->parser_event(bev, what, c->link.conn);
    return true;
}

/* libevhtp learns that an answer has left from its write callback, which
 * the bufferevent runs once its output is empty. An answer that went
 * straight to the socket never passed through that output, so the
 * callback is run here instead: libevhtp finishes the request (frees it
 * and readies its parser, or closes the connection). False when the
 * connection is gone. */
static bool finish_sent_direct(http_conn *c, struct bufferevent *bev)
{
    if (!c->sent_direct) return true;
    c->sent_direct = false;
    bufferevent_data_cb writecb;
    void *cbarg;
    bufferevent_getcb(bev, NULL, &writecb, NULL, &cbarg);
    if (!writecb) return true;
    bool gone = false;
    c->gone = &gone;
    writecb(bev, cbarg);            /* may free the connection */
    if (gone) return false;
    c->gone = NULL;
    return true;
}

/* The connection takes its next request once libevhtp is done with the
 * last: its answer has left and the request is finished or freed. */
static bool ready_for_next(http_conn *c)
{
    evhtp_connection_t *conn = c->link.conn;
    return c->serving && !parser_busy(conn) &&
           evbuffer_get_length(bufferevent_get_output(evhtp_connection_get_bev(conn))) == 0;
}

/* Hands what the client sent meanwhile back to the bufferevent's input, in
 * front of anything read since, and runs its read callback (the guard's,
 * which judges the next head before the parser sees it). */
static void release_next(evutil_socket_t fd, short what, void *arg)
{
    (void)fd; (void)what;
    http_conn *c = arg;
    struct bufferevent *bev = evhtp_connection_get_bev(c->link.conn);
    if (!finish_sent_direct(c, bev)) return;
    if (!ready_for_next(c)) return;
    c->serving = false;
    struct evbuffer *in = bufferevent_get_input(bev);
    evbuffer_prepend_buffer(in, c->held);
    if (!(bufferevent_get_enabled(bev) & EV_READ) && !c->held_event)
        bufferevent_enable(bev, EV_READ);
    hook_connection_idle(c->link.conn);
    if (evbuffer_get_length(in) == 0) {
        release_held_event(c, bev);   /* may free the connection */
        return;
    }
    bufferevent_data_cb readcb;
    void *cbarg;
    bufferevent_getcb(bev, &readcb, NULL, NULL, &cbarg);
    if (readcb) readcb(bev, cbarg);   /* may free the connection */
}

/* Checks, on the loop's next turn (after libevhtp's own callbacks for the
 * answer), whether conn can take its next request. */
static void release_soon(evhtp_connection_t *conn)
{
    http_conn *c = conn_entry_of(conn);
    if (c && c->serving) event_active(c->next_ev, EV_TIMEOUT, 1);
}

static http_conn *http_conn_new(evhtp_connection_t *conn)
{
    struct bufferevent *bev = evhtp_connection_get_bev(conn);
    bufferevent_data_cb readcb, writecb;
    bufferevent_event_cb eventcb;
    void *cbarg;
    if (!bev) return NULL;
    bufferevent_getcb(bev, &readcb, &writecb, &eventcb, &cbarg);
    if (!readcb || cbarg != conn) return NULL;   /* not the libevhtp this was written for */
    http_conn *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->link.conn = conn;
    c->parser_read = readcb;
    c->parser_event = eventcb;
    c->held = evbuffer_new();
    c->reply = evbuffer_new();
    c->next_ev = event_new(conn->evbase, -1, 0, release_next, c);
    if (!c->held || !c->reply || !c->next_ev || !eventcb) { http_conn_free(c); return NULL; }
    bufferevent_setcb(bev, core_read, writecb, core_event, cbarg);
    return c;
}

static evhtp_res on_request_fini(evhtp_request_t *req, void *arg)
{
    gw_req *r = arg;
    release_soon(req->conn);
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

/*
 * Nagle's algorithm on or off for a connection's socket. An answer is
 * mostly one write, but one that leaves in parts (a large body, an
 * answer behind a slow reader) would have its last small segment held by
 * Nagle until the client's delayed ACK, up to 40 ms on Linux: so answers
 * go out with TCP_NODELAY. An event stream turns it back on: its events
 * are many small writes, and letting the kernel coalesce them while a
 * segment is in flight halves the gateway's CPU per delivery. Not a TCP
 * socket (a Unix one): the call fails, and there is nothing to change.
 */
static void socket_nodelay(evutil_socket_t fd, int on)
{
    if (fd >= 0) (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
}

evhtp_res http_on_accept(evhtp_connection_t *conn, void *arg)
{
    socket_nodelay(conn->sock, 1);
    http_conn *c = http_conn_new(conn);
    if (!c) {
        log_warn("cannot set up a new connection (out of memory): closed");
        return EVHTP_RES_ERROR;
    }
    gw_thread *thr = conn->thread ? evthr_get_aux(conn->thread) : NULL;
    if (thr) conn_link(&c->link, thr);
    evhtp_connection_set_hook(conn, evhtp_hook_on_read, (evhtp_hook)limit_body, arg);
    evhtp_connection_set_hook(conn, evhtp_hook_on_connection_fini, (evhtp_hook)on_connection_fini, c);
    /* Unguarded, a head would reach the parser unjudged: refused instead
     * (libevhtp frees the connection, and the fini hook c). */
    if (hooks.connection_begin && hooks.connection_begin(conn, arg) != 0) {
        log_warn("cannot guard a new connection (out of memory): closed");
        return EVHTP_RES_ERROR;
    }
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

/* What is left to say when there is no memory for a request's context:
 * 500, and the connection closes after it. */
static void answer_without_context(evhtp_request_t *req)
{
    log_error("out of memory for a request: answered 500, connection closed");
    req->flags &= ~EVHTP_REQ_FLAG_KEEPALIVE;
    evbuffer_drain(req->buffer_out, evbuffer_get_length(req->buffer_out));
    write_head(req, 500, bufferevent_get_output(evhtp_request_get_bev(req)), FRAMED_BY_LENGTH, 0);
    evhtp_send_reply_end(req);
}

gw_req *http_request_begin(evhtp_request_t *req, gw_thread *thr)
{
    /* Read whole: until it is answered, later bytes wait (core_read). */
    http_conn *c = conn_entry_of(req->conn);
    if (c) c->serving = true;
    gw_req *r = calloc(1, sizeof *r);
    if (!r) { answer_without_context(req); return NULL; }
    r->req = req;
    r->thr = thr;
    r->refs = 1;
    r->started_ms = clock_mono_ms();
    r->started_s = clock_mono_s();
    evhtp_request_set_hook(req, evhtp_hook_on_request_fini, (evhtp_hook)on_request_fini, r);
    /* A request that came with bytes after it (or may have: a body) is
     * paused until answered, even when that is at once: libevhtp would
     * otherwise "resume" a connection that was never paused to get at
     * them, which it refuses with an error line. (They are not its to
     * parse: core_read holds them.) */
    if (!c || !c->parsing || !c->lone_head) gw_req_defer(r);

    const char *rid = evhtp_header_find(req->headers_in, "X-Request-Id");
    if (rid && request_id_acceptable(rid)) snprintf(r->request_id, sizeof r->request_id, "%s", rid);
    else uuid_v4(r->request_id);

    req_span_begin(r, evhtp_header_find(req->headers_in, "traceparent"));

    log_set_context(r->request_id, r->traceparent);
    http_set_header(r, "X-Request-Id", r->request_id);
    if (hooks.request_read) hooks.request_read(evhtp_request_get_connection(req));
    return r;
}

void gw_req_log_context(const gw_req *r)
{
    log_set_context(r->request_id, r->traceparent);
    if (r->authenticated) log_set_job(NULL, r->who.tenant_id);
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
    gw_metrics_answered(r, status);
    access_log_request(r, status);
    if (status >= 500) log_warn("%d answered in %lld ms", status, clock_mono_ms() - r->started_ms);
    req_span_end(r, status);
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
    json_add_str(p, "title", problem_title(status), &ok);
    json_add_num(p, "status", status, &ok);
    json_add_str(p, "detail", detail, &ok);
    json_add_str(p, "request_id", rid, &ok);
    p = json_done(p, ok);
    char *text = p ? json_print(p) : NULL;
    cJSON_Delete(p);
    const char *body = text ? text : "";
    add_status_line(out, 1, status);
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

/*
 * Writes the answer in c->reply to the socket now, in one writev, rather
 * than through the bufferevent's output, which would arm the socket for
 * writing (an epoll_ctl) and disarm it (another) once the bytes had left:
 * a client that reads its answers has room for one in its socket buffer.
 * What the kernel does not take (or an error) goes to the output and on
 * from there as any answer; one that went whole is finished for libevhtp
 * on the loop's next turn (finish_sent_direct, from release_next).
 */
static void send_direct(http_conn *c, struct bufferevent *bev)
{
    evutil_socket_t fd = bufferevent_getfd(bev);
    if (fd >= 0) evbuffer_write(c->reply, fd);
    if (evbuffer_get_length(c->reply) == 0) {
        c->sent_direct = true;
        return;
    }
    bufferevent_write_buffer(bev, c->reply);
}

/*
 * Writes req's answer to its connection: the head, then the body that
 * buffer_out holds, unless the status has none or req is a HEAD (whose
 * Content-Length is still the body's). libevhtp's keep-alive handling
 * takes the connection from there once the bytes have left.
 */
static void write_reply(evhtp_request_t *req, int status)
{
    struct bufferevent *bev = evhtp_request_get_bev(req);
    struct evbuffer *queued = bufferevent_get_output(bev);
    http_conn *c = conn_entry_of(req->conn);
    /* Straight to the socket when nothing waits to go before it. */
    bool direct = c && evbuffer_get_length(queued) == 0;
    struct evbuffer *out = direct ? c->reply : queued;
    size_t len = evbuffer_get_length(req->buffer_out);
    if (write_head(req, status, out, FRAMED_BY_LENGTH, len) != 0) {
        /* What went out is not a whole answer: nothing may follow it. */
        log_error("out of memory writing a %d answer: closing its connection", status);
        req->flags &= ~EVHTP_REQ_FLAG_KEEPALIVE;
    }
    if (status_has_body(status) && evhtp_request_get_method(req) != htp_method_HEAD)
        evbuffer_add_buffer(out, req->buffer_out);
    else
        evbuffer_drain(req->buffer_out, len);
    evhtp_send_reply_end(req);
    if (direct) send_direct(c, bev);
}

/* The answer is written: libevhtp may finish the request. Inside its
 * parser the flag stays up until the parser returns (core_read), so that
 * the parser stops at this request's end and its read callback looks for
 * no next one. A connection libevhtp meant to free while it was paused
 * is handed back to it (its resume frees it). */
static void unpause_answered(evhtp_connection_t *conn)
{
    http_conn *c = conn_entry_of(conn);
    if (conn->flags & EVHTP_CONN_FLAG_FREE_CONN) evhtp_connection_resume(conn);
    else if (c && c->parsing) c->unpause_after_parse = true;
    else conn_unpause(conn);
}

/* r's answer is written: the connection takes its next request once the
 * answer has left. */
static void reply_written(gw_req *r)
{
    if (r->paused) {
        r->paused = false;
        unpause_answered(r->req->conn);
    }
    release_soon(r->req->conn);
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
    write_reply(r->req, status);
    reply_written(r);
}

void http_reply(gw_req *r, int status, const char *content_type, const char *body, size_t len)
{
    if (r->replied) return;
    http_set_header(r, "Content-Type", content_type);
    /* A handler that set its own (the console's files) keeps it. */
    if (!r->req || !evhtp_header_find(r->req->headers_out, "Cache-Control"))
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
    cJSON_AddStringToObject(p, "title", problem_title(status));
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

static void set_event_stream_headers(gw_req *r)
{
    http_set_header(r, "Content-Type", "text/event-stream; charset=utf-8");
    http_set_header(r, "Cache-Control", "no-cache");
    http_set_header(r, "X-Accel-Buffering", "no");
    add_reply_headers(r);
}

/* A HEAD request gets the head of an event stream and nothing after it. */
static bool head_only(evhtp_request_t *req)
{
    return evhtp_request_get_method(req) == htp_method_HEAD;
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

/* The status line and headers of r's event stream, in buf. -1 on failure.
 * "Connection: close" only when the client asked for it, although the
 * connection does close after the stream (it has no parser any more): a
 * stream's end is rare, a client that wants another request opens a
 * connection as after any idle close, and clients that read a stream from
 * a kept-alive connection object (Python's http.client) keep working. */
static int write_stream_head(gw_req *r, struct evbuffer *buf, bool chunked)
{
    return write_head(r->req, 200, buf, chunked ? FRAMED_BY_CHUNKS : FRAMED_BY_CLOSE, 0);
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
    http_conn *c = conn_entry_of(conn);
    if (c) http_conn_free(c);    /* with whatever was pipelined after the stream */
    if (conn->hooks) evhtp_unset_all_hooks(&conn->hooks);
    if (req->hooks) evhtp_unset_all_hooks(&req->hooks);
    bufferevent_setfd(conn->bev, -1);
    evhtp_connection_free(conn);
}

http_stream *http_stream_open(gw_req *r, http_stream_closed_fn on_closed, void *arg)
{
    if (!r->req || r->replied) return NULL;
    evhtp_request_t *req = r->req;
    evhtp_connection_t *conn = evhtp_request_get_connection(req);
    http_conn *c = conn_entry_of(conn);
    /* libevhtp's parser is on the stack: it would use the connection
     * freed here when it returns. */
    if (!c || c->parsing) return NULL;
    struct bufferevent *bev = evhtp_connection_get_bev(conn);
    evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;
    if (fd < 0) return NULL;
    http_stream *st = stream_alloc();
    if (!st) return NULL;
    socket_nodelay(fd, 0);
    st->fd = fd;
    st->chunked = req->proto != EVHTP_PROTO_10;
    st->ending = head_only(req);   /* the head is the whole answer */
    st->on_closed = on_closed;
    st->arg = arg;

    set_event_stream_headers(r);
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
    if (stream_flush(st) != 0 || (st->ending && st->out_len == 0)) stream_close_soon(st);
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
