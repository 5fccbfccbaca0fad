/*
 * test_llm_stream.c - the OpenAI reply parser (worker/llm/llm_stream.c): the
 * same stream cut at every byte gives the same deltas and response; [DONE]
 * ends it; tool calls come back together from their pieces; usage and
 * finish_reason are read; malformed chunks, oversize lines, oversize
 * arguments and truncated streams fail clearly; CRLF and CR line ends;
 * UTF-8 cut between two reads never reaches a delta cut; a whole JSON
 * (non-stream) reply is read too.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "llm_stream.h"
#include "utf8.h"

/* Collects deltas; checks each is whole UTF-8. */
typedef struct sink {
    char buf[8192];
    size_t len;
    int calls;
    int abort_after;    /* > 0: ask to stop on that call */
} sink;

static int collect(void *user, const char *d, size_t len)
{
    sink *k = user;
    assert_true(len > 0);
    for (size_t i = 0; i < len;) {
        size_t n = utf8_sequence_len((const unsigned char *)d + i, len - i);
        assert_true(n > 0);     /* never a cut or invalid sequence */
        i += n;
    }
    assert_true(k->len + len < sizeof k->buf);
    memcpy(k->buf + k->len, d, len);
    k->len += len;
    k->buf[k->len] = '\0';
    k->calls++;
    return k->abort_after > 0 && k->calls >= k->abort_after;
}

/* Feeds text cut at the given points (a sorted list ending in 0). */
static llm_err feed_cut(llm_stream *s, const char *text, const size_t *cuts)
{
    size_t len = strlen(text), at = 0;
    for (const size_t *c = cuts; *c && *c < len; c++) {
        llm_err e = llm_stream_feed(s, text + at, *c - at);
        if (e != LLM_OK)
            return e;
        at = *c;
    }
    return llm_stream_feed(s, text + at, len - at);
}

static llm_err parse_whole(const char *text, sink *k, llm_response *out, llm_stream *s)
{
    size_t none[] = { 0 };
    llm_stream_init(s, false, collect, k);
    llm_err e = feed_cut(s, text, none);
    memset(out, 0, sizeof *out);
    llm_err f = llm_stream_finish(s, out);
    return e != LLM_OK ? e : f;
}

#define CHUNK(delta) \
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":\"m-1\"," \
    "\"choices\":[{\"index\":0,\"delta\":" delta ",\"finish_reason\":null}]}\n\n"

static const char SIMPLE[] =
    ": keepalive comment\n\n"
    CHUNK("{\"role\":\"assistant\",\"content\":\"\"}")
    CHUNK("{\"content\":\"Hel\"}")
    CHUNK("{\"content\":\"lo, w\\u00f6rld \xe2\x82\xac\"}")
    CHUNK("{\"content\":\"\xf0\x9f\x98\x80!\"}")
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":\"m-1\","
    "\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":\"m-1\","
    "\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":5,"
    "\"total_tokens\":17}}\n\n"
    "data: [DONE]\n\n";

static const char SIMPLE_TEXT[] = "Hello, w\xc3\xb6rld \xe2\x82\xac\xf0\x9f\x98\x80!";

static void test_simple_stream(void **state)
{
    (void)state;
    sink k = {0};
    llm_stream s;
    llm_response out;
    assert_int_equal(parse_whole(SIMPLE, &k, &out, &s), LLM_OK);
    assert_string_equal(out.text, SIMPLE_TEXT);
    assert_int_equal(out.text_len, strlen(SIMPLE_TEXT));
    assert_string_equal(k.buf, SIMPLE_TEXT);
    assert_int_equal(k.calls, 3);   /* the empty first content is no delta */
    assert_string_equal(out.finish_reason, "stop");
    assert_string_equal(out.model, "m-1");
    assert_true(s.have_usage);
    assert_int_equal(out.usage.tokens_in, 12);
    assert_int_equal(out.usage.tokens_out, 5);
    assert_int_equal(out.n_tool_calls, 0);
    assert_true(llm_stream_done(&s));
    llm_response_free(&out);
    llm_stream_free(&s);
}

/* Every split into two pieces, and every split into single bytes. */
static void check_all_splits(const char *text, const char *want_text)
{
    size_t len = strlen(text);
    for (size_t cut = 1; cut < len; cut++) {
        sink k = {0};
        llm_stream s;
        llm_response out;
        size_t cuts[] = { cut, 0 };
        llm_stream_init(&s, false, collect, &k);
        assert_int_equal(feed_cut(&s, text, cuts), LLM_OK);
        memset(&out, 0, sizeof out);
        assert_int_equal(llm_stream_finish(&s, &out), LLM_OK);
        assert_string_equal(out.text, want_text);
        assert_string_equal(k.buf, want_text);
        llm_response_free(&out);
        llm_stream_free(&s);
    }
    sink k = {0};
    llm_stream s;
    llm_stream_init(&s, false, collect, &k);
    for (size_t i = 0; i < len; i++)
        assert_int_equal(llm_stream_feed(&s, text + i, 1), LLM_OK);
    llm_response out;
    memset(&out, 0, sizeof out);
    assert_int_equal(llm_stream_finish(&s, &out), LLM_OK);
    assert_string_equal(out.text, want_text);
    assert_string_equal(k.buf, want_text);
    llm_response_free(&out);
    llm_stream_free(&s);
}

static void test_every_split_point(void **state)
{
    (void)state;
    check_all_splits(SIMPLE, SIMPLE_TEXT);
}

/* A multi-byte character cut between two reads (raw bytes in the JSON
 * string, as servers send them) comes out whole. */
static void test_utf8_split_across_reads(void **state)
{
    (void)state;
    const char *text = CHUNK("{\"content\":\"\xe2\x82\xac\xf0\x9f\x98\x80\"}")
                       "data: [DONE]\n\n";
    const char *euro = strstr(text, "\xe2\x82\xac");
    size_t base = (size_t)(euro - text);
    for (size_t i = 1; i < 7; i++) {
        sink k = {0};
        llm_stream s;
        llm_response out;
        size_t cuts[] = { base + i, 0 };
        llm_stream_init(&s, false, collect, &k);
        assert_int_equal(feed_cut(&s, text, cuts), LLM_OK);
        memset(&out, 0, sizeof out);
        assert_int_equal(llm_stream_finish(&s, &out), LLM_OK);
        assert_string_equal(k.buf, "\xe2\x82\xac\xf0\x9f\x98\x80");
        assert_int_equal(k.calls, 1);
        llm_response_free(&out);
        llm_stream_free(&s);
    }
}

static void test_crlf_and_cr_line_ends(void **state)
{
    (void)state;
    const char *crlf =
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}\r\n\r\n"
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"b\"},"
        "\"finish_reason\":\"stop\"}]}\r\n\r\n"
        "data: [DONE]\r\n\r\n";
    check_all_splits(crlf, "ab");
    const char *cr =
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}\r\r"
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"b\"}}]}\r\r"
        "data: [DONE]\r\r";
    check_all_splits(cr, "ab");
}

static const char TOOLS[] =
    CHUNK("{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"index\":0,"
          "\"id\":\"call_A\",\"type\":\"function\",\"function\":{\"name\":\"system__time\","
          "\"arguments\":\"\"}}]}")
    CHUNK("{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"tz\"}}]}")
    CHUNK("{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"\\\":\\\"UTC\\\"}\"}}]}")
    CHUNK("{\"tool_calls\":[{\"index\":1,\"id\":\"call_B\",\"type\":\"function\","
          "\"function\":{\"name\":\"jobs__list\",\"arguments\":\"\"}}]}")
    "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n"
    "data: [DONE]\n\n";

static void test_tool_call_fragments(void **state)
{
    (void)state;
    size_t len = strlen(TOOLS);
    for (size_t cut = 0; cut < len; cut++) {
        sink k = {0};
        llm_stream s;
        llm_response out;
        size_t cuts[] = { cut, 0 };
        llm_stream_init(&s, false, collect, &k);
        assert_int_equal(feed_cut(&s, TOOLS, cut ? cuts : cuts + 1), LLM_OK);
        memset(&out, 0, sizeof out);
        assert_int_equal(llm_stream_finish(&s, &out), LLM_OK);
        assert_string_equal(out.text, "");
        assert_int_equal(k.calls, 0);
        assert_string_equal(out.finish_reason, "tool_calls");
        assert_int_equal(out.n_tool_calls, 2);
        assert_string_equal(out.tool_calls[0].id, "call_A");
        assert_string_equal(out.tool_calls[0].name, "system__time");
        assert_string_equal(out.tool_calls[0].arguments, "{\"tz\":\"UTC\"}");
        assert_string_equal(out.tool_calls[1].id, "call_B");
        assert_string_equal(out.tool_calls[1].name, "jobs__list");
        assert_string_equal(out.tool_calls[1].arguments, "{}");
        assert_false(s.have_usage);
        llm_response_free(&out);
        llm_stream_free(&s);
    }
}

static void test_too_many_tool_calls_dropped(void **state)
{
    (void)state;
    char text[8192] = "";
    for (int i = 0; i < LLM_MAX_TOOL_CALLS + 3; i++) {
        char c[512];
        snprintf(c, sizeof c,
                 "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":%d,"
                 "\"id\":\"call_%d\",\"function\":{\"name\":\"t%d\",\"arguments\":\"{}\"}}]}}]}"
                 "\n\n", i, i, i);
        strcat(text, c);
    }
    strcat(text, "data: [DONE]\n\n");
    sink k = {0};
    llm_stream s;
    llm_response out;
    assert_int_equal(parse_whole(text, &k, &out, &s), LLM_OK);
    assert_int_equal(out.n_tool_calls, LLM_MAX_TOOL_CALLS);
    assert_int_equal(s.dropped_calls, 3);
    assert_string_equal(out.finish_reason, "tool_calls");
    llm_response_free(&out);
    llm_stream_free(&s);
}

static void test_tool_call_without_name_fails(void **state)
{
    (void)state;
    const char *text =
        CHUNK("{\"tool_calls\":[{\"index\":0,\"id\":\"x\",\"function\":{\"arguments\":\"{}\"}}]}")
        "data: [DONE]\n\n";
    sink k = {0};
    llm_stream s;
    llm_response out;
    assert_int_equal(parse_whole(text, &k, &out, &s), LLM_ERR_BAD_REPLY);
    assert_null(out.text);
    assert_non_null(strstr(out.error, "no function name"));
    llm_stream_free(&s);
}

static void test_oversize_arguments_fail(void **state)
{
    (void)state;
    const char *text =
        CHUNK("{\"tool_calls\":[{\"index\":0,\"id\":\"x\",\"function\":{\"name\":\"f\","
              "\"arguments\":\"0123456789\"}}]}")
        CHUNK("{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"0123456789\"}}]}")
        "data: [DONE]\n\n";
    sink k = {0};
    llm_stream s;
    llm_stream_init(&s, false, collect, &k);
    s.args_max = 15;
    size_t none[] = { 0 };
    assert_int_equal(feed_cut(&s, text, none), LLM_ERR_BAD_REPLY);
    assert_non_null(strstr(s.error, "arguments longer than 15"));
    llm_stream_free(&s);
}

static void test_usage_absent_and_finish_defaults(void **state)
{
    (void)state;
    const char *text = CHUNK("{\"content\":\"hi\"}") "data: [DONE]\n\n";
    sink k = {0};
    llm_stream s;
    llm_response out;
    assert_int_equal(parse_whole(text, &k, &out, &s), LLM_OK);
    assert_false(s.have_usage);
    assert_int_equal(out.usage.tokens_in, 0);
    assert_string_equal(out.finish_reason, "stop");
    llm_response_free(&out);
    llm_stream_free(&s);
}

static void test_done_ends_the_stream(void **state)
{
    (void)state;
    /* Anything after [DONE] is not read, not even garbage. */
    const char *text = CHUNK("{\"content\":\"x\"}") "data: [DONE]\n\ndata: {garbage\n\n";
    sink k = {0};
    llm_stream s;
    llm_response out;
    assert_int_equal(parse_whole(text, &k, &out, &s), LLM_OK);
    assert_string_equal(out.text, "x");
    llm_response_free(&out);
    llm_stream_free(&s);
}

static void check_fails(const char *text, llm_err want, const char *why)
{
    sink k = {0};
    llm_stream s;
    llm_response out;
    assert_int_equal(parse_whole(text, &k, &out, &s), want);
    assert_null(out.text);
    assert_int_equal(out.n_tool_calls, 0);
    if (!strstr(out.error, why))
        fail_msg("error '%s' does not say '%s'", out.error, why);
    llm_stream_free(&s);
}

static void test_malformed_chunks(void **state)
{
    (void)state;
    check_fails(CHUNK("{\"content\":\"a\"}") "data: {\"choices\":[{\"delta\":\n\n"
                "data: [DONE]\n\n", LLM_ERR_BAD_REPLY, "malformed chunk 2");
    check_fails("data: [1,2]\n\n", LLM_ERR_BAD_REPLY, "not a JSON object");
    check_fails("data: {\"choices\":{}}\n\n", LLM_ERR_BAD_REPLY, "choices is not an array");
    check_fails("data: {\"id\":\"x\"}\n\n", LLM_ERR_BAD_REPLY, "neither choices nor usage");
    check_fails(CHUNK("{\"content\":5}"), LLM_ERR_BAD_REPLY, "content is not a string");
    check_fails(CHUNK("[]"), LLM_ERR_BAD_REPLY, "delta is not an object");
    check_fails("data: {\"choices\":[],\"usage\":{\"prompt_tokens\":\"x\"}}\n\n",
                LLM_ERR_BAD_REPLY, "malformed usage");
    check_fails("data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\xff\"}}]}\n\n",
                LLM_ERR_BAD_REPLY, "malformed chunk 1");
    check_fails(CHUNK("{\"tool_calls\":{}}"), LLM_ERR_BAD_REPLY, "tool_calls is not an array");
    check_fails(CHUNK("{\"tool_calls\":[{\"index\":-1}]}"), LLM_ERR_BAD_REPLY, "index");
    check_fails("data: {\"error\":{\"message\":\"overloaded\",\"type\":\"server_error\"}}\n\n",
                LLM_ERR_PROVIDER, "overloaded");
}

static void test_truncated_stream(void **state)
{
    (void)state;
    sink k = {0};
    llm_stream s;
    llm_response out;
    assert_int_equal(parse_whole(CHUNK("{\"content\":\"par\"}"), &k, &out, &s),
                     LLM_ERR_BAD_REPLY);
    assert_true(s.truncated);
    assert_string_equal(k.buf, "par");     /* what came was delivered */
    assert_non_null(strstr(out.error, "[DONE]"));
    llm_stream_free(&s);

    /* A finish_reason and a last line without its end are enough. */
    const char *text = CHUNK("{\"content\":\"ok\"}")
        "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"length\"}]}";
    memset(&k, 0, sizeof k);
    assert_int_equal(parse_whole(text, &k, &out, &s), LLM_OK);
    assert_string_equal(out.text, "ok");
    assert_string_equal(out.finish_reason, "length");
    llm_response_free(&out);
    llm_stream_free(&s);
}

static void test_oversize_line(void **state)
{
    (void)state;
    sink k = {0};
    llm_stream s;
    llm_stream_init(&s, false, collect, &k);
    s.line_max = 64;
    char line[200];
    memset(line, 'x', sizeof line);
    line[0] = 'd';
    /* Cut in pieces: the bound holds across reads, before any line end. */
    assert_int_equal(llm_stream_feed(&s, line, 40), LLM_OK);
    assert_int_equal(llm_stream_feed(&s, line + 40, 40), LLM_ERR_BAD_REPLY);
    assert_non_null(strstr(s.error, "longer than 64"));
    /* Sticky. */
    assert_int_equal(llm_stream_feed(&s, "\n\n", 2), LLM_ERR_BAD_REPLY);
    llm_stream_free(&s);

    /* Many data lines of one event add up against the same bound. */
    llm_stream_init(&s, false, collect, &k);
    s.line_max = 64;
    llm_err e = LLM_OK;
    for (int i = 0; i < 10 && e == LLM_OK; i++)
        e = llm_stream_feed(&s, "data: 0123456789\n", 17);
    assert_int_equal(e, LLM_ERR_BAD_REPLY);
    llm_stream_free(&s);
}

static void test_oversize_body_and_text(void **state)
{
    (void)state;
    sink k = {0};
    llm_stream s;
    llm_stream_init(&s, false, collect, &k);
    s.body_max = 100;
    assert_int_equal(llm_stream_feed(&s, SIMPLE, strlen(SIMPLE)), LLM_ERR_BAD_REPLY);
    assert_non_null(strstr(s.error, "reply longer than 100"));
    llm_stream_free(&s);

    memset(&k, 0, sizeof k);
    llm_stream_init(&s, false, collect, &k);
    s.text_max = 4;
    assert_int_equal(llm_stream_feed(&s, SIMPLE, strlen(SIMPLE)), LLM_ERR_BAD_REPLY);
    assert_non_null(strstr(s.error, "text longer than 4"));
    llm_stream_free(&s);
}

static void test_delta_abort(void **state)
{
    (void)state;
    sink k = { .abort_after = 1 };
    llm_stream s;
    llm_response out;
    assert_int_equal(parse_whole(SIMPLE, &k, &out, &s), LLM_ERR_ABORTED);
    assert_int_equal(k.calls, 1);
    assert_null(out.text);
    llm_stream_free(&s);
}

static void test_multiline_data_and_fields(void **state)
{
    (void)state;
    /* One event whose JSON spans two data lines; id:, retry:, event: and
     * a field without a colon are ignored. */
    const char *text =
        "id: 1\nretry: 100\nevent: message\nfoo\n"
        "data: {\"choices\":[{\"index\":0,\n"
        "data: \"delta\":{\"content\":\"joined\"},\"finish_reason\":\"stop\"}]}\n\n"
        "data:[DONE]\n\n";
    check_all_splits(text, "joined");
}

static void test_other_choices_ignored(void **state)
{
    (void)state;
    const char *text =
        "data: {\"choices\":[{\"index\":1,\"delta\":{\"content\":\"other\"}},"
        "{\"index\":0,\"delta\":{\"content\":\"mine\"}}]}\n\n"
        "data: [DONE]\n\n";
    check_all_splits(text, "mine");
}

static void test_json_body_reply(void **state)
{
    (void)state;
    const char *text =
        "{\"id\":\"x\",\"object\":\"chat.completion\",\"model\":\"m-2\",\"choices\":[{"
        "\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"whole answer\","
        "\"tool_calls\":[{\"id\":\"c9\",\"type\":\"function\",\"function\":{\"name\":\"f\","
        "\"arguments\":\"{\\\"a\\\":1}\"}},{\"id\":\"c10\",\"type\":\"function\","
        "\"function\":{\"name\":\"g\",\"arguments\":\"{}\"}}]},"
        "\"finish_reason\":\"tool_calls\"}],"
        "\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4}}";
    size_t len = strlen(text);
    for (size_t cut = 1; cut < len; cut += 7) {
        sink k = {0};
        llm_stream s;
        llm_response out;
        llm_stream_init(&s, true, collect, &k);
        assert_int_equal(llm_stream_feed(&s, text, cut), LLM_OK);
        assert_int_equal(llm_stream_feed(&s, text + cut, len - cut), LLM_OK);
        memset(&out, 0, sizeof out);
        assert_int_equal(llm_stream_finish(&s, &out), LLM_OK);
        assert_string_equal(out.text, "whole answer");
        assert_string_equal(k.buf, "whole answer");
        assert_string_equal(out.model, "m-2");
        assert_int_equal(out.n_tool_calls, 2);
        assert_string_equal(out.tool_calls[0].arguments, "{\"a\":1}");
        assert_string_equal(out.tool_calls[1].id, "c10");
        assert_int_equal(out.usage.tokens_out, 4);
        llm_response_free(&out);
        llm_stream_free(&s);
    }
    /* Not JSON at all. */
    llm_stream s;
    llm_response out;
    llm_stream_init(&s, true, NULL, NULL);
    assert_int_equal(llm_stream_feed(&s, "<html>", 6), LLM_OK);
    memset(&out, 0, sizeof out);
    assert_int_equal(llm_stream_finish(&s, &out), LLM_ERR_BAD_REPLY);
    llm_stream_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple_stream),
        cmocka_unit_test(test_every_split_point),
        cmocka_unit_test(test_utf8_split_across_reads),
        cmocka_unit_test(test_crlf_and_cr_line_ends),
        cmocka_unit_test(test_tool_call_fragments),
        cmocka_unit_test(test_too_many_tool_calls_dropped),
        cmocka_unit_test(test_tool_call_without_name_fails),
        cmocka_unit_test(test_oversize_arguments_fail),
        cmocka_unit_test(test_usage_absent_and_finish_defaults),
        cmocka_unit_test(test_done_ends_the_stream),
        cmocka_unit_test(test_malformed_chunks),
        cmocka_unit_test(test_truncated_stream),
        cmocka_unit_test(test_oversize_line),
        cmocka_unit_test(test_oversize_body_and_text),
        cmocka_unit_test(test_delta_abort),
        cmocka_unit_test(test_multiline_data_and_fields),
        cmocka_unit_test(test_other_choices_ignored),
        cmocka_unit_test(test_json_body_reply),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
