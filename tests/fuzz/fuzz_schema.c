/*
 * fuzz_schema.c - libFuzzer target for payload validation: both the JSON
 * Schema and the instance come from the input, as they do in production
 * (a tenant's tool manifest brings its own input schema; a request body
 * brings the instance). Both go through json_parse_bounded as the gateway
 * and worker parse them.
 *
 * Input: the schema, one "\n", the instance.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jsonutil.h"
#include "schema.h"

#define SCHEMA_MAX_DEPTH 64    /* manifests may nest deeper than bodies */

static void check_error(const schema_error *e)
{
    if (strnlen(e->path, sizeof e->path) >= sizeof e->path) abort();
    if (strnlen(e->message, sizeof e->message) >= sizeof e->message) abort();
    if (e->path[0] && e->path[0] != '/') abort();   /* a JSON Pointer */
    if (!e->message[0]) abort();                    /* a failure says why */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    const char *nl = memchr(in, '\n', size);
    if (!nl) return 0;
    size_t slen = (size_t)(nl - in);
    char err[128];
    cJSON *schema = json_parse_bounded(in, slen, 65536, SCHEMA_MAX_DEPTH, err, sizeof err);
    cJSON *inst = json_parse_bounded(nl + 1, size - slen - 1, 65536, JSON_MAX_DEPTH,
                                     err, sizeof err);
    if (schema && inst) {
        schema_error e;
        memset(&e, 0x5a, sizeof e);     /* stale bytes must not leak out */
        int rc = schema_validate(schema, inst, &e);
        if (rc != 0 && rc != -1) abort();
        if (rc == -1) check_error(&e);
        if (schema_validate(schema, inst, NULL) != rc) abort();  /* err is optional */
        /* The schema validates itself as an instance without harm, too. */
        (void)schema_validate(schema, schema, NULL);
    }
    cJSON_Delete(schema);
    cJSON_Delete(inst);
    return 0;
}
