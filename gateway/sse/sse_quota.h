/*
 * sse_quota.h - the cap on open event streams per principal (tenant, sub),
 * counted across every loop thread of the gateway.
 *
 * Streams open and close rarely next to the events they carry, so one
 * mutex over a small table is enough.
 */
#ifndef AG_SSE_QUOTA_H
#define AG_SSE_QUOTA_H

#include <stdbool.h>

/* Takes one stream slot of (tenant_id, sub) when fewer than max are held.
 * Returns false when max are already open (or out of memory). */
bool sse_quota_acquire(const char *tenant_id, const char *sub, int max);

/* Gives back a slot taken by sse_quota_acquire. */
void sse_quota_release(const char *tenant_id, const char *sub);

/* One slot taken, as a handle: a stream keeps this pointer (shared by
 * every stream of the principal) instead of copies of both names. */
typedef struct sse_quota_slot sse_quota_slot;

/* Like sse_quota_acquire, but returns the principal's entry (NULL when max
 * are already open or out of memory); give it back with sse_quota_give. */
sse_quota_slot *sse_quota_take(const char *tenant_id, const char *sub, int max);

/* Gives back one slot taken by sse_quota_take. */
void sse_quota_give(sse_quota_slot *slot);

/* Slots of (tenant_id, sub) held now. */
int sse_quota_held(const char *tenant_id, const char *sub);

#endif
