/*
 * notify.c - READY=1, STOPPING=1 and watchdog ticks for the gateway.
 *
 * Every loop (the main one that takes signals, and each libevhtp loop
 * thread) runs one persistent timer. Its callback, on that loop, ticks the
 * loop's watchdog entry and, until the loop's stores are up, checks its
 * PostgreSQL pool and Redis link and publishes the answer in an atomic
 * flag; the main loop's timer sends READY=1 once every loop thread has
 * started and raised its flag. So readiness and liveness are both read
 * from inside the loops, never by another thread touching their state.
 *
 * The test hook (AGENTGATE_TEST_HOOKS=1 in the environment only): SIGUSR2
 * makes loop thread 0 sleep until the drain begins, a hung loop as the
 * watchdog sees it. Without the variable no handler is installed.
 */
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <event2/event.h>

#include "notify.h"
#include "log.h"
#include "pg_async.h"
#include "redis_async.h"
#include "sd_notify.h"

#define READY_POLL_MS 100      /* timer period until a loop's stores are up */

typedef struct loop_watch {
    struct event *timer;
    sdn_loop *wd;
    atomic_bool ready;         /* written by the loop, read by the main loop */
    long long period_ms;       /* once ready */
} loop_watch;

static loop_watch threads[GW_MAX_THREADS];
static loop_watch main_watch;
static struct event *stall_signal;
static atomic_bool stalled;

/* Loop threads start before gw_notify_start runs: each asks for itself. */
static bool enabled(void)
{
    return getenv("NOTIFY_SOCKET") != NULL;
}

static struct timeval tv_ms(long long ms)
{
    struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000) };
    return tv;
}

/* Switches a ready loop's timer to the watchdog's period, or off when no
 * watchdog wants ticks. */
static void settle(loop_watch *w)
{
    if (w->period_ms == 0) {
        event_del(w->timer);
        return;
    }
    struct timeval tv = tv_ms(w->period_ms);
    event_add(w->timer, &tv);
}

static void thread_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd; (void)what;
    gw_thread *t = arg;
    loop_watch *w = &threads[t->index];
    sdn_loop_tick(w->wd);
    if (!atomic_load(&w->ready) && pg_pool_ready(t->pg) && rds_ready(t->redis)) {
        atomic_store(&w->ready, true);
        settle(w);
    }
}

/* True once every loop thread has started and found its stores up. */
static bool all_threads_ready(const gw_server *srv)
{
    int n = atomic_load(&srv->nthreads);
    if (n < srv->cfg.gateway_threads)
        return false;
    for (int i = 0; i < n; i++)
        if (!atomic_load(&threads[i].ready))
            return false;
    return true;
}

static void main_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd; (void)what;
    gw_server *srv = arg;
    sdn_loop_tick(main_watch.wd);
    if (!atomic_load(&main_watch.ready) && all_threads_ready(srv)) {
        atomic_store(&main_watch.ready, true);
        char status[200];
        snprintf(status, sizeof status, "listening on %s:%d with %d loop threads",
                 srv->cfg.listen_addr, srv->cfg.listen_port, srv->cfg.gateway_threads);
        log_info("ready: %s", status);
        sdn_ready(status);
        settle(&main_watch);
    }
}

/* Runs on loop thread 0 (test hook): the loop hangs until the drain. */
static void stall_loop(evutil_socket_t fd, short what, void *arg)
{
    (void)fd; (void)what; (void)arg;
    log_warn("test hook: loop thread 0 stalls until the gateway stops");
    struct timespec ts = { 0, 10 * 1000000L };
    while (atomic_load(&stalled))
        nanosleep(&ts, NULL);
}

static void on_stall_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)sig; (void)what;
    gw_server *srv = arg;
    if (atomic_load(&srv->nthreads) == 0 || atomic_exchange(&stalled, true))
        return;
    struct timeval now = { 0, 0 };
    event_base_once(srv->threads[0]->base, -1, EV_TIMEOUT, stall_loop, NULL, &now);
}

/* A loop's timer: READY_POLL_MS until its stores are up, then the
 * watchdog's tick period (0: none). */
static int watch_start(loop_watch *w, struct event_base *base, event_callback_fn cb,
                       void *arg, const char *name)
{
    long long tick = sdn_tick_interval_ms();
    w->period_ms = tick;
    atomic_store(&w->ready, false);
    w->wd = tick > 0 ? sdn_loop_register(name) : NULL;
    w->timer = event_new(base, -1, EV_PERSIST, cb, arg);
    if (w->timer == NULL)
        return -1;
    struct timeval tv = tv_ms(tick > 0 && tick < READY_POLL_MS ? tick : READY_POLL_MS);
    return event_add(w->timer, &tv);
}

static void watch_stop(loop_watch *w)
{
    if (w->timer != NULL)
        event_free(w->timer);
    w->timer = NULL;
}

void gw_notify_thread_start(gw_thread *t)
{
    if (!enabled())
        return;
    char name[48];
    snprintf(name, sizeof name, "gateway loop thread %d", t->index);
    if (watch_start(&threads[t->index], t->base, thread_timer, t, name) != 0)
        log_error("%s: cannot start its readiness timer; READY=1 will not be sent", name);
}

void gw_notify_thread_stop(gw_thread *t)
{
    watch_stop(&threads[t->index]);
}

int gw_notify_start(gw_server *srv)
{
    if (!enabled())
        return 0;
    if (watch_start(&main_watch, srv->base, main_timer, srv, "gateway main loop") != 0)
        log_error("cannot start the readiness timer; READY=1 will not be sent");
    if (sdn_test_hooks()) {
        stall_signal = evsignal_new(srv->base, SIGUSR2, on_stall_signal, srv);
        if (stall_signal != NULL)
            event_add(stall_signal, NULL);
    }
    return sdn_watchdog_start();
}

void gw_notify_stopping(gw_server *srv)
{
    (void)srv;
    atomic_store(&stalled, false);
    if (enabled())
        sdn_stopping("draining");
}

void gw_notify_stop(void)
{
    sdn_watchdog_stop();
    watch_stop(&main_watch);
    if (stall_signal != NULL)
        event_free(stall_signal);
    stall_signal = NULL;
}
