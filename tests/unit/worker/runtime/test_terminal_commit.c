/*
 * test_terminal_commit.c - the worker's group committer (worker/runtime/terminal_commit.c)
 * against a fake PostgreSQL side: the job_store functions it calls are
 * defined here, so the real ones (and libpq) are never linked in.
 *
 * What is checked: writes that wait together go in one group, each with
 * its own outcome; a group that fails is written again one by one, so one
 * bad job does not fail the others; after a connection lost mid-commit a
 * fenced-out answer is checked against what landed; a write whose time is
 * over while PostgreSQL is down is answered with an error; stop answers
 * everything still queued.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "terminal_commit.h"

/* ---------------------------------------------------------------------------
 * The fake store
 * ------------------------------------------------------------------------- */

static pthread_mutex_t fk_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t fk_cond = PTHREAD_COND_INITIALIZER;
static char fk_dummy;                   /* stands in for a PGconn */
static bool fk_down;                    /* PostgreSQL unreachable */
static bool fk_hold;                    /* the next single write blocks until released */
static bool fk_holding;                 /* a single write is blocked now */
static bool fk_break_group;             /* the next group loses its connection */
static bool fk_broken;                  /* the connection is broken */
static bool fk_landed;                  /* store_write_landed's answer */
static int fk_singles, fk_groups, fk_drops, fk_landed_checks;
static size_t fk_group_sizes[16];

static void fake_reset(void)
{
    pthread_mutex_lock(&fk_lock);
    fk_down = fk_hold = fk_holding = fk_break_group = fk_broken = fk_landed = false;
    fk_singles = fk_groups = fk_drops = fk_landed_checks = 0;
    memset(fk_group_sizes, 0, sizeof fk_group_sizes);
    pthread_mutex_unlock(&fk_lock);
}

/* The outcome the fake gives a job by its id's prefix. */
static store_rc outcome_of(const char *id)
{
    if (strncmp(id, "none", 4) == 0)
        return STORE_NONE;
    if (strncmp(id, "dup", 3) == 0)
        return STORE_DUP;
    if (strncmp(id, "err", 3) == 0)
        return STORE_ERROR;
    return STORE_OK;
}

void pg_link_init(pg_link *l, const char *url, const char *who, int connect_timeout_s)
{
    memset(l, 0, sizeof *l);
    l->url = url;
    l->who = who;
    l->connect_timeout_s = connect_timeout_s;
}

PGconn *pg_link_wait(pg_link *l, stop_fn stop, void *arg)
{
    for (;;) {
        pthread_mutex_lock(&fk_lock);
        bool down = fk_down;
        pthread_mutex_unlock(&fk_lock);
        if (!down)
            break;
        if (stop(arg))
            return NULL;
        usleep(1000);
    }
    l->conn = (PGconn *)&fk_dummy;
    return l->conn;
}

void pg_link_drop(pg_link *l)
{
    pthread_mutex_lock(&fk_lock);
    fk_drops++;
    fk_broken = false;
    pthread_mutex_unlock(&fk_lock);
    l->conn = NULL;
}

void pg_link_close(pg_link *l)
{
    l->conn = NULL;
}

bool store_conn_broken(PGconn *conn)
{
    pthread_mutex_lock(&fk_lock);
    bool b = conn == NULL || fk_broken;
    pthread_mutex_unlock(&fk_lock);
    return b;
}

store_rc store_finish(PGconn *conn, const char *id, const char *tenant_id, int attempt,
                      const job_final *f)
{
    (void)conn, (void)tenant_id, (void)attempt, (void)f;
    pthread_mutex_lock(&fk_lock);
    fk_singles++;
    if (fk_hold) {
        fk_hold = false;
        fk_holding = true;
        pthread_cond_broadcast(&fk_cond);
        while (fk_holding)
            pthread_cond_wait(&fk_cond, &fk_lock);
    }
    pthread_mutex_unlock(&fk_lock);
    return outcome_of(id);
}

store_rc store_finish_group(PGconn *conn, store_finish_item *items, size_t n)
{
    (void)conn;
    pthread_mutex_lock(&fk_lock);
    if (fk_groups < 16)
        fk_group_sizes[fk_groups] = n;
    fk_groups++;
    bool lose = fk_break_group;
    fk_break_group = false;
    if (lose)
        fk_broken = true;
    pthread_mutex_unlock(&fk_lock);
    if (lose)
        return STORE_ERROR;
    /* Like the real one: one failing statement rolls back the group. */
    for (size_t i = 0; i < n; i++)
        if (outcome_of(items[i].id) == STORE_ERROR || outcome_of(items[i].id) == STORE_DUP)
            return STORE_ERROR;
    for (size_t i = 0; i < n; i++)
        items[i].rc = outcome_of(items[i].id);
    return STORE_OK;
}

bool store_write_landed(PGconn *conn, const char *id, const char *tenant_id, int attempt,
                        const char *status, long long seq)
{
    (void)conn, (void)id, (void)tenant_id, (void)attempt, (void)status, (void)seq;
    pthread_mutex_lock(&fk_lock);
    fk_landed_checks++;
    bool l = fk_landed;
    pthread_mutex_unlock(&fk_lock);
    return l;
}

/* ---------------------------------------------------------------------------
 * Job threads
 * ------------------------------------------------------------------------- */

static bool never(void *arg)
{
    (void)arg;
    return false;
}

static bool always(void *arg)
{
    (void)arg;
    return true;
}

typedef struct writer {
    terminal_commit *tc;
    const char *id;
    stop_fn over;
    store_rc rc;
    pthread_t tid;
} writer;

static void *writer_main(void *arg)
{
    writer *wr = arg;
    job_final f = { .status = "succeeded", .event_type = "job.succeeded", .body = "{}",
                    .seq = 3 };
    wr->rc = terminal_commit_finish(wr->tc, wr->id, "t1", 1, &f, wr->over, NULL);
    return NULL;
}

static void writer_start(writer *wr, terminal_commit *tc, const char *id)
{
    wr->tc = tc;
    wr->id = id;
    if (wr->over == NULL)
        wr->over = never;
    wr->rc = (store_rc)99;
    assert_int_equal(pthread_create(&wr->tid, NULL, writer_main, wr), 0);
}

/* Holds the committer in a single write (the first writer's) so that the
 * writers started next queue up behind it and go as one group. */
static void hold_then_queue(terminal_commit *tc, writer *first, const char *first_id,
                            writer *rest, const char **ids, int n)
{
    pthread_mutex_lock(&fk_lock);
    fk_hold = true;
    pthread_mutex_unlock(&fk_lock);
    writer_start(first, tc, first_id);
    pthread_mutex_lock(&fk_lock);
    while (!fk_holding)
        pthread_cond_wait(&fk_cond, &fk_lock);
    pthread_mutex_unlock(&fk_lock);
    for (int i = 0; i < n; i++)
        writer_start(&rest[i], tc, ids[i]);
    usleep(100 * 1000);     /* every one of them is queued by now */
    pthread_mutex_lock(&fk_lock);
    fk_holding = false;
    pthread_cond_broadcast(&fk_cond);
    pthread_mutex_unlock(&fk_lock);
    pthread_join(first->tid, NULL);
    for (int i = 0; i < n; i++)
        pthread_join(rest[i].tid, NULL);
}

/* ---------------------------------------------------------------------------
 * Tests
 * ------------------------------------------------------------------------- */

static void test_lone_write_goes_alone(void **state)
{
    (void)state;
    fake_reset();
    terminal_commit *tc = terminal_commit_start("postgresql://fake", 4);
    assert_non_null(tc);
    writer a = { 0 }, b = { 0 };
    writer_start(&a, tc, "ok-a");
    pthread_join(a.tid, NULL);
    writer_start(&b, tc, "dup-b");
    pthread_join(b.tid, NULL);
    terminal_commit_stop(tc);
    assert_int_equal(a.rc, STORE_OK);
    assert_int_equal(b.rc, STORE_NONE);     /* a duplicate event: not this attempt's */
    assert_int_equal(fk_singles, 2);
    assert_int_equal(fk_groups, 0);
}

static void test_waiting_writes_share_a_group_with_their_own_outcomes(void **state)
{
    (void)state;
    fake_reset();
    terminal_commit *tc = terminal_commit_start("postgresql://fake", 4);
    writer first = { 0 }, rest[3] = { { 0 } };
    const char *ids[3] = { "ok-2", "none-3", "ok-4" };
    hold_then_queue(tc, &first, "ok-1", rest, ids, 3);
    terminal_commit_stop(tc);
    assert_int_equal(first.rc, STORE_OK);
    assert_int_equal(rest[0].rc, STORE_OK);
    assert_int_equal(rest[1].rc, STORE_NONE);
    assert_int_equal(rest[2].rc, STORE_OK);
    assert_int_equal(fk_singles, 1);
    assert_int_equal(fk_groups, 1);
    assert_int_equal(fk_group_sizes[0], 3);
}

static void test_group_is_capped(void **state)
{
    (void)state;
    fake_reset();
    terminal_commit *tc = terminal_commit_start("postgresql://fake", 2);
    writer first = { 0 }, rest[3] = { { 0 } };
    const char *ids[3] = { "ok-2", "ok-3", "ok-4" };
    hold_then_queue(tc, &first, "ok-1", rest, ids, 3);
    terminal_commit_stop(tc);
    for (int i = 0; i < 3; i++)
        assert_int_equal(rest[i].rc, STORE_OK);
    /* Three waiting, two at most per group: a group of 2, then one alone. */
    assert_int_equal(fk_groups, 1);
    assert_int_equal(fk_group_sizes[0], 2);
    assert_int_equal(fk_singles, 2);
}

static void test_failed_group_is_written_one_by_one(void **state)
{
    (void)state;
    fake_reset();
    terminal_commit *tc = terminal_commit_start("postgresql://fake", 4);
    writer first = { 0 }, rest[3] = { { 0 } };
    const char *ids[3] = { "ok-2", "err-3", "dup-4" };
    hold_then_queue(tc, &first, "ok-1", rest, ids, 3);
    terminal_commit_stop(tc);
    assert_int_equal(rest[0].rc, STORE_OK);         /* not failed by its neighbours */
    assert_int_equal(rest[1].rc, STORE_ERROR);
    assert_int_equal(rest[2].rc, STORE_NONE);
    assert_int_equal(fk_groups, 1);
    assert_int_equal(fk_singles, 1 + 3);
    assert_int_equal(fk_drops, 0);
    assert_int_equal(fk_landed_checks, 0);
}

static void test_lost_commit_checks_what_landed(void **state)
{
    (void)state;
    fake_reset();
    pthread_mutex_lock(&fk_lock);
    fk_break_group = true;      /* the group's answer is lost ... */
    fk_landed = true;           /* ... after it committed */
    pthread_mutex_unlock(&fk_lock);
    terminal_commit *tc = terminal_commit_start("postgresql://fake", 4);
    writer first = { 0 }, rest[2] = { { 0 } };
    /* Written again one by one, each is fenced out (it already landed):
     * the check turns that into success. */
    const char *ids[2] = { "none-2", "none-3" };
    hold_then_queue(tc, &first, "ok-1", rest, ids, 2);
    terminal_commit_stop(tc);
    assert_int_equal(rest[0].rc, STORE_OK);
    assert_int_equal(rest[1].rc, STORE_OK);
    assert_int_equal(fk_drops, 1);
    assert_int_equal(fk_landed_checks, 2);
}

static void test_fenced_out_after_lost_commit_that_did_not_land(void **state)
{
    (void)state;
    fake_reset();
    pthread_mutex_lock(&fk_lock);
    fk_break_group = true;
    fk_landed = false;
    pthread_mutex_unlock(&fk_lock);
    terminal_commit *tc = terminal_commit_start("postgresql://fake", 4);
    writer first = { 0 }, rest[2] = { { 0 } };
    const char *ids[2] = { "none-2", "ok-3" };
    hold_then_queue(tc, &first, "ok-1", rest, ids, 2);
    terminal_commit_stop(tc);
    assert_int_equal(rest[0].rc, STORE_NONE);
    assert_int_equal(rest[1].rc, STORE_OK);
    assert_int_equal(fk_landed_checks, 1);      /* only the fenced-out one asks */
}

static void test_time_over_while_down_is_an_error(void **state)
{
    (void)state;
    fake_reset();
    pthread_mutex_lock(&fk_lock);
    fk_down = true;
    pthread_mutex_unlock(&fk_lock);
    terminal_commit *tc = terminal_commit_start("postgresql://fake", 4);
    writer a = { .over = always };
    writer_start(&a, tc, "ok-a");
    pthread_join(a.tid, NULL);
    terminal_commit_stop(tc);
    assert_int_equal(a.rc, STORE_ERROR);
    assert_int_equal(fk_singles, 0);
}

static void test_stop_without_writes(void **state)
{
    (void)state;
    fake_reset();
    terminal_commit *tc = terminal_commit_start("postgresql://fake", 4);
    assert_non_null(tc);
    terminal_commit_stop(tc);
    terminal_commit_stop(NULL);
    assert_int_equal(fk_singles + fk_groups, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lone_write_goes_alone),
        cmocka_unit_test(test_waiting_writes_share_a_group_with_their_own_outcomes),
        cmocka_unit_test(test_group_is_capped),
        cmocka_unit_test(test_failed_group_is_written_one_by_one),
        cmocka_unit_test(test_lost_commit_checks_what_landed),
        cmocka_unit_test(test_fenced_out_after_lost_commit_that_did_not_land),
        cmocka_unit_test(test_time_over_while_down_is_an_error),
        cmocka_unit_test(test_stop_without_writes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
