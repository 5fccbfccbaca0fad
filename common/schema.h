/*
 * schema.h - checking JSON values against a JSON Schema: job payloads,
 * tool inputs, and the input schemas MCP servers publish for their tools.
 *
 * JSON Schema 2020-12, with the draft-07 spellings servers still send.
 * Supported keywords:
 *   $schema (root only; draft-07, 2019-09 or 2020-12), $id (root only),
 *   $ref (local: "#" or "#/json/pointer"), $defs, definitions,
 *   type, enum, const,
 *   minimum, maximum, exclusiveMinimum, exclusiveMaximum (numbers),
 *   multipleOf,
 *   minLength, maxLength (code points), pattern, format (date-time, date,
 *   uuid, email, uri, ipv4, ipv6 checked; any other name is an annotation),
 *   items, prefixItems, additionalItems (only beside a draft-07 array
 *   "items"), minItems, maxItems, uniqueItems,
 *   properties, patternProperties, additionalProperties, required,
 *   propertyNames, dependentRequired, minProperties, maxProperties,
 *   allOf, anyOf, oneOf, not,
 * and the annotations title, description, default, examples, $comment,
 * readOnly, writeOnly, deprecated, contentMediaType, contentEncoding and
 * discriminator (OpenAPI's, beside a oneOf that does the checking).
 *
 * Any other keyword, a keyword of the wrong shape, a remote $ref or a
 * pattern outside common/jsregex.h's subset makes the whole schema
 * refused: "invalid schema: unsupported keyword 'if' at /properties/x".
 * Nothing is skipped, so a schema either means here what it means to
 * its author or is not used at all.
 */
#ifndef AG_SCHEMA_H
#define AG_SCHEMA_H

#include <cjson/cJSON.h>

/* Limits on a schema (compiling) and on one check (validating). Past
 * any of them the schema is refused or the check fails, with a reason
 * that names the limit. */
#define SCHEMA_MAX_NODES         10000    /* subschemas of one schema */
#define SCHEMA_MAX_NESTING       64       /* subschemas within subschemas */
#define SCHEMA_MAX_PATTERN_COST  200000   /* steps compiling all its patterns
                                             takes (about their instructions) */
#define SCHEMA_MAX_STEPS         1000000  /* per check: subschemas applied, $refs
                                             followed, values compared, members
                                             looked at, and 64 bytes of text read */
#define SCHEMA_MAX_MATCH_STEPS   10000000 /* pattern-matching work, per check */
#define SCHEMA_MAX_FRAMES        256      /* subschemas applied within one another */
#define SCHEMA_MAX_DEPTH         64       /* nesting of the instance */

typedef struct schema_error {
    char path[256];     /* JSON Pointer of the failing value, "" for the root */
    char message[256];  /* e.g. "must be an integer", "is required" */
} schema_error;

/* A schema compiled for checking: immutable, so one may be shared by
 * threads. It points into the cJSON tree it was compiled from, which must
 * outlive it. */
typedef struct schema_compiled schema_compiled;

/*
 * Compiles root (an object or a boolean). Returns the compiled schema, or
 * NULL with err->message "invalid schema: <why> at <schema pointer>" (and
 * err->path "") when it uses what is not supported or is malformed, or
 * "out of memory". err may be NULL.
 */
schema_compiled *schema_compile(const cJSON *root, schema_error *err);

/*
 * Checks instance against s. Returns 0 when valid, or -1 with the first
 * failure in *err: the instance's JSON Pointer and a message. A check
 * that hits a limit fails closed with a message starting "invalid
 * schema: " (the schema asks for too much work) or "is nested too
 * deeply" (the instance does). err may be NULL.
 */
int schema_check(const schema_compiled *s, const cJSON *instance, schema_error *err);

void schema_free(schema_compiled *s);

/*
 * Compiles schema, checks instance against it and frees the compiled
 * form: 0 when valid, or -1 with the reason in *err as above, a refused
 * schema included. For a schema used more than once, compile it once.
 */
int schema_validate(const cJSON *schema, const cJSON *instance, schema_error *err);

#endif
