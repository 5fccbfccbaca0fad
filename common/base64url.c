/*
 * base64url.c - base64url without padding (RFC 4648 section 5), as JWTs,
 * JWKS key members and the API's opaque cursors use it.
 *
 * Decoding is strict: a character outside the alphabet or a length no
 * encoding can have is an error, never skipped, so two spellings of the
 * same bytes cannot both verify.
 */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>

#include "base64url.h"

static const char b64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* The 6-bit value of c, or -1 for a character outside the alphabet. */
static int b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
}

long b64url_decode(const char *in, size_t len, unsigned char *out, size_t out_size)
{
    size_t rem = len % 4;
    if (rem == 1)               /* 6 bits cannot make a byte */
        return -1;
    size_t need = len / 4 * 3 + (rem == 0 ? 0 : rem - 1);
    if (need > out_size || need > (size_t)LONG_MAX)
        return -1;

    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64url_value((unsigned char)in[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    /* Leftover bits must be zero: otherwise "QQ" and "QR" would both be
     * "A", and one token could be respelled into many that all verify. */
    if (acc != 0)
        return -1;
    return (long)o;
}

char *b64url_encode(const unsigned char *in, size_t len)
{
    size_t out_len = len / 3 * 4 + (len % 3 == 0 ? 0 : len % 3 + 1);
    char *out = malloc(out_len + 1);
    if (out == NULL)
        return NULL;

    size_t o = 0, i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t n = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = b64url_alphabet[n >> 18 & 63];
        out[o++] = b64url_alphabet[n >> 12 & 63];
        out[o++] = b64url_alphabet[n >> 6 & 63];
        out[o++] = b64url_alphabet[n & 63];
    }
    if (len - i == 1) {
        uint32_t n = (uint32_t)in[i] << 16;
        out[o++] = b64url_alphabet[n >> 18 & 63];
        out[o++] = b64url_alphabet[n >> 12 & 63];
    } else if (len - i == 2) {
        uint32_t n = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = b64url_alphabet[n >> 18 & 63];
        out[o++] = b64url_alphabet[n >> 12 & 63];
        out[o++] = b64url_alphabet[n >> 6 & 63];
    }
    out[o] = '\0';
    return out;
}
