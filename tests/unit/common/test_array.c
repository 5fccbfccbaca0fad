/*
 * test_array.c - array_grow: room made only when full, doubling, and a
 * size that would overflow refused with the array left as it was.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "array.h"

static void test_grows_by_doubling_only_when_full(void **state)
{
    (void)state;
    int *a = NULL;
    size_t cap = 0;
    assert_int_equal(array_grow((void **)&a, &cap, 0, sizeof *a), 0);
    assert_int_equal(cap, 16);
    int *first = a;
    assert_int_equal(array_grow((void **)&a, &cap, 15, sizeof *a), 0);
    assert_ptr_equal(a, first);                 /* room left: nothing done */
    assert_int_equal(cap, 16);
    for (int i = 0; i < 16; i++)
        a[i] = i;
    assert_int_equal(array_grow((void **)&a, &cap, 16, sizeof *a), 0);
    assert_int_equal(cap, 32);
    for (int i = 0; i < 16; i++)
        assert_int_equal(a[i], i);             /* kept across the move */
    free(a);
}

static void test_overflow_is_refused_and_changes_nothing(void **state)
{
    (void)state;
    char *a = malloc(1);
    size_t cap = SIZE_MAX / 2 + 1;
    assert_int_equal(array_grow((void **)&a, &cap, cap, 1), -1);
    assert_int_equal(cap, SIZE_MAX / 2 + 1);
    size_t small = 16;
    assert_int_equal(array_grow((void **)&a, &small, 16, SIZE_MAX / 8), -1);
    assert_int_equal(small, 16);
    assert_int_equal(array_grow((void **)&a, &small, 16, 0), -1);
    free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grows_by_doubling_only_when_full),
        cmocka_unit_test(test_overflow_is_refused_and_changes_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
