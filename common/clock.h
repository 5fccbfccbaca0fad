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

/* Formats epoch milliseconds as RFC 3339 UTC with milliseconds,
 * "2026-11-21T10:30:00.123Z", into out (at least 25 bytes). Returns out. */
char *clock_format_rfc3339(long long epoch_ms, char *out, size_t out_size);

/* Sleeps for ms milliseconds, resuming after signals. */
void clock_sleep_ms(long long ms);

#endif
