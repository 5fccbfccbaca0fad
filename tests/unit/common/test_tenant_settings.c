/*
 * test_tenant_settings.c - unit tests for the tenant settings parser: what
 * PATCH /v1/tenants accepts is exactly what the gateway and worker enforce,
 * so every malformed, unknown or out-of-range member must be refused with
 * a reason naming it; and the AGENTGATE_RATE_LIMITS form.
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_and_null),
        cmocka_unit_test(test_full_document),
        cmocka_unit_test(test_max_running_bounds),
        cmocka_unit_test(test_unknown_members_refused),
        cmocka_unit_test(test_actions_checked),
        cmocka_unit_test(test_limit_ranges),
        cmocka_unit_test(test_config_duplicates_refused),
        cmocka_unit_test(test_config_form),
        cmocka_unit_test(test_find),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
