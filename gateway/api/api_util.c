/*
 * api_util.c - helpers shared by the API handlers (see api_util.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <event2/buffer.h>

#include "base64url.h"
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

const char *api_row_json(PGresult *res, int row, int col, size_t *len)
{
    char *text = PQgetvalue(res, row, col);
    *len = json_compact(text, (size_t)PQgetlength(res, row, col));
    return text;
}

void api_reply_row(gw_req *r, int status, PGresult *res, int row, int col)
{
    size_t len;
    const char *json = api_row_json(res, row, col, &len);
    http_reply_json(r, status, json, len);
}

void api_add_items(struct evbuffer *b, PGresult *res, int shown)
{
    evbuffer_add(b, "{\"items\":[", 10);
    for (int i = 0; i < shown; i++) {
        size_t len;
        const char *json = api_row_json(res, i, 0, &len);
        if (i) evbuffer_add(b, ",", 1);
        evbuffer_add(b, json, len);
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
