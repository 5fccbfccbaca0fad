/*
 * test_event_buffer.c - a running job's buffered events: ids only in
 * sequence, when the buffer is due to be stored, progress kept newest,
 * ownership of bodies.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "event_buffer.h"

static int add(event_buffer *b, long long seq, const char *body, const char *progress,
               long long now)
{
    return event_buffer_add(b, seq, "job.progress", strdup(body), progress, now);
}

static void test_add_in_sequence_only(void **state)
{
    (void)state;
    event_buffer b = { 0 };
    assert_int_equal(add(&b, 2, "{\"id\":2}", NULL, 100), 0);
    assert_int_equal(add(&b, 3, "{\"id\":3}", NULL, 101), 0);
    /* A hole or a repeat would be stored as such: refused, nothing changes. */
    assert_int_equal(add(&b, 5, "x", NULL, 102), -1);
    assert_int_equal(add(&b, 3, "x", NULL, 102), -1);
    assert_int_equal(b.n, 2);
    assert_int_equal(b.evs[0].seq, 2);
    assert_int_equal(b.evs[1].seq, 3);
    assert_string_equal(b.evs[1].body, "{\"id\":3}");
    assert_string_equal(b.evs[1].type, "job.progress");
    assert_int_equal(b.bytes, 16);
    assert_int_equal(b.first_ms, 100);
    event_buffer_free(&b);
    assert_null(b.evs);
    assert_int_equal(b.n, 0);
}

static void test_due(void **state)
{
    (void)state;
    event_buffer b = { 0 };
    assert_false(event_buffer_due(&b, 1000000));        /* empty: never */
    add(&b, 1, "a", NULL, 1000);
    assert_false(event_buffer_due(&b, 1000));
    assert_false(event_buffer_due(&b, 1000 + EVENT_BUFFER_FLUSH_MS - 1));
    assert_true(event_buffer_due(&b, 1000 + EVENT_BUFFER_FLUSH_MS));
    /* The oldest event sets the clock, not the newest. */
    add(&b, 2, "b", NULL, 1000 + EVENT_BUFFER_FLUSH_MS);
    assert_true(event_buffer_due(&b, 1000 + EVENT_BUFFER_FLUSH_MS));

    event_buffer_clear(&b);
    assert_int_equal(b.n, 0);
    assert_false(event_buffer_due(&b, 1000000));
    /* Full by count, at once. */
    for (long long i = 1; i <= EVENT_BUFFER_MAX_EVENTS; i++) {
        assert_false(event_buffer_due(&b, 5));
        add(&b, 10 + i, "e", NULL, 5);
    }
    assert_true(event_buffer_due(&b, 5));
    event_buffer_clear(&b);

    /* Full by bytes, at once. */
    char *big = malloc(EVENT_BUFFER_MAX_BYTES + 1);
    memset(big, 'x', EVENT_BUFFER_MAX_BYTES);
    big[EVENT_BUFFER_MAX_BYTES] = '\0';
    assert_int_equal(event_buffer_add(&b, 7, "log", big, NULL, 5), 0);
    assert_true(event_buffer_due(&b, 5));
    event_buffer_free(&b);
}

static void test_progress_newest_wins(void **state)
{
    (void)state;
    event_buffer b = { 0 };
    char progress[] = "{\"current\":1}";
    add(&b, 1, "a", progress, 0);
    progress[11] = '2';                 /* copied, not borrowed */
    assert_string_equal(b.progress_json, "{\"current\":1}");
    add(&b, 2, "b", NULL, 0);           /* an event without progress keeps it */
    assert_string_equal(b.progress_json, "{\"current\":1}");
    add(&b, 3, "c", "{\"current\":3}", 0);
    assert_string_equal(b.progress_json, "{\"current\":3}");
    event_buffer_clear(&b);
    assert_null(b.progress_json);
    /* After a clear the next event may have any id: the stored ones are gone. */
    assert_int_equal(add(&b, 9, "d", NULL, 0), 0);
    event_buffer_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_in_sequence_only),
        cmocka_unit_test(test_due),
        cmocka_unit_test(test_progress_newest_wins),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
