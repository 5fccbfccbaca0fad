/*
 * api_dead_letters.c - the dead-letter list: GET /v1/dead-letters, the
 * retry and discard of one entry (POST /v1/dead-letters/{id}/retry,
 * DELETE /v1/dead-letters/{id}) and of all (POST /v1/dead-letters/retry,
 * DELETE /v1/dead-letters), each optionally of one ?type=.
 *
 * A dead letter is a failed job of the tenant not yet dealt with
 * (jobs.dead_resolved_at NULL, sql/migrations/014_retry_dead_letters.sql);
 * PostgreSQL alone says what the list holds. The Redis list jobs:dead is
 * something else: the workers' capped log of recent failures across
 * tenants, which stays true after a failed job is retried or discarded
 * (the job is still failed), so it is left as it is.
 *
 * Retrying an entry first claims it - one UPDATE sets dead_resolved_at,
 * so of two concurrent retries of one entry only one gets it and the
 * other finds no entry - then creates the retry (api_retry.h). A retry
 * that fails to be created puts its entry back. The job types the caller
 * may not act on (an agent run's job needs agent-runs as well as jobs)
 * are never claimed: one entry of such a type is answered 403, and "all"
 * leaves them in the list.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <event2/buffer.h>

#include "api.h"
#include "api_retry.h"
#include "api_util.h"
#include "http.h"
#include "jobtypes.h"
#include "query.h"
#include "uuid.h"
#include "log.h"

/* At most this many entries are retried by one POST /v1/dead-letters/retry. */
#define RETRY_ALL_MAX 1000

/* Reads ?type= into *type (NULL when absent); answers 400 for a type that
 * is not registered. Returns 0, or -1 after answering. */
static int read_type(gw_req *r, const char **type)
{
    *type = http_query(r, "type");
    if (!*type || jobtypes_find(*type)) return 0;
    http_reply_problem(r, 400, "bad-query", "type is not a registered job type", NULL);
    return -1;
}

/* --- GET /v1/dead-letters ---------------------------------------------- */

/* $5: the job types the caller may not read, as in GET /v1/jobs. */
static const char SQL_DEAD_LIST[] =
    "SELECT job_json(j), j.created_at::text, j.id FROM jobs j"
    " WHERE j.tenant_id = $1 AND j.status = 'failed' AND j.dead_resolved_at IS NULL"
    "   AND ($2::text IS NULL OR j.type = $2)"
    "   AND ($3::timestamptz IS NULL OR (j.created_at, j.id) < ($3::timestamptz, $4::uuid))"
    "   AND NOT (j.type = ANY ($5::text[]))"
    " ORDER BY j.created_at DESC, j.id DESC LIMIT $6";

void api_dead_letters_list(gw_req *r)
{
    const char *type;
    if (read_type(r, &type) != 0) return;
    if (type && api_require_job_access(r, type) != 0) return;
    int limit;
    api_cursor cur;
    if (api_read_limit(r, &limit) != 0 || api_read_cursor(r, &cur) != 0) return;
    char *hidden = api_job_types_array(r, false, NULL);
    if (!hidden) { http_reply_problem(r, 503, "unavailable", "out of memory", NULL); return; }
    const char *params[6] = { r->who.tenant_id, type, cur.present ? cur.created_at : NULL,
                              cur.present ? cur.id : NULL, hidden, NULL };
    api_query_page(r, SQL_DEAD_LIST, 6, params, limit);
    free(hidden);
}

/* --- POST /v1/dead-letters/{id}/retry ----------------------------------- */

/*
 * Claims entry $1 of tenant $2 when its type is one of $3 (the types the
 * caller may retry). Answers no row when there is no such entry; else its
 * type and, when it was claimed, the columns a retry reads. FOR UPDATE
 * makes a concurrent claim of the same entry wait for this one and then
 * find it resolved.
 */
static const char SQL_DEAD_CLAIM[] =
    "WITH d AS (SELECT j.id, j.type FROM jobs j WHERE j.id = $1 AND j.tenant_id = $2"
    "   AND j.status = 'failed' AND j.dead_resolved_at IS NULL FOR UPDATE),"
    " c AS (UPDATE jobs j SET dead_resolved_at = now() FROM d"
    "   WHERE j.id = d.id AND j.type = ANY ($3::text[])"
    "   RETURNING j.id, j.type, j.priority, j.payload::text, j.max_attempts, j.timeout_s)"
    " SELECT d.type, c.id, c.type, c.priority, c.payload, c.max_attempts, c.timeout_s"
    " FROM d LEFT JOIN c ON true";

static void reply_no_entry(gw_req *r)
{
    api_reply_not_found(r, "dead letter");
}

/* Answers why entry of type was not claimed: 403 or 409. */
static void reply_not_claimed(gw_req *r, const char *type)
{
    if (api_require_job_access(r, type) != 0) return;
    const char *refusal = retry_refusal(type);
    http_reply_problem(r, 409, "conflict", refusal ? refusal : "this entry cannot be retried",
                       NULL);
}

static void on_one_retried(gw_req *r, retry_set *set)
{
    if (!set->items[0].ok) retry_unresolve_failed(r, set);
    retry_reply_one(r, set);
}

static void on_claimed(gw_req *r, PGresult *res, const char *err, const char *sqlstate)
{
    if (!res) { gw_reply_db_error(r, err, sqlstate); return; }
    if (PQntuples(res) == 0) { reply_no_entry(r); return; }
    if (PQgetisnull(res, 0, 1)) { reply_not_claimed(r, PQgetvalue(res, 0, 0)); return; }
    retry_set *set = retry_set_new(1);
    if (!set || retry_item_from_row(set, 0, res, 0, 1) != 0) {
        /* Claimed, and no retry: put the entry back. */
        if (set) {
            snprintf(set->items[0].old_id, sizeof set->items[0].old_id, "%s",
                     PQgetvalue(res, 0, 1));
            retry_unresolve_failed(r, set);
        }
        retry_set_free(set);
        http_reply_problem(r, 503, "unavailable", "out of memory", NULL);
        return;
    }
    r->state = set;
    r->state_free = retry_set_free;
    retry_set_start(r, set, on_one_retried);
}

void api_dead_letter_retry(gw_req *r)
{
    char id[UUID_STR_LEN];
    if (!uuid_parse(r->route.param, id)) { reply_no_entry(r); return; }
    char *allowed = retry_types_allowed(r);
    if (!allowed) { http_reply_problem(r, 503, "unavailable", "out of memory", NULL); return; }
    const char *params[3] = { id, r->who.tenant_id, allowed };
    gw_query(r, SQL_DEAD_CLAIM, 3, params, on_claimed);
    free(allowed);
}

/* --- DELETE /v1/dead-letters/{id} --------------------------------------- */

/* Resolves entry $1 of tenant $2 unless its type is one of $3 (those the
 * caller may not delete); answers its type and whether it was resolved,
 * or no row when there is no such entry. */
static const char SQL_DEAD_DISCARD[] =
    "WITH d AS (SELECT j.id, j.type FROM jobs j WHERE j.id = $1 AND j.tenant_id = $2"
    "   AND j.status = 'failed' AND j.dead_resolved_at IS NULL FOR UPDATE),"
    " u AS (UPDATE jobs j SET dead_resolved_at = now() FROM d"
    "   WHERE j.id = d.id AND NOT (j.type = ANY ($3::text[])) RETURNING j.id)"
    " SELECT d.type, EXISTS (SELECT 1 FROM u) FROM d";

static void on_discarded(gw_req *r, PGresult *res, const char *err, const char *sqlstate)
{
    if (!res) { gw_reply_db_error(r, err, sqlstate); return; }
    if (PQntuples(res) == 0) { reply_no_entry(r); return; }
    if (strcmp(PQgetvalue(res, 0, 1), "t") != 0) {
        if (api_require_job_access(r, PQgetvalue(res, 0, 0)) == 0)
            http_reply_problem(r, 409, "conflict", "this entry cannot be discarded", NULL);
        return;
    }
    http_reply(r, 204, "application/json", "", 0);
}

void api_dead_letter_discard(gw_req *r)
{
    char id[UUID_STR_LEN];
    if (!uuid_parse(r->route.param, id)) { reply_no_entry(r); return; }
    char *denied = api_job_types_array(r, false, NULL);
    if (!denied) { http_reply_problem(r, 503, "unavailable", "out of memory", NULL); return; }
    const char *params[3] = { id, r->who.tenant_id, denied };
    gw_query(r, SQL_DEAD_DISCARD, 3, params, on_discarded);
    free(denied);
}

/* --- POST /v1/dead-letters/retry ---------------------------------------- */

/* Claims the oldest RETRY_ALL_MAX entries of tenant $1 (of type $2 when
 * given) whose type is one of $3, skipping entries another request is
 * claiming right now. Oldest first: retried, they queue in the order
 * they first came. */
static const char SQL_DEAD_CLAIM_ALL[] =
    "WITH d AS (SELECT j.id FROM jobs j WHERE j.tenant_id = $1 AND j.status = 'failed'"
    "   AND j.dead_resolved_at IS NULL AND ($2::text IS NULL OR j.type = $2)"
    "   AND j.type = ANY ($3::text[])"
    "   ORDER BY j.created_at, j.id LIMIT $4 FOR UPDATE SKIP LOCKED)"
    " , u AS (UPDATE jobs j SET dead_resolved_at = now() FROM d WHERE j.id = d.id"
    "   RETURNING j.id, j.type, j.priority, j.payload::text AS payload, j.max_attempts,"
    "     j.timeout_s, j.created_at)"
    " SELECT id, type, priority, payload, max_attempts, timeout_s FROM u"
    " ORDER BY created_at, id";

static void on_all_retried(gw_req *r, retry_set *set)
{
    retry_unresolve_failed(r, set);
    int made = 0;
    const retry_item *failed = NULL;
    for (int i = 0; i < set->n; i++) {
        if (set->items[i].ok) made++;
        else if (!failed) failed = &set->items[i];
    }
    if (made == 0 && failed) { gw_reply_db_error(r, failed->err, failed->sqlstate); return; }
    if (failed)
        log_warn("%d of %d dead letters retried; the others stay in the list: %s", made,
                 set->n, failed->err);
    struct evbuffer *b = evbuffer_new();
    if (!b) { http_reply_problem(r, 503, "unavailable", "out of memory", NULL); return; }
    evbuffer_add_printf(b, "{\"retried\":%d,\"jobs\":[", made);
    int k = 0;
    for (int i = 0; i < set->n; i++)
        if (set->items[i].ok)
            evbuffer_add_printf(b, "%s\"%s\"", k++ ? "," : "", set->items[i].new_id);
    evbuffer_add(b, "]}", 2);
    api_reply_buffer(r, b);
}

static void on_all_claimed(gw_req *r, PGresult *res, const char *err, const char *sqlstate)
{
    if (!res) { gw_reply_db_error(r, err, sqlstate); return; }
    int n = PQntuples(res);
    retry_set *set = retry_set_new(n);
    bool ok = set != NULL;
    for (int i = 0; ok && i < n; i++)
        if (retry_item_from_row(set, i, res, i, 0) != 0) ok = false;
    if (!ok) {
        if (set) retry_unresolve_failed(r, set);     /* nothing is ok: every entry back */
        retry_set_free(set);
        http_reply_problem(r, 503, "unavailable", "out of memory", NULL);
        return;
    }
    r->state = set;
    r->state_free = retry_set_free;
    retry_set_start(r, set, on_all_retried);
}

void api_dead_letters_retry_all(gw_req *r)
{
    const char *type;
    if (read_type(r, &type) != 0) return;
    if (type && api_require_job_access(r, type) != 0) return;
    char *allowed = retry_types_allowed(r);
    if (!allowed) { http_reply_problem(r, 503, "unavailable", "out of memory", NULL); return; }
    char max[16];
    snprintf(max, sizeof max, "%d", RETRY_ALL_MAX);
    const char *params[4] = { r->who.tenant_id, type, allowed, max };
    gw_query(r, SQL_DEAD_CLAIM_ALL, 4, params, on_all_claimed);
    free(allowed);
}

/* --- DELETE /v1/dead-letters -------------------------------------------- */

/* Resolves every entry of tenant $1 (of type $2 when given) except those
 * of the types $3 the caller may not delete; answers how many. */
static const char SQL_DEAD_DISCARD_ALL[] =
    "WITH u AS (UPDATE jobs j SET dead_resolved_at = now()"
    "   WHERE j.tenant_id = $1 AND j.status = 'failed' AND j.dead_resolved_at IS NULL"
    "     AND ($2::text IS NULL OR j.type = $2) AND NOT (j.type = ANY ($3::text[]))"
    "   RETURNING 1)"
    " SELECT count(*) FROM u";

static void on_all_discarded(gw_req *r, PGresult *res, const char *err, const char *sqlstate)
{
    if (!res) { gw_reply_db_error(r, err, sqlstate); return; }
    char body[64];
    int n = snprintf(body, sizeof body, "{\"discarded\":%s}",
                     PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : "0");
    http_reply_json(r, 200, body, (size_t)n);
}

void api_dead_letters_discard_all(gw_req *r)
{
    const char *type;
    if (read_type(r, &type) != 0) return;
    if (type && api_require_job_access(r, type) != 0) return;
    char *denied = api_job_types_array(r, false, NULL);
    if (!denied) { http_reply_problem(r, 503, "unavailable", "out of memory", NULL); return; }
    const char *params[3] = { r->who.tenant_id, type, denied };
    gw_query(r, SQL_DEAD_DISCARD_ALL, 3, params, on_all_discarded);
    free(denied);
}
