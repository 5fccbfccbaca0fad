/*
 * tenant_settings.c - parsing a tenant's limits (see tenant_settings.h).
 * STUB until issue 4's rate limits land: accepts only "{}".
 */
#include <stdio.h>
#include <string.h>
#include "tenant_settings.h"

int tenant_settings_parse(const cJSON *settings, tenant_settings *out, char *err,
                          size_t err_size)
{
    memset(out, 0, sizeof *out);
    out->max_running = -1;
    if (!settings || (cJSON_IsObject(settings) && !settings->child)) return 0;
    snprintf(err, err_size, "tenant settings are not supported yet");
    return -1;
}

int tenant_limits_parse_config(const char *text, tenant_settings *out, char *err,
                               size_t err_size)
{
    (void)out;
    if (!text || !*text) return 0;
    snprintf(err, err_size, "rate limits are not supported yet");
    return -1;
}

const tenant_limit *tenant_limit_find(const tenant_limit *list, int n, const char *action)
{
    (void)list; (void)n; (void)action;
    return NULL;
}
