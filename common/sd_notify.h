/*
 * sd_notify.h - telling systemd how the process is doing: readiness,
 * shutdown, and a watchdog that vouches for every loop of the process.
 *
 * The messages go through libsystemd's sd_notify to $NOTIFY_SOCKET; when
 * the process is not run by a Type=notify unit (no NOTIFY_SOCKET) every
 * call here does nothing. The watchdog: each loop the process depends on
 * registers once and ticks from inside the loop at least every
 * sdn_tick_interval_ms(); a thread wakes every WatchdogSec/2 and sends
 * WATCHDOG=1 only when every registered loop ticked since its last wake.
 * A loop that hangs stops the pings, and systemd restarts the process.
 */
#ifndef AG_SD_NOTIFY_H
#define AG_SD_NOTIFY_H

#include <stdbool.h>

/* READY=1, with status (may be NULL) as the unit's STATUS= line. Sent
 * once per process; later calls do nothing. Thread-safe. */
void sdn_ready(const char *status);

/* STOPPING=1, with status (may be NULL). Sent once; thread-safe. */
void sdn_stopping(const char *status);

/* One loop watched by the watchdog; static storage, never freed. */
typedef struct sdn_loop sdn_loop;

/*
 * Registers a loop named name (copied; for the log line that names a
 * stalled loop). Thread-safe; a loop may register after the watchdog
 * started (a gateway loop thread registers as it starts). Returns the
 * handle, or NULL when the fixed table (SDN_MAX_LOOPS) is full (logged;
 * the process then runs without that loop watched).
 */
sdn_loop *sdn_loop_register(const char *name);

#define SDN_MAX_LOOPS 300

/* Marks l as having turned. Lock-free; l may be NULL (does nothing). */
void sdn_loop_tick(sdn_loop *l);

/*
 * How often, in ms, a loop should tick: a quarter of the ping interval,
 * so a turning loop never misses a ping. 0 when systemd asked for no
 * watchdog (WATCHDOG_USEC unset or meant for another pid): then ticks
 * are not needed at all.
 */
long long sdn_tick_interval_ms(void);

/*
 * Starts the watchdog thread when systemd asked for one. Returns 0 (also
 * when none was asked for), or -1 when the thread could not be created
 * (logged).
 */
int sdn_watchdog_start(void);

/* Stops the watchdog thread and waits for it; safe when none runs. */
void sdn_watchdog_stop(void);

/*
 * True when AGENTGATE_TEST_HOOKS=1 is in the environment: only then does
 * a process act on its test-only signals (SIGUSR2 stalls a loop, so a
 * test can see the watchdog pings end). The variable is read from the
 * environment alone, never from a config file or a request.
 */
bool sdn_test_hooks(void);

#endif
