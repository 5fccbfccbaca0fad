/*
 * auth.h - authenticating a request's bearer token into its principal.
 */
#ifndef AG_AUTH_H
#define AG_AUTH_H

#include <stdbool.h>
#include "gateway.h"

/*
 * Verifies the token from "Authorization: Bearer ..." or, when allow_query
 * (SSE endpoints, for browsers' EventSource), from ?access_token=, and
 * fills r->who. Returns 0, or answers 401 and returns -1. The token itself
 * is never logged.
 */
int auth_require(gw_req *r, bool allow_query);

#endif
