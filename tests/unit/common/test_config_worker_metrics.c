/*
 * test_config_worker_metrics.c - the worker metrics settings: the
 * listen address (empty is off; host:port, [v6]:port), the port offset
 * (empty is 0; a number 0..65534 that keeps the port a port), each bad
 * value one line of error; and config_parse_host_port on its own.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "config.h"

/* Loads the defaults with listen and offset set (NULL: left unset).
 * Returns config_load's result; err gets its message. */
static int load(ag_config *cfg, const char *listen, const char *offset, char *err,
                size_t err_size)
{
    unsetenv("AGENTGATE_WORKER_METRICS_LISTEN");
    unsetenv("AGENTGATE_WORKER_METRICS_PORT_OFFSET");
    if (listen)
        assert_int_equal(setenv("AGENTGATE_WORKER_METRICS_LISTEN", listen, 1), 0);
    if (offset)
        assert_int_equal(setenv("AGENTGATE_WORKER_METRICS_PORT_OFFSET", offset, 1), 0);
    int rc = config_load(cfg, NULL, err, err_size);
    unsetenv("AGENTGATE_WORKER_METRICS_LISTEN");
    unsetenv("AGENTGATE_WORKER_METRICS_PORT_OFFSET");
    return rc;
}

static void test_defaults_off(void **state)
{
    (void)state;
    ag_config c;
    char err[256] = "";
    assert_int_equal(load(&c, NULL, NULL, err, sizeof err), 0);
    assert_string_equal(c.worker_metrics_listen, "");
    assert_int_equal(c.worker_metrics_port_offset, 0);
    /* An offset without an address is harmless: nothing listens. */
    assert_int_equal(load(&c, NULL, "3", err, sizeof err), 0);
    assert_int_equal(c.worker_metrics_port_offset, 3);
}

static void test_good_values(void **state)
{
    (void)state;
    ag_config c;
    char err[256] = "";
    assert_int_equal(load(&c, "127.0.0.1:9100", "", err, sizeof err), 0);
    assert_string_equal(c.worker_metrics_listen, "127.0.0.1:9100");
    assert_int_equal(c.worker_metrics_port_offset, 0);
    assert_int_equal(load(&c, "[::1]:9100", "12", err, sizeof err), 0);
    assert_int_equal(c.worker_metrics_port_offset, 12);
    assert_int_equal(load(&c, "metrics.local:65534", "1", err, sizeof err), 0);
}

static void expect_error(const char *listen, const char *offset, const char *needle)
{
    ag_config c;
    char err[256] = "";
    assert_int_equal(load(&c, listen, offset, err, sizeof err), -1);
    if (strstr(err, needle) == NULL)
        fail_msg("error \"%s\" lacks \"%s\"", err, needle);
    assert_null(strchr(err, '\n'));
}

static void test_bad_values(void **state)
{
    (void)state;
    expect_error("127.0.0.1", NULL, "AGENTGATE_WORKER_METRICS_LISTEN");
    expect_error("127.0.0.1:0", NULL, "AGENTGATE_WORKER_METRICS_LISTEN");
    expect_error("127.0.0.1:65536", NULL, "AGENTGATE_WORKER_METRICS_LISTEN");
    expect_error("http://127.0.0.1:9100", NULL, "AGENTGATE_WORKER_METRICS_LISTEN");
    expect_error("[::1", NULL, "AGENTGATE_WORKER_METRICS_LISTEN");
    expect_error("127.0.0.1:9100", "-1", "AGENTGATE_WORKER_METRICS_PORT_OFFSET");
    expect_error("127.0.0.1:9100", "1x", "AGENTGATE_WORKER_METRICS_PORT_OFFSET");
    expect_error("127.0.0.1:9100", "65535", "AGENTGATE_WORKER_METRICS_PORT_OFFSET");
    expect_error(NULL, "abc", "AGENTGATE_WORKER_METRICS_PORT_OFFSET");
    expect_error("127.0.0.1:65535", "1", "above 65535");
}

static void test_parse_host_port(void **state)
{
    (void)state;
    char host[32];
    int port = -1;
    assert_int_equal(config_parse_host_port("localhost:80", host, sizeof host, &port), 0);
    assert_string_equal(host, "localhost");
    assert_int_equal(port, 80);
    assert_int_equal(config_parse_host_port("[fe80::1]:443", host, sizeof host, &port), 0);
    assert_string_equal(host, "fe80::1");
    assert_int_equal(port, 443);
    port = 7;
    assert_int_equal(config_parse_host_port("localhost", host, sizeof host, &port), -1);
    assert_int_equal(config_parse_host_port(":80", host, sizeof host, &port), -1);
    assert_int_equal(config_parse_host_port(NULL, host, sizeof host, &port), -1);
    assert_int_equal(config_parse_host_port("a-very-long-host-name-that-does-not-fit:80",
                                             host, sizeof host, &port), -1);
    assert_int_equal(port, 7);      /* untouched on failure */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_off),
        cmocka_unit_test(test_good_values),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_parse_host_port),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
