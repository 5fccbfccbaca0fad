/*
 * job_store.h - the worker's PostgreSQL side: its connections and every
 * statement it runs against the jobs and job_events tables.
 *
 * All calls block (the worker is a process for that). Each write is fenced
 * by the attempt that claimed the job, so a worker that lost its job (it
 * was handed to another attempt) can never write into that job's history.
 */
#ifndef AG_WORKER_JOB_STORE_H
#define AG_WORKER_JOB_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <libpq-fe.h>

#include "backoff.h"
#include "uuid.h"

/* One blocking connection and its reconnect schedule. */
typedef struct pg_link {
    PGconn *conn;           /* NULL while disconnected */
    const char *url;        /* borrowed: the config's database_url */
    const char *who;        /* borrowed: names the owner in log lines */
    int connect_timeout_s;
    backoff bo;
    bool down_logged;       /* a failure was logged since the last success */
} pg_link;

void pg_link_init(pg_link *l, const char *url, const char *who, int connect_timeout_s);

/* Returns the connection, connecting first (retrying on the backoff
 * schedule, each failure logged) until it succeeds or stop(arg) is true;
 * NULL then. */
PGconn *pg_link_wait(pg_link *l, stop_fn stop, void *arg);

/* Returns the connection, or makes one attempt when the schedule says one
 * is due; NULL when down. Never waits for the schedule. */
PGconn *pg_link_try(pg_link *l);

/* Closes a connection found broken, so the next wait or try reconnects. */
void pg_link_drop(pg_link *l);

void pg_link_close(pg_link *l);

/*
 * Runs sql with n text parameters (PQexecParams' result, the caller
 * clears it) in a transaction whose row-level security tenant is tenant:
 * set_config('agentgate.tenant_id', tenant, true) and the statement go out
 * as one pipeline with one sync, so it costs no extra round trip and the
 * setting ends with the statement's transaction (or, inside a BEGIN the
 * caller issued, with that transaction). tenant NULL or "": sql alone.
 * NULL when nothing could be sent (see store_conn_broken).
 */
PGresult *store_exec_as(PGconn *conn, const char *tenant, const char *sql, int n,
                        const char *const *vals);

/*
 * store_exec_as, with a commit that does not wait for its WAL flush
 * (synchronous_commit off for the statement's transaction): same round
 * trip, no fsync waited for. For writes that a later synchronous commit
 * makes durable (the WAL is flushed in order, so that commit's flush
 * carries every earlier one), and whose loss in a database crash before
 * it is harmless. sql must be a string that lives as long as the
 * process (a static array): for statements run again and again, it is
 * prepared on the connection once and then sent by name, known by its
 * address. Same result and errors as store_exec_as.
 */
PGresult *store_exec_as_unflushed(PGconn *conn, const char *tenant, const char *sql, int n,
                                  const char *const *vals);

/* What a statement came to. */
typedef enum store_rc {
    STORE_OK = 0,
    STORE_NONE = 1,     /* no row matched: not queued (claim), or the fence
                           failed (the job is no longer this attempt's) */
    STORE_DUP = 2,      /* the event id is already stored (unique violation) */
    STORE_CAPPED = 3,   /* claim: the tenant is at its running cap; the job
                           was left queued with run_at moved ahead */
    STORE_ERROR = -1,   /* the statement failed; see store_conn_broken */
} store_rc;

/* True when conn can no longer be used and must be reconnected. */
bool store_conn_broken(PGconn *conn);

/* The row a claim returns. Strings are owned by the struct. */
typedef struct claimed_job {
    char tenant_id[65];
    char type[64];
    char created_by[128];
    char *payload;          /* JSON text, malloc'd */
    int attempt;
    int max_attempts;
    int timeout_s;
    long long last_event_id;
    char *request_id;       /* malloc'd, NULL when none */
    char *traceparent;      /* malloc'd, NULL when none */
    double queue_wait_s;    /* from due (queued or run_at) to this claim; < 0: unknown */
} claimed_job;

/* Frees the strings of *job (not job itself). */
void claimed_job_free(claimed_job *job);

/*
 * Claims the n ids of a batch in one statement (one round trip, one
 * commit): each moves from queued to running for worker_id, raising its
 * attempts; only one claimer can win. A job whose cancellation was
 * requested is not claimed. The per-tenant running cap applies: the
 * stricter of the tenant's settings.max_running and default_max_running,
 * the operator's ceiling (0 on either side: no cap from that side),
 * counted over every worker's running jobs under a per-tenant lock; a job
 * it refuses stays queued (attempts unchanged) with run_at retry_ms ahead.
 * rcs[i] gets ids[i]'s outcome: STORE_OK with out[i] filled, STORE_CAPPED
 * with out[i]'s tenant_id and type filled (payload NULL) so the caller can
 * put it in the delayed set, STORE_NONE (not queued, or its cancellation
 * requested), or STORE_ERROR for a row that does not fit out[i] or memory
 * ran out. Returns STORE_OK, or STORE_ERROR when the statement failed
 * (nothing claimed; see store_conn_broken). The caller frees each out[i]
 * (claimed_job_free).
 */
store_rc store_claim_batch(PGconn *conn, const char (*ids)[UUID_STR_LEN], size_t n,
                           const char *worker_id, int default_max_running, int retry_ms,
                           store_rc *rcs, claimed_job *out);

/*
 * Stores event seq of job id (attempt's run) with body, moves
 * jobs.last_event_id to seq and, when progress_json is not NULL, sets
 * jobs.progress to it. Returns STORE_OK, STORE_NONE when the job is no
 * longer running under attempt, STORE_DUP when seq is already stored, or
 * STORE_ERROR.
 */
store_rc store_append_event(PGconn *conn, const char *id, const char *tenant_id,
                            int attempt, long long seq, const char *type,
                            const char *body, const char *progress_json);

/* One event to store, for the calls that store several at once. */
typedef struct store_event {
    long long seq;
    const char *type;
    const char *body;           /* the encoded event */
} store_event;

/*
 * Stores the n events evs (their seqs consecutive and ascending) of job id
 * (attempt's run) in one statement, moves jobs.last_event_id to the last
 * one and, when progress_json is not NULL, sets jobs.progress to it.
 * Returns as store_append_event.
 */
store_rc store_append_events(PGconn *conn, const char *id, const char *tenant_id,
                             int attempt, const store_event *evs, size_t n,
                             const char *progress_json);

/* The terminal transition of a job and its terminal event. */
typedef struct job_final {
    const char *status;         /* "succeeded", "failed" or "cancelled" */
    const char *result_json;    /* NULL for none */
    const char *error_code;     /* NULL for none */
    const char *error_message;  /* NULL for none */
    long long seq;              /* the terminal event's id */
    const char *event_type;     /* "job.succeeded", ... */
    const char *body;           /* the encoded terminal event */
    const char *from_status;    /* the status it must have: NULL for "running" */
    const store_event *prior;   /* events not stored yet that come before the
                                   terminal one (seqs consecutive, ending at
                                   seq - 1), stored by the same statement */
    size_t n_prior;
    const char *progress_json;  /* NULL keeps jobs.progress */
} job_final;

/*
 * Moves job id from running (or f->from_status) under attempt to
 * f->status and stores the terminal event in the same statement. Returns
 * STORE_OK, STORE_NONE when the fence failed, or STORE_ERROR.
 */
store_rc store_finish(PGconn *conn, const char *id, const char *tenant_id,
                      int attempt, const job_final *f);

/* One job's terminal write in a group (store_finish_group). */
typedef struct store_finish_item {
    const char *id;             /* checked UUID */
    const char *tenant_id;
    int attempt;
    const job_final *f;         /* borrowed */
    store_rc rc;                /* out: STORE_OK or STORE_NONE (fence failed) */
} store_finish_item;

/*
 * The terminal writes of n jobs (each as store_finish, each under its own
 * tenant and its own fence) in one transaction: one round trip, one
 * commit. Items of one tenant placed next to each other share one
 * setting of it. Returns STORE_OK when it committed, with each item's rc set;
 * STORE_ERROR when it did not (logged): nothing of it landed, unless the
 * connection broke (store_conn_broken) while the commit was under way,
 * when all of it may have. Item rcs are then undefined.
 */
store_rc store_finish_group(PGconn *conn, store_finish_item *items, size_t n);

/* A job going back to its queue, and its job.retrying event. */
typedef struct job_requeue {
    long long seq;              /* the event's id */
    const char *body;           /* the encoded job.retrying event */
    long long delay_ms;         /* 0: runnable at once; else run_at = now + delay */
    const char *error_code;     /* the failure that caused it; NULL keeps the last */
    const char *error_message;
} job_requeue;

/*
 * Puts job id back: running (under attempt) to queued, worker and start
 * cleared, attempts kept (the next claim raises them), and stores the
 * job.retrying event in the same statement. Serves the shutdown hand-back,
 * a retry after a retryable failure, and the reaper. Returns STORE_OK,
 * STORE_NONE when the fence failed, or STORE_ERROR.
 */
store_rc store_requeue(PGconn *conn, const char *id, const char *tenant_id, int attempt,
                       const job_requeue *q);

/*
 * Parks job id, waiting on a person: running (under attempt) to waiting,
 * worker and heartbeat cleared, attempts lowered by one (the claim that
 * resumes it raises them again: waiting is not a failed attempt), and
 * stores its approval.requested event (seq, body) in the same statement,
 * so the event is seen only once the job waits. Nothing holds it then:
 * no lease, no queue entry. Returns STORE_OK, STORE_NONE when the fence
 * failed, or STORE_ERROR.
 */
store_rc store_park(PGconn *conn, const char *id, const char *tenant_id, int attempt,
                    long long seq, const char *body);

/* Runs one statement without parameters ("BEGIN", "COMMIT", "ROLLBACK").
 * Returns STORE_OK or STORE_ERROR (logged). */
store_rc store_exec(PGconn *conn, const char *sql);

/* A running job whose lease ran out, locked for its reaper. */
typedef struct expired_job {
    char id[UUID_STR_LEN];
    char tenant_id[65];
    char type[64];
    char worker_id[128];        /* the worker that lost it */
    int attempt;                /* the attempt that was running */
    int max_attempts;
    long long last_event_id;
    bool cancel_requested;
    int priority;               /* queued again: in its band (jobq.h) */
} expired_job;

/*
 * Inside a transaction the caller began: locks (SKIP LOCKED, so reapers
 * in other workers take other rows) up to limit running jobs with no
 * heartbeat for lease_ms, or, when orphans_of is not NULL, left running
 * by a worker of that id, into out. Returns their number or -1 (logged).
 */
int store_lock_expired(PGconn *conn, long long lease_ms, const char *orphans_of,
                       int limit, expired_job *out);

/*
 * Queued jobs that have waited longer than grace_ms since they were
 * queued, oldest first, at most limit: a PGresult the caller clears, with
 * columns (id, tenant_id, type, attempts, last_event_id, due_ms (0 when
 * due now, else run_at in epoch ms), cancel_requested ('t'/'f'), priority), or NULL
 * on error (logged).
 */
PGresult *store_queued_jobs(PGconn *conn, long long grace_ms, int limit);

/*
 * Tool-call approvals nobody decided before they expired, whose jobs
 * still wait, at most limit: a PGresult the caller clears, with columns
 * (approval id, job id, tenant_id, type, last_event_id), or NULL on error
 * (logged).
 */
PGresult *store_expired_approvals(PGconn *conn, int limit);

/*
 * Expires approval id and queues its waiting job again with the
 * approval.resolved event (seq, body), fenced on the job still waiting at
 * event seq - 1. Returns STORE_OK, STORE_NONE when a decision, a cancel or
 * another worker came first, or STORE_ERROR.
 */
store_rc store_expire_approval(PGconn *conn, const char *id, long long seq, const char *body);

/*
 * After a write whose answer was lost with the connection: true when the
 * job already shows status with last_event_id seq under attempt, that is,
 * when the write did commit.
 */
bool store_write_landed(PGconn *conn, const char *id, const char *tenant_id,
                        int attempt, const char *status, long long seq);

/*
 * Reads the stored events of job id with after < seq < before, oldest
 * first, at most limit of the newest of them. Returns a PGresult with
 * columns (seq, body) the caller clears, or NULL on error.
 */
PGresult *store_events_between(PGconn *conn, const char *id, const char *tenant_id,
                               long long after, long long before, int limit);

/*
 * One heartbeat for the n running jobs ids (checked UUIDs) of worker_id:
 * sets heartbeat_at on those still running under this worker. For each
 * id, alive[i] says whether it still is and cancel[i] whether its
 * cancellation was requested. Returns STORE_OK or STORE_ERROR.
 */
store_rc store_heartbeat(PGconn *conn, const char *worker_id,
                         const char (*ids)[UUID_STR_LEN], size_t n,
                         bool *alive, bool *cancel);

/*
 * The cancellation check used while Redis is unreachable: cancel[i] says
 * whether cancel_requested_at is set for ids[i]. Returns STORE_OK or
 * STORE_ERROR.
 */
store_rc store_cancel_requested(PGconn *conn, const char (*ids)[UUID_STR_LEN],
                                size_t n, bool *cancel);

#endif
