/*
 * otlp_settings.c - the grammar of AGENTGATE_OTLP_ENDPOINT and
 * AGENTGATE_OTLP_HEADERS, in one place for the start-time check and the
 * exporter.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "otlp_settings.h"

static bool header_name_ok(const char *s, size_t n)
{
    if (n == 0) return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= ' ' || c >= 127 || c == ':' || c == '=' || c == ',') return false;
    }
    return true;
}

/* Values may not hold control characters: they would split the HTTP head. */
int otlp_headers_each(const char *headers,
                      int (*fn)(const char *name, size_t nlen, const char *value, size_t vlen,
                                void *arg),
                      void *arg)
{
    const char *p = headers;
    while (*p) {
        const char *end = strchr(p, ',');
        if (!end) end = p + strlen(p);
        const char *eq = memchr(p, '=', (size_t)(end - p));
        if (!eq || !header_name_ok(p, (size_t)(eq - p))) return -2;
        for (const char *v = eq + 1; v < end; v++)
            if ((unsigned char)*v < ' ' || *v == 127) return -2;
        if (fn) {
            int rc = fn(p, (size_t)(eq - p), eq + 1, (size_t)(end - eq - 1), arg);
            if (rc) return rc;
        }
        p = *end ? end + 1 : end;
    }
    return 0;
}

int otlp_check_settings(const char *endpoint, const char *headers, char *err, size_t err_size)
{
    if (endpoint[0] && strncmp(endpoint, "http://", 7) != 0 && strncmp(endpoint, "https://", 8) != 0) {
        snprintf(err, err_size, "AGENTGATE_OTLP_ENDPOINT: not an http:// or https:// URL");
        return -1;
    }
    if (strlen(endpoint) > OTLP_ENDPOINT_MAX) {
        snprintf(err, err_size, "AGENTGATE_OTLP_ENDPOINT: longer than %d bytes",
                 OTLP_ENDPOINT_MAX);
        return -1;
    }
    if (otlp_headers_each(headers, NULL, NULL) != 0) {
        snprintf(err, err_size, "AGENTGATE_OTLP_HEADERS: not a comma list of name=value "
                 "(names without spaces, values without control characters)");
        return -1;
    }
    return 0;
}
