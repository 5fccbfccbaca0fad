/*
 * test_sse_frame.c - the SSE wire format: framing and resume ids.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "sse_frame.h"

static void assert_frame(long long id, const char *type, const char *data, const char *want)
{
    size_t len = 0;
    char *f = sse_frame(id, type, data, strlen(data), &len);
    assert_non_null(f);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(f, want, len);
    free(f);
}

static void test_frame_one_line(void **state)
{
    (void)state;
    assert_frame(7, "step.completed", "{\"id\":7}",
                 "id: 7\nevent: step.completed\ndata: {\"id\":7}\n\n");
}

static void test_frame_splits_every_line_ending(void **state)
{
    (void)state;
    assert_frame(1, "log", "a\nb\r\nc\rd", "id: 1\nevent: log\ndata: a\ndata: b\ndata: c\ndata: d\n\n");
}

static void test_frame_trailing_newline_gives_empty_data_line(void **state)
{
    (void)state;
    assert_frame(2, "log", "x\n", "id: 2\nevent: log\ndata: x\ndata: \n\n");
}

static void test_frame_empty_data(void **state)
{
    (void)state;
    assert_frame(3, "job.progress", "", "id: 3\nevent: job.progress\ndata: \n\n");
}

static void test_frame_large_id(void **state)
{
    (void)state;
    assert_frame(999999999999999999LL, "log", "{}",
                 "id: 999999999999999999\nevent: log\ndata: {}\n\n");
}

static void test_parse_event_id_accepts_digits(void **state)
{
    (void)state;
    long long v = -1;
    assert_int_equal(sse_parse_event_id("0", &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(sse_parse_event_id("42", &v), 0);
    assert_int_equal(v, 42);
    assert_int_equal(sse_parse_event_id("999999999999999999", &v), 0);
    assert_int_equal(v, 999999999999999999LL);
}

static void test_parse_event_id_rejects_the_rest(void **state)
{
    (void)state;
    long long v = 5;
    const char *bad[] = { "", "-1", "+1", " 1", "1 ", "1.0", "0x10", "abc",
                          "1234567890123456789", "1e3", NULL };
    for (int i = 0; bad[i]; i++) {
        assert_int_equal(sse_parse_event_id(bad[i], &v), -1);
        assert_int_equal(v, 5);
    }
    assert_int_equal(sse_parse_event_id(NULL, &v), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frame_one_line),
        cmocka_unit_test(test_frame_splits_every_line_ending),
        cmocka_unit_test(test_frame_trailing_newline_gives_empty_data_line),
        cmocka_unit_test(test_frame_empty_data),
        cmocka_unit_test(test_frame_large_id),
        cmocka_unit_test(test_parse_event_id_accepts_digits),
        cmocka_unit_test(test_parse_event_id_rejects_the_rest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
