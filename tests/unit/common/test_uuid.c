/*
 * test_uuid.c - UUIDv4/v7 generation (format, version and variant bits,
 * v7 time order) and uuid_parse's acceptance rules.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "uuid.h"

/* Checks canonical lowercase 8-4-4-4-12 form with the given version and
 * the RFC 9562 variant (10xx). */
static void assert_uuid_shape(const char *u, char version)
{
    assert_int_equal(strlen(u), 36);
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23)
            assert_int_equal(u[i], '-');
        else if (!((u[i] >= '0' && u[i] <= '9') || (u[i] >= 'a' && u[i] <= 'f')))
            fail_msg("%s: bad character at %d", u, i);
    }
    assert_int_equal(u[14], version);
    assert_non_null(strchr("89ab", u[19]));
    char norm[UUID_STR_LEN];
    assert_true(uuid_parse(u, norm));
    assert_string_equal(norm, u);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

/* Fails when any two of n ids are equal. */
static void assert_all_distinct(char (*ids)[UUID_STR_LEN], size_t n)
{
    qsort(ids, n, UUID_STR_LEN, cmp_str);
    for (size_t i = 1; i < n; i++)
        if (strcmp(ids[i - 1], ids[i]) == 0)
            fail_msg("duplicate id %s", ids[i]);
}

static void test_v4_format(void **state)
{
    (void)state;
    enum { N = 2000 };
    char (*ids)[UUID_STR_LEN] = malloc(N * UUID_STR_LEN);
    assert_non_null(ids);
    for (int i = 0; i < N; i++) {
        uuid_v4(ids[i]);
        assert_uuid_shape(ids[i], '4');
    }
    assert_all_distinct(ids, N);
    free(ids);
}

/* The 48-bit millisecond timestamp at the front of a v7 id. */
static long long v7_ms(const char *u)
{
    char hex[13];
    memcpy(hex, u, 8);
    memcpy(hex + 8, u + 9, 4);
    hex[12] = '\0';
    return strtoll(hex, NULL, 16);
}

static void test_v7_format_and_time(void **state)
{
    (void)state;
    long long before = clock_wall_ms();
    char u[UUID_STR_LEN];
    uuid_v7(u);
    long long after = clock_wall_ms();
    assert_uuid_shape(u, '7');
    assert_in_range(v7_ms(u), before, after + 1);
}

static void test_v7_ordering(void **state)
{
    (void)state;
    /* Across milliseconds. */
    char a[UUID_STR_LEN], b[UUID_STR_LEN];
    uuid_v7(a);
    clock_sleep_ms(3);
    uuid_v7(b);
    assert_true(strcmp(a, b) < 0);
    assert_true(v7_ms(b) > v7_ms(a));

    /* And within one: many ids in a tight loop still come out increasing. */
    enum { N = 20000 };
    char (*ids)[UUID_STR_LEN] = malloc(N * UUID_STR_LEN);
    assert_non_null(ids);
    for (int i = 0; i < N; i++) {
        uuid_v7(ids[i]);
        assert_uuid_shape(ids[i], '7');
        if (i > 0 && strcmp(ids[i - 1], ids[i]) >= 0)
            fail_msg("%s not after %s", ids[i], ids[i - 1]);
    }
    free(ids);
}

/* Ids come from a per-thread pool of random bytes: a forked child must
 * not hand out the ids its parent is about to (the pool it inherited). */
static void test_fork_does_not_repeat_ids(void **state)
{
    (void)state;
    char parent_id[UUID_STR_LEN], child_id[UUID_STR_LEN] = "";
    uuid_v4(parent_id);                 /* the pool is filled now */
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char id[UUID_STR_LEN];
        uuid_v4(id);
        _exit(write(fds[1], id, sizeof id) == (ssize_t)sizeof id ? 0 : 1);
    }
    close(fds[1]);
    assert_int_equal(read(fds[0], child_id, sizeof child_id), (ssize_t)sizeof child_id);
    close(fds[0]);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    uuid_v4(parent_id);
    assert_uuid_shape(child_id, '4');
    assert_string_not_equal(parent_id, child_id);
}

/* Many ids from one pool and its refills are all different. */
static void test_pool_refills_stay_distinct(void **state)
{
    (void)state;
    enum { N = 2000 };                  /* far more than one pool's worth */
    char (*ids)[UUID_STR_LEN] = calloc(N, UUID_STR_LEN);
    assert_non_null(ids);
    for (size_t i = 0; i < N; i++)
        i % 2 ? uuid_v4(ids[i]) : uuid_v7(ids[i]);
    assert_all_distinct(ids, N);
    free(ids);
}

static void test_parse_accepts(void **state)
{
    (void)state;
    char out[UUID_STR_LEN];
    assert_true(uuid_parse("0190a6f2-7c3e-7a10-8b2c-1234567890ab", out));
    assert_string_equal(out, "0190a6f2-7c3e-7a10-8b2c-1234567890ab");

    memset(out, 0, sizeof out);
    assert_true(uuid_parse("0190A6F2-7C3E-7A10-8B2C-ABCDEFabcdef", out));
    assert_string_equal(out, "0190a6f2-7c3e-7a10-8b2c-abcdefabcdef");

    assert_true(uuid_parse("00000000-0000-0000-0000-000000000000", NULL));
    assert_true(uuid_parse("ffffffff-ffff-ffff-ffff-ffffffffffff", NULL));
}

static void test_parse_rejects(void **state)
{
    (void)state;
    const char *bad[] = {
        "",
        "0190a6f2-7c3e-7a10-8b2c-1234567890a",      /* 35 */
        "0190a6f2-7c3e-7a10-8b2c-1234567890abc",    /* 37 */
        "0190a6f2-7c3e-7a10-8b2c-1234567890ab ",
        " 0190a6f2-7c3e-7a10-8b2c-1234567890ab",
        "0190a6f2-7c3e-7a10-8b2c-1234567890ag",     /* bad character */
        "0190a6f2-7c3e-7a10-8b2c-12345678 0ab",
        "0190a6f2-7c3e-7a10-8b2c-1234567890:b",
        "0190a6f27-c3e-7a10-8b2c-1234567890ab",     /* misplaced dashes */
        "0190a6f2-7c3e7-a10-8b2c-1234567890ab",
        "0190a6f2-7c3e-7a108-b2c-1234567890ab",
        "0190a6f2-7c3e-7a10-8b2c1-234567890ab",
        "0190a6f2-7c3e-7a10-8b2c-1234-567890a",
        "0190a6f2a7c3ea7a10a8b2ca1234567890ab",     /* no dashes, right length */
        "0190a6f27c3e7a108b2c1234567890ab",         /* 32 hex */
        "{0190a6f2-7c3e-7a10-8b2c-1234567890}",
        "------------------------------------",
        "../../../../etc/passwd/../../../../x",
        "0190a6f2-7c3e-7a10-8b2c-1234567890a\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char out[UUID_STR_LEN] = "untouched";
        if (uuid_parse(bad[i], out))
            fail_msg("accepted \"%s\"", bad[i]);
        assert_string_equal(out, "untouched");
    }
    assert_false(uuid_parse(NULL, NULL));

    /* Not NUL-terminated within 37 bytes: must stop reading at 37. */
    char long_id[64];
    memset(long_id, 'a', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    assert_false(uuid_parse(long_id, NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v4_format),
        cmocka_unit_test(test_v7_format_and_time),
        cmocka_unit_test(test_v7_ordering),
        cmocka_unit_test(test_fork_does_not_repeat_ids),
        cmocka_unit_test(test_pool_refills_stay_distinct),
        cmocka_unit_test(test_parse_accepts),
        cmocka_unit_test(test_parse_rejects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
