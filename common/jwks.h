/*
 * jwks.h - a JSON Web Key Set (RFC 7517) of public keys that verify RS256
 * and ES256 tokens.
 *
 * A set is parsed once and never changes afterwards, so any number of
 * threads can verify with it at once. It is reference counted: a loop
 * thread takes a reference for the duration of one verification while a
 * fetcher swaps a newer set in; the old one goes when its last user does.
 *
 * Pure functions, no I/O: the file and URL loading live with the callers
 * (gateway/admit/jwks_fetch.c), so fuzzers and unit tests call these directly.
 */
#ifndef AG_JWKS_H
#define AG_JWKS_H

#include <stddef.h>

#include <mbedtls/pk.h>

#define JWKS_MAX_BYTES  (256 * 1024)   /* largest JWKS text accepted */
#define JWKS_MAX_KEYS   64             /* keys in one set, usable or not */
#define JWKS_MAX_KID    128            /* bytes in a "kid" */

typedef struct jwks jwks;

/* Algorithms a key can serve. */
typedef enum jwk_alg {
    JWK_ALG_RS256 = 1 << 0,
    JWK_ALG_ES256 = 1 << 1,
} jwk_alg;

/*
 * Parses len bytes of JWKS JSON ({"keys":[...]}) into a new set with one
 * reference, owned by the caller (drop it with jwks_release). Keys of a
 * type or curve we do not verify with ("oct", "OKP", P-384, use "enc", an
 * alg other than RS256/ES256) are skipped, as RFC 7517 section 5 asks; a
 * member of the wrong type or shape, a bad base64url value, an RSA modulus
 * under 2048 bits, an EC point off the curve, private key material ("d"),
 * a duplicate kid or a duplicate member name makes the whole set invalid.
 * A set with no usable key is invalid too. Returns NULL on any of these
 * with a one-line reason in err (err_size bytes), which names the key by
 * its index and never quotes key material.
 */
jwks *jwks_parse(const char *json, size_t len, char *err, size_t err_size);

/* Adds a reference (thread-safe). set may be NULL. Returns set. */
jwks *jwks_retain(jwks *set);

/* Drops a reference (thread-safe); frees the set with the last one. NULL is a no-op. */
void jwks_release(jwks *set);

/* The number of usable keys in set. */
size_t jwks_count(const jwks *set);

/* The number of usable keys in set that serve alg. */
size_t jwks_count_for(const jwks *set, jwk_alg alg);

/*
 * The key with this kid that serves alg, or NULL. With kid NULL, the one
 * key that serves alg when there is exactly one, else NULL. The key
 * belongs to set and lives as long as the caller's reference on it. It may
 * be used by several threads at once to verify.
 */
const mbedtls_pk_context *jwks_find(const jwks *set, const char *kid, jwk_alg alg);

/*
 * The public half of key (an RSA key of 2048 bits or more, or a P-256 EC
 * key) as a one-key JWKS text with kid (1..JWKS_MAX_KID bytes), "use":"sig"
 * and "alg". Returns a malloc'd string the caller frees, or NULL with the
 * reason in err. For tools and tests.
 */
char *jwks_export_public(const mbedtls_pk_context *key, const char *kid,
                         char *err, size_t err_size);

#endif
