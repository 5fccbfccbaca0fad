/*
 * test_webhook_sign.c - Standard Webhooks signatures: the specification's
 * own example, the secret with and without its prefix, and bad secrets.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "webhook_sign.h"

/* The example of the Standard Webhooks reference libraries' tests. */
static const char SECRET[] = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
static const char MSG_ID[] = "msg_p5jXN8AQM9LWM0D4loKWxJek";
static const char BODY[] = "{\"test\": 2432232314}";
static const char EXPECTED[] = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

static void test_reference_example(void **state)
{
    (void)state;
    char sig[WEBHOOK_SIGNATURE_MAX];
    assert_int_equal(webhook_sign(SECRET, MSG_ID, 1614265330, BODY, strlen(BODY), sig), 0);
    assert_string_equal(sig, EXPECTED);
    /* The prefix is optional. */
    assert_int_equal(webhook_sign(SECRET + 6, MSG_ID, 1614265330, BODY, strlen(BODY), sig), 0);
    assert_string_equal(sig, EXPECTED);
}

static void test_every_part_is_signed(void **state)
{
    (void)state;
    char sig[WEBHOOK_SIGNATURE_MAX];
    assert_int_equal(webhook_sign(SECRET, MSG_ID, 1614265331, BODY, strlen(BODY), sig), 0);
    assert_string_not_equal(sig, EXPECTED);
    assert_int_equal(webhook_sign(SECRET, "msg_other", 1614265330, BODY, strlen(BODY), sig), 0);
    assert_string_not_equal(sig, EXPECTED);
    assert_int_equal(webhook_sign(SECRET, MSG_ID, 1614265330, BODY, strlen(BODY) - 1, sig), 0);
    assert_string_not_equal(sig, EXPECTED);
}

static void test_bad_secret(void **state)
{
    (void)state;
    char sig[WEBHOOK_SIGNATURE_MAX];
    assert_int_equal(webhook_sign("whsec_!!!not-base64", MSG_ID, 1, BODY, strlen(BODY), sig),
                     -1);
    assert_string_equal(sig, "");
    assert_int_equal(webhook_sign("whsec_", MSG_ID, 1, BODY, strlen(BODY), sig), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_example),
        cmocka_unit_test(test_every_part_is_signed),
        cmocka_unit_test(test_bad_secret),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
