/*
 * tenant_settings.c - parsing a tenant's limits (see tenant_settings.h).
 *
 * Strict on purpose: the same parser validates PATCH /v1/tenants/{id} and
 * reads tenants.settings back, so a setting the enforcement would not
 * understand is refused when written instead of silently ignored later.
 * Action names are checked against the API's resources and actions; the
 * lists below mirror gateway/admit/rbac.h (common/ cannot include the gateway's
 * headers, the worker links this file too).
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tenant_settings.h"
#include "permission.h"

#define MAX_RUNNING_MAX 1000000
/* Ten years: as tenant_retention_days() in sql/migrations/016_retention.sql. */
#define RETENTION_DAYS_MAX 3650
#define CAPACITY_MAX    1000000000LL
#define PERIOD_MS_MAX   10000000000LL


static void settings_init(tenant_settings *out)
{
    memset(out, 0, sizeof *out);
    out->max_running = -1;
    out->retention_days = -1;
}

static int fail(char *err, size_t err_size, const char *fmt, const char *what)
{
    if (err && err_size) snprintf(err, err_size, fmt, what);
    return -1;
}

/* True when s (n bytes) is exactly name. */
static bool name_is(const char *s, size_t n, const char *name)
{
    return strlen(name) == n && memcmp(name, s, n) == 0;
}

/* "*" or "<resource>.<action>" with names the API knows (permission.h). */
static bool action_valid(const char *a)
{
    if (strcmp(a, "*") == 0) return true;
    const char *dot = strchr(a, '.');
    if (!dot) return false;
    bool res = false, act = false;
    for (int r = RES_NONE + 1; r < RES_COUNT; r++)
        res = res || name_is(a, (size_t)(dot - a), rbac_resource_name((rbac_resource)r));
    for (unsigned b = ACT_CREATE; b <= ACT_DELETE; b <<= 1)
        act = act || name_is(dot + 1, strlen(dot + 1), rbac_action_name((rbac_action)b));
    return res && act;
}

/* A JSON number that is a whole value in lo..hi. */
static bool json_whole(const cJSON *n, long long lo, long long hi, long long *out)
{
    if (!cJSON_IsNumber(n)) return false;
    double d = n->valuedouble;
    if (!isfinite(d) || d != floor(d) || d < (double)lo || d > (double)hi) return false;
    *out = (long long)d;
    return true;
}

/* Adds one limit to a level, refusing duplicates and overflow. */
static int limit_add(tenant_limit *list, int *n, const char *level, const char *action,
                     long long capacity, long long period_ms, char *err, size_t err_size)
{
    char what[TENANT_ACTION_MAX + 32];
    snprintf(what, sizeof what, "%s.%s", level, action);
    if (!action_valid(action) || strlen(action) >= TENANT_ACTION_MAX)
        return fail(err, err_size, "rate_limits.%s: unknown action (expected \"*\" or "
                    "\"<resource>.<action>\" as in \"jobs.create\")", what);
    for (int i = 0; i < *n; i++)
        if (strcmp(list[i].action, action) == 0)
            return fail(err, err_size, "rate_limits.%s: given twice", what);
    if (*n >= TENANT_LIMITS_MAX)
        return fail(err, err_size, "rate_limits.%s: too many actions (at most 32 per level)",
                    level);
    if (capacity < 1 || capacity > CAPACITY_MAX)
        return fail(err, err_size, "rate_limits.%s.capacity: must be a whole number in "
                    "1..1000000000", what);
    if (period_ms < 1 || period_ms > PERIOD_MS_MAX)
        return fail(err, err_size, "rate_limits.%s.period_ms: must be a whole number in "
                    "1..10000000000", what);
    tenant_limit *l = &list[(*n)++];
    snprintf(l->action, sizeof l->action, "%s", action);
    l->capacity = capacity;
    l->period_ms = period_ms;
    return 0;
}

/* {"capacity": N, "period_ms": N}, both required, nothing else. */
static int parse_limit(const cJSON *obj, tenant_limit *list, int *n, const char *level,
                       char *err, size_t err_size)
{
    const char *action = obj->string;
    char what[TENANT_ACTION_MAX + 32];
    snprintf(what, sizeof what, "%s.%.*s", level, TENANT_ACTION_MAX, action);
    if (strlen(action) >= TENANT_ACTION_MAX || !action_valid(action))
        return fail(err, err_size, "rate_limits.%s: unknown action (expected \"*\" or "
                    "\"<resource>.<action>\" as in \"jobs.create\")", what);
    if (!cJSON_IsObject(obj))
        return fail(err, err_size, "rate_limits.%s: must be an object "
                    "{\"capacity\": N, \"period_ms\": N}", what);
    const cJSON *cap = NULL, *per = NULL;
    for (const cJSON *m = obj->child; m; m = m->next) {
        if (strcmp(m->string, "capacity") == 0 && !cap) cap = m;
        else if (strcmp(m->string, "period_ms") == 0 && !per) per = m;
        else
            return fail(err, err_size, "rate_limits.%s: unknown or repeated member "
                        "(only capacity and period_ms)", what);
    }
    long long c = 0, p = 0;
    if (!cap || !json_whole(cap, 1, CAPACITY_MAX, &c))
        return fail(err, err_size, "rate_limits.%s.capacity: required, a whole number in "
                    "1..1000000000", what);
    if (!per || !json_whole(per, 1, PERIOD_MS_MAX, &p))
        return fail(err, err_size, "rate_limits.%s.period_ms: required, a whole number in "
                    "1..10000000000", what);
    return limit_add(list, n, level, action, c, p, err, err_size);
}

static int parse_level(const cJSON *obj, tenant_limit *list, int *n, const char *level,
                       char *err, size_t err_size)
{
    if (!cJSON_IsObject(obj))
        return fail(err, err_size, "rate_limits.%s: must be an object of actions", level);
    for (const cJSON *m = obj->child; m; m = m->next)
        if (parse_limit(m, list, n, level, err, err_size) != 0) return -1;
    return 0;
}

static int parse_rate_limits(const cJSON *obj, tenant_settings *out, char *err, size_t err_size)
{
    if (!cJSON_IsObject(obj))
        return fail(err, err_size, "%s: must be an object with principal and/or tenant",
                    "rate_limits");
    bool seen_p = false, seen_t = false;
    for (const cJSON *m = obj->child; m; m = m->next) {
        int rc;
        if (strcmp(m->string, "principal") == 0 && !seen_p) {
            seen_p = true;
            rc = parse_level(m, out->principal, &out->n_principal, "principal", err, err_size);
        } else if (strcmp(m->string, "tenant") == 0 && !seen_t) {
            seen_t = true;
            rc = parse_level(m, out->tenant, &out->n_tenant, "tenant", err, err_size);
        } else {
            char name[64];
            snprintf(name, sizeof name, "%.40s", m->string);
            return fail(err, err_size, "rate_limits.%s: unknown or repeated member "
                        "(only principal and tenant)", name);
        }
        if (rc != 0) return -1;
    }
    return 0;
}

/* webhook_url_allowlist: an array of URL prefixes, kept comma-joined in
 * the form mcp_url_allowed reads. A comma inside one would split it, so
 * it is refused; whether a prefix parses is left to the match, which
 * never matches a malformed one. */
static int parse_webhook_allowlist(const cJSON *m, tenant_settings *out, char *err,
                                   size_t err_size)
{
    static const char what[] = "webhook_url_allowlist";
    if (!cJSON_IsArray(m) || cJSON_GetArraySize(m) > TENANT_WEBHOOK_PREFIXES_MAX)
        return fail(err, err_size, "%s: must be an array of at most 16 URL prefixes", what);
    size_t used = 0;
    for (const cJSON *e = m->child; e; e = e->next) {
        const char *v = cJSON_IsString(e) ? e->valuestring : NULL;
        size_t n = v ? strlen(v) : 0;
        if (!v || n == 0 || n > 512 || strchr(v, ',')
            || (strncmp(v, "https://", 8) != 0 && strncmp(v, "http://", 7) != 0))
            return fail(err, err_size, "%s: each entry must be an http:// or https:// URL "
                        "prefix of at most 512 bytes without commas", what);
        if (used) out->webhook_allowlist[used++] = ',';
        memcpy(out->webhook_allowlist + used, v, n);
        used += n;
    }
    out->webhook_allowlist[used] = '\0';
    out->has_webhook_allowlist = true;
    return 0;
}

int tenant_settings_parse(const cJSON *settings, tenant_settings *out, char *err,
                          size_t err_size)
{
    settings_init(out);
    if (!settings) return 0;
    if (!cJSON_IsObject(settings))
        return fail(err, err_size, "%s: must be a JSON object", "settings");
    bool seen_mr = false, seen_rl = false, seen_rd = false, seen_wh = false;
    for (const cJSON *m = settings->child; m; m = m->next) {
        if (strcmp(m->string, "max_running") == 0 && !seen_mr) {
            seen_mr = true;
            long long v;
            if (!json_whole(m, 0, MAX_RUNNING_MAX, &v))
                return fail(err, err_size, "%s: must be a whole number in 0..1000000 "
                            "(0: no cap)", "max_running");
            out->max_running = (int)v;
        } else if (strcmp(m->string, "retention_days") == 0 && !seen_rd) {
            seen_rd = true;
            long long v;
            if (!json_whole(m, 1, RETENTION_DAYS_MAX, &v))
                return fail(err, err_size, "%s: must be a whole number of days in 1..3650",
                            "retention_days");
            out->retention_days = (int)v;
        } else if (strcmp(m->string, "rate_limits") == 0 && !seen_rl) {
            seen_rl = true;
            if (parse_rate_limits(m, out, err, err_size) != 0) return -1;
        } else if (strcmp(m->string, "webhook_url_allowlist") == 0 && !seen_wh) {
            seen_wh = true;
            if (parse_webhook_allowlist(m, out, err, err_size) != 0) return -1;
        } else {
            char name[64];
            snprintf(name, sizeof name, "%.40s", m->string);
            return fail(err, err_size, "%s: unknown or repeated member (only max_running, "
                        "retention_days, rate_limits and webhook_url_allowlist)", name);
        }
    }
    return 0;
}

/* ---- AGENTGATE_RATE_LIMITS ------------------------------------------------ */

/* Digits only (no sign, no spaces) into a value no larger than max. */
static bool parse_count(const char *s, size_t n, long long max, long long *out)
{
    if (n == 0 || n > 12) return false;
    long long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        v = v * 10 + (s[i] - '0');
    }
    if (v > max) return false;
    *out = v;
    return true;
}

/* One "level:action=capacity/period_ms" item of n bytes. */
static int parse_config_item(const char *s, size_t n, tenant_settings *out, char *err,
                             size_t err_size)
{
    char item[160];
    if (n >= sizeof item)
        return fail(err, err_size, "rate limit item%s is too long (at most 159 bytes)", "");
    memcpy(item, s, n);
    item[n] = '\0';
    char *colon = strchr(item, ':'), *eq = strchr(item, '='), *slash = strrchr(item, '/');
    if (!colon || !eq || !slash || !(colon < eq && eq < slash))
        return fail(err, err_size, "rate limit \"%s\": expected "
                    "level:action=capacity/period_ms", item);
    *colon = *eq = *slash = '\0';
    const char *level = item, *action = colon + 1;
    long long capacity, period_ms;
    if (!parse_count(eq + 1, strlen(eq + 1), CAPACITY_MAX, &capacity) || capacity < 1) {
        *colon = ':'; *eq = '='; *slash = '/';
        return fail(err, err_size, "rate limit \"%s\": capacity must be 1..1000000000", item);
    }
    if (!parse_count(slash + 1, strlen(slash + 1), PERIOD_MS_MAX, &period_ms) || period_ms < 1) {
        *colon = ':'; *eq = '='; *slash = '/';
        return fail(err, err_size, "rate limit \"%s\": period_ms must be 1..10000000000", item);
    }
    if (strcmp(level, "principal") == 0)
        return limit_add(out->principal, &out->n_principal, level, action, capacity, period_ms,
                         err, err_size);
    if (strcmp(level, "tenant") == 0)
        return limit_add(out->tenant, &out->n_tenant, level, action, capacity, period_ms,
                         err, err_size);
    return fail(err, err_size, "rate limit level \"%s\": expected principal or tenant", level);
}

int tenant_limits_parse_config(const char *text, tenant_settings *out, char *err,
                               size_t err_size)
{
    if (!text) return 0;
    const char *p = text;
    while (*p == ' ' || *p == '\t') p++;
    if (!*p) return 0;
    for (;;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        /* Spaces around an item are tolerated (a hand-written env file). */
        const char *s = p;
        while (n && (*s == ' ' || *s == '\t')) { s++; n--; }
        while (n && (s[n - 1] == ' ' || s[n - 1] == '\t')) n--;
        if (n == 0) return fail(err, err_size, "rate limits: empty item in \"%.80s\"", text);
        if (parse_config_item(s, n, out, err, err_size) != 0) return -1;
        if (!end) return 0;
        p = end + 1;
    }
}

const tenant_limit *tenant_limit_find(const tenant_limit *list, int n, const char *action)
{
    const tenant_limit *any = NULL;
    if (!list || !action) return NULL;
    for (int i = 0; i < n; i++) {
        if (strcmp(list[i].action, action) == 0) return &list[i];
        if (strcmp(list[i].action, "*") == 0) any = &list[i];
    }
    return any;
}

/* ---- the operator's ceiling ---------------------------------------------- */

/* True when a refills faster than b: a.capacity / a.period_ms >
 * b.capacity / b.period_ms, compared exactly (each product is at most
 * 10^9 * 10^10, within 64 unsigned bits). */
static bool rate_faster(const tenant_limit *a, const tenant_limit *b)
{
    return (unsigned long long)a->capacity * (unsigned long long)b->period_ms >
           (unsigned long long)b->capacity * (unsigned long long)a->period_ms;
}

tenant_limit tenant_limit_stricter(const tenant_limit *a, const tenant_limit *b)
{
    tenant_limit out = *a;
    const tenant_limit *slower = rate_faster(a, b) ? b : a;
    out.capacity = a->capacity < b->capacity ? a->capacity : b->capacity;
    /* capacity <= slower->capacity, so the period stays within the slower
     * one's and the product within 64 unsigned bits. */
    unsigned long long num = (unsigned long long)out.capacity *
                             (unsigned long long)slower->period_ms;
    unsigned long long den = (unsigned long long)slower->capacity;
    out.period_ms = (long long)((num + den - 1) / den);
    return out;
}

/* True when list (n entries) holds exactly l: same action and numbers. */
static bool limit_held(const tenant_limit *list, int n, const tenant_limit *l)
{
    for (int i = 0; i < n; i++)
        if (strcmp(list[i].action, l->action) == 0)
            return list[i].capacity == l->capacity && list[i].period_ms == l->period_ms;
    return false;
}

static int over_ceiling(char *err, size_t err_size, char *pointer, size_t pointer_size,
                        const char *level, const tenant_limit *l, const tenant_limit *c)
{
    if (pointer && pointer_size)
        snprintf(pointer, pointer_size, "/rate_limits/%s/%s", level, l->action);
    if (err && err_size)
        snprintf(err, err_size, "rate_limits.%s.%s: %lld per %lld ms is more than the "
                 "operator allows for %s (%lld per %lld ms, AGENTGATE_RATE_LIMITS); a "
                 "tenant's own limits can only lower it", level, l->action, l->capacity,
                 l->period_ms, strcmp(c->action, "*") == 0 ? "any action" : c->action,
                 c->capacity, c->period_ms);
    return -1;
}

static bool exceeds(const tenant_limit *l, const tenant_limit *c)
{
    return l->capacity > c->capacity || rate_faster(l, c);
}

/*
 * One level's entries against the configured ones. An entry for an action
 * meets the configured limit of that action (tenant_limit_find); the
 * tenant's "*" stands for every action it does not name itself, so it
 * meets every configured entry of such an action, and the configured "*".
 */
static int check_level(const tenant_limit *own, int n_own, const tenant_limit *before,
                       int n_before, const tenant_limit *cfg, int n_cfg, const char *level,
                       char *err, size_t err_size, char *pointer, size_t pointer_size)
{
    for (int i = 0; i < n_own; i++) {
        const tenant_limit *l = &own[i];
        if (limit_held(before, n_before, l)) continue;
        if (strcmp(l->action, "*") != 0) {
            const tenant_limit *c = tenant_limit_find(cfg, n_cfg, l->action);
            if (c && exceeds(l, c))
                return over_ceiling(err, err_size, pointer, pointer_size, level, l, c);
            continue;
        }
        for (int k = 0; k < n_cfg; k++) {
            const tenant_limit *c = &cfg[k];
            bool named = false;
            for (int j = 0; j < n_own && strcmp(c->action, "*") != 0; j++)
                named = named || strcmp(own[j].action, c->action) == 0;
            if (!named && exceeds(l, c))
                return over_ceiling(err, err_size, pointer, pointer_size, level, l, c);
        }
    }
    return 0;
}

int tenant_settings_check_ceiling(const tenant_settings *s, const tenant_settings *before,
                                  int max_running_ceiling, const tenant_settings *ceiling,
                                  char *err, size_t err_size, char *pointer,
                                  size_t pointer_size)
{
    bool mr_new = s->max_running >= 0 && (!before || before->max_running != s->max_running);
    if (mr_new && max_running_ceiling > 0 &&
        (s->max_running == 0 || s->max_running > max_running_ceiling)) {
        if (pointer && pointer_size) snprintf(pointer, pointer_size, "/max_running");
        if (err && err_size)
            snprintf(err, err_size, "max_running: at most %d, the operator's cap "
                     "(AGENTGATE_TENANT_MAX_RUNNING); a tenant's own cap can only lower it, "
                     "and 0 (no cap) is not allowed under it", max_running_ceiling);
        return -1;
    }
    if (!ceiling) return 0;
    if (check_level(s->principal, s->n_principal, before ? before->principal : NULL,
                    before ? before->n_principal : 0, ceiling->principal,
                    ceiling->n_principal, "principal", err, err_size, pointer,
                    pointer_size) != 0)
        return -1;
    return check_level(s->tenant, s->n_tenant, before ? before->tenant : NULL,
                       before ? before->n_tenant : 0, ceiling->tenant, ceiling->n_tenant,
                       "tenant", err, err_size, pointer, pointer_size);
}
