/*
 * job_batch.c - group commit of job submissions (see job_batch.h).
 *
 * The first job of a loop turn activates a zero-delay event; libevent runs
 * it after the callbacks already due in that turn, so every submission
 * parsed in the turn joins the batch. The batch goes out as one statement
 * over arrays, one array per column, and the answer is matched back to the
 * requests by ordinality. A batch may hold several tenants' jobs: the
 * statement is a call of jobs_submit_batch, which sets each tenant in turn
 * for its rows, so row-level security checks them all and the batch stays
 * one transaction.
 *
 * At most as many batches as the pool has connections are in flight at
 * once; submissions that arrive meanwhile wait for one to come back and
 * then leave together. So an idle gateway sends a lone job at once, and a
 * loaded one sends fewer, larger batches - the cost per job falls as load
 * rises instead of PostgreSQL drowning in one small transaction per turn.
 * A batch leaves regardless when it reaches JOB_BATCH_MAX rows.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <event2/buffer.h>

#include "job_batch.h"
#include "http.h"
#include "log.h"

#define JOB_BATCH_MAX 1024

enum {
    COL_ID, COL_TENANT, COL_TYPE, COL_PRIORITY, COL_PAYLOAD, COL_MAX_ATTEMPTS,
    COL_TIMEOUT, COL_CREATED_BY, COL_REQUEST_ID, COL_TRACEPARENT, COL_EVENT, COL_RUN_AT,
    NCOLS
};

/* jobs_submit_batch (sql/006_security.sql) inserts each tenant's rows
 * under that tenant's row-level security setting, all in this one
 * statement's transaction. */
static const char SQL_BATCH_INSERT[] =
    "SELECT ord, job FROM jobs_submit_batch($1::uuid[], $2::text[], $3::text[], $4::int[],"
    " $5::jsonb[], $6::int[], $7::int[], $8::text[], $9::text[], $10::text[], $11::text[],"
    " $12::bigint[])";

typedef struct batch_entry {
    gw_req *r;
    job_batch_fn done;
    char *cols[NCOLS];
} batch_entry;

/* One statement in flight: its entries, answered together. */
typedef struct batch_send {
    struct job_batch *b;
    batch_entry *entries;
    int n;
} batch_send;

struct job_batch {
    gw_thread *thr;
    struct event *flush_ev;
    batch_entry *entries;
    int n;
    int in_flight;          /* statements sent and not answered yet */
    int max_in_flight;      /* the pool's connections */
    bool closed;            /* job_batch_free ran; freed by the last answer */
};

static void batch_flush(struct job_batch *b);

static void entry_clear(batch_entry *e)
{
    for (int c = 0; c < NCOLS; c++) free(e->cols[c]);
}

/* Appends s as one quoted element of a PostgreSQL array literal. */
static void array_add(struct evbuffer *buf, const char *s, bool first)
{
    if (!first) evbuffer_add(buf, ",", 1);
    evbuffer_add(buf, "\"", 1);
    for (const char *p = s; *p; ) {
        size_t run = strcspn(p, "\"\\");
        evbuffer_add(buf, p, run);
        p += run;
        if (*p) {
            char esc[2] = { '\\', *p++ };
            evbuffer_add(buf, esc, 2);
        }
    }
    evbuffer_add(buf, "\"", 1);
}

static char *array_literal(const batch_entry *entries, int n, int col)
{
    struct evbuffer *buf = evbuffer_new();
    if (!buf) return NULL;
    evbuffer_add(buf, "{", 1);
    for (int i = 0; i < n; i++) array_add(buf, entries[i].cols[col], i == 0);
    evbuffer_add(buf, "}", 2); /* the brace and a NUL */
    size_t len = evbuffer_get_length(buf);
    char *out = malloc(len);
    if (out) evbuffer_remove(buf, out, len);
    evbuffer_free(buf);
    return out;
}

static void answer_all(batch_send *s, PGresult *res, const char *err, const char *sqlstate)
{
    int rows = res ? PQntuples(res) : 0;
    bool *answered = calloc((size_t)s->n, sizeof *answered);
    for (int i = 0; i < rows && answered; i++) {
        long ord = strtol(PQgetvalue(res, i, 0), NULL, 10);
        if (ord < 1 || ord > s->n || answered[ord - 1]) continue;
        batch_entry *e = &s->entries[ord - 1];
        answered[ord - 1] = true;
        e->done(e->r, PQgetvalue(res, i, 1), (size_t)PQgetlength(res, i, 1), NULL, NULL);
    }
    for (int i = 0; i < s->n; i++) {
        batch_entry *e = &s->entries[i];
        if (!answered || !answered[i])
            e->done(e->r, NULL, 0, err ? err : "the job was not inserted", sqlstate ? sqlstate : "XX000");
        entry_clear(e);
        gw_req_release(e->r);
    }
    free(answered);
    free(s->entries);
    free(s);
}

static void on_batch_done(PGresult *res, const char *err, const char *sqlstate, void *arg)
{
    batch_send *s = arg;
    job_batch *b = s->b;
    answer_all(s, res, err, sqlstate);
    b->in_flight--;
    if (b->closed) {
        if (b->in_flight == 0) free(b);
        return;
    }
    if (b->n > 0) batch_flush(b);   /* what gathered while we waited */
}

static void batch_flush(job_batch *b)
{
    if (b->n == 0) return;
    batch_send *s = malloc(sizeof *s);
    if (!s) return;
    s->b = b;
    s->entries = b->entries;
    s->n = b->n;
    b->entries = NULL;
    b->n = 0;

    char *arrays[NCOLS];
    bool ok = true;
    for (int c = 0; c < NCOLS; c++) {
        arrays[c] = array_literal(s->entries, s->n, c);
        if (!arrays[c]) ok = false;
    }
    const char *params[NCOLS];
    for (int c = 0; c < NCOLS; c++) params[c] = arrays[c];
    if (!ok || pg_pool_query(b->thr->pg, SQL_BATCH_INSERT, NCOLS, params, on_batch_done, s) != 0)
        answer_all(s, NULL, "database connection lost: no connection is ready", "");
    else
        b->in_flight++;
    for (int c = 0; c < NCOLS; c++) free(arrays[c]);
}

static void on_flush(evutil_socket_t fd, short what, void *arg)
{
    (void)fd; (void)what;
    batch_flush(arg);
}

job_batch *job_batch_new(gw_thread *thr)
{
    job_batch *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->thr = thr;
    b->flush_ev = event_new(thr->base, -1, 0, on_flush, b);
    if (!b->flush_ev) { free(b); return NULL; }
    b->max_in_flight = thr->srv->cfg.pg_pool_size > 0 ? thr->srv->cfg.pg_pool_size : 1;
    return b;
}

void job_batch_free(job_batch *b)
{
    if (!b) return;
    event_free(b->flush_ev);
    if (b->n) {
        batch_send *s = malloc(sizeof *s);
        if (s) {
            s->entries = b->entries;
            s->n = b->n;
            s->b = b;
            answer_all(s, NULL, "gateway shutting down", "");
        }
    }
    /* Batches still in flight are answered when the pool closes; the last
     * answer frees b. */
    b->closed = true;
    if (b->in_flight == 0) free(b);
}

static char *format_ll(long long v)
{
    char buf[24];
    snprintf(buf, sizeof buf, "%lld", v);
    return strdup(buf);
}

void job_batch_add(job_batch *b, gw_req *r, const job_row *row, job_batch_fn done)
{
    if (b->n % 16 == 0) {
        batch_entry *grown = realloc(b->entries, (size_t)(b->n + 16) * sizeof *grown);
        if (!grown) { done(r, NULL, 0, "out of memory", "53200"); return; }
        b->entries = grown;
    }
    batch_entry *e = &b->entries[b->n];
    memset(e, 0, sizeof *e);
    e->cols[COL_ID] = strdup(row->id);
    e->cols[COL_TENANT] = strdup(r->who.tenant_id);
    e->cols[COL_TYPE] = strdup(row->type);
    e->cols[COL_PRIORITY] = format_ll(row->priority);
    e->cols[COL_PAYLOAD] = strdup(row->payload_json);
    e->cols[COL_MAX_ATTEMPTS] = format_ll(row->max_attempts);
    e->cols[COL_TIMEOUT] = format_ll(row->timeout_s);
    e->cols[COL_CREATED_BY] = strdup(r->who.sub);
    e->cols[COL_REQUEST_ID] = strdup(r->request_id);
    e->cols[COL_TRACEPARENT] = strdup(r->traceparent);
    e->cols[COL_EVENT] = strdup(row->event_body);
    e->cols[COL_RUN_AT] = format_ll(row->run_at_ms);
    for (int c = 0; c < NCOLS; c++) {
        if (!e->cols[c]) {
            entry_clear(e);
            done(r, NULL, 0, "out of memory", "53200");
            return;
        }
    }
    e->r = r;
    e->done = done;
    gw_req_hold(r);
    gw_req_defer(r);
    if (++b->n == 1 && b->in_flight < b->max_in_flight) event_active(b->flush_ev, EV_TIMEOUT, 1);
    if (b->n >= JOB_BATCH_MAX) batch_flush(b);
}
