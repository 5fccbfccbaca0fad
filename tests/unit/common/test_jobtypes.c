/*
 * test_jobtypes.c - the job type registry: every built-in schema parses,
 * closes its objects (additionalProperties false), and accepts and refuses
 * the payloads its contract says; lookups by name.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "jobtypes.h"
#include "schema.h"

static int init_registry(void **state)
{
    (void)state;
    return jobtypes_init();
}

/* Fails unless every schema object that lists properties also sets
 * additionalProperties to false. */
static void assert_closed(const char *type, const cJSON *schema)
{
    if (!cJSON_IsObject(schema))
        return;
    const cJSON *props = cJSON_GetObjectItemCaseSensitive(schema, "properties");
    if (props) {
        const cJSON *ap = cJSON_GetObjectItemCaseSensitive(schema, "additionalProperties");
        if (!cJSON_IsFalse(ap))
            fail_msg("%s: an object schema allows additional properties", type);
        const cJSON *p;
        cJSON_ArrayForEach(p, props)
            assert_closed(type, p);
    }
    assert_closed(type, cJSON_GetObjectItemCaseSensitive(schema, "items"));
}

static void test_schemas_parse(void **state)
{
    (void)state;
    assert_int_equal(jobtypes_init(), 0);   /* a second call is harmless */
    size_t n = 0;
    const job_type *all = jobtypes_all(&n);
    assert_int_equal(n, 6);
    for (size_t i = 0; i < n; i++) {
        const job_type *t = &all[i];
        assert_non_null(t->name);
        assert_non_null(t->description);
        assert_non_null(t->schema);
        assert_true(cJSON_IsObject(t->schema));
        const cJSON *ty = cJSON_GetObjectItemCaseSensitive(t->schema, "type");
        assert_true(cJSON_IsString(ty));
        assert_string_equal(ty->valuestring, "object");
        assert_closed(t->name, t->schema);
        assert_true(t->default_max_attempts >= 1);
        assert_true(t->default_timeout_s >= 1);
        assert_ptr_equal(jobtypes_find(t->name), t);
    }
}

static void test_find(void **state)
{
    (void)state;
    const job_type *t = jobtypes_find("demo");
    assert_non_null(t);
    assert_string_equal(t->name, "demo");
    assert_int_equal(t->default_max_attempts, 3);
    assert_int_equal(t->default_timeout_s, 300);

    t = jobtypes_find("test");
    assert_non_null(t);
    assert_int_equal(t->default_max_attempts, 1);
    assert_int_equal(t->default_timeout_s, 300);

    t = jobtypes_find("long-running");
    assert_non_null(t);
    assert_int_equal(t->default_max_attempts, 1);
    assert_int_equal(t->default_timeout_s, 3700);

    t = jobtypes_find("agent.run");
    assert_non_null(t);
    assert_int_equal(t->default_max_attempts, 1);
    assert_int_equal(t->default_timeout_s, 600);

    t = jobtypes_find("mcp.discover");
    assert_non_null(t);
    assert_int_equal(t->default_max_attempts, 3);
    assert_int_equal(t->default_timeout_s, 120);

    assert_null(jobtypes_find("nope"));
    assert_null(jobtypes_find(""));
    assert_null(jobtypes_find("Demo"));
    assert_null(jobtypes_find("demo "));
    assert_null(jobtypes_find(NULL));
}

/* Validates payload text against the named type's schema; 0 or -1. */
static int check(const char *type, const char *payload)
{
    const job_type *t = jobtypes_find(type);
    assert_non_null(t);
    cJSON *inst = cJSON_Parse(payload);
    assert_non_null(inst);
    schema_error err;
    int rc = schema_validate(t->schema, inst, &err);
    cJSON_Delete(inst);
    return rc;
}

#define ACCEPTS(type, json) do { if (check(type, json) != 0) fail_msg("%s refused %s", type, json); } while (0)
#define REFUSES(type, json) do { if (check(type, json) != -1) fail_msg("%s accepted %s", type, json); } while (0)

static void test_payload_contracts(void **state)
{
    (void)state;
    ACCEPTS("demo", "{}");
    ACCEPTS("demo", "{\"events\":0,\"duration_ms\":600000}");
    REFUSES("demo", "{\"events\":10001}");
    REFUSES("demo", "{\"events\":1.5}");
    REFUSES("demo", "{\"duration_ms\":-1}");
    REFUSES("demo", "{\"evnts\":3}");
    REFUSES("demo", "[]");

    ACCEPTS("test", "{\"outcome\":\"succeed\",\"result\":[1,{\"a\":null}]}");
    ACCEPTS("test", "{\"outcome\":\"fail\",\"error\":{\"code\":\"E_X\",\"message\":\"\"},\"sleep_ms\":0}");
    REFUSES("test", "{}");
    REFUSES("test", "{\"outcome\":\"maybe\"}");
    REFUSES("test", "{\"outcome\":\"fail\",\"error\":{\"code\":\"\"}}");
    REFUSES("test", "{\"outcome\":\"fail\",\"error\":{\"code\":\"E\",\"extra\":1}}");
    REFUSES("test", "{\"outcome\":\"fail\",\"sleep_ms\":600001}");

    ACCEPTS("long-running", "{\"duration_ms\":1,\"progress_interval_ms\":10}");
    REFUSES("long-running", "{\"duration_ms\":0}");
    REFUSES("long-running", "{\"progress_interval_ms\":9}");

    ACCEPTS("agent.run", "{\"run_id\":\"0190a6f2-7c3e-7a10-8b2c-1234567890ab\",\"prompt\":\"hi\","
                         "\"temperature\":0.7,\"max_tokens\":256,\"planning_mode\":\"none\","
                         "\"response_mode\":\"llm-required\",\"tools\":[\"search\"]}");
    REFUSES("agent.run", "{\"prompt\":\"hi\"}");
    REFUSES("agent.run", "{\"run_id\":\"0190a6f2-7c3e-7a10-8b2c-1234567890ab\",\"prompt\":\"\"}");
    REFUSES("agent.run", "{\"run_id\":\"short\",\"prompt\":\"hi\"}");
    REFUSES("agent.run", "{\"run_id\":\"0190a6f2-7c3e-7a10-8b2c-1234567890ab\",\"prompt\":\"hi\","
                         "\"temperature\":2.5}");
    REFUSES("agent.run", "{\"run_id\":\"0190a6f2-7c3e-7a10-8b2c-1234567890ab\",\"prompt\":\"hi\","
                         "\"planning_mode\":\"some\"}");
    REFUSES("agent.run", "{\"run_id\":\"0190a6f2-7c3e-7a10-8b2c-1234567890ab\",\"prompt\":\"hi\","
                         "\"tools\":[\"\"]}");
    REFUSES("agent.run", "{\"run_id\":\"0190a6f2-7c3e-7a10-8b2c-1234567890ab\",\"prompt\":\"hi\","
                         "\"tenant\":\"x\"}");

    ACCEPTS("mcp.discover", "{\"server\":\"everything\"}");
    REFUSES("mcp.discover", "{}");
    REFUSES("mcp.discover", "{\"server\":\"\"}");
    REFUSES("mcp.discover", "{\"server\":7}");
    /* 48 bytes, then 49. */
    ACCEPTS("mcp.discover", "{\"server\":\"a_b-01234567890123456789012345678901234567890123\"}");
    REFUSES("mcp.discover", "{\"server\":\"a_b-012345678901234567890123456789012345678901234\"}");
    REFUSES("mcp.discover", "{\"server\":\"-a\"}");
    REFUSES("mcp.discover", "{\"server\":\"Everything\"}");
    REFUSES("mcp.discover", "{\"server\":\"a/b\"}");
    REFUSES("mcp.discover", "{\"server\":\"s\",\"url\":\"http://x/\"}");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schemas_parse),
        cmocka_unit_test(test_find),
        cmocka_unit_test(test_payload_contracts),
    };
    return cmocka_run_group_tests(tests, init_registry, NULL);
}
