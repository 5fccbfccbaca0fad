/*
 * test_idempotency_key.c - the Idempotency-Key grammar (idem_key_read):
 * the field value without the white space around it, then 1 to 255
 * visible ASCII characters. An empty or blank header is malformed, never
 * a key of its own that every such client would share.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "admit.h"

static void test_keys_taken_as_sent(void **state)
{
    (void)state;
    char key[IDEM_KEY_MAX + 1];
    static const char *const good[] = {
        "a", "order-42", "8e03978e-40d5-43e8-bc93-6894a57f9324",
        "!#$%&'()*+,-./0123456789:;<=>?@AZ[\\]^_`az{|}~",
        "\"abc\"",     /* the draft's sf-string form: its quotes are part of the key */
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        assert_true(idem_key_read(good[i], key));
        assert_string_equal(key, good[i]);
    }
}

static void test_optional_white_space_is_not_part_of_the_key(void **state)
{
    (void)state;
    char key[IDEM_KEY_MAX + 1];
    assert_true(idem_key_read("  abc", key));
    assert_string_equal(key, "abc");
    assert_true(idem_key_read("abc \t", key));
    assert_string_equal(key, "abc");
    assert_true(idem_key_read("\t abc \t", key));
    assert_string_equal(key, "abc");
}

static void test_empty_and_malformed_keys_are_refused(void **state)
{
    (void)state;
    char key[IDEM_KEY_MAX + 1];
    static const char *const bad[] = {
        "", " ", "  ", "\t", " \t ", "a b", "a\tb", "a\x01", "\x7f", "caf\xc3\xa9",
        "\xff", "a\r\nb", "a\nb",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (idem_key_read(bad[i], key)) fail_msg("accepted key #%zu", i);
    assert_false(idem_key_read(NULL, key));
}

static void test_length_limits(void **state)
{
    (void)state;
    char key[IDEM_KEY_MAX + 1], value[IDEM_KEY_MAX + 8];
    memset(value, 'k', sizeof value);
    value[IDEM_KEY_MAX] = '\0';
    assert_true(idem_key_read(value, key));
    assert_int_equal(strlen(key), IDEM_KEY_MAX);
    value[IDEM_KEY_MAX] = 'k';
    value[IDEM_KEY_MAX + 1] = '\0';
    assert_false(idem_key_read(value, key));
    /* White space around does not count toward the limit. */
    value[0] = ' ';
    value[IDEM_KEY_MAX + 1] = ' ';
    value[IDEM_KEY_MAX + 2] = '\0';
    assert_true(idem_key_read(value, key));
    assert_int_equal(strlen(key), IDEM_KEY_MAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys_taken_as_sent),
        cmocka_unit_test(test_optional_white_space_is_not_part_of_the_key),
        cmocka_unit_test(test_empty_and_malformed_keys_are_refused),
        cmocka_unit_test(test_length_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
