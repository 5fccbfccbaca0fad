/*
 * http_client.c - the CLI's libcurl calls (see http_client.h).
 *
 * Every call is one easy handle driven by a multi handle, so that the wait
 * for the network can also watch the wake fd: a signal handler writes a
 * byte to a pipe and curl_multi_poll returns at once, which is how Ctrl-C
 * stops a stream that is idle between events without waiting for a
 * timeout. The body callback either collects a capped answer or, for a
 * 200 event stream, hands each piece on; which one is decided when the
 * first piece arrives, by then the status and Content-Type are known.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "http_client.h"
#include "strbuf.h"
#include "version.h"

#define POLL_MS 1000

/* One transfer's state, shared by the callbacks. */
typedef struct transfer {
    CURL *easy;
    agc_response *out;
    size_t max_body;
    strbuf body;
    bool too_large;
    bool streaming;         /* pieces go to fn (decided at the first piece) */
    bool decided;
    agc_chunk_fn fn;        /* NULL for a plain request */
    void *ud;
    int stopped;            /* fn's non-zero return */
} transfer;

int agc_init(agc *c, const char *base_url, const char *token, char *err, size_t err_size)
{
    memset(c, 0, sizeof *c);
    c->timeout_ms = 30000;
    c->connect_timeout_ms = 5000;
    c->stall_s = 60;
    c->max_body = 16u << 20;
    c->wake_fd = -1;
    if (strncmp(base_url, "http://", 7) != 0 && strncmp(base_url, "https://", 8) != 0) {
        snprintf(err, err_size, "URL '%s' must start with http:// or https://", base_url);
        return -1;
    }
    size_t n = strlen(base_url);
    while (n > 0 && base_url[n - 1] == '/')
        n--;
    c->base = strndup(base_url, n);
    if (token != NULL && token[0] != '\0') {
        strbuf a = {0};
        strbuf_addf(&a, "Authorization: Bearer %s", token);
        c->auth = strbuf_take(&a, NULL);
        if (c->auth == NULL) {
            free(c->base);
            c->base = NULL;
        }
    }
    if (c->base == NULL || (token != NULL && token[0] != '\0' && c->auth == NULL)) {
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    return 0;
}

void agc_free(agc *c)
{
    free(c->base);
    if (c->auth != NULL) {
        memset(c->auth, 0, strlen(c->auth));   /* the token */
        free(c->auth);
    }
    memset(c, 0, sizeof *c);
    c->wake_fd = -1;
}

void agc_response_free(agc_response *out)
{
    free(out->body);
    memset(out, 0, sizeof *out);
}

/* Copies a header's value, trimmed, into dst; for Content-Type only the
 * lowercased media type. */
static void keep_header(char *dst, size_t size, const char *v, size_t n, bool media_type)
{
    while (n > 0 && (*v == ' ' || *v == '\t')) {
        v++;
        n--;
    }
    while (n > 0 && isspace((unsigned char)v[n - 1]))
        n--;
    if (media_type) {
        const char *semi = memchr(v, ';', n);
        if (semi != NULL)
            n = (size_t)(semi - v);
        while (n > 0 && isspace((unsigned char)v[n - 1]))
            n--;
    }
    if (n >= size)
        n = size - 1;
    for (size_t i = 0; i < n; i++)
        dst[i] = media_type ? (char)tolower((unsigned char)v[i]) : v[i];
    dst[n] = '\0';
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *ud)
{
    transfer *t = ud;
    size_t n = size * nitems;
    const char *colon = memchr(buf, ':', n);
    if (colon == NULL)
        return n;                       /* the status line or the blank line */
    size_t name = (size_t)(colon - buf);
    const char *v = colon + 1;
    size_t vn = n - name - 1;
    if (name == 12 && strncasecmp(buf, "content-type", 12) == 0)
        keep_header(t->out->content_type, sizeof t->out->content_type, v, vn, true);
    else if (name == 8 && strncasecmp(buf, "location", 8) == 0)
        keep_header(t->out->location, sizeof t->out->location, v, vn, false);
    else if (name == 11 && strncasecmp(buf, "retry-after", 11) == 0)
        keep_header(t->out->retry_after, sizeof t->out->retry_after, v, vn, false);
    return n;
}

static size_t on_body(char *buf, size_t size, size_t nitems, void *ud)
{
    transfer *t = ud;
    size_t n = size * nitems;
    if (!t->decided) {
        t->decided = true;
        curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &t->out->status);
        t->streaming = t->fn != NULL && t->out->status == 200 &&
                       strcmp(t->out->content_type, "text/event-stream") == 0;
    }
    if (t->streaming) {
        int rc = t->fn(t->ud, buf, n);
        if (rc != 0) {
            t->stopped = rc;
            return 0;                   /* makes libcurl end the transfer */
        }
        return n;
    }
    if (t->body.len + n > t->max_body) {
        t->too_large = true;
        return 0;
    }
    strbuf_addn(&t->body, buf, n);
    return t->body.oom ? 0 : n;
}

static struct curl_slist *build_headers(const agc *c, bool stream, bool has_body,
                                        const char *last_event_id)
{
    struct curl_slist *h = NULL, *n;
    char lei[160];
#define ADD(s) do { if ((n = curl_slist_append(h, (s))) == NULL) goto fail; h = n; } while (0)
    ADD(stream ? "Accept: text/event-stream" : "Accept: application/json");
    if (has_body)
        ADD("Content-Type: application/json");
    if (c->auth != NULL)
        ADD(c->auth);
    if (last_event_id != NULL && last_event_id[0] != '\0') {
        snprintf(lei, sizeof lei, "Last-Event-ID: %s", last_event_id);
        ADD(lei);
    }
    /* libcurl would otherwise send "Expect: 100-continue" for larger bodies
     * and wait for an answer the gateway does not give. */
    ADD("Expect:");
#undef ADD
    return h;
fail:
    curl_slist_free_all(h);
    return NULL;
}

static bool setup(CURL *e, const agc *c, const char *method, const char *url,
                  const char *body, struct curl_slist *headers, transfer *t, bool stream,
                  char *errbuf)
{
    bool ok =
        curl_easy_setopt(e, CURLOPT_URL, url) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_WRITEDATA, t) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_HEADERDATA, t) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_USERAGENT, "agentgate-cli/" AGENTGATE_VERSION) == CURLE_OK;
    /* A POST without a body still says so (Content-Length: 0). */
    if (ok && body == NULL && strcmp(method, "POST") == 0)
        body = "";
    if (ok && body != NULL)
        ok = curl_easy_setopt(e, CURLOPT_POSTFIELDS, body) == CURLE_OK &&
             curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body)) == CURLE_OK;
    if (ok && strcmp(method, "GET") == 0)
        ok = curl_easy_setopt(e, CURLOPT_HTTPGET, 1L) == CURLE_OK;
    if (ok && stream)
        /* A stream has no end to wait for, only silence: the gateway sends
         * a keepalive every 15 s by default, so this long without a byte
         * means the connection is gone. */
        ok = curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L) == CURLE_OK &&
             curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, c->stall_s) == CURLE_OK;
    else if (ok)
        ok = curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, c->timeout_ms) == CURLE_OK;
    return ok;
}

/* Drives the transfer to its end, or until the wake fd is readable.
 * Returns true when interrupted; *result says how a finished one ended. */
static bool drive(CURLM *m, int wake_fd, CURLcode *result)
{
    int running = 1;
    *result = CURLE_OK;
    for (;;) {
        if (curl_multi_perform(m, &running) != CURLM_OK) {
            *result = CURLE_FAILED_INIT;
            return false;
        }
        if (!running)
            break;
        struct curl_waitfd w = { .fd = wake_fd, .events = CURL_WAIT_POLLIN, .revents = 0 };
        curl_multi_poll(m, wake_fd >= 0 ? &w : NULL, wake_fd >= 0 ? 1 : 0, POLL_MS, NULL);
        if (wake_fd >= 0 && (w.revents & CURL_WAIT_POLLIN))
            return true;
    }
    int left;
    CURLMsg *msg;
    while ((msg = curl_multi_info_read(m, &left)) != NULL)
        if (msg->msg == CURLMSG_DONE)
            *result = msg->data.result;
    return false;
}

/* One call, plain or stream (fn != NULL). */
static int perform(agc *c, const char *method, const char *path, const char *body,
                   const char *last_event_id, agc_chunk_fn fn, void *ud, agc_response *out,
                   char *err, size_t err_size)
{
    memset(out, 0, sizeof *out);
    char errbuf[CURL_ERROR_SIZE] = "";
    strbuf url = {0};
    strbuf_addf(&url, "%s%s", c->base, path);
    transfer t = { .out = out, .max_body = c->max_body, .fn = fn, .ud = ud };
    struct curl_slist *headers = build_headers(c, fn != NULL, body != NULL, last_event_id);
    CURLM *m = curl_multi_init();
    t.easy = curl_easy_init();
    int rc = AGC_ERR_NOMEM;
    if (url.oom || headers == NULL || m == NULL || t.easy == NULL ||
        !setup(t.easy, c, method, url.s, body, headers, &t, fn != NULL, errbuf) ||
        curl_multi_add_handle(m, t.easy) != CURLM_OK) {
        snprintf(err, err_size, "cannot set up the HTTP call (out of memory?)");
        goto done;
    }

    CURLcode res;
    bool interrupted = drive(m, fn != NULL ? c->wake_fd : -1, &res);
    curl_multi_remove_handle(m, t.easy);
    if (out->status == 0)
        curl_easy_getinfo(t.easy, CURLINFO_RESPONSE_CODE, &out->status);
    if (interrupted) {
        rc = AGC_ERR_INTERRUPTED;
        snprintf(err, err_size, "interrupted");
    } else if (t.stopped != 0) {
        rc = AGC_ERR_STOPPED;
    } else if (t.too_large) {
        rc = AGC_ERR_TOO_LARGE;
        snprintf(err, err_size, "%s %s: the answer is over %zu bytes", method, path, c->max_body);
    } else if (t.body.oom) {
        snprintf(err, err_size, "out of memory reading the answer");
    } else if (res != CURLE_OK) {
        rc = AGC_ERR_CONNECT;
        snprintf(err, err_size, "no answer from %s: %s", c->base,
                 errbuf[0] ? errbuf : curl_easy_strerror(res));
    } else {
        rc = AGC_OK;
    }

done:
    if (t.easy != NULL)
        curl_easy_cleanup(t.easy);
    if (m != NULL)
        curl_multi_cleanup(m);
    curl_slist_free_all(headers);
    strbuf_free(&url);
    out->body = strbuf_take(&t.body, &out->len);
    if (out->body == NULL && rc == AGC_OK) {
        snprintf(err, err_size, "out of memory reading the answer");
        rc = AGC_ERR_NOMEM;
    }
    return rc;
}

int agc_request(agc *c, const char *method, const char *path, const char *json_body,
                agc_response *out, char *err, size_t err_size)
{
    return perform(c, method, path, json_body, NULL, NULL, NULL, out, err, err_size);
}

int agc_stream(agc *c, const char *path, const char *last_event_id, agc_chunk_fn fn,
               void *ud, agc_response *out, char *err, size_t err_size)
{
    return perform(c, "GET", path, NULL, last_event_id, fn, ud, out, err, err_size);
}
