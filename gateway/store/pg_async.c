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
 *
 * A statement sent as prepared (pg_pool_send) is parsed and planned once
 * per connection: the first call on a connection pipelines its Parse in
 * front of the execution, later calls only execute it. The tenant setting
 * is always sent that way. Statements are known by the address of their
 * text, so nothing is hashed or compared per call; a connection forgets
 * them all when it reconnects, and forgets one whose Parse failed, so the
 * next call tries again under a new name.
 */
#include <stdlib.h>
#include <string.h>
#include <stdio.h>

#include "pg_async.h"
#include "log.h"

#define PG_MAX_IN_FLIGHT_PER_CONN 4096
#define PG_BACKOFF_MIN_MS 100
#define PG_BACKOFF_MAX_MS 5000
/* Prepared statements per connection; beyond this they are sent unnamed. */
#define PG_PREPARED_MAX 32
/* Statements before one sync: a Parse and an execution for the tenant
 * setting and for the query. */
#define PG_STATEMENTS_MAX 4

enum { CONN_DOWN, CONN_CONNECTING, CONN_READY };
enum { STAGE_RESULT, STAGE_SYNC };

typedef struct pg_query {
    pg_done_fn done;
    void *arg;
    PGresult *res;          /* last result of the query, if any */
    int stage;
    int statements;         /* statements before the sync */
    int statements_left;    /* statements before the sync whose NULL is due */
    /* Per statement: the prepared slot its Parse fills, or -1 for an
     * execution; a failed Parse empties its slot. */
    signed char parse_slot[PG_STATEMENTS_MAX];
    struct pg_query *next;
} pg_query;

/* A statement prepared on one connection: its text's address and name. */
typedef struct pg_prepared {
    const char *sql;        /* NULL: free slot */
    char name[16];
} pg_prepared;

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
    pg_prepared prepared[PG_PREPARED_MAX];
    unsigned prepared_seq;  /* names are never reused on one session */
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
    memset(c->prepared, 0, sizeof c->prepared);   /* gone with the session */

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
            int stmt = q->statements - q->statements_left;
            if (stmt >= 0 && stmt < PG_STATEMENTS_MAX && q->parse_slot[stmt] >= 0
                && PQresultStatus(res) != PGRES_COMMAND_OK)
                c->prepared[q->parse_slot[stmt]].sql = NULL;   /* prepare it again */
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
    /* While connecting, libpq may close its socket and open another (the
     * next host of a multi-host URL, or of a host's addresses), which can
     * get the same descriptor number; epoll forgot the old one when it was
     * closed, so the event is made anew at every step. */
    if (c->io) { event_free(c->io); c->io = NULL; }
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

/* The slot of sql prepared on c, or -1 (*fresh: a new slot whose Parse
 * the caller must send). -1 with *fresh false: no slot left, send it
 * unnamed. */
static int prepared_slot(pg_conn *c, const char *sql, bool *fresh)
{
    int free_slot = -1;
    *fresh = false;
    for (int i = 0; i < PG_PREPARED_MAX; i++) {
        if (c->prepared[i].sql == sql) return i;
        if (!c->prepared[i].sql && free_slot < 0) free_slot = i;
    }
    if (free_slot < 0) return -1;
    pg_prepared *ps = &c->prepared[free_slot];
    ps->sql = sql;
    snprintf(ps->name, sizeof ps->name, "ag%u", c->prepared_seq++);
    *fresh = true;
    return free_slot;
}

/* Queues one statement of q on c: Parse first when it is not prepared on
 * c yet, then its execution. Returns 0, or -1 when libpq refused. */
static int send_statement(pg_conn *c, pg_query *q, const char *sql, bool prepare,
                          int nparams, const char *const *values, const int *lengths,
                          const int *formats, int result_format)
{
    bool fresh = false;
    int slot = prepare ? prepared_slot(c, sql, &fresh) : -1;
    if (slot < 0) {
        q->parse_slot[q->statements++] = -1;
        return PQsendQueryParams(c->conn, sql, nparams, NULL, values, lengths, formats,
                                 result_format) == 1 ? 0 : -1;
    }
    const char *name = c->prepared[slot].name;
    if (fresh) {
        if (PQsendPrepare(c->conn, name, sql, 0, NULL) != 1) {
            c->prepared[slot].sql = NULL;
            return -1;
        }
        q->parse_slot[q->statements++] = (signed char)slot;
    }
    q->parse_slot[q->statements++] = -1;
    return PQsendQueryPrepared(c->conn, name, nparams, values, lengths, formats,
                               result_format) == 1 ? 0 : -1;
}

/* Sends sql (after the tenant setting when opts->tenant is set) and one
 * sync on the least busy connection. */
static int pool_send(pg_pool *p, const char *sql, int nparams, const char *const *values,
                     const pg_send_opts *opts, pg_done_fn done, void *arg)
{
    pg_conn *c = pool_pick(p);
    if (!c) return -1;
    pg_query *q = calloc(1, sizeof *q);
    if (!q) return -1;
    q->done = done;
    q->arg = arg;
    q->stage = STAGE_RESULT;
    const char *tv[1] = { opts->tenant };
    if ((opts->tenant &&
         send_statement(c, q, SQL_SET_TENANT, true, 1, tv, NULL, NULL, 0) != 0) ||
        send_statement(c, q, sql, opts->prepared, nparams, values, opts->lengths,
                       opts->formats, opts->result_format) != 0 ||
        PQpipelineSync(c->conn) != 1) {
        log_warn("postgres send failed: %s", PQerrorMessage(c->conn));
        free(q);
        conn_fail(c, PQerrorMessage(c->conn));
        return -1;
    }
    q->statements_left = q->statements;
    if (c->tail) c->tail->next = q; else c->head = q;
    c->tail = q;
    c->in_flight++;
    conn_flush(c);
    return 0;
}

int pg_pool_query(pg_pool *p, const char *sql, int nparams,
                  const char *const *values, pg_done_fn done, void *arg)
{
    pg_send_opts opts = { 0 };
    return pool_send(p, sql, nparams, values, &opts, done, arg);
}

int pg_pool_query_as(pg_pool *p, const char *tenant, const char *sql, int nparams,
                     const char *const *values, pg_done_fn done, void *arg)
{
    /* No tenant: nothing to set. The gateway never sets one for longer
     * than a transaction, so none is left over on the connection. */
    pg_send_opts opts = { .tenant = tenant && *tenant ? tenant : NULL };
    return pool_send(p, sql, nparams, values, &opts, done, arg);
}

int pg_pool_send(pg_pool *p, const char *sql, int nparams, const char *const *values,
                 const pg_send_opts *opts, pg_done_fn done, void *arg)
{
    pg_send_opts o = opts ? *opts : (pg_send_opts){ 0 };
    if (o.tenant && !*o.tenant) o.tenant = NULL;
    return pool_send(p, sql, nparams, values, &o, done, arg);
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
