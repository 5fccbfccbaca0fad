/*
 * test_trace.c - W3C traceparent parsing and formatting, span ids and
 * parent links, the thread's current context, the sampling decision and
 * the sink, and the exporter's settings check (otlp_check_settings).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "otlp_settings.h"
#include "trace.h"

#define TP "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

static span *sunk[64];
static int nsunk;

static void test_sink(span *s)
{
    if (nsunk < 64) sunk[nsunk++] = s;
    else span_free(s);
}

static void sink_reset(void)
{
    for (int i = 0; i < nsunk; i++) span_free(sunk[i]);
    nsunk = 0;
}

static void test_parse_and_format_round_trip(void **state)
{
    (void)state;
    trace_ctx c;
    assert_int_equal(trace_parse(TP, &c), 0);
    assert_true(trace_valid(&c));
    assert_int_equal(c.trace_id[0], 0x4b);
    assert_int_equal(c.span_id[7], 0xb7);
    assert_int_equal(c.flags, TRACE_FLAG_SAMPLED);
    char out[TRACEPARENT_LEN + 1];
    trace_format(&c, out);
    assert_string_equal(out, TP);
}

static void test_parse_refuses_what_the_spec_refuses(void **state)
{
    (void)state;
    static const char *bad[] = {
        "",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",      /* short */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-011",    /* long */
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",     /* version */
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",     /* uppercase */
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",     /* zero trace */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",     /* zero span */
        "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",     /* separator */
        "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",     /* not hex */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        trace_ctx c;
        memset(&c, 0xff, sizeof c);
        assert_int_equal(trace_parse(bad[i], &c), -1);
        assert_false(trace_valid(&c));
    }
    trace_ctx c;
    assert_int_equal(trace_parse(NULL, &c), -1);
}

static void test_child_continues_the_trace_with_a_new_span_id(void **state)
{
    (void)state;
    trace_ctx parent;
    assert_int_equal(trace_parse(TP, &parent), 0);
    span *s = span_start("child", SPAN_KIND_SERVER, &parent);
    assert_non_null(s);
    assert_memory_equal(s->ctx.trace_id, parent.trace_id, 16);
    assert_memory_equal(s->parent_span_id, parent.span_id, 8);
    assert_memory_not_equal(s->ctx.span_id, parent.span_id, 8);
    char tp[TRACEPARENT_LEN + 1];
    span_traceparent(s, tp);
    assert_memory_equal(tp, TP, 36);             /* same version and trace id */
    assert_memory_not_equal(tp + 36, TP + 36, 16);
    span_free(s);

    span *root = span_start("root", SPAN_KIND_INTERNAL, NULL);
    static const uint8_t zero[8];
    assert_memory_equal(root->parent_span_id, zero, 8);
    assert_memory_not_equal(root->ctx.trace_id, parent.trace_id, 16);
    span_free(root);
}

static void test_current_context_nests_and_unwinds(void **state)
{
    (void)state;
    trace_set_sink(test_sink);
    trace_set_current(NULL);
    char hdr[TRACE_HEADER_LEN + 1];
    assert_false(trace_current_header(hdr));
    assert_string_equal(hdr, "");

    span *outer = span_start_current("outer", SPAN_KIND_CONSUMER);
    span *inner = span_start_current("inner", SPAN_KIND_CLIENT);
    assert_memory_equal(inner->parent_span_id, outer->ctx.span_id, 8);
    trace_ctx cur = trace_current();
    assert_memory_equal(cur.span_id, inner->ctx.span_id, 8);

    char tp[TRACEPARENT_LEN + 1];
    span_traceparent(inner, tp);
    assert_true(trace_current_header(hdr));
    assert_int_equal(strlen(hdr), TRACE_HEADER_LEN);
    assert_memory_equal(hdr, "traceparent: ", 13);
    assert_string_equal(hdr + 13, tp);

    uint8_t outer_id[8];
    memcpy(outer_id, outer->ctx.span_id, 8);
    span_set_str(inner, "gen_ai.request.model", "m");
    span_set_int(inner, "gen_ai.usage.input_tokens", 12);
    span_end(inner);
    cur = trace_current();
    assert_memory_equal(cur.span_id, outer_id, 8);
    span_end(outer);
    cur = trace_current();
    assert_false(trace_valid(&cur));

    assert_int_equal(nsunk, 2);
    assert_string_equal(sunk[0]->name, "inner");
    assert_int_equal(sunk[0]->nattrs, 2);
    assert_string_equal(sunk[0]->attrs[0].key, "gen_ai.request.model");
    assert_string_equal(sunk[0]->attrs[0].v.s, "m");
    assert_int_equal(sunk[0]->attrs[1].v.i, 12);
    assert_true(sunk[0]->end_ns >= sunk[0]->start_ns);
    sink_reset();
    trace_set_sink(NULL);
}

static void test_unsampled_traces_reach_no_sink(void **state)
{
    (void)state;
    trace_set_sink(test_sink);
    trace_set_sampling(0);
    span *root = span_start("root", SPAN_KIND_SERVER, NULL);
    assert_int_equal(root->ctx.flags & TRACE_FLAG_SAMPLED, 0);
    span *child = span_start("child", SPAN_KIND_INTERNAL, &root->ctx);
    span_end(child);
    span_end(root);
    assert_int_equal(nsunk, 0);

    /* A caller's sampled flag wins over the ratio. */
    trace_ctx sampled;
    assert_int_equal(trace_parse(TP, &sampled), 0);
    span_end(span_start("continued", SPAN_KIND_SERVER, &sampled));
    assert_int_equal(nsunk, 1);
    sink_reset();

    trace_set_sampling(1);
    span_end(span_start("kept", SPAN_KIND_SERVER, NULL));
    assert_int_equal(nsunk, 1);
    sink_reset();
    trace_set_sink(NULL);
}

static void test_attributes_beyond_the_cap_are_counted(void **state)
{
    (void)state;
    /* Without a sink nothing is exported, so nothing is kept. */
    span *off = span_start("off", SPAN_KIND_INTERNAL, NULL);
    span_set_str(off, "k", "v");
    span_set_error(off, "x");
    assert_int_equal(off->nattrs, 0);
    assert_false(off->error);
    span_free(off);

    trace_set_sink(test_sink);
    span *s = span_start("many", SPAN_KIND_INTERNAL, NULL);
    for (int i = 0; i < SPAN_MAX_ATTRS + 5; i++) span_set_int(s, "k", i);
    assert_int_equal(s->nattrs, SPAN_MAX_ATTRS);
    assert_int_equal(s->dropped_attrs, 5);
    span_set_str(s, "skipped", NULL);
    assert_int_equal(s->dropped_attrs, 5);
    span_set_name(s, "renamed");
    assert_string_equal(s->name, "renamed");
    span_set_error(s, "why");
    assert_true(s->error);
    assert_string_equal(s->status_message, "why");
    span_free(s);
    trace_set_sink(NULL);
    /* NULL spans are accepted everywhere. */
    span_set_str(NULL, "k", "v");
    span_set_int(NULL, "k", 1);
    span_set_error(NULL, "x");
    span_end(NULL);
}

static void test_settings_check(void **state)
{
    (void)state;
    char err[256];
    assert_int_equal(otlp_check_settings("", "", err, sizeof err), 0);
    assert_int_equal(otlp_check_settings("http://127.0.0.1:4318", "", err, sizeof err), 0);
    assert_int_equal(otlp_check_settings("https://otel.example.com/", "x-api-key=abc,x-b=c=d",
                                         err, sizeof err), 0);
    assert_int_equal(otlp_check_settings("ftp://x", "", err, sizeof err), -1);
    assert_non_null(strstr(err, "AGENTGATE_OTLP_ENDPOINT"));
    assert_int_equal(otlp_check_settings("127.0.0.1:4318", "", err, sizeof err), -1);
    assert_int_equal(otlp_check_settings("", "novalue", err, sizeof err), -1);
    assert_non_null(strstr(err, "AGENTGATE_OTLP_HEADERS"));
    /* The value (a key, perhaps) is never echoed. */
    assert_int_equal(otlp_check_settings("", "x-key=secret\r\nInjected: 1", err, sizeof err), -1);
    assert_null(strstr(err, "secret"));
    assert_int_equal(otlp_check_settings("", "bad name=v", err, sizeof err), -1);
    assert_int_equal(otlp_check_settings("", "=v", err, sizeof err), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_and_format_round_trip),
        cmocka_unit_test(test_parse_refuses_what_the_spec_refuses),
        cmocka_unit_test(test_child_continues_the_trace_with_a_new_span_id),
        cmocka_unit_test(test_current_context_nests_and_unwinds),
        cmocka_unit_test(test_unsampled_traces_reach_no_sink),
        cmocka_unit_test(test_attributes_beyond_the_cap_are_counted),
        cmocka_unit_test(test_settings_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
