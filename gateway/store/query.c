/*
 * query.c - a request's PostgreSQL statements (see query.h).
 */
#include <stdlib.h>
#include <string.h>

#include "query.h"
#include "http.h"
#include "log.h"
#include "pg_async.h"

typedef struct query_call {
    gw_req *r;
    gw_query_fn fn;
} query_call;

static void on_done(PGresult *res, const char *err, const char *sqlstate, void *arg)
{
    query_call *c = arg;
    gw_req *r = c->r;
    gw_query_fn fn = c->fn;
    free(c);
    gw_req_log_context(r);
    fn(r, res, err, sqlstate);
    gw_req_release(r);
    log_set_context(NULL, NULL);
}

static int send_query(gw_req *r, const char *sql, int nparams, const char *const *values,
                      bool prepared, gw_query_fn fn)
{
    query_call *c = malloc(sizeof *c);
    if (!c) {
        http_reply_problem(r, 503, "unavailable", "out of memory", NULL);
        return -1;
    }
    c->r = r;
    c->fn = fn;
    gw_req_hold(r);
    gw_req_defer(r);
    /* An authenticated request's statement runs as its tenant, so
     * row-level security holds it to that tenant's rows even if its WHERE
     * forgot to; anything else (health) runs as no tenant and sees none. */
    pg_send_opts opts = { .tenant = r->authenticated ? r->who.tenant_id : NULL,
                          .prepared = prepared };
    if (pg_pool_send(r->thr->pg, sql, nparams, values, &opts, on_done, c) != 0) {
        free(c);
        http_set_header(r, "Retry-After", "1");
        http_reply_problem(r, 503, "database-unavailable",
                           "the database is not reachable right now; retry shortly", NULL);
        gw_req_release(r);
        return -1;
    }
    return 0;
}

int gw_query(gw_req *r, const char *sql, int nparams, const char *const *values,
             gw_query_fn fn)
{
    return send_query(r, sql, nparams, values, false, fn);
}

int gw_query_static(gw_req *r, const char *sql, int nparams, const char *const *values,
                    gw_query_fn fn)
{
    return send_query(r, sql, nparams, values, true, fn);
}

void gw_reply_db_error(gw_req *r, const char *err, const char *sqlstate)
{
    if (!sqlstate || !*sqlstate || strncmp(sqlstate, "08", 2) == 0 ||
        strcmp(sqlstate, "57P01") == 0) {
        http_set_header(r, "Retry-After", "1");
        http_reply_problem(r, 503, "database-unavailable",
                           "the database is not reachable right now; retry shortly", NULL);
        return;
    }
    log_error("database statement failed: %s (SQLSTATE %s)", err, sqlstate);
    http_reply_problem(r, 500, "internal", "the request failed inside the gateway", NULL);
}
