/*
 * otlp_settings.h - the form of the trace export settings: the collector's
 * URL and the "name=value,..." header list. Checked at start by
 * config_check, read again by the exporter (common/otlp_export.c) to build
 * its request headers, so both agree on one grammar.
 */
#ifndef AG_OTLP_SETTINGS_H
#define AG_OTLP_SETTINGS_H

#include <stddef.h>

/* Longest endpoint accepted, without the "/v1/traces" the exporter adds. */
#define OTLP_ENDPOINT_MAX 511

/*
 * Checks endpoint (empty, or an http:// or https:// URL of at most
 * OTLP_ENDPOINT_MAX bytes) and headers (empty, or "name=value" pairs
 * separated by commas: names of visible ASCII without ':' '=' ',', values
 * without control characters). Returns 0, or -1 with a one-line reason in
 * err naming the setting; values are never echoed (headers may hold a
 * key).
 */
int otlp_check_settings(const char *endpoint, const char *headers, char *err, size_t err_size);

/*
 * Calls fn(name, name_len, value, value_len, arg) for each pair of a
 * header list in order. Returns 0, the first non-zero fn result, or -2
 * when the list is malformed (fn may be NULL: only checks).
 */
int otlp_headers_each(const char *headers,
                      int (*fn)(const char *name, size_t nlen, const char *value, size_t vlen,
                                void *arg),
                      void *arg);

#endif
