/*
 * backoff.h - the worker's reconnect schedule: wait 100 ms after the first
 * failure, doubling up to 5 s, so a dead dependency costs a few log lines
 * a second at most and never a busy or crash loop.
 */
#ifndef AG_WORKER_BACKOFF_H
#define AG_WORKER_BACKOFF_H

#include <stdbool.h>

#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS   5000

typedef struct backoff {
    long long delay_ms;     /* wait after the next failure */
    long long next_ms;      /* monotonic time before which no retry is due */
} backoff;

/* Asked while waiting: true means give up now. */
typedef bool (*stop_fn)(void *arg);

/* Back to the first delay, with a retry due at once. */
void backoff_reset(backoff *b);

/* Records a failure at monotonic time now_ms: the next retry is due after
 * the current delay, which then doubles up to BACKOFF_MAX_MS. Returns the
 * delay just scheduled (ms). */
long long backoff_failed(backoff *b, long long now_ms);

/* True when a retry is due at monotonic time now_ms. */
bool backoff_due(const backoff *b, long long now_ms);

/* Sleeps until the retry is due, in slices of at most 50 ms, asking
 * stop(arg) (when not NULL) between slices. Returns false when stop said
 * to give up, true when the retry is due. */
bool backoff_wait(const backoff *b, stop_fn stop, void *arg);

/*
 * The delay before retry number n (1 for the first retry) of something
 * that failed: base_ms doubled per retry, capped at max_ms, with "equal
 * jitter" (half of it fixed, half random) so retries of many jobs or
 * calls spread out but none comes back sooner than half its schedule.
 * rnd is any random 64-bit value (backoff_random gives one). Returns ms.
 */
long long backoff_retry_delay_ms(int n, long long base_ms, long long max_ms,
                                 unsigned long long rnd);

/* A random 64-bit value for jitter (not for secrets). Thread-safe. */
unsigned long long backoff_random(void);

#endif
