/*
 * pii.h - scrubbing personal data out of text an agent run stores or
 * sends: e-mail addresses, phone numbers, national ids and payment card
 * numbers are replaced by tokens.
 *
 *   e-mail       jane.doe+x@mail.example.com, Jäne@exämple.com,
 *                用户@例子.广告, коля@пример.рф (RFC 6531: the
 *                local part and the domain in letters of any script)   -> [email]
 *   phone        international: +44 20 7946 0958, +44 (0)20 7946 0958,
 *                0044 20 7946 0958 (00, an assigned country code);
 *                national with the trunk prefix 0: 020 7946 0958,
 *                030/1234567, 01 23 45 67 89, 03-1234-5678,
 *                (030) 1234567, (11) 91234-5678;
 *                North American: (415) 555-2671, 415-555-2671,
 *                415.555.2671, 1-800-555-0199                         -> [phone]
 *   US SSN       123-45-6789, 123 45 6789                             -> [ssn]
 *   UK NINO      QQ123456C, QQ 12 34 56 C                             -> [national_id]
 *   card         4111 1111 1111 1111, 4111111111111111,
 *                4111-1111-1111-1111, 4111.1111.1111.1111,
 *                4111 - 1111 - 1111 - 1111, 3782 822463 10005
 *                (Luhn-valid, a card network's leading digits,
 *                13-19 digits)                                        -> [card]
 *
 * Matching is on the text folded by text_fold.h: no-break and other
 * spaces count as ' ', Unicode dashes (non-breaking hyphen, en dash,
 * minus sign, ...) as '-', full-width digits, letters and signs as ASCII,
 * and invisible characters (zero-width space, joiners, BOM, soft hyphen)
 * are not there at all, so "4111\u200B1111\u200B1111\u200B1111" and
 * "０３－１２３４－５６７８" match. What is replaced is the original
 * span, whole characters, from the first character of the match to the
 * last.
 *
 * What is left alone on purpose: timestamps ("2026-11-21T10:30:00Z",
 * "10:30:00"), dates ("15.03.2024"), UUIDs, IP addresses, version
 * numbers, ISBNs, prices, plain numbers of any length (an epoch in ms is
 * not a card: no network starts with 1), a number with no separators
 * that is not a card, numbers glued to letters or to other digits by '-',
 * '.', '/' or '_'. A number only counts when the whole run of digits and
 * separators around it has the shape; a card number inside a longer
 * number is not cut out of it. Letters of scripts written without spaces
 * (CJK, kana, Hangul, Thai) do not glue: "電話03-1234-5678です" has a
 * phone number in it.
 *
 * Text that is not valid UTF-8 is scrubbed all the same: bytes outside
 * matches are copied unchanged, and every replacement is ASCII, so valid
 * UTF-8 stays valid. All functions are pure and thread-safe.
 */
#ifndef AG_WORKER_PII_H
#define AG_WORKER_PII_H

#include <stdbool.h>
#include <stddef.h>

#include "strbuf.h"

/* How many of each kind were replaced. */
typedef struct pii_counts {
    int email;
    int phone;
    int ssn;
    int national_id;
    int card;
} pii_counts;

/* The sum of every count in c. */
int pii_total(const pii_counts *c);

typedef enum pii_kind {
    PII_EMAIL,
    PII_PHONE,
    PII_SSN,
    PII_NATIONAL_ID,
    PII_CARD,
} pii_kind;

/* One match: bytes [start, end) of the text, whole UTF-8 characters. */
typedef struct pii_match {
    pii_kind kind;
    size_t start, end;
} pii_match;

/* The token a match of kind is replaced by ("[email]", ...). */
const char *pii_token(pii_kind kind);

/*
 * Finds the matches in len bytes of text, in order and not overlapping,
 * and calls fn for each; fn returns nonzero to stop. Returns the number of
 * matches passed to fn, or -1 when memory ran out.
 */
int pii_find(const char *text, size_t len, int (*fn)(void *user, const pii_match *m),
             void *user);

/*
 * Appends len bytes of text (need not be NUL-terminated) to out with every
 * match replaced by its token, and adds what it replaced to *counts (may
 * be NULL). On allocation failure out->oom is set.
 */
void pii_scrub_into(strbuf *out, const char *text, size_t len, pii_counts *counts);

/*
 * The same into a new malloc'd NUL-terminated string the caller frees;
 * *out_len (may be NULL) gets its length. Returns NULL when memory runs
 * out.
 */
char *pii_scrub(const char *text, size_t len, size_t *out_len, pii_counts *counts);

/* The Luhn check over n ASCII digits (n > 0); false for any non-digit. */
bool pii_luhn_valid(const char *digits, size_t n);

/*
 * Scrubbing text that arrives in pieces (a model's streamed deltas)
 * without ever sending a piece of a match before its end is known: the
 * tail of the text so far that a match could still run on from is held
 * back, that is the last word (since the last white space of any kind, or
 * since the last character no match can hold, such as "、" or "。")
 * together with any words before it that may go on into the next one:
 * those ending in a digit or ')', those made only of '-', '.' or '/', and
 * those ending in one or two capital letters not glued to a letter or
 * digit ("+1 415 555" may be a phone number that goes on, "4111 -" a
 * card, "(QQ 12" a NINO). A tail that grows past PII_STREAM_HOLD_MAX
 * bytes is let go (scrubbed as it is). Short of that, the pieces given
 * out add up to pii_scrub of the whole text.
 *
 * Zero-initialise (pii_stream s = {0};), feed, finish, then
 * pii_stream_free.
 */
#define PII_STREAM_HOLD_MAX 512

typedef struct pii_stream {
    strbuf held;            /* text received but not yet given out */
    pii_counts counts;      /* everything replaced so far */
} pii_stream;

/* Takes len bytes more; appends the scrubbed text now safe to give out to
 * out (possibly nothing). Returns 0, or -1 when memory ran out. */
int pii_stream_feed(pii_stream *ps, const char *piece, size_t len, strbuf *out);

/* The text is complete: appends whatever was held back, scrubbed. */
int pii_stream_finish(pii_stream *ps, strbuf *out);

void pii_stream_free(pii_stream *ps);

#endif
