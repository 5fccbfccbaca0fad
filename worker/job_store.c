/*
 * job_store.c - the worker's PostgreSQL connections and statements
 * (see job_store.h).
 *
 * Every write that changes a job after its claim names the attempt that
 * claimed it (attempts=$n AND status='running'), and stores its event in
 * the same statement through a data-modifying CTE: the event row exists
 * exactly when the job row moved, and an attempt that lost the job moves
 * nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "job_store.h"
#include "log.h"

/* ---------------------------------------------------------------------------
 * Connections
 * ------------------------------------------------------------------------- */

void pg_link_init(pg_link *l, const char *url, const char *who, int connect_timeout_s)
{
    memset(l, 0, sizeof *l);
    l->url = url;
    l->who = who;
    l->connect_timeout_s = connect_timeout_s > 0 ? connect_timeout_s : 5;
    backoff_reset(&l->bo);
}

/* The last line of a libpq message, without its trailing newline. */
static const char *pg_message(const char *msg, char *buf, size_t size)
{
    snprintf(buf, size, "%s", msg ? msg : "");
    size_t n = strlen(buf);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    for (char *p = buf; *p; p++)
        if (*p == '\n')
            *p = ' ';
    return buf;
}

/* One connection attempt. Settings in the URL win over these defaults,
 * because dbname (which carries the URL) is processed last. */
static int pg_link_attempt(pg_link *l)
{
    char timeout[16];
    snprintf(timeout, sizeof timeout, "%d", l->connect_timeout_s);
    const char *keys[] = { "connect_timeout", "application_name", "keepalives",
                           "keepalives_idle", "keepalives_interval",
                           "keepalives_count", "dbname", NULL };
    const char *vals[] = { timeout, "agentgate-worker", "1", "10", "5", "3",
                           l->url, NULL };

    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (c != NULL && PQstatus(c) == CONNECTION_OK) {
        if (l->down_logged)
            log_info("%s: connected to PostgreSQL again", l->who);
        l->conn = c;
        l->down_logged = false;
        backoff_reset(&l->bo);
        return 0;
    }

    char msg[512];
    long long delay = backoff_failed(&l->bo, clock_mono_ms());
    log_warn("%s: cannot connect to PostgreSQL (%s); retrying in %lld ms", l->who,
             pg_message(c ? PQerrorMessage(c) : "out of memory", msg, sizeof msg), delay);
    l->down_logged = true;
    PQfinish(c);
    return -1;
}

PGconn *pg_link_wait(pg_link *l, stop_fn stop, void *arg)
{
    while (l->conn == NULL) {
        if (!backoff_wait(&l->bo, stop, arg))
            return NULL;
        pg_link_attempt(l);
    }
    return l->conn;
}

PGconn *pg_link_try(pg_link *l)
{
    if (l->conn == NULL && backoff_due(&l->bo, clock_mono_ms()))
        pg_link_attempt(l);
    return l->conn;
}

void pg_link_drop(pg_link *l)
{
    if (l->conn == NULL)
        return;
    log_warn("%s: PostgreSQL connection lost; reconnecting", l->who);
    PQfinish(l->conn);
    l->conn = NULL;
    l->down_logged = true;
    /* The first retry is immediate: a server restart usually is quick. */
    backoff_reset(&l->bo);
}

void pg_link_close(pg_link *l)
{
    PQfinish(l->conn);
    l->conn = NULL;
}

bool store_conn_broken(PGconn *conn)
{
    return conn == NULL || PQstatus(conn) == CONNECTION_BAD;
}

/* ---------------------------------------------------------------------------
 * Statements
 * ------------------------------------------------------------------------- */

static PGresult *exec_params(PGconn *conn, const char *sql, int n, const char *const *vals)
{
    return PQexecParams(conn, sql, n, NULL, vals, NULL, NULL, 0);
}

static void log_statement_error(const char *what, PGconn *conn, const PGresult *res)
{
    char msg[512];
    const char *m = res ? PQresultErrorMessage(res) : "";
    if (m == NULL || m[0] == '\0')
        m = PQerrorMessage(conn);
    log_error("%s failed: %s", what, pg_message(m, msg, sizeof msg));
}

static bool is_unique_violation(const PGresult *res)
{
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    return state != NULL && strcmp(state, "23505") == 0;
}

/* Classifies the result of an INSERT ... SELECT FROM <fenced update>. */
static store_rc fenced_write_rc(const char *what, PGconn *conn, PGresult *res)
{
    store_rc rc;
    if (res != NULL && PQresultStatus(res) == PGRES_COMMAND_OK)
        rc = strcmp(PQcmdTuples(res), "0") == 0 ? STORE_NONE : STORE_OK;
    else if (res != NULL && is_unique_violation(res))
        rc = STORE_DUP;
    else {
        log_statement_error(what, conn, res);
        rc = STORE_ERROR;
    }
    PQclear(res);
    return rc;
}

static char *dup_or_null(const PGresult *res, int col)
{
    if (PQgetisnull(res, 0, col))
        return NULL;
    return strdup(PQgetvalue(res, 0, col));
}

/* Copies column col into dst (size bytes); -1 when it does not fit. */
static int copy_col(const PGresult *res, int col, char *dst, size_t size)
{
    const char *v = PQgetvalue(res, 0, col);
    size_t len = (size_t)PQgetlength(res, 0, col);
    if (len >= size)
        return -1;
    memcpy(dst, v, len + 1);
    return 0;
}

void claimed_job_free(claimed_job *job)
{
    free(job->payload);
    free(job->request_id);
    free(job->traceparent);
    job->payload = job->request_id = job->traceparent = NULL;
}

static const char sql_claim[] =
    "UPDATE jobs SET status='running', attempts=attempts+1, started_at=now(), "
    "heartbeat_at=now(), worker_id=$2 "
    "WHERE id=$1 AND status='queued' AND cancel_requested_at IS NULL "
    "RETURNING tenant_id, type, payload::text, attempts, max_attempts, timeout_s, "
    "last_event_id, created_by, request_id, traceparent";

store_rc store_claim(PGconn *conn, const char *id, const char *worker_id,
                     claimed_job *out)
{
    memset(out, 0, sizeof *out);
    const char *vals[2] = { id, worker_id };
    PGresult *res = exec_params(conn, sql_claim, 2, vals);
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        log_statement_error("claim", conn, res);
        PQclear(res);
        return STORE_ERROR;
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        return STORE_NONE;
    }

    if (copy_col(res, 0, out->tenant_id, sizeof out->tenant_id) < 0
        || copy_col(res, 1, out->type, sizeof out->type) < 0) {
        log_error("claim of job %s: tenant or type too long for the worker", id);
        PQclear(res);
        return STORE_ERROR;
    }
    out->payload = strdup(PQgetvalue(res, 0, 2));
    out->attempt = atoi(PQgetvalue(res, 0, 3));
    out->max_attempts = atoi(PQgetvalue(res, 0, 4));
    out->timeout_s = atoi(PQgetvalue(res, 0, 5));
    out->last_event_id = strtoll(PQgetvalue(res, 0, 6), NULL, 10);
    /* created_by only labels the run; a long one is cut, not refused. */
    snprintf(out->created_by, sizeof out->created_by, "%s", PQgetvalue(res, 0, 7));
    out->request_id = dup_or_null(res, 8);
    out->traceparent = dup_or_null(res, 9);
    bool lost = out->payload == NULL
             || (!PQgetisnull(res, 0, 8) && out->request_id == NULL)
             || (!PQgetisnull(res, 0, 9) && out->traceparent == NULL);
    PQclear(res);

    if (lost) {
        log_error("claim of job %s: out of memory", id);
        claimed_job_free(out);
        return STORE_ERROR;
    }
    return STORE_OK;
}

static const char sql_append_event[] =
    "WITH f AS (UPDATE jobs SET last_event_id=$3, progress=coalesce($6::jsonb, progress) "
    "WHERE id=$1 AND tenant_id=$2 AND status='running' AND attempts=$7 "
    "RETURNING id, tenant_id) "
    "INSERT INTO job_events (job_id, tenant_id, seq, type, body) "
    "SELECT id, tenant_id, $3, $4, $5 FROM f";

store_rc store_append_event(PGconn *conn, const char *id, const char *tenant_id,
                            int attempt, long long seq, const char *type,
                            const char *body, const char *progress_json)
{
    char seq_s[24], attempt_s[16];
    snprintf(seq_s, sizeof seq_s, "%lld", seq);
    snprintf(attempt_s, sizeof attempt_s, "%d", attempt);
    const char *vals[7] = { id, tenant_id, seq_s, type, body, progress_json, attempt_s };
    return fenced_write_rc("event write", conn, exec_params(conn, sql_append_event, 7, vals));
}

static const char sql_finish[] =
    "WITH u AS (UPDATE jobs SET status=$3, result=$4::jsonb, error_code=$5, "
    "error_message=$6, finished_at=now(), heartbeat_at=now(), last_event_id=$7 "
    "WHERE id=$1 AND status=coalesce($11, 'running') AND attempts=$2 AND tenant_id=$10 "
    "RETURNING id, tenant_id) "
    "INSERT INTO job_events (job_id, tenant_id, seq, type, body) "
    "SELECT id, tenant_id, $7, $8, $9 FROM u";

store_rc store_finish(PGconn *conn, const char *id, const char *tenant_id,
                      int attempt, const job_final *f)
{
    char seq_s[24], attempt_s[16];
    snprintf(seq_s, sizeof seq_s, "%lld", f->seq);
    snprintf(attempt_s, sizeof attempt_s, "%d", attempt);
    const char *vals[11] = { id, attempt_s, f->status, f->result_json, f->error_code,
                             f->error_message, seq_s, f->event_type, f->body, tenant_id,
                             f->from_status };
    return fenced_write_rc("terminal write", conn, exec_params(conn, sql_finish, 11, vals));
}

/* A requeued job gets a fresh queued_at, so reconciliation gives it the
 * same grace as a new one; a delay moves run_at, which is what the
 * delayed set and reconciliation go by. */
static const char sql_requeue[] =
    "WITH u AS (UPDATE jobs SET status='queued', worker_id=NULL, started_at=NULL, "
    "heartbeat_at=NULL, last_event_id=$4, queued_at=now(), "
    "run_at=CASE WHEN $6::bigint > 0 THEN now() + $6::bigint * interval '1 millisecond' "
    "ELSE run_at END, "
    "error_code=coalesce($7, error_code), error_message=coalesce($8, error_message) "
    "WHERE id=$1 AND tenant_id=$2 AND status='running' AND attempts=$3 "
    "RETURNING id, tenant_id) "
    "INSERT INTO job_events (job_id, tenant_id, seq, type, body) "
    "SELECT id, tenant_id, $4, 'job.retrying', $5 FROM u";

store_rc store_requeue(PGconn *conn, const char *id, const char *tenant_id, int attempt,
                       const job_requeue *q)
{
    char seq_s[24], attempt_s[16], delay_s[24];
    snprintf(seq_s, sizeof seq_s, "%lld", q->seq);
    snprintf(attempt_s, sizeof attempt_s, "%d", attempt);
    snprintf(delay_s, sizeof delay_s, "%lld", q->delay_ms > 0 ? q->delay_ms : 0);
    const char *vals[8] = { id, tenant_id, attempt_s, seq_s, q->body, delay_s,
                            q->error_code, q->error_message };
    return fenced_write_rc("requeue", conn, exec_params(conn, sql_requeue, 8, vals));
}

store_rc store_exec(PGconn *conn, const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    store_rc rc = STORE_OK;
    if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK) {
        log_statement_error(sql, conn, res);
        rc = STORE_ERROR;
    }
    PQclear(res);
    return rc;
}

/* Jobs whose lease ran out (no heartbeat for lease_ms), or, at a worker's
 * start, that a previous process of the same worker id left running.
 * SKIP LOCKED lets several reapers share the work without waiting on, or
 * double-handling, each other's rows. */
static const char sql_expired[] =
    "SELECT id::text, tenant_id, type, attempts, max_attempts, last_event_id, "
    "coalesce(worker_id, ''), cancel_requested_at IS NOT NULL "
    "FROM jobs WHERE status='running' AND "
    "(heartbeat_at < now() - $1::bigint * interval '1 millisecond' OR worker_id = $2) "
    "ORDER BY heartbeat_at LIMIT $3 FOR UPDATE SKIP LOCKED";

int store_lock_expired(PGconn *conn, long long lease_ms, const char *orphans_of,
                       int limit, expired_job *out)
{
    char lease_s[24], limit_s[16];
    snprintf(lease_s, sizeof lease_s, "%lld", lease_ms);
    snprintf(limit_s, sizeof limit_s, "%d", limit);
    const char *vals[3] = { lease_s, orphans_of, limit_s };
    PGresult *res = exec_params(conn, sql_expired, 3, vals);
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        log_statement_error("expired lease scan", conn, res);
        PQclear(res);
        return -1;
    }
    int n = 0;
    for (int r = 0; r < PQntuples(res) && n < limit; r++) {
        expired_job *e = &out[n];
        if (PQgetlength(res, r, 0) >= (int)sizeof e->id
            || PQgetlength(res, r, 1) >= (int)sizeof e->tenant_id
            || PQgetlength(res, r, 2) >= (int)sizeof e->type)
            continue;
        memcpy(e->id, PQgetvalue(res, r, 0), (size_t)PQgetlength(res, r, 0) + 1);
        memcpy(e->tenant_id, PQgetvalue(res, r, 1), (size_t)PQgetlength(res, r, 1) + 1);
        memcpy(e->type, PQgetvalue(res, r, 2), (size_t)PQgetlength(res, r, 2) + 1);
        e->attempt = atoi(PQgetvalue(res, r, 3));
        e->max_attempts = atoi(PQgetvalue(res, r, 4));
        e->last_event_id = strtoll(PQgetvalue(res, r, 5), NULL, 10);
        snprintf(e->worker_id, sizeof e->worker_id, "%s", PQgetvalue(res, r, 6));
        e->cancel_requested = PQgetvalue(res, r, 7)[0] == 't';
        n++;
    }
    PQclear(res);
    return n;
}

/* Queued jobs waiting longer than a grace period, which Redis should
 * have in a queue or the delayed set. Those whose cancellation was
 * requested while they ran come along: they are to be cancelled. */
static const char sql_queued[] =
    "SELECT id::text, tenant_id, type, attempts, last_event_id, "
    "CASE WHEN run_at > now() THEN (extract(epoch FROM run_at) * 1000)::bigint ELSE 0 END, "
    "cancel_requested_at IS NOT NULL "
    "FROM jobs WHERE status='queued' "
    "AND queued_at < now() - $1::bigint * interval '1 millisecond' "
    "ORDER BY queued_at LIMIT $2";

PGresult *store_queued_jobs(PGconn *conn, long long grace_ms, int limit)
{
    char grace_s[24], limit_s[16];
    snprintf(grace_s, sizeof grace_s, "%lld", grace_ms);
    snprintf(limit_s, sizeof limit_s, "%d", limit);
    const char *vals[2] = { grace_s, limit_s };
    PGresult *res = exec_params(conn, sql_queued, 2, vals);
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        log_statement_error("queued job scan", conn, res);
        PQclear(res);
        return NULL;
    }
    return res;
}

bool store_write_landed(PGconn *conn, const char *id, const char *tenant_id,
                        int attempt, const char *status, long long seq)
{
    static const char sql[] =
        "SELECT 1 FROM jobs WHERE id=$1 AND tenant_id=$2 AND attempts=$3 "
        "AND status=$4 AND last_event_id=$5";
    char seq_s[24], attempt_s[16];
    snprintf(seq_s, sizeof seq_s, "%lld", seq);
    snprintf(attempt_s, sizeof attempt_s, "%d", attempt);
    const char *vals[5] = { id, tenant_id, attempt_s, status, seq_s };
    PGresult *res = exec_params(conn, sql, 5, vals);
    bool landed = res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1;
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK)
        log_statement_error("write check", conn, res);
    PQclear(res);
    return landed;
}

PGresult *store_events_between(PGconn *conn, const char *id, const char *tenant_id,
                               long long after, long long before, int limit)
{
    static const char sql[] =
        "SELECT seq, body FROM (SELECT seq, body FROM job_events "
        "WHERE job_id=$1 AND tenant_id=$2 AND seq > $3 AND seq < $4 "
        "ORDER BY seq DESC LIMIT $5) e ORDER BY seq";
    char after_s[24], before_s[24], limit_s[16];
    snprintf(after_s, sizeof after_s, "%lld", after);
    snprintf(before_s, sizeof before_s, "%lld", before);
    snprintf(limit_s, sizeof limit_s, "%d", limit);
    const char *vals[5] = { id, tenant_id, after_s, before_s, limit_s };
    PGresult *res = exec_params(conn, sql, 5, vals);
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        log_statement_error("event read", conn, res);
        PQclear(res);
        return NULL;
    }
    return res;
}

/* Builds the array literal {id,id,...} from checked UUIDs. Returns a
 * malloc'd string, or NULL on allocation failure. */
static char *uuid_array_literal(const char (*ids)[UUID_STR_LEN], size_t n)
{
    char *lit = malloc(n * UUID_STR_LEN + 3);
    if (lit == NULL)
        return NULL;
    char *p = lit;
    *p++ = '{';
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            *p++ = ',';
        size_t len = strlen(ids[i]);
        memcpy(p, ids[i], len);
        p += len;
    }
    *p++ = '}';
    *p = '\0';
    return lit;
}

/* Index of id in ids, or -1. */
static long find_id(const char (*ids)[UUID_STR_LEN], size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(ids[i], id) == 0)
            return (long)i;
    return -1;
}

store_rc store_heartbeat(PGconn *conn, const char *worker_id,
                         const char (*ids)[UUID_STR_LEN], size_t n,
                         bool *alive, bool *cancel)
{
    static const char sql[] =
        "UPDATE jobs SET heartbeat_at=now() "
        "WHERE id = ANY($1::uuid[]) AND status='running' AND worker_id=$2 "
        "RETURNING id::text, cancel_requested_at IS NOT NULL";
    for (size_t i = 0; i < n; i++)
        alive[i] = cancel[i] = false;
    char *lit = uuid_array_literal(ids, n);
    if (lit == NULL)
        return STORE_ERROR;
    const char *vals[2] = { lit, worker_id };
    PGresult *res = exec_params(conn, sql, 2, vals);
    free(lit);
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        log_statement_error("heartbeat", conn, res);
        PQclear(res);
        return STORE_ERROR;
    }
    for (int r = 0; r < PQntuples(res); r++) {
        long i = find_id(ids, n, PQgetvalue(res, r, 0));
        if (i < 0)
            continue;
        alive[i] = true;
        cancel[i] = PQgetvalue(res, r, 1)[0] == 't';
    }
    PQclear(res);
    return STORE_OK;
}

store_rc store_cancel_requested(PGconn *conn, const char (*ids)[UUID_STR_LEN],
                                size_t n, bool *cancel)
{
    static const char sql[] =
        "SELECT id::text FROM jobs "
        "WHERE id = ANY($1::uuid[]) AND cancel_requested_at IS NOT NULL";
    for (size_t i = 0; i < n; i++)
        cancel[i] = false;
    char *lit = uuid_array_literal(ids, n);
    if (lit == NULL)
        return STORE_ERROR;
    const char *vals[1] = { lit };
    PGresult *res = exec_params(conn, sql, 1, vals);
    free(lit);
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        log_statement_error("cancel check", conn, res);
        PQclear(res);
        return STORE_ERROR;
    }
    for (int r = 0; r < PQntuples(res); r++) {
        long i = find_id(ids, n, PQgetvalue(res, r, 0));
        if (i >= 0)
            cancel[i] = true;
    }
    PQclear(res);
    return STORE_OK;
}
