/*
 * query.h - running a PostgreSQL statement on behalf of a request: the
 * request is held until the answer comes, and a database that cannot take
 * the statement is answered 503 with Retry-After.
 */
#ifndef AG_QUERY_H
#define AG_QUERY_H

#include <libpq-fe.h>
#include "gateway.h"
#include "pg_async.h"

/* Receives the statement's result (NULL on error, with err and sqlstate).
 * Called even when the client has gone, so work already committed can be
 * finished; replies are then silently dropped. */
typedef void (*gw_query_fn)(gw_req *r, PGresult *res, const char *err,
                            const char *sqlstate);

/*
 * Sends sql with text parameters on r's thread pool. Returns 0, or answers
 * 503 and returns -1 when the statement cannot be sent. fn may run before
 * this returns when the connection breaks while sending: callers do
 * nothing with r after a 0 return.
 */
int gw_query(gw_req *r, const char *sql, int nparams, const char *const *values,
             gw_query_fn fn);

/*
 * As gw_query, but sql is prepared once per database connection and then
 * only executed (see pg_send_opts.prepared): for the fixed statements a
 * loaded gateway sends often. sql must have static storage duration.
 */
int gw_query_static(gw_req *r, const char *sql, int nparams, const char *const *values,
                    gw_query_fn fn);

/* Answers a failed statement: 503 for an unreachable database, else 500. */
void gw_reply_db_error(gw_req *r, const char *err, const char *sqlstate);

#endif
