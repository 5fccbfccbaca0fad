/*
 * test_keys_queue.c - unit tests for the keys of the fair queue: one list
 * per (type, tenant), the type's ring and active set, and the
 * delayed set's "{tenant}:{id}" members. A tenant id is checked by every
 * builder that takes one, so no tenant id can reshape a key or a member.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "keys.h"

#define ID "01a2513f-54d1-77b0-be06-15dde4ba696e"

static const char *const bad_tenants[] = {
    "", "a:b", "a b", "a/b", "a{b}", "t\n", "caf\xc3\xa9", "a*", NULL,
};

static void test_queue_keys_carry_type_then_tenant(void **state)
{
    (void)state;
    char out[KEY_MAX];
    assert_ptr_equal(key_queue(out, "test", "acme-1"), out);
    assert_string_equal(out, "jobs:queue:test:acme-1");
    assert_non_null(key_queue(out, "agent.run", "A.b_c-9"));
    assert_string_equal(out, "jobs:queue:agent.run:A.b_c-9");
    assert_string_equal(key_ready(out, "test"), "jobs:ready:test");
    assert_string_equal(key_active(out, "test"), "jobs:active:test");
    assert_string_equal(key_delayed(out, "test"), "jobs:delayed:test");
    assert_string_equal(key_turns(out, "test"), "jobs:turns:test");
    /* A band's list carries the band after the tenant; none is the plain list. */
    assert_non_null(key_queue_band(out, "test", "acme-1", "high"));
    assert_string_equal(out, "jobs:queue:test:acme-1:high");
    assert_non_null(key_queue_band(out, "test", "acme-1", NULL));
    assert_string_equal(out, "jobs:queue:test:acme-1");
    /* A band name is lowercase letters only: nothing that could reshape a key. */
    const char *bad_bands[] = { "", "Hi", "a:b", "a/b", "toolongbandname1", "1" };
    for (size_t i = 0; i < sizeof bad_bands / sizeof *bad_bands; i++) {
        strcpy(out, "junk");
        assert_null(key_queue_band(out, "test", "acme-1", bad_bands[i]));
        assert_string_equal(out, "");
    }
}

static void test_longest_names_fit(void **state)
{
    (void)state;
    char out[KEY_MAX], tenant[KEY_TENANT_MAX + 1], type[64];
    memset(tenant, 'T', KEY_TENANT_MAX);
    tenant[KEY_TENANT_MAX] = '\0';
    memset(type, 'y', 63);      /* the longest type a worker's queue list holds */
    type[63] = '\0';
    assert_non_null(key_queue(out, type, tenant));
    assert_int_equal(strlen(out), strlen("jobs:queue:") + 63 + 1 + KEY_TENANT_MAX);
    char band[KEY_BAND_MAX + 1];
    memset(band, 'b', KEY_BAND_MAX);
    band[KEY_BAND_MAX] = '\0';
    assert_non_null(key_queue_band(out, type, tenant, band));
    assert_true(strlen(out) < KEY_MAX);
    char member[KEY_MEMBER_MAX];
    assert_non_null(key_delayed_member_band(member, band, tenant, ID));
    assert_int_equal(strlen(member) + 1, KEY_MEMBER_MAX);
}

static void test_bad_tenants_make_no_key(void **state)
{
    (void)state;
    char out[KEY_MAX], member[KEY_MEMBER_MAX], too_long[KEY_TENANT_MAX + 2];
    memset(too_long, 't', KEY_TENANT_MAX + 1);
    too_long[KEY_TENANT_MAX + 1] = '\0';
    assert_false(key_tenant_valid(too_long));
    assert_null(key_queue(out, "test", too_long));
    for (size_t i = 0; i < sizeof bad_tenants / sizeof *bad_tenants; i++) {
        strcpy(out, "junk");
        strcpy(member, "junk");
        assert_false(key_tenant_valid(bad_tenants[i]));
        assert_null(key_queue(out, "test", bad_tenants[i]));
        assert_string_equal(out, "");
        assert_null(key_delayed_member(member, bad_tenants[i], ID));
        assert_string_equal(member, "");
    }
    assert_true(key_tenant_valid("t"));
}

static void test_delayed_member_round_trips(void **state)
{
    (void)state;
    char member[KEY_MEMBER_MAX], tenant[KEY_TENANT_MAX + 1], id[37];
    assert_non_null(key_delayed_member(member, "acme-1", ID));
    assert_string_equal(member, "acme-1:" ID);
    assert_int_equal(key_delayed_member_split(member, strlen(member), tenant, id), 0);
    assert_string_equal(tenant, "acme-1");
    assert_string_equal(id, ID);
    /* An id in capitals comes back in the one form keys use. */
    const char *upper = "t:01A2513F-54D1-77B0-BE06-15DDE4BA696E";
    assert_int_equal(key_delayed_member_split(upper, strlen(upper), tenant, id), 0);
    assert_string_equal(tenant, "t");
    assert_string_equal(id, ID);

    /* A member may name its band before a '/'; without one it names none. */
    char band[KEY_BAND_MAX + 1];
    assert_non_null(key_delayed_member_band(member, "bulk", "acme-1", ID));
    assert_string_equal(member, "bulk/acme-1:" ID);
    assert_int_equal(key_delayed_member_parse(member, strlen(member), band, tenant, id), 0);
    assert_string_equal(band, "bulk");
    assert_string_equal(tenant, "acme-1");
    assert_string_equal(id, ID);
    assert_int_equal(key_delayed_member_parse("t:" ID, strlen("t:" ID), band, tenant, id), 0);
    assert_string_equal(band, "");
    const char *bad[] = { "/t:" ID, "B/t:" ID, "a/b/t:" ID, "x/:" ID };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(key_delayed_member_parse(bad[i], strlen(bad[i]), band, tenant, id),
                         -1);
        assert_string_equal(band, "");
        assert_string_equal(tenant, "");
    }
}

static void test_bad_members_are_refused(void **state)
{
    (void)state;
    char tenant[KEY_TENANT_MAX + 1], id[37], long_tenant[200];
    memset(long_tenant, 't', KEY_TENANT_MAX + 1);
    strcpy(long_tenant + KEY_TENANT_MAX + 1, ":" ID);
    const char with_nul[] = "a\0b:" ID;
    const char *bad[] = {
        ID,                                         /* an id alone: no tenant */
        ":" ID,                                     /* an empty tenant */
        "acme;" ID,                                 /* no colon before the id */
        "acme:" ID "x",                             /* more after the id */
        "acme:01a2513f-54d1-77b0-be06-15dde4ba696",  /* an id too short */
        "a:b:" ID,                                  /* a tenant with a colon */
        "acme:01a2513f_54d1_77b0_be06_15dde4ba696e", /* not a UUID */
        long_tenant,
        "",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        strcpy(tenant, "junk");
        assert_int_equal(key_delayed_member_split(bad[i], strlen(bad[i]), tenant, id), -1);
        assert_string_equal(tenant, "");
    }
    assert_int_equal(key_delayed_member_split(with_nul, sizeof with_nul - 1, tenant, id), -1);
    assert_int_equal(key_delayed_member_split(NULL, 0, tenant, id), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_queue_keys_carry_type_then_tenant),
        cmocka_unit_test(test_longest_names_fit),
        cmocka_unit_test(test_bad_tenants_make_no_key),
        cmocka_unit_test(test_delayed_member_round_trips),
        cmocka_unit_test(test_bad_members_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
