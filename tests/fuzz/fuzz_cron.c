/*
 * fuzz_cron.c - libFuzzer target for cron expressions: cron_parse on
 * arbitrary text, and for what it accepts, cron_next from an arbitrary
 * instant in a few zones (with and without daylight saving time, both
 * hemispheres, a half-hour offset), checking that the answer lies after
 * the instant and that a second search from just before it finds it again.
 *
 * Input: byte 0 picks the zone, bytes 1-5 the instant (seconds within
 * about 1970-2100), the rest is the expression.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cron.h"
#include "tz.h"

static const char *const zones[] = { "UTC", "Europe/Berlin", "America/New_York",
                                     "Australia/Sydney", "Asia/Kolkata",
                                     "Australia/Lord_Howe", "America/Godthab" };
#define N_ZONES (sizeof zones / sizeof zones[0])

static tz_zone *loaded[N_ZONES];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 6 || size > 6 + CRON_TEXT_MAX + 16) return 0;
    size_t zi = data[0] % N_ZONES;
    if (!loaded[zi] && !(loaded[zi] = tz_load(zones[zi]))) abort();
    int64_t after = 0;
    for (int i = 1; i < 6; i++) after = after << 8 | data[i];
    after %= 4102444800LL;     /* before 2100 */

    char text[CRON_TEXT_MAX + 17];
    memcpy(text, data + 6, size - 6);
    text[size - 6] = '\0';
    cron_expr c;
    char err[200];
    err[0] = '\0';
    if (cron_parse(text, &c, err, sizeof err) != 0) {
        if (err[0] == '\0' || strnlen(err, sizeof err) >= sizeof err) abort();
        return 0;
    }
    if (c.minute == 0 || c.hour == 0 || c.mday == 0 || c.month == 0 || c.wday == 0) abort();
    int64_t next;
    if (cron_next(&c, loaded[zi], after, &next) != 0) return 0;
    if (next <= after || next > after + 10LL * 366 * 86400) abort();
    int64_t again;
    if (cron_next(&c, loaded[zi], next - 1, &again) != 0 || again != next) abort();
    return 0;
}
