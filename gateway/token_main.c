/*
 * token_main.c - agentgate-token: mints an HS256 bearer token that the
 * gateway accepts, signed with the configured AGENTGATE_JWT_SECRET.
 *
 * For local stacks, tests and operators who run agentgate with a shared
 * secret; the gateway itself never issues tokens. The claims are checked
 * here the way the gateway will check them, so a token this tool prints is
 * never one the gateway rejects for its shape.
 */

#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "cliopt.h"
#include "config.h"
#include "jwt.h"

#define PROG "agentgate-token"

#define DEFAULT_TTL_S   3600
#define MAX_TTL_S       (10LL * 366 * 24 * 3600)   /* ten years */
#define MAX_SUB         127   /* principal.sub holds 127 bytes and the NUL */
#define MAX_TENANT      64
#define MAX_SCOPE       511
#define MAX_ISS_AUD     255
#define MIN_SECRET      16    /* as the gateway requires */

typedef struct options {
    const char *config;
    const char *sub;
    const char *tenant;
    const char *roles;   /* comma list */
    const char *scope;   /* space-separated, may be NULL */
    const char *aud;
    const char *iss;
    long long ttl_s;
} options;

/* Every failure is one line on stderr, prefixed with the program name. */
#define fail(...) cliopt_fail(PROG, __VA_ARGS__)

static void usage(FILE *f) {
    fprintf(f,
        "usage: " PROG " --sub S --tenant T [--roles admin,user] [--scope \"a b\"]\n"
        "                       [--ttl SECONDS] [--aud A] [--iss I] [--config FILE]\n"
        "\n"
        "Prints an HS256 JWT signed with AGENTGATE_JWT_SECRET, with the claims\n"
        "sub, tenant_id, roles, scope, iat and exp (and aud, iss).\n"
        "\n"
        "  --sub S        subject: 1-%d bytes, no control characters\n"
        "  --tenant T     tenant id: [A-Za-z0-9._-]{1,%d}\n"
        "  --roles R      comma list of admin, operator, user, viewer (default: user)\n"
        "  --scope S      space-separated scopes (default: none)\n"
        "  --ttl SECONDS  lifetime, 1 to %lld (default: %d)\n"
        "  --aud A        audience (default: AGENTGATE_JWT_AUDIENCE, if set)\n"
        "  --iss I        issuer (default: AGENTGATE_JWT_ISSUER, if set)\n"
        "  --config FILE  KEY=VALUE settings file (the environment overrides it)\n",
        MAX_SUB, MAX_TENANT, MAX_TTL_S, DEFAULT_TTL_S);
}

/* ------------------------------------------------------------------------ */
/* Checks on the claims                                                      */
/* ------------------------------------------------------------------------ */

static bool valid_tenant(const char *t) {
    size_t n = strlen(t);
    if (n == 0 || n > MAX_TENANT) return false;
    for (size_t i = 0; i < n; i++) {
        char c = t[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
        if (!ok) return false;
    }
    return true;
}

/* A non-empty string of at most max bytes without control characters. */
static bool valid_text(const char *s, size_t max) {
    size_t n = strlen(s);
    if (n == 0 || n > max) return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f) return false;
    }
    return true;
}

static bool known_role(const char *r, size_t len) {
    static const char *const roles[] = { "admin", "operator", "user", "viewer" };
    for (size_t i = 0; i < sizeof roles / sizeof *roles; i++)
        if (strlen(roles[i]) == len && memcmp(roles[i], r, len) == 0) return true;
    return false;
}

/* Checks that every item of the comma list is a known role. Returns true,
 * or false after printing the first unknown one. */
static bool valid_roles(const char *list) {
    const char *p = list;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (!known_role(p, len)) {
            fail("--roles: '%.*s' is not one of admin, operator, user, viewer", (int)len, p);
            return false;
        }
        if (!comma) return true;
        p = comma + 1;
    }
}

/* Adds the roles of a comma list already checked by valid_roles to array.
 * Returns 0, or -1 when out of memory. */
static int add_roles(cJSON *array, const char *list) {
    const char *p = list;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char role[16];
        memcpy(role, p, len);
        role[len] = '\0';
        if (!cJSON_AddItemToArray(array, cJSON_CreateString(role)))
            return -1;
        if (!comma) return 0;
        p = comma + 1;
    }
}

/* Parses a whole decimal number in [1, MAX_TTL_S]. */
static bool parse_ttl(const char *s, long long *out) {
    char *end;
    long long v;
    if (*s < '0' || *s > '9') return false;
    v = strtoll(s, &end, 10);
    if (*end != '\0' || v < 1 || v > MAX_TTL_S) return false;
    *out = v;
    return true;
}

/* ------------------------------------------------------------------------ */
/* Arguments                                                                 */
/* ------------------------------------------------------------------------ */

/* Returns -1 to go on, or the exit status: 0 after --help, 2 when bad. */
static int parse_args(int argc, char **argv, options *o) {
    static const char *const names[] = {
        "--config", "--sub", "--tenant", "--roles", "--scope", "--ttl", "--aud", "--iss",
    };
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *v = NULL;
        bool missing = false;
        size_t k;

        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            usage(stdout);
            return 0;
        }
        for (k = 0; k < sizeof names / sizeof *names; k++)
            if ((v = cliopt_value(argc, argv, &i, names[k], &missing)) != NULL || missing)
                break;
        if (missing) {
            fail("%s needs a value (see --help)", arg);
            return 2;
        }
        if (!v) {
            fail("unknown argument '%s' (see --help)", arg);
            return 2;
        }
        switch (k) {
        case 0: o->config = v; break;
        case 1: o->sub = v; break;
        case 2: o->tenant = v; break;
        case 3: o->roles = v; break;
        case 4: o->scope = v; break;
        case 5:
            if (!parse_ttl(v, &o->ttl_s)) {
                fail("--ttl: '%s' is not a number of seconds in 1..%lld", v, MAX_TTL_S);
                return 2;
            }
            break;
        case 6: o->aud = v; break;
        case 7: o->iss = v; break;
        }
    }
    return -1;
}

/* Checks the claims given on the command line. Returns 0, or 2 after
 * printing the first problem. */
static int check_options(const options *o) {
    if (!o->sub || !o->tenant) {
        fail("--sub and --tenant are required (see --help)");
        return 2;
    }
    if (!valid_text(o->sub, MAX_SUB)) {
        fail("--sub: must be 1-%d bytes without control characters", MAX_SUB);
        return 2;
    }
    if (!valid_tenant(o->tenant)) {
        fail("--tenant: '%s' is not [A-Za-z0-9._-]{1,%d}", o->tenant, MAX_TENANT);
        return 2;
    }
    if (!valid_roles(o->roles))
        return 2;
    if (o->scope && *o->scope && !valid_text(o->scope, MAX_SCOPE)) {
        fail("--scope: must be at most %d bytes without control characters", MAX_SCOPE);
        return 2;
    }
    if (o->aud && !valid_text(o->aud, MAX_ISS_AUD)) {
        fail("--aud: must be 1-%d bytes without control characters", MAX_ISS_AUD);
        return 2;
    }
    if (o->iss && !valid_text(o->iss, MAX_ISS_AUD)) {
        fail("--iss: must be 1-%d bytes without control characters", MAX_ISS_AUD);
        return 2;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* main                                                                      */
/* ------------------------------------------------------------------------ */

/* Builds the claims object; NULL after printing why. */
static cJSON *build_claims(const options *o, long long now_s) {
    cJSON *claims = cJSON_CreateObject();
    cJSON *roles = cJSON_CreateArray();
    bool ok = claims && roles;

    if (ok) {
        cJSON_AddItemToObject(claims, "roles", roles);
        roles = NULL; /* owned by claims now */
    }
    ok = ok && cJSON_AddStringToObject(claims, "sub", o->sub)
            && cJSON_AddStringToObject(claims, "tenant_id", o->tenant);
    ok = ok && add_roles(cJSON_GetObjectItemCaseSensitive(claims, "roles"), o->roles) == 0;
    if (ok && o->scope && *o->scope)
        ok = cJSON_AddStringToObject(claims, "scope", o->scope) != NULL;
    if (ok && o->iss && *o->iss)
        ok = cJSON_AddStringToObject(claims, "iss", o->iss) != NULL;
    if (ok && o->aud && *o->aud)
        ok = cJSON_AddStringToObject(claims, "aud", o->aud) != NULL;
    ok = ok && cJSON_AddNumberToObject(claims, "iat", (double)now_s)
            && cJSON_AddNumberToObject(claims, "exp", (double)(now_s + o->ttl_s));
    if (!ok) {
        fail("out of memory");
        cJSON_Delete(roles);
        cJSON_Delete(claims);
        return NULL;
    }
    return claims;
}

int main(int argc, char **argv) {
    options o = { .roles = "user", .ttl_s = DEFAULT_TTL_S };
    ag_config cfg;
    char err[512];
    int rc;

    rc = parse_args(argc, argv, &o);
    if (rc >= 0) return rc;
    rc = check_options(&o);
    if (rc != 0) return rc;

    if (config_load(&cfg, o.config, err, sizeof err) != 0) {
        fail("%s", err);
        return 1;
    }
    if (strcmp(cfg.jwt_alg, "HS256") != 0) {
        fail("AGENTGATE_JWT_ALG is %s; this tool signs HS256 only", cfg.jwt_alg);
        return 1;
    }
    /* The gateway refuses to run with a shorter secret, so a token signed
     * with one could never be accepted. */
    if (strlen(cfg.jwt_secret) < MIN_SECRET) {
        fail("AGENTGATE_JWT_SECRET must be set (%d characters or more)", MIN_SECRET);
        return 1;
    }
    /* The gateway checks iss and aud when configured: match it by default. */
    if (!o.iss && cfg.jwt_issuer[0]) o.iss = cfg.jwt_issuer;
    if (!o.aud && cfg.jwt_audience[0]) o.aud = cfg.jwt_audience;

    cJSON *claims = build_claims(&o, (long long)time(NULL));
    if (!claims) return 1;
    char *json = cJSON_PrintUnformatted(claims);
    cJSON_Delete(claims);
    if (!json) {
        fail("out of memory");
        return 1;
    }
    char *token = jwt_sign_hs256(json, (const unsigned char *)cfg.jwt_secret,
                                 strlen(cfg.jwt_secret));
    cJSON_free(json);
    if (!token) {
        fail("signing failed (out of memory)");
        return 1;
    }
    if (strlen(token) > JWT_MAX_TOKEN_BYTES) {
        fail("the token would be longer than %d bytes", JWT_MAX_TOKEN_BYTES);
        free(token);
        return 1;
    }
    printf("%s\n", token);
    free(token);
    return fflush(stdout) == 0 ? 0 : 1;
}
