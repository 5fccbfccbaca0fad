/*
 * api_util.c - helpers shared by the API handlers (see api_util.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <event2/buffer.h>

#include "api_util.h"
#include "http.h"
#include "query.h"
#include "jsonutil.h"
#include "jwt.h"
#include "events.h"
#include "clock.h"

static bool content_type_is_json(const char *ct)
{
    if (!ct) return true; /* tolerated: many clients omit it */
    size_t n = strcspn(ct, ";");
    while (n && ct[n - 1] == ' ') n--;
    return (n == 16 && strncasecmp(ct, "application/json", 16) == 0) ||
           (n > 5 && strncasecmp(ct + n - 5, "+json", 5) == 0);
}

cJSON *api_parse_body(gw_req *r, const char *const *allowed)
{
    size_t max = r->thr->srv->cfg.max_body_bytes;
    if (!content_type_is_json(http_header(r, "Content-Type"))) {
        http_reply_problem(r, 415, "unsupported-media-type", "the body must be application/json", NULL);
        return NULL;
    }
    size_t len;
    const char *buf = http_body(r, &len);
    if (len > max || http_body_too_large(r)) {
        char detail[96];
        snprintf(detail, sizeof detail, "the body is larger than %zu bytes", max);
        http_reply_problem(r, 413, "body-too-large", detail, NULL);
        return NULL;
    }
    if (!buf) {
        http_reply_problem(r, 400, "malformed-json", "the body is empty; a JSON object is required", NULL);
        return NULL;
    }
    /* Depth first, on its own: a deeply nested body is refused for what
     * it is, naming the limit, before any parser recurses into it. */
    int max_depth = r->thr->srv->cfg.max_json_depth;
    if (json_depth_exceeds(buf, len, max_depth)) {
        char detail[128];
        snprintf(detail, sizeof detail,
                 "the body nests arrays and objects deeper than %d levels", max_depth);
        http_reply_problem(r, 400, "json-too-deep", detail, NULL);
        return NULL;
    }
    char err[160];
    cJSON *body = json_parse_bounded(buf, len, max, max_depth, err, sizeof err);
    if (!body) {
        http_reply_problem(r, 400, "malformed-json", err, NULL);
        return NULL;
    }
    if (!cJSON_IsObject(body)) {
        http_reply_problem(r, 422, "validation-failed", "the body must be a JSON object", "");
        cJSON_Delete(body);
        return NULL;
    }
    for (cJSON *m = body->child; m; m = m->next) {
        if (api_one_of(m->string, allowed)) continue;
        char pointer[160], detail[200];
        snprintf(pointer, sizeof pointer, "/%.120s", m->string);
        snprintf(detail, sizeof detail, "%.120s is not a known field", m->string);
        http_reply_problem(r, 422, "validation-failed", detail, pointer);
        cJSON_Delete(body);
        return NULL;
    }
    return body;
}

char *api_queued_event(const char *job_id, const char *type, long long priority)
{
    char data[160];
    snprintf(data, sizeof data, "{\"type\":\"%s\",\"priority\":%lld}", type, priority);
    return event_encode(job_id, 1, "job.queued", clock_wall_ms(), data);
}

void api_format_ts(long long ts_us, char out[32])
{
    /* Floor division, as PostgreSQL's own split of a timestamp into
     * seconds and a non-negative fraction. */
    long long secs = ts_us / 1000000, frac = ts_us % 1000000;
    if (frac < 0) { frac += 1000000; secs--; }
    time_t t = (time_t)secs;
    struct tm tm;
    if (!gmtime_r(&t, &tm)) { snprintf(out, 32, "1970-01-01T00:00:00.000Z"); return; }
    char buf[96];   /* room for any int the compiler imagines; the real text is 24 */
    int n = snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     (int)(frac / 1000));
    if (n < 0 || n > 31) n = 0;
    memcpy(out, buf, (size_t)n);
    out[n] = '\0';
}

size_t api_json_string(const char *s, char *out, size_t size)
{
    size_t n = 0;
    if (size < 3) return 0;
    out[n++] = '"';
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (size - n < 8) return 0;            /* the longest escape, the quote, NUL */
        unsigned char c = *p;
        const char *esc = c == '"' ? "\\\"" : c == '\\' ? "\\\\" : c == '\b' ? "\\b"
                        : c == '\f' ? "\\f" : c == '\n' ? "\\n" : c == '\r' ? "\\r"
                        : c == '\t' ? "\\t" : NULL;
        if (esc) { memcpy(out + n, esc, 2); n += 2; }
        else if (c < 0x20) n += (size_t)snprintf(out + n, size - n, "\\u%04x", c);
        else out[n++] = (char)c;
    }
    out[n++] = '"';
    out[n] = '\0';
    return n;
}

char *api_queued_job_json(const api_queued_job *j, size_t *len)
{
    char type[256], created[32], run_at[34] = "null";
    if (api_json_string(j->type, type, sizeof type) == 0) return NULL;
    api_format_ts(j->created_at_us, created);
    if (j->has_run_at) {
        char ts[32];
        api_format_ts(j->run_at_us, ts);
        snprintf(run_at, sizeof run_at, "\"%s\"", ts);
    }
    /* json_build_object's separators: " : " and ", ". The id is a
     * canonical uuid and needs no escaping. */
    char head[512], tail[768];
    int hn = snprintf(head, sizeof head,
                      "{\"id\" : \"%s\", \"type\" : %s, \"status\" : \"queued\","
                      " \"priority\" : %lld, \"payload\" : ", j->id, type, j->priority);
    int tn = snprintf(tail, sizeof tail,
                      ", \"result\" : null, \"error\" : null, \"attempts\" : 0,"
                      " \"max_attempts\" : %lld, \"timeout_s\" : %lld, \"progress\" : null,"
                      " \"run_at\" : %s, \"created_at\" : \"%s\", \"started_at\" : null,"
                      " \"finished_at\" : null, \"heartbeat_at\" : null, \"worker_id\" : null,"
                      " \"last_event_id\" : 1, \"links\" : {\"self\" : \"/v1/jobs/%s\","
                      " \"events\" : \"/v1/jobs/%s/events\"}}",
                      j->max_attempts, j->timeout_s, run_at, created, j->id, j->id);
    if (hn < 0 || tn < 0 || (size_t)hn >= sizeof head || (size_t)tn >= sizeof tail) return NULL;
    size_t n = (size_t)hn + j->payload_len + (size_t)tn;
    char *out = malloc(n + 1);
    if (!out) return NULL;
    memcpy(out, head, (size_t)hn);
    memcpy(out + hn, j->payload, j->payload_len);
    memcpy(out + (size_t)hn + j->payload_len, tail, (size_t)tn + 1);
    *len = n;
    return out;
}

void api_reply_not_found(gw_req *r, const char *what)
{
    char detail[96];
    snprintf(detail, sizeof detail, "no %s with this id", what);
    http_reply_problem(r, 404, "not-found", detail, NULL);
}

bool api_one_of(const char *s, const char *const *words)
{
    for (; *words; words++)
        if (strcmp(s, *words) == 0) return true;
    return false;
}

int api_read_limit(gw_req *r, int *limit)
{
    const char *v = http_query(r, "limit");
    *limit = 50;
    if (!v) return 0;
    char *end;
    long n = strtol(v, &end, 10);
    if (*v == '\0' || *end != '\0' || n < 1 || n > 200) {
        http_reply_problem(r, 400, "bad-query", "limit must be a whole number from 1 to 200", NULL);
        return -1;
    }
    *limit = (int)n;
    return 0;
}

/* The cursor is base64url("<created_at>|<id>"): opaque to clients, and
 * every part is checked again when it comes back. */
int api_read_cursor(gw_req *r, api_cursor *cur)
{
    memset(cur, 0, sizeof *cur);
    const char *v = http_query(r, "cursor");
    if (!v) return 0;
    unsigned char raw[128];
    size_t vlen = strlen(v);
    long n = vlen <= 160 ? b64url_decode(v, vlen, raw, sizeof raw - 1) : -1;
    if (n > 0) {
        raw[n] = '\0';
        char *bar = strchr((char *)raw, '|');
        if (bar && (size_t)(bar - (char *)raw) < sizeof cur->created_at) {
            *bar = '\0';
            const char *ts = (const char *)raw;
            bool ts_ok = *ts && strspn(ts, "0123456789-:. +") == strlen(ts);
            if (ts_ok && uuid_parse(bar + 1, cur->id)) {
                snprintf(cur->created_at, sizeof cur->created_at, "%s", ts);
                cur->present = true;
                return 0;
            }
        }
    }
    http_reply_problem(r, 400, "bad-query", "cursor is not one this API returned", NULL);
    return -1;
}

void api_add_items(struct evbuffer *b, PGresult *res, int shown)
{
    evbuffer_add(b, "{\"items\":[", 10);
    for (int i = 0; i < shown; i++) {
        if (i) evbuffer_add(b, ",", 1);
        evbuffer_add(b, PQgetvalue(res, i, 0), (size_t)PQgetlength(res, i, 0));
    }
}

void api_reply_buffer(gw_req *r, struct evbuffer *b)
{
    size_t len = evbuffer_get_length(b);
    http_reply_json(r, 200, (const char *)evbuffer_pullup(b, -1), len);
    evbuffer_free(b);
}

void api_reply_page(gw_req *r, PGresult *res, int shown, bool more)
{
    struct evbuffer *b = evbuffer_new();
    if (!b) { http_reply_problem(r, 503, "unavailable", "out of memory", NULL); return; }
    api_add_items(b, res, shown);
    evbuffer_add(b, "],\"next_cursor\":", 16);
    if (more && shown > 0) {
        char raw[128];
        int n = snprintf(raw, sizeof raw, "%s|%s", PQgetvalue(res, shown - 1, 1),
                         PQgetvalue(res, shown - 1, 2));
        char *cursor = b64url_encode((const unsigned char *)raw, (size_t)n);
        evbuffer_add_printf(b, "\"%s\"}", cursor ? cursor : "");
        free(cursor);
    } else {
        evbuffer_add(b, "null}", 5);
    }
    api_reply_buffer(r, b);
}

typedef struct page_state { int limit; } page_state;

static void on_page(gw_req *r, PGresult *res, const char *err, const char *sqlstate)
{
    page_state *s = r->state;
    if (!res) { gw_reply_db_error(r, err, sqlstate); return; }
    int rows = PQntuples(res);
    int shown = rows > s->limit ? s->limit : rows;
    api_reply_page(r, res, shown, rows > s->limit);
}

void api_query_page(gw_req *r, const char *sql, int nparams, const char **params,
                    int limit)
{
    page_state *s = calloc(1, sizeof *s);
    if (!s) { http_reply_problem(r, 503, "unavailable", "out of memory", NULL); return; }
    s->limit = limit;
    r->state = s;
    r->state_free = free;
    char lim[16];
    snprintf(lim, sizeof lim, "%d", limit + 1);
    params[nparams - 1] = lim;
    gw_query(r, sql, nparams, params, on_page);
}
