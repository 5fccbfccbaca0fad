/*
 * api_retry.h - retrying finished jobs: what POST /v1/jobs/{id}/retry and
 * the dead-letter routes (api_dead_letters.c) share.
 *
 * A retry is a NEW job with the old one's type, payload, priority,
 * max_attempts and timeout, and retry_of naming the old one, which stays
 * as it was. A plain job is created exactly as POST /v1/jobs creates one
 * (api_submit_job); an agent run's job (agent.run) with a copy of its run
 * row (same prompt and options, a new run id), all of a set's runs in one
 * statement. Creating a retry of a failed job resolves its dead letter in
 * the same transaction.
 */
#ifndef AG_API_RETRY_H
#define AG_API_RETRY_H

#include <stdbool.h>
#include <stddef.h>
#include <libpq-fe.h>
#include "gateway.h"
#include "uuid.h"

/* One job to retry, read from its row, and what its retry became. */
typedef struct retry_item {
    char old_id[UUID_STR_LEN];
    char type[64];
    char *payload;                /* JSON text, owned */
    long long priority, max_attempts, timeout_s;
    /* The outcome, once the set is done: */
    bool ok;                      /* created, committed and enqueued */
    char new_id[UUID_STR_LEN];
    char run_id[UUID_STR_LEN];    /* agent.run: the new run's id, else "" */
    char *json;                   /* ok: the new job as the API shows it (owned),
                                     with "run_id" for an agent run */
    size_t json_len;
    char err[200], sqlstate[8];   /* !ok: why, for gw_reply_db_error */
} retry_item;

typedef struct retry_set retry_set;

/* Called once every item of the set has its outcome. */
typedef void (*retry_set_fn)(gw_req *r, retry_set *set);

struct retry_set {
    retry_item *items;
    int n;
    int pending;                  /* inserts not answered yet (+1 while starting) */
    retry_set_fn done;
    void *runs;                   /* the agent runs' statement in flight (api_retry.c) */
    void *arg;                    /* the caller's */
};

/* A set of n empty items (caller fills old_id, type, payload, ...), or
 * NULL when out of memory. Free with retry_set_free. */
retry_set *retry_set_new(int n);
void retry_set_free(void *set);

/*
 * Why jobs of type cannot be retried by these routes, or NULL when they
 * can: a type no longer registered, or one that only its own resource
 * creates (an MCP server's discovery is refreshed through the server).
 */
const char *retry_refusal(const char *type);

/* The PostgreSQL array literal of the registered types the caller may
 * retry with r's route (jobs:create, and for an agent run's job
 * agent-runs:create). Caller frees; NULL when out of memory. */
char *retry_types_allowed(gw_req *r);

/* Fills item i of set from row `row` of res, whose columns from `col` on
 * are: id, type, priority, payload text, max_attempts, timeout_s.
 * Returns 0, or -1 when out of memory. */
int retry_item_from_row(retry_set *set, int i, PGresult *res, int row, int col);

/*
 * Creates the retries of every item of set for request r, then calls
 * done(r, set) (also when some or all failed: see each item's ok). set
 * must be r->state (with retry_set_free as r->state_free), which keeps it
 * alive until then; done runs even when the client has gone.
 */
void retry_set_start(gw_req *r, retry_set *set, retry_set_fn done);

/* Clears dead_resolved_at of the failed items' originals, for a caller
 * that resolved them before the retry (a claimed dead letter): a retry
 * that did not happen leaves its entry in the list. Best effort. */
void retry_unresolve_failed(gw_req *r, const retry_set *set);

/* A retry_set_fn for a set of one: answers 202 with the new job and its
 * Location, or the item's failure. */
void retry_reply_one(gw_req *r, retry_set *set);

#endif
