/*
 * test_jobq.c - the calls of the fair queue's scripts: which keys each
 * names (every one built by keys.c, none left to the script to build), in
 * which order, with which arguments, by SHA-1 or by text.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "jobq.h"
#include "redis_script.h"

#define ID "01a2513f-54d1-77b0-be06-15dde4ba696e"

/* The SHA-1 EVALSHA names text by, computed as for any script. */
static const char *sha_of(const char *text, char out[41])
{
    redis_script s = REDIS_SCRIPT(text);
    memcpy(out, redis_script_sha(&s), 41);
    pthread_mutex_destroy(&s.lock);
    return out;
}

static void assert_words(const redis_argv *cmd, const char *const *want, int n)
{
    assert_int_equal(cmd->argc, n);
    for (int i = 0; i < n; i++) {
        assert_int_equal(cmd->argvlen[i], strlen(want[i]));
        assert_memory_equal(cmd->argv[i], want[i], cmd->argvlen[i]);
    }
}

static void test_keys_of_a_tenant(void **state)
{
    (void)state;
    jobq_keys k;
    assert_int_equal(jobq_keys_of(&k, "test", "acme"), 0);
    /* Highest band first; the normal band keeps the name from before bands. */
    assert_string_equal(k.lists[0], "jobs:queue:test:acme:urgent");
    assert_string_equal(k.lists[1], "jobs:queue:test:acme:high");
    assert_string_equal(k.lists[2], "jobs:queue:test:acme");
    assert_string_equal(k.lists[3], "jobs:queue:test:acme:low");
    assert_string_equal(k.lists[4], "jobs:queue:test:acme:bulk");
    assert_string_equal(k.ready, "jobs:ready:test");
    assert_string_equal(k.active, "jobs:active:test");
    assert_string_equal(k.delayed, "jobs:delayed:test");
    assert_string_equal(k.turns, "jobs:turns:test");
    assert_string_equal(k.tenant, "acme");
    assert_int_equal(jobq_keys_of(&k, "test", "a:b"), -1);
    assert_int_equal(jobq_keys_of(&k, "test", ""), -1);
}

static void test_bands_of_priorities(void **state)
{
    (void)state;
    const struct { long long priority; int band; const char *name; } cases[] = {
        { 1000, 2, "urgent" }, { 100, 2, "urgent" }, { 99, 1, "high" }, { 1, 1, "high" },
        { 0, 0, "normal" }, { -1, -1, "low" }, { -99, -1, "low" }, { -100, -2, "bulk" },
        { -1000, -2, "bulk" }, { 1LL << 40, 2, "urgent" }, { -(1LL << 40), -2, "bulk" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        assert_int_equal(jobq_band_of(cases[i].priority), cases[i].band);
        assert_string_equal(jobq_band_name(cases[i].band), cases[i].name);
        assert_int_equal(jobq_band_named(cases[i].name), cases[i].band);
    }
    assert_null(jobq_band_name(3));
    assert_null(jobq_band_name(-3));
    assert_int_equal(jobq_band_named("nope"), JOBQ_BANDS);
    assert_int_equal(jobq_band_named(NULL), JOBQ_BANDS);
    assert_null(jobq_band_suffix(JOBQ_BAND_NORMAL));
    assert_string_equal(jobq_band_suffix(-1), "low");
    /* A take's or pop's list index reads back as the band. */
    assert_int_equal(jobq_band_at(0), JOBQ_BAND_MAX);
    assert_int_equal(jobq_band_at(JOBQ_BANDS - 1), JOBQ_BAND_MIN);
}

static void test_enqueue_at_the_back_and_the_front(void **state)
{
    (void)state;
    jobq_keys k;
    redis_argv cmd;
    assert_int_equal(jobq_keys_of(&k, "test", "acme"), 0);
    char sha[41];
    sha_of(jobq_enqueue_lua, sha);

    jobq_enqueue_command(&cmd, true, &k, ID, JOBQ_BAND_NORMAL, JOBQ_BACK, NULL);
    const char *back[] = { "EVALSHA", sha, "3", "jobs:queue:test:acme", "jobs:ready:test",
                           "jobs:active:test", ID, "acme", "back" };
    assert_words(&cmd, back, 9);

    jobq_enqueue_command(&cmd, false, &k, ID, JOBQ_BAND_NORMAL, JOBQ_FRONT, NULL);
    const char *front[] = { "EVAL", jobq_enqueue_lua, "3", "jobs:queue:test:acme",
                            "jobs:ready:test", "jobs:active:test", ID, "acme", "front" };
    assert_words(&cmd, front, 9);

    /* A band names its own list; one out of range is the normal band. */
    jobq_enqueue_command(&cmd, true, &k, ID, jobq_band_of(5), JOBQ_BACK, NULL);
    const char *high[] = { "EVALSHA", sha, "3", "jobs:queue:test:acme:high",
                           "jobs:ready:test", "jobs:active:test", ID, "acme", "back" };
    assert_words(&cmd, high, 9);
    jobq_enqueue_command(&cmd, true, &k, ID, jobq_band_of(-500), JOBQ_FRONT, NULL);
    assert_string_equal(cmd.argv[3], "jobs:queue:test:acme:bulk");
    jobq_enqueue_command(&cmd, true, &k, ID, 7, JOBQ_BACK, NULL);
    assert_string_equal(cmd.argv[3], "jobs:queue:test:acme");
}

static void test_promotion_names_the_delayed_set_and_member(void **state)
{
    (void)state;
    jobq_keys k;
    redis_argv cmd;
    char member[KEY_MEMBER_MAX];
    assert_int_equal(jobq_keys_of(&k, "agent.run", "t-1"), 0);
    assert_non_null(key_delayed_member(member, "t-1", ID));
    jobq_enqueue_command(&cmd, true, &k, ID, JOBQ_BAND_NORMAL, JOBQ_BACK, member);
    char sha[41];
    sha_of(jobq_enqueue_lua, sha);
    const char *want[] = { "EVALSHA", sha, "4", "jobs:queue:agent.run:t-1",
                           "jobs:ready:agent.run", "jobs:active:agent.run",
                           "jobs:delayed:agent.run", ID, "t-1", "back", "t-1:" ID };
    assert_words(&cmd, want, 11);
    assert_true(cmd.argc <= REDIS_ARGV_MAX);

    assert_non_null(key_delayed_member_band(member, "urgent", "t-1", ID));
    jobq_enqueue_command(&cmd, true, &k, ID, JOBQ_BAND_MAX, JOBQ_BACK, member);
    const char *urgent[] = { "EVALSHA", sha, "4", "jobs:queue:agent.run:t-1:urgent",
                             "jobs:ready:agent.run", "jobs:active:agent.run",
                             "jobs:delayed:agent.run", ID, "t-1", "back", "urgent/t-1:" ID };
    assert_words(&cmd, urgent, 11);
}

/* The words of a take's call as a redis_argv, for assert_words. */
static redis_argv take_words(const char **argv, const size_t *argvlen, int argc)
{
    redis_argv cmd = { .argc = 0 };
    assert_true(argc > 0 && argc <= REDIS_ARGV_MAX);
    for (int i = 0; i < argc; i++) {
        cmd.argv[i] = argv[i];
        cmd.argvlen[i] = argvlen[i];
    }
    cmd.argc = argc;
    return cmd;
}

static void test_take_names_every_ring_in_order(void **state)
{
    (void)state;
    char rings[JOBQ_TAKE_RINGS_MAX + 1][KEY_MAX];
    key_ready(rings[0], "test");
    key_ready(rings[1], "agent.run");
    const char *argv[JOBQ_TAKE_WORDS_MAX];
    size_t argvlen[JOBQ_TAKE_WORDS_MAX];
    jobq_take_bufs bufs;
    char sha[41];

    int argc = jobq_take_argv(argv, argvlen, &bufs, true, rings, 2, NULL, -1, 10);
    redis_argv cmd = take_words(argv, argvlen, argc);
    const char *want[] = { "EVALSHA", sha_of(jobq_take_lua, sha), "2", "jobs:ready:test",
                           "jobs:ready:agent.run", "2", "0", "", "10" };
    assert_words(&cmd, want, 9);

    argc = jobq_take_argv(argv, argvlen, &bufs, false, rings, 1, NULL, -1, -4);
    assert_int_equal(argc, 8);
    assert_string_equal(argv[7], "0");
    assert_string_equal(argv[0], "EVAL");
    assert_ptr_equal(argv[1], jobq_take_lua);
    assert_string_equal(argv[2], "1");

    for (int i = 2; i <= JOBQ_TAKE_RINGS_MAX; i++)
        key_ready(rings[i], "demo");
    assert_int_equal(jobq_take_argv(argv, argvlen, &bufs, true, rings, JOBQ_TAKE_RINGS_MAX,
                                    NULL, -1, 0), JOBQ_TAKE_RINGS_MAX + 7);
    assert_string_equal(argv[2], "32");
    assert_int_equal(jobq_take_argv(argv, argvlen, &bufs, true, rings, 0, NULL, -1, 0), -1);
    assert_int_equal(jobq_take_argv(argv, argvlen, &bufs, true, rings,
                                    JOBQ_TAKE_RINGS_MAX + 1, NULL, -1, 0), -1);
}

static void test_take_with_a_hint_names_its_list(void **state)
{
    (void)state;
    char rings[2][KEY_MAX];
    key_ready(rings[0], "test");
    key_ready(rings[1], "agent.run");
    jobq_keys hint;
    assert_int_equal(jobq_keys_of(&hint, "agent.run", "acme"), 0);
    const char *argv[JOBQ_TAKE_WORDS_MAX];
    size_t argvlen[JOBQ_TAKE_WORDS_MAX];
    jobq_take_bufs bufs;
    char sha[41];

    /* The hinted tenant's band lists, active set and turns are keys like
     * the rings; the ring it is expected on is counted from 1, as Lua
     * counts. */
    int argc = jobq_take_argv(argv, argvlen, &bufs, true, rings, 2, &hint, 1, 3);
    redis_argv cmd = take_words(argv, argvlen, argc);
    const char *want[] = { "EVALSHA", sha_of(jobq_take_lua, sha), "9", "jobs:ready:test",
                           "jobs:ready:agent.run", "jobs:queue:agent.run:acme:urgent",
                           "jobs:queue:agent.run:acme:high", "jobs:queue:agent.run:acme",
                           "jobs:queue:agent.run:acme:low", "jobs:queue:agent.run:acme:bulk",
                           "jobs:active:agent.run", "jobs:turns:agent.run", "2", "2", "acme",
                           "3" };
    assert_words(&cmd, want, 16);

    /* A hint on no ring of the call is no hint. */
    argc = jobq_take_argv(argv, argvlen, &bufs, true, rings, 2, &hint, 2, 3);
    cmd = take_words(argv, argvlen, argc);
    const char *none[] = { "EVALSHA", sha, "2", "jobs:ready:test", "jobs:ready:agent.run",
                           "2", "0", "", "3" };
    assert_words(&cmd, none, 9);
    argc = jobq_take_argv(argv, argvlen, &bufs, true, rings, 2, &hint, -1, 3);
    assert_int_equal(argc, 9);
}

static void test_pop_says_how_the_turn_was_taken(void **state)
{
    (void)state;
    jobq_keys k;
    redis_argv cmd;
    char sha[41];
    assert_int_equal(jobq_keys_of(&k, "test", "acme"), 0);

    jobq_pop_command(&cmd, true, &k, JOBQ_ROTATED, 10);
    const char *rotated[] = { "EVALSHA", sha_of(jobq_pop_lua, sha), "8",
                              "jobs:queue:test:acme:urgent", "jobs:queue:test:acme:high",
                              "jobs:queue:test:acme", "jobs:queue:test:acme:low",
                              "jobs:queue:test:acme:bulk", "jobs:ready:test",
                              "jobs:active:test", "jobs:turns:test", "acme", "rotated", "10" };
    assert_words(&cmd, rotated, 14);

    jobq_pop_command(&cmd, false, &k, JOBQ_HELD, 0);
    const char *held[] = { "EVAL", jobq_pop_lua, "8", "jobs:queue:test:acme:urgent",
                           "jobs:queue:test:acme:high", "jobs:queue:test:acme",
                           "jobs:queue:test:acme:low", "jobs:queue:test:acme:bulk",
                           "jobs:ready:test", "jobs:active:test", "jobs:turns:test", "acme",
                           "held", "0" };
    assert_words(&cmd, held, 14);

    jobq_repair_command(&cmd, true, &k);
    const char *repair[] = { "EVALSHA", sha_of(jobq_repair_lua, sha), "7",
                             "jobs:queue:test:acme:urgent", "jobs:queue:test:acme:high",
                             "jobs:queue:test:acme", "jobs:queue:test:acme:low",
                             "jobs:queue:test:acme:bulk", "jobs:ready:test",
                             "jobs:active:test", "acme" };
    assert_words(&cmd, repair, 11);
}

static void test_new_job_words_name_its_band_and_its_events(void **state)
{
    (void)state;
    jobq_new_job w;
    const char *id = "01890a5d-ac96-774b-bcce-b302099a8057";
    assert_int_equal(jobq_new_job_words(&w, id, "test", "acme", 150), 0);
    assert_string_equal(w.keys[0], "jobs:events:01890a5d-ac96-774b-bcce-b302099a8057");
    assert_string_equal(w.keys[1], "jobs:state:01890a5d-ac96-774b-bcce-b302099a8057");
    assert_string_equal(w.keys[2], "jobs:queue:test:acme:urgent");
    assert_string_equal(w.keys[3], "jobs:ready:test");
    assert_string_equal(w.keys[4], "jobs:active:test");
    assert_string_equal(w.channel, "jobs:notify:01890a5d-ac96-774b-bcce-b302099a8057");
    assert_string_equal(w.id, id);
    assert_string_equal(w.tenant, "acme");
    assert_int_equal(jobq_new_job_words(&w, id, "test", "acme", 0), 0);
    assert_string_equal(w.keys[2], "jobs:queue:test:acme");
    assert_int_equal(jobq_new_job_words(&w, id, "test", "acme", -500), 0);
    assert_string_equal(w.keys[2], "jobs:queue:test:acme:bulk");
    assert_int_equal(jobq_new_job_words(&w, id, "test", "a:b", 0), -1);
    /* Both halves of the call are in the one script. */
    assert_non_null(strstr(jobq_new_jobs_lua, "local function append("));
    assert_non_null(strstr(jobq_new_jobs_lua, "local function enqueue("));
}

static void test_scripts_touch_only_the_keys_they_are_given(void **state)
{
    (void)state;
    const char *const scripts[] = { jobq_enqueue_lua, jobq_take_lua, jobq_pop_lua,
                                    jobq_repair_lua, jobq_new_jobs_lua };
    char shas[5][41];
    for (size_t i = 0; i < sizeof scripts / sizeof *scripts; i++) {
        /* Every key is KEYS[n]: no name is built or spelled in Lua. */
        assert_null(strstr(scripts[i], "jobs:"));
        assert_null(strstr(scripts[i], ".."));
        sha_of(scripts[i], shas[i]);
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(shas[i], shas[j]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys_of_a_tenant),
        cmocka_unit_test(test_bands_of_priorities),
        cmocka_unit_test(test_enqueue_at_the_back_and_the_front),
        cmocka_unit_test(test_promotion_names_the_delayed_set_and_member),
        cmocka_unit_test(test_take_names_every_ring_in_order),
        cmocka_unit_test(test_take_with_a_hint_names_its_list),
        cmocka_unit_test(test_pop_says_how_the_turn_was_taken),
        cmocka_unit_test(test_new_job_words_name_its_band_and_its_events),
        cmocka_unit_test(test_scripts_touch_only_the_keys_they_are_given),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
