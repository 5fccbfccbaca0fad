/*
 * http.h - reading a request and writing its answer: headers, query
 * parameters, the body, JSON replies and RFC 9457 problem details.
 * Every reply carries X-Request-Id. A connection serves its requests one
 * at a time, in order: the next is read once this one's answer has left
 * (pipelined requests wait their turn, never their answer).
 */
#ifndef AG_HTTP_H
#define AG_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <cjson/cJSON.h>
#include "gateway.h"

/* A request header's value, or NULL. Valid while the request lives. */
const char *http_header(gw_req *r, const char *name);

/* A query parameter's raw value, or NULL. Valid while the request lives. */
const char *http_query(gw_req *r, const char *name);

/* The body as one contiguous buffer of *len bytes (not NUL-terminated),
 * owned by the request; NULL with *len 0 when there is none. */
const char *http_body(gw_req *r, size_t *len);

/* Adds a response header; name and value are copied. */
void http_set_header(gw_req *r, const char *name, const char *value);

/* Sends status with body (len bytes) of the given media type, with
 * Cache-Control: no-store unless the handler set a Cache-Control. */
void http_reply(gw_req *r, int status, const char *content_type, const char *body, size_t len);

/* Sends status (204, 304) with no body and no Content-Type. */
void http_reply_no_content(gw_req *r, int status);

/* The reason phrase of status (RFC 9110 and RFC 6585): "OK", "Too Many
 * Requests", ...; "" for a status it does not know (a status line may have
 * an empty phrase). Every status line the gateway writes takes it from here. */
const char *http_status_phrase(int status);

/*
 * Writes a whole HTTP/1.1 problem reply (status line, headers with
 * Connection: close and the security headers, RFC 9457 body) to out, for
 * a connection refused before libevhtp parsed a request (gateway/admit/guard.c).
 * rid is the reply's X-Request-Id (and the problem's request_id).
 */
void http_write_raw_problem(struct evbuffer *out, int status, const char *slug,
                            const char *detail, const char *rid);

/* Sends status with body (len bytes) as application/json. */
void http_reply_json(gw_req *r, int status, const char *body, size_t len);

/*
 * Sends an RFC 9457 problem: type is "urn:agentgate:problem:<slug>", the
 * title comes from the status, detail is the caller's one-line sentence.
 * pointer, when non-NULL, adds "errors":[{"pointer":..,"detail":..}].
 */
void http_reply_problem(gw_req *r, int status, const char *slug,
                        const char *detail, const char *pointer);

/*
 * An event stream that has taken its socket from libevhtp. Once the
 * response head is out, a held stream only ever writes, so everything
 * libevhtp keeps per connection (the 8 KB parser, the request with its
 * header tables and URI, the bufferevent and its buffers, the hooks) is
 * freed, and the stream keeps the socket, one event and, only while the
 * client is behind, the bytes it has not taken yet.
 */
typedef struct http_stream http_stream;

/* Called once when the stream's socket is closed, however it ended (the
 * client left, http_stream_end flushed, http_stream_abort, shutdown); the
 * stream is gone by then. Never called from inside an http_stream_*
 * call: always from the event loop. */
typedef void (*http_stream_closed_fn)(void *arg);

/*
 * Answers r with 200 text/event-stream (chunked on HTTP/1.1, the security
 * and CORS headers) and takes its socket, which is closed once the stream
 * ends (no further request is read from it; requests pipelined after it
 * are dropped with the connection): libevhtp's connection and request are
 * freed, r->req becomes NULL, r->on_close runs and libevhtp's reference
 * to r is dropped, so r may be freed by this call unless the caller holds
 * it. on_closed(arg) runs when the socket is closed. A HEAD request gets
 * the head alone and its stream ends at once. Returns NULL, leaving r as
 * it was, when r has gone or was already answered, when called from
 * inside libevhtp's parser (it must be called from an asynchronous step),
 * or when out of memory.
 */
http_stream *http_stream_open(gw_req *r, http_stream_closed_fn on_closed, void *arg);

/* Writes len bytes of the stream (one chunk when chunked): straight to the
 * socket when nothing waits before them, the rest queued. Returns the bytes
 * now queued (the client is that far behind). A socket error closes the
 * stream on the loop's next turn. */
size_t http_stream_send(http_stream *st, const char *data, size_t len);

/* Ends the stream (the last chunk); the socket closes once the client has
 * taken everything queued. Nothing more can be sent. */
void http_stream_end(http_stream *st);

/* Drops what is queued and closes the socket on the loop's next turn (a
 * client too slow to keep up). Nothing more can be sent. */
void http_stream_abort(http_stream *st);

/* Installed as libevhtp's post-accept callback (arg: the gw_server):
 * bounds every request body on the connection to max_body_bytes, and
 * puts the core between the socket and libevhtp's parser so that the
 * connection reads one request at a time (the guard's hook, set up by
 * connection_begin, goes in front of both). Refuses the connection when
 * out of memory. */
evhtp_res http_on_accept(evhtp_connection_t *conn, void *arg);

/* Closes every client connection still open on thr (shutdown). */
void http_close_all(gw_thread *thr);

/* True when r's body went past max_body_bytes and was discarded. */
bool http_body_too_large(gw_req *r);

/*
 * What the layers above the HTTP core do at points of a connection's and
 * a reply's life. The core calls them and knows nothing else of them, so
 * the guard and the audit trail sit above it. Any may be NULL.
 */
typedef struct http_hooks {
    /* A connection was accepted (arg: the gw_server). Returns 0, or -1
     * when it could not be set up (the connection is served all the same). */
    int (*connection_begin)(evhtp_connection_t *conn, gw_server *srv);
    /* A request on conn was read whole and is about to be served. Until
     * connection_idle, bytes that arrive belong to later requests: the
     * core keeps them from libevhtp's parser. */
    void (*request_read)(evhtp_connection_t *conn);
    /* The request on conn is over (its answer has left) and conn can take
     * the next. Bytes the client sent meanwhile are back in the
     * bufferevent's input, and its read callback is called with them
     * right after this hook, so that they are judged as a new head. */
    void (*connection_idle)(evhtp_connection_t *conn);
    /* conn is being freed. */
    void (*connection_end)(evhtp_connection_t *conn);
    /* Adds headers every reply to r carries (CORS), errors and streams included. */
    void (*reply_headers)(gw_req *r);
    /* r was answered with status (event streams: 200 as they start). */
    void (*replied)(gw_req *r, int status);
} http_hooks;

/* Sets the hooks (copied), once, before the server accepts connections. */
void http_set_hooks(const http_hooks *h);

/* Creates the request context for req (request id, traceparent) and
 * pauses the connection until req is answered. NULL when out of memory:
 * req has then been answered 500 and its connection closes. */
gw_req *http_request_begin(evhtp_request_t *req, gw_thread *thr);

#endif
