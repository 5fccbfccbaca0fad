/*
 * worker_metrics.h - the worker's Prometheus series, in one place: which
 * families exist, their labels and buckets, and one call per thing that
 * happens (a job started, a job ended, a model call, a tool call...).
 * The places where those things happen call these and nothing else of
 * common/metrics.h, so a series is named and labelled once.
 *
 * Every call is cheap and thread-safe (a lock-free series lookup and an
 * atomic add; common/metrics.h), and does nothing before
 * worker_metrics_init, so code run without it (unit tests, agentgate-mcp)
 * needs no setup. String arguments are label values: job types, outcomes,
 * provider, model and tool names; NULL counts as "".
 *
 * Outcomes are short fixed words, listed with each call; the series they
 * produce are listed in docs/operations.md ("Watching the workers").
 */
#ifndef AG_WORKER_METRICS_H
#define AG_WORKER_METRICS_H

#include <stdbool.h>

#include "worker_state.h"

/* Registers the worker's families. Call once at start, before any thread
 * that reports; later calls do nothing. */
void worker_metrics_init(void);

/* From now on every scrape reads w's job threads and how many of them run
 * a job (agentgate_worker_job_threads, agentgate_worker_jobs_running).
 * Call once, after worker_init; w must stay valid while metrics are
 * served (stop the listener before worker_free). */
void worker_metrics_watch(worker *w);

/* A job was claimed and starts now, queue_wait_s seconds after it became
 * due (queued, retried, handed back, or its run_at); a negative wait is
 * unknown and not observed. */
void worker_metrics_job_started(const char *type, double queue_wait_s);

/* The worker claimed a batch of n popped ids with one statement
 * (agentgate_worker_claim_batch_size). */
void worker_metrics_claim_batch(int n);

/* An attempt of a job of this type ended after run_s seconds with outcome
 * "succeeded", "failed", "cancelled", "retried" (queued again after a
 * retryable failure), "handed_back" (worker shutdown) or "lost" (another
 * attempt owns the job now). */
void worker_metrics_job_finished(const char *type, const char *outcome, double run_s);

/* A job of this type was queued again for another attempt; reason is
 * "failure" (a retryable failure), "lease_expired", "worker_restarted" or
 * "shutdown". */
void worker_metrics_job_retried(const char *type, const char *reason);

/* A job of this type failed for good and went to the dead-letter list. */
void worker_metrics_dead_letter(const char *type);

/* The reaper found a job of this type whose lease had expired. */
void worker_metrics_lease_expired(const char *type);

/* This worker ran a reconciliation round (it held the round's lock) and
 * enqueued again `requeued` queued jobs that were in no Redis queue. */
void worker_metrics_reconciled(int requeued);

/*
 * One request to a model provider ended: outcome "ok", or the failure's
 * kind in a word ("timeout", "rate_limited", "unavailable", "aborted",
 * "invalid_request", ...; llm_strerror-style); duration_s from the request
 * to its end; first_token_s from the request to the first streamed text,
 * negative when none came; tokens as the provider counted them (0 when it
 * did not say).
 */
void worker_metrics_llm_call(const char *provider, const char *model, const char *outcome,
                             double duration_s, double first_token_s,
                             long long tokens_in, long long tokens_out);

/* The provider's circuit as this process last saw it: 0 closed, 1 open,
 * 2 half-open (the router's CIRCUIT_* values). */
void worker_metrics_llm_circuit(const char *provider, int state);

/* A tool call (built-in or MCP: tool is its manifest name; pass NULL for
 * a name no manifest has, which is counted as "(unknown)" so made-up names
 * cannot grow the series) ended after duration_s seconds with outcome
 * "ok", "not_found", "invalid", "denied", "rate_limited" or "failed"
 * (tools.h's tool_status names). */
void worker_metrics_tool_call(const char *tool, const char *outcome, double duration_s);

/* A webhook delivery attempt ended after duration_s seconds with outcome
 * "delivered", "retrying" (it failed; another attempt is planned) or
 * "failed" (it failed and none follows). */
void worker_metrics_webhook_attempt(const char *outcome, double duration_s);

#endif
