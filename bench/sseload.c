/*
 * sseload.c - many SSE subscribers from one process, for bench/run's
 * fan-out scenarios (agentgate and nchan alike).
 *
 * One libevent loop drives every connection with plain non-blocking
 * sockets (no bufferevents: one read buffer shared by all, a small carry
 * per connection only while a line is split across reads), so the client
 * costs far less per event than the server it measures. Each connection
 * sends one GET, checks for a 200, undoes chunked transfer encoding when
 * the server uses it, and reads SSE lines. A data line carrying
 * "sent_us":N (CLOCK_REALTIME microseconds at the emitter) gives one
 * latency sample: the receive time of the read() that brought it, minus
 * N. Samples go to a log-linear histogram (32 steps per power of two, so
 * a quantile is within 3%).
 *
 *   sseload --url http://127.0.0.1:8080/v1/jobs/ID/events --conns 1000
 *           [--header "Authorization: Bearer T"]... [--parallel 256]
 *           [--source-ips K] [--max-seconds S] [--ready-file F] [--expect N]
 *
 * Connections open at most --parallel at a time (a burst of thousands of
 * SYNs would only overflow the server's accept queue). When every
 * connection has its 200 (or failed), "ready" goes to --ready-file, so the
 * caller can start the emitter with everyone listening. The run ends when
 * every stream has ended (server close, a terminal job event, or a data
 * line with "end":true) or after --max-seconds. With --source-ips K,
 * connection i binds to 127.0.0.(1 + i % K), for when one source address's
 * ephemeral ports run short.
 *
 * Prints one line of key=value pairs (see print_summary).
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <event2/event.h>

#define READ_BUF (256 * 1024)
#define MAX_HEADERS 16
#define LINE_MAX_BYTES (1024 * 1024)

/* --- latency histogram (microseconds) ------------------------------------ */

#define HIST_LINEAR 64
#define HIST_SUB 32
#define HIST_BUCKETS (HIST_LINEAR + 40 * HIST_SUB)

static uint64_t hist[HIST_BUCKETS];
static uint64_t hist_count;
static long long hist_max_us;

static int hist_index(long long us)
{
    if (us < 0) us = 0;
    if (us < HIST_LINEAR) return (int)us;
    int e = 63 - __builtin_clzll((unsigned long long)us);    /* >= 6 */
    int shift = e - 5;
    int idx = HIST_LINEAR + (e - 6) * HIST_SUB + (int)((us >> shift) - HIST_SUB);
    return idx < HIST_BUCKETS ? idx : HIST_BUCKETS - 1;
}

/* The middle of bucket idx, in microseconds. */
static double hist_value(int idx)
{
    if (idx < HIST_LINEAR) return idx;
    int e = (idx - HIST_LINEAR) / HIST_SUB + 6;
    long long m = (idx - HIST_LINEAR) % HIST_SUB + HIST_SUB;
    long long lo = m << (e - 5), hi = ((m + 1) << (e - 5)) - 1;
    return (lo + hi) / 2.0;
}

static void hist_add(long long us)
{
    hist[hist_index(us)]++;
    hist_count++;
    if (us > hist_max_us) hist_max_us = us;
}

/* The q-quantile (0..1) in milliseconds; 0 with no samples. */
static double hist_quantile_ms(double q)
{
    if (hist_count == 0) return 0;
    uint64_t rank = (uint64_t)(q * (double)hist_count);
    if (rank >= hist_count) rank = hist_count - 1;
    uint64_t seen = 0;
    for (int i = 0; i < HIST_BUCKETS; i++) {
        seen += hist[i];
        if (seen > rank) {
            double v = hist_value(i);
            return (v > hist_max_us ? hist_max_us : v) / 1000.0;
        }
    }
    return hist_max_us / 1000.0;
}

/* --- connections --------------------------------------------------------- */

enum conn_state { C_IDLE, C_CONNECTING, C_HEADERS, C_STREAM, C_DONE };
enum chunk_state { CH_SIZE, CH_DATA, CH_DATA_END, CH_END };

typedef struct conn {
    int fd;
    int index;
    enum conn_state state;
    struct event *ev;
    size_t sent;               /* request bytes written so far */
    bool chunked;
    enum chunk_state ch;
    long long ch_left;         /* bytes left in the current chunk */
    char chsize[20];           /* a chunk-size line split across reads */
    unsigned chsize_len;
    char *carry;               /* a line split across reads */
    size_t carry_len, carry_cap;
    long long events;
    bool ended;                /* saw its end marker: a close is expected */
} conn;

static struct {
    const char *host;
    int port;
    const char *path;
    const char *headers[MAX_HEADERS];
    int nheaders;
    int conns;
    int parallel;
    int source_ips;
    double max_seconds;
    const char *ready_file;
    long long expect;
} opt = { .parallel = 256, .source_ips = 1, .max_seconds = 60 };

static struct event_base *base;
static conn *conns;
static char *request;
static size_t request_len;
static int next_to_open, opening, held, failed, finished, cut;
static bool ready_sent;
static long long events_total, first_event_us, last_event_us;
static char readbuf[READ_BUF];
static char first_error[256];

static long long now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void note_error(const char *fmt, const char *what)
{
    if (first_error[0] == '\0')
        snprintf(first_error, sizeof first_error, fmt, what);
}

static void open_more(void);
static void on_io(evutil_socket_t fd, short what, void *arg);

static void maybe_ready(void)
{
    if (ready_sent || held + failed < opt.conns) return;
    ready_sent = true;
    if (opt.ready_file) {
        FILE *f = fopen(opt.ready_file, "w");
        if (f) {
            fprintf(f, "ready held=%d failed=%d\n", held, failed);
            fclose(f);
        }
    }
}

static void maybe_finish(void)
{
    if (failed + finished >= opt.conns)
        event_base_loopbreak(base);
}

/* Closes c. how: 0 the stream ended as expected, 1 it failed before its
 * 200, 2 the server cut a started stream short. */
static void conn_close(conn *c, int how)
{
    if (c->state == C_DONE || c->state == C_IDLE) return;
    bool was_opening = c->state == C_CONNECTING || c->state == C_HEADERS;
    if (c->ev) { event_free(c->ev); c->ev = NULL; }
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
    free(c->carry);
    c->carry = NULL;
    c->carry_len = c->carry_cap = 0;
    c->state = C_DONE;
    if (was_opening) {
        opening--;
        failed++;
    } else {
        finished++;
        if (how == 2) cut++;
    }
    maybe_ready();
    open_more();
    maybe_finish();
}

/* Finds needle in the first len bytes of s. */
static const char *find(const char *s, size_t len, const char *needle)
{
    return memmem(s, len, needle, strlen(needle));
}

/* One complete SSE line (without its newline). */
static void sse_line(conn *c, const char *line, size_t len, long long recv_us)
{
    if (len < 5 || memcmp(line, "data:", 5) != 0) return;
    const char *p = find(line, len, "\"sent_us\":");
    if (p) {
        /* strtod: a JSON writer may print a large integer with an
         * exponent (1.7637e+15); doubles hold microsecond epochs exactly. */
        long long sent = (long long)strtod(p + 10, NULL);
        hist_add(recv_us - sent);
        c->events++;
        events_total++;
        if (first_event_us == 0) first_event_us = recv_us;
        last_event_us = recv_us;
    }
    if (find(line, len, "\"end\":true") || find(line, len, "\"type\":\"job.succeeded\"")
        || find(line, len, "\"type\":\"job.failed\"")
        || find(line, len, "\"type\":\"job.cancelled\""))
        c->ended = true;
}

static int carry_append(conn *c, const char *p, size_t n)
{
    if (c->carry_len + n > LINE_MAX_BYTES) return -1;
    if (c->carry_len + n + 1 > c->carry_cap) {   /* + 1: room for a NUL */
        size_t cap = c->carry_cap ? c->carry_cap * 2 : 512;
        while (cap < c->carry_len + n + 1) cap *= 2;
        char *nc = realloc(c->carry, cap);
        if (!nc) return -1;
        c->carry = nc;
        c->carry_cap = cap;
    }
    memcpy(c->carry + c->carry_len, p, n);
    c->carry_len += n;
    return 0;
}

/* Stream payload bytes (after de-chunking) into SSE lines. */
static int sse_bytes(conn *c, const char *p, size_t n, long long recv_us)
{
    while (n > 0) {
        const char *nl = memchr(p, '\n', n);
        if (!nl) return carry_append(c, p, n);
        size_t len = (size_t)(nl - p);
        if (c->carry_len) {
            if (carry_append(c, p, len) < 0) return -1;
            size_t l = c->carry_len;
            if (l && c->carry[l - 1] == '\r') l--;
            sse_line(c, c->carry, l, recv_us);
            c->carry_len = 0;
        } else {
            size_t l = len;
            if (l && p[l - 1] == '\r') l--;
            sse_line(c, p, l, recv_us);
        }
        p = nl + 1;
        n -= len + 1;
    }
    return 0;
}

/* Undoes chunked transfer encoding; chunk-size lines go through carry. */
static int body_bytes(conn *c, const char *p, size_t n, long long recv_us)
{
    if (!c->chunked) return sse_bytes(c, p, n, recv_us);
    while (n > 0) {
        switch (c->ch) {
        case CH_SIZE: {
            /* Its own buffer: a chunk may end mid SSE line, so the
             * SSE carry can be in use. */
            const char *nl = memchr(p, '\n', n);
            size_t take = nl ? (size_t)(nl - p) : n;
            if (c->chsize_len + take >= sizeof c->chsize) return -1;
            memcpy(c->chsize + c->chsize_len, p, take);
            c->chsize_len += (unsigned)take;
            if (!nl) return 0;
            c->chsize[c->chsize_len] = '\0';
            c->chsize_len = 0;
            char *end;
            long long size = strtoll(c->chsize, &end, 16);
            if (end == c->chsize || size < 0) return -1;
            p = nl + 1;
            n -= take + 1;
            c->ch_left = size;
            c->ch = size == 0 ? CH_END : CH_DATA;
            break;
        }
        case CH_DATA: {
            size_t take = n < (size_t)c->ch_left ? n : (size_t)c->ch_left;
            if (sse_bytes(c, p, take, recv_us) < 0) return -1;
            p += take;
            n -= take;
            c->ch_left -= (long long)take;
            if (c->ch_left == 0) c->ch = CH_DATA_END;
            break;
        }
        case CH_DATA_END:
            /* The CRLF after a chunk's data. */
            if (*p == '\n') c->ch = CH_SIZE;
            p++;
            n--;
            break;
        case CH_END:
            c->ended = true;
            return 0;
        }
    }
    return 0;
}

/* The response head, read through the carry as lines; the bytes after the
 * blank line go on to body_bytes. Returns -1 on a non-200. */
static int head_bytes(conn *c, const char *p, size_t n, long long recv_us)
{
    while (n > 0 && c->state == C_HEADERS) {
        const char *nl = memchr(p, '\n', n);
        size_t take = nl ? (size_t)(nl - p) : n;
        if (carry_append(c, p, take) < 0) return -1;
        if (!nl) return 0;
        p = nl + 1;
        n -= take + 1;
        size_t l = c->carry_len;
        if (l && c->carry[l - 1] == '\r') l--;
        c->carry[l] = '\0';   /* carry_append left room: cap > len */
        if (strncmp(c->carry, "HTTP/1.", 7) == 0) {
            if (l < 12 || strncmp(c->carry + 9, "200", 3) != 0) {
                note_error("a subscriber's request was answered: %s", c->carry);
                return -1;
            }
        } else if (strncasecmp(c->carry, "transfer-encoding:", 18) == 0
                   && strcasestr(c->carry, "chunked")) {
            c->chunked = true;
        } else if (l == 0) {
            c->state = C_STREAM;
            opening--;
            held++;
            maybe_ready();
            open_more();
        }
        c->carry_len = 0;
    }
    return n > 0 ? body_bytes(c, p, n, recv_us) : 0;
}

static void conn_read(conn *c)
{
    for (;;) {
        ssize_t n = read(c->fd, readbuf, sizeof readbuf);
        if (n > 0) {
            long long t = now_us();
            int rc = c->state == C_HEADERS ? head_bytes(c, readbuf, (size_t)n, t)
                                           : body_bytes(c, readbuf, (size_t)n, t);
            if (rc < 0) { conn_close(c, c->state == C_STREAM ? 2 : 1); return; }
            if (c->ended) { conn_close(c, 0); return; }   /* keep-alive: we close */
            if ((size_t)n < sizeof readbuf) return;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) note_error("read: %s", strerror(errno));
        else if (c->state != C_STREAM) note_error("%s", "a server closed before its 200");
        conn_close(c, c->state == C_STREAM ? (c->ended ? 0 : 2) : 1);
        return;
    }
}

static void conn_write(conn *c)
{
    while (c->sent < request_len) {
        ssize_t n = write(c->fd, request + c->sent, request_len - c->sent);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) { note_error("connect/write: %s", strerror(errno)); conn_close(c, 1); return; }
        c->sent += (size_t)n;
    }
    /* Sent: from now on only reads matter. */
    event_free(c->ev);
    c->ev = event_new(base, c->fd, EV_READ | EV_PERSIST, on_io, c);
    if (!c->ev || event_add(c->ev, NULL) < 0) { conn_close(c, 1); return; }
    c->state = C_HEADERS;
}

static void on_io(evutil_socket_t fd, short what, void *arg)
{
    conn *c = arg;
    (void)fd;
    if (c->state == C_CONNECTING && (what & EV_WRITE)) conn_write(c);
    else if (what & EV_READ) conn_read(c);
}

static int conn_open(conn *c)
{
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) { note_error("socket: %s", strerror(errno)); return -1; }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (opt.source_ips > 1) {
        /* The port is chosen at connect time, per source address. */
        setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        struct sockaddr_in src = { .sin_family = AF_INET };
        src.sin_addr.s_addr = htonl(0x7f000001u + (uint32_t)(c->index % opt.source_ips));
        if (bind(c->fd, (struct sockaddr *)&src, sizeof src) < 0) {
            note_error("bind: %s", strerror(errno));
            return -1;
        }
    }
    struct sockaddr_in dst = { .sin_family = AF_INET, .sin_port = htons((uint16_t)opt.port) };
    if (inet_pton(AF_INET, opt.host, &dst.sin_addr) != 1) return -1;
    if (connect(c->fd, (struct sockaddr *)&dst, sizeof dst) < 0 && errno != EINPROGRESS) {
        note_error("connect: %s", strerror(errno));
        return -1;
    }
    c->state = C_CONNECTING;
    c->ev = event_new(base, c->fd, EV_WRITE | EV_READ | EV_PERSIST, on_io, c);
    if (!c->ev || event_add(c->ev, NULL) < 0) return -1;
    return 0;
}

static void open_more(void)
{
    while (opening < opt.parallel && next_to_open < opt.conns) {
        conn *c = &conns[next_to_open];
        c->index = next_to_open++;
        opening++;
        if (conn_open(c) < 0) {
            if (c->state == C_IDLE) c->state = C_CONNECTING;   /* count it as failed */
            conn_close(c, 1);
        }
    }
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd; (void)what; (void)arg;
    event_base_loopbreak(base);
}

/* --- setup --------------------------------------------------------------- */

static void raise_nofile(int need)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0) return;
    rlim_t want = (rlim_t)need + 64;
    if (rl.rlim_cur >= want) return;
    if (rl.rlim_max < want) rl.rlim_max = want;   /* works as root */
    rl.rlim_cur = want;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
        getrlimit(RLIMIT_NOFILE, &rl);
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        fprintf(stderr, "sseload: open files limited to %llu (need %d)\n",
                (unsigned long long)rl.rlim_cur, need + 64);
    }
}

static int parse_url(const char *url)
{
    static char host[64];
    if (strncmp(url, "http://", 7) != 0) return -1;
    const char *h = url + 7;
    const char *colon = strchr(h, ':');
    const char *slash = strchr(h, '/');
    if (!colon || !slash || colon > slash || (size_t)(colon - h) >= sizeof host) return -1;
    memcpy(host, h, (size_t)(colon - h));
    host[colon - h] = '\0';
    opt.host = host;
    opt.port = atoi(colon + 1);
    opt.path = slash;
    return opt.port > 0 && opt.port < 65536 ? 0 : -1;
}

static int build_request(void)
{
    size_t cap = 256 + strlen(opt.path) + strlen(opt.host);
    for (int i = 0; i < opt.nheaders; i++) cap += strlen(opt.headers[i]) + 2;
    request = malloc(cap);
    if (!request) return -1;
    int n = snprintf(request, cap, "GET %s HTTP/1.1\r\nHost: %s:%d\r\nAccept: text/event-stream\r\n",
                     opt.path, opt.host, opt.port);
    for (int i = 0; i < opt.nheaders; i++)
        n += snprintf(request + n, cap - (size_t)n, "%s\r\n", opt.headers[i]);
    n += snprintf(request + n, cap - (size_t)n, "\r\n");
    request_len = (size_t)n;
    return 0;
}

static void print_summary(double seconds)
{
    double span = (last_event_us - first_event_us) / 1e6;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = ru.ru_utime.tv_sec + ru.ru_stime.tv_sec
                 + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    long long expected = opt.expect * (long long)held;
    printf("held=%d failed=%d cut=%d events=%lld expected=%lld rate=%.0f "
           "p50_ms=%.2f p99_ms=%.2f p999_ms=%.2f max_ms=%.2f seconds=%.1f cpu_s=%.2f%s%s\n",
           held, failed, cut, events_total, expected,
           span > 0 ? events_total / span : 0.0,
           hist_quantile_ms(0.50), hist_quantile_ms(0.99), hist_quantile_ms(0.999),
           hist_max_us / 1000.0, seconds, cpu,
           first_error[0] ? " first_error=" : "", first_error);
}

static void usage(void)
{
    fprintf(stderr, "usage: sseload --url http://HOST:PORT/PATH --conns N [--header 'K: V']...\n"
            "               [--parallel N] [--source-ips K] [--max-seconds S]\n"
            "               [--ready-file F] [--expect EVENTS_PER_CONN]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *url = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc) usage();
        const char *v = argv[++i];
        if (!strcmp(a, "--url")) url = v;
        else if (!strcmp(a, "--conns")) opt.conns = atoi(v);
        else if (!strcmp(a, "--header") && opt.nheaders < MAX_HEADERS) opt.headers[opt.nheaders++] = v;
        else if (!strcmp(a, "--parallel")) opt.parallel = atoi(v);
        else if (!strcmp(a, "--source-ips")) opt.source_ips = atoi(v);
        else if (!strcmp(a, "--max-seconds")) opt.max_seconds = atof(v);
        else if (!strcmp(a, "--ready-file")) opt.ready_file = v;
        else if (!strcmp(a, "--expect")) opt.expect = atoll(v);
        else usage();
    }
    if (!url || parse_url(url) < 0 || opt.conns <= 0 || opt.parallel <= 0
        || opt.source_ips < 1 || opt.source_ips > 254 || opt.max_seconds <= 0)
        usage();
    signal(SIGPIPE, SIG_IGN);
    raise_nofile(opt.conns);
    if (build_request() < 0) return 1;
    conns = calloc((size_t)opt.conns, sizeof *conns);
    struct event_config *cfg = event_config_new();
    /* The loop never needs a time per callback: cache it off. */
    event_config_set_flag(cfg, EVENT_BASE_FLAG_NO_CACHE_TIME);
    base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    if (!conns || !base) return 1;
    for (int i = 0; i < opt.conns; i++) conns[i].fd = -1;

    long long t0 = now_us();
    struct timeval tv = { (long)opt.max_seconds, (long)((opt.max_seconds - (long)opt.max_seconds) * 1e6) };
    struct event *deadline = evtimer_new(base, on_deadline, NULL);
    evtimer_add(deadline, &tv);
    open_more();
    event_base_dispatch(base);
    maybe_ready();   /* a deadline before everyone connected still releases the caller */
    print_summary((now_us() - t0) / 1e6);
    fflush(stdout);
    return 0;
}
