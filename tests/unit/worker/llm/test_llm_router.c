/*
 * test_llm_router.c - what of the provider router (worker/llm/llm_router.c)
 * runs without PostgreSQL or Redis: the settings it refuses, each with a
 * one-line reason that never shows an API key, the settings it accepts,
 * and the errors of resolve and complete before any provider is asked.
 * Candidate selection, retries, circuits and fallback are exercised
 * against real services in tests/integration/test_llm_providers.py.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "config.h"
#include "llm_router.h"

static ag_config base_config(void)
{
    ag_config c;
    memset(&c, 0, sizeof c);
    c.llm_connect_timeout_ms = 5000;
    c.llm_first_byte_timeout_ms = 30000;
    c.llm_total_timeout_ms = 120000;
    c.llm_max_retries = 2;
    c.llm_retry_base_ms = 250;
    c.llm_retry_max_ms = 8000;
    c.llm_circuit_failures = 5;
    c.llm_circuit_open_ms = 30000;
    return c;
}

static ag_config cfg;   /* borrowed by the router while initialised */

/* Expects init to refuse, with a reason containing want. */
static void refuses(const char *providers, const char *keys, const char *want)
{
    cfg = base_config();
    snprintf(cfg.llm_providers, sizeof cfg.llm_providers, "%s", providers);
    snprintf(cfg.llm_api_keys, sizeof cfg.llm_api_keys, "%s", keys);
    char err[256] = "";
    assert_int_equal(llm_router_init(&cfg, err, sizeof err), -1);
    if (!strstr(err, want))
        fail_msg("reason '%s' does not say '%s'", err, want);
    assert_null(strstr(err, "sk-"));
    assert_null(strchr(err, '\n'));
}

static void test_bad_settings_refused(void **state)
{
    (void)state;
    refuses("openai", "", "no '='");
    refuses("bad name=http://x", "", "provider name 'bad name'");
    refuses("a=http://x,a=http://y", "", "a is listed twice");
    refuses("a=ftp://x", "", "base URL must be http:// or https://");
    refuses("a=http://has space", "", "base URL");
    refuses("a=", "", "base URL");
    refuses("builtin=http://x", "", "built-in provider's name");
    refuses("abcdefghijabcdefghijabcdefghijabc=http://x", "", "1-31 characters");
    refuses("", "openai=", "the key for openai must be");
    refuses("", "openai=sk-a b", "space or control");
    refuses("", "openai=sk-1,openai=sk-2", "openai is listed twice");
    refuses("", "=sk-1", "provider name ''");

    cfg = base_config();
    cfg.llm_retry_max_ms = 100;
    char err[256];
    assert_int_equal(llm_router_init(&cfg, err, sizeof err), -1);
    assert_non_null(strstr(err, "AGENTGATE_LLM_RETRY_MAX_MS"));
}

static void test_good_settings_accepted(void **state)
{
    (void)state;
    cfg = base_config();
    snprintf(cfg.llm_providers, sizeof cfg.llm_providers,
             " openai = https://api.openai.com/v1/ , local=http://127.0.0.1:11434/v1,");
    snprintf(cfg.llm_api_keys, sizeof cfg.llm_api_keys, "openai=sk-test,other.x_y-z=k2");
    snprintf(cfg.llm_model, sizeof cfg.llm_model, "gpt-4o-mini");
    char err[256] = "";
    assert_int_equal(llm_router_init(&cfg, err, sizeof err), 0);
    /* Once only. */
    assert_int_equal(llm_router_init(&cfg, err, sizeof err), -1);
    assert_non_null(strstr(err, "twice"));
    llm_router_shutdown();
    /* And again after a shutdown; empty settings are fine. */
    cfg = base_config();
    assert_int_equal(llm_router_init(&cfg, err, sizeof err), 0);
    llm_router_shutdown();
    llm_router_shutdown();     /* harmless */
}

static void test_errors_before_any_provider(void **state)
{
    (void)state;
    char err[256] = "";
    llm_route_info info;
    /* Not initialised. */
    assert_int_equal(llm_router_resolve(NULL, "t", "m", &info, err, sizeof err),
                     LLM_ERR_UNAVAILABLE);
    assert_non_null(strstr(err, "not initialised"));

    cfg = base_config();
    assert_int_equal(llm_router_init(&cfg, err, sizeof err), 0);
    /* No database: unavailable, not a crash. */
    assert_int_equal(llm_router_resolve(NULL, "t", "m", &info, err, sizeof err),
                     LLM_ERR_UNAVAILABLE);
    assert_int_equal(info.n_candidates, 0);
    /* A model name too long is refused before anything is asked. */
    char longname[300];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert_int_equal(llm_router_resolve(NULL, "t", longname, &info, err, sizeof err),
                     LLM_ERR_INVALID_REQUEST);

    llm_request req = { .prompt = "hi", .tenant_id = "t", .temperature = -1 };
    llm_response out;
    assert_int_equal(llm_router_complete(NULL, NULL, &req, NULL, NULL, &out),
                     LLM_ERR_UNAVAILABLE);
    assert_null(out.text);
    assert_true(out.error[0] != '\0');
    req.prompt = NULL;
    assert_int_equal(llm_router_complete(NULL, NULL, &req, NULL, NULL, &out),
                     LLM_ERR_INVALID_REQUEST);
    llm_router_shutdown();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_settings_refused),
        cmocka_unit_test(test_good_settings_accepted),
        cmocka_unit_test(test_errors_before_any_provider),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
