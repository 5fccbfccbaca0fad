/*
 * job_store.c - the worker's PostgreSQL connections and statements
 * (see job_store.h).
 *
 * Every write that changes a job after its claim names the attempt that
 * claimed it (attempts=$n AND status='running'), and stores its event in
 * the same statement through a data-modifying CTE: the event row exists
 * exactly when the job row moved, and an attempt that lost the job moves
 * nothing.
 *
 * Row-level security (sql/migrations/006_security.sql): every statement about one
 * job runs with the job's tenant set for its own transaction, pipelined
 * in front of it (store_exec_as), so it costs no round trip and nothing of
 * it stays on the connection. The statements that must cross tenants -
 * the claim of a bare id, the reaper's lease scan, reconciliation's scan,
 * the heartbeat and the cancel check - call the narrow SECURITY DEFINER
 * functions of 006 instead of touching the tables.
 *
 * Statements repeated on every job go by name, each prepared once per
 * connection (prepared_name): this file's own, and those callers send
 * through store_exec_as_unflushed. Most commits wait for their WAL flush;
 * the claim and the unflushed writes do not, since a later synchronous
 * commit of the same job (its end, or its move to waiting) flushes them
 * with it and losing them in a crash before that costs nothing.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libpq-events.h>

#include "clock.h"
#include "job_store.h"
#include "log.h"
#include "pg_array.h"
#include "strbuf.h"

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

static void prep_attach(PGconn *conn);

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
        prep_attach(c);
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
 * Prepared statements
 *
 * Every statement of this file is sent by name once it was prepared on
 * the connection, so PostgreSQL parses, analyses and (after its first
 * few runs, once a generic plan is chosen) plans it once per connection
 * instead of once per job. Which ones are prepared is the connection's
 * own state, kept as libpq instance data of an event procedure that
 * pg_link registers on each new connection: a PQreset or a new
 * connection starts with none, so nothing stale is ever named. A
 * connection without the procedure (not made by pg_link) sends text.
 * ------------------------------------------------------------------------- */

/* The index of sql among the statements sent by name, or -1; and the
 * adoption of a caller's statement among them (defined at the end of the
 * file, where this file's are all known). */
static int prepared_index(const char *sql);
static void prepared_adopt(const char *sql);

typedef struct prep_state {
    unsigned long long bits;    /* bit k: statement k is prepared */
} prep_state;

static int prep_event_proc(PGEventId evt, void *info, void *pass)
{
    (void)pass;
    switch (evt) {
    case PGEVT_REGISTER: {
        PGEventRegister *r = info;
        prep_state *ps = calloc(1, sizeof *ps);
        return ps != NULL && PQsetInstanceData(r->conn, prep_event_proc, ps) == 1;
    }
    case PGEVT_CONNRESET: {
        PGEventConnReset *r = info;
        prep_state *ps = PQinstanceData(r->conn, prep_event_proc);
        if (ps != NULL)
            ps->bits = 0;
        return 1;
    }
    case PGEVT_CONNDESTROY: {
        PGEventConnDestroy *r = info;
        free(PQinstanceData(r->conn, prep_event_proc));
        PQsetInstanceData(r->conn, prep_event_proc, NULL);
        return 1;
    }
    default:
        return 1;
    }
}

/* Gives a new connection its record of prepared statements. Without it
 * (out of memory) statements go as text: slower, not wrong. */
static void prep_attach(PGconn *conn)
{
    if (PQregisterEventProc(conn, prep_event_proc, "agentgate-prepared", NULL) != 1)
        log_warn("PostgreSQL connection: cannot track prepared statements; "
                 "sending statements as text");
}

/*
 * The name under which sql (with n parameters) is prepared on conn,
 * preparing it first when it is one of this file's and not prepared yet;
 * NULL when it is to be sent as text (not ours, no record, or the prepare
 * failed: the text statement then fails the same way, with its own
 * error). Never call it inside a pipeline: the prepare is a round trip.
 */
static const char *prepared_name(PGconn *conn, const char *sql, int n, char name[16])
{
    int k = prepared_index(sql);
    prep_state *ps = k >= 0 ? PQinstanceData(conn, prep_event_proc) : NULL;
    if (ps == NULL)
        return NULL;
    snprintf(name, 16, "ag_w%d", k);
    if (ps->bits & (1ULL << k))
        return name;
    PGresult *r = PQprepare(conn, name, sql, n, NULL);
    bool ok = r != NULL && PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    if (!ok)
        return NULL;
    ps->bits |= 1ULL << k;
    return name;
}

/* A statement named but no longer there (someone ran DEALLOCATE or
 * DISCARD on the connection): forget them all, so the next call prepares
 * them again. */
static void prepared_check(PGconn *conn, const PGresult *res)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    prep_state *ps = state ? PQinstanceData(conn, prep_event_proc) : NULL;
    if (ps != NULL && strcmp(state, "26000") == 0)
        ps->bits = 0;
}

/* ---------------------------------------------------------------------------
 * Statements
 * ------------------------------------------------------------------------- */

static PGresult *exec_params(PGconn *conn, const char *sql, int n, const char *const *vals)
{
    char name[16];
    if (prepared_name(conn, sql, n, name) == NULL)
        return PQexecParams(conn, sql, n, NULL, vals, NULL, NULL, 0);
    PGresult *res = PQexecPrepared(conn, name, n, vals, NULL, NULL, 0);
    prepared_check(conn, res);
    return res;
}

/* Queues sql in the pipeline: by name when named is not NULL. */
static int send_params(PGconn *conn, const char *named, const char *sql, int n,
                       const char *const *vals)
{
    if (named != NULL)
        return PQsendQueryPrepared(conn, named, n, vals, NULL, NULL, 0);
    return PQsendQueryParams(conn, sql, n, NULL, vals, NULL, NULL, 0);
}

static const char sql_set_tenant[] = "SELECT set_config('agentgate.tenant_id', $1, true)";
/* For store_exec_as_unflushed without a tenant: a commit that does not
 * wait for its WAL flush. */
static const char sql_set_sync_commit[] = "SELECT set_config('synchronous_commit', $1, true)";

/* Both at once, for store_exec_as_unflushed: the tenant, and a commit
 * that does not wait for its WAL flush. */
static const char sql_set_tenant_unflushed[] =
    "SELECT set_config('agentgate.tenant_id', $1, true),"
    " set_config('synchronous_commit', 'off', true)";

/* Reads the results of one statement of a pipeline up to its NULL into
 * *keep: the first error wins over what follows (the aborted statement
 * after a failed setting), else the last result. Bounded, so a broken
 * connection cannot hold it. */
static void pipeline_collect(PGconn *conn, PGresult **keep)
{
    for (int i = 0; i < 64; i++) {
        PGresult *r = PQgetResult(conn);
        if (r == NULL)
            return;
        if (*keep != NULL && PQresultStatus(*keep) == PGRES_FATAL_ERROR) {
            PQclear(r);
        } else {
            PQclear(*keep);
            *keep = r;
        }
        if (PQstatus(conn) == CONNECTION_BAD)
            return;
    }
}

/*
 * Runs set_sql (one text parameter, set_val: a transaction-local setting)
 * and then sql in one pipeline segment: one transaction, one round trip.
 * Returns sql's result, or the setting's error when that failed.
 */
static PGresult *exec_with_setting(PGconn *conn, const char *set_sql, const char *set_val,
                                   const char *sql, int n, const char *const *vals)
{
    char set_name[16], name[16];
    const char *set_named = prepared_name(conn, set_sql, 1, set_name);
    const char *named = prepared_name(conn, sql, n, name);
    if (PQenterPipelineMode(conn) != 1)
        return NULL;
    const char *tv[1] = { set_val };
    PGresult *out = NULL, *set = NULL;
    if (send_params(conn, set_named, set_sql, 1, tv) == 1
        && send_params(conn, named, sql, n, vals) == 1
        && PQpipelineSync(conn) == 1) {
        pipeline_collect(conn, &set);
        pipeline_collect(conn, &out);
        if (set != NULL && PQresultStatus(set) != PGRES_TUPLES_OK) {
            /* The setting failed and the statement did not run: its error
             * is the answer. */
            PQclear(out);
            out = set;
            set = NULL;
        }
        if (PQstatus(conn) != CONNECTION_BAD) {
            PGresult *sync = PQgetResult(conn);
            if (sync != NULL && PQresultStatus(sync) != PGRES_PIPELINE_SYNC)
                log_warn("pipelined statement: unexpected result before its sync");
            PQclear(sync);
        }
    }
    PQclear(set);
    /* Every result was read, so this succeeds on a working connection; a
     * broken one is dropped by its owner. A connection stuck in pipeline
     * mode would fail every later plain call, so it is started afresh. */
    if (PQexitPipelineMode(conn) != 1 && PQstatus(conn) != CONNECTION_BAD) {
        log_warn("pipelined statement left unread results; reconnecting");
        PQreset(conn);
    }
    prepared_check(conn, out);
    return out;
}

PGresult *store_exec_as(PGconn *conn, const char *tenant, const char *sql, int n,
                        const char *const *vals)
{
    if (tenant == NULL || tenant[0] == '\0')
        return exec_params(conn, sql, n, vals);
    return exec_with_setting(conn, sql_set_tenant, tenant, sql, n, vals);
}

PGresult *store_exec_as_unflushed(PGconn *conn, const char *tenant, const char *sql, int n,
                                  const char *const *vals)
{
    prepared_adopt(sql);
    if (tenant == NULL || tenant[0] == '\0')
        return exec_with_setting(conn, sql_set_sync_commit, "off", sql, n, vals);
    return exec_with_setting(conn, sql_set_tenant_unflushed, tenant, sql, n, vals);
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

static char *dup_or_null(const PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col))
        return NULL;
    return strdup(PQgetvalue(res, row, col));
}

/* Copies column col of row into dst (size bytes); -1 when it does not fit. */
static int copy_col(const PGresult *res, int row, int col, char *dst, size_t size)
{
    const char *v = PQgetvalue(res, row, col);
    size_t len = (size_t)PQgetlength(res, row, col);
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

/* A claim's output columns (agentgate_claim_job, 006_security.sql, its
 * cap from 013, the queue wait from 017), read by claim_row_read. */
#define CLAIM_COLUMNS \
    "o_outcome, o_tenant_id, o_type, o_payload, o_attempts, o_max_attempts, " \
    "o_timeout_s, o_last_event_id, o_created_by, o_request_id, o_traceparent, " \
    "o_queue_wait_s"

/* A worker knows only the ids it popped; agentgate_claim_jobs
 * (025_claim_batch.sql) claims each as agentgate_claim_job does: it finds
 * the tenant, applies its running cap (the stricter of the tenant's and
 * the operator's) and claims, as the owner role, and says how long the
 * job waited. One row per id claimed or capped, with its id last. */
static const char sql_claim_batch[] =
    "SELECT " CLAIM_COLUMNS ", o_id "
    "FROM set_config('synchronous_commit', 'off', true) AS s(v), "
    "agentgate_claim_jobs($1::uuid[], $2, $3, $4)";

/* A batch of one id goes to agentgate_claim_job itself: the same claim,
 * without the batch function's loop and lock-order query around it. */
static const char sql_claim_one[] =
    "SELECT " CLAIM_COLUMNS ", $1::text "
    "FROM set_config('synchronous_commit', 'off', true) AS s(v), "
    "agentgate_claim_job($1::uuid, $2, $3, $4)";

/* Reads row of a claim's answer (columns as CLAIM_COLUMNS) into *out:
 * STORE_OK, STORE_CAPPED (tenant and type filled), or STORE_ERROR (a row
 * that does not fit, or memory ran out; logged, nothing to free). */
static store_rc claim_row_read(const PGresult *res, int row, const char *id, claimed_job *out)
{
    memset(out, 0, sizeof *out);
    if (copy_col(res, row, 1, out->tenant_id, sizeof out->tenant_id) < 0
        || copy_col(res, row, 2, out->type, sizeof out->type) < 0) {
        log_error("claim of job %s: tenant or type too long for the worker", id);
        return STORE_ERROR;
    }
    if (strcmp(PQgetvalue(res, row, 0), "capped") == 0)
        return STORE_CAPPED;
    out->payload = strdup(PQgetvalue(res, row, 3));
    out->attempt = atoi(PQgetvalue(res, row, 4));
    out->max_attempts = atoi(PQgetvalue(res, row, 5));
    out->timeout_s = atoi(PQgetvalue(res, row, 6));
    out->last_event_id = strtoll(PQgetvalue(res, row, 7), NULL, 10);
    /* created_by only labels the run; a long one is cut, not refused. */
    snprintf(out->created_by, sizeof out->created_by, "%s", PQgetvalue(res, row, 8));
    out->request_id = dup_or_null(res, row, 9);
    out->traceparent = dup_or_null(res, row, 10);
    out->queue_wait_s = PQgetisnull(res, row, 11) ? -1
                                                  : strtod(PQgetvalue(res, row, 11), NULL);
    bool lost = out->payload == NULL
             || (!PQgetisnull(res, row, 9) && out->request_id == NULL)
             || (!PQgetisnull(res, row, 10) && out->traceparent == NULL);
    if (lost) {
        log_error("claim of job %s: out of memory", id);
        claimed_job_free(out);
        return STORE_ERROR;
    }
    return STORE_OK;
}

/* Runs claim statement sql with its four parameters (ids: an id, or an
 * array literal of them) and returns its answer, or NULL after logging the error.
 *
 * The claim commits without waiting for its flush: a claim lost in a
 * database crash only puts the job back to queued (attempt unchanged),
 * and the attempt's own writes are fenced on it, so nothing it did can
 * land; every later synchronous commit (the job's end) flushes the claim
 * with it. This takes one WAL flush off each job's path, and the
 * running-cap lock is not held across a flush. The setting is made by the
 * statement itself (set_config in its FROM: one row, scanned first, and
 * read only at commit), so it costs no statement of its own; a function's
 * own SET clause could not do it, as it is undone when the function
 * returns, before the commit. */
static PGresult *claim_exec(PGconn *conn, const char *sql, const char *ids,
                            const char *worker_id, int default_max_running, int retry_ms)
{
    char cap_s[16], retry_s[16];
    snprintf(cap_s, sizeof cap_s, "%d", default_max_running > 0 ? default_max_running : 0);
    snprintf(retry_s, sizeof retry_s, "%d", retry_ms > 0 ? retry_ms : 0);
    const char *vals[4] = { ids, worker_id, cap_s, retry_s };
    PGresult *res = exec_params(conn, sql, 4, vals);
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        log_statement_error("claim", conn, res);
        PQclear(res);
        return NULL;
    }
    return res;
}

static long find_id(const char (*ids)[UUID_STR_LEN], size_t n, const char *id);
static char *uuid_array_literal(const char (*ids)[UUID_STR_LEN], size_t n);

store_rc store_claim_batch(PGconn *conn, const char (*ids)[UUID_STR_LEN], size_t n,
                           const char *worker_id, int default_max_running, int retry_ms,
                           store_rc *rcs, claimed_job *out)
{
    if (n == 0)
        return STORE_OK;
    for (size_t i = 0; i < n; i++) {
        rcs[i] = STORE_NONE;
        memset(&out[i], 0, sizeof out[i]);
    }
    char *arr = n > 1 ? uuid_array_literal(ids, n) : NULL;
    if (n > 1 && arr == NULL) {
        log_error("claim of %zu jobs: out of memory", n);
        return STORE_ERROR;
    }
    PGresult *res = claim_exec(conn, n > 1 ? sql_claim_batch : sql_claim_one,
                               n > 1 ? arr : ids[0], worker_id, default_max_running, retry_ms);
    free(arr);
    if (res == NULL)
        return STORE_ERROR;
    for (int row = 0; row < PQntuples(res); row++) {
        long i = find_id(ids, n, PQgetvalue(res, row, 12));
        if (i < 0 || rcs[i] != STORE_NONE) {
            log_error("claim batch: answer names job %s, not asked for or twice",
                      PQgetvalue(res, row, 12));
            continue;
        }
        /* A row that cannot be read leaves its job claimed and unrun: its
         * lease runs out and the reaper queues it again. */
        rcs[i] = claim_row_read(res, row, ids[i], &out[i]);
    }
    PQclear(res);
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
    return fenced_write_rc("event write", conn,
                           store_exec_as(conn, tenant_id, sql_append_event, 7, vals));
}

/* Builds the PostgreSQL array literals of n events: {seq,...} and
 * {"type",...}, {"body",...} with every element quoted, so any text goes
 * through. Returns 0, or -1 when memory ran out (nothing to free then). */
static int event_array_literals(const store_event *evs, size_t n, char **seqs,
                                char **types, char **bodies)
{
    strbuf s = { 0 }, t = { 0 }, b = { 0 };
    strbuf_add(&s, "{");
    strbuf_add(&t, "{");
    strbuf_add(&b, "{");
    for (size_t i = 0; i < n; i++) {
        char num[24];
        snprintf(num, sizeof num, "%s%lld", i ? "," : "", evs[i].seq);
        strbuf_add(&s, num);
        if (i) {
            strbuf_add(&t, ",");
            strbuf_add(&b, ",");
        }
        pg_array_element_add(&t, evs[i].type);
        pg_array_element_add(&b, evs[i].body);
    }
    strbuf_add(&s, "}");
    strbuf_add(&t, "}");
    strbuf_add(&b, "}");
    *seqs = strbuf_take(&s, NULL);
    *types = strbuf_take(&t, NULL);
    *bodies = strbuf_take(&b, NULL);
    if (*seqs == NULL || *types == NULL || *bodies == NULL) {
        free(*seqs);
        free(*types);
        free(*bodies);
        return -1;
    }
    return 0;
}

/* Several events at once: the same fence as one, then one row each. */
static const char sql_append_events[] =
    "WITH f AS (UPDATE jobs SET last_event_id=$3, progress=coalesce($6::jsonb, progress) "
    "WHERE id=$1 AND tenant_id=$2 AND status='running' AND attempts=$7 "
    "RETURNING id, tenant_id) "
    "INSERT INTO job_events (job_id, tenant_id, seq, type, body) "
    "SELECT f.id, f.tenant_id, x.seq, x.type, x.body "
    "FROM f, unnest($8::bigint[], $4::text[], $5::text[]) AS x(seq, type, body)";

store_rc store_append_events(PGconn *conn, const char *id, const char *tenant_id,
                             int attempt, const store_event *evs, size_t n,
                             const char *progress_json)
{
    if (n == 0)
        return STORE_OK;
    if (n == 1)
        return store_append_event(conn, id, tenant_id, attempt, evs[0].seq, evs[0].type,
                                  evs[0].body, progress_json);
    char *seqs, *types, *bodies;
    if (event_array_literals(evs, n, &seqs, &types, &bodies) < 0) {
        log_error("event write: out of memory for %zu events", n);
        return STORE_ERROR;
    }
    char last_s[24], attempt_s[16];
    snprintf(last_s, sizeof last_s, "%lld", evs[n - 1].seq);
    snprintf(attempt_s, sizeof attempt_s, "%d", attempt);
    const char *vals[8] = { id, tenant_id, last_s, types, bodies, progress_json, attempt_s,
                            seqs };
    store_rc rc = fenced_write_rc("event write", conn,
                                  store_exec_as(conn, tenant_id, sql_append_events, 8, vals));
    free(seqs);
    free(types);
    free(bodies);
    return rc;
}

/* The terminal transition, with the events before it that were not stored
 * yet ($12..$14, NULL for none): the job cannot reach its end state
 * without every one of its events. */
static const char sql_finish[] =
    "WITH u AS (UPDATE jobs SET status=$3, result=$4::jsonb, error_code=$5, "
    "error_message=$6, finished_at=now(), heartbeat_at=now(), last_event_id=$7, "
    "progress=coalesce($15::jsonb, progress) "
    "WHERE id=$1 AND status=coalesce($11, 'running') AND attempts=$2 AND tenant_id=$10 "
    "RETURNING id, tenant_id), "
    "p AS (INSERT INTO job_events (job_id, tenant_id, seq, type, body) "
    "SELECT u.id, u.tenant_id, x.seq, x.type, x.body "
    "FROM u, unnest($12::bigint[], $13::text[], $14::text[]) AS x(seq, type, body)) "
    "INSERT INTO job_events (job_id, tenant_id, seq, type, body) "
    "SELECT id, tenant_id, $7, $8, $9 FROM u";

/* The parameters of one sql_finish, with the strings they point into. */
typedef struct finish_params {
    char seq_s[24], attempt_s[16];
    char *seqs, *types, *bodies;        /* malloc'd prior-event arrays, or NULL */
    const char *vals[15];
} finish_params;

/* Fills *fp for the terminal write f of job id. Returns 0, or -1 when
 * memory ran out (logged; nothing to free then). */
static int finish_params_build(finish_params *fp, const char *id, const char *tenant_id,
                               int attempt, const job_final *f)
{
    fp->seqs = fp->types = fp->bodies = NULL;
    if (f->n_prior > 0
        && event_array_literals(f->prior, f->n_prior, &fp->seqs, &fp->types,
                                &fp->bodies) < 0) {
        log_error("terminal write: out of memory for %zu events", f->n_prior);
        return -1;
    }
    snprintf(fp->seq_s, sizeof fp->seq_s, "%lld", f->seq);
    snprintf(fp->attempt_s, sizeof fp->attempt_s, "%d", attempt);
    const char *vals[15] = { id, fp->attempt_s, f->status, f->result_json, f->error_code,
                             f->error_message, fp->seq_s, f->event_type, f->body, tenant_id,
                             f->from_status, fp->seqs, fp->types, fp->bodies,
                             f->progress_json };
    memcpy(fp->vals, vals, sizeof vals);
    return 0;
}

static void finish_params_free(finish_params *fp)
{
    free(fp->seqs);
    free(fp->types);
    free(fp->bodies);
}

store_rc store_finish(PGconn *conn, const char *id, const char *tenant_id,
                      int attempt, const job_final *f)
{
    finish_params fp;
    if (finish_params_build(&fp, id, tenant_id, attempt, f) < 0)
        return STORE_ERROR;
    store_rc rc = fenced_write_rc("terminal write", conn,
                                  store_exec_as(conn, tenant_id, sql_finish, 15, fp.vals));
    finish_params_free(&fp);
    return rc;
}

/* Whether item i needs its tenant set: the setting lasts to the end of
 * the group's transaction, so items of the tenant set before need none. */
static bool group_sets_tenant(const store_finish_item *items, size_t i)
{
    return i == 0 || strcmp(items[i].tenant_id, items[i - 1].tenant_id) != 0;
}

/* Sends the group's statements - per item its tenant setting (when it
 * changes) and its finish - and one sync. Returns 0, or -1 when not all
 * could be sent. */
static int finish_group_send(PGconn *conn, const char *set_named, const char *named,
                             const store_finish_item *items, const finish_params *fps,
                             size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *tv[1] = { items[i].tenant_id };
        if ((group_sets_tenant(items, i)
             && send_params(conn, set_named, sql_set_tenant, 1, tv) != 1)
            || send_params(conn, named, sql_finish, 15, fps[i].vals) != 1)
            return -1;
    }
    return PQpipelineSync(conn) == 1 ? 0 : -1;
}

/* Reads the group's answers: each finish's outcome into items[i].rc.
 * Returns STORE_OK when every statement ran and the sync (the commit of
 * the implicit transaction) came back clean, else STORE_ERROR (logged
 * once, with the first error). */
static store_rc finish_group_read(PGconn *conn, store_finish_item *items, size_t n)
{
    store_rc rc = STORE_OK;
    for (size_t i = 0; i < n; i++) {
        PGresult *set = NULL, *res = NULL;
        bool sets = group_sets_tenant(items, i);
        if (sets)
            pipeline_collect(conn, &set);
        pipeline_collect(conn, &res);
        if (rc == STORE_OK && sets
            && (set == NULL || PQresultStatus(set) != PGRES_TUPLES_OK)) {
            log_statement_error("group terminal write (tenant setting)", conn, set);
            prepared_check(conn, set);
            rc = STORE_ERROR;
        } else if (rc == STORE_OK && (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK)) {
            char what[96];
            snprintf(what, sizeof what, "group terminal write (job %s)", items[i].id);
            log_statement_error(what, conn, res);
            prepared_check(conn, res);
            rc = STORE_ERROR;
        } else if (rc == STORE_OK) {
            items[i].rc = strcmp(PQcmdTuples(res), "0") == 0 ? STORE_NONE : STORE_OK;
        }
        PQclear(set);
        PQclear(res);
        if (PQstatus(conn) == CONNECTION_BAD)
            return STORE_ERROR;
    }
    /* The commit's own failure arrives as an error before the sync. */
    for (int k = 0; k < 4 && PQstatus(conn) != CONNECTION_BAD; k++) {
        PGresult *r = PQgetResult(conn);
        if (r == NULL)
            continue;
        ExecStatusType st = PQresultStatus(r);
        if (st != PGRES_PIPELINE_SYNC && rc == STORE_OK) {
            log_statement_error("group terminal write (commit)", conn, r);
            rc = STORE_ERROR;
        }
        PQclear(r);
        if (st == PGRES_PIPELINE_SYNC)
            return rc;
    }
    return STORE_ERROR;
}

store_rc store_finish_group(PGconn *conn, store_finish_item *items, size_t n)
{
    if (n == 0)
        return STORE_OK;
    finish_params *fps = calloc(n, sizeof *fps);
    if (fps == NULL) {
        log_error("group terminal write: out of memory for %zu jobs", n);
        return STORE_ERROR;
    }
    size_t built = 0;
    while (built < n && finish_params_build(&fps[built], items[built].id,
                                            items[built].tenant_id, items[built].attempt,
                                            items[built].f) == 0)
        built++;
    store_rc rc = STORE_ERROR;
    char set_name[16], name[16];
    const char *set_named = built == n ? prepared_name(conn, sql_set_tenant, 1, set_name)
                                       : NULL;
    const char *named = built == n ? prepared_name(conn, sql_finish, 15, name) : NULL;
    if (built == n && PQenterPipelineMode(conn) == 1) {
        /* No BEGIN: the statements up to the sync are one implicit
         * transaction, so one error rolls back the whole group and the
         * last set_config of each pair is the one its finish sees. */
        if (finish_group_send(conn, set_named, named, items, fps, n) == 0)
            rc = finish_group_read(conn, items, n);
        else
            log_statement_error("group terminal write (send)", conn, NULL);
        if (PQexitPipelineMode(conn) != 1 && PQstatus(conn) != CONNECTION_BAD) {
            /* Unread results after a failed send or read: start afresh
             * rather than leave the connection in pipeline mode. */
            log_warn("group terminal write left unread results; reconnecting");
            PQreset(conn);
            rc = STORE_ERROR;
        }
    }
    for (size_t i = 0; i < built; i++)
        finish_params_free(&fps[i]);
    free(fps);
    return rc;
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
    return fenced_write_rc("requeue", conn, store_exec_as(conn, tenant_id, sql_requeue, 8, vals));
}

/* A cancel requested after the worker last looked puts the job in
 * queued instead, where reconciliation cancels it (it is never claimed). */
static const char sql_park[] =
    "WITH u AS (UPDATE jobs SET status=CASE WHEN cancel_requested_at IS NULL "
    "THEN 'waiting' ELSE 'queued' END, queued_at=now(), worker_id=NULL, heartbeat_at=NULL, "
    "attempts=attempts-1, last_event_id=$4 "
    "WHERE id=$1 AND tenant_id=$2 AND status='running' AND attempts=$3 "
    "RETURNING id, tenant_id) "
    "INSERT INTO job_events (job_id, tenant_id, seq, type, body) "
    "SELECT id, tenant_id, $4, 'approval.requested', $5 FROM u";

store_rc store_park(PGconn *conn, const char *id, const char *tenant_id, int attempt,
                    long long seq, const char *body)
{
    char seq_s[24], attempt_s[16];
    snprintf(seq_s, sizeof seq_s, "%lld", seq);
    snprintf(attempt_s, sizeof attempt_s, "%d", attempt);
    const char *vals[5] = { id, tenant_id, attempt_s, seq_s, body };
    store_rc rc = fenced_write_rc("park", conn, store_exec_as(conn, tenant_id, sql_park, 5, vals));
    /* Tried again after a broken connection, the first try may have
     * landed: the row is then parked with this event (and one attempt
     * less, which the caller's own check would not recognise). */
    if (rc == STORE_NONE || rc == STORE_DUP) {
        if (store_write_landed(conn, id, tenant_id, attempt - 1, "waiting", seq)
            || store_write_landed(conn, id, tenant_id, attempt - 1, "queued", seq))
            rc = STORE_OK;
    }
    return rc;
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
 * double-handling, each other's rows. Crosses tenants: through
 * agentgate_lock_expired (006_security.sql). */
static const char sql_expired[] =
    "SELECT o_id, o_tenant_id, o_type, o_attempts, o_max_attempts, o_last_event_id, "
    "o_worker_id, o_cancel_requested, o_priority FROM agentgate_lock_expired($1, $2, $3)";

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
        e->priority = atoi(PQgetvalue(res, r, 8));
        n++;
    }
    PQclear(res);
    return n;
}

/* Queued jobs waiting longer than a grace period, which Redis should
 * have in a queue or the delayed set. Those whose cancellation was
 * requested while they ran come along: they are to be cancelled. */
static const char sql_queued[] =
    "SELECT o_id, o_tenant_id, o_type, o_attempts, o_last_event_id, o_due_ms, "
    "o_cancel_requested, o_priority FROM agentgate_queued_jobs($1, $2)";

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

PGresult *store_expired_approvals(PGconn *conn, int limit)
{
    static const char sql[] =
        "SELECT o_id, o_job_id, o_tenant_id, o_type, o_last_event_id "
        "FROM agentgate_expired_approvals($1)";
    char limit_s[16];
    snprintf(limit_s, sizeof limit_s, "%d", limit);
    const char *vals[1] = { limit_s };
    PGresult *res = exec_params(conn, sql, 1, vals);
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        log_statement_error("expired approval scan", conn, res);
        PQclear(res);
        return NULL;
    }
    return res;
}

store_rc store_expire_approval(PGconn *conn, const char *id, long long seq, const char *body)
{
    static const char sql[] = "SELECT agentgate_expire_approval($1, $2, $3)";
    char seq_s[24];
    snprintf(seq_s, sizeof seq_s, "%lld", seq);
    const char *vals[3] = { id, seq_s, body };
    PGresult *res = exec_params(conn, sql, 3, vals);
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        log_statement_error("approval expiry", conn, res);
        PQclear(res);
        return STORE_ERROR;
    }
    store_rc rc = PQgetvalue(res, 0, 0)[0] == 't' ? STORE_OK : STORE_NONE;
    PQclear(res);
    return rc;
}

static const char sql_write_landed[] =
    "SELECT 1 FROM jobs WHERE id=$1 AND tenant_id=$2 AND attempts=$3 "
    "AND status=$4 AND last_event_id=$5";

bool store_write_landed(PGconn *conn, const char *id, const char *tenant_id,
                        int attempt, const char *status, long long seq)
{
    char seq_s[24], attempt_s[16];
    snprintf(seq_s, sizeof seq_s, "%lld", seq);
    snprintf(attempt_s, sizeof attempt_s, "%d", attempt);
    const char *vals[5] = { id, tenant_id, attempt_s, status, seq_s };
    PGresult *res = store_exec_as(conn, tenant_id, sql_write_landed, 5, vals);
    bool landed = res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1;
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK)
        log_statement_error("write check", conn, res);
    PQclear(res);
    return landed;
}

static const char sql_events_between[] =
    "SELECT seq, body FROM (SELECT seq, body FROM job_events "
    "WHERE job_id=$1 AND tenant_id=$2 AND seq > $3 AND seq < $4 "
    "ORDER BY seq DESC LIMIT $5) e ORDER BY seq";

PGresult *store_events_between(PGconn *conn, const char *id, const char *tenant_id,
                               long long after, long long before, int limit)
{
    char after_s[24], before_s[24], limit_s[16];
    snprintf(after_s, sizeof after_s, "%lld", after);
    snprintf(before_s, sizeof before_s, "%lld", before);
    snprintf(limit_s, sizeof limit_s, "%d", limit);
    const char *vals[5] = { id, tenant_id, after_s, before_s, limit_s };
    PGresult *res = store_exec_as(conn, tenant_id, sql_events_between, 5, vals);
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

static const char sql_heartbeat[] =
    "SELECT o_id, o_cancel_requested FROM agentgate_heartbeat($1::uuid[], $2)";

store_rc store_heartbeat(PGconn *conn, const char *worker_id,
                         const char (*ids)[UUID_STR_LEN], size_t n,
                         bool *alive, bool *cancel)
{
    for (size_t i = 0; i < n; i++)
        alive[i] = cancel[i] = false;
    char *lit = uuid_array_literal(ids, n);
    if (lit == NULL)
        return STORE_ERROR;
    const char *vals[2] = { lit, worker_id };
    PGresult *res = exec_params(conn, sql_heartbeat, 2, vals);
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

static const char sql_cancel_requested[] =
    "SELECT o_id FROM agentgate_cancel_requested($1::uuid[])";

store_rc store_cancel_requested(PGconn *conn, const char (*ids)[UUID_STR_LEN],
                                size_t n, bool *cancel)
{
    for (size_t i = 0; i < n; i++)
        cancel[i] = false;
    char *lit = uuid_array_literal(ids, n);
    if (lit == NULL)
        return STORE_ERROR;
    const char *vals[1] = { lit };
    PGresult *res = exec_params(conn, sql_cancel_requested, 1, vals);
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

/* Every statement this file may send by name, in a fixed order: its
 * index is its name's number (ag_w<k>). */
static const char *const own_stmts[] = {
    sql_set_tenant, sql_claim_batch, sql_claim_one, sql_append_event,
    sql_append_events, sql_finish, sql_requeue, sql_expired, sql_queued,
    sql_write_landed, sql_events_between, sql_heartbeat, sql_cancel_requested,
    sql_set_sync_commit, sql_set_tenant_unflushed,
};
#define OWN_STMTS ((int)(sizeof own_stmts / sizeof own_stmts[0]))

/* Callers' statements sent by name too (store_exec_as_unflushed): each a
 * static string, told apart by its address, numbered after this file's
 * in the order first seen. Once the 64 names are taken, the rest go as
 * text. */
static const char *callers_stmts[64 - OWN_STMTS];
static int n_callers_stmts;
static pthread_mutex_t callers_stmts_lock = PTHREAD_MUTEX_INITIALIZER;

/* Gives sql a name when it has none and one is free. */
static void prepared_adopt(const char *sql)
{
    pthread_mutex_lock(&callers_stmts_lock);
    bool known = false;
    for (int k = 0; k < n_callers_stmts && !known; k++)
        known = callers_stmts[k] == sql;
    if (!known && n_callers_stmts < (int)(sizeof callers_stmts / sizeof callers_stmts[0]))
        callers_stmts[n_callers_stmts++] = sql;
    pthread_mutex_unlock(&callers_stmts_lock);
}

static int prepared_index(const char *sql)
{
    for (int k = 0; k < OWN_STMTS; k++)
        if (own_stmts[k] == sql)
            return k;
    int found = -1;
    pthread_mutex_lock(&callers_stmts_lock);
    for (int k = 0; k < n_callers_stmts && found < 0; k++)
        if (callers_stmts[k] == sql)
            found = OWN_STMTS + k;
    pthread_mutex_unlock(&callers_stmts_lock);
    return found;
}
