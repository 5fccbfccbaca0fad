/*
 * webhooks.c - the worker's webhook sender (see webhooks.h).
 *
 * One loop: claim a due delivery, send it, record the attempt, and when
 * nothing is due sleep AGENTGATE_WEBHOOK_POLL_MS in short slices so a
 * stop is seen at once. The claim and the record are SECURITY DEFINER
 * functions (020_webhooks.sql) because the outbox holds every tenant's
 * deliveries, as the reaper's scan does for jobs.
 *
 * The request: POST of the stored body, no redirects followed (a 3xx is a
 * failed attempt), http and https only, the URL checked again against the
 * operator's allow-list (it may have narrowed since the job was
 * submitted; a URL no longer allowed fails the delivery for good), one
 * time limit for the whole attempt, and at most WEBHOOK_RESPONSE_MAX_BYTES
 * of the answer read.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <curl/curl.h>

#include "backoff.h"
#include "clock.h"
#include "job_store.h"
#include "log.h"
#include "mcp_config.h"
#include "trace.h"
#include "version.h"
#include "webhook_sign.h"
#include "webhooks.h"
#include "worker_metrics.h"

#define SENDER_CONNECT_TIMEOUT_S 5
#define SLEEP_SLICE_MS 50
#define RECORD_TRIES 5
#define RECORD_WAIT_MS 10000    /* for PostgreSQL, to record an attempt */

struct webhook_sender {
    const ag_config *cfg;
    const char *worker_id;
    pthread_t tid;
    atomic_int stop;
    pg_link pg;
};

/* A claimed delivery (the claim's row, copied). */
typedef struct delivery {
    char id[64], tenant_id[72], job_id[64];
    char *url, *body, *secret;
    char traceparent[TRACEPARENT_LEN + 1]; /* the job's, "" when it has none */
    int attempt;
    long long created_ms;       /* when the job ended (the outbox row's time) */
} delivery;

/* One attempt's outcome. */
typedef struct outcome {
    long status;                /* HTTP status; 0: no answer */
    char error[256];            /* "": delivered */
    long long duration_ms;
    bool give_up;               /* no retry: the URL is no longer allowed */
    bool stopped;               /* cut short by the worker's stop */
} outcome;

static bool sender_stopping(void *arg)
{
    const webhook_sender *s = arg;
    return atomic_load(&s->stop) != 0;
}

static bool past_deadline(void *arg)
{
    return clock_mono_ms() >= *(const long long *)arg;
}

static void delivery_free(delivery *d)
{
    free(d->url);
    free(d->body);
    free(d->secret);
    memset(d, 0, sizeof *d);
}

/* ---------------------------------------------------------------------------
 * Claim and record
 * ------------------------------------------------------------------------- */

static const char SQL_CLAIM[] =
    "SELECT o_id, o_tenant_id, o_job_id, o_url, o_body, o_attempt, o_secret, o_created_ms,"
    " o_traceparent"
    " FROM webhook_claim($1, 1, $2)";

/* Claims one due delivery into *d. Returns 1 when one was claimed, 0 when
 * none is due, -1 on a failed statement (logged). */
static int claim_one(webhook_sender *s, PGconn *c, delivery *d)
{
    char lease[24];
    snprintf(lease, sizeof lease, "%d", s->cfg->webhook_timeout_ms + WEBHOOK_LEASE_MARGIN_MS);
    const char *vals[2] = { s->worker_id, lease };
    PGresult *res = PQexecParams(c, SQL_CLAIM, 2, NULL, vals, NULL, NULL, 0);
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        log_warn("webhook claim failed: %s", PQerrorMessage(c));
        PQclear(res);
        return -1;
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        return 0;
    }
    snprintf(d->id, sizeof d->id, "%s", PQgetvalue(res, 0, 0));
    snprintf(d->tenant_id, sizeof d->tenant_id, "%s", PQgetvalue(res, 0, 1));
    snprintf(d->job_id, sizeof d->job_id, "%s", PQgetvalue(res, 0, 2));
    d->url = strdup(PQgetvalue(res, 0, 3));
    d->body = strdup(PQgetvalue(res, 0, 4));
    d->attempt = atoi(PQgetvalue(res, 0, 5));
    d->secret = strdup(PQgetvalue(res, 0, 6));
    d->created_ms = strtoll(PQgetvalue(res, 0, 7), NULL, 10);
    snprintf(d->traceparent, sizeof d->traceparent, "%s", PQgetvalue(res, 0, 8));
    PQclear(res);
    if (d->url == NULL || d->body == NULL || d->secret == NULL) {
        /* Its lease runs out and it is claimed again. */
        log_error("webhook delivery %s: out of memory", d->id);
        delivery_free(d);
        return -1;
    }
    return 1;
}

static const char SQL_RECORD[] =
    "SELECT webhook_record($1, $2, $3, $4, $5, $6, $7, $8)";

/* Records attempt o of d, with the retry in retry_ms. Retries through a
 * lost connection a few times; past that the lease runs out and the
 * delivery is claimed again (at least once). */
static void record_attempt(webhook_sender *s, const delivery *d, const outcome *o,
                           long long retry_ms)
{
    char attempt[16], status[16], duration[24], retry[24];
    snprintf(attempt, sizeof attempt, "%d", d->attempt);
    snprintf(status, sizeof status, "%ld", o->status);
    snprintf(duration, sizeof duration, "%lld", o->duration_ms);
    snprintf(retry, sizeof retry, "%lld", retry_ms);
    const char *vals[8] = { d->id, s->worker_id, attempt, o->status > 0 ? status : NULL,
                            o->error[0] ? o->error : NULL, duration,
                            o->give_up ? "true" : "false", retry };
    long long deadline = clock_mono_ms() + RECORD_WAIT_MS;
    for (int i = 0; i < RECORD_TRIES; i++) {
        PGconn *c = pg_link_wait(&s->pg, past_deadline, &deadline);
        if (c == NULL) break;
        PGresult *res = PQexecParams(c, SQL_RECORD, 8, NULL, vals, NULL, NULL, 0);
        if (res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK) {
            if (strcmp(PQgetvalue(res, 0, 0), "t") != 0)
                log_warn("webhook delivery %s: attempt %d ended after its lease was taken "
                         "over; not recorded", d->id, d->attempt);
            PQclear(res);
            return;
        }
        log_warn("webhook delivery %s: recording attempt %d failed: %s", d->id, d->attempt,
                 PQerrorMessage(c));
        PQclear(res);
        if (store_conn_broken(c)) pg_link_drop(&s->pg);
        else return;     /* a statement error would repeat */
    }
}

/* ---------------------------------------------------------------------------
 * Sending
 * ------------------------------------------------------------------------- */

typedef struct xfer {
    webhook_sender *s;
    size_t received;
    bool too_large;
} xfer;

/* The answer's body is not kept: it is counted, and cut at the cap. */
static size_t on_body(char *ptr, size_t size, size_t n, void *arg)
{
    (void)ptr;
    xfer *x = arg;
    x->received += size * n;
    if (x->received > WEBHOOK_RESPONSE_MAX_BYTES) {
        x->too_large = true;
        return 0;
    }
    return size * n;
}

static int on_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)dt; (void)dn; (void)ut; (void)un;
    const xfer *x = arg;
    return sender_stopping(x->s) ? 1 : 0;
}

/* Sends d once; the outcome into *o. */
/* Sends attempt d->attempt of d, as span sp (a client span in the job's
 * trace, whose traceparent goes with the request), into *o. */
static void send_one(webhook_sender *s, CURL *e, const delivery *d, span *sp, outcome *o)
{
    memset(o, 0, sizeof *o);
    long long t0 = clock_mono_ms();
    if (!mcp_url_allowed(s->cfg->webhook_url_allowlist, d->url)) {
        snprintf(o->error, sizeof o->error,
                 "the URL is no longer within AGENTGATE_WEBHOOK_URL_ALLOWLIST");
        o->give_up = true;
        return;
    }
    long long ts = (long long)time(NULL);
    size_t body_len = strlen(d->body);
    char sig[WEBHOOK_SIGNATURE_MAX];
    if (webhook_sign(d->secret, d->id, ts, d->body, body_len, sig) != 0) {
        snprintf(o->error, sizeof o->error, "the tenant's webhook secret is malformed");
        return;
    }
    char h_id[96], h_ts[48], h_sig[96], h_tp[TRACE_HEADER_LEN + 1] = "";
    snprintf(h_id, sizeof h_id, "webhook-id: %s", d->id);
    snprintf(h_ts, sizeof h_ts, "webhook-timestamp: %lld", ts);
    snprintf(h_sig, sizeof h_sig, "webhook-signature: %s", sig);
    char tp[TRACEPARENT_LEN + 1];
    span_traceparent(sp, tp);
    if (tp[0])
        snprintf(h_tp, sizeof h_tp, "traceparent: %s", tp);
    struct curl_slist *hdrs = NULL, *tmp;
    const char *lines[] = { "Content-Type: application/json", h_id, h_ts, h_sig, "Expect:",
                            h_tp };
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        if (lines[i][0] == '\0') continue;
        tmp = curl_slist_append(hdrs, lines[i]);
        if (tmp == NULL) {
            curl_slist_free_all(hdrs);
            snprintf(o->error, sizeof o->error, "out of memory");
            return;
        }
        hdrs = tmp;
    }
    xfer x = { .s = s };
    long timeout = s->cfg->webhook_timeout_ms;
    char errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_reset(e);
    bool ok = curl_easy_setopt(e, CURLOPT_URL, d->url) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, timeout) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_USERAGENT, "agentgate-webhooks/" AGENTGATE_VERSION)
            == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, d->body) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_WRITEDATA, &x) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, on_progress) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_XFERINFODATA, &x) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf) == CURLE_OK;
    if (!ok) {
        curl_slist_free_all(hdrs);
        snprintf(o->error, sizeof o->error, "cannot set up the request");
        return;
    }
    CURLcode rc = curl_easy_perform(e);
    o->duration_ms = clock_mono_ms() - t0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &o->status);
    curl_slist_free_all(hdrs);
    bool answered_2xx = o->status >= 200 && o->status < 300;
    if (rc == CURLE_OK || (rc == CURLE_WRITE_ERROR && x.too_large && answered_2xx)) {
        /* A 2xx delivers it, even when the answer's body ran over the cap. */
        if (!answered_2xx)
            snprintf(o->error, sizeof o->error, "HTTP %ld%s", o->status,
                     o->status >= 300 && o->status < 400 ? " (redirects are not followed)"
                                                         : "");
        return;
    }
    if (rc == CURLE_ABORTED_BY_CALLBACK) {
        o->stopped = true;
        snprintf(o->error, sizeof o->error, "the worker stopped during the attempt");
    } else if (rc == CURLE_OPERATION_TIMEDOUT) {
        snprintf(o->error, sizeof o->error, "timed out after %ld ms", timeout);
    } else if (x.too_large) {
        snprintf(o->error, sizeof o->error, "HTTP %ld with an answer over %d bytes",
                 o->status, WEBHOOK_RESPONSE_MAX_BYTES);
    } else {
        snprintf(o->error, sizeof o->error, "%s", errbuf[0] ? errbuf : curl_easy_strerror(rc));
    }
}

long long webhook_retry_plan(int attempt, long long created_ms, long long now_ms,
                             long long base_ms, long long max_ms, long long window_s,
                             unsigned long long rnd, bool *give_up)
{
    long long delay = backoff_retry_delay_ms(attempt, base_ms, max_ms, rnd);
    *give_up = now_ms + delay > created_ms + window_s * 1000;
    return delay;
}

/* The delay before d's next attempt, and whether there is none. */
static long long next_retry(const webhook_sender *s, const delivery *d, outcome *o)
{
    if (o->stopped) return 0;          /* not the receiver's failure: again at once */
    bool give_up = false;
    long long delay = webhook_retry_plan(d->attempt, d->created_ms, clock_wall_ms(),
                                         s->cfg->webhook_retry_base_ms,
                                         s->cfg->webhook_retry_max_ms,
                                         s->cfg->webhook_retry_window_s, backoff_random(),
                                         &give_up);
    if (give_up) o->give_up = true;
    return delay;
}

/* The attempt's span: a child of the job's traceparent, so a trace runs
 * from the submitting request to the receiver of its webhook. */
static span *attempt_span(const delivery *d)
{
    trace_ctx job;
    span *sp = span_start("webhook POST", SPAN_KIND_CLIENT,
                          trace_parse(d->traceparent, &job) == 0 ? &job : NULL);
    span_set_str(sp, "http.request.method", "POST");
    span_set_str(sp, "agentgate.job_id", d->job_id);
    span_set_str(sp, "agentgate.webhook_id", d->id);
    span_set_int(sp, "http.request.resend_count", d->attempt - 1);
    return sp;
}

static void deliver(webhook_sender *s, CURL *e, delivery *d)
{
    outcome o;
    span *sp = attempt_span(d);
    send_one(s, e, d, sp, &o);
    if (o.status > 0)
        span_set_int(sp, "http.response.status_code", o.status);
    if (o.error[0])
        span_set_error(sp, o.error);
    span_end(sp);
    long long retry_ms = o.error[0] ? next_retry(s, d, &o) : 0;
    worker_metrics_webhook_attempt(!o.error[0] ? "delivered" : o.give_up ? "failed" : "retrying",
                                   (double)o.duration_ms / 1000.0);
    if (!o.error[0])
        log_info("webhook %s for job %s: attempt %d delivered (HTTP %ld, %lld ms)", d->id,
                 d->job_id, d->attempt, o.status, o.duration_ms);
    else if (o.give_up)
        log_warn("webhook %s for job %s: attempt %d failed (%s); giving up", d->id,
                 d->job_id, d->attempt, o.error);
    else
        log_info("webhook %s for job %s: attempt %d failed (%s); next in %lld ms", d->id,
                 d->job_id, d->attempt, o.error, retry_ms);
    record_attempt(s, d, &o, retry_ms);
}

/* ---------------------------------------------------------------------------
 * The thread
 * ------------------------------------------------------------------------- */

/* Sleeps up to ms, returning early when the sender stops. */
static void nap(webhook_sender *s, long long ms)
{
    long long end = clock_mono_ms() + ms;
    while (!sender_stopping(s)) {
        long long left = end - clock_mono_ms();
        if (left <= 0) return;
        clock_sleep_ms(left < SLEEP_SLICE_MS ? left : SLEEP_SLICE_MS);
    }
}

static void *sender_main(void *arg)
{
    webhook_sender *s = arg;
    CURL *e = curl_easy_init();
    if (e == NULL) {
        log_error("webhook sender: cannot make a curl handle; this worker sends no webhooks");
        return NULL;
    }
    while (!sender_stopping(s)) {
        PGconn *c = pg_link_wait(&s->pg, sender_stopping, s);
        if (c == NULL) break;
        delivery d = { 0 };
        int got = claim_one(s, c, &d);
        if (got < 0 && store_conn_broken(c)) pg_link_drop(&s->pg);
        if (got <= 0) {
            nap(s, s->cfg->webhook_poll_ms);
            continue;
        }
        deliver(s, e, &d);
        delivery_free(&d);
    }
    curl_easy_cleanup(e);
    return NULL;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static bool curl_ready;

static void curl_setup(void)
{
    curl_ready = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
}

webhook_sender *webhook_sender_start(const ag_config *cfg, const char *worker_id)
{
    pthread_once(&curl_once, curl_setup);
    if (!curl_ready) {
        log_error("webhook sender: libcurl did not initialise; this worker sends no webhooks");
        return NULL;
    }
    webhook_sender *s = calloc(1, sizeof *s);
    if (s == NULL) {
        log_error("webhook sender: out of memory; this worker sends no webhooks");
        return NULL;
    }
    s->cfg = cfg;
    s->worker_id = worker_id;
    atomic_init(&s->stop, 0);
    pg_link_init(&s->pg, cfg->database_url, "webhook sender", SENDER_CONNECT_TIMEOUT_S);
    int err = pthread_create(&s->tid, NULL, sender_main, s);
    if (err != 0) {
        log_error("cannot start the webhook sender: %s", strerror(err));
        free(s);
        return NULL;
    }
    return s;
}

void webhook_sender_stop(webhook_sender *s)
{
    if (s == NULL) return;
    atomic_store(&s->stop, 1);
    pthread_join(s->tid, NULL);
    pg_link_close(&s->pg);
    free(s);
}
