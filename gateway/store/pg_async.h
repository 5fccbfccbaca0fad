/*
 * pg_async.h - PostgreSQL on a gateway event loop, never blocking it.
 *
 * Each loop thread owns a small pool of libpq connections in non-blocking
 * pipeline mode. A query is sent at once on the least busy connection with
 * its own sync point, so queries are pipelined yet each runs in its own
 * implicit transaction and an error in one never aborts another. Results
 * come back through a callback on the same loop thread.
 */
#ifndef AG_PG_ASYNC_H
#define AG_PG_ASYNC_H

#include <stdbool.h>
#include <libpq-fe.h>
#include <event2/event.h>

typedef struct pg_pool pg_pool;

/*
 * Called once per query on the loop thread. res is the query's result
 * (PGRES_TUPLES_OK or PGRES_COMMAND_OK), owned by the pool and cleared after
 * the callback returns; or NULL when the query failed, with err a one-line
 * reason and sqlstate the SQLSTATE ("" when the connection itself failed).
 */
typedef void (*pg_done_fn)(PGresult *res, const char *err, const char *sqlstate,
                           void *arg);

/* Creates a pool of nconns connections to conninfo, connecting in the
 * background on base (with backoff on failure). Returns NULL on allocation
 * failure only. */
pg_pool *pg_pool_new(struct event_base *base, const char *conninfo, int nconns);

/* Closes every connection; pending callbacks are called with an error. */
void pg_pool_free(pg_pool *pool);

/*
 * Sends sql with nparams text parameters (values[i] NULL for SQL NULL; the
 * values are copied before this returns). Returns 0, with done called later,
 * or -1 without calling done when no connection is up or too many queries
 * are already waiting.
 */
int pg_pool_query(pg_pool *pool, const char *sql, int nparams,
                  const char *const *values, pg_done_fn done, void *arg);

/*
 * As pg_pool_query, but the statement's transaction runs with the setting
 * agentgate.tenant_id = tenant, which PostgreSQL's row-level security
 * policies read: the statement sees and writes only that tenant's rows,
 * even when its own WHERE forgets the filter. tenant NULL or "": no tenant
 * (the policies then let no tenant row through). Costs no extra round trip.
 */
int pg_pool_query_as(pg_pool *pool, const char *tenant, const char *sql, int nparams,
                     const char *const *values, pg_done_fn done, void *arg);

/* How pg_pool_send sends a statement. Zeroed: as pg_pool_query. */
typedef struct pg_send_opts {
    /* Run as this tenant, as pg_pool_query_as does; NULL or "": none. */
    const char *tenant;
    /* Prepare sql once per connection (again after a reconnect) and then
     * only execute it: no parse and no plan per call. The statement is
     * known by its address, so sql must have static storage duration and
     * never change (a string literal or a static const array). */
    bool prepared;
    /* Per parameter: byte lengths and formats (0 text, 1 binary), as
     * PQsendQueryParams takes them; NULL: every parameter is text. */
    const int *lengths;
    const int *formats;
    /* 1: every result column in binary format; 0: text. */
    int result_format;
} pg_send_opts;

/*
 * Sends sql as opts says (NULL opts: as pg_pool_query). The values are
 * copied before this returns. Returns 0, with done called later, or -1
 * without calling done when no connection is up or too many queries are
 * already waiting.
 */
int pg_pool_send(pg_pool *pool, const char *sql, int nparams, const char *const *values,
                 const pg_send_opts *opts, pg_done_fn done, void *arg);

/* True when at least one connection is ready for queries. */
bool pg_pool_ready(const pg_pool *pool);

/* Queries sent and not yet answered, across the pool. */
int pg_pool_in_flight(const pg_pool *pool);

#endif
