/*
 * idempotency.c - Idempotency-Key on POST (see admit.h), as in the IETF
 * httpapi draft.
 *
 * The key idempotency:{tenant}:{sha256(key)} holds one record:
 *   in flight  "agidem1 P <fingerprint> <owner>"         PX IDEM_INFLIGHT_MS
 *   answered   "agidem1 D <fingerprint> <status> <ct_len> <loc_len> <body_len>\n"
 *              "<content type><location><body>"          EX idempotency_ttl_s
 * The fingerprint is the SHA-256 of method, path and body; the owner names
 * the one request that claimed the key, so that only it may replace the
 * in-flight record (a request slower than IDEM_INFLIGHT_MS whose claim
 * expired must not overwrite a newer claim's answer). Both the claim (read
 * or create) and the final write (compare and set) are Lua scripts, so two
 * gateways racing on one key cannot both win.
 *
 * The in-flight record is short-lived so a gateway that dies mid-request
 * blocks the key for a minute, not 24 h. Answers 5xx and 429 are not kept
 * (the key is deleted) because they say "try again", and a replay would
 * repeat the failure forever.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <hiredis/hiredis.h>
#include <mbedtls/sha256.h>
#include <mbedtls/version.h>

#include "admit.h"
#include "http.h"
#include "keys.h"
#include "log.h"
#include "redis_async.h"

#define IDEM_INFLIGHT_MS   60000
#define IDEM_REDIS_TIMEOUT_MS 500
#define IDEM_BODY_MAX      (8u << 20)   /* answers larger than this are not kept */
#define IDEM_CT_MAX        255
#define IDEM_LOC_MAX       1024
#define IDEM_TAG           "agidem1 "

/* Returns the record at KEYS[1] if there is one; else stores ARGV[1] for
 * ARGV[2] ms and returns 1. */
static const char claim_lua[] =
    "local v = redis.call('GET', KEYS[1])\n"
    "if v then return v end\n"
    "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])\n"
    "return 1\n";

/* Replaces the record only while it is still ARGV[1] (our claim): with
 * ARGV[2] for ARGV[3] s, or deletes it when ARGV[2] is empty. */
static const char settle_lua[] =
    "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end\n"
    "if ARGV[2] == '' then redis.call('DEL', KEYS[1])\n"
    "else redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3]) end\n"
    "return 1\n";

/* Replaces the record only while it is still ARGV[1] (the unreadable one
 * just read) with ARGV[2] for ARGV[3] ms; 1 when replaced, else 0. */
static const char takeover_lua[] =
    "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end\n"
    "redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])\n"
    "return 1\n";

/* ---- the request's identity ------------------------------------------- */

static void sha256_hex(const unsigned char d[32], char out[65])
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        out[2 * i] = hex[d[i] >> 4];
        out[2 * i + 1] = hex[d[i] & 15];
    }
    out[64] = '\0';
}

#if MBEDTLS_VERSION_NUMBER >= 0x03000000
#define sha_starts(c) mbedtls_sha256_starts((c), 0)
#define sha_update mbedtls_sha256_update
#define sha_finish mbedtls_sha256_finish
#else
#define sha_starts(c) mbedtls_sha256_starts_ret((c), 0)
#define sha_update mbedtls_sha256_update_ret
#define sha_finish mbedtls_sha256_finish_ret
#endif

/* SHA-256 of "POST\0<path>\0<body>" in hex: what "the same request" means. */
static void fingerprint(gw_req *r, char out[65])
{
    const char *path = r->req->uri && r->req->uri->path && r->req->uri->path->full
                       ? r->req->uri->path->full : "";
    size_t len;
    const char *body = http_body(r, &len);
    unsigned char d[32];
    mbedtls_sha256_context c;
    mbedtls_sha256_init(&c);
    sha_starts(&c);
    sha_update(&c, (const unsigned char *)"POST", 5);
    sha_update(&c, (const unsigned char *)path, strlen(path) + 1);
    if (body) sha_update(&c, (const unsigned char *)body, len);
    sha_finish(&c, d);
    mbedtls_sha256_free(&c);
    sha256_hex(d, out);
}

/* The in-flight record naming this request alone (process, start time,
 * context address and request id together). */
static void inflight_record(gw_req *r, const char *fp, char *out, size_t out_size)
{
    snprintf(out, out_size, IDEM_TAG "P %s %d.%lld.%llx.%s", fp, (int)getpid(), r->started_ms,
             (unsigned long long)(uintptr_t)r, r->request_id);
}

static bool is_ows(char c) { return c == ' ' || c == '\t'; }

bool idem_key_read(const char *value, char out[IDEM_KEY_MAX + 1])
{
    if (!value) return false;
    while (is_ows(*value)) value++;
    size_t n = strlen(value);
    while (n && is_ows(value[n - 1])) n--;
    if (n == 0 || n > IDEM_KEY_MAX) return false;
    for (size_t i = 0; i < n; i++)
        if (value[i] < 0x21 || value[i] > 0x7e) return false;
    memcpy(out, value, n);
    out[n] = '\0';
    return true;
}

static bool is_post(gw_req *r)
{
    return r->req && evhtp_request_get_method(r->req) == htp_method_POST;
}

/* ---- records ------------------------------------------------------------ */

typedef struct idem_record {
    bool done;               /* an answer, else in flight */
    char fp[65];
    int status;
    const char *ct, *loc, *body;   /* point into the reply; not NUL-terminated */
    size_t ct_len, loc_len, body_len;
} idem_record;

static bool is_hex64(const char *s)
{
    for (int i = 0; i < 64; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return false;
    return true;
}

/* Reads a decimal of at most max at *p, then the separator sep. */
static bool read_num(const char **p, const char *end, char sep, unsigned long long max,
                     unsigned long long *out)
{
    unsigned long long v = 0;
    const char *s = *p;
    if (s >= end || *s < '0' || *s > '9') return false;
    while (s < end && *s >= '0' && *s <= '9') {
        v = v * 10 + (unsigned)(*s - '0');
        if (v > max) return false;
        s++;
    }
    if (s >= end || *s != sep) return false;
    *p = s + 1;
    *out = v;
    return true;
}

/* Parses a stored record; false for anything not written by this file. */
static bool record_parse(const char *s, size_t n, idem_record *rec)
{
    const size_t tag = sizeof IDEM_TAG - 1;
    const char *end = s + n;
    memset(rec, 0, sizeof *rec);
    if (n < tag + 2 + 64 + 1 || memcmp(s, IDEM_TAG, tag) != 0 || s[tag + 1] != ' ') return false;
    const char *p = s + tag + 2;
    if (!is_hex64(p) || p[64] != ' ') return false;
    memcpy(rec->fp, p, 64);
    rec->fp[64] = '\0';
    p += 65;
    if (s[tag] == 'P') return true;
    if (s[tag] != 'D') return false;
    unsigned long long status, ct, loc, body;
    if (!read_num(&p, end, ' ', 599, &status) || status < 100 ||
        !read_num(&p, end, ' ', IDEM_CT_MAX, &ct) || !read_num(&p, end, ' ', IDEM_LOC_MAX, &loc) ||
        !read_num(&p, end, '\n', IDEM_BODY_MAX, &body) ||
        (size_t)(end - p) != ct + loc + body)
        return false;
    rec->done = true;
    rec->status = (int)status;
    rec->ct = p;
    rec->ct_len = ct;
    rec->loc = p + ct;
    rec->loc_len = loc;
    rec->body = p + ct + loc;
    rec->body_len = body;
    for (size_t i = 0; i < ct + loc; i++)      /* header values: printable only */
        if (p[i] < 0x20 || p[i] > 0x7e) return false;
    return true;
}

/* ---- answering from a record -------------------------------------------- */

static void replay(gw_req *r, const idem_record *rec)
{
    char ct[IDEM_CT_MAX + 1], loc[IDEM_LOC_MAX + 1];
    memcpy(ct, rec->ct, rec->ct_len);
    ct[rec->ct_len] = '\0';
    memcpy(loc, rec->loc, rec->loc_len);
    loc[rec->loc_len] = '\0';
    if (loc[0]) http_set_header(r, "Location", loc);
    http_set_header(r, "Idempotent-Replayed", "true");
    http_reply(r, rec->status, ct[0] ? ct : "application/json", rec->body, rec->body_len);
}

static void unavailable(gw_req *r)
{
    /* Without the store the gateway cannot tell a retry from a first
     * request, so going on could run the request twice: refuse instead,
     * and the client retries with the same key once Redis is back. */
    http_set_header(r, "Retry-After", "2");
    http_reply_problem(r, 503, "unavailable",
                       "idempotency keys cannot be checked right now; retry with the same key",
                       NULL);
}

/* ---- the final answer --------------------------------------------------- */

/* The settle script's command: our claim, the new record ("" deletes). */
static void settle(gw_req *r, const char *rkey, const char *claim, const char *rec, size_t rec_len)
{
    char ttl[24];
    snprintf(ttl, sizeof ttl, "%d", r->thr->srv->cfg.idempotency_ttl_s);
    redis_argv cmd;
    cmd.argc = 7;
    const char *argv[7] = { "EVAL", settle_lua, "1", rkey, claim, rec, ttl };
    size_t lens[7] = { 4, strlen(settle_lua), 1, strlen(rkey), strlen(claim), rec_len,
                       strlen(ttl) };
    for (int i = 0; i < 7; i++) { cmd.argv[i] = argv[i]; cmd.argvlen[i] = lens[i]; }
    if (rds_command(r->thr->redis, NULL, NULL, &cmd) != 0)
        log_warn("idempotency: the answer was not kept (Redis is down); the key stays in "
                 "flight for at most %d s", IDEM_INFLIGHT_MS / 1000);
}

/* What a claimed request keeps until its answer (r->idem): the answer may
 * come after the client left, when its headers and body are gone. */
typedef struct idem_held {
    char rkey[KEY_MAX];
    char fp[65];
    char claim[256];
} idem_held;

/* A header value of the answer, as kept by http.c; "" when unfit. */
static const char *out_header(const char *v, size_t max)
{
    if (!v || strlen(v) > max) return "";
    for (const char *p = v; *p; p++)
        if (*p < 0x20 || *p > 0x7e) return "";
    return v;
}

static void on_final_reply(gw_req *r, int status, const char *body, size_t len)
{
    const idem_held *h = r->idem;
    if (!h) return;
    const char *rkey = h->rkey, *claim = h->claim, *fp = h->fp;
    if (status >= 500 || status == 429 || len > IDEM_BODY_MAX) {
        if (len > IDEM_BODY_MAX)
            log_warn("idempotency: a %zu-byte answer is too large to keep", len);
        settle(r, rkey, claim, "", 0);
        return;
    }
    const char *ct = out_header(r->reply_ctype, IDEM_CT_MAX);
    const char *loc = out_header(r->reply_location, IDEM_LOC_MAX);
    size_t ct_len = strlen(ct), loc_len = strlen(loc);
    char head[160];
    int hn = snprintf(head, sizeof head, IDEM_TAG "D %s %d %zu %zu %zu\n", fp, status, ct_len,
                      loc_len, len);
    size_t total = (size_t)hn + ct_len + loc_len + len;
    char *rec = malloc(total);
    if (!rec) {
        settle(r, rkey, claim, "", 0);
        return;
    }
    memcpy(rec, head, (size_t)hn);
    memcpy(rec + hn, ct, ct_len);
    memcpy(rec + hn + ct_len, loc, loc_len);
    if (len) memcpy(rec + hn + ct_len + loc_len, body, len);
    settle(r, rkey, claim, rec, total);
    free(rec);
}

/* ---- claiming the key --------------------------------------------------- */

typedef struct idem_claim {
    gw_req *r;
    gw_next_fn next;
    struct event *timer;
    bool answered;           /* the Redis reply came */
    bool finished;           /* the request went on, or was answered */
    char rkey[KEY_MAX];
    char fp[65];
    char claim[256];
} idem_claim;

static void claim_maybe_free(idem_claim *c)
{
    if (!c->answered || !c->finished) return;
    if (c->timer) event_free(c->timer);
    gw_req_release(c->r);
    free(c);
}

static void claimed(idem_claim *c)
{
    idem_held *h = malloc(sizeof *h);
    if (!h) {
        settle(c->r, c->rkey, c->claim, "", 0);
        unavailable(c->r);
        return;
    }
    memcpy(h->rkey, c->rkey, sizeof h->rkey);
    memcpy(h->fp, c->fp, sizeof h->fp);
    memcpy(h->claim, c->claim, sizeof h->claim);
    free(c->r->idem);
    c->r->idem = h;
    c->r->on_reply = on_final_reply;
    c->next(c->r);
}

static void on_takeover_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    idem_claim *c = privdata;
    redisReply *rep = reply;
    gw_req_log_context(c->r);
    c->answered = true;
    if (!gw_req_alive(c->r)) {
        if (rep && rep->type == REDIS_REPLY_INTEGER && rep->integer == 1)
            settle(c->r, c->rkey, c->claim, "", 0);   /* the client is gone */
    } else {
        if (rep && rep->type == REDIS_REPLY_INTEGER && rep->integer == 1) {
            claimed(c);
        } else if (rep && rep->type == REDIS_REPLY_INTEGER) {
            /* Another request replaced it first and now holds the key. */
            http_set_header(c->r, "Retry-After", "1");
            http_reply_problem(c->r, 409, "idempotency-key-in-flight",
                               "a request with this Idempotency-Key is still in progress", NULL);
        } else {
            unavailable(c->r);
        }
    }
    claim_maybe_free(c);
    log_set_context(NULL, NULL);
}

/*
 * A record that does not read back is treated as absent: this request
 * claims the key, but only if the record is still the unreadable one, so
 * two requests finding it at once cannot both run. Returns 0 when the
 * command is sent (c stays alive until its answer), -1 otherwise.
 */
static int take_over(idem_claim *c, const char *old, size_t old_len)
{
    char px[16];
    snprintf(px, sizeof px, "%d", IDEM_INFLIGHT_MS);
    redis_argv cmd;
    const char *argv[7] = { "EVAL", takeover_lua, "1", c->rkey, old, c->claim, px };
    size_t lens[7] = { 4, strlen(takeover_lua), 1, strlen(c->rkey), old_len, strlen(c->claim),
                       strlen(px) };
    cmd.argc = 7;
    for (int i = 0; i < 7; i++) { cmd.argv[i] = argv[i]; cmd.argvlen[i] = lens[i]; }
    if (rds_command(c->r->thr->redis, on_takeover_reply, c, &cmd) != 0) return -1;
    c->answered = false;     /* one more answer to wait for */
    return 0;
}

/* Decides from the claim script's answer. */
static void on_claim_answer(idem_claim *c, const redisReply *rep)
{
    gw_req *r = c->r;
    if (!rep || rep->type == REDIS_REPLY_ERROR) {
        if (rep) log_warn("idempotency claim failed: %s", rep->str);
        unavailable(r);
        return;
    }
    if (rep->type == REDIS_REPLY_INTEGER && rep->integer == 1) {
        claimed(c);
        return;
    }
    idem_record rec;
    if (rep->type != REDIS_REPLY_STRING || !record_parse(rep->str, rep->len, &rec)) {
        log_error("idempotency: unreadable record under %s; replacing it", c->rkey);
        if (rep->type != REDIS_REPLY_STRING || take_over(c, rep->str, rep->len) != 0)
            unavailable(r);
        return;
    }
    if (strcmp(rec.fp, c->fp) != 0) {
        http_reply_problem(r, 422, "idempotency-key-reused",
                           "this Idempotency-Key was used for a different request", NULL);
    } else if (!rec.done) {
        http_set_header(r, "Retry-After", "1");
        http_reply_problem(r, 409, "idempotency-key-in-flight",
                           "a request with this Idempotency-Key is still in progress", NULL);
    } else {
        replay(r, &rec);
    }
}

static void on_claim_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    idem_claim *c = privdata;
    redisReply *rep = reply;
    bool was_finished = c->finished;
    gw_req_log_context(c->r);
    c->answered = true;
    c->finished = true;
    if (c->timer) evtimer_del(c->timer);
    bool won = rep && rep->type == REDIS_REPLY_INTEGER && rep->integer == 1;
    if (!was_finished && gw_req_alive(c->r))
        on_claim_answer(c, rep);
    else if (won)
        /* Claimed after the client was told 503, or was gone: give the key
         * back at once rather than have retries see 409 for a minute. */
        settle(c->r, c->rkey, c->claim, "", 0);
    claim_maybe_free(c);
    log_set_context(NULL, NULL);
}

static void on_claim_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd; (void)what;
    idem_claim *c = arg;
    gw_req_log_context(c->r);
    c->finished = true;
    if (gw_req_alive(c->r)) unavailable(c->r);
    claim_maybe_free(c);
    log_set_context(NULL, NULL);
}

void idem_begin(gw_req *r, gw_next_fn next)
{
    const char *value = is_post(r) && r->authenticated ? http_header(r, "Idempotency-Key") : NULL;
    if (!value) { next(r); return; }
    /* A header sent empty (or blank) is a malformed key, not "no key":
     * taken as a key, every such client of a tenant would share it. */
    char key[IDEM_KEY_MAX + 1];
    if (!idem_key_read(value, key)) {
        http_reply_problem(r, 400, "invalid-idempotency-key",
                           "Idempotency-Key must be 1 to 255 visible ASCII characters "
                           "(no spaces or control characters)", NULL);
        return;
    }
    idem_claim *c = calloc(1, sizeof *c);
    if (!c || !key_idempotency(c->rkey, r->who.tenant_id, key) || !rds_ready(r->thr->redis)) {
        free(c);
        unavailable(r);
        return;
    }
    c->r = r;
    c->next = next;
    fingerprint(r, c->fp);
    inflight_record(r, c->fp, c->claim, sizeof c->claim);
    char px[16];
    snprintf(px, sizeof px, "%d", IDEM_INFLIGHT_MS);
    redis_argv cmd;
    redis_argv_of(&cmd, "EVAL", claim_lua, "1", c->rkey, c->claim, px, (const char *)NULL);
    if (rds_command(r->thr->redis, on_claim_reply, c, &cmd) != 0) {
        free(c);
        unavailable(r);
        return;
    }
    gw_req_hold(r);
    gw_req_defer(r);
    c->timer = evtimer_new(r->thr->base, on_claim_deadline, c);
    struct timeval tv = { 0, IDEM_REDIS_TIMEOUT_MS * 1000 };
    if (c->timer) evtimer_add(c->timer, &tv);
}
