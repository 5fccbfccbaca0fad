/*
 * tz.c - the system tz database read without the C library's global
 * time zone (see tz.h).
 *
 * A TZif file holds a table of transitions (instant, index of the local
 * time type from then on) and the types (offset, DST flag). Version 2 and
 * later files repeat the table with 64-bit instants after the 32-bit one;
 * that copy is the one read. Past the last transition the footer's POSIX
 * TZ string ("CET-1CEST,M3.5.0,M10.5.0/3") rules, so a slim file, or any
 * date past the table (2037 in fat files), is still right. Before the
 * first transition the first type applies (RFC 8536, section 3.2).
 *
 * tz_wall_to_utc tries the offsets in force a day before and a day after
 * the wall time: one of them reproduces it unless the wall time falls in
 * a gap, whose end is then found by bisection. Zones change offset at
 * most once within such two days.
 *
 * tz_cached keeps the zones it loaded in a small hash table under one
 * mutex; a zone is immutable once loaded, so callers use it unlocked.
 */
#include "tz.h"

#include <pthread.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TZ_DIR       "/usr/share/zoneinfo"
#define TZ_FILE_MAX  (256 * 1024)

/* One POSIX TZ transition rule: Jn, n or Mm.w.d, at time s local. */
typedef struct tz_rule {
    char kind;          /* 'J', 'D' (zero-based day) or 'M' */
    int day, week, month;
    int time_s;
} tz_rule;

struct tz_zone {
    int64_t *times;     /* transition instants, ascending */
    unsigned char *idx; /* type index after each transition */
    int *offs;          /* offset of each type, seconds east */
    int ntimes, ntypes;
    bool has_footer;    /* footer rules after the last transition */
    int std_off, dst_off;
    bool has_dst;
    tz_rule start, end;
};

bool tz_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > TZ_NAME_MAX)
        return false;
    const char *part = name;
    for (size_t i = 0; i <= n; i++) {
        char c = name[i];
        if (c == '/' || c == '\0') {
            size_t len = (size_t)(name + i - part);
            if (len == 0 || (len == 1 && part[0] == '.') ||
                (len == 2 && part[0] == '.' && part[1] == '.'))
                return false;
            part = name + i + 1;
            continue;
        }
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '+' || c == '.'))
            return false;
    }
    return true;
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const unsigned char *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

/* --- the POSIX TZ string of the footer -------------------------------- */

/* Skips a zone abbreviation: <...> or 3+ letters. */
static const char *skip_abbr(const char *s)
{
    if (*s == '<') {
        const char *e = strchr(s, '>');
        return e ? e + 1 : NULL;
    }
    const char *p = s;
    while ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z'))
        p++;
    return p - s >= 3 ? p : NULL;
}

/* Parses [+-]hh[:mm[:ss]] (hours up to 167) into *out seconds. */
static const char *parse_hms(const char *s, int *out)
{
    int sign = 1;
    if (*s == '+' || *s == '-')
        sign = *s++ == '-' ? -1 : 1;
    int part[3] = { 0, 0, 0 };
    for (int i = 0; i < 3; i++) {
        if (*s < '0' || *s > '9')
            return i == 0 ? NULL : s;
        int v = 0;
        while (*s >= '0' && *s <= '9' && v < 1000)
            v = v * 10 + (*s++ - '0');
        part[i] = v;
        if (*s != ':' || i == 2)
            break;
        s++;
    }
    if (part[0] > 167 || part[1] > 59 || part[2] > 59)
        return NULL;
    *out = sign * (part[0] * 3600 + part[1] * 60 + part[2]);
    return s;
}

static const char *parse_num(const char *s, int lo, int hi, int *out)
{
    if (*s < '0' || *s > '9')
        return NULL;
    int v = 0;
    while (*s >= '0' && *s <= '9' && v <= hi)
        v = v * 10 + (*s++ - '0');
    if (v < lo || v > hi)
        return NULL;
    *out = v;
    return s;
}

static const char *parse_rule(const char *s, tz_rule *r)
{
    memset(r, 0, sizeof *r);
    if (*s == 'M') {
        r->kind = 'M';
        if (!(s = parse_num(s + 1, 1, 12, &r->month)) || *s++ != '.' ||
            !(s = parse_num(s, 1, 5, &r->week)) || *s++ != '.' ||
            !(s = parse_num(s, 0, 6, &r->day)))
            return NULL;
    } else if (*s == 'J') {
        r->kind = 'J';
        if (!(s = parse_num(s + 1, 1, 365, &r->day)))
            return NULL;
    } else {
        r->kind = 'D';
        if (!(s = parse_num(s, 0, 365, &r->day)))
            return NULL;
    }
    r->time_s = 7200;
    if (*s == '/' && !(s = parse_hms(s + 1, &r->time_s)))
        return NULL;
    return s;
}

/* Reads the footer's TZ string into z; 0, or -1 when it is not one. */
static int parse_footer(tz_zone *z, const char *s)
{
    int off;
    if (!(s = skip_abbr(s)) || !(s = parse_hms(s, &off)))
        return -1;
    z->std_off = -off;          /* POSIX counts hours west */
    z->has_footer = true;
    if (*s == '\0')
        return 0;
    if (!(s = skip_abbr(s)))
        return -1;
    z->has_dst = true;
    z->dst_off = z->std_off + 3600;
    if (*s != ',' && *s != '\0') {
        if (!(s = parse_hms(s, &off)))
            return -1;
        z->dst_off = -off;
    }
    if (*s == '\0')             /* the POSIX default: US rules */
        s = ",M3.2.0,M11.1.0";
    if (*s++ != ',' || !(s = parse_rule(s, &z->start)) || *s++ != ',' ||
        !(s = parse_rule(s, &z->end)) || *s != '\0')
        return -1;
    return 0;
}

static bool leap_year(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Seconds since the epoch of 00:00 UTC on January 1 of year y. */
static int64_t year_start(int64_t y)
{
    struct tm tm = { .tm_year = (int)(y - 1900), .tm_mday = 1 };
    return (int64_t)timegm(&tm);
}

/* The day of year y (zero-based) that rule r names. */
static int rule_yday(const tz_rule *r, int64_t y)
{
    static const int mdays[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    bool leap = leap_year(y);
    if (r->kind == 'J')
        return r->day - 1 + (leap && r->day >= 60);
    if (r->kind == 'D')
        return r->day;
    int first = 0;
    for (int m = 1; m < r->month; m++)
        first += mdays[m - 1] + (m == 2 && leap);
    int len = mdays[r->month - 1] + (r->month == 2 && leap);
    /* Weekday of the month's first day: 1970-01-01 was a Thursday (4). */
    int64_t days = (year_start(y) / 86400) + first;
    int wd = (int)(((days % 7) + 7 + 4) % 7);
    int mday = 1 + (r->day - wd + 7) % 7 + (r->week - 1) * 7;
    while (mday > len)
        mday -= 7;
    return first + mday - 1;
}

/* The offset the footer's rules give at instant t. */
static int footer_offset(const tz_zone *z, int64_t t)
{
    if (!z->has_dst)
        return z->std_off;
    time_t local = (time_t)(t + z->std_off);
    struct tm tm;
    if (gmtime_r(&local, &tm) == NULL)
        return z->std_off;
    int64_t y = (int64_t)tm.tm_year + 1900, y0 = year_start(y);
    /* The start is given in standard time, the end in daylight time. */
    int64_t start = y0 + (int64_t)rule_yday(&z->start, y) * 86400 + z->start.time_s - z->std_off;
    int64_t end = y0 + (int64_t)rule_yday(&z->end, y) * 86400 + z->end.time_s - z->dst_off;
    bool dst = start < end ? (t >= start && t < end) : !(t >= end && t < start);
    return dst ? z->dst_off : z->std_off;
}

/* --- loading ------------------------------------------------------------ */

void tz_free(tz_zone *z)
{
    if (!z)
        return;
    free(z->times);
    free(z->idx);
    free(z->offs);
    free(z);
}

/* Reads the whole file at path (at most TZ_FILE_MAX bytes). */
static unsigned char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    unsigned char *buf = malloc(TZ_FILE_MAX);
    size_t n = buf ? fread(buf, 1, TZ_FILE_MAX, f) : 0;
    bool whole = buf && !ferror(f) && n < TZ_FILE_MAX;
    fclose(f);
    if (!whole) {
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

/* Parses the TZif data of b (n bytes) into z; 0 or -1. */
static int parse_tzif(tz_zone *z, const unsigned char *b, size_t n)
{
    if (n < 44 || memcmp(b, "TZif", 4) != 0)
        return -1;
    int tsize = 4;
    const unsigned char *h = b;
    for (int pass = 0; pass < 2; pass++) {
        if ((size_t)(h - b) + 44 > n)
            return -1;
        uint32_t isut = be32(h + 20), isstd = be32(h + 24), leap = be32(h + 28),
                 timecnt = be32(h + 32), typecnt = be32(h + 36), charcnt = be32(h + 40);
        if (typecnt == 0 || typecnt > 256 || timecnt > 100000 || leap > 100000 ||
            charcnt > 100000 || isut > 256 || isstd > 256)
            return -1;
        size_t body = (size_t)timecnt * (tsize + 1) + (size_t)typecnt * 6 + charcnt +
                      (size_t)leap * (tsize + 4) + isstd + isut;
        const unsigned char *d = h + 44;
        if ((size_t)(d - b) + body > n)
            return -1;
        if (pass == 0 && h[4] >= '2') {
            h = d + body;           /* the 64-bit copy follows */
            tsize = 8;
            continue;
        }
        z->ntimes = (int)timecnt;
        z->ntypes = (int)typecnt;
        z->times = malloc(sizeof *z->times * (timecnt ? timecnt : 1));
        z->idx = malloc(timecnt ? timecnt : 1);
        z->offs = malloc(sizeof *z->offs * typecnt);
        if (!z->times || !z->idx || !z->offs)
            return -1;
        for (uint32_t i = 0; i < timecnt; i++)
            z->times[i] = tsize == 8 ? be64(d + i * 8) : (int32_t)be32(d + i * 4);
        d += (size_t)timecnt * tsize;
        for (uint32_t i = 0; i < timecnt; i++) {
            if (d[i] >= typecnt)
                return -1;
            z->idx[i] = d[i];
        }
        d += timecnt;
        for (uint32_t i = 0; i < typecnt; i++)
            z->offs[i] = (int32_t)be32(d + i * 6);
        d += (size_t)typecnt * 6 + charcnt + (size_t)leap * (tsize + 4) + isstd + isut;
        if (tsize == 8 && (size_t)(d - b) < n && *d == '\n') {
            const unsigned char *e = memchr(d + 1, '\n', n - (size_t)(d + 1 - b));
            if (e && e > d + 1) {
                char footer[128];
                size_t len = (size_t)(e - d - 1);
                if (len >= sizeof footer)
                    return -1;
                memcpy(footer, d + 1, len);
                footer[len] = '\0';
                if (parse_footer(z, footer) != 0)
                    return -1;
            }
        }
        return 0;
    }
    return -1;
}

tz_zone *tz_load(const char *name)
{
    if (!tz_name_valid(name))
        return NULL;
    char path[sizeof TZ_DIR + TZ_NAME_MAX + 2];
    snprintf(path, sizeof path, "%s/%s", TZ_DIR, name);
    size_t n = 0;
    unsigned char *buf = read_file(path, &n);
    if (!buf)
        return NULL;
    tz_zone *z = calloc(1, sizeof *z);
    if (z && parse_tzif(z, buf, n) != 0) {
        tz_free(z);
        z = NULL;
    }
    free(buf);
    return z;
}

/* --- the process-wide cache --------------------------------------------- */

#define TZ_CACHE_BUCKETS 64

typedef struct tz_cache_entry {
    char name[TZ_NAME_MAX + 1];
    tz_zone *zone;
    struct tz_cache_entry *next;
} tz_cache_entry;

static tz_cache_entry *tz_cache[TZ_CACHE_BUCKETS];
static pthread_mutex_t tz_cache_lock = PTHREAD_MUTEX_INITIALIZER;

static unsigned tz_name_hash(const char *name)
{
    unsigned h = 2166136261u;           /* FNV-1a */
    for (; *name; name++)
        h = (h ^ (unsigned char)*name) * 16777619u;
    return h % TZ_CACHE_BUCKETS;
}

const tz_zone *tz_cached(const char *name)
{
    if (!tz_name_valid(name))
        return NULL;
    unsigned b = tz_name_hash(name);
    pthread_mutex_lock(&tz_cache_lock);
    tz_cache_entry *e = tz_cache[b];
    while (e && strcmp(e->name, name) != 0)
        e = e->next;
    if (!e) {
        /* Loaded under the lock: a first use is rare and short, and two
         * threads never read the same file for one entry. */
        tz_zone *z = tz_load(name);
        e = z ? calloc(1, sizeof *e) : NULL;
        if (e) {
            snprintf(e->name, sizeof e->name, "%s", name);
            e->zone = z;
            e->next = tz_cache[b];
            tz_cache[b] = e;
        } else {
            tz_free(z);
        }
    }
    pthread_mutex_unlock(&tz_cache_lock);
    return e ? e->zone : NULL;
}

/* --- offsets ------------------------------------------------------------ */

int tz_offset(const tz_zone *z, int64_t utc_s)
{
    if (z->ntimes == 0 || utc_s < z->times[0])
        return z->ntimes == 0 && z->has_footer ? footer_offset(z, utc_s) : z->offs[0];
    if (utc_s >= z->times[z->ntimes - 1] && z->has_footer)
        return footer_offset(z, utc_s);
    int lo = 0, hi = z->ntimes - 1;     /* times[lo] <= utc_s */
    while (lo < hi) {
        int mid = lo + (hi - lo + 1) / 2;
        if (z->times[mid] <= utc_s)
            lo = mid;
        else
            hi = mid - 1;
    }
    return z->offs[z->idx[lo]];
}

int64_t tz_wall_to_utc(const tz_zone *z, int64_t wall_s)
{
    int before = tz_offset(z, wall_s - 86400), after = tz_offset(z, wall_s + 86400);
    int64_t u1 = wall_s - before, u2 = wall_s - after;
    if (tz_offset(z, u1) == before)
        return u1;
    if (tz_offset(z, u2) == after)
        return u2;
    if (u2 >= u1)
        return u1;
    /* A gap: the offset is `before` at u2 and `after` at u1; the change
     * between them is the first instant after the skipped wall time. */
    int64_t lo = u2, hi = u1;
    while (hi - lo > 1) {
        int64_t mid = lo + (hi - lo) / 2;
        if (tz_offset(z, mid) == before)
            lo = mid;
        else
            hi = mid;
    }
    return hi;
}
