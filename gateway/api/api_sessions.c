/*
 * api_sessions.c - POST /v1/sessions, GET /v1/sessions, GET and DELETE
 * /v1/sessions/{id}.
 *
 * A session groups a conversation's agent runs (POST /v1/agent-runs with
 * session_id); the worker gives a run the session's earlier turns as
 * context. Deleting a session keeps its runs, detached (session_id NULL,
 * by the foreign key). How a session looks is session_json() in
 * 003_agent_runs.sql.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "api_util.h"
#include "http.h"
#include "query.h"
#include "jsonutil.h"
#include "utf8.h"
#include "uuid.h"
#include "log.h"

#define SESSION_TITLE_MAX_CHARS 256
#define SESSION_METADATA_MAX_BYTES (16 * 1024)

/* --- POST /v1/sessions --------------------------------------------------- */

typedef struct create_state { char id[UUID_STR_LEN]; } create_state;

static void on_session_inserted(gw_req *r, PGresult *res, const char *err, const char *sqlstate)
{
    create_state *s = r->state;
    if (!res) { gw_reply_db_error(r, err, sqlstate); return; }
    if (PQntuples(res) != 1) {
        gw_reply_db_error(r, "session insert answered no row", "XX000");
        return;
    }
    log_debug("session %s created", s->id);
    char location[64];
    snprintf(location, sizeof location, "/v1/sessions/%s", s->id);
    http_set_header(r, "Location", location);
    api_reply_row(r, 201, res, 0, 0);
}

/* Code points in s, which the bounded parser already checked is UTF-8. */
static size_t utf8_chars(const char *s)
{
    size_t n = 0, len = strlen(s);
    for (size_t i = 0; i < len; n++) {
        size_t step = utf8_sequence_len((const unsigned char *)s + i, len - i);
        i += step ? step : 1;
    }
    return n;
}

/* Checks title and metadata; answers 422 and returns -1 for a bad one. */
static int check_session_body(gw_req *r, const cJSON *body, char **metadata_text)
{
    *metadata_text = NULL;
    const cJSON *title = cJSON_GetObjectItemCaseSensitive(body, "title");
    if (title && !cJSON_IsNull(title) &&
        (!cJSON_IsString(title) || utf8_chars(title->valuestring) > SESSION_TITLE_MAX_CHARS)) {
        char detail[96];
        snprintf(detail, sizeof detail, "title must be a string of at most %d characters",
                 SESSION_TITLE_MAX_CHARS);
        http_reply_problem(r, 422, "validation-failed", detail, "/title");
        return -1;
    }
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(body, "metadata");
    if (!meta || cJSON_IsNull(meta)) return 0;
    if (!cJSON_IsObject(meta)) {
        http_reply_problem(r, 422, "validation-failed", "metadata must be a JSON object",
                           "/metadata");
        return -1;
    }
    *metadata_text = json_print(meta);
    if (!*metadata_text) {
        http_reply_problem(r, 503, "unavailable", "out of memory", NULL);
        return -1;
    }
    if (strlen(*metadata_text) > SESSION_METADATA_MAX_BYTES) {
        char detail[96];
        snprintf(detail, sizeof detail, "metadata must be at most %d bytes as compact JSON",
                 SESSION_METADATA_MAX_BYTES);
        http_reply_problem(r, 422, "validation-failed", detail, "/metadata");
        free(*metadata_text);
        *metadata_text = NULL;
        return -1;
    }
    return 0;
}

void api_sessions_create(gw_req *r)
{
    static const char *const fields[] = { "title", "metadata", NULL };
    /* Both fields are optional, so no body at all means an untitled session. */
    size_t len;
    http_body(r, &len);
    cJSON *body;
    if (len == 0 && !http_body_too_large(r)) {
        body = cJSON_CreateObject();
        if (!body) { http_reply_problem(r, 503, "unavailable", "out of memory", NULL); return; }
    } else {
        body = api_parse_body(r, fields);
        if (!body) return;
    }
    char *metadata = NULL;
    if (check_session_body(r, body, &metadata) != 0) goto done;

    create_state *s = calloc(1, sizeof *s);
    if (!s) { http_reply_problem(r, 503, "unavailable", "out of memory", NULL); goto done; }
    r->state = s;
    r->state_free = free;
    uuid_v7(s->id);
    snprintf(r->audit_resource, sizeof r->audit_resource, "sessions/%s", s->id);
    const char *params[5] = { s->id, r->who.tenant_id, r->who.sub,
                              json_get_string(body, "title"), metadata };
    gw_query(r,
             "INSERT INTO sessions (id, tenant_id, created_by, title, metadata)"
             " VALUES ($1, $2, $3, $4, coalesce($5::jsonb, '{}'))"
             " RETURNING session_json(sessions, true)",
             5, params, on_session_inserted);
done:
    free(metadata);
    cJSON_Delete(body);
}

/* --- GET /v1/sessions ------------------------------------------------------ */

static const char SQL_SESSION_LIST[] =
    "SELECT session_json(s, false), s.created_at::text, s.id FROM sessions s"
    " WHERE s.tenant_id = $1"
    "   AND ($2::timestamptz IS NULL OR (s.created_at, s.id) < ($2::timestamptz, $3::uuid))"
    " ORDER BY s.created_at DESC, s.id DESC LIMIT $4";

void api_sessions_list(gw_req *r)
{
    int limit;
    api_cursor cur;
    if (api_read_limit(r, &limit) != 0 || api_read_cursor(r, &cur) != 0) return;
    const char *params[4] = { r->who.tenant_id, cur.present ? cur.created_at : NULL,
                              cur.present ? cur.id : NULL, NULL };
    api_query_page(r, SQL_SESSION_LIST, 4, params, limit);
}

/* --- GET /v1/sessions/{id} -------------------------------------------------- */

static void on_session_row(gw_req *r, PGresult *res, const char *err, const char *sqlstate)
{
    if (!res) { gw_reply_db_error(r, err, sqlstate); return; }
    if (PQntuples(res) == 0) { api_reply_not_found(r, "session"); return; }
    api_reply_row(r, 200, res, 0, 0);
}

void api_session_get(gw_req *r)
{
    char id[UUID_STR_LEN];
    if (!uuid_parse(r->route.param, id)) { api_reply_not_found(r, "session"); return; }
    const char *params[2] = { id, r->who.tenant_id };
    gw_query(r, "SELECT session_json(s, true) FROM sessions s WHERE s.id = $1 AND s.tenant_id = $2",
             2, params, on_session_row);
}

/* --- DELETE /v1/sessions/{id} ----------------------------------------------- */

static void on_session_deleted(gw_req *r, PGresult *res, const char *err, const char *sqlstate)
{
    if (!res) { gw_reply_db_error(r, err, sqlstate); return; }
    if (PQntuples(res) == 0) { api_reply_not_found(r, "session"); return; }
    log_info("session %s deleted", PQgetvalue(res, 0, 0));
    http_reply(r, 204, "application/json", "", 0);
}

void api_session_delete(gw_req *r)
{
    char id[UUID_STR_LEN];
    if (!uuid_parse(r->route.param, id)) { api_reply_not_found(r, "session"); return; }
    snprintf(r->audit_resource, sizeof r->audit_resource, "sessions/%s", id);
    const char *params[2] = { id, r->who.tenant_id };
    gw_query(r, "DELETE FROM sessions WHERE id = $1 AND tenant_id = $2 RETURNING id",
             2, params, on_session_deleted);
}
