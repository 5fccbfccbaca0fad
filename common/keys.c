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
char *key_turns(char *out, const char *type)    { return key_build(out, "jobs:turns:", type); }

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

/* The tenant follows the type, and a band's name the tenant: neither a
 * tenant id nor a band name has a ':' (nor has a registered type name),
 * so the key reads back unambiguously. */
char *key_queue(char *out, const char *type, const char *tenant)
{
    return key_queue_band(out, type, tenant, NULL);
}

/* A band name is a short run of lowercase letters: never a ':' or a '/'. */
static int band_valid(const char *s, size_t n)
{
    if (n == 0 || n > KEY_BAND_MAX) return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] < 'a' || s[i] > 'z') return 0;
    return 1;
}

char *key_queue_band(char *out, const char *type, const char *tenant, const char *band)
{
    out[0] = '\0';
    if (!key_tenant_valid(tenant) || (band && !band_valid(band, strlen(band)))) return NULL;
    if (band)
        snprintf(out, KEY_MAX, "jobs:queue:%s:%s:%s", type ? type : "", tenant, band);
    else
        snprintf(out, KEY_MAX, "jobs:queue:%s:%s", type ? type : "", tenant);
    return out;
}

char *key_delayed_member(char *out, const char *tenant, const char *id)
{
    return key_delayed_member_band(out, NULL, tenant, id);
}

char *key_delayed_member_band(char *out, const char *band, const char *tenant,
                              const char *id)
{
    out[0] = '\0';
    if (!key_tenant_valid(tenant) || (band && !band_valid(band, strlen(band)))) return NULL;
    snprintf(out, KEY_MEMBER_MAX, "%s%s%s:%s", band ? band : "", band ? "/" : "", tenant,
             id ? id : "");
    return out;
}

int key_delayed_member_split(const char *member, size_t len, char *tenant, char *id)
{
    char band[KEY_BAND_MAX + 1];
    return key_delayed_member_parse(member, len, band, tenant, id);
}

static int member_parse(const char *member, size_t len, char *band, char *tenant, char *id);

int key_delayed_member_parse(const char *member, size_t len, char *band, char *tenant,
                             char *id)
{
    int rc = member_parse(member, len, band, tenant, id);
    if (rc != 0) {
        band[0] = '\0';
        tenant[0] = '\0';
    }
    return rc;
}

static int member_parse(const char *member, size_t len, char *band, char *tenant, char *id)
{
    const size_t id_len = UUID_STR_LEN - 1;
    tenant[0] = '\0';
    band[0] = '\0';
    /* A tenant id has no '/': one there ends the band's name. */
    const char *slash = member ? memchr(member, '/', len) : NULL;
    if (slash != NULL) {
        size_t blen = (size_t)(slash - member);
        if (!band_valid(member, blen))
            return -1;
        memcpy(band, member, blen);
        band[blen] = '\0';
        len -= blen + 1;
        member = slash + 1;
    }
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
