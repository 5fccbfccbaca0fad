/*
 * auth.c - bearer-token authentication (see auth.h). Verification itself
 * is common/jwt.c; this file only finds the token and answers 401.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "auth.h"
#include "http.h"
#include "clock.h"
#include "log.h"

static const char *bearer_token(gw_req *r, bool allow_query)
{
    const char *h = http_header(r, "Authorization");
    if (h) {
        if (strncasecmp(h, "Bearer ", 7) != 0) return NULL;
        h += 7;
        while (*h == ' ') h++;
        return h;
    }
    return allow_query ? http_query(r, "access_token") : NULL;
}

int auth_require(gw_req *r, bool allow_query)
{
    const char *token = bearer_token(r, allow_query);
    if (!token || !*token) {
        http_reply_problem(r, 401, "unauthorized",
                           "a bearer token is required (Authorization: Bearer <JWT>)", NULL);
        return -1;
    }
    jwt_err e = jwt_verify(&r->thr->srv->jwt, token, strlen(token),
                           clock_wall_ms() / 1000, &r->who);
    if (e != JWT_OK) {
        log_info("authentication failed: %s", jwt_strerror(e));
        char detail[128];
        snprintf(detail, sizeof detail, "the bearer token was rejected: %s", jwt_strerror(e));
        http_reply_problem(r, 401, "unauthorized", detail, NULL);
        return -1;
    }
    return 0;
}
