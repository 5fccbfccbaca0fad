/*
 * uuid.h - the one id format of agentgate: RFC 9562 UUIDs in canonical
 * lowercase text, checked at the edge before any key is built from them.
 */
#ifndef AG_UUID_H
#define AG_UUID_H

#include <stdbool.h>
#include <stddef.h>

#define UUID_STR_LEN 37 /* 36 characters and the NUL */

/* Writes a new time-ordered UUIDv7 (48-bit ms timestamp, random rest, from
 * getrandom) into out. Time order keeps primary-key inserts local. */
void uuid_v7(char out[UUID_STR_LEN]);

/* Writes a new random UUIDv4 into out. */
void uuid_v4(char out[UUID_STR_LEN]);

/* Fills buf with len (at most 64) random bytes from the same source as the
 * ids (a per-thread pool refilled from getrandom). For other random ids
 * (trace and span ids). */
void uuid_random_bytes(unsigned char *buf, size_t len);

/* Checks that s is exactly 36 characters of 8-4-4-4-12 hex and writes its
 * lowercase form into out (which may be NULL). Returns true when valid. */
bool uuid_parse(const char *s, char out[UUID_STR_LEN]);

#endif
