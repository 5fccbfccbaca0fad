/*
 * output_guard.c - UTF-8 repair, prompt-injection markers and the size cap
 * on an agent run's output (see output_guard.h).
 *
 * Markers come in two kinds: phrases, written as words where each word is
 * a list of alternatives and a leading '?' makes it optional ("ignore ?all
 * previous|prior instructions"), matched from a word start with white
 * space (or a dropped invisible character) between words; and tokens, the
 * chat-template control strings some models react to ("<|im_start|>"),
 * matched anywhere. Both are matched on the text folded by text_fold.h
 * with case, white space and look-alikes folded, so they are written here
 * in lower-case ASCII with single spaces.
 */
#include "output_guard.h"

#include <stdlib.h>
#include <string.h>

#include "text_fold.h"
#include "utf8.h"

#define MAX_WORDS 8

/* How the guard folds text before matching: see the top of this file. */
#define GUARD_FOLD (TF_CASE | TF_SPACE | TF_CONFUSABLE)

typedef struct marker {
    const char *id;
    const char *phrase;     /* word pattern, or NULL */
    const char *token;      /* literal, or NULL */
} marker;

static const marker markers[] = {
    {"ignore_instructions",
     "ignore|disregard|forget|override|skip ?all ?of ?the|your|any|all|these|those "
     "previous|prior|above|earlier|preceding|former|foregoing|original|system "
     "instructions|instruction|directions|prompts|prompt|rules|guidelines", NULL},
    {"ignore_instructions", "ignore|disregard|forget all|any|your instructions|rules", NULL},
    {"system_prompt", "system prompt:|message:|instructions:", NULL},
    {"system_prompt", "reveal|leak|repeat ?me ?your|the|its system|hidden|initial "
     "prompt|instructions|message", NULL},
    {"new_instructions", "new|updated|revised instructions:|instruction:", NULL},
    {"jailbreak", "do anything now", NULL},
    {"jailbreak", "developer|god|jailbreak|dan mode enabled|activated|on", NULL},
    {"chat_template", NULL, "<|im_start|>"},
    {"chat_template", NULL, "<|im_end|>"},
    {"chat_template", NULL, "<|endoftext|>"},
    {"chat_template", NULL, "<|system|>"},
    {"chat_template", NULL, "<|start_header_id|>"},
    {"chat_template", NULL, "[inst]"},
    {"chat_template", NULL, "[/inst]"},
    {"chat_template", NULL, "<<sys>>"},
    {"chat_template", NULL, "### system:"},
    {"chat_template", NULL, "### instruction:"},
};

#define NMARKERS (sizeof(markers) / sizeof(markers[0]))

static bool is_alnum(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* ---- UTF-8 ------------------------------------------------------------------ */

int output_guard_repair_utf8(strbuf *out, const char *text, size_t len)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0, copied = 0;
    int replaced = 0;

    while (i < len) {
        size_t n = s[i] == 0 ? 0 : utf8_sequence_len(s + i, len - i);
        if (n > 0) {
            i += n;
            continue;
        }
        strbuf_addn(out, text + copied, i - copied);
        strbuf_add(out, "\xEF\xBF\xBD");        /* U+FFFD */
        replaced++;
        i++;
        copied = i;
    }
    strbuf_addn(out, text + copied, len - copied);
    return replaced;
}

size_t output_guard_utf8_cut(const char *text, size_t len, size_t max)
{
    if (len <= max)
        return len;
    size_t n = max;
    while (n > 0 && ((unsigned char)text[n] & 0xC0) == 0x80)
        n--;
    return n;
}

/* ---- markers ---------------------------------------------------------------- */

typedef struct pword {
    const char *alts;
    size_t len;
    bool optional;
} pword;

/* The markers made ready for one scan: phrases split into words, token
 * lengths, and the bytes a marker can start with. */
typedef struct marker_set {
    pword words[NMARKERS][MAX_WORDS];
    int nwords[NMARKERS];
    size_t toklen[NMARKERS];
    bool first[256];
} marker_set;

/* Splits a phrase into its words. Returns their number. */
static int phrase_words(const char *phrase, pword w[MAX_WORDS])
{
    int n = 0;
    const char *p = phrase;

    while (*p && n < MAX_WORDS) {
        const char *end = strchr(p, ' ');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        w[n].optional = p[0] == '?';
        w[n].alts = w[n].optional ? p + 1 : p;
        w[n].len = w[n].optional ? len - 1 : len;
        n++;
        if (!end)
            break;
        p = end + 1;
    }
    return n;
}

static void marker_set_init(marker_set *ms)
{
    memset(ms->first, 0, sizeof(ms->first));
    for (size_t m = 0; m < NMARKERS; m++) {
        ms->nwords[m] = 0;
        ms->toklen[m] = 0;
        if (markers[m].token) {
            ms->toklen[m] = strlen(markers[m].token);
            ms->first[(unsigned char)markers[m].token[0]] = true;
            continue;
        }
        ms->nwords[m] = phrase_words(markers[m].phrase, ms->words[m]);
        /* A phrase starts with its first word, or the next when that is optional. */
        for (int n = 0; n < ms->nwords[m]; n++) {
            const pword *w = &ms->words[m][n];
            ms->first[(unsigned char)w->alts[0]] = true;
            for (size_t k = 0; k + 1 < w->len; k++)
                if (w->alts[k] == '|')
                    ms->first[(unsigned char)w->alts[k + 1]] = true;
            if (!w->optional)
                break;
        }
    }
}

/* The folded text being scanned. */
typedef struct scan {
    const unsigned char *s;
    size_t len;
    const text_fold *f;
} scan;

/* A word character of a script written with spaces at s[k]: an ASCII
 * letter or digit, or a letter the folding left as it is (Cyrillic that
 * looks like nothing Latin, say). A letter of a script written without
 * spaces is not: "请ignore previous instructions" is found. */
static bool is_word_char(const scan *sc, size_t k)
{
    if (sc->s[k] < 0x80)
        return is_alnum(sc->s[k]);
    uint32_t cp;
    text_fold_decode(sc->s + k, sc->len - k, &cp);
    return text_fold_class(cp) == TF_WORD;
}

/* A word character at s[k] that continues the word before it: none when
 * an invisible character was dropped in between. */
static bool word_goes_on_at(const scan *sc, size_t k)
{
    return k < sc->len && !text_fold_gap_before(sc->f, k) && is_word_char(sc, k);
}

/* A word can start at i: no word character runs into it from before. */
static bool word_start(const scan *sc, size_t i)
{
    if (i == 0 || text_fold_gap_before(sc->f, i))
        return true;
    size_t k = i - 1;
    while (k > 0 && (sc->s[k] & 0xC0) == 0x80)
        k--;
    return !is_word_char(sc, k);
}

/* The end of alternative a (alen bytes) matched at s[i...], or 0. A word
 * must end at a word boundary unless the alternative ends in
 * punctuation ("prompt:"); a space before that punctuation is allowed
 * ("System prompt : ..."). */
static size_t alt_at(const scan *sc, size_t i, const char *a, size_t alen)
{
    size_t j = i;
    for (size_t k = 0; k < alen; k++, j++) {
        if (k == alen - 1 && a[k] == ':' && j + 1 < sc->len && sc->s[j] == ' ')
            j++;
        if (j >= sc->len || sc->s[j] != (unsigned char)a[k])
            return 0;
    }
    if (is_alnum((unsigned char)a[alen - 1]) && word_goes_on_at(sc, j))
        return 0;
    return j;
}

/* Matches words w[0..n) at s[i...]; returns the end of the match or 0.
 * Words are split by one space (white space is folded to that) or by an
 * invisible character alone ("ignore\u200Bprevious"). */
static size_t words_at(const scan *sc, size_t i, const pword *w, int n)
{
    if (n == 0)
        return i;
    const char *a = w->alts, *end = w->alts + w->len;
    while (a < end) {
        const char *bar = memchr(a, '|', (size_t)(end - a));
        size_t alen = bar ? (size_t)(bar - a) : (size_t)(end - a);
        size_t j = alt_at(sc, i, a, alen);
        if (j > 0) {
            if (n == 1)
                return j;
            size_t k = j < sc->len && sc->s[j] == ' ' ? j + 1 : j;
            if (k > j || text_fold_gap_before(sc->f, j)) {
                size_t r = words_at(sc, k, w + 1, n - 1);
                if (r)
                    return r;
            }
        }
        if (!bar)
            break;
        a = bar + 1;
    }
    if (w->optional)
        return words_at(sc, i, w + 1, n - 1);
    return 0;
}

static size_t token_at(const scan *sc, size_t i, const char *tok, size_t n)
{
    if (i + n > sc->len || memcmp(sc->s + i, tok, n) != 0)
        return 0;
    return i + n;
}

/* The marker starting at s[i]: its end (0: none) and *id. */
static size_t marker_at(const scan *sc, const marker_set *ms, size_t i, const char **id)
{
    bool phrase_ok = is_alnum(sc->s[i]) && word_start(sc, i);
    for (size_t m = 0; m < NMARKERS; m++) {
        size_t end = 0;
        if (markers[m].token)
            end = token_at(sc, i, markers[m].token, ms->toklen[m]);
        else if (phrase_ok)
            end = words_at(sc, i, ms->words[m], ms->nwords[m]);
        if (end) {
            *id = markers[m].id;
            return end;
        }
    }
    return 0;
}

static void record(guard_report *rep, const char *id, size_t offset)
{
    rep->n_markers++;
    if (rep->n_findings < OUTPUT_GUARD_MAX_FINDINGS) {
        rep->findings[rep->n_findings].marker = id;
        rep->findings[rep->n_findings].offset = offset;
        rep->n_findings++;
    }
}

int output_guard_scan(const char *text, size_t len, guard_report *rep)
{
    marker_set ms;
    text_fold f;
    int found = 0;

    if (text_fold_init(&f, text, text ? len : 0, GUARD_FOLD) < 0)
        return -1;
    marker_set_init(&ms);
    scan sc = {(const unsigned char *)f.s, f.len, &f};
    for (size_t i = 0; i < sc.len;) {
        const char *id = NULL;
        size_t end = ms.first[sc.s[i]] ? marker_at(&sc, &ms, i, &id) : 0;
        if (!end) {
            i++;
            continue;
        }
        found++;
        record(rep, id, text_fold_src_start(&f, i));
        i = end;
    }
    text_fold_free(&f);
    return found;
}

/* ---- the whole guard -------------------------------------------------------- */

char *output_guard_apply(const char *text, size_t len, size_t max_bytes, size_t *out_len,
                         guard_report *rep)
{
    strbuf b = {0};

    memset(rep, 0, sizeof(*rep));
    if (!text)
        len = 0;
    rep->input_bytes = len;
    rep->invalid_utf8 = output_guard_repair_utf8(&b, text ? text : "", len);
    if (b.oom) {
        strbuf_free(&b);
        return NULL;
    }
    if (b.len > 0 && output_guard_scan(b.s, b.len, rep) < 0) {
        strbuf_free(&b);
        return NULL;
    }
    if (max_bytes > 0 && b.len > max_bytes) {
        size_t note = strlen(OUTPUT_GUARD_CUT_NOTE);
        bool with_note = max_bytes >= 2 * note;
        size_t cut = output_guard_utf8_cut(b.s, b.len, with_note ? max_bytes - note : max_bytes);
        b.len = cut;
        b.s[cut] = '\0';
        if (with_note)
            strbuf_add(&b, OUTPUT_GUARD_CUT_NOTE);
        rep->truncated = true;
    }
    char *out = strbuf_take(&b, out_len);
    if (out)
        rep->output_bytes = strlen(out);
    return out;
}
