/*
 * worker_state.c - the worker's shared state (see worker_state.h): its
 * stop flags and the running-jobs table the job threads, the supervisor
 * and the shutdown sequence read and change under the worker's mutex.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "log.h"
#include "worker_state.h"

const char *stop_reason_name(int reason)
{
    switch (reason) {
    case STOP_NONE:     return "none";
    case STOP_CANCEL:   return "cancel";
    case STOP_TIMEOUT:  return "timeout";
    case STOP_SHUTDOWN: return "shutdown";
    case STOP_LOST:     return "lost";
    }
    return "unknown";
}

bool worker_stopping(const worker *w)
{
    return atomic_load(&w->stopping) != 0;
}

bool worker_hard_stopping(const worker *w)
{
    return atomic_load(&w->hard_stop) != 0;
}

long long worker_hard_stop_ms(const worker *w)
{
    return atomic_load(&w->hard_stop_ms);
}

run_slot *worker_slot_begin(worker *w, int index, const char *job_id, const char *tenant_id,
                            int attempt, int timeout_s)
{
    run_slot *s = &w->slots[index];
    pthread_mutex_lock(&w->lock);
    s->generation++;
    snprintf(s->job_id, sizeof s->job_id, "%s", job_id);
    snprintf(s->tenant_id, sizeof s->tenant_id, "%s", tenant_id);
    s->attempt = attempt;
    s->timeout_s = timeout_s;
    s->deadline_ms = clock_mono_ms() + (long long)timeout_s * 1000;
    /* A job claimed after the grace ran out goes straight back. */
    atomic_store(&s->stop, worker_hard_stopping(w) ? STOP_SHUTDOWN : STOP_NONE);
    s->state = SLOT_RUNNING;
    pthread_mutex_unlock(&w->lock);
    return s;
}

int worker_slot_finishing(worker *w, int index)
{
    run_slot *s = &w->slots[index];
    pthread_mutex_lock(&w->lock);
    s->state = SLOT_FINISHING;
    int reason = atomic_load(&s->stop);
    pthread_mutex_unlock(&w->lock);
    return reason;
}

void worker_slot_end(worker *w, int index)
{
    run_slot *s = &w->slots[index];
    pthread_mutex_lock(&w->lock);
    s->state = SLOT_IDLE;
    s->job_id[0] = '\0';
    pthread_mutex_unlock(&w->lock);
}

size_t worker_running(worker *w, running_job *out, size_t max)
{
    size_t n = 0;
    pthread_mutex_lock(&w->lock);
    for (int i = 0; i < w->nthreads && n < max; i++) {
        const run_slot *s = &w->slots[i];
        if (s->state != SLOT_RUNNING)
            continue;
        running_job *rj = &out[n++];
        rj->slot = i;
        rj->generation = s->generation;
        memcpy(rj->job_id, s->job_id, sizeof rj->job_id);
        memcpy(rj->tenant_id, s->tenant_id, sizeof rj->tenant_id);
        rj->deadline_ms = s->deadline_ms;
        rj->timeout_s = s->timeout_s;
    }
    pthread_mutex_unlock(&w->lock);
    return n;
}

int worker_running_count(worker *w)
{
    int n = 0;
    pthread_mutex_lock(&w->lock);
    for (int i = 0; i < w->nthreads; i++)
        n += w->slots[i].state != SLOT_IDLE;
    pthread_mutex_unlock(&w->lock);
    return n;
}

bool worker_stop_job(worker *w, const running_job *rj, int reason)
{
    bool set = false;
    pthread_mutex_lock(&w->lock);
    run_slot *s = &w->slots[rj->slot];
    if (s->state == SLOT_RUNNING && s->generation == rj->generation) {
        int expected = STOP_NONE;
        set = atomic_compare_exchange_strong(&s->stop, &expected, reason);
    }
    if (set) pthread_cond_broadcast(&w->stop_cond);
    pthread_mutex_unlock(&w->lock);
    return set;
}

void worker_stop_all_running(worker *w)
{
    long long zero = 0;
    atomic_compare_exchange_strong(&w->hard_stop_ms, &zero, clock_mono_ms());
    atomic_store(&w->hard_stop, 1);
    pthread_mutex_lock(&w->lock);
    for (int i = 0; i < w->nthreads; i++) {
        run_slot *s = &w->slots[i];
        int expected = STOP_NONE;
        if (s->state == SLOT_RUNNING
            && atomic_compare_exchange_strong(&s->stop, &expected, STOP_SHUTDOWN))
            log_info("job %s: shutdown; stopping its handler to hand it back", s->job_id);
    }
    pthread_cond_broadcast(&w->stop_cond);
    pthread_mutex_unlock(&w->lock);
}

void worker_wait_stop(worker *w, run_slot *slot, long long ms)
{
    if (ms <= 0) return;
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += (time_t)(ms / 1000);
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&w->lock);
    while (atomic_load(&slot->stop) == STOP_NONE &&
           pthread_cond_timedwait(&w->stop_cond, &w->lock, &until) == 0)
        ;
    pthread_mutex_unlock(&w->lock);
}
