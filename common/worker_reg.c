/*
 * worker_reg.c - the worker registry's record (see worker_reg.h): the
 * jobs list a worker writes, and the JSON the gateway renders from a
 * hash it read back.
 *
 * The rendering trusts nothing in the hash: Redis is shared, so a value
 * is escaped as JSON text, numbers are printed only when they parse as
 * whole numbers, and a jobs entry is shown only when its tenant is
 * exactly the caller's and its id is a UUID.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "jsonutil.h"
#include "keys.h"
#include "utf8.h"
#include "uuid.h"
#include "worker_reg.h"

int worker_reg_jobs_add(strbuf *b, const char *tenant, const char *job_id)
{
    char id[UUID_STR_LEN];
    if (!key_tenant_valid(tenant) || !uuid_parse(job_id, id))
        return -1;
    if (b->len > 0)
        strbuf_add(b, ",");
    strbuf_addf(b, "%s:%s", tenant, id);
    return 0;
}

/* ---- rendering ----------------------------------------------------------- */

static bool text_is(const wreg_text *t, const char *word)
{
    size_t n = strlen(word);
    return t->s != NULL && t->len == n && memcmp(t->s, word, n) == 0;
}

/* The value of field name among the n pairs, or NULL. */
static const wreg_text *field(const wreg_text *names, const wreg_text *values, size_t n,
                              const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (text_is(&names[i], name))
            return &values[i];
    return NULL;
}

/* Appends s (len bytes) as a quoted JSON string. */
static void add_string(strbuf *b, const char *s, size_t len)
{
    strbuf_add(b, "\"");
    size_t i = 0;
    while (i < len) {
        unsigned char c = (unsigned char)s[i];
        char esc[6];
        size_t elen;
        if (c < 0x80) {
            elen = json_escape_byte(c, esc);
            if (elen > 0)
                strbuf_addn(b, esc, elen);
            else
                strbuf_addn(b, s + i, 1);
            i++;
            continue;
        }
        size_t seq = utf8_sequence_len((const unsigned char *)s + i, len - i);
        if (seq == 0) {
            strbuf_add(b, "?");
            i++;
        } else {
            strbuf_addn(b, s + i, seq);
            i += seq;
        }
    }
    strbuf_add(b, "\"");
}

static void add_string_or_null(strbuf *b, const wreg_text *v)
{
    if (v == NULL || v->s == NULL)
        strbuf_add(b, "null");
    else
        add_string(b, v->s, v->len);
}

/* Appends v as a whole number when it is one (optional '-', 1..18
 * digits), else null. */
static void add_number_or_null(strbuf *b, const wreg_text *v)
{
    char text[20];
    if (v == NULL || v->s == NULL || v->len == 0 || v->len >= sizeof text) {
        strbuf_add(b, "null");
        return;
    }
    memcpy(text, v->s, v->len);
    text[v->len] = '\0';
    char *end = NULL;
    errno = 0;
    long long n = strtoll(text, &end, 10);
    bool digits = text[0] == '-' ? text[1] >= '0' && text[1] <= '9'
                                 : text[0] >= '0' && text[0] <= '9';
    if (!digits || errno != 0 || end == NULL || *end != '\0') {
        strbuf_add(b, "null");
        return;
    }
    strbuf_addf(b, "%lld", n);
}

/* Appends the comma list v as a JSON array of its non-empty parts. */
static void add_list(strbuf *b, const wreg_text *v)
{
    strbuf_add(b, "[");
    bool first = true;
    size_t i = 0, len = v != NULL && v->s != NULL ? v->len : 0;
    while (i < len) {
        const char *part = v->s + i;
        const char *comma = memchr(part, ',', len - i);
        size_t plen = comma ? (size_t)(comma - part) : len - i;
        if (plen > 0) {
            if (!first) strbuf_add(b, ",");
            add_string(b, part, plen);
            first = false;
        }
        i += plen + 1;
    }
    strbuf_add(b, "]");
}

/* True when entry (len bytes) is "{tenant}:{uuid}" for exactly tenant;
 * *id then gets the id. */
static bool entry_of_tenant(const char *entry, size_t len, const char *tenant,
                            char id[UUID_STR_LEN])
{
    size_t tlen = strlen(tenant), idlen = UUID_STR_LEN - 1;
    char text[UUID_STR_LEN];
    if (tlen == 0 || len != tlen + 1 + idlen || memcmp(entry, tenant, tlen) != 0
        || entry[tlen] != ':')
        return false;
    memcpy(text, entry + tlen + 1, idlen);
    text[idlen] = '\0';
    return memchr(text, '\0', idlen) == NULL && uuid_parse(text, id);
}

/* Appends the ids of tenant's entries of the jobs list v as an array. */
static void add_jobs(strbuf *b, const wreg_text *v, const char *tenant)
{
    strbuf_add(b, "[");
    bool first = true;
    size_t i = 0, len = v != NULL && v->s != NULL ? v->len : 0;
    while (tenant != NULL && i < len) {
        const char *entry = v->s + i;
        const char *comma = memchr(entry, ',', len - i);
        size_t elen = comma ? (size_t)(comma - entry) : len - i;
        char id[UUID_STR_LEN];
        if (entry_of_tenant(entry, elen, tenant, id)) {
            strbuf_addf(b, "%s\"%s\"", first ? "" : ",", id);
            first = false;
        }
        i += elen + 1;
    }
    strbuf_add(b, "]");
}

int worker_reg_json(strbuf *out, const wreg_text *names, const wreg_text *values, size_t n,
                    const char *tenant)
{
    const wreg_text *id = field(names, values, n, WREG_ID);
    if (id == NULL || id->s == NULL || id->len == 0)
        return -1;
    strbuf_add(out, "{\"id\":");
    add_string(out, id->s, id->len);
    strbuf_add(out, ",\"host\":");
    add_string_or_null(out, field(names, values, n, WREG_HOST));
    strbuf_add(out, ",\"pid\":");
    add_number_or_null(out, field(names, values, n, WREG_PID));
    strbuf_add(out, ",\"started_at\":");
    add_string_or_null(out, field(names, values, n, WREG_STARTED_AT));
    strbuf_add(out, ",\"heartbeat_at\":");
    add_string_or_null(out, field(names, values, n, WREG_HEARTBEAT_AT));
    strbuf_add(out, ",\"queues\":");
    add_list(out, field(names, values, n, WREG_QUEUES));
    strbuf_add(out, ",\"concurrency\":");
    add_number_or_null(out, field(names, values, n, WREG_CONCURRENCY));
    strbuf_add(out, ",\"running\":");
    add_number_or_null(out, field(names, values, n, WREG_RUNNING));
    strbuf_add(out, ",\"jobs\":");
    add_jobs(out, field(names, values, n, WREG_JOBS), tenant);
    strbuf_add(out, "}");
    return 0;
}
