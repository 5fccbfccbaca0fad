/*
 * otlp_export.h - exports ended spans (common/trace.h) to an OpenTelemetry
 * collector with OTLP over HTTP, JSON encoding (POST <endpoint>/v1/traces).
 *
 * One background thread per process. span_end hands a span to a bounded
 * queue (a mutex held for a pointer copy, never for I/O); the thread takes
 * up to a batch of spans when the batch is full or the interval has
 * passed, encodes them and POSTs them with libcurl under a timeout. A full
 * queue drops the new span, a failed POST drops its batch: both are
 * counted (agentgate_otlp_spans_dropped_total{reason}) and never retried,
 * so a slow or absent collector costs memory up to the queue's bound and
 * nothing else. No caller ever waits for the collector.
 */
#ifndef AG_OTLP_EXPORT_H
#define AG_OTLP_EXPORT_H

#include <stddef.h>

#include "config.h"

/*
 * Starts exporting when cfg->otlp_endpoint is set (else does nothing and
 * returns 0): registers the exporter as the span sink, sets the sampling
 * ratio and starts the thread. service_name ("agentgate-gateway") is the
 * service.name resource attribute (copied). Call once at start, before
 * other threads start spans (it initialises libcurl itself). Returns 0,
 * or -1 with a reason in err.
 */
int otlp_export_start(const ag_config *cfg, const char *service_name, char *err, size_t err_size);

/*
 * Stops the exporter: spans still queued get one last try, a POST still
 * going a second after the call is aborted (its spans dropped and
 * counted), the thread is joined, spans ended afterwards are freed. Safe
 * to call when it never started.
 */
void otlp_export_stop(void);

/* Spans dropped so far because the queue was full, and because their POST
 * failed; spans exported. For tests and logs (the metrics carry them too). */
unsigned long long otlp_export_dropped_full(void);
unsigned long long otlp_export_dropped_failed(void);
unsigned long long otlp_export_exported(void);

#endif
