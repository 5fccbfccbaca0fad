/*
 * test_worker_registry.c - unit tests for the worker registry's TTL: the
 * setting, but never under three heartbeats, so one late beat does not
 * make a live worker vanish from GET /v1/workers.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "worker_registry.h"

static long long ttl(int setting_ms, int heartbeat_ms)
{
    ag_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.worker_registry_ttl_ms = setting_ms;
    cfg.heartbeat_ms = heartbeat_ms;
    return worker_registry_ttl_ms(&cfg);
}

static void test_ttl_is_the_setting_above_three_beats(void **state)
{
    (void)state;
    assert_int_equal(ttl(10000, 2000), 10000);
    assert_int_equal(ttl(1500, 200), 1500);
    assert_int_equal(ttl(601, 200), 601);
}

static void test_ttl_is_never_under_three_beats(void **state)
{
    (void)state;
    assert_int_equal(ttl(10000, 10000), 30000);
    assert_int_equal(ttl(100, 200), 600);
    assert_int_equal(ttl(600, 200), 600);
    assert_int_equal(ttl(100, 0), 6000);    /* no heartbeat set: the default's */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ttl_is_the_setting_above_three_beats),
        cmocka_unit_test(test_ttl_is_never_under_three_beats),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
