/*
 * test_queued_job_json.c - the gateway's rendering of a freshly inserted
 * job (job_json_queued), which must equal job_json() of
 * sql/migrations/002_api_json.sql byte for byte: timestamps as api_ts() prints them,
 * strings escaped as PostgreSQL's escape_json does, json_build_object's
 * separators. The expected texts below are what PostgreSQL 15 printed for
 * the same rows.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "job_json.h"
#include "jsonutil.h"

static void assert_ts(long long us, const char *want)
{
    char out[32];
    job_json_ts(us, out);
    assert_string_equal(out, want);
}

static void test_ts_truncates_to_milliseconds(void **state)
{
    (void)state;
    assert_ts(0, "1970-01-01T00:00:00.000Z");
    assert_ts(1000, "1970-01-01T00:00:00.001Z");
    assert_ts(1999, "1970-01-01T00:00:00.001Z");        /* truncated, not rounded */
    assert_ts(1795996800999999LL, "2026-11-30T00:00:00.999Z");
    assert_ts(1763733953450123LL, "2025-11-21T14:05:53.450Z");
}

static void test_ts_before_the_epoch_counts_down(void **state)
{
    (void)state;
    /* PostgreSQL: api_ts('1969-12-31 23:59:59.9995+00') */
    assert_ts(-500, "1969-12-31T23:59:59.999Z");
    assert_ts(-1000000, "1969-12-31T23:59:59.000Z");
}

static void assert_json_string(const char *in, const char *want)
{
    char out[256];
    size_t n = json_quote(in, out, sizeof out);
    assert_int_equal(n, strlen(want));
    assert_string_equal(out, want);
}

static void test_json_string_escapes_like_postgres(void **state)
{
    (void)state;
    assert_json_string("plain", "\"plain\"");
    assert_json_string("", "\"\"");
    assert_json_string("a\"b\\c", "\"a\\\"b\\\\c\"");
    assert_json_string("\b\f\n\r\t", "\"\\b\\f\\n\\r\\t\"");
    assert_json_string("\x01\x1f", "\"\\u0001\\u001f\"");
    assert_json_string("snow \xe2\x98\x83 /", "\"snow \xe2\x98\x83 /\"");   /* as is */
}

static void test_json_string_refuses_a_short_buffer(void **state)
{
    (void)state;
    char out[8];
    assert_int_equal(json_quote("\x01\x01\x01", out, sizeof out), 0);
    assert_int_equal(json_quote("abc", out, 2), 0);
    /* 6 * strlen + 3 always suffices. */
    char big[6 * 3 + 3];
    assert_int_equal(json_quote("\x01\x01\x01", big, sizeof big), 20);
}

static void test_job_renders_as_job_json(void **state)
{
    (void)state;
    const char *payload = "{\"result\": {\"a\": \"\xc3\xa9\\n\\u0001\", \"zz\": 1.5}, "
                          "\"outcome\": \"succeed\"}";
    queued_job j = {
        .id = "01a1fed0-682a-77cc-b5fa-cdc93e71cf07", .type = "test",
        .priority = -3, .max_attempts = 1, .timeout_s = 300,
        .payload = payload, .payload_len = strlen(payload),
        .created_at_us = 1795276433450999LL,         /* 2026-11-21T15:53:53.450999Z */
        .has_run_at = true, .run_at_us = 1798761600123900LL,   /* 2027-01-01T00:00:00.1239Z */
    };
    /* job_json() of the same row, made compact as every answer is; the
     * payload's own spacing (jsonb's) goes too, its strings untouched. */
    const char *want =
        "{\"id\":\"01a1fed0-682a-77cc-b5fa-cdc93e71cf07\",\"type\":\"test\","
        "\"status\":\"queued\",\"priority\":-3,\"payload\":{\"result\":{\"a\":"
        "\"\xc3\xa9\\n\\u0001\",\"zz\":1.5},\"outcome\":\"succeed\"},\"result\":null,"
        "\"error\":null,\"attempts\":0,\"max_attempts\":1,\"timeout_s\":300,"
        "\"progress\":null,\"run_at\":\"2027-01-01T00:00:00.123Z\","
        "\"created_at\":\"2026-11-21T15:53:53.450Z\",\"started_at\":null,"
        "\"finished_at\":null,\"heartbeat_at\":null,\"worker_id\":null,"
        "\"last_event_id\":1,\"retry_of\":null,\"links\":{\"self\":"
        "\"/v1/jobs/01a1fed0-682a-77cc-b5fa-cdc93e71cf07\",\"events\":"
        "\"/v1/jobs/01a1fed0-682a-77cc-b5fa-cdc93e71cf07/events\"}}";
    size_t len = 0;
    char *got = job_json_queued(&j, &len);
    assert_non_null(got);
    assert_int_equal(len, strlen(want));
    assert_string_equal(got, want);
    free(got);
}

static void test_job_without_run_at_has_null(void **state)
{
    (void)state;
    queued_job j = {
        .id = "01a1fedb-450e-7134-8baa-939f38820210", .type = "demo",
        .priority = 0, .max_attempts = 3, .timeout_s = 86400,
        .payload = "{}", .payload_len = 2, .created_at_us = 0,
    };
    size_t len = 0;
    char *got = job_json_queued(&j, &len);
    assert_non_null(got);
    assert_int_equal(len, strlen(got));
    assert_non_null(strstr(got, "\"payload\":{},\"result\":null,"));
    assert_non_null(strstr(got, "\"run_at\":null,\"created_at\":\"1970-01-01T00:00:00.000Z\""));
    assert_non_null(strstr(got, "\"max_attempts\":3,\"timeout_s\":86400,"));
    free(got);
}

static void test_retry_names_the_job_it_retries(void **state)
{
    (void)state;
    queued_job j = {
        .id = "01a1fedb-450e-7134-8baa-939f38820210", .type = "demo",
        .priority = 0, .max_attempts = 3, .timeout_s = 60,
        .payload = "{}", .payload_len = 2, .created_at_us = 0,
        .retry_of = "01a1fed0-682a-77cc-b5fa-cdc93e71cf07",
    };
    size_t len = 0;
    char *got = job_json_queued(&j, &len);
    assert_non_null(got);
    assert_non_null(strstr(got, "\"last_event_id\":1,"
                                "\"retry_of\":\"01a1fed0-682a-77cc-b5fa-cdc93e71cf07\","
                                "\"links\":"));
    free(got);
}

static void test_job_with_an_unrenderable_type_is_refused(void **state)
{
    (void)state;
    char type[200];
    memset(type, '\x01', sizeof type - 1);     /* 6 bytes each once escaped */
    type[sizeof type - 1] = '\0';
    queued_job j = { .id = "01a1fedb-450e-7134-8baa-939f38820210", .type = type,
                         .payload = "{}", .payload_len = 2 };
    size_t len = 0;
    assert_null(job_json_queued(&j, &len));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ts_truncates_to_milliseconds),
        cmocka_unit_test(test_ts_before_the_epoch_counts_down),
        cmocka_unit_test(test_json_string_escapes_like_postgres),
        cmocka_unit_test(test_json_string_refuses_a_short_buffer),
        cmocka_unit_test(test_job_renders_as_job_json),
        cmocka_unit_test(test_job_without_run_at_has_null),
        cmocka_unit_test(test_retry_names_the_job_it_retries),
        cmocka_unit_test(test_job_with_an_unrenderable_type_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
