/*
 * test_run_memo.c - the in-memory side of a run's journal
 * (worker/agent/run_memo.c): calls numbered in order, recorded once,
 * answered from the journal when the run takes the same path again (a
 * resume), gaps for calls that have no entry (the one that waited), and a
 * run that takes another path stopped as resume_diverged.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "jsonutil.h"
#include "run_memo.h"

static cJSON *value(const char *text)
{
    cJSON *v = cJSON_Parse(text);
    assert_non_null(v);
    return v;
}

static void assert_json(const cJSON *got, const char *want)
{
    assert_non_null(got);
    char *s = json_print(got);
    assert_non_null(s);
    assert_string_equal(s, want);
    free(s);
}

static void test_calls_are_recorded_and_replayed_in_order(void **state)
{
    (void)state;
    run r;
    memset(&r, 0, sizeof(r));
    assert_int_equal(memo_begin(&r), 0);     /* a fresh run: no database read */
    assert_non_null(r.journal);
    assert_int_equal(r.journal_saved, 0);

    int seq;
    cJSON *llm = value("{\"text\":\"hi\",\"err\":0}");
    cJSON *tool = value("{\"status\":0,\"output\":{\"utc\":\"x\"}}");
    assert_null(memo_next(&r, "llm", &seq));
    assert_int_equal(seq, 1);
    assert_int_equal(memo_put(&r, seq, "llm", llm), 0);
    assert_null(memo_next(&r, "tool", &seq));     /* the call that waits: no entry */
    assert_int_equal(seq, 2);
    assert_null(memo_next(&r, "tool", &seq));
    assert_int_equal(seq, 3);
    assert_int_equal(memo_put(&r, seq, "tool", tool), 0);
    /* A second record of a call already there changes nothing. */
    assert_int_equal(memo_put(&r, 1, "llm", tool), 0);
    assert_int_equal(cJSON_GetArraySize(r.journal), 3);
    assert_true(cJSON_IsNull(cJSON_GetArrayItem(r.journal, 1)));

    /* The same path again answers from the journal. */
    r.call_seq = 0;
    assert_json(memo_next(&r, "llm", &seq), "{\"text\":\"hi\",\"err\":0}");
    assert_null(memo_next(&r, "tool", &seq));
    assert_int_equal(seq, 2);
    assert_json(memo_next(&r, "tool", &seq), "{\"status\":0,\"output\":{\"utc\":\"x\"}}");
    assert_null(memo_next(&r, "llm", &seq));     /* past the journal: a new call */
    assert_int_equal(seq, 4);
    assert_false(r.stopped);

    cJSON_Delete(llm);
    cJSON_Delete(tool);
    memo_free(&r);
    assert_null(r.journal);
}

static void test_another_path_stops_the_run(void **state)
{
    (void)state;
    run r;
    memset(&r, 0, sizeof(r));
    assert_int_equal(memo_begin(&r), 0);
    cJSON *v = value("{}");
    int seq;
    assert_null(memo_next(&r, "llm", &seq));
    assert_int_equal(memo_put(&r, seq, "llm", v), 0);
    r.call_seq = 0;
    assert_null(memo_next(&r, "tool", &seq));
    assert_true(r.stopped);
    assert_string_equal(r.code, "resume_diverged");
    cJSON_Delete(v);
    memo_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_calls_are_recorded_and_replayed_in_order),
        cmocka_unit_test(test_another_path_stops_the_run),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
