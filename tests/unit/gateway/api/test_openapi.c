/*
 * test_openapi.c - the OpenAPI document cannot drift from the gateway:
 * every row of the route table has a description in openapi.c and every
 * description names a row of the route table (each failure names the
 * route), and the built document has each route's path and method with
 * an operationId, the permission's scope, a schema for every body, the
 * registry's payload schemas, every problem slug and every event type,
 * and no reference that leads nowhere.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <cjson/cJSON.h>

#include "openapi.h"
#include "rbac.h"
#include "events.h"
#include "jobtypes.h"

static const char *method_of(http_verb v)
{
    switch (v) {
    case VERB_GET: return "get";
    case VERB_POST: return "post";
    case VERB_DELETE: return "delete";
    case VERB_PATCH: return "patch";
    case VERB_PUT: return "put";
    default: return "?";
    }
}

static bool router_has(http_verb verb, const char *pattern)
{
    for (size_t i = 0; i < router_route_count(); i++) {
        const route_def *rt = router_route_at(i);
        if (rt->verb == verb && strcmp(rt->pattern, pattern) == 0) return true;
    }
    return false;
}

static cJSON *document(void)
{
    assert_int_equal(jobtypes_init(), 0);
    size_t len = 0;
    const char *text = openapi_document(&len);
    assert_non_null(text);
    assert_int_equal(strlen(text), len);
    cJSON *doc = cJSON_Parse(text);
    assert_non_null(doc);
    return doc;
}

/* The operation of route row rt in doc, or NULL. */
static cJSON *operation(cJSON *doc, const route_def *rt)
{
    char path[256];
    if (openapi_route_path(rt->verb, rt->pattern, path, sizeof path) != 0) return NULL;
    cJSON *item = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(doc, "paths"),
                                                   path);
    return cJSON_GetObjectItemCaseSensitive(item, method_of(rt->verb));
}

static void test_every_route_is_described(void **state)
{
    (void)state;
    int missing = 0;
    for (size_t i = 0; i < router_route_count(); i++) {
        const route_def *rt = router_route_at(i);
        if (openapi_describes(rt->verb, rt->pattern)) continue;
        fprintf(stderr, "route %s %s (route_id %d) has no row in gateway/api/openapi.c's ops[]\n",
                method_of(rt->verb), rt->pattern, rt->id);
        missing++;
    }
    assert_int_equal(missing, 0);
    assert_null(router_route_at(router_route_count()));
}

static void test_every_description_is_a_route(void **state)
{
    (void)state;
    int stray = 0;
    for (size_t i = 0; i < openapi_described_count(); i++) {
        http_verb verb;
        const char *pattern = openapi_described_at(i, &verb);
        if (router_has(verb, pattern)) continue;
        fprintf(stderr, "openapi.c describes %s %s, which router.c's table does not have\n",
                method_of(verb), pattern);
        stray++;
    }
    assert_int_equal(stray, 0);
    http_verb v;
    assert_null(openapi_described_at(openapi_described_count(), &v));
}

/* Every route_id is reached by some row of the table (and so described). */
static void test_every_route_id_has_a_row(void **state)
{
    (void)state;
    for (int id = ROUTE_NONE + 1; id < ROUTE_COUNT; id++) {
        bool found = false;
        for (size_t i = 0; i < router_route_count() && !found; i++)
            found = router_route_at(i)->id == (route_id)id;
        if (!found) fail_msg("route_id %d has no row in router.c's table", id);
    }
}

static void test_paths_of_patterns(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(openapi_path_of("/v1/jobs/*/events", NULL, out, sizeof out), 0);
    assert_string_equal(out, "/v1/jobs/{id}/events");
    assert_int_equal(openapi_path_of("/v1/mcp-servers/*", "name", out, sizeof out), 0);
    assert_string_equal(out, "/v1/mcp-servers/{name}");
    assert_int_equal(openapi_path_of("/v1/tools/+", NULL, out, sizeof out), 0);
    assert_string_equal(out, "/v1/tools/{name}");
    assert_int_equal(openapi_path_of("/v1/jobs/*/events", NULL, out, 12), -1);
}

/* Each route's operation: an id (unique), the route's security, and a
 * schema for its body and each JSON answer. */
static void test_operations_match_the_routes(void **state)
{
    (void)state;
    cJSON *doc = document();
    cJSON *ids = cJSON_CreateObject();
    for (size_t i = 0; i < router_route_count(); i++) {
        const route_def *rt = router_route_at(i);
        cJSON *op = operation(doc, rt);
        if (!op) fail_msg("%s %s is not in the document", method_of(rt->verb), rt->pattern);
        cJSON *id = cJSON_GetObjectItemCaseSensitive(op, "operationId");
        assert_true(cJSON_IsString(id) && id->valuestring[0]);
        if (cJSON_GetObjectItemCaseSensitive(ids, id->valuestring))
            fail_msg("operationId %s is used twice", id->valuestring);
        cJSON_AddTrueToObject(ids, id->valuestring);

        cJSON *sec = cJSON_GetObjectItemCaseSensitive(op, "security");
        assert_true(cJSON_IsArray(sec));
        if (!rt->needs_auth) {
            assert_int_equal(cJSON_GetArraySize(sec), 0);
        } else {
            cJSON *scopes = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(sec, 0),
                                                             "bearerAuth");
            rbac_perm perm = rbac_route_perm(rt->id);
            char want[32];
            assert_true(permission_scope_name(perm.res, perm.act, want, sizeof want) > 0);
            assert_string_equal(cJSON_GetArrayItem(scopes, 0)->valuestring, want);
            assert_non_null(cJSON_GetObjectItemCaseSensitive(
                cJSON_GetObjectItemCaseSensitive(op, "responses"), "401"));
        }

        cJSON *body = cJSON_GetObjectItemCaseSensitive(op, "requestBody");
        if (body) {
            cJSON *media = cJSON_GetObjectItemCaseSensitive(
                cJSON_GetObjectItemCaseSensitive(body, "content"), "application/json");
            assert_non_null(cJSON_GetObjectItemCaseSensitive(media, "schema"));
        }
        cJSON *answer;
        int successes = 0;
        cJSON_ArrayForEach(answer, cJSON_GetObjectItemCaseSensitive(op, "responses")) {
            if (answer->string[0] == '2' || answer->string[0] == '3') successes++;
            cJSON *content = cJSON_GetObjectItemCaseSensitive(answer, "content");
            cJSON *media;
            cJSON_ArrayForEach(media, content)
                assert_non_null(cJSON_GetObjectItemCaseSensitive(media, "schema"));
        }
        if (successes == 0) fail_msg("%s %s has no successful answer", method_of(rt->verb),
                                     rt->pattern);
    }
    cJSON_Delete(ids);
    cJSON_Delete(doc);
}

/* Every "$ref" names something the document has. */
static void check_refs(const cJSON *doc, const cJSON *j)
{
    for (const cJSON *c = j->child; c; c = c->next) {
        if (cJSON_IsString(c) && c->string && strcmp(c->string, "$ref") == 0) {
            const char *ref = c->valuestring;
            assert_true(strncmp(ref, "#/", 2) == 0);
            char buf[256];
            snprintf(buf, sizeof buf, "%s", ref + 2);
            const cJSON *at = doc;
            for (char *save = NULL, *k = strtok_r(buf, "/", &save); k && at;
                 k = strtok_r(NULL, "/", &save))
                at = cJSON_GetObjectItemCaseSensitive(at, k);
            if (!at) fail_msg("$ref %s leads nowhere", ref);
        }
        check_refs(doc, c);
    }
}

static void test_references_resolve(void **state)
{
    (void)state;
    cJSON *doc = document();
    check_refs(doc, doc);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(doc, "openapi")->valuestring, "3.1.0");
    cJSON_Delete(doc);
}

/* POST /v1/jobs's body: one choice per type it accepts, whose payload is
 * the registry's own schema; internal types are not offered. */
static void test_job_bodies_come_from_the_registry(void **state)
{
    (void)state;
    cJSON *doc = document();
    cJSON *schemas = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(doc, "components"), "schemas");
    cJSON *one_of = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(schemas, "JobCreate"), "oneOf");
    size_t n, offered = 0;
    const job_type *types = jobtypes_all(&n);
    for (size_t i = 0; i < n; i++) {
        char name[96];
        snprintf(name, sizeof name, "JobCreate-%s", types[i].name);
        cJSON *s = cJSON_GetObjectItemCaseSensitive(schemas, name);
        if (types[i].internal) { assert_null(s); continue; }
        offered++;
        assert_non_null(s);
        cJSON *props = cJSON_GetObjectItemCaseSensitive(s, "properties");
        assert_string_equal(cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(props, "type"), "const")->valuestring, types[i].name);
        assert_true(cJSON_Compare(cJSON_GetObjectItemCaseSensitive(props, "payload"),
                                  types[i].schema, true));
    }
    assert_true(offered > 0);
    assert_int_equal(cJSON_GetArraySize(one_of), (int)offered);
    cJSON_Delete(doc);
}

static bool enum_has(const cJSON *schema, const char *value)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(schema, "enum"))
        if (strcmp(e->valuestring, value) == 0) return true;
    return false;
}

static void test_problem_and_event_types(void **state)
{
    (void)state;
    cJSON *doc = document();
    cJSON *schemas = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(doc, "components"), "schemas");
    cJSON *ptype = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(schemas, "Problem"), "properties"), "type");
    size_t n;
    const char *const *slugs = openapi_problem_slugs(&n);
    for (size_t i = 0; i < n; i++) {
        char v[96];
        snprintf(v, sizeof v, "urn:agentgate:problem:%s", slugs[i]);
        assert_true(enum_has(ptype, v));
    }
    assert_true(enum_has(ptype, "urn:agentgate:problem:not-found"));
    cJSON *etype = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(schemas, "Event"), "properties"), "type");
    const char *const *types = event_types_all(&n);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(etype, "enum")), (int)n);
    for (size_t i = 0; i < n; i++) assert_true(enum_has(etype, types[i]));
    cJSON_Delete(doc);
}

static void test_etag_is_stable(void **state)
{
    (void)state;
    const char *a = openapi_etag();
    assert_non_null(a);
    assert_int_equal(strlen(a), 18);
    assert_string_equal(a, openapi_etag());
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_route_is_described),
        cmocka_unit_test(test_every_description_is_a_route),
        cmocka_unit_test(test_every_route_id_has_a_row),
        cmocka_unit_test(test_paths_of_patterns),
        cmocka_unit_test(test_operations_match_the_routes),
        cmocka_unit_test(test_references_resolve),
        cmocka_unit_test(test_job_bodies_come_from_the_registry),
        cmocka_unit_test(test_problem_and_event_types),
        cmocka_unit_test(test_etag_is_stable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
