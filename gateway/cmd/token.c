/*
 * token.c - agentgate-token: mints a bearer token that the gateway
 * accepts: HS256 signed with the configured AGENTGATE_JWT_SECRET, or RS256
 * / ES256 signed with a PEM private key (--alg, --key, --kid). With
 * --jwks-from it prints instead the one-key JWKS (public half) of a PEM key,
 * for the gateway's AGENTGATE_JWT_JWKS_FILE.
 *
 * For local stacks, tests and operators who run agentgate with a shared
 * secret; the gateway itself never issues tokens. The claims are checked
 * here the way the gateway will check them, so a token this tool prints is
 * never one the gateway rejects for its shape.
 */

#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <mbedtls/error.h>
#include <mbedtls/pk.h>

#include "cliopt.h"
#include "config.h"
#include "jwks.h"
#include "jwt.h"
#include "permission.h"
#include "version.h"

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
    const char *alg;        /* HS256 (default), RS256, ES256 */
    const char *key;        /* PEM private key file, for RS256/ES256 */
    const char *kid;
    const char *jwks_from;  /* PEM key file: print its JWKS instead */
} options;

/* Every failure is one line on stderr, prefixed with the program name. */
#define fail(...) cliopt_fail(PROG, __VA_ARGS__)

static void usage(FILE *f) {
    fprintf(f,
        "usage: " PROG " --sub S --tenant T [--roles admin,user] [--scope \"a b\"]\n"
        "                       [--ttl SECONDS] [--aud A] [--iss I] [--config FILE]\n"
        "                       [--alg RS256|ES256 --key PEM_FILE [--kid K]]\n"
        "       " PROG " --jwks-from PEM_FILE --kid K\n"
        "       " PROG " --help | --version\n"
        "\n"
        "Prints a JWT with the claims sub, tenant_id, roles, scope, iat and exp\n"
        "(and aud, iss): HS256 signed with AGENTGATE_JWT_SECRET by default, or\n"
        "RS256 / ES256 signed with the PEM private key (RSA 2048+ bits, or EC\n"
        "P-256). With --jwks-from, prints the JWKS of a PEM key's public half.\n"
        "\n"
        "  -s, --sub S        subject: 1-%d bytes, no control characters\n"
        "  -t, --tenant T     tenant id: [A-Za-z0-9._-]{1,%d}\n"
        "  -r, --roles R      comma list of admin, operator, user, viewer (default: user)\n"
        "      --scope S      space-separated scopes (default: every scope the\n"
        "                     roles may use, from the permission matrix; \"\" for none)\n"
        "      --ttl SECONDS  lifetime, 1 to %lld (default: %d)\n"
        "      --aud A        audience (default: AGENTGATE_JWT_AUDIENCE, if set)\n"
        "      --iss I        issuer (default: AGENTGATE_JWT_ISSUER, if set)\n"
        "  -c, --config FILE  KEY=VALUE settings file (the environment overrides it)\n"
        "      --alg A        HS256 (default), RS256 or ES256\n"
        "      --key FILE     PEM private key for RS256 (RSA) or ES256 (EC P-256)\n"
        "      --kid K        key id put in the token header (and the JWKS)\n"
        "      --jwks-from F  print {\"keys\":[...]} for the PEM key (public or private) F\n"
        "  -h, --help         show this help\n"
        "  -V, --version      show the version\n"
        "\n"
        "Exit status: 0 done, 1 failed, 2 bad arguments.\n",
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

/* As the gateway takes a kid: 1..JWKS_MAX_KID printable ASCII bytes. */
static bool valid_kid(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > JWKS_MAX_KID) return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e) return false;
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

/* The scopes that let the roles of a comma list already checked by
 * valid_roles do all the permission matrix grants them, into out. */
static const char *roles_scope(const char *list, char *out, size_t size) {
    char names[128];
    snprintf(names, sizeof names, "%s", list);
    for (char *c = names; *c; c++)
        if (*c == ',') *c = ' ';
    permission_role_scopes(principal_role_bits(names), out, size);
    return out;
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

/* Long-only options, numbered past every character. */
enum { OPT_SCOPE = 0x100, OPT_TTL, OPT_AUD, OPT_ISS, OPT_ALG, OPT_KEY, OPT_KID, OPT_JWKS_FROM };

/* Returns -1 to go on, or the exit status: 0 after --help or --version, 2
 * when bad (reported). */
static int parse_args(int argc, char **argv, options *o) {
    static const struct option longopts[] = {
        { "config",    required_argument, NULL, 'c' },
        { "sub",       required_argument, NULL, 's' },
        { "tenant",    required_argument, NULL, 't' },
        { "roles",     required_argument, NULL, 'r' },
        { "scope",     required_argument, NULL, OPT_SCOPE },
        { "ttl",       required_argument, NULL, OPT_TTL },
        { "aud",       required_argument, NULL, OPT_AUD },
        { "iss",       required_argument, NULL, OPT_ISS },
        { "alg",       required_argument, NULL, OPT_ALG },
        { "key",       required_argument, NULL, OPT_KEY },
        { "kid",       required_argument, NULL, OPT_KID },
        { "jwks-from", required_argument, NULL, OPT_JWKS_FROM },
        { "help",      no_argument,       NULL, 'h' },
        { "version",   no_argument,       NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    opterr = 0;
    for (;;) {
        const char *arg = optind < argc ? argv[optind] : NULL;
        int c = getopt_long(argc, argv, "+:c:s:t:r:hV", longopts, NULL);
        if (c == -1) break;
        switch (c) {
        case 'c': o->config = optarg; break;
        case 's': o->sub = optarg; break;
        case 't': o->tenant = optarg; break;
        case 'r': o->roles = optarg; break;
        case OPT_SCOPE: o->scope = optarg; break;
        case OPT_TTL:
            if (!parse_ttl(optarg, &o->ttl_s)) {
                fail("--ttl: '%s' is not a number of seconds in 1..%lld", optarg, MAX_TTL_S);
                return 2;
            }
            break;
        case OPT_AUD: o->aud = optarg; break;
        case OPT_ISS: o->iss = optarg; break;
        case OPT_ALG: o->alg = optarg; break;
        case OPT_KEY: o->key = optarg; break;
        case OPT_KID: o->kid = optarg; break;
        case OPT_JWKS_FROM: o->jwks_from = optarg; break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("%s %s\n", PROG, AGENTGATE_VERSION);
            return 0;
        default:
            cliopt_bad_option(PROG, c, optopt, arg);
            return 2;
        }
    }
    if (optind < argc) {
        fail("unexpected argument '%s' (see --help)", argv[optind]);
        return 2;
    }
    return -1;
}

/* Checks the claims given on the command line. Returns 0, or 2 after
 * printing the first problem. */
static int check_options(const options *o) {
    if (strcmp(o->alg, "HS256") != 0 && strcmp(o->alg, "RS256") != 0 &&
        strcmp(o->alg, "ES256") != 0) {
        fail("--alg: '%s' is not one of HS256, RS256, ES256", o->alg);
        return 2;
    }
    if (strcmp(o->alg, "HS256") == 0 && o->key) {
        fail("--key is for --alg RS256 or ES256 (HS256 signs with AGENTGATE_JWT_SECRET)");
        return 2;
    }
    if (strcmp(o->alg, "HS256") != 0 && !o->key) {
        fail("--alg %s needs --key PEM_FILE", o->alg);
        return 2;
    }
    if (o->kid && !valid_kid(o->kid)) {
        fail("--kid: must be 1-%d printable ASCII bytes", JWKS_MAX_KID);
        return 2;
    }
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
    char role_scope[512];
    const char *scope = o->scope ? o->scope : roles_scope(o->roles, role_scope, sizeof role_scope);
    if (ok && *scope)
        ok = cJSON_AddStringToObject(claims, "scope", scope) != NULL;
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

/* Reads a PEM key: private first, else public (for --jwks-from). */
static int load_key(mbedtls_pk_context *pk, const char *path, bool allow_public) {
    int rc = mbedtls_pk_parse_keyfile(pk, path, NULL);
    if (rc != 0 && allow_public) {
        mbedtls_pk_free(pk);
        mbedtls_pk_init(pk);
        rc = mbedtls_pk_parse_public_keyfile(pk, path);
    }
    if (rc != 0) {
        char why[160];
        mbedtls_strerror(rc, why, sizeof why);
        fail("%s: not a readable PEM %skey (%s)", path, allow_public ? "" : "private ", why);
        return -1;
    }
    return 0;
}

/* --jwks-from: prints the public half of a PEM key as a one-key JWKS. */
static int print_jwks(const options *o) {
    if (!o->kid) {
        fail("--jwks-from needs --kid K");
        return 2;
    }
    mbedtls_pk_context pk;
    mbedtls_pk_init(&pk);
    int rc = 1;
    char err[256];
    if (load_key(&pk, o->jwks_from, true) == 0) {
        char *text = jwks_export_public(&pk, o->kid, err, sizeof err);
        if (text) {
            printf("%s\n", text);
            free(text);
            rc = fflush(stdout) == 0 ? 0 : 1;
        } else {
            fail("%s: %s", o->jwks_from, err);
        }
    }
    mbedtls_pk_free(&pk);
    return rc;
}

/* The JOSE header for alg and kid; a malloc'd string or NULL. */
static char *build_header(const char *alg, const char *kid) {
    bool ok = true;
    cJSON *h = cJSON_CreateObject();
    if (!h) return NULL;
    ok = cJSON_AddStringToObject(h, "alg", alg) && cJSON_AddStringToObject(h, "typ", "JWT");
    if (ok && kid) ok = cJSON_AddStringToObject(h, "kid", kid) != NULL;
    char *text = ok ? cJSON_PrintUnformatted(h) : NULL;
    cJSON_Delete(h);
    return text;
}

/* Signs json with a PEM private key; a malloc'd token or NULL after printing why. */
static char *sign_with_key(const options *o, const char *json) {
    mbedtls_pk_context pk;
    mbedtls_pk_init(&pk);
    char *token = NULL, *header = NULL, err[256];
    if (load_key(&pk, o->key, false) != 0)
        goto out;
    const char *alg = jwt_alg_for_key(&pk);
    if (!alg || strcmp(alg, o->alg) != 0) {
        fail("%s: an %s key is needed for --alg %s", o->key,
             strcmp(o->alg, "RS256") == 0 ? "RSA" : "EC P-256", o->alg);
        goto out;
    }
    if (!(header = build_header(alg, o->kid))) {
        fail("out of memory");
        goto out;
    }
    if (!(token = jwt_sign_pk(header, json, &pk, err, sizeof err)))
        fail("%s: %s", o->key, err);
out:
    free(header);
    mbedtls_pk_free(&pk);
    return token;
}

int main(int argc, char **argv) {
    options o = { .roles = "user", .ttl_s = DEFAULT_TTL_S, .alg = "HS256" };
    ag_config cfg;
    char err[512];
    int rc;

    rc = parse_args(argc, argv, &o);
    if (rc >= 0) return rc;
    if (o.jwks_from) return print_jwks(&o);
    rc = check_options(&o);
    if (rc != 0) return rc;

    if (config_load(&cfg, o.config, err, sizeof err) != 0) {
        fail("%s", err);
        return 1;
    }
    bool hs256 = strcmp(o.alg, "HS256") == 0;
    if (hs256 && !jwt_alg_list_has(cfg.jwt_alg, "HS256")) {
        fail("AGENTGATE_JWT_ALG is %s; the gateway would refuse HS256 (use --alg with --key)",
             cfg.jwt_alg);
        return 1;
    }
    /* The gateway refuses to run with a shorter secret, so a token signed
     * with one could never be accepted. */
    if (hs256 && strlen(cfg.jwt_secret) < MIN_SECRET) {
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
    char *token;
    if (hs256) {
        token = jwt_sign_hs256(json, (const unsigned char *)cfg.jwt_secret,
                               strlen(cfg.jwt_secret));
        if (!token) fail("signing failed (out of memory)");
    } else {
        token = sign_with_key(&o, json);
    }
    cJSON_free(json);
    if (!token)
        return 1;
    if (strlen(token) > JWT_MAX_TOKEN_BYTES) {
        fail("the token would be longer than %d bytes", JWT_MAX_TOKEN_BYTES);
        free(token);
        return 1;
    }
    printf("%s\n", token);
    free(token);
    return fflush(stdout) == 0 ? 0 : 1;
}
