/*
 * job_batch.c - group commit of job submissions (see job_batch.h).
 *
 * The first job of a loop turn activates a zero-delay event; libevent runs
 * it after the callbacks already due in that turn, so every submission
 * parsed in the turn joins the batch. The batch goes out as one statement
 * over arrays, one array per column, and the answer is matched back to the
 * requests by ordinality. A batch may hold several tenants' jobs: the
 * statement is a call of jobs_submit_rows, which sets each tenant in turn
 * for its rows, so row-level security checks them all and the batch stays
 * one transaction.
 *
 * At most as many batches as the pool has connections are in flight at
 * once; submissions that arrive meanwhile wait for one to come back and
 * then leave together. So an idle gateway sends a lone job at once, and a
 * loaded one sends fewer, larger batches - the cost per job falls as load
 * rises instead of PostgreSQL drowning in one small transaction per turn.
 * A batch leaves regardless when it reaches JOB_BATCH_MAX rows.
 *
 * A group (POST /v1/jobs/batch) is sent at once as a statement of its
 * own, never split over two nor mixed with other requests' rows, so that
 * its jobs are inserted all together or not at all.
 *
 * The statement is prepared once per connection and answers in binary:
 * per row only what the insert decided (created_at, run_at as stored, the
 * payload as jsonb prints it), from which the job's JSON is rendered here
 * exactly as job_json() would (job_json_queued), instead of by
 * PostgreSQL per row.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "job_batch.h"
#include "job_json.h"
#include "http.h"
#include "log.h"
#include "pg_array.h"
#include "pg_async.h"

#define JOB_BATCH_MAX 1024

enum {
    COL_ID, COL_TENANT, COL_TYPE, COL_PRIORITY, COL_PAYLOAD, COL_MAX_ATTEMPTS,
    COL_TIMEOUT, COL_CREATED_BY, COL_REQUEST_ID, COL_TRACEPARENT, COL_EVENT, COL_RUN_AT,
    COL_RETRY_OF, COL_WEBHOOK, NCOLS
};

/* jobs_submit_rows (sql/migrations/014_retry_dead_letters.sql) inserts each
 * tenant's rows under that tenant's row-level security setting, all in
 * this one statement's transaction. */
static const char SQL_BATCH_INSERT[] =
    "SELECT ord, o_created_at, o_run_at, o_payload FROM jobs_submit_rows($1::uuid[],"
    " $2::text[], $3::text[], $4::int[], $5::jsonb[], $6::int[], $7::int[], $8::text[],"
    " $9::text[], $10::text[], $11::text[], $12::bigint[], $13::uuid[], $14::text[])";

/* An empty value of these columns is sent as NULL (a plain submission
 * retries nothing; a job without a webhook has none); every other
 * column's text is sent as it is. */
static bool null_when_empty(int col) { return col == COL_RETRY_OF || col == COL_WEBHOOK; }

/* PostgreSQL's binary timestamps count microseconds from 2000-01-01 UTC. */
#define PG_EPOCH_OFFSET_US 946684800000000LL

/* A job waiting for its batch: every column's text in one allocation
 * (cols[c] points into it), with its length, and its size quoted as an
 * array element. */
typedef struct batch_entry {
    gw_req *r;
    job_batch_fn done;
    void *arg;
    char *cols[NCOLS];
    unsigned lens[NCOLS];
    unsigned quoted[NCOLS];
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
    free(e->cols[0]);       /* the one allocation behind every column */
    memset(e->cols, 0, sizeof e->cols);
}

/* The column col of the n entries as one array literal, sized exactly
 * from the quoted sizes counted when each job was added. */
static char *array_literal(const batch_entry *entries, int n, int col)
{
    size_t size = 3;        /* braces and NUL */
    for (int i = 0; i < n; i++) size += entries[i].quoted[col] + 1;
    char *out = malloc(size), *o = out;
    if (!out) return NULL;
    *o++ = '{';
    for (int i = 0; i < n; i++) {
        if (i) *o++ = ',';
        if (null_when_empty(col) && entries[i].lens[col] == 0) {
            memcpy(o, "NULL", 4);
            o += 4;
            continue;
        }
        o += pg_array_element_write(o, entries[i].cols[col], entries[i].lens[col]);
    }
    *o++ = '}';
    *o = '\0';
    return out;
}

/* A binary int8 or timestamptz column: 0, or -1 when NULL or malformed. */
static int get_int8(const PGresult *res, int row, int col, long long *out)
{
    if (PQgetisnull(res, row, col) || PQgetlength(res, row, col) != 8) return -1;
    const unsigned char *p = (const unsigned char *)PQgetvalue(res, row, col);
    unsigned long long v = 0;
    for (int i = 0; i < 8; i++) v = (v << 8) | p[i];
    *out = (long long)v;
    return 0;
}

/* Renders row i of the answer as the job's JSON and hands it to its
 * request; false when the row is not one of this batch's. */
static bool answer_row(batch_send *s, const PGresult *res, int i, bool *answered)
{
    long long ord, created, run_at = 0;
    if (get_int8(res, i, 0, &ord) != 0 || ord < 1 || ord > s->n || answered[ord - 1] ||
        get_int8(res, i, 1, &created) != 0 || PQgetisnull(res, i, 3))
        return false;
    bool has_run_at = !PQgetisnull(res, i, 2);
    if (has_run_at && get_int8(res, i, 2, &run_at) != 0) return false;
    batch_entry *e = &s->entries[ord - 1];
    queued_job j = {
        .id = e->cols[COL_ID], .type = e->cols[COL_TYPE],
        .priority = strtoll(e->cols[COL_PRIORITY], NULL, 10),
        .max_attempts = strtoll(e->cols[COL_MAX_ATTEMPTS], NULL, 10),
        .timeout_s = strtoll(e->cols[COL_TIMEOUT], NULL, 10),
        .payload = PQgetvalue(res, i, 3), .payload_len = (size_t)PQgetlength(res, i, 3),
        .created_at_us = created + PG_EPOCH_OFFSET_US,
        .has_run_at = has_run_at, .run_at_us = run_at + PG_EPOCH_OFFSET_US,
        .retry_of = e->lens[COL_RETRY_OF] ? e->cols[COL_RETRY_OF] : NULL,
    };
    size_t len;
    char *json = job_json_queued(&j, &len);
    if (!json) return false;
    answered[ord - 1] = true;
    gw_req_log_context(e->r);
    e->done(e->r, e->arg, json, len, NULL, NULL);
    free(json);
    return true;
}

static void answer_all(batch_send *s, PGresult *res, const char *err, const char *sqlstate)
{
    int rows = res && PQnfields(res) == 4 ? PQntuples(res) : 0;
    bool *answered = calloc((size_t)s->n, sizeof *answered);
    for (int i = 0; i < rows && answered; i++)
        answer_row(s, res, i, answered);
    for (int i = 0; i < s->n; i++) {
        batch_entry *e = &s->entries[i];
        if (!answered || !answered[i]) {
            gw_req_log_context(e->r);
            e->done(e->r, e->arg, NULL, 0, err ? err : "the job was not inserted",
                    sqlstate ? sqlstate : "XX000");
        }
        entry_clear(e);
        gw_req_release(e->r);
    }
    free(answered);
    free(s->entries);
    free(s);
    log_set_context(NULL, NULL);
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

/* Sends s's entries as one statement, or answers them all at once when
 * it cannot be sent. */
static void batch_send_entries(job_batch *b, batch_send *s)
{
    char *arrays[NCOLS];
    bool ok = true;
    for (int c = 0; c < NCOLS; c++) {
        arrays[c] = array_literal(s->entries, s->n, c);
        if (!arrays[c]) ok = false;
    }
    const char *params[NCOLS];
    for (int c = 0; c < NCOLS; c++) params[c] = arrays[c];
    pg_send_opts opts = { .prepared = true, .result_format = 1 };
    if (!ok || pg_pool_send(b->thr->pg, SQL_BATCH_INSERT, NCOLS, params, &opts,
                            on_batch_done, s) != 0)
        answer_all(s, NULL, "database connection lost: no connection is ready", "");
    else
        b->in_flight++;
    for (int c = 0; c < NCOLS; c++) free(arrays[c]);
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
    batch_send_entries(b, s);
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

/* Copies the columns into one allocation for e; -1 when out of memory. */
static int entry_fill(batch_entry *e, const char *const *vals)
{
    size_t total = 0;
    for (int c = 0; c < NCOLS; c++) {
        size_t len = strlen(vals[c]);
        e->lens[c] = (unsigned)len;
        e->quoted[c] = null_when_empty(c) && len == 0
                       ? 4 : (unsigned)pg_array_element_size(vals[c], len);
        total += len + 1;
    }
    char *buf = malloc(total);
    if (!buf) return -1;
    for (int c = 0; c < NCOLS; c++) {
        memcpy(buf, vals[c], e->lens[c] + 1);
        e->cols[c] = buf;
        buf += e->lens[c] + 1;
    }
    return 0;
}

/* Fills e with row for request r; -1 when out of memory (e is then empty). */
static int entry_of_row(batch_entry *e, gw_req *r, const job_row *row)
{
    memset(e, 0, sizeof *e);
    char priority[24], max_attempts[24], timeout[24], run_at[24];
    snprintf(priority, sizeof priority, "%lld", row->priority);
    snprintf(max_attempts, sizeof max_attempts, "%lld", row->max_attempts);
    snprintf(timeout, sizeof timeout, "%lld", row->timeout_s);
    snprintf(run_at, sizeof run_at, "%lld", row->run_at_ms);
    const char *vals[NCOLS] = {
        [COL_ID] = row->id, [COL_TENANT] = r->who.tenant_id, [COL_TYPE] = row->type,
        [COL_PRIORITY] = priority, [COL_PAYLOAD] = row->payload_json,
        [COL_MAX_ATTEMPTS] = max_attempts, [COL_TIMEOUT] = timeout,
        [COL_CREATED_BY] = r->who.sub, [COL_REQUEST_ID] = r->request_id,
        [COL_TRACEPARENT] = r->traceparent, [COL_EVENT] = row->event_body,
        [COL_RUN_AT] = run_at, [COL_RETRY_OF] = row->retry_of ? row->retry_of : "",
        [COL_WEBHOOK] = row->webhook ? row->webhook : "",
    };
    return entry_fill(e, vals);
}

void job_batch_add(job_batch *b, gw_req *r, const job_row *row, job_batch_fn done, void *arg)
{
    if (b->n % 16 == 0) {
        batch_entry *grown = realloc(b->entries, (size_t)(b->n + 16) * sizeof *grown);
        if (!grown) { done(r, arg, NULL, 0, "out of memory", "53200"); return; }
        b->entries = grown;
    }
    batch_entry *e = &b->entries[b->n];
    if (entry_of_row(e, r, row) != 0) {
        done(r, arg, NULL, 0, "out of memory", "53200");
        return;
    }
    e->r = r;
    e->done = done;
    e->arg = arg;
    gw_req_hold(r);
    gw_req_defer(r);
    if (++b->n == 1 && b->in_flight < b->max_in_flight) event_active(b->flush_ev, EV_TIMEOUT, 1);
    if (b->n >= JOB_BATCH_MAX) batch_flush(b);
}

int job_batch_send_group(job_batch *b, gw_req *r, const job_row *rows, int n,
                         job_batch_fn done, void *const *args)
{
    if (n < 1 || n > JOB_BATCH_MAX || b->closed) return -1;
    batch_send *s = malloc(sizeof *s);
    batch_entry *entries = calloc((size_t)n, sizeof *entries);
    if (!s || !entries) { free(s); free(entries); return -1; }
    for (int i = 0; i < n; i++) {
        if (entry_of_row(&entries[i], r, &rows[i]) != 0) {
            for (int k = 0; k < i; k++) entry_clear(&entries[k]);
            free(entries);
            free(s);
            return -1;
        }
        entries[i].r = r;
        entries[i].done = done;
        entries[i].arg = args[i];
        gw_req_hold(r);
    }
    gw_req_defer(r);
    s->b = b;
    s->entries = entries;
    s->n = n;
    batch_send_entries(b, s);
    return 0;
}
