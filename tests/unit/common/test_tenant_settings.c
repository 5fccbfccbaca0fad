/*
 * test_tenant_settings.c - unit tests for the tenant settings parser: what
 * PATCH /v1/tenants accepts is exactly what the gateway and worker enforce,
 * so every malformed, unknown or out-of-range member must be refused with
 * a reason naming it; the AGENTGATE_RATE_LIMITS form; and the operator's
 * limits as a ceiling a tenant's own can only lower.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "tenant_settings.h"

/* Parses text; returns the parser's answer, err holding its reason. */
static int parse_text(const char *text, tenant_settings *out, char *err, size_t err_size)
{
    cJSON *j = cJSON_Parse(text);
    assert_non_null(j);
    err[0] = '\0';
    int rc = tenant_settings_parse(j, out, err, err_size);
    cJSON_Delete(j);
    return rc;
}

static void expect_refused(const char *text, const char *reason_part)
{
    tenant_settings s;
    char err[256];
    if (parse_text(text, &s, err, sizeof err) != -1)
        fail_msg("accepted: %s", text);
    if (!strstr(err, reason_part))
        fail_msg("reason for %s is \"%s\", lacks \"%s\"", text, err, reason_part);
}

static void test_empty_and_null(void **state)
{
    (void)state;
    tenant_settings s;
    char err[128];
    assert_int_equal(tenant_settings_parse(NULL, &s, err, sizeof err), 0);
    assert_int_equal(s.max_running, -1);
    assert_int_equal(s.n_principal + s.n_tenant, 0);
    assert_int_equal(parse_text("{}", &s, err, sizeof err), 0);
    assert_int_equal(s.max_running, -1);
}

static void test_full_document(void **state)
{
    (void)state;
    tenant_settings s;
    char err[128];
    assert_int_equal(parse_text(
        "{\"max_running\": 64, \"rate_limits\": {"
        "  \"principal\": {\"jobs.create\": {\"capacity\": 100, \"period_ms\": 1000},"
        "                 \"*\": {\"period_ms\": 1000, \"capacity\": 1000}},"
        "  \"tenant\": {\"*\": {\"capacity\": 5000, \"period_ms\": 10000000000}}}}",
        &s, err, sizeof err), 0);
    assert_int_equal(s.max_running, 64);
    assert_int_equal(s.n_principal, 2);
    assert_int_equal(s.n_tenant, 1);
    assert_string_equal(s.principal[0].action, "jobs.create");
    assert_int_equal(s.principal[0].capacity, 100);
    assert_int_equal(s.principal[0].period_ms, 1000);
    assert_int_equal(s.principal[1].capacity, 1000);
    assert_true(s.tenant[0].period_ms == 10000000000LL);
}

static void test_max_running_bounds(void **state)
{
    (void)state;
    tenant_settings s;
    char err[128];
    assert_int_equal(parse_text("{\"max_running\": 0}", &s, err, sizeof err), 0);
    assert_int_equal(s.max_running, 0);
    assert_int_equal(parse_text("{\"max_running\": 1000000}", &s, err, sizeof err), 0);
    expect_refused("{\"max_running\": -1}", "max_running");
    expect_refused("{\"max_running\": 1000001}", "max_running");
    expect_refused("{\"max_running\": 1.5}", "max_running");
    expect_refused("{\"max_running\": \"8\"}", "max_running");
    expect_refused("{\"max_running\": null}", "max_running");
    expect_refused("{\"max_running\": 1, \"max_running\": 2}", "max_running");
}

static void test_retention_days_bounds(void **state)
{
    (void)state;
    tenant_settings s;
    char err[128];
    assert_int_equal(parse_text("{}", &s, err, sizeof err), 0);
    assert_int_equal(s.retention_days, -1);
    assert_int_equal(parse_text("{\"retention_days\": 1}", &s, err, sizeof err), 0);
    assert_int_equal(s.retention_days, 1);
    assert_int_equal(parse_text("{\"retention_days\": 3650, \"max_running\": 2}", &s, err,
                                sizeof err), 0);
    assert_int_equal(s.retention_days, 3650);
    assert_int_equal(s.max_running, 2);
    expect_refused("{\"retention_days\": 0}", "retention_days");
    expect_refused("{\"retention_days\": 3651}", "retention_days");
    expect_refused("{\"retention_days\": 7.5}", "retention_days");
    expect_refused("{\"retention_days\": \"30\"}", "retention_days");
    expect_refused("{\"retention_days\": null}", "retention_days");
    expect_refused("{\"retention_days\": 1, \"retention_days\": 2}", "retention_days");
}

static void test_unknown_members_refused(void **state)
{
    (void)state;
    expect_refused("{\"maxRunning\": 3}", "maxRunning");
    expect_refused("[]", "settings");
    expect_refused("{\"rate_limits\": {\"global\": {}}}", "global");
    expect_refused("{\"rate_limits\": []}", "rate_limits");
    expect_refused("{\"rate_limits\": {\"tenant\": []}}", "rate_limits.tenant");
    expect_refused("{\"rate_limits\": {\"tenant\": {\"*\": "
                   "{\"capacity\": 1, \"period_ms\": 1, \"burst\": 2}}}}", "tenant.*");
    expect_refused("{\"rate_limits\": {\"tenant\": {\"*\": 5}}}", "tenant.*");
}

static void test_webhook_allowlist(void **state)
{
    (void)state;
    tenant_settings s;
    char err[256];
    assert_int_equal(parse_text("{}", &s, err, sizeof err), 0);
    assert_false(s.has_webhook_allowlist);
    assert_int_equal(parse_text("{\"webhook_url_allowlist\":[\"https://a.example/h\","
                                "\"http://127.0.0.1:9/x\"]}", &s, err, sizeof err), 0);
    assert_true(s.has_webhook_allowlist);
    assert_string_equal(s.webhook_allowlist, "https://a.example/h,http://127.0.0.1:9/x");
    /* An empty list allows nothing: it is kept as given. */
    assert_int_equal(parse_text("{\"webhook_url_allowlist\":[]}", &s, err, sizeof err), 0);
    assert_true(s.has_webhook_allowlist);
    assert_string_equal(s.webhook_allowlist, "");
    expect_refused("{\"webhook_url_allowlist\":\"https://a/\"}", "webhook_url_allowlist");
    expect_refused("{\"webhook_url_allowlist\":[1]}", "webhook_url_allowlist");
    expect_refused("{\"webhook_url_allowlist\":[\"ftp://a/\"]}", "webhook_url_allowlist");
    expect_refused("{\"webhook_url_allowlist\":[\"http://a/,http://b/\"]}",
                   "webhook_url_allowlist");
    expect_refused("{\"webhook_url_allowlist\":[\"\"]}", "webhook_url_allowlist");
    expect_refused("{\"webhook_url_allowlist\":[],\"webhook_url_allowlist\":[]}",
                   "unknown or repeated");
    /* The most entries of the longest length fit. */
    char doc[16 * 530 + 64];
    int n = snprintf(doc, sizeof doc, "{\"webhook_url_allowlist\":[");
    for (int i = 0; i < 16; i++) {
        n += snprintf(doc + n, sizeof doc - (size_t)n, "%s\"https://", i ? "," : "");
        for (int k = 0; k < 512 - 8; k++) doc[n++] = 'a';
        n += snprintf(doc + n, sizeof doc - (size_t)n, "\"");
    }
    snprintf(doc + n, sizeof doc - (size_t)n, "]}");
    assert_int_equal(parse_text(doc, &s, err, sizeof err), 0);
    assert_int_equal(strlen(s.webhook_allowlist), 16 * 512 + 15);
}

static void test_actions_checked(void **state)
{
    (void)state;
    tenant_settings s;
    char err[128];
    assert_int_equal(parse_text("{\"rate_limits\": {\"principal\": {"
                                "\"agent-runs.create\": {\"capacity\": 1, \"period_ms\": 1},"
                                "\"tenants.update\": {\"capacity\": 1, \"period_ms\": 1},"
                                "\"models.delete\": {\"capacity\": 1, \"period_ms\": 1}}}}",
                                &s, err, sizeof err), 0);
    assert_int_equal(s.n_principal, 3);
    expect_refused("{\"rate_limits\": {\"principal\": {\"jobs.launch\": "
                   "{\"capacity\": 1, \"period_ms\": 1}}}}", "jobs.launch");
    expect_refused("{\"rate_limits\": {\"principal\": {\"widgets.read\": "
                   "{\"capacity\": 1, \"period_ms\": 1}}}}", "widgets.read");
    expect_refused("{\"rate_limits\": {\"principal\": {\"jobs\": "
                   "{\"capacity\": 1, \"period_ms\": 1}}}}", "unknown action");
    expect_refused("{\"rate_limits\": {\"principal\": {\"jobs.create\": "
                   "{\"capacity\": 1, \"period_ms\": 1}, \"jobs.create\": "
                   "{\"capacity\": 2, \"period_ms\": 1}}}}", "twice");
}

static void test_limit_ranges(void **state)
{
    (void)state;
    tenant_settings s;
    char err[128];
    assert_int_equal(parse_text("{\"rate_limits\": {\"tenant\": {\"*\": "
                                "{\"capacity\": 1000000000, \"period_ms\": 1}}}}",
                                &s, err, sizeof err), 0);
    expect_refused("{\"rate_limits\": {\"tenant\": {\"*\": "
                   "{\"capacity\": 0, \"period_ms\": 1000}}}}", "capacity");
    expect_refused("{\"rate_limits\": {\"tenant\": {\"*\": "
                   "{\"capacity\": 1000000001, \"period_ms\": 1000}}}}", "capacity");
    expect_refused("{\"rate_limits\": {\"tenant\": {\"*\": "
                   "{\"capacity\": 10, \"period_ms\": 0}}}}", "period_ms");
    expect_refused("{\"rate_limits\": {\"tenant\": {\"*\": "
                   "{\"capacity\": 10, \"period_ms\": 10000000001}}}}", "period_ms");
    expect_refused("{\"rate_limits\": {\"tenant\": {\"*\": "
                   "{\"capacity\": 10.5, \"period_ms\": 1000}}}}", "capacity");
    expect_refused("{\"rate_limits\": {\"tenant\": {\"*\": {\"capacity\": 10}}}}",
                   "period_ms");
    expect_refused("{\"rate_limits\": {\"tenant\": {\"*\": {\"period_ms\": 10}}}}",
                   "capacity");
}

static void test_config_duplicates_refused(void **state)
{
    (void)state;
    /* Every action the API has (20 of them, so a level can never hold
     * more than TENANT_LIMITS_MAX), then each again. */
    tenant_settings s;
    char err[256];
    memset(&s, 0, sizeof s);
    char text[4096] = "";
    const char *res[] = { "agent-runs", "jobs", "tools", "tenants", "models" };
    const char *act[] = { "create", "read", "update", "delete" };
    int n = 0;
    for (int i = 0; i < 5; i++)
        for (int k = 0; k < 4; k++)
            n += snprintf(text + n, sizeof text - (size_t)n, "%sprincipal:%s.%s=1/1",
                          n ? "," : "", res[i], act[k]);
    assert_int_equal(tenant_limits_parse_config(text, &s, err, sizeof err), 0);
    assert_int_equal(s.n_principal, 20);
    /* The same 20 again are refused as duplicates, never overflow. */
    assert_int_equal(tenant_limits_parse_config(text, &s, err, sizeof err), -1);
    assert_non_null(strstr(err, "twice"));
    assert_int_equal(s.n_principal, 20);
}

static void test_config_form(void **state)
{
    (void)state;
    tenant_settings s;
    char err[256];
    memset(&s, 0, sizeof s);
    assert_int_equal(tenant_limits_parse_config("", &s, err, sizeof err), 0);
    assert_int_equal(tenant_limits_parse_config(NULL, &s, err, sizeof err), 0);
    assert_int_equal(tenant_limits_parse_config(
        "principal:jobs.create=100/1000, tenant:*=5000/1000", &s, err, sizeof err), 0);
    assert_int_equal(s.n_principal, 1);
    assert_int_equal(s.n_tenant, 1);
    assert_string_equal(s.principal[0].action, "jobs.create");
    assert_int_equal(s.principal[0].capacity, 100);
    assert_int_equal(s.tenant[0].capacity, 5000);

    const char *bad[] = {
        "principal:jobs.create=100", "principal:jobs.create/100=1000", "user:*=1/1",
        "principal:jobs.create=0/1000", "principal:jobs.create=-1/1000",
        "principal:jobs.create=1/0", "principal:jobs.create=1/x", "principal:jobs.x=1/1",
        "principal:*=1/1,,tenant:*=1/1", "principal:*=1/1,", "principal:*= 1/1",
        "principal:*=1000000001/1", "principal:*=1/10000000001",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        tenant_settings t;
        memset(&t, 0, sizeof t);
        err[0] = '\0';
        if (tenant_limits_parse_config(bad[i], &t, err, sizeof err) != -1)
            fail_msg("accepted: %s", bad[i]);
        assert_true(err[0] != '\0');
    }
}

static void test_find(void **state)
{
    (void)state;
    tenant_settings s;
    char err[128];
    memset(&s, 0, sizeof s);
    assert_int_equal(tenant_limits_parse_config(
        "principal:jobs.create=1/1,principal:*=2/1", &s, err, sizeof err), 0);
    assert_int_equal(tenant_limit_find(s.principal, s.n_principal, "jobs.create")->capacity, 1);
    assert_int_equal(tenant_limit_find(s.principal, s.n_principal, "jobs.read")->capacity, 2);
    assert_null(tenant_limit_find(s.tenant, s.n_tenant, "jobs.read"));
    assert_null(tenant_limit_find(s.principal, s.n_principal, NULL));
}

/* ---- the operator's ceiling ------------------------------------------------ */

static tenant_limit lim(long long capacity, long long period_ms)
{
    tenant_limit l;
    memset(&l, 0, sizeof l);
    snprintf(l.action, sizeof l.action, "jobs.create");
    l.capacity = capacity;
    l.period_ms = period_ms;
    return l;
}

static void expect_stricter(tenant_limit a, tenant_limit b, long long capacity,
                            long long period_ms)
{
    for (int swap = 0; swap < 2; swap++) {
        tenant_limit got = swap ? tenant_limit_stricter(&b, &a) : tenant_limit_stricter(&a, &b);
        if (got.capacity != capacity || got.period_ms != period_ms)
            fail_msg("stricter of %lld/%lld and %lld/%lld: %lld/%lld, expected %lld/%lld",
                     a.capacity, a.period_ms, b.capacity, b.period_ms, got.capacity,
                     got.period_ms, capacity, period_ms);
    }
}

static void test_stricter_limit(void **state)
{
    (void)state;
    /* One stricter in burst and rate: that one. */
    expect_stricter(lim(5, 600000), lim(1000000000, 1), 5, 600000);
    expect_stricter(lim(2, 600000), lim(5, 600000), 2, 600000);
    expect_stricter(lim(10, 1000), lim(100, 1000), 10, 1000);
    expect_stricter(lim(7, 7), lim(7, 7), 7, 7);
    /* Mixed: the smaller burst at the slower rate, the period rounded up
     * so the rate is never faster than the slower one's. */
    expect_stricter(lim(10, 100), lim(100, 10000), 10, 1000);
    expect_stricter(lim(3, 1), lim(1000, 1000), 3, 3);
    expect_stricter(lim(3, 1), lim(7, 20), 3, 9);        /* 3 per 8.57 ms -> 9 */
    /* The extremes stay exact (products up to 10^19) and in range. */
    expect_stricter(lim(1000000000, 10000000000LL), lim(1, 1), 1, 10);
    expect_stricter(lim(1000000000, 10000000000LL), lim(1000000000, 1),
                    1000000000, 10000000000LL);
    expect_stricter(lim(1, 10000000000LL), lim(1000000000, 1), 1, 10000000000LL);
}

/* Settings from JSON text, for the ceiling checks. */
static tenant_settings settings_of(const char *text)
{
    tenant_settings s;
    char err[256];
    if (parse_text(text, &s, err, sizeof err) != 0) fail_msg("%s: %s", text, err);
    return s;
}

static tenant_settings config_of(const char *text)
{
    tenant_settings s;
    char err[256];
    memset(&s, 0, sizeof s);
    s.max_running = -1;
    if (tenant_limits_parse_config(text, &s, err, sizeof err) != 0) fail_msg("%s: %s", text, err);
    return s;
}

static int check(const char *text, const char *before, int cap, const tenant_settings *cfg,
                 char *err, char *pointer)
{
    tenant_settings s = settings_of(text), b;
    if (before) b = settings_of(before);
    err[0] = pointer[0] = '\0';
    return tenant_settings_check_ceiling(&s, before ? &b : NULL, cap, cfg, err, 320,
                                         pointer, 80);
}

static void test_max_running_under_the_ceiling(void **state)
{
    (void)state;
    char err[320], ptr[80];
    assert_int_equal(check("{\"max_running\": 1}", NULL, 64, NULL, err, ptr), 0);
    assert_int_equal(check("{\"max_running\": 64}", NULL, 64, NULL, err, ptr), 0);
    assert_int_equal(check("{}", NULL, 64, NULL, err, ptr), 0);
    assert_int_equal(check("{\"max_running\": 65}", NULL, 64, NULL, err, ptr), -1);
    assert_string_equal(ptr, "/max_running");
    assert_non_null(strstr(err, "at most 64"));
    assert_non_null(strstr(err, "AGENTGATE_TENANT_MAX_RUNNING"));
    /* 0 is "no cap": more than any cap. */
    assert_int_equal(check("{\"max_running\": 0}", NULL, 1, NULL, err, ptr), -1);
    assert_int_equal(check("{\"max_running\": 1000000}", NULL, 1, NULL, err, ptr), -1);
    /* With no operator cap, anything the parser takes. */
    assert_int_equal(check("{\"max_running\": 0}", NULL, 0, NULL, err, ptr), 0);
    assert_int_equal(check("{\"max_running\": 1000000}", NULL, 0, NULL, err, ptr), 0);
    /* Stored before, unchanged: not a request for more (still enforced
     * at the ceiling); changed, it is checked. */
    assert_int_equal(check("{\"max_running\": 0}", "{\"max_running\": 0}", 8, NULL, err, ptr), 0);
    assert_int_equal(check("{\"max_running\": 9}", "{\"max_running\": 0}", 8, NULL, err, ptr),
                     -1);
    assert_int_equal(check("{\"max_running\": 8}", "{\"max_running\": 0}", 8, NULL, err, ptr), 0);
}

static void test_rate_limits_under_the_ceiling(void **state)
{
    (void)state;
    char err[320], ptr[80];
    tenant_settings cfg = config_of("principal:jobs.create=100/1000,tenant:*=5000/1000");
    /* Lower in burst and rate, or equal: accepted. */
    assert_int_equal(check("{\"rate_limits\": {\"principal\": {\"jobs.create\":"
                           " {\"capacity\": 10, \"period_ms\": 1000}}}}",
                           NULL, 0, &cfg, err, ptr), 0);
    assert_int_equal(check("{\"rate_limits\": {\"principal\": {\"jobs.create\":"
                           " {\"capacity\": 100, \"period_ms\": 1000}}}}",
                           NULL, 0, &cfg, err, ptr), 0);
    assert_int_equal(check("{\"rate_limits\": {\"principal\": {\"jobs.create\":"
                           " {\"capacity\": 100, \"period_ms\": 2000}}}}",
                           NULL, 0, &cfg, err, ptr), 0);
    /* More burst, or a faster rate: refused, naming the member and the
     * ceiling. */
    assert_int_equal(check("{\"rate_limits\": {\"principal\": {\"jobs.create\":"
                           " {\"capacity\": 101, \"period_ms\": 100000}}}}",
                           NULL, 0, &cfg, err, ptr), -1);
    assert_string_equal(ptr, "/rate_limits/principal/jobs.create");
    assert_non_null(strstr(err, "100 per 1000 ms"));
    assert_non_null(strstr(err, "AGENTGATE_RATE_LIMITS"));
    assert_int_equal(check("{\"rate_limits\": {\"principal\": {\"jobs.create\":"
                           " {\"capacity\": 50, \"period_ms\": 499}}}}",
                           NULL, 0, &cfg, err, ptr), -1);
    /* The billion per millisecond of the report, at either level. */
    assert_int_equal(check("{\"rate_limits\": {\"tenant\": {\"*\":"
                           " {\"capacity\": 1000000000, \"period_ms\": 1}}}}",
                           NULL, 0, &cfg, err, ptr), -1);
    assert_string_equal(ptr, "/rate_limits/tenant/*");
    /* The configured "*" is the ceiling of every action without its own. */
    assert_int_equal(check("{\"rate_limits\": {\"tenant\": {\"jobs.read\":"
                           " {\"capacity\": 5001, \"period_ms\": 1000}}}}",
                           NULL, 0, &cfg, err, ptr), -1);
    assert_string_equal(ptr, "/rate_limits/tenant/jobs.read");
    /* The tenant's "*" stands for every action it does not name: it meets
     * the configured limit of each of those. */
    tenant_settings exact = config_of("principal:jobs.create=5/600000");
    assert_int_equal(check("{\"rate_limits\": {\"principal\": {\"*\":"
                           " {\"capacity\": 6, \"period_ms\": 600000}}}}",
                           NULL, 0, &exact, err, ptr), -1);
    assert_string_equal(ptr, "/rate_limits/principal/*");
    assert_non_null(strstr(err, "for jobs.create (5 per 600000 ms"));
    assert_int_equal(check("{\"rate_limits\": {\"principal\": {\"*\":"
                           " {\"capacity\": 6, \"period_ms\": 600000},"
                           " \"jobs.create\": {\"capacity\": 5, \"period_ms\": 600000}}}}",
                           NULL, 0, &exact, err, ptr), 0);
    assert_int_equal(check("{\"rate_limits\": {\"tenant\": {\"*\":"
                           " {\"capacity\": 6, \"period_ms\": 600000}}}}",
                           NULL, 0, &exact, err, ptr), 0);
    /* An action the operator does not limit has no ceiling. */
    assert_int_equal(check("{\"rate_limits\": {\"principal\": {\"jobs.read\":"
                           " {\"capacity\": 1000000000, \"period_ms\": 1}}}}",
                           NULL, 0, &cfg, err, ptr), 0);
    assert_int_equal(check("{\"rate_limits\": {\"principal\": {\"jobs.create\":"
                           " {\"capacity\": 1000000000, \"period_ms\": 1}}}}",
                           NULL, 0, NULL, err, ptr), 0);
    /* Unchanged since before: kept; changed: checked. */
    const char *high = "{\"rate_limits\": {\"principal\": {\"jobs.create\":"
                       " {\"capacity\": 1000, \"period_ms\": 1000}}}}";
    assert_int_equal(check(high, high, 0, &cfg, err, ptr), 0);
    assert_int_equal(check(high, "{\"rate_limits\": {\"principal\": {\"jobs.create\":"
                                 " {\"capacity\": 999, \"period_ms\": 1000}}}}",
                           0, &cfg, err, ptr), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_and_null),
        cmocka_unit_test(test_full_document),
        cmocka_unit_test(test_max_running_bounds),
        cmocka_unit_test(test_retention_days_bounds),
        cmocka_unit_test(test_unknown_members_refused),
        cmocka_unit_test(test_actions_checked),
        cmocka_unit_test(test_webhook_allowlist),
        cmocka_unit_test(test_limit_ranges),
        cmocka_unit_test(test_config_duplicates_refused),
        cmocka_unit_test(test_config_form),
        cmocka_unit_test(test_find),
        cmocka_unit_test(test_stricter_limit),
        cmocka_unit_test(test_max_running_under_the_ceiling),
        cmocka_unit_test(test_rate_limits_under_the_ceiling),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
