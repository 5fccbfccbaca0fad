/*
 * queues.c - parsing the worker's queue list (see queues.h).
 *
 * Every name must be a registered job type: a typo in a unit file would
 * otherwise leave a worker listening on a queue nothing is ever pushed to,
 * which looks healthy and does nothing. Each type's ring key is built
 * here once, rather than on every BRPOP.
 */
#include <stdio.h>
#include <string.h>

#include "jobtypes.h"
#include "queues.h"

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int queue_set_has(const queue_set *qs, const char *name)
{
    for (size_t i = 0; i < qs->count; i++)
        if (strcmp(qs->names[i], name) == 0)
            return 1;
    return 0;
}

/* Adds name unless already present. Returns 0, or -1 when the set is full. */
static int queue_set_add(queue_set *qs, const char *name)
{
    if (queue_set_has(qs, name))
        return 0;
    if (qs->count == QUEUES_MAX)
        return -1;
    snprintf(qs->names[qs->count], QUEUE_NAME_MAX, "%s", name);
    key_ready(qs->rings[qs->count], qs->names[qs->count]);
    qs->count++;
    return 0;
}

static int all_registered_types(queue_set *out, char *err, size_t err_size)
{
    size_t n;
    const job_type *types = jobtypes_all(&n);
    for (size_t i = 0; i < n; i++) {
        if (strlen(types[i].name) >= QUEUE_NAME_MAX || queue_set_add(out, types[i].name) < 0) {
            snprintf(err, err_size, "job type registry does not fit the queue set");
            out->count = 0;
            return -1;
        }
    }
    return 0;
}

static int list_is_blank(const char *list)
{
    for (const char *p = list; *p; p++)
        if (!is_blank(*p))
            return 0;
    return 1;
}

int queues_parse(const char *list, queue_set *out, char *err, size_t err_size)
{
    out->count = 0;
    if (list == NULL || list_is_blank(list))
        return all_registered_types(out, err, err_size);

    const char *p = list;
    for (;;) {
        const char *end = strchr(p, ',');
        if (end == NULL)
            end = p + strlen(p);

        const char *s = p, *e = end;
        while (s < e && is_blank(*s))
            s++;
        while (e > s && is_blank(e[-1]))
            e--;

        size_t len = (size_t)(e - s);
        char name[QUEUE_NAME_MAX];
        if (len == 0) {
            snprintf(err, err_size, "worker queues: empty name in list \"%s\"", list);
            goto fail;
        }
        if (len >= sizeof name) {
            snprintf(err, err_size, "worker queues: name \"%.*s...\" is too long",
                     (int)(sizeof name / 2), s);
            goto fail;
        }
        memcpy(name, s, len);
        name[len] = '\0';
        if (jobtypes_find(name) == NULL) {
            snprintf(err, err_size, "worker queues: \"%s\" is not a registered job type", name);
            goto fail;
        }
        if (queue_set_add(out, name) < 0) {
            snprintf(err, err_size, "worker queues: more than %d names", QUEUES_MAX);
            goto fail;
        }
        if (*end == '\0')
            break;
        p = end + 1;
    }
    return 0;

fail:
    out->count = 0;
    return -1;
}

int queues_ring_index(const queue_set *qs, const char *key, size_t len)
{
    for (size_t i = 0; i < qs->count; i++)
        if (strlen(qs->rings[i]) == len && memcmp(qs->rings[i], key, len) == 0)
            return (int)i;
    return -1;
}
