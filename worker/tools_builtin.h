/*
 * tools_builtin.h - the tools every worker has without configuration,
 * which an agent run's plan may invoke:
 *
 *   system.time    the current UTC time   {"utc":"2026-11-21T10:30:00.123Z","epoch_ms":N}
 *   system.health  this worker's state    {"status":"ok","worker_id":"...","pid":N,
 *                                          "uptime_ms":N,"uptime_s":N}
 *
 * Both take an empty object as input. They are safe to call from several
 * job threads at once.
 */
#ifndef AG_TOOLS_BUILTIN_H
#define AG_TOOLS_BUILTIN_H

#include <stddef.h>
#include <cjson/cJSON.h>

typedef enum tool_err {
    TOOL_OK = 0,
    TOOL_ERR_NOT_FOUND,    /* no built-in tool of that name */
    TOOL_ERR_BAD_INPUT,    /* input does not fit the tool's input schema */
    TOOL_ERR_NOMEM,
    TOOL_ERR_FAILED,       /* the tool ran and could not produce a result */
} tool_err;

/* What a tool knows of the job calling it. Strings are borrowed. */
typedef struct tool_env {
    const char *worker_id;  /* the worker running the job; NULL if unknown */
    const char *tenant_id;
    const char *job_id;
} tool_env;

typedef struct builtin_tool {
    const char *name;
    const char *description;
    const char *input_schema_json;  /* JSON Schema of the input, as text */
    /* Fills *output with a new object the caller frees (cJSON_Delete), or
     * returns an error with a one-line reason in err and *output NULL. */
    tool_err (*invoke)(const tool_env *env, const cJSON *input, cJSON **output,
                       char *err, size_t err_size);
} builtin_tool;

/* The tool called name, or NULL. */
const builtin_tool *tools_builtin_find(const char *name);

/* All built-in tools; *count gets their number. */
const builtin_tool *tools_builtin_all(size_t *count);

/*
 * Runs the tool called name with input (NULL means {}). On TOOL_OK *output
 * is a new object owned by the caller; otherwise *output is NULL and err
 * (err_size bytes) says why.
 */
tool_err tools_builtin_invoke(const char *name, const tool_env *env, const cJSON *input,
                              cJSON **output, char *err, size_t err_size);

/*
 * A one-line English summary of a tool's output, for a model to read
 * ("2026-11-21T10:30:00.123Z" for system.time). Returns a malloc'd string
 * the caller frees, or NULL on allocation failure.
 */
char *tools_builtin_summary(const char *name, const cJSON *output);

/* A short English description of err. */
const char *tool_strerror(tool_err err);

#endif
