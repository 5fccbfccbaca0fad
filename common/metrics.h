/*
 * metrics.h - the process's Prometheus metrics: one registry of counter,
 * gauge and histogram families, and their rendering in the text exposition
 * format 0.0.4 (what /metrics serves on the gateway and on each worker).
 *
 * Families are registered once, at start, by name; a name that breaks the
 * Prometheus conventions (an "agentgate_" prefix, snake case, base units
 * such as _seconds and _bytes, counters and only counters ending _total) is
 * a programming error: registration prints one line and aborts, so any test
 * that starts the process catches it. Registering the same name again with
 * the same kind and labels returns the family already registered.
 *
 * A family has 0 to METRIC_MAX_LABELS label names. A series is one set of
 * label values; metric_with() finds or creates it and returns a handle that
 * stays valid for the life of the process, so hot paths resolve it once and
 * then update it with series_*(), which are lock-free (relaxed atomics).
 * Everything here may be called from any thread. Lookups do not lock either;
 * only creating a new series takes the family's mutex.
 *
 * Values read at scrape time (queue depth, open streams) come from collectors:
 * callbacks metrics_render() runs first, on the scraping thread, which set
 * gauges with series_set(). metrics_render() also writes the standard
 * process_* metrics, read from /proc at that moment.
 */
#ifndef AG_METRICS_H
#define AG_METRICS_H

#include <stddef.h>

#include "strbuf.h"

#define METRIC_MAX_LABELS 4
/* Series per family beyond which metric_with() returns NULL: a guard against
 * unbounded label values (a tenant-chosen string used as a label by mistake). */
#define METRIC_MAX_SERIES 2000

typedef struct metric metric;               /* a family: name, help, kind, label names */
typedef struct metric_series metric_series; /* one set of label values of a family */

/*
 * Registers a counter (name ends _total), a gauge, or a histogram. help is
 * one line of text. The variadic arguments are the label names, 0 to
 * METRIC_MAX_LABELS of them, ended by NULL, e.g.
 *     metric_counter("agentgate_jobs_submitted_total", "Jobs accepted.", "type", NULL);
 * name, help and label names must outlive the process (string literals).
 * A histogram's bounds are the upper bounds of its buckets in base units
 * (seconds, bytes), strictly increasing, finite, 1..32 of them (copied);
 * +Inf is added. Returns the family, never NULL: an invalid name, help,
 * label or bounds, a clash with a family of that name of another shape, or
 * out of memory prints one line to stderr and aborts.
 */
metric *metric_counter(const char *name, const char *help, ...);
metric *metric_gauge(const char *name, const char *help, ...);
metric *metric_histogram(const char *name, const char *help,
                         const double *bounds, size_t nbounds, ...);

/* Bucket bounds in seconds for request latencies (5 ms .. 10 s) and for job
 * waits and runs (10 ms .. 1 h), and their counts, for metric_histogram(). */
extern const double metric_buckets_request_seconds[];
extern const size_t metric_buckets_request_seconds_n;
extern const double metric_buckets_job_seconds[];
extern const size_t metric_buckets_job_seconds_n;

/*
 * The series of m with these label values: exactly as many const char *
 * arguments as m has labels (none for a family without labels), each
 * non-NULL (any bytes; escaped when rendered). The first call creates it
 * (value 0); later calls return the same pointer, owned by the registry and
 * valid until metrics_free_all(). Returns NULL when m already has
 * METRIC_MAX_SERIES series or memory runs out; series_*() accept NULL and
 * do nothing, so callers need not check.
 */
metric_series *metric_with(metric *m, ...);

/* Update a series. series_inc adds 1 and series_add adds v (v >= 0 for a
 * counter; a negative v is ignored there) to a counter or gauge; series_set
 * sets a gauge (ignored on other kinds); series_observe records one sample
 * v in a histogram (ignored on other kinds). NULL s does nothing. */
void series_inc(metric_series *s);
void series_add(metric_series *s, double v);
void series_set(metric_series *s, double v);
void series_observe(metric_series *s, double v);

/* Current value of a counter or gauge series (0 for NULL), or a histogram
 * series' sample count. For tests and collectors. */
double series_value(const metric_series *s);

/* Convenience for cold paths: metric_with(m, labels...) then the update.
 * The label values follow the value argument. */
void metric_inc(metric *m, ...);
void metric_add(metric *m, double v, ...);
void metric_set(metric *m, double v, ...);
void metric_observe(metric *m, double v, ...);

/* A callback metrics_render() calls, in registration order, before it reads
 * any value: it should set gauges from state it can read without blocking
 * (atomics, a cached snapshot). arg is passed back; it must outlive the
 * registry. Returns 0, or -1 when out of memory. */
typedef void (*metrics_collect_fn)(void *arg);
int metrics_on_collect(metrics_collect_fn fn, void *arg);

/*
 * Appends the exposition of every family (in registration order) and of
 * the process_* metrics (process_cpu_seconds_total,
 * process_resident_memory_bytes, process_virtual_memory_bytes,
 * process_open_fds, process_max_fds, process_start_time_seconds) to out, in
 * the text format 0.0.4 (Content-Type METRICS_CONTENT_TYPE). Runs the
 * collectors first. Returns 0, or -1 when out->oom is set.
 */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
int metrics_render(strbuf *out);

/* Checks a metric name against the conventions registration enforces, for
 * a counter (kind 'c'), gauge ('g') or histogram ('h'). Returns 0, or -1
 * with the reason in err. */
int metric_name_check(char kind, const char *name, char *err, size_t err_size);

/* Frees every family, series and collector (tests, and exit under leak
 * checkers). No other metrics call may run at the same time or after,
 * except registering anew. */
void metrics_free_all(void);

#endif
