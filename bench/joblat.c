/*
 * joblat.c - one job at a time, the latencies a client sees (bench/run):
 *
 *   joblat dispatch --port P --token T [--n N] [--seconds S]
 *     POST /v1/jobs (a no-op "test" job) on a kept-alive connection, then
 *     GET /v1/jobs/{id}/events on a fresh connection (the id is only known
 *     from the 202), until the terminal event: time from the POST's first
 *     byte written to the read() that brought job.succeeded.
 *   joblat cancel --port P --token T [--n N] [--seconds S]
 *     POST a "long-running" job, follow its events until job.started (it
 *     is running on a worker), then DELETE /v1/jobs/{id}: time from the
 *     DELETE's first byte written to the read() that brought job.cancelled.
 *
 * Plain blocking sockets on 127.0.0.1 and no HTTP library: the client adds
 * a few microseconds, not the tens a scripting language would. The SSE
 * stream is scanned for the event type as bytes arrive (the gateway writes
 * each event in one piece). Stops after N jobs (1000) or S seconds (30),
 * whichever comes first. Prints one line of key=value pairs.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUF (64 * 1024)

static int port;
static const char *token;
static int api_fd = -1;
static int errors;
static char first_error[256];

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void error_once(const char *what, const char *detail)
{
    errors++;
    if (!first_error[0]) {
        snprintf(first_error, sizeof first_error, "%s: %.200s", what, detail);
        for (char *p = first_error; *p; p++)
            if (*p == '\r' || *p == '\n') *p = ' ';
    }
}

static int dial(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct timeval tv = { 30, 0 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) { close(fd); return -1; }
    return fd;
}

static int send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads one response with a Content-Length from fd into buf (NUL ended).
 * Returns the status, or -1. body gets where the body starts. */
static int read_response(int fd, char *buf, size_t cap, char **body)
{
    size_t len = 0;
    char *end = NULL;
    while (!end) {
        if (len + 1 >= cap) return -1;
        ssize_t r = read(fd, buf + len, cap - 1 - len);
        if (r <= 0) return -1;
        len += (size_t)r;
        buf[len] = '\0';
        end = strstr(buf, "\r\n\r\n");
    }
    int status = atoi(buf + 9);
    const char *cl = strcasestr(buf, "\r\ncontent-length:");
    size_t want = cl ? (size_t)atol(cl + 17) : 0;
    size_t head = (size_t)(end + 4 - buf);
    while (len - head < want) {
        if (len + 1 >= cap) return -1;
        ssize_t r = read(fd, buf + len, cap - 1 - len);
        if (r <= 0) return -1;
        len += (size_t)r;
    }
    buf[len] = '\0';
    *body = buf + head;
    return status;
}

/* A request on the kept-alive API connection (reopened when it closed). */
static int api_call(const char *method, const char *path, const char *json,
                    char *buf, size_t cap, char **body, double *sent_at)
{
    char req[2048];
    int n = snprintf(req, sizeof req,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                     method, path, token, json ? strlen(json) : 0, json ? json : "");
    for (int attempt = 0; attempt < 2; attempt++) {
        if (api_fd < 0 && (api_fd = dial()) < 0) return -1;
        if (sent_at) *sent_at = now_ms();
        int st = send_all(api_fd, req, (size_t)n) < 0 ? -1 : read_response(api_fd, buf, cap, body);
        if (st > 0) {
            if (strcasestr(buf, "\r\nconnection: close")) { close(api_fd); api_fd = -1; }
            return st;
        }
        close(api_fd);
        api_fd = -1;
    }
    return -1;
}

/* The first "id" member of a JSON answer (PostgreSQL renders it as
 * "id" : "..." with spaces). */
static int job_id_of(const char *body, char id[37])
{
    const char *p = strstr(body, "\"id\"");
    if (!p) return -1;
    p += 4;
    while (*p == ' ' || *p == ':') p++;
    if (*p++ != '"' || strlen(p) < 36 || p[36] != '"') return -1;
    memcpy(id, p, 36);
    id[36] = '\0';
    return 0;
}

/* Opens the job's event stream. Returns the fd or -1. */
static int open_events(const char *id)
{
    int fd = dial();
    if (fd < 0) return -1;
    char req[1024];
    int n = snprintf(req, sizeof req,
                     "GET /v1/jobs/%s/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     "Authorization: Bearer %s\r\nAccept: text/event-stream\r\n\r\n", id, token);
    if (send_all(fd, req, (size_t)n) < 0) { close(fd); return -1; }
    return fd;
}

/* Reads the stream until needle appears; keeps the last bytes between
 * reads so a needle split across two reads is still found. Returns 0, or
 * -1 on EOF/timeout first. *first_read (if not NULL) gets the time of the
 * first read that brought anything: the stream's answer head. */
static int wait_for(int fd, const char *needle, double *first_read)
{
    static char buf[BUF + 64];
    size_t keep = 0, nlen = strlen(needle);
    for (;;) {
        ssize_t r = read(fd, buf + keep, BUF);
        if (r <= 0) return -1;
        if (first_read) { *first_read = now_ms(); first_read = NULL; }
        size_t len = keep + (size_t)r;
        if (memmem(buf, len, needle, nlen)) return 0;
        keep = len < nlen ? len : nlen;
        memmove(buf, buf + len - keep, keep);
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double pct(const double *v, int n, double q)
{
    int i = (int)(q * n);
    return v[i >= n ? n - 1 : i];
}

/* Where one job's time went: the 202 arrived, the stream's first bytes
 * arrived (both ms after the POST's first byte); the rest is the wait for
 * the terminal event. */
typedef struct phases { double accepted, stream_open; } phases;

static int one_dispatch(double *lat, phases *ph)
{
    static char buf[BUF];
    char *body, id[37];
    double t0, t_open = 0;
    int st = api_call("POST", "/v1/jobs", "{\"type\":\"test\",\"payload\":{\"outcome\":\"succeed\"}}",
                      buf, sizeof buf, &body, &t0);
    ph->accepted = now_ms() - t0;
    if (st != 202 || job_id_of(body, id) < 0) { error_once("submit", st < 0 ? "no answer" : buf); return -1; }
    int fd = open_events(id);
    if (fd < 0) { error_once("events", "connect failed"); return -1; }
    int rc = wait_for(fd, "\"job.succeeded\"", &t_open);
    *lat = now_ms() - t0;
    ph->stream_open = t_open - t0;
    close(fd);
    if (rc < 0) { error_once("events", "no job.succeeded before the stream ended"); return -1; }
    return 0;
}

static int one_cancel(double *lat)
{
    static char buf[BUF];
    char *body, id[37], path[80];
    int st = api_call("POST", "/v1/jobs",
                      "{\"type\":\"long-running\",\"payload\":{\"duration_ms\":60000,"
                      "\"progress_interval_ms\":10000}}", buf, sizeof buf, &body, NULL);
    if (st != 202 || job_id_of(body, id) < 0) { error_once("submit", st < 0 ? "no answer" : buf); return -1; }
    int fd = open_events(id);
    if (fd < 0) { error_once("events", "connect failed"); return -1; }
    if (wait_for(fd, "\"job.started\"", NULL) < 0) {
        close(fd);
        error_once("events", "no job.started");
        return -1;
    }
    double t0;
    snprintf(path, sizeof path, "/v1/jobs/%s", id);
    st = api_call("DELETE", path, NULL, buf, sizeof buf, &body, &t0);
    if (st != 200 && st != 202) { close(fd); error_once("cancel", st < 0 ? "no answer" : buf); return -1; }
    int rc = wait_for(fd, "\"job.cancelled\"", NULL);
    *lat = now_ms() - t0;
    close(fd);
    if (rc < 0) { error_once("events", "no job.cancelled before the stream ended"); return -1; }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) goto usage;
    const char *mode = argv[1];
    int n = 1000;
    double max_s = 30;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--port")) port = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--token")) token = argv[i + 1];
        else if (!strcmp(argv[i], "--n")) n = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--seconds")) max_s = atof(argv[i + 1]);
        else goto usage;
    }
    if (!port || !token || n <= 0 || (strcmp(mode, "dispatch") && strcmp(mode, "cancel")))
        goto usage;
    double *lat = calloc((size_t)n, sizeof *lat);
    double *acc = calloc((size_t)n, sizeof *acc), *opn = calloc((size_t)n, sizeof *opn);
    if (!lat || !acc || !opn) return 1;
    bool dispatch = strcmp(mode, "dispatch") == 0;
    int ok = 0;
    double t_start = now_ms();
    for (int i = 0; i < n; i++) {
        double l;
        phases ph = { 0, 0 };
        if ((dispatch ? one_dispatch(&l, &ph) : one_cancel(&l)) == 0) {
            acc[ok] = ph.accepted;
            opn[ok] = ph.stream_open;
            lat[ok++] = l;
        }
        if (errors > 20) break;   /* something is wrong: say so rather than spin */
        if (now_ms() - t_start > max_s * 1e3) break;
    }
    double secs = (now_ms() - t_start) / 1e3;
    qsort(lat, (size_t)ok, sizeof *lat, cmp_double);
    printf("n=%d errors=%d p50_ms=%.3f p99_ms=%.3f max_ms=%.3f seconds=%.1f%s%s\n", ok, errors,
           ok ? pct(lat, ok, 0.5) : 0, ok ? pct(lat, ok, 0.99) : 0, ok ? lat[ok - 1] : 0, secs,
           first_error[0] ? " first_error=" : "", first_error);
    if (dispatch && ok > 0) {
        qsort(acc, (size_t)ok, sizeof *acc, cmp_double);
        qsort(opn, (size_t)ok, sizeof *opn, cmp_double);
        printf("phases p50_ms: accepted(202)=%.3f stream_open=%.3f terminal=%.3f\n",
               pct(acc, ok, 0.5), pct(opn, ok, 0.5), pct(lat, ok, 0.5));
    }
    return 0;
usage:
    fprintf(stderr, "usage: joblat dispatch|cancel --port P --token T [--n N] [--seconds S]\n");
    return 2;
}
