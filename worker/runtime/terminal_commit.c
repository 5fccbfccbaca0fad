/*
 * terminal_commit.c - the worker's group commit of terminal writes (see
 * terminal_commit.h).
 *
 * Leader and followers, no thread of its own: a job thread that finds no
 * write under way becomes the leader and writes everything queued, its
 * own included, with store_finish_group (one pipeline, one implicit
 * transaction, one commit) on the committer's connection. Job threads
 * that come while it does queue up and sleep, each on its own condition
 * variable; when the leader is done it wakes the members of its group and
 * hands the lead to the first one queued meanwhile, which writes them all
 * as the next group. So the group grows by itself with the load, and a
 * write that comes alone costs no hand-off to another thread at all.
 *
 * A group that fails is never retried as a group: its members are written
 * one at a time, each exactly as a job thread's own final write would be
 * (reconnect, and after a lost answer, a check whether it landed).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "terminal_commit.h"

#define COMMIT_CONNECT_TIMEOUT_S 5

typedef struct tc_req {
    store_finish_item item;     /* item.rc: the answer */
    stop_fn over;
    void *over_arg;
    bool retried;               /* a write of it may have been lost with a connection */
    bool done;                  /* under the lock */
    pthread_cond_t wake;        /* done, or its turn to lead */
    struct tc_req *next;        /* under the lock */
} tc_req;

struct terminal_commit {
    pg_link pg;                 /* the leader's */
    pthread_mutex_t lock;
    tc_req *head, *tail;        /* queued, not taken by a leader; under the lock */
    bool leading;               /* a leader is writing; under the lock */
    bool stopped;               /* under the lock */
    int max_group;
    long long writes, groups;   /* totals, logged at stop; under the lock */
    tc_req **group;             /* the leader's: max_group */
    store_finish_item *items;   /* the leader's: max_group */
};

/* ---------------------------------------------------------------------------
 * The committer's writes
 * ------------------------------------------------------------------------- */

/* One request on its own, as a job thread's final write: reconnecting
 * until over, and, when an earlier answer was lost with its connection,
 * checking whether that write landed before calling a fence failure. */
static void commit_one(terminal_commit *tc, tc_req *r)
{
    store_finish_item *it = &r->item;
    for (;;) {
        PGconn *c = pg_link_wait(&tc->pg, r->over, r->over_arg);
        if (c == NULL) {
            it->rc = STORE_ERROR;
            return;
        }
        store_rc rc = store_finish(c, it->id, it->tenant_id, it->attempt, it->f);
        if (rc == STORE_ERROR && store_conn_broken(c)) {
            pg_link_drop(&tc->pg);
            r->retried = true;
            continue;
        }
        if (rc != STORE_OK && rc != STORE_ERROR && r->retried
            && store_write_landed(c, it->id, it->tenant_id, it->attempt, it->f->status,
                                  it->f->seq))
            rc = STORE_OK;
        it->rc = rc == STORE_DUP ? STORE_NONE : rc;
        return;
    }
}

typedef struct group_wait {
    tc_req **reqs;
    int n;
} group_wait;

/* The group stops waiting for a connection as soon as any member's time
 * is over: the members then go one by one, each with its own limit. */
static bool group_wait_over(void *arg)
{
    const group_wait *gw = arg;
    for (int i = 0; i < gw->n; i++)
        if (gw->reqs[i]->over(gw->reqs[i]->over_arg))
            return true;
    return false;
}

/* By id (canonical text sorts as PostgreSQL sorts uuids): the order in
 * which the heartbeat locks its rows too (sql/migrations/010_heartbeat_order.sql),
 * so neither a group and the heartbeat nor two groups can deadlock. */
static int req_order(const void *a, const void *b)
{
    const tc_req *const *x = a, *const *y = b;
    return strcmp((*x)->item.id, (*y)->item.id);
}

/* Writes the n requests of tc->group, answering each in its item.rc. */
static void commit_group(terminal_commit *tc, int n)
{
    tc_req **reqs = tc->group;
    if (n == 1) {
        commit_one(tc, reqs[0]);
        return;
    }
    /* Rows are locked in id order (see req_order). Should a group fail
     * all the same, it is written one by one below. */
    qsort(reqs, (size_t)n, sizeof *reqs, req_order);
    group_wait gw = { reqs, n };
    PGconn *c = pg_link_wait(&tc->pg, group_wait_over, &gw);
    if (c != NULL) {
        for (int i = 0; i < n; i++)
            tc->items[i] = reqs[i]->item;
        if (store_finish_group(c, tc->items, (size_t)n) == STORE_OK) {
            for (int i = 0; i < n; i++)
                reqs[i]->item.rc = tc->items[i].rc;
            return;
        }
        if (store_conn_broken(c)) {
            /* The commit may have landed before the connection went. */
            pg_link_drop(&tc->pg);
            for (int i = 0; i < n; i++)
                reqs[i]->retried = true;
        }
        log_warn("group terminal write of %d jobs failed; writing them one by one", n);
    }
    for (int i = 0; i < n; i++)
        commit_one(tc, reqs[i]);
}

/* ---------------------------------------------------------------------------
 * Leading and waiting
 * ------------------------------------------------------------------------- */

/* Moves up to max_group queued requests into tc->group. Under the lock. */
static int take_group(terminal_commit *tc)
{
    int n = 0;
    while (tc->head != NULL && n < tc->max_group) {
        tc->group[n++] = tc->head;
        tc->head = tc->head->next;
    }
    if (tc->head == NULL)
        tc->tail = NULL;
    return n;
}

/* The calling thread writes what is queued as one group, then answers
 * its members and hands the lead on. Called and returns under the lock. */
static void lead_one_group(terminal_commit *tc)
{
    tc->leading = true;
    int n = take_group(tc);
    pthread_mutex_unlock(&tc->lock);
    commit_group(tc, n);
    pthread_mutex_lock(&tc->lock);
    tc->writes += n;
    tc->groups++;
    for (int i = 0; i < n; i++) {
        tc->group[i]->done = true;
        pthread_cond_signal(&tc->group[i]->wake);
    }
    tc->leading = false;
    if (tc->head != NULL)
        pthread_cond_signal(&tc->head->wake);
}

terminal_commit *terminal_commit_start(const char *database_url, int max_group)
{
    terminal_commit *tc = calloc(1, sizeof *tc);
    if (tc == NULL) {
        log_error("out of memory for the terminal committer");
        return NULL;
    }
    tc->max_group = max_group > 0 ? max_group : 1;
    tc->group = calloc((size_t)tc->max_group, sizeof *tc->group);
    tc->items = calloc((size_t)tc->max_group, sizeof *tc->items);
    if (tc->group == NULL || tc->items == NULL) {
        log_error("out of memory for the terminal committer");
        free(tc->group);
        free(tc->items);
        free(tc);
        return NULL;
    }
    pthread_mutex_init(&tc->lock, NULL);
    pg_link_init(&tc->pg, database_url, "terminal committer", COMMIT_CONNECT_TIMEOUT_S);
    return tc;
}

store_rc terminal_commit_finish(terminal_commit *tc, const char *id, const char *tenant_id,
                                int attempt, const job_final *f, stop_fn over, void *arg)
{
    tc_req r = { .item = { .id = id, .tenant_id = tenant_id, .attempt = attempt, .f = f,
                           .rc = STORE_ERROR },
                 .over = over, .over_arg = arg };
    pthread_cond_init(&r.wake, NULL);
    pthread_mutex_lock(&tc->lock);
    if (tc->stopped) {
        /* A caller bug: answered rather than lost. */
        pthread_mutex_unlock(&tc->lock);
        pthread_cond_destroy(&r.wake);
        log_error("job %s: terminal write after the committer stopped", id);
        return STORE_ERROR;
    }
    if (tc->tail != NULL)
        tc->tail->next = &r;
    else
        tc->head = &r;
    tc->tail = &r;
    /* No time limit on the wait: the leader stops trying at each member's
     * over(arg), and a statement under way is bounded as a job thread's
     * own would be (TCP keepalives), so the answer always comes. */
    while (!r.done) {
        if (!tc->leading)
            lead_one_group(tc);
        else
            pthread_cond_wait(&r.wake, &tc->lock);
    }
    pthread_mutex_unlock(&tc->lock);
    pthread_cond_destroy(&r.wake);
    return r.item.rc;
}

void terminal_commit_stop(terminal_commit *tc)
{
    if (tc == NULL)
        return;
    pthread_mutex_lock(&tc->lock);
    tc->stopped = true;
    /* Nothing can be queued: every caller returns only once answered. */
    pthread_mutex_unlock(&tc->lock);
    pg_link_close(&tc->pg);
    if (tc->groups > 0)
        log_info("terminal committer: %lld terminal writes in %lld transactions (%.2f each)",
                 tc->writes, tc->groups, (double)tc->writes / (double)tc->groups);
    pthread_mutex_destroy(&tc->lock);
    free(tc->group);
    free(tc->items);
    free(tc);
}
