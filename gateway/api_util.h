/*
 * api_util.h - what several API handlers share: reading a JSON body,
 * the paging parameters and cursor, "not found" answers, and the
 * job.queued event every new job starts with.
 */
#ifndef AG_API_UTIL_H
#define AG_API_UTIL_H

#include <stdbool.h>
#include <libpq-fe.h>
#include <cjson/cJSON.h>
#include "gateway.h"
#include "uuid.h"

/*
 * Parses the body as a JSON object whose members are all named in allowed
 * (NULL-terminated). Returns the tree (caller frees), or NULL after
 * answering 400 (malformed), 413 (too large), 415 (not JSON) or 422
 * (not an object, unknown member).
 */
cJSON *api_parse_body(gw_req *r, const char *const *allowed);

/* Encodes event 1 of a new job: job.queued {"type","priority"}. Caller frees. */
char *api_queued_event(const char *job_id, const char *type, long long priority);

/* What only the insert of a new job decides, and what it already knew. */
typedef struct api_queued_job {
    const char *id;               /* canonical text form */
    const char *type;
    long long priority, max_attempts, timeout_s;
    const char *payload;          /* as the jsonb column prints it, len bytes */
    size_t payload_len;
    long long created_at_us;      /* microseconds since the Unix epoch, UTC */
    bool has_run_at;
    long long run_at_us;
} api_queued_job;

/*
 * Renders a job that was just inserted (queued, no attempt yet) exactly as
 * job_json() (sql/002_api_json.sql) renders its row: the same members in
 * the same order, the same separators, timestamps as api_ts() prints them.
 * The result is malloc'd (caller frees), *len its length; NULL when out of
 * memory.
 */
char *api_queued_job_json(const api_queued_job *j, size_t *len);

/*
 * Writes s as a quoted JSON string the way PostgreSQL's escape_json does:
 * quote, backslash and \b \f \n \r \t escaped, other controls as \u00XX,
 * everything else (UTF-8 included) as is; NUL-terminated. Returns the
 * bytes written (without the NUL), or 0 when out (size bytes) is too
 * small: 6 * strlen(s) + 3 always suffices.
 */
size_t api_json_string(const char *s, char *out, size_t size);

/* Writes ts (microseconds since the Unix epoch) as api_ts() does:
 * "YYYY-MM-DDTHH:MM:SS.mmmZ", UTC, milliseconds truncated. out holds 32. */
void api_format_ts(long long ts_us, char out[32]);

/* Answers 404 for a resource ("job", "agent run") that is not the caller's. */
void api_reply_not_found(gw_req *r, const char *what);

/* True when s equals one of the NULL-terminated words. */
bool api_one_of(const char *s, const char *const *words);

/* Reads ?limit= (1..200, default 50). Returns 0, or answers 400 and -1. */
int api_read_limit(gw_req *r, int *limit);

typedef struct api_cursor {
    bool present;
    char created_at[48];   /* PostgreSQL's text form of the row's created_at */
    char id[UUID_STR_LEN];
} api_cursor;

/* Reads ?cursor= (opaque, from a previous page). Returns 0, or answers 400 and -1. */
int api_read_cursor(gw_req *r, api_cursor *cur);

/* Appends {"items":[ and the first column of the first `shown` rows of
 * res, comma-separated, to b; the caller closes the array and object. */
void api_add_items(struct evbuffer *b, PGresult *res, int shown);

/* Answers 200 with the JSON in b, then frees b. */
void api_reply_buffer(gw_req *r, struct evbuffer *b);

/*
 * Answers 200 {"items":[...],"next_cursor":...} from the first `shown`
 * rows of res, whose columns are (item json, created_at text, id); the
 * cursor points after the last shown row when more is true.
 */
void api_reply_page(gw_req *r, PGresult *res, int shown, bool more);

/*
 * Runs a list query and answers its page (api_reply_page). sql must
 * select (item json, created_at text, id) newest first, and its last
 * parameter ($nparams) is the row limit: this function sets
 * params[nparams - 1] to limit + 1, the extra row telling whether a next
 * page exists. Takes over r->state.
 */
void api_query_page(gw_req *r, const char *sql, int nparams, const char **params,
                    int limit);

#endif
