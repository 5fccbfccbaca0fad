/*
 * schema.h - validating job payloads against their type's JSON Schema.
 *
 * A subset of JSON Schema 2020-12, enough for payload contracts: type
 * (string or array of), properties, required, additionalProperties
 * (boolean or schema), enum, const, minimum, maximum, exclusiveMinimum,
 * exclusiveMaximum, minLength, maxLength (in code points), items,
 * minItems, maxItems. Unknown keywords are ignored, as the spec says.
 */
#ifndef AG_SCHEMA_H
#define AG_SCHEMA_H

#include <cjson/cJSON.h>

typedef struct schema_error {
    char path[256];     /* JSON Pointer of the failing value, "" for the root */
    char message[256];  /* e.g. "must be an integer", "is required" */
} schema_error;

/*
 * Checks instance against schema. Returns 0 when valid, or -1 with the
 * first failure described in *err (err may be NULL).
 */
int schema_validate(const cJSON *schema, const cJSON *instance, schema_error *err);

#endif
