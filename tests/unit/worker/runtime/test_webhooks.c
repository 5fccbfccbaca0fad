/*
 * test_webhooks.c - the webhook retry schedule: doubling from the base up
 * to the cap, and no attempt planned past the window after the job ended.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <cmocka.h>

#include "webhooks.h"

#define BASE 5000LL
#define MAX (3600LL * 1000)
#define WINDOW_S 86400LL

static void test_first_retries_double(void **state)
{
    (void)state;
    bool give_up = true;
    long long d1 = webhook_retry_plan(1, 0, 0, BASE, MAX, WINDOW_S, 0, &give_up);
    assert_false(give_up);
    assert_true(d1 >= BASE / 2 && d1 <= BASE);
    long long d3 = webhook_retry_plan(3, 0, 0, BASE, MAX, WINDOW_S, 0, &give_up);
    assert_int_equal(d3, 4 * BASE / 2);
    long long d30 = webhook_retry_plan(30, 0, 0, BASE, MAX, WINDOW_S, 0, &give_up);
    assert_int_equal(d30, MAX / 2);
}

/* Walks a whole schedule whose attempts fail at once; returns the number
 * of attempts made, and the last one's start in *last_ms. */
static int walk(unsigned long long rnd, long long *last_ms)
{
    long long now = 1000;           /* the job ended at 0 */
    int attempt = 1;
    for (;;) {
        bool give_up = false;
        long long d = webhook_retry_plan(attempt, 0, now, BASE, MAX, WINDOW_S, rnd,
                                         &give_up);
        if (give_up) break;
        now += d;
        attempt++;
        assert_true(attempt < 1000);
    }
    *last_ms = now;
    return attempt;
}

static void test_schedule_ends_within_the_window(void **state)
{
    (void)state;
    long long last_fast, last_slow;
    int fast = walk(0, &last_fast);                            /* shortest delays */
    int slow = walk((unsigned long long)-1 / 2, &last_slow);   /* longer ones */
    assert_true(last_fast <= WINDOW_S * 1000 && last_slow <= WINDOW_S * 1000);
    /* A day of retries: the last attempt starts within the final delay
     * (at most an hour) of the window's end, and there are a few dozen. */
    assert_true(last_fast > WINDOW_S * 1000 - MAX);
    assert_true(last_slow > WINDOW_S * 1000 - MAX);
    assert_true(fast >= 24 && fast <= 60);
    assert_true(slow >= 24 && slow <= fast);
}

static void test_late_failure_gives_up(void **state)
{
    (void)state;
    bool give_up = false;
    webhook_retry_plan(2, 0, WINDOW_S * 1000 - 1, BASE, MAX, WINDOW_S, 0, &give_up);
    assert_true(give_up);
    webhook_retry_plan(2, 0, WINDOW_S * 1000 - BASE * 2, BASE, MAX, WINDOW_S, 0, &give_up);
    assert_false(give_up);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_retries_double),
        cmocka_unit_test(test_schedule_ends_within_the_window),
        cmocka_unit_test(test_late_failure_gives_up),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
