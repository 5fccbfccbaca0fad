/*
 * test_permission.c - the scopes a role may use, derived from the matrix
 * (what agentgate-token mints without --scope): read and write where the
 * matrix grants them, nothing it does not, and a short buffer refused.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "jwt.h"
#include "permission.h"

static bool has_word(const char *list, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = list; (p = strstr(p, word)) != NULL; p += n)
        if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
            return true;
    return false;
}

static void test_each_scope_matches_the_matrix(void **state)
{
    (void)state;
    static const unsigned roles[] = { ROLE_ADMIN, ROLE_OPERATOR, ROLE_USER, ROLE_VIEWER };
    for (size_t r = 0; r < sizeof roles / sizeof *roles; r++) {
        char scopes[512], name[32];
        assert_true(permission_role_scopes(roles[r], scopes, sizeof scopes) > 0);
        for (int res = RES_NONE + 1; res < RES_COUNT; res++) {
            bool read = permission_roles_allow(roles[r], (rbac_resource)res, ACT_READ);
            bool write = permission_roles_allow(roles[r], (rbac_resource)res, ACT_CREATE) ||
                         permission_roles_allow(roles[r], (rbac_resource)res, ACT_UPDATE) ||
                         permission_roles_allow(roles[r], (rbac_resource)res, ACT_DELETE);
            permission_scope_name((rbac_resource)res, ACT_READ, name, sizeof name);
            assert_int_equal(has_word(scopes, name), read);
            permission_scope_name((rbac_resource)res, ACT_CREATE, name, sizeof name);
            assert_int_equal(has_word(scopes, name), write);
        }
    }
}

static void test_graph_rows(void **state)
{
    (void)state;
    char scopes[512];
    permission_role_scopes(ROLE_USER, scopes, sizeof scopes);
    assert_true(has_word(scopes, "graph:read"));
    assert_false(has_word(scopes, "graph:write"));
    assert_false(has_word(scopes, "mcp-servers:read"));
    permission_role_scopes(ROLE_ADMIN, scopes, sizeof scopes);
    assert_true(has_word(scopes, "graph:write"));
    assert_true(has_word(scopes, "mcp-servers:write"));
}

static void test_nothing_for_no_role_or_a_short_buffer(void **state)
{
    (void)state;
    char scopes[512], small[16];
    assert_int_equal(permission_role_scopes(0, scopes, sizeof scopes), 0);
    assert_string_equal(scopes, "");
    assert_int_equal(permission_role_scopes(ROLE_ADMIN, small, sizeof small), 0);
    assert_string_equal(small, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_scope_matches_the_matrix),
        cmocka_unit_test(test_graph_rows),
        cmocka_unit_test(test_nothing_for_no_role_or_a_short_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
