/*
 * worker_metrics_http.h - the worker's own HTTP listener for Prometheus:
 * GET /metrics answers with the process's registry (common/metrics.h) in
 * the text exposition format. Off unless AGENTGATE_WORKER_METRICS_LISTEN
 * is set; it never touches a job, a store or the supervisor, so a scrape
 * cannot slow a job down and a stuck store cannot stop a scrape.
 */
#ifndef AG_WORKER_METRICS_HTTP_H
#define AG_WORKER_METRICS_HTTP_H

#include <stddef.h>

#include "config.h"

typedef struct metrics_http metrics_http;

/*
 * Binds cfg's AGENTGATE_WORKER_METRICS_LISTEN host and port (plus
 * AGENTGATE_WORKER_METRICS_PORT_OFFSET) and starts the listener's thread.
 * Returns the listener (free it with metrics_http_stop), NULL with err
 * empty when the setting is empty (off), or NULL with a one-line reason in
 * err (err_size bytes) when the address cannot be bound or the thread not
 * started.
 */
metrics_http *metrics_http_start(const ag_config *cfg, char *err, size_t err_size);

/* The port m listens on (the setting's port plus the offset); 0 for NULL. */
int metrics_http_port(const metrics_http *m);

/* Stops the thread, closes the socket and frees m. NULL is a no-op. */
void metrics_http_stop(metrics_http *m);

#endif
