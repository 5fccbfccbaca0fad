/*
 * fuzz_jwks.c - libFuzzer target for the JWKS parser (common/jwks.c): the
 * key set a gateway fetches from a URL it does not control.
 *
 * The input is the JWKS text. A set that parses must hold between 1 and
 * JWKS_MAX_KEYS usable keys, answer lookups for every algorithm and a kid
 * taken from the input without harm, and survive retain/release; a set that
 * does not parse must say why, in a NUL-terminated reason.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jwks.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size ? size : 1);       /* exactly size bytes: no NUL */
    if (!text) return 0;
    memcpy(text, data, size);
    char err[160];
    memset(err, 0x5a, sizeof err);
    jwks *set = jwks_parse(text, size, err, sizeof err);
    if (!set) {
        if (strnlen(err, sizeof err) >= sizeof err || !err[0]) abort();
        free(text);
        return 0;
    }
    size_t n = jwks_count(set);
    size_t rs = jwks_count_for(set, JWK_ALG_RS256), es = jwks_count_for(set, JWK_ALG_ES256);
    if (n < 1 || n > JWKS_MAX_KEYS || rs + es < n || rs > n || es > n) abort();

    /* Without a kid, a key is found exactly when one alone serves the alg. */
    if ((jwks_find(set, NULL, JWK_ALG_RS256) != NULL) != (rs == 1)) abort();
    if ((jwks_find(set, NULL, JWK_ALG_ES256) != NULL) != (es == 1)) abort();

    /* A kid from the input's tail, as a token header would bring one. */
    char kid[JWKS_MAX_KID + 1];
    size_t klen = size < 16 ? size : 16;
    memcpy(kid, data + size - klen, klen);
    kid[klen] = '\0';
    (void)jwks_find(set, kid, JWK_ALG_RS256);
    (void)jwks_find(set, kid, JWK_ALG_ES256);

    if (jwks_retain(set) != set) abort();
    jwks_release(set);
    jwks_release(set);
    free(text);
    return 0;
}
