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
#include "rbac.h"
#include "jsonutil.h"
#include "strbuf.h"
#include "jwt.h"
#include "events.h"
#include "clock.h"
#include "jobtypes.h"
#include "pg_array.h"

static bool content_type_is_json(const char *ct)
{
    if (!ct) return true; /* tolerated: many clients omit it */
    size_t n = strcspn(ct, ";");
    while (n && ct[n - 1] == ' ') n--;
    return (n == 16 && strncasecmp(ct, "application/json", 16) == 0) ||
           (n > 5 && strncasecmp(ct + n - 5, "+json", 5) == 0);
}

/*
 * Answers 422 (with the number's pointer) when a number of the body would
 * not be stored as the decimal the client sent (json_find_inexact_number):
 * a body is kept as parsed and printed back, and storing another value
 * than the one accepted would be a silent change. Returns 0, or -1 after
 * answering.
 */
static int refuse_inexact_number(gw_req *r, const char *text, size_t len, const cJSON *body)
{
    strbuf pointer = {0};
    int rc = json_find_inexact_number(text, len, body, &pointer);
    if (rc == 0) { strbuf_free(&pointer); return 0; }
    if (rc < 0) {
        http_reply_problem(r, 503, "unavailable", "out of memory", NULL);
    } else {
        strbuf detail = {0};
        strbuf_addf(&detail, "%s is a number that cannot be kept exactly as sent: it is out "
                    "of range, or more precise than a 64-bit floating-point number holds "
                    "(send it as a string to keep every digit)",
                    pointer.s[0] ? pointer.s + 1 : "the body");
        http_reply_problem(r, 422, "validation-failed",
                           detail.oom ? "a number cannot be kept exactly as sent" : detail.s,
                           pointer.s);
        strbuf_free(&detail);
    }
    strbuf_free(&pointer);
    return -1;
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
    if (refuse_inexact_number(r, buf, len, body) != 0) {
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

int api_require_job_access(gw_req *r, const char *type)
{
    rbac_perm need = rbac_job_perm(r->perm, type);
    if (need.res == r->perm.res) return 0;      /* the route's check was the whole check */
    char detail[160];
    if (rbac_allows(&r->who, need, detail, sizeof detail)) return 0;
    http_reply_problem(r, 403, "forbidden", detail, NULL);
    return -1;
}

char *api_job_types_array(gw_req *r, bool reach, bool (*skip)(const job_type *t))
{
    size_t n;
    const job_type *types = jobtypes_all(&n);
    strbuf b = {0};
    strbuf_add(&b, "{");
    bool first = true;
    for (size_t i = 0; i < n; i++) {
        if (skip && skip(&types[i])) continue;
        rbac_perm need = rbac_job_perm(r->perm, types[i].name);
        char detail[160];
        bool reached = need.res == r->perm.res || rbac_allows(&r->who, need, detail, sizeof detail);
        if (reached != reach) continue;
        if (!first) strbuf_add(&b, ",");
        pg_array_element_add(&b, types[i].name);
        first = false;
    }
    strbuf_add(&b, "}");
    return strbuf_take(&b, NULL);
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

/* ---- cursors ------------------------------------------------------------- */

/* Reads exactly n digits at *p into *out and moves *p past them. */
static bool read_digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9') return false;
        v = v * 10 + (c - '0');
    }
    *p += n;
    *out = v;
    return true;
}

/* Reads the character c at *p and moves past it. */
static bool read_char(const char **p, char c)
{
    if (**p != c) return false;
    (*p)++;
    return true;
}

static bool in_range(int v, int lo, int hi) { return v >= lo && v <= hi; }

static int days_in_month(int year, int month)
{
    static const int days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return month == 2 && leap ? 29 : days[month - 1];
}

/*
 * True when ts is a timestamp as PostgreSQL prints a timestamptz as text
 * (DateStyle ISO): "YYYY-MM-DD HH:MM:SS[.f{1,6}]" and a UTC offset
 * "+HH[:MM[:SS]]" (or "-"), every field in range: a real calendar day
 * (leap years counted), no hour 24, no leap second. Anything else would
 * only fail inside PostgreSQL.
 */
static bool cursor_time_valid(const char *ts)
{
    const char *p = ts;
    int year, month, day, hour, minute, second, f;
    if (!read_digits(&p, 4, &year) || !read_char(&p, '-') || !read_digits(&p, 2, &month) ||
        !read_char(&p, '-') || !read_digits(&p, 2, &day) || !read_char(&p, ' ') ||
        !read_digits(&p, 2, &hour) || !read_char(&p, ':') || !read_digits(&p, 2, &minute) ||
        !read_char(&p, ':') || !read_digits(&p, 2, &second))
        return false;
    if (!in_range(year, 1, 9999) || !in_range(month, 1, 12) ||
        !in_range(day, 1, days_in_month(year, month)) || !in_range(hour, 0, 23) ||
        !in_range(minute, 0, 59) || !in_range(second, 0, 59))
        return false;
    if (read_char(&p, '.')) {
        int digits = 0;
        while (digits < 6 && read_digits(&p, 1, &f)) digits++;
        if (digits == 0) return false;
    }
    if (*p != '+' && *p != '-') return false;
    p++;
    int off_h, off_m, off_s;
    if (!read_digits(&p, 2, &off_h) || !in_range(off_h, 0, 15)) return false;
    /* Minutes, then seconds, each only after the one before it. */
    if (read_char(&p, ':')) {
        if (!read_digits(&p, 2, &off_m) || !in_range(off_m, 0, 59)) return false;
        if (read_char(&p, ':') && (!read_digits(&p, 2, &off_s) || !in_range(off_s, 0, 59)))
            return false;
    }
    return *p == '\0';
}

/* The cursor is base64url("<created_at>|<id>"): opaque to clients, and
 * every part is checked again when it comes back, whole, so a tampered
 * cursor is the client's 400 and never reaches PostgreSQL. */
bool api_cursor_parse(const char *text, api_cursor *cur)
{
    memset(cur, 0, sizeof *cur);
    unsigned char raw[128];
    size_t len = strlen(text);
    long n = len <= 160 ? b64url_decode(text, len, raw, sizeof raw - 1) : -1;
    if (n <= 0 || memchr(raw, '\0', (size_t)n)) return false;
    raw[n] = '\0';
    char *bar = strchr((char *)raw, '|');
    if (!bar || (size_t)(bar - (char *)raw) >= sizeof cur->created_at) return false;
    *bar = '\0';
    const char *ts = (const char *)raw;
    if (!cursor_time_valid(ts) || !uuid_parse(bar + 1, cur->id)) return false;
    memcpy(cur->created_at, ts, (size_t)(bar - ts) + 1);
    cur->present = true;
    return true;
}

int api_read_cursor(gw_req *r, api_cursor *cur)
{
    memset(cur, 0, sizeof *cur);
    const char *v = http_query(r, "cursor");
    if (!v || api_cursor_parse(v, cur)) return 0;
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
