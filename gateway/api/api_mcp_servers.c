/*
 * api_mcp_servers.c - the tenant's Model Context Protocol servers:
 * POST /v1/mcp-servers, GET /v1/mcp-servers, GET, PATCH and DELETE
 * /v1/mcp-servers/{name}, POST /v1/mcp-servers/{name}/refresh.
 *
 * A tenant reaches a server in one of two ways, both decided by the
 * operator: an HTTP server by a URL within AGENTGATE_MCP_URL_ALLOWLIST,
 * or a stdio server by the name of one in AGENTGATE_MCP_SERVERS_FILE that
 * lists the tenant. A tenant never names a command. Everything is checked
 * here, before any statement, and again by the worker when it connects.
 *
 * Registering, changing how a server is reached (url, server, headers)
 * and refreshing each queue an mcp.discover job in the same statement as
 * the row (as POST /v1/agent-runs does its run and job), so a server is
 * never without the discovery that fills in its tools; the job goes to
 * Redis after the commit. The worker's discovery writes status, tools and
 * the tool manifests ({name}.{tool}); DELETE takes those manifests with
 * the row (foreign key cascade).
 *
 * headers (an Authorization bearer, an API key) are write-only: no answer
 * carries them (mcp_server_json shows their names), no log line does, and
 * a failed statement that carried them is logged by SQLSTATE alone, since
 * PostgreSQL's message can quote the row.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <event2/buffer.h>

#include "api.h"
#include "api_util.h"
#include "http.h"
#include "gw_metrics.h"
#include "query.h"
#include "events.h"
#include "job_json.h"
#include "mcp_discovery_job.h"
#include "job_publish.h"
#include "jobtypes.h"
#include "jsonutil.h"
#include "log.h"
#include "mcp_config.h"
#include "permission.h"
#include "schema.h"
#include "uuid.h"

#define MCP_URL_MAX_BYTES    2048
#define MCP_HEADERS_MAX      16
#define MCP_HEADER_NAME_MAX  128
#define MCP_HEADER_VALUE_MAX 4096
#define MCP_RESOURCE_MAX     32
#define MCP_DEFAULT_RESOURCE "tools"
#define MCP_LIST_MAX         1000     /* AGENTGATE_MCP_MAX_SERVERS's own maximum */
#define MCP_PATCH_ATTEMPTS   3

/* The operator's stdio servers, loaded by main.c before the loop threads
 * start and read-only from then on. */
static const mcp_servers_file *stdio_servers;

void api_mcp_servers_setup(const struct mcp_servers_file *servers)
{
    stdio_servers = servers;
}

/* ------------------------------------------------------------------ */
/* Checks of the body, shared by POST and PATCH                       */
/* ------------------------------------------------------------------ */

static int invalid(gw_req *r, const char *pointer, const char *detail)
{
    http_reply_problem(r, 422, "validation-failed", detail, pointer);
    return -1;
}

static void reply_not_found(gw_req *r)
{
    http_reply_problem(r, 404, "not-found", "no MCP server with this name", NULL);
}

/* A member that is absent or JSON null: on POST the same as absent, on
 * PATCH (merge patch) "remove", which each member handles. */
static bool absent(const cJSON *v)
{
    return v == NULL || cJSON_IsNull(v);
}

/* require_approval: absent, true or false (null: false): whether every
 * tool of the server waits for a person's approval before each call. */
static int check_require_approval(gw_req *r, const cJSON *body)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, "require_approval");
    if (v && !cJSON_IsBool(v) && !cJSON_IsNull(v))
        return invalid(r, "/require_approval", "require_approval must be true or false");
    return 0;
}

/* url: a string within the operator's allow-list. The check parses the
 * URL (mcp_url_allowed), so a URL that only looks like an allowed one
 * (user information, "..", encoded slashes, a backslash) is refused. */
static int check_url(gw_req *r, const cJSON *v)
{
    if (!cJSON_IsString(v) || v->valuestring[0] == '\0')
        return invalid(r, "/url", "url must be a non-empty string");
    if (strlen(v->valuestring) > MCP_URL_MAX_BYTES)
        return invalid(r, "/url", "url must be at most 2048 bytes");
    if (!mcp_url_allowed(r->thr->srv->cfg.mcp_url_allowlist, v->valuestring)) {
        http_reply_problem(r, 422, "url-not-allowed",
                           "url is not within the URL prefixes this gateway allows "
                           "(AGENTGATE_MCP_URL_ALLOWLIST)", "/url");
        return -1;
    }
    return 0;
}

/* server: the name of a stdio server of the operator's file that lists
 * this tenant. One the tenant may not use is answered like one that does
 * not exist, so the file's contents do not leak across tenants. */
static int check_stdio_server(gw_req *r, const cJSON *v)
{
    if (!cJSON_IsString(v) || !mcp_server_name_valid(v->valuestring))
        return invalid(r, "/server", "server must be the name of a stdio server: "
                       "[a-z0-9][a-z0-9_-]{0,47}");
    const mcp_stdio_server *s = mcp_servers_file_find(stdio_servers, v->valuestring);
    if (s == NULL || !mcp_stdio_server_allows(s, r->who.tenant_id)) {
        http_reply_problem(r, 422, "unknown-mcp-server",
                           "server names no stdio server this tenant may use "
                           "(AGENTGATE_MCP_SERVERS_FILE)", "/server");
        return -1;
    }
    return 0;
}

/* An RFC 9110 token character (a header name is a token). */
static bool tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static bool header_name_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > MCP_HEADER_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!tchar((unsigned char)s[i]))
            return false;
    return true;
}

/* Printable ASCII, space and tab: no CR or LF that would end the header
 * and start another, no other control byte. */
static bool header_value_valid(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if ((*p < 0x20 && *p != '\t') || *p >= 0x7f)
            return false;
    return true;
}

/* Headers the worker's transport sets itself, or that would change where
 * or how a request goes (Host to another virtual host, framing, the MCP
 * session): a tenant may not set them. */
static bool header_reserved(const char *name)
{
    static const char *const reserved[] = {
        "host", "content-length", "content-type", "transfer-encoding", "connection",
        "keep-alive", "upgrade", "te", "trailer", "expect", "accept", "accept-encoding",
        "proxy-authorization", "proxy-connection", "mcp-session-id", "mcp-protocol-version",
        "last-event-id", NULL
    };
    for (size_t i = 0; reserved[i]; i++)
        if (strcasecmp(name, reserved[i]) == 0)
            return true;
    return false;
}

/* The pointer /headers/<name>, escaped as RFC 6901 says ('~' is a token
 * character; '/' is not). */
static void header_pointer(const char *name, char *out, size_t size)
{
    size_t n = (size_t)snprintf(out, size, "/headers/");
    for (const char *p = name; *p && n + 3 < size; p++) {
        if (*p == '~') { out[n++] = '~'; out[n++] = '0'; }
        else out[n++] = *p;
    }
    out[n < size ? n : size - 1] = '\0';
}

/* headers: an object of at most 16 string members, names distinct HTTP
 * tokens (any case) that are not reserved, values at most 4096 bytes of
 * printable ASCII. Sets *json to its compact text (caller frees). The
 * details name the header, never its value. */
static int check_headers(gw_req *r, const cJSON *v, char **json)
{
    *json = NULL;
    if (!cJSON_IsObject(v))
        return invalid(r, "/headers", "headers must be an object of header names to strings");
    if (cJSON_GetArraySize(v) > MCP_HEADERS_MAX)
        return invalid(r, "/headers", "headers may name at most 16 headers");
    char pointer[160], detail[256];
    for (const cJSON *h = v->child; h; h = h->next) {
        if (!header_name_valid(h->string)) {
            snprintf(detail, sizeof detail, "headers names must be HTTP header names "
                     "(token characters, 1 to %d)", MCP_HEADER_NAME_MAX);
            return invalid(r, "/headers", detail);
        }
        header_pointer(h->string, pointer, sizeof pointer);
        if (header_reserved(h->string)) {
            snprintf(detail, sizeof detail, "the %s header is set by agentgate and cannot be "
                     "given", h->string);
            return invalid(r, pointer, detail);
        }
        for (const cJSON *o = v->child; o != h; o = o->next)
            if (strcasecmp(o->string, h->string) == 0) {
                snprintf(detail, sizeof detail, "the %s header is given twice", h->string);
                return invalid(r, pointer, detail);
            }
        if (!cJSON_IsString(h) || strlen(h->valuestring) > MCP_HEADER_VALUE_MAX ||
            !header_value_valid(h->valuestring)) {
            snprintf(detail, sizeof detail, "the value of the %s header must be a string of "
                     "at most %d bytes of printable ASCII", h->string, MCP_HEADER_VALUE_MAX);
            return invalid(r, pointer, detail);
        }
    }
    *json = json_print(v);
    if (*json == NULL) {
        http_reply_problem(r, 503, "unavailable", "out of memory", NULL);
        return -1;
    }
    return 0;
}

/* resource: the permission resource a call of the server's tools is
 * checked against (roles and "<resource>:read|write" scopes), so it must
 * name one: a name the matrix does not know would be a resource no check
 * could speak for. */
static int check_resource(gw_req *r, const cJSON *v)
{
    const char *s = cJSON_IsString(v) ? v->valuestring : "";
    size_t n = strlen(s);
    bool shape = n >= 1 && n <= MCP_RESOURCE_MAX && s[0] >= 'a' && s[0] <= 'z' &&
                 strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-") == n;
    if (!shape || permission_resource_by_name(s) == RES_NONE)
        return invalid(r, "/resource", "resource must name a permission resource: "
                       "agent-runs, jobs, tools, tenants, models, mcp-servers or graph");
    return 0;
}

/* ------------------------------------------------------------------ */
/* The discovery job                                                  */
/* ------------------------------------------------------------------ */

/* A queued discovery: its id, payload and job.queued event, made before
 * the statement that inserts it. */
typedef mcp_discovery_job discovery;

static void discovery_free(discovery *d)
{
    mcp_discovery_job_free(d);
}

/* Prepares the job for server name. Returns 0, or answers and -1. */
static int discovery_make(gw_req *r, const char *name, discovery *d)
{
    if (mcp_discovery_job_make(d, name) == 0)
        return 0;
    http_reply_problem(r, 500, "internal", "the request failed inside the gateway", NULL);
    return -1;
}

/* After the commit: the job's first event and its place in the queue. */
static void discovery_publish(gw_req *r, const char *job_id, const char *event,
                              const char *name)
{
    gw_redis_append_event(r->thr, job_id, 1, event, "queued");
    gw_redis_enqueue(r->thr, job_id, MCP_DISCOVER_TYPE, r->who.tenant_id, 0);
    metric_inc(gw_metric.jobs_submitted, MCP_DISCOVER_TYPE);
    log_info("mcp server %s of tenant %s: discovery queued as job %s", name,
             r->who.tenant_id, job_id);
}

/* A failed statement that may have carried headers: PostgreSQL's message
 * can quote the failing row, so only the SQLSTATE is passed on to the
 * log. */
static void reply_db_error(gw_req *r, const char *sqlstate)
{
    gw_reply_db_error(r, "MCP server statement failed (message withheld: it may quote headers)",
                      sqlstate);
}

/* The job columns every discovery insert names; the values follow the
 * statement's own parameters. */
#define JOB_COLUMNS \
    "(id, tenant_id, type, status, priority, payload, max_attempts, timeout_s," \
    " created_by, last_event_id, request_id, traceparent)"

/* The request's step state: the server's name, the job prepared for it,
 * and a PATCH's body and attempts. */
typedef struct mcp_state {
    char name[MCP_SERVER_NAME_MAX + 1];
    discovery job;
    cJSON *patch;
    int attempts;
} mcp_state;

static void mcp_state_free(void *p)
{
    mcp_state *s = p;
    discovery_free(&s->job);
    cJSON_Delete(s->patch);
    free(s);
}

static mcp_state *state_new(gw_req *r, const char *name)
{
    mcp_state *s = calloc(1, sizeof *s);
    if (!s) {
        http_reply_problem(r, 503, "unavailable", "out of memory", NULL);
        return NULL;
    }
    snprintf(s->name, sizeof s->name, "%s", name);
    r->state = s;
    r->state_free = mcp_state_free;
    snprintf(r->audit_resource, sizeof r->audit_resource, "mcp-servers/%s", name);
    return s;
}

/* The {name} of the path, checked before any statement; answers 404 for
 * one that cannot be a server's name. */
static const char *path_name(gw_req *r)
{
    if (!mcp_server_name_valid(r->route.param)) {
        reply_not_found(r);
        return NULL;
    }
    return r->route.param;
}

/* ------------------------------------------------------------------ */
/* POST /v1/mcp-servers                                               */
/* ------------------------------------------------------------------ */

/*
 * $1 tenant, $2 name, $3 transport, $4 url, $5 server, $6 headers,
 * $7 resource, $8 sub, $9 the tenant's cap, $10 job id, $11 payload,
 * $12 max_attempts, $13 timeout_s, $14 request id, $15 traceparent,
 * $16 job.queued event, $17 require_approval. Answers one row: whether the tenant had room, and
 * the new server (NULL when the name is taken or there was no room).
 */
static const char SQL_MCP_INSERT[] =
    "WITH room AS (SELECT mcp_servers_room($1, $9::int) AS ok),"
    " s AS (INSERT INTO mcp_servers (tenant_id, name, transport, url, server, headers,"
    "   resource, refresh_job_id, created_by, require_approval)"
    "   SELECT $1, $2, $3, $4, $5, $6::jsonb, $7, $10::uuid, $8, $17::boolean"
    "   FROM room WHERE room.ok"
    "   ON CONFLICT (tenant_id, name) DO NOTHING"
    "   RETURNING mcp_server_json(mcp_servers) AS server_json),"
    " j AS (INSERT INTO jobs " JOB_COLUMNS
    "   SELECT $10::uuid, $1, '" MCP_DISCOVER_TYPE "', 'queued', 0, $11::jsonb, $12::int,"
    "     $13::int, $8, 1, $14, $15 FROM s"
    "   RETURNING id, tenant_id),"
    " e AS (INSERT INTO job_events (job_id, tenant_id, seq, type, body)"
    "   SELECT id, tenant_id, 1, 'job.queued', $16 FROM j)"
    " SELECT room.ok, (SELECT server_json FROM s) FROM room";

static void on_created(gw_req *r, PGresult *res, const char *err, const char *sqlstate)
{
    (void)err;
    mcp_state *s = r->state;
    if (!res) { reply_db_error(r, sqlstate); return; }
    if (PQntuples(res) != 1) { reply_db_error(r, "XX000"); return; }
    if (strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
        char detail[128];
        snprintf(detail, sizeof detail, "the tenant already has the %d MCP servers it may "
                 "register (AGENTGATE_MCP_MAX_SERVERS)", r->thr->srv->cfg.mcp_max_servers);
        http_reply_problem(r, 409, "too-many-mcp-servers", detail, NULL);
        return;
    }
    if (PQgetisnull(res, 0, 1)) {
        http_reply_problem(r, 409, "conflict", "an MCP server with this name is already "
                           "registered", "/name");
        return;
    }
    discovery_publish(r, s->job.id, s->job.event, s->name);
    char location[96];
    snprintf(location, sizeof location, "/v1/mcp-servers/%s", s->name);
    http_set_header(r, "Location", location);
    api_reply_row(r, 202, res, 0, 1);
}

/* The checks of a new server's body, in the contract's order. Fills the
 * statement's values (pointing into body; *headers malloc'd). */
static int check_new_server(gw_req *r, const cJSON *body, const char **transport,
                            const char **url, const char **server, char **headers,
                            const char **resource)
{
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(body, "name");
    const cJSON *tr = cJSON_GetObjectItemCaseSensitive(body, "transport");
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(body, "url");
    const cJSON *sv = cJSON_GetObjectItemCaseSensitive(body, "server");
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(body, "headers");
    const cJSON *res = cJSON_GetObjectItemCaseSensitive(body, "resource");
    *url = *server = NULL;
    *headers = NULL;
    *resource = MCP_DEFAULT_RESOURCE;

    if (!cJSON_IsString(name) || !mcp_server_name_valid(name->valuestring))
        return invalid(r, "/name", "name is required and must match [a-z0-9][a-z0-9_-]{0,47}");
    if (!cJSON_IsString(tr) || (strcmp(tr->valuestring, "http") != 0 &&
                                strcmp(tr->valuestring, "stdio") != 0))
        return invalid(r, "/transport", "transport is required and must be \"http\" or \"stdio\"");
    *transport = tr->valuestring;
    if (strcmp(*transport, "http") == 0) {
        if (absent(u)) return invalid(r, "/url", "url is required for an http server");
        if (!absent(sv)) return invalid(r, "/server", "server is only for stdio servers");
        if (check_url(r, u) != 0) return -1;
        *url = u->valuestring;
    } else {
        if (absent(sv)) return invalid(r, "/server", "server is required for a stdio server");
        if (!absent(u)) return invalid(r, "/url", "url is only for http servers");
        if (!absent(h)) return invalid(r, "/headers", "headers are only for http servers");
        if (check_stdio_server(r, sv) != 0) return -1;
        *server = sv->valuestring;
    }
    if (!absent(res)) {
        if (check_resource(r, res) != 0) return -1;
        *resource = res->valuestring;
    }
    if (!absent(h) && check_headers(r, h, headers) != 0) return -1;
    return check_require_approval(r, body);
}

void api_mcp_servers_create(gw_req *r)
{
    static const char *const fields[] = { "name", "transport", "url", "server", "headers",
                                          "resource", "require_approval", NULL };
    cJSON *body = api_parse_body(r, fields);
    if (!body) return;
    const char *transport, *url, *server, *resource;
    char *headers = NULL;
    if (check_new_server(r, body, &transport, &url, &server, &headers, &resource) != 0)
        goto done;
    mcp_state *s = state_new(r, json_get_string(body, "name"));
    if (!s || discovery_make(r, s->name, &s->job) != 0) goto done;

    char cap[16];
    snprintf(cap, sizeof cap, "%d", r->thr->srv->cfg.mcp_max_servers);
    const char *params[17] = {
        r->who.tenant_id, s->name, transport, url, server, headers ? headers : "{}",
        resource, r->who.sub, cap, s->job.id, s->job.payload, s->job.attempts,
        s->job.timeout, r->request_id, r->traceparent, s->job.event,
        cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(body, "require_approval")) ? "true"
                                                                                 : "false",
    };
    gw_query(r, SQL_MCP_INSERT, 17, params, on_created);
done:
    free(headers);
    cJSON_Delete(body);
}

/* ------------------------------------------------------------------ */
/* GET /v1/mcp-servers and /v1/mcp-servers/{name}                     */
/* ------------------------------------------------------------------ */

static void on_list(gw_req *r, PGresult *res, const char *err, const char *sqlstate)
{
    if (!res) { gw_reply_db_error(r, err, sqlstate); return; }
    int rows = PQntuples(res);
    int shown = rows > MCP_LIST_MAX ? MCP_LIST_MAX : rows;
    struct evbuffer *b = evbuffer_new();
    if (!b) { http_reply_problem(r, 503, "unavailable", "out of memory", NULL); return; }
    api_add_items(b, res, shown);
    evbuffer_add_printf(b, "],\"truncated\":%s}", rows > shown ? "true" : "false");
    api_reply_buffer(r, b);
}

/* A tenant has at most AGENTGATE_MCP_MAX_SERVERS (1000 at most) servers,
 * so one bounded answer lists them all; truncated says when a lowered
 * cap left more rows than that. */
void api_mcp_servers_list(gw_req *r)
{
    char lim[16];
    snprintf(lim, sizeof lim, "%d", MCP_LIST_MAX + 1);
    const char *params[2] = { r->who.tenant_id, lim };
    gw_query_static(r, "SELECT mcp_server_json(s) FROM mcp_servers s WHERE s.tenant_id = $1"
                       " ORDER BY s.name LIMIT $2::int",
                    2, params, on_list);
}

static void on_one(gw_req *r, PGresult *res, const char *err, const char *sqlstate)
{
    if (!res) { gw_reply_db_error(r, err, sqlstate); return; }
    if (PQntuples(res) == 0) { reply_not_found(r); return; }
    api_reply_row(r, 200, res, 0, 0);
}

void api_mcp_server_get(gw_req *r)
{
    const char *name = path_name(r);
    if (!name) return;
    const char *params[2] = { r->who.tenant_id, name };
    gw_query_static(r, "SELECT mcp_server_json(s) FROM mcp_servers s"
                       " WHERE s.tenant_id = $1 AND s.name = $2",
                    2, params, on_one);
}

/* ------------------------------------------------------------------ */
/* PATCH /v1/mcp-servers/{name}                                       */
/* ------------------------------------------------------------------ */

/*
 * Compare and set: written only when the row is still the version that
 * was read ($3, its xmin), so a concurrent PATCH or a discovery's write
 * is never undone; the caller reads again. A new discovery is queued when
 * url, server or headers change.
 *
 * $1 tenant, $2 name, $3 xmin, $4 url, $5 server, $6 headers (NULL:
 * kept), $7 resource, $8 job id, $9 payload, $10 max_attempts,
 * $11 timeout_s, $12 sub, $13 request id, $14 traceparent, $15 event,
 * $16 require_approval (NULL: kept).
 * Answers (server json, whether a discovery was queued), or no row.
 */
static const char SQL_MCP_UPDATE[] =
    "WITH o AS (SELECT url, server, headers FROM mcp_servers"
    "   WHERE tenant_id = $1 AND name = $2 AND xmin::text = $3 FOR UPDATE),"
    " d AS (SELECT (o.url IS DISTINCT FROM $4 OR o.server IS DISTINCT FROM $5"
    "   OR ($6::jsonb IS NOT NULL AND o.headers <> $6::jsonb)) AS rediscover FROM o),"
    " j AS (INSERT INTO jobs " JOB_COLUMNS
    "   SELECT $8::uuid, $1, '" MCP_DISCOVER_TYPE "', 'queued', 0, $9::jsonb, $10::int,"
    "     $11::int, $12, 1, $13, $14 FROM d WHERE d.rediscover"
    "   RETURNING id, tenant_id),"
    " e AS (INSERT INTO job_events (job_id, tenant_id, seq, type, body)"
    "   SELECT id, tenant_id, 1, 'job.queued', $15 FROM j),"
    " u AS (UPDATE mcp_servers s SET url = $4, server = $5,"
    "   headers = coalesce($6::jsonb, s.headers), resource = $7,"
    "   require_approval = coalesce($16::boolean, s.require_approval),"
    "   status = CASE WHEN d.rediscover THEN 'pending' ELSE s.status END,"
    "   refresh_job_id = CASE WHEN d.rediscover THEN $8::uuid ELSE s.refresh_job_id END,"
    "   updated_at = now()"
    "   FROM d WHERE s.tenant_id = $1 AND s.name = $2"
    "   RETURNING mcp_server_json(s) AS server_json, d.rediscover)"
    " SELECT server_json, rediscover FROM u";

static void read_for_patch(gw_req *r);

static void on_updated(gw_req *r, PGresult *res, const char *err, const char *sqlstate)
{
    (void)err;
    mcp_state *s = r->state;
    if (!res) { reply_db_error(r, sqlstate); return; }
    if (PQntuples(res) == 0) {
        /* Changed (by a discovery, another PATCH) or deleted since read. */
        if (++s->attempts < MCP_PATCH_ATTEMPTS && gw_req_alive(r)) { read_for_patch(r); return; }
        http_reply_problem(r, 409, "conflict",
                           "the MCP server was changed by another request meanwhile; retry", NULL);
        return;
    }
    bool queued = strcmp(PQgetvalue(res, 0, 1), "t") == 0;
    if (queued) discovery_publish(r, s->job.id, s->job.event, s->name);
    api_reply_row(r, queued ? 202 : 200, res, 0, 0);
}

/* The row as read for a PATCH: its transport and what the patch may
 * change (never its headers, which stay in the database). */
typedef struct patch_row {
    bool http;
    const char *url, *server, *resource, *xmin;
} patch_row;

/*
 * Applies the patch to the row read: the new url, server, headers (NULL:
 * kept) and resource, or 422 for a member the server's transport does not
 * take. The members' own checks ran before the read.
 */
static int merge_patch(gw_req *r, const cJSON *patch, const patch_row *row,
                       const char **url, const char **server, char **headers,
                       const char **resource)
{
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(patch, "url");
    const cJSON *sv = cJSON_GetObjectItemCaseSensitive(patch, "server");
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(patch, "headers");
    const cJSON *res = cJSON_GetObjectItemCaseSensitive(patch, "resource");
    *url = row->url;
    *server = row->server;
    *headers = NULL;
    *resource = row->resource;
    if (row->http) {
        if (u && cJSON_IsNull(u)) return invalid(r, "/url", "an http server needs its url");
        if (cJSON_IsString(sv)) return invalid(r, "/server", "server is only for stdio servers");
        if (cJSON_IsString(u)) *url = u->valuestring;
    } else {
        if (sv && cJSON_IsNull(sv))
            return invalid(r, "/server", "a stdio server needs its server");
        if (cJSON_IsString(u)) return invalid(r, "/url", "url is only for http servers");
        if (cJSON_IsObject(h) && cJSON_GetArraySize(h) > 0)
            return invalid(r, "/headers", "headers are only for http servers");
        if (cJSON_IsString(sv)) *server = sv->valuestring;
    }
    if (res) *resource = cJSON_IsNull(res) ? MCP_DEFAULT_RESOURCE : res->valuestring;
    if (h) {
        *headers = cJSON_IsNull(h) ? strdup("{}") : json_print(h);
        if (!*headers) {
            http_reply_problem(r, 503, "unavailable", "out of memory", NULL);
            return -1;
        }
    }
    return 0;
}

static void on_read_for_patch(gw_req *r, PGresult *res, const char *err, const char *sqlstate)
{
    mcp_state *s = r->state;
    if (!res) { gw_reply_db_error(r, err, sqlstate); return; }
    if (PQntuples(res) == 0) { reply_not_found(r); return; }
    if (!gw_req_alive(r)) return;
    patch_row row = {
        .http = strcmp(PQgetvalue(res, 0, 0), "http") == 0,
        .url = PQgetisnull(res, 0, 1) ? NULL : PQgetvalue(res, 0, 1),
        .server = PQgetisnull(res, 0, 2) ? NULL : PQgetvalue(res, 0, 2),
        .resource = PQgetvalue(res, 0, 3),
        .xmin = PQgetvalue(res, 0, 4),
    };
    const char *url, *server, *resource;
    char *headers = NULL;
    if (merge_patch(r, s->patch, &row, &url, &server, &headers, &resource) != 0) return;
    const cJSON *ra = cJSON_GetObjectItemCaseSensitive(s->patch, "require_approval");
    const char *params[16] = {
        r->who.tenant_id, s->name, row.xmin, url, server, headers, resource,
        s->job.id, s->job.payload, s->job.attempts, s->job.timeout, r->who.sub,
        r->request_id, r->traceparent, s->job.event,
        ra ? (cJSON_IsTrue(ra) ? "true" : "false") : NULL,
    };
    gw_query(r, SQL_MCP_UPDATE, 16, params, on_updated);
    free(headers);
}

static void read_for_patch(gw_req *r)
{
    mcp_state *s = r->state;
    const char *params[2] = { r->who.tenant_id, s->name };
    gw_query_static(r, "SELECT transport, url, server, resource, xmin::text FROM mcp_servers"
                       " WHERE tenant_id = $1 AND name = $2",
                    2, params, on_read_for_patch);
}

/* The checks of each member that do not depend on the row, before it is
 * read: types, shapes, the allow-list, the servers file. */
static int check_patch(gw_req *r, const cJSON *patch)
{
    if (cJSON_GetObjectItemCaseSensitive(patch, "name"))
        return invalid(r, "/name", "name cannot be changed; register the server again "
                       "under the new name");
    if (cJSON_GetObjectItemCaseSensitive(patch, "transport"))
        return invalid(r, "/transport", "transport cannot be changed; register the server "
                       "again");
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(patch, "url");
    const cJSON *sv = cJSON_GetObjectItemCaseSensitive(patch, "server");
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(patch, "headers");
    const cJSON *res = cJSON_GetObjectItemCaseSensitive(patch, "resource");
    if (!absent(u) && check_url(r, u) != 0) return -1;
    if (!absent(sv) && check_stdio_server(r, sv) != 0) return -1;
    if (!absent(res) && check_resource(r, res) != 0) return -1;
    if (!absent(h)) {
        char *json = NULL;
        if (check_headers(r, h, &json) != 0) return -1;
        free(json);
    }
    return check_require_approval(r, patch);
}

void api_mcp_server_update(gw_req *r)
{
    static const char *const fields[] = { "url", "server", "headers", "resource", "name",
                                          "transport", "require_approval", NULL };
    const char *name = path_name(r);
    if (!name) return;
    snprintf(r->audit_resource, sizeof r->audit_resource, "mcp-servers/%s", name);
    cJSON *body = api_parse_body(r, fields);
    if (!body) return;
    if (check_patch(r, body) != 0) { cJSON_Delete(body); return; }
    mcp_state *s = state_new(r, name);
    if (!s) { cJSON_Delete(body); return; }
    s->patch = body;
    if (discovery_make(r, s->name, &s->job) != 0) return;
    read_for_patch(r);
}

/* ------------------------------------------------------------------ */
/* DELETE /v1/mcp-servers/{name}                                      */
/* ------------------------------------------------------------------ */

static void on_deleted(gw_req *r, PGresult *res, const char *err, const char *sqlstate)
{
    if (!res) { gw_reply_db_error(r, err, sqlstate); return; }
    if (PQntuples(res) == 0) { reply_not_found(r); return; }
    log_info("mcp server %s of tenant %s deleted", PQgetvalue(res, 0, 0), r->who.tenant_id);
    http_reply_no_content(r, 204);
}

/* The tool manifests go with the row (ON DELETE CASCADE). A discovery
 * still queued finds no server when it runs. */
void api_mcp_server_delete(gw_req *r)
{
    const char *name = path_name(r);
    if (!name) return;
    snprintf(r->audit_resource, sizeof r->audit_resource, "mcp-servers/%s", name);
    const char *params[2] = { r->who.tenant_id, name };
    gw_query_static(r, "DELETE FROM mcp_servers WHERE tenant_id = $1 AND name = $2"
                       " RETURNING name",
                    2, params, on_deleted);
}

/* ------------------------------------------------------------------ */
/* POST /v1/mcp-servers/{name}/refresh                                */
/* ------------------------------------------------------------------ */

/*
 * A new discovery, unless the server's latest one is still queued
 * (mcp_server_refresh, sql/migrations/015_mcp_refresh.sql, the rule a
 * worker that hears notifications/tools/list_changed follows too).
 *
 * $1 tenant, $2 name, $3 job id, $4 payload, $5 max_attempts,
 * $6 timeout_s, $7 sub, $8 request id, $9 traceparent, $10 event.
 * Answers (server json, whether the job is new, the discovery's job id),
 * or no row when there is no such server.
 */
static const char SQL_MCP_REFRESH[] =
    "SELECT server, queued, job_id FROM mcp_server_refresh($1, $2, $3::uuid, $4::jsonb,"
    " $5::int, $6::int, $7, $8, $9, $10)";

static void on_refreshed(gw_req *r, PGresult *res, const char *err, const char *sqlstate)
{
    mcp_state *s = r->state;
    if (!res) { gw_reply_db_error(r, err, sqlstate); return; }
    if (PQntuples(res) == 0) { reply_not_found(r); return; }
    if (strcmp(PQgetvalue(res, 0, 1), "t") == 0)
        discovery_publish(r, s->job.id, s->job.event, s->name);
    char location[64];
    snprintf(location, sizeof location, "/v1/jobs/%s", PQgetvalue(res, 0, 2));
    http_set_header(r, "Location", location);
    api_reply_row(r, 202, res, 0, 0);
}

void api_mcp_server_refresh(gw_req *r)
{
    const char *name = path_name(r);
    if (!name) return;
    mcp_state *s = state_new(r, name);
    if (!s || discovery_make(r, s->name, &s->job) != 0) return;
    const char *params[10] = {
        r->who.tenant_id, s->name, s->job.id, s->job.payload, s->job.attempts,
        s->job.timeout, r->who.sub, r->request_id, r->traceparent, s->job.event,
    };
    gw_query(r, SQL_MCP_REFRESH, 10, params, on_refreshed);
}
