/*
 * worker_metrics.c - the worker's series (see worker_metrics.h): the
 * families are registered once by worker_metrics_init, and each report
 * resolves its series by label values (lock-free after the first time)
 * and updates it.
 *
 * Until worker_metrics_init has run every family pointer is NULL and each
 * report returns at once: unit tests and tools that link the worker's
 * code without serving metrics pay nothing and register nothing.
 */
#include <stdatomic.h>
#include <stddef.h>
#include <string.h>

#include "log.h"
#include "metrics.h"
#include "worker_metrics.h"

/* Model calls take from well under a second (a cached or small answer) to
 * the total timeout (120 s by default); the first token comes sooner. */
static const double llm_call_buckets[] = {
    0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300,
};
static const double llm_first_token_buckets[] = {
    0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
};
/* Built-in tools answer in milliseconds; MCP tools up to their timeout. */
static const double tool_call_buckets[] = {
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
};
/* Ids claimed per statement: 1 up to the job threads of a worker. */
static const double claim_batch_buckets[] = { 1, 2, 4, 8, 16, 32, 64 };
#define NBUCKETS(b) (sizeof (b) / sizeof (b)[0])

static struct {
    atomic_bool ready;
    metric *queue_wait;         /* histogram {type} */
    metric *claim_batch;        /* histogram */
    metric *run_duration;       /* histogram {type, outcome} */
    metric *retries;            /* counter {type, reason} */
    metric *dead_letters;       /* counter {type} */
    metric *lease_expiries;     /* counter {type} */
    metric *reconciliations;    /* counter */
    metric *reconciled_jobs;    /* counter */
    metric *llm_duration;       /* histogram {provider, model, outcome} */
    metric *llm_first_token;    /* histogram {provider, model} */
    metric *llm_tokens;         /* counter {provider, model, direction} */
    metric *llm_errors;         /* counter {provider, model, reason} */
    metric *llm_circuit;        /* gauge {provider} */
    metric *tool_duration;      /* histogram {tool, outcome} */
    metric *job_threads;        /* gauge */
    metric *jobs_running;       /* gauge */
    metric *webhook_attempts;   /* histogram {outcome} */
} M;

static bool ready(void)
{
    return atomic_load_explicit(&M.ready, memory_order_acquire);
}

void worker_metrics_init(void)
{
    if (atomic_load(&M.ready))
        return;
    M.queue_wait = metric_histogram("agentgate_job_queue_wait_seconds",
        "Time from a job becoming due (queued, retried, or its run_at) to its start.",
        metric_buckets_job_seconds, metric_buckets_job_seconds_n, "type", NULL);
    M.claim_batch = metric_histogram("agentgate_worker_claim_batch_size",
        "Ids a worker claimed with one statement: the job threads idle at the take, "
        "or fewer when the queues held fewer.",
        claim_batch_buckets, NBUCKETS(claim_batch_buckets), NULL);
    M.run_duration = metric_histogram("agentgate_job_run_duration_seconds",
        "Time a job attempt ran, from its start to its outcome.",
        metric_buckets_job_seconds, metric_buckets_job_seconds_n, "type", "outcome", NULL);
    M.retries = metric_counter("agentgate_job_retries_total",
        "Jobs queued again for another attempt, by reason.", "type", "reason", NULL);
    M.dead_letters = metric_counter("agentgate_job_dead_letters_total",
        "Jobs that failed for good and went to the dead-letter list.", "type", NULL);
    M.lease_expiries = metric_counter("agentgate_job_lease_expiries_total",
        "Running jobs whose lease expired, found by this worker's reaper.", "type", NULL);
    M.reconciliations = metric_counter("agentgate_reconciliations_total",
        "Rounds of reconciling Redis with PostgreSQL this worker ran.", NULL);
    M.reconciled_jobs = metric_counter("agentgate_reconciled_jobs_total",
        "Queued jobs reconciliation found in no Redis queue and enqueued again.", NULL);
    M.llm_duration = metric_histogram("agentgate_llm_request_duration_seconds",
        "Requests to model providers, from sending to the end of the answer.",
        llm_call_buckets, NBUCKETS(llm_call_buckets), "provider", "model", "outcome", NULL);
    M.llm_first_token = metric_histogram("agentgate_llm_time_to_first_token_seconds",
        "Time from a model request to its first streamed text.",
        llm_first_token_buckets, NBUCKETS(llm_first_token_buckets), "provider", "model",
        NULL);
    M.llm_tokens = metric_counter("agentgate_llm_tokens_total",
        "Tokens providers counted, in requests (input) and answers (output).",
        "provider", "model", "direction", NULL);
    M.llm_errors = metric_counter("agentgate_llm_errors_total",
        "Failed requests to model providers, by kind of failure.",
        "provider", "model", "reason", NULL);
    M.llm_circuit = metric_gauge("agentgate_llm_circuit_state",
        "A provider's circuit as this worker last saw it: 0 closed, 1 open, 2 half-open.",
        "provider", NULL);
    M.tool_duration = metric_histogram("agentgate_tool_call_duration_seconds",
        "Tool calls (built-in and MCP), by tool and outcome.",
        tool_call_buckets, NBUCKETS(tool_call_buckets), "tool", "outcome", NULL);
    M.webhook_attempts = metric_histogram("agentgate_webhook_attempt_duration_seconds",
        "Webhook delivery attempts this worker made, by outcome (delivered, retrying, "
        "failed: no attempt follows).",
        tool_call_buckets, NBUCKETS(tool_call_buckets), "outcome", NULL);
    M.job_threads = metric_gauge("agentgate_worker_job_threads",
        "Job threads of this worker: the jobs it can run at once.", NULL);
    M.jobs_running = metric_gauge("agentgate_worker_jobs_running",
        "Jobs this worker is running now.", NULL);
    atomic_store(&M.ready, true);
}

/* At scrape time: the running count takes the worker's lock for a moment,
 * never a store. */
static void collect_worker(void *arg)
{
    worker *w = arg;
    series_set(metric_with(M.job_threads), w->nthreads);
    series_set(metric_with(M.jobs_running), worker_running_count(w));
}

void worker_metrics_watch(worker *w)
{
    if (ready() && metrics_on_collect(collect_worker, w) < 0)
        log_warn("metrics: out of memory: the running-jobs gauges stay 0");
}

static const char *label(const char *s)
{
    return s ? s : "";
}

void worker_metrics_job_started(const char *type, double queue_wait_s)
{
    if (ready() && queue_wait_s >= 0)
        series_observe(metric_with(M.queue_wait, label(type)), queue_wait_s);
}

void worker_metrics_claim_batch(int n)
{
    if (ready())
        series_observe(metric_with(M.claim_batch), n);
}

void worker_metrics_job_finished(const char *type, const char *outcome, double run_s)
{
    if (ready())
        series_observe(metric_with(M.run_duration, label(type), label(outcome)),
                       run_s < 0 ? 0 : run_s);
}

void worker_metrics_job_retried(const char *type, const char *reason)
{
    if (ready())
        series_inc(metric_with(M.retries, label(type), label(reason)));
}

void worker_metrics_dead_letter(const char *type)
{
    if (ready())
        series_inc(metric_with(M.dead_letters, label(type)));
}

void worker_metrics_lease_expired(const char *type)
{
    if (ready())
        series_inc(metric_with(M.lease_expiries, label(type)));
}

void worker_metrics_reconciled(int requeued)
{
    if (!ready())
        return;
    series_inc(metric_with(M.reconciliations));
    if (requeued > 0)
        series_add(metric_with(M.reconciled_jobs), requeued);
}

void worker_metrics_llm_call(const char *provider, const char *model, const char *outcome,
                             double duration_s, double first_token_s,
                             long long tokens_in, long long tokens_out)
{
    if (!ready())
        return;
    const char *p = label(provider), *m = label(model), *o = label(outcome);
    series_observe(metric_with(M.llm_duration, p, m, o), duration_s < 0 ? 0 : duration_s);
    if (first_token_s >= 0)
        series_observe(metric_with(M.llm_first_token, p, m), first_token_s);
    if (tokens_in > 0)
        series_add(metric_with(M.llm_tokens, p, m, "input"), (double)tokens_in);
    if (tokens_out > 0)
        series_add(metric_with(M.llm_tokens, p, m, "output"), (double)tokens_out);
    if (strcmp(o, "ok") != 0)
        series_inc(metric_with(M.llm_errors, p, m, o));
}

void worker_metrics_llm_circuit(const char *provider, int state)
{
    if (ready())
        series_set(metric_with(M.llm_circuit, label(provider)), state);
}

void worker_metrics_tool_call(const char *tool, const char *outcome, double duration_s)
{
    if (ready())
        series_observe(metric_with(M.tool_duration, tool ? tool : "(unknown)",
                                   label(outcome)),
                       duration_s < 0 ? 0 : duration_s);
}

void worker_metrics_webhook_attempt(const char *outcome, double duration_s)
{
    if (ready())
        series_observe(metric_with(M.webhook_attempts, label(outcome)),
                       duration_s < 0 ? 0 : duration_s);
}
