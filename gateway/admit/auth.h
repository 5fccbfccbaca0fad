/*
 * auth.h - authenticating a request's bearer token into its principal.
 */
#ifndef AG_AUTH_H
#define AG_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include "gateway.h"

/*
 * Verifies the token from "Authorization: Bearer ..." or, when allow_query
 * (SSE endpoints, for browsers' EventSource), from ?access_token=, and
 * fills r->who. Returns 0, or answers 401 and returns -1. The token itself
 * is never logged.
 */
int auth_require(gw_req *r, bool allow_query);

/*
 * Checks the JWT settings of srv->cfg and fills srv->jwt: HS256 needs a
 * secret of 16 bytes or more; RS256/ES256 need exactly one of
 * AGENTGATE_JWT_JWKS_FILE (read and parsed now) or AGENTGATE_JWT_JWKS_URL
 * (its fetch thread started now; it waits for the first fetch, at most the
 * fetch timeout). Call once from the main thread before the loop threads
 * start. Returns 0, or -1 with a one-line reason in err.
 */
int auth_setup(gw_server *srv, char *err, size_t err_size);

/* Stops the JWKS fetcher and frees the key set. Call after the loop
 * threads have stopped. */
void auth_teardown(void);

#endif
