/*
 * fuzz_schema.c - libFuzzer target for payload validation: both the JSON
 * Schema and the instance come from the input, as they do in production
 * (a tenant's tool manifest or an MCP server brings its own input schema;
 * a request body or a model brings the instance). Both go through
 * json_parse_bounded as the gateway and worker parse them.
 *
 * Input: the schema, one "\n", the instance. When the schema is a JSON
 * string rather than a schema, it is a pattern for common/jsregex.c and
 * the instance, if a string, the text it searches: the matcher gets
 * fuzzed directly as well as through "pattern".
 *
 * Checked besides crashes, leaks and undefined behaviour: a refused schema
 * says why, as "invalid schema: ..."; compiling once and checking agrees
 * with schema_validate; every failure carries a JSON Pointer and a
 * message that fit their buffers and are valid UTF-8; the budgets keep
 * each run far below the fuzzer's timeout.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jsonutil.h"
#include "jsregex.h"
#include "schema.h"
#include "utf8.h"

#define PARSE_MAX_DEPTH 64    /* manifests may nest deeper than bodies */

static void check_utf8(const char *s, size_t cap)
{
    size_t len = strnlen(s, cap);
    if (len >= cap) abort();
    for (size_t i = 0; i < len;) {
        size_t n = utf8_sequence_len((const unsigned char *)s + i, len - i);
        if (n == 0) abort();
        i += n;
    }
}

static void check_error(const schema_error *e)
{
    check_utf8(e->path, sizeof e->path);
    check_utf8(e->message, sizeof e->message);
    if (e->path[0] && e->path[0] != '/') abort();   /* a JSON Pointer */
    if (!e->message[0]) abort();                    /* a failure says why */
}

static void same_error(const schema_error *a, const schema_error *b)
{
    if (strcmp(a->path, b->path) != 0 || strcmp(a->message, b->message) != 0) abort();
}

/* A string "schema" is a pattern; a string instance, its text. */
static void fuzz_pattern(const cJSON *pattern, const cJSON *text)
{
    char why[160];
    jsregex *re = jsregex_compile(pattern->valuestring, why, sizeof why);
    if (re == NULL) {
        check_utf8(why, sizeof why);
        if (!why[0]) abort();
        return;
    }
    if (jsregex_size(re) > JSREGEX_MAX_PROGRAM) abort();
    if (cJSON_IsString(text)) {
        long long budget = 1000000;
        int rc = jsregex_search(re, text->valuestring, strlen(text->valuestring), &budget);
        if (rc < -1 || rc > 1 || (rc == -1 && budget >= 0)) abort();
    }
    jsregex_free(re);
}

static void fuzz_schema(const cJSON *schema, const cJSON *inst)
{
    schema_error e, e2;
    memset(&e, 0x5a, sizeof e);     /* stale bytes must not leak out */
    schema_compiled *s = schema_compile(schema, &e);
    int rc = schema_validate(schema, inst, &e2);
    if (rc != 0 && rc != -1) abort();
    if (s == NULL) {
        /* refused: the same reason both ways, and a reason of the schema */
        check_error(&e);
        if (e.path[0] != '\0') abort();
        if (strncmp(e.message, "invalid schema: ", 16) != 0 &&
            strcmp(e.message, "out of memory") != 0) abort();
        if (rc != -1) abort();
        same_error(&e, &e2);
        return;
    }
    memset(&e, 0x5a, sizeof e);
    int rc1 = schema_check(s, inst, &e);
    if (rc1 != rc) abort();                         /* compiled once or each time */
    if (rc1 == -1) {
        check_error(&e);
        same_error(&e, &e2);
    } else if (e.path[0] || e.message[0]) {
        abort();                                    /* a success leaves no message */
    }
    if (schema_check(s, inst, NULL) != rc1) abort();    /* err is optional */
    /* The schema checks itself as an instance without harm, too. */
    (void)schema_check(s, schema, NULL);
    schema_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    const char *nl = memchr(in, '\n', size);
    if (!nl) return 0;
    size_t slen = (size_t)(nl - in);
    char err[128];
    cJSON *schema = json_parse_bounded(in, slen, 65536, PARSE_MAX_DEPTH, err, sizeof err);
    cJSON *inst = json_parse_bounded(nl + 1, size - slen - 1, 65536, JSON_MAX_DEPTH,
                                     err, sizeof err);
    if (schema && inst) {
        if (cJSON_IsString(schema))
            fuzz_pattern(schema, inst);
        else
            fuzz_schema(schema, inst);
    }
    cJSON_Delete(schema);
    cJSON_Delete(inst);
    return 0;
}
