/*
 * test_jwks.c - unit tests for the JWKS parser (common/jwks.c): good sets
 * and lookups by kid and algorithm, the keys it skips, every malformed
 * member it refuses, reference counting, and export round trips.
 *
 * Keys are generated once per run with mbedTLS; each malformed case starts
 * from a valid exported key and changes one member, so a refusal is down
 * to that member alone.
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
#include <mbedtls/pk.h>
#include <mbedtls/rsa.h>

#include "base64url.h"
#include "jwks.h"
#include "jwt.h"

static mbedtls_pk_context rsa_key, rsa1024_key, ec_key;
static char *rsa_obj, *ec_obj;     /* one key object each, JSON text */

/* --- fixtures ------------------------------------------------------------ */

static void gen_keys(mbedtls_pk_context *rsa, unsigned rsa_bits, mbedtls_pk_context *ec)
{
    mbedtls_entropy_context ent;
    mbedtls_ctr_drbg_context drbg;
    mbedtls_entropy_init(&ent);
    mbedtls_ctr_drbg_init(&drbg);
    assert_int_equal(mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &ent, NULL, 0), 0);
    if (rsa) {
        mbedtls_pk_init(rsa);
        assert_int_equal(mbedtls_pk_setup(rsa, mbedtls_pk_info_from_type(MBEDTLS_PK_RSA)), 0);
        assert_int_equal(mbedtls_rsa_gen_key(mbedtls_pk_rsa(*rsa), mbedtls_ctr_drbg_random,
                                             &drbg, rsa_bits, 65537), 0);
    }
    if (ec) {
        mbedtls_pk_init(ec);
        assert_int_equal(mbedtls_pk_setup(ec, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)), 0);
        assert_int_equal(mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(*ec),
                                             mbedtls_ctr_drbg_random, &drbg), 0);
    }
    mbedtls_ctr_drbg_free(&drbg);
    mbedtls_entropy_free(&ent);
}

/* The one key object of an exported set, as text. Caller frees. */
static char *exported_object(const mbedtls_pk_context *key, const char *kid)
{
    char err[128];
    char *set = jwks_export_public(key, kid, err, sizeof err);
    assert_non_null(set);
    cJSON *root = cJSON_Parse(set);
    free(set);
    assert_non_null(root);
    char *obj = cJSON_PrintUnformatted(cJSON_GetArrayItem(cJSON_GetObjectItem(root, "keys"), 0));
    cJSON_Delete(root);
    assert_non_null(obj);
    return obj;
}

/* An RSA key object built without jwks_export_public (which refuses
 * small keys). Caller frees. */
static char *rsa_object_by_hand(const mbedtls_pk_context *key, const char *kid)
{
    mbedtls_mpi n, e;
    mbedtls_mpi_init(&n);
    mbedtls_mpi_init(&e);
    assert_int_equal(mbedtls_rsa_export(mbedtls_pk_rsa(*key), &n, NULL, NULL, NULL, &e), 0);
    unsigned char nb[1024], eb[8];
    size_t nl = mbedtls_mpi_size(&n), el = mbedtls_mpi_size(&e);
    assert_int_equal(mbedtls_mpi_write_binary(&n, nb, nl), 0);
    assert_int_equal(mbedtls_mpi_write_binary(&e, eb, el), 0);
    char *n64 = b64url_encode(nb, nl), *e64 = b64url_encode(eb, el);
    char *out = malloc(strlen(n64) + strlen(e64) + strlen(kid) + 64);
    sprintf(out, "{\"kty\":\"RSA\",\"kid\":\"%s\",\"n\":\"%s\",\"e\":\"%s\"}", kid, n64, e64);
    free(n64);
    free(e64);
    mbedtls_mpi_free(&n);
    mbedtls_mpi_free(&e);
    return out;
}

static int setup(void **state)
{
    (void)state;
    gen_keys(&rsa_key, 2048, &ec_key);
    gen_keys(&rsa1024_key, 1024, NULL);
    rsa_obj = exported_object(&rsa_key, "rsa-1");
    ec_obj = exported_object(&ec_key, "ec-1");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    mbedtls_pk_free(&rsa_key);
    mbedtls_pk_free(&rsa1024_key);
    mbedtls_pk_free(&ec_key);
    free(rsa_obj);
    free(ec_obj);
    return 0;
}

/* {"keys":[a, b]} (b may be NULL). Caller frees. */
static char *set_of(const char *a, const char *b)
{
    size_t n = strlen(a) + (b ? strlen(b) : 0) + 32;
    char *s = malloc(n);
    assert_non_null(s);
    snprintf(s, n, "{\"keys\":[%s%s%s]}", a, b ? "," : "", b ? b : "");
    return s;
}

/* key (object text) with member name set to value (JSON text), or
 * removed when value is NULL. Caller frees. */
static char *with_member(const char *key, const char *name, const char *value)
{
    cJSON *k = cJSON_Parse(key);
    assert_non_null(k);
    cJSON_DeleteItemFromObjectCaseSensitive(k, name);
    if (value) {
        cJSON *v = cJSON_Parse(value);
        assert_non_null(v);
        cJSON_AddItemToObject(k, name, v);
    }
    char *s = cJSON_PrintUnformatted(k);
    cJSON_Delete(k);
    assert_non_null(s);
    return s;
}

static jwks *parse_text(const char *text, char *err, size_t err_size)
{
    return jwks_parse(text, strlen(text), err, err_size);
}

/* The set text must be refused, with a reason containing want. */
static void expect_refused(const char *text, const char *want)
{
    char err[256] = "";
    jwks *set = parse_text(text, err, sizeof err);
    if (set != NULL) {
        jwks_release(set);
        fail_msg("accepted: %.200s", text);
    }
    if (strstr(err, want) == NULL)
        fail_msg("reason \"%s\" lacks \"%s\" for %.200s", err, want, text);
}

/* One key, changed in one member, alone in a set, must be refused. */
static void expect_member_refused(const char *key, const char *name, const char *value,
                                  const char *want)
{
    char *k = with_member(key, name, value);
    char *s = set_of(k, NULL);
    expect_refused(s, want);
    free(s);
    free(k);
}

/* As above, but the changed key is skipped: alongside a good key, the set
 * parses with that one key only. */
static void expect_member_skipped(const char *key, const char *name, const char *value)
{
    char *k = with_member(key, name, value);
    const char *other = key == rsa_obj ? ec_obj : rsa_obj;
    char *s = set_of(other, k);
    char err[256] = "";
    jwks *set = parse_text(s, err, sizeof err);
    if (set == NULL)
        fail_msg("refused (%s): %.300s", err, s);
    assert_int_equal(jwks_count(set), 1);
    jwks_release(set);
    free(s);
    free(k);
}

/* --- good sets ----------------------------------------------------------- */

static void test_parse_and_find(void **state)
{
    (void)state;
    char *s = set_of(rsa_obj, ec_obj), err[128];
    jwks *set = parse_text(s, err, sizeof err);
    assert_non_null(set);
    assert_int_equal(jwks_count(set), 2);
    assert_int_equal(jwks_count_for(set, JWK_ALG_RS256), 1);
    assert_int_equal(jwks_count_for(set, JWK_ALG_ES256), 1);
    assert_non_null(jwks_find(set, "rsa-1", JWK_ALG_RS256));
    assert_non_null(jwks_find(set, "ec-1", JWK_ALG_ES256));
    /* A kid whose key does not serve the alg is not found. */
    assert_null(jwks_find(set, "rsa-1", JWK_ALG_ES256));
    assert_null(jwks_find(set, "ec-1", JWK_ALG_RS256));
    assert_null(jwks_find(set, "nope", JWK_ALG_RS256));
    /* Without a kid: the one key serving the alg. */
    assert_ptr_equal(jwks_find(set, NULL, JWK_ALG_RS256), jwks_find(set, "rsa-1", JWK_ALG_RS256));
    assert_null(jwks_find(NULL, "rsa-1", JWK_ALG_RS256));
    jwks_release(set);
    free(s);
}

static void test_no_kid_with_two_candidates(void **state)
{
    (void)state;
    char *k2 = exported_object(&rsa_key, "rsa-2");
    char *s = set_of(rsa_obj, k2), err[128];
    jwks *set = parse_text(s, err, sizeof err);
    assert_non_null(set);
    assert_int_equal(jwks_count_for(set, JWK_ALG_RS256), 2);
    assert_null(jwks_find(set, NULL, JWK_ALG_RS256));
    assert_non_null(jwks_find(set, "rsa-2", JWK_ALG_RS256));
    jwks_release(set);
    free(s);
    free(k2);
}

static void test_key_without_kid(void **state)
{
    (void)state;
    char *k = with_member(ec_obj, "kid", NULL);
    char *s = set_of(k, NULL), err[128];
    jwks *set = parse_text(s, err, sizeof err);
    assert_non_null(set);
    assert_non_null(jwks_find(set, NULL, JWK_ALG_ES256));
    assert_null(jwks_find(set, "ec-1", JWK_ALG_ES256));
    jwks_release(set);
    free(s);
    free(k);
}

static void test_optional_members(void **state)
{
    (void)state;
    /* No alg and no use are fine; key_ops with verify is fine; unknown
     * members are ignored. */
    char *a = with_member(rsa_obj, "alg", NULL);
    char *b = with_member(a, "use", NULL);
    char *c = with_member(b, "key_ops", "[\"verify\"]");
    char *d = with_member(c, "x5t", "\"abc\"");
    char *s = set_of(d, NULL), err[128];
    jwks *set = parse_text(s, err, sizeof err);
    assert_non_null(set);
    assert_non_null(jwks_find(set, "rsa-1", JWK_ALG_RS256));
    jwks_release(set);
    free(a); free(b); free(c); free(d); free(s);
}

static void test_refcount(void **state)
{
    (void)state;
    char *s = set_of(ec_obj, NULL), err[128];
    jwks *set = parse_text(s, err, sizeof err);
    assert_non_null(set);
    assert_ptr_equal(jwks_retain(set), set);
    jwks_release(set);
    /* Still alive after one of two references went (ASan would see a use
     * after free otherwise). */
    assert_int_equal(jwks_count(set), 1);
    jwks_release(set);
    jwks_release(NULL);
    assert_null(jwks_retain(NULL));
    free(s);
}

/* --- skipped keys -------------------------------------------------------- */

static void test_skipped_keys(void **state)
{
    (void)state;
    expect_member_skipped(rsa_obj, "use", "\"enc\"");
    expect_member_skipped(ec_obj, "use", "\"enc\"");
    expect_member_skipped(rsa_obj, "key_ops", "[\"encrypt\"]");
    expect_member_skipped(rsa_obj, "alg", "\"RS512\"");
    expect_member_skipped(rsa_obj, "alg", "\"PS256\"");
    expect_member_skipped(rsa_obj, "alg", "\"ES256\"");
    expect_member_skipped(ec_obj, "alg", "\"ES384\"");
    expect_member_skipped(ec_obj, "crv", "\"P-384\"");
    expect_member_skipped(ec_obj, "kty", "\"OKP\"");
    /* A symmetric key in a JWKS is never an HS256 key for us. */
    expect_member_skipped(rsa_obj, "kty", "\"oct\"");
    /* Skipped keys do not take part in the duplicate-kid rule. */
    char *enc = with_member(rsa_obj, "use", "\"enc\"");
    char *s = set_of(rsa_obj, enc), err[128];
    jwks *set = parse_text(s, err, sizeof err);
    assert_non_null(set);
    jwks_release(set);
    free(s);
    free(enc);
}

static void test_no_usable_key(void **state)
{
    (void)state;
    expect_refused("{\"keys\":[]}", "no usable");
    expect_refused("{\"keys\":[{\"kty\":\"oct\",\"k\":\"c2VjcmV0\",\"kid\":\"h\"}]}", "no usable");
    expect_member_refused(rsa_obj, "use", "\"enc\"", "no usable");
    expect_member_refused(ec_obj, "crv", "\"P-521\"", "no usable");
}

/* --- malformed sets ------------------------------------------------------ */

static void test_malformed_top_level(void **state)
{
    (void)state;
    expect_refused("", "not valid JSON");
    expect_refused("{\"keys\":[", "not valid JSON");
    expect_refused("[]", "not a JSON object");
    expect_refused("\"keys\"", "not a JSON object");
    expect_refused("{}", "no \"keys\" array");
    expect_refused("{\"keys\":{}}", "no \"keys\" array");
    expect_refused("{\"keys\":null}", "no \"keys\" array");
    expect_refused("{\"keys\":[1]}", "key 0 is not an object");
    expect_refused("{\"keys\":[[]]}", "key 0 is not an object");
    char *s = malloc(strlen(ec_obj) + 64);
    sprintf(s, "{\"keys\":[],\"keys\":[%s]}", ec_obj);
    expect_refused(s, "duplicate member");
    free(s);

    /* Too many keys, and too many bytes. */
    size_t n = (JWKS_MAX_KEYS + 1) * (strlen(ec_obj) + 1) + 32;
    char *big = malloc(n);
    strcpy(big, "{\"keys\":[");
    for (int i = 0; i <= JWKS_MAX_KEYS; i++) {
        strcat(big, i ? "," : "");
        strcat(big, "{\"kty\":\"oct\"}");
    }
    strcat(big, "]}");
    expect_refused(big, "more than");
    free(big);
    char *huge = malloc(JWKS_MAX_BYTES + 2);
    memset(huge, ' ', JWKS_MAX_BYTES + 1);
    huge[JWKS_MAX_BYTES + 1] = '\0';
    expect_refused(huge, "larger than");
    free(huge);
}

static void test_malformed_common_members(void **state)
{
    (void)state;
    expect_member_refused(rsa_obj, "kty", NULL, "\"kty\" is missing");
    expect_member_refused(rsa_obj, "kty", "1", "\"kty\" is not a string");
    expect_member_refused(rsa_obj, "kid", "7", "\"kid\" is not a string");
    expect_member_refused(rsa_obj, "kid", "\"\"", "\"kid\" must be");
    expect_member_refused(rsa_obj, "kid", "\"a\\nb\"", "\"kid\" must be");
    char long_kid[JWKS_MAX_KID + 8];
    memset(long_kid, 'k', sizeof long_kid);
    long_kid[0] = '"';
    long_kid[JWKS_MAX_KID + 2] = '"';
    long_kid[JWKS_MAX_KID + 3] = '\0';
    expect_member_refused(rsa_obj, "kid", long_kid, "\"kid\" must be");
    expect_member_refused(rsa_obj, "use", "true", "\"use\" is not a string");
    expect_member_refused(rsa_obj, "alg", "[\"RS256\"]", "\"alg\" is not a string");
    expect_member_refused(ec_obj, "crv", "256", "\"crv\" is not a string");
    expect_member_refused(ec_obj, "crv", NULL, "\"crv\" is missing");
    expect_member_refused(rsa_obj, "key_ops", "\"verify\"", "\"key_ops\" is not an array");
    expect_member_refused(rsa_obj, "key_ops", "[1]", "\"key_ops\" holds a non-string");
    expect_member_refused(rsa_obj, "d", "\"AQAB\"", "private key material");
    expect_member_refused(ec_obj, "d", "\"AQAB\"", "private key material");

    /* A repeated member within a key. */
    char *dup = malloc(strlen(rsa_obj) + 32);
    sprintf(dup, "%.*s,\"kty\":\"EC\"}", (int)strlen(rsa_obj) - 1, rsa_obj);
    char *s = set_of(dup, NULL);
    expect_refused(s, "duplicate member");
    free(s);
    free(dup);

    /* Two usable keys under one kid. */
    char *twin = exported_object(&rsa_key, "ec-1");
    s = set_of(ec_obj, twin);
    expect_refused(s, "share a kid");
    free(s);
    free(twin);
}

static void test_malformed_rsa(void **state)
{
    (void)state;
    expect_member_refused(rsa_obj, "n", NULL, "\"n\" is missing");
    expect_member_refused(rsa_obj, "e", NULL, "\"e\" is missing");
    expect_member_refused(rsa_obj, "n", "12", "\"n\" is not a string");
    expect_member_refused(rsa_obj, "e", "65537", "\"e\" is not a string");
    expect_member_refused(rsa_obj, "n", "\"\"", "\"n\" is empty");
    expect_member_refused(rsa_obj, "n", "\"abc+def/\"", "not base64url");
    expect_member_refused(rsa_obj, "n", "\"QQ==\"", "not base64url");   /* padded */
    expect_member_refused(rsa_obj, "e", "\"AQAB AQ\"", "not base64url");
    expect_member_refused(rsa_obj, "e", "\"AQABAQAB\"", "longer than");
    expect_member_refused(rsa_obj, "e", "\"AQ\"", "not a valid RSA");    /* e = 1 */
    expect_member_refused(rsa_obj, "e", "\"AQAA\"", "not a valid RSA");  /* even */
    /* A modulus far too long for the buffer. */
    char *long_n = malloc(4000);
    long_n[0] = '"';
    memset(long_n + 1, 'A', 3000);
    strcpy(long_n + 3001, "\"");
    expect_member_refused(rsa_obj, "n", long_n, "not base64url or too long");
    free(long_n);
    /* A 1024-bit key is a valid key, and still refused. */
    char *small = rsa_object_by_hand(&rsa1024_key, "small");
    char *s = set_of(small, NULL);
    expect_refused(s, "RSA modulus of 1024 bits");
    free(s);
    free(small);
}

static void test_malformed_ec(void **state)
{
    (void)state;
    expect_member_refused(ec_obj, "x", NULL, "\"x\" is missing");
    expect_member_refused(ec_obj, "y", NULL, "\"y\" is missing");
    expect_member_refused(ec_obj, "x", "[]", "\"x\" is not a string");
    expect_member_refused(ec_obj, "y", "\"#\"", "not base64url");
    expect_member_refused(ec_obj, "x", "\"AQAB\"", "must be 32 bytes");
    /* 33 bytes: a leading zero is not allowed either (RFC 7518 6.2.1.2). */
    expect_member_refused(ec_obj, "y",
                          "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"", "must be 32 bytes");
    /* Right size, off the curve: y + 1. */
    cJSON *k = cJSON_Parse(ec_obj);
    const char *y = cJSON_GetObjectItem(k, "y")->valuestring;
    unsigned char raw[40];
    assert_int_equal(b64url_decode(y, strlen(y), raw, sizeof raw), 32);
    raw[31] ^= 1;
    char *bad = b64url_encode(raw, 32), quoted[64];
    snprintf(quoted, sizeof quoted, "\"%s\"", bad);
    expect_member_refused(ec_obj, "y", quoted, "not on P-256");
    free(bad);
    cJSON_Delete(k);
    /* The point at "zero". */
    expect_member_refused(ec_obj, "x", "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"",
                          "not on P-256");
}

/* Reasons name the key by index, never its material. */
static void test_reason_has_no_key_material(void **state)
{
    (void)state;
    char *k = with_member(rsa_obj, "e", "\"AQAA\"");
    char *s = set_of(ec_obj, k), err[256];
    assert_null(parse_text(s, err, sizeof err));
    assert_non_null(strstr(err, "key 1"));
    cJSON *o = cJSON_Parse(rsa_obj);
    char frag[17];
    snprintf(frag, sizeof frag, "%s", cJSON_GetObjectItem(o, "n")->valuestring);
    assert_null(strstr(err, frag));
    cJSON_Delete(o);
    free(s);
    free(k);
}

/* --- export -------------------------------------------------------------- */

static void test_export(void **state)
{
    (void)state;
    char err[128];
    assert_null(jwks_export_public(&rsa_key, "", err, sizeof err));
    assert_null(jwks_export_public(&rsa_key, "a\tb", err, sizeof err));
    assert_null(jwks_export_public(&rsa1024_key, "small", err, sizeof err));
    assert_non_null(strstr(err, "2048"));

    /* Export, parse back: the same public key. */
    char *text = jwks_export_public(&ec_key, "e", err, sizeof err);
    assert_non_null(text);
    assert_null(strstr(text, "\"d\""));
    jwks *set = parse_text(text, err, sizeof err);
    assert_non_null(set);
    const mbedtls_pk_context *pk = jwks_find(set, "e", JWK_ALG_ES256);
    assert_non_null(pk);
    assert_int_equal(mbedtls_ecp_point_cmp(&mbedtls_pk_ec(*pk)->Q, &mbedtls_pk_ec(ec_key)->Q), 0);
    jwks_release(set);
    free(text);

    text = jwks_export_public(&rsa_key, "r", err, sizeof err);
    assert_non_null(text);
    set = parse_text(text, err, sizeof err);
    assert_non_null(set);
    pk = jwks_find(set, "r", JWK_ALG_RS256);
    assert_non_null(pk);
    assert_int_equal(mbedtls_mpi_cmp_mpi(&mbedtls_pk_rsa(*pk)->N, &mbedtls_pk_rsa(rsa_key)->N), 0);
    jwks_release(set);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_and_find),
        cmocka_unit_test(test_no_kid_with_two_candidates),
        cmocka_unit_test(test_key_without_kid),
        cmocka_unit_test(test_optional_members),
        cmocka_unit_test(test_refcount),
        cmocka_unit_test(test_skipped_keys),
        cmocka_unit_test(test_no_usable_key),
        cmocka_unit_test(test_malformed_top_level),
        cmocka_unit_test(test_malformed_common_members),
        cmocka_unit_test(test_malformed_rsa),
        cmocka_unit_test(test_malformed_ec),
        cmocka_unit_test(test_reason_has_no_key_material),
        cmocka_unit_test(test_export),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
