/*
 * tenant_cache.c - per-thread cache of tenants' settings (see
 * tenant_cache.h).
 *
 * A set-associative table (64 sets of 4) bounds the memory whatever the
 * number of tenants; a tenant hashes to one set and the oldest entry of a
 * full set makes room. The table is allocated on a thread's first use and
 * freed when the thread ends (pthread key destructor).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "tenant_cache.h"

#define CACHE_SETS 64
#define CACHE_WAYS 4

typedef struct cache_entry {
    char tenant[65];
    long long stored_ms;
    long long refresh_ms;    /* when a refresh was last started; 0: none */
    tenant_settings s;
} cache_entry;

typedef struct cache_table {
    cache_entry e[CACHE_SETS][CACHE_WAYS];
} cache_table;

static pthread_key_t table_key;
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void table_key_create(void) { pthread_key_create(&table_key, free); }

static cache_table *table_get(bool create)
{
    pthread_once(&table_once, table_key_create);
    cache_table *t = pthread_getspecific(table_key);
    if (!t && create) {
        t = calloc(1, sizeof *t);
        if (t && pthread_setspecific(table_key, t) != 0) {
            free(t);
            t = NULL;
        }
    }
    return t;
}

/* FNV-1a: a stable spread of tenant ids over the sets. */
static unsigned set_of(const char *tenant)
{
    unsigned h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)tenant; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h % CACHE_SETS;
}

static cache_entry *entry_find(const char *tenant)
{
    cache_table *t = table_get(false);
    if (!t) return NULL;
    cache_entry *set = t->e[set_of(tenant)];
    for (int i = 0; i < CACHE_WAYS; i++)
        if (set[i].tenant[0] && strcmp(set[i].tenant, tenant) == 0) return &set[i];
    return NULL;
}

const tenant_settings *tenant_cache_get(const char *tenant, long long now_ms, int ttl_ms,
                                        bool *fresh)
{
    *fresh = false;
    cache_entry *e = ttl_ms > 0 ? entry_find(tenant) : NULL;
    if (!e) return NULL;
    *fresh = now_ms - e->stored_ms < ttl_ms;
    return &e->s;
}

bool tenant_cache_begin_refresh(const char *tenant, long long now_ms)
{
    cache_entry *e = entry_find(tenant);
    if (!e || (e->refresh_ms && now_ms - e->refresh_ms < 1000)) return false;
    e->refresh_ms = now_ms;
    return true;
}

void tenant_cache_put(const char *tenant, const tenant_settings *s, long long now_ms)
{
    if (strlen(tenant) > 64) return;
    cache_table *t = table_get(true);
    if (!t) return;
    cache_entry *set = t->e[set_of(tenant)], *slot = &set[0];
    for (int i = 0; i < CACHE_WAYS; i++) {
        if (set[i].tenant[0] && strcmp(set[i].tenant, tenant) == 0) { slot = &set[i]; break; }
        if (!set[i].tenant[0] || set[i].stored_ms < slot->stored_ms) slot = &set[i];
    }
    /* An empty way always wins over eviction. */
    for (int i = 0; i < CACHE_WAYS && slot->tenant[0] && strcmp(slot->tenant, tenant) != 0; i++)
        if (!set[i].tenant[0]) slot = &set[i];
    strcpy(slot->tenant, tenant);
    slot->stored_ms = now_ms;
    slot->refresh_ms = 0;
    slot->s = *s;
}
