/*
 * llm_router.c - picks the provider that answers a model request, and
 * retries, skips and falls back between providers (llm_router.h).
 *
 * Provider selection
 * ------------------
 * The rows of model_defaults the tenant can see (scope 'tenant' with its
 * tenant_id, and every 'global' row) and the configured providers
 * (AGENTGATE_LLM_PROVIDERS="name=base_url,...") give the candidates:
 *
 *  1. The model. A model named by the request is used as given. With none
 *     named: the model of the tenant's first is_default row; else
 *     AGENTGATE_LLM_MODEL when set; else the model of the first global
 *     is_default row (builtin-deterministic-1 out of the box). No model at
 *     all: LLM_ERR_INVALID_REQUEST.
 *  2. The chain for that model, in this order:
 *       a. the tenant's rows for the model, oldest first;
 *       b. every configured provider, in the order configured, unless a
 *          row gives the model to provider "builtin" (the built-in model
 *          name never goes to a real server);
 *       c. the global rows for the model, oldest first.
 *     A provider appearing twice at the same base URL is asked once.
 *  3. Where each lives. A row's provider names it ([A-Za-z0-9._-]{1,31});
 *     its base_url says where it lives, or, when NULL, the base URL the
 *     configuration gives that name; a row with neither is skipped with a
 *     warning. Provider "builtin" is the built-in deterministic provider,
 *     whatever the base URL. API keys come from AGENTGATE_LLM_API_KEYS by
 *     provider name and are never logged.
 *
 * Trying them
 * -----------
 * Each candidate is asked in turn; the first answer wins. A transient
 * failure (429, 408, 5xx, a timeout, a connect failure, a stream that
 * broke off before its first delta) is retried on the same candidate up
 * to AGENTGATE_LLM_MAX_RETRIES times, after an exponential backoff with
 * full jitter (a random wait in [0, min(max, base * 2^n)]), and never
 * sooner than the provider's Retry-After. A malformed reply or a refusal
 * (other 4xx) is not retried: it would come again. When a candidate gives
 * up, the next is asked. The whole chain
 * has AGENTGATE_LLM_TOTAL_TIMEOUT_MS: a wait that would end past it is not
 * taken, and each attempt gets only what is left. Every wait polls
 * req->should_abort. Once a delta has reached the caller, any failure is
 * final: no retry, no fallback, so clients never see text twice.
 *
 * Circuit breaker
 * ---------------
 * One per provider name, in the Redis hash circuit:{provider} (state
 * closed|open|half_open, failures, open_until_ms, probe_until_ms), shared
 * by every worker and changed only by Lua scripts, so each change is
 * atomic and times come from the Redis server's clock. Failures in a row
 * (AGENTGATE_LLM_CIRCUIT_FAILURES) open it for AGENTGATE_LLM_CIRCUIT_OPEN_MS;
 * while open the provider is skipped without a request. After that one
 * caller gets a half-open probe (one attempt, no retries; a probe that
 * never reports is given up after the total timeout, one that was aborted
 * is handed back at once); its success closes the circuit, its failure
 * opens it again. Only failures that say the provider is unwell count
 * (those above and malformed replies; not a 400 or 401). Without Redis
 * (rd NULL or failing) this process's own view of the circuits decides;
 * it is kept up to date all the time, so it starts from what was last
 * seen.
 *
 * Retries, fallbacks and circuit changes are logged, one line each.
 */
#include "llm_router.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "backoff.h"
#include "clock.h"
#include "llm_openai.h"
#include "job_store.h"
#include "log.h"
#include "redis_script.h"
#include "strbuf.h"
#include "llm_span.h"
#include "worker_metrics.h"

#define PROVIDER_NAME_MAX  31     /* fits llm_response.provider */
#define BASE_URL_MAX       512
#define API_KEY_MAX        512
#define MODEL_NAME_MAX     128      /* as ag_config.llm_model and llm_route_info */
#define MAX_CONFIGURED     16
#define MAX_CANDIDATES     16
#define MAX_ROWS           256
#define LOCAL_CIRCUITS     64
#define ABORT_POLL_MS      20
#define BUILTIN_NAME       "builtin"

_Static_assert(sizeof(((llm_response *)0)->provider) >= PROVIDER_NAME_MAX + 1,
               "a provider name must fit llm_response.provider");
_Static_assert(sizeof(((ag_config *)0)->llm_model) <= MODEL_NAME_MAX &&
               sizeof(((llm_route_info *)0)->model) >= MODEL_NAME_MAX,
               "a configured model name must fit a route");

typedef struct configured_provider {
    char name[PROVIDER_NAME_MAX + 1];
    char base_url[BASE_URL_MAX];
} configured_provider;

typedef struct api_key {
    char name[PROVIDER_NAME_MAX + 1];
    char key[API_KEY_MAX];
} api_key;

/* This process's view of one provider's circuit. */
typedef struct local_circuit {
    char name[PROVIDER_NAME_MAX + 1];
    int state;                  /* CIRCUIT_* */
    int failures;
    long long open_until_ms;    /* wall clock */
    long long probe_until_ms;
} local_circuit;

enum { CIRCUIT_CLOSED = 0, CIRCUIT_OPEN, CIRCUIT_HALF_OPEN };

static struct router {
    bool ready;
    const ag_config *cfg;
    configured_provider prov[MAX_CONFIGURED];
    size_t n_prov;
    api_key keys[MAX_CONFIGURED];
    size_t n_keys;
    pthread_mutex_t lock;       /* guards circuits */
    local_circuit circuits[LOCAL_CIRCUITS];
    size_t n_circuits;
} R = { .lock = PTHREAD_MUTEX_INITIALIZER };

typedef struct candidate {
    char provider[PROVIDER_NAME_MAX + 1];
    char base_url[BASE_URL_MAX];   /* "" for the built-in provider */
    bool builtin;
    const char *source;            /* "tenant", "config" or "global" */
} candidate;

typedef struct route {
    char model[MODEL_NAME_MAX];
    candidate c[MAX_CANDIDATES];
    size_t n;
} route;

/* ---- settings ------------------------------------------------------------ */

static bool valid_provider_name(const char *s, size_t len)
{
    if (len == 0 || len > PROVIDER_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* http(s)://, no whitespace or control characters, shorter than the cap. */
static bool valid_base_url(const char *s, size_t len)
{
    if (len >= BASE_URL_MAX)
        return false;
    if (!(len > 7 && strncmp(s, "http://", 7) == 0) &&
        !(len > 8 && strncmp(s, "https://", 8) == 0))
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] <= 0x20 || s[i] == 0x7f)
            return false;
    return true;
}

/* Copies a URL without its trailing slashes. */
static void copy_base_url(char *dst, const char *s, size_t len)
{
    while (len > 0 && s[len - 1] == '/')
        len--;
    memcpy(dst, s, len);
    dst[len] = '\0';
}

static void trim(const char **s, size_t *len)
{
    while (*len > 0 && (**s == ' ' || **s == '\t')) {
        (*s)++;
        (*len)--;
    }
    while (*len > 0 && ((*s)[*len - 1] == ' ' || (*s)[*len - 1] == '\t'))
        (*len)--;
}

/* Calls item(name, nlen, value, vlen) for each "name=value" of a comma
 * list. Returns 0, or -1 with err filled by the first refusal. */
typedef int (*pair_fn)(const char *name, size_t nlen, const char *value, size_t vlen,
                       char *err, size_t err_size);

static int parse_pairs(const char *setting, const char *list, pair_fn item,
                       char *err, size_t err_size)
{
    const char *p = list;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        if (len > 0 || end) {
            const char *name = p, *value;
            size_t nlen, vlen;
            if (!eq) {
                errbuf_printf(err, err_size, "%s: an entry has no '=' (want "
                              "name=value,...)", setting);
                return -1;
            }
            nlen = (size_t)(eq - p);
            value = eq + 1;
            vlen = len - nlen - 1;
            trim(&name, &nlen);
            trim(&value, &vlen);
            if (!valid_provider_name(name, nlen)) {
                errbuf_printf(err, err_size,
                              "%s: provider name '%.*s' is not 1-31 characters of "
                              "[A-Za-z0-9._-]", setting, (int)(nlen > 40 ? 40 : nlen), name);
                return -1;
            }
            if (item(name, nlen, value, vlen, err, err_size) < 0)
                return -1;
        }
        if (!end)
            break;
        p = end + 1;
    }
    return 0;
}

static int add_provider(const char *name, size_t nlen, const char *value, size_t vlen,
                        char *err, size_t err_size)
{
    if (nlen == strlen(BUILTIN_NAME) && memcmp(name, BUILTIN_NAME, nlen) == 0) {
        errbuf_printf(err, err_size, "AGENTGATE_LLM_PROVIDERS: '%s' is the built-in "
                      "provider's name and cannot be configured", BUILTIN_NAME);
        return -1;
    }
    if (!valid_base_url(value, vlen)) {
        errbuf_printf(err, err_size, "AGENTGATE_LLM_PROVIDERS: %.*s: base URL must be "
                      "http:// or https://, without spaces, under %d bytes",
                      (int)nlen, name, BASE_URL_MAX);
        return -1;
    }
    for (size_t i = 0; i < R.n_prov; i++)
        if (strlen(R.prov[i].name) == nlen && memcmp(R.prov[i].name, name, nlen) == 0) {
            errbuf_printf(err, err_size, "AGENTGATE_LLM_PROVIDERS: %.*s is listed twice",
                          (int)nlen, name);
            return -1;
        }
    if (R.n_prov == MAX_CONFIGURED) {
        errbuf_printf(err, err_size, "AGENTGATE_LLM_PROVIDERS: more than %d providers",
                      MAX_CONFIGURED);
        return -1;
    }
    configured_provider *p = &R.prov[R.n_prov++];
    memcpy(p->name, name, nlen);
    p->name[nlen] = '\0';
    copy_base_url(p->base_url, value, vlen);
    return 0;
}

/* The key itself is never echoed in an error: only its provider's name. */
static int add_key(const char *name, size_t nlen, const char *value, size_t vlen,
                   char *err, size_t err_size)
{
    if (vlen == 0 || vlen >= API_KEY_MAX) {
        errbuf_printf(err, err_size, "AGENTGATE_LLM_API_KEYS: the key for %.*s must be "
                      "1-%d bytes", (int)nlen, name, API_KEY_MAX - 1);
        return -1;
    }
    for (size_t i = 0; i < vlen; i++)
        if ((unsigned char)value[i] <= 0x20 || value[i] == 0x7f) {
            errbuf_printf(err, err_size, "AGENTGATE_LLM_API_KEYS: the key for %.*s holds "
                          "a space or control character", (int)nlen, name);
            return -1;
        }
    for (size_t i = 0; i < R.n_keys; i++)
        if (strlen(R.keys[i].name) == nlen && memcmp(R.keys[i].name, name, nlen) == 0) {
            errbuf_printf(err, err_size, "AGENTGATE_LLM_API_KEYS: %.*s is listed twice",
                          (int)nlen, name);
            return -1;
        }
    if (R.n_keys == MAX_CONFIGURED) {
        errbuf_printf(err, err_size, "AGENTGATE_LLM_API_KEYS: more than %d keys",
                      MAX_CONFIGURED);
        return -1;
    }
    api_key *k = &R.keys[R.n_keys++];
    memcpy(k->name, name, nlen);
    k->name[nlen] = '\0';
    memcpy(k->key, value, vlen);
    k->key[vlen] = '\0';
    return 0;
}

int llm_router_init(const ag_config *cfg, char *err, size_t err_size)
{
    if (R.ready) {
        errbuf_printf(err, err_size, "LLM router initialised twice");
        return -1;
    }
    R.n_prov = R.n_keys = R.n_circuits = 0;
    if (parse_pairs("AGENTGATE_LLM_PROVIDERS", cfg->llm_providers, add_provider,
                    err, err_size) < 0 ||
        parse_pairs("AGENTGATE_LLM_API_KEYS", cfg->llm_api_keys, add_key, err, err_size) < 0)
        goto fail;
    if (cfg->llm_retry_max_ms < cfg->llm_retry_base_ms) {
        errbuf_printf(err, err_size, "AGENTGATE_LLM_RETRY_MAX_MS (%d) is below "
                      "AGENTGATE_LLM_RETRY_BASE_MS (%d)", cfg->llm_retry_max_ms,
                      cfg->llm_retry_base_ms);
        goto fail;
    }
    if (llm_openai_global_init(err, err_size) < 0)
        goto fail;
    R.cfg = cfg;
    R.ready = true;
    return 0;
fail:
    memset(R.keys, 0, sizeof R.keys);
    R.n_prov = R.n_keys = 0;
    return -1;
}

void llm_router_shutdown(void)
{
    if (!R.ready)
        return;
    llm_openai_global_cleanup();
    memset(R.keys, 0, sizeof R.keys);   /* no key outlives its use */
    R.n_prov = R.n_keys = R.n_circuits = 0;
    R.ready = false;
}

static const configured_provider *configured(const char *name)
{
    for (size_t i = 0; i < R.n_prov; i++)
        if (strcmp(R.prov[i].name, name) == 0)
            return &R.prov[i];
    return NULL;
}

static const char *key_for(const char *name)
{
    for (size_t i = 0; i < R.n_keys; i++)
        if (strcmp(R.keys[i].name, name) == 0)
            return R.keys[i].key;
    return NULL;
}

/* ---- candidates ---------------------------------------------------------- */

typedef struct md_row {
    bool tenant;
    bool is_default;
    const char *provider, *model, *base_url;
} md_row;

static void add_candidate(route *rt, const char *provider, const char *base_url,
                          const char *source)
{
    bool builtin = strcmp(provider, BUILTIN_NAME) == 0;
    if (builtin)
        base_url = "";
    for (size_t i = 0; i < rt->n; i++)
        if (strcmp(rt->c[i].provider, provider) == 0 &&
            strcmp(rt->c[i].base_url, base_url) == 0)
            return;
    if (rt->n == MAX_CANDIDATES)
        return;
    candidate *c = &rt->c[rt->n++];
    snprintf(c->provider, sizeof c->provider, "%s", provider);
    snprintf(c->base_url, sizeof c->base_url, "%s", base_url);
    c->builtin = builtin;
    c->source = source;
}

/* A row's candidate, or a warning when it cannot be one. */
static void add_row(route *rt, const md_row *row)
{
    const char *p = row->provider;
    if (!valid_provider_name(p, strlen(p))) {
        log_warn("llm router: model_defaults row for model %s names an invalid provider; "
                 "skipped", row->model);
        return;
    }
    if (strcmp(p, BUILTIN_NAME) == 0) {
        add_candidate(rt, p, "", row->tenant ? "tenant" : "global");
        return;
    }
    if (row->base_url[0]) {
        size_t len = strlen(row->base_url);
        if (!valid_base_url(row->base_url, len)) {
            log_warn("llm router: provider %s (model %s) has an unusable base_url; skipped",
                     p, row->model);
            return;
        }
        char url[BASE_URL_MAX];
        copy_base_url(url, row->base_url, len);
        add_candidate(rt, p, url, row->tenant ? "tenant" : "global");
        return;
    }
    const configured_provider *cp = configured(p);
    if (!cp) {
        log_warn("llm router: provider %s (model %s) has no base_url and is not in "
                 "AGENTGATE_LLM_PROVIDERS; skipped", p, row->model);
        return;
    }
    add_candidate(rt, p, cp->base_url, row->tenant ? "tenant" : "global");
}

/* The model a request for none gets (rule 1 above), or NULL. */
static const char *default_model(const md_row *rows, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (rows[i].tenant && rows[i].is_default)
            return rows[i].model;
    if (R.cfg->llm_model[0])
        return R.cfg->llm_model;
    for (size_t i = 0; i < n; i++)
        if (!rows[i].tenant && rows[i].is_default)
            return rows[i].model;
    return NULL;
}

static bool model_is_builtin(const md_row *rows, size_t n, const char *model)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(rows[i].model, model) == 0 && strcmp(rows[i].provider, BUILTIN_NAME) == 0)
            return true;
    return false;
}

static void build_chain(route *rt, const md_row *rows, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (rows[i].tenant && strcmp(rows[i].model, rt->model) == 0)
            add_row(rt, &rows[i]);
    if (!model_is_builtin(rows, n, rt->model))
        for (size_t i = 0; i < R.n_prov; i++)
            add_candidate(rt, R.prov[i].name, R.prov[i].base_url, "config");
    for (size_t i = 0; i < n; i++)
        if (!rows[i].tenant && strcmp(rows[i].model, rt->model) == 0)
            add_row(rt, &rows[i]);
}

/* Fills rt for (tenant_id, model). Returns LLM_OK, INVALID_REQUEST (no
 * such model, no provider for it) or UNAVAILABLE (PostgreSQL failed). */
static llm_err find_route(PGconn *pg, const char *tenant_id, const char *model,
                          route *rt, char *err, size_t err_size)
{
    memset(rt, 0, sizeof *rt);
    if (!R.ready) {
        errbuf_printf(err, err_size, "the LLM router is not initialised");
        return LLM_ERR_UNAVAILABLE;
    }
    if (model && strlen(model) >= MODEL_NAME_MAX) {
        errbuf_printf(err, err_size, "model name longer than %d bytes", MODEL_NAME_MAX - 1);
        return LLM_ERR_INVALID_REQUEST;
    }
    if (!pg) {
        errbuf_printf(err, err_size, "no database connection for model_defaults");
        return LLM_ERR_UNAVAILABLE;
    }
    const char *params[1] = { tenant_id };
    /* As the tenant (row-level security): its rows and the global ones. */
    PGresult *res = store_exec_as(pg, tenant_id,
        "SELECT scope = 'tenant', is_default, provider, model, COALESCE(base_url, '') "
        "FROM model_defaults "
        "WHERE scope = 'global' OR (scope = 'tenant' AND tenant_id = $1) "
        "ORDER BY scope = 'tenant' DESC, id LIMIT 256",    /* MAX_ROWS */
        1, params);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        errbuf_printf(err, err_size, "reading model_defaults failed: %s",
                      PQerrorMessage(pg));
        PQclear(res);
        return LLM_ERR_UNAVAILABLE;
    }
    int nrows = PQntuples(res);
    md_row rows[MAX_ROWS];
    size_t n = 0;
    for (int i = 0; i < nrows && n < MAX_ROWS; i++, n++) {
        rows[n].tenant = PQgetvalue(res, i, 0)[0] == 't';
        rows[n].is_default = PQgetvalue(res, i, 1)[0] == 't';
        rows[n].provider = PQgetvalue(res, i, 2);
        rows[n].model = PQgetvalue(res, i, 3);
        rows[n].base_url = PQgetvalue(res, i, 4);
    }
    const char *m = model && model[0] ? model : default_model(rows, n);
    llm_err e = LLM_OK;
    if (!m) {
        errbuf_printf(err, err_size, "no model named and no default model configured");
        e = LLM_ERR_INVALID_REQUEST;
    } else if (strlen(m) >= MODEL_NAME_MAX) {
        errbuf_printf(err, err_size, "default model name longer than %d bytes",
                      MODEL_NAME_MAX - 1);
        e = LLM_ERR_INVALID_REQUEST;
    } else {
        snprintf(rt->model, sizeof rt->model, "%s", m);
        build_chain(rt, rows, n);
        if (rt->n == 0) {
            strbuf msg = {0};
            strbuf_add(&msg, "no provider serves model '");
            strbuf_add_flat(&msg, rt->model, 64);
            strbuf_add(&msg, "'");
            errbuf_printf(err, err_size, "%s", msg.oom ? "no provider serves that model"
                                                       : msg.s);
            strbuf_free(&msg);
            e = LLM_ERR_INVALID_REQUEST;
        }
    }
    PQclear(res);
    return e;
}

llm_err llm_router_resolve(PGconn *pg, const char *tenant_id, const char *model,
                           llm_route_info *info, char *err, size_t err_size)
{
    route rt;
    memset(info, 0, sizeof *info);
    llm_err e = find_route(pg, tenant_id, model, &rt, err, err_size);
    if (e != LLM_OK)
        return e;
    snprintf(info->model, sizeof info->model, "%s", rt.model);
    info->n_candidates = rt.n;
    for (size_t i = 0; i < rt.n; i++)
        if (!rt.c[i].builtin)
            info->language_model = true;
    return LLM_OK;
}

/* ---- backoff ------------------------------------------------------------- */

/* Full jitter: uniform in [0, min(max, base * 2^retry)]. Unlike the equal
 * jitter of job retries (backoff_retry_delay_ms), a provider call may come
 * back at once: the point is to spread many workers hitting one provider. */
static long long backoff_delay_ms(int retry)
{
    long long cap = R.cfg->llm_retry_base_ms;
    for (int i = 0; i < retry && cap < R.cfg->llm_retry_max_ms; i++)
        cap *= 2;
    if (cap > R.cfg->llm_retry_max_ms)
        cap = R.cfg->llm_retry_max_ms;
    return (long long)(backoff_random() % (unsigned long long)(cap + 1));
}

/* ---- circuits ------------------------------------------------------------ */

static const char *circuit_state_name(int s)
{
    return s == CIRCUIT_OPEN ? "open" : s == CIRCUIT_HALF_OPEN ? "half_open" : "closed";
}

/* Under R.lock. The slot for name, taking the stalest when all are used. */
static local_circuit *local_slot(const char *name)
{
    for (size_t i = 0; i < R.n_circuits; i++)
        if (strcmp(R.circuits[i].name, name) == 0)
            return &R.circuits[i];
    local_circuit *c;
    if (R.n_circuits < LOCAL_CIRCUITS) {
        c = &R.circuits[R.n_circuits++];
    } else {
        /* Forget a closed one first: it holds the least. */
        c = &R.circuits[0];
        for (size_t i = 0; i < R.n_circuits; i++)
            if (R.circuits[i].state == CIRCUIT_CLOSED) {
                c = &R.circuits[i];
                break;
            }
    }
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "%s", name);
    return c;
}

enum { ALLOW_NO = 0, ALLOW_YES = 1, ALLOW_PROBE = 2 };

static int local_allow(const char *name, long long now, long long probe_ms)
{
    pthread_mutex_lock(&R.lock);
    local_circuit *c = local_slot(name);
    int verdict = ALLOW_YES;
    if (c->state == CIRCUIT_OPEN) {
        if (now < c->open_until_ms) {
            verdict = ALLOW_NO;
        } else {
            c->state = CIRCUIT_HALF_OPEN;
            c->probe_until_ms = now + probe_ms;
            verdict = ALLOW_PROBE;
        }
    } else if (c->state == CIRCUIT_HALF_OPEN) {
        if (now < c->probe_until_ms) {
            verdict = ALLOW_NO;
        } else {
            c->probe_until_ms = now + probe_ms;
            verdict = ALLOW_PROBE;
        }
    }
    int state = c->state;
    pthread_mutex_unlock(&R.lock);
    worker_metrics_llm_circuit(name, state);
    return verdict;
}

/* Returns the state before and after through *from and *to. */
static void local_record(const char *name, bool ok, long long now, int *from, int *to)
{
    pthread_mutex_lock(&R.lock);
    local_circuit *c = local_slot(name);
    *from = c->state;
    if (ok) {
        c->state = CIRCUIT_CLOSED;
        c->failures = 0;
    } else {
        c->failures++;
        if (c->state == CIRCUIT_HALF_OPEN || c->failures >= R.cfg->llm_circuit_failures) {
            c->state = CIRCUIT_OPEN;
            c->open_until_ms = now + R.cfg->llm_circuit_open_ms;
        }
    }
    *to = c->state;
    pthread_mutex_unlock(&R.lock);
    worker_metrics_llm_circuit(name, *to);
}

/* Mirrors Redis's answer into the local view, so a Redis outage starts
 * from what was last seen. */
static void local_mirror(const char *name, int state, int failures, long long open_until)
{
    pthread_mutex_lock(&R.lock);
    local_circuit *c = local_slot(name);
    c->state = state;
    c->failures = failures;
    c->open_until_ms = open_until;
    pthread_mutex_unlock(&R.lock);
    worker_metrics_llm_circuit(name, state);
}

/*
 * KEYS[1] circuit:{provider}; ARGV[1] probe lease ms; ARGV[2] key TTL ms.
 * Returns {verdict, state, failures, open_until_ms}: verdict 0 skip, 1 go,
 * 2 go as the half-open probe.
 */
static const char CIRCUIT_ALLOW_LUA[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local h = redis.call('HMGET', KEYS[1], 'state', 'failures', 'open_until_ms', "
    "'probe_until_ms')\n"
    "local st = h[1] or 'closed'\n"
    "local fails = tonumber(h[2]) or 0\n"
    "local open_until = tonumber(h[3]) or 0\n"
    "local probe_until = tonumber(h[4]) or 0\n"
    "if st == 'open' then\n"
    "  if now < open_until then return {0, st, fails, open_until} end\n"
    "elseif st == 'half_open' then\n"
    "  if now < probe_until then return {0, st, fails, open_until} end\n"
    "else\n"
    "  return {1, 'closed', fails, open_until}\n"
    "end\n"
    "redis.call('HSET', KEYS[1], 'state', 'half_open', 'probe_until_ms', "
    "now + tonumber(ARGV[1]))\n"
    "redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
    "return {2, 'half_open', fails, open_until}\n";

/*
 * KEYS[1] circuit:{provider}; ARGV[1] 1 success, 0 failure, or r to give
 * back a half-open probe that ended without an outcome (aborted); ARGV[2]
 * failures that open it; ARGV[3] open ms; ARGV[4] key TTL ms.
 * Returns {state before, state after, failures, open_until_ms}.
 */
static const char CIRCUIT_RECORD_LUA[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local h = redis.call('HMGET', KEYS[1], 'state', 'failures', 'open_until_ms')\n"
    "local st = h[1] or 'closed'\n"
    "local fails = tonumber(h[2]) or 0\n"
    "local open_until = tonumber(h[3]) or 0\n"
    "if ARGV[1] == 'r' then\n"
    "  if st == 'half_open' then\n"
    "    redis.call('HSET', KEYS[1], 'probe_until_ms', 0)\n"
    "  end\n"
    "  return {st, st, fails, open_until}\n"
    "end\n"
    "if ARGV[1] == '1' then\n"
    "  if st ~= 'closed' or fails ~= 0 then\n"
    "    redis.call('HSET', KEYS[1], 'state', 'closed', 'failures', 0, "
    "'open_until_ms', 0, 'probe_until_ms', 0)\n"
    "    redis.call('PEXPIRE', KEYS[1], ARGV[4])\n"
    "  end\n"
    "  return {st, 'closed', 0, 0}\n"
    "end\n"
    "fails = fails + 1\n"
    "local to = st\n"
    "if st == 'half_open' or fails >= tonumber(ARGV[2]) then\n"
    "  to = 'open'\n"
    "  open_until = now + tonumber(ARGV[3])\n"
    "end\n"
    "redis.call('HSET', KEYS[1], 'state', to, 'failures', fails, 'open_until_ms', "
    "open_until)\n"
    "redis.call('PEXPIRE', KEYS[1], ARGV[4])\n"
    "return {st, to, fails, open_until}\n";

static redis_script allow_script = REDIS_SCRIPT(CIRCUIT_ALLOW_LUA);
static redis_script record_script = REDIS_SCRIPT(CIRCUIT_RECORD_LUA);

static int state_from_name(const char *s)
{
    return strcmp(s, "open") == 0 ? CIRCUIT_OPEN
         : strcmp(s, "half_open") == 0 ? CIRCUIT_HALF_OPEN : CIRCUIT_CLOSED;
}

/* A circuit key outlives its last change by a day, or ten open spells. */
static long long circuit_ttl_ms(void)
{
    long long ttl = 10LL * R.cfg->llm_circuit_open_ms;
    return ttl > 86400000LL ? ttl : 86400000LL;
}

static bool redis_usable(redisContext *rd)
{
    return rd && rd->err == 0;
}

/* Runs a circuit script. Returns the reply (an array of 4) or NULL, in
 * which case the caller uses the local view. */
static redisReply *circuit_eval(redisContext *rd, redis_script *script,
                                const char *provider, int nargs, const char *const *args)
{
    if (!redis_usable(rd))
        return NULL;
    char key[8 + PROVIDER_NAME_MAX + 1];
    snprintf(key, sizeof key, "circuit:%s", provider);
    const char *argv[6];
    int argc = 0;
    argv[argc++] = "1";
    argv[argc++] = key;
    for (int i = 0; i < nargs && argc < 6; i++)
        argv[argc++] = args[i];
    redisReply *r = redis_script_call(rd, script, argc, argv, NULL);
    if (!r) {
        log_warn("llm router: circuit:%s: Redis failed (%s); using this process's view",
                 provider, rd->errstr);
        return NULL;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 4) {
        log_warn("llm router: circuit:%s: unexpected Redis reply%s%s; using this process's "
                 "view", provider, r->type == REDIS_REPLY_ERROR ? ": " : "",
                 r->type == REDIS_REPLY_ERROR ? r->str : "");
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

static long long reply_int(const redisReply *r)
{
    if (r->type == REDIS_REPLY_INTEGER)
        return r->integer;
    if (r->type == REDIS_REPLY_STRING)
        return strtoll(r->str, NULL, 10);
    return 0;
}

static const char *reply_str(const redisReply *r)
{
    return r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS ? r->str : "";
}

/* May the provider be asked now? ALLOW_NO, ALLOW_YES or ALLOW_PROBE. */
static int circuit_allow(redisContext *rd, const char *provider)
{
    char probe[24], ttl[24];
    snprintf(probe, sizeof probe, "%d", R.cfg->llm_total_timeout_ms);
    snprintf(ttl, sizeof ttl, "%lld", circuit_ttl_ms());
    const char *args[2] = { probe, ttl };
    redisReply *r = circuit_eval(rd, &allow_script, provider, 2, args);
    if (!r)
        return local_allow(provider, clock_wall_ms(), R.cfg->llm_total_timeout_ms);
    int verdict = (int)reply_int(r->element[0]);
    local_mirror(provider, state_from_name(reply_str(r->element[1])),
                 (int)reply_int(r->element[2]), reply_int(r->element[3]));
    freeReplyObject(r);
    if (verdict == ALLOW_PROBE)
        log_info("llm router: circuit:%s half_open: one probe request allowed", provider);
    return verdict;
}

/* A half-open probe that was aborted says nothing about the provider:
 * give the probe back so the next caller may make it, rather than have
 * every caller wait for the probe's lease to run out. */
static void circuit_release_probe(redisContext *rd, const char *provider)
{
    const char *args[4] = { "r", "0", "0", "0" };
    redisReply *r = circuit_eval(rd, &record_script, provider, 4, args);
    if (r) {
        freeReplyObject(r);
        return;
    }
    pthread_mutex_lock(&R.lock);
    local_circuit *c = local_slot(provider);
    if (c->state == CIRCUIT_HALF_OPEN)
        c->probe_until_ms = 0;
    pthread_mutex_unlock(&R.lock);
}

/* Records an attempt's outcome; logs a change of state. */
static void circuit_record(redisContext *rd, const char *provider, bool ok)
{
    char thr[24], open_ms[24], ttl[24];
    snprintf(thr, sizeof thr, "%d", R.cfg->llm_circuit_failures);
    snprintf(open_ms, sizeof open_ms, "%d", R.cfg->llm_circuit_open_ms);
    snprintf(ttl, sizeof ttl, "%lld", circuit_ttl_ms());
    const char *args[4] = { ok ? "1" : "0", thr, open_ms, ttl };
    int from, to, failures;
    redisReply *r = circuit_eval(rd, &record_script, provider, 4, args);
    if (r) {
        from = state_from_name(reply_str(r->element[0]));
        to = state_from_name(reply_str(r->element[1]));
        failures = (int)reply_int(r->element[2]);
        local_mirror(provider, to, failures, reply_int(r->element[3]));
        freeReplyObject(r);
    } else {
        local_record(provider, ok, clock_wall_ms(), &from, &to);
        failures = -1;
    }
    if (from != to) {
        if (to == CIRCUIT_OPEN)
            log_warn("llm router: circuit:%s %s -> open for %d ms (%s%s)", provider,
                     circuit_state_name(from), R.cfg->llm_circuit_open_ms,
                     from == CIRCUIT_HALF_OPEN ? "the half-open probe failed"
                                               : "failures in a row reached the limit",
                     failures >= 0 ? "" : "; this process's view, Redis unavailable");
        else
            log_info("llm router: circuit:%s %s -> %s", provider, circuit_state_name(from),
                     circuit_state_name(to));
    }
}

/* ---- asking the candidates -------------------------------------------------- */

typedef struct delta_tap {
    llm_delta_fn fn;
    void *user;
    size_t delivered;
    double first_s;             /* clock_mono_s of this request's first text; 0: none */
    double in_fn_s;             /* seconds spent in fn, the caller's work */
} delta_tap;

static int tap_delta(void *user, const char *delta, size_t len)
{
    delta_tap *t = user;
    if (t->first_s == 0 && len > 0)
        t->first_s = clock_mono_s();
    t->delivered += len;
    if (!t->fn)
        return 0;
    double t0 = clock_mono_s();
    int rc = t->fn(t->user, delta, len);
    t->in_fn_s += clock_mono_s() - t0;
    return rc;
}

static bool should_abort(const llm_request *req)
{
    return req->should_abort && req->should_abort(req->abort_user);
}

/* Sleeps ms, polling the abort hook. Returns false when told to stop. */
static bool abortable_sleep(const llm_request *req, long long ms)
{
    long long end = clock_mono_ms() + ms;
    for (;;) {
        if (should_abort(req))
            return false;
        long long left = end - clock_mono_ms();
        if (left <= 0)
            return true;
        clock_sleep_ms(left < ABORT_POLL_MS ? left : ABORT_POLL_MS);
    }
}

typedef struct chain_state {
    const llm_request *req;
    const char *model;
    delta_tap tap;
    long long deadline_ms;      /* monotonic */
    llm_err last;
    char last_error[256];
    char last_provider[PROVIDER_NAME_MAX + 1];
    span *call_span;            /* the request to a provider in flight (llm_span.h) */
    double model_s;             /* seconds in requests to providers, less the tap's */
} chain_state;

/* Starts timing (and tracing) one request to a provider. Returns its start. */
static double call_begin(chain_state *cs)
{
    cs->tap.first_s = 0;
    cs->tap.in_fn_s = 0;
    cs->call_span = llm_span_begin(cs->req, cs->model);
    return clock_mono_s();
}

/* Reports one request to a provider, started at t0, to the metrics and
 * ends its span; adds its time, less what the caller's delta function
 * took, to the chain's model time. */
static void call_end(chain_state *cs, const char *provider, double t0, llm_err e,
                     const llm_response *out)
{
    double now = clock_mono_s();
    double first = cs->tap.first_s > 0 ? cs->tap.first_s - t0 : -1;
    cs->model_s += now - t0 - cs->tap.in_fn_s;
    worker_metrics_llm_call(provider, cs->model, llm_err_name(e), now - t0, first,
                            out->usage.tokens_in, out->usage.tokens_out);
    llm_span_end(cs->call_span, provider, e, out, first);
}

static void note_failure(chain_state *cs, const candidate *c, llm_err e, const char *why)
{
    cs->last = e;
    snprintf(cs->last_provider, sizeof cs->last_provider, "%s", c->provider);
    errbuf_printf(cs->last_error, sizeof cs->last_error, "%s: %s", c->provider,
                  why && why[0] ? why : llm_strerror(e));
}

static llm_err ask_builtin(chain_state *cs, const candidate *c, llm_response *out)
{
    const llm_provider *b = llm_builtin_provider();
    memset(out, 0, sizeof *out);
    double t0 = call_begin(cs);
    llm_err e = b->complete(b, cs->req, tap_delta, &cs->tap, out);
    call_end(cs, BUILTIN_NAME, t0, e, out);
    if (e == LLM_OK)
        snprintf(out->provider, sizeof out->provider, "%s", BUILTIN_NAME);
    else
        note_failure(cs, c, e, out->error);
    return e;
}

/* The outcome of one candidate: answered, gave up (try the next) or a
 * final failure (stop the chain). */
enum { CAND_ANSWERED, CAND_NEXT, CAND_FINAL };

static int ask_http(chain_state *cs, redisContext *rd, const candidate *c, llm_response *out,
                    llm_err *result)
{
    const ag_config *cfg = R.cfg;
    for (int attempt = 0; ; attempt++) {
        if (should_abort(cs->req)) {
            note_failure(cs, c, LLM_ERR_ABORTED, NULL);
            *result = LLM_ERR_ABORTED;
            return CAND_FINAL;
        }
        long long left = cs->deadline_ms - clock_mono_ms();
        if (left <= 0) {
            note_failure(cs, c, LLM_ERR_TIMEOUT, "the total timeout ran out");
            return CAND_NEXT;
        }
        int verdict = circuit_allow(rd, c->provider);
        if (verdict == ALLOW_NO) {
            /* Opened by this call's own failures (or another worker's) in
             * between retries: the failure already noted says more. */
            if (attempt == 0) {
                log_info("llm router: provider %s skipped: its circuit is open", c->provider);
                note_failure(cs, c, LLM_ERR_UNAVAILABLE, "circuit open; provider skipped");
            }
            return CAND_NEXT;
        }
        llm_openai_endpoint ep = {
            .provider = c->provider,
            .base_url = c->base_url,
            .api_key = key_for(c->provider),
            .model = cs->model,
            .connect_timeout_ms = cfg->llm_connect_timeout_ms,
            .first_byte_timeout_ms = cfg->llm_first_byte_timeout_ms,
            .total_timeout_ms = left < cfg->llm_total_timeout_ms ? (int)left
                                                                 : cfg->llm_total_timeout_ms,
        };
        llm_call_status st;
        memset(out, 0, sizeof *out);
        size_t before = cs->tap.delivered;
        double t0 = call_begin(cs);
        llm_err e = llm_openai_call(&ep, cs->req, tap_delta, &cs->tap, out, &st);
        call_end(cs, c->provider, t0, e, out);
        if (e == LLM_OK) {
            circuit_record(rd, c->provider, true);
            memcpy(out->provider, c->provider, sizeof c->provider);
            *result = LLM_OK;
            return CAND_ANSWERED;
        }
        if (e != LLM_ERR_ABORTED)
            circuit_record(rd, c->provider, !st.counts_as_failure);
        else if (verdict == ALLOW_PROBE)
            circuit_release_probe(rd, c->provider);
        note_failure(cs, c, e, out->error);
        if (e == LLM_ERR_ABORTED || e == LLM_ERR_NOMEM || e == LLM_ERR_INVALID_REQUEST ||
            cs->tap.delivered > before) {
            if (cs->tap.delivered > before && e != LLM_ERR_ABORTED)
                log_warn("llm router: provider %s failed after streaming %zu bytes (%s); "
                         "not retried", c->provider, cs->tap.delivered - before,
                         cs->last_error);
            *result = e;
            return CAND_FINAL;
        }
        if (!st.retryable || attempt >= cfg->llm_max_retries || verdict == ALLOW_PROBE)
            return CAND_NEXT;
        long long delay = backoff_delay_ms(attempt);
        if (st.retry_after_ms > delay)
            delay = st.retry_after_ms;
        left = cs->deadline_ms - clock_mono_ms();
        if (delay >= left) {
            log_info("llm router: provider %s: not retried, a wait of %lld ms would pass the "
                     "total timeout", c->provider, delay);
            return CAND_NEXT;
        }
        log_info("llm router: provider %s model %s attempt %d failed (%s, HTTP %d); retry "
                 "in %lld ms%s", c->provider, cs->model, attempt + 1, llm_strerror(e),
                 st.http_status, delay, st.retry_after_ms >= 0 ? " (Retry-After)" : "");
        if (!abortable_sleep(cs->req, delay)) {
            note_failure(cs, c, LLM_ERR_ABORTED, NULL);
            *result = LLM_ERR_ABORTED;
            return CAND_FINAL;
        }
    }
}

llm_err llm_router_complete(PGconn *pg, redisContext *rd, const llm_request *req,
                            llm_delta_fn on_delta, void *user, llm_response *out)
{
    memset(out, 0, sizeof *out);
    if (!req || !req->prompt) {
        snprintf(out->error, sizeof out->error, "request without a prompt");
        return LLM_ERR_INVALID_REQUEST;
    }
    route *rt = malloc(sizeof *rt);
    if (!rt) {
        snprintf(out->error, sizeof out->error, "out of memory");
        return LLM_ERR_NOMEM;
    }
    llm_err e = find_route(pg, req->tenant_id, req->model, rt, out->error, sizeof out->error);
    if (e != LLM_OK) {
        free(rt);
        return e;
    }
    chain_state cs = {
        .req = req,
        .model = rt->model,
        .tap = { .fn = on_delta, .user = user },
        .deadline_ms = clock_mono_ms() + R.cfg->llm_total_timeout_ms,
        .last = LLM_ERR_UNAVAILABLE,
    };
    for (size_t i = 0; i < rt->n; i++) {
        const candidate *c = &rt->c[i];
        int outcome;
        if (c->builtin) {
            e = ask_builtin(&cs, c, out);
            outcome = e == LLM_OK ? CAND_ANSWERED
                    : e == LLM_ERR_ABORTED || cs.tap.delivered > 0 ? CAND_FINAL : CAND_NEXT;
        } else {
            outcome = ask_http(&cs, rd, c, out, &e);
        }
        out->model_ms = cs.model_s * 1000.0;
        if (outcome == CAND_ANSWERED) {
            free(rt);
            return LLM_OK;
        }
        if (outcome == CAND_FINAL) {
            memcpy(out->provider, c->provider, sizeof c->provider);
            errbuf_printf(out->error, sizeof out->error, "%s", cs.last_error);
            free(rt);
            return e;
        }
        if (i + 1 < rt->n)
            log_info("llm router: model %s: falling back from %s to %s (%s)", rt->model,
                     c->provider, rt->c[i + 1].provider, cs.last_error);
    }
    memcpy(out->provider, cs.last_provider, sizeof cs.last_provider);
    if (rt->n > 1)
        errbuf_printf(out->error, sizeof out->error, "all %zu providers failed; last %s",
                      rt->n, cs.last_error);
    else
        errbuf_printf(out->error, sizeof out->error, "%s", cs.last_error);
    free(rt);
    return cs.last;
}
