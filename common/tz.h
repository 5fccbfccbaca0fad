/*
 * tz.h - time zones from the system's tz database (IANA names such as
 * "Europe/Berlin"), for turning local wall-clock times into instants.
 *
 * A zone is read from its compiled file under /usr/share/zoneinfo (the
 * TZif format of RFC 8536: the 64-bit transition table, and the POSIX TZ
 * rule in its footer for instants after the last listed transition). No
 * process-wide state is touched (no TZ, no tzset), so any thread may load
 * and use zones at once.
 */
#ifndef AG_TZ_H
#define AG_TZ_H

#include <stdbool.h>
#include <stdint.h>

#define TZ_NAME_MAX 64

typedef struct tz_zone tz_zone;

/* True when name can be a zone's name: 1-64 of letters, digits, '_',
 * '-', '+', '.' and '/', with no empty, "." or ".." part. Says nothing about
 * whether the zone exists. */
bool tz_name_valid(const char *name);

/*
 * Loads the zone called name (checked with tz_name_valid first). Returns
 * the zone, which the caller frees with tz_free, or NULL when there is no
 * such zone, its file is not a well-formed TZif file, or memory ran out.
 */
tz_zone *tz_load(const char *name);

/*
 * The zone called name from a process-wide cache, loaded on its first
 * use: what a request path or a periodic sweep calls, so a zone's file is
 * read once per process rather than once per computation. The zone is
 * shared and lives as long as the process: never tz_free it. NULL as
 * tz_load (no such zone, a malformed file, no memory); a failed name is
 * not cached, and the cache holds at most one zone per file of the tz
 * database. A zone file changed by a tzdata upgrade is read again by the
 * next process.
 */
const tz_zone *tz_cached(const char *name);

/* Frees z (NULL is fine). */
void tz_free(tz_zone *z);

/* The zone's offset from UTC, in seconds east, at instant utc_s (seconds
 * since the Unix epoch). */
int tz_offset(const tz_zone *z, int64_t utc_s);

/*
 * The instant (seconds since the epoch) at which the zone's clocks show
 * wall time wall_s (a local date and time counted as if it were UTC).
 * A wall time shown twice (clocks set back) gives the first of the two
 * instants; one never shown (clocks set forward over it) gives the
 * instant of that change, the first one after it.
 */
int64_t tz_wall_to_utc(const tz_zone *z, int64_t wall_s);

#endif
