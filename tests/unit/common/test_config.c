/*
 * test_config.c - config_load and config_parse_redis_url: defaults, env
 * file syntax, environment precedence, strict values, and that a failed
 * load leaves the caller's config untouched; the settings table that
 * config.h exposes, and its defaults parsed like any value.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "config.h"

extern char **environ;

/* Removes every AGENTGATE_* variable so the host environment cannot leak
 * into a test. */
static int clear_env(void **state)
{
    (void)state;
    for (;;) {
        char name[256] = "";
        for (char **e = environ; *e; e++) {
            if (strncmp(*e, "AGENTGATE_", 10) == 0) {
                const char *eq = strchr(*e, '=');
                size_t n = eq ? (size_t)(eq - *e) : strlen(*e);
                if (n < sizeof name) {
                    memcpy(name, *e, n);
                    name[n] = '\0';
                }
                break;
            }
        }
        if (name[0] == '\0')
            return 0;
        unsetenv(name);
    }
}

/* Writes text to a new temporary file; the caller unlinks path. */
static void write_env_file(char path[64], const char *text)
{
    snprintf(path, 64, "/tmp/agentgate-test-config-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t len = strlen(text);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
}

/* Loads text as an env file; returns config_load's result. */
static int load_text(ag_config *cfg, const char *text, char *err, size_t err_size)
{
    char path[64];
    write_env_file(path, text);
    int rc = config_load(cfg, path, err, err_size);
    unlink(path);
    return rc;
}

/* Expects loading text to fail with an error containing each of the
 * NULL-terminated fragments, and cfg not to change. */
static void expect_load_error(const char *text, ...)
{
    ag_config cfg, before;
    memset(&cfg, 0x5a, sizeof cfg);
    before = cfg;
    char err[512] = "";
    assert_int_equal(load_text(&cfg, text, err, sizeof err), -1);
    assert_memory_equal(&cfg, &before, sizeof cfg);

    va_list ap;
    va_start(ap, text);
    for (const char *want; (want = va_arg(ap, const char *)) != NULL;) {
        if (strstr(err, want) == NULL)
            fail_msg("error \"%s\" lacks \"%s\"", err, want);
    }
    va_end(ap);
    assert_null(strchr(err, '\n'));     /* one line */
}

static void test_defaults(void **state)
{
    (void)state;
    ag_config c;
    char err[256];
    assert_int_equal(config_load(&c, NULL, err, sizeof err), 0);
    assert_string_equal(c.database_url, "postgresql://agentgate@127.0.0.1:5432/agentgate");
    assert_string_equal(c.redis_host, "127.0.0.1");
    assert_int_equal(c.redis_port, 6379);
    assert_int_equal(c.redis_db, 0);
    assert_string_equal(c.listen_addr, "127.0.0.1");
    assert_int_equal(c.listen_port, 8080);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    assert_int_equal(c.gateway_threads, cores > 256 ? 256 : cores < 1 ? 1 : cores);
    assert_int_equal(c.pg_pool_size, 2);
    assert_int_equal(c.max_body_bytes, 1048576);
    assert_int_equal(c.sse_keepalive_ms, 15000);
    assert_int_equal(c.sse_max_buffer_bytes, 1048576);
    assert_string_equal(c.jwt_alg, "HS256");
    assert_string_equal(c.jwt_secret, "");
    assert_string_equal(c.jwt_issuer, "");
    assert_string_equal(c.jwt_audience, "");
    assert_int_equal(c.jwt_leeway_s, 30);
    assert_int_equal(c.event_ring_size, 1000);
    assert_int_equal(c.event_ttl_s, 86400);
    assert_string_equal(c.worker_id, "");
    assert_string_equal(c.worker_queues, "");
    assert_int_equal(c.worker_concurrency, 4);
    assert_int_equal(c.heartbeat_ms, 2000);
    assert_int_equal(c.lease_ms, 30000);
    assert_int_equal(c.cancel_poll_ms, 50);
    assert_int_equal(c.shutdown_grace_ms, 30000);
    assert_string_equal(c.log_level, "info");
}

/* The rest of the defaults, as config_defaults assigned them by hand
 * before they became a column of the settings table. */
static void test_defaults_rest(void **state)
{
    (void)state;
    ag_config c;
    char err[256];
    assert_int_equal(config_load(&c, NULL, err, sizeof err), 0);
    assert_string_equal(c.migrate_database_url, "");
    assert_string_equal(c.jwt_jwks_file, "");
    assert_string_equal(c.jwt_jwks_url, "");
    assert_int_equal(c.jwt_jwks_cache_s, 300);
    assert_int_equal(c.jwt_jwks_min_refresh_s, 30);
    assert_int_equal(c.jwt_jwks_timeout_ms, 5000);
    assert_int_equal(c.max_uri_bytes, 8192);
    assert_int_equal(c.max_header_bytes, 32768);
    assert_int_equal(c.max_headers, 100);
    assert_int_equal(c.max_json_depth, 64);
    assert_int_equal(c.header_timeout_ms, 10000);
    assert_int_equal(c.idle_timeout_ms, 60000);
    assert_int_equal(c.body_timeout_ms, 30000);
    assert_int_equal(c.sse_max_per_principal, 32);
    assert_string_equal(c.cors_origins, "");
    assert_string_equal(c.rate_limits, "");
    assert_int_equal(c.tenant_settings_cache_ms, 5000);
    assert_int_equal(c.idempotency_ttl_s, 86400);
    assert_int_equal(c.tenant_max_running, 64);
    assert_int_equal(c.reaper_interval_ms, 10000);
    assert_int_equal(c.reconcile_interval_ms, 5000);
    assert_int_equal(c.retry_base_ms, 1000);
    assert_int_equal(c.retry_max_ms, 300000);
    assert_int_equal(c.dead_letter_max, 10000);
    assert_string_equal(c.llm_providers, "");
    assert_string_equal(c.llm_api_keys, "");
    assert_string_equal(c.llm_model, "");
    assert_int_equal(c.llm_connect_timeout_ms, 5000);
    assert_int_equal(c.llm_first_byte_timeout_ms, 30000);
    assert_int_equal(c.llm_total_timeout_ms, 120000);
    assert_int_equal(c.llm_max_retries, 2);
    assert_int_equal(c.llm_retry_base_ms, 250);
    assert_int_equal(c.llm_retry_max_ms, 8000);
    assert_int_equal(c.llm_circuit_failures, 5);
    assert_int_equal(c.llm_circuit_open_ms, 30000);
    assert_int_equal(c.builtin_delta_pause_ms, 10);
    assert_int_equal(c.agent_max_iterations, 8);
    assert_int_equal(c.agent_run_timeout_ms, 120000);
    assert_int_equal(c.session_context_bytes, 8192);
    assert_int_equal(c.output_max_bytes, 65536);
}

/* The table as config.h exposes it: unique AGENTGATE_ names, a default for
 * each, NULL past the end, and the defaults a reader would look up. */
static void test_setting_table(void **state)
{
    (void)state;
    size_t n = config_setting_count();
    assert_true(n > 0);
    for (size_t i = 0; i < n; i++) {
        const char *name = config_setting_name(i);
        assert_non_null(name);
        assert_int_equal(strncmp(name, "AGENTGATE_", 10), 0);
        assert_non_null(config_setting_default(i));
        for (size_t j = 0; j < i; j++)
            if (strcmp(config_setting_name(j), name) == 0)
                fail_msg("%s is in the table twice", name);
    }
    assert_null(config_setting_name(n));
    assert_null(config_setting_default(n));
    assert_null(config_setting_name((size_t)-1));

    int seen = 0;
    for (size_t i = 0; i < n; i++) {
        const char *name = config_setting_name(i), *def = config_setting_default(i);
        if (strcmp(name, "AGENTGATE_LISTEN") == 0) {
            assert_string_equal(def, "127.0.0.1:8080");
            seen++;
        } else if (strcmp(name, "AGENTGATE_REDIS_URL") == 0) {
            assert_string_equal(def, "redis://127.0.0.1:6379/0");
            seen++;
        } else if (strcmp(name, "AGENTGATE_GATEWAY_THREADS") == 0) {
            assert_string_equal(def, "");       /* computed: the cores */
            seen++;
        } else if (strcmp(name, "AGENTGATE_LOG_LEVEL") == 0) {
            assert_string_equal(def, "info");
            seen++;
        }
    }
    assert_int_equal(seen, 4);
}

/* Every default is a value like any other: giving each non-empty default
 * explicitly, in the environment or in a file, changes nothing. */
static void test_defaults_are_values(void **state)
{
    (void)state;
    ag_config want, got;
    char err[512] = "";
    memset(&want, 0, sizeof want);
    memset(&got, 0, sizeof got);
    assert_int_equal(config_load(&want, NULL, err, sizeof err), 0);

    char text[8192] = "";
    size_t len = 0;
    for (size_t i = 0; i < config_setting_count(); i++) {
        const char *name = config_setting_name(i), *def = config_setting_default(i);
        if (def[0] == '\0')
            continue;
        assert_int_equal(setenv(name, def, 1), 0);
        int n = snprintf(text + len, sizeof text - len, "%s=%s\n", name, def);
        assert_true(n > 0 && (size_t)n < sizeof text - len);
        len += (size_t)n;
    }
    if (config_load(&got, NULL, err, sizeof err) != 0)
        fail_msg("the defaults given in the environment were refused: %s", err);
    assert_memory_equal(&got, &want, sizeof got);

    clear_env(NULL);
    memset(&got, 0, sizeof got);
    if (load_text(&got, text, err, sizeof err) != 0)
        fail_msg("the defaults given in a file were refused: %s", err);
    assert_memory_equal(&got, &want, sizeof got);
}

static void test_file_syntax(void **state)
{
    (void)state;
    ag_config c;
    char err[256] = "";
    int rc = load_text(&c,
        "# agentgate settings\n"
        "\n"
        "   # an indented comment\n"
        "AGENTGATE_DATABASE_URL=postgresql://u@db:5433/x?sslmode=disable\n"
        "AGENTGATE_JWT_SECRET=\"s3cret with spaces # and a hash\"\n"
        "AGENTGATE_JWT_ISSUER='https://issuer.example'\n"
        "export AGENTGATE_EVENT_RING_SIZE=50\n"
        "  AGENTGATE_WORKER_QUEUES = demo,test  \n"
        "AGENTGATE_JWT_AUDIENCE=\"\"\n"
        "AGENTGATE_LOG_LEVEL=debug\r\n"
        "AGENTGATE_MAX_BODY_BYTES=2048\n"
        "PATH=/somewhere/else\n"
        "OTHER_APP_SETTING=whatever\n"
        "AGENTGATE_WORKER_CONCURRENCY=9",   /* no final newline */
        err, sizeof err);
    assert_int_equal(rc, 0);
    assert_string_equal(c.database_url, "postgresql://u@db:5433/x?sslmode=disable");
    assert_string_equal(c.jwt_secret, "s3cret with spaces # and a hash");
    assert_string_equal(c.jwt_issuer, "https://issuer.example");
    assert_int_equal(c.event_ring_size, 50);
    assert_string_equal(c.worker_queues, "demo,test");
    assert_string_equal(c.jwt_audience, "");
    assert_string_equal(c.log_level, "debug");
    assert_int_equal(c.max_body_bytes, 2048);
    assert_int_equal(c.worker_concurrency, 9);
    /* Untouched settings keep their defaults. */
    assert_int_equal(c.lease_ms, 30000);
}

static void test_file_last_wins(void **state)
{
    (void)state;
    ag_config c;
    char err[256];
    assert_int_equal(load_text(&c, "AGENTGATE_LEASE_MS=5000\nAGENTGATE_LEASE_MS=6000\n",
                               err, sizeof err), 0);
    assert_int_equal(c.lease_ms, 6000);
}

static void test_file_unknown_key(void **state)
{
    (void)state;
    expect_load_error("# typo below\n\nAGENTGATE_EVENT_RING_SIZ=5\n",
                      "AGENTGATE_EVENT_RING_SIZ", ":3:", "unknown", NULL);
}

static void test_file_syntax_errors(void **state)
{
    (void)state;
    expect_load_error("AGENTGATE_LOG_LEVEL=info\nJUST_A_WORD\n", ":2:", "KEY=VALUE", NULL);
    expect_load_error("AGENTGATE_JWT_SECRET=\"abc\n", ":1:", "AGENTGATE_JWT_SECRET",
                      "quote", NULL);
    expect_load_error("AGENTGATE_JWT_SECRET='abc\"\n", ":1:", "quote", NULL);
    expect_load_error("AGENTGATE_JWT_SECRET=\"\n", ":1:", "quote", NULL);
    expect_load_error("=value\n", ":1:", "key", NULL);
    expect_load_error("BAD-KEY=1\n", ":1:", "key", NULL);
    expect_load_error("\n\nAGENTGATE_GATEWAY_THREADS=lots\n", ":3:",
                      "AGENTGATE_GATEWAY_THREADS", "1..256", NULL);
}

static void test_file_missing(void **state)
{
    (void)state;
    ag_config c;
    memset(&c, 0x11, sizeof c);
    ag_config before = c;
    char err[256] = "";
    assert_int_equal(config_load(&c, "/nonexistent/agentgate.env", err, sizeof err), -1);
    assert_non_null(strstr(err, "/nonexistent/agentgate.env"));
    assert_memory_equal(&c, &before, sizeof c);
}

static void test_file_long_line(void **state)
{
    (void)state;
    size_t n = 10000;
    char *text = malloc(n + 64);
    assert_non_null(text);
    strcpy(text, "AGENTGATE_JWT_SECRET=");
    size_t off = strlen(text);
    memset(text + off, 'x', n);
    strcpy(text + off + n, "\nAGENTGATE_LOG_LEVEL=info\n");
    expect_load_error(text, ":1:", "longer", NULL);
    free(text);
}

static void test_string_too_long(void **state)
{
    (void)state;
    char text[1024];
    int n = snprintf(text, sizeof text, "AGENTGATE_JWT_SECRET=");
    memset(text + n, 'k', 600);
    text[n + 600] = '\0';
    expect_load_error(text, "AGENTGATE_JWT_SECRET", "too long", NULL);

    /* The secret itself must never be echoed into the error. */
    ag_config c;
    char err[512];
    assert_int_equal(load_text(&c, text, err, sizeof err), -1);
    assert_null(strstr(err, "kkkkkkkk"));

    /* Exactly the field size minus the NUL fits. */
    ag_config d;
    char big[700];
    memset(big, 'w', 511);
    big[511] = '\0';
    assert_int_equal(setenv("AGENTGATE_JWT_SECRET", big, 1), 0);
    assert_int_equal(config_load(&d, NULL, err, sizeof err), 0);
    assert_int_equal(strlen(d.jwt_secret), 511);
    big[511] = 'w';
    big[512] = '\0';
    assert_int_equal(setenv("AGENTGATE_JWT_SECRET", big, 1), 0);
    assert_int_equal(config_load(&d, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "AGENTGATE_JWT_SECRET"));
    unsetenv("AGENTGATE_JWT_SECRET");
}

static void test_env_overrides_file(void **state)
{
    (void)state;
    ag_config c;
    char err[256];
    assert_int_equal(setenv("AGENTGATE_EVENT_RING_SIZE", "20", 1), 0);
    assert_int_equal(setenv("AGENTGATE_JWT_SECRET", "from-env", 1), 0);
    assert_int_equal(load_text(&c,
        "AGENTGATE_EVENT_RING_SIZE=10\n"
        "AGENTGATE_JWT_SECRET=from-file\n"
        "AGENTGATE_HEARTBEAT_MS=500\n", err, sizeof err), 0);
    assert_int_equal(c.event_ring_size, 20);
    assert_string_equal(c.jwt_secret, "from-env");
    assert_int_equal(c.heartbeat_ms, 500);     /* the file still fills the rest */

    /* An empty environment value is a value: it clears a string. */
    assert_int_equal(setenv("AGENTGATE_JWT_SECRET", "", 1), 0);
    assert_int_equal(config_load(&c, NULL, err, sizeof err), 0);
    assert_string_equal(c.jwt_secret, "");
    unsetenv("AGENTGATE_EVENT_RING_SIZE");
    unsetenv("AGENTGATE_JWT_SECRET");
}

static void test_env_unknown_ignored(void **state)
{
    (void)state;
    /* Other tools share the prefix (AGENTGATE_BIN in the test harness). */
    ag_config c;
    char err[256];
    assert_int_equal(setenv("AGENTGATE_BIN", "/usr/bin", 1), 0);
    assert_int_equal(config_load(&c, NULL, err, sizeof err), 0);
    unsetenv("AGENTGATE_BIN");
}

/* Expects the environment value for name to be refused with an error
 * naming the variable, leaving cfg as it was. */
static void expect_env_error(const char *name, const char *value)
{
    ag_config c;
    memset(&c, 0x33, sizeof c);
    ag_config before = c;
    char err[512] = "";
    assert_int_equal(setenv(name, value, 1), 0);
    int rc = config_load(&c, NULL, err, sizeof err);
    unsetenv(name);
    if (rc != -1)
        fail_msg("%s=\"%s\" was accepted", name, value);
    assert_memory_equal(&c, &before, sizeof c);
    if (strstr(err, name) == NULL)
        fail_msg("error \"%s\" does not name %s", err, name);
}

static void expect_env_int(const char *name, const char *value, size_t offset,
                           long long want)
{
    ag_config c;
    char err[256] = "";
    assert_int_equal(setenv(name, value, 1), 0);
    int rc = config_load(&c, NULL, err, sizeof err);
    unsetenv(name);
    if (rc != 0)
        fail_msg("%s=%s refused: %s", name, value, err);
    if (strstr(name, "BYTES"))
        assert_int_equal(*(size_t *)(void *)((char *)&c + offset), (size_t)want);
    else
        assert_int_equal(*(int *)(void *)((char *)&c + offset), (int)want);
}

static void test_integers_strict(void **state)
{
    (void)state;
    const char *bad[] = { "", " 4", "4 ", "+4", "4abc", "abc", "0x10", "1e3", "4.0",
                          "-", "99999999999999999999999", "0", "257", "-1" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        expect_env_error("AGENTGATE_GATEWAY_THREADS", bad[i]);

    expect_env_int("AGENTGATE_GATEWAY_THREADS", "1", offsetof(ag_config, gateway_threads), 1);
    expect_env_int("AGENTGATE_GATEWAY_THREADS", "256", offsetof(ag_config, gateway_threads), 256);
    expect_env_int("AGENTGATE_EVENT_RING_SIZE", "1000000", offsetof(ag_config, event_ring_size), 1000000);
    expect_env_error("AGENTGATE_EVENT_RING_SIZE", "1000001");
    expect_env_error("AGENTGATE_EVENT_RING_SIZE", "0");
    expect_env_int("AGENTGATE_SHUTDOWN_GRACE_MS", "0", offsetof(ag_config, shutdown_grace_ms), 0);
    expect_env_int("AGENTGATE_MAX_BODY_BYTES", "5000000", offsetof(ag_config, max_body_bytes), 5000000);
    expect_env_error("AGENTGATE_MAX_BODY_BYTES", "-5");
    expect_env_error("AGENTGATE_SSE_MAX_BUFFER_BYTES", "1x");
    expect_env_error("AGENTGATE_JWT_LEEWAY_S", "-1");
}

/* The MCP settings: defaults, and each bound on both sides. */
static void test_mcp_settings(void **state)
{
    (void)state;
    ag_config c;
    char err[256];
    assert_int_equal(config_load(&c, NULL, err, sizeof err), 0);
    assert_string_equal(c.mcp_url_allowlist, "");
    assert_string_equal(c.mcp_servers_file, "");
    assert_int_equal(c.mcp_call_timeout_ms, 30000);
    assert_int_equal(c.mcp_connect_timeout_ms, 10000);
    assert_int_equal(c.mcp_result_max_bytes, 262144);
    assert_int_equal(c.mcp_max_servers, 32);

    static const struct { const char *name; size_t offset; const char *lo, *hi, *below, *above; }
    bounds[] = {
        { "AGENTGATE_MCP_CALL_TIMEOUT_MS", offsetof(ag_config, mcp_call_timeout_ms),
          "100", "3600000", "99", "3600001" },
        { "AGENTGATE_MCP_CONNECT_TIMEOUT_MS", offsetof(ag_config, mcp_connect_timeout_ms),
          "100", "600000", "99", "600001" },
        { "AGENTGATE_MCP_RESULT_MAX_BYTES", offsetof(ag_config, mcp_result_max_bytes),
          "1024", "16777216", "1023", "16777217" },
        { "AGENTGATE_MCP_MAX_SERVERS", offsetof(ag_config, mcp_max_servers),
          "1", "1000", "0", "1001" },
    };
    for (size_t i = 0; i < sizeof bounds / sizeof *bounds; i++) {
        expect_env_int(bounds[i].name, bounds[i].lo, bounds[i].offset, atoll(bounds[i].lo));
        expect_env_int(bounds[i].name, bounds[i].hi, bounds[i].offset, atoll(bounds[i].hi));
        expect_env_error(bounds[i].name, bounds[i].below);
        expect_env_error(bounds[i].name, bounds[i].above);
    }

    const char *list = "https://mcp.example.com/,http://127.0.0.1:18600/mcp";
    assert_int_equal(setenv("AGENTGATE_MCP_URL_ALLOWLIST", list, 1), 0);
    assert_int_equal(setenv("AGENTGATE_MCP_SERVERS_FILE", "/etc/agentgate/mcp.json", 1), 0);
    int rc = config_load(&c, NULL, err, sizeof err);
    unsetenv("AGENTGATE_MCP_URL_ALLOWLIST");
    unsetenv("AGENTGATE_MCP_SERVERS_FILE");
    assert_int_equal(rc, 0);
    assert_string_equal(c.mcp_url_allowlist, list);
    assert_string_equal(c.mcp_servers_file, "/etc/agentgate/mcp.json");
}

static void test_choices(void **state)
{
    (void)state;
    expect_env_error("AGENTGATE_LOG_LEVEL", "verbose");
    expect_env_error("AGENTGATE_LOG_LEVEL", "");
    expect_env_error("AGENTGATE_LOG_LEVEL", "INFO");
    expect_env_error("AGENTGATE_JWT_ALG", "none");
    expect_env_error("AGENTGATE_JWT_ALG", "HS2");

    ag_config c;
    char err[256];
    assert_int_equal(setenv("AGENTGATE_LOG_LEVEL", "warn", 1), 0);
    assert_int_equal(config_load(&c, NULL, err, sizeof err), 0);
    assert_string_equal(c.log_level, "warn");
    unsetenv("AGENTGATE_LOG_LEVEL");
}

static void test_lease_exceeds_heartbeat(void **state)
{
    (void)state;
    expect_load_error("AGENTGATE_HEARTBEAT_MS=5000\nAGENTGATE_LEASE_MS=5000\n",
                      "AGENTGATE_LEASE_MS", "AGENTGATE_HEARTBEAT_MS", NULL);
}

/* A connection string libpq cannot parse is refused when the settings
 * load, naming the variable; one it can parse (URI or keyword form) is
 * taken as it is, whether or not a server is there. */
static void test_connection_strings(void **state)
{
    (void)state;
    const char *bad[] = { "host=127.0.0.1 port", "postgresql://a@h/db?nope=1",
                          "host='unterminated", "postgresql://[::1/db" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        expect_env_error("AGENTGATE_DATABASE_URL", bad[i]);
        expect_env_error("AGENTGATE_MIGRATE_DATABASE_URL", bad[i]);
    }
    ag_config c;
    char err[512] = "";
    assert_int_equal(setenv("AGENTGATE_DATABASE_URL", "host=db.example port=5433 dbname=x", 1), 0);
    assert_int_equal(setenv("AGENTGATE_MIGRATE_DATABASE_URL", "postgresql://o:p@db.example/x", 1), 0);
    int rc = config_load(&c, NULL, err, sizeof err);
    unsetenv("AGENTGATE_DATABASE_URL");
    unsetenv("AGENTGATE_MIGRATE_DATABASE_URL");
    if (rc != 0)
        fail_msg("valid connection strings refused: %s", err);
    assert_string_equal(c.database_url, "host=db.example port=5433 dbname=x");
    assert_int_equal(c.migrate_wait_s, 60);
    expect_env_int("AGENTGATE_MIGRATE_WAIT_S", "0", offsetof(ag_config, migrate_wait_s), 0);
    expect_env_error("AGENTGATE_MIGRATE_WAIT_S", "-1");
    expect_env_error("AGENTGATE_MIGRATE_WAIT_S", "86401");
}

static void expect_listen(const char *value, const char *host, int port)
{
    ag_config c;
    char err[256] = "";
    assert_int_equal(setenv("AGENTGATE_LISTEN", value, 1), 0);
    int rc = config_load(&c, NULL, err, sizeof err);
    unsetenv("AGENTGATE_LISTEN");
    if (rc != 0)
        fail_msg("AGENTGATE_LISTEN=%s refused: %s", value, err);
    assert_string_equal(c.listen_addr, host);
    assert_int_equal(c.listen_port, port);
}

static void test_listen(void **state)
{
    (void)state;
    expect_listen("0.0.0.0:9000", "0.0.0.0", 9000);
    expect_listen("localhost:80", "localhost", 80);
    expect_listen("gw-1.internal:65535", "gw-1.internal", 65535);
    expect_listen("[::1]:8081", "::1", 8081);
    expect_listen("[::]:1", "::", 1);
    expect_listen("[2001:db8::7]:443", "2001:db8::7", 443);

    const char *bad[] = { "localhost", ":80", "host:", "host:0", "host:65536",
                          "host:80x", "host: 80", "[::1]", "[::1]:", "::1:80",
                          "[::1:80", "[zz]:80", "[]:80", "[127.0.0.1]:80",
                          "a b:80", "host:80:90", "" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        expect_env_error("AGENTGATE_LISTEN", bad[i]);

    /* A host longer than listen_addr is refused, not cut. */
    char longhost[200];
    memset(longhost, 'h', 140);
    strcpy(longhost + 140, ":80");
    expect_env_error("AGENTGATE_LISTEN", longhost);
}

static void expect_redis(const char *url, const char *host, int port, int db)
{
    ag_config c;
    memset(&c, 0, sizeof c);
    if (config_parse_redis_url(&c, url) != 0)
        fail_msg("%s refused", url);
    assert_string_equal(c.redis_host, host);
    assert_int_equal(c.redis_port, port);
    assert_int_equal(c.redis_db, db);
}

static void test_redis_url(void **state)
{
    (void)state;
    expect_redis("redis://127.0.0.1:6379/0", "127.0.0.1", 6379, 0);
    expect_redis("redis://cache", "cache", 6379, 0);
    expect_redis("redis://cache/", "cache", 6379, 0);
    expect_redis("redis://cache:6380", "cache", 6380, 0);
    expect_redis("redis://cache/5", "cache", 6379, 5);
    expect_redis("redis://cache:7000/15", "cache", 7000, 15);
    expect_redis("redis://[::1]:7001/3", "::1", 7001, 3);
    expect_redis("redis://[::1]", "::1", 6379, 0);
    expect_redis("REDIS://Cache", "Cache", 6379, 0);   /* schemes ignore case */

    const char *bad[] = { "", "cache:6379", "http://cache", "rediss://cache",
                          "redis://", "redis:///0", "redis://:6379", "redis://cache:",
                          "redis://cache:0", "redis://cache:65536", "redis://cache:abc",
                          "redis://cache/x", "redis://cache/-1", "redis://cache/1/2",
                          "redis://cache/1?x=y", "redis://user@cache",
                          "redis://user:@cache", "redis://u:p%4@cache", "redis://u:p%zz@cache",
                          "redis://u:p%00@cache", "redis://u:pw@", "rediss://u:pw@cache",
                          "redis://[::1", "redis://::1:6379" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        ag_config c;
        memset(&c, 0x77, sizeof c);
        ag_config before = c;
        if (config_parse_redis_url(&c, bad[i]) != -1)
            fail_msg("\"%s\" accepted", bad[i]);
        assert_memory_equal(&c, &before, sizeof c);
    }
    ag_config c;
    assert_int_equal(config_parse_redis_url(&c, NULL), -1);

    /* Through config_load, with the variable named in the error. */
    expect_env_error("AGENTGATE_REDIS_URL", "redis://cache:99999");
    ag_config d;
    char err[256];
    assert_int_equal(setenv("AGENTGATE_REDIS_URL", "redis://r1:6390/2", 1), 0);
    assert_int_equal(config_load(&d, NULL, err, sizeof err), 0);
    unsetenv("AGENTGATE_REDIS_URL");
    assert_string_equal(d.redis_host, "r1");
    assert_int_equal(d.redis_port, 6390);
    assert_int_equal(d.redis_db, 2);
}

static void expect_redis_auth(const char *url, const char *host, const char *user,
                              const char *password)
{
    ag_config c;
    memset(&c, 0, sizeof c);
    if (config_parse_redis_url(&c, url) != 0)
        fail_msg("%s refused", url);
    assert_string_equal(c.redis_host, host);
    assert_string_equal(c.redis_url_username, user);
    assert_string_equal(c.redis_url_password, password);
}

/* Expects config_load to refuse the settings given as name, value pairs
 * (NULL-terminated), with an error containing want and never secret. */
static void expect_env_refused(const char *want, const char *secret, ...)
{
    va_list ap;
    va_start(ap, secret);
    for (const char *n; (n = va_arg(ap, const char *)) != NULL;)
        assert_int_equal(setenv(n, va_arg(ap, const char *), 1), 0);
    va_end(ap);
    ag_config c;
    char err[512] = "";
    int rc = config_load(&c, NULL, err, sizeof err);
    clear_env(NULL);
    if (rc != -1)
        fail_msg("accepted; wanted an error with \"%s\"", want);
    if (strstr(err, want) == NULL)
        fail_msg("error \"%s\" does not say \"%s\"", err, want);
    if (secret != NULL && strstr(err, secret) != NULL)
        fail_msg("error \"%s\" shows the secret", err);
}

static void test_redis_credentials(void **state)
{
    (void)state;
    expect_redis_auth("redis://cache", "cache", "", "");
    expect_redis_auth("redis://app:s3cret@cache:6380/1", "cache", "app", "s3cret");
    expect_redis_auth("redis://:s3cret@cache", "cache", "", "s3cret");
    /* Percent-escapes, and an '@' or ':' left unescaped in the password. */
    expect_redis_auth("redis://a%40b:p%2Fw%3a@cache", "cache", "a@b", "p/w:");
    expect_redis_auth("redis://app:p@ss:w@cache", "cache", "app", "p@ss:w");

    /* A refused URL never shows its password. */
    expect_env_refused("AGENTGATE_REDIS_URL", "hunter22",
                      "AGENTGATE_REDIS_URL", "redis://app:hunter22@cache:0", NULL);
    /* Credentials come from one place. */
    expect_env_refused("must be unset", "hunter22",
                      "AGENTGATE_REDIS_URL", "redis://app:hunter22@cache",
                      "AGENTGATE_REDIS_PASSWORD", "other", NULL);
    expect_env_refused("needs AGENTGATE_REDIS_PASSWORD", NULL,
                      "AGENTGATE_REDIS_USERNAME", "app", NULL);

    ag_config c;
    char err[256] = "";
    assert_int_equal(setenv("AGENTGATE_REDIS_USERNAME", "app", 1), 0);
    assert_int_equal(setenv("AGENTGATE_REDIS_PASSWORD", "pw", 1), 0);
    assert_int_equal(config_load(&c, NULL, err, sizeof err), 0);
    clear_env(NULL);
    assert_string_equal(c.redis_username, "app");
    assert_string_equal(c.redis_password, "pw");
    assert_string_equal(c.redis_url_password, "");
}

static void test_redis_sentinels(void **state)
{
    (void)state;
    ag_config c;
    char err[256] = "";
    assert_int_equal(setenv("AGENTGATE_REDIS_SENTINELS", "s1:26379,[::1]:26380,10.0.0.3:26381", 1), 0);
    assert_int_equal(setenv("AGENTGATE_REDIS_SENTINEL_MASTER", "mymaster", 1), 0);
    assert_int_equal(setenv("AGENTGATE_REDIS_SENTINEL_PASSWORD", "spw", 1), 0);
    if (config_load(&c, NULL, err, sizeof err) != 0)
        fail_msg("refused: %s", err);
    clear_env(NULL);
    assert_string_equal(c.redis_sentinel_master, "mymaster");
    assert_string_equal(c.redis_sentinel_password, "spw");

    expect_env_refused("go together", NULL, "AGENTGATE_REDIS_SENTINELS", "s1:26379", NULL);
    expect_env_refused("go together", NULL, "AGENTGATE_REDIS_SENTINEL_MASTER", "m", NULL);
    expect_env_refused("AGENTGATE_REDIS_SENTINELS is not", "spw",
                      "AGENTGATE_REDIS_SENTINEL_PASSWORD", "spw", NULL);
    const char *bad[] = { "s1", "s1:0", "s1:26379,", ",s1:26379", "s1:26379,,s2:26379",
                          "s1:26379 s2:26379", "[::1]" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        expect_env_refused("AGENTGATE_REDIS_SENTINELS", NULL, "AGENTGATE_REDIS_SENTINELS",
                          bad[i], "AGENTGATE_REDIS_SENTINEL_MASTER", "m", NULL);
    expect_env_refused("more than 8 sentinels", NULL, "AGENTGATE_REDIS_SENTINELS",
                      "a:1,b:1,c:1,d:1,e:1,f:1,g:1,h:1,i:1",
                      "AGENTGATE_REDIS_SENTINEL_MASTER", "m", NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_defaults, clear_env),
        cmocka_unit_test_setup(test_defaults_rest, clear_env),
        cmocka_unit_test_setup(test_setting_table, clear_env),
        cmocka_unit_test_setup(test_defaults_are_values, clear_env),
        cmocka_unit_test_setup(test_file_syntax, clear_env),
        cmocka_unit_test_setup(test_file_last_wins, clear_env),
        cmocka_unit_test_setup(test_file_unknown_key, clear_env),
        cmocka_unit_test_setup(test_file_syntax_errors, clear_env),
        cmocka_unit_test_setup(test_file_missing, clear_env),
        cmocka_unit_test_setup(test_file_long_line, clear_env),
        cmocka_unit_test_setup(test_string_too_long, clear_env),
        cmocka_unit_test_setup(test_env_overrides_file, clear_env),
        cmocka_unit_test_setup(test_env_unknown_ignored, clear_env),
        cmocka_unit_test_setup(test_integers_strict, clear_env),
        cmocka_unit_test_setup(test_choices, clear_env),
        cmocka_unit_test_setup(test_lease_exceeds_heartbeat, clear_env),
        cmocka_unit_test_setup(test_listen, clear_env),
        cmocka_unit_test_setup(test_redis_url, clear_env),
        cmocka_unit_test_setup(test_redis_credentials, clear_env),
        cmocka_unit_test_setup(test_redis_sentinels, clear_env),
        cmocka_unit_test_setup(test_mcp_settings, clear_env),
        cmocka_unit_test_setup(test_connection_strings, clear_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
