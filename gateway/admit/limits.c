/*
 * limits.c - per-principal and per-tenant rate limits (see admit.h).
 *
 * A request that needs a permission ("jobs.create", ...) takes one token
 * from up to two token buckets in Redis (common/ratelimit.c's script):
 *   rate:{tenant}:{sub}:{action}   the principal's bucket for the action
 *   rate:{tenant}:{action}         the whole tenant's bucket for the action
 * The limits are the tenant's own (tenants.settings, read from PostgreSQL
 * and cached per loop thread) and the operator's (AGENTGATE_RATE_LIMITS),
 * which are a ceiling: where both name a limit for the action, the
 * stricter of the two is taken (tenant_limit_stricter), so a tenant admin
 * can lower the operator's limits but never lift them. With no limit for
 * the action nothing is sent to Redis at all, so an unlimited deployment
 * pays nothing on the hot path.
 *
 * Both takes are sent at once (pipelined on the thread's connection) and
 * the request waits at most LIMITS_REDIS_TIMEOUT_MS for the answers. When
 * Redis is down, slow or answers garbage, the request is admitted: limits
 * protect the platform, they must not take the API down with Redis.
 * Answers that arrive after the deadline only release their state.
 *
 * A token taken from one bucket is not given back when the other bucket
 * refuses: the refused caller is over a limit anyway, and handing tokens
 * back would take another round trip.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <hiredis/hiredis.h>
#include <mbedtls/sha256.h>
#include <mbedtls/version.h>

#include "admit.h"
#include "clock.h"
#include "http.h"
#include "log.h"
#include "ratelimit.h"
#include "tenant_cache.h"
#include "pg_async.h"
#include "redis_async.h"

#define LIMITS_REDIS_TIMEOUT_MS 250
#define LIMITS_SETTINGS_SQL "SELECT settings::text FROM tenants WHERE id = $1"

/* ---- logging at most once a second per thread ----------------------------- */

static __thread long long last_warn_ms;

static bool warn_allowed(void)
{
    long long now = clock_mono_ms();
    if (now - last_warn_ms < 1000) return false;
    last_warn_ms = now;
    return true;
}

/* ---- the configured (fallback) limits ----------------------------------- */

static __thread bool config_parsed;
static __thread tenant_settings *config_limits;

/* AGENTGATE_RATE_LIMITS parsed once per thread; NULL when unset. (A value
 * that does not parse stops the gateway at start; should one get here, it
 * is logged once and limits nothing.) */
const tenant_settings *limits_configured(const ag_config *cfg)
{
    if (config_parsed) return config_limits;
    config_parsed = true;
    if (!cfg->rate_limits[0]) return NULL;
    tenant_settings *s = calloc(1, sizeof *s);
    char err[256];
    if (!s) return NULL;
    if (tenant_limits_parse_config(cfg->rate_limits, s, err, sizeof err) != 0) {
        log_error("AGENTGATE_RATE_LIMITS ignored: %s", err);
        free(s);
        return NULL;
    }
    if (s->n_principal + s->n_tenant == 0) { free(s); return NULL; }
    /* Kept for the thread's life: one small block per loop thread. */
    config_limits = s;
    return s;
}

/* ---- one request's takes ------------------------------------------------ */

typedef struct bucket {
    char key[RATELIMIT_KEY_MAX];
    const char *level;       /* "user" or "tenant", for the 429's detail */
    tenant_limit lim;
    bool eval_sent;          /* NOSCRIPT was answered once already */
    bool decided;
    ratelimit_result res;
} bucket;

typedef struct lim_req {
    gw_req *r;
    gw_next_fn next;
    struct event *timer;
    int pending;             /* Redis answers still to come */
    bool finished;           /* the request went on, or was answered */
    bool failed;             /* some answer was missing or bad */
    int nb;
    bucket b[2];
    char action[TENANT_ACTION_MAX];
} lim_req;

/* What one Redis answer belongs to. */
typedef struct bucket_ref {
    lim_req *lr;
    int i;
} bucket_ref;

static void lim_req_maybe_free(lim_req *lr)
{
    if (!lr->finished || lr->pending > 0) return;
    if (lr->timer) event_free(lr->timer);
    gw_req_release(lr->r);
    free(lr);
}

static void set_number_header(gw_req *r, const char *name, long long v)
{
    char buf[24];
    snprintf(buf, sizeof buf, "%lld", v);
    http_set_header(r, name, buf);
}

static long long ceil_div(long long a, long long b) { return a <= 0 ? 0 : (a - 1) / b + 1; }

/* Seconds until the bucket is full again (RateLimit-Reset). */
static long long reset_s(const bucket *b)
{
    long long missing = b->lim.capacity - (b->res.allowed ? b->res.remaining : 0);
    if (missing <= 0) return 0;
    /* missing * period_ms can pass 2^63 for extreme settings. */
    long double ms = (long double)missing * (long double)b->lim.period_ms /
                     (long double)b->lim.capacity;
    long long whole = (long long)ms;
    if ((long double)whole < ms) whole++;
    return ceil_div(whole, 1000);
}

static void set_limit_headers(gw_req *r, const bucket *b)
{
    set_number_header(r, "RateLimit-Limit", b->lim.capacity);
    set_number_header(r, "RateLimit-Remaining", b->res.allowed ? b->res.remaining : 0);
    set_number_header(r, "RateLimit-Reset", reset_s(b));
}

/* The bucket whose numbers the client should see: a refusing one (the
 * longest wait), else the one with the fewest tokens left. */
static const bucket *tightest(const lim_req *lr)
{
    const bucket *t = NULL;
    for (int i = 0; i < lr->nb; i++) {
        const bucket *b = &lr->b[i];
        if (!b->decided) continue;
        if (!t)
            t = b;
        else if (!b->res.allowed &&
                 (t->res.allowed || b->res.retry_after_ms > t->res.retry_after_ms))
            t = b;
        else if (b->res.allowed && t->res.allowed && b->res.remaining < t->res.remaining)
            t = b;
    }
    return t;
}

static void refuse(lim_req *lr, const bucket *b)
{
    gw_req *r = lr->r;
    long long retry_s = ceil_div(b->res.retry_after_ms, 1000);
    if (retry_s < 1) retry_s = 1;
    set_number_header(r, "Retry-After", retry_s);
    set_limit_headers(r, b);
    char detail[160];
    snprintf(detail, sizeof detail, "too many %s requests for this %s; retry after %lld s",
             lr->action, b->level, retry_s);
    http_reply_problem(r, 429, "rate-limited", detail, NULL);
}

/* Every answer is in, or the deadline passed: answer or go on, once. */
static void decide(lim_req *lr)
{
    if (lr->finished) return;
    lr->finished = true;
    if (lr->timer) evtimer_del(lr->timer);
    gw_req *r = lr->r;
    if (!gw_req_alive(r)) return;
    const bucket *t = tightest(lr);
    if (t && !t->res.allowed) { refuse(lr, t); return; }
    if (lr->failed && warn_allowed())
        log_warn("rate limits not enforced for %s (request admitted): Redis did not "
                 "answer in time", lr->action);
    if (t) set_limit_headers(r, t);
    lr->next(r);
}

static int send_take(lim_req *lr, int i);

static void on_take_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    bucket_ref *ref = privdata;
    lim_req *lr = ref->lr;
    int i = ref->i;
    bucket *b = &lr->b[i];
    free(ref);
    gw_req_log_context(lr->r);
    lr->pending--;
    if (!lr->finished) {
        char err[256];
        int rc = ratelimit_parse_reply(reply, &b->res, err, sizeof err);
        if (rc == RATELIMIT_NOSCRIPT && !b->eval_sent) {
            /* A restarted or flushed Redis forgot the script: EVAL loads it. */
            b->eval_sent = true;
            if (send_take(lr, i) != 0) lr->failed = true;
        } else if (rc == RATELIMIT_DECIDED) {
            b->decided = true;
        } else {
            lr->failed = true;
            if (warn_allowed())
                log_warn("rate limit bucket %s: %s", b->key,
                         rc == RATELIMIT_NOSCRIPT ? "NOSCRIPT after EVAL" : err);
        }
        if (lr->pending == 0) decide(lr);
    }
    lim_req_maybe_free(lr);
    log_set_context(NULL, NULL);
}

/* Sends one take of bucket i; 0, or -1 when it could not be sent. */
static int send_take(lim_req *lr, int i)
{
    bucket *b = &lr->b[i];
    ratelimit_cmd rc;
    if (ratelimit_cmd_build(&rc, b->eval_sent, b->key, b->lim.capacity, b->lim.period_ms, 1) != 0)
        return -1;
    redis_argv cmd;
    cmd.argc = rc.argc;
    for (int k = 0; k < rc.argc; k++) {
        cmd.argv[k] = rc.argv[k];
        cmd.argvlen[k] = rc.argvlen[k];
    }
    bucket_ref *ref = malloc(sizeof *ref);
    if (!ref) return -1;
    ref->lr = lr;
    ref->i = i;
    /* hiredis copies the arguments into its output buffer here. */
    if (rds_command(lr->r->thr->redis, on_take_reply, ref, &cmd) != 0) {
        free(ref);
        return -1;
    }
    lr->pending++;
    return 0;
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd; (void)what;
    lim_req *lr = arg;
    gw_req_log_context(lr->r);
    lr->failed = true;
    decide(lr);
    lim_req_maybe_free(lr);
    log_set_context(NULL, NULL);
}

/* ---- choosing the buckets ----------------------------------------------- */

/* A principal's part of a key: the sub itself when ratelimit_key takes it,
 * else "~" and a SHA-256 prefix of it (a sub with ':' or spaces must not
 * reshape the key, yet must still get its own bucket). */
static void sub_part(const char *sub, char out[130])
{
    size_t n = strlen(sub);
    bool plain = n > 0 && n < 128;
    for (size_t i = 0; plain && i < n; i++)
        if (sub[i] <= ' ' || sub[i] > '~' || sub[i] == ':' || (i == 0 && sub[i] == '~'))
            plain = false;
    if (plain) { memcpy(out, sub, n + 1); return; }
    unsigned char d[32];
    static const char hex[] = "0123456789abcdef";
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
    mbedtls_sha256((const unsigned char *)sub, n, d, 0);
#else
    mbedtls_sha256_ret((const unsigned char *)sub, n, d, 0);
#endif
    out[0] = '~';
    for (int i = 0; i < 20; i++) {
        out[1 + 2 * i] = hex[d[i] >> 4];
        out[2 + 2 * i] = hex[d[i] & 15];
    }
    out[41] = '\0';
}

/* The limit at one level into *out: the tenant's own entry (exact, then
 * "*") and the configured one, the stricter of the two where both exist,
 * since the configured limits are a ceiling the tenant can only lower.
 * Returns out, or NULL when neither limits the action. */
static const tenant_limit *limit_for(const tenant_limit *own, int n_own, const tenant_limit *cfg,
                                     int n_cfg, const char *action, tenant_limit *out)
{
    const tenant_limit *o = tenant_limit_find(own, n_own, action);
    const tenant_limit *c = tenant_limit_find(cfg, n_cfg, action);
    if (!o && !c) return NULL;
    *out = o && c ? tenant_limit_stricter(o, c) : o ? *o : *c;
    return out;
}

/* Takes the tokens that apply to r under settings s (NULL: none of its own). */
static void admit_with(gw_req *r, gw_next_fn next, const tenant_settings *s)
{
    const tenant_settings *cfg = limits_configured(&r->thr->srv->cfg);
    char action[TENANT_ACTION_MAX];
    snprintf(action, sizeof action, "%s.%s", rbac_resource_name(r->perm.res),
             rbac_action_name(r->perm.act));
    tenant_limit p_lim, t_lim;
    const tenant_limit *pl = limit_for(s ? s->principal : NULL, s ? s->n_principal : 0,
                                       cfg ? cfg->principal : NULL, cfg ? cfg->n_principal : 0,
                                       action, &p_lim);
    const tenant_limit *tl = limit_for(s ? s->tenant : NULL, s ? s->n_tenant : 0,
                                       cfg ? cfg->tenant : NULL, cfg ? cfg->n_tenant : 0, action,
                                       &t_lim);
    if (!pl && !tl) { next(r); return; }   /* the common, unlimited case: no Redis */

    if (!rds_ready(r->thr->redis)) {
        if (warn_allowed()) log_warn("rate limits not enforced (request admitted): Redis is down");
        next(r);
        return;
    }
    lim_req *lr = calloc(1, sizeof *lr);
    if (!lr) { next(r); return; }
    lr->r = r;
    lr->next = next;
    snprintf(lr->action, sizeof lr->action, "%s", action);
    char sub[130];
    sub_part(r->who.sub, sub);
    if (pl && ratelimit_key(lr->b[lr->nb].key, RATELIMIT_KEY_MAX, r->who.tenant_id, sub, action)) {
        lr->b[lr->nb].lim = *pl;
        lr->b[lr->nb++].level = "user";
    }
    if (tl && ratelimit_key(lr->b[lr->nb].key, RATELIMIT_KEY_MAX, r->who.tenant_id, NULL, action)) {
        lr->b[lr->nb].lim = *tl;
        lr->b[lr->nb++].level = "tenant";
    }
    gw_req_hold(r);
    gw_req_defer(r);
    for (int i = 0; i < lr->nb; i++)
        if (send_take(lr, i) != 0) lr->failed = true;
    if (lr->pending == 0) {            /* nothing could be sent */
        decide(lr);
        lim_req_maybe_free(lr);
        return;
    }
    lr->timer = evtimer_new(r->thr->base, on_deadline, lr);
    struct timeval tv = { 0, LIMITS_REDIS_TIMEOUT_MS * 1000 };
    if (lr->timer) evtimer_add(lr->timer, &tv);
}

/* ---- the tenant's settings ---------------------------------------------- */

typedef struct settings_load {
    gw_req *r;
    gw_next_fn next;
} settings_load;

/* Parses a tenants.settings text; a row that does not parse limits
 * nothing of its own (logged) rather than failing requests. */
static void settings_from_text(const char *tenant, const char *text, tenant_settings *out)
{
    char err[256];
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    if (text && !j) {
        log_error("tenant %s: settings are not JSON; using the configured limits", tenant);
        tenant_settings_parse(NULL, out, err, sizeof err);
        return;
    }
    if (tenant_settings_parse(j, out, err, sizeof err) != 0) {
        log_error("tenant %s: settings refused (%s); using the configured limits", tenant, err);
        tenant_settings_parse(NULL, out, err, sizeof err);
    }
    cJSON_Delete(j);
}

static void on_settings(PGresult *res, const char *err, const char *sqlstate, void *arg)
{
    (void)sqlstate;
    settings_load *sl = arg;
    gw_req *r = sl->r;
    gw_next_fn next = sl->next;
    free(sl);
    gw_req_log_context(r);
    tenant_settings s;
    bool have = false;
    if (res) {
        const char *text = PQntuples(res) > 0 && !PQgetisnull(res, 0, 0) ? PQgetvalue(res, 0, 0)
                                                                         : NULL;
        settings_from_text(r->who.tenant_id, text, &s);
        tenant_cache_put(r->who.tenant_id, &s, clock_mono_ms());
        have = true;
    } else if (warn_allowed()) {
        log_warn("tenant %s: settings not read (%s); using the configured limits",
                 r->who.tenant_id, err ? err : "no answer");
    }
    if (gw_req_alive(r)) admit_with(r, next, have ? &s : NULL);
    gw_req_release(r);
    log_set_context(NULL, NULL);
}

/* A stale entry's refresh in the background: no request waits for it. */
static void on_settings_refreshed(PGresult *res, const char *err, const char *sqlstate,
                                  void *arg)
{
    (void)sqlstate;
    char *tenant = arg;
    if (res) {
        tenant_settings s;
        const char *text = PQntuples(res) > 0 && !PQgetisnull(res, 0, 0) ? PQgetvalue(res, 0, 0)
                                                                         : NULL;
        settings_from_text(tenant, text, &s);
        tenant_cache_put(tenant, &s, clock_mono_ms());
    } else if (warn_allowed()) {
        log_warn("tenant %s: settings not refreshed (%s); keeping the cached ones", tenant,
                 err ? err : "no answer");
    }
    free(tenant);
}

static void refresh_in_background(gw_req *r)
{
    char *tenant = strdup(r->who.tenant_id);
    const char *params[1] = { tenant };
    if (tenant && pg_pool_query_as(r->thr->pg, tenant, LIMITS_SETTINGS_SQL, 1, params,
                                   on_settings_refreshed, tenant) == 0)
        return;
    free(tenant);
}

void limits_admit(gw_req *r, gw_next_fn next)
{
    /* Public routes (health, metrics) carry no permission and no limit. */
    if (r->perm.res == RES_NONE || !r->authenticated || !r->who.tenant_id[0]) {
        next(r);
        return;
    }
    const ag_config *cfg = &r->thr->srv->cfg;
    long long now = clock_mono_ms();
    bool fresh;
    const tenant_settings *s = tenant_cache_get(r->who.tenant_id, now,
                                                cfg->tenant_settings_cache_ms, &fresh);
    if (s) {
        /* Stale settings still serve while one query refreshes them, so a
         * busy tenant costs one query per expiry, not one per request. */
        if (!fresh && tenant_cache_begin_refresh(r->who.tenant_id, now))
            refresh_in_background(r);
        admit_with(r, next, s);      /* done with s before the cache can change */
        return;
    }
    settings_load *sl = malloc(sizeof *sl);
    if (sl) {
        sl->r = r;
        sl->next = next;
        const char *params[1] = { r->who.tenant_id };
        gw_req_hold(r);
        if (pg_pool_query_as(r->thr->pg, r->who.tenant_id, LIMITS_SETTINGS_SQL, 1, params,
                             on_settings, sl) == 0) {
            gw_req_defer(r);
            return;
        }
        gw_req_release(r);
        free(sl);
    }
    /* PostgreSQL unreachable: the configured limits still hold. */
    admit_with(r, next, NULL);
}
