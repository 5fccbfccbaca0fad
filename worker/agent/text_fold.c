/*
 * text_fold.c - the folded view of text and its map back (see
 * text_fold.h).
 *
 * The map is a list of segments in folded order. A linear segment copies
 * bytes one for one (the bytes may change, as in lower-casing, but byte k
 * of it comes from byte k of its source); a unit segment stands for its
 * source bytes as a whole (a no-break space that became ' ', a run of
 * white space, a full-width letter). Dropped characters belong to no
 * segment, so they show as a jump in source offsets between two
 * segments. Text that needs no folding gets no copy and no segments.
 */
#include "text_fold.h"

#include <stdlib.h>
#include <string.h>

#include "utf8.h"

struct tf_seg {
    size_t out;             /* first folded byte */
    size_t src;             /* first source byte */
    size_t src_len;         /* source bytes it stands for */
    bool unit;
};

typedef struct range {
    uint32_t lo, hi;
    unsigned char val;
} range;

/* The value of the range holding cp in a sorted table, or dflt. */
static unsigned range_find(const range *t, size_t n, uint32_t cp, unsigned dflt)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cp < t[mid].lo)
            hi = mid;
        else if (cp > t[mid].hi)
            lo = mid + 1;
        else
            return t[mid].val;
    }
    return dflt;
}

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* ---- what each character folds to ---------------------------------------- */

/* The base folding, for every flag set. val: a character to map to, or one
 * of the codes below. */
enum { B_DROP = 1, B_SPACE = 2, B_NEWLINE = 3, B_FULLWIDTH = 4 };

static const range base_fold[] = {
    {0x0080, 0x0084, B_DROP},   {0x0085, 0x0085, B_NEWLINE}, {0x0086, 0x009F, B_DROP},
    {0x00A0, 0x00A0, B_SPACE},  {0x00AD, 0x00AD, B_DROP},    {0x034F, 0x034F, B_DROP},
    {0x061C, 0x061C, B_DROP},   {0x115F, 0x1160, B_DROP},    {0x1680, 0x1680, B_SPACE},
    {0x17B4, 0x17B5, B_DROP},   {0x180B, 0x180F, B_DROP},    {0x2000, 0x200A, B_SPACE},
    {0x200B, 0x200F, B_DROP},   {0x2010, 0x2015, '-'},       {0x2028, 0x2029, B_NEWLINE},
    {0x202A, 0x202E, B_DROP},   {0x202F, 0x202F, B_SPACE},   {0x205F, 0x205F, B_SPACE},
    {0x2060, 0x2064, B_DROP},   {0x2066, 0x206F, B_DROP},    {0x2212, 0x2212, '-'},
    {0x3000, 0x3000, B_SPACE},  {0x3164, 0x3164, B_DROP},    {0xFE00, 0xFE0F, B_DROP},
    {0xFE50, 0xFE50, ','},      {0xFE52, 0xFE52, '.'},       {0xFE54, 0xFE54, ';'},
    {0xFE55, 0xFE55, ':'},      {0xFE56, 0xFE56, '?'},       {0xFE57, 0xFE57, '!'},
    {0xFE58, 0xFE58, '-'},      {0xFE59, 0xFE59, '('},       {0xFE5A, 0xFE5A, ')'},
    {0xFE5F, 0xFE5F, '#'},      {0xFE60, 0xFE60, '&'},       {0xFE61, 0xFE61, '*'},
    {0xFE62, 0xFE62, '+'},      {0xFE63, 0xFE63, '-'},       {0xFE64, 0xFE64, '<'},
    {0xFE65, 0xFE65, '>'},      {0xFE66, 0xFE66, '='},       {0xFE68, 0xFE68, '\\'},
    {0xFE69, 0xFE69, '$'},      {0xFE6A, 0xFE6A, '%'},       {0xFE6B, 0xFE6B, '@'},
    {0xFEFF, 0xFEFF, B_DROP},   {0xFF01, 0xFF5E, B_FULLWIDTH}, {0xFFA0, 0xFFA0, B_DROP},
    {0xFFF9, 0xFFFB, B_DROP},   {0x1BCA0, 0x1BCA3, B_DROP},  {0x1D173, 0x1D17A, B_DROP},
    {0xE0000, 0xE0FFF, B_DROP},
};

/* Latin-1 and Latin Extended-A letters with diacritics: their base letter
 * ('*': none, e.g. for the ligatures and the multiplication sign). */
static const char latin1_base[] =       /* U+00C0-U+00FF */
    "AAAAAA*CEEEEIIII" "DNOOOOO*OUUUUY**" "aaaaaa*ceeeeiiii" "dnooooo*ouuuuy*y";
static const char latin_ext_a_base[] =  /* U+0100-U+017F */
    "AaAaAaCcCcCcCcDd" "DdEeEeEeEeEeGgGg" "GgGgHhHhIiIiIiIi" "Ii**JjKkkLlLlLlL"
    "lLlNnNnNnnNnOoOo" "Oo**RrRrRrSsSsSs" "SsTtTtTtUuUuUuUu" "UuUuWwYyYZzZzZzs";

/* Characters of other scripts and styles that pass for Latin letters or
 * for the signs of chat-template tokens (after Unicode's confusables
 * list, the part that matters for ASCII markers). */
static const range confusable[] = {
    {0x00A6, 0x00A6, '|'}, {0x0180, 0x0180, 'b'}, {0x01A0, 0x01A0, 'O'}, {0x01A1, 0x01A1, 'o'},
    {0x01AF, 0x01AF, 'U'}, {0x01B0, 0x01B0, 'u'}, {0x01C0, 0x01C0, '|'}, {0x0218, 0x0218, 'S'},
    {0x0219, 0x0219, 's'}, {0x021A, 0x021A, 'T'}, {0x021B, 0x021B, 't'}, {0x0237, 0x0237, 'j'},
    {0x0251, 0x0251, 'a'}, {0x0261, 0x0261, 'g'}, {0x0262, 0x0262, 'G'}, {0x0269, 0x0269, 'i'},
    {0x026A, 0x026A, 'I'}, {0x0274, 0x0274, 'N'}, {0x0280, 0x0280, 'R'}, {0x028F, 0x028F, 'Y'},
    {0x0299, 0x0299, 'B'}, {0x029C, 0x029C, 'H'}, {0x029F, 0x029F, 'L'}, {0x02C2, 0x02C2, '<'},
    {0x02C3, 0x02C3, '>'}, {0x02D0, 0x02D0, ':'}, {0x0391, 0x0391, 'A'}, {0x0392, 0x0392, 'B'},
    {0x0395, 0x0395, 'E'}, {0x0396, 0x0396, 'Z'}, {0x0397, 0x0397, 'H'}, {0x0399, 0x0399, 'I'},
    {0x039A, 0x039A, 'K'}, {0x039C, 0x039C, 'M'}, {0x039D, 0x039D, 'N'}, {0x039F, 0x039F, 'O'},
    {0x03A1, 0x03A1, 'P'}, {0x03A4, 0x03A4, 'T'}, {0x03A5, 0x03A5, 'Y'}, {0x03A7, 0x03A7, 'X'},
    {0x03AC, 0x03AC, 'a'}, {0x03AF, 0x03AF, 'i'}, {0x03B1, 0x03B1, 'a'}, {0x03B9, 0x03B9, 'i'},
    {0x03BA, 0x03BA, 'k'}, {0x03BD, 0x03BD, 'v'}, {0x03BF, 0x03BF, 'o'}, {0x03C1, 0x03C1, 'p'},
    {0x03C5, 0x03C5, 'u'}, {0x03C7, 0x03C7, 'x'}, {0x03CC, 0x03CC, 'o'}, {0x03CD, 0x03CD, 'u'},
    {0x03F2, 0x03F2, 'c'}, {0x03F3, 0x03F3, 'j'}, {0x03F9, 0x03F9, 'C'}, {0x0405, 0x0405, 'S'},
    {0x0406, 0x0406, 'I'}, {0x0408, 0x0408, 'J'}, {0x0410, 0x0410, 'A'}, {0x0412, 0x0412, 'B'},
    {0x0415, 0x0415, 'E'}, {0x041A, 0x041A, 'K'}, {0x041C, 0x041C, 'M'}, {0x041D, 0x041D, 'H'},
    {0x041E, 0x041E, 'O'}, {0x0420, 0x0420, 'P'}, {0x0421, 0x0421, 'C'}, {0x0422, 0x0422, 'T'},
    {0x0423, 0x0423, 'Y'}, {0x0425, 0x0425, 'X'}, {0x0430, 0x0430, 'a'}, {0x0435, 0x0435, 'e'},
    {0x043E, 0x043E, 'o'}, {0x0440, 0x0440, 'p'}, {0x0441, 0x0441, 'c'}, {0x0443, 0x0443, 'y'},
    {0x0445, 0x0445, 'x'}, {0x0450, 0x0451, 'e'}, {0x0455, 0x0455, 's'}, {0x0456, 0x0457, 'i'},
    {0x0458, 0x0458, 'j'}, {0x04BB, 0x04BB, 'h'}, {0x04C0, 0x04C0, 'I'}, {0x04CF, 0x04CF, 'l'},
    {0x0501, 0x0501, 'd'}, {0x051B, 0x051B, 'q'}, {0x051D, 0x051D, 'w'}, {0x0570, 0x0570, 'h'},
    {0x0578, 0x0578, 'n'}, {0x057D, 0x057D, 'u'}, {0x0585, 0x0585, 'o'}, {0x05C0, 0x05C0, '|'},
    {0x1D00, 0x1D00, 'A'}, {0x1D04, 0x1D04, 'C'}, {0x1D05, 0x1D05, 'D'}, {0x1D07, 0x1D07, 'E'},
    {0x1D0A, 0x1D0A, 'J'}, {0x1D0B, 0x1D0B, 'K'}, {0x1D0D, 0x1D0D, 'M'}, {0x1D0F, 0x1D0F, 'O'},
    {0x1D18, 0x1D18, 'P'}, {0x1D1B, 0x1D1B, 'T'}, {0x1D1C, 0x1D1C, 'U'}, {0x1D20, 0x1D20, 'V'},
    {0x1D21, 0x1D21, 'W'}, {0x1D22, 0x1D22, 'Z'}, {0x2039, 0x2039, '<'}, {0x203A, 0x203A, '>'},
    {0x210E, 0x210E, 'h'}, {0x2113, 0x2113, 'l'}, {0x2160, 0x2160, 'I'}, {0x2164, 0x2164, 'V'},
    {0x2169, 0x2169, 'X'}, {0x216C, 0x216C, 'L'}, {0x216D, 0x216D, 'C'}, {0x216E, 0x216E, 'D'},
    {0x216F, 0x216F, 'M'}, {0x2170, 0x2170, 'i'}, {0x2174, 0x2174, 'v'}, {0x2179, 0x2179, 'x'},
    {0x217C, 0x217C, 'l'}, {0x217D, 0x217D, 'c'}, {0x217E, 0x217E, 'd'}, {0x217F, 0x217F, 'm'},
    {0x2223, 0x2223, '|'}, {0x2236, 0x2236, ':'}, {0x2329, 0x2329, '<'}, {0x232A, 0x232A, '>'},
    {0x2502, 0x2502, '|'}, {0x3008, 0x3008, '<'}, {0x3009, 0x3009, '>'}, {0xA731, 0xA731, 'S'},
    {0xA789, 0xA789, ':'}, {0xFFE8, 0xFFE8, '|'},
};

/* Combining diacritical marks: dropped with TF_CONFUSABLE ("i" followed
 * by U+0301 reads as an accented i, which reads as i). */
static const range combining[] = {
    {0x0300, 0x036F, 1}, {0x1AB0, 0x1AFF, 1}, {0x1DC0, 0x1DFF, 1},
    {0x20D0, 0x20FF, 1}, {0xFE20, 0xFE2F, 1},
};

/* Styled alphabets in blocks of 26 capitals then 26 small letters, or of
 * 26 capitals only: mathematical alphanumerics (bold, italic, script,
 * fraktur, double-struck, sans-serif, monospace), circled and squared
 * letters. */
static char styled_letter(uint32_t cp)
{
    if (cp >= 0x1D400 && cp <= 0x1D6A3) {
        uint32_t k = (cp - 0x1D400) % 52;
        return (char)(k < 26 ? 'A' + k : 'a' + k - 26);
    }
    if (cp == 0x1D6A4)
        return 'i';
    if (cp == 0x1D6A5)
        return 'j';
    if (cp >= 0x1D7CE && cp <= 0x1D7FF)
        return (char)('0' + (cp - 0x1D7CE) % 10);
    if (cp >= 0x24B6 && cp <= 0x24CF)
        return (char)('A' + cp - 0x24B6);
    if (cp >= 0x24D0 && cp <= 0x24E9)
        return (char)('a' + cp - 0x24D0);
    if ((cp >= 0x1F130 && cp <= 0x1F149) || (cp >= 0x1F150 && cp <= 0x1F169) ||
        (cp >= 0x1F170 && cp <= 0x1F189))
        return (char)('A' + (cp - 0x1F130) % 32);
    return 0;
}

static char confusable_letter(uint32_t cp)
{
    char c = 0;
    if (cp >= 0xC0 && cp <= 0xFF)
        c = latin1_base[cp - 0xC0];
    else if (cp >= 0x100 && cp <= 0x17F)
        c = latin_ext_a_base[cp - 0x100];
    else if (cp >= 0x1D400 || (cp >= 0x24B6 && cp <= 0x24E9))
        c = styled_letter(cp);
    else
        c = (char)range_find(confusable, NELEM(confusable), cp, 0);
    return c == '*' ? 0 : c;
}

static bool ascii_space(uint32_t c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Whether cp may be in base_fold: a quick no for the letters of most
 * scripts, before the search. */
static bool maybe_base_fold(uint32_t cp)
{
    return !((cp > 0xAD && cp < 0x34F) || (cp > 0x34F && cp < 0x61C) ||
             (cp > 0x61C && cp < 0x115F) || (cp > 0x3000 && cp < 0x3164) ||
             (cp > 0x3164 && cp < 0xFE00));
}

static tf_kind fold_nonascii(uint32_t cp, unsigned flags, char *ascii)
{
    unsigned b = maybe_base_fold(cp) ? range_find(base_fold, NELEM(base_fold), cp, 0) : 0;
    switch (b) {
    case 0: break;
    case B_DROP: return TF_DROP;
    case B_SPACE: *ascii = ' '; return TF_BLANK;
    case B_NEWLINE: *ascii = '\n'; return TF_BLANK;
    case B_FULLWIDTH: *ascii = (char)(cp - 0xFEE0); return TF_MAP;
    default: *ascii = (char)b; return TF_MAP;
    }
    if (!(flags & TF_CONFUSABLE))
        return TF_KEEP;
    if (range_find(combining, NELEM(combining), cp, 0))
        return TF_DROP;
    char c = confusable_letter(cp);
    if (c == 0)
        return TF_KEEP;
    *ascii = c;
    return TF_MAP;
}

tf_kind text_fold_char(uint32_t cp, unsigned flags, char *ascii)
{
    tf_kind k;
    char c = 0;

    if (cp < 0x80) {
        if (ascii_space(cp)) {
            *ascii = (char)cp;
            return TF_BLANK;
        }
        if (cp < 0x20 || cp == 0x7F) {
            *ascii = 0;
            return TF_DROP;
        }
        c = (char)cp;
        k = TF_KEEP;
    } else {
        k = fold_nonascii(cp, flags, &c);
    }
    if ((flags & TF_CASE) && c >= 'A' && c <= 'Z') {
        c = (char)(c + 32);
        k = TF_MAP;
    }
    *ascii = c;
    return k;
}

/* ---- word classes ---------------------------------------------------------- */

/* Non-ASCII ranges that are not TF_WORD; everything else is. Coarse on
 * purpose: it only has to tell letters from punctuation and symbols, and
 * scripts written without spaces from those written with them. */
static const range classes[] = {
    {0x0080, 0x00A9, TF_NONE},  {0x00AB, 0x00B4, TF_NONE},  {0x00B6, 0x00B9, TF_NONE},
    {0x00BB, 0x00BF, TF_NONE},  {0x00D7, 0x00D7, TF_NONE},  {0x00F7, 0x00F7, TF_NONE},
    {0x037E, 0x037E, TF_NONE},  {0x0387, 0x0387, TF_NONE},  {0x055A, 0x055F, TF_NONE},
    {0x0589, 0x058A, TF_NONE},  {0x05BE, 0x05BE, TF_NONE},  {0x05C0, 0x05C0, TF_NONE},
    {0x05C3, 0x05C3, TF_NONE},  {0x05C6, 0x05C6, TF_NONE},  {0x05F3, 0x05F4, TF_NONE},
    {0x0600, 0x060F, TF_NONE},  {0x061B, 0x061F, TF_NONE},  {0x066A, 0x066D, TF_NONE},
    {0x06D4, 0x06D4, TF_NONE},  {0x0964, 0x0965, TF_NONE},  {0x0970, 0x0970, TF_NONE},
    {0x0E00, 0x0E3E, TF_DENSE}, {0x0E3F, 0x0E3F, TF_NONE},  {0x0E40, 0x0E4E, TF_DENSE},
    {0x0E4F, 0x0E4F, TF_NONE},  {0x0E50, 0x0E59, TF_DENSE}, {0x0E5A, 0x0E5B, TF_NONE},
    {0x0E80, 0x0EFF, TF_DENSE}, {0x0F04, 0x0F12, TF_NONE},  {0x1000, 0x1049, TF_DENSE},
    {0x104A, 0x104F, TF_NONE},  {0x1050, 0x109F, TF_DENSE}, {0x10FB, 0x10FB, TF_NONE},
    {0x1360, 0x1368, TF_NONE},  {0x166D, 0x166E, TF_NONE},  {0x1680, 0x1680, TF_NONE},
    {0x169B, 0x169C, TF_NONE},  {0x16EB, 0x16ED, TF_NONE},  {0x1780, 0x17D3, TF_DENSE},
    {0x17D4, 0x17DA, TF_NONE},  {0x17DB, 0x17FF, TF_DENSE}, {0x1800, 0x180A, TF_NONE},
    {0x2000, 0x2BFF, TF_NONE},  {0x2E00, 0x2E7F, TF_NONE},  {0x2E80, 0x2FDF, TF_DENSE},
    {0x2FF0, 0x3004, TF_NONE},  {0x3005, 0x3007, TF_DENSE}, {0x3008, 0x3020, TF_NONE},
    {0x3021, 0x302F, TF_DENSE}, {0x3030, 0x3030, TF_NONE},  {0x3031, 0x3035, TF_DENSE},
    {0x3036, 0x3037, TF_NONE},  {0x3038, 0x303C, TF_DENSE}, {0x303D, 0x303F, TF_NONE},
    {0x3040, 0x309F, TF_DENSE}, {0x30A0, 0x30A0, TF_NONE},  {0x30A1, 0x30FA, TF_DENSE},
    {0x30FB, 0x30FB, TF_NONE},  {0x30FC, 0x31FF, TF_DENSE}, {0x3200, 0x33FF, TF_NONE},
    {0x3400, 0x4DBF, TF_DENSE}, {0x4DC0, 0x4DFF, TF_NONE},  {0x4E00, 0xA4CF, TF_DENSE},
    {0xA4FE, 0xA4FF, TF_NONE},  {0xA60D, 0xA60F, TF_NONE},  {0xA673, 0xA673, TF_NONE},
    {0xA67E, 0xA67E, TF_NONE},  {0xA6F2, 0xA6F7, TF_NONE},  {0xA700, 0xA716, TF_NONE},
    {0xA720, 0xA721, TF_NONE},  {0xA789, 0xA78A, TF_NONE},  {0xA828, 0xA82B, TF_NONE},
    {0xA830, 0xA839, TF_NONE},  {0xA874, 0xA877, TF_NONE},  {0xA8CE, 0xA8CF, TF_NONE},
    {0xA8F8, 0xA8FA, TF_NONE},  {0xA92E, 0xA92F, TF_NONE},  {0xA95F, 0xA95F, TF_NONE},
    {0xA9C1, 0xA9CD, TF_NONE},  {0xA9DE, 0xA9DF, TF_NONE},  {0xA9E0, 0xA9FF, TF_DENSE},
    {0xAA5C, 0xAA5F, TF_NONE},  {0xAA60, 0xAADF, TF_DENSE}, {0xAC00, 0xD7FF, TF_DENSE},
    {0xE000, 0xF8FF, TF_NONE},  {0xF900, 0xFAFF, TF_DENSE}, {0xFD3E, 0xFD3F, TF_NONE},
    {0xFDFC, 0xFDFD, TF_NONE},  {0xFE00, 0xFE6F, TF_NONE},  {0xFEFF, 0xFF0F, TF_NONE},
    {0xFF1A, 0xFF20, TF_NONE},  {0xFF3B, 0xFF40, TF_NONE},  {0xFF5B, 0xFF65, TF_NONE},
    {0xFF66, 0xFFDC, TF_DENSE}, {0xFFE0, 0xFFFF, TF_NONE},  {0x1D000, 0x1D24F, TF_NONE},
    {0x1F000, 0x1FBFF, TF_NONE}, {0x20000, 0x3FFFF, TF_DENSE}, {0xE0000, 0x10FFFF, TF_NONE},
};

tf_class text_fold_class(uint32_t cp)
{
    if (cp < 0x80) {
        bool alnum = (cp >= '0' && cp <= '9') || ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z');
        return alnum ? TF_WORD : TF_NONE;
    }
    /* The common scripts first: Latin, Greek, Cyrillic letters; CJK. */
    if (cp >= 0xC0 && cp <= 0x36F && cp != 0xD7 && cp != 0xF7)
        return TF_WORD;
    if ((cp >= 0x400 && cp <= 0x52F) || (cp >= 0x388 && cp <= 0x3FF))
        return TF_WORD;
    if (cp >= 0x4E00 && cp <= 0x9FFF)
        return TF_DENSE;
    return (tf_class)range_find(classes, NELEM(classes), cp, TF_WORD);
}

/* ---- decoding ---------------------------------------------------------------- */

size_t text_fold_decode(const unsigned char *s, size_t avail, uint32_t *cp)
{
    size_t n = utf8_sequence_len(s, avail);
    switch (n) {
    case 1: *cp = s[0]; return 1;
    case 2: *cp = ((uint32_t)(s[0] & 0x1F) << 6) | (s[1] & 0x3F); return 2;
    case 3:
        *cp = ((uint32_t)(s[0] & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
        return 3;
    case 4:
        *cp = ((uint32_t)(s[0] & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) |
              ((uint32_t)(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
        return 4;
    default:
        *cp = 0xFFFD;
        return 1;
    }
}

/* ---- building the fold ----------------------------------------------------- */

typedef struct builder {
    text_fold *f;
    const unsigned char *src;
    unsigned flags;
    bool oom;
} builder;

static bool reserve(builder *b, size_t n)
{
    text_fold *f = b->f;
    if (b->oom)
        return false;
    if (f->cap - f->len > n)
        return true;
    size_t cap = f->cap ? f->cap : 64;
    while (cap - f->len <= n) {
        if (cap > SIZE_MAX / 2) {
            b->oom = true;
            return false;
        }
        cap *= 2;
    }
    char *p = realloc(f->buf, cap);
    if (!p) {
        b->oom = true;
        return false;
    }
    f->buf = p;
    f->s = p;
    f->cap = cap;
    return true;
}

static tf_seg *new_seg(builder *b, size_t src, bool unit)
{
    text_fold *f = b->f;
    if (f->nseg == f->segcap) {
        size_t cap = f->segcap ? 2 * f->segcap : 16;
        tf_seg *p = cap < SIZE_MAX / sizeof(*p) ? realloc(f->seg, cap * sizeof(*p)) : NULL;
        if (!p) {
            b->oom = true;
            return NULL;
        }
        f->seg = p;
        f->segcap = cap;
    }
    tf_seg *g = &f->seg[f->nseg++];
    g->out = f->len;
    g->src = src;
    g->src_len = 0;
    g->unit = unit;
    return g;
}

/* Appends n folded bytes that come one for one from source bytes at src. */
static void emit_linear(builder *b, size_t src, const char *bytes, size_t n)
{
    text_fold *f = b->f;
    if (!reserve(b, n))
        return;
    tf_seg *g = f->nseg ? &f->seg[f->nseg - 1] : NULL;
    if (!g || g->unit || g->src + g->src_len != src || g->out + g->src_len != f->len)
        g = new_seg(b, src, false);
    if (!g)
        return;
    memcpy(f->buf + f->len, bytes, n);
    f->len += n;
    g->src_len += n;
}

/* Appends n folded bytes that stand for src_len source bytes at src. */
static void emit_unit(builder *b, size_t src, size_t src_len, const char *bytes, size_t n)
{
    text_fold *f = b->f;
    if (!reserve(b, n))
        return;
    tf_seg *g = new_seg(b, src, true);
    if (!g)
        return;
    g->src_len = src_len;
    memcpy(f->buf + f->len, bytes, n);
    f->len += n;
}

/* Whether the character at s[j] (non-ASCII) is copied as it is, and its
 * length. The prolonged sound mark is left to fold_one, which knows what
 * precedes it. */
static bool kept_as_is(const builder *b, size_t j, size_t len, size_t *n)
{
    uint32_t cp;
    char c;
    *n = text_fold_decode(b->src + j, len - j, &cp);
    if ((cp == 0xFFFD && *n == 1) || cp == 0x30FC || cp == 0xFF70)
        return false;
    return text_fold_char(cp, b->flags, &c) == TF_KEEP;
}

/* Characters from i on that fold to themselves (ASCII ones possibly to
 * their lower case): copied in one go, the common case. Returns where
 * they end. */
static size_t plain_run(builder *b, size_t i, size_t len)
{
    const unsigned char *s = b->src;
    unsigned char space = (b->flags & TF_SPACE) ? 0x21 : 0x20;
    size_t j = i, n;
    for (;;) {
        while (j < len && s[j] >= space && s[j] < 0x7F)
            j++;
        if (j < len && s[j] >= 0x80 && kept_as_is(b, j, len, &n))
            j += n;
        else
            break;
    }
    if (j == i)
        return j;
    size_t out = b->f->len;
    emit_linear(b, i, (const char *)s + i, j - i);
    if (!b->oom && (b->flags & TF_CASE))
        for (size_t k = out; k < b->f->len; k++)
            if (b->f->buf[k] >= 'A' && b->f->buf[k] <= 'Z')
                b->f->buf[k] = (char)(b->f->buf[k] + 32);
    return j;
}

/* A run of white space at i for TF_SPACE: white space of any kind and the
 * invisible characters in it. Returns where it ends. */
static size_t blank_run_end(builder *b, size_t i, size_t len)
{
    size_t j = i;
    while (j < len) {
        uint32_t cp;
        char c;
        size_t n = text_fold_decode(b->src + j, len - j, &cp);
        if (cp == 0xFFFD && n == 1 && b->src[j] >= 0x80)
            break;                      /* an invalid byte is not blank */
        tf_kind k = text_fold_char(cp, b->flags, &c);
        if (k != TF_BLANK && k != TF_DROP)
            break;
        j += n;
    }
    return j;
}

static bool last_is_digit(const text_fold *f)
{
    return f->len > 0 && f->buf[f->len - 1] >= '0' && f->buf[f->len - 1] <= '9';
}

/* Folds the character (or white space run) at i; returns where the next
 * one starts. */
static size_t fold_one(builder *b, size_t i, size_t len)
{
    const unsigned char *s = b->src;
    uint32_t cp;
    char c;
    size_t n = text_fold_decode(s + i, len - i, &cp);

    if (cp == 0xFFFD && n == 1 && s[i] >= 0x80) {
        emit_unit(b, i, 1, "\xEF\xBF\xBD", 3);
        return i + 1;
    }
    tf_kind k = text_fold_char(cp, b->flags, &c);
    if (k == TF_BLANK && (b->flags & TF_SPACE)) {
        size_t end = blank_run_end(b, i, len);
        if (end - i == 1)
            emit_linear(b, i, " ", 1);
        else
            emit_unit(b, i, end - i, " ", 1);
        return end;
    }
    if ((cp == 0x30FC || cp == 0xFF70) && last_is_digit(b->f)) {
        k = TF_MAP;
        c = '-';
    }
    switch (k) {
    case TF_DROP:
        b->f->dropped++;
        break;
    case TF_KEEP:
        emit_linear(b, i, (const char *)s + i, n);
        break;
    case TF_MAP:
    case TF_BLANK:
        if (n == 1)
            emit_linear(b, i, &c, 1);
        else
            emit_unit(b, i, n, &c, 1);
        break;
    }
    return i + n;
}

/* True when the base folding leaves text as it is: printable ASCII and
 * white space only. */
static bool base_fold_is_identity(const unsigned char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] >= 0x7F || (s[i] < 0x20 && !ascii_space(s[i])))
            return false;
    return true;
}

int text_fold_init(text_fold *f, const char *text, size_t len, unsigned flags)
{
    builder b = {f, (const unsigned char *)text, flags, false};

    memset(f, 0, sizeof(*f));
    if (!text)
        len = 0;
    f->s = len ? text : "";
    f->len = f->src_len = len;
    if (flags == 0 && base_fold_is_identity(b.src, len))
        return 0;
    f->s = "";
    f->len = 0;
    if (!reserve(&b, len))
        goto oom;
    for (size_t i = 0; i < len && !b.oom;) {
        i = plain_run(&b, i, len);
        if (i < len && !b.oom)
            i = fold_one(&b, i, len);
    }
    if (b.oom)
        goto oom;
    f->buf[f->len] = '\0';
    return 0;
oom:
    text_fold_free(f);
    return -1;
}

void text_fold_free(text_fold *f)
{
    free(f->buf);
    free(f->seg);
    memset(f, 0, sizeof(*f));
    f->s = "";
}

/* ---- the map back ---------------------------------------------------------- */

/* The segment holding folded byte k (k < f->len, f->nseg > 0). */
static const tf_seg *seg_of(const text_fold *f, size_t k)
{
    size_t lo = 0, hi = f->nseg;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (f->seg[mid].out <= k)
            lo = mid;
        else
            hi = mid;
    }
    return &f->seg[lo];
}

size_t text_fold_src_start(const text_fold *f, size_t k)
{
    if (k >= f->len)
        return f->src_len;
    if (f->nseg == 0)
        return k;
    const tf_seg *g = seg_of(f, k);
    return g->unit ? g->src : g->src + (k - g->out);
}

size_t text_fold_src_end(const text_fold *f, size_t k)
{
    if (k == 0)
        return 0;
    if (k > f->len)
        k = f->len;
    if (f->nseg == 0)
        return k;
    const tf_seg *g = seg_of(f, k - 1);
    return g->unit ? g->src + g->src_len : g->src + (k - g->out);
}

bool text_fold_gap_before(const text_fold *f, size_t k)
{
    if (f->dropped == 0 || f->nseg == 0 || k == 0 || k >= f->len)
        return false;
    const tf_seg *a = seg_of(f, k - 1), *b = seg_of(f, k);
    return a != b && a->src + a->src_len < b->src;
}
