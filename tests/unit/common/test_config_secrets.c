/*
 * test_config_secrets.c - secret settings read from files: NAME_FILE in
 * the environment and in the env file, systemd credentials found in
 * $CREDENTIALS_DIRECTORY, one trailing line ending dropped, a secret given
 * two ways refused, errors that never echo a secret, the database
 * password merged into the database URL, and which settings are secrets.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include <libpq-fe.h>

#include "config.h"

extern char **environ;

/* Removes every AGENTGATE_* variable and CREDENTIALS_DIRECTORY so the
 * host environment cannot leak into a test. */
static int clear_env(void **state)
{
    (void)state;
    unsetenv("CREDENTIALS_DIRECTORY");
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

/* Writes len bytes of data to a new temporary file named into path. */
static void write_file(char path[64], const char *data, size_t len)
{
    snprintf(path, 64, "/tmp/agentgate-test-secret-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
}

static void test_env_file_var(void **state)
{
    (void)state;
    char path[64];
    write_file(path, "s3cr3t-from-file\n", 17);
    setenv("AGENTGATE_JWT_SECRET_FILE", path, 1);
    ag_config cfg;
    char err[512] = "";
    assert_int_equal(config_load(&cfg, NULL, err, sizeof err), 0);
    assert_string_equal(cfg.jwt_secret, "s3cr3t-from-file");
    unlink(path);
}

static void test_line_endings(void **state)
{
    (void)state;
    char path[64];
    ag_config cfg;
    char err[512] = "";

    /* CRLF: one line ending goes; a second newline is part of the value. */
    write_file(path, "k1=a,k2=b\r\n", 11);
    setenv("AGENTGATE_LLM_API_KEYS_FILE", path, 1);
    assert_int_equal(config_load(&cfg, NULL, err, sizeof err), 0);
    assert_string_equal(cfg.llm_api_keys, "k1=a,k2=b");
    unlink(path);

    write_file(path, "x \n\n", 4);
    setenv("AGENTGATE_LLM_API_KEYS_FILE", path, 1);
    assert_int_equal(config_load(&cfg, NULL, err, sizeof err), 0);
    assert_string_equal(cfg.llm_api_keys, "x \n");
    unlink(path);

    write_file(path, "no-newline", 10);
    setenv("AGENTGATE_LLM_API_KEYS_FILE", path, 1);
    assert_int_equal(config_load(&cfg, NULL, err, sizeof err), 0);
    assert_string_equal(cfg.llm_api_keys, "no-newline");
    unlink(path);
}

static void test_database_url_file(void **state)
{
    (void)state;
    char path[64];
    const char *url = "postgresql://svc:pw%40x@db1:5432,db2:5432/ag?target_session_attrs=read-write";
    write_file(path, url, strlen(url));
    setenv("AGENTGATE_DATABASE_URL_FILE", path, 1);
    ag_config cfg;
    char err[512] = "";
    assert_int_equal(config_load(&cfg, NULL, err, sizeof err), 0);
    assert_string_equal(cfg.database_url, url);
    unlink(path);
}

/* Expects config_load(env_file) to fail with an error holding want and not
 * holding the secret text hidden. */
static void expect_error(const char *env_file, const char *want, const char *hidden)
{
    ag_config cfg, before;
    memset(&cfg, 0x5a, sizeof cfg);
    before = cfg;
    char err[512] = "";
    assert_int_equal(config_load(&cfg, env_file, err, sizeof err), -1);
    assert_memory_equal(&cfg, &before, sizeof cfg);
    if (strstr(err, want) == NULL)
        fail_msg("error \"%s\" lacks \"%s\"", err, want);
    if (hidden != NULL && strstr(err, hidden) != NULL)
        fail_msg("error \"%s\" echoes the secret", err);
    assert_null(strchr(err, '\n'));
}

static void test_both_refused(void **state)
{
    (void)state;
    char path[64];
    write_file(path, "from-file", 9);
    setenv("AGENTGATE_JWT_SECRET", "from-env", 1);
    setenv("AGENTGATE_JWT_SECRET_FILE", path, 1);
    expect_error(NULL, "AGENTGATE_JWT_SECRET and AGENTGATE_JWT_SECRET_FILE", "from-");
    /* An empty value still counts: the operator set it. */
    setenv("AGENTGATE_JWT_SECRET", "", 1);
    expect_error(NULL, "one way only", NULL);
    unlink(path);
}

static void test_missing_file(void **state)
{
    (void)state;
    setenv("AGENTGATE_JWT_SECRET_FILE", "/nonexistent/agentgate-secret", 1);
    expect_error(NULL, "AGENTGATE_JWT_SECRET_FILE: /nonexistent/agentgate-secret: "
                 "No such file or directory", NULL);
    setenv("AGENTGATE_JWT_SECRET_FILE", "", 1);
    expect_error(NULL, "AGENTGATE_JWT_SECRET_FILE: empty path", NULL);
}

static void test_bad_content(void **state)
{
    (void)state;
    char path[64];
    /* Longer than the field: refused, never truncated, never echoed. */
    char big[1200];
    memset(big, 'q', sizeof big);
    write_file(path, big, sizeof big);
    setenv("AGENTGATE_JWT_SECRET_FILE", path, 1);
    expect_error(NULL, "AGENTGATE_JWT_SECRET: value too long", "qqqq");
    unlink(path);

    write_file(path, "ab\0cd", 5);
    setenv("AGENTGATE_JWT_SECRET_FILE", path, 1);
    expect_error(NULL, "holds a NUL byte", NULL);
    unlink(path);

    /* A malformed URL read from a file is reported without its text. */
    write_file(path, "redis://h:notaport/0", 20);
    unsetenv("AGENTGATE_JWT_SECRET_FILE");
    setenv("AGENTGATE_REDIS_URL_FILE", path, 1);
    expect_error(NULL, "AGENTGATE_REDIS_URL:", "notaport");
    unlink(path);
}

static void test_not_secret_has_no_file(void **state)
{
    (void)state;
    /* Only secrets take _FILE; others are unknown in an env file. */
    char path[64], env[128];
    write_file(path, "info", 4);
    snprintf(env, sizeof env, "AGENTGATE_LOG_LEVEL_FILE=%s\n", path);
    char envpath[64];
    write_file(envpath, env, strlen(env));
    expect_error(envpath, "unknown setting AGENTGATE_LOG_LEVEL_FILE", NULL);
    unlink(envpath);
    unlink(path);
}

static void test_env_file(void **state)
{
    (void)state;
    char secret[64], envpath[64], text[256];
    write_file(secret, "file-secret\n", 12);
    snprintf(text, sizeof text, "AGENTGATE_JWT_SECRET_FILE=\"%s\"\n", secret);
    write_file(envpath, text, strlen(text));
    ag_config cfg;
    char err[512] = "";
    assert_int_equal(config_load(&cfg, envpath, err, sizeof err), 0);
    assert_string_equal(cfg.jwt_secret, "file-secret");

    /* The environment overrides the env file, as for every setting. */
    setenv("AGENTGATE_JWT_SECRET", "env-secret", 1);
    assert_int_equal(config_load(&cfg, envpath, err, sizeof err), 0);
    assert_string_equal(cfg.jwt_secret, "env-secret");
    unsetenv("AGENTGATE_JWT_SECRET");
    unlink(envpath);

    /* Both in one env file: refused, wherever the lines are. */
    snprintf(text, sizeof text, "AGENTGATE_JWT_SECRET_FILE=%s\nAGENTGATE_LOG_LEVEL=info\n"
             "AGENTGATE_JWT_SECRET=inline\n", secret);
    write_file(envpath, text, strlen(text));
    expect_error(envpath, ":3: AGENTGATE_JWT_SECRET and AGENTGATE_JWT_SECRET_FILE are "
                 "both set", "inline");
    unlink(envpath);
    unlink(secret);
}

static void test_credentials(void **state)
{
    (void)state;
    char dir[] = "/tmp/agentgate-test-creds-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/AGENTGATE_JWT_SECRET", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("cred-secret\n", f);
    fclose(f);

    ag_config cfg;
    char err[512] = "";
    /* Without CREDENTIALS_DIRECTORY the directory means nothing. */
    assert_int_equal(config_load(&cfg, NULL, err, sizeof err), 0);
    assert_string_equal(cfg.jwt_secret, "");

    setenv("CREDENTIALS_DIRECTORY", dir, 1);
    assert_int_equal(config_load(&cfg, NULL, err, sizeof err), 0);
    assert_string_equal(cfg.jwt_secret, "cred-secret");
    /* Other secrets without a credential keep their defaults. */
    assert_string_equal(cfg.llm_api_keys, "");

    /* A credential and the variable: refused. */
    setenv("AGENTGATE_JWT_SECRET", "env", 1);
    expect_error(NULL, "AGENTGATE_JWT_SECRET and the credential AGENTGATE_JWT_SECRET", NULL);
    unsetenv("AGENTGATE_JWT_SECRET");

    /* A credential overrides the env file, like the environment. */
    char envpath[64];
    write_file(envpath, "AGENTGATE_JWT_SECRET=from-env-file\n", 35);
    assert_int_equal(config_load(&cfg, envpath, err, sizeof err), 0);
    assert_string_equal(cfg.jwt_secret, "cred-secret");
    unlink(envpath);

    /* Unreadable credential: one line naming it. */
    chmod(path, 0);
    if (access(path, R_OK) != 0)     /* root reads anything */
        expect_error(NULL, "credential AGENTGATE_JWT_SECRET: ", NULL);
    unlink(path);
    rmdir(dir);
    unsetenv("CREDENTIALS_DIRECTORY");
}

/* The value of keyword in conninfo as libpq reads it (static copy). */
static const char *conninfo_value(const char *conninfo, const char *keyword)
{
    static char out[512];
    char *why = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo, &why);
    if (opts == NULL)
        fail_msg("\"%s\" does not parse: %s", conninfo, why ? why : "?");
    out[0] = '\0';
    for (PQconninfoOption *o = opts; o->keyword; o++)
        if (strcmp(o->keyword, keyword) == 0 && o->val)
            snprintf(out, sizeof out, "%s", o->val);
    PQconninfoFree(opts);
    return out;
}

static void test_database_password_merged(void **state)
{
    (void)state;
    char path[64];
    /* Quotes, backslashes, spaces and an '@' survive the round trip. */
    const char *pw = "p'w\\ @x";
    write_file(path, pw, strlen(pw));
    setenv("AGENTGATE_DATABASE_PASSWORD_FILE", path, 1);
    setenv("AGENTGATE_DATABASE_URL",
           "postgresql://svc@db1:5432,db2:5433/ag?target_session_attrs=read-write"
           "&application_name=it", 1);
    ag_config cfg;
    char err[512] = "";
    assert_int_equal(config_load(&cfg, NULL, err, sizeof err), 0);
    assert_string_equal(conninfo_value(cfg.database_url, "password"), pw);
    assert_string_equal(conninfo_value(cfg.database_url, "host"), "db1,db2");
    assert_string_equal(conninfo_value(cfg.database_url, "port"), "5432,5433");
    assert_string_equal(conninfo_value(cfg.database_url, "user"), "svc");
    assert_string_equal(conninfo_value(cfg.database_url, "dbname"), "ag");
    assert_string_equal(conninfo_value(cfg.database_url, "target_session_attrs"), "read-write");
    assert_string_equal(conninfo_value(cfg.database_url, "application_name"), "it");
    /* Merged, then wiped from its own field. */
    assert_string_equal(cfg.database_password, "");

    /* A conninfo string works too. */
    setenv("AGENTGATE_DATABASE_URL", "host=/run/pg dbname=ag user=svc", 1);
    assert_int_equal(config_load(&cfg, NULL, err, sizeof err), 0);
    assert_string_equal(conninfo_value(cfg.database_url, "password"), pw);
    assert_string_equal(conninfo_value(cfg.database_url, "host"), "/run/pg");

    /* A URL that holds a password too: two sources. */
    setenv("AGENTGATE_DATABASE_URL", "postgresql://svc:other@db1/ag", 1);
    expect_error(NULL, "AGENTGATE_DATABASE_URL holds a password and "
                 "AGENTGATE_DATABASE_PASSWORD is set", "other");
    unlink(path);

    /* Without the setting the URL is left exactly as given. */
    unsetenv("AGENTGATE_DATABASE_PASSWORD_FILE");
    setenv("AGENTGATE_DATABASE_URL", "postgresql://svc@db1/ag", 1);
    assert_int_equal(config_load(&cfg, NULL, err, sizeof err), 0);
    assert_string_equal(cfg.database_url, "postgresql://svc@db1/ag");
}

static void test_secret_table(void **state)
{
    (void)state;
    const char *must[] = { "AGENTGATE_JWT_SECRET", "AGENTGATE_DATABASE_URL",
                           "AGENTGATE_MIGRATE_DATABASE_URL", "AGENTGATE_REDIS_URL",
                           "AGENTGATE_LLM_API_KEYS", "AGENTGATE_DATABASE_PASSWORD" };
    for (size_t k = 0; k < sizeof must / sizeof *must; k++) {
        bool found = false;
        for (size_t i = 0; i < config_setting_count(); i++)
            if (strcmp(config_setting_name(i), must[k]) == 0) {
                found = true;
                if (!config_setting_secret(i))
                    fail_msg("%s is not a secret", must[k]);
            }
        if (!found)
            fail_msg("%s is not a setting", must[k]);
    }
    for (size_t i = 0; i < config_setting_count(); i++)
        if (strcmp(config_setting_name(i), "AGENTGATE_LOG_LEVEL") == 0)
            assert_false(config_setting_secret(i));
    assert_false(config_setting_secret(config_setting_count()));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_env_file_var, clear_env),
        cmocka_unit_test_setup(test_line_endings, clear_env),
        cmocka_unit_test_setup(test_database_url_file, clear_env),
        cmocka_unit_test_setup(test_both_refused, clear_env),
        cmocka_unit_test_setup(test_missing_file, clear_env),
        cmocka_unit_test_setup(test_bad_content, clear_env),
        cmocka_unit_test_setup(test_not_secret_has_no_file, clear_env),
        cmocka_unit_test_setup(test_env_file, clear_env),
        cmocka_unit_test_setup(test_credentials, clear_env),
        cmocka_unit_test_setup(test_database_password_merged, clear_env),
        cmocka_unit_test_setup(test_secret_table, clear_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
