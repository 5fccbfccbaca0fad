/*
 * openapi.h - the API's OpenAPI 3.1 document, GET /openapi.json.
 *
 * The document is built from the tables the gateway itself works from:
 * the paths, methods and whether a token is needed from the route table
 * (router_route_at), the permission (as the token's scope) from rbac.c,
 * the job submission body from the job-type registry's payload schemas,
 * the agent-run body from the schema POST /v1/agent-runs checks, the
 * event types from common/events.c. What no table holds (an operation's
 * id, summary, bodies and answers, the problem types) is written in
 * openapi.c beside those, one row per route; a route without a row, or a
 * row naming no route, fails tests/unit/gateway/api/test_openapi.c.
 */
#ifndef AG_OPENAPI_H
#define AG_OPENAPI_H

#include <stdbool.h>
#include <stddef.h>
#include "router.h"

/*
 * The document as compact JSON text, built on the first call (any thread;
 * later calls wait for it) and kept for the life of the process: static,
 * never freed. *len gets its length. NULL when it could not be built (out
 * of memory, or a route without a description: a build defect the unit
 * test catches first). jobtypes_init() must have run.
 */
const char *openapi_document(size_t *len);

/* The document's strong ETag ("\"<16 hex digits>\""), or NULL when the
 * document could not be built. Static. */
const char *openapi_etag(void);

/* True when openapi.c describes the route verb pattern, the pattern
 * spelt as router.c spells it (its "*" and "+" segments included). */
bool openapi_describes(http_verb verb, const char *pattern);

/* The number of described routes, and the verb and pattern of row i
 * (i below openapi_described_count(); pattern NULL otherwise). */
size_t openapi_described_count(void);
const char *openapi_described_at(size_t i, http_verb *verb);

/* The problem slugs the gateway answers with ("not-found", ...), their
 * number in *count. Static strings. */
const char *const *openapi_problem_slugs(size_t *count);

/* The OpenAPI path of a router pattern: "*" segments become "{id}" (or
 * "{<param>}" when given), "+" segments "{name}". Writes into out (size
 * bytes); returns 0, or -1 when it does not fit. */
int openapi_path_of(const char *pattern, const char *param, char *out, size_t size);

/* The OpenAPI path the document gives route verb pattern ("/v1/mcp-servers/{name}"),
 * into out (size bytes). Returns 0, or -1 when the route is not described
 * or the path does not fit. */
int openapi_route_path(http_verb verb, const char *pattern, char *out, size_t size);

#endif
