/*
 * test_jwt_hs256_cache.c - the faster HS256 check of common/jwt.c: the key's
 * HMAC context kept per thread, and the common header's tree parsed once.
 * The MACs here come from mbedtls_md_hmac, independently of jwt.c, for
 * keys shorter than, equal to and longer than SHA-256's 64-byte block;
 * a thread that sees another key must not keep using the old one, and
 * the shared header must still be held to the pinned algorithms.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <mbedtls/md.h>

#include "base64url.h"
#include "jwt.h"

#define NOW 1800000000LL

static const char common_header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";

static jwt_config config_for(const unsigned char *key, size_t len)
{
    jwt_config c;
    memset(&c, 0, sizeof c);
    c.alg = "HS256";
    c.secret = key;
    c.secret_len = len;
    c.issuer = "";
    c.audience = "";
    return c;
}

/* header and claims signed with HMAC-SHA256 under key. Caller frees. */
static char *token_for(const char *header, const char *claims,
                       const unsigned char *key, size_t key_len)
{
    char *h = b64url_encode((const unsigned char *)header, strlen(header));
    char *p = b64url_encode((const unsigned char *)claims, strlen(claims));
    assert_non_null(h);
    assert_non_null(p);
    size_t n = strlen(h) + 1 + strlen(p);
    char *t = malloc(n + 64);
    assert_non_null(t);
    snprintf(t, n + 1, "%s.%s", h, p);
    unsigned char mac[32];
    assert_int_equal(mbedtls_md_hmac(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), key, key_len,
                                     (const unsigned char *)t, n, mac), 0);
    char *sig = b64url_encode(mac, sizeof mac);
    assert_non_null(sig);
    snprintf(t + n, 64, ".%s", sig);
    free(h);
    free(p);
    free(sig);
    return t;
}

static const char claims[] =
    "{\"sub\":\"alice\",\"tenant_id\":\"acme\",\"roles\":[\"user\"],\"exp\":1800000600}";

static jwt_err verify(const unsigned char *key, size_t key_len, const char *token)
{
    jwt_config c = config_for(key, key_len);
    principal who;
    return jwt_verify(&c, token, strlen(token), NOW, &who);
}

static void fill_key(unsigned char *k, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++) k[i] = (unsigned char)(seed * 31 + i * 7 + 1);
}

static void test_every_key_length_verifies_and_a_wrong_key_fails(void **state)
{
    (void)state;
    static const size_t lens[] = { 1, 32, 63, 64, 65, 131 };
    for (size_t i = 0; i < sizeof lens / sizeof *lens; i++) {
        unsigned char key[131], other[131];
        fill_key(key, lens[i], 1);
        fill_key(other, lens[i], 2);
        char *t = token_for(common_header, claims, key, lens[i]);
        assert_int_equal(verify(key, lens[i], t), JWT_OK);
        assert_int_equal(verify(other, lens[i], t), JWT_BAD_SIGNATURE);
        /* Back to the right key: the thread's state follows the key. */
        assert_int_equal(verify(key, lens[i], t), JWT_OK);
        /* A prefix of the key is another key. */
        if (lens[i] > 1) assert_int_equal(verify(key, lens[i] - 1, t), JWT_BAD_SIGNATURE);
        free(t);
    }
}

static void test_tampered_payload_fails_under_the_common_header(void **state)
{
    (void)state;
    unsigned char key[32];
    fill_key(key, sizeof key, 3);
    char *t = token_for(common_header, claims, key, sizeof key);
    char *dot = strchr(t, '.');
    assert_non_null(dot);
    dot[3] = dot[3] == 'A' ? 'B' : 'A';
    jwt_err rc = verify(key, sizeof key, t);
    assert_true(rc == JWT_BAD_SIGNATURE || rc == JWT_MALFORMED);
    free(t);
}

static void test_other_headers_take_the_full_path(void **state)
{
    (void)state;
    unsigned char key[40];
    fill_key(key, sizeof key, 4);
    char *t = token_for("{\"typ\":\"JWT\",\"alg\":\"HS256\"}", claims, key, sizeof key);
    assert_int_equal(verify(key, sizeof key, t), JWT_OK);
    free(t);
    t = token_for("{\"alg\":\"HS256\",\"typ\":\"JWT\",\"crit\":[\"x\"]}", claims, key, sizeof key);
    assert_int_equal(verify(key, sizeof key, t), JWT_MALFORMED);
    free(t);
}

static void test_common_header_is_still_held_to_the_pinned_algs(void **state)
{
    (void)state;
    unsigned char key[32];
    fill_key(key, sizeof key, 5);
    char *t = token_for(common_header, claims, key, sizeof key);
    jwt_config c = config_for(key, sizeof key);
    c.alg = "RS256,ES256";
    principal who;
    assert_int_equal(jwt_verify(&c, t, strlen(t), NOW, &who), JWT_BAD_ALG);
    c.alg = "HS256";
    assert_int_equal(jwt_verify(&c, t, strlen(t), NOW, &who), JWT_OK);
    assert_string_equal(who.sub, "alice");
    assert_string_equal(who.tenant_id, "acme");
    free(t);
}

/* Each thread checks its own key's tokens many times; the per-thread
 * states must never mix keys. */
typedef struct worker_arg {
    unsigned seed;
    int failures;
} worker_arg;

static void *verify_many(void *p)
{
    worker_arg *a = p;
    unsigned char key[48], other[48];
    fill_key(key, sizeof key, a->seed);
    fill_key(other, sizeof other, a->seed + 100);
    char *t = token_for(common_header, claims, key, sizeof key);
    for (int i = 0; i < 500; i++) {
        if (verify(key, sizeof key, t) != JWT_OK) a->failures++;
        if (i % 50 == 0 && verify(other, sizeof other, t) != JWT_BAD_SIGNATURE) a->failures++;
    }
    free(t);
    return NULL;
}

static void test_threads_keep_their_own_keys(void **state)
{
    (void)state;
    pthread_t th[4];
    worker_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (worker_arg){ .seed = 10u + (unsigned)i };
        assert_int_equal(pthread_create(&th[i], NULL, verify_many, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(args[i].failures, 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_key_length_verifies_and_a_wrong_key_fails),
        cmocka_unit_test(test_tampered_payload_fails_under_the_common_header),
        cmocka_unit_test(test_other_headers_take_the_full_path),
        cmocka_unit_test(test_common_header_is_still_held_to_the_pinned_algs),
        cmocka_unit_test(test_threads_keep_their_own_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
