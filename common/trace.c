/*
 * trace.c - span ids, the W3C traceparent header and span records.
 *
 * Ids come from the same per-thread random pool as the job ids
 * (uuid_random_bytes), so starting a span takes no lock. The sampling
 * decision is made once per trace, at its root, and travels in the
 * traceparent's flags; children follow it. Ended spans go to the sink
 * (the exporter's queue) or are freed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "trace.h"
#include "uuid.h"

static void (*sink_fn)(span *s);
static double sample_ratio = 1.0;
static _Thread_local trace_ctx current;

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* Parses 2n lowercase hex characters at s into n bytes; -1 when not hex. */
static int unhex(const char *s, uint8_t *out, int n)
{
    for (int i = 0; i < n; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0) return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

static bool all_zero(const uint8_t *b, int n)
{
    for (int i = 0; i < n; i++) if (b[i]) return false;
    return true;
}

int trace_parse(const char *s, trace_ctx *out)
{
    memset(out, 0, sizeof *out);
    if (!s || strlen(s) != TRACEPARENT_LEN || s[0] != '0' || s[1] != '0' || s[2] != '-' ||
        s[35] != '-' || s[52] != '-')
        return -1;
    trace_ctx c;
    if (unhex(s + 3, c.trace_id, 16) || unhex(s + 36, c.span_id, 8) || unhex(s + 53, &c.flags, 1) ||
        all_zero(c.trace_id, 16) || all_zero(c.span_id, 8))
        return -1;
    *out = c;
    return 0;
}

void trace_hex(const uint8_t *id, int n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < n; i++) {
        out[2 * i] = hex[id[i] >> 4];
        out[2 * i + 1] = hex[id[i] & 0x0f];
    }
    out[2 * n] = '\0';
}

void trace_format(const trace_ctx *ctx, char out[TRACEPARENT_LEN + 1])
{
    memcpy(out, "00-", 3);
    trace_hex(ctx->trace_id, 16, out + 3);
    out[35] = '-';
    trace_hex(ctx->span_id, 8, out + 36);
    out[52] = '-';
    trace_hex(&ctx->flags, 1, out + 53);
}

bool trace_valid(const trace_ctx *ctx)
{
    return ctx && !all_zero(ctx->trace_id, 16) && !all_zero(ctx->span_id, 8);
}

void trace_set_sampling(double ratio)
{
    sample_ratio = ratio < 0 ? 0 : ratio > 1 ? 1 : ratio;
}

void trace_set_sink(void (*sink)(span *s))
{
    sink_fn = sink;
}

bool trace_enabled(void)
{
    return sink_fn != NULL;
}

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static bool sample_new_trace(void)
{
    if (sample_ratio >= 1) return true;
    if (sample_ratio <= 0) return false;
    uint32_t r;
    uuid_random_bytes((unsigned char *)&r, sizeof r);
    return (double)r / 4294967296.0 < sample_ratio;
}

span *span_start(const char *name, span_kind kind, const trace_ctx *parent)
{
    span *s = calloc(1, sizeof *s);
    if (!s || !(s->name = strdup(name ? name : "span"))) {
        free(s);
        return NULL;
    }
    s->kind = kind;
    if (trace_valid(parent)) {
        memcpy(s->ctx.trace_id, parent->trace_id, 16);
        memcpy(s->parent_span_id, parent->span_id, 8);
        s->ctx.flags = parent->flags;
    } else {
        do uuid_random_bytes(s->ctx.trace_id, 16); while (all_zero(s->ctx.trace_id, 16));
        s->ctx.flags = sample_new_trace() ? TRACE_FLAG_SAMPLED : 0;
    }
    do uuid_random_bytes(s->ctx.span_id, 8); while (all_zero(s->ctx.span_id, 8));
    s->recording = sink_fn != NULL && (s->ctx.flags & TRACE_FLAG_SAMPLED);
    s->start_ns = now_ns();
    return s;
}

span *span_start_current(const char *name, span_kind kind)
{
    trace_ctx prev = current;
    span *s = span_start(name, kind, &prev);
    if (!s) return NULL;
    s->made_current = true;
    s->prev = prev;
    current = s->ctx;
    return s;
}

static span_attr *attr_add(span *s, const char *key, span_attr_type type)
{
    if (!s || !key || !s->recording) return NULL;
    if (s->nattrs == SPAN_MAX_ATTRS) { s->dropped_attrs++; return NULL; }
    span_attr *a = &s->attrs[s->nattrs];
    if (!(a->key = strdup(key))) { s->dropped_attrs++; return NULL; }
    a->type = type;
    s->nattrs++;
    return a;
}

void span_set_str(span *s, const char *key, const char *value)
{
    if (!value) return;
    span_attr *a = attr_add(s, key, SPAN_ATTR_STR);
    if (a && !(a->v.s = strdup(value))) {
        free(a->key);
        s->nattrs--;
        s->dropped_attrs++;
    }
}

void span_set_int(span *s, const char *key, long long value)
{
    span_attr *a = attr_add(s, key, SPAN_ATTR_INT);
    if (a) a->v.i = value;
}

void span_set_double(span *s, const char *key, double value)
{
    span_attr *a = attr_add(s, key, SPAN_ATTR_DOUBLE);
    if (a) a->v.d = value;
}

void span_set_bool(span *s, const char *key, bool value)
{
    span_attr *a = attr_add(s, key, SPAN_ATTR_BOOL);
    if (a) a->v.b = value;
}

void span_set_name(span *s, const char *name)
{
    char *n = s && name && s->recording ? strdup(name) : NULL;
    if (!n) return;
    free(s->name);
    s->name = n;
}

void span_set_error(span *s, const char *message)
{
    if (!s || !s->recording) return;
    s->error = true;
    free(s->status_message);
    s->status_message = message ? strdup(message) : NULL;
}

void span_free(span *s)
{
    if (!s) return;
    for (int i = 0; i < s->nattrs; i++) {
        free(s->attrs[i].key);
        if (s->attrs[i].type == SPAN_ATTR_STR) free(s->attrs[i].v.s);
    }
    free(s->name);
    free(s->status_message);
    free(s);
}

void span_end(span *s)
{
    if (!s) return;
    if (s->made_current) current = s->prev;
    s->end_ns = now_ns();
    void (*sink)(span *) = sink_fn;
    if (sink && s->recording) sink(s);
    else span_free(s);
}

void span_traceparent(const span *s, char out[TRACEPARENT_LEN + 1])
{
    if (!s) { out[0] = '\0'; return; }
    trace_format(&s->ctx, out);
}

trace_ctx trace_current(void)
{
    return current;
}

void trace_set_current(const trace_ctx *ctx)
{
    if (ctx) current = *ctx;
    else memset(&current, 0, sizeof current);
}

bool trace_current_traceparent(char out[TRACEPARENT_LEN + 1])
{
    if (!trace_valid(&current)) { out[0] = '\0'; return false; }
    trace_format(&current, out);
    return true;
}

bool trace_current_header(char out[TRACE_HEADER_LEN + 1])
{
    char tp[TRACEPARENT_LEN + 1];
    if (!trace_current_traceparent(tp)) { out[0] = '\0'; return false; }
    snprintf(out, TRACE_HEADER_LEN + 1, "traceparent: %s", tp);
    return true;
}
