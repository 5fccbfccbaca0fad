/*
 * metrics.c - the metrics registry and its text exposition (see metrics.h).
 *
 * How it stays lock-free on the hot path: families and series are only ever
 * added, never removed (until metrics_free_all), and every list they hang on
 * is published with release stores and walked with acquire loads. A family
 * keeps its series in a fixed hash table of singly-linked chains (to find
 * one by label values) and in one list in creation order (to render them).
 * Creating a series takes the family's mutex, looks again, then publishes.
 *
 * Values are doubles kept as their bit patterns in 64-bit atomics, updated
 * with compare-and-swap loops (C11 has no atomic add on floating types).
 * A histogram keeps one count per bucket (not cumulative) and its sum; the
 * renderer accumulates the counts and reports their total as _count, so the
 * +Inf bucket and _count always agree even while observations land.
 */
#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "metrics.h"
#include "strbuf.h"

#define SERIES_BUCKETS 256      /* hash chains per family */
#define MAX_BOUNDS 32

enum kind { KIND_COUNTER = 'c', KIND_GAUGE = 'g', KIND_HISTOGRAM = 'h' };

struct metric_series {
    _Atomic(struct metric_series *) chain;  /* next in the same hash chain */
    _Atomic(struct metric_series *) next;   /* next in creation order */
    metric *family;
    uint64_t hash;
    char *values[METRIC_MAX_LABELS];        /* label values, owned */
    _Atomic uint64_t bits;                  /* counter/gauge value, or histogram sum */
    _Atomic uint64_t *counts;               /* histogram: nbounds + 1 bucket counts */
};

struct metric {
    _Atomic(struct metric *) next;          /* next family in registration order */
    const char *name, *help;
    enum kind kind;
    int nlabels;
    const char *labels[METRIC_MAX_LABELS];
    double bounds[MAX_BOUNDS];
    size_t nbounds;
    pthread_mutex_t lock;                   /* held only to create a series */
    int nseries;                            /* under lock */
    metric_series *tail;                    /* under lock */
    _Atomic(metric_series *) first;
    _Atomic(metric_series *) chains[SERIES_BUCKETS];
};

typedef struct collector {
    metrics_collect_fn fn;
    void *arg;
} collector;

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic(metric *) reg_first;
static metric *reg_tail;                    /* under reg_lock */
static collector *collectors;               /* under reg_lock */
static size_t ncollectors;

const double metric_buckets_request_seconds[] = {
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};
const size_t metric_buckets_request_seconds_n =
    sizeof metric_buckets_request_seconds / sizeof metric_buckets_request_seconds[0];
const double metric_buckets_job_seconds[] = {
    0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600,
};
const size_t metric_buckets_job_seconds_n =
    sizeof metric_buckets_job_seconds / sizeof metric_buckets_job_seconds[0];

/* ---- doubles in atomics ---- */

static uint64_t d2u(double v) { uint64_t u; memcpy(&u, &v, sizeof u); return u; }
static double u2d(uint64_t u) { double v; memcpy(&v, &u, sizeof v); return v; }

static void atomic_add_double(_Atomic uint64_t *a, double v)
{
    uint64_t old = atomic_load_explicit(a, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(a, &old, d2u(u2d(old) + v),
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
}

/* ---- name checks ---- */

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

/* Unit words that have a base unit instead, as whole words of a name. */
static const char *const non_base_units[] = {
    "milliseconds", "microseconds", "nanoseconds", "minutes", "hours", "days",
    "ms", "us", "ns", "sec", "secs", "min", "mins",
    "kilobytes", "megabytes", "gigabytes", "kb", "mb", "gb", "kib", "mib", "gib",
    "bits", "percent", "celsius",
};

int metric_name_check(char kind, const char *name, char *err, size_t err_size)
{
    static const char prefix[] = "agentgate_";
    if (!name || strncmp(name, prefix, sizeof prefix - 1) != 0 || !name[sizeof prefix - 1]) {
        errbuf_printf(err, err_size, "name must start with \"%s\"", prefix);
        return -1;
    }
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_')) {
            errbuf_printf(err, err_size, "name must be snake case ([a-z0-9_])");
            return -1;
        }
    if (strstr(name, "__") || ends_with(name, "_")) {
        errbuf_printf(err, err_size, "name has an empty word");
        return -1;
    }
    /* Each '_'-separated word against the non-base units. */
    for (const char *w = name; *w; ) {
        size_t n = strcspn(w, "_");
        for (size_t i = 0; i < sizeof non_base_units / sizeof non_base_units[0]; i++)
            if (strlen(non_base_units[i]) == n && memcmp(w, non_base_units[i], n) == 0) {
                errbuf_printf(err, err_size, "name uses the unit \"%s\": use base units "
                              "(seconds, bytes, ratio)", non_base_units[i]);
                return -1;
            }
        w += n;
        if (*w) w++;
    }
    if (ends_with(name, "_bucket") || ends_with(name, "_count") || ends_with(name, "_sum")) {
        errbuf_printf(err, err_size, "name ends with a suffix histograms reserve");
        return -1;
    }
    bool total = ends_with(name, "_total");
    if (kind == KIND_COUNTER && !total) {
        errbuf_printf(err, err_size, "a counter's name must end with \"_total\"");
        return -1;
    }
    if (kind != KIND_COUNTER && (total || strstr(name, "_total_"))) {
        errbuf_printf(err, err_size, "only counters' names may end with \"_total\"");
        return -1;
    }
    if (kind != KIND_COUNTER && kind != KIND_GAUGE && kind != KIND_HISTOGRAM) {
        errbuf_printf(err, err_size, "unknown kind");
        return -1;
    }
    return 0;
}

static int label_check(enum kind kind, const char *l, char *err, size_t err_size)
{
    if (!l[0] || (l[0] >= '0' && l[0] <= '9') || (l[0] == '_' && l[1] == '_')) {
        errbuf_printf(err, err_size, "label name \"%s\" is not valid", l);
        return -1;
    }
    for (const char *p = l; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_')) {
            errbuf_printf(err, err_size, "label name \"%s\" must be snake case", l);
            return -1;
        }
    if (kind == KIND_HISTOGRAM && strcmp(l, "le") == 0) {
        errbuf_printf(err, err_size, "label name \"le\" is reserved for histogram buckets");
        return -1;
    }
    return 0;
}

/* ---- registration ---- */

__attribute__((noreturn)) static void fail(const char *name, const char *why)
{
    fprintf(stderr, "metrics: cannot register %s: %s\n", name ? name : "(null)", why);
    abort();
}

static metric *reg_find(const char *name)
{
    for (metric *m = atomic_load_explicit(&reg_first, memory_order_acquire); m;
         m = atomic_load_explicit(&m->next, memory_order_acquire))
        if (strcmp(m->name, name) == 0)
            return m;
    return NULL;
}

static bool same_shape(const metric *a, const metric *b)
{
    if (a->kind != b->kind || a->nlabels != b->nlabels || a->nbounds != b->nbounds)
        return false;
    for (int i = 0; i < a->nlabels; i++)
        if (strcmp(a->labels[i], b->labels[i]) != 0)
            return false;
    for (size_t i = 0; i < a->nbounds; i++)
        if (a->bounds[i] != b->bounds[i])
            return false;
    return true;
}

static metric_series *series_new(metric *m, uint64_t hash, const char *const *values);
static uint64_t values_hash(int n, const char *const *values);

static metric *reg(enum kind kind, const char *name, const char *help,
                   const double *bounds, size_t nbounds, va_list ap)
{
    char why[160];
    metric proto = { .name = name, .help = help, .kind = kind };
    if (metric_name_check((char)kind, name, why, sizeof why) != 0)
        fail(name, why);
    if (!help || !help[0] || strchr(help, '\n'))
        fail(name, "help must be one non-empty line");
    for (const char *l; (l = va_arg(ap, const char *)); ) {
        if (proto.nlabels == METRIC_MAX_LABELS)
            fail(name, "too many labels");
        if (label_check(kind, l, why, sizeof why) != 0)
            fail(name, why);
        for (int i = 0; i < proto.nlabels; i++)
            if (strcmp(proto.labels[i], l) == 0)
                fail(name, "a label name is repeated");
        proto.labels[proto.nlabels++] = l;
    }
    if (kind == KIND_HISTOGRAM) {
        if (!bounds || nbounds == 0 || nbounds > MAX_BOUNDS)
            fail(name, "a histogram needs 1 to 32 bucket bounds");
        for (size_t i = 0; i < nbounds; i++) {
            if (!isfinite(bounds[i]) || (i > 0 && bounds[i] <= bounds[i - 1]))
                fail(name, "bucket bounds must be finite and strictly increasing");
            proto.bounds[i] = bounds[i];
        }
        proto.nbounds = nbounds;
    }

    pthread_mutex_lock(&reg_lock);
    metric *m = reg_find(name);
    if (m) {
        pthread_mutex_unlock(&reg_lock);
        if (!same_shape(m, &proto))
            fail(name, "registered before with another kind, labels or buckets");
        return m;
    }
    m = calloc(1, sizeof *m);
    if (!m)
        fail(name, "out of memory");
    *m = proto;
    pthread_mutex_init(&m->lock, NULL);
    /* A family without labels has exactly one series: create it now so it
     * is rendered (as 0) before anything happens. */
    if (m->nlabels == 0 && !series_new(m, values_hash(0, NULL), NULL))
        fail(name, "out of memory");
    if (reg_tail)
        atomic_store_explicit(&reg_tail->next, m, memory_order_release);
    else
        atomic_store_explicit(&reg_first, m, memory_order_release);
    reg_tail = m;
    pthread_mutex_unlock(&reg_lock);
    return m;
}

metric *metric_counter(const char *name, const char *help, ...)
{
    va_list ap;
    va_start(ap, help);
    metric *m = reg(KIND_COUNTER, name, help, NULL, 0, ap);
    va_end(ap);
    return m;
}

metric *metric_gauge(const char *name, const char *help, ...)
{
    va_list ap;
    va_start(ap, help);
    metric *m = reg(KIND_GAUGE, name, help, NULL, 0, ap);
    va_end(ap);
    return m;
}

metric *metric_histogram(const char *name, const char *help,
                         const double *bounds, size_t nbounds, ...)
{
    va_list ap;
    va_start(ap, nbounds);
    metric *m = reg(KIND_HISTOGRAM, name, help, bounds, nbounds, ap);
    va_end(ap);
    return m;
}

int metrics_on_collect(metrics_collect_fn fn, void *arg)
{
    pthread_mutex_lock(&reg_lock);
    collector *c = realloc(collectors, (ncollectors + 1) * sizeof *c);
    if (!c) {
        pthread_mutex_unlock(&reg_lock);
        return -1;
    }
    collectors = c;
    collectors[ncollectors++] = (collector){ fn, arg };
    pthread_mutex_unlock(&reg_lock);
    return 0;
}

/* ---- series ---- */

/* FNV-1a over the values, each followed by a 0xff byte (which UTF-8 text
 * never holds) so ("ab","c") and ("a","bc") differ. */
static uint64_t values_hash(int n, const char *const *values)
{
    uint64_t h = 1469598103934665603ULL;
    for (int i = 0; i < n; i++) {
        for (const unsigned char *p = (const unsigned char *)values[i]; *p; p++)
            h = (h ^ *p) * 1099511628211ULL;
        h = (h ^ 0xff) * 1099511628211ULL;
    }
    return h;
}

static metric_series *chain_find(metric *m, uint64_t hash, const char *const *values)
{
    for (metric_series *s = atomic_load_explicit(&m->chains[hash % SERIES_BUCKETS],
                                                 memory_order_acquire);
         s; s = atomic_load_explicit(&s->chain, memory_order_acquire)) {
        if (s->hash != hash)
            continue;
        int i = 0;
        while (i < m->nlabels && strcmp(s->values[i], values[i]) == 0)
            i++;
        if (i == m->nlabels)
            return s;
    }
    return NULL;
}

static void series_destroy(metric_series *s)
{
    for (int i = 0; i < METRIC_MAX_LABELS; i++)
        free(s->values[i]);
    free(s->counts);
    free(s);
}

/* Creates and publishes a series; the caller holds m->lock or is the
 * registering thread before m is visible. */
static metric_series *series_new(metric *m, uint64_t hash, const char *const *values)
{
    metric_series *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->family = m;
    s->hash = hash;
    for (int i = 0; i < m->nlabels; i++)
        if (!(s->values[i] = strdup(values[i]))) {
            series_destroy(s);
            return NULL;
        }
    if (m->kind == KIND_HISTOGRAM && !(s->counts = calloc(m->nbounds + 1, sizeof *s->counts))) {
        series_destroy(s);
        return NULL;
    }
    atomic_init(&s->bits, d2u(0.0));
    _Atomic(metric_series *) *head = &m->chains[hash % SERIES_BUCKETS];
    atomic_store_explicit(&s->chain, atomic_load_explicit(head, memory_order_relaxed),
                          memory_order_relaxed);
    atomic_store_explicit(head, s, memory_order_release);
    if (m->tail)
        atomic_store_explicit(&m->tail->next, s, memory_order_release);
    else
        atomic_store_explicit(&m->first, s, memory_order_release);
    m->tail = s;
    m->nseries++;
    return s;
}

static metric_series *with_va(metric *m, va_list ap)
{
    if (!m)
        return NULL;
    const char *values[METRIC_MAX_LABELS];
    for (int i = 0; i < m->nlabels; i++)
        if (!(values[i] = va_arg(ap, const char *)))
            return NULL;
    uint64_t hash = values_hash(m->nlabels, values);
    metric_series *s = chain_find(m, hash, values);
    if (s)
        return s;
    pthread_mutex_lock(&m->lock);
    s = chain_find(m, hash, values);
    if (!s && m->nseries < METRIC_MAX_SERIES)
        s = series_new(m, hash, values);
    pthread_mutex_unlock(&m->lock);
    return s;
}

metric_series *metric_with(metric *m, ...)
{
    va_list ap;
    va_start(ap, m);
    metric_series *s = with_va(m, ap);
    va_end(ap);
    return s;
}

void series_add(metric_series *s, double v)
{
    if (!s || s->family->kind == KIND_HISTOGRAM || isnan(v))
        return;
    if (s->family->kind == KIND_COUNTER && !(v >= 0))
        return;
    atomic_add_double(&s->bits, v);
}

void series_inc(metric_series *s)
{
    series_add(s, 1.0);
}

void series_set(metric_series *s, double v)
{
    if (!s || s->family->kind != KIND_GAUGE)
        return;
    atomic_store_explicit(&s->bits, d2u(v), memory_order_relaxed);
}

void series_observe(metric_series *s, double v)
{
    if (!s || s->family->kind != KIND_HISTOGRAM || isnan(v))
        return;
    metric *m = s->family;
    size_t b = 0;
    while (b < m->nbounds && v > m->bounds[b])     /* le: v <= bound */
        b++;
    atomic_fetch_add_explicit(&s->counts[b], 1, memory_order_relaxed);
    atomic_add_double(&s->bits, v);
}

double series_value(const metric_series *s)
{
    if (!s)
        return 0;
    if (s->family->kind != KIND_HISTOGRAM)
        return u2d(atomic_load_explicit(&s->bits, memory_order_relaxed));
    uint64_t n = 0;
    for (size_t b = 0; b <= s->family->nbounds; b++)
        n += atomic_load_explicit(&s->counts[b], memory_order_relaxed);
    return (double)n;
}

void metric_inc(metric *m, ...)
{
    va_list ap;
    va_start(ap, m);
    series_inc(with_va(m, ap));
    va_end(ap);
}

void metric_add(metric *m, double v, ...)
{
    va_list ap;
    va_start(ap, v);
    series_add(with_va(m, ap), v);
    va_end(ap);
}

void metric_set(metric *m, double v, ...)
{
    va_list ap;
    va_start(ap, v);
    series_set(with_va(m, ap), v);
    va_end(ap);
}

void metric_observe(metric *m, double v, ...)
{
    va_list ap;
    va_start(ap, v);
    series_observe(with_va(m, ap), v);
    va_end(ap);
}

/* ---- exposition ---- */

/* The shortest text that reads back as v, or the format's NaN/+Inf/-Inf. */
static void add_double(strbuf *out, double v)
{
    if (isnan(v)) { strbuf_add(out, "NaN"); return; }
    if (isinf(v)) { strbuf_add(out, v > 0 ? "+Inf" : "-Inf"); return; }
    if (v == 0) { strbuf_add(out, "0"); return; }     /* also -0 */
    char buf[40];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    strbuf_add(out, buf);
}

static void add_escaped(strbuf *out, const char *s, bool quote)
{
    for (const char *p = s; *p; p++) {
        size_t n = strcspn(p, quote ? "\\\"\n" : "\\\n");
        strbuf_addn(out, p, n);
        p += n;
        if (!*p)
            break;
        strbuf_add(out, *p == '\n' ? "\\n" : *p == '"' ? "\\\"" : "\\\\");
    }
}

static void add_header(strbuf *out, const char *name, const char *help, const char *type)
{
    strbuf_addf(out, "# HELP %s ", name);
    add_escaped(out, help, false);
    strbuf_addf(out, "\n# TYPE %s %s\n", name, type);
}

/* name{l1="v1",...[,le="bound"]} — the braces left out when empty. */
static void add_sample_name(strbuf *out, const metric *m, const char *suffix,
                            const metric_series *s, const char *le)
{
    strbuf_add(out, m->name);
    strbuf_add(out, suffix);
    if (m->nlabels == 0 && !le)
        return;
    strbuf_add(out, "{");
    for (int i = 0; i < m->nlabels; i++) {
        strbuf_addf(out, "%s%s=\"", i ? "," : "", m->labels[i]);
        add_escaped(out, s->values[i], true);
        strbuf_add(out, "\"");
    }
    if (le)
        strbuf_addf(out, "%sle=\"%s\"", m->nlabels ? "," : "", le);
    strbuf_add(out, "}");
}

static void render_family(strbuf *out, const metric *m)
{
    add_header(out, m->name, m->help, m->kind == KIND_COUNTER ? "counter"
                                      : m->kind == KIND_GAUGE ? "gauge" : "histogram");
    for (const metric_series *s = atomic_load_explicit(&m->first, memory_order_acquire); s;
         s = atomic_load_explicit(&s->next, memory_order_acquire)) {
        if (m->kind != KIND_HISTOGRAM) {
            add_sample_name(out, m, "", s, NULL);
            strbuf_add(out, " ");
            add_double(out, u2d(atomic_load_explicit(&s->bits, memory_order_relaxed)));
            strbuf_add(out, "\n");
            continue;
        }
        uint64_t cum = 0;
        for (size_t b = 0; b <= m->nbounds; b++) {
            char le[40] = "+Inf";
            if (b < m->nbounds) {
                strbuf tmp = {0};
                add_double(&tmp, m->bounds[b]);
                snprintf(le, sizeof le, "%s", tmp.s ? tmp.s : "0");
                strbuf_free(&tmp);
            }
            cum += atomic_load_explicit(&s->counts[b], memory_order_relaxed);
            add_sample_name(out, m, "_bucket", s, le);
            strbuf_addf(out, " %llu\n", (unsigned long long)cum);
        }
        add_sample_name(out, m, "_sum", s, NULL);
        strbuf_add(out, " ");
        add_double(out, u2d(atomic_load_explicit(&s->bits, memory_order_relaxed)));
        strbuf_add(out, "\n");
        add_sample_name(out, m, "_count", s, NULL);
        strbuf_addf(out, " %llu\n", (unsigned long long)cum);
    }
}

/* ---- process_* from /proc ---- */

typedef struct proc_stat {
    double cpu_seconds, start_time_seconds, vsize_bytes, rss_bytes;
} proc_stat;

static double boot_time_seconds(void)
{
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return 0;
    char line[256];
    double btime = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "btime %lf", &btime) == 1)
            break;
    fclose(f);
    return btime;
}

/* The boot time is constant for the life of the system: read once. */
static pthread_once_t btime_once = PTHREAD_ONCE_INIT;
static double btime;
static void read_btime(void) { btime = boot_time_seconds(); }

/* Fields of /proc/self/stat after the command name (which may hold spaces
 * and parentheses, hence the search for the last ')'). Returns -1 when the
 * file cannot be read. */
static int read_proc_stat(proc_stat *ps)
{
    char buf[1024];
    FILE *f = fopen("/proc/self/stat", "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    unsigned long utime, stime, vsize;
    unsigned long long starttime;
    long rss;
    /* state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
     * utime stime cutime cstime priority nice threads itrealvalue starttime
     * vsize rss */
    if (sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %*d %*d %*d "
                      "%*d %*d %*d %llu %lu %ld", &utime, &stime, &starttime, &vsize, &rss) != 5)
        return -1;
    double hz = (double)sysconf(_SC_CLK_TCK);
    if (hz <= 0)
        hz = 100;
    pthread_once(&btime_once, read_btime);
    ps->cpu_seconds = (double)(utime + stime) / hz;
    ps->start_time_seconds = btime + (double)starttime / hz;
    ps->vsize_bytes = (double)vsize;
    ps->rss_bytes = (double)rss * (double)sysconf(_SC_PAGESIZE);
    return 0;
}

/* Open descriptors, not counting the one used to list them; -1 on error. */
static long count_open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    long n = 0;
    for (struct dirent *e; (e = readdir(d)); )
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1;
}

static void add_process_gauge(strbuf *out, const char *name, const char *help,
                              const char *type, double v)
{
    add_header(out, name, help, type);
    strbuf_addf(out, "%s ", name);
    add_double(out, v);
    strbuf_add(out, "\n");
}

static void render_process(strbuf *out)
{
    proc_stat ps;
    if (read_proc_stat(&ps) == 0) {
        add_process_gauge(out, "process_cpu_seconds_total",
                          "Total user and system CPU time spent in seconds.", "counter",
                          ps.cpu_seconds);
        add_process_gauge(out, "process_resident_memory_bytes",
                          "Resident memory size in bytes.", "gauge", ps.rss_bytes);
        add_process_gauge(out, "process_virtual_memory_bytes",
                          "Virtual memory size in bytes.", "gauge", ps.vsize_bytes);
        add_process_gauge(out, "process_start_time_seconds",
                          "Start time of the process since unix epoch in seconds.", "gauge",
                          ps.start_time_seconds);
    }
    long fds = count_open_fds();
    if (fds >= 0)
        add_process_gauge(out, "process_open_fds", "Number of open file descriptors.",
                          "gauge", (double)fds);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        add_process_gauge(out, "process_max_fds", "Maximum number of open file descriptors.",
                          "gauge", rl.rlim_cur == RLIM_INFINITY ? INFINITY : (double)rl.rlim_cur);
}

int metrics_render(strbuf *out)
{
    /* Copy the collectors so none runs under reg_lock: they may register
     * series, and a slow one must not hold up registration. */
    pthread_mutex_lock(&reg_lock);
    size_t n = ncollectors;
    collector *copy = n ? malloc(n * sizeof *copy) : NULL;
    if (copy)
        memcpy(copy, collectors, n * sizeof *copy);
    pthread_mutex_unlock(&reg_lock);
    if (n && !copy) {
        out->oom = true;
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        copy[i].fn(copy[i].arg);
    free(copy);

    for (metric *m = atomic_load_explicit(&reg_first, memory_order_acquire); m;
         m = atomic_load_explicit(&m->next, memory_order_acquire))
        render_family(out, m);
    render_process(out);
    return out->oom ? -1 : 0;
}

void metrics_free_all(void)
{
    pthread_mutex_lock(&reg_lock);
    metric *m = atomic_load_explicit(&reg_first, memory_order_relaxed);
    atomic_store_explicit(&reg_first, NULL, memory_order_relaxed);
    reg_tail = NULL;
    free(collectors);
    collectors = NULL;
    ncollectors = 0;
    pthread_mutex_unlock(&reg_lock);
    while (m) {
        metric *next = atomic_load_explicit(&m->next, memory_order_relaxed);
        metric_series *s = atomic_load_explicit(&m->first, memory_order_relaxed);
        while (s) {
            metric_series *sn = atomic_load_explicit(&s->next, memory_order_relaxed);
            series_destroy(s);
            s = sn;
        }
        pthread_mutex_destroy(&m->lock);
        free(m);
        m = next;
    }
}
