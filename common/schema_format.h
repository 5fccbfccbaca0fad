/*
 * schema_format.h - the values of JSON Schema's "format" keyword that
 * common/schema.c checks: date-time, date, uuid, email, uri, ipv4, ipv6.
 *
 * Any other format name is an annotation only, as JSON Schema 2020-12
 * has it (the format-annotation vocabulary): it is accepted and nothing
 * is checked, so a server's "format": "cuid" neither fails its schema nor
 * narrows what passes.
 */
#ifndef AG_SCHEMA_FORMAT_H
#define AG_SCHEMA_FORMAT_H

#include <stdbool.h>

typedef enum schema_format {
    SCHEMA_FORMAT_NONE,         /* unknown: an annotation, not checked */
    SCHEMA_FORMAT_DATE_TIME,    /* RFC 3339 date-time */
    SCHEMA_FORMAT_DATE,         /* RFC 3339 full-date */
    SCHEMA_FORMAT_UUID,         /* RFC 9562 text, either case */
    SCHEMA_FORMAT_EMAIL,        /* dot-atom local part @ host name or [IP] */
    SCHEMA_FORMAT_URI,          /* RFC 3986 absolute URI, ASCII only */
    SCHEMA_FORMAT_IPV4,         /* dotted quad, no leading zeros */
    SCHEMA_FORMAT_IPV6,         /* RFC 4291 text, no zone id */
} schema_format;

/* The format called name, or SCHEMA_FORMAT_NONE for one not checked. */
schema_format schema_format_find(const char *name);

/* Whether the string s is of format f (always true for NONE). */
bool schema_format_check(schema_format f, const char *s);

/* What a value of format f is, after "must be": "a UUID". */
const char *schema_format_phrase(schema_format f);

#endif
