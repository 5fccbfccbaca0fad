/*
 * output_guard.c - UTF-8 repair, prompt-injection markers and the size cap
 * on an agent run's output (see output_guard.h).
 *
 * Markers come in two kinds: phrases, written as words where each word is
 * a list of alternatives and a leading '?' makes it optional ("ignore ?all
 * previous|prior instructions"), matched from a word start with any
 * whitespace between words; and tokens, the chat-template control strings
 * some models react to ("<|im_start|>"), matched anywhere. Both ignore
 * ASCII case.
 */
#include "output_guard.h"

#include <stdlib.h>
#include <string.h>

#include "utf8.h"

#define MAX_WORDS 8

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

static int lower(int c)
{
    return (c >= 'A' && c <= 'Z') ? c + 32 : c;
}

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

/* Length of alternative a (alen bytes) matched at s[i...], or 0. A word
 * must end at a word boundary unless the alternative ends in
 * punctuation ("prompt:"). */
static size_t alt_at(const unsigned char *s, size_t len, size_t i, const char *a, size_t alen)
{
    if (i + alen > len)
        return 0;
    for (size_t k = 0; k < alen; k++)
        if (lower(s[i + k]) != (unsigned char)a[k])
            return 0;
    if (is_alnum((unsigned char)a[alen - 1]) && i + alen < len && is_alnum(s[i + alen]))
        return 0;
    return alen;
}

/* Matches words w[0..n) at s[i...]; returns the end of the match or 0. */
static size_t words_at(const unsigned char *s, size_t len, size_t i, const pword *w, int n)
{
    if (n == 0)
        return i;
    const char *a = w->alts, *end = w->alts + w->len;
    while (a < end) {
        const char *bar = memchr(a, '|', (size_t)(end - a));
        size_t alen = bar ? (size_t)(bar - a) : (size_t)(end - a);
        size_t m = alt_at(s, len, i, a, alen);
        if (m > 0) {
            size_t j = i + m;
            if (n == 1)
                return j;
            size_t k = j;
            while (k < len && utf8_is_space(s[k]))
                k++;
            if (k > j) {
                size_t r = words_at(s, len, k, w + 1, n - 1);
                if (r)
                    return r;
            }
        }
        if (!bar)
            break;
        a = bar + 1;
    }
    if (w->optional)
        return words_at(s, len, i, w + 1, n - 1);
    return 0;
}

static size_t token_at(const unsigned char *s, size_t len, size_t i, const char *tok)
{
    size_t n = strlen(tok);
    if (i + n > len)
        return 0;
    for (size_t k = 0; k < n; k++)
        if (lower(s[i + k]) != (unsigned char)tok[k])
            return 0;
    return i + n;
}

int output_guard_scan(const char *text, size_t len, guard_report *rep)
{
    const unsigned char *s = (const unsigned char *)text;
    pword words[NMARKERS][MAX_WORDS];
    int nwords[NMARKERS];
    int found = 0;

    for (size_t m = 0; m < NMARKERS; m++)
        nwords[m] = markers[m].phrase ? phrase_words(markers[m].phrase, words[m]) : 0;
    for (size_t i = 0; i < len;) {
        size_t end = 0;
        const char *id = NULL;
        bool word_start = i == 0 || !is_alnum(s[i - 1]);
        for (size_t m = 0; m < NMARKERS && !end; m++) {
            if (markers[m].token)
                end = token_at(s, len, i, markers[m].token);
            else if (word_start && is_alnum(s[i]))
                end = words_at(s, len, i, words[m], nwords[m]);
            id = markers[m].id;
        }
        if (!end) {
            i++;
            continue;
        }
        found++;
        rep->n_markers++;
        if (rep->n_findings < OUTPUT_GUARD_MAX_FINDINGS) {
            rep->findings[rep->n_findings].marker = id;
            rep->findings[rep->n_findings].offset = i;
            rep->n_findings++;
        }
        i = end;
    }
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
    if (b.len > 0)
        output_guard_scan(b.s, b.len, rep);
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
