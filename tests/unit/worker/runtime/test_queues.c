/*
 * test_worker_queues.c - the worker's queue list (AGENTGATE_WORKER_QUEUES)
 * and its reconnect backoff schedule: the pure parts of the worker.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "backoff.h"
#include "jobtypes.h"
#include "queues.h"

static int setup(void **state)
{
    (void)state;
    return jobtypes_init();
}

static void assert_queues(const queue_set *qs, const char *const *want, size_t n)
{
    assert_int_equal(qs->count, n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(qs->names[i], want[i]);
}

static void test_empty_means_every_type(void **state)
{
    (void)state;
    size_t n;
    const job_type *types = jobtypes_all(&n);
    const char *lists[] = { NULL, "", "   ", " \t " };
    for (size_t l = 0; l < sizeof lists / sizeof *lists; l++) {
        queue_set qs;
        char err[256] = "";
        assert_int_equal(queues_parse(lists[l], &qs, err, sizeof err), 0);
        assert_int_equal(qs.count, n);
        for (size_t i = 0; i < n; i++)
            assert_string_equal(qs.names[i], types[i].name);
    }
}

static void test_names_in_order(void **state)
{
    (void)state;
    queue_set qs;
    char err[256];
    const char *want[] = { "test", "demo", "agent.run" };
    assert_int_equal(queues_parse("test,demo,agent.run", &qs, err, sizeof err), 0);
    assert_queues(&qs, want, 3);
}

static void test_blanks_trimmed_and_repeats_once(void **state)
{
    (void)state;
    queue_set qs;
    char err[256];
    const char *want[] = { "long-running", "demo" };
    assert_int_equal(queues_parse(" long-running ,\tdemo, long-running ", &qs, err,
                                  sizeof err), 0);
    assert_queues(&qs, want, 2);
}

static void test_each_type_waits_on_its_ring(void **state)
{
    (void)state;
    queue_set qs;
    char err[256];
    assert_int_equal(queues_parse("test, agent.run", &qs, err, sizeof err), 0);
    assert_string_equal(qs.rings[0], "jobs:ready:test");
    assert_string_equal(qs.rings[1], "jobs:ready:agent.run");
    /* A BRPOP reply names the ring it took a tenant from: back to its type. */
    assert_int_equal(queues_ring_index(&qs, "jobs:ready:agent.run", 20), 1);
    assert_int_equal(queues_ring_index(&qs, "jobs:ready:test", 15), 0);
    /* Not a prefix, not a longer name, not another type's or the old queue. */
    assert_int_equal(queues_ring_index(&qs, "jobs:ready:tes", 14), -1);
    assert_int_equal(queues_ring_index(&qs, "jobs:ready:testx", 16), -1);
    assert_int_equal(queues_ring_index(&qs, "jobs:ready:demo", 15), -1);
    assert_int_equal(queues_ring_index(&qs, "jobs:queue:test", 15), -1);
    /* Every registered type has its ring when the list is empty. */
    assert_int_equal(queues_parse("", &qs, err, sizeof err), 0);
    for (size_t i = 0; i < qs.count; i++) {
        char want[KEY_MAX];
        assert_string_equal(qs.rings[i], key_ready(want, qs.names[i]));
        assert_int_equal(queues_ring_index(&qs, qs.rings[i], strlen(qs.rings[i])), (int)i);
    }
}

static void assert_refused(const char *list, const char *reason_part)
{
    queue_set qs;
    char err[256] = "";
    assert_int_equal(queues_parse(list, &qs, err, sizeof err), -1);
    assert_int_equal(qs.count, 0);
    if (strstr(err, reason_part) == NULL)
        fail_msg("list \"%s\": reason \"%s\" lacks \"%s\"", list, err, reason_part);
    assert_null(strchr(err, '\n'));
}

static void test_unknown_name_refused(void **state)
{
    (void)state;
    assert_refused("demo,nope", "\"nope\" is not a registered job type");
    assert_refused("Demo", "\"Demo\" is not a registered job type");
    assert_refused("demo test", "\"demo test\" is not a registered job type");
}

static void test_empty_item_refused(void **state)
{
    (void)state;
    assert_refused("demo,,test", "empty name");
    assert_refused("demo,", "empty name");
    assert_refused(",demo", "empty name");
    assert_refused("demo, ,test", "empty name");
}

static void test_overlong_name_refused(void **state)
{
    (void)state;
    char list[200];
    memset(list, 'a', sizeof list - 1);
    list[sizeof list - 1] = '\0';
    assert_refused(list, "too long");
}

static void test_backoff_doubles_to_cap(void **state)
{
    (void)state;
    backoff b;
    backoff_reset(&b);
    assert_true(backoff_due(&b, 0));
    long long want[] = { 100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000 };
    long long now = 1000000;
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        assert_int_equal(backoff_failed(&b, now), want[i]);
        assert_false(backoff_due(&b, now + want[i] - 1));
        assert_true(backoff_due(&b, now + want[i]));
        now += want[i];
    }
    backoff_reset(&b);
    assert_true(backoff_due(&b, now));
    assert_int_equal(backoff_failed(&b, now), 100);
}

static bool stop_now(void *arg)
{
    (void)arg;
    return true;
}

static void test_backoff_wait_stops(void **state)
{
    (void)state;
    backoff b;
    backoff_reset(&b);
    assert_true(backoff_wait(&b, NULL, NULL));      /* due at once */
    b.next_ms = (long long)1 << 60;                 /* never due */
    assert_false(backoff_wait(&b, stop_now, NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_means_every_type),
        cmocka_unit_test(test_names_in_order),
        cmocka_unit_test(test_blanks_trimmed_and_repeats_once),
        cmocka_unit_test(test_each_type_waits_on_its_ring),
        cmocka_unit_test(test_unknown_name_refused),
        cmocka_unit_test(test_empty_item_refused),
        cmocka_unit_test(test_overlong_name_refused),
        cmocka_unit_test(test_backoff_doubles_to_cap),
        cmocka_unit_test(test_backoff_wait_stops),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
