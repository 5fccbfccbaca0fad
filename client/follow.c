/*
 * follow.c - following a job's event stream to its end (see follow.h).
 *
 * One loop: open the stream from the last id seen, feed what arrives to
 * the SSE parser, show each event, stop at the terminal one. The gateway
 * ends a stream only after the terminal event, so a stream that ends
 * without it was cut (a dropped connection, a gateway restart, a slow
 * reader disconnected) or started at or past the job's end; the job's
 * status tells which. A cut stream is resumed with Last-Event-ID after the
 * server's retry delay; ids are the job's sequence numbers, so nothing is
 * shown twice or skipped. The wait for the network and the pauses between
 * attempts both watch the wake fd, so Ctrl-C is seen at once.
 */
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cliopt.h"
#include "follow.h"
#include "jsonutil.h"
#include "sse_reader.h"

#define MAX_EVENT_BYTES  (1u << 20)   /* events are at most 256 KiB of JSON */
#define EVENT_MAX_DEPTH  128          /* payloads and results nest as their jobs do */
#define MAX_FAILURES     10           /* attempts in a row that bring no event */
#define DEFAULT_RETRY_MS 1000
#define MAX_RETRY_MS     30000

typedef struct follow_state {
    render_follow *rf;
    sse_reader reader;
    int feed_error;         /* an SSE_ERR_* that stopped the stream, or 0 */
    int terminal;           /* the exit status once the terminal event was seen, else -1 */
    long events;            /* events of the current connection */
} follow_state;

int follow_exit_for_status(const char *status)
{
    if (status == NULL)
        return -1;
    if (strcmp(status, "succeeded") == 0)
        return EXIT_OK;
    if (strcmp(status, "failed") == 0)
        return EXIT_FAILED;
    if (strcmp(status, "cancelled") == 0)
        return EXIT_CANCELLED;
    return -1;
}

static int exit_for_event(const char *type)
{
    if (strncmp(type, "job.", 4) != 0)
        return -1;
    return follow_exit_for_status(type + 4);
}

static int on_event(void *ud, const sse_event *ev)
{
    follow_state *st = ud;
    cJSON *env = json_parse_bounded(ev->data, ev->data_len, MAX_EVENT_BYTES, EVENT_MAX_DEPTH,
                                    NULL, 0);
    render_follow_event(st->rf, ev->type, ev->id, ev->data, env);
    cJSON_Delete(env);
    st->events++;
    int code = exit_for_event(ev->type);
    if (code >= 0) {
        st->terminal = code;
        return 1;           /* nothing comes after the terminal event */
    }
    return 0;
}

static int on_chunk(void *ud, const char *buf, size_t n)
{
    follow_state *st = ud;
    int rc = sse_reader_feed(&st->reader, buf, n);
    if (rc < 0)
        st->feed_error = rc;
    return rc;
}

/* Waits ms, or until the wake fd is readable (returns true then). */
static bool pause_ms(int wake_fd, long ms)
{
    if (wake_fd < 0) {
        struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
        nanosleep(&ts, NULL);
        return false;
    }
    struct pollfd p = { .fd = wake_fd, .events = POLLIN };
    return poll(&p, 1, (int)ms) > 0 && (p.revents & POLLIN);
}

/*
 * After a stream ended without the terminal event: whether the job is over
 * and every event up to its end was seen (a resume point at or past the
 * end). Returns its exit status then; -1 to open the stream again;
 * EXIT_HTTP after printing why the job could not be read.
 */
static int finished_already(agc *c, const char *prog, const char *status_path,
                            const char *last_id, render_follow *rf)
{
    agc_response r;
    char err[512];
    int out = -1;
    if (agc_request(c, "GET", status_path, NULL, &r, err, sizeof err) != AGC_OK) {
        agc_response_free(&r);
        return -1;          /* a connection problem: the next attempt tells */
    }
    if (r.status != 200) {
        render_follow_end(rf);
        render_problem(prog, &r);
        agc_response_free(&r);
        return EXIT_HTTP;
    }
    cJSON *job = json_parse_bounded(r.body, r.len, r.len, EVENT_MAX_DEPTH, NULL, 0);
    long long last = 0;
    int code = follow_exit_for_status(json_get_string(job, "status"));
    if (code >= 0 && json_get_int(job, "last_event_id", 0, (long long)1e18, &last) == 1 &&
        strtoll(last_id, NULL, 10) >= last)
        out = code;
    cJSON_Delete(job);
    agc_response_free(&r);
    return out;
}

static long retry_after_ms(const agc_response *r, const sse_reader *reader)
{
    long ms = sse_reader_retry_ms(reader) >= 0 ? sse_reader_retry_ms(reader) : DEFAULT_RETRY_MS;
    char *end;
    long s = r->retry_after[0] ? strtol(r->retry_after, &end, 10) : -1;
    if (s >= 0 && r->retry_after[0] && *end == '\0')
        ms = s * 1000;
    return ms > MAX_RETRY_MS ? MAX_RETRY_MS : ms;
}

/* A refusal worth waiting out: too many streams, the gateway or its
 * database briefly unavailable. */
static bool retryable_status(long status)
{
    return status == 429 || status == 502 || status == 503 || status == 504;
}

int follow_job(agc *c, const char *prog, const char *events_path, const char *status_path,
               const char *after, render_follow *rf)
{
    follow_state st = { .rf = rf, .terminal = -1 };
    sse_reader_init(&st.reader, MAX_EVENT_BYTES, on_event, &st);
    if (after != NULL)
        sse_reader_set_last_id(&st.reader, after);
    int failures = 0, result = -1;
    bool connected_once = false;
    char err[512];

    while (result < 0) {
        agc_response r;
        st.events = 0;
        sse_reader_reset(&st.reader);
        int rc = agc_stream(c, events_path, sse_reader_last_id(&st.reader), on_chunk, &st, &r,
                            err, sizeof err);
        if (r.status != 0)
            connected_once = true;   /* the gateway answered, even if the stream broke later */
        if (st.events > 0)
            failures = 0;

        if (rc == AGC_ERR_STOPPED && st.terminal >= 0) {
            result = st.terminal;
        } else if (rc == AGC_ERR_STOPPED) {
            render_follow_end(rf);
            cliopt_fail(prog, "the event stream is unreadable: %s",
                        st.feed_error == SSE_ERR_TOO_LONG ? "an event over the size limit"
                                                          : "out of memory");
            result = EXIT_HTTP;
        } else if (rc == AGC_ERR_INTERRUPTED) {
            result = EXIT_INTERRUPTED;
        } else if (rc == AGC_OK && r.status != 200 && r.status != 204) {
            if (!retryable_status(r.status) || ++failures > MAX_FAILURES) {
                render_follow_end(rf);
                render_problem(prog, &r);
                result = EXIT_HTTP;
            }
        } else if (rc == AGC_OK) {
            result = finished_already(c, prog, status_path, sse_reader_last_id(&st.reader), rf);
            if (result < 0 && ++failures > MAX_FAILURES) {
                render_follow_end(rf);
                cliopt_fail(prog, "the event stream keeps ending before the job does");
                result = EXIT_CONNECT;
            }
        } else if (rc != AGC_ERR_CONNECT || !connected_once || ++failures > MAX_FAILURES) {
            /* A gateway never reached is a wrong URL or a stopped gateway:
             * say so at once rather than after ten retries. */
            render_follow_end(rf);
            cliopt_fail(prog, "%s", err);
            result = rc == AGC_ERR_CONNECT ? EXIT_CONNECT : EXIT_HTTP;
        }

        long delay = retry_after_ms(&r, &st.reader);
        agc_response_free(&r);
        if (result < 0 && pause_ms(c->wake_fd, delay))
            result = EXIT_INTERRUPTED;
    }
    render_follow_end(rf);
    sse_reader_free(&st.reader);
    return result;
}
