/*
 * clock.h - the two clocks agentgate uses: wall time for timestamps that
 * leave the process, monotonic time for every interval and deadline.
 */
#ifndef AG_CLOCK_H
#define AG_CLOCK_H

#include <stddef.h>

/* Milliseconds since the Unix epoch (CLOCK_REALTIME). */
long long clock_wall_ms(void);

/* Milliseconds from an arbitrary origin that never goes back (CLOCK_MONOTONIC). */
long long clock_mono_ms(void);

/* Seconds, with nanosecond resolution, on the clock_mono_ms clock: for
 * durations that metrics report in seconds, where whole milliseconds
 * would round fast operations to zero. */
double clock_mono_s(void);

/* Formats epoch milliseconds as RFC 3339 UTC with milliseconds,
 * "2026-11-21T10:30:00.123Z", into out (at least 25 bytes). Returns out. */
char *clock_format_rfc3339(long long epoch_ms, char *out, size_t out_size);

/*
 * Parses an RFC 3339 date-time ("2026-11-21T10:30:00Z",
 * "2026-11-21T11:30:00.5+01:00"; 'T' or 't', 'Z' or 'z' or a numeric
 * offset; at most 9 fraction digits) into epoch milliseconds. The whole
 * string must be one; ranges are checked (leap seconds refused). Returns 0,
 * or -1 for anything else.
 */
int clock_parse_rfc3339(const char *s, long long *epoch_ms);

/* Sleeps for ms milliseconds, resuming after signals. */
void clock_sleep_ms(long long ms);

#endif
