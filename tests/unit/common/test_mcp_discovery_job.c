/*
 * test_mcp_discovery_job.c - the mcp.discover job the gateway and the
 * worker both queue: a fresh id each time, the payload {"server"}, the
 * registry's limits, and a job.queued event 1 that names the job.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <cjson/cJSON.h>

#include "events.h"
#include "jobtypes.h"
#include "mcp_discovery_job.h"

static int init_registry(void **state)
{
    (void)state;
    return jobtypes_init();
}

static void test_job_follows_the_registry(void **state)
{
    (void)state;
    mcp_discovery_job a, b;
    assert_int_equal(mcp_discovery_job_make(&a, "ev"), 0);
    assert_int_equal(mcp_discovery_job_make(&b, "ev"), 0);
    assert_string_not_equal(a.id, b.id);

    const job_type *t = jobtypes_find(MCP_DISCOVER_TYPE);
    assert_non_null(t);
    assert_int_equal(atoi(a.attempts), t->default_max_attempts);
    assert_int_equal(atoi(a.timeout), t->default_timeout_s);
    assert_string_equal(a.payload, "{\"server\":\"ev\"}");

    long long seq;
    char type[EVENT_TYPE_MAX];
    assert_int_equal(event_peek(a.event, strlen(a.event), &seq, type, sizeof type), 0);
    assert_int_equal(seq, 1);
    assert_string_equal(type, "job.queued");
    cJSON *ev = cJSON_Parse(a.event);
    assert_non_null(ev);
    assert_string_equal(cJSON_GetObjectItem(ev, "job_id")->valuestring, a.id);
    cJSON *data = cJSON_GetObjectItem(ev, "data");
    assert_string_equal(cJSON_GetObjectItem(data, "type")->valuestring, MCP_DISCOVER_TYPE);
    cJSON_Delete(ev);

    mcp_discovery_job_free(&a);
    mcp_discovery_job_free(&b);
    mcp_discovery_job_free(&b);     /* freeing twice is harmless */
}

static void test_name_outside_the_schema_is_refused(void **state)
{
    (void)state;
    mcp_discovery_job j;
    /* The type's schema bounds the name; nothing is left to free. */
    assert_int_equal(mcp_discovery_job_make(&j, ""), -1);
    assert_null(j.payload);
    assert_null(j.event);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_job_follows_the_registry),
        cmocka_unit_test(test_name_outside_the_schema_is_refused),
    };
    return cmocka_run_group_tests(tests, init_registry, NULL);
}
