/*
 * text_fold.h - a folded view of UTF-8 text for pattern matching, with a
 * map back to the original bytes.
 *
 * The PII scrubber and the output guard look for ASCII shapes (digits and
 * their separators, e-mail punctuation, the words of injection markers)
 * in text that may be written with any of Unicode. Rather than teach each
 * matcher about no-break spaces, non-breaking hyphens, full-width forms or
 * Cyrillic letters that look Latin, they match on a folded copy in which
 * those already are their ASCII counterparts, then map what they found
 * back: a match at folded bytes [a, b) covers the original bytes
 * [text_fold_src_start(f, a), text_fold_src_end(f, b)), whole characters
 * only, so replacing that span never splits a UTF-8 sequence.
 *
 * Always folded:
 *   - invisible characters are dropped: controls other than white space
 *     (C0, DEL, C1), soft hyphen, zero-width space, non-joiner and joiner,
 *     word joiner and invisible operators, BOM, bidi marks, embeddings,
 *     overrides and isolates, Mongolian vowel separator, variation
 *     selectors, Hangul fillers, tag characters;
 *   - spaces (no-break U+00A0, narrow no-break U+202F, U+2000-U+200A,
 *     U+205F, ogham, ideographic U+3000) become ' '; line and paragraph
 *     separators (U+2028, U+2029, NEL) become '\n';
 *   - dashes (U+2010-U+2015, minus U+2212, the small and full-width
 *     hyphen-minus and em dash) become '-';
 *   - full-width ASCII (U+FF01-U+FF5E) and the small form variants
 *     (U+FE50-U+FE6B) become ASCII, as NFKC does;
 *   - the katakana prolonged sound mark (U+30FC, U+FF70) right after a
 *     digit becomes '-', the way phone numbers are often typed in Japan;
 *   - a byte that does not start a well-formed sequence becomes U+FFFD,
 *     so the folded text is always valid UTF-8.
 *
 * TF_CONFUSABLE adds what makes text look Latin without being it: Latin
 * letters with diacritics (Latin-1 and Latin Extended-A) become the base
 * letter, combining diacritical marks are dropped, and the letters of
 * other scripts and styles that pass for Latin ones become those: Greek
 * and Cyrillic look-alikes, IPA and small capitals, mathematical
 * alphanumerics, circled and squared letters, Roman numerals; so do
 * look-alikes of '|', '<', '>' and ':'. TF_CASE puts ASCII letters
 * (including those folded to) in lower case. TF_SPACE turns each run of
 * white space of any kind, with the invisible characters in it, into one
 * ' '.
 *
 * Folding is idempotent: folding folded text with the same flags gives
 * it back unchanged. Pure functions, thread-safe.
 */
#ifndef AG_WORKER_TEXT_FOLD_H
#define AG_WORKER_TEXT_FOLD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    TF_CASE = 1u << 0,          /* ASCII letters to lower case */
    TF_SPACE = 1u << 1,         /* white space runs to one ' ' */
    TF_CONFUSABLE = 1u << 2,    /* look-alikes to the Latin letter or sign */
};

/* How one character folds on its own (text_fold_char). */
typedef enum tf_kind {
    TF_KEEP,        /* stays as it is */
    TF_MAP,         /* becomes one ASCII character */
    TF_BLANK,       /* white space: becomes ' ' or '\n' (ASCII white space stays) */
    TF_DROP,        /* invisible: dropped */
} tf_kind;

/* What a character is to word boundaries (text_fold_class). */
typedef enum tf_class {
    TF_NONE,        /* not part of a word: space, punctuation, symbol, emoji */
    TF_WORD,        /* a letter, digit or mark of a script that puts spaces
                     * between words (Latin, Greek, Cyrillic, Indic, ...) */
    TF_DENSE,       /* a letter of a script written without spaces between
                     * words (CJK, kana, Hangul, Thai, ...): a Latin word
                     * or a number may be glued to it and still stand alone */
} tf_class;

typedef struct tf_seg tf_seg;

/* A folded text. Read s and len; the rest is the map. */
typedef struct text_fold {
    const char *s;          /* the folded text, valid UTF-8; not NUL-terminated
                             * when nothing needed folding (then it is the
                             * original text itself) */
    size_t len;
    size_t src_len;         /* bytes of the original */
    size_t dropped;         /* characters dropped */
    char *buf;              /* owned copy, or NULL */
    size_t cap;
    tf_seg *seg;            /* the map; none when s is the original */
    size_t nseg, segcap;
} text_fold;

/*
 * Folds len bytes of text (need not be NUL-terminated, may be invalid
 * UTF-8) into *f with flags (TF_*; 0 for the base folding only). Returns
 * 0, or -1 when memory ran out (then *f needs no freeing). Free with
 * text_fold_free.
 */
int text_fold_init(text_fold *f, const char *text, size_t len, unsigned flags);

void text_fold_free(text_fold *f);

/* Where the character that gave folded byte k starts in the original; the
 * original's length for k >= f->len. */
size_t text_fold_src_start(const text_fold *f, size_t k);

/* Where the character that gave folded byte k - 1 ends in the original
 * (0 for k == 0): the end of a match that ends at folded byte k. */
size_t text_fold_src_end(const text_fold *f, size_t k);

/* True when an invisible character was dropped between folded bytes k - 1
 * and k, e.g. a zero-width space between two words. */
bool text_fold_gap_before(const text_fold *f, size_t k);

/*
 * Decodes the character at s (avail > 0 bytes) into *cp and returns its
 * length; a byte that does not start a well-formed sequence gives
 * U+FFFD and length 1.
 */
size_t text_fold_decode(const unsigned char *s, size_t avail, uint32_t *cp);

/* How cp folds on its own with flags; *ascii gets the ASCII character it
 * becomes (TF_MAP, TF_BLANK, and TF_KEEP of an ASCII character), else 0.
 * The prolonged sound mark after a digit depends on what precedes it and
 * is TF_KEEP here. */
tf_kind text_fold_char(uint32_t cp, unsigned flags, char *ascii);

tf_class text_fold_class(uint32_t cp);

#endif
