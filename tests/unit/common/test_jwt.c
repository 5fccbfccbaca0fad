/*
 * test_jwt.c - unit tests for token verification: the algorithm pin
 * (a list), HS256 signatures, RS256 and ES256 with keys from a JWKS (kid
 * lookup, key/alg fit, algorithm confusion, truncated and garbled
 * signatures), header members refused, base64url strictness, size cap,
 * time claims with leeway, issuer and audience, the identity claims, and
 * scope matching.
 *
 * Tokens with odd headers are built here with mbedTLS directly, so a test
 * that expects BAD_ALG carries a signature that would otherwise verify:
 * the refusal is then down to the algorithm alone.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/md.h>
#include <mbedtls/pk.h>
#include <mbedtls/rsa.h>

#include "base64url.h"
#include "jwks.h"
#include "jwt.h"

#define SECRET "unit-test-secret-0123456789abcdef"
#define NOW 1800000000LL

static const char std_header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";

static jwt_config config(void)
{
    jwt_config c;
    memset(&c, 0, sizeof c);
    c.alg = "HS256";
    c.secret = (const unsigned char *)SECRET;
    c.secret_len = strlen(SECRET);
    c.issuer = "";
    c.audience = "";
    c.leeway_s = 0;
    return c;
}

static char *b64(const char *text)
{
    char *s = b64url_encode((const unsigned char *)text, strlen(text));
    assert_non_null(s);
    return s;
}

/* Joins already-encoded header and payload parts and signs them with
 * HMAC-SHA256 under secret. Caller frees. */
static char *sign_parts(const char *h, const char *p, const char *secret)
{
    size_t n = strlen(h) + 1 + strlen(p);
    char *signing = malloc(n + 1);
    assert_non_null(signing);
    snprintf(signing, n + 1, "%s.%s", h, p);
    unsigned char mac[32];
    assert_int_equal(mbedtls_md_hmac(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256),
                                     (const unsigned char *)secret, strlen(secret),
                                     (const unsigned char *)signing, n, mac), 0);
    char *sig = b64url_encode(mac, sizeof mac);
    assert_non_null(sig);
    char *token = malloc(n + 1 + strlen(sig) + 1);
    assert_non_null(token);
    sprintf(token, "%s.%s", signing, sig);
    free(signing);
    free(sig);
    return token;
}

/* A token with the given header and claims (JSON text), signed with SECRET. */
static char *make_token(const char *header_json, const char *claims_json)
{
    char *h = b64(header_json), *p = b64(claims_json);
    char *t = sign_parts(h, p, SECRET);
    free(h);
    free(p);
    return t;
}

static jwt_err verify_text(const jwt_config *cfg, const char *token, principal *out)
{
    return jwt_verify(cfg, token, strlen(token), NOW, out);
}

/* Signs claims with the production signer and verifies under cfg. */
static jwt_err verify_claims(const jwt_config *cfg, const char *claims, principal *out)
{
    char *t = jwt_sign_hs256(claims, (const unsigned char *)SECRET, strlen(SECRET));
    assert_non_null(t);
    principal scratch;
    jwt_err rc = verify_text(cfg, t, out != NULL ? out : &scratch);
    free(t);
    return rc;
}

/* Claims with everything valid, and extra members spliced in at the end. */
static char *claims_with(const char *extra)
{
    char *s = malloc(1024 + strlen(extra));
    assert_non_null(s);
    sprintf(s, "{\"sub\":\"alice\",\"tenant_id\":\"acme\",\"roles\":[\"user\"],"
               "\"exp\":%lld%s}", NOW + 600, extra);
    return s;
}

static void expect_claims(const char *claims, jwt_err want)
{
    jwt_config c = config();
    principal p;
    jwt_err got = verify_claims(&c, claims, &p);
    if (got != want)
        fail_msg("%s: got %s, want %s", claims, jwt_strerror(got), jwt_strerror(want));
}

/* ---- the happy path ---- */

static void test_valid_token(void **state)
{
    jwt_config c = config();
    char claims[512];
    snprintf(claims, sizeof claims,
             "{\"sub\":\"user-1\",\"tenant_id\":\"acme.prod_01-x\",\"roles\":[\"admin\",\"viewer\"],"
             "\"scope\":\"jobs:read jobs:write\",\"exp\":%lld,\"nbf\":%lld,\"iat\":%lld}",
             NOW + 3600, NOW - 10, NOW - 10);
    principal p;
    assert_int_equal(verify_claims(&c, claims, &p), JWT_OK);
    assert_string_equal(p.sub, "user-1");
    assert_string_equal(p.tenant_id, "acme.prod_01-x");
    assert_int_equal(p.roles, ROLE_ADMIN | ROLE_VIEWER);
    assert_string_equal(p.scope, "jobs:read jobs:write");
    assert_int_equal(p.exp, NOW + 3600);
}

static void test_independently_signed_token(void **state)
{
    /* Made with Python's hmac and base64 modules, header with CR LF and
     * typ before alg: checks the framing against another implementation. */
    const char *t =
        "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9."
        "eyJzdWIiOiJhbGljZSIsInRlbmFudF9pZCI6ImFjbWUiLCJyb2xlcyI6WyJ1c2VyIl0sImV4cCI6NDEwMjQ0"
        "NDgwMCwic2NvcGUiOiJqb2JzOnJlYWQifQ."
        "c4kUwKOPUMgjBJfYnuHfrtvpQ726JH_tABRlFEx6dsQ";
    jwt_config c = config();
    c.secret = (const unsigned char *)"interop-secret";
    c.secret_len = strlen("interop-secret");
    principal p;
    assert_int_equal(verify_text(&c, t, &p), JWT_OK);
    assert_string_equal(p.sub, "alice");
    assert_int_equal(p.roles, ROLE_USER);
    assert_int_equal(p.exp, 4102444800LL);
}

static void test_sign_then_verify_roundtrip(void **state)
{
    char *claims = claims_with(",\"scope\":\"a b\"");
    char *t = jwt_sign_hs256(claims, (const unsigned char *)SECRET, strlen(SECRET));
    assert_non_null(t);
    /* Same bytes as the test's own signer: header, payload, MAC. */
    char *mine = make_token(std_header, claims);
    assert_string_equal(t, mine);
    free(t);
    free(mine);
    free(claims);
}

/* ---- signatures ---- */

static void test_wrong_secret(void **state)
{
    char *claims = claims_with("");
    char *h = b64(std_header), *p = b64(claims);
    char *t = sign_parts(h, p, "some-other-secret");
    jwt_config c = config();
    principal out;
    assert_int_equal(verify_text(&c, t, &out), JWT_BAD_SIGNATURE);
    free(t); free(h); free(p); free(claims);
}

static void test_tampered_payload(void **state)
{
    char *t = make_token(std_header, "{\"sub\":\"alice\",\"tenant_id\":\"acme\",\"roles\":\"user\",\"exp\":9999999999}");
    /* Change one payload character to another valid one. */
    char *dot = strchr(t, '.');
    dot[5] = dot[5] == 'A' ? 'B' : 'A';
    jwt_config c = config();
    principal out;
    assert_int_equal(verify_text(&c, t, &out), JWT_BAD_SIGNATURE);
    free(t);
}

static void test_flipped_signature_byte(void **state)
{
    char *claims = claims_with("");
    char *t = make_token(std_header, claims);
    char *sig = strrchr(t, '.') + 1;
    sig[10] = sig[10] == 'A' ? 'B' : 'A';
    jwt_config c = config();
    principal out;
    assert_int_equal(verify_text(&c, t, &out), JWT_BAD_SIGNATURE);
    free(t); free(claims);
}

static void test_truncated_signature(void **state)
{
    char *claims = claims_with("");
    char *t = make_token(std_header, claims);
    jwt_config c = config();
    principal out;
    size_t len = strlen(t);
    assert_int_equal(jwt_verify(&c, t, len, NOW, &out), JWT_OK);
    assert_int_equal(jwt_verify(&c, t, len - 1, NOW, &out), JWT_BAD_SIGNATURE);
    assert_int_equal(jwt_verify(&c, t, len - 4, NOW, &out), JWT_BAD_SIGNATURE);
    /* Signature cut away entirely, dot kept. */
    size_t no_sig = (size_t)(strrchr(t, '.') - t) + 1;
    assert_int_equal(jwt_verify(&c, t, no_sig, NOW, &out), JWT_BAD_SIGNATURE);
    free(t); free(claims);
}

static void test_signature_respelled_is_refused(void **state)
{
    /* 43 characters carry 258 bits; the last 2 must be zero. Setting them
     * would give a different token string with the same MAC bytes. */
    char *claims = claims_with("");
    char *t = make_token(std_header, claims);
    char *last = t + strlen(t) - 1;
    const char *alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    int v = (int)(strchr(alpha, *last) - alpha);
    assert_int_equal(v & 3, 0);
    *last = alpha[v | 1];
    jwt_config c = config();
    principal out;
    assert_int_equal(verify_text(&c, t, &out), JWT_MALFORMED);
    free(t); free(claims);
}

static void test_empty_secret_refused(void **state)
{
    /* A token MACed with an empty key must not pass a misconfigured gateway. */
    char *claims = claims_with("");
    char *h = b64(std_header), *p = b64(claims);
    char *t = sign_parts(h, p, "");
    jwt_config c = config();
    c.secret = (const unsigned char *)"";
    c.secret_len = 0;
    principal out;
    assert_int_equal(verify_text(&c, t, &out), JWT_BAD_SIGNATURE);
    free(t); free(h); free(p); free(claims);
}

/* ---- the algorithm pin ---- */

static void expect_header(const char *header, jwt_err want)
{
    char *claims = claims_with("");
    char *t = make_token(header, claims);
    jwt_config c = config();
    principal out;
    jwt_err got = verify_text(&c, t, &out);
    if (got != want)
        fail_msg("header %s: got %s, want %s", header, jwt_strerror(got), jwt_strerror(want));
    free(t);
    free(claims);
}

static void test_alg_none(void **state)
{
    /* With a valid HS256 MAC attached, and the usual unsigned form. */
    expect_header("{\"alg\":\"none\",\"typ\":\"JWT\"}", JWT_BAD_ALG);

    char *claims = claims_with("");
    char *h = b64("{\"alg\":\"none\"}"), *p = b64(claims);
    char t[2048];
    snprintf(t, sizeof t, "%s.%s.", h, p);
    jwt_config c = config();
    principal out;
    assert_int_equal(verify_text(&c, t, &out), JWT_BAD_ALG);
    free(h); free(p); free(claims);
}

static void test_other_algs_refused(void **state)
{
    expect_header("{\"alg\":\"HS512\",\"typ\":\"JWT\"}", JWT_BAD_ALG);
    expect_header("{\"alg\":\"RS256\",\"typ\":\"JWT\"}", JWT_BAD_ALG);
    expect_header("{\"alg\":\"ES256\"}", JWT_BAD_ALG);
    expect_header("{\"alg\":\"hs256\"}", JWT_BAD_ALG);
    expect_header("{\"alg\":\"HS256 \"}", JWT_BAD_ALG);
    expect_header("{\"typ\":\"JWT\"}", JWT_BAD_ALG);           /* missing */
    expect_header("{\"alg\":null}", JWT_BAD_ALG);
    expect_header("{\"alg\":[\"HS256\"]}", JWT_BAD_ALG);
}

static void test_pinned_alg_other_than_hs256(void **state)
{
    /* Configured for RS256: an HS256 token (the classic key-confusion
     * attack signs with the public key as HMAC secret) is refused. */
    char *claims = claims_with("");
    char *t = make_token("{\"alg\":\"RS256\"}", claims);
    jwt_config c = config();
    c.alg = "RS256";
    principal out;
    /* An RS256 header with an HMAC tag: no key set, so no key at all. */
    assert_int_equal(verify_text(&c, t, &out), JWT_UNKNOWN_KID);
    free(t);
    t = make_token(std_header, claims);
    assert_int_equal(verify_text(&c, t, &out), JWT_BAD_ALG);
    free(t);
    free(claims);
}

static void test_header_typ_and_crit(void **state)
{
    expect_header("{\"alg\":\"HS256\"}", JWT_OK);
    expect_header("{\"alg\":\"HS256\",\"typ\":\"jwt\"}", JWT_OK);
    expect_header("{\"alg\":\"HS256\",\"kid\":\"k1\"}", JWT_OK);
    expect_header("{\"alg\":\"HS256\",\"typ\":\"at+jwt\"}", JWT_MALFORMED);
    expect_header("{\"alg\":\"HS256\",\"typ\":1}", JWT_MALFORMED);
    expect_header("{\"alg\":\"HS256\",\"crit\":[\"exp\"],\"exp\":1}", JWT_MALFORMED);
    expect_header("{\"alg\":\"HS256\",\"alg\":\"none\"}", JWT_MALFORMED);   /* duplicate */
    expect_header("[\"HS256\"]", JWT_MALFORMED);
    expect_header("{\"alg\":\"HS256\"} x", JWT_MALFORMED);
}

/* ---- framing and base64url ---- */

static void test_malformed_framing(void **state)
{
    jwt_config c = config();
    principal out;
    char *claims = claims_with("");
    char *t = make_token(std_header, claims);
    char buf[4096];

    assert_int_equal(verify_text(&c, "", &out), JWT_MALFORMED);
    assert_int_equal(verify_text(&c, "abc", &out), JWT_MALFORMED);
    assert_int_equal(verify_text(&c, "a.b", &out), JWT_MALFORMED);
    assert_int_equal(verify_text(&c, "..", &out), JWT_MALFORMED);
    snprintf(buf, sizeof buf, "%s.x", t);              /* four parts */
    assert_int_equal(verify_text(&c, buf, &out), JWT_MALFORMED);
    snprintf(buf, sizeof buf, ".%s", strchr(t, '.'));  /* empty header */
    assert_int_equal(verify_text(&c, buf, &out), JWT_MALFORMED);
    assert_int_equal(jwt_verify(&c, NULL, 0, NOW, &out), JWT_MALFORMED);
    free(t);
    free(claims);
}

static void test_payload_must_be_json_object(void **state)
{
    expect_claims("[1,2]", JWT_MALFORMED);
    expect_claims("\"sub\"", JWT_MALFORMED);
    expect_claims("{\"sub\":", JWT_MALFORMED);
    expect_claims("{\"sub\":\"a\"}garbage", JWT_MALFORMED);
    /* Which "sub" would count? Neither: duplicates are refused. */
    char *claims = claims_with(",\"tenant_id\":\"other\"");
    expect_claims(claims, JWT_MALFORMED);
    free(claims);
}

static void test_padding_and_bad_chars(void **state)
{
    /* Correctly MACed over the altered text, so only the encoding is wrong. */
    char *claims = claims_with(",\"k\":\"v\"");
    jwt_config c = config();
    principal out;
    char *h = b64(std_header), *p = b64(claims);
    char alt[4096];
    char *t;

    assert_true(strlen(p) % 4 != 0);   /* standard base64 would pad this */
    snprintf(alt, sizeof alt, "%s=", p);
    t = sign_parts(h, alt, SECRET);
    assert_int_equal(verify_text(&c, t, &out), JWT_MALFORMED);
    free(t);

    snprintf(alt, sizeof alt, "%s==", h);
    t = sign_parts(alt, p, SECRET);
    assert_int_equal(verify_text(&c, t, &out), JWT_MALFORMED);
    free(t);

    /* '+' and '/' belong to standard base64, not base64url. */
    snprintf(alt, sizeof alt, "%s", p);
    alt[3] = '+';
    t = sign_parts(h, alt, SECRET);
    assert_int_equal(verify_text(&c, t, &out), JWT_MALFORMED);
    free(t);
    alt[3] = '/';
    t = sign_parts(h, alt, SECRET);
    assert_int_equal(verify_text(&c, t, &out), JWT_MALFORMED);
    free(t);

    /* An impossible length: 4k+1 characters. */
    size_t n = strlen(p);
    snprintf(alt, sizeof alt, "%s%s", p, (n % 4 == 0) ? "A" : (n % 4 == 2) ? "AAA" : "AA");
    assert_int_equal(strlen(alt) % 4, 1);
    t = sign_parts(h, alt, SECRET);
    assert_int_equal(verify_text(&c, t, &out), JWT_MALFORMED);
    free(t);

    /* And the unaltered parts pass, so the above failed for the reason given. */
    t = sign_parts(h, p, SECRET);
    assert_int_equal(verify_text(&c, t, &out), JWT_OK);
    free(t);
    free(h); free(p); free(claims);
}

static void test_b64url_decode(void **state)
{
    unsigned char out[16];
    assert_int_equal(b64url_decode("", 0, out, sizeof out), 0);
    assert_int_equal(b64url_decode("QQ", 2, out, sizeof out), 1);
    assert_int_equal(out[0], 'A');
    assert_int_equal(b64url_decode("QUI", 3, out, sizeof out), 2);
    assert_memory_equal(out, "AB", 2);
    assert_int_equal(b64url_decode("QUJD", 4, out, sizeof out), 3);
    assert_memory_equal(out, "ABC", 3);
    assert_int_equal(b64url_decode("-_8", 3, out, sizeof out), 2);
    assert_int_equal(out[0], 0xFB);
    assert_int_equal(out[1], 0xFF);

    assert_int_equal(b64url_decode("QQ==", 4, out, sizeof out), -1);   /* padding */
    assert_int_equal(b64url_decode("Q", 1, out, sizeof out), -1);      /* 4k+1 */
    assert_int_equal(b64url_decode("QUJDR", 5, out, sizeof out), -1);
    assert_int_equal(b64url_decode("A", 1, out, sizeof out), -1);      /* zero bits too */
    assert_int_equal(b64url_decode("QUJDA", 5, out, sizeof out), -1);
    assert_int_equal(b64url_decode("QR", 2, out, sizeof out), -1);     /* stray bits */
    assert_int_equal(b64url_decode("+/8", 3, out, sizeof out), -1);
    assert_int_equal(b64url_decode("QU I", 4, out, sizeof out), -1);
    assert_int_equal(b64url_decode("QUJ\0", 4, out, sizeof out), -1);
    assert_int_equal(b64url_decode("QUJD", 4, out, 2), -1);           /* no room */
}

static void test_b64url_roundtrip(void **state)
{
    unsigned char in[64], out[64 + 3];
    for (size_t i = 0; i < sizeof in; i++)
        in[i] = (unsigned char)(i * 37 + 11);
    for (size_t len = 0; len <= sizeof in; len++) {
        char *e = b64url_encode(in, len);
        assert_non_null(e);
        assert_null(strchr(e, '='));
        assert_null(strchr(e, '+'));
        assert_null(strchr(e, '/'));
        assert_int_equal(strlen(e), (len * 4 + 2) / 3);
        assert_int_equal(b64url_decode(e, strlen(e), out, sizeof out), (long)len);
        assert_memory_equal(out, in, len);
        free(e);
    }
}

/* ---- size cap ---- */

static void test_100kb_token_too_large(void **state)
{
    size_t len = 100 * 1024;
    char *t = malloc(len);
    assert_non_null(t);
    memset(t, 'A', len);
    t[100] = '.';
    t[200] = '.';
    jwt_config c = config();
    principal out;
    assert_int_equal(jwt_verify(&c, t, len, NOW, &out), JWT_TOO_LARGE);
    assert_int_equal(jwt_verify(&c, t, JWT_MAX_TOKEN_BYTES + 1, NOW, &out), JWT_TOO_LARGE);
    free(t);
}

static void test_token_at_exact_limit_verifies(void **state)
{
    /* Grow a padding claim until the token is exactly the limit long: it
     * verifies, and the same claims one byte longer are too large. */
    jwt_config c = config();
    principal out;
    char *pad = malloc(JWT_MAX_TOKEN_BYTES);
    assert_non_null(pad);
    int hit = 0;
    for (size_t n = 5900; n < 6200 && !hit; n++) {
        char extra[16 + JWT_MAX_TOKEN_BYTES];
        memset(pad, 'p', n);
        pad[n] = '\0';
        snprintf(extra, sizeof extra, ",\"pad\":\"%s\"", pad);
        char *claims = claims_with(extra);
        char *t = jwt_sign_hs256(claims, (const unsigned char *)SECRET, strlen(SECRET));
        size_t len = strlen(t);
        if (len == JWT_MAX_TOKEN_BYTES) {
            assert_int_equal(jwt_verify(&c, t, len, NOW, &out), JWT_OK);
            hit = 1;
        } else if (len > JWT_MAX_TOKEN_BYTES) {
            assert_int_equal(jwt_verify(&c, t, len, NOW, &out), JWT_TOO_LARGE);
        }
        free(t);
        free(claims);
    }
    free(pad);
    assert_true(hit);
}

/* ---- time claims ---- */

static void test_expired(void **state)
{
    jwt_config c = config();
    char claims[256];
    snprintf(claims, sizeof claims,
             "{\"sub\":\"a\",\"tenant_id\":\"t\",\"roles\":\"user\",\"exp\":%lld}", NOW - 1);
    assert_int_equal(verify_claims(&c, claims, NULL), JWT_EXPIRED);
    /* At exp itself the token has expired ("before", RFC 7519 4.1.4). */
    snprintf(claims, sizeof claims,
             "{\"sub\":\"a\",\"tenant_id\":\"t\",\"roles\":\"user\",\"exp\":%lld}", NOW);
    assert_int_equal(verify_claims(&c, claims, NULL), JWT_EXPIRED);
    snprintf(claims, sizeof claims,
             "{\"sub\":\"a\",\"tenant_id\":\"t\",\"roles\":\"user\",\"exp\":%lld}", NOW + 1);
    assert_int_equal(verify_claims(&c, claims, NULL), JWT_OK);
}

static void test_nbf_in_future(void **state)
{
    jwt_config c = config();
    char *claims;
    char extra[64];
    snprintf(extra, sizeof extra, ",\"nbf\":%lld", NOW + 10);
    claims = claims_with(extra);
    assert_int_equal(verify_claims(&c, claims, NULL), JWT_NOT_YET_VALID);
    free(claims);
    snprintf(extra, sizeof extra, ",\"nbf\":%lld", NOW);
    claims = claims_with(extra);
    assert_int_equal(verify_claims(&c, claims, NULL), JWT_OK);
    free(claims);
    claims = claims_with(",\"nbf\":\"soon\"");
    assert_int_equal(verify_claims(&c, claims, NULL), JWT_BAD_CLAIMS);
    free(claims);
}

static void test_leeway(void **state)
{
    jwt_config c = config();
    c.leeway_s = 30;
    char claims[256], extra[64];

    snprintf(claims, sizeof claims,
             "{\"sub\":\"a\",\"tenant_id\":\"t\",\"roles\":\"user\",\"exp\":%lld}", NOW - 29);
    assert_int_equal(verify_claims(&c, claims, NULL), JWT_OK);
    snprintf(claims, sizeof claims,
             "{\"sub\":\"a\",\"tenant_id\":\"t\",\"roles\":\"user\",\"exp\":%lld}", NOW - 30);
    assert_int_equal(verify_claims(&c, claims, NULL), JWT_EXPIRED);

    snprintf(extra, sizeof extra, ",\"nbf\":%lld", NOW + 30);
    char *with_nbf = claims_with(extra);
    assert_int_equal(verify_claims(&c, with_nbf, NULL), JWT_OK);
    free(with_nbf);
    snprintf(extra, sizeof extra, ",\"nbf\":%lld", NOW + 31);
    with_nbf = claims_with(extra);
    assert_int_equal(verify_claims(&c, with_nbf, NULL), JWT_NOT_YET_VALID);
    free(with_nbf);
}

static void test_exp_shapes(void **state)
{
    expect_claims("{\"sub\":\"a\",\"tenant_id\":\"t\",\"roles\":\"user\"}", JWT_BAD_CLAIMS);
    expect_claims("{\"sub\":\"a\",\"tenant_id\":\"t\",\"roles\":\"user\",\"exp\":\"1900000000\"}",
                  JWT_BAD_CLAIMS);
    expect_claims("{\"sub\":\"a\",\"tenant_id\":\"t\",\"roles\":\"user\",\"exp\":null}", JWT_BAD_CLAIMS);
    expect_claims("{\"sub\":\"a\",\"tenant_id\":\"t\",\"roles\":\"user\",\"exp\":1e300}", JWT_BAD_CLAIMS);
    /* Fractional NumericDates are allowed; exp is reported whole. */
    jwt_config c = config();
    principal p;
    assert_int_equal(verify_claims(&c, "{\"sub\":\"a\",\"tenant_id\":\"t\",\"roles\":\"user\","
                                       "\"exp\":1800000100.75}", &p), JWT_OK);
    assert_int_equal(p.exp, 1800000100LL);
}

/* ---- issuer and audience ---- */

static void test_issuer(void **state)
{
    jwt_config c = config();
    c.issuer = "https://auth.example";
    char *claims = claims_with(",\"iss\":\"https://auth.example\"");
    assert_int_equal(verify_claims(&c, claims, NULL), JWT_OK);
    free(claims);
    claims = claims_with(",\"iss\":\"https://evil.example\"");
    assert_int_equal(verify_claims(&c, claims, NULL), JWT_BAD_ISSUER);
    free(claims);
    claims = claims_with("");
    assert_int_equal(verify_claims(&c, claims, NULL), JWT_BAD_ISSUER);
    c.issuer = "";   /* not configured: not checked */
    assert_int_equal(verify_claims(&c, claims, NULL), JWT_OK);
    c.issuer = NULL;
    assert_int_equal(verify_claims(&c, claims, NULL), JWT_OK);
    free(claims);
}

static void test_audience(void **state)
{
    jwt_config c = config();
    c.audience = "agentgate";
    const struct { const char *extra; jwt_err want; } cases[] = {
        { ",\"aud\":\"agentgate\"", JWT_OK },
        { ",\"aud\":\"other\"", JWT_BAD_AUDIENCE },
        { ",\"aud\":\"agentgate2\"", JWT_BAD_AUDIENCE },
        { ",\"aud\":[\"billing\",\"agentgate\"]", JWT_OK },
        { ",\"aud\":[\"billing\",\"reports\"]", JWT_BAD_AUDIENCE },
        { ",\"aud\":[]", JWT_BAD_AUDIENCE },
        { ",\"aud\":[1,\"agentgate\"]", JWT_BAD_AUDIENCE },
        { ",\"aud\":7", JWT_BAD_AUDIENCE },
        { "", JWT_BAD_AUDIENCE },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *claims = claims_with(cases[i].extra);
        jwt_err got = verify_claims(&c, claims, NULL);
        if (got != cases[i].want)
            fail_msg("aud case %zu: got %s", i, jwt_strerror(got));
        free(claims);
    }
    c.audience = "";
    char *claims = claims_with(",\"aud\":\"someone-else\"");
    assert_int_equal(verify_claims(&c, claims, NULL), JWT_OK);
    free(claims);
}

/* ---- identity claims ---- */

static void test_missing_identity_claims(void **state)
{
    char claims[256];
    snprintf(claims, sizeof claims, "{\"tenant_id\":\"t\",\"roles\":\"user\",\"exp\":%lld}", NOW + 60);
    expect_claims(claims, JWT_BAD_CLAIMS);
    snprintf(claims, sizeof claims, "{\"sub\":\"a\",\"roles\":\"user\",\"exp\":%lld}", NOW + 60);
    expect_claims(claims, JWT_BAD_CLAIMS);
    snprintf(claims, sizeof claims, "{\"sub\":\"a\",\"tenant_id\":\"t\",\"exp\":%lld}", NOW + 60);
    expect_claims(claims, JWT_BAD_CLAIMS);
}

static void test_sub_shapes(void **state)
{
    char claims[512], sub[200];
    const char *fmt = "{\"sub\":%s,\"tenant_id\":\"t\",\"roles\":\"user\",\"exp\":%lld}";

    snprintf(claims, sizeof claims, fmt, "\"\"", NOW + 60);
    expect_claims(claims, JWT_BAD_CLAIMS);
    snprintf(claims, sizeof claims, fmt, "42", NOW + 60);
    expect_claims(claims, JWT_BAD_CLAIMS);
    snprintf(claims, sizeof claims, fmt, "\"a\\nb\"", NOW + 60);   /* log injection */
    expect_claims(claims, JWT_BAD_CLAIMS);

    memset(sub, 's', 127);
    sub[127] = '\0';
    char quoted[256];
    snprintf(quoted, sizeof quoted, "\"%.127s\"", sub);
    snprintf(claims, sizeof claims, fmt, quoted, NOW + 60);
    expect_claims(claims, JWT_OK);
    snprintf(quoted, sizeof quoted, "\"%.127ss\"", sub);          /* 128 */
    snprintf(claims, sizeof claims, fmt, quoted, NOW + 60);
    expect_claims(claims, JWT_BAD_CLAIMS);
}

static void test_tenant_id_shapes(void **state)
{
    const char *bad[] = { "\"\"", "\"a b\"", "\"a:b\"", "\"t/1\"", "\"t*\"", "\"t\\u00e9\"",
                          "\"{t}\"", "7", "null",
                          "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"" };
    char claims[512];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(claims, sizeof claims,
                 "{\"sub\":\"a\",\"tenant_id\":%s,\"roles\":\"user\",\"exp\":%lld}", bad[i], NOW + 60);
        expect_claims(claims, JWT_BAD_CLAIMS);
    }
    snprintf(claims, sizeof claims, "{\"sub\":\"a\",\"tenant_id\":\"%s\",\"roles\":\"user\",\"exp\":%lld}",
             "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", NOW + 60);  /* 64 */
    expect_claims(claims, JWT_OK);
}

static void test_roles_shapes(void **state)
{
    const struct { const char *roles; jwt_err want; unsigned bits; } cases[] = {
        { "[\"admin\",\"operator\",\"user\",\"viewer\"]", JWT_OK,
          ROLE_ADMIN | ROLE_OPERATOR | ROLE_USER | ROLE_VIEWER },
        { "\"operator viewer\"", JWT_OK, ROLE_OPERATOR | ROLE_VIEWER },
        { "\"  user  \"", JWT_OK, ROLE_USER },
        { "[\"superuser\",\"viewer\"]", JWT_OK, ROLE_VIEWER },   /* unknown ignored */
        { "\"root viewer\"", JWT_OK, ROLE_VIEWER },
        { "[\"superuser\"]", JWT_BAD_CLAIMS, 0 },
        { "[]", JWT_BAD_CLAIMS, 0 },
        { "\"\"", JWT_BAD_CLAIMS, 0 },
        { "[\"Admin\"]", JWT_BAD_CLAIMS, 0 },                    /* case matters */
        { "[\"admin user\"]", JWT_BAD_CLAIMS, 0 },               /* one name per element */
        { "[\"user\",1]", JWT_BAD_CLAIMS, 0 },
        { "{\"admin\":true}", JWT_BAD_CLAIMS, 0 },
        { "null", JWT_BAD_CLAIMS, 0 },
    };
    jwt_config c = config();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char claims[256];
        principal p;
        snprintf(claims, sizeof claims, "{\"sub\":\"a\",\"tenant_id\":\"t\",\"roles\":%s,\"exp\":%lld}",
                 cases[i].roles, NOW + 60);
        jwt_err got = verify_claims(&c, claims, &p);
        if (got != cases[i].want)
            fail_msg("roles %s: got %s", cases[i].roles, jwt_strerror(got));
        if (got == JWT_OK)
            assert_int_equal(p.roles, cases[i].bits);
    }
}

static void test_scope_shapes(void **state)
{
    char extra[700], s[600];
    memset(s, 'x', 511);
    s[511] = '\0';
    snprintf(extra, sizeof extra, ",\"scope\":\"%s\"", s);
    char *claims = claims_with(extra);
    jwt_config c = config();
    principal p;
    assert_int_equal(verify_claims(&c, claims, &p), JWT_OK);
    assert_int_equal(strlen(p.scope), 511);
    free(claims);

    snprintf(extra, sizeof extra, ",\"scope\":\"%sx\"", s);   /* 512 */
    claims = claims_with(extra);
    assert_int_equal(verify_claims(&c, claims, NULL), JWT_BAD_CLAIMS);
    free(claims);

    claims = claims_with(",\"scope\":[\"jobs:read\"]");
    assert_int_equal(verify_claims(&c, claims, NULL), JWT_BAD_CLAIMS);
    free(claims);

    claims = claims_with("");   /* optional */
    assert_int_equal(verify_claims(&c, claims, &p), JWT_OK);
    assert_string_equal(p.scope, "");
    free(claims);
}

/* ---- scopes ---- */

static void test_scope_word_matching(void **state)
{
    principal p;
    memset(&p, 0, sizeof p);
    strcpy(p.scope, "jobs:read  jobs:write runs:admin");
    assert_true(principal_has_scope(&p, "jobs:read"));
    assert_true(principal_has_scope(&p, "jobs:write"));
    assert_true(principal_has_scope(&p, "runs:admin"));
    assert_false(principal_has_scope(&p, "jobs:readx"));
    assert_false(principal_has_scope(&p, "jobs:rea"));
    assert_false(principal_has_scope(&p, "obs:read"));
    assert_false(principal_has_scope(&p, "runs"));
    assert_false(principal_has_scope(&p, "jobs:read jobs:write"));
    assert_false(principal_has_scope(&p, ""));
    assert_false(principal_has_scope(&p, NULL));

    strcpy(p.scope, "jobs:readx");
    assert_false(principal_has_scope(&p, "jobs:read"));
    strcpy(p.scope, "");
    assert_false(principal_has_scope(&p, "jobs:read"));
}

static void test_strerror_is_distinct(void **state)
{
    for (int a = JWT_OK; a <= JWT_KID_REQUIRED; a++) {
        assert_true(strlen(jwt_strerror((jwt_err)a)) > 0);
        for (int b = a + 1; b <= JWT_KID_REQUIRED; b++)
            assert_string_not_equal(jwt_strerror((jwt_err)a), jwt_strerror((jwt_err)b));
    }
}

/* ---- RS256 and ES256 ---- */

static mbedtls_pk_context rsa_key, ec_key, ec2_key;
static jwks *keyset;          /* rsa "r1", ec "e1", ec2 "e2" */
static jwks *rsa_only_set;    /* rsa "r1" */

static int keys_setup(void **state)
{
    (void)state;
    mbedtls_entropy_context ent;
    mbedtls_ctr_drbg_context drbg;
    mbedtls_entropy_init(&ent);
    mbedtls_ctr_drbg_init(&drbg);
    if (mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &ent, NULL, 0) != 0)
        return -1;
    mbedtls_pk_init(&rsa_key);
    mbedtls_pk_init(&ec_key);
    mbedtls_pk_init(&ec2_key);
    int rc = mbedtls_pk_setup(&rsa_key, mbedtls_pk_info_from_type(MBEDTLS_PK_RSA)) ||
             mbedtls_rsa_gen_key(mbedtls_pk_rsa(rsa_key), mbedtls_ctr_drbg_random, &drbg,
                                 2048, 65537) ||
             mbedtls_pk_setup(&ec_key, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)) ||
             mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(ec_key),
                                 mbedtls_ctr_drbg_random, &drbg) ||
             mbedtls_pk_setup(&ec2_key, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)) ||
             mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(ec2_key),
                                 mbedtls_ctr_drbg_random, &drbg);
    mbedtls_ctr_drbg_free(&drbg);
    mbedtls_entropy_free(&ent);
    if (rc != 0)
        return -1;

    /* The set is built from exported keys: export and parse meet here. */
    char err[128], text[8192];
    char *r = jwks_export_public(&rsa_key, "r1", err, sizeof err);
    char *e = jwks_export_public(&ec_key, "e1", err, sizeof err);
    char *e2 = jwks_export_public(&ec2_key, "e2", err, sizeof err);
    if (!r || !e || !e2)
        return -1;
    /* Each is {"keys":[{...}]}: splice the objects into one array. */
    snprintf(text, sizeof text, "{\"keys\":[%.*s,%.*s,%.*s]}",
             (int)strlen(r) - 11, r + 9, (int)strlen(e) - 11, e + 9,
             (int)strlen(e2) - 11, e2 + 9);
    keyset = jwks_parse(text, strlen(text), err, sizeof err);
    rsa_only_set = jwks_parse(r, strlen(r), err, sizeof err);
    free(r);
    free(e);
    free(e2);
    return keyset && rsa_only_set ? 0 : -1;
}

static int keys_teardown(void **state)
{
    (void)state;
    jwks_release(keyset);
    jwks_release(rsa_only_set);
    mbedtls_pk_free(&rsa_key);
    mbedtls_pk_free(&ec_key);
    mbedtls_pk_free(&ec2_key);
    return 0;
}

static jwt_config pk_config(const char *algs)
{
    jwt_config c = config();
    c.alg = algs;
    c.keys = keyset;
    return c;
}

/* A token with this header text and claims, signed with key. */
static char *pk_token(const char *header, const char *claims, mbedtls_pk_context *key)
{
    char err[128];
    char *t = jwt_sign_pk(header, claims, key, err, sizeof err);
    if (t == NULL)
        fail_msg("jwt_sign_pk: %s", err);
    return t;
}

static void expect_pk(const jwt_config *c, const char *header, mbedtls_pk_context *key,
                      jwt_err want)
{
    char *claims = claims_with("");
    char *t = pk_token(header, claims, key);
    principal p;
    jwt_err got = verify_text(c, t, &p);
    if (got != want)
        fail_msg("%s: got %s, want %s", header, jwt_strerror(got), jwt_strerror(want));
    if (want == JWT_OK) {
        assert_string_equal(p.sub, "alice");
        assert_string_equal(p.tenant_id, "acme");
    }
    free(t);
    free(claims);
}

#define RS_R1 "{\"alg\":\"RS256\",\"typ\":\"JWT\",\"kid\":\"r1\"}"
#define ES_E1 "{\"alg\":\"ES256\",\"typ\":\"JWT\",\"kid\":\"e1\"}"

static void test_rs256_es256_good(void **state)
{
    (void)state;
    jwt_config c = pk_config("RS256,ES256");
    expect_pk(&c, RS_R1, &rsa_key, JWT_OK);
    expect_pk(&c, ES_E1, &ec_key, JWT_OK);
    expect_pk(&c, "{\"alg\":\"ES256\",\"kid\":\"e2\"}", &ec2_key, JWT_OK);
    /* Pinned alone, each still works; the list order does not matter. */
    c.alg = "ES256,RS256,HS256";
    expect_pk(&c, RS_R1, &rsa_key, JWT_OK);
    c.alg = "ES256";
    expect_pk(&c, ES_E1, &ec_key, JWT_OK);
}

static void test_pk_alg_not_pinned(void **state)
{
    (void)state;
    jwt_config c = pk_config("ES256");
    expect_pk(&c, RS_R1, &rsa_key, JWT_BAD_ALG);
    c.alg = "RS256";
    expect_pk(&c, ES_E1, &ec_key, JWT_BAD_ALG);
    c.alg = "HS256";
    expect_pk(&c, RS_R1, &rsa_key, JWT_BAD_ALG);
    /* A malformed pin admits nothing. */
    static const char *const bad_pins[] = { "", "RS256,", ",RS256", "RS256,,ES256",
                                            "RS256,RS256", "RS256 ", "rs256", "none" };
    for (size_t i = 0; i < sizeof bad_pins / sizeof *bad_pins; i++) {
        c.alg = bad_pins[i];
        expect_pk(&c, RS_R1, &rsa_key, JWT_BAD_ALG);
    }
}

static void test_pk_alg_none(void **state)
{
    (void)state;
    jwt_config c = pk_config("RS256,ES256");
    char *claims = claims_with(""), *h = b64("{\"alg\":\"none\",\"kid\":\"r1\"}"), *p = b64(claims);
    char t[2048];
    principal out;
    snprintf(t, sizeof t, "%s.%s.", h, p);
    assert_int_equal(verify_text(&c, t, &out), JWT_BAD_ALG);
    /* "none" with a real RS256 signature appended is no better. */
    char *good = pk_token(RS_R1, claims, &rsa_key);
    snprintf(t, sizeof t, "%s.%s.%s", h, p, strrchr(good, '.') + 1);
    assert_int_equal(verify_text(&c, t, &out), JWT_BAD_ALG);
    free(good);
    free(h);
    free(p);
    free(claims);
}

/* The classic confusion: an HS256 token whose HMAC key is the server's
 * RSA public key (as PEM, DER or the JWK's n). Refused when HS256 is not
 * pinned; and when it is, the HMAC key is only ever the configured secret. */
static void test_alg_confusion(void **state)
{
    (void)state;
    unsigned char der[1024], pem[2048];
    int der_len = mbedtls_pk_write_pubkey_der(&rsa_key, der, sizeof der);
    assert_true(der_len > 0);
    assert_int_equal(mbedtls_pk_write_pubkey_pem(&rsa_key, pem, sizeof pem), 0);
    char *claims = claims_with("");
    const char *header = "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"r1\"}";
    char *h = b64(header), *p = b64(claims);
    const struct { const unsigned char *key; size_t len; } secrets[] = {
        { der + sizeof der - der_len, (size_t)der_len },
        { pem, strlen((const char *)pem) },
    };
    for (size_t i = 0; i < 2; i++) {
        size_t n = strlen(h) + 1 + strlen(p);
        char *signing = malloc(n + 1);
        snprintf(signing, n + 1, "%s.%s", h, p);
        unsigned char mac[32];
        assert_int_equal(mbedtls_md_hmac(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256),
                                         secrets[i].key, secrets[i].len,
                                         (const unsigned char *)signing, n, mac), 0);
        char *sig = b64url_encode(mac, sizeof mac), t[4096];
        snprintf(t, sizeof t, "%s.%s", signing, sig);
        principal out;
        jwt_config c = pk_config("RS256");
        assert_int_equal(verify_text(&c, t, &out), JWT_BAD_ALG);
        c.alg = "RS256,HS256";
        assert_int_equal(verify_text(&c, t, &out), JWT_BAD_SIGNATURE);
        /* Even with no secret configured, the key set is never the HMAC key. */
        c.secret = NULL;
        c.secret_len = 0;
        assert_int_equal(verify_text(&c, t, &out), JWT_BAD_SIGNATURE);
        free(sig);
        free(signing);
    }
    free(h);
    free(p);
    free(claims);
}

static void test_kid_lookup(void **state)
{
    (void)state;
    jwt_config c = pk_config("RS256,ES256");
    expect_pk(&c, "{\"alg\":\"RS256\",\"kid\":\"r9\"}", &rsa_key, JWT_UNKNOWN_KID);
    /* The kid exists, but its key does not fit the alg. */
    expect_pk(&c, "{\"alg\":\"RS256\",\"kid\":\"e1\"}", &rsa_key, JWT_UNKNOWN_KID);
    expect_pk(&c, "{\"alg\":\"ES256\",\"kid\":\"r1\"}", &ec_key, JWT_UNKNOWN_KID);
    /* The right kid, signed by another key of the same type. */
    expect_pk(&c, "{\"alg\":\"ES256\",\"kid\":\"e1\"}", &ec2_key, JWT_BAD_SIGNATURE);
    /* No kid: one RSA key serves RS256, two EC keys could serve ES256. */
    expect_pk(&c, "{\"alg\":\"RS256\"}", &rsa_key, JWT_OK);
    expect_pk(&c, "{\"alg\":\"ES256\"}", &ec_key, JWT_KID_REQUIRED);
    c.keys = rsa_only_set;
    expect_pk(&c, "{\"alg\":\"ES256\"}", &ec_key, JWT_UNKNOWN_KID);
    /* No key set loaded (yet). */
    c.keys = NULL;
    expect_pk(&c, RS_R1, &rsa_key, JWT_UNKNOWN_KID);
}

static void test_pk_header_members(void **state)
{
    (void)state;
    jwt_config c = pk_config("RS256,ES256");
    expect_pk(&c, "{\"alg\":\"RS256\",\"kid\":\"r1\",\"alg\":\"RS256\"}", &rsa_key, JWT_MALFORMED);
    expect_pk(&c, "{\"alg\":\"RS256\",\"kid\":\"r1\",\"kid\":\"e1\"}", &rsa_key, JWT_MALFORMED);
    expect_pk(&c, "{\"alg\":\"RS256\",\"kid\":7}", &rsa_key, JWT_MALFORMED);
    expect_pk(&c, "{\"alg\":\"RS256\",\"kid\":\"\"}", &rsa_key, JWT_MALFORMED);
    expect_pk(&c, "{\"alg\":\"RS256\",\"kid\":\"r\\u0001\"}", &rsa_key, JWT_MALFORMED);
    static const char *const refused[] = { "jku", "jwk", "x5u", "x5c", "crit", "cty", "b64" };
    for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
        char h[128];
        snprintf(h, sizeof h, "{\"alg\":\"RS256\",\"kid\":\"r1\",\"%s\":\"x\"}", refused[i]);
        expect_pk(&c, h, &rsa_key, JWT_MALFORMED);
    }
    char h[512], kid[JWKS_MAX_KID + 2];
    memset(kid, 'k', sizeof kid - 1);
    kid[sizeof kid - 1] = '\0';
    snprintf(h, sizeof h, "{\"alg\":\"RS256\",\"kid\":\"%s\"}", kid);
    expect_pk(&c, h, &rsa_key, JWT_MALFORMED);
    /* Unknown but harmless members are ignored. */
    expect_pk(&c, "{\"alg\":\"RS256\",\"kid\":\"r1\",\"x5t\":\"abc\"}", &rsa_key, JWT_OK);
}

/* Replaces the signature part of a good token with sig. */
static jwt_err verify_with_sig(const jwt_config *c, const char *good, const char *sig)
{
    const char *dot = strrchr(good, '.');
    size_t n = (size_t)(dot - good) + 1;
    char *t = malloc(n + strlen(sig) + 1);
    memcpy(t, good, n);
    strcpy(t + n, sig);
    principal out;
    jwt_err rc = verify_text(c, t, &out);
    free(t);
    return rc;
}

static void check_signature_damage(const jwt_config *c, const char *header,
                                   mbedtls_pk_context *key)
{
    char *claims = claims_with("");
    char *good = pk_token(header, claims, key);
    char *sig = strdup(strrchr(good, '.') + 1);
    size_t len = strlen(sig);
    principal out;
    assert_int_equal(verify_text(c, good, &out), JWT_OK);

    char *cut = strndup(sig, len - 1);        /* one character short */
    assert_int_equal(verify_with_sig(c, good, cut), JWT_BAD_SIGNATURE);
    free(cut);
    cut = strndup(sig, len - 4);              /* three bytes short */
    assert_int_equal(verify_with_sig(c, good, cut), JWT_BAD_SIGNATURE);
    free(cut);
    assert_int_equal(verify_with_sig(c, good, ""), JWT_BAD_SIGNATURE);
    char *longer = malloc(len + 3);
    sprintf(longer, "%sAA", sig);             /* one byte too many */
    assert_int_equal(verify_with_sig(c, good, longer), JWT_BAD_SIGNATURE);
    free(longer);
    char *flip = strdup(sig);                 /* one bit of one byte */
    flip[len / 2] = flip[len / 2] == 'A' ? 'B' : 'A';
    assert_int_equal(verify_with_sig(c, good, flip), JWT_BAD_SIGNATURE);
    flip[len / 2] = '!';                      /* not base64url */
    assert_int_equal(verify_with_sig(c, good, flip), JWT_MALFORMED);
    free(flip);
    /* Respelled last character (non-zero padding bits): refused too. */
    char *resp = strdup(sig);
    resp[len - 1] = (char)(resp[len - 1] == 'A' ? 'B' : resp[len - 1] + 1);
    assert_int_not_equal(verify_with_sig(c, good, resp), JWT_OK);
    free(resp);
    free(sig);
    free(good);
    free(claims);
}

static void test_damaged_signatures(void **state)
{
    (void)state;
    jwt_config c = pk_config("RS256,ES256");
    check_signature_damage(&c, RS_R1, &rsa_key);
    check_signature_damage(&c, ES_E1, &ec_key);
}

/* ES256 signatures are raw r||s: DER, zero and out-of-range values fail. */
static void test_es256_signature_shapes(void **state)
{
    (void)state;
    jwt_config c = pk_config("ES256");
    char *claims = claims_with("");
    char *good = pk_token(ES_E1, claims, &ec_key);
    unsigned char raw[80];
    const char *sig = strrchr(good, '.') + 1;
    assert_int_equal(b64url_decode(sig, strlen(sig), raw, sizeof raw), 64);

    /* The same r and s as DER (what OpenSSL produces). */
    mbedtls_mpi r, s;
    mbedtls_mpi_init(&r);
    mbedtls_mpi_init(&s);
    assert_int_equal(mbedtls_mpi_read_binary(&r, raw, 32), 0);
    assert_int_equal(mbedtls_mpi_read_binary(&s, raw + 32, 32), 0);
    unsigned char der[80];
    size_t der_len = 0;
    der[0] = 0x30;
    size_t o = 2;
    for (int i = 0; i < 2; i++) {
        const unsigned char *v = raw + 32 * i;
        int pad = v[0] & 0x80 ? 1 : 0;
        der[o++] = 0x02;
        der[o++] = (unsigned char)(32 + pad);
        if (pad) der[o++] = 0;
        memcpy(der + o, v, 32);
        o += 32;
    }
    der[1] = (unsigned char)(o - 2);
    der_len = o;
    char *der64 = b64url_encode(der, der_len);
    assert_int_equal(verify_with_sig(&c, good, der64), JWT_BAD_SIGNATURE);
    free(der64);
    mbedtls_mpi_free(&r);
    mbedtls_mpi_free(&s);

    unsigned char bad[64];
    memset(bad, 0, sizeof bad);                      /* r = s = 0 */
    char *b = b64url_encode(bad, sizeof bad);
    assert_int_equal(verify_with_sig(&c, good, b), JWT_BAD_SIGNATURE);
    free(b);
    memset(bad, 0xff, sizeof bad);                   /* r, s >= n */
    b = b64url_encode(bad, sizeof bad);
    assert_int_equal(verify_with_sig(&c, good, b), JWT_BAD_SIGNATURE);
    free(b);
    memcpy(bad, raw + 32, 32);                       /* s || r */
    memcpy(bad + 32, raw, 32);
    b = b64url_encode(bad, sizeof bad);
    assert_int_equal(verify_with_sig(&c, good, b), JWT_BAD_SIGNATURE);
    free(b);
    free(good);
    free(claims);
}

static void test_pk_tampered_payload(void **state)
{
    (void)state;
    jwt_config c = pk_config("RS256,ES256");
    char *claims = claims_with(""), *evil = claims_with(",\"roles\":[\"admin\"]");
    char *evil64 = b64("{\"sub\":\"alice\",\"tenant_id\":\"acme\",\"roles\":[\"admin\"],"
                       "\"exp\":9999999999}");
    mbedtls_pk_context *keys[] = { &rsa_key, &ec_key };
    const char *headers[] = { RS_R1, ES_E1 };
    for (int i = 0; i < 2; i++) {
        char *good = pk_token(headers[i], claims, keys[i]);
        char *d1 = strchr(good, '.'), *d2 = strrchr(good, '.');
        char t[4096];
        snprintf(t, sizeof t, "%.*s.%s%s", (int)(d1 - good), good, evil64, d2);
        principal out;
        assert_int_equal(verify_text(&c, t, &out), JWT_BAD_SIGNATURE);
        free(good);
    }
    free(evil64);
    free(evil);
    free(claims);
}

static void test_pk_claims_checked(void **state)
{
    (void)state;
    jwt_config c = pk_config("ES256");
    c.leeway_s = 30;
    c.issuer = "https://idp.example";
    c.audience = "agentgate";
    const char *good_ia = ",\"iss\":\"https://idp.example\",\"aud\":[\"x\",\"agentgate\"]";
    struct { long long exp_delta; const char *extra; jwt_err want; } cases[] = {
        { -29, good_ia, JWT_OK },                     /* within leeway */
        { -30, good_ia, JWT_EXPIRED },                /* at the edge: expired */
        { 600, ",\"iss\":\"https://evil\",\"aud\":\"agentgate\"", JWT_BAD_ISSUER },
        { 600, ",\"iss\":\"https://idp.example\",\"aud\":\"other\"", JWT_BAD_AUDIENCE },
        { 600, ",\"iss\":\"https://idp.example\"", JWT_BAD_AUDIENCE },
        { 600, ",\"aud\":\"agentgate\"", JWT_BAD_ISSUER },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char claims[512];
        snprintf(claims, sizeof claims,
                 "{\"sub\":\"a\",\"tenant_id\":\"t\",\"roles\":\"user\",\"exp\":%lld%s}",
                 NOW + cases[i].exp_delta, cases[i].extra);
        char *t = pk_token(ES_E1, claims, &ec_key);
        principal out;
        jwt_err got = verify_text(&c, t, &out);
        if (got != cases[i].want)
            fail_msg("%s: got %s, want %s", claims, jwt_strerror(got), jwt_strerror(cases[i].want));
        free(t);
    }
    /* nbf at now + leeway is fine, one second later is not. */
    char extra[128];
    snprintf(extra, sizeof extra, "%s,\"nbf\":%lld", good_ia, NOW + 30);
    char *cl = claims_with(extra);
    char *t = pk_token(ES_E1, cl, &ec_key);
    principal out;
    assert_int_equal(verify_text(&c, t, &out), JWT_OK);
    free(t);
    free(cl);
    snprintf(extra, sizeof extra, "%s,\"nbf\":%lld", good_ia, NOW + 31);
    cl = claims_with(extra);
    t = pk_token(ES_E1, cl, &ec_key);
    assert_int_equal(verify_text(&c, t, &out), JWT_NOT_YET_VALID);
    free(t);
    free(cl);
}

static void test_alg_list_helpers(void **state)
{
    (void)state;
    assert_true(jwt_alg_list_valid("HS256"));
    assert_true(jwt_alg_list_valid("RS256,ES256"));
    assert_true(jwt_alg_list_valid("ES256,HS256,RS256"));
    assert_false(jwt_alg_list_valid(NULL));
    assert_false(jwt_alg_list_valid(""));
    assert_false(jwt_alg_list_valid("RS256, ES256"));
    assert_false(jwt_alg_list_valid("RS256,RS256"));
    assert_false(jwt_alg_list_valid("none"));
    assert_true(jwt_alg_list_has("RS256,ES256", "ES256"));
    assert_false(jwt_alg_list_has("RS256,ES256", "HS256"));
    assert_false(jwt_alg_list_has("RS256,ES256", "ES25"));
    assert_string_equal(jwt_alg_for_key(&rsa_key), "RS256");
    assert_string_equal(jwt_alg_for_key(&ec_key), "ES256");
    assert_null(jwt_alg_for_key(NULL));
    /* A public key cannot sign. */
    char err[128];
    const mbedtls_pk_context *pub = jwks_find(keyset, "e1", JWK_ALG_ES256);
    assert_null(jwt_sign_pk(ES_E1, "{}", (mbedtls_pk_context *)pub, err, sizeof err));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_token),
        cmocka_unit_test(test_independently_signed_token),
        cmocka_unit_test(test_sign_then_verify_roundtrip),
        cmocka_unit_test(test_wrong_secret),
        cmocka_unit_test(test_tampered_payload),
        cmocka_unit_test(test_flipped_signature_byte),
        cmocka_unit_test(test_truncated_signature),
        cmocka_unit_test(test_signature_respelled_is_refused),
        cmocka_unit_test(test_empty_secret_refused),
        cmocka_unit_test(test_alg_none),
        cmocka_unit_test(test_other_algs_refused),
        cmocka_unit_test(test_pinned_alg_other_than_hs256),
        cmocka_unit_test(test_header_typ_and_crit),
        cmocka_unit_test(test_malformed_framing),
        cmocka_unit_test(test_payload_must_be_json_object),
        cmocka_unit_test(test_padding_and_bad_chars),
        cmocka_unit_test(test_b64url_decode),
        cmocka_unit_test(test_b64url_roundtrip),
        cmocka_unit_test(test_100kb_token_too_large),
        cmocka_unit_test(test_token_at_exact_limit_verifies),
        cmocka_unit_test(test_expired),
        cmocka_unit_test(test_nbf_in_future),
        cmocka_unit_test(test_leeway),
        cmocka_unit_test(test_exp_shapes),
        cmocka_unit_test(test_issuer),
        cmocka_unit_test(test_audience),
        cmocka_unit_test(test_missing_identity_claims),
        cmocka_unit_test(test_sub_shapes),
        cmocka_unit_test(test_tenant_id_shapes),
        cmocka_unit_test(test_roles_shapes),
        cmocka_unit_test(test_scope_shapes),
        cmocka_unit_test(test_scope_word_matching),
        cmocka_unit_test(test_strerror_is_distinct),
        cmocka_unit_test(test_rs256_es256_good),
        cmocka_unit_test(test_pk_alg_not_pinned),
        cmocka_unit_test(test_pk_alg_none),
        cmocka_unit_test(test_alg_confusion),
        cmocka_unit_test(test_kid_lookup),
        cmocka_unit_test(test_pk_header_members),
        cmocka_unit_test(test_damaged_signatures),
        cmocka_unit_test(test_es256_signature_shapes),
        cmocka_unit_test(test_pk_tampered_payload),
        cmocka_unit_test(test_pk_claims_checked),
        cmocka_unit_test(test_alg_list_helpers),
    };
    return cmocka_run_group_tests(tests, keys_setup, keys_teardown);
}
