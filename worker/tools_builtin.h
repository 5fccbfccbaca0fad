/*
 * tools_builtin.h - the tools every worker has without configuration,
 * which an agent run's plan or its model may invoke. Each takes a JSON
 * object (its input schema below is the handler's own contract; the
 * tool_manifests row may narrow it further) and answers a JSON object:
 *
 *   system.time    the current UTC time   {"utc":"2026-11-21T10:30:00.123Z","epoch_ms":N}
 *   system.health  this worker's state    {"status":"ok","worker_id":"...","pid":N,
 *                                          "uptime_ms":N,"uptime_s":N,
 *                                          "database"?,"redis"?}
 *   cache.get      {key}                  {"key","found","value"|null,"ttl_s"|null}
 *   cache.set      {key,value,ttl_s?}     {"key","stored":true,"ttl_s","bytes"}
 *   cache.delete   {key}                  {"key","deleted"}
 *   agent.history  {limit?}               {"session_id"|null,"runs":[{id,prompt,output,
 *                                          output_truncated,status,created_at}],"note"?}
 *   jobs.list      {status?,type?,since?,limit?}
 *                                         {"jobs":[summary],"count","filter"}
 *   jobs.get       {id}                   {"id","found","job":summary|null}
 *   model.list     {}                     {"models":[{provider,model,scope,is_default}],"count"}
 *   security.describe_principal {}        {"sub","tenant_id","roles":[],"scopes":[]}
 *   catalog.search {query}                {"query","tools":[{name,description,
 *                                          required_scopes,callable,score}],"count","note"?}
 *
 * A job summary is {id, type, status, error{code,message}|null,
 * created_at, finished_at}. Cache keys live in Redis as
 * cache:{tenant}:{key}; jobs, runs and models are read with the caller's
 * tenant as a query parameter, never from another tenant.
 *
 * Handlers are safe to call from several job threads at once; each uses
 * only the connections its env hands it.
 */
#ifndef AG_TOOLS_BUILTIN_H
#define AG_TOOLS_BUILTIN_H

#include <stdbool.h>
#include <stddef.h>
#include <cjson/cJSON.h>
#include <libpq-fe.h>

struct redisContext;
struct tool_principal;

typedef enum tool_err {
    TOOL_OK = 0,
    TOOL_ERR_NOT_FOUND,    /* no built-in tool of that name */
    TOOL_ERR_BAD_INPUT,    /* input does not fit the tool's input schema */
    TOOL_ERR_NOMEM,
    TOOL_ERR_FAILED,       /* the tool ran and could not produce a result */
} tool_err;

/* A manifest as catalog.search sees it. Strings are borrowed. */
typedef struct tool_manifest_info {
    const char *name;
    const char *description;
    const char *const *required_scopes;
    size_t n_required_scopes;
    bool callable;          /* a handler exists and the principal holds the scopes */
} tool_manifest_info;

/* What the old orchestrator hands a tool (tools_builtin_invoke). Strings
 * are borrowed. Kept only until every caller goes through tools_call. */
typedef struct tool_env {
    const char *worker_id;  /* the worker running the job; NULL if unknown */
    const char *tenant_id;
    const char *job_id;
} tool_env;

/*
 * What a tool knows of the call: the job, the caller and the connections
 * of the job thread. Strings and connections are borrowed; any field may
 * be zero, and a tool that needs one it lacks fails with a reason instead
 * of crashing.
 */
typedef struct tool_call_env {
    const char *worker_id;              /* the worker running the job; NULL if unknown */
    const char *tenant_id;              /* the caller's tenant: every read filters by it */
    const char *job_id;
    PGconn *pg;                         /* the job thread's connection, or NULL */
    struct redisContext *redis;         /* NULL: Redis unreachable */
    const struct tool_principal *principal;
    const char *run_id;                 /* checked UUID or NULL */
    const char *session_id;             /* checked UUID or NULL */
    const tool_manifest_info *manifests;/* what the tenant sees, for catalog.search */
    size_t n_manifests;
    bool live;              /* pg and redis are the job's real connections, so
                               NULL means unreachable (system.health reports it) */
} tool_call_env;

typedef struct builtin_tool {
    const char *name;
    const char *description;
    const char *input_schema_json;  /* JSON Schema of the input, as text */
    /* Fills *output with a new object the caller frees (cJSON_Delete), or
     * returns an error with a one-line reason in err and *output NULL.
     * input has already been checked against input_schema_json. */
    tool_err (*invoke)(const tool_call_env *env, const cJSON *input, cJSON **output,
                       char *err, size_t err_size);
    bool writes;            /* changes state (cache.set/delete): refused, not let
                               through, when its rate limit cannot be checked */
} builtin_tool;

/* The tool called name, or NULL. */
const builtin_tool *tools_builtin_find(const char *name);

/* All built-in tools; *count gets their number. */
const builtin_tool *tools_builtin_all(size_t *count);

/*
 * Runs the tool t with input (NULL means {}), first checking input against
 * the tool's own input schema. On TOOL_OK *output is a new object owned by
 * the caller; otherwise *output is NULL and err (err_size bytes) says why
 * (TOOL_ERR_BAD_INPUT: with the JSON Pointer of the bad value, e.g.
 * "/ttl_s: must be at most 86400").
 *
 * This is the handler stage alone: no manifest, scope, rate limit, audit
 * or event. Agent runs go through tools_call (tools.h), which calls this.
 */
tool_err tools_builtin_run(const builtin_tool *t, const tool_call_env *env,
                           const cJSON *input, cJSON **output, char *err, size_t err_size);

/*
 * The same for the tool called name with only env's job fields known (no
 * connections, principal or run): enough for system.time and
 * system.health. A compatibility entry for the orchestrator until it calls
 * tools_call; to be removed then.
 */
tool_err tools_builtin_invoke(const char *name, const tool_env *env, const cJSON *input,
                              cJSON **output, char *err, size_t err_size);

/*
 * A one-line English summary of a tool's output, for a model or the
 * deterministic response template to read ("2026-11-21T10:30:00.123Z" for
 * system.time, "2 failed jobs since ...: ..." for jobs.list). Returns a
 * malloc'd string the caller frees, or NULL on allocation failure.
 */
char *tools_builtin_summary(const char *name, const cJSON *output);

/* A short English description of err. */
const char *tool_strerror(tool_err err);

#define TOOLS_CACHE_KEY_MAX 200         /* bytes of a cache.* key */
#define TOOLS_CACHE_VALUE_MAX 65536     /* bytes of a cache.set value */

/*
 * Writes the Redis key "cache:{tenant}:{key}" into out (out_size bytes).
 * key must be 1..TOOLS_CACHE_KEY_MAX bytes of printable ASCII without
 * spaces; tenant 1..64 of [A-Za-z0-9._-]. Returns 0, or -1 with a reason
 * in err (out then holds "").
 */
int tools_cache_key(char *out, size_t out_size, const char *tenant, const char *key,
                    char *err, size_t err_size);

/*
 * Parses an RFC 3339 date-time ("2026-11-21T00:00:00Z", fraction and
 * numeric offset allowed, 'T' and 'Z' in either case) into epoch ms.
 * Returns 0, or -1 when s is not one or names an impossible date.
 */
int tools_parse_datetime(const char *s, long long *epoch_ms);

#endif
