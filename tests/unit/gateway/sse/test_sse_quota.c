/*
 * test_sse_quota.c - stream slots as handles (sse_quota_take/give): a
 * held stream keeps one pointer to its principal's entry instead of copies
 * of the tenant and subject, and gives the slot back through it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "sse_quota.h"

static void test_take_up_to_max_then_refuse(void **state)
{
    (void)state;
    sse_quota_slot *a = sse_quota_take("t1", "alice", 2);
    sse_quota_slot *b = sse_quota_take("t1", "alice", 2);
    assert_non_null(a);
    assert_ptr_equal(a, b);   /* one entry per principal, shared */
    assert_null(sse_quota_take("t1", "alice", 2));
    assert_int_equal(sse_quota_held("t1", "alice"), 2);
    sse_quota_give(a);
    assert_int_equal(sse_quota_held("t1", "alice"), 1);
    assert_non_null(sse_quota_take("t1", "alice", 2));
    sse_quota_give(b);
    sse_quota_give(b);
    assert_int_equal(sse_quota_held("t1", "alice"), 0);
}

static void test_principals_are_apart(void **state)
{
    (void)state;
    sse_quota_slot *a = sse_quota_take("t2", "bob", 1);
    sse_quota_slot *b = sse_quota_take("t2", "carol", 1);
    sse_quota_slot *c = sse_quota_take("t3", "bob", 1);
    /* ("ab","c") and ("a","bc") are two principals, not one. */
    sse_quota_slot *d = sse_quota_take("ab", "c", 1);
    sse_quota_slot *e = sse_quota_take("a", "bc", 1);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    assert_non_null(d);
    assert_non_null(e);
    assert_ptr_not_equal(a, b);
    assert_ptr_not_equal(a, c);
    assert_ptr_not_equal(d, e);
    assert_null(sse_quota_take("t2", "bob", 1));
    sse_quota_give(a);
    sse_quota_give(b);
    sse_quota_give(c);
    sse_quota_give(d);
    sse_quota_give(e);
    assert_int_equal(sse_quota_held("t2", "bob"), 0);
    assert_int_equal(sse_quota_held("ab", "c"), 0);
}

static void test_handles_and_names_count_together(void **state)
{
    (void)state;
    sse_quota_slot *a = sse_quota_take("t4", "dave", 2);
    assert_non_null(a);
    assert_true(sse_quota_acquire("t4", "dave", 2));
    assert_false(sse_quota_acquire("t4", "dave", 2));
    sse_quota_release("t4", "dave");
    assert_int_equal(sse_quota_held("t4", "dave"), 1);
    sse_quota_give(a);
    assert_int_equal(sse_quota_held("t4", "dave"), 0);
}

static void test_zero_max_and_null_give(void **state)
{
    (void)state;
    assert_null(sse_quota_take("t5", "erin", 0));
    assert_int_equal(sse_quota_held("t5", "erin"), 0);
    sse_quota_give(NULL);     /* nothing taken: nothing happens */
    assert_int_equal(sse_quota_held("t5", "erin"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_take_up_to_max_then_refuse),
        cmocka_unit_test(test_principals_are_apart),
        cmocka_unit_test(test_handles_and_names_count_together),
        cmocka_unit_test(test_zero_max_and_null_give),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
