/*
 * test_worker_metrics.c - the worker's series: nothing is registered or
 * counted before worker_metrics_init; after it each report lands in its
 * family with its labels (seen in metrics_render's text), a tool name no
 * manifest has is counted as "(unknown)", a failed model call counts as an
 * error and a successful one does not, and unknown waits are not observed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "metrics.h"
#include "strbuf.h"
#include "worker_metrics.h"

static char *render(void)
{
    strbuf b = {0};
    assert_int_equal(metrics_render(&b), 0);
    return strbuf_take(&b, NULL);
}

static void expect_line(const char *text, const char *line)
{
    char want[512];
    snprintf(want, sizeof want, "\n%s\n", line);
    if (strstr(text, want) == NULL)
        fail_msg("no line \"%s\" in:\n%s", line, text);
}

static void expect_no(const char *text, const char *fragment)
{
    if (strstr(text, fragment) != NULL)
        fail_msg("unexpected \"%s\" in:\n%s", fragment, text);
}

static void test_before_init_nothing(void **state)
{
    (void)state;
    worker_metrics_job_started("t", 1);
    worker_metrics_tool_call("x", "ok", 0.1);
    char *text = render();
    expect_no(text, "agentgate_job_");
    expect_no(text, "agentgate_tool_");
    free(text);
}

static void test_reports_land_in_their_series(void **state)
{
    (void)state;
    worker_metrics_init();
    worker_metrics_init();      /* a second call changes nothing */

    worker_metrics_job_started("test", 0.2);
    worker_metrics_job_started("test", -1);         /* unknown: not observed */
    worker_metrics_job_finished("test", "succeeded", 1.5);
    worker_metrics_job_finished("test", "failed", 0.001);
    worker_metrics_job_retried("test", "failure");
    worker_metrics_dead_letter("test");
    worker_metrics_lease_expired("long-running");
    worker_metrics_reconciled(0);
    worker_metrics_reconciled(3);
    worker_metrics_llm_call("p1", "m", "timeout", 2.0, -1, 0, 0);
    worker_metrics_llm_call("p2", "m", "ok", 0.3, 0.05, 10, 4);
    worker_metrics_llm_circuit("p1", 1);
    worker_metrics_tool_call("system.time", "ok", 0.002);
    worker_metrics_tool_call(NULL, "not_found", 0);

    char *text = render();
    expect_line(text, "agentgate_job_queue_wait_seconds_count{type=\"test\"} 1");
    expect_line(text, "agentgate_job_queue_wait_seconds_bucket{type=\"test\",le=\"0.5\"} 1");
    expect_line(text, "agentgate_job_queue_wait_seconds_bucket{type=\"test\",le=\"0.1\"} 0");
    expect_line(text, "agentgate_job_run_duration_seconds_count{type=\"test\",outcome=\"succeeded\"} 1");
    expect_line(text, "agentgate_job_run_duration_seconds_count{type=\"test\",outcome=\"failed\"} 1");
    expect_line(text, "agentgate_job_retries_total{type=\"test\",reason=\"failure\"} 1");
    expect_line(text, "agentgate_job_dead_letters_total{type=\"test\"} 1");
    expect_line(text, "agentgate_job_lease_expiries_total{type=\"long-running\"} 1");
    expect_line(text, "agentgate_reconciliations_total 2");
    expect_line(text, "agentgate_reconciled_jobs_total 3");
    expect_line(text, "agentgate_llm_errors_total{provider=\"p1\",model=\"m\",reason=\"timeout\"} 1");
    expect_no(text, "agentgate_llm_errors_total{provider=\"p2\"");
    expect_line(text, "agentgate_llm_request_duration_seconds_count{provider=\"p2\",model=\"m\",outcome=\"ok\"} 1");
    expect_line(text, "agentgate_llm_time_to_first_token_seconds_count{provider=\"p2\",model=\"m\"} 1");
    expect_no(text, "agentgate_llm_time_to_first_token_seconds_count{provider=\"p1\"");
    expect_line(text, "agentgate_llm_tokens_total{provider=\"p2\",model=\"m\",direction=\"input\"} 10");
    expect_line(text, "agentgate_llm_tokens_total{provider=\"p2\",model=\"m\",direction=\"output\"} 4");
    expect_line(text, "agentgate_llm_circuit_state{provider=\"p1\"} 1");
    expect_line(text, "agentgate_tool_call_duration_seconds_count{tool=\"system.time\",outcome=\"ok\"} 1");
    expect_line(text, "agentgate_tool_call_duration_seconds_count{tool=\"(unknown)\",outcome=\"not_found\"} 1");
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_before_init_nothing),
        cmocka_unit_test(test_reports_land_in_their_series),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    metrics_free_all();
    return rc;
}
