/*
 * test_text_fold.c - the folded view the PII scrubber and the output guard
 * match on (worker/agent/text_fold.c): what each kind of character folds
 * to with each flag, the map from folded bytes back to whole original
 * characters, dropped characters seen as gaps, invalid UTF-8, idempotence,
 * and that plain ASCII is not copied at all.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "text_fold.h"
#include "utf8.h"

#define ALL (TF_CASE | TF_SPACE | TF_CONFUSABLE)

/* Asserts that in folds to want with flags, naming the input when not. */
static void expect_fold(const char *in, unsigned flags, const char *want)
{
    text_fold f;
    assert_int_equal(text_fold_init(&f, in, strlen(in), flags), 0);
    if (f.len != strlen(want) || memcmp(f.s, want, f.len) != 0)
        fail_msg("flags %u: \"%s\" -> \"%.*s\", expected \"%s\"", flags, in, (int)f.len, f.s,
                 want);
    text_fold_free(&f);
}

static void test_base_folding(void **state)
{
    (void)state;
    static const struct { const char *in, *want; } cases[] = {
        /* invisible characters go */
        {"a\xE2\x80\x8B" "b", "ab"},                    /* U+200B zero-width space */
        {"a\xE2\x80\x8C\xE2\x80\x8D" "b", "ab"},        /* ZWNJ, ZWJ */
        {"a\xE2\x81\xA0" "b", "ab"},                    /* U+2060 word joiner */
        {"\xEF\xBB\xBF" "ab", "ab"},                    /* BOM */
        {"a\xC2\xAD" "b", "ab"},                        /* soft hyphen */
        {"a\xE2\x80\xAE" "b\xE2\x80\xAC", "ab"},        /* bidi override, pop */
        {"a\xE2\x81\xA6" "b\xE2\x81\xA9", "ab"},        /* isolate, pop */
        {"a\xEF\xB8\x8F" "b", "ab"},                    /* variation selector 16 */
        {"a\xF3\xA0\x80\xA0" "b", "ab"},                /* U+E0020 tag space */
        {"a\x01\x7F" "b", "ab"},                        /* controls */
        {"a\xC2\x9B" "b", "ab"},                        /* C1 control */
        /* spaces become ' ', line separators '\n' */
        {"4111\xC2\xA0" "1111", "4111 1111"},           /* NBSP */
        {"1\xE2\x80\xAF" "2\xE2\x80\x87" "3\xE2\x80\x89" "4", "1 2 3 4"}, /* narrow, figure, thin */
        {"a\xE3\x80\x80" "b", "a b"},                   /* ideographic space */
        {"a\xE2\x80\xA8" "b\xC2\x85" "c", "a\nb\nc"},   /* U+2028, NEL */
        {"a\t b", "a\t b"},                             /* ASCII white space stays */
        /* dashes become '-' */
        {"1\xE2\x80\x90" "2\xE2\x80\x91" "3\xE2\x80\x92" "4", "1-2-3-4"},
        {"1\xE2\x80\x93" "2\xE2\x80\x94" "3\xE2\x80\x95" "4\xE2\x88\x92" "5", "1-2-3-4-5"},
        {"1\xEF\xB9\x98" "2\xEF\xB9\xA3" "3", "1-2-3"}, /* small em dash, small hyphen-minus */
        /* full-width ASCII and small forms */
        {"\xEF\xBC\x90\xEF\xBC\x93\xEF\xBC\x8D\xEF\xBC\x91\xEF\xBC\x92", "03-12"},
        {"\xEF\xBD\x8A\xEF\xBC\xA0\xEF\xBD\x85\xEF\xBC\x8E\xEF\xBD\x83\xEF\xBD\x8F", "j@e.co"},
        {"\xEF\xB9\xAB\xEF\xB9\xA2\xEF\xB9\x99" "1\xEF\xB9\x9A", "@+(1)"},
        /* the prolonged sound mark after a digit, and not elsewhere */
        {"03\xE3\x83\xBC" "1234", "03-1234"},
        {"\xEF\xBC\x93\xE3\x83\xBC" "1", "3-1"},        /* after a full-width digit */
        {"\xE3\x82\xB3\xE3\x83\xBC\xE3\x83\x92\xE3\x83\xBC",
         "\xE3\x82\xB3\xE3\x83\xBC\xE3\x83\x92\xE3\x83\xBC"},   /* コーヒー */
        /* what needs TF_CONFUSABLE, TF_CASE or TF_SPACE stays */
        {"\xD0\xB0\xC4\xB1\xC3\xA9", "\xD0\xB0\xC4\xB1\xC3\xA9"},  /* Cyrillic a, dotless i, e acute */
        {"ABC  d", "ABC  d"},
        /* invalid UTF-8 becomes U+FFFD, one per byte */
        {"a\xFF" "b\xC3", "a\xEF\xBF\xBD" "b\xEF\xBF\xBD"},
        {"\xE2\x82", "\xEF\xBF\xBD\xEF\xBF\xBD"},
        {"\xED\xA0\x80", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"},  /* a surrogate */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        expect_fold(cases[i].in, 0, cases[i].want);
}

static void test_confusables_case_and_space(void **state)
{
    (void)state;
    static const struct { const char *in, *want; } cases[] = {
        /* Cyrillic а е о р с х у і, Greek ο, dotless ı, ASCII case */
        {"\xD1\x96gn\xD0\xBEr\xD0\xB5 pr\xD0\xB5v\xD1\x96\xD0\xBEus", "ignore previous"},
        {"\xD0\xB0\xD0\xB5\xD0\xBE\xD1\x80\xD1\x81\xD1\x85\xD1\x83", "aeopcxy"},
        {"ign\xCE\xBFre \xC4\xB1gnore IGNORE", "ignore ignore ignore"},
        {"\xD0\x90\xD0\x92\xD0\xA1 \xCE\x91\xCE\x92\xCE\x9F", "abc abo"},  /* capitals */
        /* full-width Latin, mathematical bold, small capitals, circled */
        {"\xEF\xBC\xA9\xEF\xBD\x87\xEF\xBD\x8E", "ign"},
        {"\xF0\x9D\x90\xA2\xF0\x9D\x90\xA0\xF0\x9D\x90\xA7", "ign"},       /* 𝐢𝐠𝐧 */
        {"\xF0\x9D\x98\xAA\xF0\x9D\x98\xA8\xF0\x9D\x98\xAF", "ign"},       /* 𝘪𝘨𝘯 */
        {"\xC9\xAA\xC9\xA2\xC9\xB4\xE1\xB4\x8F\xCA\x80\xE1\xB4\x87", "ignore"},  /* ɪɢɴᴏʀᴇ */
        {"\xE2\x93\x98\xE2\x93\x96\xE2\x93\x9D", "ign"},                   /* ⓘⓖⓝ */
        /* accents, precomposed and combining */
        {"\xC3\xAFgn\xC3\xB3r\xC3\xA9 pr\xC3\xA9vious", "ignore previous"},
        {"ign\xCC\x81ore", "ignore"},
        /* look-alike signs of chat templates */
        {"<\xEF\xBD\x9Cim_start\xEF\xBD\x9C>", "<|im_start|>"},            /* full-width bar */
        {"\xEF\xBC\x9C|im_end|\xEF\xBC\x9E", "<|im_end|>"},
        {"<\xE2\x94\x82system\xE2\x88\xA3>", "<|system|>"},               /* box drawing, divides */
        {"system prompt\xE2\x88\xB6", "system prompt:"},                   /* ratio */
        /* white space of any kind, and invisibles in it, is one space */
        {"System\t\tPROMPT", "system prompt"},
        {"a \xE2\x80\x8B\xC2\xA0\n\xE3\x80\x80 b", "a b"},
        {"  lead and trail  ", " lead and trail "},
        /* letters of other scripts that look like nothing Latin stay */
        {"\xD0\x94\xD0\xB6 \xE6\x9D\xB1\xE4\xBA\xAC", "\xD0\x94\xD0\xB6 \xE6\x9D\xB1\xE4\xBA\xAC"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        expect_fold(cases[i].in, ALL, cases[i].want);
    /* Confusables without case keep the letter's case. */
    expect_fold("\xD0\x90\xD0\xB0", TF_CONFUSABLE, "Aa");
    expect_fold("A\xC2\xA0 B", TF_SPACE, "A B");
}

/* The original span of folded bytes [a, b). */
static void expect_span(const text_fold *f, size_t a, size_t b, size_t start, size_t end)
{
    assert_int_equal(text_fold_src_start(f, a), start);
    assert_int_equal(text_fold_src_end(f, b), end);
}

static void test_map_back_to_whole_characters(void **state)
{
    (void)state;
    text_fold f;
    /* "x" NBSP "４" ZWSP "1" "é" */
    const char *in = "x\xC2\xA0\xEF\xBC\x94\xE2\x80\x8B" "1\xC3\xA9";
    assert_int_equal(text_fold_init(&f, in, strlen(in), 0), 0);
    assert_int_equal(f.len, 6);                 /* "x 41é" */
    assert_memory_equal(f.s, "x 41\xC3\xA9", 6);
    expect_span(&f, 0, 1, 0, 1);                /* x */
    expect_span(&f, 1, 2, 1, 3);                /* the NBSP, both bytes */
    expect_span(&f, 2, 3, 3, 6);                /* the full-width 4 */
    expect_span(&f, 3, 4, 9, 10);               /* 1, after the dropped ZWSP */
    expect_span(&f, 2, 4, 3, 10);               /* "41": the ZWSP inside is covered */
    expect_span(&f, 4, 6, 10, 12);              /* é, copied */
    assert_int_equal(text_fold_src_start(&f, 6), strlen(in));
    assert_int_equal(text_fold_src_end(&f, 0), 0);
    assert_false(text_fold_gap_before(&f, 2));
    assert_true(text_fold_gap_before(&f, 3));   /* the ZWSP was there */
    assert_false(text_fold_gap_before(&f, 4));
    assert_int_equal(f.dropped, 1);
    text_fold_free(&f);

    /* A collapsed white-space run maps to all of it; an invalid byte to itself. */
    in = "a \t\xE2\x80\x8B\n b\xFF";
    assert_int_equal(text_fold_init(&f, in, strlen(in), ALL), 0);
    assert_memory_equal(f.s, "a b\xEF\xBF\xBD", f.len);
    expect_span(&f, 1, 2, 1, 8);
    expect_span(&f, 2, 3, 8, 9);
    expect_span(&f, 3, 6, 9, 10);
    expect_span(&f, 4, 5, 9, 10);               /* inside U+FFFD: the whole byte */
    assert_false(text_fold_gap_before(&f, 2));  /* absorbed by the white space */
    text_fold_free(&f);
}

static void test_plain_ascii_is_not_copied(void **state)
{
    (void)state;
    text_fold f;
    const char *in = "Plain text, 4111 1111 1111 1111.\n";
    assert_int_equal(text_fold_init(&f, in, strlen(in), 0), 0);
    assert_ptr_equal(f.s, in);
    assert_null(f.buf);
    assert_int_equal(f.len, strlen(in));
    expect_span(&f, 3, 9, 3, 9);
    text_fold_free(&f);

    assert_int_equal(text_fold_init(&f, NULL, 5, ALL), 0);
    assert_int_equal(f.len, 0);
    text_fold_free(&f);
    assert_int_equal(text_fold_init(&f, "\xE2\x80\x8B", 3, 0), 0);   /* all dropped */
    assert_int_equal(f.len, 0);
    assert_int_equal(text_fold_src_start(&f, 0), 3);
    text_fold_free(&f);
}

static bool valid_utf8(const char *s, size_t len)
{
    for (size_t i = 0; i < len;) {
        size_t n = utf8_sequence_len((const unsigned char *)s + i, len - i);
        if (n == 0)
            return false;
        i += n;
    }
    return true;
}

static void test_idempotent_and_valid(void **state)
{
    (void)state;
    static const char *const samples[] = {
        "I\xCC\x81gnore \xE2\x80\x8B  previous\xC2\xA0\xC2\xA0instructions",
        "03\xE3\x83\xBC\xE3\x83\xBC" "12 \xE3\x83\xBC",
        "\xFF\xFE\xC3\x28\xE2\x82\x28\xF0\x9F\x98",
        "\xEF\xBC\xA1\xF0\x9D\x90\x80\xE2\x93\xB6\xC3\x80\xC4\xB0\t\r\n\xE2\x80\xA9",
        "\xE3\x80\x80\xE3\x80\x80x\xE2\x80\x8D\xE2\x80\x8D",
    };
    static const unsigned flagsets[] = {0, TF_CASE, TF_SPACE, TF_CONFUSABLE, ALL};
    for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
        for (size_t k = 0; k < sizeof(flagsets) / sizeof(flagsets[0]); k++) {
            text_fold a, b;
            assert_int_equal(text_fold_init(&a, samples[i], strlen(samples[i]), flagsets[k]), 0);
            assert_true(valid_utf8(a.s, a.len));
            assert_int_equal(text_fold_init(&b, a.s, a.len, flagsets[k]), 0);
            if (a.len != b.len || memcmp(a.s, b.s, a.len) != 0)
                fail_msg("sample %zu flags %u: fold not idempotent", i, flagsets[k]);
            text_fold_free(&a);
            text_fold_free(&b);
        }
    }
}

static void test_char_and_class(void **state)
{
    (void)state;
    char c;
    assert_int_equal(text_fold_char(0x00A0, 0, &c), TF_BLANK);
    assert_int_equal(c, ' ');
    assert_int_equal(text_fold_char(0x2011, 0, &c), TF_MAP);
    assert_int_equal(c, '-');
    assert_int_equal(text_fold_char(0x200B, 0, &c), TF_DROP);
    assert_int_equal(text_fold_char(0x0430, 0, &c), TF_KEEP);
    assert_int_equal(text_fold_char(0x0430, TF_CONFUSABLE, &c), TF_MAP);
    assert_int_equal(c, 'a');
    assert_int_equal(text_fold_char('Q', TF_CASE, &c), TF_MAP);
    assert_int_equal(c, 'q');
    assert_int_equal(text_fold_char(0x30FC, 0, &c), TF_KEEP);  /* context decides */

    assert_int_equal(text_fold_class('a'), TF_WORD);
    assert_int_equal(text_fold_class('7'), TF_WORD);
    assert_int_equal(text_fold_class('@'), TF_NONE);
    assert_int_equal(text_fold_class(0x00E4), TF_WORD);        /* ä */
    assert_int_equal(text_fold_class(0x0434), TF_WORD);        /* д */
    assert_int_equal(text_fold_class(0x0905), TF_WORD);        /* अ */
    assert_int_equal(text_fold_class(0x093E), TF_WORD);        /* the vowel sign ा */
    assert_int_equal(text_fold_class(0x6771), TF_DENSE);       /* 東 */
    assert_int_equal(text_fold_class(0x3042), TF_DENSE);       /* あ */
    assert_int_equal(text_fold_class(0x30C6), TF_DENSE);       /* テ */
    assert_int_equal(text_fold_class(0xD55C), TF_DENSE);       /* 한 */
    assert_int_equal(text_fold_class(0x0E01), TF_DENSE);       /* ก */
    assert_int_equal(text_fold_class(0x3002), TF_NONE);        /* 。 */
    assert_int_equal(text_fold_class(0x20AC), TF_NONE);        /* € */
    assert_int_equal(text_fold_class(0x00AB), TF_NONE);        /* « */
    assert_int_equal(text_fold_class(0x1F600), TF_NONE);       /* an emoji */
    assert_int_equal(text_fold_class(0xFFFD), TF_NONE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base_folding),
        cmocka_unit_test(test_confusables_case_and_space),
        cmocka_unit_test(test_map_back_to_whole_characters),
        cmocka_unit_test(test_plain_ascii_is_not_copied),
        cmocka_unit_test(test_idempotent_and_valid),
        cmocka_unit_test(test_char_and_class),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
