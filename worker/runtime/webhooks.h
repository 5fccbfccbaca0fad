/*
 * webhooks.h - the worker's webhook sender: one thread per worker process
 * that sends completion webhooks from the outbox PostgreSQL keeps
 * (webhook_deliveries, written with each terminal state; see
 * sql/migrations/020_webhooks.sql).
 *
 * It leases one due delivery at a time (webhook_claim: SKIP LOCKED and a
 * lease of the attempt timeout plus a margin), POSTs its body signed the
 * Standard Webhooks way (webhook-id, webhook-timestamp, webhook-signature;
 * common/webhook_sign.h) and records the attempt (webhook_record): a 2xx
 * delivers it; anything else - another status, a timeout, a refused
 * connection - schedules the next try after backoff_retry_delay_ms
 * (AGENTGATE_WEBHOOK_RETRY_BASE_MS doubling up to ..._MAX_MS, with jitter)
 * unless that would start later than AGENTGATE_WEBHOOK_RETRY_WINDOW_S
 * after the job ended, when the delivery fails for good. A worker killed
 * mid-attempt records nothing; the lease runs out and any worker's sender
 * claims the delivery again, so delivery is at least once and receivers
 * deduplicate by webhook-id.
 */
#ifndef AG_WORKER_WEBHOOKS_H
#define AG_WORKER_WEBHOOKS_H

#include <stdbool.h>

#include "config.h"

typedef struct webhook_sender webhook_sender;

/*
 * Starts the sender thread for worker worker_id with cfg (both borrowed
 * until webhook_sender_stop). Returns it, or NULL when it could not start
 * (logged; the other workers' senders still deliver).
 */
webhook_sender *webhook_sender_start(const ag_config *cfg, const char *worker_id);

/*
 * Stops the thread - an attempt under way is cut short and recorded as
 * due again at once - waits for it, closes its connection and frees s.
 * NULL is ignored.
 */
void webhook_sender_stop(webhook_sender *s);

/*
 * The schedule after failed attempt number attempt (1 for the first) of a
 * delivery whose job ended at created_ms, at wall time now_ms (both epoch
 * ms): returns the delay before the next attempt, base_ms doubled per
 * attempt up to max_ms with jitter from rnd (backoff_retry_delay_ms), and
 * sets *give_up when that attempt would start more than window_s after
 * the job ended.
 */
long long webhook_retry_plan(int attempt, long long created_ms, long long now_ms,
                             long long base_ms, long long max_ms, long long window_s,
                             unsigned long long rnd, bool *give_up);

/* The margin added to AGENTGATE_WEBHOOK_TIMEOUT_MS for a delivery's lease:
 * time to record the attempt once it has ended. */
#define WEBHOOK_LEASE_MARGIN_MS 5000

/* The most of a receiver's answer read; the rest is not awaited. */
#define WEBHOOK_RESPONSE_MAX_BYTES 65536

#endif
