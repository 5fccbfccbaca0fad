/*
 * cron.h - cron expressions (the five fields of crontab(5)) and the next
 * instant one names in a time zone.
 *
 * Fields: minute 0-59, hour 0-23, day of month 1-31, month 1-12 (or
 * jan-dec), day of week 0-7 (0 and 7 are Sunday, or sun-sat). Each is a
 * list of items separated by ','; an item is '*', a value or a range a-b,
 * optionally followed by /step ("a/step" runs from a to the field's end).
 * @yearly, @annually, @monthly, @weekly, @daily, @midnight and @hourly
 * stand for their usual five fields. As in crontab(5), when both the day
 * of month and the day of week are restricted (neither starts with '*'),
 * a day matching either one matches.
 *
 * Times are the zone's wall clock: "0 9 * * 1-5" is 09:00 local on
 * weekdays whatever the offset that day. Across daylight-saving changes a
 * wall time that occurs twice fires once, at its first occurrence, and one
 * the clock skips fires at the instant of the change.
 */
#ifndef AG_CRON_H
#define AG_CRON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tz.h"

#define CRON_TEXT_MAX 256

typedef struct cron_expr {
    uint64_t minute;        /* bit n: minute n */
    uint32_t hour;          /* bit n: hour n */
    uint32_t mday;          /* bit n: day n of the month, 1-31 */
    uint16_t month;         /* bit n: month n, 1-12 */
    uint8_t wday;           /* bit n: weekday n, 0 (Sunday) - 6 */
    bool mday_star, wday_star;
} cron_expr;

/*
 * Parses text (at most CRON_TEXT_MAX bytes) into *out. Returns 0, or -1
 * with a sentence saying what is wrong, naming the field, in err (at most
 * err_size bytes).
 */
int cron_parse(const char *text, cron_expr *out, char *err, size_t err_size);

/*
 * The first instant strictly after after_s (seconds since the epoch, UTC)
 * at which c fires in zone z, on a minute's boundary of the zone's clock,
 * into *next_s. Returns 0, or -1 when c fires on no day within the next
 * nine years (as "0 0 30 2 *" never does).
 */
int cron_next(const cron_expr *c, const tz_zone *z, int64_t after_s, int64_t *next_s);

/* cron_next_text's answers. */
enum { CRON_OK = 0, CRON_BAD_EXPR = -1, CRON_BAD_ZONE = -2, CRON_NEVER = -3 };

/*
 * Parses cron and loads zone timezone, then finds the first instant
 * after after_s as cron_next does, into *next_s: what a schedule's
 * next_run_at is. Returns CRON_OK; CRON_BAD_EXPR with the parser's
 * sentence in err (err_size bytes); CRON_BAD_ZONE when the system tz
 * database has no such zone; or CRON_NEVER.
 */
int cron_next_text(const char *cron, const char *timezone, int64_t after_s, int64_t *next_s,
                   char *err, size_t err_size);

#endif
