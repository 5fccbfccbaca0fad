/*
 * job_batch.h - group commit of job submissions.
 *
 * Every job submitted on a loop thread during one turn of its event loop
 * is inserted by one statement (one transaction, one WAL flush) at the end
 * of that turn, so the cost of a commit is shared by the whole batch and
 * falls as load rises. Durability is unchanged: each request is answered
 * only after the commit that holds its job.
 */
#ifndef AG_JOB_BATCH_H
#define AG_JOB_BATCH_H

#include "gateway.h"
#include "uuid.h"

typedef struct job_batch job_batch;

/* A validated job, ready to insert. The strings are copied by job_batch_add. */
typedef struct job_row {
    char id[UUID_STR_LEN];
    const char *type;
    long long priority;
    const char *payload_json;
    long long max_attempts;
    long long timeout_s;
    const char *event_body;      /* job.queued, id 1 */
    long long run_at_ms;         /* epoch ms before which it must not run; 0: none */
    const char *retry_of;        /* canonical id of the job this one retries, or NULL */
    const char *webhook;         /* its checked completion webhook URL, or NULL */
} job_row;

/*
 * Receives the outcome for one row: job_json is the inserted job as the
 * API shows it (len bytes), or NULL with err/sqlstate when the batch
 * failed; arg is what job_batch_add was given with the row (one request
 * may add several rows). Called even when the client has gone.
 */
typedef void (*job_batch_fn)(gw_req *r, void *arg, const char *job_json, size_t len,
                             const char *err, const char *sqlstate);

/* Creates thr's batcher. NULL on allocation failure. */
job_batch *job_batch_new(gw_thread *thr);

/* Frees the batcher; jobs not yet sent are answered 503. */
void job_batch_free(job_batch *b);

/* Adds row for request r (tenant, subject, request id and traceparent come
 * from r). done(r, arg, ...) runs once the batch's statement answers, or
 * at once when the row cannot be added. A row with retry_of also resolves
 * that job's dead letter in the same transaction (jobs_submit_rows). */
void job_batch_add(job_batch *b, gw_req *r, const job_row *row, job_batch_fn done,
                   void *arg);

/*
 * Inserts the n rows (1..1024) of request r as one statement of their
 * own, apart from the loop turn's batch: one transaction, so all of them
 * are inserted or none is. done(r, args[i], ...) runs for each row i once
 * the statement answers: all with their job, or all with the error.
 * Returns 0; or -1 (nothing sent, done not called) when n is out of range,
 * the batcher is closing or memory ran out.
 */
int job_batch_send_group(job_batch *b, gw_req *r, const job_row *rows, int n,
                         job_batch_fn done, void *const *args);

#endif
