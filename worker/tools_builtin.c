/*
 * tools_builtin.c - the built-in tools an agent run can invoke without any
 * configuration: system.time and system.health.
 *
 * They read only the clock and this process, so they cannot fail in ways
 * a caller could cause, but they still check their input: a tool that
 * takes nothing refuses to be given something, so a planner's mistake
 * shows up as an error instead of being silently ignored.
 */
#include "tools_builtin.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"

#define EMPTY_OBJECT_SCHEMA "{\"type\":\"object\",\"additionalProperties\":false}"

static void set_err(char *err, size_t err_size, const char *msg)
{
    if (err && err_size)
        snprintf(err, err_size, "%s", msg);
}

/* Both tools take {}: anything else is a bad input. */
static tool_err require_empty_object(const cJSON *input, char *err, size_t err_size)
{
    if (!input)
        return TOOL_OK;
    if (!cJSON_IsObject(input)) {
        set_err(err, err_size, "input must be a JSON object");
        return TOOL_ERR_BAD_INPUT;
    }
    if (input->child) {
        char msg[160];
        snprintf(msg, sizeof(msg), "unknown input property \"%.100s\"",
                 input->child->string ? input->child->string : "");
        set_err(err, err_size, msg);
        return TOOL_ERR_BAD_INPUT;
    }
    return TOOL_OK;
}

static tool_err tool_time(const tool_env *env, const cJSON *input, cJSON **output,
                          char *err, size_t err_size)
{
    char ts[32];
    tool_err e = require_empty_object(input, err, err_size);

    if (e != TOOL_OK)
        return e;
    long long now = clock_wall_ms();
    clock_format_rfc3339(now, ts, sizeof(ts));
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddStringToObject(o, "utc", ts) ||
        !cJSON_AddNumberToObject(o, "epoch_ms", (double)now)) {
        cJSON_Delete(o);
        set_err(err, err_size, "out of memory");
        return TOOL_ERR_NOMEM;
    }
    *output = o;
    return TOOL_OK;
}

/* This process's age in ms, from /proc: the kernel's own record of when
 * it started, so it needs no start-up hook in the worker. Returns -1 when
 * /proc cannot tell. */
static long long process_uptime_ms(void)
{
    char buf[1024];
    double since_boot_s;
    unsigned long long start_ticks;
    long tck = sysconf(_SC_CLK_TCK);
    FILE *f;

    if (tck <= 0)
        return -1;
    f = fopen("/proc/uptime", "r");
    if (!f)
        return -1;
    int ok = fscanf(f, "%lf", &since_boot_s) == 1;
    fclose(f);
    if (!ok)
        return -1;

    f = fopen("/proc/self/stat", "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The command name (field 2) may hold spaces and parentheses; fields
     * are counted from the last ')'. starttime is field 22. */
    char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    p++;
    for (int field = 3; field < 22; field++) {
        p = strchr(p + 1, ' ');
        if (!p)
            return -1;
    }
    if (sscanf(p, " %llu", &start_ticks) != 1)
        return -1;
    double age_ms = since_boot_s * 1000.0 - (double)start_ticks * 1000.0 / (double)tck;
    return age_ms < 0 ? 0 : (long long)age_ms;
}

static tool_err tool_health(const tool_env *env, const cJSON *input, cJSON **output,
                            char *err, size_t err_size)
{
    tool_err e = require_empty_object(input, err, err_size);

    if (e != TOOL_OK)
        return e;
    long long up = process_uptime_ms();
    if (up < 0) {
        set_err(err, err_size, "process uptime unavailable (/proc not readable)");
        return TOOL_ERR_FAILED;
    }
    cJSON *o = cJSON_CreateObject();
    bool ok = o && cJSON_AddStringToObject(o, "status", "ok");
    if (ok && env && env->worker_id)
        ok = cJSON_AddStringToObject(o, "worker_id", env->worker_id) != NULL;
    else if (ok)
        ok = cJSON_AddNullToObject(o, "worker_id") != NULL;
    ok = ok && cJSON_AddNumberToObject(o, "pid", (double)getpid()) &&
         cJSON_AddNumberToObject(o, "uptime_ms", (double)up) &&
         cJSON_AddNumberToObject(o, "uptime_s", (double)(up / 1000));
    if (!ok) {
        cJSON_Delete(o);
        set_err(err, err_size, "out of memory");
        return TOOL_ERR_NOMEM;
    }
    *output = o;
    return TOOL_OK;
}

static const builtin_tool tools[] = {
    {"system.time", "The current date and time in UTC (RFC 3339, milliseconds).",
     EMPTY_OBJECT_SCHEMA, tool_time},
    {"system.health", "The state of the worker running the job: id, pid and uptime.",
     EMPTY_OBJECT_SCHEMA, tool_health},
};

#define NTOOLS (sizeof(tools) / sizeof(tools[0]))

const builtin_tool *tools_builtin_find(const char *name)
{
    for (size_t i = 0; name && i < NTOOLS; i++)
        if (strcmp(tools[i].name, name) == 0)
            return &tools[i];
    return NULL;
}

const builtin_tool *tools_builtin_all(size_t *count)
{
    if (count)
        *count = NTOOLS;
    return tools;
}

tool_err tools_builtin_invoke(const char *name, const tool_env *env, const cJSON *input,
                              cJSON **output, char *err, size_t err_size)
{
    const builtin_tool *t = tools_builtin_find(name);

    if (!output) {
        set_err(err, err_size, "no output slot");
        return TOOL_ERR_BAD_INPUT;
    }
    *output = NULL;
    if (!t) {
        set_err(err, err_size, "no such built-in tool");
        return TOOL_ERR_NOT_FOUND;
    }
    return t->invoke(env, input, output, err, err_size);
}

char *tools_builtin_summary(const char *name, const cJSON *output)
{
    char buf[256];

    if (name && strcmp(name, "system.time") == 0) {
        const cJSON *utc = cJSON_GetObjectItemCaseSensitive(output, "utc");
        snprintf(buf, sizeof(buf), "%s", cJSON_IsString(utc) ? utc->valuestring : "unknown");
    } else if (name && strcmp(name, "system.health") == 0) {
        const cJSON *w = cJSON_GetObjectItemCaseSensitive(output, "worker_id");
        const cJSON *pid = cJSON_GetObjectItemCaseSensitive(output, "pid");
        const cJSON *up = cJSON_GetObjectItemCaseSensitive(output, "uptime_s");
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(output, "status");
        snprintf(buf, sizeof(buf), "worker %.120s (pid %.0f) is %.16s, up %.0f s",
                 cJSON_IsString(w) ? w->valuestring : "(unknown id)",
                 cJSON_IsNumber(pid) ? pid->valuedouble : 0.0,
                 cJSON_IsString(st) ? st->valuestring : "unknown",
                 cJSON_IsNumber(up) ? up->valuedouble : 0.0);
    } else {
        char *s = output ? cJSON_PrintUnformatted(output) : NULL;
        if (s)
            return s;
        snprintf(buf, sizeof(buf), "no output");
    }
    return strdup(buf);
}

const char *tool_strerror(tool_err err)
{
    switch (err) {
    case TOOL_OK: return "ok";
    case TOOL_ERR_NOT_FOUND: return "tool not found";
    case TOOL_ERR_BAD_INPUT: return "invalid tool input";
    case TOOL_ERR_NOMEM: return "out of memory";
    case TOOL_ERR_FAILED: return "tool failed";
    }
    return "unknown error";
}
