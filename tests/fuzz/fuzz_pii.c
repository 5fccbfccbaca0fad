/*
 * fuzz_pii.c - libFuzzer target for the PII scrubber (worker/agent/pii.c)
 * on arbitrary bytes:
 *
 *   - pii_find's matches are in order, do not overlap, lie inside the text
 *     and start and end on character boundaries (as the fold decodes it),
 *     so a redaction never splits a UTF-8 sequence;
 *   - pii_scrub is exactly the text with those spans replaced by their
 *     tokens, its counts add up to the matches, and valid UTF-8 stays
 *     valid;
 *   - the streaming scrubber, fed in pieces of the size byte 0 picks,
 *     gives out valid UTF-8 pieces (for valid input) that add up to
 *     pii_scrub of the whole, when the text is short enough that nothing
 *     is let go unheld (PII_STREAM_HOLD_MAX).
 *
 * Byte 0 picks the piece size; the rest is the text, not NUL-terminated.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pii.h"
#include "text_fold.h"
#include "utf8.h"

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

typedef struct spans {
    const char *text;
    size_t len;
    const unsigned char *starts;
    size_t last_end;
    int n;
    strbuf rebuilt;             /* the text with the spans replaced */
} spans;

static int on_match(void *user, const pii_match *m)
{
    spans *sp = user;
    if (m->start < sp->last_end || m->end <= m->start || m->end > sp->len)
        abort();
    if (!sp->starts[m->start] || !sp->starts[m->end])
        abort();
    if ((unsigned)m->kind > PII_CARD)
        abort();
    strbuf_addn(&sp->rebuilt, sp->text + sp->last_end, m->start - sp->last_end);
    strbuf_add(&sp->rebuilt, pii_token(m->kind));
    sp->last_end = m->end;
    sp->n++;
    return 0;
}

static void check_stream(const char *text, size_t len, size_t step, const char *whole,
                         size_t whole_len, int valid)
{
    pii_stream ps = {0};
    strbuf all = {0};
    for (size_t i = 0; i < len; i += step) {
        strbuf piece = {0};
        size_t n = len - i < step ? len - i : step;
        if (pii_stream_feed(&ps, text + i, n, &piece) != 0)
            abort();
        if (valid && !valid_utf8(piece.s ? piece.s : "", piece.len))
            abort();                        /* no character cut in two */
        strbuf_addn(&all, piece.s ? piece.s : "", piece.len);
        strbuf_free(&piece);
    }
    if (pii_stream_finish(&ps, &all) != 0 || all.oom)
        abort();
    if (len <= PII_STREAM_HOLD_MAX &&
        (all.len != whole_len || (whole_len > 0 && memcmp(all.s, whole, whole_len) != 0)))
        abort();
    strbuf_free(&all);
    pii_stream_free(&ps);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t step = (size_t)data[0] % 24 + 1;
    size_t len = size - 1;
    char *text = malloc(len ? len : 1);     /* exactly len bytes: no NUL */
    if (!text)
        return 0;
    memcpy(text, data + 1, len);

    unsigned char *starts = calloc(len + 1, 1);
    if (!starts)
        abort();
    for (size_t i = 0, n; i < len; i += n) {
        uint32_t cp;
        starts[i] = 1;
        n = text_fold_decode((const unsigned char *)text + i, len - i, &cp);
    }
    starts[len] = 1;

    spans sp = {text, len, starts, 0, 0, {0}};
    if (pii_find(text, len, on_match, &sp) != sp.n)
        abort();
    strbuf_addn(&sp.rebuilt, text + sp.last_end, len - sp.last_end);

    pii_counts c = {0};
    size_t out_len = 0;
    char *out = pii_scrub(text, len, &out_len, &c);
    if (!out || sp.rebuilt.oom || pii_total(&c) != sp.n)
        abort();
    if (out_len != sp.rebuilt.len || (out_len > 0 && memcmp(out, sp.rebuilt.s, out_len) != 0))
        abort();
    int valid = valid_utf8(text, len);
    if (valid && !valid_utf8(out, out_len))
        abort();

    check_stream(text, len, step, out, out_len, valid);

    free(out);
    strbuf_free(&sp.rebuilt);
    free(starts);
    free(text);
    return 0;
}
