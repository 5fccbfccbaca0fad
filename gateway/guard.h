/*
 * guard.h - hostile-HTTP defences applied before a request is routed:
 * caps on URI length and headers, CORS (preflight answered here, and the
 * Access-Control-* headers on every reply to an allowed origin) and the
 * security headers every reply carries.
 */
#ifndef AG_GUARD_H
#define AG_GUARD_H

#include "gateway.h"

/*
 * Checks r before routing. Returns 0 to go on, or -1 when it has already
 * answered (414 for a URI over the cap, 431 for headers over theirs, 204
 * or 403 for a CORS preflight). gateway/guard.c.
 */
int guard_request(gw_req *r);

#endif
