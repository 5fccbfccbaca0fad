/*
 * keys.c - builds agentgate's Redis key and channel names (see keys.h).
 *
 * Callers pass only ids checked by uuid_parse and type names from the job
 * type registry, so every name fits KEY_MAX; snprintf still bounds the
 * write should a caller ever break that rule. A tenant id is checked here,
 * by every builder that takes one: it comes from a token or a row.
 */
#include <stdio.h>
#include <string.h>
#include <mbedtls/sha256.h>
#include <mbedtls/version.h>

#include "keys.h"
#include "uuid.h"

static char *key_build(char *out, const char *prefix, const char *suffix)
{
    snprintf(out, KEY_MAX, "%s%s", prefix, suffix ? suffix : "");
    return out;
}

char *key_ready(char *out, const char *type)    { return key_build(out, "jobs:ready:", type); }
char *key_active(char *out, const char *type)   { return key_build(out, "jobs:active:", type); }
char *key_state(char *out, const char *job_id)  { return key_build(out, "jobs:state:", job_id); }
char *key_events(char *out, const char *job_id) { return key_build(out, "jobs:events:", job_id); }
char *key_notify(char *out, const char *job_id) { return key_build(out, "jobs:notify:", job_id); }
char *key_lease(char *out, const char *job_id)  { return key_build(out, "jobs:lease:", job_id); }
char *key_cancel(char *out, const char *job_id) { return key_build(out, "cancel:", job_id); }
char *key_delayed(char *out, const char *type)  { return key_build(out, "jobs:delayed:", type); }

int key_tenant_valid(const char *s)
{
    size_t n = 0;
    if (!s) return 0;
    for (; s[n]; n++) {
        char c = s[n];
        if (n >= KEY_TENANT_MAX || !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                                     (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return n > 0;
}

/* ---- queues of tenants --------------------------------------------------- */

/* The tenant goes last, after the type: a tenant id has no ':', so the
 * key reads back unambiguously from its right end. */
char *key_queue(char *out, const char *type, const char *tenant)
{
    out[0] = '\0';
    if (!key_tenant_valid(tenant)) return NULL;
    snprintf(out, KEY_MAX, "jobs:queue:%s:%s", type ? type : "", tenant);
    return out;
}

char *key_delayed_member(char *out, const char *tenant, const char *id)
{
    out[0] = '\0';
    if (!key_tenant_valid(tenant)) return NULL;
    snprintf(out, KEY_MEMBER_MAX, "%s:%s", tenant, id ? id : "");
    return out;
}

int key_delayed_member_split(const char *member, size_t len, char *tenant, char *id)
{
    const size_t id_len = UUID_STR_LEN - 1;
    tenant[0] = '\0';
    /* "{tenant}:" then exactly a UUID: the colon sits id_len + 1 from the end. */
    if (member == NULL || len < id_len + 2 || len - id_len - 1 > KEY_TENANT_MAX
        || member[len - id_len - 1] != ':')
        return -1;
    char t[KEY_TENANT_MAX + 1], u[UUID_STR_LEN];
    size_t tlen = len - id_len - 1;
    memcpy(t, member, tlen);
    t[tlen] = '\0';
    memcpy(u, member + tlen + 1, id_len);
    u[id_len] = '\0';
    if (memchr(member, '\0', len) != NULL || !key_tenant_valid(t) || !uuid_parse(u, id))
        return -1;
    memcpy(tenant, t, tlen + 1);
    return 0;
}

/* ---- the worker registry -------------------------------------------------- */

int key_worker_id_valid(const char *s)
{
    size_t n = 0;
    if (!s) return 0;
    for (; s[n]; n++)
        if (n >= KEY_WORKER_ID_MAX || s[n] < 0x21 || s[n] > 0x7e) return 0;
    return n > 0;
}

char *key_worker(char *out, const char *worker_id)
{
    out[0] = '\0';
    if (!key_worker_id_valid(worker_id)) return NULL;
    snprintf(out, KEY_MAX, "%s%s", KEY_WORKER_PREFIX, worker_id);
    return out;
}

/* ---- idempotency keys ---------------------------------------------------- */

int key_idempotency_valid(const char *s)
{
    size_t n = 0;
    if (!s) return 0;
    for (; s[n]; n++)
        if (n >= 255 || s[n] < 0x20 || s[n] > 0x7e) return 0;
    return n > 0;
}

char *key_idempotency(char *out, const char *tenant, const char *client_key)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char digest[32];
    char h[65];

    out[0] = '\0';
    if (!key_tenant_valid(tenant) || !key_idempotency_valid(client_key)) return NULL;
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
    mbedtls_sha256((const unsigned char *)client_key, strlen(client_key), digest, 0);
#else
    mbedtls_sha256_ret((const unsigned char *)client_key, strlen(client_key), digest, 0);
#endif
    for (int i = 0; i < 32; i++) {
        h[2 * i] = hex[digest[i] >> 4];
        h[2 * i + 1] = hex[digest[i] & 15];
    }
    h[64] = '\0';
    snprintf(out, KEY_MAX, "idempotency:%s:%s", tenant, h);
    return out;
}
