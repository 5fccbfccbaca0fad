/*
 * api_util.h - what several API handlers share: reading a JSON body,
 * the paging parameters and cursor, and "not found" answers.
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
 * (not an object, unknown member, a number that would not be kept as the
 * decimal sent: json_find_inexact_number).
 */
cJSON *api_parse_body(gw_req *r, const char *const *allowed);

/* Answers 404 for a resource ("job", "agent run") that is not the caller's. */
void api_reply_not_found(gw_req *r, const char *what);

/* True when s equals one of the NULL-terminated words. */
bool api_one_of(const char *s, const char *const *words);

/*
 * For a job reached through a job route: a job that belongs to another
 * resource (an agent run's job, rbac_job_perm) needs that resource's
 * permission for the route's action too, checked like the route's own
 * (roles, then scopes). Returns 0, or answers 403 and returns -1.
 */
int api_require_job_access(gw_req *r, const char *job_type);

/*
 * The registered job types whose jobs the route's permission (r->perm,
 * through rbac_job_perm) reaches for the caller when reach is true, or
 * does not reach when it is false, as a PostgreSQL array literal ("{}"
 * when none), for a query to keep or leave out. A type for which skip
 * returns true is left out of the answer either way (skip may be NULL).
 * Returns a malloc'd string, or NULL when out of memory.
 */
struct job_type;
char *api_job_types_array(gw_req *r, bool reach, bool (*skip)(const struct job_type *t));

/* Reads ?limit= (1..200, default 50). Returns 0, or answers 400 and -1. */
int api_read_limit(gw_req *r, int *limit);

typedef struct api_cursor {
    bool present;
    char created_at[48];   /* PostgreSQL's text form of the row's created_at */
    char id[UUID_STR_LEN];
} api_cursor;

/*
 * Decodes a cursor this API returned (api_reply_page) into *cur: true when
 * it is one, false (and *cur cleared) for anything else, a tampered
 * cursor included: every part is checked to be what PostgreSQL printed
 * (a real date and time, an offset, a UUID) before it reaches a query.
 */
bool api_cursor_parse(const char *text, api_cursor *cur);

/* Reads ?cursor= (opaque, from a previous page). Returns 0, or answers
 * 400 bad-query and returns -1. */
int api_read_cursor(gw_req *r, api_cursor *cur);

/*
 * The JSON text PostgreSQL returned in (row, col) of res, made compact in
 * place (json_compact: PostgreSQL prints " : " and ", "), so every answer
 * has one style whoever rendered it. *len gets its length; the text lives
 * as long as res.
 */
const char *api_row_json(PGresult *res, int row, int col, size_t *len);

/* Answers status with the JSON text in (row, col) of res, compacted. */
void api_reply_row(gw_req *r, int status, PGresult *res, int row, int col);

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
