/*
 * notify.h - the gateway's side of systemd's notify protocol: READY=1 once
 * it listens and every loop thread has PostgreSQL and Redis, STOPPING=1
 * when it drains, and the watchdog ticks of the main loop and of every
 * loop thread (common/sd_notify.h). Nothing runs unless NOTIFY_SOCKET is
 * set.
 */
#ifndef AG_GATEWAY_NOTIFY_H
#define AG_GATEWAY_NOTIFY_H

#include "gateway.h"

/*
 * Called on the main thread once the listener is bound, before the main
 * loop runs: starts the main loop's tick and readiness timer, the
 * watchdog thread, and (with AGENTGATE_TEST_HOOKS=1 only) the SIGUSR2
 * handler that stalls loop thread 0. Returns 0, or -1 (logged) when the
 * watchdog thread cannot start.
 */
int gw_notify_start(gw_server *srv);

/* Called on each loop thread as it starts (thread_init), after t->index
 * is set: its tick and readiness timer. */
void gw_notify_thread_start(gw_thread *t);

/* Called on each loop thread as it ends (thread_exit). */
void gw_notify_thread_stop(gw_thread *t);

/* Called on the main thread when the drain begins: STOPPING=1, and a loop
 * stalled by the test hook is released so the process can exit. */
void gw_notify_stopping(gw_server *srv);

/* Called on the main thread after the main loop ended: stops the watchdog
 * and frees the main timer. */
void gw_notify_stop(void);

#endif
