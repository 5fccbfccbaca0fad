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
    HEAD_INCOMPLETE,       /* within the caps and well formed so far; wait for more */
    HEAD_COMPLETE,         /* whole, within the caps, well formed */
    HEAD_NOT_HTTP,         /* no request line: left to the parser to refuse */
    HEAD_URI_TOO_LONG,     /* 414 */
    HEAD_TOKEN_TOO_LARGE,  /* an Authorization header over the JWT limit: 401 */
    HEAD_TOO_LARGE,        /* header bytes, count or one line over its cap: 431 */
    /* The rest are 400: a head two parsers could read two ways. */
    HEAD_BAD_REQUEST_LINE, /* not METHOD SP target SP version CRLF */
    HEAD_BAD_TARGET,       /* a control character (NUL, ...) in the request target */
    HEAD_BAD_VERSION,      /* a protocol other than HTTP/1.0 and HTTP/1.1 */
    HEAD_BAD_FIELD,        /* a header line that is not name ":" value CRLF: white space
                              before the colon, a folded line, a control character, a bare
                              CR or LF */
    HEAD_REPEATED_FIELD,   /* a header that may appear once (guard_single_fields) appears twice */
    HEAD_BAD_FRAMING,      /* Content-Length with Transfer-Encoding, a coding other than
                              chunked, chunked on HTTP/1.0, a Content-Length that is not
                              one plain number */
} head_verdict;

typedef struct head_limits {
    size_t max_uri;        /* request-target bytes */
    size_t max_bytes;      /* all header lines together, bytes */
    int max_headers;       /* header lines */
    size_t max_field;      /* one header name or value, bytes (the parser's limit) */
    size_t max_token;      /* bearer token bytes */
} head_limits;

/* What a scan found besides its verdict. */
typedef struct head_scan {
    size_t head_len;       /* HEAD_COMPLETE: bytes up to and including the empty line */
    const char *field;     /* HEAD_REPEATED_FIELD, HEAD_BAD_FRAMING: the header's name as
                              guard_single_fields spells it; NULL otherwise */
} head_scan;

/* libevhtp's parser drops the connection, unanswered, on a request target,
 * header name or header value of this many bytes or more. */
#define GUARD_PARSER_FIELD_LIMIT 8192

/* Blank lines before a request line are ignored (RFC 9112, 2.2) up to
 * this many bytes; more is not a client being lenient. */
#define GUARD_MAX_LEADING_BLANK 64

/* The headers a request may carry at most once, NULL-terminated: the
 * framing (Content-Length, Transfer-Encoding) and those the gateway acts
 * on, where one reader taking the first and another the last would
 * disagree about who asks what (Authorization, Host, Origin, ...). */
extern const char *const guard_single_fields[];

/*
 * Scans the first len bytes of a request head as they came off the wire.
 * Pure. A head is accepted when libevhtp can read it one way only: lines
 * ending in CR LF, one request line "METHOD target HTTP/1.x", header lines
 * "name: value" without folding, white space before the colon or control
 * characters, the single fields once, and a body framed by one
 * Content-Length or by "Transfer-Encoding: chunked" (HTTP/1.1), never both.
 * A head is refused as soon as its bytes so far show it, and more bytes
 * never turn a refusal into an acceptance nor change an accepted head.
 * out may be NULL.
 */
head_verdict guard_scan_head(const char *buf, size_t len, const head_limits *lim,
                             head_scan *out);

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

/* conn can take its next request (http.c: the last answer has left): the
 * idle clock runs, and what the client sent meanwhile, handed to the read
 * hook next, is judged as a new head. */
void guard_connection_idle(evhtp_connection_t *conn);

/* conn is being freed (http.c, connection fini). */
void guard_connection_end(evhtp_connection_t *conn);

#endif
