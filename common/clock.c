/*
 * clock.c - wall and monotonic clocks, RFC 3339 timestamps, and a sleep
 * that survives signals.
 *
 * Wall time (CLOCK_REALTIME) is only for timestamps that leave the process;
 * it can jump. Every interval, timeout and deadline uses CLOCK_MONOTONIC.
 */
#include <errno.h>
#include <stdio.h>
#include <time.h>

#include "clock.h"

static long long timespec_to_ms(const struct timespec *ts)
{
    return (long long)ts->tv_sec * 1000 + ts->tv_nsec / 1000000;
}

long long clock_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return timespec_to_ms(&ts);
}

long long clock_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return timespec_to_ms(&ts);
}

char *clock_format_rfc3339(long long epoch_ms, char *out, size_t out_size)
{
    /* Floor division, so times before 1970 still get a 0..999 fraction. */
    long long secs = epoch_ms / 1000;
    long long frac = epoch_ms % 1000;
    if (frac < 0) {
        frac += 1000;
        secs -= 1;
    }

    time_t t = (time_t)secs;
    struct tm tm;
    if (out_size == 0)
        return out;
    if (gmtime_r(&t, &tm) == NULL) {
        /* Only for years outside what struct tm can hold. */
        snprintf(out, out_size, "1970-01-01T00:00:00.000Z");
        return out;
    }
    snprintf(out, out_size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec, (int)frac);
    return out;
}

void clock_sleep_ms(long long ms)
{
    if (ms <= 0)
        return;
    struct timespec req = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
    struct timespec rem;
    /* nanosleep leaves the unslept part in rem when a signal interrupts it. */
    while (nanosleep(&req, &rem) == -1 && errno == EINTR)
        req = rem;
}
