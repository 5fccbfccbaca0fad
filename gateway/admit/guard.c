/*
 * guard.c - defences against hostile HTTP clients (see guard.h).
 *
 * Two layers. In front of libevhtp's parser, a read callback on every
 * connection holds the bytes of a request head until the head is whole,
 * and judges it first (guard_scan_head): libevhtp drops a connection
 * without a word on a header line over 8 KB, so a head over a cap is
 * answered here (414, 431, or 401 for an oversize bearer token); and a
 * head that two parsers could read two ways (both Content-Length and
 * Transfer-Encoding, a repeated Authorization, a NUL in the target, a
 * protocol other than HTTP/1.x, a folded line, white space before a
 * colon) is answered 400, since what follows it might be its body or a
 * smuggled request; so is, once its body is read, a chunked request with
 * trailer fields. Either way the connection is closed. Every request
 * passes here, pipelined ones included: the HTTP core hands a
 * connection's bytes to the parser one request at a time, through this
 * callback. The same layer runs each connection's slow-client clock (a
 * head must arrive within header_timeout_ms, its body within
 * body_timeout_ms of the head, an idle keep-alive connection lasts
 * idle_timeout_ms). Then, on the parsed request, guard_request checks the
 * caps again and answers CORS preflights.
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
#include "gw_metrics.h"
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

static bool body_had_trailers(evhtp_connection_t *conn);

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

    if (body_had_trailers(req->conn)) {
        /* libevhtp ends a chunked body at its first trailer line and would
         * read the lines after it as the next request, where a proxy reads
         * them as trailers: the connection closes, its rest unread. */
        req->flags &= ~EVHTP_REQ_FLAG_KEEPALIVE;
        http_reply_problem(r, 400, "malformed-request",
                           "trailer fields after a chunked body are not accepted", NULL);
        return -1;
    }
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

/* Which of guard_single_fields a header is. */
enum single_field {
    SF_AUTHORIZATION, SF_HOST, SF_CONTENT_LENGTH, SF_TRANSFER_ENCODING, SF_CONTENT_TYPE,
    SF_IDEMPOTENCY_KEY, SF_ORIGIN, SF_LAST_EVENT_ID, SF_COUNT
};

const char *const guard_single_fields[SF_COUNT + 1] = {
    [SF_AUTHORIZATION] = "Authorization",
    [SF_HOST] = "Host",
    [SF_CONTENT_LENGTH] = "Content-Length",
    [SF_TRANSFER_ENCODING] = "Transfer-Encoding",
    [SF_CONTENT_TYPE] = "Content-Type",
    [SF_IDEMPOTENCY_KEY] = "Idempotency-Key",
    [SF_ORIGIN] = "Origin",
    [SF_LAST_EVENT_ID] = "Last-Event-ID",
    [SF_COUNT] = NULL,
};

/* A method character, exactly as libevhtp's parser takes them: what it
 * would not take is left to it to refuse, anything it takes is judged. */
static bool is_method_char(char c) { return (c >= 'A' && c <= 'Z') || c == '_'; }

/* The longest method judged; libevhtp takes longer ones, which are refused. */
#define METHOD_MAX 32

/* A control character (RFC 5234 CTL): never in a target, in a value only
 * as a tab. */
static bool is_ctl(unsigned char c) { return c < 0x20 || c == 0x7f; }

/* A character of a header name (RFC 9110 tchar). */
static bool is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* How a line of the head ends, as far as the bytes go. */
typedef enum {
    LINE_PARTIAL,   /* not yet: no CR LF so far */
    LINE_WHOLE,     /* CR LF */
    LINE_BROKEN,    /* a CR without LF, or an LF without CR: read two ways by two parsers */
} line_end;

/* The line at p (len bytes available): *n is its length without the line
 * end, or the bytes so far. */
static line_end line_at(const char *p, size_t len, size_t *n)
{
    for (size_t i = 0; i < len; i++) {
        if (p[i] == '\n') { *n = i; return LINE_BROKEN; }
        if (p[i] == '\r') {
            *n = i;
            if (i + 1 == len) return LINE_PARTIAL;
            return p[i + 1] == '\n' ? LINE_WHOLE : LINE_BROKEN;
        }
    }
    *n = len;
    return LINE_PARTIAL;
}

/* The protocol after the target, byte by byte, so that what a part of the
 * line shows holds for the whole: exactly HTTP/1.0 or HTTP/1.1. */
static head_verdict scan_version(const char *v, size_t n, line_end end, bool *http10)
{
    static const char http1[] = "HTTP/1.";
    for (size_t i = 0; i < n; i++) {
        bool ok = i < 7 ? v[i] == http1[i] : i == 7 && (v[i] == '0' || v[i] == '1');
        if (!ok) return v[i] == ' ' ? HEAD_BAD_REQUEST_LINE : HEAD_BAD_VERSION;
    }
    if (end == LINE_PARTIAL) return HEAD_INCOMPLETE;
    if (end == LINE_BROKEN) return HEAD_BAD_REQUEST_LINE;
    if (n != 8) return HEAD_BAD_VERSION;
    *http10 = v[7] == '0';
    return HEAD_COMPLETE;
}

/* The request line: METHOD SP target SP version. HEAD_COMPLETE when it is
 * whole and good, HEAD_INCOMPLETE when good so far. */
static head_verdict scan_request_line(const char *p, size_t n, line_end end,
                                      const head_limits *lim, bool *http10)
{
    size_t m = 0;
    while (m < n && m <= METHOD_MAX && is_method_char(p[m])) m++;
    if (m > METHOD_MAX) return HEAD_BAD_REQUEST_LINE;
    if (m == n) return end == LINE_PARTIAL ? HEAD_INCOMPLETE : HEAD_NOT_HTTP;
    if (m == 0 || p[m] != ' ') return HEAD_NOT_HTTP;
    const char *target = p + m + 1;
    size_t rest = n - m - 1;
    size_t cap = lim->max_uri < GUARD_PARSER_FIELD_LIMIT - 1 ? lim->max_uri
                                                             : GUARD_PARSER_FIELD_LIMIT - 1;
    /* Judged as far as the cap, so that a long target is refused before
     * it ends. libevhtp keeps the target as a C string: a NUL would cut
     * it, and the gateway would serve another path than was sent. */
    size_t t = 0;
    while (t < rest && t <= cap && target[t] != ' ') {
        if (is_ctl((unsigned char)target[t])) return HEAD_BAD_TARGET;
        t++;
    }
    if (t > cap) return HEAD_URI_TOO_LONG;
    if (t == rest) return end == LINE_PARTIAL ? HEAD_INCOMPLETE : HEAD_BAD_REQUEST_LINE;
    if (t == 0) return HEAD_BAD_REQUEST_LINE;
    return scan_version(target + t + 1, rest - t - 1, end, http10);
}

/* What the header lines of a head said, for the checks at its end. */
typedef struct head_fields {
    unsigned seen;           /* a bit per single field */
    bool http10;
    const char *length;      /* Content-Length's value, as sent after the colon */
    size_t length_len;
    const char *coding;      /* Transfer-Encoding's */
    size_t coding_len;
} head_fields;

static int single_field_of(const char *name, size_t len)
{
    for (int i = 0; i < SF_COUNT; i++)
        if (strlen(guard_single_fields[i]) == len && strncasecmp(name, guard_single_fields[i], len) == 0)
            return i;
    return -1;
}

/* Notes a whole header line of a single field; HEAD_REPEATED_FIELD when it
 * came before. */
static head_verdict note_single_field(int field, const char *raw, size_t raw_len,
                                      head_fields *f, head_scan *out)
{
    if (f->seen & (1u << field)) {
        out->field = guard_single_fields[field];
        return HEAD_REPEATED_FIELD;
    }
    f->seen |= 1u << field;
    if (field == SF_CONTENT_LENGTH) { f->length = raw; f->length_len = raw_len; }
    if (field == SF_TRANSFER_ENCODING) { f->coding = raw; f->coding_len = raw_len; }
    return HEAD_INCOMPLETE;
}

/* One header line (n bytes, maybe not whole yet). HEAD_INCOMPLETE when it
 * is good so far. Its bytes are judged in order, so that what a part of
 * the line shows holds for the whole. */
static head_verdict scan_header_line(const char *p, size_t n, line_end end,
                                     const head_limits *lim, head_fields *f, head_scan *out)
{
    /* A line that starts with white space continues the last one
     * (obs-fold, RFC 9112 5.2); libevhtp would read a tab as more of the
     * last value and a space as part of a new name. */
    if (n > 0 && (p[0] == ' ' || p[0] == '\t')) return HEAD_BAD_FIELD;
    size_t name_len = 0;
    while (name_len < n && p[name_len] != ':') {
        /* White space before the colon (RFC 9112 5.1) is one of these:
         * "Content-Length : 5" would be no Content-Length to libevhtp. */
        if (!is_tchar((unsigned char)p[name_len])) return HEAD_BAD_FIELD;
        if (++name_len >= lim->max_field) return HEAD_TOO_LARGE;
    }
    if (name_len == n) return end == LINE_PARTIAL ? HEAD_INCOMPLETE : HEAD_BAD_FIELD;
    if (name_len == 0) return HEAD_BAD_FIELD;

    const char *raw = p + name_len + 1;
    size_t raw_len = n - name_len - 1;
    const char *value = raw;
    size_t value_len = raw_len;
    while (value_len > 0 && (*value == ' ' || *value == '\t')) { value++; value_len--; }
    int field = single_field_of(p, name_len);
    size_t cap = lim->max_field;
    head_verdict over = HEAD_TOO_LARGE;
    if (field == SF_AUTHORIZATION) {
        /* "Bearer " and spaces around it are a few bytes at most. */
        if (lim->max_token + 17 < cap) cap = lim->max_token + 17;
        over = HEAD_TOKEN_TOO_LARGE;
    }
    size_t judged = value_len < cap ? value_len : cap;
    for (size_t i = 0; i < judged; i++)
        if (is_ctl((unsigned char)value[i]) && value[i] != '\t') return HEAD_BAD_FIELD;
    if (value_len >= cap) return over;
    if (end == LINE_BROKEN) return HEAD_BAD_FIELD;
    if (end == LINE_PARTIAL || field < 0) return HEAD_INCOMPLETE;
    return note_single_field(field, raw, raw_len, f, out);
}

/* Content-Length as libevhtp reads it without a doubt: spaces, 1 to 18
 * digits, blanks. */
static bool length_valid(const char *v, size_t n)
{
    size_t i = 0, digits = 0;
    while (i < n && v[i] == ' ') i++;
    while (i < n && v[i] >= '0' && v[i] <= '9') { i++; digits++; }
    while (i < n && (v[i] == ' ' || v[i] == '\t')) i++;
    return i == n && digits >= 1 && digits <= 18;
}

/* "chunked" spelled the one way libevhtp's parser recognises (after
 * spaces, "chunked" or "Chunked" and nothing more): any other spelling it
 * would not see, and would read the chunks as the next request. */
static bool coding_is_chunked(const char *v, size_t n)
{
    while (n > 0 && *v == ' ') { v++; n--; }
    return n == 7 && (v[0] == 'c' || v[0] == 'C') && memcmp(v + 1, "hunked", 6) == 0;
}

/* How the body of a whole head is framed (RFC 9112 6.1 and 6.3): by one
 * Content-Length, or by chunked alone on HTTP/1.1, never both, since two
 * readers could pick different ones and disagree where the next request
 * starts. */
static head_verdict check_framing(const head_fields *f, head_scan *out)
{
    bool has_length = f->seen & (1u << SF_CONTENT_LENGTH);
    if (f->seen & (1u << SF_TRANSFER_ENCODING)) {
        out->field = guard_single_fields[SF_TRANSFER_ENCODING];
        if (has_length || f->http10 || !coding_is_chunked(f->coding, f->coding_len))
            return HEAD_BAD_FRAMING;
    }
    if (has_length && !length_valid(f->length, f->length_len)) {
        out->field = guard_single_fields[SF_CONTENT_LENGTH];
        return HEAD_BAD_FRAMING;
    }
    out->field = NULL;
    return HEAD_COMPLETE;
}

head_verdict guard_scan_head(const char *buf, size_t len, const head_limits *lim,
                             head_scan *out)
{
    head_scan ignored;
    if (!out) out = &ignored;
    *out = (head_scan){ 0 };
    size_t i = 0;
    while (i < len && (buf[i] == '\r' || buf[i] == '\n')) i++; /* RFC 9112 2.2 */
    if (i > GUARD_MAX_LEADING_BLANK) return HEAD_BAD_REQUEST_LINE;
    if (i == len) return HEAD_INCOMPLETE;

    size_t n;
    line_end end = line_at(buf + i, len - i, &n);
    head_fields f = { 0 };
    head_verdict v = scan_request_line(buf + i, n, end, lim, &f.http10);
    if (v != HEAD_COMPLETE) return v;
    i += n + 2;

    size_t bytes = 0;
    int count = 0;
    while (i < len) {
        end = line_at(buf + i, len - i, &n);
        if (end == LINE_WHOLE && n == 0) {
            out->head_len = i + 2;
            return check_framing(&f, out);
        }
        /* A lone CR may be the head's last line starting: it counts
         * towards no cap, or a head within them would be refused when
         * its final CR and LF arrive apart. */
        if (end == LINE_PARTIAL && n == 0) return HEAD_INCOMPLETE;
        v = scan_header_line(buf + i, n, end, lim, &f, out);
        if (v != HEAD_INCOMPLETE) return v;
        bytes += n + 2;
        if (bytes > lim->max_bytes) return HEAD_TOO_LARGE;
        if (end != LINE_WHOLE) return HEAD_INCOMPLETE;
        if (++count > lim->max_headers) return HEAD_TOO_LARGE;
        i += n + 2;
    }
    return HEAD_INCOMPLETE;
}

/* --- the connection guard ---------------------------------------------- */

typedef enum {
    CONN_HEAD,     /* waiting for a whole head; the header clock runs */
    CONN_PARSING,  /* head handed to libevhtp, not parsed yet; the clock runs */
    CONN_BODY,     /* head parsed, body still arriving; the body clock runs */
    CONN_IDLE,     /* between requests; the idle clock runs */
    CONN_BUSY,     /* a request is being served (event streams included); what
                      arrives meanwhile the core holds for the next one */
    CONN_CLOSING,  /* refused: answering, then closing */
} conn_mode;

typedef struct guard_conn {
    evhtp_connection_t *conn;
    gw_server *srv;
    bufferevent_data_cb parser_readcb; /* the HTTP core's, in front of libevhtp's parser */
    void *parser_arg;
    struct event *timer;
    conn_mode mode;
    size_t scanned;                    /* head bytes seen at the last scan */
    size_t discarded;                  /* bytes drained while closing */
    uint64_t last_chunk_at;            /* the parser's byte count after a chunked
                                          body's last chunk; 0 when none */
    bool trailers;                     /* the request read whole had trailer fields */
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

/* libevhtp parsed a whole head, which the read hook judged first. */
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

/* A chunked body's last chunk ("0" CR LF) was read; what follows up to
 * the empty line is its trailer section. */
static evhtp_res on_last_chunk(evhtp_request_t *req, void *arg)
{
    guard_conn *g = arg;
    g->last_chunk_at = htparser_get_total_bytes_read(req->conn->parser);
    return EVHTP_RES_OK;
}

/* True once for a request whose chunked body ended with trailer fields:
 * more than the empty line's CR LF after the last chunk. */
static bool body_had_trailers(evhtp_connection_t *conn)
{
    guard_conn *g = guard_of(conn);
    if (!g || !g->trailers) return false;
    g->trailers = false;
    return true;
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
    series_inc(gw_metric.requests);
    series_inc(gw_metric.responses[status / 100]);

    struct evbuffer *in = bufferevent_get_input(bev);
    evbuffer_drain(in, evbuffer_get_length(in));
    g->mode = CONN_CLOSING;
    bufferevent_setcb(bev, closing_read, closing_written, closing_event, g);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
    http_write_raw_problem(bufferevent_get_output(bev), status, slug, detail, rid);
    arm(g, CONN_CLOSING, CLOSING_LINGER_MS);
}

/* The detail of a 400 for a head two parsers could read two ways. */
static void malformed_detail(head_verdict v, const char *field, char *detail, size_t size)
{
    switch (v) {
    case HEAD_BAD_TARGET:
        snprintf(detail, size, "the request target holds a control character");
        break;
    case HEAD_BAD_VERSION:
        snprintf(detail, size, "only HTTP/1.0 and HTTP/1.1 are spoken here");
        break;
    case HEAD_BAD_FIELD:
        snprintf(detail, size, "a header line is not a name, a colon and a value ended by CR LF "
                               "(no white space before the colon, no folded line, no control character)");
        break;
    case HEAD_REPEATED_FIELD:
        snprintf(detail, size, "the %s header appears more than once", field ? field : "same");
        break;
    case HEAD_BAD_FRAMING:
        if (field && strcmp(field, "Content-Length") == 0)
            snprintf(detail, size, "Content-Length must be one whole number");
        else
            snprintf(detail, size, "Transfer-Encoding must be chunked alone, on HTTP/1.1, "
                                   "without Content-Length");
        break;
    default:
        snprintf(detail, size, "the request line is not a method, a target and HTTP/1.x "
                               "separated by single spaces and ended by CR LF");
        break;
    }
}

static void refuse_head(guard_conn *g, struct bufferevent *bev, head_verdict v, const head_scan *scan)
{
    const ag_config *cfg = &g->srv->cfg;
    char detail[160];
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
    case HEAD_TOO_LARGE:
        status = 431;
        slug = "headers-too-large";
        snprintf(detail, sizeof detail,
                 "the request has more than %d headers, %zu header bytes, or a header over %d bytes",
                 cfg->max_headers, cfg->max_header_bytes, GUARD_PARSER_FIELD_LIMIT - 1);
        break;
    default:
        /* RFC 9112 asks for 400 and a closed connection: the bytes after
         * such a head could be its body or a request of their own. */
        status = 400;
        slug = "malformed-request";
        malformed_detail(v, scan->field, detail, sizeof detail);
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
    head_scan scan;
    head_verdict v = guard_scan_head((const char *)evbuffer_pullup(in, -1), avail, &lim, &scan);
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
        refuse_head(g, bev, v, &scan);
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
    if (evhtp_connection_set_hook(conn, evhtp_hook_on_headers, (evhtp_hook)on_head_parsed, g) != 0 ||
        evhtp_connection_set_hook(conn, evhtp_hook_on_chunks_complete, (evhtp_hook)on_last_chunk, g) != 0) {
        evhtp_connection_unset_hook(conn, evhtp_hook_on_headers);
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
    if (!g) return;
    if (g->mode == CONN_BODY) disarm(g, CONN_BUSY);
    if (g->last_chunk_at) {
        g->trailers = htparser_get_total_bytes_read(conn->parser) - g->last_chunk_at > 2;
        g->last_chunk_at = 0;
    }
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
    evhtp_connection_unset_hook(conn, evhtp_hook_on_chunks_complete);
    event_free(g->timer);
    free(g);
}
