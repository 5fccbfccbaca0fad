/*
 * mcp_server.c - a tenant's registered MCP server as the worker reaches it
 * (see mcp_server.h): its row, the operator's checks, and a client.
 *
 * The row is read as the tenant (row-level security), so a job can only
 * ever reach its own tenant's servers. Before a transport is made the
 * operator's settings are consulted again: the URL must be within the
 * allow-list (HTTP), or the operator's server of that name must exist and
 * allow the tenant (stdio). A stdio child gets the operator's command,
 * arguments, working directory and environment, plus PATH, HOME and LANG
 * of the worker, and nothing else of the worker's environment (which
 * holds the database URL and API keys).
 */
#include "mcp_server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonutil.h"
#include "log.h"
#include "mcp_http.h"
#include "mcp_stdio.h"
#include "strbuf.h"
#include "job_store.h"

extern char **environ;

#define HEADERS_JSON_MAX  (MCP_HEADERS_MAX * (MCP_HEADER_NAME_MAX + MCP_HEADER_VALUE_MAX + 16))
#define URL_MAX           4096
#define STDIO_GRACE_MS    1000     /* each shutdown step of a pooled child */
#define DEFAULT_PATH      "PATH=/usr/local/bin:/usr/bin:/bin"

/* What mcp_servers_setup loaded; read-only once job threads run. */
static mcp_servers_file g_servers;
static const ag_config *g_cfg;

/* ---- the row --------------------------------------------------------------- */

void mcp_server_row_free(mcp_server_row *r)
{
    if (!r)
        return;
    free(r->url);
    free(r->stdio_server);
    if (r->headers_json) {
        /* Secret: not left behind in freed memory. */
        memset(r->headers_json, 0, strlen(r->headers_json));
        free(r->headers_json);
    }
    memset(r, 0, sizeof(*r));
}

static char *dup_value(const PGresult *res, int col)
{
    return PQgetisnull(res, 0, col) ? NULL : strdup(PQgetvalue(res, 0, col));
}

static void copy_value(const PGresult *res, int col, char *out, size_t size)
{
    snprintf(out, size, "%s", PQgetisnull(res, 0, col) ? "" : PQgetvalue(res, 0, col));
}

int mcp_server_row_load(PGconn *pg, const char *tenant, const char *name, bool lock,
                        mcp_server_row *out, char *err, size_t err_size)
{
    static const char sql[] =
        "SELECT s.transport, s.url, s.server, s.headers::text, s.resource, s.status, "
        MCP_CONFIG_ID_SQL("s") ", s.refresh_job_id::text"
        "  FROM mcp_servers s WHERE s.tenant_id = $1 AND s.name = $2";
    static const char sql_lock[] =
        "SELECT s.transport, s.url, s.server, s.headers::text, s.resource, s.status, "
        MCP_CONFIG_ID_SQL("s") ", s.refresh_job_id::text"
        "  FROM mcp_servers s WHERE s.tenant_id = $1 AND s.name = $2 FOR UPDATE";

    memset(out, 0, sizeof(*out));
    if (!pg || !tenant || !*tenant || !mcp_server_name_valid(name)) {
        errbuf_printf(err, err_size, "no database connection, tenant or valid server name");
        return -1;
    }
    const char *params[2] = {tenant, name};
    PGresult *res = store_exec_as(pg, tenant, lock ? sql_lock : sql, 2, params);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        strbuf b = {0};
        strbuf_add_flat(&b, pg ? PQerrorMessage(pg) : "", 200);
        errbuf_printf(err, err_size, "reading MCP server \"%s\" failed: %s", name,
                      b.s ? b.s : "unknown error");
        strbuf_free(&b);
        PQclear(res);
        return -1;
    }
    if (PQntuples(res) != 1) {
        PQclear(res);
        return 1;
    }
    snprintf(out->name, sizeof(out->name), "%s", name);
    out->http = strcmp(PQgetvalue(res, 0, 0), "http") == 0;
    out->url = dup_value(res, 1);
    out->stdio_server = dup_value(res, 2);
    out->headers_json = dup_value(res, 3);
    copy_value(res, 4, out->resource, sizeof(out->resource));
    copy_value(res, 5, out->status, sizeof(out->status));
    copy_value(res, 6, out->config_id, sizeof(out->config_id));
    copy_value(res, 7, out->refresh_job_id, sizeof(out->refresh_job_id));
    bool oom = (!PQgetisnull(res, 0, 1) && !out->url) ||
               (!PQgetisnull(res, 0, 2) && !out->stdio_server) ||
               (!PQgetisnull(res, 0, 3) && !out->headers_json);
    PQclear(res);
    if (oom) {
        mcp_server_row_free(out);
        errbuf_printf(err, err_size, "out of memory reading MCP server \"%s\"", name);
        return -1;
    }
    return 0;
}

/* ---- the operator's settings ---------------------------------------------- */

int mcp_servers_setup(const ag_config *cfg, char *err, size_t err_size)
{
    mcp_servers_teardown();
    g_cfg = cfg;
    if (!cfg)
        return 0;
    if (mcp_servers_file_load(cfg->mcp_servers_file, &g_servers, err, err_size) < 0)
        return -1;
    if (g_servers.count > 0)
        log_info("MCP: %zu stdio server%s configured by %s", g_servers.count,
                 g_servers.count == 1 ? "" : "s", cfg->mcp_servers_file);
    return 0;
}

void mcp_servers_teardown(void)
{
    mcp_servers_file_free(&g_servers);
    memset(&g_servers, 0, sizeof(g_servers));
    g_cfg = NULL;
}

/* ---- headers and environment ------------------------------------------------ */

void mcp_headers_free(char **headers)
{
    if (!headers)
        return;
    for (char **h = headers; *h; h++) {
        memset(*h, 0, strlen(*h));
        free(*h);
    }
    free(headers);
}

static bool token_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static bool header_name_ok(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++)
        if (n >= MCP_HEADER_NAME_MAX || !token_char((unsigned char)s[n]))
            return false;
    return n > 0;
}

/* Tab and printable bytes (UTF-8 included), nothing that ends a line. */
static bool header_value_ok(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++) {
        unsigned char c = (unsigned char)s[n];
        if (n >= MCP_HEADER_VALUE_MAX || (c < 0x20 && c != '\t') || c == 0x7F)
            return false;
    }
    return true;
}

int mcp_headers_parse(const char *json, char ***out, char *err, size_t err_size)
{
    char why[120];

    *out = NULL;
    size_t len = json ? strlen(json) : 0;
    cJSON *root = len ? json_parse_bounded(json, len, HEADERS_JSON_MAX, 4, why, sizeof(why))
                      : cJSON_CreateObject();
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        errbuf_printf(err, err_size, "the server's headers are not a JSON object of at most "
                      "%d bytes", HEADERS_JSON_MAX);
        return -1;
    }
    int n = cJSON_GetArraySize(root);
    if (n > MCP_HEADERS_MAX) {
        cJSON_Delete(root);
        errbuf_printf(err, err_size, "the server has %d headers, more than %d", n,
                      MCP_HEADERS_MAX);
        return -1;
    }
    char **h = calloc((size_t)n + 1, sizeof(char *));
    int k = 0;
    for (const cJSON *it = root->child; h && it; it = it->next) {
        if (!header_name_ok(it->string)) {
            errbuf_printf(err, err_size, "a header name of the server is not 1 to %d token "
                          "characters", MCP_HEADER_NAME_MAX);
            goto fail;
        }
        if (!cJSON_IsString(it) || !header_value_ok(it->valuestring)) {
            errbuf_printf(err, err_size, "the value of header \"%s\" is not text of at most "
                          "%d bytes on one line", it->string, MCP_HEADER_VALUE_MAX);
            goto fail;
        }
        size_t sz = strlen(it->string) + strlen(it->valuestring) + 3;
        if (!(h[k] = malloc(sz)))
            break;
        snprintf(h[k++], sz, "%s: %s", it->string, it->valuestring);
    }
    if (!h || k != n) {
        errbuf_printf(err, err_size, "out of memory");
        goto fail;
    }
    cJSON_Delete(root);
    *out = h;
    return 0;
fail:
    cJSON_Delete(root);
    mcp_headers_free(h);
    return -1;
}

/* The "KEY=value" entry of env for key, or NULL. */
static const char *env_entry(char *const *env, const char *key)
{
    size_t n = strlen(key);
    for (char *const *e = env; e && *e; e++)
        if (strncmp(*e, key, n) == 0 && (*e)[n] == '=')
            return *e;
    return NULL;
}

/* True when entry ("KEY=value") sets a key that one of set sets. */
static bool env_overridden(const char *entry, char *const *set)
{
    size_t n = strcspn(entry, "=");
    for (char *const *e = set; e && *e; e++)
        if (strncmp(*e, entry, n) == 0 && (*e)[n] == '=')
            return true;
    return false;
}

char **mcp_stdio_envp(const mcp_stdio_server *s, char *const *base)
{
    static const char *const inherited[] = {"PATH", "HOME", "LANG"};
    size_t nenv = s ? s->nenv : 0;
    char **envp = calloc(nenv + 4, sizeof(char *));
    size_t k = 0;

    for (size_t i = 0; envp && i < 3; i++) {
        const char *e = env_entry(base, inherited[i]);
        if (!e && i == 0)
            e = DEFAULT_PATH;
        if (!e || (s && env_overridden(e, s->env)))
            continue;
        if (!(envp[k++] = strdup(e)))
            goto oom;
    }
    for (size_t i = 0; envp && i < nenv; i++)
        if (!(envp[k++] = strdup(s->env[i])))
            goto oom;
    return envp;
oom:
    mcp_headers_free(envp);
    return NULL;
}

/* ---- making a client ---------------------------------------------------------- */

static mcp_transport *open_http(const mcp_server_row *row, const char *tenant,
                                const ag_config *cfg, mcp_open_err *why, char *err,
                                size_t err_size)
{
    char **headers = NULL;

    if (!row->url || !*row->url || strlen(row->url) > URL_MAX) {
        *why = MCP_OPEN_BAD_ROW;
        errbuf_printf(err, err_size, "MCP server \"%s\" has no usable URL", row->name);
        return NULL;
    }
    if (!mcp_url_allowed(cfg ? cfg->mcp_url_allowlist : "", row->url)) {
        *why = MCP_OPEN_REFUSED;
        errbuf_printf(err, err_size, "the URL of MCP server \"%s\" is not within the "
                      "operator's allow-list (AGENTGATE_MCP_URL_ALLOWLIST)", row->name);
        return NULL;
    }
    if (mcp_headers_parse(row->headers_json, &headers, err, err_size) < 0) {
        *why = MCP_OPEN_BAD_ROW;
        return NULL;
    }
    char name[64];
    snprintf(name, sizeof(name), "%.14s/%s", tenant, row->name);
    mcp_http_config hc = {
        .name = name,
        .url = row->url,
        .headers = (const char *const *)headers,
        .connect_timeout_ms = cfg && cfg->mcp_connect_timeout_ms > 0
                                  ? cfg->mcp_connect_timeout_ms : 0,
        .user_agent = "agentgate-worker/" MCP_CLIENT_VERSION,
    };
    mcp_transport *t = mcp_http_open(&hc, err, err_size);
    mcp_headers_free(headers);
    if (!t)
        *why = MCP_OPEN_BAD_ROW;
    return t;
}

static mcp_transport *open_stdio(const mcp_server_row *row, const char *tenant,
                                 mcp_open_err *why, char *err, size_t err_size)
{
    const mcp_stdio_server *s = mcp_servers_file_find(&g_servers, row->stdio_server);

    if (!s || !mcp_stdio_server_allows(s, tenant)) {
        *why = MCP_OPEN_REFUSED;
        errbuf_printf(err, err_size, "MCP server \"%s\" names the stdio server \"%.48s\", "
                      "which the operator's AGENTGATE_MCP_SERVERS_FILE %s", row->name,
                      row->stdio_server ? row->stdio_server : "",
                      s ? "does not allow this tenant to use" : "does not have");
        return NULL;
    }
    char **envp = mcp_stdio_envp(s, environ);
    char **argv = calloc(s->nargs + 2, sizeof(char *));
    if (!envp || !argv) {
        free(argv);
        mcp_headers_free(envp);
        *why = MCP_OPEN_NOMEM;
        errbuf_printf(err, err_size, "out of memory");
        return NULL;
    }
    argv[0] = s->command;
    for (size_t i = 0; i < s->nargs; i++)
        argv[i + 1] = s->args[i];
    char name[64];
    snprintf(name, sizeof(name), "%.14s/%s", tenant, row->name);
    mcp_stdio_config sc = {
        .name = name,
        .argv = argv,
        .envp = envp,
        .cwd = s->cwd,
        .shutdown_grace_ms = STDIO_GRACE_MS,
    };
    mcp_transport *t = mcp_stdio_open(&sc, err, err_size);
    free(argv);                 /* the transport copied what it keeps */
    mcp_headers_free(envp);
    if (!t)
        *why = MCP_OPEN_BAD_ROW;
    return t;
}

mcp_client *mcp_server_client(const mcp_server_row *row, const char *tenant,
                              const ag_config *cfg, const mcp_client_options *opt,
                              mcp_open_err *why, char *err, size_t err_size)
{
    *why = MCP_OPEN_OK;
    if (!cfg)
        cfg = g_cfg;
    mcp_transport *t = row->http ? open_http(row, tenant, cfg, why, err, err_size)
                                 : open_stdio(row, tenant, why, err, err_size);
    if (!t)
        return NULL;
    mcp_client *c = mcp_client_new(t, opt, err, err_size);
    if (!c)
        *why = MCP_OPEN_NOMEM;
    return c;
}
