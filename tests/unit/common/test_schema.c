/*
 * test_schema.c - unit tests for the JSON Schema subset: every keyword
 * passing and failing, with the JSON Pointer and message a client sees.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "jsonutil.h"
#include "schema.h"

static cJSON *parse_or_die(const char *text)
{
    char err[128];
    cJSON *j = json_parse_bounded(text, strlen(text), 1 << 20, JSON_MAX_DEPTH, err, sizeof err);
    if (j == NULL)
        fail_msg("test JSON does not parse (%s): %s", err, text);
    return j;
}

/* Validates instance against schema (both JSON text) and checks the
 * outcome: want_path NULL means it must pass. */
static void check(const char *schema_text, const char *instance_text,
                  const char *want_path, const char *want_message)
{
    cJSON *schema = parse_or_die(schema_text);
    cJSON *instance = parse_or_die(instance_text);
    schema_error err;
    memset(&err, 'x', sizeof err);
    int rc = schema_validate(schema, instance, &err);
    if (want_path == NULL) {
        if (rc != 0)
            fail_msg("%s against %s: unexpected error %s: %s", instance_text, schema_text,
                     err.path, err.message);
    } else {
        if (rc != -1)
            fail_msg("%s against %s: accepted", instance_text, schema_text);
        assert_string_equal(err.path, want_path);
        assert_string_equal(err.message, want_message);
    }
    cJSON_Delete(schema);
    cJSON_Delete(instance);
}

#define PASS(schema, instance) check(schema, instance, NULL, NULL)

static void test_type_each(void **state)
{
    PASS("{\"type\":\"integer\"}", "3");
    PASS("{\"type\":\"integer\"}", "3.0");   /* no fractional part: an integer */
    check("{\"type\":\"integer\"}", "3.5", "", "must be an integer");
    check("{\"type\":\"integer\"}", "\"3\"", "", "must be an integer");
    PASS("{\"type\":\"number\"}", "3.5");
    check("{\"type\":\"number\"}", "true", "", "must be a number");
    PASS("{\"type\":\"string\"}", "\"s\"");
    check("{\"type\":\"string\"}", "1", "", "must be a string");
    PASS("{\"type\":\"boolean\"}", "false");
    check("{\"type\":\"boolean\"}", "0", "", "must be a boolean");
    PASS("{\"type\":\"null\"}", "null");
    check("{\"type\":\"null\"}", "{}", "", "must be null");
    PASS("{\"type\":\"object\"}", "{}");
    check("{\"type\":\"object\"}", "[]", "", "must be an object");
    PASS("{\"type\":\"array\"}", "[]");
    check("{\"type\":\"array\"}", "{}", "", "must be an array");
}

static void test_type_list(void **state)
{
    PASS("{\"type\":[\"string\",\"null\"]}", "null");
    PASS("{\"type\":[\"string\",\"null\"]}", "\"a\"");
    check("{\"type\":[\"string\",\"null\"]}", "1", "", "must be a string or null");
    check("{\"type\":[\"string\",\"integer\",\"null\"]}", "1.5", "",
          "must be a string, an integer or null");
}

static void test_type_unknown_is_schema_error(void **state)
{
    check("{\"type\":\"float\"}", "1", "", "invalid schema: unknown type \"float\"");
}

static void test_enum(void **state)
{
    const char *s = "{\"enum\":[\"succeed\",\"fail\"]}";
    PASS(s, "\"fail\"");
    check(s, "\"crash\"", "", "must be one of: succeed, fail");
    check(s, "1", "", "must be one of: succeed, fail");
    /* Non-string values print as JSON; numbers compare by value. */
    PASS("{\"enum\":[1,null,{\"a\":[1]}]}", "1.0");
    PASS("{\"enum\":[1,null,{\"a\":[1]}]}", "{\"a\":[1]}");
    check("{\"enum\":[1,null,{\"a\":[1]}]}", "{\"a\":[2]}", "",
          "must be one of: 1, null, {\"a\":[1]}");
}

static void test_const(void **state)
{
    PASS("{\"const\":\"v1\"}", "\"v1\"");
    check("{\"const\":\"v1\"}", "\"v2\"", "", "must be v1");
    PASS("{\"const\":{\"a\":1,\"b\":2}}", "{\"b\":2,\"a\":1}");   /* member order is free */
    check("{\"const\":{\"a\":1}}", "{\"a\":1,\"b\":2}", "", "must be {\"a\":1}");
    check("{\"const\":true}", "1", "", "must be true");
}

static void test_minimum_maximum(void **state)
{
    const char *s = "{\"type\":\"integer\",\"minimum\":1,\"maximum\":1000}";
    PASS(s, "1");
    PASS(s, "1000");
    check(s, "0", "", "must be at least 1");
    check(s, "1001", "", "must be at most 1000");
    check("{\"maximum\":0.5}", "0.75", "", "must be at most 0.5");
}

static void test_exclusive_bounds(void **state)
{
    const char *s = "{\"exclusiveMinimum\":0,\"exclusiveMaximum\":2}";
    PASS(s, "0.001");
    PASS(s, "1.999");
    check(s, "0", "", "must be greater than 0");
    check(s, "2", "", "must be less than 2");
}

static void test_numeric_keywords_ignore_other_types(void **state)
{
    PASS("{\"minimum\":5,\"minLength\":3,\"minItems\":2,\"required\":[\"x\"]}", "true");
}

static void test_string_lengths_in_code_points(void **state)
{
    const char *s = "{\"type\":\"string\",\"minLength\":2,\"maxLength\":3}";
    PASS(s, "\"ab\"");
    PASS(s, "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"");   /* 3 code points, 9 bytes */
    check(s, "\"a\"", "", "must be at least 2 characters");
    check(s, "\"abcd\"", "", "must be at most 3 characters");
    char long_text[210];
    long_text[0] = '"';
    memset(long_text + 1, 'x', 201);
    strcpy(long_text + 202, "\"");
    check("{\"maxLength\":200}", long_text, "", "must be at most 200 characters");
    long_text[201] = '"';
    long_text[202] = '\0';
    PASS("{\"maxLength\":200}", long_text);
    check("{\"minLength\":1}", "\"\"", "", "must be at least 1 character");
}

static void test_required(void **state)
{
    const char *s = "{\"type\":\"object\",\"required\":[\"mode\",\"steps\"]}";
    PASS(s, "{\"mode\":\"x\",\"steps\":1}");
    check(s, "{\"mode\":\"x\"}", "/steps", "is required");
    check(s, "{}", "/mode", "is required");
}

static void test_properties(void **state)
{
    const char *s = "{\"type\":\"object\",\"properties\":{\"steps\":{\"type\":\"integer\"}}}";
    PASS(s, "{\"steps\":4,\"other\":\"anything\"}");
    check(s, "{\"steps\":\"4\"}", "/steps", "must be an integer");
}

static void test_additional_properties_false(void **state)
{
    const char *s = "{\"type\":\"object\",\"properties\":{\"a\":{}},"
                    "\"additionalProperties\":false}";
    PASS(s, "{\"a\":1}");
    check(s, "{\"a\":1,\"b\":2}", "/b", "is not allowed");
}

static void test_additional_properties_schema(void **state)
{
    const char *s = "{\"properties\":{\"a\":{\"type\":\"string\"}},"
                    "\"additionalProperties\":{\"type\":\"integer\"}}";
    PASS(s, "{\"a\":\"s\",\"b\":2,\"c\":3}");
    check(s, "{\"a\":\"s\",\"b\":2,\"c\":\"3\"}", "/c", "must be an integer");
    PASS("{\"additionalProperties\":true}", "{\"z\":[]}");
}

static void test_items(void **state)
{
    const char *s = "{\"type\":\"array\",\"items\":{\"type\":\"string\",\"maxLength\":2}}";
    PASS(s, "[\"a\",\"bb\"]");
    check(s, "[\"a\",\"bb\",\"ccc\"]", "/2", "must be at most 2 characters");
    check(s, "[\"a\",1]", "/1", "must be a string");
    check("{\"items\":false}", "[1]", "/0", "is not allowed");
    PASS("{\"items\":false}", "[]");
}

static void test_min_max_items(void **state)
{
    const char *s = "{\"minItems\":1,\"maxItems\":10}";
    PASS(s, "[1]");
    PASS(s, "[1,2,3,4,5,6,7,8,9,10]");
    check(s, "[]", "", "must have at least 1 item");
    check(s, "[1,2,3,4,5,6,7,8,9,10,11]", "", "must have at most 10 items");
    check("{\"minItems\":2}", "[1]", "", "must have at least 2 items");
}

static void test_nested_paths(void **state)
{
    const char *s =
        "{\"type\":\"object\",\"properties\":{"
        "  \"error\":{\"type\":\"object\",\"required\":[\"code\"],"
        "            \"properties\":{\"code\":{\"type\":\"string\"}}},"
        "  \"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\",\"maxLength\":200}},"
        "  \"steps\":{\"type\":\"array\",\"items\":{\"type\":\"object\","
        "            \"properties\":{\"ms\":{\"type\":\"integer\",\"minimum\":0}}}}}}";
    PASS(s, "{\"error\":{\"code\":\"E1\"},\"tags\":[\"a\"],\"steps\":[{\"ms\":3}]}");
    check(s, "{\"error\":{}}", "/error/code", "is required");
    check(s, "{\"error\":{\"code\":7}}", "/error/code", "must be a string");
    check(s, "{\"tags\":[\"a\",\"b\",5]}", "/tags/2", "must be a string");
    check(s, "{\"steps\":[{\"ms\":1},{\"ms\":-1}]}", "/steps/1/ms", "must be at least 0");
}

static void test_pointer_escaping(void **state)
{
    const char *s = "{\"additionalProperties\":{\"type\":\"integer\"}}";
    check(s, "{\"a/b\":\"x\"}", "/a~1b", "must be an integer");
    check(s, "{\"m~n\":\"x\"}", "/m~0n", "must be an integer");
    check(s, "{\"~/\":\"x\"}", "/~0~1", "must be an integer");
    check("{\"required\":[\"x/y~\"]}", "{}", "/x~1y~0", "is required");
    check(s, "{\"\":\"x\"}", "/", "must be an integer");
}

static void test_long_path_is_truncated(void **state)
{
    char key[400], instance[512];
    memset(key, 'k', sizeof key - 1);
    key[sizeof key - 1] = '\0';
    snprintf(instance, sizeof instance, "{\"%s\":1}", key);
    cJSON *schema = parse_or_die("{\"additionalProperties\":false}");
    cJSON *inst = parse_or_die(instance);
    schema_error err;
    assert_int_equal(schema_validate(schema, inst, &err), -1);
    assert_int_equal(strlen(err.path), sizeof err.path - 1);
    assert_memory_equal(err.path + strlen(err.path) - 3, "...", 3);
    assert_string_equal(err.message, "is not allowed");
    cJSON_Delete(schema);
    cJSON_Delete(inst);
}

static void test_boolean_schemas(void **state)
{
    PASS("true", "{\"anything\":[1]}");
    check("false", "1", "", "is not allowed");
    check("{\"properties\":{\"x\":false}}", "{\"x\":1}", "/x", "is not allowed");
}

static void test_unknown_keywords_ignored(void **state)
{
    PASS("{\"type\":\"string\",\"format\":\"email\",\"description\":\"d\",\"pattern\":\"^z\"}",
         "\"not an email\"");
}

static void test_type_checked_before_bounds(void **state)
{
    check("{\"type\":\"integer\",\"minimum\":1}", "0.5", "", "must be an integer");
}

static void test_bad_keyword_shapes_are_schema_errors(void **state)
{
    check("{\"minimum\":\"1\"}", "0", "", "invalid schema: minimum must be a number");
    check("{\"maxLength\":-1}", "\"a\"", "", "invalid schema: maxLength must be a non-negative integer");
    check("{\"required\":\"a\"}", "{}", "", "invalid schema: required must be an array");
    check("{\"enum\":\"a\"}", "\"a\"", "", "invalid schema: enum must be an array");
    check("{\"items\":1}", "[1]", "", "invalid schema: items must be a schema");
}

static void test_err_may_be_null_and_is_reset(void **state)
{
    cJSON *schema = parse_or_die("{\"type\":\"string\"}");
    cJSON *good = parse_or_die("\"s\"");
    cJSON *bad = parse_or_die("1");
    assert_int_equal(schema_validate(schema, bad, NULL), -1);
    assert_int_equal(schema_validate(schema, good, NULL), 0);
    schema_error err;
    memset(&err, 'x', sizeof err);
    assert_int_equal(schema_validate(schema, good, &err), 0);
    assert_string_equal(err.path, "");
    assert_string_equal(err.message, "");
    cJSON_Delete(schema);
    cJSON_Delete(good);
    cJSON_Delete(bad);
}

static void test_deep_schema_is_bounded(void **state)
{
    /* A recursive structure 100 levels deep, built directly (the parser
     * would refuse it): the walk stops instead of recursing on. */
    cJSON *schema = cJSON_CreateObject(), *s = schema;
    cJSON *instance = cJSON_CreateArray(), *in = instance;
    for (int i = 0; i < 100; i++) {
        cJSON *sub = cJSON_CreateObject();
        cJSON_AddItemToObject(s, "items", sub);
        s = sub;
        cJSON *a = cJSON_CreateArray();
        cJSON_AddItemToArray(in, a);
        in = a;
    }
    schema_error err;
    assert_int_equal(schema_validate(schema, instance, &err), -1);
    assert_string_equal(err.message, "is nested too deeply");
    cJSON_Delete(schema);
    cJSON_Delete(instance);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_type_each),
        cmocka_unit_test(test_type_list),
        cmocka_unit_test(test_type_unknown_is_schema_error),
        cmocka_unit_test(test_enum),
        cmocka_unit_test(test_const),
        cmocka_unit_test(test_minimum_maximum),
        cmocka_unit_test(test_exclusive_bounds),
        cmocka_unit_test(test_numeric_keywords_ignore_other_types),
        cmocka_unit_test(test_string_lengths_in_code_points),
        cmocka_unit_test(test_required),
        cmocka_unit_test(test_properties),
        cmocka_unit_test(test_additional_properties_false),
        cmocka_unit_test(test_additional_properties_schema),
        cmocka_unit_test(test_items),
        cmocka_unit_test(test_min_max_items),
        cmocka_unit_test(test_nested_paths),
        cmocka_unit_test(test_pointer_escaping),
        cmocka_unit_test(test_long_path_is_truncated),
        cmocka_unit_test(test_boolean_schemas),
        cmocka_unit_test(test_unknown_keywords_ignored),
        cmocka_unit_test(test_type_checked_before_bounds),
        cmocka_unit_test(test_bad_keyword_shapes_are_schema_errors),
        cmocka_unit_test(test_err_may_be_null_and_is_reset),
        cmocka_unit_test(test_deep_schema_is_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
