/*
 * sd_notify.c - readiness, stopping and the loop watchdog (sd_notify.h).
 *
 * Loops live in a fixed table: registration takes a mutex (rare), ticking
 * is one relaxed atomic add, and the watchdog thread reads each loop's
 * count without a lock. The thread sleeps on a condition variable so
 * sdn_watchdog_stop wakes it at once. A loop found stalled is logged once
 * per stall, by name, so the journal says which loop hung before systemd
 * restarts the process.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <systemd/sd-daemon.h>

#include "clock.h"
#include "log.h"
#include "sd_notify.h"

struct sdn_loop {
    char name[48];
    atomic_ullong ticks;
    unsigned long long seen;    /* ticks at the watchdog's last wake (its own) */
    long long seen_ms;          /* monotonic ms seen last changed */
    bool stall_logged;
};

static sdn_loop loops[SDN_MAX_LOOPS];
static atomic_int nloops;
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;

static atomic_int ready_sent, stopping_sent;

static pthread_t wd_tid;
static bool wd_started;
static bool wd_stop;                        /* under wd_lock */
static pthread_mutex_t wd_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wd_cond;
static long long wd_interval_ms;            /* between pings */

static void notify(const char *state, const char *status)
{
    char msg[320];
    if (status != NULL)
        snprintf(msg, sizeof msg, "%s\nSTATUS=%.256s", state, status);
    else
        snprintf(msg, sizeof msg, "%s", state);
    int rc = sd_notify(0, msg);
    if (rc < 0)
        log_warn("sd_notify %s: %s", state, strerror(-rc));
}

void sdn_ready(const char *status)
{
    if (atomic_exchange(&ready_sent, 1) == 0)
        notify("READY=1", status);
}

void sdn_stopping(const char *status)
{
    if (atomic_exchange(&stopping_sent, 1) == 0)
        notify("STOPPING=1", status);
}

/* The ping interval systemd asked for, in ms; 0 for none. */
static long long ping_interval_ms(void)
{
    uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0)
        return 0;
    long long ms = (long long)(usec / 2000);
    return ms > 0 ? ms : 1;
}

long long sdn_tick_interval_ms(void)
{
    long long ms = ping_interval_ms();
    if (ms == 0)
        return 0;
    return ms / 4 > 0 ? ms / 4 : 1;
}

sdn_loop *sdn_loop_register(const char *name)
{
    pthread_mutex_lock(&reg_lock);
    int i = atomic_load(&nloops);
    if (i >= SDN_MAX_LOOPS) {
        pthread_mutex_unlock(&reg_lock);
        log_warn("watchdog: more than %d loops; %s is not watched", SDN_MAX_LOOPS, name);
        return NULL;
    }
    sdn_loop *l = &loops[i];
    snprintf(l->name, sizeof l->name, "%s", name);
    atomic_init(&l->ticks, 1);      /* registering counts as a turn */
    l->seen = 0;
    l->seen_ms = clock_mono_ms();
    l->stall_logged = false;
    /* Published last: the watchdog reads only loops below nloops. */
    atomic_store(&nloops, i + 1);
    pthread_mutex_unlock(&reg_lock);
    return l;
}

void sdn_loop_tick(sdn_loop *l)
{
    if (l != NULL)
        atomic_fetch_add_explicit(&l->ticks, 1, memory_order_relaxed);
}

/* True when every loop turned since the last call; logs each loop that
 * did not, once per stall, and when it turns again. */
static bool all_loops_turned(long long now)
{
    bool all = true;
    int n = atomic_load(&nloops);
    for (int i = 0; i < n; i++) {
        sdn_loop *l = &loops[i];
        unsigned long long t = atomic_load_explicit(&l->ticks, memory_order_relaxed);
        if (t != l->seen) {
            if (l->stall_logged)
                log_info("watchdog: %s turns again", l->name);
            l->seen = t;
            l->seen_ms = now;
            l->stall_logged = false;
            continue;
        }
        all = false;
        if (!l->stall_logged) {
            log_error("watchdog: %s has not turned for %lld ms; no WATCHDOG=1 until it does",
                      l->name, now - l->seen_ms);
            l->stall_logged = true;
        }
    }
    return all;
}

static void *watchdog_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&wd_lock);
    while (!wd_stop) {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += wd_interval_ms / 1000;
        until.tv_nsec += (wd_interval_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        while (!wd_stop && pthread_cond_timedwait(&wd_cond, &wd_lock, &until) != ETIMEDOUT)
            ;
        if (wd_stop)
            break;
        pthread_mutex_unlock(&wd_lock);
        if (all_loops_turned(clock_mono_ms()))
            notify("WATCHDOG=1", NULL);
        pthread_mutex_lock(&wd_lock);
    }
    pthread_mutex_unlock(&wd_lock);
    return NULL;
}

int sdn_watchdog_start(void)
{
    wd_interval_ms = ping_interval_ms();
    if (wd_interval_ms == 0 || wd_started)
        return 0;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&wd_cond, &ca);
    pthread_condattr_destroy(&ca);
    wd_stop = false;
    int err = pthread_create(&wd_tid, NULL, watchdog_main, NULL);
    if (err != 0) {
        log_error("cannot start the watchdog thread: %s", strerror(err));
        pthread_cond_destroy(&wd_cond);
        return -1;
    }
    wd_started = true;
    log_info("watchdog: WATCHDOG=1 every %lld ms while every loop turns", wd_interval_ms);
    return 0;
}

void sdn_watchdog_stop(void)
{
    if (!wd_started)
        return;
    pthread_mutex_lock(&wd_lock);
    wd_stop = true;
    pthread_cond_signal(&wd_cond);
    pthread_mutex_unlock(&wd_lock);
    pthread_join(wd_tid, NULL);
    pthread_cond_destroy(&wd_cond);
    wd_started = false;
}

bool sdn_test_hooks(void)
{
    const char *v = getenv("AGENTGATE_TEST_HOOKS");
    return v != NULL && strcmp(v, "1") == 0;
}
