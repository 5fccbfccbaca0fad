/*
 * sse_frame.c - Server-Sent Events framing (see sse_frame.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sse_frame.h"

char *sse_frame(long long id, const char *type, const char *data, size_t len,
                size_t *out_len)
{
    size_t lines = 1;
    for (size_t i = 0; i < len; i++)
        if (data[i] == '\n' || data[i] == '\r') lines++;
    size_t cap = 64 + strlen(type) + len + lines * 7;
    char *out = malloc(cap);
    if (!out) return NULL;

    int n = snprintf(out, cap, "id: %lld\nevent: %s\n", id, type);
    if (n < 0 || (size_t)n >= cap) { free(out); return NULL; }
    size_t o = (size_t)n;
    memcpy(out + o, "data: ", 6);
    o += 6;
    for (size_t i = 0; i < len; i++) {
        char c = data[i];
        if (c == '\r' || c == '\n') {
            if (c == '\r' && i + 1 < len && data[i + 1] == '\n') i++;
            memcpy(out + o, "\ndata: ", 7);
            o += 7;
        } else {
            out[o++] = c;
        }
    }
    out[o++] = '\n';
    out[o++] = '\n';
    *out_len = o;
    return out;
}

int sse_parse_event_id(const char *s, long long *out)
{
    if (!s) return -1;
    size_t n = strlen(s);
    if (n == 0 || n > 18) return -1;
    long long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}
