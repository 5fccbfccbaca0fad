/*
 * test_metrics.c - the metrics registry: name conventions, series identity,
 * counter/gauge/histogram semantics, the exposition text (labels escaped,
 * cumulative buckets, number formats), collectors, the process_* metrics,
 * the series cap, and exact totals under concurrent updates.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "metrics.h"
#include "strbuf.h"

static int teardown(void **state)
{
    (void)state;
    metrics_free_all();
    return 0;
}

/* The rendered exposition; the caller frees it. */
static char *render(void)
{
    strbuf b = {0};
    assert_int_equal(metrics_render(&b), 0);
    char *s = strbuf_take(&b, NULL);
    assert_non_null(s);
    return s;
}

/* Asserts the exposition holds this whole line. */
static void assert_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)); p++)
        if ((p == text || p[-1] == '\n') && (p[n] == '\n' || p[n] == '\0'))
            return;
    fail_msg("line not found: %s\n--- in ---\n%s", line, text);
}

static void assert_no_line_starting(const char *text, const char *start)
{
    for (const char *p = text; (p = strstr(p, start)); p++)
        if (p == text || p[-1] == '\n')
            fail_msg("unexpected line starting %s", start);
}

static void test_name_check(void **state)
{
    (void)state;
    char err[160];
    assert_int_equal(metric_name_check('c', "agentgate_jobs_submitted_total", err, sizeof err), 0);
    assert_int_equal(metric_name_check('g', "agentgate_sse_streams_open", err, sizeof err), 0);
    assert_int_equal(metric_name_check('h', "agentgate_http_request_duration_seconds", err,
                                       sizeof err), 0);
    assert_int_equal(metric_name_check('g', "agentgate_heap_in_use_bytes", err, sizeof err), 0);

    struct { char kind; const char *name; const char *why; } bad[] = {
        { 'c', "jobs_total", "start with" },
        { 'c', "agentgate_", "start with" },
        { 'c', "agentgate_jobs", "_total" },
        { 'g', "agentgate_jobs_total", "only counters" },
        { 'h', "agentgate_x_total", "only counters" },
        { 'g', "agentgate_Jobs", "snake case" },
        { 'g', "agentgate_a-b", "snake case" },
        { 'g', "agentgate_a__b", "empty word" },
        { 'g', "agentgate_a_", "empty word" },
        { 'h', "agentgate_latency_ms", "\"ms\"" },
        { 'h', "agentgate_latency_milliseconds", "milliseconds" },
        { 'g', "agentgate_size_kb", "\"kb\"" },
        { 'c', "agentgate_uptime_minutes_total", "minutes" },
        { 'g', "agentgate_x_count", "reserve" },
        { 'g', "agentgate_x_bucket", "reserve" },
        { 'x', "agentgate_x", "unknown" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        if (metric_name_check(bad[i].kind, bad[i].name, err, sizeof err) != -1)
            fail_msg("accepted %s", bad[i].name);
        if (!strstr(err, bad[i].why))
            fail_msg("%s: reason \"%s\" lacks \"%s\"", bad[i].name, err, bad[i].why);
    }
    assert_int_equal(metric_name_check('c', NULL, err, sizeof err), -1);
}

static void test_counter_no_labels(void **state)
{
    (void)state;
    metric *c = metric_counter("agentgate_things_total", "Things done.", NULL);
    char *t = render();
    assert_line(t, "# HELP agentgate_things_total Things done.");
    assert_line(t, "# TYPE agentgate_things_total counter");
    assert_line(t, "agentgate_things_total 0");
    free(t);

    metric_series *s = metric_with(c);
    assert_ptr_equal(s, metric_with(c));
    series_inc(s);
    series_add(s, 2.5);
    series_add(s, -10);         /* counters only go up */
    series_set(s, 100);         /* not a gauge */
    series_observe(s, 1);       /* not a histogram */
    metric_inc(c);
    assert_true(series_value(s) == 4.5);
    t = render();
    assert_line(t, "agentgate_things_total 4.5");
    free(t);

    /* Registering the same shape again gives the same family. */
    assert_ptr_equal(c, metric_counter("agentgate_things_total", "Things done.", NULL));
}

static void test_gauge_labels_escaped(void **state)
{
    (void)state;
    metric *g = metric_gauge("agentgate_queue_depth", "Jobs waiting, by \\ type\\.", "type",
                             "pool", NULL);
    char *t = render();
    assert_line(t, "# HELP agentgate_queue_depth Jobs waiting, by \\\\ type\\\\.");
    assert_line(t, "# TYPE agentgate_queue_depth gauge");
    assert_no_line_starting(t, "agentgate_queue_depth{");
    free(t);

    metric_series *a = metric_with(g, "echo", "p1");
    metric_series *b = metric_with(g, "ec", "hop1");      /* same bytes, other split */
    assert_non_null(a);
    assert_non_null(b);
    assert_ptr_not_equal(a, b);
    assert_ptr_equal(a, metric_with(g, "echo", "p1"));
    series_set(a, 7);
    series_add(a, -2);
    series_set(b, -0.25);
    metric_set(g, 3, "we\"ird\\na\nme", "");
    assert_ptr_equal(metric_with(g, NULL, "x"), NULL);

    t = render();
    assert_line(t, "agentgate_queue_depth{type=\"echo\",pool=\"p1\"} 5");
    assert_line(t, "agentgate_queue_depth{type=\"ec\",pool=\"hop1\"} -0.25");
    assert_line(t, "agentgate_queue_depth{type=\"we\\\"ird\\\\na\\nme\",pool=\"\"} 3");
    free(t);
}

static void test_histogram(void **state)
{
    (void)state;
    const double bounds[] = { 0.1, 1, 2.5 };
    metric *h = metric_histogram("agentgate_op_duration_seconds", "How long ops take.",
                                 bounds, 3, "op", NULL);
    metric_series *s = metric_with(h, "read");
    series_observe(s, 0.05);
    series_observe(s, 0.1);     /* le: on the bound counts in that bucket */
    series_observe(s, 0.5);
    series_observe(s, 3);
    series_observe(s, NAN);     /* ignored */
    series_add(s, 1);           /* not a counter */
    metric_observe(h, 100, "write");
    assert_true(series_value(s) == 4);

    char *t = render();
    assert_line(t, "# TYPE agentgate_op_duration_seconds histogram");
    assert_line(t, "agentgate_op_duration_seconds_bucket{op=\"read\",le=\"0.1\"} 2");
    assert_line(t, "agentgate_op_duration_seconds_bucket{op=\"read\",le=\"1\"} 3");
    assert_line(t, "agentgate_op_duration_seconds_bucket{op=\"read\",le=\"2.5\"} 3");
    assert_line(t, "agentgate_op_duration_seconds_bucket{op=\"read\",le=\"+Inf\"} 4");
    assert_line(t, "agentgate_op_duration_seconds_sum{op=\"read\"} 3.65");
    assert_line(t, "agentgate_op_duration_seconds_count{op=\"read\"} 4");
    assert_line(t, "agentgate_op_duration_seconds_bucket{op=\"write\",le=\"2.5\"} 0");
    assert_line(t, "agentgate_op_duration_seconds_bucket{op=\"write\",le=\"+Inf\"} 1");
    assert_line(t, "agentgate_op_duration_seconds_sum{op=\"write\"} 100");
    free(t);

    /* Without labels, "le" stands alone; the shared bucket sets are valid. */
    metric *j = metric_histogram("agentgate_job_wait_seconds", "Wait.",
                                 metric_buckets_job_seconds, metric_buckets_job_seconds_n, NULL);
    metric_histogram("agentgate_req_seconds", "Req.", metric_buckets_request_seconds,
                     metric_buckets_request_seconds_n, NULL);
    series_observe(metric_with(j), 1e-9);
    t = render();
    assert_line(t, "agentgate_job_wait_seconds_bucket{le=\"0.01\"} 1");
    assert_line(t, "agentgate_job_wait_seconds_bucket{le=\"3600\"} 1");
    assert_line(t, "agentgate_job_wait_seconds_sum 1e-09");
    assert_line(t, "agentgate_req_seconds_bucket{le=\"0.005\"} 0");
    assert_line(t, "agentgate_req_seconds_count 0");
    free(t);
}

static void test_number_formats(void **state)
{
    (void)state;
    metric *g = metric_gauge("agentgate_value", "A value.", "k", NULL);
    metric_set(g, 0.1, "tenth");
    metric_set(g, 1e21, "big");
    metric_set(g, 123456789012.0, "int");
    metric_set(g, INFINITY, "inf");
    metric_set(g, -INFINITY, "ninf");
    metric_set(g, NAN, "nan");
    metric_set(g, -0.0, "nzero");
    char *t = render();
    assert_line(t, "agentgate_value{k=\"tenth\"} 0.1");
    assert_line(t, "agentgate_value{k=\"big\"} 1e+21");
    assert_line(t, "agentgate_value{k=\"int\"} 123456789012");
    assert_line(t, "agentgate_value{k=\"inf\"} +Inf");
    assert_line(t, "agentgate_value{k=\"ninf\"} -Inf");
    assert_line(t, "agentgate_value{k=\"nan\"} NaN");
    assert_line(t, "agentgate_value{k=\"nzero\"} 0");
    free(t);
}

static int collected;
static void collect(void *arg)
{
    collected++;
    metric_set((metric *)arg, 42, "echo");
}

static void test_collector_runs_at_render(void **state)
{
    (void)state;
    metric *g = metric_gauge("agentgate_depth", "Depth.", "type", NULL);
    collected = 0;
    assert_int_equal(metrics_on_collect(collect, g), 0);
    char *t = render();
    assert_int_equal(collected, 1);
    assert_line(t, "agentgate_depth{type=\"echo\"} 42");
    free(t);
    t = render();
    assert_int_equal(collected, 2);
    free(t);
}

static void test_process_metrics(void **state)
{
    (void)state;
    char *t = render();
    assert_line(t, "# TYPE process_cpu_seconds_total counter");
    const char *names[] = { "process_cpu_seconds_total ", "process_resident_memory_bytes ",
                            "process_virtual_memory_bytes ", "process_open_fds ",
                            "process_max_fds ", "process_start_time_seconds " };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *p = strstr(t, names[i]);
        while (p && p != t && p[-1] != '\n')
            p = strstr(p + 1, names[i]);
        if (!p)
            fail_msg("missing %s", names[i]);
        double v = strtod(p + strlen(names[i]), NULL);
        if (strcmp(names[i], "process_cpu_seconds_total ") == 0)
            assert_true(v >= 0);
        else
            assert_true(v > 0);
        if (strcmp(names[i], "process_start_time_seconds ") == 0) {
            /* Started within the last day, after 2020. */
            assert_true(v > 1.6e9);
        }
    }
    free(t);
}

static void test_series_cap(void **state)
{
    (void)state;
    metric *c = metric_counter("agentgate_capped_total", "Capped.", "id", NULL);
    char id[32];
    for (int i = 0; i < METRIC_MAX_SERIES; i++) {
        snprintf(id, sizeof id, "%d", i);
        assert_non_null(metric_with(c, id));
    }
    assert_null(metric_with(c, "one-more"));
    metric_inc(c, "one-more");                 /* a no-op, not a crash */
    assert_non_null(metric_with(c, "7"));      /* existing ones still resolve */
}

#define THREADS 4
#define ROUNDS 20000
static metric *race_c, *race_h;

static void *race(void *arg)
{
    (void)arg;
    char v[16];
    for (int i = 0; i < ROUNDS; i++) {
        snprintf(v, sizeof v, "%d", i % 50);   /* threads race to create the same series */
        series_inc(metric_with(race_c, v));
        series_observe(metric_with(race_h), 0.5);
    }
    return NULL;
}

static atomic_int racing;

/* Scrapes while the others update and create series: every exposition is
 * whole, and a histogram's +Inf bucket always equals its count. */
static void *scraper(void *arg)
{
    int *scrapes = arg;
    do {
        strbuf b = {0};
        if (metrics_render(&b) != 0)
            return (void *)"render failed";
        const char *inf = strstr(b.s, "agentgate_race_seconds_bucket{le=\"+Inf\"} ");
        const char *cnt = strstr(b.s, "agentgate_race_seconds_count ");
        if (!inf || !cnt || strtoull(inf + strlen("agentgate_race_seconds_bucket{le=\"+Inf\"} "),
                                     NULL, 10) != strtoull(cnt + strlen("agentgate_race_seconds_count "),
                                                           NULL, 10))
            return (void *)"histogram torn";
        strbuf_free(&b);
        (*scrapes)++;
    } while (atomic_load(&racing));
    return NULL;
}

static void test_concurrent_updates_exact(void **state)
{
    (void)state;
    const double b[] = { 1 };
    race_c = metric_counter("agentgate_race_total", "Race.", "v", NULL);
    race_h = metric_histogram("agentgate_race_seconds", "Race.", b, 1, NULL);
    pthread_t th[THREADS], sc;
    int scrapes = 0;
    atomic_store(&racing, 1);
    assert_int_equal(pthread_create(&sc, NULL, scraper, &scrapes), 0);
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, race, NULL), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    atomic_store(&racing, 0);
    void *why;
    pthread_join(sc, &why);
    if (why)
        fail_msg("%s", (const char *)why);
    assert_true(scrapes > 0);
    double total = 0;
    char v[16];
    for (int i = 0; i < 50; i++) {
        snprintf(v, sizeof v, "%d", i);
        total += series_value(metric_with(race_c, v));
    }
    assert_true(total == THREADS * ROUNDS);
    assert_true(series_value(metric_with(race_h)) == THREADS * ROUNDS);
    char *t = render();
    char line[128];
    snprintf(line, sizeof line, "agentgate_race_seconds_sum %d", THREADS * ROUNDS / 2);
    assert_line(t, line);
    /* 50 series, each rendered once. */
    int n = 0;
    for (const char *p = t; (p = strstr(p, "\nagentgate_race_total{")); p++)
        n++;
    assert_int_equal(n, 50);
    free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_name_check, teardown),
        cmocka_unit_test_teardown(test_counter_no_labels, teardown),
        cmocka_unit_test_teardown(test_gauge_labels_escaped, teardown),
        cmocka_unit_test_teardown(test_histogram, teardown),
        cmocka_unit_test_teardown(test_number_formats, teardown),
        cmocka_unit_test_teardown(test_collector_runs_at_render, teardown),
        cmocka_unit_test_teardown(test_process_metrics, teardown),
        cmocka_unit_test_teardown(test_series_cap, teardown),
        cmocka_unit_test_teardown(test_concurrent_updates_exact, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
