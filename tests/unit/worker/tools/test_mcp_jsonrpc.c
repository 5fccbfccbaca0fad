/*
 * test_mcp_jsonrpc.c - the MCP JSON-RPC layer: every kind of message
 * parsed, every malformed shape refused with a reason (never a crash),
 * ids of both kinds and their limits, and the builders' output read back
 * by the parser.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "mcp_jsonrpc.h"

static int parse(const char *s, mcp_message *m, char *err, size_t err_size)
{
    return mcp_jsonrpc_parse(s, strlen(s), MCP_MSG_MAX_DEFAULT, m, err, err_size);
}

/* Parses s expecting a refusal whose reason contains want. */
static void expect_refused(const char *s, const char *want)
{
    mcp_message m;
    char err[256] = "";
    int rc = parse(s, &m, err, sizeof err);
    if (rc != MCP_ERR_PROTOCOL || !strstr(err, want))
        fail_msg("%s: rc %d, err '%s', wanted '%s'", s, rc, err, want);
    assert_null(m.root);
}

static void test_request(void **state)
{
    (void)state;
    mcp_message m;
    char err[256];
    assert_int_equal(parse("{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"tools/call\","
                           "\"params\":{\"name\":\"echo\"}}", &m, err, sizeof err), MCP_OK);
    assert_int_equal(m.kind, MCP_MSG_REQUEST);
    assert_int_equal(m.id.kind, MCP_ID_NUM);
    assert_int_equal(m.id.num, 7);
    assert_string_equal(m.method, "tools/call");
    assert_non_null(m.params);
    assert_string_equal(cJSON_GetObjectItem(m.params, "name")->valuestring, "echo");
    mcp_message_free(&m);
    assert_null(m.root);
}

static void test_notification_without_params(void **state)
{
    (void)state;
    mcp_message m;
    assert_int_equal(parse("{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}",
                           &m, NULL, 0), MCP_OK);
    assert_int_equal(m.kind, MCP_MSG_NOTIFICATION);
    assert_int_equal(m.id.kind, MCP_ID_NONE);
    assert_null(m.params);
    mcp_message_free(&m);
}

static void test_result_with_string_id(void **state)
{
    (void)state;
    mcp_message m;
    assert_int_equal(parse("{\"id\":\"abc\",\"jsonrpc\":\"2.0\",\"result\":{\"x\":1},"
                           "\"extra\":true}", &m, NULL, 0), MCP_OK);
    assert_int_equal(m.kind, MCP_MSG_RESULT);
    assert_int_equal(m.id.kind, MCP_ID_STR);
    assert_string_equal(m.id.str, "abc");
    assert_int_equal(cJSON_GetObjectItem(m.result, "x")->valueint, 1);
    mcp_message_free(&m);
}

static void test_error_response(void **state)
{
    (void)state;
    mcp_message m;
    assert_int_equal(parse("{\"jsonrpc\":\"2.0\",\"id\":3,\"error\":{\"code\":-32602,"
                           "\"message\":\"Unknown\\ntool\\u0007 x\",\"data\":[1]}}",
                           &m, NULL, 0), MCP_OK);
    assert_int_equal(m.kind, MCP_MSG_ERROR);
    assert_int_equal(m.error_code, -32602);
    assert_string_equal(m.error_message, "Unknown tool x");   /* flattened */
    assert_true(cJSON_IsArray(m.error_data));
    mcp_message_free(&m);

    /* An error about an unreadable request has a null id. */
    assert_int_equal(parse("{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32700,"
                           "\"message\":\"Parse error\"}}", &m, NULL, 0), MCP_OK);
    assert_int_equal(m.kind, MCP_MSG_ERROR);
    assert_int_equal(m.id.kind, MCP_ID_NONE);
    mcp_message_free(&m);
}

static void test_ids(void **state)
{
    (void)state;
    mcp_message m;
    assert_int_equal(parse("{\"jsonrpc\":\"2.0\",\"id\":-9007199254740991,\"result\":{}}",
                           &m, NULL, 0), MCP_OK);
    assert_int_equal(m.id.num, -9007199254740991LL);
    mcp_message_free(&m);
    assert_int_equal(parse("{\"jsonrpc\":\"2.0\",\"id\":\"\",\"result\":{}}", &m, NULL, 0),
                     MCP_OK);
    assert_int_equal(m.id.kind, MCP_ID_STR);
    mcp_message_free(&m);

    expect_refused("{\"jsonrpc\":\"2.0\",\"id\":1.5,\"result\":{}}", "id");
    expect_refused("{\"jsonrpc\":\"2.0\",\"id\":9007199254740993,\"result\":{}}", "id");
    expect_refused("{\"jsonrpc\":\"2.0\",\"id\":true,\"result\":{}}", "id");
    expect_refused("{\"jsonrpc\":\"2.0\",\"id\":null,\"result\":{}}", "id");
    expect_refused("{\"jsonrpc\":\"2.0\",\"id\":[1],\"method\":\"ping\"}", "id");
    expect_refused("{\"jsonrpc\":\"2.0\",\"id\":null,\"method\":\"ping\"}", "id");

    char big[400];
    char longid[MCP_ID_STR_MAX + 2];
    memset(longid, 'i', sizeof longid - 1);
    longid[sizeof longid - 1] = '\0';
    snprintf(big, sizeof big, "{\"jsonrpc\":\"2.0\",\"id\":\"%s\",\"result\":{}}", longid);
    expect_refused(big, "id");
}

static void test_id_equal_and_format(void **state)
{
    (void)state;
    mcp_id a = { .kind = MCP_ID_NUM, .num = 5 }, b = a, s = { .kind = MCP_ID_STR };
    strcpy(s.str, "5");
    assert_true(mcp_id_equal(&a, &b));
    assert_false(mcp_id_equal(&a, &s));     /* 5 and "5" are different ids */
    char out[64];
    mcp_id_format(&a, out, sizeof out);
    assert_string_equal(out, "5");
    mcp_id_format(&s, out, sizeof out);
    assert_string_equal(out, "\"5\"");
}

static void test_shapes_refused(void **state)
{
    (void)state;
    expect_refused("{\"id\":1,\"result\":{}}", "jsonrpc");
    expect_refused("{\"jsonrpc\":\"1.0\",\"id\":1,\"result\":{}}", "jsonrpc");
    expect_refused("{\"jsonrpc\":2.0,\"id\":1,\"result\":{}}", "jsonrpc");
    expect_refused("[{\"jsonrpc\":\"2.0\",\"method\":\"ping\",\"id\":1}]", "batches");
    expect_refused("\"hello\"", "not an object");
    expect_refused("{\"jsonrpc\":\"2.0\",\"id\":1}", "neither");
    expect_refused("{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{},\"error\":{\"code\":1,"
                   "\"message\":\"x\"}}", "both");
    expect_refused("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\",\"result\":{}}",
                   "method together");
    expect_refused("{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":[]}", "result is not an object");
    expect_refused("{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{},\"params\":{}}", "params in");
    expect_refused("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\",\"params\":[1]}",
                   "params is not an object");
    expect_refused("{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":\"bad\"}", "error is not");
    expect_refused("{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":1.5,\"message\":\"x\"}}",
                   "error.code");
    expect_refused("{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":1}}", "error.message");
    expect_refused("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":7}", "method");
    expect_refused("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\"}", "method");
    expect_refused("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"has space\"}", "method");
    expect_refused("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tab\\there\"}", "method");

    char big[300];
    char longm[MCP_METHOD_MAX + 2];
    memset(longm, 'm', sizeof longm - 1);
    longm[sizeof longm - 1] = '\0';
    snprintf(big, sizeof big, "{\"jsonrpc\":\"2.0\",\"method\":\"%s\"}", longm);
    expect_refused(big, "method");
}

static void test_bad_json_refused(void **state)
{
    (void)state;
    expect_refused("", "malformed");
    expect_refused("{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":", "malformed");
    expect_refused("{\"jsonrpc\":\"2.0\",\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}",
                   "malformed");               /* duplicate member */
    expect_refused("{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}} trailing", "malformed");
    expect_refused("{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"s\":\"\xff\"}}", "malformed");

    /* Nesting past the limit is refused before cJSON recurses into it. */
    size_t depth = MCP_JSON_MAX_DEPTH + 10;
    char *deep = malloc(64 + 2 * depth);
    strcpy(deep, "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"a\":");
    size_t n = strlen(deep);
    for (size_t i = 0; i < depth; i++)
        deep[n++] = '[';
    for (size_t i = 0; i < depth; i++)
        deep[n++] = ']';
    strcpy(deep + n, "}}");
    expect_refused(deep, "malformed");
    free(deep);
}

static void test_size_limit(void **state)
{
    (void)state;
    const char *s = "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"k\":\"0123456789\"}}";
    mcp_message m;
    char err[128];
    assert_int_equal(mcp_jsonrpc_parse(s, strlen(s), 20, &m, err, sizeof err),
                     MCP_ERR_TOO_LARGE);
    assert_non_null(strstr(err, "limit"));
    assert_null(m.root);
}

/* Random bytes and every prefix of a valid message: refused or parsed,
 * never a crash (run under the sanitizers). */
static void test_garbage_never_crashes(void **state)
{
    (void)state;
    const char *valid = "{\"jsonrpc\":\"2.0\",\"id\":\"x\",\"method\":\"notifications/progress\","
                        "\"params\":{\"progressToken\":\"t\",\"progress\":1.5}}";
    size_t n = strlen(valid);
    for (size_t i = 0; i <= n; i++) {
        mcp_message m;
        int rc = mcp_jsonrpc_parse(valid, i, MCP_MSG_MAX_DEFAULT, &m, NULL, 0);
        assert_true(rc == MCP_OK ? i == n : rc == MCP_ERR_PROTOCOL);
        mcp_message_free(&m);
    }
    static const char alphabet[] = "{}[]\":,0123456789abcdefjsonrpcidmethodresult\\ \x80\xff";
    unsigned seed = 12345;
    char buf[64];
    for (int round = 0; round < 2000; round++) {
        for (size_t i = 0; i < sizeof buf; i++) {
            seed = seed * 1103515245u + 12345u;
            buf[i] = alphabet[(seed >> 16) % (sizeof alphabet - 1)];
        }
        mcp_message m;
        int rc = mcp_jsonrpc_parse(buf, (seed >> 8) % sizeof buf, MCP_MSG_MAX_DEFAULT, &m,
                                   NULL, 0);
        assert_true(rc == MCP_OK || rc == MCP_ERR_PROTOCOL);
        mcp_message_free(&m);
    }
}

static void test_builders_round_trip(void **state)
{
    (void)state;
    mcp_id id = { .kind = MCP_ID_NUM, .num = 42 };
    cJSON *params = cJSON_CreateObject();
    cJSON_AddStringToObject(params, "text", "line one\nline two");
    size_t len;
    char *text = mcp_jsonrpc_request(&id, "tools/call", params, &len);
    assert_non_null(text);
    assert_int_equal(len, strlen(text));
    assert_null(strchr(text, '\n'));            /* one line for stdio */
    mcp_message m;
    assert_int_equal(mcp_jsonrpc_parse(text, len, MCP_MSG_MAX_DEFAULT, &m, NULL, 0), MCP_OK);
    assert_int_equal(m.kind, MCP_MSG_REQUEST);
    assert_true(mcp_id_equal(&m.id, &id));
    assert_string_equal(cJSON_GetObjectItem(m.params, "text")->valuestring,
                        "line one\nline two");
    mcp_message_free(&m);
    free(text);

    text = mcp_jsonrpc_notification("notifications/initialized", NULL, &len);
    assert_string_equal(text, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}");
    free(text);

    mcp_id sid = { .kind = MCP_ID_STR };
    strcpy(sid.str, "srv-1");
    text = mcp_jsonrpc_result(&sid, NULL, &len);
    assert_string_equal(text, "{\"jsonrpc\":\"2.0\",\"id\":\"srv-1\",\"result\":{}}");
    free(text);

    text = mcp_jsonrpc_error(&sid, MCP_RPC_METHOD_NOT_FOUND, "Method not found", &len);
    assert_int_equal(mcp_jsonrpc_parse(text, len, MCP_MSG_MAX_DEFAULT, &m, NULL, 0), MCP_OK);
    assert_int_equal(m.kind, MCP_MSG_ERROR);
    assert_int_equal(m.error_code, -32601);
    assert_string_equal(m.id.str, "srv-1");
    mcp_message_free(&m);
    free(text);

    text = mcp_jsonrpc_error(NULL, MCP_RPC_PARSE_ERROR, "Parse error", NULL);
    assert_non_null(strstr(text, "\"id\":null"));
    free(text);
}

static void test_builders_refuse_bad_input(void **state)
{
    (void)state;
    mcp_id none = {0}, id = { .kind = MCP_ID_NUM, .num = 1 };
    assert_null(mcp_jsonrpc_request(&none, "ping", NULL, NULL));
    assert_null(mcp_jsonrpc_request(&id, "bad method", cJSON_CreateObject(), NULL));
    assert_null(mcp_jsonrpc_request(&id, "ping", cJSON_CreateArray(), NULL));  /* freed */
    assert_null(mcp_jsonrpc_notification("", NULL, NULL));
    assert_null(mcp_jsonrpc_result(&none, NULL, NULL));
    assert_null(mcp_jsonrpc_result(&id, cJSON_CreateString("x"), NULL));
}

static void test_status_names(void **state)
{
    (void)state;
    assert_string_equal(mcp_status_name(MCP_ERR_TIMEOUT), "timeout");
    assert_string_equal(mcp_status_name(MCP_OK), "ok");
    assert_string_equal(mcp_status_name(-99), "unknown error");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request),
        cmocka_unit_test(test_notification_without_params),
        cmocka_unit_test(test_result_with_string_id),
        cmocka_unit_test(test_error_response),
        cmocka_unit_test(test_ids),
        cmocka_unit_test(test_id_equal_and_format),
        cmocka_unit_test(test_shapes_refused),
        cmocka_unit_test(test_bad_json_refused),
        cmocka_unit_test(test_size_limit),
        cmocka_unit_test(test_garbage_never_crashes),
        cmocka_unit_test(test_builders_round_trip),
        cmocka_unit_test(test_builders_refuse_bad_input),
        cmocka_unit_test(test_status_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
