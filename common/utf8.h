/*
 * utf8.h - the UTF-8 checks agentgate makes on text from outside, in one
 * place: the JSON parser, the log writer and the worker's text helpers
 * all use them, so they agree on what is valid.
 */
#ifndef AG_UTF8_H
#define AG_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Returns the length (1-4) of the well-formed UTF-8 sequence at p, which
 * has avail bytes, or 0 when it is not one. Overlong forms, UTF-16
 * surrogates (U+D800-DFFF) and code points above U+10FFFF are refused, as
 * RFC 3629 says.
 */
size_t utf8_sequence_len(const unsigned char *p, size_t avail);

/* True for the ASCII whitespace characters (space, \t, \n, \v, \f, \r),
 * whatever the locale. */
bool utf8_is_space(unsigned char c);

#endif
