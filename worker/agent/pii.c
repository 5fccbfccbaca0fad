/*
 * pii.c - replacing e-mail addresses, phone numbers, national ids and card
 * numbers in text by tokens (see pii.h for what matches and what not).
 *
 * One pass over the text: at each position where a match may start (the
 * byte before it is not part of a word or a number), the matchers are
 * tried in turn; each returns where its match ends or 0. Matchers look at
 * whole runs: a number counts only when the run of digits and separators
 * it belongs to ends where the match ends, so nothing is cut out of the
 * middle of a longer number, a date or an identifier.
 */
#include "pii.h"

#include <stdlib.h>
#include <string.h>

#include "utf8.h"

#define EMAIL_LOCAL_MAX  64
#define EMAIL_DOMAIN_MAX 253
#define LABEL_MAX        63
#define CARD_MIN_DIGITS  13
#define CARD_MAX_DIGITS  19
#define PHONE_MIN_DIGITS 8      /* international form, after the '+' */
#define PHONE_MAX_DIGITS 15     /* E.164 */
#define PHONE_MAX_GROUPS 6

typedef const unsigned char uchar;

static bool is_digit(int c) { return c >= '0' && c <= '9'; }
static bool is_upper(int c) { return c >= 'A' && c <= 'Z'; }
static bool is_alpha(int c) { return is_upper(c) || (c >= 'a' && c <= 'z'); }
static bool is_alnum(int c) { return is_alpha(c) || is_digit(c); }

int pii_total(const pii_counts *c)
{
    return c->email + c->phone + c->ssn + c->national_id + c->card;
}

bool pii_luhn_valid(const char *digits, size_t n)
{
    int sum = 0;
    bool dbl = false;

    if (n == 0)
        return false;
    for (size_t i = n; i-- > 0;) {
        if (!is_digit((unsigned char)digits[i]))
            return false;
        int d = digits[i] - '0';
        if (dbl) {
            d *= 2;
            if (d > 9)
                d -= 9;
        }
        sum += d;
        dbl = !dbl;
    }
    return sum % 10 == 0;
}

/* ---- boundaries ----------------------------------------------------------- */

/* A number may start at i: what precedes it is not part of a word, a
 * longer number, a path, an address or a decimal. */
static bool num_start_ok(uchar *s, size_t i)
{
    if (i == 0)
        return true;
    int c = s[i - 1];
    return !(is_alnum(c) || c == '_' || c == '.' || c == '-' || c == '/' || c == '\\' ||
             c == '@' || c == '+' || c == '%' || c == '#');
}

/* A number may end at j: what follows does not continue it. A sentence's
 * full stop or comma after it is fine; "-7", ".5", "/2", ":30" are not. */
static bool num_end_ok(uchar *s, size_t len, size_t j)
{
    if (j >= len)
        return true;
    int c = s[j];
    if (is_alnum(c) || c == '_' || c == '@')
        return false;
    if ((c == '-' || c == '.' || c == '/' || c == ':' || c == ',') && j + 1 < len &&
        is_digit(s[j + 1]))
        return false;
    return true;
}

/* Digits at s[j...]; returns how many. */
static size_t digits_at(uchar *s, size_t len, size_t j)
{
    size_t k = 0;
    while (j + k < len && is_digit(s[j + k]))
        k++;
    return k;
}

/* ---- e-mail --------------------------------------------------------------- */

static bool is_local_char(int c)
{
    return is_alnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-';
}

/* An address may start at i: not in the middle of one (a '.' before is
 * fine: "see.me@x.org" starts at 's', and a run that starts with '.'
 * gets another try after it). */
static bool email_start_ok(uchar *s, size_t i)
{
    return i == 0 || s[i - 1] == '.' || !is_local_char(s[i - 1]);
}

/* The domain after '@' at s[j...]: labels of letters, digits and '-' (not
 * at either end), joined by single dots, at least two, the last all
 * letters and two or more long. Returns its end, or 0. */
static size_t email_domain_end(uchar *s, size_t len, size_t j)
{
    size_t start = j, end = 0;
    int labels = 0;

    for (;;) {
        size_t k = 0;
        bool all_alpha = true;
        while (j + k < len && (is_alnum(s[j + k]) || s[j + k] == '-')) {
            all_alpha = all_alpha && is_alpha(s[j + k]);
            k++;
        }
        if (k == 0 || k > LABEL_MAX || s[j] == '-' || s[j + k - 1] == '-')
            break;
        labels++;
        j += k;
        if (labels >= 2 && all_alpha && k >= 2)
            end = j;                    /* a complete domain so far */
        if (j + 1 < len && s[j] == '.' && is_alnum(s[j + 1]))
            j++;
        else
            break;
    }
    if (end == 0 || end - start > EMAIL_DOMAIN_MAX)
        return 0;
    /* "a@b.co_x" or "a@b.com@c": not an address we can delimit. */
    if (end < len && (s[end] == '_' || s[end] == '@' || is_alnum(s[end])))
        return 0;
    return end;
}

static size_t match_email(uchar *s, size_t len, size_t i)
{
    if (!email_start_ok(s, i) || !is_alnum(s[i]))
        return 0;
    size_t j = i;
    while (j < len && j - i <= EMAIL_LOCAL_MAX && is_local_char(s[j]))
        j++;
    if (j == i || j - i > EMAIL_LOCAL_MAX || j >= len || s[j] != '@' || s[j - 1] == '.')
        return 0;
    return email_domain_end(s, len, j + 1);
}

/* ---- card numbers --------------------------------------------------------- */

/* The leading digits of a card network: Visa 4, Mastercard 51-55 and
 * 2221-2720, Amex 34/37, Diners 30/36/38/39, JCB 35, Discover and
 * UnionPay 6. An epoch in milliseconds (1...) is none of them. */
static bool card_network_ok(const char *d)
{
    int two = (d[0] - '0') * 10 + (d[1] - '0');
    int four = two * 100 + (d[2] - '0') * 10 + (d[3] - '0');
    switch (d[0]) {
    case '2': return four >= 2221 && four <= 2720;
    case '3': return two == 30 || two == 34 || two == 35 || two == 36 || two == 37 ||
                     two == 38 || two == 39;
    case '4': return true;
    case '5': return two >= 51 && two <= 55;
    case '6': return true;
    default: return false;
    }
}

/* 13-19 digits, either in one group or in groups split by single spaces
 * or single dashes (one kind throughout), the first group of four and the
 * others of three to six (4-4-4-4, 4-6-5, 4-4-4-4-3). */
static size_t match_card(uchar *s, size_t len, size_t i)
{
    char d[CARD_MAX_DIGITS + 1];
    size_t n = 0, j = i, groups = 0;
    int sep = 0;
    bool shape_ok = true;

    if (!num_start_ok(s, i))
        return 0;
    for (;;) {
        size_t k = digits_at(s, len, j);
        if (k == 0 || n + k > CARD_MAX_DIGITS)
            return 0;
        memcpy(d + n, s + j, k);
        n += k;
        j += k;
        groups++;
        if (groups == 1 ? k != 4 : (k < 3 || k > 6))
            shape_ok = false;
        if (j + 1 < len && (s[j] == ' ' || s[j] == '-') && is_digit(s[j + 1]) &&
            (sep == 0 || s[j] == sep)) {
            sep = s[j];
            j++;
            continue;
        }
        break;
    }
    if (n < CARD_MIN_DIGITS || (groups > 1 && !shape_ok))
        return 0;
    if (!num_end_ok(s, len, j))
        return 0;
    d[n] = '\0';
    if (!card_network_ok(d) || !pii_luhn_valid(d, n))
        return 0;
    return j;
}

/* ---- national ids --------------------------------------------------------- */

/* US social security number: 3-2-4 digits split by dashes or spaces (the
 * same both times); area 000, 666 and 900-999, group 00 and serial 0000
 * are never issued, so they are not numbers anyone has. */
static size_t match_ssn(uchar *s, size_t len, size_t i)
{
    if (!num_start_ok(s, i) || i + 11 > len)
        return 0;
    if (digits_at(s, len, i) != 3 || (s[i + 3] != '-' && s[i + 3] != ' ') ||
        digits_at(s, len, i + 4) != 2 || s[i + 6] != s[i + 3] ||
        digits_at(s, len, i + 7) != 4)
        return 0;
    size_t j = i + 11;
    if (!num_end_ok(s, len, j))
        return 0;
    if (s[i + 3] == ' ' && j + 1 < len && s[j] == ' ' && is_digit(s[j + 1]))
        return 0;                       /* a longer list of numbers */
    int area = (s[i] - '0') * 100 + (s[i + 1] - '0') * 10 + (s[i + 2] - '0');
    if (area == 0 || area == 666 || area >= 900)
        return 0;
    if (s[i + 4] == '0' && s[i + 5] == '0')
        return 0;
    if (memcmp(s + i + 7, "0000", 4) == 0)
        return 0;
    return j;
}

/* UK National Insurance number: two letters (not D F I Q U V, the second
 * not O either, and not BG GB KN NK NT TN ZZ), six digits (or three pairs
 * split by spaces), a suffix A-D. Upper case only. */
static size_t match_nino(uchar *s, size_t len, size_t i)
{
    static const char *const bad_pairs[] = {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"};

    if (i > 0 && (is_alnum(s[i - 1]) || s[i - 1] == '_'))
        return 0;
    if (i + 9 > len || !is_upper(s[i]) || !is_upper(s[i + 1]))
        return 0;
    if (strchr("DFIQUV", s[i]) || strchr("DFIOQUV", s[i + 1]))
        return 0;
    for (size_t k = 0; k < sizeof(bad_pairs) / sizeof(bad_pairs[0]); k++)
        if (s[i] == (uchar)bad_pairs[k][0] && s[i + 1] == (uchar)bad_pairs[k][1])
            return 0;
    size_t j = i + 2;
    if (digits_at(s, len, j) == 6) {
        j += 6;
    } else {
        if (s[j] == ' ')
            j++;
        for (int pair = 0; pair < 3; pair++) {
            if (pair > 0 && j < len && s[j] == ' ')
                j++;
            if (digits_at(s, len, j) != 2)
                return 0;
            j += 2;
        }
    }
    if (j < len && s[j] == ' ')
        j++;
    if (j >= len || s[j] < 'A' || s[j] > 'D')
        return 0;
    j++;
    if (j < len && (is_alnum(s[j]) || s[j] == '_'))
        return 0;
    return j;
}

/* ---- phone numbers -------------------------------------------------------- */

/* International form: '+', then 8-15 digits in up to six groups split by
 * single spaces, dashes or dots, a group possibly in parentheses
 * ("+44 (0)20 7946 0958", "+14155552671"). */
static size_t match_phone_intl(uchar *s, size_t len, size_t i)
{
    size_t j = i + 1, end = 0, digits = 0, groups = 0;

    if (s[i] != '+' || i + 1 >= len || !(is_digit(s[i + 1]) || s[i + 1] == '('))
        return 0;
    if (i > 0 && (is_alnum(s[i - 1]) || s[i - 1] == '_' || s[i - 1] == '+'))
        return 0;
    for (;;) {
        /* A group: digits, or digits in parentheses. One that does not
         * parse ends the number before it ("+1 415 555 2671 (or"). */
        bool paren = j < len && s[j] == '(';
        size_t k = digits_at(s, len, j + paren);
        if (k == 0 || (paren && (j + 1 + k >= len || s[j + 1 + k] != ')')))
            break;
        j += k + (paren ? 2 : 0);
        end = j;
        digits += k;
        if (digits > PHONE_MAX_DIGITS || ++groups > PHONE_MAX_GROUPS)
            return 0;
        if (j + 1 < len && (s[j] == ' ' || s[j] == '-' || s[j] == '.') &&
            (is_digit(s[j + 1]) || s[j + 1] == '('))
            j++;                        /* a separator, then the next group */
        else if (!(j < len && (s[j] == '(' || (paren && is_digit(s[j])))))
            break;                      /* "+44(0)20": no separator needed */
    }
    if (end == 0 || digits < PHONE_MIN_DIGITS || !num_end_ok(s, len, end))
        return 0;
    return end;
}

static bool is_phone_sep(int c)
{
    return c == '-' || c == '.' || c == ' ';
}

/* North American form: an optional leading "1" and separator, the area
 * code as "(415)" (then a space, a dash or nothing) or "415" and a
 * separator, then 555, the same separator, 2671: "(415) 555-2671",
 * "1-800-555-0199", "415.555.2671". Ten bare digits are not taken: too
 * many plain numbers look like that. */
static size_t match_phone_nanp(uchar *s, size_t len, size_t i)
{
    size_t j = i;
    int sep;

    if (!num_start_ok(s, i))
        return 0;
    if (j + 2 < len && s[j] == '1' && is_phone_sep(s[j + 1]) &&
        (is_digit(s[j + 2]) || s[j + 2] == '('))
        j += 2;
    if (j < len && s[j] == '(') {
        if (digits_at(s, len, j + 1) != 3 || j + 4 >= len || s[j + 4] != ')')
            return 0;
        j += 5;
        if (j < len && (s[j] == ' ' || s[j] == '-'))
            j++;
        if (digits_at(s, len, j) != 3 || j + 3 >= len || !is_phone_sep(s[j + 3]))
            return 0;
        sep = s[j + 3];
        j += 4;
    } else {
        if (digits_at(s, len, j) != 3 || j + 3 >= len || !is_phone_sep(s[j + 3]))
            return 0;
        sep = s[j + 3];
        j += 4;
        if (digits_at(s, len, j) != 3 || j + 3 >= len || s[j + 3] != sep)
            return 0;
        j += 4;
    }
    if (digits_at(s, len, j) != 4)
        return 0;
    j += 4;
    if (!num_end_ok(s, len, j))
        return 0;
    if (sep == ' ' && j + 1 < len && s[j] == ' ' && is_digit(s[j + 1]))
        return 0;                       /* a longer list of numbers */
    return j;
}

/* ---- the pass ------------------------------------------------------------- */

/* Tries every matcher that can start at s[i]; returns the end of the
 * first match and its token, or 0. */
static size_t match_at(uchar *s, size_t len, size_t i, const char **token,
                       pii_counts *c)
{
    size_t end;
    int ch = s[i];

    if (is_alnum(ch) && (end = match_email(s, len, i)) != 0) {
        *token = "[email]";
        c->email++;
        return end;
    }
    if (is_digit(ch)) {
        if ((end = match_ssn(s, len, i)) != 0) {
            *token = "[ssn]";
            c->ssn++;
            return end;
        }
        if ((end = match_card(s, len, i)) != 0) {
            *token = "[card]";
            c->card++;
            return end;
        }
        if ((end = match_phone_nanp(s, len, i)) != 0) {
            *token = "[phone]";
            c->phone++;
            return end;
        }
    } else if (ch == '+') {
        if ((end = match_phone_intl(s, len, i)) != 0) {
            *token = "[phone]";
            c->phone++;
            return end;
        }
    } else if (ch == '(') {
        if ((end = match_phone_nanp(s, len, i)) != 0) {
            *token = "[phone]";
            c->phone++;
            return end;
        }
    } else if (is_upper(ch)) {
        if ((end = match_nino(s, len, i)) != 0) {
            *token = "[national_id]";
            c->national_id++;
            return end;
        }
    }
    return 0;
}

void pii_scrub_into(strbuf *out, const char *text, size_t len, pii_counts *counts)
{
    uchar *s = (uchar *)text;
    pii_counts local = {0};
    size_t i = 0, copied = 0;

    if (!text)
        return;
    while (i < len) {
        const char *token = NULL;
        size_t end = (s[i] < 0x80) ? match_at(s, len, i, &token, &local) : 0;
        if (end > i) {
            strbuf_addn(out, text + copied, i - copied);
            strbuf_add(out, token);
            i = copied = end;
            continue;
        }
        i++;
    }
    strbuf_addn(out, text + copied, len - copied);
    if (counts) {
        counts->email += local.email;
        counts->phone += local.phone;
        counts->ssn += local.ssn;
        counts->national_id += local.national_id;
        counts->card += local.card;
    }
}

char *pii_scrub(const char *text, size_t len, size_t *out_len, pii_counts *counts)
{
    strbuf b = {0};

    pii_scrub_into(&b, text ? text : "", text ? len : 0, counts);
    return strbuf_take(&b, out_len);
}

/* ---- streaming ------------------------------------------------------------ */

/* A word a match may run on from into the next one: it ends in a digit or
 * ')' ("+1", "(415)", "4111"), or it is one or two capital letters (the
 * start or the suffix of "QQ 12 34 56 C"). */
static bool word_may_continue(uchar *w, size_t n)
{
    if (n == 0)
        return false;
    if (is_digit(w[n - 1]) || w[n - 1] == ')')
        return true;
    return n <= 2 && is_upper(w[0]) && (n == 1 || is_upper(w[1]));
}

/* Where the held text can be cut: everything before the returned offset
 * can be scrubbed and given out now. */
static size_t stream_cut(uchar *s, size_t len)
{
    size_t cut = len;

    while (cut > 0 && !utf8_is_space(s[cut - 1]))
        cut--;                          /* the last word is always held */
    while (cut > 0) {
        size_t end = cut;
        while (end > 0 && utf8_is_space(s[end - 1]))
            end--;
        size_t start = end;
        while (start > 0 && !utf8_is_space(s[start - 1]))
            start--;
        if (end == start || !word_may_continue(s + start, end - start))
            break;
        cut = start;
    }
    return cut;
}

int pii_stream_feed(pii_stream *ps, const char *piece, size_t len, strbuf *out)
{
    strbuf_addn(&ps->held, piece, len);
    if (ps->held.oom)
        return -1;
    size_t cut = stream_cut((uchar *)ps->held.s, ps->held.len);
    if (ps->held.len - cut > PII_STREAM_HOLD_MAX)
        cut = ps->held.len;             /* too long to be one match: let it go */
    if (cut == 0)
        return 0;
    pii_scrub_into(out, ps->held.s, cut, &ps->counts);
    memmove(ps->held.s, ps->held.s + cut, ps->held.len - cut);
    ps->held.len -= cut;
    ps->held.s[ps->held.len] = '\0';
    return out->oom ? -1 : 0;
}

int pii_stream_finish(pii_stream *ps, strbuf *out)
{
    if (ps->held.len > 0)
        pii_scrub_into(out, ps->held.s, ps->held.len, &ps->counts);
    strbuf_reset(&ps->held);
    return out->oom ? -1 : 0;
}

void pii_stream_free(pii_stream *ps)
{
    strbuf_free(&ps->held);
}
