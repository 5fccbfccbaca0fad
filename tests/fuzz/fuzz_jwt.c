/*
 * fuzz_jwt.c - libFuzzer target for bearer token verification (common/jwt.c).
 *
 * A random token almost never carries a valid signature, so the fuzzer
 * could only ever reach the signature check. Modes 1, 3 and 4 therefore
 * sign what they are given with the test keys (fuzz_keys.h), so that the
 * header and claim checks behind the signature get fuzzed as well:
 *
 *   mode 0  the input is a token: jwt_verify must refuse or accept it
 *           without harm, and never accept without a valid principal;
 *   mode 1  the input is a header JSON, "\n", a claims JSON: the harness
 *           builds the token with a valid HS256 signature and verifies it;
 *   mode 2  the input is base64url text: b64url_decode into a buffer of
 *           exactly the documented size, then a re-encode round trip;
 *   mode 3  as mode 1, signed ES256 with the P-256 key of the JWKS;
 *   mode 4  as mode 1, signed RS256 with the RSA key of the JWKS;
 *   mode 5  as mode 1, but the HMAC key is the JWKS text (the "HS256
 *           signed with the public key" confusion): never accepted.
 *
 * Whenever a token is accepted, its header's alg must be one of the
 * pinned ones and the one its signature was made with.
 *
 * This file is the fuzz_jwt target with modes 0, 1, 2 and 5 (byte 0 % 4
 * picks one in that order); fuzz_jwt_pk.c builds it again with modes 3
 * and 4 only (byte 0 odd: RS256), whose signing costs milliseconds and
 * would otherwise slow the cheap modes down a hundredfold.
 *
 * Byte 0 picks the mode, byte 1 the configuration (pinned algorithms,
 * issuer, audience, leeway); the rest is the value.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <mbedtls/md.h>
#include <cjson/cJSON.h>

#include "base64url.h"
#include "jwt.h"
#include "fuzz_keys.h"

#define NOW_S 1790000000LL     /* fixed, so a run is reproducible */

static const unsigned char SECRET[] = "fuzz-secret-0123456789abcdef0123456789";

static mbedtls_pk_context rsa_key, ec_key;
static char *jwks_text;
static jwks *key_set;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc; (void)argv;
    fuzz_load_key(&rsa_key, FUZZ_RSA_PEM, sizeof FUZZ_RSA_PEM);
    fuzz_load_key(&ec_key, FUZZ_EC_PEM, sizeof FUZZ_EC_PEM);
    jwks_text = fuzz_jwks_text(&rsa_key, &ec_key);
    char err[160];
    key_set = jwks_parse(jwks_text, strlen(jwks_text), err, sizeof err);
    if (!key_set) { fprintf(stderr, "fuzz_jwt: the test JWKS does not parse: %s\n", err); abort(); }
    return 0;
}

static const char *const pinned[] = { "HS256", "HS256,RS256,ES256", "RS256,ES256", "ES256" };

static jwt_config config_for(uint8_t sel)
{
    jwt_config cfg = { .alg = pinned[sel & 3], .secret = SECRET, .secret_len = sizeof SECRET - 1,
                       .issuer = (sel & 4) ? "https://issuer.example" : "",
                       .audience = (sel & 8) ? "agentgate" : "",
                       .leeway_s = (sel >> 4) * 7, .keys = key_set };
    return cfg;
}

/* True when the list pinned holds alg as a whole item. */
static int pinned_has(const char *list, const char *alg)
{
    size_t n = strlen(alg);
    for (const char *p = list; *p; ) {
        size_t item = strcspn(p, ",");
        if (item == n && memcmp(p, alg, n) == 0) return 1;
        p += item;
        if (*p == ',') p++;
    }
    return 0;
}

/* An accepted token's header alg must be pinned and the one it was signed
 * with (signed_alg NULL: unknown, mode 0). */
static void check_accepted_alg(const jwt_config *cfg, const char *header, size_t hlen,
                               const char *signed_alg)
{
    cJSON *h = cJSON_ParseWithLength(header, hlen);
    const cJSON *alg = h ? cJSON_GetObjectItemCaseSensitive(h, "alg") : NULL;
    if (!cJSON_IsString(alg) || !pinned_has(cfg->alg, alg->valuestring)) abort();
    if (signed_alg && strcmp(alg->valuestring, signed_alg) != 0) abort();
    cJSON_Delete(h);
}

static int valid_tenant(const char *s)
{
    size_t n = strlen(s);
    return n >= 1 && n <= 64 &&
           strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

static jwt_err verify(const jwt_config *cfg, const char *token, size_t len)
{
    principal p;
    memset(&p, 0x5a, sizeof p);
    jwt_err e = jwt_verify(cfg, token, len, NOW_S, &p);
    if (!jwt_strerror(e)) abort();
    if (e != JWT_OK) return e;
    if (strnlen(p.sub, sizeof p.sub) >= sizeof p.sub || !p.sub[0]) abort();
    if (strnlen(p.scope, sizeof p.scope) >= sizeof p.scope) abort();
    if (strnlen(p.tenant_id, sizeof p.tenant_id) >= sizeof p.tenant_id) abort();
    if (!valid_tenant(p.tenant_id)) abort();
    if (p.exp + cfg->leeway_s < NOW_S) abort();   /* accepted after expiry */
    (void)principal_has_scope(&p, "jobs:write");
    /* The header is the first part; it decoded, since the token passed. */
    const char *dot = memchr(token, '.', len);
    unsigned char *hdr = dot ? malloc((size_t)(dot - token) + 4) : NULL;
    long hl = hdr ? b64url_decode(token, (size_t)(dot - token), hdr, (size_t)(dot - token) + 4) : -1;
    if (hl < 0) abort();
    check_accepted_alg(cfg, (const char *)hdr, (size_t)hl, NULL);
    free(hdr);
    return e;
}

static void fuzz_token(const jwt_config *cfg, const uint8_t *data, size_t size)
{
    char *t = malloc(size ? size : 1);          /* exactly size bytes: no NUL */
    if (!t) return;
    memcpy(t, data, size);
    verify(cfg, t, size);
    free(t);
}

static char *signed_token(const char *header, size_t hlen, const char *claims, size_t clen,
                          const unsigned char *key, size_t key_len)
{
    char *h = b64url_encode((const unsigned char *)header, hlen);
    char *c = b64url_encode((const unsigned char *)claims, clen);
    char *tok = NULL;
    size_t body = h && c ? strlen(h) + 1 + strlen(c) : 0;
    if (body && (tok = malloc(body + 1 + 64)) != NULL) {
        snprintf(tok, body + 1, "%s.%s", h, c);
        unsigned char mac[32];
        const mbedtls_md_info_t *md = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
        char *sig = NULL;
        if (mbedtls_md_hmac(md, key, key_len, (const unsigned char *)tok, body,
                            mac) == 0)
            sig = b64url_encode(mac, sizeof mac);
        if (sig) {
            snprintf(tok + body, 1 + 64, ".%s", sig);
        } else {
            free(tok);
            tok = NULL;
        }
        free(sig);
    }
    free(h);
    free(c);
    return tok;
}

/* Signs header "\n" claims with mode's key and verifies the token. */
static void fuzz_signed(const jwt_config *cfg, int mode, const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    const char *nl = memchr(in, '\n', size);
    if (!nl) return;
    size_t hlen = (size_t)(nl - in), clen = size - hlen - 1;
    char *tok = NULL;
    const char *alg = NULL;
    if (mode == 1) {
        tok = signed_token(in, hlen, nl + 1, clen, SECRET, sizeof SECRET - 1);
        alg = "HS256";
    } else if (mode == 5) {
        tok = signed_token(in, hlen, nl + 1, clen, (const unsigned char *)jwks_text,
                           strlen(jwks_text));
    } else {
        /* jwt_sign_pk takes NUL-terminated JSON texts: a NUL inside ends them. */
        char *h = strndup(in, hlen), *c = strndup(nl + 1, clen), err[160];
        mbedtls_pk_context *key = mode == 3 ? &ec_key : &rsa_key;
        alg = mode == 3 ? "ES256" : "RS256";
        if (h && c) tok = jwt_sign_pk(h, c, key, err, sizeof err);
        free(h);
        free(c);
    }
    if (!tok) return;
    jwt_err e = verify(cfg, tok, strlen(tok));
    if (e == JWT_OK) {
        if (!alg) abort();     /* signed with the public key set as a secret */
        const char *dot = strchr(tok, '.');
        unsigned char *hdr = malloc(strlen(tok));
        long hl = hdr && dot ? b64url_decode(tok, (size_t)(dot - tok), hdr, strlen(tok)) : -1;
        if (hl < 0) abort();
        check_accepted_alg(cfg, (const char *)hdr, (size_t)hl, alg);
        free(hdr);
    }
    free(tok);
}

static void fuzz_b64(const uint8_t *data, size_t size)
{
    size_t cap = 3 * size / 4 + 3;
    unsigned char *out = malloc(cap);
    if (!out) return;
    long n = b64url_decode((const char *)data, size, out, cap);
    if (n > (long)cap || n < -1) abort();
    if (n >= 0) {
        char *again = b64url_encode(out, (size_t)n);
        if (!again) abort();
        /* Canonical input comes back as it was; other input at least decodes
         * to the same bytes. */
        unsigned char *back = malloc(cap);
        if (!back) abort();
        long m = b64url_decode(again, strlen(again), back, cap);
        if (m != n || memcmp(back, out, (size_t)n) != 0) abort();
        free(back);
        free(again);
    }
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    jwt_config cfg = config_for(data[1]);
#ifdef FUZZ_JWT_PK
    /* fuzz_jwt_pk.c: only the modes that sign with the private keys, which
     * cost milliseconds an input and so get a target of their own. */
    int mode = data[0] % 2 ? 4 : 3;
#else
    static const int cheap[] = { 0, 1, 2, 5 };
    int mode = cheap[data[0] % 4];
#endif
    switch (mode) {
    case 0: fuzz_token(&cfg, data + 2, size - 2); break;
    case 2: fuzz_b64(data + 2, size - 2); break;
    default: fuzz_signed(&cfg, mode, data + 2, size - 2); break;
    }
    return 0;
}
