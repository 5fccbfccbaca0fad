/*
 * output_guard.h - the last check on text an agent run stores or sends:
 *
 *   - valid UTF-8: every byte that does not start a well-formed sequence
 *     (and every NUL) becomes U+FFFD, so what reaches PostgreSQL, JSON and
 *     SSE is always text;
 *   - prompt-injection markers ("ignore previous instructions", "system
 *     prompt:", "<|im_start|>", ...) are found and reported, not removed:
 *     the text may quote them for a good reason, and whoever reads the run
 *     should see what the model wrote and that it was flagged;
 *   - a size cap: text longer than the cap is cut on a UTF-8 boundary and
 *     ends with OUTPUT_GUARD_CUT_NOTE.
 *
 * Markers are matched on the text folded by text_fold.h with TF_CASE,
 * TF_SPACE and TF_CONFUSABLE: case is folded, every run of white space of
 * any kind (tab, newline, no-break and ideographic spaces, ...) is one
 * space, invisible characters (zero-width space and joiners, soft hyphen,
 * bidi controls, tag characters, ...) are dropped, and letters and signs
 * that only look Latin become the Latin ones: full-width forms, Greek and
 * Cyrillic look-alikes, the dotless ı, accented letters, small capitals,
 * mathematical bold and italic letters, full-width and box-drawing bars.
 * So "Ignore  ALL previous\ninstructions", "іgnоrе prеvіоus
 * іnstruсtіоns" (Cyrillic), "ig\u200Bnore previous instructions" and
 * "<｜im_start｜>" are all found. A dropped invisible character between
 * two words counts as the space between them. Offsets in findings are
 * into the text as given, not the folded one. Pure functions,
 * thread-safe.
 */
#ifndef AG_WORKER_OUTPUT_GUARD_H
#define AG_WORKER_OUTPUT_GUARD_H

#include <stdbool.h>
#include <stddef.h>

#include "strbuf.h"

#define OUTPUT_GUARD_MAX_FINDINGS 16
#define OUTPUT_GUARD_CUT_NOTE "\n[output truncated by agentgate]"

typedef struct guard_finding {
    const char *marker;     /* static: the marker's id, e.g. "ignore_instructions" */
    size_t offset;          /* bytes into the checked (repaired) text */
} guard_finding;

typedef struct guard_report {
    size_t input_bytes;     /* the text as given */
    size_t output_bytes;    /* the text returned */
    int invalid_utf8;       /* bytes replaced by U+FFFD */
    bool truncated;         /* the cap cut the text */
    int n_markers;          /* markers found, all of them */
    int n_findings;         /* of which recorded below (the first ones) */
    guard_finding findings[OUTPUT_GUARD_MAX_FINDINGS];
} guard_report;

/*
 * Appends to out the valid-UTF-8 form of len bytes of text (need not be
 * NUL-terminated): each byte that does not begin a well-formed sequence,
 * and each NUL, becomes U+FFFD. Returns the number of bytes replaced.
 * On allocation failure out->oom is set.
 */
int output_guard_repair_utf8(strbuf *out, const char *text, size_t len);

/*
 * Runs the whole guard over len bytes of text: UTF-8 repair, then markers,
 * then the cap of max_bytes (0: no cap; a cap too small for the note cuts
 * without it). Returns a new malloc'd NUL-terminated string the caller
 * frees, *out_len (may be NULL) set to its length, and fills *rep; NULL
 * when memory runs out (the markers need a folded copy of the text).
 */
char *output_guard_apply(const char *text, size_t len, size_t max_bytes, size_t *out_len,
                         guard_report *rep);

/*
 * Finds injection markers in len bytes of text and records them in *rep
 * (n_markers, n_findings, findings; other fields untouched). Returns the
 * number found, or -1 when memory ran out (nothing recorded).
 */
int output_guard_scan(const char *text, size_t len, guard_report *rep);

/*
 * The length of the longest prefix of text (len bytes) of at most max
 * bytes that does not end inside a UTF-8 sequence.
 */
size_t output_guard_utf8_cut(const char *text, size_t len, size_t max);

#endif
