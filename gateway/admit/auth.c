/*
 * auth.c - bearer-token authentication (see auth.h). Verification itself
 * is common/jwt.c; this file finds the token, supplies the current key set
 * (gateway/admit/jwks_fetch.c), asks for a refetch when a token names a kid the
 * set does not have, and answers 401.
 *
 * An unknown kid is answered 401 at once: the refetch it triggers runs on
 * the fetch thread (never here, on a loop thread) and serves the requests
 * that come after it. The token never reaches a log line, nor does any
 * part of it (not even its kid, which the caller chose).
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "auth.h"
#include "http.h"
#include "clock.h"
#include "jwks_fetch.h"
#include "log.h"

#define MIN_SECRET_BYTES 16

/* Set once by auth_setup before the loop threads start, cleared by
 * auth_teardown after they stop; the source itself is thread-safe. */
static jwks_source *key_source;
static bool curl_started;

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

/* 401 with an RFC 6750 challenge; error is NULL when no token came. */
static void reply_unauthorized(gw_req *r, const char *error, const char *detail)
{
    char challenge[256];
    if (error)
        snprintf(challenge, sizeof challenge,
                 "Bearer realm=\"agentgate\", error=\"%s\"", error);
    else
        snprintf(challenge, sizeof challenge, "Bearer realm=\"agentgate\"");
    http_set_header(r, "WWW-Authenticate", challenge);
    http_reply_problem(r, 401, "unauthorized", detail, NULL);
}

int auth_require(gw_req *r, bool allow_query)
{
    const char *token = bearer_token(r, allow_query);
    if (!token || !*token) {
        log_info("authentication failed: no bearer token");
        reply_unauthorized(r, NULL, "a bearer token is required (Authorization: Bearer <JWT>)");
        return -1;
    }
    jwt_config cfg = r->thr->srv->jwt;
    jwks *keys = jwks_source_get(key_source);
    cfg.keys = keys;
    jwt_err e = jwt_verify(&cfg, token, strlen(token), clock_wall_ms() / 1000, &r->who);
    jwks_release(keys);
    if (e == JWT_UNKNOWN_KID)
        jwks_source_unknown_kid(key_source);
    if (e != JWT_OK) {
        log_info("authentication failed: %s", jwt_strerror(e));
        char detail[160];
        snprintf(detail, sizeof detail, "the bearer token was rejected: %s", jwt_strerror(e));
        reply_unauthorized(r, "invalid_token", detail);
        return -1;
    }
    return 0;
}

/* Loads the file or starts the fetcher the settings name. */
static int start_key_source(const ag_config *c, char *err, size_t err_size)
{
    char why[256];
    if (c->jwt_jwks_file[0]) {
        jwks *set = jwks_load_file(c->jwt_jwks_file, why, sizeof why);
        if (!set) {
            snprintf(err, err_size, "AGENTGATE_JWT_JWKS_FILE: %s", why);
            return -1;
        }
        log_info("JWKS file loaded: %zu usable keys", jwks_count(set));
        key_source = jwks_source_fixed(set);
    } else {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            snprintf(err, err_size, "cannot initialise libcurl");
            return -1;
        }
        curl_started = true;
        jwks_fetch_opts o = {
            .url = c->jwt_jwks_url, .cache_s = c->jwt_jwks_cache_s,
            .min_refresh_s = c->jwt_jwks_min_refresh_s, .timeout_ms = c->jwt_jwks_timeout_ms,
            .max_bytes = JWKS_MAX_BYTES,
        };
        key_source = jwks_source_fetch(&o, why, sizeof why);
        if (!key_source) {
            snprintf(err, err_size, "AGENTGATE_JWT_JWKS_URL: %s", why);
            return -1;
        }
    }
    if (!key_source) {
        snprintf(err, err_size, "out of memory loading the JWKS");
        return -1;
    }
    return 0;
}

int auth_setup(gw_server *srv, char *err, size_t err_size)
{
    const ag_config *c = &srv->cfg;
    if (!jwt_alg_list_valid(c->jwt_alg)) {
        snprintf(err, err_size, "AGENTGATE_JWT_ALG must be a comma list of HS256, RS256, ES256");
        return -1;
    }
    bool hs = jwt_alg_list_has(c->jwt_alg, "HS256");
    bool pk = jwt_alg_list_has(c->jwt_alg, "RS256") || jwt_alg_list_has(c->jwt_alg, "ES256");
    bool file = c->jwt_jwks_file[0] != '\0', url = c->jwt_jwks_url[0] != '\0';
    if (hs && strlen(c->jwt_secret) < MIN_SECRET_BYTES) {
        snprintf(err, err_size, "AGENTGATE_JWT_SECRET must be set (16 characters or more) "
                 "when AGENTGATE_JWT_ALG accepts HS256");
        return -1;
    }
    if (pk && file == url) {
        snprintf(err, err_size, "AGENTGATE_JWT_ALG accepts RS256/ES256: set exactly one of "
                 "AGENTGATE_JWT_JWKS_FILE and AGENTGATE_JWT_JWKS_URL");
        return -1;
    }
    if (!pk && (file || url)) {
        snprintf(err, err_size, "a JWKS is configured but AGENTGATE_JWT_ALG=%s accepts "
                 "neither RS256 nor ES256", c->jwt_alg);
        return -1;
    }
    memset(&srv->jwt, 0, sizeof srv->jwt);
    srv->jwt.alg = c->jwt_alg;
    if (hs) {   /* without HS256 pinned, no secret exists to verify with */
        srv->jwt.secret = (const unsigned char *)c->jwt_secret;
        srv->jwt.secret_len = strlen(c->jwt_secret);
    }
    srv->jwt.issuer = c->jwt_issuer;
    srv->jwt.audience = c->jwt_audience;
    srv->jwt.leeway_s = c->jwt_leeway_s;
    if (pk && start_key_source(c, err, err_size) != 0) {
        auth_teardown();
        return -1;
    }
    return 0;
}

void auth_teardown(void)
{
    jwks_source_free(key_source);
    key_source = NULL;
    if (curl_started) {
        curl_global_cleanup();
        curl_started = false;
    }
}
