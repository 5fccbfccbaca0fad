/*
 * test_plan.c - the pure parts of planning (worker/agent/plan.c): which
 * built-in tools the deterministic planner picks for a prompt, with which
 * arguments, and the strict parsing of a model's TODO list and step list,
 * which must refuse every shape it was not asked for.
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
#include "plan.h"

/* 2026-11-21T10:30:00.123Z */
#define NOW_MS 1795257000123LL

/* The tools chosen for prompt as "name{args}" joined by spaces. */
static char *tools_for(const char *prompt)
{
    plan_tool t[PLAN_MAX_TOOLS];
    int n = plan_match_tools(prompt, NOW_MS, t, PLAN_MAX_TOOLS);
    assert_true(n >= 0);
    static char out[2048];
    out[0] = '\0';
    for (int i = 0; i < n; i++) {
        char *args = json_print(t[i].args);
        assert_non_null(args);
        assert_non_null(t[i].title);
        snprintf(out + strlen(out), sizeof(out) - strlen(out), "%s%s%s", i ? " " : "",
                 t[i].tool, args);
        free(args);
    }
    plan_tools_free(t, n);
    return out;
}

static void expect_tools(const char *prompt, const char *want)
{
    const char *got = tools_for(prompt);
    if (strcmp(got, want) != 0)
        fail_msg("\"%s\": tools \"%s\", expected \"%s\"", prompt, got, want);
}

static void test_time_and_health(void **state)
{
    (void)state;
    expect_tools("What time is it in UTC?", "system.time{}");
    expect_tools("what's the date today", "system.time{}");
    expect_tools("WHAT DAY IS IT", "system.time{}");
    expect_tools("Is the worker healthy? What's its uptime?", "system.health{}");
    expect_tools("time and health please", "system.time{} system.health{}");
    expect_tools("runtime errors in my code", "");          /* whole words only */
}

static void test_jobs(void **state)
{
    (void)state;
    expect_tools("what jobs failed today?",
                 "jobs.list{\"status\":\"failed\",\"since\":\"2026-11-21T00:00:00.000Z\"}");
    expect_tools("Which jobs are running?", "jobs.list{\"status\":\"running\"}");
    expect_tools("list cancelled jobs", "jobs.list{\"status\":\"cancelled\"}");
    expect_tools("any canceled jobs?", "jobs.list{\"status\":\"cancelled\"}");
    expect_tools("jobs that succeeded today",
                 "jobs.list{\"status\":\"succeeded\",\"since\":\"2026-11-21T00:00:00.000Z\"}");
    expect_tools("show pending jobs", "jobs.list{\"status\":\"queued\"}");
    expect_tools("show my jobs", "jobs.list{}");
    expect_tools("what happened to job 0192F3A4-7B1C-7D2E-9F00-123456789ABC?",
                 "jobs.get{\"id\":\"0192f3a4-7b1c-7d2e-9f00-123456789abc\"}");
    /* Not a whole UUID, or no job word: not a lookup. */
    expect_tools("job 0192f3a4-7b1c-7d2e-9f00-123456789abcd failed",
                 "jobs.list{\"status\":\"failed\"}");
    expect_tools("0192f3a4-7b1c-7d2e-9f00-123456789abc", "");
    expect_tools("my test failed", "");
    expect_tools("I have a job interview", "");
}

static void test_other_tools(void **state)
{
    (void)state;
    expect_tools("what did I ask earlier?", "agent.history{}");
    expect_tools("show the history of this session", "agent.history{}");
    expect_tools("summarise my previous runs", "agent.history{}");
    expect_tools("Which models are available?", "model.list{}");
    expect_tools("what model do you use", "model.list{}");
    expect_tools("Who am I?", "security.describe_principal{}");
    expect_tools("what are my scopes", "security.describe_principal{}");
    expect_tools("which permissions do I have", "security.describe_principal{}");
    expect_tools("what tools do you have?",
                 "catalog.search{\"query\":\"what tools do you have?\"}");
    expect_tools("What can you do?", "catalog.search{\"query\":\"What can you do?\"}");
    expect_tools("Explain event sourcing in two sentences.", "");
}

static void test_several_and_limits(void **state)
{
    (void)state;
    expect_tools("What time is it in UTC, and what can agentgate do for my team?",
                 "system.time{} catalog.search{\"query\":\"What time is it in UTC, and what "
                 "can agentgate do for my team?\"}");
    expect_tools("health, failed jobs, models, who am i",
                 "system.health{} jobs.list{\"status\":\"failed\"} model.list{} "
                 "security.describe_principal{}");

    plan_tool t[2];
    int n = plan_match_tools("time, health, models", NOW_MS, t, 1);
    assert_int_equal(n, 1);
    assert_string_equal(t[0].tool, "system.time");
    plan_tools_free(t, n);
    assert_int_equal(plan_match_tools("time", NOW_MS, t, 0), 0);
    assert_int_equal(plan_match_tools(NULL, NOW_MS, t, 2), 0);

    /* A long prompt's query is cut to catalog.search's 1000 bytes. */
    char big[3000];
    memset(big, 'a', sizeof(big));
    memcpy(big, "tools ", 6);
    big[sizeof(big) - 1] = '\0';
    n = plan_match_tools(big, NOW_MS, t, 2);
    assert_int_equal(n, 1);
    assert_int_equal(strlen(json_get_string(t[0].args, "query")), 1000);
    plan_tools_free(t, n);
}

/* ---- TODO lists ---------------------------------------------------------- */

static int todos(const char *text, plan_todos *out, char *err)
{
    return plan_parse_todos(text, text ? strlen(text) : 0, out, err, 256);
}

static void test_todos_parsed(void **state)
{
    (void)state;
    plan_todos t;
    char err[256];
    assert_int_equal(todos("{\"todos\":[{\"title\":\"  Look up the time \"},"
                           "{\"title\":\"Answer\",\"extra\":1}]}", &t, err), 0);
    assert_int_equal(t.n, 2);
    assert_string_equal(t.title[0], "Look up the time");
    assert_string_equal(t.title[1], "Answer");
    plan_todos_free(&t);
    assert_int_equal(t.n, 0);

    /* A Markdown fence around the JSON is taken off. */
    assert_int_equal(todos("\n```json\n{\"todos\":[{\"title\":\"One\"}]}\n```\n", &t, err), 0);
    assert_int_equal(t.n, 1);
    plan_todos_free(&t);
}

static void test_todos_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {
        NULL,
        "",
        "   ",
        "Sure! Here is the plan: 1. look 2. answer",
        "[{\"title\":\"x\"}]",                          /* not the object asked for */
        "{\"plan\":[{\"title\":\"x\"}]}",
        "{\"todos\":{\"title\":\"x\"}}",
        "{\"todos\":[]}",
        "{\"todos\":[\"just a string\"]}",
        "{\"todos\":[{\"name\":\"x\"}]}",
        "{\"todos\":[{\"title\":5}]}",
        "{\"todos\":[{\"title\":\"   \"}]}",
        "{\"todos\":[{\"title\":\"a\\nb\"}]}",           /* control character */
        "{\"todos\":[{\"title\":\"a\"}]} trailing",
        "{\"todos\":[{\"title\":\"1\"},{\"title\":\"2\"},{\"title\":\"3\"},"
        "{\"title\":\"4\"},{\"title\":\"5\"},{\"title\":\"6\"},{\"title\":\"7\"}]}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        plan_todos t;
        char err[256] = "";
        if (todos(bad[i], &t, err) != -1)
            fail_msg("case %zu accepted: %s", i, bad[i]);
        assert_int_equal(t.n, 0);
        assert_true(strlen(err) > 5);
    }
    /* A title one byte over the limit. */
    char text[PLAN_TITLE_MAX + 64];
    char title[PLAN_TITLE_MAX + 2];
    memset(title, 'x', sizeof(title) - 1);
    title[sizeof(title) - 1] = '\0';
    snprintf(text, sizeof(text), "{\"todos\":[{\"title\":\"%s\"}]}", title);
    plan_todos t;
    char err[256];
    assert_int_equal(todos(text, &t, err), -1);
    title[PLAN_TITLE_MAX] = '\0';
    snprintf(text, sizeof(text), "{\"todos\":[{\"title\":\"%s\"}]}", title);
    assert_int_equal(todos(text, &t, err), 0);
    plan_todos_free(&t);
}

/* ---- step lists ---------------------------------------------------------- */

static bool known(void *user, const char *name)
{
    (void)user;
    return strcmp(name, "system.time") == 0 || strcmp(name, "jobs.list") == 0;
}

static int steps(const char *text, plan_steps *out, char *err)
{
    return plan_parse_steps(text, strlen(text), known, NULL, out, err, 256);
}

static void test_steps_parsed(void **state)
{
    (void)state;
    plan_steps s;
    char err[256];
    assert_int_equal(steps("{\"steps\":[{\"action\":\"tool:invoke\",\"tool\":\"jobs.list\","
                           "\"arguments\":{\"status\":\"failed\"}},"
                           "{\"action\":\"tool:invoke\",\"tool\":\"system.time\"},"
                           "{\"action\":\"llm:call\",\"task\":\"Summarise them\"}]}", &s, err),
                     0);
    assert_int_equal(s.n, 3);
    assert_int_equal(s.step[0].action, PLAN_TOOL_INVOKE);
    assert_string_equal(s.step[0].tool, "jobs.list");
    assert_string_equal(json_get_string(s.step[0].args, "status"), "failed");
    assert_true(cJSON_IsObject(s.step[1].args));              /* no arguments: {} */
    assert_null(s.step[1].args->child);
    assert_int_equal(s.step[2].action, PLAN_LLM_CALL);
    assert_string_equal(s.step[2].task, "Summarise them");
    plan_steps_free(&s);
}

static void test_steps_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "{\"steps\":[]}",
        "{\"steps\":[{\"action\":\"shell\",\"task\":\"rm -rf /\"}]}",
        "{\"steps\":[{\"task\":\"x\"}]}",
        "{\"steps\":[{\"action\":\"llm:call\"}]}",
        "{\"steps\":[{\"action\":\"llm:call\",\"task\":\"\"}]}",
        "{\"steps\":[{\"action\":\"tool:invoke\",\"tool\":\"cache.set\"}]}",   /* not known */
        "{\"steps\":[{\"action\":\"tool:invoke\"}]}",
        "{\"steps\":[{\"action\":\"tool:invoke\",\"tool\":\"system.time\","
        "\"arguments\":\"{}\"}]}",
        "{\"steps\":[{\"action\":\"tool:invoke\",\"tool\":\"system.time\","
        "\"arguments\":[1]}]}",
        "{\"steps\":[1]}",
        "{\"steps\":[{\"action\":\"llm:call\",\"task\":\"a\"},"
        "{\"action\":\"llm:call\",\"task\":\"b\"},{\"action\":\"llm:call\",\"task\":\"c\"},"
        "{\"action\":\"llm:call\",\"task\":\"d\"},{\"action\":\"llm:call\",\"task\":\"e\"}]}",
        /* A good step, then a bad one: nothing of it is kept. */
        "{\"steps\":[{\"action\":\"tool:invoke\",\"tool\":\"system.time\"},"
        "{\"action\":\"tool:invoke\",\"tool\":\"nope\"}]}",
        "not json",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        plan_steps s;
        char err[256] = "";
        if (steps(bad[i], &s, err) != -1)
            fail_msg("case %zu accepted: %s", i, bad[i]);
        assert_int_equal(s.n, 0);
        assert_true(strlen(err) > 5);
    }

    /* Arguments over PLAN_ARGS_MAX bytes. */
    char *text = malloc(PLAN_ARGS_MAX + 200);
    char *val = malloc(PLAN_ARGS_MAX + 1);
    assert_non_null(text);
    assert_non_null(val);
    memset(val, 'v', PLAN_ARGS_MAX);
    val[PLAN_ARGS_MAX] = '\0';
    snprintf(text, PLAN_ARGS_MAX + 200, "{\"steps\":[{\"action\":\"tool:invoke\",\"tool\":"
             "\"jobs.list\",\"arguments\":{\"type\":\"%s\"}}]}", val);
    plan_steps s;
    char err[256];
    assert_int_equal(steps(text, &s, err), -1);
    assert_non_null(strstr(err, "longer"));
    free(text);
    free(val);

    /* No catalog check at all: every tool is refused. */
    const char *one = "{\"steps\":[{\"action\":\"tool:invoke\",\"tool\":\"system.time\"}]}";
    assert_int_equal(plan_parse_steps(one, strlen(one), NULL, NULL, &s, err, sizeof(err)), -1);
}

static void test_graph_terms(void **state)
{
    char t[PLAN_GRAPH_TERMS][PLAN_TERM_MAX + 1];

    (void)state;
    assert_int_equal(plan_graph_terms("Who is Alice connected to in the knowledge graph?", t,
                                      PLAN_GRAPH_TERMS), 1);
    assert_string_equal(t[0], "Alice");
    /* Names first, then the other words; each once whatever its case. */
    assert_int_equal(plan_graph_terms("what does the graph say about billing and Acme? acme!",
                                      t, PLAN_GRAPH_TERMS), 2);
    assert_string_equal(t[0], "Acme");
    assert_string_equal(t[1], "billing");
    assert_int_equal(plan_graph_terms("Show me the whole knowledge graph", t,
                                      PLAN_GRAPH_TERMS), 0);
    assert_int_equal(plan_graph_terms("What entities are in the graph?", t,
                                      PLAN_GRAPH_TERMS), 0);
    assert_int_equal(plan_graph_terms(NULL, t, PLAN_GRAPH_TERMS), 0);
    assert_int_equal(plan_graph_terms("Alice", t, 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_time_and_health),
        cmocka_unit_test(test_jobs),
        cmocka_unit_test(test_other_tools),
        cmocka_unit_test(test_several_and_limits),
        cmocka_unit_test(test_todos_parsed),
        cmocka_unit_test(test_todos_refused),
        cmocka_unit_test(test_steps_parsed),
        cmocka_unit_test(test_steps_refused),
        cmocka_unit_test(test_graph_terms),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
