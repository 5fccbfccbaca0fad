/*
 * test_worker_reg.c - unit tests for the worker registry's record: the
 * jobs list a worker writes, the JSON item the gateway renders from a
 * hash (only the caller's tenant's jobs, nothing in the hash trusted),
 * and the registry's key.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "keys.h"
#include "worker_reg.h"

#define ID1 "01a2513f-54d1-77b0-be06-15dde4ba696e"
#define ID2 "01a2513f-54d1-77b0-be06-15dde4ba6970"
#define ID3 "01a2513f-54d1-77b0-be06-15dde4ba6971"

/* Renders the pairs (name, value, name, value, ..., NULL) for tenant into
 * a string the caller frees; NULL when worker_reg_json refused. */
static char *render(const char *tenant, ...)
{
    wreg_text names[16], values[16];
    size_t n = 0;
    va_list ap;
    va_start(ap, tenant);
    const char *k;
    while ((k = va_arg(ap, const char *)) != NULL && n < 16) {
        const char *v = va_arg(ap, const char *);
        names[n] = (wreg_text){ k, strlen(k) };
        values[n] = (wreg_text){ v, strlen(v) };
        n++;
    }
    va_end(ap);
    strbuf b = {0};
    int rc = worker_reg_json(&b, names, values, n, tenant);
    char *s = strbuf_take(&b, NULL);
    if (rc != 0) {
        assert_string_equal(s, "");     /* nothing appended */
        free(s);
        return NULL;
    }
    return s;
}

static void test_jobs_list_entries(void **state)
{
    (void)state;
    strbuf b = {0};
    assert_int_equal(worker_reg_jobs_add(&b, "acme", ID1), 0);
    assert_int_equal(worker_reg_jobs_add(&b, "other-1", ID2), 0);
    /* A tenant that could reshape the list, or an id that is not one. */
    assert_int_equal(worker_reg_jobs_add(&b, "a:b", ID3), -1);
    assert_int_equal(worker_reg_jobs_add(&b, "a,b", ID3), -1);
    assert_int_equal(worker_reg_jobs_add(&b, "", ID3), -1);
    assert_int_equal(worker_reg_jobs_add(&b, "acme", "not-a-uuid"), -1);
    char *s = strbuf_take(&b, NULL);
    assert_string_equal(s, "acme:" ID1 ",other-1:" ID2);
    free(s);
}

static void test_full_record(void **state)
{
    (void)state;
    char *s = render("acme",
                     "id", "w-1", "host", "box", "pid", "4242",
                     "started_at", "2026-12-07T18:00:00.000Z",
                     "heartbeat_at", "2026-12-07T18:00:02.000Z",
                     "queues", "demo,agent.run", "concurrency", "4", "running", "3",
                     "jobs", "acme:" ID1 ",other:" ID2 ",acme:" ID3, NULL);
    assert_non_null(s);
    assert_string_equal(s,
        "{\"id\":\"w-1\",\"host\":\"box\",\"pid\":4242,"
        "\"started_at\":\"2026-12-07T18:00:00.000Z\","
        "\"heartbeat_at\":\"2026-12-07T18:00:02.000Z\","
        "\"queues\":[\"demo\",\"agent.run\"],\"concurrency\":4,\"running\":3,"
        "\"jobs\":[\"" ID1 "\",\"" ID3 "\"]}");
    free(s);
}

/* Another tenant's entries never show, even one whose id starts like the
 * caller's. */
static void test_jobs_only_the_callers_tenant(void **state)
{
    (void)state;
    char *s = render("acme", "id", "w", "jobs", "acme2:" ID1 ",acm:" ID2 ",ACME:" ID3, NULL);
    assert_non_null(strstr(s, "\"jobs\":[]"));
    free(s);
    s = render("acme2", "id", "w", "jobs", "acme2:" ID1 ",acm:" ID2, NULL);
    assert_non_null(strstr(s, "\"jobs\":[\"" ID1 "\"]"));
    free(s);
    /* Malformed entries are skipped, the good one still shows. */
    s = render("t", "id", "w", "jobs", ",t:,t:nope,:" ID1 ",t:" ID2 "x,t:" ID3 ",", NULL);
    assert_non_null(strstr(s, "\"jobs\":[\"" ID3 "\"]"));
    free(s);
}

static void test_missing_and_bad_fields_are_null(void **state)
{
    (void)state;
    char *s = render("t", "id", "w", "pid", "12x", "concurrency", "", "running", "-",
                     "unknown", "ignored", NULL);
    assert_string_equal(s,
        "{\"id\":\"w\",\"host\":null,\"pid\":null,\"started_at\":null,\"heartbeat_at\":null,"
        "\"queues\":[],\"concurrency\":null,\"running\":null,\"jobs\":[]}");
    free(s);
    s = render("t", "id", "w", "pid", "99999999999999999999", "running", " 1", NULL);
    assert_non_null(strstr(s, "\"pid\":null"));
    assert_non_null(strstr(s, "\"running\":null"));
    free(s);
    s = render("t", "id", "w", "pid", "-1", "queues", ",demo,,", NULL);
    assert_non_null(strstr(s, "\"pid\":-1"));
    assert_non_null(strstr(s, "\"queues\":[\"demo\"]"));
    free(s);
}

static void test_no_id_is_no_item(void **state)
{
    (void)state;
    assert_null(render("t", "host", "box", NULL));
    assert_null(render("t", "id", "", NULL));
    assert_null(render("t", NULL));
}

/* Text from the hash is escaped, and bytes that are not UTF-8 replaced,
 * so the answer is always valid JSON. */
static void test_text_is_escaped(void **state)
{
    (void)state;
    char *s = render("t", "id", "w\"\\\n", "host", "caf\xc3\xa9\xff<", NULL);
    assert_non_null(strstr(s, "\"id\":\"w\\\"\\\\\\n\""));
    assert_non_null(strstr(s, "\"host\":\"caf\xc3\xa9?<\""));
    free(s);
}

static void test_worker_keys(void **state)
{
    (void)state;
    char out[KEY_MAX];
    assert_ptr_equal(key_worker(out, "box:1234"), out);
    assert_string_equal(out, "worker:box:1234");
    char longest[KEY_WORKER_ID_MAX + 2];
    memset(longest, 'w', KEY_WORKER_ID_MAX);
    longest[KEY_WORKER_ID_MAX] = '\0';
    assert_non_null(key_worker(out, longest));
    longest[KEY_WORKER_ID_MAX] = 'w';
    longest[KEY_WORKER_ID_MAX + 1] = '\0';
    assert_null(key_worker(out, longest));
    assert_string_equal(out, "");
    const char *bad[] = { "", "a b", "a\n", "caf\xc3\xa9", "\x7f", NULL };
    for (int i = 0; bad[i]; i++) {
        assert_false(key_worker_id_valid(bad[i]));
        assert_null(key_worker(out, bad[i]));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jobs_list_entries),
        cmocka_unit_test(test_full_record),
        cmocka_unit_test(test_jobs_only_the_callers_tenant),
        cmocka_unit_test(test_missing_and_bad_fields_are_null),
        cmocka_unit_test(test_no_id_is_no_item),
        cmocka_unit_test(test_text_is_escaped),
        cmocka_unit_test(test_worker_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
