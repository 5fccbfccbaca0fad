/*
 * test_keys_idempotency.c - unit tests for the Idempotency-Key Redis key:
 * the tenant and the client's key are checked, and the client's key is
 * hashed, so no outside string can reshape or lengthen a key.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "keys.h"

static void test_key_shape(void **state)
{
    (void)state;
    char out[KEY_MAX];
    /* SHA-256("abc") */
    assert_non_null(key_idempotency(out, "acme-1", "abc"));
    assert_string_equal(out, "idempotency:acme-1:"
                        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    char longest[256];
    memset(longest, '~', 255);
    longest[255] = '\0';
    char tenant[65];
    memset(tenant, 'T', 64);
    tenant[64] = '\0';
    assert_non_null(key_idempotency(out, tenant, longest));
    assert_int_equal(strlen(out), strlen("idempotency:") + 64 + 1 + 64);
    assert_non_null(key_idempotency(out, "t", "with spaces and :colons: {}"));
}

static void test_bad_keys_refused(void **state)
{
    (void)state;
    char out[KEY_MAX];
    char too_long[257];
    memset(too_long, 'k', 256);
    too_long[256] = '\0';
    const char *bad[] = { "", too_long, "tab\there", "nl\n", "del\x7f", "utf8-\xc3\xa9" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        strcpy(out, "junk");
        assert_false(key_idempotency_valid(bad[i]));
        assert_null(key_idempotency(out, "acme", bad[i]));
        assert_string_equal(out, "");
    }
    assert_false(key_idempotency_valid(NULL));
    assert_true(key_idempotency_valid(" "));
}

static void test_bad_tenants_refused(void **state)
{
    (void)state;
    char out[KEY_MAX];
    char tenant[66];
    memset(tenant, 't', 65);
    tenant[65] = '\0';
    const char *bad[] = { "", tenant, "a:b", "a b", "a/b", NULL };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_null(key_idempotency(out, bad[i], "k"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_shape),
        cmocka_unit_test(test_bad_keys_refused),
        cmocka_unit_test(test_bad_tenants_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
