/*
 * mcp_http.c - the MCP Streamable HTTP transport on a libcurl multi
 * handle.
 *
 * Each HTTP exchange is one transfer on the multi handle, so a long event
 * stream and the short POSTs made while it runs (a cancellation, an
 * answer to a server's ping) share connections and progress together.
 * Nothing runs in the background: transfers move only inside send and
 * receive, which drive the multi handle until their deadline.
 *
 * A request opens "the stream": the one transfer whose answer is read as
 * messages. Its body is parsed as it arrives, by Content-Type: an event
 * stream through mcp_sse (each event's data is one message), a JSON
 * answer collected whole. Parsed messages wait in a queue for receive.
 * Every queued message is checked against the pending request's id, so
 * the transport knows whether the response came before the stream ended;
 * if it did not and the server gave event ids, a GET with Last-Event-ID
 * resumes the stream once the retry delay has passed.
 *
 * Notifications and responses are sent as "one-shot" transfers that
 * send drives to completion (202 expected).
 *
 * Once the session is set up (the first request after initialize), a GET
 * opens "the listen stream", where the server sends what belongs to no
 * request (notifications/tools/list_changed, log messages, pings). Its
 * messages join the same queue. It stays open as long as the transport
 * and is opened again when it ends: after the server's "retry:" delay
 * with Last-Event-ID when it closed it, after a doubling back-off when it
 * failed, never again on this transport when the server answered 405
 * (it offers none). Like every transfer it moves only inside send and
 * receive, so what the server sends between calls waits in the socket.
 */
#include <ctype.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "clock.h"
#include "log.h"
#include "mcp_http.h"
#include "mcp_sse.h"
#include "strbuf.h"
#include "trace.h"

#define HTTP_ERROR_BODY_MAX   2048      /* bytes of an error answer kept */
#define HTTP_POLL_SLICE_MS    1000
#define HTTP_XFER_MARGIN_MS   5000      /* curl's own timeout past the caller's */
#define LISTEN_BACKOFF_MAX_MS 30000     /* the longest wait before the listen stream reopens */
#define LISTEN_REOPEN_MIN_MS  500       /* the shortest, whatever "retry:" asks */

typedef enum body_kind {
    BODY_UNKNOWN = 0,
    BODY_SSE,
    BODY_JSON,
    BODY_ERROR,                 /* a status other than 2xx */
    BODY_OTHER,                 /* 2xx with a Content-Type we cannot read */
} body_kind;

typedef struct mcp_http mcp_http;

/* What a transfer is for. */
typedef enum xfer_role {
    XFER_ONESHOT,               /* a notification, a response or the DELETE */
    XFER_STREAM,                /* a request, or the GET resuming its stream */
    XFER_INITIALIZE,            /* the initialize request (no session yet) */
    XFER_LISTEN,                /* the GET stream of the server's own messages */
} xfer_role;

typedef struct http_xfer {
    mcp_http *h;
    CURL *easy;
    struct curl_slist *hdrs;
    bool is_stream;             /* its messages go to the queue */
    bool is_initialize;
    bool is_listen;
    bool sent_session;          /* it carried an Mcp-Session-Id */
    long status;
    body_kind kind;
    strbuf body;                /* JSON answer, or the start of an error answer */
    size_t body_bytes;
    mcp_sse sse;
    int error;                  /* set by a callback; the transfer was aborted */
    char error_text[256];
    bool done;
    CURLcode result;
    char curl_err[CURL_ERROR_SIZE];
} http_xfer;

typedef struct inbox_item {
    struct inbox_item *next;
    char *msg;
    size_t len;
} inbox_item;

struct mcp_http {
    mcp_transport base;
    char *url;
    struct curl_slist *extra;   /* the caller's headers, copied */
    char *user_agent;
    long long connect_timeout_ms, close_timeout_ms, retry_default_ms;
    size_t max_msg, max_body;
    int max_resumes;
    CURLM *multi;
    bool fresh;                 /* connect must report a new connection */

    char session_id[MCP_SESSION_ID_MAX + 1];
    char protocol_version[32];

    http_xfer *stream;
    bool pending;               /* a request awaits its response */
    mcp_id pending_id;
    long long pending_deadline;
    bool response_seen;
    char last_event_id[MCP_SSE_ID_MAX + 1];
    long long retry_ms;         /* the server's "retry:", -1 when none */
    long long resume_at;        /* > 0: resume the stream at this time */
    int resumes;

    http_xfer *listen;          /* the GET stream, or NULL */
    bool listen_wanted;         /* the session is set up: keep a listen stream */
    bool listen_refused;        /* the server answered 405: it offers none */
    long long listen_at;        /* when it may open again (monotonic ms) */
    int listen_failures;        /* in a row, for the back-off */
    char listen_event_id[MCP_SSE_ID_MAX + 1];

    inbox_item *head, *tail;
    size_t inbox_bytes;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result;

static void init_curl(void)
{
    curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ---------- the message queue ---------- */

static int push_message(mcp_http *h, http_xfer *x, const char *msg, size_t len)
{
    if (len > h->max_msg) {
        snprintf(x->error_text, sizeof x->error_text,
                 "MCP server %s sent a message over %zu bytes", h->base.name, h->max_msg);
        return MCP_ERR_TOO_LARGE;
    }
    if (h->inbox_bytes + len > h->max_body) {
        snprintf(x->error_text, sizeof x->error_text,
                 "MCP server %s sent over %zu bytes of unread messages",
                 h->base.name, h->max_body);
        return MCP_ERR_TOO_LARGE;
    }
    inbox_item *it = calloc(1, sizeof *it);
    char *copy = malloc(len + 1);
    if (!it || !copy) {
        free(it);
        free(copy);
        snprintf(x->error_text, sizeof x->error_text, "out of memory");
        return MCP_ERR_NOMEM;
    }
    memcpy(copy, msg, len);
    copy[len] = '\0';
    it->msg = copy;
    it->len = len;
    if (h->tail)
        h->tail->next = it;
    else
        h->head = it;
    h->tail = it;
    h->inbox_bytes += len;

    /* Is this the answer the stream exists for? */
    if (h->pending && !h->response_seen) {
        mcp_message m;
        if (mcp_jsonrpc_parse(msg, len, h->max_msg, &m, NULL, 0) == MCP_OK) {
            if ((m.kind == MCP_MSG_RESULT || m.kind == MCP_MSG_ERROR) &&
                mcp_id_equal(&m.id, &h->pending_id))
                h->response_seen = true;
            mcp_message_free(&m);
        }
    }
    return MCP_OK;
}

static inbox_item *pop_message(mcp_http *h)
{
    inbox_item *it = h->head;
    if (it) {
        h->head = it->next;
        if (!h->head)
            h->tail = NULL;
        h->inbox_bytes -= it->len;
    }
    return it;
}

static void clear_inbox(mcp_http *h)
{
    inbox_item *it;
    while ((it = pop_message(h))) {
        free(it->msg);
        free(it);
    }
}

/* ---------- libcurl callbacks ---------- */

static bool starts_with_ci(const char *s, size_t n, const char *prefix)
{
    size_t p = strlen(prefix);
    return n >= p && strncasecmp(s, prefix, p) == 0;
}

/* A session id must be 1..MCP_SESSION_ID_MAX visible ASCII characters. */
static bool session_id_ok(const char *s, size_t n)
{
    if (n == 0 || n > MCP_SESSION_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
            return false;
    return true;
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *user)
{
    http_xfer *x = user;
    size_t n = size * nitems;
    if (starts_with_ci(buf, n, "HTTP/")) {
        /* A new response starts (after a 100 Continue there are two). */
        const char *sp = memchr(buf, ' ', n);
        x->status = sp ? strtol(sp + 1, NULL, 10) : 0;
        return n;
    }
    static const char name[] = "mcp-session-id:";
    if (!x->is_initialize || x->status < 200 || x->status > 299 ||
        !starts_with_ci(buf, n, name))
        return n;
    const char *v = buf + sizeof name - 1;
    size_t vn = n - (sizeof name - 1);
    while (vn > 0 && (*v == ' ' || *v == '\t')) {
        v++;
        vn--;
    }
    while (vn > 0 && isspace((unsigned char)v[vn - 1]))
        vn--;
    if (!session_id_ok(v, vn)) {
        x->error = MCP_ERR_PROTOCOL;
        snprintf(x->error_text, sizeof x->error_text,
                 "MCP server %s sent an invalid Mcp-Session-Id", x->h->base.name);
        return 0;
    }
    memcpy(x->h->session_id, v, vn);
    x->h->session_id[vn] = '\0';
    return n;
}

static int on_sse_event(void *user, const char *type, const char *data, size_t len,
                        const char *last_id)
{
    http_xfer *x = user;
    mcp_http *h = x->h;
    if (last_id[0] && x->is_listen)
        snprintf(h->listen_event_id, sizeof h->listen_event_id, "%s", last_id);
    else if (last_id[0])
        snprintf(h->last_event_id, sizeof h->last_event_id, "%s", last_id);
    if (strcmp(type, "message") != 0)
        return MCP_OK;                  /* MCP sends only message events */
    size_t i = 0;
    while (i < len && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r'))
        i++;
    if (i == len)
        return MCP_OK;                  /* "data:" alone primes a stream for resuming */
    return push_message(h, x, data, len);
}

static body_kind classify_body(http_xfer *x)
{
    if (x->status < 200 || x->status > 299)
        return BODY_ERROR;
    char *ct = NULL;
    curl_easy_getinfo(x->easy, CURLINFO_CONTENT_TYPE, &ct);
    if (ct && starts_with_ci(ct, strlen(ct), "text/event-stream")) {
        mcp_sse_init(&x->sse, x->h->max_msg + 64, x->h->max_msg + 1);
        return BODY_SSE;
    }
    if (ct && starts_with_ci(ct, strlen(ct), "application/json"))
        return BODY_JSON;
    return BODY_OTHER;
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *user)
{
    http_xfer *x = user;
    mcp_http *h = x->h;
    size_t n = size * nmemb;
    if (x->kind == BODY_UNKNOWN)
        x->kind = classify_body(x);
    x->body_bytes += n;
    if (x->body_bytes > h->max_body) {
        x->error = MCP_ERR_TOO_LARGE;
        snprintf(x->error_text, sizeof x->error_text,
                 "MCP server %s sent a response over %zu bytes", h->base.name, h->max_body);
        return 0;
    }
    switch (x->kind) {
    case BODY_SSE: {
        if (!x->is_stream)
            return n;                   /* a one-shot wants no messages */
        int rc = mcp_sse_feed(&x->sse, ptr, n, on_sse_event, x);
        if (rc != MCP_OK) {
            x->error = rc;
            if (!x->error_text[0])
                snprintf(x->error_text, sizeof x->error_text, "MCP server %s: %s",
                         h->base.name, x->sse.error_text);
            return 0;
        }
        return n;
    }
    case BODY_JSON:
        if (x->body.len + n > h->max_msg) {
            x->error = MCP_ERR_TOO_LARGE;
            snprintf(x->error_text, sizeof x->error_text,
                     "MCP server %s sent a message over %zu bytes", h->base.name,
                     h->max_msg);
            return 0;
        }
        strbuf_addn(&x->body, ptr, n);
        return n;
    default:
        if (x->body.len < HTTP_ERROR_BODY_MAX)
            strbuf_addn(&x->body, ptr, n < HTTP_ERROR_BODY_MAX ? n : HTTP_ERROR_BODY_MAX);
        return n;
    }
}

/* ---------- transfers ---------- */

static void free_xfer(http_xfer *x)
{
    if (!x)
        return;
    if (x->easy) {
        curl_multi_remove_handle(x->h->multi, x->easy);
        curl_easy_cleanup(x->easy);
    }
    curl_slist_free_all(x->hdrs);
    strbuf_free(&x->body);
    if (x->kind == BODY_SSE)
        mcp_sse_free(&x->sse);
    free(x);
}

/* Appends "<prefix><value>" to the list; values may be long (a bearer
 * token), so the line is built to size. */
static bool add_header(struct curl_slist **l, const char *prefix, const char *v)
{
    strbuf b = {0};
    strbuf_add(&b, prefix);
    strbuf_add(&b, v);
    struct curl_slist *n = b.oom ? NULL : curl_slist_append(*l, b.s);
    strbuf_free(&b);
    if (!n)
        return false;
    *l = n;
    return true;
}

static bool build_headers(mcp_http *h, http_xfer *x, const char *method)
{
    bool ok = true;
    if (strcmp(method, "GET") == 0) {
        const char *resume_from = x->is_listen ? h->listen_event_id : h->last_event_id;
        ok = add_header(&x->hdrs, "Accept: text/event-stream", "");
        if (ok && resume_from[0])
            ok = add_header(&x->hdrs, "Last-Event-ID: ", resume_from);
    } else if (strcmp(method, "POST") == 0) {
        ok = add_header(&x->hdrs, "Accept: application/json, text/event-stream", "") &&
             add_header(&x->hdrs, "Content-Type: application/json", "");
    }
    if (ok && h->session_id[0] && !x->is_initialize) {
        ok = add_header(&x->hdrs, "Mcp-Session-Id: ", h->session_id);
        x->sent_session = true;
    }
    if (ok && h->protocol_version[0] && !x->is_initialize)
        ok = add_header(&x->hdrs, "MCP-Protocol-Version: ", h->protocol_version);
    if (ok)
        ok = add_header(&x->hdrs, "Expect:", "");     /* no 100-continue round trip */
    /* The caller's span (a tool call's), for a server that traces; the
     * listen stream belongs to no call and has none. */
    char tp[TRACE_HEADER_LEN + 1];
    if (ok && !x->is_listen && trace_current_header(tp))
        ok = add_header(&x->hdrs, tp, "");
    for (const struct curl_slist *e = h->extra; ok && e; e = e->next)
        ok = add_header(&x->hdrs, e->data, "");
    return ok;
}

/*
 * Makes a transfer ("GET", "POST" with body, or "DELETE") for role and
 * adds it to the multi handle; curl gives up deadline_ms plus a margin,
 * the caller normally sooner (the listen stream has no deadline). Returns
 * NULL when memory or curl fails.
 */
static http_xfer *start_xfer(mcp_http *h, const char *method, const char *body,
                             size_t body_len, xfer_role role, long long deadline_ms)
{
    http_xfer *x = calloc(1, sizeof *x);
    if (!x)
        return NULL;
    x->h = h;
    x->is_stream = role != XFER_ONESHOT;
    x->is_initialize = role == XFER_INITIALIZE;
    x->is_listen = role == XFER_LISTEN;
    x->easy = curl_easy_init();
    if (!x->easy || !build_headers(h, x, method)) {
        free_xfer(x);
        return NULL;
    }
    long long total = deadline_ms - clock_mono_ms();
    if (total < 1)
        total = 1;
    long curl_timeout = x->is_listen ? 0L : (long)(total + HTTP_XFER_MARGIN_MS);
    CURL *e = x->easy;
    bool ok =
        curl_easy_setopt(e, CURLOPT_URL, h->url) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https") == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)h->connect_timeout_ms) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, curl_timeout) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)h->max_body) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_USERAGENT, h->user_agent) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->hdrs) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_HEADERDATA, x) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_WRITEDATA, x) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->curl_err) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_PRIVATE, x) == CURLE_OK;
    if (ok && strcmp(method, "POST") == 0)
        ok = curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len) == CURLE_OK &&
             curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, body) == CURLE_OK;
    else if (ok && strcmp(method, "DELETE") == 0)
        ok = curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "DELETE") == CURLE_OK;
    if (!ok || curl_multi_add_handle(h->multi, e) != CURLM_OK) {
        free_xfer(x);
        return NULL;
    }
    return x;
}

/* Runs the multi handle once and marks finished transfers done. */
static void pump(mcp_http *h)
{
    int running = 0;
    curl_multi_perform(h->multi, &running);
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(h->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        char *priv = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
        http_xfer *x = (http_xfer *)priv;
        if (x) {
            x->done = true;
            x->result = m->data.result;
        }
    }
}

static void wait_for_activity(mcp_http *h, long long until_ms)
{
    long long left = until_ms - clock_mono_ms();
    if (left <= 0)
        return;
    curl_multi_poll(h->multi, NULL, 0, (int)(left > HTTP_POLL_SLICE_MS ? HTTP_POLL_SLICE_MS : left),
                    NULL);
}

/* Appends ": <message>" from a JSON-RPC error in an error answer's body,
 * which servers use to say why they refused. */
static void add_error_body_reason(strbuf *b, const http_xfer *x)
{
    if (!x->body.s || x->body.len == 0)
        return;
    mcp_message m;
    if (mcp_jsonrpc_parse(x->body.s, x->body.len, HTTP_ERROR_BODY_MAX, &m, NULL, 0) == MCP_OK) {
        if (m.kind == MCP_MSG_ERROR && m.error_message[0]) {
            strbuf_add(b, ": ");
            strbuf_add_flat(b, m.error_message, 200);
        }
        mcp_message_free(&m);
    }
}

/*
 * What a finished transfer's HTTP outcome means, for statuses other than
 * 2xx and for curl failures. Returns MCP_OK when the exchange itself
 * worked (2xx), else an error with the reason in err.
 */
static int check_outcome(mcp_http *h, http_xfer *x, char *err, size_t err_size)
{
    if (x->error != MCP_OK) {
        errbuf_printf(err, err_size, "%s", x->error_text);
        return x->error;
    }
    if (x->result != CURLE_OK) {
        errbuf_printf(err, err_size, "MCP server %s: %s", h->base.name,
                      x->curl_err[0] ? x->curl_err : curl_easy_strerror(x->result));
        return x->result == CURLE_OPERATION_TIMEDOUT ? MCP_ERR_TIMEOUT : MCP_ERR_TRANSPORT;
    }
    if (x->status == 404 && x->sent_session) {
        h->session_id[0] = '\0';
        errbuf_printf(err, err_size, "MCP server %s ended the session (HTTP 404)",
                      h->base.name);
        return MCP_ERR_SESSION_LOST;
    }
    if (x->status < 200 || x->status > 299) {
        strbuf b = {0};
        strbuf_addf(&b, "MCP server %s answered HTTP %ld", h->base.name, x->status);
        add_error_body_reason(&b, x);
        errbuf_printf(err, err_size, "%s", b.oom ? "MCP server answered an HTTP error" : b.s);
        strbuf_free(&b);
        return x->status >= 400 && x->status < 500 ? MCP_ERR_PROTOCOL : MCP_ERR_TRANSPORT;
    }
    return MCP_OK;
}

static void drop_stream(mcp_http *h)
{
    free_xfer(h->stream);
    h->stream = NULL;
    h->resume_at = 0;
}

/* The stream ended without the response: resume it with a GET after the
 * server's retry delay if it gave event ids, else fail. */
static int plan_resume(mcp_http *h, char *err, size_t err_size)
{
    if (!h->last_event_id[0] || h->resumes >= h->max_resumes) {
        errbuf_printf(err, err_size,
                      "MCP server %s closed the event stream before answering%s",
                      h->base.name, h->last_event_id[0] ? " (resume attempts spent)" : "");
        h->pending = false;
        return MCP_ERR_PROTOCOL;
    }
    h->resumes++;
    long long delay = h->retry_ms >= 0 ? h->retry_ms : h->retry_default_ms;
    h->resume_at = clock_mono_ms() + (delay > 0 ? delay : 1);
    log_debug("mcp server %s: event stream closed early, resuming in %lld ms",
              h->base.name, delay);
    return MCP_OK;
}

/* Handles the end of the stream transfer; may queue its JSON answer or
 * plan a resumption. Returns MCP_OK or an error for receive to report. */
static int finish_stream(mcp_http *h, char *err, size_t err_size)
{
    http_xfer *x = h->stream;
    h->stream = NULL;
    if (x->kind == BODY_SSE && x->sse.retry_ms >= 0)
        h->retry_ms = x->sse.retry_ms;
    if (x->kind == BODY_SSE && x->sse.last_id[0])     /* priming events have no data */
        memcpy(h->last_event_id, x->sse.last_id, sizeof h->last_event_id);
    bool broken_sse = x->kind == BODY_SSE && x->error == MCP_OK && x->result != CURLE_OK &&
                      x->result != CURLE_OPERATION_TIMEDOUT;
    int rc = broken_sse ? MCP_OK : check_outcome(h, x, err, err_size);
    if (rc == MCP_OK) {
        if (x->kind == BODY_JSON) {
            rc = push_message(h, x, x->body.s ? x->body.s : "", x->body.len);
            if (rc != MCP_OK)
                errbuf_printf(err, err_size, "%s", x->error_text);
        } else if (x->kind == BODY_SSE) {
            if (h->pending && !h->response_seen)
                rc = plan_resume(h, err, err_size);
        } else if (x->kind == BODY_OTHER) {
            errbuf_printf(err, err_size, "MCP server %s answered with an unexpected Content-Type",
                          h->base.name);
            rc = MCP_ERR_PROTOCOL;
        } else if (h->pending && !h->response_seen) {
            errbuf_printf(err, err_size, "MCP server %s answered a request with HTTP %ld and no body",
                          h->base.name, x->status);
            rc = MCP_ERR_PROTOCOL;
        }
    }
    if (rc != MCP_OK)
        h->pending = false;
    free_xfer(x);
    return rc;
}

static int start_resume(mcp_http *h, char *err, size_t err_size)
{
    h->resume_at = 0;
    h->stream = start_xfer(h, "GET", NULL, 0, XFER_STREAM, h->pending_deadline);
    if (!h->stream) {
        errbuf_printf(err, err_size, "cannot start an HTTP request (out of memory)");
        h->pending = false;
        return MCP_ERR_NOMEM;
    }
    return MCP_OK;
}

/* ---------- the listen stream ---------- */

static void drop_listen(mcp_http *h)
{
    free_xfer(h->listen);
    h->listen = NULL;
}

/* Forgets the listen stream of a session that ended. */
static void forget_listen(mcp_http *h)
{
    drop_listen(h);
    h->listen_wanted = false;
    h->listen_at = 0;
    h->listen_failures = 0;
    h->listen_event_id[0] = '\0';
}

/* The listen stream ended: decide when, or whether, it opens again. */
static void finish_listen(mcp_http *h)
{
    http_xfer *x = h->listen;
    h->listen = NULL;
    long long delay;
    if (x->kind == BODY_SSE && x->sse.last_id[0])
        memcpy(h->listen_event_id, x->sse.last_id, sizeof h->listen_event_id);
    if (x->status == 405 || (x->status >= 200 && x->status <= 299 && x->kind != BODY_SSE &&
                             x->result == CURLE_OK && x->error == MCP_OK)) {
        h->listen_refused = true;
        log_debug("mcp server %s offers no GET stream (HTTP %ld)", h->base.name, x->status);
        free_xfer(x);
        return;
    }
    if (x->kind == BODY_SSE && x->error == MCP_OK) {
        /* The server closed it (or the connection dropped): reopen after
         * its retry delay, as an EventSource would. */
        h->listen_failures = 0;
        delay = x->sse.retry_ms >= 0 ? x->sse.retry_ms : h->retry_default_ms;
        if (delay < LISTEN_REOPEN_MIN_MS)
            delay = LISTEN_REOPEN_MIN_MS;       /* "retry: 0" must not make a GET loop */
    } else {
        h->listen_failures++;
        delay = h->retry_default_ms;
        for (int i = 1; i < h->listen_failures && delay < LISTEN_BACKOFF_MAX_MS; i++)
            delay *= 2;
        if (delay > LISTEN_BACKOFF_MAX_MS)
            delay = LISTEN_BACKOFF_MAX_MS;
        log_debug("mcp server %s: GET stream failed (HTTP %ld%s%s), reopening in %lld ms",
                  h->base.name, x->status, x->error_text[0] ? ", " : "", x->error_text, delay);
    }
    h->listen_at = clock_mono_ms() + delay;
    free_xfer(x);
}

/* Keeps the listen stream open while the session wants one. */
static void tend_listen(mcp_http *h)
{
    if (h->listen && h->listen->done)
        finish_listen(h);
    if (h->listen || !h->listen_wanted || h->listen_refused || clock_mono_ms() < h->listen_at)
        return;
    h->listen = start_xfer(h, "GET", NULL, 0, XFER_LISTEN, 0);
    if (!h->listen)
        h->listen_at = clock_mono_ms() + LISTEN_BACKOFF_MAX_MS;
}

/* ---------- transport operations ---------- */

static int http_connect(mcp_transport *t, long long deadline_ms, char *err, size_t err_size)
{
    mcp_http *h = (mcp_http *)t;
    if (h->fresh) {
        h->fresh = false;
        return 1;
    }
    return 0;
}

/* Sends a notification or response and waits for the server to take it. */
static int send_oneshot(mcp_http *h, const char *msg, size_t len, long long deadline_ms,
                        char *err, size_t err_size)
{
    http_xfer *x = start_xfer(h, "POST", msg, len, XFER_ONESHOT, deadline_ms);
    if (!x) {
        errbuf_printf(err, err_size, "cannot start an HTTP request (out of memory)");
        return MCP_ERR_NOMEM;
    }
    for (;;) {
        pump(h);
        if (x->done)
            break;
        if (clock_mono_ms() >= deadline_ms) {
            free_xfer(x);
            errbuf_printf(err, err_size, "MCP server %s did not take a message in time",
                          h->base.name);
            return MCP_ERR_TIMEOUT;
        }
        wait_for_activity(h, deadline_ms);
    }
    int rc = check_outcome(h, x, err, err_size);
    free_xfer(x);
    return rc;
}

static int http_send(mcp_transport *t, const char *msg, size_t len, long long deadline_ms,
                     char *err, size_t err_size)
{
    mcp_http *h = (mcp_http *)t;
    mcp_message m;
    char why[200];
    if (mcp_jsonrpc_parse(msg, len, h->max_msg, &m, why, sizeof why) != MCP_OK) {
        errbuf_printf(err, err_size, "refusing to send: %s", why);
        return MCP_ERR_INVALID;
    }
    if (m.kind != MCP_MSG_REQUEST) {
        mcp_message_free(&m);
        return send_oneshot(h, msg, len, deadline_ms, err, err_size);
    }
    bool is_init = strcmp(m.method, "initialize") == 0;
    h->pending_id = m.id;
    mcp_message_free(&m);

    /* One request at a time: an earlier stream belongs to a request the
     * client gave up on. */
    drop_stream(h);
    if (is_init) {
        forget_listen(h);
        h->session_id[0] = '\0';
        h->protocol_version[0] = '\0';
    }
    h->pending = true;
    h->pending_deadline = deadline_ms;
    h->response_seen = false;
    h->last_event_id[0] = '\0';
    h->retry_ms = -1;
    h->resumes = 0;
    h->stream = start_xfer(h, "POST", msg, len, is_init ? XFER_INITIALIZE : XFER_STREAM,
                           deadline_ms);
    if (!h->stream) {
        h->pending = false;
        errbuf_printf(err, err_size, "cannot start an HTTP request (out of memory)");
        return MCP_ERR_NOMEM;
    }
    h->listen_wanted = h->listen_wanted || !is_init;
    tend_listen(h);
    pump(h);
    return MCP_OK;
}

static int http_receive(mcp_transport *t, char **msg, size_t *len, long long deadline_ms,
                        char *err, size_t err_size)
{
    mcp_http *h = (mcp_http *)t;
    for (;;) {
        inbox_item *it = pop_message(h);
        if (it) {
            *msg = it->msg;
            *len = it->len;
            free(it);
            if (h->response_seen && !h->head)
                h->pending = false;
            return 1;
        }
        if (h->stream && h->stream->done) {
            int rc = finish_stream(h, err, err_size);
            if (rc != MCP_OK)
                return rc;
            continue;
        }
        tend_listen(h);
        long long now = clock_mono_ms();
        if (!h->stream && h->resume_at > 0 && now >= h->resume_at) {
            int rc = start_resume(h, err, err_size);
            if (rc != MCP_OK)
                return rc;
        }
        if (now >= deadline_ms)
            return 0;
        pump(h);
        if (h->head || (h->stream && h->stream->done) || (h->listen && h->listen->done))
            continue;
        long long until = deadline_ms;
        if (h->resume_at > 0 && h->resume_at < until)
            until = h->resume_at;
        if (!h->listen && h->listen_wanted && !h->listen_refused && h->listen_at < until)
            until = h->listen_at;
        wait_for_activity(h, until);
    }
}

static void http_set_protocol_version(mcp_transport *t, const char *version)
{
    mcp_http *h = (mcp_http *)t;
    snprintf(h->protocol_version, sizeof h->protocol_version, "%s", version ? version : "");
}

static void http_reset(mcp_transport *t)
{
    mcp_http *h = (mcp_http *)t;
    drop_stream(h);
    forget_listen(h);
    clear_inbox(h);
    h->pending = false;
    h->session_id[0] = '\0';
    h->protocol_version[0] = '\0';
    h->fresh = true;
}

/* Ends the session on the server; 405 (not allowed) and 404 (already
 * gone) are fine, and so is any failure: the server expires it anyway. */
static void delete_session(mcp_http *h)
{
    if (!h->session_id[0] || !h->multi)
        return;
    long long deadline = clock_mono_ms() + h->close_timeout_ms;
    http_xfer *x = start_xfer(h, "DELETE", NULL, 0, XFER_ONESHOT, deadline);
    if (!x)
        return;
    while (!x->done && clock_mono_ms() < deadline) {
        pump(h);
        if (!x->done)
            wait_for_activity(h, deadline);
    }
    if (x->done && x->result == CURLE_OK)
        log_debug("mcp server %s: session deleted (HTTP %ld)", h->base.name, x->status);
    free_xfer(x);
}

static void http_close(mcp_transport *t)
{
    mcp_http *h = (mcp_http *)t;
    if (!h)
        return;
    drop_stream(h);
    drop_listen(h);
    delete_session(h);
    clear_inbox(h);
    if (h->multi)
        curl_multi_cleanup(h->multi);
    curl_slist_free_all(h->extra);
    free(h->user_agent);
    free(h->url);
    free(h);
}

static const mcp_transport_ops http_ops = {
    .connect = http_connect,
    .send = http_send,
    .receive = http_receive,
    .set_protocol_version = http_set_protocol_version,
    .reset = http_reset,
    .close = http_close,
};

/* ---------- configuration ---------- */

static bool url_ok(const char *url)
{
    if (!url || (strncasecmp(url, "http://", 7) != 0 && strncasecmp(url, "https://", 8) != 0))
        return false;
    for (const unsigned char *p = (const unsigned char *)url; *p; p++)
        if (*p <= 0x20 || *p == 0x7f)
            return false;
    return true;
}

static bool is_token_char(unsigned char c)
{
    return isalnum(c) || strchr("!#$%&'*+-.^_`|~", c);
}

/* The headers the transport sets itself; a caller's copy would clash. */
static bool header_reserved(const char *name, size_t n)
{
    static const char *const reserved[] = {
        "content-type", "accept", "mcp-session-id", "mcp-protocol-version",
        "last-event-id", "content-length", "host", "expect", "transfer-encoding",
    };
    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
        if (strlen(reserved[i]) == n && strncasecmp(name, reserved[i], n) == 0)
            return true;
    return false;
}

/* Checks "Name: value": a token name, a value without control
 * characters. The reason never quotes the value (it may be a secret). */
static bool header_ok(const char *h, char *err, size_t err_size)
{
    const char *colon = strchr(h, ':');
    size_t n = colon ? (size_t)(colon - h) : 0;
    if (n == 0) {
        errbuf_printf(err, err_size, "header is not \"Name: value\"");
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (!is_token_char((unsigned char)h[i])) {
            errbuf_printf(err, err_size, "header name is not a valid token");
            return false;
        }
    }
    if (header_reserved(h, n)) {
        errbuf_printf(err, err_size, "header %.*s is set by the MCP client itself",
                      (int)n, h);
        return false;
    }
    for (const unsigned char *p = (const unsigned char *)colon + 1; *p; p++) {
        if ((*p < 0x20 && *p != '\t') || *p == 0x7f) {
            errbuf_printf(err, err_size, "header %.*s has a control character in its value",
                          (int)n, h);
            return false;
        }
    }
    return true;
}

mcp_transport *mcp_http_open(const mcp_http_config *cfg, char *err, size_t err_size)
{
    if (!cfg || !url_ok(cfg->url)) {
        errbuf_printf(err, err_size, "MCP server URL must be http:// or https:// without spaces");
        return NULL;
    }
    for (const char *const *p = cfg->headers; p && *p; p++)
        if (!header_ok(*p, err, err_size))
            return NULL;
    pthread_once(&curl_once, init_curl);
    if (curl_init_result != CURLE_OK) {
        errbuf_printf(err, err_size, "libcurl: %s", curl_easy_strerror(curl_init_result));
        return NULL;
    }
    mcp_http *h = calloc(1, sizeof *h);
    if (!h) {
        errbuf_printf(err, err_size, "out of memory");
        return NULL;
    }
    h->base.ops = &http_ops;
    snprintf(h->base.name, sizeof h->base.name, "%s",
             cfg->name && cfg->name[0] ? cfg->name : "http");
    h->connect_timeout_ms = cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : 10000;
    h->close_timeout_ms = cfg->close_timeout_ms > 0 ? cfg->close_timeout_ms : 2000;
    h->retry_default_ms = cfg->retry_default_ms > 0 ? cfg->retry_default_ms : 1000;
    h->max_msg = cfg->max_message_bytes ? cfg->max_message_bytes : MCP_MSG_MAX_DEFAULT;
    h->max_body = cfg->max_response_bytes ? cfg->max_response_bytes : 16u * 1024 * 1024;
    if (h->max_body < h->max_msg)
        h->max_body = h->max_msg;
    h->max_resumes = cfg->max_resumes > 0 ? cfg->max_resumes : 5;
    h->retry_ms = -1;
    h->fresh = true;
    h->url = strdup(cfg->url);
    h->user_agent = strdup(cfg->user_agent ? cfg->user_agent : "agentgate-mcp");
    h->multi = curl_multi_init();
    bool ok = h->url && h->user_agent && h->multi;
    for (const char *const *p = cfg->headers; ok && p && *p; p++) {
        struct curl_slist *n = curl_slist_append(h->extra, *p);
        ok = n != NULL;
        if (ok)
            h->extra = n;
    }
    if (!ok) {
        errbuf_printf(err, err_size, "out of memory");
        http_close(&h->base);
        return NULL;
    }
    return &h->base;
}

const char *mcp_http_session_id(const mcp_transport *t)
{
    return t ? ((const mcp_http *)t)->session_id : "";
}
