/*
 * tenant_settings.h - a tenant's own limits, kept as JSON in
 * tenants.settings and read by the gateway (rate limits) and the worker
 * (running cap). One parser serves both and the API that writes them
 * (PATCH /v1/tenants/{id}), so what is accepted is what is enforced.
 *
 * The JSON (every member optional; unknown members are refused):
 *   {
 *     "max_running": 64,                       // 0: no cap of its own; 0..1000000
 *     "retention_days": 30,                    // finished jobs kept; 1..3650
 *     "rate_limits": {
 *       "principal": { "jobs.create": {"capacity": 100, "period_ms": 1000},
 *                      "*":           {"capacity": 1000, "period_ms": 1000} },
 *       "tenant":    { "*":           {"capacity": 5000, "period_ms": 1000} }
 *     },
 *     "webhook_url_allowlist": ["https://hooks.example.com/agentgate"]
 *   }
 * webhook_url_allowlist: URL prefixes (http or https, as the operator's
 * AGENTGATE_WEBHOOK_URL_ALLOWLIST; at most TENANT_WEBHOOK_PREFIXES_MAX,
 * each at most 512 bytes) a job's webhook must also be within when set.
 * An action is "<resource>.<action>" as rbac.h names them ("agent-runs.create",
 * "jobs.read", ...) or "*" for any action without its own entry.
 */
#ifndef AG_TENANT_SETTINGS_H
#define AG_TENANT_SETTINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <cjson/cJSON.h>

#define TENANT_LIMITS_MAX 32          /* entries per level (principal, tenant) */
#define TENANT_ACTION_MAX 48          /* bytes of an action name, with NUL */
#define TENANT_WEBHOOK_PREFIXES_MAX 16
#define TENANT_WEBHOOK_ALLOWLIST_MAX (TENANT_WEBHOOK_PREFIXES_MAX * 513)

typedef struct tenant_limit {
    char action[TENANT_ACTION_MAX];   /* "jobs.create" or "*" */
    long long capacity;               /* tokens, 1..1e9 */
    long long period_ms;              /* refill of capacity tokens, 1..1e10 */
} tenant_limit;

typedef struct tenant_settings {
    int max_running;                  /* -1: not set (use the config's) */
    int retention_days;               /* days finished jobs are kept (1..3650);
                                         -1: not set (AGENTGATE_RETENTION_DAYS) */
    int n_principal, n_tenant;
    tenant_limit principal[TENANT_LIMITS_MAX];
    tenant_limit tenant[TENANT_LIMITS_MAX];
    bool has_webhook_allowlist;       /* webhook_url_allowlist was given */
    char webhook_allowlist[TENANT_WEBHOOK_ALLOWLIST_MAX];  /* its prefixes, comma-joined */
} tenant_settings;

/*
 * Parses settings (a JSON object; NULL means "{}") into *out. Returns 0, or
 * -1 with a one-line reason naming the member (err, err_size bytes) for
 * anything malformed, out of range or unknown; *out is then unspecified.
 */
int tenant_settings_parse(const cJSON *settings, tenant_settings *out, char *err,
                          size_t err_size);

/*
 * Parses the AGENTGATE_RATE_LIMITS form,
 * "principal:jobs.create=100/1000,tenant:*=5000/1000" (capacity/period_ms),
 * adding to *out's lists. Returns 0, or -1 with a reason in err.
 */
int tenant_limits_parse_config(const char *text, tenant_settings *out, char *err,
                               size_t err_size);

/* The limit for action at one level: the exact entry, else "*", else NULL. */
const tenant_limit *tenant_limit_find(const tenant_limit *list, int n, const char *action);

/*
 * The operator's configured limits (AGENTGATE_TENANT_MAX_RUNNING,
 * AGENTGATE_RATE_LIMITS) are a ceiling: a tenant's own settings can only
 * lower them. Where both apply, the stricter is enforced:
 *   - max_running: the smaller cap, 0 standing for "no cap" on either side
 *     (so a tenant's 0, or none, leaves the operator's cap); in SQL,
 *     agentgate_claim_job (sql/migrations/013_running_cap_ceiling.sql);
 *   - a rate limit: tenant_limit_stricter of the two entries for the action.
 */

/*
 * One token bucket at least as strict as both a and b: the smaller
 * capacity, refilled at the slower of the two rates (period_ms rounded up
 * so the rate is never faster). When one limit is stricter in both burst
 * and rate, it is that limit. The action is a's.
 */
tenant_limit tenant_limit_stricter(const tenant_limit *a, const tenant_limit *b);

/*
 * Checks a tenant's settings s, about to be stored, against the operator's
 * ceiling: max_running_ceiling (0: none) and the rate limits of ceiling
 * (NULL: none; each of s's entries against ceiling's entry for the same
 * action, as tenant_limit_find picks it, and s's "*", which stands for
 * every action s does not name, against each configured entry of such an
 * action). More burst or a faster rate is more. A max_running of 0 (no
 * cap) asks for more than any cap. A value over its ceiling is refused unless
 * before (the settings stored until now; NULL: none) holds it already, so
 * settings stored under a higher ceiling do not block an unrelated change
 * (they are held to the ceiling where enforced all the same). Returns 0, or
 * -1 with a reason naming the member and the ceiling in err and the
 * member's JSON Pointer within settings ("/max_running",
 * "/rate_limits/principal/jobs.create") in pointer.
 */
int tenant_settings_check_ceiling(const tenant_settings *s, const tenant_settings *before,
                                  int max_running_ceiling, const tenant_settings *ceiling,
                                  char *err, size_t err_size, char *pointer,
                                  size_t pointer_size);

#endif
