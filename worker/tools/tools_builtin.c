/*
 * tools_builtin.c - the built-in tools an agent run can invoke (see
 * tools_builtin.h for the list and their outputs).
 *
 * Each handler gets an input already checked against its own schema (in
 * tools_builtin_run), so it reads fields without re-checking their types,
 * but it still checks what a schema cannot say: a date-time's syntax, a
 * UUID, a cache key's bytes. The manifest in tool_manifests may narrow the
 * input further; it can never widen it past these schemas.
 *
 * Tenant isolation is here, not in the caller: every query takes the
 * caller's tenant as a parameter and every cache key carries it, so a
 * tool cannot be talked into another tenant's data by its arguments.
 * Database errors are logged in full and reported to the model only as
 * "the query failed", since their text may name internals.
 */
#include "tools_builtin.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "clock.h"
#include "jsonutil.h"
#include "log.h"
#include "schema.h"
#include "strbuf.h"
#include "job_store.h"
#include "tool_env.h"
#include "utf8.h"
#include "uuid.h"

#define EMPTY_OBJECT_SCHEMA \
    "{\"type\":\"object\",\"properties\":{},\"additionalProperties\":false}"
#define JOBS_LIST_DEFAULT_LIMIT 20
#define HISTORY_DEFAULT_LIMIT   10
#define CACHE_DEFAULT_TTL_S     3600
#define QUERY_RESULT_MAX        (4 * 1024 * 1024)   /* bytes of JSON a query may answer */
#define SEARCH_MAX_RESULTS      50
#define SUMMARY_ITEMS           10                  /* items a list summary names */

static void set_err(char *err, size_t err_size, const char *msg)
{
    if (err && err_size)
        snprintf(err, err_size, "%s", msg);
}

static tool_err nomem(char *err, size_t err_size)
{
    set_err(err, err_size, "out of memory");
    return TOOL_ERR_NOMEM;
}

/* Hands o to the caller when every addition succeeded (ok), else frees it. */
static tool_err finish(cJSON *o, bool ok, cJSON **output, char *err, size_t err_size)
{
    if (!o || !ok) {
        cJSON_Delete(o);
        return nomem(err, err_size);
    }
    *output = o;
    return TOOL_OK;
}

/* A JSON array of the space-separated words of s. */
static cJSON *words_array(const char *s)
{
    cJSON *a = cJSON_CreateArray();

    while (a && s && *s) {
        while (*s == ' ')
            s++;
        size_t n = strcspn(s, " ");
        if (n == 0)
            break;
        char *w = strndup(s, n);
        cJSON *item = w ? cJSON_CreateString(w) : NULL;
        free(w);
        if (!item || !cJSON_AddItemToArray(a, item)) {
            cJSON_Delete(item);
            cJSON_Delete(a);
            return NULL;
        }
        s += n;
    }
    return a;
}

/* ---- PostgreSQL --------------------------------------------------------- */

/* Runs sql (one row, one column of JSON text) with params and parses the
 * answer. Returns the tree (the caller frees it), or NULL with a reason in
 * err: an empty result gives *none true and no error. */
static cJSON *query_json(PGconn *pg, const char *tenant, const char *what, const char *sql,
                         int nparams,
                         const char *const *params, bool *none, char *err, size_t err_size)
{
    if (none)
        *none = false;
    if (!pg || PQstatus(pg) != CONNECTION_OK) {
        errbuf_printf(err, err_size, "the database is unavailable, so %s cannot be read", what);
        return NULL;
    }
    /* As the calling job's tenant, so row-level security holds it to
     * that tenant's rows (and the global ones) whatever its WHERE says. */
    PGresult *res = store_exec_as(pg, tenant, sql, nparams, params);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        log_error("tool query for %s failed: %s", what, PQerrorMessage(pg));
        PQclear(res);
        errbuf_printf(err, err_size, "the database query for %s failed", what);
        return NULL;
    }
    if (PQntuples(res) == 0 || PQgetisnull(res, 0, 0)) {
        PQclear(res);
        if (none)
            *none = true;
        else
            errbuf_printf(err, err_size, "the database answered nothing for %s", what);
        return NULL;
    }
    char perr[128];
    cJSON *j = json_parse_bounded(PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0),
                                  QUERY_RESULT_MAX, JSON_MAX_DEPTH, perr, sizeof(perr));
    PQclear(res);
    if (!j) {
        log_error("tool query for %s: unreadable answer: %s", what, perr);
        errbuf_printf(err, err_size, "the database answer for %s could not be read", what);
    }
    return j;
}

/* ---- system.time --------------------------------------------------------- */

static tool_err tool_time(const tool_call_env *env, const cJSON *input, cJSON **output,
                          char *err, size_t err_size)
{
    char ts[32];
    long long now = clock_wall_ms();
    bool ok = true;

    clock_format_rfc3339(now, ts, sizeof(ts));
    cJSON *o = cJSON_CreateObject();
    ok = o != NULL;
    json_add_str(o, "utc", ts, &ok);
    json_add_num(o, "epoch_ms", (double)now, &ok);
    return finish(o, ok, output, err, err_size);
}

/* ---- system.health ------------------------------------------------------- */

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

/* The worker that claimed the job, from its row, into out; "" if unknown. */
static void lookup_worker_id(const tool_call_env *env, char *out, size_t out_size)
{
    out[0] = '\0';
    if (!env->pg || !env->job_id || !env->tenant_id || PQstatus(env->pg) != CONNECTION_OK)
        return;
    const char *params[2] = {env->job_id, env->tenant_id};
    PGresult *res = store_exec_as(env->pg, env->tenant_id,
                                  "SELECT worker_id FROM jobs WHERE id = $1::uuid AND tenant_id = $2",
                                  2, params);
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 && !PQgetisnull(res, 0, 0))
        snprintf(out, out_size, "%s", PQgetvalue(res, 0, 0));
    else if (PQresultStatus(res) != PGRES_TUPLES_OK)
        log_warn("system.health: worker id lookup failed: %s", PQerrorMessage(env->pg));
    PQclear(res);
}

static const char *redis_state(struct redisContext *c)
{
    if (!c)
        return "unreachable";
    redisReply *r = redisCommand(c, "PING");
    bool ok = r && r->type == REDIS_REPLY_STATUS;
    if (r)
        freeReplyObject(r);
    return ok ? "ok" : "error";
}

static tool_err tool_health(const tool_call_env *env, const cJSON *input, cJSON **output,
                            char *err, size_t err_size)
{
    char worker_id[128];
    long long up = process_uptime_ms();

    if (up < 0) {
        set_err(err, err_size, "process uptime unavailable (/proc not readable)");
        return TOOL_ERR_FAILED;
    }
    if (env->worker_id)
        snprintf(worker_id, sizeof(worker_id), "%s", env->worker_id);
    else
        lookup_worker_id(env, worker_id, sizeof(worker_id));

    const char *db = NULL, *rd = NULL;
    if (env->live) {
        db = env->pg && PQstatus(env->pg) == CONNECTION_OK ? "ok" : "unreachable";
        rd = redis_state(env->redis);
    }
    bool healthy = (!db || strcmp(db, "ok") == 0) && (!rd || strcmp(rd, "ok") == 0);

    cJSON *o = cJSON_CreateObject();
    bool ok = o != NULL;
    json_add_str(o, "status", healthy ? "ok" : "degraded", &ok);
    json_add_str(o, "worker_id", worker_id[0] ? worker_id : NULL, &ok);
    json_add_num(o, "pid", (double)getpid(), &ok);
    json_add_num(o, "uptime_ms", (double)up, &ok);
    json_add_num(o, "uptime_s", (double)(up / 1000), &ok);
    if (db) {
        json_add_str(o, "database", db, &ok);
        json_add_str(o, "redis", rd, &ok);
    }
    return finish(o, ok, output, err, err_size);
}

/* ---- cache.get / cache.set / cache.delete -------------------------------- */

static bool tenant_id_valid(const char *t)
{
    size_t n = 0;

    if (!t)
        return false;
    for (; t[n]; n++)
        if (n >= 64 || !(isalnum((unsigned char)t[n]) || t[n] == '.' || t[n] == '_' ||
                         t[n] == '-'))
            return false;
    return n > 0;
}

int tools_cache_key(char *out, size_t out_size, const char *tenant, const char *key,
                    char *err, size_t err_size)
{
    size_t n = 0;

    if (out && out_size)
        out[0] = '\0';
    if (!tenant_id_valid(tenant)) {
        set_err(err, err_size, "the caller's tenant id is not usable in a key");
        return -1;
    }
    if (!key || !*key) {
        set_err(err, err_size, "/key: must not be empty");
        return -1;
    }
    for (; key[n]; n++) {
        if (n >= TOOLS_CACHE_KEY_MAX) {
            errbuf_printf(err, err_size, "/key: must be at most %d bytes", TOOLS_CACHE_KEY_MAX);
            return -1;
        }
        if (key[n] <= ' ' || key[n] > '~') {
            set_err(err, err_size,
                    "/key: must be printable ASCII without spaces or control characters");
            return -1;
        }
    }
    int w = snprintf(out, out_size, "cache:%s:%s", tenant, key);
    if (w < 0 || (size_t)w >= out_size) {
        if (out && out_size)
            out[0] = '\0';
        set_err(err, err_size, "cache key does not fit");
        return -1;
    }
    return 0;
}

/* Builds the tenant's key for input's "key"; TOOL_ERR_BAD_INPUT if bad. */
static tool_err cache_key_of(const tool_call_env *env, const cJSON *input, char *key,
                             size_t key_size, char *err, size_t err_size)
{
    if (tools_cache_key(key, key_size, env->tenant_id, json_get_string(input, "key"), err,
                        err_size) != 0)
        return env->tenant_id && tenant_id_valid(env->tenant_id) ? TOOL_ERR_BAD_INPUT
                                                                 : TOOL_ERR_FAILED;
    return TOOL_OK;
}

/* Runs one command; NULL with err filled on I/O failure or an error reply. */
static redisReply *cache_command(const tool_call_env *env, int argc, const char **argv,
                                 const size_t *argvlen, char *err, size_t err_size)
{
    if (!env->redis) {
        set_err(err, err_size, "the cache is unavailable: Redis cannot be reached");
        return NULL;
    }
    redisReply *r = redisCommandArgv(env->redis, argc, argv, argvlen);
    if (!r) {
        errbuf_printf(err, err_size, "the cache command failed: %.120s", env->redis->errstr);
        return NULL;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        errbuf_printf(err, err_size, "the cache refused the command: %.120s",
                      r->str ? r->str : "");
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

static bool utf8_text(const char *s, size_t len)
{
    for (size_t i = 0; i < len;) {
        size_t n = utf8_sequence_len((const unsigned char *)s + i, len - i);
        if (n == 0 || s[i] == '\0')
            return false;
        i += n;
    }
    return true;
}

static tool_err tool_cache_get(const tool_call_env *env, const cJSON *input, cJSON **output,
                               char *err, size_t err_size)
{
    char key[TOOLS_CACHE_KEY_MAX + 96];
    tool_err e = cache_key_of(env, input, key, sizeof(key), err, err_size);
    if (e != TOOL_OK)
        return e;

    const char *argv[2] = {"GET", key};
    size_t argvlen[2] = {3, strlen(key)};
    redisReply *r = cache_command(env, 2, argv, argvlen, err, err_size);
    if (!r)
        return TOOL_ERR_FAILED;
    if (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_NIL) {
        freeReplyObject(r);
        set_err(err, err_size, "the cache answered GET with something other than a value");
        return TOOL_ERR_FAILED;
    }
    bool found = r->type == REDIS_REPLY_STRING;
    if (found && !utf8_text(r->str, r->len)) {
        freeReplyObject(r);
        set_err(err, err_size, "the cached value is not UTF-8 text");
        return TOOL_ERR_FAILED;
    }
    long long ttl = -1;
    if (found) {
        const char *targv[2] = {"TTL", key};
        size_t targvlen[2] = {3, strlen(key)};
        redisReply *t = cache_command(env, 2, targv, targvlen, err, err_size);
        if (t && t->type == REDIS_REPLY_INTEGER)
            ttl = t->integer;
        if (t)
            freeReplyObject(t);
    }

    cJSON *o = cJSON_CreateObject();
    bool ok = o != NULL;
    json_add_str(o, "key", json_get_string(input, "key"), &ok);
    json_add_bool(o, "found", found, &ok);
    json_add_str(o, "value", found ? r->str : NULL, &ok);
    if (ttl >= 0)
        json_add_num(o, "ttl_s", (double)ttl, &ok);
    else
        json_add_str(o, "ttl_s", NULL, &ok);
    freeReplyObject(r);
    return finish(o, ok, output, err, err_size);
}

static tool_err tool_cache_set(const tool_call_env *env, const cJSON *input, cJSON **output,
                               char *err, size_t err_size)
{
    char key[TOOLS_CACHE_KEY_MAX + 96], ttl_text[24];
    long long ttl = CACHE_DEFAULT_TTL_S;
    tool_err e = cache_key_of(env, input, key, sizeof(key), err, err_size);
    if (e != TOOL_OK)
        return e;

    const char *value = json_get_string(input, "value");
    if (!value) {
        set_err(err, err_size, "/value: is required");
        return TOOL_ERR_BAD_INPUT;
    }
    size_t vlen = strlen(value);
    if (vlen > TOOLS_CACHE_VALUE_MAX) {
        errbuf_printf(err, err_size, "/value: must be at most %d bytes (it has %zu)",
                      TOOLS_CACHE_VALUE_MAX, vlen);
        return TOOL_ERR_BAD_INPUT;
    }
    if (json_get_int(input, "ttl_s", 1, 86400, &ttl) < 0) {
        set_err(err, err_size, "/ttl_s: must be a whole number of seconds from 1 to 86400");
        return TOOL_ERR_BAD_INPUT;
    }
    snprintf(ttl_text, sizeof(ttl_text), "%lld", ttl);

    const char *argv[5] = {"SET", key, value, "EX", ttl_text};
    size_t argvlen[5] = {3, strlen(key), vlen, 2, strlen(ttl_text)};
    redisReply *r = cache_command(env, 5, argv, argvlen, err, err_size);
    if (!r)
        return TOOL_ERR_FAILED;
    freeReplyObject(r);

    cJSON *o = cJSON_CreateObject();
    bool ok = o != NULL;
    json_add_str(o, "key", json_get_string(input, "key"), &ok);
    json_add_bool(o, "stored", true, &ok);
    json_add_num(o, "ttl_s", (double)ttl, &ok);
    json_add_num(o, "bytes", (double)vlen, &ok);
    return finish(o, ok, output, err, err_size);
}

static tool_err tool_cache_delete(const tool_call_env *env, const cJSON *input,
                                  cJSON **output, char *err, size_t err_size)
{
    char key[TOOLS_CACHE_KEY_MAX + 96];
    tool_err e = cache_key_of(env, input, key, sizeof(key), err, err_size);
    if (e != TOOL_OK)
        return e;

    const char *argv[2] = {"DEL", key};
    size_t argvlen[2] = {3, strlen(key)};
    redisReply *r = cache_command(env, 2, argv, argvlen, err, err_size);
    if (!r)
        return TOOL_ERR_FAILED;
    bool deleted = r->type == REDIS_REPLY_INTEGER && r->integer > 0;
    freeReplyObject(r);

    cJSON *o = cJSON_CreateObject();
    bool ok = o != NULL;
    json_add_str(o, "key", json_get_string(input, "key"), &ok);
    json_add_bool(o, "deleted", deleted, &ok);
    return finish(o, ok, output, err, err_size);
}

/* ---- jobs.list / jobs.get ------------------------------------------------- */

/* The compact summary of a job, as json_build_object arguments over j. */
#define JOB_SUMMARY_SQL \
    "'id', j.id, 'type', j.type, 'status', api_job_status(j), 'error', api_job_error(j), " \
    "'created_at', api_ts(j.created_at), 'finished_at', api_ts(j.finished_at)"

static tool_err tool_jobs_list(const tool_call_env *env, const cJSON *input, cJSON **output,
                               char *err, size_t err_size)
{
    static const char sql[] =
        "SELECT coalesce(json_agg(json_build_object(" JOB_SUMMARY_SQL ")"
        "                 ORDER BY j.created_at DESC, j.id DESC), '[]')::text"
        "  FROM (SELECT * FROM jobs"
        "         WHERE tenant_id = $1"
        "           AND ($2::text IS NULL OR status = $2)"
        "           AND ($3::text IS NULL OR type = $3)"
        "           AND ($4::timestamptz IS NULL OR created_at >= $4::timestamptz)"
        "         ORDER BY created_at DESC, id DESC"
        "         LIMIT $5::int) j";
    long long limit = JOBS_LIST_DEFAULT_LIMIT, since_ms = 0;
    char since[32], limit_text[24];
    const char *status = json_get_string(input, "status");
    const char *type = json_get_string(input, "type");
    const char *since_in = json_get_string(input, "since");

    if (json_get_int(input, "limit", 1, 100, &limit) < 0) {
        set_err(err, err_size, "/limit: must be a whole number from 1 to 100");
        return TOOL_ERR_BAD_INPUT;
    }
    if (since_in && clock_parse_rfc3339(since_in, &since_ms) != 0) {
        set_err(err, err_size,
                "/since: must be an RFC 3339 date-time such as 2026-11-21T00:00:00Z");
        return TOOL_ERR_BAD_INPUT;
    }
    if (since_in)
        clock_format_rfc3339(since_ms, since, sizeof(since));
    if (!env->tenant_id) {
        set_err(err, err_size, "the caller's tenant is unknown");
        return TOOL_ERR_FAILED;
    }
    /* One more than asked tells whether there are more. */
    snprintf(limit_text, sizeof(limit_text), "%lld", limit + 1);
    const char *params[5] = {env->tenant_id, status, type, since_in ? since : NULL, limit_text};
    cJSON *jobs = query_json(env->pg, env->tenant_id, "the job list", sql, 5, params, NULL, err, err_size);
    if (!jobs)
        return TOOL_ERR_FAILED;
    if (!cJSON_IsArray(jobs)) {
        cJSON_Delete(jobs);
        set_err(err, err_size, "the database answered the job list with something odd");
        return TOOL_ERR_FAILED;
    }
    bool truncated = cJSON_GetArraySize(jobs) > limit;
    if (truncated)
        cJSON_DeleteItemFromArray(jobs, (int)limit);

    cJSON *o = cJSON_CreateObject();
    bool ok = o != NULL;
    json_add_item(o, "jobs", jobs, &ok);
    json_add_num(o, "count", (double)cJSON_GetArraySize(jobs), &ok);
    json_add_bool(o, "truncated", truncated, &ok);
    cJSON *filter = cJSON_CreateObject();
    bool fok = filter != NULL;
    json_add_str(filter, "status", status, &fok);
    json_add_str(filter, "type", type, &fok);
    json_add_str(filter, "since", since_in ? since : NULL, &fok);
    json_add_num(filter, "limit", (double)limit, &fok);
    if (!fok) {
        cJSON_Delete(filter);
        filter = NULL;
    }
    json_add_item(o, "filter", filter, &ok);
    return finish(o, ok, output, err, err_size);
}

static tool_err tool_jobs_get(const tool_call_env *env, const cJSON *input, cJSON **output,
                              char *err, size_t err_size)
{
    static const char sql[] =
        "SELECT json_build_object(" JOB_SUMMARY_SQL ", 'attempts', j.attempts,"
        "       'max_attempts', j.max_attempts, 'started_at', api_ts(j.started_at))::text"
        "  FROM jobs j WHERE j.tenant_id = $1 AND j.id = $2::uuid";
    char id[UUID_STR_LEN];
    bool none = false;

    if (!uuid_parse(json_get_string(input, "id"), id)) {
        set_err(err, err_size, "/id: must be a job id (a UUID such as "
                "0190d2a4-7e1c-7cc3-9a4e-1f2b3c4d5e6f)");
        return TOOL_ERR_BAD_INPUT;
    }
    if (!env->tenant_id) {
        set_err(err, err_size, "the caller's tenant is unknown");
        return TOOL_ERR_FAILED;
    }
    const char *params[2] = {env->tenant_id, id};
    cJSON *job = query_json(env->pg, env->tenant_id, "the job", sql, 2, params, &none, err, err_size);
    if (!job && !none)
        return TOOL_ERR_FAILED;

    cJSON *o = cJSON_CreateObject();
    bool ok = o != NULL;
    json_add_str(o, "id", id, &ok);
    json_add_bool(o, "found", job != NULL, &ok);
    if (job)
        json_add_item(o, "job", job, &ok);
    else
        json_add_str(o, "job", NULL, &ok);
    return finish(o, ok, output, err, err_size);
}

/* ---- agent.history -------------------------------------------------------- */

static tool_err tool_agent_history(const tool_call_env *env, const cJSON *input,
                                   cJSON **output, char *err, size_t err_size)
{
    /* The run's own created_at bounds "earlier"; runs are listed oldest
     * first, as a conversation reads. */
    static const char sql[] =
        "SELECT coalesce(json_agg(json_build_object('id', h.id, 'prompt', h.prompt,"
        "         'output', h.output, 'output_truncated', h.output_truncated,"
        "         'status', h.status, 'created_at', api_ts(h.created_at))"
        "         ORDER BY h.created_at, h.id), '[]')::text"
        "  FROM (SELECT r.id, left(r.prompt, 300) AS prompt, left(r.output, 500) AS output,"
        "               coalesce(length(r.output) > 500, false) AS output_truncated,"
        "               api_job_status(j) AS status, r.created_at"
        "          FROM agent_runs r"
        "          JOIN jobs j ON j.id = r.job_id AND j.tenant_id = r.tenant_id"
        "         WHERE r.tenant_id = $1 AND r.session_id = $2::uuid AND r.id <> $3::uuid"
        "           AND r.created_at <= coalesce((SELECT created_at FROM agent_runs"
        "                                          WHERE id = $3::uuid AND tenant_id = $1),"
        "                                        now())"
        "         ORDER BY r.created_at DESC, r.id DESC"
        "         LIMIT $4::int) h";
    long long limit = HISTORY_DEFAULT_LIMIT;
    char limit_text[24];

    if (json_get_int(input, "limit", 1, 50, &limit) < 0) {
        set_err(err, err_size, "/limit: must be a whole number from 1 to 50");
        return TOOL_ERR_BAD_INPUT;
    }
    cJSON *o = cJSON_CreateObject();
    bool ok = o != NULL;
    if (!env->session_id) {
        json_add_str(o, "session_id", NULL, &ok);
        json_add_item(o, "runs", cJSON_CreateArray(), &ok);
        json_add_num(o, "count", 0, &ok);
        json_add_str(o, "note", "this run is not part of a session, so it has no earlier runs", &ok);
        return finish(o, ok, output, err, err_size);
    }
    if (!env->tenant_id || !env->run_id) {
        cJSON_Delete(o);
        set_err(err, err_size, "the run calling the tool is unknown");
        return TOOL_ERR_FAILED;
    }
    snprintf(limit_text, sizeof(limit_text), "%lld", limit);
    const char *params[4] = {env->tenant_id, env->session_id, env->run_id, limit_text};
    cJSON *runs = query_json(env->pg, env->tenant_id, "the session's runs", sql, 4, params, NULL, err,
                             err_size);
    if (!runs || !cJSON_IsArray(runs)) {
        cJSON_Delete(runs);
        cJSON_Delete(o);
        if (runs)
            set_err(err, err_size, "the database answered the history with something odd");
        return TOOL_ERR_FAILED;
    }
    int n = cJSON_GetArraySize(runs);
    json_add_str(o, "session_id", env->session_id, &ok);
    json_add_item(o, "runs", runs, &ok);
    json_add_num(o, "count", n, &ok);
    if (n == 0)
        json_add_str(o, "note", "this is the first run of its session", &ok);
    return finish(o, ok, output, err, err_size);
}

/* ---- model.list ------------------------------------------------------------ */

static tool_err tool_model_list(const tool_call_env *env, const cJSON *input, cJSON **output,
                                char *err, size_t err_size)
{
    /* Only names and flags: base_url and params may hold credentials or
     * internal addresses, and a model has no use for them. */
    static const char sql[] =
        "SELECT coalesce(json_agg(json_build_object('provider', m.provider, 'model', m.model,"
        "         'scope', m.scope, 'is_default', m.is_default)"
        "         ORDER BY m.scope = 'tenant' DESC, m.is_default DESC, m.provider, m.model),"
        "         '[]')::text"
        "  FROM (SELECT provider, model, scope, is_default FROM model_defaults"
        "         WHERE scope = 'global' OR (scope = 'tenant' AND tenant_id = $1)"
        "         ORDER BY scope = 'tenant' DESC, is_default DESC, provider, model"
        "         LIMIT 100) m";

    if (!env->tenant_id) {
        set_err(err, err_size, "the caller's tenant is unknown");
        return TOOL_ERR_FAILED;
    }
    const char *params[1] = {env->tenant_id};
    cJSON *models = query_json(env->pg, env->tenant_id, "the model list", sql, 1, params, NULL, err, err_size);
    if (!models || !cJSON_IsArray(models)) {
        if (models)
            set_err(err, err_size, "the database answered the model list with something odd");
        cJSON_Delete(models);
        return TOOL_ERR_FAILED;
    }
    cJSON *o = cJSON_CreateObject();
    bool ok = o != NULL;
    int n = cJSON_GetArraySize(models);
    json_add_item(o, "models", models, &ok);
    json_add_num(o, "count", n, &ok);
    return finish(o, ok, output, err, err_size);
}

/* ---- security.describe_principal ------------------------------------------ */

static tool_err tool_describe_principal(const tool_call_env *env, const cJSON *input,
                                        cJSON **output, char *err, size_t err_size)
{
    const tool_principal *p = env->principal;

    if (!p) {
        set_err(err, err_size, "no principal is known for this run");
        return TOOL_ERR_FAILED;
    }
    cJSON *o = cJSON_CreateObject();
    bool ok = o != NULL;
    json_add_str(o, "sub", p->sub, &ok);
    json_add_str(o, "tenant_id", p->tenant_id, &ok);
    json_add_item(o, "roles", words_array(p->roles), &ok);
    json_add_item(o, "scopes", words_array(p->scope), &ok);
    return finish(o, ok, output, err, err_size);
}

/* ---- catalog.search --------------------------------------------------------- */

#define SEARCH_MAX_WORDS 16
#define SEARCH_WORD_MAX  32

/* Words that say nothing about which tool is meant ("tool" fits them
 * all: "what tools do you have?" asks for the whole catalog). */
static bool stopword(const char *w)
{
    static const char *const words[] = {
        "a", "about", "all", "an", "and", "any", "are", "available", "can",
        "capabilities", "capability", "could", "do", "does", "for", "have", "how", "i",
        "in", "is", "it", "list", "me", "my", "of", "on", "or", "please", "show", "the",
        "there", "this", "to", "tool", "tools", "use", "what", "which", "with", "you",
        "your",
    };
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (strcmp(w, words[i]) == 0)
            return true;
    return false;
}

/* Splits query into lowercase words of letters and digits, dropping
 * stopwords; returns their number. */
static size_t query_words(const char *query, char words[][SEARCH_WORD_MAX])
{
    size_t n = 0;

    for (const char *p = query; p && *p && n < SEARCH_MAX_WORDS;) {
        while (*p && !isalnum((unsigned char)*p))
            p++;
        size_t len = 0;
        while (isalnum((unsigned char)p[len]))
            len++;
        if (len == 0)
            break;
        if (len < SEARCH_WORD_MAX) {
            for (size_t i = 0; i < len; i++)
                words[n][i] = (char)tolower((unsigned char)p[i]);
            words[n][len] = '\0';
            if (!stopword(words[n]))
                n++;
        }
        p += len;
    }
    return n;
}

/* Case-insensitive: does hay contain needle (or needle without a plural
 * 's', so "jobs" finds "job")? */
static bool contains_word(const char *hay, const char *needle)
{
    size_t n = strlen(needle);

    if (n > 3 && needle[n - 1] == 's')
        n--;
    for (const char *h = hay; h && *h; h++)
        if (strncasecmp(h, needle, n) == 0)
            return true;
    return false;
}

typedef struct search_hit {
    const tool_manifest_info *m;
    int score;
} search_hit;

static int by_score_then_name(const void *a, const void *b)
{
    const search_hit *x = a, *y = b;
    if (x->score != y->score)
        return y->score - x->score;
    return strcmp(x->m->name, y->m->name);
}

static cJSON *hit_json(const search_hit *h)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *scopes = cJSON_CreateArray();
    bool ok = o && scopes;

    for (size_t i = 0; ok && i < h->m->n_required_scopes; i++) {
        cJSON *s = cJSON_CreateString(h->m->required_scopes[i]);
        if (!s || !cJSON_AddItemToArray(scopes, s)) {
            cJSON_Delete(s);
            ok = false;
        }
    }
    json_add_str(o, "name", h->m->name, &ok);
    json_add_str(o, "description", h->m->description, &ok);
    json_add_item(o, "required_scopes", scopes, &ok);
    json_add_bool(o, "callable", h->m->callable, &ok);
    json_add_num(o, "score", h->score, &ok);
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static tool_err tool_catalog_search(const tool_call_env *env, const cJSON *input,
                                    cJSON **output, char *err, size_t err_size)
{
    char words[SEARCH_MAX_WORDS][SEARCH_WORD_MAX];
    const char *query = json_get_string(input, "query");
    size_t nw = query_words(query, words);
    size_t n = env->manifests ? env->n_manifests : 0;
    search_hit *hits = calloc(n ? n : 1, sizeof(*hits));
    size_t nhits = 0;

    if (!hits)
        return nomem(err, err_size);
    for (size_t i = 0; i < n; i++) {
        const tool_manifest_info *m = &env->manifests[i];
        int score = 0;
        for (size_t w = 0; w < nw; w++) {
            if (contains_word(m->name, words[w]))
                score += 3;
            if (contains_word(m->description, words[w]))
                score += 1;
        }
        if (score > 0)
            hits[nhits++] = (search_hit){m, score};
    }
    /* Nothing matched (or the query was all stopwords, as in "what can you
     * do?"): the whole catalog is the best answer. */
    bool everything = nhits == 0;
    if (everything)
        for (size_t i = 0; i < n; i++)
            hits[nhits++] = (search_hit){&env->manifests[i], 0};
    qsort(hits, nhits, sizeof(*hits), by_score_then_name);

    cJSON *o = cJSON_CreateObject();
    cJSON *tools = cJSON_CreateArray();
    bool ok = o && tools;
    size_t shown = nhits < SEARCH_MAX_RESULTS ? nhits : SEARCH_MAX_RESULTS;
    for (size_t i = 0; ok && i < shown; i++) {
        cJSON *h = hit_json(&hits[i]);
        if (!h || !cJSON_AddItemToArray(tools, h)) {
            cJSON_Delete(h);
            ok = false;
        }
    }
    free(hits);
    json_add_str(o, "query", query ? query : "", &ok);
    json_add_item(o, "tools", tools, &ok);
    json_add_num(o, "count", (double)shown, &ok);
    if (everything)
        json_add_str(o, "note", n ? "no tool matched the query's words, so every tool is listed"
                             : "this tenant has no tools", &ok);
    return finish(o, ok, output, err, err_size);
}

/* ---- the table ------------------------------------------------------------- */

/* These schemas are the handlers' contracts; sql/migrations/004_tool_manifests.sql
 * seeds the same text as the global manifests (a unit test compares them). */
static const builtin_tool tools[] = {
    {"system.time", "The current date and time in UTC (RFC 3339, milliseconds).",
     EMPTY_OBJECT_SCHEMA, tool_time, false},
    {"system.health",
     "The state of the worker running the job: id, pid, uptime, and whether its "
     "database and Redis connections work.",
     EMPTY_OBJECT_SCHEMA, tool_health, false},
    {"cache.get", "Reads a value this tenant stored in the cache under key.",
     "{\"type\":\"object\",\"properties\":{"
     "\"key\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":200}},"
     "\"required\":[\"key\"],\"additionalProperties\":false}",
     tool_cache_get, false},
    {"cache.set",
     "Stores a text value (at most 64 KB) for this tenant under key, for ttl_s seconds "
     "(default 3600, at most 86400).",
     "{\"type\":\"object\",\"properties\":{"
     "\"key\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":200},"
     "\"value\":{\"type\":\"string\",\"maxLength\":65536},"
     "\"ttl_s\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":86400}},"
     "\"required\":[\"key\",\"value\"],\"additionalProperties\":false}",
     tool_cache_set, true},
    {"cache.delete", "Deletes this tenant's cached value under key.",
     "{\"type\":\"object\",\"properties\":{"
     "\"key\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":200}},"
     "\"required\":[\"key\"],\"additionalProperties\":false}",
     tool_cache_delete, true},
    {"agent.history",
     "The earlier runs of this run's session, oldest first: prompt, output (cut to 500 "
     "characters), status and time.",
     "{\"type\":\"object\",\"properties\":{"
     "\"limit\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":50}},"
     "\"additionalProperties\":false}",
     tool_agent_history, false},
    {"jobs.list",
     "Lists this tenant's jobs, newest first, optionally by status, type and creation "
     "time (since, RFC 3339): id, type, status, error, created_at, finished_at.",
     "{\"type\":\"object\",\"properties\":{"
     "\"status\":{\"type\":\"string\","
     "\"enum\":[\"queued\",\"running\",\"succeeded\",\"failed\",\"cancelled\"]},"
     "\"type\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":64},"
     "\"since\":{\"type\":\"string\",\"format\":\"date-time\",\"maxLength\":40},"
     "\"limit\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":100}},"
     "\"additionalProperties\":false}",
     tool_jobs_list, false},
    {"jobs.get", "One of this tenant's jobs by id: type, status, error, attempts and times.",
     "{\"type\":\"object\",\"properties\":{"
     "\"id\":{\"type\":\"string\",\"format\":\"uuid\",\"minLength\":36,\"maxLength\":36}},"
     "\"required\":[\"id\"],\"additionalProperties\":false}",
     tool_jobs_get, false},
    {"model.list",
     "The language models this tenant can use (global and its own): provider, model and "
     "which is the default.",
     EMPTY_OBJECT_SCHEMA, tool_model_list, false},
    {"security.describe_principal",
     "Who the run acts for: the caller's subject, tenant, roles and scopes.",
     EMPTY_OBJECT_SCHEMA, tool_describe_principal, false},
    {"catalog.search",
     "Searches the tools this tenant has by words of the query in their names and "
     "descriptions; an empty or general query lists them all.",
     "{\"type\":\"object\",\"properties\":{"
     "\"query\":{\"type\":\"string\",\"maxLength\":1000}},"
     "\"required\":[\"query\"],\"additionalProperties\":false}",
     tool_catalog_search, false},
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

/* Checks input against t's schema; TOOL_ERR_BAD_INPUT names the JSON
 * Pointer of the first bad value. */
static tool_err check_input(const builtin_tool *t, const cJSON *input, char *err,
                            size_t err_size)
{
    char perr[128];
    schema_error se;
    cJSON *schema = json_parse_bounded(t->input_schema_json, strlen(t->input_schema_json),
                                       65536, JSON_MAX_DEPTH, perr, sizeof(perr));
    if (!schema) {
        errbuf_printf(err, err_size, "the tool's own input schema is unreadable: %s", perr);
        return TOOL_ERR_FAILED;
    }
    int rc = schema_validate(schema, input, &se);
    cJSON_Delete(schema);
    if (rc == 0)
        return TOOL_OK;
    errbuf_printf(err, err_size, "%s: %s", se.path[0] ? se.path : "(root)",
                  se.message);
    return TOOL_ERR_BAD_INPUT;
}

tool_err tools_builtin_run(const builtin_tool *t, const tool_call_env *env,
                           const cJSON *input, cJSON **output, char *err, size_t err_size)
{
    static const tool_call_env no_env;
    cJSON *empty = NULL;

    if (!output) {
        set_err(err, err_size, "no output slot");
        return TOOL_ERR_BAD_INPUT;
    }
    *output = NULL;
    if (!t) {
        set_err(err, err_size, "no such built-in tool");
        return TOOL_ERR_NOT_FOUND;
    }
    if (!input) {
        empty = cJSON_CreateObject();
        if (!empty)
            return nomem(err, err_size);
        input = empty;
    }
    tool_err e = check_input(t, input, err, err_size);
    if (e == TOOL_OK)
        e = t->invoke(env ? env : &no_env, input, output, err, err_size);
    cJSON_Delete(empty);
    if (e == TOOL_OK && !*output) {
        set_err(err, err_size, "the tool produced no output");
        e = TOOL_ERR_FAILED;
    }
    if (e != TOOL_OK) {
        cJSON_Delete(*output);
        *output = NULL;
    }
    return e;
}

/* ---- summaries ---------------------------------------------------------------- */

static const char *str_or(const cJSON *o, const char *k, const char *dflt)
{
    const char *s = json_get_string(o, k);
    return s ? s : dflt;
}

static double num_or(const cJSON *o, const char *k, double dflt)
{
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(n) ? n->valuedouble : dflt;
}

static void summarize_job(strbuf *b, const cJSON *j)
{
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");

    strbuf_addf(b, "%s (%s, %s", str_or(j, "id", "?"), str_or(j, "type", "?"),
                str_or(j, "status", "?"));
    if (cJSON_IsObject(e)) {
        strbuf_add(b, ": ");
        strbuf_add_flat(b, str_or(e, "code", ""), 64);
        strbuf_add(b, " ");
        strbuf_add_flat(b, str_or(e, "message", ""), 120);
    }
    strbuf_addf(b, ", created %s", str_or(j, "created_at", "?"));
    const char *fin = json_get_string(j, "finished_at");
    if (fin)
        strbuf_addf(b, ", finished %s", fin);
    strbuf_add(b, ")");
}

static void summarize_jobs_list(strbuf *b, const cJSON *out)
{
    const cJSON *jobs = cJSON_GetObjectItemCaseSensitive(out, "jobs");
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(out, "filter");
    const char *status = json_get_string(f, "status");
    const char *type = json_get_string(f, "type");
    const char *since = json_get_string(f, "since");
    int n = cJSON_GetArraySize(jobs);
    bool more = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(out, "truncated"));

    if (n == 0)
        strbuf_add(b, "no");
    else
        strbuf_addf(b, "%s%d", more ? "at least " : "", n);
    if (status)
        strbuf_addf(b, " %s", status);
    strbuf_addf(b, " job%s", n == 1 ? "" : "s");
    if (type) {
        strbuf_add(b, " of type ");
        strbuf_add_flat(b, type, 64);
    }
    if (since)
        strbuf_addf(b, " since %s", since);
    strbuf_add(b, " in this tenant");
    int i = 0;
    for (const cJSON *j = jobs ? jobs->child : NULL; j && i < SUMMARY_ITEMS; j = j->next, i++) {
        strbuf_add(b, i == 0 ? ": " : "; ");
        summarize_job(b, j);
    }
    if (n > SUMMARY_ITEMS)
        strbuf_addf(b, "; and %d more", n - SUMMARY_ITEMS);
}

static void summarize_history(strbuf *b, const cJSON *out)
{
    const cJSON *runs = cJSON_GetObjectItemCaseSensitive(out, "runs");
    int n = cJSON_GetArraySize(runs);

    if (n == 0) {
        strbuf_add(b, "no earlier runs: ");
        strbuf_add(b, str_or(out, "note", "none found"));
        return;
    }
    strbuf_addf(b, "%d earlier run%s in this session", n, n == 1 ? "" : "s");
    int i = 0;
    for (const cJSON *r = runs->child; r && i < SUMMARY_ITEMS; r = r->next, i++) {
        strbuf_addf(b, "%s%s [%s] \"", i == 0 ? ": " : "; ", str_or(r, "created_at", "?"),
                    str_or(r, "status", "?"));
        strbuf_add_flat(b, str_or(r, "prompt", ""), 80);
        strbuf_add(b, "\"");
        const char *o = json_get_string(r, "output");
        if (o) {
            strbuf_add(b, " -> \"");
            strbuf_add_flat(b, o, 120);
            strbuf_add(b, "\"");
        }
    }
    if (n > SUMMARY_ITEMS)
        strbuf_addf(b, "; and %d more", n - SUMMARY_ITEMS);
}

static void summarize_models(strbuf *b, const cJSON *out)
{
    const cJSON *models = cJSON_GetObjectItemCaseSensitive(out, "models");
    int n = cJSON_GetArraySize(models);

    strbuf_addf(b, "%d model%s available", n, n == 1 ? "" : "s");
    int i = 0;
    for (const cJSON *m = models ? models->child : NULL; m && i < SUMMARY_ITEMS;
         m = m->next, i++) {
        strbuf_add(b, i == 0 ? ": " : ", ");
        strbuf_add_flat(b, str_or(m, "provider", "?"), 64);
        strbuf_add(b, "/");
        strbuf_add_flat(b, str_or(m, "model", "?"), 128);
        strbuf_addf(b, " (%s%s)", str_or(m, "scope", "?"),
                    cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(m, "is_default"))
                        ? ", default" : "");
    }
}

/* "a b c" from a JSON array of strings, or none. */
static void join_strings(strbuf *b, const cJSON *arr, const char *none)
{
    int i = 0;
    for (const cJSON *s = arr ? arr->child : NULL; s; s = s->next)
        if (cJSON_IsString(s)) {
            strbuf_add(b, i++ ? " " : "");
            strbuf_add_flat(b, s->valuestring, 128);
        }
    if (i == 0)
        strbuf_add(b, none);
}

static void summarize_principal(strbuf *b, const cJSON *out)
{
    strbuf_add(b, "acting for ");
    strbuf_add_flat(b, str_or(out, "sub", "?"), 128);
    strbuf_add(b, " of tenant ");
    strbuf_add_flat(b, str_or(out, "tenant_id", "?"), 64);
    strbuf_add(b, "; roles: ");
    join_strings(b, cJSON_GetObjectItemCaseSensitive(out, "roles"), "none");
    strbuf_add(b, "; scopes: ");
    join_strings(b, cJSON_GetObjectItemCaseSensitive(out, "scopes"), "none");
}

static void summarize_catalog(strbuf *b, const cJSON *out)
{
    const cJSON *tools_arr = cJSON_GetObjectItemCaseSensitive(out, "tools");
    int n = cJSON_GetArraySize(tools_arr);

    strbuf_addf(b, "%d tool%s%s", n, n == 1 ? "" : "s",
                json_get_string(out, "note") ? " (no specific match, all listed)" : " matched");
    int i = 0;
    for (const cJSON *t = tools_arr ? tools_arr->child : NULL; t; t = t->next, i++) {
        strbuf_add(b, i == 0 ? ": " : "; ");
        strbuf_add_flat(b, str_or(t, "name", "?"), 64);
        if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(t, "callable"))) {
            strbuf_add(b, " (not callable by you; needs ");
            join_strings(b, cJSON_GetObjectItemCaseSensitive(t, "required_scopes"),
                         "a handler");
            strbuf_add(b, ")");
        }
        strbuf_add(b, " - ");
        strbuf_add_flat(b, str_or(t, "description", ""), 100);
    }
}

static void summarize_cache(strbuf *b, const char *name, const cJSON *out)
{
    strbuf_add(b, "cache key \"");
    strbuf_add_flat(b, str_or(out, "key", "?"), TOOLS_CACHE_KEY_MAX);
    strbuf_add(b, "\"");
    if (strcmp(name, "cache.get") == 0) {
        if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(out, "found"))) {
            strbuf_add(b, " holds nothing");
            return;
        }
        strbuf_add(b, " holds \"");
        strbuf_add_flat(b, str_or(out, "value", ""), 200);
        strbuf_add(b, "\"");
        double ttl = num_or(out, "ttl_s", -1);
        if (ttl >= 0)
            strbuf_addf(b, " (expires in %.0f s)", ttl);
    } else if (strcmp(name, "cache.set") == 0) {
        strbuf_addf(b, " now holds %.0f bytes for %.0f s", num_or(out, "bytes", 0),
                    num_or(out, "ttl_s", 0));
    } else {
        strbuf_add(b, cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(out, "deleted"))
                          ? " was deleted" : " held nothing to delete");
    }
}

char *tools_builtin_summary(const char *name, const cJSON *output)
{
    strbuf b = {0};

    if (!name || !output) {
        strbuf_add(&b, "no output");
    } else if (strcmp(name, "system.time") == 0) {
        strbuf_add(&b, str_or(output, "utc", "unknown"));
    } else if (strcmp(name, "system.health") == 0) {
        const char *w = json_get_string(output, "worker_id");
        strbuf_add(&b, "worker ");
        strbuf_add_flat(&b, w ? w : "(unknown id)", 120);
        strbuf_addf(&b, " (pid %.0f) is %s, up %.0f s", num_or(output, "pid", 0),
                    str_or(output, "status", "unknown"), num_or(output, "uptime_s", 0));
        if (json_get_string(output, "database"))
            strbuf_addf(&b, "; database %s, redis %s", str_or(output, "database", "?"),
                        str_or(output, "redis", "?"));
    } else if (strncmp(name, "cache.", 6) == 0 && tools_builtin_find(name)) {
        summarize_cache(&b, name, output);
    } else if (strcmp(name, "jobs.list") == 0) {
        summarize_jobs_list(&b, output);
    } else if (strcmp(name, "jobs.get") == 0) {
        const cJSON *job = cJSON_GetObjectItemCaseSensitive(output, "job");
        if (cJSON_IsObject(job)) {
            strbuf_add(&b, "job ");
            summarize_job(&b, job);
        } else {
            strbuf_addf(&b, "no job %s exists in this tenant", str_or(output, "id", "?"));
        }
    } else if (strcmp(name, "agent.history") == 0) {
        summarize_history(&b, output);
    } else if (strcmp(name, "model.list") == 0) {
        summarize_models(&b, output);
    } else if (strcmp(name, "security.describe_principal") == 0) {
        summarize_principal(&b, output);
    } else if (strcmp(name, "catalog.search") == 0) {
        summarize_catalog(&b, output);
    } else {
        char *s = cJSON_PrintUnformatted(output);
        if (!s)
            return NULL;
        strbuf_add_flat(&b, s, 2000);
        free(s);
    }
    return strbuf_take(&b, NULL);
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
