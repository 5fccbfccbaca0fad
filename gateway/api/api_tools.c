/*
 * api_tools.c - GET /v1/tools and GET /v1/tools/{name}: the tool manifests
 * the caller's tenant sees.
 *
 * Which manifests a tenant sees is defined once, by tools_visible() in
 * 003_agent_runs.sql: its own row of a name wins over the global one, and
 * only enabled manifests are shown, so a tenant's disabled row withdraws
 * a global tool from it.
 */
#include <stdio.h>
#include <string.h>
#include <event2/buffer.h>

#include "api.h"
#include "api_util.h"
#include "http.h"
#include "query.h"

/* A listing larger than this is cut, and says so. */
#define TOOLS_LIST_MAX 1000

bool api_tool_name_valid(const char *s)
{
    size_t n = strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-");
    return n >= 1 && n <= 128 && s[n] == '\0';
}

static void on_tools(gw_req *r, PGresult *res, const char *err, const char *sqlstate)
{
    if (!res) { gw_reply_db_error(r, err, sqlstate); return; }
    int rows = PQntuples(res);
    int shown = rows > TOOLS_LIST_MAX ? TOOLS_LIST_MAX : rows;
    struct evbuffer *b = evbuffer_new();
    if (!b) { http_reply_problem(r, 503, "unavailable", "out of memory", NULL); return; }
    api_add_items(b, res, shown);
    evbuffer_add_printf(b, "],\"truncated\":%s}", rows > shown ? "true" : "false");
    api_reply_buffer(r, b);
}

void api_tools_list(gw_req *r)
{
    char lim[16];
    snprintf(lim, sizeof lim, "%d", TOOLS_LIST_MAX + 1);
    const char *params[2] = { r->who.tenant_id, lim };
    gw_query(r,
             "SELECT tool_json(t) FROM tools_visible($1) t WHERE t.enabled"
             " ORDER BY t.name LIMIT $2",
             2, params, on_tools);
}

static void reply_no_tool(gw_req *r)
{
    http_reply_problem(r, 404, "not-found", "no tool with this name", NULL);
}

static void on_tool(gw_req *r, PGresult *res, const char *err, const char *sqlstate)
{
    if (!res) { gw_reply_db_error(r, err, sqlstate); return; }
    if (PQntuples(res) == 0) { reply_no_tool(r); return; }
    api_reply_row(r, 200, res, 0, 0);
}

void api_tool_get(gw_req *r)
{
    if (!api_tool_name_valid(r->route.name)) { reply_no_tool(r); return; }
    const char *params[2] = { r->who.tenant_id, r->route.name };
    gw_query(r,
             "SELECT tool_json(t) FROM tools_visible($1) t WHERE t.name = $2 AND t.enabled",
             2, params, on_tool);
}
