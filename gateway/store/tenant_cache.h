/*
 * tenant_cache.h - each loop thread's cache of tenants' settings
 * (tenants.settings, parsed), so the request path reads PostgreSQL for a
 * tenant once per AGENTGATE_TENANT_SETTINGS_CACHE_MS at most. Thread-local:
 * no locks; each loop thread fills its own.
 */
#ifndef AG_TENANT_CACHE_H
#define AG_TENANT_CACHE_H

#include <stdbool.h>
#include "tenant_settings.h"

/*
 * A tenant's cached settings on this thread, or NULL when there are none
 * (or ttl_ms is 0: no caching). *fresh is set to whether they were stored
 * less than ttl_ms ago (now_ms and ttl_ms in ms). Valid until the next put.
 */
const tenant_settings *tenant_cache_get(const char *tenant, long long now_ms, int ttl_ms,
                                        bool *fresh);

/*
 * Claims the refresh of a cached tenant's settings: true when the caller
 * should read them again (no other refresh started in the last second),
 * false otherwise. So stale settings are refreshed by one query while
 * the requests meanwhile keep using them.
 */
bool tenant_cache_begin_refresh(const char *tenant, long long now_ms);

/* Stores a copy of s for tenant (1..64 bytes), evicting the oldest entry
 * of its set when full. Does nothing on allocation failure. */
void tenant_cache_put(const char *tenant, const tenant_settings *s, long long now_ms);

#endif
