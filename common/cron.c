/*
 * cron.c - parsing cron expressions and finding their next instant (see
 * cron.h).
 *
 * A parsed expression is one bit set per field. The next instant is found
 * on the zone's wall clock, counted as seconds as if it were UTC so that
 * gmtime_r/timegm do the calendar without any global time zone: from the
 * wall time after the given instant, whole months and then whole days
 * that cannot match are skipped, and within a matching day the first
 * matching hour and minute are taken. Each candidate wall time is turned
 * into an instant (tz_wall_to_utc); one at or before the start (the second
 * pass of a repeated hour maps back to the first) moves the search on by a
 * minute.
 */
#include "cron.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define SEARCH_YEARS 9

typedef struct field_def {
    const char *name;
    int lo, hi;
    const char *const *names;   /* names of lo, lo+1, ... or NULL */
} field_def;

static const char *const month_names[] = { "jan", "feb", "mar", "apr", "may", "jun", "jul",
                                           "aug", "sep", "oct", "nov", "dec", NULL };
static const char *const wday_names[] = { "sun", "mon", "tue", "wed", "thu", "fri", "sat",
                                          NULL };

static const field_def fields[5] = {
    { "minute", 0, 59, NULL },
    { "hour", 0, 23, NULL },
    { "day of month", 1, 31, NULL },
    { "month", 1, 12, month_names },
    { "day of week", 0, 7, wday_names },
};

static const struct { const char *name, *fields; } macros[] = {
    { "@yearly", "0 0 1 1 *" }, { "@annually", "0 0 1 1 *" }, { "@monthly", "0 0 1 * *" },
    { "@weekly", "0 0 * * 0" }, { "@daily", "0 0 * * *" }, { "@midnight", "0 0 * * *" },
    { "@hourly", "0 * * * *" },
};

/* Reads a value (a number, or one of f's names) at *s; -1 when none. */
static int read_value(const field_def *f, const char **s)
{
    const char *p = *s;
    if (*p >= '0' && *p <= '9') {
        int v = 0;
        while (*p >= '0' && *p <= '9' && v < 1000)
            v = v * 10 + (*p++ - '0');
        *s = p;
        return v;
    }
    for (int i = 0; f->names && f->names[i]; i++) {
        if (strncasecmp(p, f->names[i], 3) == 0) {
            *s = p + 3;
            return f->lo + i;
        }
    }
    return -1;
}

/* Parses one field's text (len bytes at s) into *bits. */
static int parse_field(const field_def *f, const char *s, size_t len, uint64_t *bits,
                       char *err, size_t err_size)
{
    char text[CRON_TEXT_MAX + 1];
    memcpy(text, s, len);
    text[len] = '\0';
    *bits = 0;
    const char *p = text;
    for (;;) {
        int a, b, step = 1;
        if (*p == '*') {
            a = f->lo;
            b = f->hi;
            p++;
        } else {
            if ((a = read_value(f, &p)) < 0)
                goto bad;
            b = a;
            if (*p == '-') {
                p++;
                if ((b = read_value(f, &p)) < 0)
                    goto bad;
            } else if (*p == '/') {
                b = f->hi;
            }
        }
        if (*p == '/') {
            p++;
            if (*p < '0' || *p > '9')
                goto bad;
            step = 0;
            while (*p >= '0' && *p <= '9' && step < 1000)
                step = step * 10 + (*p++ - '0');
            if (step < 1 || step > f->hi - f->lo + 1) {
                snprintf(err, err_size, "%s field: step %d is out of range 1-%d", f->name, step,
                         f->hi - f->lo + 1);
                return -1;
            }
        }
        if (a < f->lo || a > f->hi || b < f->lo || b > f->hi) {
            snprintf(err, err_size, "%s field: %d is out of range %d-%d", f->name,
                     a < f->lo || a > f->hi ? a : b, f->lo, f->hi);
            return -1;
        }
        if (b < a) {
            snprintf(err, err_size, "%s field: range %d-%d runs backwards", f->name, a, b);
            return -1;
        }
        for (int v = a; v <= b; v += step)
            *bits |= 1ULL << v;
        if (*p == '\0')
            return 0;
        if (*p++ != ',')
            goto bad;
    }
bad:
    snprintf(err, err_size, "%s field: \"%s\" is not a list of values, ranges and steps",
             f->name, text);
    return -1;
}

int cron_parse(const char *text, cron_expr *out, char *err, size_t err_size)
{
    memset(out, 0, sizeof *out);
    if (strlen(text) > CRON_TEXT_MAX) {
        snprintf(err, err_size, "a cron expression is at most %d characters", CRON_TEXT_MAX);
        return -1;
    }
    const char *s = text;
    while (*s == ' ' || *s == '\t')
        s++;
    if (*s == '@') {
        size_t n = strcspn(s, " \t");
        const char *rest = s + n + strspn(s + n, " \t");
        for (size_t i = 0; i < sizeof macros / sizeof macros[0]; i++)
            if (*rest == '\0' && strlen(macros[i].name) == n &&
                strncasecmp(s, macros[i].name, n) == 0)
                return cron_parse(macros[i].fields, out, err, err_size);
        snprintf(err, err_size, "unknown macro (known: @yearly, @annually, @monthly, @weekly, "
                 "@daily, @midnight, @hourly)");
        return -1;
    }
    uint64_t bits[5];
    for (int i = 0; i < 5; i++) {
        size_t n = strcspn(s, " \t");
        if (n == 0) {
            snprintf(err, err_size, "a cron expression has five fields (minute hour "
                     "day-of-month month day-of-week); the %s field is missing", fields[i].name);
            return -1;
        }
        if (parse_field(&fields[i], s, n, &bits[i], err, err_size) != 0)
            return -1;
        if (i == 2)
            out->mday_star = *s == '*';
        if (i == 4)
            out->wday_star = *s == '*';
        s += n;
        s += strspn(s, " \t");
    }
    if (*s != '\0') {
        snprintf(err, err_size, "a cron expression has five fields (minute hour day-of-month "
                 "month day-of-week); there is more after the fifth");
        return -1;
    }
    out->minute = bits[0];
    out->hour = (uint32_t)bits[1];
    out->mday = (uint32_t)bits[2];
    out->month = (uint16_t)bits[3];
    out->wday = (uint8_t)((bits[4] | bits[4] >> 7) & 0x7f);   /* 7 is Sunday too */
    return 0;
}

static bool day_matches(const cron_expr *c, const struct tm *tm)
{
    bool md = c->mday >> tm->tm_mday & 1, wd = c->wday >> tm->tm_wday & 1;
    if (c->mday_star || c->wday_star)
        return md && wd;
    return md || wd;
}

int cron_next(const cron_expr *c, const tz_zone *z, int64_t after_s, int64_t *next_s)
{
    int64_t wall = after_s + tz_offset(z, after_s);
    wall = wall - ((wall % 60) + 60) % 60 + 60;
    int64_t limit = wall + (int64_t)SEARCH_YEARS * 366 * 86400;
    while (wall < limit) {
        time_t t = (time_t)wall;
        struct tm tm;
        if (gmtime_r(&t, &tm) == NULL)
            return -1;
        int64_t day = wall - (tm.tm_hour * 3600 + tm.tm_min * 60 + tm.tm_sec);
        if (!(c->month >> (tm.tm_mon + 1) & 1)) {
            struct tm first = { .tm_year = tm.tm_year, .tm_mon = tm.tm_mon + 1, .tm_mday = 1 };
            wall = (int64_t)timegm(&first);
            continue;
        }
        if (!day_matches(c, &tm)) {
            wall = day + 86400;
            continue;
        }
        int hour = tm.tm_hour, minute = tm.tm_min;
        while (hour < 24 && !(c->hour >> hour & 1)) {
            hour++;
            minute = 0;
        }
        while (hour < 24) {
            while (minute < 60 && !(c->minute >> minute & 1))
                minute++;
            if (minute < 60)
                break;
            minute = 0;
            do hour++; while (hour < 24 && !(c->hour >> hour & 1));
        }
        if (hour >= 24) {
            wall = day + 86400;
            continue;
        }
        int64_t cand = day + hour * 3600 + minute * 60;
        int64_t at = tz_wall_to_utc(z, cand);
        if (at > after_s) {
            *next_s = at;
            return 0;
        }
        wall = cand + 60;
    }
    return -1;
}

int cron_next_text(const char *cron, const char *timezone, int64_t after_s, int64_t *next_s,
                   char *err, size_t err_size)
{
    cron_expr c;
    if (cron_parse(cron, &c, err, err_size) != 0)
        return CRON_BAD_EXPR;
    const tz_zone *z = tz_cached(timezone);
    if (z == NULL)
        return CRON_BAD_ZONE;
    int rc = cron_next(&c, z, after_s, next_s);
    return rc == 0 ? CRON_OK : CRON_NEVER;
}
