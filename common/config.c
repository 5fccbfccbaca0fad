/*
 * config.c - loads ag_config from defaults, an env file and the environment.
 *
 * Every setting is one row of the settings table below: its variable name,
 * how its value is parsed, where it lands in ag_config, its default and
 * its bounds. Adding a setting is adding a field to config.h, a row here
 * and a line to deploy/agentgate.env.example (a unit test holds the file
 * to the table).
 *
 * Bad input is never half-applied: values are parsed strictly (the whole
 * string, range-checked, never silently truncated) into a scratch copy,
 * and *cfg is written only when everything loaded.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <libpq-fe.h>

#include "config.h"
#include "otlp_settings.h"
#include "strbuf.h"
#include "tenant_settings.h"

#define ENV_PREFIX      "AGENTGATE_"
#define ENV_LINE_MAX    4096    /* longest line accepted in an env file */
#define REDIS_DEFAULT_PORT 6379

typedef enum setting_kind {
    SET_STR,        /* char array field, bounded by its size */
    SET_INT,        /* int field, within [min, max] */
    SET_SIZE,       /* size_t field, within [min, max] */
    SET_CHOICE,     /* char array field, one of a '|'-separated list */
    SET_CHOICE_LIST,/* char array field, a comma list of distinct choices */
    SET_LISTEN,     /* "host:port" into listen_addr and listen_port */
    SET_REDIS_URL,  /* redis://[user:pass@]host:port/db into redis_* fields */
} setting_kind;

typedef struct setting {
    const char *name;
    setting_kind kind;
    size_t offset;          /* of the field in ag_config */
    size_t size;            /* of the field, for strings */
    const char *def;        /* the default, as text (see the table) */
    long long min, max;     /* for numbers */
    const char *choices;    /* for SET_CHOICE and SET_CHOICE_LIST */
    bool secret;            /* may come from NAME_FILE or a systemd credential,
                               and is never echoed (secret_load) */
} setting;

#define FIELD_SIZE(f) sizeof(((ag_config *)0)->f)
#define FIELD(f) offsetof(ag_config, f), FIELD_SIZE(f)
#define STR(n, f, def)               { n, SET_STR, FIELD(f), def, 0, 0, NULL, false }
#define INT(n, f, def, lo, hi)       { n, SET_INT, FIELD(f), def, lo, hi, NULL, false }
#define SIZE(n, f, def, lo, hi)      { n, SET_SIZE, FIELD(f), def, lo, hi, NULL, false }
#define CHOICE(n, f, def, list)      { n, SET_CHOICE, FIELD(f), def, 0, 0, list, false }
#define CHOICES(n, f, def, list)     { n, SET_CHOICE_LIST, FIELD(f), def, 0, 0, list, false }
#define SPECIAL(n, def, kind)        { n, kind, 0, 0, def, 0, 0, NULL, false }
/* A secret: a string setting that may also be read from a file (see
 * secret_load). SECRET_SPECIAL is the same for a SPECIAL row. */
#define SECRET(n, f, def)            { n, SET_STR, FIELD(f), def, 0, 0, NULL, true }
#define SECRET_SPECIAL(n, def, kind) { n, kind, 0, 0, def, 0, 0, NULL, true }

/*
 * The settings. A default is the text an env file would hold, applied by
 * setting_apply like any value from the environment, so a default outside
 * its own bounds stops config_load. "" is the empty string for a string
 * setting; for AGENTGATE_GATEWAY_THREADS alone it means "computed at
 * start" (the online cores, known only at run time: see config_defaults).
 * deploy/agentgate.env.example lists every row with its default.
 */
static const setting settings[] = {
    SECRET("AGENTGATE_DATABASE_URL", database_url, "postgresql://agentgate@127.0.0.1:5432/agentgate"),
    SECRET("AGENTGATE_MIGRATE_DATABASE_URL", migrate_database_url, ""),
    SECRET("AGENTGATE_DATABASE_PASSWORD", database_password, ""),
    INT("AGENTGATE_MIGRATE_WAIT_S", migrate_wait_s, "60", 0, 86400),
    SECRET_SPECIAL("AGENTGATE_REDIS_URL", "redis://127.0.0.1:6379/0", SET_REDIS_URL),
    /* Redis credentials and Sentinel; the rules between them in config_check. */
    STR("AGENTGATE_REDIS_USERNAME", redis_username, ""),
    SECRET("AGENTGATE_REDIS_PASSWORD", redis_password, ""),
    STR("AGENTGATE_REDIS_SENTINELS", redis_sentinels, ""),
    STR("AGENTGATE_REDIS_SENTINEL_MASTER", redis_sentinel_master, ""),
    SECRET("AGENTGATE_REDIS_SENTINEL_PASSWORD", redis_sentinel_password, ""),
    SPECIAL("AGENTGATE_LISTEN", "127.0.0.1:8080", SET_LISTEN),
    INT("AGENTGATE_GATEWAY_THREADS", gateway_threads, "", 1, 256),   /* "": the cores */
    INT("AGENTGATE_PG_POOL_SIZE", pg_pool_size, "2", 1, 64),
    SIZE("AGENTGATE_MAX_BODY_BYTES", max_body_bytes, "1048576", 1024, 1073741824),
    INT("AGENTGATE_SSE_KEEPALIVE_MS", sse_keepalive_ms, "15000", 100, 3600000),
    SIZE("AGENTGATE_SSE_MAX_BUFFER_BYTES", sse_max_buffer_bytes, "1048576", 4096, 1073741824),
    CHOICES("AGENTGATE_JWT_ALG", jwt_alg, "HS256", "HS256|RS256|ES256"),
    SECRET("AGENTGATE_JWT_SECRET", jwt_secret, ""),
    STR("AGENTGATE_JWT_ISSUER", jwt_issuer, ""),
    STR("AGENTGATE_JWT_AUDIENCE", jwt_audience, ""),
    INT("AGENTGATE_JWT_LEEWAY_S", jwt_leeway_s, "30", 0, 3600),
    STR("AGENTGATE_JWT_JWKS_FILE", jwt_jwks_file, ""),
    STR("AGENTGATE_JWT_JWKS_URL", jwt_jwks_url, ""),
    INT("AGENTGATE_JWT_JWKS_CACHE_S", jwt_jwks_cache_s, "300", 1, 86400),
    INT("AGENTGATE_JWT_JWKS_MIN_REFRESH_S", jwt_jwks_min_refresh_s, "30", 0, 86400),
    INT("AGENTGATE_JWT_JWKS_TIMEOUT_MS", jwt_jwks_timeout_ms, "5000", 100, 120000),
    SIZE("AGENTGATE_MAX_URI_BYTES", max_uri_bytes, "8192", 256, 1048576),
    SIZE("AGENTGATE_MAX_HEADER_BYTES", max_header_bytes, "32768", 1024, 1048576),
    INT("AGENTGATE_MAX_HEADERS", max_headers, "100", 8, 1000),
    INT("AGENTGATE_MAX_JSON_DEPTH", max_json_depth, "64", 2, 1000),
    INT("AGENTGATE_HEADER_TIMEOUT_MS", header_timeout_ms, "10000", 100, 600000),
    INT("AGENTGATE_IDLE_TIMEOUT_MS", idle_timeout_ms, "60000", 100, 3600000),
    INT("AGENTGATE_BODY_TIMEOUT_MS", body_timeout_ms, "30000", 100, 3600000),
    INT("AGENTGATE_SSE_MAX_PER_PRINCIPAL", sse_max_per_principal, "32", 1, 1000000),
    STR("AGENTGATE_CORS_ORIGINS", cors_origins, ""),
    STR("AGENTGATE_RATE_LIMITS", rate_limits, ""),
    INT("AGENTGATE_TENANT_SETTINGS_CACHE_MS", tenant_settings_cache_ms, "5000", 0, 3600000),
    INT("AGENTGATE_IDEMPOTENCY_TTL_S", idempotency_ttl_s, "86400", 1, 31536000),
    INT("AGENTGATE_TENANT_MAX_RUNNING", tenant_max_running, "64", 0, 1000000),
    INT("AGENTGATE_EVENT_RING_SIZE", event_ring_size, "1000", 1, 1000000),
    INT("AGENTGATE_EVENT_TTL_S", event_ttl_s, "86400", 1, 31536000),
    STR("AGENTGATE_WORKER_ID", worker_id, ""),
    STR("AGENTGATE_WORKER_QUEUES", worker_queues, ""),
    INT("AGENTGATE_WORKER_CONCURRENCY", worker_concurrency, "4", 1, 1024),
    INT("AGENTGATE_HEARTBEAT_MS", heartbeat_ms, "2000", 10, 600000),
    INT("AGENTGATE_LEASE_MS", lease_ms, "30000", 100, 3600000),
    INT("AGENTGATE_WORKER_REGISTRY_TTL_MS", worker_registry_ttl_ms, "10000", 100, 3600000),
    INT("AGENTGATE_CANCEL_POLL_MS", cancel_poll_ms, "50", 1, 60000),
    INT("AGENTGATE_SHUTDOWN_GRACE_MS", shutdown_grace_ms, "30000", 0, 3600000),
    INT("AGENTGATE_REAPER_INTERVAL_MS", reaper_interval_ms, "10000", 10, 3600000),
    INT("AGENTGATE_RECONCILE_INTERVAL_MS", reconcile_interval_ms, "5000", 10, 3600000),
    INT("AGENTGATE_RETRY_BASE_MS", retry_base_ms, "1000", 1, 86400000),
    INT("AGENTGATE_RETRY_MAX_MS", retry_max_ms, "300000", 1, 86400000),
    INT("AGENTGATE_DEAD_LETTER_MAX", dead_letter_max, "10000", 1, 100000000),
    /* Retention: what the worker's maintenance deletes, and how. */
    INT("AGENTGATE_RETENTION_DAYS", retention_days, "30", 1, 3650),
    INT("AGENTGATE_AUDIT_RETENTION_DAYS", audit_retention_days, "365", 1, 36500),
    INT("AGENTGATE_RETENTION_INTERVAL_MS", retention_interval_ms, "3600000", 0, 86400000),
    INT("AGENTGATE_RETENTION_BATCH", retention_batch, "100", 1, 10000),
    /* Worker metrics: host:port checked in config_check; empty is off. */
    STR("AGENTGATE_WORKER_METRICS_LISTEN", worker_metrics_listen, ""),
    /* A string parsed in worker_metrics_check: an empty default keeps it out
     * of the env file, where it would override the worker@N units' value. */
    STR("AGENTGATE_WORKER_METRICS_PORT_OFFSET", worker_metrics_port_offset_text, ""),
    INT("AGENTGATE_PRIORITY_FAIR_EVERY", priority_fair_every, "10", 0, 1000000),
    STR("AGENTGATE_LLM_PROVIDERS", llm_providers, ""),
    SECRET("AGENTGATE_LLM_API_KEYS", llm_api_keys, ""),
    STR("AGENTGATE_LLM_MODEL", llm_model, ""),
    INT("AGENTGATE_LLM_CONNECT_TIMEOUT_MS", llm_connect_timeout_ms, "5000", 1, 600000),
    INT("AGENTGATE_LLM_FIRST_BYTE_TIMEOUT_MS", llm_first_byte_timeout_ms, "30000", 1, 3600000),
    INT("AGENTGATE_LLM_TOTAL_TIMEOUT_MS", llm_total_timeout_ms, "120000", 1, 86400000),
    INT("AGENTGATE_LLM_MAX_RETRIES", llm_max_retries, "2", 0, 20),
    INT("AGENTGATE_LLM_RETRY_BASE_MS", llm_retry_base_ms, "250", 1, 600000),
    INT("AGENTGATE_LLM_RETRY_MAX_MS", llm_retry_max_ms, "8000", 1, 3600000),
    INT("AGENTGATE_LLM_CIRCUIT_FAILURES", llm_circuit_failures, "5", 1, 1000),
    INT("AGENTGATE_LLM_CIRCUIT_OPEN_MS", llm_circuit_open_ms, "30000", 1, 86400000),
    INT("AGENTGATE_BUILTIN_DELTA_PAUSE_MS", builtin_delta_pause_ms, "10", 0, 1000),
    INT("AGENTGATE_AGENT_MAX_ITERATIONS", agent_max_iterations, "8", 1, 64),
    INT("AGENTGATE_AGENT_RUN_TIMEOUT_MS", agent_run_timeout_ms, "120000", 100, 86400000),
    SIZE("AGENTGATE_SESSION_CONTEXT_BYTES", session_context_bytes, "8192", 0, 1048576),
    SIZE("AGENTGATE_OUTPUT_MAX_BYTES", output_max_bytes, "65536", 256, 16777216),
    INT("AGENTGATE_APPROVAL_TIMEOUT_S", approval_timeout_s, "86400", 1, 604800),
    STR("AGENTGATE_MCP_URL_ALLOWLIST", mcp_url_allowlist, ""),
    STR("AGENTGATE_MCP_SERVERS_FILE", mcp_servers_file, ""),
    STR("AGENTGATE_WEBHOOK_URL_ALLOWLIST", webhook_url_allowlist, ""),
    INT("AGENTGATE_WEBHOOK_TIMEOUT_MS", webhook_timeout_ms, "10000", 100, 120000),
    INT("AGENTGATE_WEBHOOK_RETRY_BASE_MS", webhook_retry_base_ms, "5000", 10, 3600000),
    INT("AGENTGATE_WEBHOOK_RETRY_MAX_MS", webhook_retry_max_ms, "3600000", 10, 86400000),
    INT("AGENTGATE_WEBHOOK_RETRY_WINDOW_S", webhook_retry_window_s, "86400", 1, 604800),
    INT("AGENTGATE_WEBHOOK_POLL_MS", webhook_poll_ms, "1000", 10, 60000),
    INT("AGENTGATE_MCP_CALL_TIMEOUT_MS", mcp_call_timeout_ms, "30000", 100, 3600000),
    INT("AGENTGATE_MCP_CONNECT_TIMEOUT_MS", mcp_connect_timeout_ms, "10000", 100, 600000),
    SIZE("AGENTGATE_MCP_RESULT_MAX_BYTES", mcp_result_max_bytes, "262144", 1024, 16777216),
    INT("AGENTGATE_MCP_MAX_SERVERS", mcp_max_servers, "32", 1, 1000),
    /* Traces: the endpoint's form is checked in config_check; empty is off. */
    STR("AGENTGATE_OTLP_ENDPOINT", otlp_endpoint, ""),
    SECRET("AGENTGATE_OTLP_HEADERS", otlp_headers, ""),
    INT("AGENTGATE_OTLP_SAMPLE_PERCENT", otlp_sample_percent, "100", 0, 100),
    INT("AGENTGATE_OTLP_QUEUE_SIZE", otlp_queue_size, "4096", 16, 1000000),
    INT("AGENTGATE_OTLP_BATCH_SIZE", otlp_batch_size, "512", 1, 10000),
    INT("AGENTGATE_OTLP_INTERVAL_MS", otlp_interval_ms, "1000", 10, 600000),
    INT("AGENTGATE_OTLP_TIMEOUT_MS", otlp_timeout_ms, "5000", 100, 600000),
    CHOICE("AGENTGATE_LOG_LEVEL", log_level, "info", "debug|info|warn|error"),
    CHOICE("AGENTGATE_ACCESS_LOG", access_log, "off", "off|on"),
};

#define SETTINGS_COUNT (sizeof settings / sizeof *settings)

static const setting *setting_find(const char *name)
{
    for (size_t i = 0; i < SETTINGS_COUNT; i++)
        if (strcmp(settings[i].name, name) == 0)
            return &settings[i];
    return NULL;
}

/* Copies s (len bytes) into a field of size bytes; -1 when it does not fit. */
static int copy_bounded(char *field, size_t size, const char *s, size_t len)
{
    if (len >= size)
        return -1;
    memcpy(field, s, len);
    field[len] = '\0';
    return 0;
}

/* Parses all len bytes of s as a decimal integer: an optional '-' and
 * digits, nothing else (no spaces, no '+', no "0x"). */
static int parse_integer(const char *s, size_t len, long long *out)
{
    size_t i = (len > 0 && s[0] == '-') ? 1 : 0;
    if (i == len || len > 24)
        return -1;
    for (size_t j = i; j < len; j++)
        if (s[j] < '0' || s[j] > '9')
            return -1;
    char buf[32];
    memcpy(buf, s, len);
    buf[len] = '\0';
    errno = 0;
    long long v = strtoll(buf, NULL, 10);
    if (errno == ERANGE)
        return -1;
    *out = v;
    return 0;
}

static int parse_ranged(const char *s, size_t len, long long min, long long max,
                        long long *out)
{
    long long v;
    if (parse_integer(s, len, &v) != 0 || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* True for characters a host name or IPv4 address may hold. */
static bool host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
}

/* True for characters inside the brackets of an IPv6 literal. */
static bool ipv6_char(char c)
{
    return (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') ||
           (c >= '0' && c <= '9') || c == ':' || c == '.';
}

/*
 * Splits s (len bytes) of the form host, host:port, [v6] or [v6]:port.
 * The host goes to host (without brackets); *port is set when a port is
 * given, else left as is. Returns -1 on anything malformed, or a port
 * missing when port_required.
 */
static int split_host_port(const char *s, size_t len, char *host, size_t host_size,
                           int *port, bool port_required)
{
    const char *h, *rest;
    size_t hlen;

    if (len > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', len);
        if (close == NULL)
            return -1;
        h = s + 1;
        hlen = (size_t)(close - h);
        for (size_t i = 0; i < hlen; i++)
            if (!ipv6_char(h[i]))
                return -1;
        if (memchr(h, ':', hlen) == NULL)
            return -1;
        rest = close + 1;
    } else {
        const char *colon = memchr(s, ':', len);
        h = s;
        hlen = colon ? (size_t)(colon - s) : len;
        for (size_t i = 0; i < hlen; i++)
            if (!host_char(h[i]))
                return -1;
        rest = s + hlen;
    }
    if (hlen == 0)
        return -1;

    size_t rest_len = len - (size_t)(rest - s);
    long long p = 0;
    if (rest_len == 0) {
        if (port_required)
            return -1;
    } else if (rest[0] != ':' || parse_ranged(rest + 1, rest_len - 1, 1, 65535, &p) != 0) {
        return -1;
    }
    if (copy_bounded(host, host_size, h, hlen) != 0)
        return -1;
    if (rest_len > 0)
        *port = (int)p;
    return 0;
}

static int hex_digit(char c)
{
    return c >= '0' && c <= '9' ? c - '0'
         : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Percent-decodes s (len bytes) into out (out_size bytes, NUL-terminated).
 * Returns -1 for a malformed escape, a decoded NUL or no room. */
static int percent_decode(const char *s, size_t len, char *out, size_t out_size)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '%') {
            if (len - i < 3)
                return -1;
            int h = hex_digit(s[i + 1]), l = hex_digit(s[i + 2]);
            if (h < 0 || l < 0 || (h == 0 && l == 0))
                return -1;
            c = (char)(h * 16 + l);
            i += 2;
        }
        if (n + 1 >= out_size)
            return -1;
        out[n++] = c;
    }
    out[n] = '\0';
    return 0;
}

/* Splits "user:password" (len bytes, percent-encoded) into user and
 * password. A password is required: AUTH has no form without one. */
static int parse_userinfo(const char *s, size_t len, char *user, size_t user_size,
                          char *password, size_t password_size)
{
    const char *colon = memchr(s, ':', len);
    if (colon == NULL || (size_t)(colon - s) + 1 == len)
        return -1;
    size_t ulen = (size_t)(colon - s);
    if (percent_decode(s, ulen, user, user_size) != 0 ||
        percent_decode(colon + 1, len - ulen - 1, password, password_size) != 0)
        return -1;
    return 0;
}

int config_parse_redis_url(ag_config *cfg, const char *url)
{
    static const char scheme[] = "redis://";
    if (url == NULL || strncasecmp(url, scheme, sizeof scheme - 1) != 0)
        return -1;

    /* The credentials end at the last '@': one in a password should be
     * written %40, but an unencoded one still finds the host. */
    char user[sizeof cfg->redis_url_username] = "";
    char password[sizeof cfg->redis_url_password] = "";
    const char *authority = url + sizeof scheme - 1;
    const char *at = strrchr(authority, '@');
    if (at != NULL) {
        if (parse_userinfo(authority, (size_t)(at - authority), user, sizeof user,
                           password, sizeof password) != 0)
            return -1;
        authority = at + 1;
    }
    const char *slash = strchr(authority, '/');
    size_t alen = slash ? (size_t)(slash - authority) : strlen(authority);

    char host[sizeof cfg->redis_host] = "";   /* zeroed: the whole array is copied */
    int port = REDIS_DEFAULT_PORT;
    if (split_host_port(authority, alen, host, sizeof host, &port, false) != 0)
        return -1;

    long long db = 0;
    if (slash && slash[1] != '\0' &&
        parse_ranged(slash + 1, strlen(slash + 1), 0, 65535, &db) != 0)
        return -1;

    memcpy(cfg->redis_host, host, sizeof host);
    cfg->redis_port = port;
    cfg->redis_db = (int)db;
    memcpy(cfg->redis_url_username, user, sizeof user);
    memcpy(cfg->redis_url_password, password, sizeof password);
    return 0;
}

int config_parse_host_port(const char *s, char *host, size_t host_size, int *port)
{
    int p = 0;
    if (s == NULL || split_host_port(s, strlen(s), host, host_size, &p, true) != 0)
        return -1;
    *port = p;
    return 0;
}

static int parse_listen(ag_config *cfg, const char *value)
{
    char host[sizeof cfg->listen_addr] = "";   /* zeroed: the whole array is copied */
    int port = 0;
    if (split_host_port(value, strlen(value), host, sizeof host, &port, true) != 0)
        return -1;
    memcpy(cfg->listen_addr, host, sizeof host);
    cfg->listen_port = port;
    return 0;
}

/* True when value is one of the '|'-separated words in choices. */
static bool is_choice(const char *choices, const char *value)
{
    size_t vlen = strlen(value);
    const char *p = choices;
    for (;;) {
        const char *bar = strchr(p, '|');
        size_t wlen = bar ? (size_t)(bar - p) : strlen(p);
        if (wlen == vlen && vlen > 0 && memcmp(p, value, vlen) == 0)
            return true;
        if (bar == NULL)
            return false;
        p = bar + 1;
    }
}

/* True when value is a comma list of choices, none empty or repeated
 * (no blanks: "RS256,ES256"). */
static bool is_choice_list(const char *choices, const char *value)
{
    char item[64];
    for (const char *p = value;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len == 0 || len >= sizeof item)
            return false;
        memcpy(item, p, len);
        item[len] = '\0';
        if (!is_choice(choices, item))
            return false;
        /* A repeat is a typo worth reporting, not a harmless no-op. */
        for (const char *q = value; q < p;) {
            const char *c2 = strchr(q, ',');
            if ((size_t)(c2 - q) == len && memcmp(q, item, len) == 0)
                return false;
            q = c2 + 1;
        }
        if (comma == NULL)
            return true;
        p = comma + 1;
    }
}

/* Parses value for setting s into cfg. Returns 0, or -1 with a one-line
 * error naming the variable. Values of strings are never echoed: they may
 * be secrets. */
static int setting_apply(ag_config *cfg, const setting *s, const char *value,
                         char *err, size_t err_size)
{
    char *field = (char *)cfg + s->offset;
    long long v;

    switch (s->kind) {
    case SET_STR:
        if (copy_bounded(field, s->size, value, strlen(value)) != 0) {
            errbuf_printf(err, err_size, "%s: value too long (at most %zu bytes)",
                          s->name, s->size - 1);
            return -1;
        }
        return 0;
    case SET_CHOICE:
        if (!is_choice(s->choices, value) ||
            copy_bounded(field, s->size, value, strlen(value)) != 0) {
            errbuf_printf(err, err_size, "%s: \"%.32s\" is not one of %s",
                          s->name, value, s->choices);
            return -1;
        }
        return 0;
    case SET_CHOICE_LIST:
        if (!is_choice_list(s->choices, value) ||
            copy_bounded(field, s->size, value, strlen(value)) != 0) {
            errbuf_printf(err, err_size, "%s: \"%.32s\" is not a comma list of distinct "
                          "items from %s", s->name, value, s->choices);
            return -1;
        }
        return 0;
    case SET_INT:
    case SET_SIZE:
        if (parse_ranged(value, strlen(value), s->min, s->max, &v) != 0) {
            errbuf_printf(err, err_size, "%s: \"%.32s\" is not an integer in %lld..%lld",
                          s->name, value, s->min, s->max);
            return -1;
        }
        if (s->kind == SET_INT)
            *(int *)(void *)field = (int)v;
        else
            *(size_t *)(void *)field = (size_t)v;
        return 0;
    case SET_LISTEN:
        if (parse_listen(cfg, value) != 0) {
            errbuf_printf(err, err_size, "%s: \"%.160s\" is not host:port or [v6addr]:port "
                          "with a port in 1..65535", s->name, value);
            return -1;
        }
        return 0;
    case SET_REDIS_URL:
        if (config_parse_redis_url(cfg, value) != 0) {
            /* Not echoed: a URL may carry a password. */
            errbuf_printf(err, err_size, "%s: expected redis://[user:password@]host[:port]"
                          "[/db] with a port in 1..65535 and a db in 0..65535 (rediss:// "
                          "is not supported: TLS goes through a local tunnel)", s->name);
            return -1;
        }
        return 0;
    }
    return -1;
}

/* Sets *cfg to the defaults of the table. Returns 0, or -1 with a one-line
 * error when a default of the table does not parse (a bug caught by the
 * first test run, never a user's error). */
static int config_defaults(ag_config *cfg, char *err, size_t err_size)
{
    memset(cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < SETTINGS_COUNT; i++) {
        const setting *s = &settings[i];
        /* The one computed default: AGENTGATE_GATEWAY_THREADS, whose row
         * says "", is one loop thread per online core within its bounds. */
        if (s->offset == offsetof(ag_config, gateway_threads) && s->kind == SET_INT &&
            s->def[0] == '\0') {
            long cores = sysconf(_SC_NPROCESSORS_ONLN);
            cfg->gateway_threads = cores < s->min ? (int)s->min
                                 : cores > s->max ? (int)s->max : (int)cores;
            continue;
        }
        char why[512];
        if (setting_apply(cfg, s, s->def, why, sizeof why) != 0) {
            errbuf_printf(err, err_size, "built-in default of %s", why);
            return -1;
        }
    }
    return 0;
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* Trims blanks and line endings from both ends of s in place. */
static char *trim(char *s)
{
    while (is_blank(*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && (is_blank(s[n - 1]) || s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

static bool valid_key(const char *k)
{
    if (!((*k >= 'A' && *k <= 'Z') || (*k >= 'a' && *k <= 'z') || *k == '_'))
        return false;
    for (k++; *k; k++)
        if (!((*k >= 'A' && *k <= 'Z') || (*k >= 'a' && *k <= 'z') ||
              (*k >= '0' && *k <= '9') || *k == '_'))
            return false;
    return true;
}

/* Removes one pair of matching surrounding quotes from value in place.
 * Returns -1 for a quote that opens and is never closed. */
static int unquote(char **value)
{
    char *v = *value;
    size_t n = strlen(v);
    if (n == 0 || (v[0] != '"' && v[0] != '\''))
        return 0;
    if (n < 2 || v[n - 1] != v[0])
        return -1;
    v[n - 1] = '\0';
    *value = v + 1;
    return 0;
}

/*
 * Secrets. A setting marked secret (the SECRET rows) may be given in one
 * of three ways besides its plain variable: NAME_FILE, the path of a file
 * holding the value (in the environment or the env file); or, under
 * systemd, a credential named NAME (LoadCredential=NAME:/path), found in
 * $CREDENTIALS_DIRECTORY. The file's whole content is the value, less one
 * trailing line ending. A value given two ways at the same level (NAME
 * and NAME_FILE, or either and a credential) is refused rather than
 * silently preferring one: an operator rotating a secret must know which
 * one is in force. The environment and credentials override the env file
 * as for every setting. Values and file contents are never echoed.
 */
#define FILE_SUFFIX       "_FILE"
#define SECRET_FILE_MAX   65536   /* larger than any field: "too long" below */

/* The secret setting whose NAME_FILE variable is key, or NULL. */
static const setting *secret_file_setting(const char *key)
{
    size_t n = strlen(key), sl = sizeof FILE_SUFFIX - 1;
    if (n <= sl || strcmp(key + n - sl, FILE_SUFFIX) != 0)
        return NULL;
    for (size_t i = 0; i < SETTINGS_COUNT; i++)
        if (settings[i].secret && strlen(settings[i].name) == n - sl &&
            memcmp(settings[i].name, key, n - sl) == 0)
            return &settings[i];
    return NULL;
}

/*
 * Reads the file at path (named by `via` in messages: "AGENTGATE_X_FILE",
 * "credential AGENTGATE_X") and applies its content to setting s. The
 * buffer is wiped before it is freed. Returns 0 or -1 with a one-line
 * error naming via and path, never the content.
 */
static int secret_file_apply(ag_config *cfg, const setting *s, const char *via,
                             const char *path, char *err, size_t err_size)
{
    if (path[0] == '\0') {
        errbuf_printf(err, err_size, "%s: empty path", via);
        return -1;
    }
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        errbuf_printf(err, err_size, "%s: %.256s: %s", via, path, strerror(errno));
        return -1;
    }
    char *buf = malloc(SECRET_FILE_MAX + 1);
    if (buf == NULL) {
        fclose(f);
        errbuf_printf(err, err_size, "%s: out of memory", via);
        return -1;
    }
    size_t n = fread(buf, 1, SECRET_FILE_MAX + 1, f);
    int rc = -1;
    if (ferror(f))
        errbuf_printf(err, err_size, "%s: %.256s: read error", via, path);
    else if (n > SECRET_FILE_MAX)
        errbuf_printf(err, err_size, "%s: %.256s: longer than %d bytes", via, path,
                      SECRET_FILE_MAX);
    else if (memchr(buf, '\0', n) != NULL)
        errbuf_printf(err, err_size, "%s: %.256s: holds a NUL byte", via, path);
    else {
        /* One line ending, as `echo` and editors leave; a value that
         * really ends in white space keeps the rest. */
        if (n > 0 && buf[n - 1] == '\n')
            n--;
        if (n > 0 && buf[n - 1] == '\r')
            n--;
        buf[n] = '\0';
        char why[512];
        if (setting_apply(cfg, s, buf, why, sizeof why) != 0)
            errbuf_printf(err, err_size, "%s (from %.256s)", why, path);
        else
            rc = 0;
    }
    explicit_bzero(buf, SECRET_FILE_MAX + 1);
    free(buf);
    fclose(f);
    return rc;
}

/*
 * Applies secret setting s from the environment or a credential, when one
 * of them gives it. Returns 0 (also when none does) or -1 with an error.
 */
static int secret_env_load(ag_config *cfg, const setting *s, char *err, size_t err_size)
{
    char file_var[128], via[160], cred_path[4096];
    snprintf(file_var, sizeof file_var, "%s" FILE_SUFFIX, s->name);
    const char *value = getenv(s->name), *file = getenv(file_var);
    const char *cred_dir = getenv("CREDENTIALS_DIRECTORY");
    bool cred = false;
    if (cred_dir != NULL && cred_dir[0] != '\0') {
        int m = snprintf(cred_path, sizeof cred_path, "%s/%s", cred_dir, s->name);
        cred = m > 0 && (size_t)m < sizeof cred_path && access(cred_path, F_OK) == 0;
    }
    if ((value != NULL) + (file != NULL) + cred > 1) {
        /* Name the ways it is given, never the values. */
        char ways[320];
        snprintf(ways, sizeof ways, "%s%s%s%s%s", value ? s->name : "",
                 value && file ? " and " : "", file ? file_var : "",
                 cred ? " and the credential " : "", cred ? s->name : "");
        errbuf_printf(err, err_size, "%s: set by %s; give it one way only", s->name, ways);
        return -1;
    }
    if (value != NULL)
        return setting_apply(cfg, s, value, err, err_size);
    if (file != NULL)
        return secret_file_apply(cfg, s, file_var, file, err, err_size);
    if (cred) {
        snprintf(via, sizeof via, "credential %s", s->name);
        return secret_file_apply(cfg, s, via, cred_path, err, err_size);
    }
    return 0;
}

/* Where a secret's value was seen in the env file, to refuse both. */
enum { SEEN_VALUE = 1, SEEN_FILE = 2 };

/*
 * Applies one env file line (NUL-terminated, line ending included or not).
 * Blank lines and '#' comments are skipped; "export " is tolerated; keys
 * outside AGENTGATE_ are ignored, as systemd would pass them to others.
 */
static int env_line_apply(ag_config *cfg, char *line, const char *path, int lineno,
                          unsigned char *seen, char *err, size_t err_size)
{
    char *s = trim(line);
    if (*s == '\0' || *s == '#')
        return 0;
    if (strncmp(s, "export", 6) == 0 && is_blank(s[6]))
        s = trim(s + 7);

    char *eq = strchr(s, '=');
    if (eq == NULL) {
        errbuf_printf(err, err_size, "%s:%d: expected KEY=VALUE", path, lineno);
        return -1;
    }
    *eq = '\0';
    char *key = trim(s);
    char *value = trim(eq + 1);
    if (!valid_key(key)) {
        errbuf_printf(err, err_size, "%s:%d: malformed key \"%.64s\"", path, lineno, key);
        return -1;
    }
    if (unquote(&value) != 0) {
        errbuf_printf(err, err_size, "%s:%d: %s: unterminated quote", path, lineno, key);
        return -1;
    }

    const setting *st = setting_find(key);
    const setting *sf = st == NULL ? secret_file_setting(key) : NULL;
    const setting *ss = st && st->secret ? st : sf;
    if (ss != NULL) {
        unsigned char *mark = &seen[ss - settings];
        *mark |= sf ? SEEN_FILE : SEEN_VALUE;
        if (*mark == (SEEN_VALUE | SEEN_FILE)) {
            errbuf_printf(err, err_size, "%s:%d: %s and %s" FILE_SUFFIX " are both set; "
                          "keep one", path, lineno, ss->name, ss->name);
            return -1;
        }
    }
    if (sf != NULL) {
        char why[512];
        if (secret_file_apply(cfg, sf, key, value, why, sizeof why) != 0) {
            errbuf_printf(err, err_size, "%s:%d: %s", path, lineno, why);
            return -1;
        }
        return 0;
    }
    if (st == NULL) {
        if (strncmp(key, ENV_PREFIX, sizeof ENV_PREFIX - 1) == 0) {
            errbuf_printf(err, err_size, "%s:%d: unknown setting %.64s", path, lineno, key);
            return -1;
        }
        return 0;
    }

    char why[512];
    if (setting_apply(cfg, st, value, why, sizeof why) != 0) {
        errbuf_printf(err, err_size, "%s:%d: %s", path, lineno, why);
        return -1;
    }
    return 0;
}

static int env_file_load(ag_config *cfg, const char *path, char *err, size_t err_size)
{
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        errbuf_printf(err, err_size, "%s: %s", path, strerror(errno));
        return -1;
    }

    char line[ENV_LINE_MAX];
    unsigned char seen[SETTINGS_COUNT] = { 0 };
    int lineno = 0, rc = 0;
    while (rc == 0 && fgets(line, sizeof line, f) != NULL) {
        lineno++;
        size_t n = strlen(line);
        if (n == sizeof line - 1 && line[n - 1] != '\n' && !feof(f)) {
            errbuf_printf(err, err_size, "%s:%d: line longer than %d bytes",
                          path, lineno, ENV_LINE_MAX - 2);
            rc = -1;
            break;
        }
        rc = env_line_apply(cfg, line, path, lineno, seen, err, err_size);
    }
    if (rc == 0 && ferror(f)) {
        errbuf_printf(err, err_size, "%s: read error", path);
        rc = -1;
    }
    fclose(f);
    return rc;
}

static int environment_load(ag_config *cfg, char *err, size_t err_size)
{
    for (size_t i = 0; i < SETTINGS_COUNT; i++) {
        if (settings[i].secret) {
            if (secret_env_load(cfg, &settings[i], err, err_size) != 0)
                return -1;
            continue;
        }
        const char *value = getenv(settings[i].name);
        if (value != NULL && setting_apply(cfg, &settings[i], value, err, err_size) != 0)
            return -1;
    }
    return 0;
}

/* A PostgreSQL connection string that libpq cannot parse is a settings
 * error now, not a connection that fails forever later. Returns 0 or -1. */
static int conninfo_check(const char *name, const char *url, char *err, size_t err_size)
{
    if (url[0] == '\0')
        return 0;
    char *why = NULL;
    PQconninfoOption *opts = PQconninfoParse(url, &why);
    if (opts != NULL) {
        PQconninfoFree(opts);
        return 0;
    }
    /* libpq's message ends with a newline. */
    size_t n = why ? strcspn(why, "\n") : 0;
    errbuf_printf(err, err_size, "%s is not a valid connection string: %.*s", name,
                  (int)n, why ? why : "out of memory");
    PQfreemem(why);
    return -1;
}

/* The worker's metrics address: the offset parsed into its int (empty is
 * 0), the address checked, and the two together kept a port. */
static int worker_metrics_check(ag_config *cfg, char *err, size_t err_size)
{
    const char *off = cfg->worker_metrics_port_offset_text;
    long long v = 0;
    if (off[0] != '\0' && parse_ranged(off, strlen(off), 0, 65534, &v) != 0) {
        errbuf_printf(err, err_size, "AGENTGATE_WORKER_METRICS_PORT_OFFSET: \"%.32s\" is not "
                      "an integer in 0..65534", off);
        return -1;
    }
    cfg->worker_metrics_port_offset = (int)v;
    if (cfg->worker_metrics_listen[0] == '\0')
        return 0;
    char host[sizeof cfg->worker_metrics_listen];
    int port;
    if (config_parse_host_port(cfg->worker_metrics_listen, host, sizeof host, &port) != 0) {
        errbuf_printf(err, err_size, "AGENTGATE_WORKER_METRICS_LISTEN: \"%.160s\" is not "
                      "host:port or [v6addr]:port with a port in 1..65535",
                      cfg->worker_metrics_listen);
        return -1;
    }
    if (port + cfg->worker_metrics_port_offset > 65535) {
        errbuf_printf(err, err_size, "AGENTGATE_WORKER_METRICS_PORT_OFFSET (%d) puts the "
                      "port of AGENTGATE_WORKER_METRICS_LISTEN (%d) above 65535",
                      cfg->worker_metrics_port_offset, port);
        return -1;
    }
    return 0;
}

/* Appends " key='value'" to out (len bytes used of size), quoted as libpq
 * reads it: backslash and quote escaped. Returns -1 when it does not fit. */
static int conninfo_append(char *out, size_t size, size_t *len, const char *key,
                           const char *val)
{
    size_t n = *len;
    int w = snprintf(out + n, size - n, "%s%s='", n ? " " : "", key);
    if (w < 0 || (size_t)w >= size - n)
        return -1;
    n += (size_t)w;
    for (const char *p = val; *p; p++) {
        if ((*p == '\\' || *p == '\'') && n + 1 < size)
            out[n++] = '\\';
        if (n + 1 >= size)
            return -1;
        out[n++] = *p;
    }
    if (n + 2 > size)
        return -1;
    out[n++] = '\'';
    out[n] = '\0';
    *len = n;
    return 0;
}

/*
 * AGENTGATE_DATABASE_PASSWORD, given apart from the URL (typically from a
 * file or a credential, where a password alone is what secret stores
 * hand out): libpq parses the URL, and it is written back as key='value'
 * pairs with the password among them, so every process and thread that
 * connects gets one connection string, host lists and options intact. A
 * URL that already holds a password is refused: two sources. The field is
 * wiped once merged. Returns 0 or -1 with a one-line error.
 */
static int database_password_merge(ag_config *cfg, char *err, size_t err_size)
{
    if (cfg->database_password[0] == '\0')
        return 0;
    char *why = NULL;
    PQconninfoOption *opts = PQconninfoParse(cfg->database_url, &why);
    if (opts == NULL) {
        PQfreemem(why);
        /* conninfo_check reports it in full. */
        return 0;
    }
    char out[sizeof cfg->database_url];
    size_t len = 0;
    int rc = 0;
    out[0] = '\0';
    for (PQconninfoOption *o = opts; o->keyword != NULL && rc == 0; o++) {
        if (strcmp(o->keyword, "password") == 0) {
            if (o->val != NULL && o->val[0] != '\0') {
                errbuf_printf(err, err_size, "AGENTGATE_DATABASE_URL holds a password and "
                              "AGENTGATE_DATABASE_PASSWORD is set; give it one way only");
                rc = -1;
            }
            continue;
        }
        if (o->val != NULL && o->val[0] != '\0' &&
            conninfo_append(out, sizeof out, &len, o->keyword, o->val) != 0)
            rc = -2;
    }
    if (rc == 0 && conninfo_append(out, sizeof out, &len, "password",
                                   cfg->database_password) != 0)
        rc = -2;
    if (rc == -2)
        errbuf_printf(err, err_size, "AGENTGATE_DATABASE_URL with AGENTGATE_DATABASE_PASSWORD "
                      "is longer than %zu bytes as a connection string",
                      sizeof cfg->database_url - 1);
    if (rc == 0)
        memcpy(cfg->database_url, out, sizeof out);
    explicit_bzero(out, sizeof out);
    explicit_bzero(cfg->database_password, sizeof cfg->database_password);
    PQconninfoFree(opts);
    return rc == 0 ? 0 : -1;
}

/* Rules between settings, checked once everything is loaded. */
static int redis_check(const ag_config *cfg, char *err, size_t err_size)
{
    bool url_auth = cfg->redis_url_password[0] != '\0';
    if (url_auth && (cfg->redis_username[0] != '\0' || cfg->redis_password[0] != '\0')) {
        errbuf_printf(err, err_size, "AGENTGATE_REDIS_URL carries user:password@, so "
                      "AGENTGATE_REDIS_USERNAME and AGENTGATE_REDIS_PASSWORD must be unset");
        return -1;
    }
    if (cfg->redis_username[0] != '\0' && cfg->redis_password[0] == '\0') {
        errbuf_printf(err, err_size, "AGENTGATE_REDIS_USERNAME needs AGENTGATE_REDIS_PASSWORD");
        return -1;
    }
    bool sentinels = cfg->redis_sentinels[0] != '\0';
    if (sentinels != (cfg->redis_sentinel_master[0] != '\0')) {
        errbuf_printf(err, err_size, "AGENTGATE_REDIS_SENTINELS and "
                      "AGENTGATE_REDIS_SENTINEL_MASTER go together: set both or neither");
        return -1;
    }
    if (!sentinels && cfg->redis_sentinel_password[0] != '\0') {
        errbuf_printf(err, err_size, "AGENTGATE_REDIS_SENTINEL_PASSWORD is set but "
                      "AGENTGATE_REDIS_SENTINELS is not");
        return -1;
    }
    int count = 0;
    for (const char *p = cfg->redis_sentinels; sentinels;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char item[sizeof cfg->redis_sentinels], host[256];
        int port;
        memcpy(item, p, len);
        item[len] = '\0';
        if (config_parse_host_port(item, host, sizeof host, &port) != 0) {
            errbuf_printf(err, err_size, "AGENTGATE_REDIS_SENTINELS: \"%.160s\" is not "
                          "host:port or [v6addr]:port with a port in 1..65535", item);
            return -1;
        }
        if (++count > CONFIG_REDIS_SENTINELS_MAX) {
            errbuf_printf(err, err_size, "AGENTGATE_REDIS_SENTINELS: more than %d sentinels",
                          CONFIG_REDIS_SENTINELS_MAX);
            return -1;
        }
        if (comma == NULL)
            break;
        p = comma + 1;
    }
    return 0;
}

static int config_check(const ag_config *cfg, char *err, size_t err_size)
{
    if (redis_check(cfg, err, err_size) != 0)
        return -1;
    if (conninfo_check("AGENTGATE_DATABASE_URL", cfg->database_url, err, err_size) != 0 ||
        conninfo_check("AGENTGATE_MIGRATE_DATABASE_URL", cfg->migrate_database_url,
                       err, err_size) != 0)
        return -1;
    /* A mistyped limit must stop the gateway, not silently limit nothing. */
    tenant_settings limits;
    char why[200];
    memset(&limits, 0, sizeof limits);
    if (tenant_limits_parse_config(cfg->rate_limits, &limits, why, sizeof why) != 0) {
        errbuf_printf(err, err_size, "AGENTGATE_RATE_LIMITS: %s", why);
        return -1;
    }
    if (cfg->lease_ms <= cfg->heartbeat_ms) {
        errbuf_printf(err, err_size, "AGENTGATE_LEASE_MS (%d) must be greater than "
                      "AGENTGATE_HEARTBEAT_MS (%d)", cfg->lease_ms, cfg->heartbeat_ms);
        return -1;
    }
    if (otlp_check_settings(cfg->otlp_endpoint, cfg->otlp_headers, err, err_size) != 0)
        return -1;
    if (cfg->retry_max_ms < cfg->retry_base_ms) {
        errbuf_printf(err, err_size, "AGENTGATE_RETRY_MAX_MS (%d) must not be less than "
                      "AGENTGATE_RETRY_BASE_MS (%d)", cfg->retry_max_ms, cfg->retry_base_ms);
        return -1;
    }
    return 0;
}

int config_load(ag_config *cfg, const char *env_file, char *err, size_t err_size)
{
    ag_config tmp;
    if (config_defaults(&tmp, err, err_size) != 0)
        return -1;
    if (env_file != NULL && env_file_load(&tmp, env_file, err, err_size) != 0)
        return -1;
    if (environment_load(&tmp, err, err_size) != 0)
        return -1;
    if (database_password_merge(&tmp, err, err_size) != 0)
        return -1;
    if (worker_metrics_check(&tmp, err, err_size) != 0)
        return -1;
    if (config_check(&tmp, err, err_size) != 0)
        return -1;
    *cfg = tmp;
    return 0;
}

size_t config_setting_count(void)
{
    return SETTINGS_COUNT;
}

const char *config_setting_name(size_t i)
{
    return i < SETTINGS_COUNT ? settings[i].name : NULL;
}

const char *config_setting_default(size_t i)
{
    return i < SETTINGS_COUNT ? settings[i].def : NULL;
}

bool config_setting_secret(size_t i)
{
    return i < SETTINGS_COUNT && settings[i].secret;
}
