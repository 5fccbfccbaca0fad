/*
 * strbuf.c - the growable string builder and errbuf_printf (strbuf.h).
 *
 * The builder doubles its allocation from 256 bytes, so n appends cost
 * O(total length) copying, and it measures formatted text with
 * vsnprintf(NULL, 0) before writing it, so long tool results and titles
 * are never cut at some temporary buffer's size.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strbuf.h"
#include "utf8.h"

#define STRBUF_MIN_CAP 256

/* Makes room for need more bytes and the NUL, or sets b->oom. */
static void strbuf_grow(strbuf *b, size_t need)
{
    if (b->oom || b->len + need + 1 <= b->cap)
        return;
    if (need > SIZE_MAX - 1 - b->len) {
        b->oom = true;
        return;
    }
    size_t cap = b->cap ? b->cap : STRBUF_MIN_CAP;
    while (cap < b->len + need + 1) {
        if (cap > SIZE_MAX / 2) {
            cap = b->len + need + 1;
            break;
        }
        cap *= 2;
    }
    char *s = realloc(b->s, cap);
    if (!s) {
        b->oom = true;
        return;
    }
    b->s = s;
    b->cap = cap;
}

void strbuf_addn(strbuf *b, const char *s, size_t n)
{
    strbuf_grow(b, n);
    if (b->oom)
        return;
    if (n > 0)
        memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

char *strbuf_extend(strbuf *b, size_t n)
{
    strbuf_grow(b, n);
    if (b->oom)
        return NULL;
    char *at = b->s + b->len;
    b->len += n;
    b->s[b->len] = '\0';
    return at;
}

void strbuf_add(strbuf *b, const char *s)
{
    strbuf_addn(b, s, strlen(s));
}

void strbuf_addf(strbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->oom = true;
        return;
    }
    strbuf_grow(b, (size_t)n);
    if (b->oom)
        return;
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void strbuf_reset(strbuf *b)
{
    b->len = 0;
    if (b->s)
        b->s[0] = '\0';
}

char *strbuf_take(strbuf *b, size_t *len)
{
    char *s = b->s;
    size_t n = b->len;

    if (b->oom) {
        free(s);
        s = NULL;
        n = 0;
    } else if (!s) {
        s = calloc(1, 1);   /* nothing was appended: hand over "" */
    }
    memset(b, 0, sizeof(*b));
    if (len)
        *len = s ? n : 0;
    return s;
}

void strbuf_free(strbuf *b)
{
    free(b->s);
    memset(b, 0, sizeof(*b));
}

void errbuf_printf(char *err, size_t err_size, const char *fmt, ...)
{
    if (err == NULL || err_size == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_size, fmt, ap);
    va_end(ap);
}

void strbuf_add_flat(strbuf *b, const char *s, size_t max)
{
    if (!s)
        return;
    size_t kept = 0, left = strlen(s);
    bool space = false, any = false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++, left--) {
        if (utf8_is_space(*p)) {
            space = any;
            continue;
        }
        if (*p < 0x20 || *p == 0x7F)
            continue;
        size_t seq = utf8_sequence_len(p, left);
        if (seq == 0)
            continue;           /* not UTF-8: leave the byte out */
        if (kept + (space ? 1 : 0) + seq > max) {
            strbuf_add(b, "...");
            return;
        }
        if (space) {
            strbuf_addn(b, " ", 1);
            kept++;
            space = false;
        }
        strbuf_addn(b, (const char *)p, seq);
        kept += seq;
        p += seq - 1;
        left -= seq - 1;
        any = true;
    }
}
