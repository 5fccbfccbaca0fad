/*
 * handlers_builtin.c - the job types that exist to exercise the platform
 * itself: "demo" (a short stream of progress events), "test" (succeeds or
 * fails on request), "long-running" (progress until a deadline; the
 * type cancellation and shutdown are tried on) and "bench.ticker" (events
 * at a fixed rate with a send timestamp, for bench/run's fan-out).
 *
 * Payload fields and their bounds are those of the schemas in
 * common/jobtypes.c; the worker validated the payload against them before
 * calling these, so a bad field here is only reported, never trusted.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "handlers_builtin.h"
#include "job_ctx.h"
#include "jsonutil.h"

#define CANCEL_CHECK_MS 50

static job_outcome fail(job_result *out, const char *code, const char *message)
{
    snprintf(out->error_code, sizeof out->error_code, "%s", code);
    snprintf(out->error_message, sizeof out->error_message, "%s", message);
    return JOB_FAILED;
}

/* Reads an optional integer field with its default. Returns 0, or -1 when
 * the field is present but not a whole number within [min, max]. */
static int payload_int(job_ctx *ctx, const char *name, long long min, long long max,
                       long long dflt, long long *out)
{
    *out = dflt;
    return json_get_int(job_get_info(ctx)->payload, name, min, max, out) < 0 ? -1 : 0;
}

static job_outcome bad_field(job_result *out, const char *name)
{
    char msg[128];
    snprintf(msg, sizeof msg, "payload field \"%s\" is out of range", name);
    return fail(out, "invalid_payload", msg);
}

/* The store was unreachable for longer than a write waits (a lease): a
 * transient failure, so the job is retried, not failed for good. */
static job_outcome event_write_failed(job_result *out)
{
    out->retryable = true;
    return fail(out, "event_write_failed", "the job's progress event could not be stored");
}

/* Succeeds with {"<name>": value}. */
static job_outcome succeed_with_number(job_result *out, const char *name, double value)
{
    cJSON *r = cJSON_CreateObject();
    if (r == NULL || cJSON_AddNumberToObject(r, name, value) == NULL) {
        cJSON_Delete(r);
        return fail(out, "out_of_memory", "the worker ran out of memory");
    }
    out->result = r;
    return JOB_SUCCEEDED;
}

job_outcome handle_demo(job_ctx *ctx, job_result *out)
{
    long long events, duration;
    if (payload_int(ctx, "events", 0, 10000, 5, &events) < 0)
        return bad_field(out, "events");
    if (payload_int(ctx, "duration_ms", 0, 600000, 1000, &duration) < 0)
        return bad_field(out, "duration_ms");

    long long start = clock_mono_ms();
    for (long long i = 1; i <= events; i++) {
        /* Event i is due at i/N of the way through: evenly spread, and the
         * last one lands at duration_ms however long the writes took. */
        long long due = start + duration * i / events;
        if (job_sleep_ms(ctx, due - clock_mono_ms()))
            return JOB_CANCELLED;
        char msg[64];
        snprintf(msg, sizeof msg, "event %lld of %lld", i, events);
        if (job_progress(ctx, i, events, msg) < 0)
            return event_write_failed(out);
    }
    if (events == 0 && job_sleep_ms(ctx, duration))
        return JOB_CANCELLED;
    return succeed_with_number(out, "events", (double)events);
}

job_outcome handle_test(job_ctx *ctx, job_result *out)
{
    const job_info *ji = job_get_info(ctx);
    const cJSON *payload = ji->payload;
    long long sleep_ms, fail_attempts;
    if (payload_int(ctx, "sleep_ms", 0, 600000, 0, &sleep_ms) < 0)
        return bad_field(out, "sleep_ms");
    if (payload_int(ctx, "fail_attempts", 0, 100, 0, &fail_attempts) < 0)
        return bad_field(out, "fail_attempts");
    if (job_sleep_ms(ctx, sleep_ms))
        return JOB_CANCELLED;

    /* A failure that lasts until a moment passes, as an outage of
     * something a job depends on would: what a later retry outlives. */
    long long fail_until_ms;
    if (payload_int(ctx, "fail_until_ms", 0, 100000000000000LL, 0, &fail_until_ms) < 0)
        return bad_field(out, "fail_until_ms");
    if (clock_wall_ms() < fail_until_ms)
        return fail(out, "test_unavailable", "asked to fail until fail_until_ms");

    if (ji->attempt <= fail_attempts) {
        char msg[96];
        snprintf(msg, sizeof msg, "attempt %d of the first %lld asked to fail", ji->attempt,
                 fail_attempts);
        out->retryable = true;
        return fail(out, "test_transient", msg);
    }
    const char *outcome = json_get_string(payload, "outcome");
    if (outcome != NULL && strcmp(outcome, "fail") == 0) {
        const cJSON *err = cJSON_GetObjectItemCaseSensitive(payload, "error");
        const char *code = json_get_string(err, "code");
        const char *message = json_get_string(err, "message");
        out->retryable = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(payload, "retryable"));
        return fail(out, code && code[0] ? code : "test_failure",
                    message ? message : "the test job was asked to fail");
    }

    /* Without a result given, the attempt that succeeded: it shows which
     * attempt's result was kept. */
    const cJSON *result = cJSON_GetObjectItemCaseSensitive(payload, "result");
    if (result == NULL)
        return succeed_with_number(out, "attempt", ji->attempt);
    out->result = cJSON_Duplicate(result, 1);
    if (out->result == NULL)
        return fail(out, "out_of_memory", "the worker ran out of memory");
    return JOB_SUCCEEDED;
}

job_outcome handle_long_running(job_ctx *ctx, job_result *out)
{
    long long duration, interval;
    if (payload_int(ctx, "duration_ms", 1, 3600000, 60000, &duration) < 0)
        return bad_field(out, "duration_ms");
    if (payload_int(ctx, "progress_interval_ms", 10, 60000, 1000, &interval) < 0)
        return bad_field(out, "progress_interval_ms");

    long long start = clock_mono_ms();
    long long end = start + duration;
    long long next_progress = start + interval;
    for (;;) {
        long long now = clock_mono_ms();
        if (now >= end)
            break;
        if (now >= next_progress) {
            char msg[80];
            snprintf(msg, sizeof msg, "%lld of %lld ms", now - start, duration);
            if (job_progress(ctx, now - start, duration, msg) < 0)
                return event_write_failed(out);
            next_progress += interval;
            continue;
        }
        long long wait = next_progress < end ? next_progress - now : end - now;
        if (wait > CANCEL_CHECK_MS)
            wait = CANCEL_CHECK_MS;
        if (job_sleep_ms(ctx, wait))
            return JOB_CANCELLED;
    }
    return succeed_with_number(out, "elapsed_ms", (double)(clock_mono_ms() - start));
}

/* CLOCK_REALTIME in microseconds: comparable with a client's clock on the
 * same machine, unlike the monotonic clock. */
static long long wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Emits job.progress {"i": n, "sent_us": t}, t read just before the emit,
 * so a subscriber's receive time minus sent_us is the whole delivery path
 * (event store, ring, pub/sub, gateway fan-out). */
static long long emit_tick(job_ctx *ctx, long long i)
{
    cJSON *data = cJSON_CreateObject();
    if (data == NULL || cJSON_AddNumberToObject(data, "i", (double)i) == NULL
        || cJSON_AddNumberToObject(data, "sent_us", (double)wall_us()) == NULL) {
        cJSON_Delete(data);
        return -1;
    }
    long long id = job_emit(ctx, "job.progress", data);
    cJSON_Delete(data);
    return id;
}

job_outcome handle_bench_ticker(job_ctx *ctx, job_result *out)
{
    long long rate, duration_s;
    if (payload_int(ctx, "rate", 1, 10000, 10, &rate) < 0)
        return bad_field(out, "rate");
    if (payload_int(ctx, "duration_s", 1, 600, 10, &duration_s) < 0)
        return bad_field(out, "duration_s");

    /* Tick i is due at start + i/rate s: a late tick does not shift the
     * ones after it, so the rate holds over the run unless emits are
     * slower than the rate itself. */
    long long total = rate * duration_s;
    long long start_us = wall_us();
    for (long long i = 1; i <= total; i++) {
        long long due_us = start_us + i * 1000000 / rate;
        long long wait_us = due_us - wall_us();
        if (wait_us >= 1000 && job_sleep_ms(ctx, wait_us / 1000))
            return JOB_CANCELLED;
        wait_us = due_us - wall_us();
        if (wait_us > 0) {  /* the sub-millisecond rest: job_sleep_ms is in ms */
            struct timespec rest = { 0, (long)(wait_us % 1000000) * 1000 };
            nanosleep(&rest, NULL);
        }
        if (job_cancelled(ctx))
            return JOB_CANCELLED;
        if (emit_tick(ctx, i) < 0)
            return event_write_failed(out);
    }
    return succeed_with_number(out, "events", (double)total);
}
