/*
 * test_backoff.c - the retry delay schedule (doubling, cap, equal jitter
 * bounds) and the reconnect schedule.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "backoff.h"

static void test_retry_delay_doubles_within_jitter(void **state)
{
    (void)state;
    for (int n = 1; n <= 6; n++) {
        long long full = 100LL << (n - 1);
        long long lo = backoff_retry_delay_ms(n, 100, 100000, 0);
        long long hi = backoff_retry_delay_ms(n, 100, 100000, (unsigned long long)-1 / 2);
        assert_int_equal(lo, full - full / 2);
        assert_true(hi >= lo && hi <= full);
        for (int i = 0; i < 1000; i++) {
            long long d = backoff_retry_delay_ms(n, 100, 100000, backoff_random());
            assert_true(d >= full - full / 2 && d <= full);
        }
    }
}

static void test_retry_delay_is_capped(void **state)
{
    (void)state;
    for (int i = 0; i < 1000; i++) {
        long long d = backoff_retry_delay_ms(60, 1000, 30000, backoff_random());
        assert_true(d >= 15000 && d <= 30000);
    }
    assert_int_equal(backoff_retry_delay_ms(1, 0, 0, 0), 1);
    assert_true(backoff_retry_delay_ms(1000000, 1, 8, 5) <= 8);
}

static void test_jitter_varies(void **state)
{
    (void)state;
    long long first = backoff_retry_delay_ms(8, 100, 100000, backoff_random());
    bool varied = false;
    for (int i = 0; i < 100 && !varied; i++)
        varied = backoff_retry_delay_ms(8, 100, 100000, backoff_random()) != first;
    assert_true(varied);
}

static void test_reconnect_schedule(void **state)
{
    (void)state;
    backoff b;
    backoff_reset(&b);
    assert_true(backoff_due(&b, 0));
    assert_int_equal(backoff_failed(&b, 1000), BACKOFF_FIRST_MS);
    assert_false(backoff_due(&b, 1000 + BACKOFF_FIRST_MS - 1));
    assert_true(backoff_due(&b, 1000 + BACKOFF_FIRST_MS));
    long long d = 0;
    for (int i = 0; i < 20; i++)
        d = backoff_failed(&b, 0);
    assert_int_equal(d, BACKOFF_MAX_MS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retry_delay_doubles_within_jitter),
        cmocka_unit_test(test_retry_delay_is_capped),
        cmocka_unit_test(test_jitter_varies),
        cmocka_unit_test(test_reconnect_schedule),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
