/*
 * fuzz_output_guard.c - libFuzzer target for the output guard
 * (worker/agent/output_guard.c), the folding it matches on
 * (worker/agent/text_fold.c), and the scrub-then-guard pipeline an agent
 * run's output goes through (run_clean):
 *
 *   - the fold, with the guard's flags and with the flags byte 1 picks:
 *     valid UTF-8, idempotent, its map monotone, inside the text and on
 *     character boundaries, gaps only where something was dropped;
 *   - output_guard_apply with the cap byte 0 picks: valid UTF-8, never
 *     longer than the cap, the report consistent (findings in order,
 *     inside the repaired text, at most as many as markers), and the
 *     same markers found twice (pure), and found again in the folded text
 *     when nothing was dropped;
 *   - pii_scrub then output_guard_apply: valid UTF-8 within the cap.
 *
 * Byte 0 picks the cap (0: none), byte 1 the fold flags; the rest is the
 * text, not NUL-terminated.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "output_guard.h"
#include "pii.h"
#include "text_fold.h"
#include "utf8.h"

#define GUARD_FLAGS (TF_CASE | TF_SPACE | TF_CONFUSABLE)

static int valid_utf8(const char *s, size_t len)
{
    for (size_t i = 0; i < len;) {
        size_t n = utf8_sequence_len((const unsigned char *)s + i, len - i);
        if (n == 0)
            return 0;
        i += n;
    }
    return 1;
}

/* starts[i] is 1 where a character starts, as the fold decodes the text. */
static unsigned char *char_starts(const char *text, size_t len)
{
    unsigned char *starts = calloc(len + 1, 1);
    if (!starts)
        abort();
    for (size_t i = 0, n; i < len; i += n) {
        uint32_t cp;
        starts[i] = 1;
        n = text_fold_decode((const unsigned char *)text + i, len - i, &cp);
    }
    starts[len] = 1;
    return starts;
}

static void check_fold(const char *text, size_t len, unsigned flags, const unsigned char *starts)
{
    text_fold f, again;
    if (text_fold_init(&f, text, len, flags) != 0)
        abort();
    if (!valid_utf8(f.s, f.len) || f.src_len != len)
        abort();
    if (text_fold_init(&again, f.s, f.len, flags) != 0)
        abort();
    if (again.len != f.len || memcmp(again.s, f.s, f.len) != 0)
        abort();                            /* idempotent */
    text_fold_free(&again);

    /* Each folded character maps to whole characters of the text, in order. */
    size_t prev_start = 0, prev_end = 0;
    for (size_t k = 0, n; k < f.len; k += n) {
        uint32_t cp;
        n = text_fold_decode((const unsigned char *)f.s + k, f.len - k, &cp);
        size_t a = text_fold_src_start(&f, k), b = text_fold_src_end(&f, k + n);
        if (a >= b || b > len || !starts[a] || !starts[b])
            abort();
        if (a < prev_start || b < prev_end || (k > 0 && a < prev_end))
            abort();
        if (text_fold_gap_before(&f, k) && (f.dropped == 0 || a == prev_end))
            abort();                        /* a gap is text that was dropped */
        prev_start = a;
        prev_end = b;
    }
    if (text_fold_src_start(&f, f.len) != len)
        abort();
    text_fold_free(&f);
}

static void check_report(const guard_report *rep, size_t repaired_len)
{
    if (rep->n_findings < 0 || rep->n_findings > OUTPUT_GUARD_MAX_FINDINGS ||
        rep->n_findings > rep->n_markers)
        abort();
    if (rep->n_markers > rep->n_findings && rep->n_findings != OUTPUT_GUARD_MAX_FINDINGS)
        abort();
    for (int i = 0; i < rep->n_findings; i++) {
        if (!rep->findings[i].marker || rep->findings[i].offset >= repaired_len)
            abort();
        if (i > 0 && rep->findings[i].offset <= rep->findings[i - 1].offset)
            abort();
    }
}

static void check_guard(const char *text, size_t len, size_t cap)
{
    guard_report rep, rep2;
    size_t out_len = 0;
    char *out = output_guard_apply(text, len, cap, &out_len, &rep);
    if (!out)
        abort();
    if (strlen(out) != out_len || rep.output_bytes != out_len || rep.input_bytes != len)
        abort();
    if (!valid_utf8(out, out_len) || (cap > 0 && out_len > cap))
        abort();

    /* Untruncated, the output is the repaired text; truncated, a prefix. */
    strbuf repaired = {0};
    output_guard_repair_utf8(&repaired, text, len);
    if (repaired.oom)
        abort();
    if (!rep.truncated &&
        (out_len != repaired.len || (out_len > 0 && memcmp(out, repaired.s, out_len) != 0)))
        abort();
    if (rep.truncated && (cap == 0 || repaired.len <= cap))
        abort();
    check_report(&rep, repaired.len);

    /* Scanned again: the same markers, at the same places. */
    memset(&rep2, 0, sizeof(rep2));
    if (output_guard_scan(repaired.s ? repaired.s : "", repaired.len, &rep2) != rep.n_markers)
        abort();
    if (rep2.n_findings != rep.n_findings ||
        memcmp(rep2.findings, rep.findings, sizeof(rep.findings[0]) * (size_t)rep.n_findings))
        abort();

    /* Folded text is its own fold: with nothing dropped (no gaps to stand
     * for spaces) its markers are the same. */
    text_fold f;
    if (text_fold_init(&f, repaired.s, repaired.len, GUARD_FLAGS) != 0)
        abort();
    if (f.dropped == 0) {
        guard_report rep3;
        memset(&rep3, 0, sizeof(rep3));
        if (output_guard_scan(f.s, f.len, &rep3) != rep.n_markers)
            abort();
    }
    text_fold_free(&f);
    strbuf_free(&repaired);
    free(out);
}

/* What an agent run does to its output: scrub, then guard. */
static void check_pipeline(const char *text, size_t len, size_t cap)
{
    size_t n = 0;
    guard_report rep;
    char *scrubbed = pii_scrub(text, len, &n, NULL);
    if (!scrubbed)
        abort();
    char *out = output_guard_apply(scrubbed, n, cap, &n, &rep);
    if (!out || !valid_utf8(out, n) || (cap > 0 && n > cap))
        abort();
    free(out);
    free(scrubbed);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t cap = data[0] == 0 ? 0 : (size_t)data[0] * 7 % 400 + 1;
    unsigned flags = data[1] & (TF_CASE | TF_SPACE | TF_CONFUSABLE);
    size_t len = size - 2;
    char *text = malloc(len ? len : 1);     /* exactly len bytes: no NUL */
    if (!text)
        return 0;
    memcpy(text, data + 2, len);

    unsigned char *starts = char_starts(text, len);
    check_fold(text, len, flags, starts);
    check_fold(text, len, GUARD_FLAGS, starts);
    check_fold(text, len, 0, starts);
    check_guard(text, len, cap);
    check_pipeline(text, len, cap);
    free(starts);
    free(text);
    return 0;
}
