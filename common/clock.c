/*
 * clock.c - wall and monotonic clocks, RFC 3339 timestamps, and a sleep
 * that survives signals.
 *
 * Wall time (CLOCK_REALTIME) is only for timestamps that leave the process;
 * it can jump. Every interval, timeout and deadline uses CLOCK_MONOTONIC.
 */
#include <errno.h>
#include <stdbool.h>
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

double clock_mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
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

/* Reads exactly n digits at *p into *out, advancing *p. */
static int read_digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return -1;
        v = v * 10 + (c - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

static bool leap_year(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian), for any y >= 1. */
static long long days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    long long era = y / 400;
    long long yoe = y - era * 400;
    long long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

int clock_parse_rfc3339(const char *s, long long *epoch_ms)
{
    static const int mdays[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0;
    const char *p = s;
    if (s == NULL || read_digits(&p, 4, &y) || *p++ != '-' || read_digits(&p, 2, &mo)
        || *p++ != '-' || read_digits(&p, 2, &d) || (*p != 'T' && *p != 't'))
        return -1;
    p++;
    if (read_digits(&p, 2, &h) || *p++ != ':' || read_digits(&p, 2, &mi) || *p++ != ':'
        || read_digits(&p, 2, &sec))
        return -1;
    long long ms = 0;
    if (*p == '.') {
        p++;
        int digits = 0;
        for (; *p >= '0' && *p <= '9'; p++, digits++)
            if (digits < 3)
                ms = ms * 10 + (*p - '0');
        if (digits == 0 || digits > 9)
            return -1;
        for (int i = digits; i < 3; i++)
            ms *= 10;
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        sign = *p++ == '+' ? 1 : -1;
        if (read_digits(&p, 2, &oh) || *p++ != ':' || read_digits(&p, 2, &om)
            || oh > 23 || om > 59)
            return -1;
    } else {
        return -1;
    }
    if (*p != '\0' || y < 1 || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || sec > 59)
        return -1;
    int dim = mdays[mo - 1] + (mo == 2 && leap_year(y));
    if (d > dim)
        return -1;
    long long secs = days_from_civil(y, mo, d) * 86400LL + h * 3600LL + mi * 60LL + sec
                   - sign * (oh * 3600LL + om * 60LL);
    *epoch_ms = secs * 1000 + ms;
    return 0;
}
