/*
 * base64url.h - base64url without padding (RFC 4648 section 5).
 */
#ifndef AG_BASE64URL_H
#define AG_BASE64URL_H

#include <stddef.h>

/*
 * Decode returns the number of bytes written to out (out_size at least
 * 3*len/4+3), or -1 on a character outside the alphabet or an impossible
 * length. Encode returns a malloc'd, NUL-terminated string (caller frees),
 * or NULL when out of memory.
 */
long b64url_decode(const char *in, size_t len, unsigned char *out, size_t out_size);
char *b64url_encode(const unsigned char *in, size_t len);

#endif
