/*
 * fuzz_guard.c - libFuzzer target for the raw request-head scan
 * (guard_scan_head, gateway/admit/guard.c), and for what it promises the
 * parser behind it: a head the guard lets through is read by libevhtp one
 * way only.
 *
 * Input: byte 0 picks the limits (small caps, so that every cap is within
 * reach, or the gateway's defaults), byte 1 a split point; the rest is the
 * head as it came off the wire (not NUL-terminated, so a read past its
 * length is caught).
 *
 * Properties, each an abort when broken:
 *  - a verdict on a prefix of the bytes is kept by the whole: a refused
 *    prefix is a refused whole, a complete head stays the same head;
 *  - an accepted head ends with CR LF CR LF within the input, and passes a
 *    reference check written apart from the scanner: lines end in CR LF
 *    only, the request line is METHOD SP target SP HTTP/1.0|1.1, no
 *    control character but a tab in a value, none in the target, no white
 *    space before a colon or at a line's start, the single fields at most
 *    once, not both Content-Length and Transfer-Encoding;
 *  - libevhtp's parser, given an accepted head, the body framed as the
 *    guard reads it (Content-Length bytes, or one last chunk) and then a
 *    request for /marker, either refuses the head, or takes the same
 *    framing from it (length, chunked) and finds /marker after the body;
 *  - what the guard leaves to the parser as not HTTP, the parser refuses
 *    before it has read a head (else that head would go unjudged).
 *
 * The fuzz library holds only pure sources, and guard.c's other half
 * answers through the HTTP core: guard.c is compiled here, with stand-ins
 * for the five HTTP-core calls that the scan never makes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <evhtp/parser.h>

#include "guard.c"

/* --- stand-ins for the HTTP core (never called by the scan) -------------- */

const char *http_header(gw_req *r, const char *name) { (void)r; (void)name; abort(); }
void http_set_header(gw_req *r, const char *name, const char *value)
{
    (void)r; (void)name; (void)value; abort();
}
void http_reply_problem(gw_req *r, int status, const char *slug, const char *detail,
                        const char *pointer)
{
    (void)r; (void)status; (void)slug; (void)detail; (void)pointer; abort();
}
void http_reply_no_content(gw_req *r, int status) { (void)r; (void)status; abort(); }
void http_write_raw_problem(struct evbuffer *out, int status, const char *slug,
                            const char *detail, const char *rid)
{
    (void)out; (void)status; (void)slug; (void)detail; (void)rid; abort();
}

/* --- the reference check of an accepted head ---------------------------- */

static bool refused(head_verdict v) { return v != HEAD_INCOMPLETE && v != HEAD_COMPLETE; }

static bool ctl(unsigned char c) { return c < 0x20 || c == 0x7f; }

/* The value of header line [p, p + n) when it is named name, else NULL. */
static const char *value_of(const char *p, size_t n, const char *name, size_t *vlen)
{
    size_t k = strlen(name);
    if (n <= k || p[k] != ':' || strncasecmp(p, name, k) != 0) return NULL;
    *vlen = n - k - 1;
    return p + k + 1;
}

/* Parses the body length the way a reader of RFC 9112 would: digits
 * after spaces, blanks after. -1 when there is none. */
static long long length_of(const char *v, size_t n)
{
    size_t i = 0;
    long long x = 0;
    while (i < n && v[i] == ' ') i++;
    while (i < n && v[i] >= '0' && v[i] <= '9') x = x * 10 + (v[i++] - '0');
    return x;
}

/* Checks head (head_len bytes, as accepted); returns the body framing it
 * declares: *length >= 0 for Content-Length, *chunked for chunked. */
static void check_accepted(const char *head, size_t head_len, long long *length, bool *chunked)
{
    if (head_len < 4 || memcmp(head + head_len - 4, "\r\n\r\n", 4) != 0) abort();
    size_t i = 0;
    while (head[i] == '\r' || head[i] == '\n') i++;
    for (size_t j = i; j < head_len; j++) {
        if (head[j] == '\r' && head[j + 1] != '\n') abort();
        if (head[j] == '\n' && head[j - 1] != '\r') abort();
    }
    const char *line = head + i;
    const char *end = memmem(line, head_len - i, "\r\n", 2);
    size_t n = (size_t)(end - line);
    const char *sp1 = memchr(line, ' ', n);
    const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(line + n - sp1 - 1)) : NULL;
    if (!sp1 || !sp2 || sp2 == sp1 + 1) abort();
    for (const char *c = sp1 + 1; c < sp2; c++) if (ctl((unsigned char)*c)) abort();
    if (line + n - sp2 - 1 != 8 || (memcmp(sp2 + 1, "HTTP/1.0", 8) != 0 &&
                                     memcmp(sp2 + 1, "HTTP/1.1", 8) != 0))
        abort();

    int seen[SF_COUNT] = { 0 };
    *length = -1;
    *chunked = false;
    for (line = end + 2; line < head + head_len - 2; line = end + 2) {
        end = memmem(line, (size_t)(head + head_len - line), "\r\n", 2);
        n = (size_t)(end - line);
        const char *colon = memchr(line, ':', n);
        if (!colon || colon == line || line[0] == ' ' || line[0] == '\t') abort();
        if (colon[-1] == ' ' || colon[-1] == '\t') abort();
        for (const char *c = line; c < end; c++)
            if (ctl((unsigned char)*c) && *c != '\t') abort();
        for (int f = 0; f < SF_COUNT; f++) {
            size_t vlen;
            const char *v = value_of(line, n, guard_single_fields[f], &vlen);
            if (!v) continue;
            if (++seen[f] > 1) abort();
            if (f == SF_CONTENT_LENGTH) *length = length_of(v, vlen);
            if (f == SF_TRANSFER_ENCODING) *chunked = true;
        }
    }
    if (*length >= 0 && *chunked) abort();
}

/* --- libevhtp's reading of the same bytes ------------------------------- */

typedef struct reading {
    int messages;          /* requests read whole */
    bool head_read;        /* the first request's head was read */
    uint64_t length;       /* its Content-Length, as libevhtp took it */
    int chunks;            /* chunk sizes read in the first request, the last included */
    bool chunked;          /* the first request ended after chunks */
    bool marker;           /* the second request was for /marker */
} reading;

static int on_path(htparser *p, const char *data, size_t len)
{
    reading *x = htparser_get_userdata(p);
    if (x->messages == 1 && len == 7 && memcmp(data, "/marker", 7) == 0) x->marker = true;
    return 0;
}

static int on_hdrs_complete(htparser *p)
{
    reading *x = htparser_get_userdata(p);
    if (x->messages == 0) {
        x->head_read = true;
        x->length = htparser_get_content_length(p);
    }
    return 0;
}

static int on_chunk_size(htparser *p)
{
    reading *x = htparser_get_userdata(p);
    if (x->messages == 0) x->chunks++;
    return 0;
}

static int on_msg_complete(htparser *p)
{
    reading *x = htparser_get_userdata(p);
    if (x->messages == 0) x->chunked = x->chunks > 0;
    x->messages++;
    return 0;
}

#define BODY_MAX 4096

/*
 * libevhtp may refuse the bytes, but once it has read the head it must
 * take the body's framing from it as the guard did (what it makes of the
 * bytes after a misread body could be anything, an error included, so the
 * framing is compared where libevhtp decides it), and then find /marker.
 */
static void check_parser_agrees(const char *head, size_t head_len, long long length, bool chunked)
{
    static htparser *parser;
    static htparse_hooks hooks = { .path = on_path, .on_hdrs_complete = on_hdrs_complete,
                                   .on_new_chunk = on_chunk_size,
                                   .on_chunks_complete = on_chunk_size,
                                   .on_msg_complete = on_msg_complete };
    static const char marker[] = "GET /marker HTTP/1.1\r\n\r\n";
    if (length > BODY_MAX) return;
    if (!parser && !(parser = htparser_new())) abort();
    size_t body = chunked ? 5 : length > 0 ? (size_t)length : 0;
    size_t len = head_len + body + sizeof marker - 1;
    char *msg = malloc(len);
    if (!msg) abort();
    memcpy(msg, head, head_len);
    if (chunked) memcpy(msg + head_len, "0\r\n\r\n", 5);
    else memset(msg + head_len, 'b', body);
    memcpy(msg + head_len + body, marker, sizeof marker - 1);

    reading x = { 0 };
    htparser_init(parser, htp_type_request);
    htparser_set_userdata(parser, &x);
    size_t off = 0;
    bool failed = false;
    while (off < len && !failed) {
        size_t n = htparser_run(parser, &hooks, msg + off, len - off);
        failed = htparser_get_error(parser) != htparse_error_none || n == 0;
        off += n;
    }
    free(msg);
    if (x.head_read && x.length != (uint64_t)(chunked || length < 0 ? 0 : length)) abort();
    if (x.messages >= 1 && x.chunked != chunked) abort();
    if (!failed && (x.messages != 2 || !x.marker)) abort();
}

/* Bytes the guard found no request line in: libevhtp must refuse them
 * before it has a head. */
static void check_parser_refuses(const char *buf, size_t len)
{
    static htparser *parser;
    static htparse_hooks hooks = { .on_hdrs_complete = on_hdrs_complete };
    if (!parser && !(parser = htparser_new())) abort();
    reading x = { 0 };
    htparser_init(parser, htp_type_request);
    htparser_set_userdata(parser, &x);
    size_t off = 0;
    while (off < len) {
        size_t n = htparser_run(parser, &hooks, buf + off, len - off);
        if (htparser_get_error(parser) != htparse_error_none || n == 0) break;
        off += n;
    }
    if (x.head_read) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const head_limits small = { .max_uri = 64, .max_bytes = 256, .max_headers = 4,
                                       .max_field = GUARD_PARSER_FIELD_LIMIT, .max_token = 32 };
    static const head_limits defaults = { .max_uri = 8192, .max_bytes = 32768, .max_headers = 100,
                                          .max_field = GUARD_PARSER_FIELD_LIMIT,
                                          .max_token = 8192 };
    if (size < 2) return 0;
    const head_limits *lim = data[0] & 1 ? &small : &defaults;
    size_t len = size - 2;
    char *buf = malloc(len ? len : 1);      /* exactly len bytes: no NUL */
    if (!buf) return 0;
    memcpy(buf, data + 2, len);

    head_scan whole, part;
    head_verdict v = guard_scan_head(buf, len, lim, &whole);
    if (v > HEAD_BAD_FRAMING) abort();
    size_t k = len * data[1] / 255;
    head_verdict pv = guard_scan_head(buf, k, lim, &part);
    if (refused(pv) && !refused(v)) abort();
    if (pv == HEAD_COMPLETE && (v != HEAD_COMPLETE || part.head_len != whole.head_len)) abort();
    bool names_field = v == HEAD_REPEATED_FIELD || v == HEAD_BAD_FRAMING;
    if (names_field != (whole.field != NULL)) abort();

    if (v == HEAD_NOT_HTTP) check_parser_refuses(buf, len);
    if (v == HEAD_COMPLETE) {
        if (whole.head_len > len) abort();
        long long length;
        bool chunked;
        check_accepted(buf, whole.head_len, &length, &chunked);
        check_parser_agrees(buf, whole.head_len, length, chunked);
    }
    free(buf);
    return 0;
}
