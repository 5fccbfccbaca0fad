/*
 * jwt.h - verifying the bearer tokens that authenticate every API call.
 *
 * The accepted algorithms are pinned by configuration; the token's own
 * "alg" header must be one of them and is never trusted on its own. HS256
 * verifies with the configured secret only; RS256 and ES256 with a public
 * key from a key set (jwks.h), chosen by the token's "kid". The principal
 * (tenant, subject, roles, scopes) is taken from a verified token only.
 */
#ifndef AG_JWT_H
#define AG_JWT_H

#include <stddef.h>
#include <stdbool.h>

#define JWT_MAX_TOKEN_BYTES 8192

struct jwks;                   /* jwks.h */
struct mbedtls_pk_context;     /* <mbedtls/pk.h> */

enum {
    ROLE_ADMIN    = 1 << 0,
    ROLE_OPERATOR = 1 << 1,
    ROLE_USER     = 1 << 2,
    ROLE_VIEWER   = 1 << 3,
};

typedef struct principal {
    char sub[128];        /* "sub" claim */
    char tenant_id[65];   /* "tenant_id" claim, [A-Za-z0-9._-]{1,64} */
    unsigned roles;       /* ROLE_* bits from the "roles" array (or string) */
    char scope[512];      /* "scope", space-separated */
    long long exp;        /* seconds since the epoch */
} principal;

typedef struct jwt_config {
    const char *alg;             /* pinned algorithms, a comma list of HS256,
                                    RS256, ES256 (e.g. "RS256,ES256") */
    const unsigned char *secret; /* HS256 key */
    size_t secret_len;
    const char *issuer;          /* checked against "iss" when non-empty */
    const char *audience;        /* must appear in "aud" when non-empty */
    int leeway_s;                /* tolerance on exp and nbf, seconds */
    const struct jwks *keys;     /* RS256/ES256 keys; NULL: none (yet) */
} jwt_config;

typedef enum jwt_err {
    JWT_OK = 0,
    JWT_TOO_LARGE,        /* longer than JWT_MAX_TOKEN_BYTES */
    JWT_MALFORMED,        /* not three base64url parts of JSON objects */
    JWT_BAD_ALG,          /* header alg is not the pinned one (incl. "none") */
    JWT_BAD_SIGNATURE,
    JWT_EXPIRED,
    JWT_NOT_YET_VALID,
    JWT_BAD_ISSUER,
    JWT_BAD_AUDIENCE,
    JWT_BAD_CLAIMS,       /* sub, tenant_id, roles or exp missing or malformed */
    JWT_UNKNOWN_KID,      /* no key in the set has the token's kid and serves
                             its alg (or, without a kid, no key serves it) */
    JWT_KID_REQUIRED,     /* no kid, and more than one key could verify it */
} jwt_err;

/*
 * Verifies token (len bytes) against cfg at time now_s (epoch seconds) and
 * fills *out from its claims. The signature is compared in constant time.
 * Returns JWT_OK or the first reason it fails; *out is then unspecified.
 */
jwt_err jwt_verify(const jwt_config *cfg, const char *token, size_t len,
                   long long now_s, principal *out);

/* A short English reason for err, for logs and problem details. */
const char *jwt_strerror(jwt_err err);

/* True when scope (space-separated) of p contains the word want. */
bool principal_has_scope(const principal *p, const char *want);

/* The ROLE_* bits of a space-separated list of role names ("user viewer");
 * unknown names add nothing, NULL or "" gives 0. */
unsigned principal_role_bits(const char *names);

/*
 * Signs claims_json (a JSON object text) with HS256 and the given secret.
 * Returns a malloc'd token the caller frees, or NULL on allocation failure.
 * Used by the token tool and tests, never on the request path.
 */
char *jwt_sign_hs256(const char *claims_json, const unsigned char *secret,
                     size_t secret_len);

/*
 * Signs header_json and claims_json (JSON texts, used verbatim) with the
 * private key: RS256 (RSASSA-PKCS1-v1_5 SHA-256) for an RSA key, ES256
 * (raw r||s) for a P-256 key; the header should name that alg. Returns a
 * malloc'd token the caller frees, or NULL with the reason in err.
 * For the token tool and tests, never on the request path.
 */
char *jwt_sign_pk(const char *header_json, const char *claims_json,
                  struct mbedtls_pk_context *key, char *err, size_t err_size);

/* The algorithm name ("RS256", "ES256") a private or public key signs
 * with, or NULL for a key type or curve we do not support. */
const char *jwt_alg_for_key(const struct mbedtls_pk_context *key);

/* True when list is a comma list of HS256, RS256, ES256 without
 * repeats, blanks or empty items. */
bool jwt_alg_list_valid(const char *list);

/* True when the comma list (as jwt_alg_list_valid takes) holds alg. */
bool jwt_alg_list_has(const char *list, const char *alg);

#endif
