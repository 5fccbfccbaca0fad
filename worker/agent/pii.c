/*
 * pii.c - replacing e-mail addresses, phone numbers, national ids and card
 * numbers in text by tokens (see pii.h for what matches and what not).
 *
 * The text is folded first (text_fold.h, base folding only: no case, as
 * NINO letters must be capitals, and no confusables, as digits and '@'
 * have none worth the cost), so every matcher sees ' ' for any space, '-'
 * for any dash and ASCII for full-width forms, and never an invisible
 * character. Then one pass over the folded text: at each position where a
 * match may start, the matchers are tried in turn; each returns where its
 * match ends or 0. Matchers look at whole runs: a number counts only when
 * the run of digits and separators it belongs to ends where the match
 * ends, so nothing is cut out of the middle of a longer number, a date or
 * an identifier. A match is mapped back to the original bytes it came
 * from, and those are replaced.
 */
#include "pii.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "text_fold.h"

#define EMAIL_LOCAL_MAX  64
#define EMAIL_DOMAIN_MAX 253
#define LABEL_MAX        63     /* characters */
#define CARD_MIN_DIGITS  13
#define CARD_MAX_DIGITS  19
#define PHONE_MIN_DIGITS 8      /* international form, after the prefix */
#define PHONE_MAX_DIGITS 15     /* E.164 */
#define PHONE_MAX_GROUPS 7      /* "+33 (0)1 23 45 67 89" */
#define TRUNK_MIN_DIGITS 9      /* national form with the trunk 0 */
#define TRUNK_MAX_DIGITS 12

/* The scrubber's folding: see the top of this file. */
#define PII_FOLD 0u

typedef const unsigned char uchar;

static bool is_digit(int c) { return c >= '0' && c <= '9'; }
static bool is_upper(int c) { return c >= 'A' && c <= 'Z'; }
static bool is_alpha(int c) { return is_upper(c) || (c >= 'a' && c <= 'z'); }
static bool is_alnum(int c) { return is_alpha(c) || is_digit(c); }

int pii_total(const pii_counts *c)
{
    return c->email + c->phone + c->ssn + c->national_id + c->card;
}

const char *pii_token(pii_kind kind)
{
    switch (kind) {
    case PII_EMAIL: return "[email]";
    case PII_PHONE: return "[phone]";
    case PII_SSN: return "[ssn]";
    case PII_NATIONAL_ID: return "[national_id]";
    case PII_CARD: return "[card]";
    }
    return "[pii]";
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

/* ---- characters of the folded text --------------------------------------- */

/* What a character is to the matchers: not part of a word, an ASCII
 * digit, a letter (or mark) of a script written with spaces between
 * words, ASCII letters included, or one of a script written without. */
enum { SC_NONE, SC_DIGIT, SC_SPACED, SC_DENSE };

static inline int ascii_script(int c)
{
    if ((unsigned)(c - '0') < 10)
        return SC_DIGIT;
    return (unsigned)((c | 0x20) - 'a') < 26 ? SC_SPACED : SC_NONE;
}

static int script_of(uint32_t cp)
{
    if (cp < 0x80)
        return ascii_script((int)cp);
    switch (text_fold_class(cp)) {
    case TF_WORD: return SC_SPACED;
    case TF_DENSE: return SC_DENSE;
    default: return SC_NONE;
    }
}

/* The script of the character at s[j] (j < len); its length in *n. */
static int script_at(uchar *s, size_t len, size_t j, size_t *n)
{
    uint32_t cp;
    if (s[j] < 0x80) {
        *n = 1;
        return ascii_script(s[j]);
    }
    *n = text_fold_decode(s + j, len - j, &cp);
    return script_of(cp);
}

/* The script of the character that ends at s[i - 1] (i > 0; the folded
 * text is valid UTF-8). */
static int script_before(uchar *s, size_t i)
{
    size_t k = i - 1;
    uint32_t cp;
    if (s[k] < 0x80)
        return script_of(s[k]);
    while (k > 0 && i - k < 4 && (s[k] & 0xC0) == 0x80)
        k--;
    text_fold_decode(s + k, i - k, &cp);
    return script_of(cp);
}

/* ---- boundaries ----------------------------------------------------------- */

/* A number may start at i: what precedes it is not part of a word, a
 * longer number, a path, an address or a decimal. A letter of a script
 * written without spaces is a boundary ("電話03-1234-5678"). */
static bool num_start_ok(uchar *s, size_t i)
{
    if (i == 0)
        return true;
    int c = s[i - 1];
    if (c >= 0x80)
        return script_before(s, i) != SC_SPACED;
    return !(is_alnum(c) || c == '_' || c == '.' || c == '-' || c == '/' || c == '\\' ||
             c == '@' || c == '+' || c == '%' || c == '#');
}

/* A number may end at j: what follows does not continue it. A sentence's
 * full stop or comma after it is fine; "-7", ".5", "/2", ":30" are not. */
static bool num_end_ok(uchar *s, size_t len, size_t j)
{
    size_t n;
    if (j >= len)
        return true;
    int c = s[j];
    if (c >= 0x80)
        return script_at(s, len, j, &n) != SC_SPACED;
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

static bool is_punct_sep(int c, bool slash)
{
    return c == '-' || c == '.' || (slash && c == '/');
}

/* A separator between two groups of digits at s[j...]: a space, a dash, a
 * dot, a slash (when slash), or a dash, dot or slash with a space on each
 * side ("4111 - 1111", "030 / 1234567"). Returns its length, 0 for none.
 * Whether digits follow is the caller's to check. */
static size_t sep_at(uchar *s, size_t len, size_t j, bool slash)
{
    if (j >= len)
        return 0;
    if (is_punct_sep(s[j], slash))
        return 1;
    if (s[j] != ' ')
        return 0;
    if (j + 2 < len && is_punct_sep(s[j + 1], slash) && s[j + 2] == ' ')
        return 3;
    return 1;
}

/* A number at i is one of a list of numbers ("00 01 02 03 04 05"): the
 * forms that rely on a leading 0 do not start in the middle of one. */
static bool in_number_list(uchar *s, size_t i)
{
    return i >= 2 && s[i - 1] == ' ' && is_digit(s[i - 2]);
}

static bool same_sep(uchar *s, size_t a, size_t alen, size_t b, size_t blen)
{
    return alen == blen && memcmp(s + a, s + b, alen) == 0;
}

/* ---- e-mail --------------------------------------------------------------- */

static bool is_local_punct(int c)
{
    return c == '.' || c == '_' || c == '%' || c == '+' || c == '-';
}

/* An address may start at i: not in the middle of one. A '.' before is
 * fine ("see.me@x.org" starts at 's', and a run that starts with '.' gets
 * another try after it), and so is a letter of another script: in
 * "メールはjane@example.com" the address starts at 'j'. */
static bool email_start_ok(uchar *s, size_t len, size_t i)
{
    size_t n;
    if (i == 0 || s[i - 1] == '.')
        return true;
    int prev = script_before(s, i);
    if (prev == SC_NONE)
        return !(s[i - 1] < 0x80 && is_local_punct(s[i - 1]));
    int cur = script_at(s, len, i, &n);
    return prev != SC_DIGIT && cur != SC_DIGIT && prev != cur;
}

/* One label of a domain at s[j...]: letters, digits and '-' (not at either
 * end), its letters all of one script (a switch ends it: "example.comです").
 * Returns its length in bytes (0: none); *chars gets its length in
 * characters, *alpha whether it is letters only, *letters their script. */
static size_t label_at(uchar *s, size_t len, size_t j, size_t *chars, bool *alpha, int *letters)
{
    size_t k = j;

    *chars = 0;
    *alpha = true;
    *letters = SC_NONE;
    while (k < len && *chars <= LABEL_MAX) {
        size_t n = 1;
        int sc = s[k] == '-' ? SC_NONE : script_at(s, len, k, &n);
        if (sc == SC_NONE && s[k] != '-')
            break;
        if (sc == SC_SPACED || sc == SC_DENSE) {
            if (*letters != SC_NONE && *letters != sc)
                break;
            *letters = sc;
        } else {
            *alpha = false;
        }
        k += n;
        (*chars)++;
    }
    if (k == j || s[j] == '-' || s[k - 1] == '-')
        return 0;
    return k - j;
}

/* An ASCII-compatible encoding of an internationalised label
 * ("xn--p1ai" for "рф"), which may stand as a top-level domain. */
static bool is_ace_label(uchar *s, size_t n)
{
    return n > 4 && (s[0] | 0x20) == 'x' && (s[1] | 0x20) == 'n' && s[2] == '-' && s[3] == '-';
}

/* The domain after '@' at s[j...]: labels joined by single dots, at least
 * two, the last all letters and two or more long (or an encoded one).
 * Returns its end, or 0. */
static size_t email_domain_end(uchar *s, size_t len, size_t j)
{
    size_t start = j, end = 0, n;
    int labels = 0, end_letters = SC_NONE;

    for (;;) {
        size_t chars;
        bool alpha;
        int letters;
        size_t k = label_at(s, len, j, &chars, &alpha, &letters);
        if (k == 0 || chars > LABEL_MAX)
            break;
        labels++;
        bool tld = (alpha && chars >= 2) || is_ace_label(s + j, k);
        j += k;
        if (labels >= 2 && tld) {
            end = j;                    /* a complete domain so far */
            end_letters = letters;
        }
        if (j - start > EMAIL_DOMAIN_MAX)
            break;
        if (j + 1 < len && s[j] == '.' && script_at(s, len, j + 1, &n) != SC_NONE)
            j++;
        else
            break;
    }
    if (end == 0 || end - start > EMAIL_DOMAIN_MAX)
        return 0;
    /* "a@b.co_x" or "a@b.com@c": not an address we can delimit. */
    if (end < len) {
        int next = script_at(s, len, end, &n);
        if (s[end] == '_' || s[end] == '@' || next == SC_DIGIT || next == end_letters)
            return 0;
    }
    return end;
}

/* The local part: ASCII letters and digits, ". _ % + -", and letters of
 * any script (RFC 6531), all of one script. */
static size_t match_email(uchar *s, size_t len, size_t i)
{
    size_t j = i, n;
    int letters = SC_NONE;

    if (script_at(s, len, i, &n) == SC_NONE || !email_start_ok(s, len, i))
        return 0;
    while (j < len && j - i <= EMAIL_LOCAL_MAX) {
        if (s[j] < 0x80 && is_local_punct(s[j])) {
            j++;
            continue;
        }
        int sc = script_at(s, len, j, &n);
        if (sc == SC_NONE)
            break;
        if (sc != SC_DIGIT) {
            if (letters != SC_NONE && letters != sc)
                break;
            letters = sc;
        }
        j += n;
    }
    if (j == i || j - i > EMAIL_LOCAL_MAX || j >= len || s[j] != '@' || s[j - 1] == '.')
        return 0;
    return email_domain_end(s, len, j + 1);
}

/* ---- card numbers --------------------------------------------------------- */

/* The leading digits of a card network: Visa 4, Mastercard 51-55 and
 * 2221-2720, Mir 2200-2204, Amex 34/37, Diners 30/36/38/39, JCB 35,
 * Hipercard 38, Maestro and Elo 50/56-58, RuPay 60/65/81/82/508, Discover,
 * UnionPay, Elo and Maestro 6. An epoch in milliseconds (1...) is none of
 * them. */
static bool card_network_ok(const char *d)
{
    int two = (d[0] - '0') * 10 + (d[1] - '0');
    int four = two * 100 + (d[2] - '0') * 10 + (d[3] - '0');
    switch (d[0]) {
    case '2': return (four >= 2200 && four <= 2204) || (four >= 2221 && four <= 2720);
    case '3': return two == 30 || (two >= 34 && two <= 39);
    case '4': return true;
    case '5': return two >= 50 && two <= 58;
    case '6': return true;
    case '8': return two == 81 || two == 82;
    default: return false;
    }
}

/* 13-19 digits, either in one group or in groups split by one kind of
 * separator throughout (a space, a dash, a dot, or a dash with spaces
 * around it), the first group of four and the others of three to six
 * (4-4-4-4, 4-6-5, 4-4-4-4-3). */
static size_t match_card(uchar *s, size_t len, size_t i)
{
    char d[CARD_MAX_DIGITS + 1];
    size_t n = 0, j = i, groups = 0, sep = 0, sep_len = 0;
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
        size_t m = sep_at(s, len, j, false);
        if (m == 0 || j + m >= len || !is_digit(s[j + m]))
            break;
        if (sep_len > 0 && !same_sep(s, sep, sep_len, j, m))
            break;
        sep = j;
        sep_len = m;
        j += m;
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

/* A word character glued to position i from before or after: an ASCII
 * letter, digit or '_', or a letter of a script written with spaces. */
static bool glued_before(uchar *s, size_t i)
{
    return i > 0 && (s[i - 1] == '_' || script_before(s, i) == SC_SPACED ||
                     script_before(s, i) == SC_DIGIT);
}

static bool glued_at(uchar *s, size_t len, size_t j)
{
    size_t n;
    if (j >= len)
        return false;
    int sc = script_at(s, len, j, &n);
    return s[j] == '_' || sc == SC_SPACED || sc == SC_DIGIT;
}

/* UK National Insurance number: two letters (not D F I Q U V, the second
 * not O either, and not BG GB KN NK NT TN ZZ), six digits (or three pairs
 * split by spaces), a suffix A-D. Upper case only. QQ, which HMRC keeps
 * for specimens, is taken too: it is what people copy from forms, and a
 * reader cannot tell it from a real one. */
static size_t match_nino(uchar *s, size_t len, size_t i)
{
    static const char *const bad_pairs[] = {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"};

    if (glued_before(s, i))
        return 0;
    if (i + 9 > len || !is_upper(s[i]) || !is_upper(s[i + 1]))
        return 0;
    bool specimen = s[i] == 'Q' && s[i + 1] == 'Q';
    if (!specimen && (strchr("DFIQUV", s[i]) || strchr("DFIOQUV", s[i + 1])))
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
    if (glued_at(s, len, j))
        return 0;
    return j;
}

/* ---- phone numbers -------------------------------------------------------- */

/* The groups of an international number after its prefix, from s[j]:
 * digits, or digits in parentheses ("(0)20"), split by single separators
 * of any kind, up to PHONE_MAX_GROUPS. Returns the end of the last group
 * (0: none, or too many digits or groups) and counts the digits into
 * *digits. A group that does not parse ends the number before it
 * ("+1 415 555 2671 (or"). */
static size_t intl_groups(uchar *s, size_t len, size_t j, size_t *digits)
{
    size_t end = 0, groups = 0;

    for (;;) {
        bool paren = j < len && s[j] == '(';
        size_t k = digits_at(s, len, j + paren);
        if (k == 0 || (paren && (j + 1 + k >= len || s[j + 1 + k] != ')')))
            break;
        j += k + (paren ? 2 : 0);
        end = j;
        *digits += k;
        if (*digits > PHONE_MAX_DIGITS || ++groups > PHONE_MAX_GROUPS)
            return 0;
        size_t m = sep_at(s, len, j, true);
        if (m > 0 && j + m < len && (is_digit(s[j + m]) || s[j + m] == '('))
            j += m;                     /* a separator, then the next group */
        else if (!(j < len && (s[j] == '(' || (paren && is_digit(s[j])))))
            break;                      /* "+44(0)20": no separator needed */
    }
    return end;
}

/* International form: '+', then 8-15 digits in groups ("+44 (0)20 7946
 * 0958", "+14155552671", "+81 3-1234-5678"). */
static size_t match_phone_intl(uchar *s, size_t len, size_t i)
{
    size_t digits = 0;

    if (s[i] != '+' || i + 1 >= len || !(is_digit(s[i + 1]) || s[i + 1] == '('))
        return 0;
    if (i > 0 && (s[i - 1] == '+' || glued_before(s, i)))
        return 0;
    size_t end = intl_groups(s, len, i + 1, &digits);
    if (end == 0 || digits < PHONE_MIN_DIGITS || !num_end_ok(s, len, end))
        return 0;
    return end;
}

/* The length of the ITU country code that digits d (n of them) start
 * with, or 0 when they start with none. Codes are prefix-free: 1 and 7
 * stand alone, and each two-digit start is either a code or the zone of
 * three-digit ones. Indexed by the first two digits: '2' a code, '3' a
 * zone, '.' neither (or handled by the one-digit codes). */
static size_t country_code_len(uchar *d, size_t n)
{
    static const char zone[] =
        ".........." ".........." "23333332.3" "2222232332" "2232222222"
        "3222222223" "2222222333" ".........." "322.23233." "2222223323";
    if (n >= 1 && (d[0] == '1' || d[0] == '7'))
        return 1;
    if (n < 2)
        return 0;
    char z = zone[(d[0] - '0') * 10 + (d[1] - '0')];
    if (z == '2')
        return 2;
    return z == '3' && n >= 3 ? 3 : 0;
}

/* International form dialled with 00: "0044 20 7946 0958", "00 49 30
 * 901820". The country code is a group of its own and one the ITU
 * assigned, so that "0012 3456 7890" stays a number; then groups as after
 * '+', 8-15 digits with the code. */
static size_t match_phone_00(uchar *s, size_t len, size_t i)
{
    size_t j = i + 2, digits;

    if (i + 2 >= len || s[i] != '0' || s[i + 1] != '0' || !num_start_ok(s, i) ||
        in_number_list(s, i))
        return 0;
    if (s[j] == ' ')
        j++;
    size_t k = digits_at(s, len, j);
    if (k == 0 || k > 3 || country_code_len(s + j, k) != k)
        return 0;
    j += k;
    size_t m = sep_at(s, len, j, true);
    if (m == 0 || j + m >= len || !(is_digit(s[j + m]) || s[j + m] == '('))
        return 0;
    digits = k;
    size_t end = intl_groups(s, len, j + m, &digits);
    if (end == 0 || digits < PHONE_MIN_DIGITS || !num_end_ok(s, len, end))
        return 0;
    return end;
}

/* The area code of a national number at s[i...]: "(030)", "(11)" (two
 * digits may go without the trunk 0; three are North American's), or
 * 2-6 digits starting with the trunk 0 and a separator after them. Sets
 * *digits and returns where the next group starts, or 0. */
static size_t trunk_area(uchar *s, size_t len, size_t i, size_t *digits)
{
    size_t k;
    if (s[i] == '(') {
        k = digits_at(s, len, i + 1);
        if (k < 2 || k > 5 || i + 1 + k >= len || s[i + 1 + k] != ')')
            return 0;
        if (s[i + 2] == '0' && s[i + 1] == '0')
            return 0;
        if (k != 2 && s[i + 1] != '0')
            return 0;
        *digits = k;
        size_t j = i + k + 2;
        return j < len && (s[j] == ' ' || s[j] == '-') ? j + 1 : j;
    }
    k = digits_at(s, len, i);
    if (k < 2 || k > 6 || s[i] != '0' || s[i + 1] == '0')
        return 0;
    size_t m = sep_at(s, len, i + k, true);
    if (m == 0)
        return 0;
    *digits = k;
    return i + k + m;
}

/* National form: the area code (see trunk_area), then groups of 2-8
 * digits with one kind of separator between them (the one after the area
 * code may differ: "(11) 91234-5678", "030 12345-67"), 9-12 digits in
 * all: "020 7946 0958", "030/1234567", "01 23 45 67 89", "03-1234-5678",
 * "098765 43210". A leading 0 keeps dates, prices and ISBNs out (none has
 * a first group of two or more digits starting with 0 and that many
 * digits), and the "0-306-40615-2" form of an ISBN has a one-digit group. */
static size_t match_phone_trunk(uchar *s, size_t len, size_t i)
{
    size_t digits = 0, sep = 0, sep_len = 0, end;

    if (!num_start_ok(s, i) || in_number_list(s, i))
        return 0;
    size_t j = trunk_area(s, len, i, &digits);
    if (j == 0)
        return 0;
    for (;;) {
        size_t k = digits_at(s, len, j);
        if (k < 2 || k > 8)
            return 0;
        digits += k;
        j += k;
        end = j;
        if (digits > TRUNK_MAX_DIGITS)
            return 0;
        size_t m = sep_at(s, len, j, true);
        if (m == 0 || j + m >= len || !is_digit(s[j + m]))
            break;
        if (sep_len > 0 && !same_sep(s, sep, sep_len, j, m))
            break;
        sep = j;
        sep_len = m;
        j += m;
    }
    if (digits < TRUNK_MIN_DIGITS || !num_end_ok(s, len, end))
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
 * first match and sets *kind, or 0. An address is tried only when an '@'
 * is near enough (at_near), which most words are not. */
static size_t match_at(uchar *s, size_t len, size_t i, bool at_near, pii_kind *kind)
{
    size_t end = 0;
    int ch = s[i];

    if (at_near && (is_alnum(ch) || ch >= 0x80) && (end = match_email(s, len, i)) != 0) {
        *kind = PII_EMAIL;
    } else if (is_digit(ch)) {
        if ((end = match_ssn(s, len, i)) != 0)
            *kind = PII_SSN;
        else if ((end = match_card(s, len, i)) != 0)
            *kind = PII_CARD;
        else if ((end = match_phone_nanp(s, len, i)) != 0 ||
                 (end = match_phone_00(s, len, i)) != 0 ||
                 (end = match_phone_trunk(s, len, i)) != 0)
            *kind = PII_PHONE;
    } else if (ch == '+') {
        if ((end = match_phone_intl(s, len, i)) != 0)
            *kind = PII_PHONE;
    } else if (ch == '(') {
        if ((end = match_phone_nanp(s, len, i)) != 0 ||
            (end = match_phone_trunk(s, len, i)) != 0)
            *kind = PII_PHONE;
    } else if (is_upper(ch)) {
        if ((end = match_nino(s, len, i)) != 0)
            *kind = PII_NATIONAL_ID;
    }
    return end;
}

/* No match can start at a character glued to the one before it: a letter
 * or digit after a letter or digit of a script written with spaces (the
 * middle of a word or a number), or a letter after one of the same dense
 * script. Every matcher would refuse it; skipping it here saves trying. */
static bool inside_word(int prev, int cur)
{
    if (prev == SC_DIGIT || prev == SC_SPACED)
        return cur == SC_DIGIT || cur == SC_SPACED;
    return prev == SC_DENSE && cur == SC_DENSE;
}

int pii_find(const char *text, size_t len, int (*fn)(void *user, const pii_match *m),
             void *user)
{
    text_fold f;
    int found = 0, prev = SC_NONE;

    if (text_fold_init(&f, text, text ? len : 0, PII_FOLD) < 0)
        return -1;
    uchar *s = (uchar *)f.s;
    size_t at = 0;                      /* the next '@' at or after i, or f.len */
    for (size_t i = 0, n; i < f.len; i += n) {
        if (at < i || i == 0) {
            const uchar *p = memchr(s + i, '@', f.len - i);
            at = p ? (size_t)(p - s) : f.len;
        }
        int cur = s[i] < 0x80 ? (n = 1, ascii_script(s[i])) : script_at(s, f.len, i, &n);
        if (inside_word(prev, cur) && s[i] < 0x80) {
            while (i + n < f.len && is_alnum(s[i + n]))
                n++;                    /* the rest of the word or number */
            prev = cur;
            continue;
        }
        pii_kind kind = PII_EMAIL;
        bool at_near = at < f.len && at - i <= EMAIL_LOCAL_MAX;
        size_t end = inside_word(prev, cur) ? 0 : match_at(s, f.len, i, at_near, &kind);
        prev = cur;
        if (end > i) {
            pii_match m = {kind, text_fold_src_start(&f, i), text_fold_src_end(&f, end)};
            found++;
            if (fn(user, &m) != 0)
                break;
            n = end - i;
            prev = script_before(s, end);
        }
    }
    text_fold_free(&f);
    return found;
}

typedef struct scrub_state {
    strbuf *out;
    const char *text;
    size_t copied;
    pii_counts counts;
} scrub_state;

static int scrub_match(void *user, const pii_match *m)
{
    scrub_state *st = user;

    strbuf_addn(st->out, st->text + st->copied, m->start - st->copied);
    strbuf_add(st->out, pii_token(m->kind));
    st->copied = m->end;
    switch (m->kind) {
    case PII_EMAIL: st->counts.email++; break;
    case PII_PHONE: st->counts.phone++; break;
    case PII_SSN: st->counts.ssn++; break;
    case PII_NATIONAL_ID: st->counts.national_id++; break;
    case PII_CARD: st->counts.card++; break;
    }
    return 0;
}

void pii_scrub_into(strbuf *out, const char *text, size_t len, pii_counts *counts)
{
    scrub_state st = {out, text, 0, {0}};

    if (!text)
        return;
    if (pii_find(text, len, scrub_match, &st) < 0) {
        out->oom = true;                /* nothing unscrubbed goes out */
        return;
    }
    strbuf_addn(out, text + st.copied, len - st.copied);
    if (counts) {
        counts->email += st.counts.email;
        counts->phone += st.counts.phone;
        counts->ssn += st.counts.ssn;
        counts->national_id += st.counts.national_id;
        counts->card += st.counts.card;
    }
}

char *pii_scrub(const char *text, size_t len, size_t *out_len, pii_counts *counts)
{
    strbuf b = {0};

    pii_scrub_into(&b, text ? text : "", text ? len : 0, counts);
    return strbuf_take(&b, out_len);
}

/* ---- streaming ------------------------------------------------------------ */

/* What the cut sees of a word: its visible characters, folded. */
typedef struct word_shape {
    int visible;            /* characters that are not invisible */
    bool all_sep;           /* all of them '-', '.' or '/' */
    char last;              /* the last one folded to ASCII, or 0 */
    int caps;               /* capitals at its end */
    bool caps_glued;        /* a letter, digit or '_' right before those */
} word_shape;

static void word_begin(word_shape *w)
{
    memset(w, 0, sizeof(*w));
    w->all_sep = true;
}

static void word_add(word_shape *w, char ascii)
{
    if (is_upper(ascii)) {
        if (w->caps == 0)
            w->caps_glued = is_alnum(w->last) || w->last == '_';
        w->caps++;
    } else {
        w->caps = 0;
    }
    w->visible++;
    w->all_sep = w->all_sep && (ascii == '-' || ascii == '.' || ascii == '/');
    w->last = ascii;
}

/* A word a match may run on from into the next one: it ends in a digit or
 * ')' ("+1", "(415)", "4111"), it is only separators ("-" in "4111 - 1111"),
 * or it ends in one or two capitals that a NINO may start with, or end
 * with ("QQ", "(QQ", "C" of "QQ 12 34 56 C"). */
static bool word_may_continue(const word_shape *w)
{
    if (w->visible == 0)
        return false;
    if (is_digit(w->last) || w->last == ')' || w->all_sep)
        return true;
    return w->caps >= 1 && w->caps <= 2 && !w->caps_glued;
}

/* A character in a stream: white space (any kind), a visible part of a
 * word, an invisible one (glue: never a cut), or a break: a character no
 * match can hold and none looks across (not ASCII, not a letter, not
 * folded to ASCII: "、", "。", "€", an emoji, U+FFFD), after which a cut
 * is as safe as after white space. */
enum { CH_SPACE, CH_WORD, CH_INVISIBLE, CH_BREAK };

/* The kind of the character at s[i]; its length in *n and, for CH_WORD,
 * the ASCII it folds to (0 for a letter that stays non-ASCII) in *ascii. */
static int stream_char(uchar *s, size_t len, size_t i, size_t *n, char *ascii)
{
    uint32_t cp;

    *ascii = 0;
    if (s[i] > 0x20 && s[i] < 0x7F) {   /* the common case, as text_fold_char says */
        *n = 1;
        *ascii = (char)s[i];
        return CH_WORD;
    }
    *n = text_fold_decode(s + i, len - i, &cp);
    if (cp == 0xFFFD && *n == 1 && s[i] >= 0x80) {
        /* A character whose rest has not come yet stays whole, in its
         * word, with everything after it: a cut inside would split it. */
        size_t need = s[i] >= 0xF0 ? 4 : s[i] >= 0xE0 ? 3 : s[i] >= 0xC0 ? 2 : 1;
        if (len - i >= need)
            return CH_BREAK;
        *n = len - i;
        return CH_WORD;
    }
    switch (text_fold_char(cp, PII_FOLD, ascii)) {
    case TF_BLANK: return CH_SPACE;
    case TF_DROP: return CH_INVISIBLE;
    case TF_MAP: return CH_WORD;
    case TF_KEEP: break;
    }
    if (cp < 0x80 || text_fold_class(cp) != TF_NONE)
        return CH_WORD;
    return CH_BREAK;
}

/* Whether the word at s[from, to) may go on into the next one (see
 * word_may_continue). plain: it is printable ASCII only, the common case,
 * judged from its bytes; otherwise from its folded characters. */
static bool span_may_continue(uchar *s, size_t from, size_t to, bool plain)
{
    if (plain) {
        if (to == from)
            return false;
        int last = s[to - 1];
        if (is_digit(last) || last == ')')
            return true;
        size_t k = from;
        while (k < to && is_punct_sep(s[k], true))
            k++;
        if (k == to)
            return true;
        for (k = to; k > from && is_upper(s[k - 1]);)
            k--;
        bool glued = k > from && (is_alnum(s[k - 1]) || s[k - 1] == '_');
        return to - k >= 1 && to - k <= 2 && !glued;
    }
    word_shape w;
    word_begin(&w);
    for (size_t i = from, n; i < to; i += n) {
        char ascii;
        if (stream_char(s, to, i, &n, &ascii) == CH_WORD)
            word_add(&w, ascii);
    }
    return word_may_continue(&w);
}

/* Where the held text can be cut: everything before the returned offset
 * can be scrubbed and given out now. One pass forward, keeping where the
 * current word starts (after white space or its last break) and where
 * the run of words that may go on before it starts. */
static size_t stream_cut(uchar *s, size_t len)
{
    size_t start = 0, chain = SIZE_MAX;
    bool in_word = false, broken = false, plain = true;

    for (size_t i = 0, n = 1; i < len; i += n) {
        char ascii;
        int kind = CH_WORD;
        n = 1;
        if (!(s[i] > 0x20 && s[i] < 0x7F))
            kind = stream_char(s, len, i, &n, &ascii);
        if (kind == CH_SPACE) {
            if (in_word) {
                bool may = span_may_continue(s, start, i, plain);
                if (broken || !may)
                    chain = SIZE_MAX;
                if (may && chain == SIZE_MAX)
                    chain = start;
            }
            in_word = false;
            continue;
        }
        if (kind == CH_BREAK || !in_word) {
            /* A new word; after a break nothing before it joins what follows. */
            start = kind == CH_BREAK ? i + n : i;
            broken = kind == CH_BREAK;
            plain = true;
            in_word = true;
        }
        if (kind != CH_BREAK && !(n == 1 && s[i] > 0x20 && s[i] < 0x7F))
            plain = false;
    }
    if (in_word && broken)
        return start;
    if (chain != SIZE_MAX)
        return chain;
    return in_word ? start : len;
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
