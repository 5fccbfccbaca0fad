/*
 * backoff.c - the reconnect schedule of the worker's connections
 * (see backoff.h).
 */
#include <stdatomic.h>

#include "backoff.h"
#include "clock.h"

#define BACKOFF_SLICE_MS 50

void backoff_reset(backoff *b)
{
    b->delay_ms = BACKOFF_FIRST_MS;
    b->next_ms = 0;
}

long long backoff_failed(backoff *b, long long now_ms)
{
    long long delay = b->delay_ms < BACKOFF_FIRST_MS ? BACKOFF_FIRST_MS : b->delay_ms;
    b->next_ms = now_ms + delay;
    b->delay_ms = delay * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : delay * 2;
    return delay;
}

bool backoff_due(const backoff *b, long long now_ms)
{
    return now_ms >= b->next_ms;
}

bool backoff_wait(const backoff *b, stop_fn stop, void *arg)
{
    for (;;) {
        if (stop && stop(arg))
            return false;
        long long left = b->next_ms - clock_mono_ms();
        if (left <= 0)
            return true;
        clock_sleep_ms(left < BACKOFF_SLICE_MS ? left : BACKOFF_SLICE_MS);
    }
}

long long backoff_retry_delay_ms(int n, long long base_ms, long long max_ms,
                                 unsigned long long rnd)
{
    if (base_ms < 1)
        base_ms = 1;
    if (max_ms < base_ms)
        max_ms = base_ms;
    long long delay = base_ms;
    for (int i = 1; i < n && delay < max_ms; i++)
        delay *= 2;
    if (delay > max_ms)
        delay = max_ms;
    long long half = delay / 2;
    return delay - half + (long long)(rnd % (unsigned long long)(half + 1));
}

/* splitmix64 over a shared counter seeded from the clock: cheap, lock-free
 * and good enough to spread retries; never used for anything secret. */
unsigned long long backoff_random(void)
{
    static atomic_ullong state;
    unsigned long long z = atomic_fetch_add(&state, 0x9E3779B97F4A7C15ULL);
    if (z == 0) {
        unsigned long long seed = (unsigned long long)clock_wall_ms() * 0x2545F4914F6CDD1DULL;
        atomic_compare_exchange_strong(&state, &(unsigned long long){ 0x9E3779B97F4A7C15ULL },
                                       seed | 1);
        z = seed;
    }
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}
