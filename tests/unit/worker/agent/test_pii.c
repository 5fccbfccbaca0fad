/*
 * test_pii.c - the PII scrubber (worker/agent/pii.c): each kind replaced by its
 * token in the forms people write them, the Luhn check, boundaries (what
 * precedes and follows a match), the look-alikes that must survive
 * (timestamps, UUIDs, IPs, versions, plain and long numbers), UTF-8
 * around matches, and the streaming scrubber whose pieces add up to the
 * scrub of the whole text however the text is split.
 *
 * The locale table holds real-world formats from the US, the UK, Germany,
 * France, India, Japan and Brazil: phone numbers with country codes (+
 * and 00) and trunk prefixes, cards of several networks (Luhn-valid),
 * the national ids pii.h claims, and internationalised e-mail addresses
 * (RFC 6531), each also written with the separators people and editors
 * put in: no-break, narrow and ideographic spaces, zero-width characters,
 * non-breaking hyphens and other dashes, full-width digits. Each entry is
 * checked in several surroundings, and what is replaced must be exactly
 * the entry. The keep table holds ordinary text of the same locales that
 * must come out unchanged.
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
#include "text_fold.h"
#include "utf8.h"

/* Characters that are hard to see in a literal. */
#define NBSP    "\xC2\xA0"         /* U+00A0 no-break space */
#define NNBSP   "\xE2\x80\xAF"     /* U+202F narrow no-break space */
#define IDSP    "\xE3\x80\x80"     /* U+3000 ideographic space */
#define ZWSP    "\xE2\x80\x8B"     /* U+200B zero-width space */
#define ZWNJ    "\xE2\x80\x8C"     /* U+200C */
#define ZWJ     "\xE2\x80\x8D"     /* U+200D */
#define WJ      "\xE2\x81\xA0"     /* U+2060 word joiner */
#define BOM     "\xEF\xBB\xBF"     /* U+FEFF */
#define HYPHEN  "\xE2\x80\x90"     /* U+2010 */
#define NBHY    "\xE2\x80\x91"     /* U+2011 non-breaking hyphen */
#define FIGDASH "\xE2\x80\x92"     /* U+2012 */
#define ENDASH  "\xE2\x80\x93"     /* U+2013 */
#define EMDASH  "\xE2\x80\x94"     /* U+2014 */
#define HBAR    "\xE2\x80\x95"     /* U+2015 */
#define MINUS   "\xE2\x88\x92"     /* U+2212 */

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
    expect("QQ123456C", "[national_id]");                  /* the specimen in pii.h */
    expect("e.g. QQ 12 34 56 C.", "e.g. [national_id].");
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

/* ---- the locale table ------------------------------------------------------ */

typedef struct pii_entry {
    const char *locale;
    pii_kind kind;
    const char *text;
} pii_entry;

static const pii_entry entries[] = {
    /* United States */
    {"US", PII_PHONE, "+1 415 555 2671"},
    {"US", PII_PHONE, "+1 (415) 555-0132"},
    {"US", PII_PHONE, "(415) 555-2671"},
    {"US", PII_PHONE, "415-555-2671"},
    {"US", PII_PHONE, "415.555.2671"},
    {"US", PII_PHONE, "1-800-555-0199"},
    {"US", PII_PHONE, "001 415 555 0132"},
    {"US", PII_PHONE, "415" NBHY "555" NBHY "0132"},
    {"US", PII_PHONE, "(415)" NBSP "555" ENDASH "0132"},
    {"US", PII_CARD, "4111 1111 1111 1111"},
    {"US", PII_CARD, "4111.1111.1111.1111"},
    {"US", PII_CARD, "4111 - 1111 - 1111 - 1111"},
    {"US", PII_CARD, "4111" NBSP "1111" NBSP "1111" NBSP "1111"},
    {"US", PII_CARD, "4111" NNBSP "1111" NNBSP "1111" NNBSP "1111"},
    {"US", PII_CARD, "4111" ZWSP "1111" ZWSP "1111" ZWSP "1111"},
    {"US", PII_CARD, "4111" ZWNJ "1111" ZWJ "1111" WJ "1111"},
    {"US", PII_CARD, "4111" BOM "1111" BOM "1111" BOM "1111"},
    {"US", PII_CARD, "4111" NBHY "1111" NBHY "1111" NBHY "1111"},
    {"US", PII_CARD, "4012888888881881"},
    {"US", PII_CARD, "4222222222222"},                      /* Visa, 13 digits */
    {"US", PII_CARD, "3782 822463 10005"},                  /* Amex */
    {"US", PII_CARD, "6011-0009-9013-9424"},                /* Discover */
    {"US", PII_CARD, "3056 930902 5904"},                   /* Diners, 14 digits */
    {"US", PII_SSN, "123-45-6789"},
    {"US", PII_SSN, "123 45 6789"},
    {"US", PII_SSN, "123" NBHY "45" NBHY "6789"},
    {"US", PII_SSN, "123" NBSP "45" NBSP "6789"},
    {"US", PII_EMAIL, "jane.doe+billing@example.com"},
    /* United Kingdom */
    {"UK", PII_PHONE, "+44 20 7946 0958"},
    {"UK", PII_PHONE, "+44 (0)20 7946 0958"},
    {"UK", PII_PHONE, "+44" NBHY "20" NBHY "7946" NBHY "0958"},
    {"UK", PII_PHONE, "0044 20 7946 0958"},
    {"UK", PII_PHONE, "00 44 20 7946 0958"},
    {"UK", PII_PHONE, "020 7946 0958"},
    {"UK", PII_PHONE, "020" NBSP "7946" NBSP "0958"},
    {"UK", PII_PHONE, "(020) 7946 0958"},
    {"UK", PII_PHONE, "07700 900123"},
    {"UK", PII_PHONE, "+44 7700 900123"},
    {"UK", PII_PHONE, "0800 123 4567"},
    {"UK", PII_NATIONAL_ID, "QQ123456C"},
    {"UK", PII_NATIONAL_ID, "QQ 12 34 56 C"},
    {"UK", PII_NATIONAL_ID, "AB 12 34 56 C"},
    {"UK", PII_NATIONAL_ID, "QQ" NBSP "12" NBSP "34" NBSP "56" NBSP "C"},
    {"UK", PII_NATIONAL_ID, "\xEF\xBC\xB1\xEF\xBC\xB1\xEF\xBC\x91\xEF\xBC\x92\xEF\xBC\x93"
                            "\xEF\xBC\x94\xEF\xBC\x95\xEF\xBC\x96\xEF\xBC\xA3"}, /* full width */
    {"UK", PII_CARD, "5555 5555 5555 4444"},                /* Mastercard */
    {"UK", PII_CARD, "2223 0031 2200 3222"},                /* Mastercard 2-series */
    {"UK", PII_EMAIL, "j.smith@nhs.example.co.uk"},
    /* Germany */
    {"DE", PII_PHONE, "+49 30 901820"},
    {"DE", PII_PHONE, "+49 (0)30 12345678"},
    {"DE", PII_PHONE, "0049 30 12345678"},
    {"DE", PII_PHONE, "030 12345678"},
    {"DE", PII_PHONE, "(030) 1234567"},
    {"DE", PII_PHONE, "030/1234567"},
    {"DE", PII_PHONE, "030 / 123 456 78"},
    {"DE", PII_PHONE, "0171 1234567"},
    {"DE", PII_PHONE, "0171" NBHY "1234567"},
    {"DE", PII_PHONE, "+49 171 1234567"},
    {"DE", PII_CARD, "6759 6498 2643 8453"},                /* Maestro */
    {"DE", PII_CARD, "5018 1200 0000 0005"},                /* Maestro 50 */
    {"DE", PII_EMAIL, "D\xC3\xB6rte@S\xC3\xB6rensen.example.com"},
    {"DE", PII_EMAIL, "m\xC3\xBCller@b\xC3\xBC" "cher.de"},
    {"DE", PII_EMAIL, "j\xC3\xBCrgen.gro\xC3\x9F@example.de"},
    /* France */
    {"FR", PII_PHONE, "+33 1 23 45 67 89"},
    {"FR", PII_PHONE, "+33 (0)1 23 45 67 89"},
    {"FR", PII_PHONE, "0033 1 23 45 67 89"},
    {"FR", PII_PHONE, "01 23 45 67 89"},
    {"FR", PII_PHONE, "01.23.45.67.89"},
    {"FR", PII_PHONE, "06-12-34-56-78"},
    {"FR", PII_PHONE, "01" NNBSP "23" NNBSP "45" NNBSP "67" NNBSP "89"},
    {"FR", PII_PHONE, "06" NBSP "12" NBSP "34" NBSP "56" NBSP "78"},
    {"FR", PII_CARD, "4970 1012 3456 7893"},                /* CB / Visa */
    {"FR", PII_CARD, "5105 1051 0510 5100"},
    {"FR", PII_EMAIL, "fran\xC3\xA7ois.dupont@exemple.fr"},
    {"FR", PII_EMAIL, "jane@ex\xC3\xA4mple.com"},
    {"FR", PII_EMAIL, "J\xC3\xA4ne@example.com"},
    /* India */
    {"IN", PII_PHONE, "+91 98765 43210"},
    {"IN", PII_PHONE, "+91-98765-43210"},
    {"IN", PII_PHONE, "0091 98765 43210"},
    {"IN", PII_PHONE, "098765 43210"},
    {"IN", PII_PHONE, "011 2345 6789"},
    {"IN", PII_PHONE, "+91 11 2345 6789"},
    {"IN", PII_CARD, "6521 5012 3456 7893"},                /* RuPay 65 */
    {"IN", PII_CARD, "8112 3456 7890 1239"},                /* RuPay 81 */
    {"IN", PII_EMAIL, "\xE0\xA4\x85\xE0\xA4\x9C\xE0\xA4\xAF@\xE0\xA4\xA1\xE0\xA4\xBE\xE0\xA4\x9F"
                      "\xE0\xA4\xBE.\xE0\xA4\xAD\xE0\xA4\xBE\xE0\xA4\xB0\xE0\xA4\xA4"}, /* अजय@डाटा.भारत */
    {"IN", PII_EMAIL, "rahul.sharma@example.in"},
    /* Japan */
    {"JP", PII_PHONE, "+81 3-1234-5678"},
    {"JP", PII_PHONE, "+81 90-1234-5678"},
    {"JP", PII_PHONE, "0081 3 1234 5678"},
    {"JP", PII_PHONE, "03-1234-5678"},
    {"JP", PII_PHONE, "090-1234-5678"},
    {"JP", PII_PHONE, "0120-123-456"},
    {"JP", PII_PHONE, "03" MINUS "1234" MINUS "5678"},
    {"JP", PII_PHONE, "03\xE3\x83\xBC" "1234\xE3\x83\xBC" "5678"},  /* ー as the dash */
    {"JP", PII_PHONE, "\xEF\xBC\x90\xEF\xBC\x93\xEF\xBC\x8D\xEF\xBC\x91\xEF\xBC\x92\xEF\xBC\x93"
                      "\xEF\xBC\x94\xEF\xBC\x8D\xEF\xBC\x95\xEF\xBC\x96\xEF\xBC\x97\xEF\xBC\x98"},
    {"JP", PII_CARD, "3530 1113 3330 0000"},                /* JCB */
    {"JP", PII_CARD, "3566-0020-2036-0505"},
    {"JP", PII_CARD, "\xEF\xBC\x94\xEF\xBC\x91\xEF\xBC\x91\xEF\xBC\x91" IDSP
                     "\xEF\xBC\x91\xEF\xBC\x91\xEF\xBC\x91\xEF\xBC\x91" IDSP
                     "\xEF\xBC\x91\xEF\xBC\x91\xEF\xBC\x91\xEF\xBC\x91" IDSP
                     "\xEF\xBC\x91\xEF\xBC\x91\xEF\xBC\x91\xEF\xBC\x91"},  /* full width */
    {"JP", PII_EMAIL, "user@\xE4\xBE\x8B\xE3\x81\x88.\xE3\x83\x86\xE3\x82\xB9\xE3\x83\x88"},
    {"JP", PII_EMAIL, "\xEF\xBD\x8A\xEF\xBD\x81\xEF\xBD\x8E\xEF\xBD\x85\xEF\xBC\xA0\xEF\xBD\x85"
                      "\xEF\xBD\x98\xEF\xBC\x8E\xEF\xBD\x83\xEF\xBD\x8F"},     /* ｊａｎｅ＠ｅｘ．ｃｏ */
    /* Brazil */
    {"BR", PII_PHONE, "+55 11 91234-5678"},
    {"BR", PII_PHONE, "+55 (11) 91234-5678"},
    {"BR", PII_PHONE, "0055 11 91234 5678"},
    {"BR", PII_PHONE, "(11) 91234-5678"},
    {"BR", PII_PHONE, "(21) 2345-6789"},
    {"BR", PII_PHONE, "(011) 91234-5678"},
    {"BR", PII_PHONE, "011 91234-5678"},
    {"BR", PII_CARD, "6362 9700 0045 7013"},                /* Elo */
    {"BR", PII_CARD, "6062 8212 3456 7890"},                /* Hipercard */
    {"BR", PII_CARD, "5090 1234 5678 9015"},                /* Elo 509 */
    {"BR", PII_EMAIL, "jo\xC3\xA3o.silva@exemplo.com.br"},
    /* more cards and internationalised addresses */
    {"RU", PII_CARD, "2200 7012 3456 7896"},                /* Mir */
    {"CN", PII_CARD, "6250 9400 0000 0000 008"},            /* UnionPay, 19 digits */
    {"CN", PII_EMAIL, "\xE7\x94\xA8\xE6\x88\xB7@\xE4\xBE\x8B\xE5\xAD\x90.\xE5\xB9\xBF\xE5\x91\x8A"},
    {"UA", PII_EMAIL, "\xD0\xBA\xD0\xB2\xD1\x96\xD1\x82\xD0\xBE\xD1\x87\xD0\xBA\xD0\xB0@\xD0\xBF"
                      "\xD0\xBE\xD1\x88\xD1\x82\xD0\xB0.\xD1\x83\xD0\xBA\xD1\x80"},
    {"GR", PII_EMAIL, "\xCE\xB8\xCF\x83\xCE\xB5\xCF\x81@\xCE\xB5\xCF\x87\xCE\xB1\xCE\xBC\xCF\x80"
                      "\xCE\xBB\xCE\xB5.\xCF\x88\xCE\xBF\xCE\xBC"},
    {"RU", PII_EMAIL, "\xD0\xBA\xD0\xBE\xD0\xBB\xD1\x8F@\xD0\xBF\xD1\x80\xD0\xB8\xD0\xBC\xD0\xB5"
                      "\xD1\x80.\xD1\x80\xD1\x84"},
    {"RU", PII_EMAIL, "medved@xn--80aswg.xn--p1ai"},
    {"--", PII_EMAIL, "jane" ZWSP "@example.com"},
};

/* True when text has a letter of a script written without spaces: such an
 * entry glues to the CJK surroundings, as it would in real text. */
static bool has_dense(const char *text)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t len = strlen(text);
    for (size_t i = 0, n; i < len; i += n) {
        uint32_t cp;
        n = text_fold_decode(s + i, len - i, &cp);
        if (text_fold_class(cp) == TF_DENSE)
            return true;
    }
    return false;
}

static int count_kind(const pii_counts *c, pii_kind kind)
{
    switch (kind) {
    case PII_EMAIL: return c->email;
    case PII_PHONE: return c->phone;
    case PII_SSN: return c->ssn;
    case PII_NATIONAL_ID: return c->national_id;
    case PII_CARD: return c->card;
    }
    return -1;
}

/* Scrubs before + entry + after and expects before + token + after: the
 * entry, and only it, replaced. */
static void expect_entry(const pii_entry *e, const char *before, const char *after)
{
    char in[512], want[512];
    pii_counts c = {0};
    snprintf(in, sizeof(in), "%s%s%s", before, e->text, after);
    snprintf(want, sizeof(want), "%s%s%s", before, pii_token(e->kind), after);
    char *out = scrub(in, &c);
    if (strcmp(out, want) != 0 || pii_total(&c) != 1 || count_kind(&c, e->kind) != 1) {
        char msg[1200];
        snprintf(msg, sizeof(msg), "%s: \"%s\" -> \"%s\", expected \"%s\"", e->locale, in, out,
                 want);
        free(out);
        fail_msg("%s", msg);
    }
    free(out);
}

static void test_locale_table(void **state)
{
    (void)state;
    static const char *const around[][2] = {
        {"", ""},
        {"x ", " y"},
        {"Kontakt: ", "."},
        {"(", ")"},
        {"\xC2\xAB", "\xC2\xBB"},                           /* «...» */
        {"see" NBSP, "," NBSP "thanks"},
    };
    for (size_t i = 0; i < sizeof(entries) / sizeof(entries[0]); i++) {
        for (size_t k = 0; k < sizeof(around) / sizeof(around[0]); k++)
            expect_entry(&entries[i], around[k][0], around[k][1]);
        if (!has_dense(entries[i].text))                    /* 電話...です */
            expect_entry(&entries[i], "\xE9\x9B\xBB\xE8\xA9\xB1",
                         "\xE3\x81\xA7\xE3\x81\x99\xE3\x80\x82");
    }
}

/* What pii_find reports for text: one match of kind over bytes [start, end). */
static int first_match(void *user, const pii_match *m)
{
    *(pii_match *)user = *m;
    return 1;
}

static void test_span_is_the_original(void **state)
{
    (void)state;
    /* Invisible characters and spaces around a match stay; those inside go. */
    const char *in = "Card:" NBSP ZWSP "4111 1111" ZWSP " 1111 1111" ZWSP ". Done";
    pii_match m;
    assert_int_equal(pii_find(in, strlen(in), first_match, &m), 1);
    assert_int_equal(m.kind, PII_CARD);
    assert_int_equal(m.start, strlen("Card:" NBSP ZWSP));
    assert_int_equal(m.end, strlen("Card:" NBSP ZWSP "4111 1111" ZWSP " 1111 1111"));
    expect(in, "Card:" NBSP ZWSP "[card]" ZWSP ". Done");
    /* Between groups, it joins them: "41111111 1111 1111" is no card. */
    keep("4111" ZWSP "1111 1111 1111");

    /* Full-width characters are replaced whole. */
    expect("\xEF\xBC\x88\xEF\xBC\x90\xEF\xBC\x93\xEF\xBC\x89" "1234-5678\xE3\x80\x82",
           "[phone]\xE3\x80\x82");                       /* （03）1234-5678。 */
    expect("Tel\xEF\xBC\x9A\xEF\xBC\x8B\xEF\xBC\x98\xEF\xBC\x91 3 1234 5678",
           "Tel\xEF\xBC\x9A[phone]");                    /* Tel：＋81 ... */
    /* "Jäne@example.com" is one address, not "Jä" and one. */
    expect("From: J\xC3\xA4ne@example.com", "From: [email]");
    expect("\xE3\x83\xA1\xE3\x83\xBC\xE3\x83\xAB\xE3\x81\xAF" "jane@example.com"
           "\xE3\x81\xA7\xE3\x81\x99",
           "\xE3\x83\xA1\xE3\x83\xBC\xE3\x83\xAB\xE3\x81\xAF[email]\xE3\x81\xA7\xE3\x81\x99");
}

static void test_separator_variants(void **state)
{
    (void)state;
    static const char *const dashes[] = {"-", HYPHEN, NBHY, FIGDASH, ENDASH, EMDASH, HBAR,
                                         MINUS, "\xEF\xB9\xA3", "\xEF\xBC\x8D"};
    static const char *const spaces[] = {" ", NBSP, NNBSP, "\xE2\x80\x87", "\xE2\x80\x89",
                                         IDSP};
    char in[128];
    for (size_t i = 0; i < sizeof(dashes) / sizeof(dashes[0]); i++) {
        const char *d = dashes[i];
        snprintf(in, sizeof(in), "tel 415%s555%s2671.", d, d);
        expect(in, "tel [phone].");
        snprintf(in, sizeof(in), "tel 03%s1234%s5678.", d, d);
        expect(in, "tel [phone].");
        snprintf(in, sizeof(in), "card 4111%s1111%s1111%s1111.", d, d, d);
        expect(in, "card [card].");
        snprintf(in, sizeof(in), "card 4111 %s 1111 %s 1111 %s 1111.", d, d, d);
        expect(in, "card [card].");
        snprintf(in, sizeof(in), "ssn 123%s45%s6789.", d, d);
        expect(in, "ssn [ssn].");
    }
    for (size_t i = 0; i < sizeof(spaces) / sizeof(spaces[0]); i++) {
        const char *sp = spaces[i];
        snprintf(in, sizeof(in), "tel +44%s20%s7946%s0958.", sp, sp, sp);
        expect(in, "tel [phone].");
        snprintf(in, sizeof(in), "tel 0044%s20%s7946%s0958.", sp, sp, sp);
        expect(in, "tel [phone].");
        snprintf(in, sizeof(in), "card 5555%s5555%s5555%s4444.", sp, sp, sp);
        expect(in, "card [card].");
        snprintf(in, sizeof(in), "nino QQ%s12%s34%s56%sC.", sp, sp, sp, sp);
        expect(in, "nino [national_id].");
    }
}

/* Ordinary text of the same locales: dates, times, versions, prices,
 * postal codes, order numbers that fail Luhn, ISBNs, UUIDs, timestamps. */
static void test_ordinary_text_kept(void **state)
{
    (void)state;
    static const char *const texts[] = {
        /* US */
        "Due 03/15/2024 at 2:30 PM; total $1,299.99 (tax 8.25%).",
        "Ship to ZIP 94105-1234, order 4000-1234-1234-1235.",
        "Order 4111 1111 1111 1112 and 5500 0000 0000 0005 failed Luhn.",
        "Ref 6011-1111-1111-1118, SKU 123-4567-890, call 555-0199.",
        "v1.24.0 shipped; 1,000,000 rows; build 20240315.1; 2019" ENDASH "2024.",
        /* UK */
        "Booked 15/03/2024, 12:30" ENDASH "14:00, \xC2\xA3" "1,299.00, SW1A 1AA.",
        "ISBN 0-306-40615-2 and ISBN 978-0-306-40615-7, flight BA 0117.",
        /* DE */
        "Am 15.03.2024 um 14:30 Uhr: 1.299,00 \xE2\x82\xAC, 10115 Berlin.",
        "Bestellnummer 0123 4567 8901 2345, Version 2.7.18-1, ISBN 978-3-16-148410-0.",
        /* FR */
        "Le 15/03/2024 : 1" NNBSP "299,00" NBSP "\xE2\x82\xAC, 75008 Paris, 10" NNBSP "000"
        NNBSP "000 habitants, n\xC2\xB0 2024-0042.",
        /* IN */
        "\xE2\x82\xB9" "1,23,456.78 on 15-03-2024, PIN 110001, 1,00,000 rupees.",
        /* JP */
        "2024\xE5\xB9\xB4" "3\xE6\x9C\x88" "15\xE6\x97\xA5 14\xE6\x99\x82" "30\xE5\x88\x86\xE3\x80\x81"
        "\xC2\xA5" "12,800\xE3\x80\x81\xE3\x80\x92" "100-0001\xE3\x80\x81" "2024/03/15",
        "\xEF\xBC\x91\xEF\xBC\x92\xEF\xBC\x8C\xEF\xBC\x98\xEF\xBC\x90\xEF\xBC\x90\xE5\x86\x86",
        /* BR */
        "R$ 1.234,56 em 15/03/2024, CEP 01310-100, v3.2.1.",
        /* anywhere */
        "id 123e4567-e89b-12d3-a456-426614174000 at 2026-11-21T10:30:00+09:00",
        "ts 1763721000123, 1700000000, 2024-03-15 14:30:00.123456",
        "from 192.168.100.200:8080 and 2001:db8::1, pp. 1203" ENDASH "1210",
        "Order 0012 3456 7890 and 0083 1234 5678 (no such country codes).",
        "ISBN 978 4 06 519765 7, 9780306406157, 05.12.2024 09:30, 01.02.2024",
        "3 " ENDASH " 1 = 2, 48.8566, 2.3522, 0.5 ms, 00 00 00 00 00",
        "bytes 00 01 02 03 04 05, 7 01 23 45 67 89, 00 00 44 20 79 46 09 58",
    };
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
        keep(texts[i]);
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

static void test_stream_unicode(void **state)
{
    (void)state;
    static const char text[] =
        "Tel" NBSP "+44" NBSP "20" NBSP "7946" NBSP "0958, card 4111 - 1111 - 1111 - 1111, "
        "NINO QQ" NBSP "12" NBSP "34" NBSP "56" NBSP "C. "
        "\xE9\x9B\xBB\xE8\xA9\xB1\xE7\x95\xAA\xE5\x8F\xB7\xE3\x81\xAF" "03-1234-5678"
        "\xE3\x81\xA7\xE3\x81\x99\xE3\x80\x82" "J\xC3\xA4ne@ex\xC3\xA4mple.com, "
        "030 / 123 456 78, " ZWSP "4111" ZWSP "1111" ZWSP "1111" ZWSP "1111 or "
        "\xEF\xBC\x90\xEF\xBC\x93\xEF\xBC\x8D\xEF\xBC\x91\xEF\xBC\x92\xEF\xBC\x93\xEF\xBC\x94"
        "\xEF\xBC\x8D\xEF\xBC\x95\xEF\xBC\x96\xEF\xBC\x97\xEF\xBC\x98 end\n";
    static const char *const secrets[] = {"7946", "1111", "34" NBSP "56", "1234-5678", "J\xC3\xA4ne",
                                          "123 456", "\xEF\xBC\x95\xEF\xBC\x96", NULL};
    for (size_t step = 1; step <= 40; step++)
        stream_check(text, step, secrets);
}

/* Japanese prose has no spaces: the tail held back ends at the last "、"
 * or "。", so text keeps flowing and a number after it is still whole. */
static void test_stream_dense_script(void **state)
{
    (void)state;
    strbuf text = {0};
    for (int i = 0; i < 40; i++)    /* 40 x 27 bytes, no ASCII space */
        strbuf_add(&text, "\xE6\x9D\xB1\xE4\xBA\xAC\xE3\x81\xAE\xE5\xA4\xA9\xE6\xB0\x97\xE3\x81"
                          "\xAF\xE6\x99\xB4\xE3\x82\x8C\xE3\x81\xA7\xE3\x81\x99\xE3\x80\x82");
    strbuf_add(&text, "\xE9\x9B\xBB\xE8\xA9\xB1\xE3\x81\xAF" "090-1234-5678"
                      "\xE3\x81\xA7\xE3\x81\x99\xE3\x80\x82");
    static const char *const secrets[] = {"1234", NULL};
    for (size_t step = 1; step <= 12; step++)
        stream_check(text.s, step, secrets);

    pii_stream ps = {0};
    strbuf out = {0};
    for (size_t i = 0; i < text.len; i += 3) {
        assert_int_equal(pii_stream_feed(&ps, text.s + i, 3, &out), 0);
        assert_true(ps.held.len <= 40);   /* never the whole paragraph */
    }
    assert_int_equal(pii_stream_finish(&ps, &out), 0);
    assert_non_null(strstr(out.s, "[phone]"));
    assert_int_equal(ps.counts.phone, 1);
    strbuf_free(&out);
    pii_stream_free(&ps);
    strbuf_free(&text);
}

/* A NINO after an opening bracket or quote: "(QQ" waits for what follows
 * like "QQ" does, and the number never goes out in pieces. */
static void test_stream_nino_in_brackets(void **state)
{
    (void)state;
    static const char text[] = "NINO (AB 12 34 56 C), \"QQ 12 34 56 D\" and [QQ123456A].";
    static const char *const secrets[] = {"AB", "34 56", "QQ", NULL};
    for (size_t step = 1; step <= 12; step++)
        stream_check(text, step, secrets);
    expect(text, "NINO ([national_id]), \"[national_id]\" and [[national_id]].");
}

/* A character split between two pieces is never cut in two. */
static void test_stream_split_character(void **state)
{
    (void)state;
    pii_stream ps = {0};
    strbuf out = {0};
    const char *text = "a \xE2\x82\xAC\xE2\x82\xAC b";        /* "a €€ b" */
    for (size_t i = 0; text[i]; i++) {
        assert_int_equal(pii_stream_feed(&ps, text + i, 1, &out), 0);
        for (size_t k = 0; k < out.len;) {
            size_t n = utf8_sequence_len((const unsigned char *)out.s + k, out.len - k);
            assert_true(n > 0);
            k += n;
        }
    }
    assert_int_equal(pii_stream_finish(&ps, &out), 0);
    assert_string_equal(out.s, text);
    strbuf_free(&out);
    pii_stream_free(&ps);
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
        cmocka_unit_test(test_locale_table),
        cmocka_unit_test(test_span_is_the_original),
        cmocka_unit_test(test_separator_variants),
        cmocka_unit_test(test_ordinary_text_kept),
        cmocka_unit_test(test_utf8_and_mixed),
        cmocka_unit_test(test_counts_and_null),
        cmocka_unit_test(test_stream_adds_up),
        cmocka_unit_test(test_stream_unicode),
        cmocka_unit_test(test_stream_dense_script),
        cmocka_unit_test(test_stream_split_character),
        cmocka_unit_test(test_stream_nino_in_brackets),
        cmocka_unit_test(test_stream_holds_only_the_tail),
        cmocka_unit_test(test_stream_lets_go_of_long_tails),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
