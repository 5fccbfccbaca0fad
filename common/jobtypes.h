/*
 * jobtypes.h - the registry of job types: each type's name, payload JSON
 * Schema and defaults. The gateway validates submissions against it; the
 * worker maps the same names to handlers.
 */
#ifndef AG_JOBTYPES_H
#define AG_JOBTYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <cjson/cJSON.h>

typedef struct job_type {
    const char *name;             /* "demo", "test", "long-running", "agent.run" */
    const char *description;
    const char *schema_json;      /* payload JSON Schema, as text */
    int default_max_attempts;
    int default_timeout_s;
    bool internal;                /* created only by agentgate itself (agent.run by
                                     POST /v1/agent-runs): POST /v1/jobs answers it
                                     as it answers an unknown type */
    const cJSON *schema;          /* parsed by jobtypes_init */
} job_type;

/* Parses every type's schema once. Call before any thread starts.
 * Returns 0, or -1 if a built-in schema fails to parse (a build defect). */
int jobtypes_init(void);

/* The type called name, or NULL when no such type is registered. */
const job_type *jobtypes_find(const char *name);

/* All registered types; *count gets their number. */
const job_type *jobtypes_all(size_t *count);

#endif
