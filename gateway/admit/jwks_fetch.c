/*
 * jwks_fetch.c - the gateway's key sources (see jwks_fetch.h): a JWKS file
 * read at start, or a URL fetched with libcurl by one background thread.
 *
 * The thread sleeps on a condition variable (monotonic clock) until the
 * cached set is due for a refetch, an unknown kid asks for one (granted no
 * sooner than min_refresh_s after the last fetch, so a stream of tokens
 * with made-up kids cannot turn the gateway into a fetch amplifier), or
 * the gateway stops. A fetch is bounded in time and size; its answer must
 * be a 200 with a valid key set, or the set there was stays.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "clock.h"
#include "jwks_fetch.h"
#include "log.h"

struct jwks_source {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    jwks *current;             /* under mu */
    bool fetching;             /* a URL source, with a thread */
    pthread_t thread;
    char *url;
    jwks_fetch_opts opts;
    /* Under mu: */
    bool refresh_wanted;       /* an unknown kid asked for a fetch */
    bool stop;
    long long last_fetch_ms;   /* monotonic start of the last fetch */
    long long next_due_ms;     /* monotonic time of the next scheduled fetch */
    long long attempts;
    atomic_bool abort_fetch;   /* read by curl's progress callback */
};

/* --- the file ------------------------------------------------------------ */

jwks *jwks_load_file(const char *path, char *err, size_t err_size)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, err_size, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(JWKS_MAX_BYTES + 1);
    size_t n = buf != NULL ? fread(buf, 1, JWKS_MAX_BYTES + 1, f) : 0;
    bool read_error = ferror(f) != 0;
    fclose(f);
    jwks *set = NULL;
    if (buf == NULL)
        snprintf(err, err_size, "out of memory");
    else if (read_error)
        snprintf(err, err_size, "cannot read %s", path);
    else if (n > JWKS_MAX_BYTES)
        snprintf(err, err_size, "%s is larger than %d bytes", path, JWKS_MAX_BYTES);
    else
        set = jwks_parse(buf, n, err, err_size);
    free(buf);
    return set;
}

/* --- sources ------------------------------------------------------------- */

static jwks_source *source_new(void)
{
    jwks_source *src = calloc(1, sizeof *src);
    if (src == NULL)
        return NULL;
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_mutex_init(&src->mu, NULL);
    pthread_cond_init(&src->cond, &attr);
    pthread_condattr_destroy(&attr);
    atomic_init(&src->abort_fetch, false);
    return src;
}

static void source_destroy(jwks_source *src)
{
    jwks_release(src->current);
    pthread_cond_destroy(&src->cond);
    pthread_mutex_destroy(&src->mu);
    free(src->url);
    free(src);
}

jwks_source *jwks_source_fixed(jwks *set)
{
    jwks_source *src = source_new();
    if (src == NULL) {
        jwks_release(set);
        return NULL;
    }
    src->current = set;
    return src;
}

jwks *jwks_source_get(jwks_source *src)
{
    if (src == NULL)
        return NULL;
    pthread_mutex_lock(&src->mu);
    jwks *set = jwks_retain(src->current);
    pthread_mutex_unlock(&src->mu);
    return set;
}

void jwks_source_unknown_kid(jwks_source *src)
{
    if (src == NULL || !src->fetching)
        return;
    pthread_mutex_lock(&src->mu);
    if (!src->refresh_wanted) {
        src->refresh_wanted = true;
        pthread_cond_signal(&src->cond);
    }
    pthread_mutex_unlock(&src->mu);
}

long long jwks_source_fetch_count(jwks_source *src)
{
    if (src == NULL)
        return 0;
    pthread_mutex_lock(&src->mu);
    long long n = src->attempts;
    pthread_mutex_unlock(&src->mu);
    return n;
}

/* --- one fetch ----------------------------------------------------------- */

typedef struct fetch_buf {
    char *data;
    size_t len, cap;   /* cap: the size limit */
    bool too_large;
} fetch_buf;

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *arg)
{
    fetch_buf *b = arg;
    size_t n = size * nmemb;
    if (n > b->cap - b->len) {
        b->too_large = true;
        return 0;   /* curl aborts the transfer */
    }
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    return n;
}

/* Lets jwks_source_free abort a fetch in progress rather than wait for it. */
static int on_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)dt; (void)dn; (void)ut; (void)un;
    jwks_source *src = arg;
    return atomic_load(&src->abort_fetch) ? 1 : 0;
}

/* Fetches and parses the URL. Returns a new set, or NULL with the reason. */
static jwks *fetch_once(jwks_source *src, char *err, size_t err_size)
{
    fetch_buf b = { .data = malloc(src->opts.max_bytes + 1), .cap = src->opts.max_bytes };
    CURL *c = curl_easy_init();
    jwks *set = NULL;
    if (b.data == NULL || c == NULL) {
        snprintf(err, err_size, "out of memory");
        goto out;
    }
    curl_easy_setopt(c, CURLOPT_URL, src->url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)src->opts.timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)src->opts.timeout_ms);
    curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)src->opts.max_bytes);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, src);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "agentgate-gateway (jwks)");

    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (b.too_large || rc == CURLE_FILESIZE_EXCEEDED)
        snprintf(err, err_size, "the answer is larger than %zu bytes", src->opts.max_bytes);
    else if (rc != CURLE_OK)
        snprintf(err, err_size, "%s", curl_easy_strerror(rc));
    else if (status != 200)
        snprintf(err, err_size, "HTTP status %ld", status);
    else
        set = jwks_parse(b.data, b.len, err, err_size);
out:
    if (c != NULL)
        curl_easy_cleanup(c);
    free(b.data);
    return set;
}

/* --- the thread ---------------------------------------------------------- */

static void deadline_to_timespec(long long mono_ms, struct timespec *ts)
{
    ts->tv_sec = (time_t)(mono_ms / 1000);
    ts->tv_nsec = (long)(mono_ms % 1000) * 1000000L;
}

/* With mu held: sleeps until a fetch is due or stop. Returns false on stop. */
static bool wait_for_due_fetch(jwks_source *src)
{
    long long min_gap = (long long)src->opts.min_refresh_s * 1000;
    for (;;) {
        if (src->stop)
            return false;
        long long now = clock_mono_ms();
        long long due = src->next_due_ms;
        if (src->refresh_wanted && src->last_fetch_ms + min_gap < due)
            due = src->last_fetch_ms + min_gap;
        if (now >= due)
            return true;
        struct timespec ts;
        deadline_to_timespec(due, &ts);
        pthread_cond_timedwait(&src->cond, &src->mu, &ts);
    }
}

static void *fetch_main(void *arg)
{
    jwks_source *src = arg;
    long long retry_ms = (long long)(src->opts.min_refresh_s > 1 ? src->opts.min_refresh_s : 1) * 1000;
    if (retry_ms > (long long)src->opts.cache_s * 1000)
        retry_ms = (long long)src->opts.cache_s * 1000;

    pthread_mutex_lock(&src->mu);
    while (wait_for_due_fetch(src)) {
        src->refresh_wanted = false;
        src->last_fetch_ms = clock_mono_ms();
        pthread_mutex_unlock(&src->mu);

        char err[256] = "";
        jwks *set = fetch_once(src, err, sizeof err);
        if (set != NULL)
            log_info("JWKS fetched from AGENTGATE_JWT_JWKS_URL: %zu usable keys",
                     jwks_count(set));
        else if (!atomic_load(&src->abort_fetch))
            log_warn("JWKS fetch from AGENTGATE_JWT_JWKS_URL failed: %s; keeping the "
                     "previous keys", err);

        pthread_mutex_lock(&src->mu);
        jwks *old = NULL;
        if (set != NULL) {
            old = src->current;
            src->current = set;
        }
        src->next_due_ms = clock_mono_ms() +
                           (set != NULL ? (long long)src->opts.cache_s * 1000 : retry_ms);
        src->attempts++;
        pthread_cond_broadcast(&src->cond);   /* for jwks_source_fetch's first wait */
        pthread_mutex_unlock(&src->mu);
        jwks_release(old);   /* outside the lock: it may free keys */
        pthread_mutex_lock(&src->mu);
    }
    pthread_mutex_unlock(&src->mu);
    return NULL;
}

jwks_source *jwks_source_fetch(const jwks_fetch_opts *opts, char *err, size_t err_size)
{
    if (opts->url == NULL || (strncmp(opts->url, "http://", 7) != 0 &&
                              strncmp(opts->url, "https://", 8) != 0)) {
        snprintf(err, err_size, "the JWKS URL must start with http:// or https://");
        return NULL;
    }
    jwks_source *src = source_new();
    if (src == NULL || (src->url = strdup(opts->url)) == NULL) {
        snprintf(err, err_size, "out of memory");
        if (src != NULL)
            source_destroy(src);
        return NULL;
    }
    src->opts = *opts;
    src->opts.url = src->url;
    src->fetching = true;
    src->next_due_ms = clock_mono_ms();   /* the first fetch at once */
    int rc = pthread_create(&src->thread, NULL, fetch_main, src);
    if (rc != 0) {
        snprintf(err, err_size, "cannot start the JWKS fetch thread: %s", strerror(rc));
        source_destroy(src);
        return NULL;
    }

    /* The first fetch, so a gateway that starts healthy has its keys. */
    struct timespec ts;
    deadline_to_timespec(clock_mono_ms() + opts->timeout_ms + 1000, &ts);
    pthread_mutex_lock(&src->mu);
    while (src->attempts == 0 &&
           pthread_cond_timedwait(&src->cond, &src->mu, &ts) != ETIMEDOUT)
        ;
    pthread_mutex_unlock(&src->mu);
    return src;
}

void jwks_source_free(jwks_source *src)
{
    if (src == NULL)
        return;
    if (src->fetching) {
        atomic_store(&src->abort_fetch, true);
        pthread_mutex_lock(&src->mu);
        src->stop = true;
        pthread_cond_broadcast(&src->cond);
        pthread_mutex_unlock(&src->mu);
        pthread_join(src->thread, NULL);
    }
    source_destroy(src);
}
