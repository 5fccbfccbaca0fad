/*
 * guard.h - hostile-HTTP defences applied before a request is routed:
 * caps on URI length and headers, CORS (preflight answered here, and the
 * Access-Control-* headers on every reply to an allowed origin) and the
 * security headers every reply carries.
 */
#ifndef AG_GUARD_H
#define AG_GUARD_H

#include "gateway.h"

/*
 * Checks r before routing. Returns 0 to go on, or -1 when it has already
 * answered (414 for a URI over the cap, 431 for headers over theirs, 204
 * or 403 for a CORS preflight). gateway/admit/guard.c.
 */
int guard_request(gw_req *r);

/*
 * Adds the CORS headers to r's reply when its Origin is one of
 * AGENTGATE_CORS_ORIGINS (Access-Control-Allow-Origin, Vary: Origin,
 * Access-Control-Expose-Headers); nothing otherwise. http.c calls it for
 * every reply, errors and event streams included.
 */
void guard_add_cors_headers(gw_req *r);

/* True when origin is, byte for byte, one of the comma-separated entries
 * of list (spaces around entries ignored). "*" and "null" never match. */
bool guard_origin_allowed(const char *list, const char *origin);

/* What a request head (the bytes before libevhtp's parser sees them) is. */
typedef enum {
    HEAD_INCOMPLETE,       /* within the caps so far; wait for more */
    HEAD_COMPLETE,         /* whole, within the caps */
    HEAD_NOT_HTTP,         /* no request line: left to the parser to refuse */
    HEAD_URI_TOO_LONG,     /* 414 */
    HEAD_TOKEN_TOO_LARGE,  /* an Authorization header over the JWT limit: 401 */
    HEAD_TOO_LARGE,        /* header bytes, count or one line over its cap: 431 */
} head_verdict;

typedef struct head_limits {
    size_t max_uri;        /* request-target bytes */
    size_t max_bytes;      /* all header lines together, bytes */
    int max_headers;       /* header lines */
    size_t max_field;      /* one header name or value, bytes (the parser's limit) */
    size_t max_token;      /* bearer token bytes */
} head_limits;

/* libevhtp's parser drops the connection, unanswered, on a request target,
 * header name or header value of this many bytes or more. */
#define GUARD_PARSER_FIELD_LIMIT 8192

/*
 * Scans the first len bytes of a request head as they came off the wire.
 * Pure. On HEAD_COMPLETE, *head_len is the bytes up to and including the
 * empty line that ends it.
 */
head_verdict guard_scan_head(const char *buf, size_t len, const head_limits *lim,
                             size_t *head_len);

/*
 * Post-accept (http.c): puts the raw-head guard in front of libevhtp's
 * parser on conn and starts its slow-client clock: the head of each
 * request must be complete within header_timeout_ms of the connection or
 * of its first byte, its body within body_timeout_ms of the head (else
 * 408 and the connection closed), and a connection idle between requests
 * is closed after idle_timeout_ms. Returns 0, or -1 when out of memory (conn is
 * then served unguarded).
 */
int guard_connection_begin(evhtp_connection_t *conn, gw_server *srv);

/* The request on conn has been read whole, body included, and is about to
 * be served (http.c): its body clock stops. */
void guard_request_read(evhtp_connection_t *conn);

/* The request on conn is over (http.c, request fini): the idle clock runs. */
void guard_connection_idle(evhtp_connection_t *conn);

/* conn is being freed (http.c, connection fini). */
void guard_connection_end(evhtp_connection_t *conn);

#endif
