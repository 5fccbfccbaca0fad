/*
 * test_pii.c - the PII scrubber (worker/agent/pii.c): each kind replaced by its
 * token in the forms people write them, the Luhn check, boundaries (what
 * precedes and follows a match), the look-alikes that must survive
 * (timestamps, UUIDs, IPs, versions, plain and long numbers), UTF-8
 * around matches, and the streaming scrubber whose pieces add up to the
 * scrub of the whole text however the text is split.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "pii.h"

static char *scrub(const char *in, pii_counts *c)
{
    size_t n = 0;
    char *out = pii_scrub(in, strlen(in), &n, c);
    assert_non_null(out);
    assert_int_equal(strlen(out), n);
    return out;
}

/* Asserts in scrubs to want, naming the input when it does not. */
static void expect(const char *in, const char *want)
{
    char *out = scrub(in, NULL);
    if (strcmp(out, want) != 0) {
        char msg[1024];
        snprintf(msg, sizeof(msg), "\"%s\" -> \"%s\", expected \"%s\"", in, out, want);
        free(out);
        fail_msg("%s", msg);
    }
    free(out);
}

static void keep(const char *in)
{
    expect(in, in);
}

static void test_luhn(void **state)
{
    (void)state;
    assert_true(pii_luhn_valid("4111111111111111", 16));
    assert_true(pii_luhn_valid("5555555555554444", 16));
    assert_true(pii_luhn_valid("378282246310005", 15));
    assert_true(pii_luhn_valid("6011111111111117", 16));
    assert_true(pii_luhn_valid("79927398713", 11));       /* the textbook example */
    assert_true(pii_luhn_valid("0", 1));
    assert_false(pii_luhn_valid("4111111111111112", 16));
    assert_false(pii_luhn_valid("79927398710", 11));
    assert_false(pii_luhn_valid("4111-1111", 9));         /* not digits */
    assert_false(pii_luhn_valid("", 0));
}

static void test_email(void **state)
{
    (void)state;
    expect("write to jane.doe@example.com today", "write to [email] today");
    expect("jane.doe+tag@mail.example.co.uk", "[email]");
    expect("<ops_team-1@corp.example.org>", "<[email]>");
    expect("mailto:a@b.io.", "mailto:[email].");           /* full stop kept */
    expect("(x@y.dev), z@w.net", "([email]), [email]");
    expect("UPPER@EXAMPLE.COM", "[email]");
    expect("123@numbers.example", "[email]");
    keep("user@localhost");                                 /* no dot in the domain */
    keep("a@b.c");                                          /* one-letter TLD */
    keep("@example.com");
    keep("me@");
    keep("foo@-bad-.com");
    keep("foo@bar..com");
    keep("x@1.2 and y@host.123");                           /* numeric TLD */
    expect("git@github.com:owner/repo.git", "[email]:owner/repo.git");
    keep("the @ sign and .com");
}

static void test_card(void **state)
{
    (void)state;
    expect("card 4111111111111111 ok", "card [card] ok");
    expect("4111 1111 1111 1111", "[card]");
    expect("4111-1111-1111-1111.", "[card].");
    expect("amex 3782 822463 10005", "amex [card]");
    expect("5555555555554444, 6011111111111117", "[card], [card]");
    expect("2223003122003222", "[card]");                   /* Mastercard 2-series */
    keep("4111111111111112");                               /* Luhn fails */
    keep("4111 1111 1111 1112");
    keep("1763721000123");                                  /* epoch ms: no network */
    keep("9111111111111111");                               /* 9 is no network */
    keep("41111111111111111111");                           /* 20 digits: longer number */
    keep("4111 1111 1111 1111 2222");                       /* a longer run */
    keep("4111-1111 1111-1111");                            /* mixed separators */
    keep("41 11 11 11 11 11 11 11");                        /* not card grouping */
    keep("x4111111111111111");                              /* glued to a word */
    keep("4111111111111111x");
    keep("id-4111111111111111");
    keep("4111111111111111-7");
    keep("v4111111111111111.2");
}

static void test_ssn(void **state)
{
    (void)state;
    expect("SSN 123-45-6789.", "SSN [ssn].");
    expect("ssn: 123 45 6789", "ssn: [ssn]");
    keep("000-12-3456");                                    /* never issued */
    keep("666-12-3456");
    keep("900-12-3456");
    keep("123-00-6789");
    keep("123-45-0000");
    keep("123-45 6789");                                    /* mixed separators */
    keep("1234-45-6789");
    keep("123-45-67890");
    keep("123 45 6789 10");                                 /* a list of numbers */
}

static void test_national_id(void **state)
{
    (void)state;
    expect("NINO AB123456C", "NINO [national_id]");
    expect("nino: AB 12 34 56 C.", "nino: [national_id].");
    keep("QQ123456E");                                      /* suffix A-D only */
    keep("BG123456A");                                      /* excluded prefix */
    keep("DA123456A");                                      /* D never first */
    keep("XAB123456C");
    keep("ab123456c");                                      /* upper case only */
}

static void test_phone(void **state)
{
    (void)state;
    expect("call (415) 555-2671 now", "call [phone] now");
    expect("415-555-2671", "[phone]");
    expect("415.555.2671", "[phone]");
    expect("415 555 2671", "[phone]");
    expect("1-800-555-0199", "[phone]");
    expect("(415)555-2671", "[phone]");
    expect("+1 415 555 2671", "[phone]");
    expect("+14155552671", "[phone]");
    expect("+44 20 7946 0958", "[phone]");
    expect("+44 (0)20 7946 0958", "[phone]");
    expect("+44(0)20 7946 0958", "[phone]");
    expect("+1 415 555 2671 (or not)", "[phone] (or not)");
    expect("tel:+33-1-23-45-67-89;", "tel:[phone];");
    keep("415-555.2671");                                   /* mixed separators */
    keep("4155552671");                                     /* bare digits */
    keep("+123");                                           /* too short */
    keep("+1234567890123456");                              /* too long */
    keep("a+14155552671");
    keep("415-555-26710");
    keep("415 555 2671 22");
}

static void test_lookalikes_survive(void **state)
{
    (void)state;
    keep("2026-11-21T10:30:00.123Z");
    keep("at 2026-11-21 10:30:00 UTC");
    keep("10:30:00");
    keep("job 0192f3a4-7b1c-7d2e-9f00-123456789abc failed");
    keep("12345678-1234-5678-1234-567812345678");
    keep("127.0.0.1 and 192.168.100.200:8080");
    keep("version 1.2.3, build 20261121");
    keep("count 1234567890123456789012");
    keep("epoch_ms 1763721000123, pid 4242, port 8080");
    keep("range 100-200, ratio 3/4, 1,000,000 rows");
    keep("ISBN 978-3-16-148410-0");
    keep("phone numbers look like 555-0199 sometimes");
    keep("");
}

static void test_utf8_and_mixed(void **state)
{
    (void)state;
    expect("caf\xC3\xA9 jane@example.com \xE2\x9C\x93", "caf\xC3\xA9 [email] \xE2\x9C\x93");
    expect("\xFF\xFE 4111111111111111 \x80", "\xFF\xFE [card] \x80");  /* bytes kept */
    expect("mail a@b.co or call +1 415 555 2671; card 4111 1111 1111 1111, "
           "ssn 123-45-6789",
           "mail [email] or call [phone]; card [card], ssn [ssn]");
}

static void test_counts_and_null(void **state)
{
    (void)state;
    pii_counts c = {0};
    char *out = scrub("a@b.co x@y.org 4111111111111111 (415) 555-2671 123-45-6789 "
                      "AB123456C", &c);
    assert_int_equal(c.email, 2);
    assert_int_equal(c.card, 1);
    assert_int_equal(c.phone, 1);
    assert_int_equal(c.ssn, 1);
    assert_int_equal(c.national_id, 1);
    assert_int_equal(pii_total(&c), 6);
    free(out);

    /* Counts add up over calls; NULL text gives "". */
    out = pii_scrub(NULL, 5, NULL, &c);
    assert_non_null(out);
    assert_string_equal(out, "");
    free(out);
    assert_int_equal(pii_total(&c), 6);

    /* Only len bytes are read. */
    out = pii_scrub("a@b.co trailing", 6, NULL, NULL);
    assert_string_equal(out, "[email]");
    free(out);
}

/* Streams text split at every step-th byte (and the rest) and checks the
 * pieces add up to the whole scrub, and that no piece ever carried a
 * fragment of a secret. */
static void stream_check(const char *text, size_t step, const char *const *secrets)
{
    pii_stream ps = {0};
    strbuf all = {0};
    size_t len = strlen(text);

    for (size_t i = 0; i < len; i += step) {
        strbuf piece = {0};
        size_t n = len - i < step ? len - i : step;
        assert_int_equal(pii_stream_feed(&ps, text + i, n, &piece), 0);
        if (piece.len > 0) {
            strbuf_addn(&all, piece.s, piece.len);
            for (const char *const *s = secrets; s && *s; s++)
                if (strstr(all.s, *s))
                    fail_msg("step %zu: \"%s\" leaked in \"%s\"", step, *s, all.s);
        }
        strbuf_free(&piece);
    }
    assert_int_equal(pii_stream_finish(&ps, &all), 0);
    char *whole = scrub(text, NULL);
    if (strcmp(all.s ? all.s : "", whole) != 0)
        fail_msg("step %zu: streamed \"%s\" != whole \"%s\"", step, all.s ? all.s : "",
                 whole);
    free(whole);
    strbuf_free(&all);
    pii_stream_free(&ps);
}

static void test_stream_adds_up(void **state)
{
    (void)state;
    static const char text[] =
        "Hello! Write to jane.doe@example.com or call +1 415 555 2671 (or (415) 555-2671). "
        "Card 4111 1111 1111 1111, SSN 123-45-6789, NINO AB 12 34 56 C. "
        "At 2026-11-21T10:30:00Z job 0192f3a4-7b1c-7d2e-9f00-123456789abc ran 42 steps.\n";
    static const char *const secrets[] = {"jane.doe", "example.com", "555 2671", "555-2671",
                                          "4111 1111", "45-6789", "34 56", NULL};
    for (size_t step = 1; step <= 40; step++)
        stream_check(text, step, secrets);
    stream_check(text, sizeof(text), secrets);
}

static void test_stream_holds_only_the_tail(void **state)
{
    (void)state;
    pii_stream ps = {0};
    strbuf out = {0};

    /* The last word waits for what follows it. */
    assert_int_equal(pii_stream_feed(&ps, "Hello wor", 9, &out), 0);
    assert_string_equal(out.s, "Hello ");
    assert_int_equal(pii_stream_feed(&ps, "ld, mail me at jane", 19, &out), 0);
    assert_string_equal(out.s, "Hello world, mail me at ");
    assert_int_equal(pii_stream_feed(&ps, "@example.com thanks", 19, &out), 0);
    assert_string_equal(out.s, "Hello world, mail me at [email] ");
    /* Numbers may go on into the next word: held together. */
    assert_int_equal(pii_stream_feed(&ps, " call 415 555 ", 14, &out), 0);
    assert_string_equal(out.s, "Hello world, mail me at [email] thanks call ");
    assert_int_equal(pii_stream_feed(&ps, "2671.", 5, &out), 0);
    assert_int_equal(pii_stream_finish(&ps, &out), 0);
    assert_string_equal(out.s, "Hello world, mail me at [email] thanks call [phone].");
    assert_int_equal(ps.counts.email, 1);
    assert_int_equal(ps.counts.phone, 1);
    strbuf_free(&out);
    pii_stream_free(&ps);
}

static void test_stream_lets_go_of_long_tails(void **state)
{
    (void)state;
    pii_stream ps = {0};
    strbuf out = {0};
    char big[PII_STREAM_HOLD_MAX + 100];

    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(pii_stream_feed(&ps, big, strlen(big), &out), 0);
    assert_int_equal(out.len, strlen(big));     /* one word too long to hold */
    assert_int_equal(ps.held.len, 0);
    assert_int_equal(pii_stream_finish(&ps, &out), 0);
    strbuf_free(&out);
    pii_stream_free(&ps);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_luhn),
        cmocka_unit_test(test_email),
        cmocka_unit_test(test_card),
        cmocka_unit_test(test_ssn),
        cmocka_unit_test(test_national_id),
        cmocka_unit_test(test_phone),
        cmocka_unit_test(test_lookalikes_survive),
        cmocka_unit_test(test_utf8_and_mixed),
        cmocka_unit_test(test_counts_and_null),
        cmocka_unit_test(test_stream_adds_up),
        cmocka_unit_test(test_stream_holds_only_the_tail),
        cmocka_unit_test(test_stream_lets_go_of_long_tails),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
