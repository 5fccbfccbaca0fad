/*
 * strbuf.h - string formatting helpers: a growable string builder, and
 * printf into a caller's fixed error buffer.
 *
 * The builder is for composing text whose length is not known in advance
 * (provider output, template answers, streamed deltas). It never truncates:
 * each append grows the buffer as needed. Out of memory is sticky: the
 * first failed allocation sets oom, later appends do nothing, and the
 * caller checks oom (or the NULL from strbuf_take) once at the end instead
 * of after every append.
 */
#ifndef AG_STRBUF_H
#define AG_STRBUF_H

#include <stdbool.h>
#include <stddef.h>

/* Zero-initialise one ("strbuf b = {0};") to get an empty builder. The
 * fields may be read; s and len may be shortened in place by a caller that
 * keeps s[len] == '\0'. */
typedef struct strbuf {
    char *s;        /* NUL-terminated text, malloc'd; NULL until the first append */
    size_t len;     /* bytes of text, without the NUL */
    size_t cap;     /* bytes allocated at s */
    bool oom;       /* an allocation failed; appends are ignored from then on */
} strbuf;

/* Appends n bytes of s (which may hold NULs; the text stays NUL-terminated
 * after them). On allocation failure sets b->oom and leaves the text as it
 * was. */
void strbuf_addn(strbuf *b, const char *s, size_t n);

/* Appends n bytes for the caller to write and returns where they start
 * (the text stays NUL-terminated after them), or NULL, with b->oom set,
 * when allocation fails. For writers that know a piece's exact size. */
char *strbuf_extend(strbuf *b, size_t n);

/* Appends the NUL-terminated string s, as strbuf_addn. */
void strbuf_add(strbuf *b, const char *s);

/* Appends printf-style formatted text, however long (the length is measured
 * first, nothing is cut). Sets b->oom when allocation fails or the format
 * cannot be rendered (vsnprintf error). */
void strbuf_addf(strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Appends s on one line: whitespace runs become one space (none leading),
 * other control characters and bytes that are not UTF-8 are dropped, and
 * at most max bytes of s are kept, cut before a UTF-8 sequence rather than
 * inside it, with "..." marking the cut. s may be NULL (nothing added). */
void strbuf_add_flat(strbuf *b, const char *s, size_t max);

/* Empties the text but keeps the allocation, for reuse. Does not clear oom. */
void strbuf_reset(strbuf *b);

/* Hands the text to the caller, who must free() it, and leaves b empty
 * ({0}) for reuse. An empty builder gives a malloc'd "". Stores the text's
 * length in bytes (without the NUL) in *len when len is not NULL. Returns
 * NULL, with *len 0, when b->oom was set (the incomplete text is freed) or
 * when allocating the "" fails; b is left empty either way. */
char *strbuf_take(strbuf *b, size_t *len);

/* Frees the text and leaves b empty ({0}) for reuse. */
void strbuf_free(strbuf *b);

/* Writes printf-style formatted text into err (err_size bytes, always
 * NUL-terminated, cut to fit). Does nothing when err is NULL or err_size
 * is 0, so functions can take an optional error buffer and pass it on. */
void errbuf_printf(char *err, size_t err_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
