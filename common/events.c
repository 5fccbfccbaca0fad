/*
 * events.c - encoding a job's events and the Redis script that appends
 * one to the job's ring and announces it (see events.h).
 *
 * The append is one Lua script (EVALSHA, EVAL when Redis lost its cache),
 * so an event costs its writer one command and readers never see the
 * ring, the state hash and the announcement out of step.
 *
 * The body is built by hand rather than through cJSON so its bytes are
 * fixed by this file alone: the same text goes to Redis, to PostgreSQL and
 * onto the SSE wire, and tests can pin it exactly.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#include "clock.h"
#include "events.h"
#include "jsonutil.h"
#include "redis_script.h"

/* The deepest nesting event_peek accepts; event data is shallow. */
#define EVENT_MAX_DEPTH 8

/* Ids are exact in a JSON number (a double) up to 2^53 - 1. */
#define EVENT_MAX_ID 9007199254740991LL

static const char *const known_types[] = {
    "job.queued", "job.started", "job.progress", "job.retrying",
    "step.started", "step.completed", "llm.delta", "tool.called", "log",
    "approval.requested", "approval.resolved",
    "job.succeeded", "job.failed", "job.cancelled",
};

static const char *const terminal_types[] = {
    "job.succeeded", "job.failed", "job.cancelled",
};

static bool in_list(const char *s, const char *const *list, size_t n)
{
    if (s == NULL)
        return false;
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, list[i]) == 0)
            return true;
    return false;
}

const char *const *event_types_all(size_t *count)
{
    *count = sizeof known_types / sizeof *known_types;
    return known_types;
}

bool event_type_known(const char *type)
{
    return in_list(type, known_types, sizeof known_types / sizeof *known_types);
}

bool event_type_terminal(const char *type)
{
    return in_list(type, terminal_types, sizeof terminal_types / sizeof *terminal_types);
}

static char *append(char *out, const char *s)
{
    size_t n = strlen(s);
    memcpy(out, s, n);
    return out + n;
}

char *event_encode(const char *job_id, long long seq, const char *type,
                   long long ts_ms, const char *data_json)
{
    if (job_id == NULL || type == NULL)
        return NULL;
    if (data_json == NULL)
        data_json = "{}";

    char id[24], ts[40];
    snprintf(id, sizeof id, "%lld", seq);
    clock_format_rfc3339(ts_ms, ts, sizeof ts);

    static const char k_id[] = "{\"id\":", k_job[] = ",\"job_id\":\"",
                      k_type[] = "\",\"type\":\"", k_ts[] = "\",\"ts\":\"",
                      k_data[] = "\",\"data\":", k_end[] = "}";
    size_t len = (sizeof k_id - 1) + strlen(id)
               + (sizeof k_job - 1) + json_escaped_len(job_id)
               + (sizeof k_type - 1) + json_escaped_len(type)
               + (sizeof k_ts - 1) + strlen(ts)
               + (sizeof k_data - 1) + strlen(data_json)
               + (sizeof k_end - 1);

    char *body = malloc(len + 1);
    if (body == NULL)
        return NULL;
    char *p = body;
    p = append(p, k_id);
    p = append(p, id);
    p = append(p, k_job);
    p = json_escape_to(p, job_id);
    p = append(p, k_type);
    p = json_escape_to(p, type);
    p = append(p, k_ts);
    p = append(p, ts);
    p = append(p, k_data);
    p = append(p, data_json);
    p = append(p, k_end);
    *p = '\0';
    return body;
}

char *job_queued_event(const char *job_id, const char *type, long long priority)
{
    char data[160];
    snprintf(data, sizeof data, "{\"type\":\"%s\",\"priority\":%lld}", type, priority);
    return event_encode(job_id, 1, "job.queued", clock_wall_ms(), data);
}

/* Reads a positive whole-number "id" member; returns 0 or -1. */
static int peek_id(const cJSON *obj, long long *seq)
{
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(obj, "id");
    if (!cJSON_IsNumber(id))
        return -1;
    double v = id->valuedouble;
    if (!(v >= 1 && v <= (double)EVENT_MAX_ID) || v != (double)(long long)v)
        return -1;
    *seq = (long long)v;
    return 0;
}

int event_peek(const char *body, size_t len, long long *seq, char *type,
               size_t type_size)
{
    if (body == NULL)
        return -1;
    char err[128];
    cJSON *root = json_parse_bounded(body, len, EVENT_MAX_BYTES, EVENT_MAX_DEPTH,
                                     err, sizeof err);
    if (root == NULL)
        return -1;

    int rc = -1;
    long long id;
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(root, "type");
    if (cJSON_IsObject(root) && peek_id(root, &id) == 0 && cJSON_IsString(t)
        && event_type_known(t->valuestring)) {
        size_t tlen = strlen(t->valuestring);
        if (type == NULL || tlen < type_size) {
            if (type)
                memcpy(type, t->valuestring, tlen + 1);
            if (seq)
                *seq = id;
            rc = 0;
        }
    }
    cJSON_Delete(root);
    return rc;
}

static void argv_set(redis_argv *c, int i, const char *s, size_t len)
{
    c->argv[i] = s;
    c->argvlen[i] = len;
}

static void argv_str(redis_argv *c, int i, const char *s)
{
    argv_set(c, i, s, strlen(s));
}

/* Formats n into the command's numeric slot slot and makes it argument i. */
static void argv_num(redis_argv *c, int i, int slot, long long n)
{
    int len = snprintf(c->numbuf[slot], sizeof c->numbuf[slot], "%lld", n);
    argv_set(c, i, c->numbuf[slot], (size_t)len);
}

/* KEYS[1] the ring, KEYS[2] the state hash; ARGV: notify channel, ring
 * size, TTL in seconds, seq, body, status ('' leaves it). Redis converts
 * the Lua number -keep to an integer argument. */
const char event_append_lua[] =
    EVENT_APPEND_FUNCTION
    "return append(KEYS[1],KEYS[2],ARGV[1],tonumber(ARGV[2]),ARGV[3],ARGV[4],ARGV[5],ARGV[6])\n";

static redis_script append_script = REDIS_SCRIPT(event_append_lua);

const char *event_append_sha(void)
{
    return redis_script_sha(&append_script);
}

void event_append_command(redis_argv *cmd, bool use_sha, const char *job_id,
                          long long seq, const char *body, size_t body_len,
                          const char *status, int ring_size, int ttl_s,
                          event_keys *keys)
{
    /* A ring of 0 would make LTRIM keep everything, and EXPIRE 0 would drop
     * the ring at once; config_load refuses both, this keeps them harmless. */
    if (ring_size < 1)
        ring_size = 1;
    if (ttl_s < 1)
        ttl_s = 1;

    key_events(keys->events, job_id);
    key_notify(keys->notify, job_id);
    key_state(keys->state, job_id);
    memset(cmd, 0, sizeof *cmd);

    cmd->argc = 11;
    const char *word, *script;
    redis_script_head(&append_script, !use_sha, &word, &script);
    argv_str(cmd, 0, word);
    argv_str(cmd, 1, script);
    argv_str(cmd, 2, "2");
    argv_str(cmd, 3, keys->events);
    argv_str(cmd, 4, keys->state);
    argv_str(cmd, 5, keys->notify);
    argv_num(cmd, 6, 0, ring_size);
    argv_num(cmd, 7, 1, ttl_s);
    argv_num(cmd, 8, 2, seq);
    argv_set(cmd, 9, body, body_len);
    argv_str(cmd, 10, status ? status : "");
}

/* Adds {"code","message"} as error to obj; false when memory ran out. */
static bool add_error(cJSON *obj, const char *code, const char *message)
{
    cJSON *err = cJSON_AddObjectToObject(obj, "error");
    return err != NULL && cJSON_AddStringToObject(err, "code", code) != NULL
        && cJSON_AddStringToObject(err, "message", message ? message : "") != NULL;
}

/* Prints obj compactly and frees it; NULL when ok is false or printing fails. */
static char *print_and_free(cJSON *obj, bool ok)
{
    char *s = ok && obj != NULL ? json_print(obj) : NULL;
    cJSON_Delete(obj);
    return s;
}

char *event_failed_data(const char *code, const char *message)
{
    cJSON *obj = cJSON_CreateObject();
    return print_and_free(obj, obj != NULL && add_error(obj, code, message));
}

char *event_cancelled_data(const char *reason)
{
    cJSON *obj = cJSON_CreateObject();
    return print_and_free(obj, obj != NULL
                          && cJSON_AddStringToObject(obj, "reason", reason) != NULL);
}

char *event_retrying_data(int attempt, const char *reason, long long delay_ms,
                          const char *code, const char *message)
{
    cJSON *obj = cJSON_CreateObject();
    bool ok = obj != NULL
        && cJSON_AddNumberToObject(obj, "attempt", attempt) != NULL
        && cJSON_AddStringToObject(obj, "reason", reason) != NULL
        && cJSON_AddNumberToObject(obj, "delay_ms", (double)delay_ms) != NULL
        && (code == NULL || add_error(obj, code, message));
    return print_and_free(obj, ok);
}

void redis_argv_of(redis_argv *cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    cmd->argc = 0;
    const char *s;
    while (cmd->argc < REDIS_ARGV_MAX && (s = va_arg(ap, const char *)) != NULL) {
        cmd->argv[cmd->argc] = s;
        cmd->argvlen[cmd->argc] = strlen(s);
        cmd->argc++;
    }
    va_end(ap);
}
