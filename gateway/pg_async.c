/*
 * pg_async.c - PostgreSQL on a gateway event loop (see pg_async.h).
 *
 * Every connection is driven by libpq's non-blocking API: PQconnectStart
 * and PQconnectPoll to connect, then pipeline mode with one sync point per
 * query. Per query, libpq hands back its result(s), then a NULL, then the
 * PGRES_PIPELINE_SYNC of its sync point; the query is done at that sync.
 * A query sent for a tenant (pg_pool_query_as) is two statements before
 * its one sync, set_config(tenant, local) and the query itself: they run
 * in one implicit transaction, so the setting holds for exactly that
 * statement, at no extra round trip. The set_config's own row is dropped;
 * were it to fail, its error is what the caller gets.
 * A connection that breaks fails its queries at once and reconnects with
 * exponential backoff, so a database outage never blocks or spins a loop.
 */
#include <stdlib.h>
#include <string.h>
#include <stdio.h>

#include "pg_async.h"
#include "log.h"

#define PG_MAX_IN_FLIGHT_PER_CONN 4096
#define PG_BACKOFF_MIN_MS 100
#define PG_BACKOFF_MAX_MS 5000

enum { CONN_DOWN, CONN_CONNECTING, CONN_READY };
enum { STAGE_RESULT, STAGE_SYNC };

typedef struct pg_query {
    pg_done_fn done;
    void *arg;
    PGresult *res;          /* last result of the query, if any */
    int stage;
    int statements_left;    /* statements before the sync whose NULL is due */
    struct pg_query *next;
} pg_query;

typedef struct pg_conn {
    pg_pool *pool;
    PGconn *conn;
    int state;
    struct event *io;       /* socket readiness */
    int io_fd;
    short io_what;
    struct event *retry;    /* reconnect timer */
    int backoff_ms;
    pg_query *head, *tail;  /* sent, awaiting results, in order */
    int in_flight;
} pg_conn;

struct pg_pool {
    struct event_base *base;
    char *conninfo;
    int nconns;
    pg_conn *conns;
};

static void conn_start(pg_conn *c);
static void on_io(evutil_socket_t fd, short what, void *arg);

/* (Re)arms the socket event for the given interest, recreating it only
 * when the socket or the interest changed. */
static void conn_watch(pg_conn *c, short what)
{
    int fd = PQsocket(c->conn);
    if (c->io && c->io_fd == fd && c->io_what == what) return;
    if (c->io) { event_free(c->io); c->io = NULL; }
    if (fd < 0) return;
    c->io = event_new(c->pool->base, fd, what | EV_PERSIST, on_io, c);
    c->io_fd = fd;
    c->io_what = what;
    event_add(c->io, NULL);
}

/* Fails every query sent on c, closes it and schedules a reconnect. */
static void conn_fail(pg_conn *c, const char *why)
{
    char err[256];
    snprintf(err, sizeof err, "database connection lost: %s", why);
    if (c->state == CONN_READY)
        log_warn("postgres connection lost: %s", why);
    if (c->io) { event_free(c->io); c->io = NULL; }
    if (c->conn) { PQfinish(c->conn); c->conn = NULL; }
    c->state = CONN_DOWN;

    pg_query *q = c->head;
    c->head = c->tail = NULL;
    c->in_flight = 0;
    while (q) {
        pg_query *next = q->next;
        if (q->res) PQclear(q->res);
        q->done(NULL, err, "", q->arg);
        free(q);
        q = next;
    }

    struct timeval tv = { c->backoff_ms / 1000, (c->backoff_ms % 1000) * 1000 };
    evtimer_add(c->retry, &tv);
    c->backoff_ms *= 2;
    if (c->backoff_ms > PG_BACKOFF_MAX_MS) c->backoff_ms = PG_BACKOFF_MAX_MS;
}

/* Pushes buffered output; watches for writability while some remains. */
static void conn_flush(pg_conn *c)
{
    int r = PQflush(c->conn);
    if (r < 0) { conn_fail(c, PQerrorMessage(c->conn)); return; }
    conn_watch(c, r == 1 ? (EV_READ | EV_WRITE) : EV_READ);
}

/* Hands a finished query its result (or error) and frees it. */
static void query_complete(pg_query *q)
{
    PGresult *res = q->res;
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (res && (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)) {
        q->done(res, NULL, NULL, q->arg);
    } else {
        char err[512];
        const char *msg = res ? PQresultErrorMessage(res) : "no result";
        const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
        snprintf(err, sizeof err, "%s", msg);
        size_t n = strlen(err);
        while (n && (err[n - 1] == '\n' || err[n - 1] == ' ')) err[--n] = '\0';
        q->done(NULL, err, state ? state : "", q->arg);
    }
    if (res) PQclear(res);
    free(q);
}

/* Reads every complete result libpq has and completes queries in order. */
static void conn_drain(pg_conn *c)
{
    if (!PQconsumeInput(c->conn)) { conn_fail(c, PQerrorMessage(c->conn)); return; }
    while (c->head && !PQisBusy(c->conn)) {
        pg_query *q = c->head;
        PGresult *res = PQgetResult(c->conn);
        if (q->stage == STAGE_RESULT) {
            if (!res) {
                if (--q->statements_left <= 0) q->stage = STAGE_SYNC;
                continue;
            }
            /* A failed tenant setting is the answer; the aborted statement
             * after it says nothing more. */
            if (q->res && PQresultStatus(q->res) == PGRES_FATAL_ERROR) {
                PQclear(res);
                continue;
            }
            if (q->res) PQclear(q->res);
            q->res = res;
            continue;
        }
        if (!res) break; /* sync not parsed yet; more input will come */
        if (PQresultStatus(res) != PGRES_PIPELINE_SYNC) {
            PQclear(res); /* stray result (cannot happen with one statement per sync) */
            continue;
        }
        PQclear(res);
        c->head = q->next;
        if (!c->head) c->tail = NULL;
        c->in_flight--;
        query_complete(q);
        if (c->state != CONN_READY) return; /* a callback's query failed it */
    }
}

static void on_connected(pg_conn *c)
{
    if (PQsetnonblocking(c->conn, 1) != 0 || PQenterPipelineMode(c->conn) != 1) {
        conn_fail(c, PQerrorMessage(c->conn));
        return;
    }
    c->state = CONN_READY;
    c->backoff_ms = PG_BACKOFF_MIN_MS;
    log_debug("postgres connection ready");
    conn_watch(c, EV_READ);
}

static void on_connect_progress(pg_conn *c)
{
    switch (PQconnectPoll(c->conn)) {
    case PGRES_POLLING_READING: conn_watch(c, EV_READ); break;
    case PGRES_POLLING_WRITING: conn_watch(c, EV_WRITE); break;
    case PGRES_POLLING_OK:      on_connected(c); break;
    default:                    conn_fail(c, PQerrorMessage(c->conn)); break;
    }
}

static void on_io(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    pg_conn *c = arg;
    if (c->state == CONN_CONNECTING) { on_connect_progress(c); return; }
    if (c->state != CONN_READY) return;
    if (what & EV_WRITE) {
        conn_flush(c);
        if (c->state != CONN_READY) return;
    }
    if (what & EV_READ) conn_drain(c);
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd; (void)what;
    conn_start(arg);
}

static void conn_start(pg_conn *c)
{
    c->conn = PQconnectStart(c->pool->conninfo);
    if (!c->conn || PQstatus(c->conn) == CONNECTION_BAD) {
        const char *why = c->conn ? PQerrorMessage(c->conn) : "out of memory";
        log_warn("postgres connect failed: %s", why);
        conn_fail(c, why);
        return;
    }
    c->state = CONN_CONNECTING;
    conn_watch(c, EV_WRITE);
}

pg_pool *pg_pool_new(struct event_base *base, const char *conninfo, int nconns)
{
    pg_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->base = base;
    p->conninfo = strdup(conninfo);
    p->nconns = nconns > 0 ? nconns : 1;
    p->conns = calloc((size_t)p->nconns, sizeof *p->conns);
    if (!p->conninfo || !p->conns) { free(p->conninfo); free(p->conns); free(p); return NULL; }
    for (int i = 0; i < p->nconns; i++) {
        pg_conn *c = &p->conns[i];
        c->pool = p;
        c->io_fd = -1;
        c->backoff_ms = PG_BACKOFF_MIN_MS;
        c->retry = evtimer_new(base, on_retry, c);
        conn_start(c);
    }
    return p;
}

void pg_pool_free(pg_pool *p)
{
    if (!p) return;
    for (int i = 0; i < p->nconns; i++) {
        pg_conn *c = &p->conns[i];
        c->state = CONN_DOWN;
        conn_fail(c, "gateway shutting down");
        evtimer_del(c->retry);
        event_free(c->retry);
    }
    free(p->conns);
    free(p->conninfo);
    free(p);
}

/* The ready connection with the fewest queries in flight, or NULL. */
static pg_conn *pool_pick(pg_pool *p)
{
    pg_conn *best = NULL;
    for (int i = 0; i < p->nconns; i++) {
        pg_conn *c = &p->conns[i];
        if (c->state != CONN_READY || c->in_flight >= PG_MAX_IN_FLIGHT_PER_CONN) continue;
        if (!best || c->in_flight < best->in_flight) best = c;
    }
    return best;
}

static const char SQL_SET_TENANT[] = "SELECT set_config('agentgate.tenant_id', $1, true)";

/* Sends sql (after the tenant setting when tenant is not NULL) and one
 * sync on the least busy connection. */
static int pool_send(pg_pool *p, const char *tenant, const char *sql, int nparams,
                     const char *const *values, pg_done_fn done, void *arg)
{
    pg_conn *c = pool_pick(p);
    if (!c) return -1;
    pg_query *q = calloc(1, sizeof *q);
    if (!q) return -1;
    q->done = done;
    q->arg = arg;
    q->stage = STAGE_RESULT;
    q->statements_left = tenant ? 2 : 1;
    const char *tv[1] = { tenant };
    if ((tenant && PQsendQueryParams(c->conn, SQL_SET_TENANT, 1, NULL, tv, NULL, NULL, 0) != 1) ||
        PQsendQueryParams(c->conn, sql, nparams, NULL, values, NULL, NULL, 0) != 1 ||
        PQpipelineSync(c->conn) != 1) {
        log_warn("postgres send failed: %s", PQerrorMessage(c->conn));
        free(q);
        conn_fail(c, PQerrorMessage(c->conn));
        return -1;
    }
    if (c->tail) c->tail->next = q; else c->head = q;
    c->tail = q;
    c->in_flight++;
    conn_flush(c);
    return 0;
}

int pg_pool_query(pg_pool *p, const char *sql, int nparams,
                  const char *const *values, pg_done_fn done, void *arg)
{
    return pool_send(p, NULL, sql, nparams, values, done, arg);
}

int pg_pool_query_as(pg_pool *p, const char *tenant, const char *sql, int nparams,
                     const char *const *values, pg_done_fn done, void *arg)
{
    /* No tenant: nothing to set. The gateway never sets one for longer
     * than a transaction, so none is left over on the connection. */
    if (!tenant || !*tenant) tenant = NULL;
    return pool_send(p, tenant, sql, nparams, values, done, arg);
}

bool pg_pool_ready(const pg_pool *p)
{
    for (int i = 0; i < p->nconns; i++)
        if (p->conns[i].state == CONN_READY) return true;
    return false;
}

int pg_pool_in_flight(const pg_pool *p)
{
    int n = 0;
    for (int i = 0; i < p->nconns; i++) n += p->conns[i].in_flight;
    return n;
}
