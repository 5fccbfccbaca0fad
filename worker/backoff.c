/*
 * backoff.c - the reconnect schedule of the worker's connections
 * (see backoff.h).
 */
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
