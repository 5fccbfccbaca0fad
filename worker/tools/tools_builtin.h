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

#include "tool_env.h"

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

#endif
