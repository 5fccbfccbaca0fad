/*
 * sse_frame.h - the Server-Sent Events wire format, pure and unit tested:
 * framing one event, and reading the id a client resumes from.
 */
#ifndef AG_SSE_FRAME_H
#define AG_SSE_FRAME_H

#include <stddef.h>

/*
 * Frames one event as "id: N\nevent: TYPE\ndata: ...\n\n", one data: line
 * per line of data (split on \n, \r\n or \r, as the SSE spec reads them).
 * Returns a malloc'd buffer of *out_len bytes the caller frees, or NULL.
 */
char *sse_frame(long long id, const char *type, const char *data, size_t len,
                size_t *out_len);

/*
 * Parses a Last-Event-ID header or ?after= value: 1 to 18 ASCII digits,
 * nothing else. Returns 0 with *out set, or -1 when malformed.
 */
int sse_parse_event_id(const char *s, long long *out);

#endif
