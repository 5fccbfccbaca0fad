/*
 * test_llm_builtin.c - the built-in deterministic provider
 * (worker/llm/llm_builtin.c): it labels its output, gives the same text for
 * the same request, counts usage in words, streams pieces that add up to
 * the text, stops when the callback asks, and refuses malformed requests;
 * it quotes every tool's result in its answer and recalls the session's
 * previous question.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "llm.h"

static const llm_provider *P(void)
{
    return llm_builtin_provider();
}

static llm_request chat_request(const char *prompt, const char *task)
{
    llm_request req = {
        .prompt = prompt,
        .intent = "chat",
        .task = task,
        .temperature = -1,
    };
    return req;
}

static llm_response complete_ok(const llm_request *req)
{
    llm_response resp;
    llm_err e = P()->complete(P(), req, NULL, NULL, &resp);
    assert_int_equal(e, LLM_OK);
    assert_non_null(resp.text);
    assert_int_equal(strlen(resp.text), resp.text_len);
    return resp;
}

/* True when s is well-formed UTF-8. */
static int utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        int n = *p < 0x80 ? 1 : (*p >= 0xC2 && *p <= 0xDF) ? 2
              : (*p >= 0xE0 && *p <= 0xEF) ? 3 : (*p >= 0xF0 && *p <= 0xF4) ? 4 : 0;
        if (n == 0)
            return 0;
        for (int k = 1; k < n; k++)
            if ((p[k] & 0xC0) != 0x80)
                return 0;
        p += n;
    }
    return 1;
}

static void test_provider_identity(void **state)
{
    (void)state;
    assert_non_null(P());
    assert_ptr_equal(P(), llm_builtin_provider());
    assert_string_equal(P()->name, "builtin");
    assert_string_equal(P()->default_model, "builtin-deterministic-1");
    assert_false(P()->is_language_model);
    assert_non_null(P()->complete);
}

static void test_banner_and_content(void **state)
{
    (void)state;
    llm_request req = chat_request("What is the boiling point of water at altitude?",
                                   "Understand the question");
    llm_response resp = complete_ok(&req);

    /* The first line says plainly that no model answered. */
    const char *nl = strchr(resp.text, '\n');
    assert_non_null(nl);
    assert_int_equal((size_t)(nl - resp.text), strlen(LLM_BUILTIN_BANNER));
    assert_memory_equal(resp.text, LLM_BUILTIN_BANNER, strlen(LLM_BUILTIN_BANNER));
    assert_non_null(strstr(resp.text, "no language model was called"));

    /* It restates the task and the request, with its key terms. */
    assert_non_null(strstr(resp.text, "Task: Understand the question."));
    assert_non_null(strstr(resp.text, "\"What is the boiling point of water at altitude?\""));
    assert_non_null(strstr(resp.text, "boiling"));
    assert_non_null(strstr(resp.text, "altitude"));
    assert_string_equal(resp.model, "builtin-deterministic-1");
    assert_string_equal(resp.finish_reason, "stop");
    llm_response_free(&resp);
    assert_null(resp.text);
}

static void test_deterministic(void **state)
{
    (void)state;
    llm_context_item ctx[] = {
        {"Look up the current UTC time (system.time)", "system.time",
         "2026-11-21T10:30:00.123Z", true},
    };
    llm_request req = chat_request("what time is it in UTC?", NULL);
    req.context = ctx;
    req.n_context = 1;
    req.temperature = 1.5;  /* ignored: still the same text */

    llm_response a = complete_ok(&req);
    llm_response b = complete_ok(&req);
    assert_string_equal(a.text, b.text);
    assert_int_equal(a.usage.tokens_in, b.usage.tokens_in);
    assert_int_equal(a.usage.tokens_out, b.usage.tokens_out);

    /* A different task gives a different text. */
    req.task = "Draft the answer";
    llm_response c = complete_ok(&req);
    assert_string_not_equal(a.text, c.text);

    llm_response_free(&a);
    llm_response_free(&b);
    llm_response_free(&c);
}

static void test_quotes_tool_results(void **state)
{
    (void)state;
    llm_context_item ctx[] = {
        {"Understand the question", NULL, "some model text", true},
        {"Look up the current UTC time (system.time)", "system.time",
         "2026-11-21T10:30:00.123Z", true},
        {"Check the worker's health (system.health)", "system.health",
         "not enabled for this run", false},
        {"Draft the answer", NULL, "more text", true},
    };
    llm_request req = chat_request("What is the date today?", NULL);
    req.context = ctx;
    req.n_context = 4;

    llm_response resp = complete_ok(&req);
    assert_non_null(strstr(resp.text, "Answer: The current UTC time is 2026-11-21T10:30:00.123Z."));
    assert_non_null(strstr(resp.text, "1. Understand the question: done"));
    assert_non_null(strstr(resp.text, "3. Check the worker's health (system.health): not completed"
                                      " (not enabled for this run)"));
    assert_non_null(strstr(resp.text, "4. Draft the answer: done"));
    llm_response_free(&resp);

    /* In a step, the time is quoted too. */
    req.task = "Draft the answer";
    resp = complete_ok(&req);
    assert_non_null(strstr(resp.text, "The current UTC time is 2026-11-21T10:30:00.123Z"));
    assert_non_null(strstr(resp.text, "system.health did not run: not enabled for this run."));
    llm_response_free(&resp);
}

static void test_quotes_any_tool_result(void **state)
{
    (void)state;
    static const char jobs[] =
        "1 failed job since 2026-11-21T00:00:00.000Z in this tenant: "
        "0192f3a4-7b1c-7d2e-9f00-123456789abc (test, failed: boom asked to fail, created "
        "2026-11-21T09:00:00.000Z)";
    llm_context_item ctx[] = {
        {"Understand the question", NULL, "some model text", true},
        {"List the matching jobs (jobs.list)", "jobs.list", jobs, true},
        {"Draft the answer", NULL, "more text", true},
    };
    llm_request req = chat_request("what jobs failed today?", NULL);
    req.context = ctx;
    req.n_context = 3;

    llm_response resp = complete_ok(&req);
    char want[512];
    snprintf(want, sizeof(want), "Answer: jobs.list reported: %s.", jobs);
    if (!strstr(resp.text, want))
        fail_msg("no \"%s\" in:\n%s", want, resp.text);
    assert_non_null(strstr(resp.text, "2. List the matching jobs (jobs.list): done"));
    llm_response_free(&resp);
}

static void test_recalls_the_session(void **state)
{
    (void)state;
    llm_turn turns[] = {
        {"user", "What is a lighthouse?"},
        {"assistant", "A tower with a light."},
        {"user", "Who keeps it?"},
        {"assistant", "A keeper."},
    };
    llm_request req = chat_request("And at night?", NULL);
    req.history = turns;
    req.n_history = 4;
    llm_response resp = complete_ok(&req);
    assert_non_null(strstr(resp.text, "Earlier in this session (2 earlier requests) you asked: "
                                      "\"Who keeps it?\"."));
    long long in_with = resp.usage.tokens_in;
    llm_response_free(&resp);

    req.n_history = 0;
    resp = complete_ok(&req);
    assert_null(strstr(resp.text, "Earlier in this session"));
    assert_true(resp.usage.tokens_in < in_with);     /* the turns were counted */
    llm_response_free(&resp);

    req.history = NULL;
    req.n_history = 2;      /* turns promised but none given */
    assert_int_equal(P()->complete(P(), &req, NULL, NULL, &resp), LLM_ERR_INVALID_REQUEST);
}

static void test_intent_shapes_text(void **state)
{
    (void)state;
    llm_request req = chat_request("rotate the signing keys", "List the risks to them");
    req.intent = "security";
    llm_response sec = complete_ok(&req);
    assert_non_null(strstr(sec.text, "(intent: security)"));
    assert_non_null(strstr(sec.text, "assets, risks and controls"));
    req.intent = "graph";
    llm_response graph = complete_ok(&req);
    assert_string_not_equal(sec.text, graph.text);
    llm_response_free(&sec);
    llm_response_free(&graph);
}

static long long words_in(const char *s)
{
    long long n = 0;
    int in = 0;
    for (; s && *s; s++) {
        int sp = *s == ' ' || *s == '\n' || *s == '\t' || *s == '\r';
        if (!sp && !in)
            n++;
        in = !sp;
    }
    return n;
}

static void test_usage_counts_words(void **state)
{
    (void)state;
    llm_context_item ctx[] = {
        {"Look up the time", "system.time", "2026-11-21T10:30:00.123Z", true},
    };
    llm_request req = chat_request("  how   many words\tare here  ", "Draft the answer");
    req.context = ctx;
    req.n_context = 1;
    llm_response resp = complete_ok(&req);

    /* In: prompt 5 + intent 1 + task 3 + title 4 + tool 1 + text 1. */
    assert_int_equal(resp.usage.tokens_in, 5 + 1 + 3 + 4 + 1 + 1);
    assert_int_equal(resp.usage.tokens_out, words_in(resp.text));
    assert_true(resp.usage.tokens_out > 10);
    assert_int_equal(llm_count_words(resp.text), resp.usage.tokens_out);
    assert_int_equal(llm_count_words(NULL), 0);
    assert_int_equal(llm_count_words(" \t\n"), 0);
    llm_response_free(&resp);
}

typedef struct collector {
    char buf[16384];
    size_t len;
    int calls;
    int abort_at;       /* abort on this call (1-based); 0 never */
    int bad_piece;      /* a piece was empty or did not start a word */
} collector;

static int collect(void *user, const char *delta, size_t len)
{
    collector *c = user;
    c->calls++;
    if (len == 0 || delta[0] == ' ' || delta[0] == '\n')
        c->bad_piece = 1;
    assert_true(c->len + len < sizeof(c->buf));
    memcpy(c->buf + c->len, delta, len);
    c->len += len;
    c->buf[c->len] = '\0';
    return c->abort_at && c->calls >= c->abort_at;
}

static void test_deltas_add_up_to_text(void **state)
{
    (void)state;
    llm_request req = chat_request("Explain how tides work, briefly please.", NULL);
    collector *c = calloc(1, sizeof(*c));
    assert_non_null(c);

    llm_response resp;
    assert_int_equal(P()->complete(P(), &req, collect, c, &resp), LLM_OK);
    assert_string_equal(c->buf, resp.text);
    assert_int_equal(c->len, resp.text_len);
    assert_false(c->bad_piece);
    /* A few words at a time: many pieces, none longer than three words. */
    assert_true(c->calls >= resp.usage.tokens_out / 3);
    assert_true(c->calls > 5);

    /* Streaming does not change the text. */
    llm_response plain = complete_ok(&req);
    assert_string_equal(plain.text, resp.text);
    llm_response_free(&plain);
    llm_response_free(&resp);
    free(c);
}

static void test_abort_via_callback(void **state)
{
    (void)state;
    llm_request req = chat_request("Explain how tides work, briefly please.", "Draft the answer");
    collector *c = calloc(1, sizeof(*c));
    assert_non_null(c);
    c->abort_at = 2;

    llm_response resp;
    memset(&resp, 0x5a, sizeof(resp));
    assert_int_equal(P()->complete(P(), &req, collect, c, &resp), LLM_ERR_ABORTED);
    assert_int_equal(c->calls, 2);      /* nothing after the abort */
    assert_null(resp.text);
    assert_int_equal(resp.text_len, 0);
    llm_response_free(&resp);           /* harmless on an empty response */

    c->abort_at = 1;
    c->calls = 0;
    assert_int_equal(P()->complete(P(), &req, collect, c, &resp), LLM_ERR_ABORTED);
    assert_int_equal(c->calls, 1);
    free(c);
}

static void test_max_tokens_caps_body(void **state)
{
    (void)state;
    llm_request req = chat_request("Explain how tides work, briefly please.", "Draft the answer");
    req.max_tokens = 4;
    llm_response resp = complete_ok(&req);
    assert_string_equal(resp.finish_reason, "length");
    const char *nl = strchr(resp.text, '\n');
    assert_non_null(nl);
    assert_memory_equal(resp.text, LLM_BUILTIN_BANNER, strlen(LLM_BUILTIN_BANNER));
    assert_int_equal(words_in(nl + 1), 4);
    assert_int_equal(resp.usage.tokens_out, words_in(resp.text));
    llm_response_free(&resp);
}

static void test_prompt_is_flattened_and_bounded(void **state)
{
    (void)state;
    /* 400 two-byte characters with line breaks and a control character:
     * the quote stays on one line, valid UTF-8, and is cut with "...". */
    char prompt[2048];
    size_t o = 0;
    for (int i = 0; i < 400; i++) {
        prompt[o++] = (char)0xC3;
        prompt[o++] = (char)0xA9;
        if (i % 50 == 49)
            prompt[o++] = '\n';
    }
    prompt[o++] = '\x01';
    prompt[o] = '\0';
    llm_request req = chat_request(prompt, "Understand the question");
    llm_response resp = complete_ok(&req);
    assert_true(utf8_valid(resp.text));
    assert_null(strchr(resp.text, '\x01'));
    const char *q = strstr(resp.text, "Request: \"");
    assert_non_null(q);
    const char *end = strchr(q, '\n');
    assert_non_null(end);
    assert_true(end - q < 260);
    assert_non_null(strstr(q, "...\""));
    llm_response_free(&resp);
}

static void test_invalid_requests(void **state)
{
    (void)state;
    llm_response resp;
    llm_request req = chat_request(NULL, "x");
    assert_int_equal(P()->complete(P(), &req, NULL, NULL, &resp), LLM_ERR_INVALID_REQUEST);
    assert_null(resp.text);
    assert_int_equal(P()->complete(P(), NULL, NULL, NULL, &resp), LLM_ERR_INVALID_REQUEST);

    req = chat_request("hi", NULL);
    assert_int_equal(P()->complete(P(), &req, NULL, NULL, NULL), LLM_ERR_INVALID_REQUEST);
    req.n_context = 1;      /* items promised but none given */
    assert_int_equal(P()->complete(P(), &req, NULL, NULL, &resp), LLM_ERR_INVALID_REQUEST);

    llm_context_item many[LLM_MAX_CONTEXT_ITEMS + 1];
    memset(many, 0, sizeof(many));
    req.context = many;
    req.n_context = LLM_MAX_CONTEXT_ITEMS + 1;
    assert_int_equal(P()->complete(P(), &req, NULL, NULL, &resp), LLM_ERR_INVALID_REQUEST);
    req.n_context = LLM_MAX_CONTEXT_ITEMS;  /* the limit itself is fine */
    resp = complete_ok(&req);
    llm_response_free(&resp);
}

static void test_strerror(void **state)
{
    (void)state;
    assert_string_equal(llm_strerror(LLM_OK), "ok");
    assert_string_equal(llm_strerror(LLM_ERR_ABORTED), "aborted by the caller");
    assert_string_equal(llm_strerror((llm_err)999), "unknown error");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_provider_identity),
        cmocka_unit_test(test_banner_and_content),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_quotes_tool_results),
        cmocka_unit_test(test_quotes_any_tool_result),
        cmocka_unit_test(test_recalls_the_session),
        cmocka_unit_test(test_intent_shapes_text),
        cmocka_unit_test(test_usage_counts_words),
        cmocka_unit_test(test_deltas_add_up_to_text),
        cmocka_unit_test(test_abort_via_callback),
        cmocka_unit_test(test_max_tokens_caps_body),
        cmocka_unit_test(test_prompt_is_flattened_and_bounded),
        cmocka_unit_test(test_invalid_requests),
        cmocka_unit_test(test_strerror),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
