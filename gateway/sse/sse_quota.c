/*
 * sse_quota.c - open event streams per principal (see sse_quota.h).
 *
 * A chained hash table of (tenant, sub) -> count under one mutex; an entry
 * is removed when its count falls to zero, so the table holds only the
 * principals with a stream open.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sse_quota.h"

#define QUOTA_BUCKETS 256

typedef struct sse_quota_slot {
    char *tenant_id;
    char *sub;
    int count;
    struct sse_quota_slot *next;
} quota_entry;

static pthread_mutex_t quota_lock = PTHREAD_MUTEX_INITIALIZER;
static quota_entry *quota_table[QUOTA_BUCKETS];

static unsigned quota_bucket(const char *tenant_id, const char *sub)
{
    uint32_t h = 2166136261u;
    for (const char *p = tenant_id; *p; p++) h = (h ^ (unsigned char)*p) * 16777619u;
    h = (h ^ 0xffu) * 16777619u; /* keeps ("ab","c") apart from ("a","bc") */
    for (const char *p = sub; *p; p++) h = (h ^ (unsigned char)*p) * 16777619u;
    return h % QUOTA_BUCKETS;
}

/* The entry's link in its bucket, or the bucket's end. Lock held. */
static quota_entry **quota_find(const char *tenant_id, const char *sub)
{
    quota_entry **pp = &quota_table[quota_bucket(tenant_id, sub)];
    while (*pp && (strcmp((*pp)->tenant_id, tenant_id) != 0 || strcmp((*pp)->sub, sub) != 0))
        pp = &(*pp)->next;
    return pp;
}

sse_quota_slot *sse_quota_take(const char *tenant_id, const char *sub, int max)
{
    quota_entry *got = NULL;
    pthread_mutex_lock(&quota_lock);
    quota_entry **pp = quota_find(tenant_id, sub);
    if (*pp) {
        if ((*pp)->count < max) { (*pp)->count++; got = *pp; }
    } else if (max > 0) {
        quota_entry *e = calloc(1, sizeof *e);
        if (e) {
            e->tenant_id = strdup(tenant_id);
            e->sub = strdup(sub);
            if (e->tenant_id && e->sub) {
                e->count = 1;
                *pp = e;
                got = e;
            } else {
                free(e->tenant_id);
                free(e->sub);
                free(e);
            }
        }
    }
    pthread_mutex_unlock(&quota_lock);
    return got;
}

bool sse_quota_acquire(const char *tenant_id, const char *sub, int max)
{
    return sse_quota_take(tenant_id, sub, max) != NULL;
}

/* Drops one count of the entry at *pp, unlinking it at zero. Lock held. */
static void quota_put(quota_entry **pp)
{
    quota_entry *e = *pp;
    if (e && --e->count <= 0) {
        *pp = e->next;
        free(e->tenant_id);
        free(e->sub);
        free(e);
    }
}

void sse_quota_release(const char *tenant_id, const char *sub)
{
    pthread_mutex_lock(&quota_lock);
    quota_put(quota_find(tenant_id, sub));
    pthread_mutex_unlock(&quota_lock);
}

void sse_quota_give(sse_quota_slot *slot)
{
    if (!slot) return;
    pthread_mutex_lock(&quota_lock);
    /* The entry stays in the table while any slot of it is held, so it is
     * found by its own names. */
    quota_put(quota_find(slot->tenant_id, slot->sub));
    pthread_mutex_unlock(&quota_lock);
}

int sse_quota_held(const char *tenant_id, const char *sub)
{
    pthread_mutex_lock(&quota_lock);
    quota_entry *e = *quota_find(tenant_id, sub);
    int n = e ? e->count : 0;
    pthread_mutex_unlock(&quota_lock);
    return n;
}
