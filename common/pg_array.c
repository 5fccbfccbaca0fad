/*
 * pg_array.c - quoted elements of PostgreSQL array literals (pg_array.h).
 *
 * The length is counted apart from the writing so that a caller can size
 * one buffer for a whole literal instead of growing it as it goes.
 */
#include <string.h>

#include "pg_array.h"

/* True for the characters a backslash must precede inside the quotes. */
static int needs_escape(char c)
{
    return c == '"' || c == '\\';
}

size_t pg_array_element_size(const char *s, size_t len)
{
    size_t size = len + 2;
    for (size_t i = 0; i < len; i++)
        size += needs_escape(s[i]);
    return size;
}

size_t pg_array_element_write(char *out, const char *s, size_t len)
{
    char *o = out;
    *o++ = '"';
    for (size_t i = 0; i < len; i++) {
        if (needs_escape(s[i])) *o++ = '\\';
        *o++ = s[i];
    }
    *o++ = '"';
    return (size_t)(o - out);
}

void pg_array_element_add(strbuf *b, const char *s)
{
    size_t len = strlen(s);
    char *out = strbuf_extend(b, pg_array_element_size(s, len));
    if (out) pg_array_element_write(out, s, len);
}
