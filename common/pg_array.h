/*
 * pg_array.h - PostgreSQL array literals ({"a","b\"c"}) for text sent as
 * one parameter and unnested on the server: how the gateway writes a
 * batch of jobs and the worker a batch of events in one statement.
 *
 * Every element is quoted, so any text goes through (commas, braces,
 * spaces, the word NULL); inside the quotes only " and \ are escaped,
 * each with a backslash. The quoting rule lives here alone.
 */
#ifndef AG_PG_ARRAY_H
#define AG_PG_ARRAY_H

#include <stddef.h>

#include "strbuf.h"

/* Bytes the len bytes at s take as one quoted array element: the two
 * quotes, s, and one backslash before each " and \ in it. */
size_t pg_array_element_size(const char *s, size_t len);

/* Writes the len bytes at s as one quoted array element at out, which
 * must have room for pg_array_element_size(s, len) bytes; writes no NUL.
 * Returns the bytes written. */
size_t pg_array_element_write(char *out, const char *s, size_t len);

/* Appends the NUL-terminated s to b as one quoted array element. Out of
 * memory sets b->oom (strbuf.h). */
void pg_array_element_add(strbuf *b, const char *s);

#endif
