/*
 * mcp_config.c - the operator's MCP settings: the stdio servers file and
 * the URL allow-list for HTTP servers.
 *
 * Both guard what a tenant may make agentgate start or reach, so both are
 * strict. The servers file is parsed with json_parse_bounded (no duplicate
 * members, no "\u0000") and every member is checked for type and bounds;
 * an unknown member is an error, since a misspelt "tenants" or "env" must
 * not silently widen or narrow what runs. A URL is parsed into scheme,
 * host, port and path and compared part by part, never as text, and any
 * form a server or proxy might read differently from this parser (user
 * information, backslashes, encoded dots or slashes, dot segments) is
 * refused outright rather than normalised.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "jsonutil.h"
#include "mcp_config.h"
#include "strbuf.h"

#define MCP_TEXT_MAX     4096   /* bytes of a command, argument, env value, cwd */
#define MCP_ENV_KEY_MAX  128    /* bytes of an env variable name */
#define MCP_TENANT_MAX   64     /* bytes of a tenant id (tenants.id) */
#define MCP_FILE_DEPTH   8      /* nesting the file needs is 4 */
#define MCP_URL_MAX      4096   /* bytes of a URL or an allow-list entry */
#define MCP_HOST_MAX     255

/* The text of a numeric macro, for fixed messages. */
#define STR_OF_(x) #x
#define STR_OF(x)  STR_OF_(x)

/* ------------------------------------------------------------------ */
/* Names                                                              */
/* ------------------------------------------------------------------ */

bool mcp_server_name_valid(const char *name)
{
    if (name == NULL)
        return false;
    size_t n = strlen(name);
    if (n == 0 || n > MCP_SERVER_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  (i > 0 && (c == '_' || c == '-'));
        if (!ok)
            return false;
    }
    return true;
}

/* tenants.id: [A-Za-z0-9._-]{1,64}. */
static bool tenant_id_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > MCP_TENANT_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* A POSIX environment name: [A-Za-z_][A-Za-z0-9_]*, bounded. */
static bool env_key_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > MCP_ENV_KEY_MAX || (s[0] >= '0' && s[0] <= '9'))
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '_'))
            return false;
    }
    return true;
}

/* True when s holds no control character: a command line or path with a
 * newline or escape in it is never what an operator meant. */
static bool text_printable(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return false;
    return true;
}

/* ------------------------------------------------------------------ */
/* The servers file                                                   */
/* ------------------------------------------------------------------ */

/* Where a check failed, for the one-line reason: "servers[2].args[1]". */
typedef struct load_ctx {
    const char *path;
    char *err;
    size_t err_size;
} load_ctx;

static int fail(const load_ctx *c, size_t idx, const char *member, const char *why)
{
    if (member != NULL)
        errbuf_printf(c->err, c->err_size, "%s: servers[%zu].%s: %s", c->path, idx, member, why);
    else
        errbuf_printf(c->err, c->err_size, "%s: servers[%zu]: %s", c->path, idx, why);
    return -1;
}

/* Copies a checked string; -1 (out of memory) reported by the caller. */
static int dup_into(char **dst, const char *s)
{
    *dst = strdup(s);
    return *dst != NULL ? 0 : -1;
}

/* A bounded string of printable text, for command, cwd and arguments. */
static const char *text_check(const cJSON *v)
{
    if (!cJSON_IsString(v))
        return "must be a string";
    if (strlen(v->valuestring) > MCP_TEXT_MAX)
        return "is too long";
    if (!text_printable(v->valuestring))
        return "holds a control character";
    return NULL;
}

static int load_command(const load_ctx *c, size_t idx, const cJSON *v, mcp_stdio_server *s)
{
    if (v == NULL)
        return fail(c, idx, "command", "is required");
    const char *why = text_check(v);
    if (why != NULL)
        return fail(c, idx, "command", why);
    if (v->valuestring[0] != '/')
        return fail(c, idx, "command", "must be an absolute path");
    if (dup_into(&s->command, v->valuestring) != 0)
        return fail(c, idx, "command", "out of memory");
    return 0;
}

static int load_args(const load_ctx *c, size_t idx, const cJSON *v, mcp_stdio_server *s)
{
    if (v == NULL)
        return 0;
    if (!cJSON_IsArray(v))
        return fail(c, idx, "args", "must be an array of strings");
    if ((size_t)cJSON_GetArraySize(v) > MCP_STDIO_ARGS_MAX)
        return fail(c, idx, "args", "has more than " STR_OF(MCP_STDIO_ARGS_MAX) " entries");
    const cJSON *a;
    cJSON_ArrayForEach(a, v) {
        char member[32];
        snprintf(member, sizeof member, "args[%zu]", s->nargs);
        const char *why = text_check(a);
        if (why != NULL)
            return fail(c, idx, member, why);
        if (dup_into(&s->args[s->nargs], a->valuestring) != 0)
            return fail(c, idx, member, "out of memory");
        s->nargs++;
    }
    return 0;
}

static int load_env(const load_ctx *c, size_t idx, const cJSON *v, mcp_stdio_server *s)
{
    if (v == NULL)
        return 0;
    if (!cJSON_IsObject(v))
        return fail(c, idx, "env", "must be an object of strings");
    if ((size_t)cJSON_GetArraySize(v) > MCP_STDIO_ENV_MAX)
        return fail(c, idx, "env", "has more than " STR_OF(MCP_STDIO_ENV_MAX) " entries");
    const cJSON *e;
    cJSON_ArrayForEach(e, v) {
        if (!env_key_valid(e->string))
            return fail(c, idx, "env", "has a name that is not [A-Za-z_][A-Za-z0-9_]*");
        char member[MCP_ENV_KEY_MAX + 8];
        snprintf(member, sizeof member, "env.%s", e->string);
        const char *why = text_check(e);
        if (why != NULL)
            return fail(c, idx, member, why);
        size_t len = strlen(e->string) + 1 + strlen(e->valuestring) + 1;
        char *kv = malloc(len);
        if (kv == NULL)
            return fail(c, idx, member, "out of memory");
        snprintf(kv, len, "%s=%s", e->string, e->valuestring);
        s->env[s->nenv++] = kv;
    }
    return 0;
}

static int load_cwd(const load_ctx *c, size_t idx, const cJSON *v, mcp_stdio_server *s)
{
    if (v == NULL)
        return 0;
    const char *why = text_check(v);
    if (why != NULL)
        return fail(c, idx, "cwd", why);
    if (v->valuestring[0] != '/')
        return fail(c, idx, "cwd", "must be an absolute path");
    if (dup_into(&s->cwd, v->valuestring) != 0)
        return fail(c, idx, "cwd", "out of memory");
    return 0;
}

/* tenants is required: a server with no list would be a guess at who may
 * use it. An empty list is allowed and lets no one (a server parked). */
static int load_tenants(const load_ctx *c, size_t idx, const cJSON *v, mcp_stdio_server *s)
{
    if (v == NULL)
        return fail(c, idx, "tenants", "is required (a list of tenant ids or \"*\")");
    if (!cJSON_IsArray(v))
        return fail(c, idx, "tenants", "must be an array of strings");
    if ((size_t)cJSON_GetArraySize(v) > MCP_STDIO_TENANTS_MAX)
        return fail(c, idx, "tenants", "has more than " STR_OF(MCP_STDIO_TENANTS_MAX) " entries");
    const cJSON *t;
    cJSON_ArrayForEach(t, v) {
        char member[32];
        snprintf(member, sizeof member, "tenants[%zu]", s->ntenants);
        if (!cJSON_IsString(t))
            return fail(c, idx, member, "must be a string");
        if (strcmp(t->valuestring, "*") != 0 && !tenant_id_valid(t->valuestring))
            return fail(c, idx, member, "must be \"*\" or a tenant id ([A-Za-z0-9._-]{1,64})");
        if (dup_into(&s->tenants[s->ntenants], t->valuestring) != 0)
            return fail(c, idx, member, "out of memory");
        s->ntenants++;
    }
    return 0;
}

static const char *const server_members[] = {
    "name", "command", "args", "env", "cwd", "tenants", NULL
};

static bool known_member(const char *name)
{
    for (size_t i = 0; server_members[i] != NULL; i++)
        if (strcmp(server_members[i], name) == 0)
            return true;
    return false;
}

static void server_free(mcp_stdio_server *s)
{
    free(s->command);
    for (size_t i = 0; i < s->nargs; i++)
        free(s->args[i]);
    for (size_t i = 0; i < s->nenv; i++)
        free(s->env[i]);
    free(s->cwd);
    for (size_t i = 0; i < s->ntenants; i++)
        free(s->tenants[i]);
    memset(s, 0, sizeof *s);
}

/* Checks and copies servers[idx] into *s, whose earlier siblings are
 * servers[0..idx-1] (for the uniqueness of names). */
static int load_server(const load_ctx *c, size_t idx, const cJSON *obj,
                       const mcp_stdio_server *earlier, mcp_stdio_server *s)
{
    if (!cJSON_IsObject(obj))
        return fail(c, idx, NULL, "must be an object");
    const cJSON *m;
    cJSON_ArrayForEach(m, obj) {
        if (!known_member(m->string)) {
            char why[96];
            snprintf(why, sizeof why, "unknown member \"%.40s\"", m->string);
            return fail(c, idx, NULL, why);
        }
    }
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(obj, "name");
    if (name == NULL)
        return fail(c, idx, "name", "is required");
    if (!cJSON_IsString(name) || !mcp_server_name_valid(name->valuestring))
        return fail(c, idx, "name", "must match [a-z0-9][a-z0-9_-]{0,47}");
    for (size_t i = 0; i < idx; i++)
        if (strcmp(earlier[i].name, name->valuestring) == 0)
            return fail(c, idx, "name", "is used by an earlier server");
    snprintf(s->name, sizeof s->name, "%s", name->valuestring);

    if (load_command(c, idx, cJSON_GetObjectItemCaseSensitive(obj, "command"), s) != 0 ||
        load_args(c, idx, cJSON_GetObjectItemCaseSensitive(obj, "args"), s) != 0 ||
        load_env(c, idx, cJSON_GetObjectItemCaseSensitive(obj, "env"), s) != 0 ||
        load_cwd(c, idx, cJSON_GetObjectItemCaseSensitive(obj, "cwd"), s) != 0 ||
        load_tenants(c, idx, cJSON_GetObjectItemCaseSensitive(obj, "tenants"), s) != 0)
        return -1;
    return 0;
}

/* Reads the whole file, at most MCP_SERVERS_FILE_MAX bytes, into a
 * malloc'd buffer. */
static char *read_file(const load_ctx *c, size_t *len)
{
    FILE *f = fopen(c->path, "re");
    if (f == NULL) {
        errbuf_printf(c->err, c->err_size, "%s: cannot open: %s", c->path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(MCP_SERVERS_FILE_MAX + 1);
    if (buf == NULL) {
        fclose(f);
        errbuf_printf(c->err, c->err_size, "%s: out of memory", c->path);
        return NULL;
    }
    size_t n = fread(buf, 1, MCP_SERVERS_FILE_MAX + 1, f);
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        errbuf_printf(c->err, c->err_size, "%s: read error", c->path);
        return NULL;
    }
    if (n > MCP_SERVERS_FILE_MAX) {
        free(buf);
        errbuf_printf(c->err, c->err_size, "%s: larger than %d bytes", c->path, MCP_SERVERS_FILE_MAX);
        return NULL;
    }
    *len = n;
    return buf;
}

/* Checks the document's top level and fills out->servers. */
static int load_document(const load_ctx *c, const cJSON *root, mcp_servers_file *out)
{
    if (!cJSON_IsObject(root)) {
        errbuf_printf(c->err, c->err_size, "%s: must be a JSON object {\"servers\": [...]}", c->path);
        return -1;
    }
    const cJSON *m;
    cJSON_ArrayForEach(m, root) {
        if (strcmp(m->string, "servers") != 0) {
            errbuf_printf(c->err, c->err_size, "%s: unknown member \"%.40s\"", c->path, m->string);
            return -1;
        }
    }
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(root, "servers");
    if (!cJSON_IsArray(list)) {
        errbuf_printf(c->err, c->err_size, "%s: servers: %s", c->path,
                      list == NULL ? "is required" : "must be an array");
        return -1;
    }
    size_t n = (size_t)cJSON_GetArraySize(list);
    if (n > MCP_SERVERS_MAX) {
        errbuf_printf(c->err, c->err_size, "%s: servers: more than %d servers", c->path, MCP_SERVERS_MAX);
        return -1;
    }
    if (n == 0)
        return 0;
    out->servers = calloc(n, sizeof *out->servers);
    if (out->servers == NULL) {
        errbuf_printf(c->err, c->err_size, "%s: out of memory", c->path);
        return -1;
    }
    const cJSON *s;
    cJSON_ArrayForEach(s, list) {
        /* Counted before the load so that a failure frees this entry too. */
        size_t idx = out->count++;
        if (load_server(c, idx, s, out->servers, &out->servers[idx]) != 0)
            return -1;
    }
    return 0;
}

int mcp_servers_file_load(const char *path, mcp_servers_file *out, char *err,
                          size_t err_size)
{
    memset(out, 0, sizeof *out);
    if (path == NULL || path[0] == '\0')
        return 0;
    load_ctx c = { path, err, err_size };
    size_t len = 0;
    char *buf = read_file(&c, &len);
    if (buf == NULL)
        return -1;
    char jerr[128];
    cJSON *root = json_parse_bounded(buf, len, MCP_SERVERS_FILE_MAX, MCP_FILE_DEPTH,
                                     jerr, sizeof jerr);
    free(buf);
    if (root == NULL) {
        errbuf_printf(err, err_size, "%s: %s", path, jerr);
        return -1;
    }
    int rc = load_document(&c, root, out);
    cJSON_Delete(root);
    if (rc != 0)
        mcp_servers_file_free(out);
    return rc;
}

void mcp_servers_file_free(mcp_servers_file *f)
{
    if (f == NULL)
        return;
    for (size_t i = 0; i < f->count; i++)
        server_free(&f->servers[i]);
    free(f->servers);
    f->servers = NULL;
    f->count = 0;
}

const mcp_stdio_server *mcp_servers_file_find(const mcp_servers_file *f, const char *name)
{
    if (f == NULL || name == NULL)
        return NULL;
    for (size_t i = 0; i < f->count; i++)
        if (strcmp(f->servers[i].name, name) == 0)
            return &f->servers[i];
    return NULL;
}

bool mcp_stdio_server_allows(const mcp_stdio_server *s, const char *tenant_id)
{
    if (s == NULL || tenant_id == NULL || tenant_id[0] == '\0')
        return false;
    for (size_t i = 0; i < s->ntenants; i++)
        if (strcmp(s->tenants[i], "*") == 0 || strcmp(s->tenants[i], tenant_id) == 0)
            return true;
    return false;
}

/* ------------------------------------------------------------------ */
/* URLs                                                               */
/* ------------------------------------------------------------------ */

/* A URL taken apart. host is lower-cased; path is never empty ("/" when
 * the URL has none); query is kept only to know whether there was one. */
typedef struct url_parts {
    bool https;
    char host[MCP_HOST_MAX + 1];
    unsigned port;
    char path[MCP_URL_MAX + 1];
    bool has_query;
} url_parts;

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Refuses bytes no URL of ours carries: controls, space, non-ASCII (a
 * host must come as punycode), the backslash some parsers read as '/',
 * and '#' (a fragment is never sent, so it can only confuse). */
static bool url_chars_ok(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c >= 0x7f || c == '\\' || c == '#')
            return false;
    }
    return true;
}

/* The scheme, lower-cased, then "://". Returns the bytes taken, or 0. */
static size_t parse_scheme(const char *s, size_t len, bool *https)
{
    if (len >= 7 && strncasecmp(s, "http://", 7) == 0) {
        *https = false;
        return 7;
    }
    if (len >= 8 && strncasecmp(s, "https://", 8) == 0) {
        *https = true;
        return 8;
    }
    return 0;
}

static bool host_char_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
}

static bool ipv6_char_ok(char c)
{
    return (c >= 'a' && c <= 'f') || (c >= '0' && c <= '9') || c == ':' || c == '.';
}

/* The port after ':' in s (n bytes): 1 to 5 digits, 1..65535. */
static int parse_port(const char *s, size_t n, unsigned *port)
{
    if (n == 0 || n > 5)
        return -1;
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v == 0 || v > 65535)
        return -1;
    *port = v;
    return 0;
}

/* host[:port] or [v6][:port] (n bytes) into u. No '@' may appear: user
 * information is where "https://allowed@evil/" hides another host. */
static int parse_authority(const char *s, size_t n, url_parts *u)
{
    if (n == 0 || memchr(s, '@', n) != NULL)
        return -1;
    size_t host_len;
    const char *rest;
    if (s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (close == NULL)
            return -1;
        host_len = (size_t)(close - s) + 1;
        rest = close + 1;
    } else {
        const char *colon = memchr(s, ':', n);
        host_len = colon != NULL ? (size_t)(colon - s) : n;
        rest = s + host_len;
    }
    if (host_len == 0 || host_len > MCP_HOST_MAX)
        return -1;
    for (size_t i = 0; i < host_len; i++)
        u->host[i] = (char)((s[i] >= 'A' && s[i] <= 'Z') ? s[i] - 'A' + 'a' : s[i]);
    u->host[host_len] = '\0';
    if (u->host[0] == '[') {
        if (host_len < 4)
            return -1;
        for (size_t i = 1; i + 1 < host_len; i++)
            if (!ipv6_char_ok(u->host[i]))
                return -1;
    } else {
        for (size_t i = 0; i < host_len; i++)
            if (!host_char_ok(u->host[i]))
                return -1;
    }
    size_t rest_len = n - (size_t)(rest - s);
    u->port = u->https ? 443 : 80;
    if (rest_len == 0)
        return 0;
    if (rest[0] != ':')
        return -1;
    return parse_port(rest + 1, rest_len - 1, &u->port);
}

/* True when the path (n bytes) holds a dot segment ("." or ".."), which a
 * server would resolve to somewhere the text does not say. */
static bool has_dot_segment(const char *p, size_t n)
{
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || p[i] == '/') {
            size_t len = i - start;
            if ((len == 1 && p[start] == '.') ||
                (len == 2 && p[start] == '.' && p[start + 1] == '.'))
                return true;
            start = i + 1;
        }
    }
    return false;
}

/* Checks the percent-escapes of a path: each two hex digits, and none for
 * '.', '/', '\' or a control byte, which would let the text hide a dot
 * segment or a separator from the prefix check. */
static bool path_escapes_ok(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] != '%')
            continue;
        if (i + 2 >= n)
            return false;
        int hi = hex_value(p[i + 1]), lo = hex_value(p[i + 2]);
        if (hi < 0 || lo < 0)
            return false;
        int c = hi * 16 + lo;
        if (c == '.' || c == '/' || c == '\\' || c < 0x20 || c == 0x7f)
            return false;
        i += 2;
    }
    return true;
}

/* Takes text (len bytes) apart into u. Returns 0, or -1 for anything
 * that is not a plain http(s) URL as described in mcp_config.h. */
static int url_parse(const char *text, size_t len, url_parts *u)
{
    memset(u, 0, sizeof *u);
    if (len == 0 || len > MCP_URL_MAX || !url_chars_ok(text, len))
        return -1;
    size_t at = parse_scheme(text, len, &u->https);
    if (at == 0)
        return -1;
    size_t auth_end = at;
    while (auth_end < len && text[auth_end] != '/' && text[auth_end] != '?')
        auth_end++;
    if (parse_authority(text + at, auth_end - at, u) != 0)
        return -1;
    size_t path_end = auth_end;
    while (path_end < len && text[path_end] != '?')
        path_end++;
    size_t path_len = path_end - auth_end;
    u->has_query = path_end < len;
    if (path_len == 0) {
        strcpy(u->path, "/");
    } else {
        const char *p = text + auth_end;
        if (!path_escapes_ok(p, path_len) || has_dot_segment(p, path_len))
            return -1;
        memcpy(u->path, p, path_len);
        u->path[path_len] = '\0';
    }
    /* A query may not hide another URL's separators either. */
    if (u->has_query && !path_escapes_ok(text + path_end + 1, len - path_end - 1))
        return -1;
    return 0;
}

/* True when the path p lies under the prefix path pp at a segment
 * boundary. */
static bool path_within(const char *p, const char *pp)
{
    size_t n = strlen(pp);
    if (strncmp(p, pp, n) != 0)
        return false;
    return pp[n - 1] == '/' || p[n] == '\0' || p[n] == '/';
}

/* True when url lies within the one prefix entry (n bytes). An entry that
 * does not parse, or carries a query, allows nothing. */
static bool within_prefix(const url_parts *url, const char *entry, size_t n)
{
    url_parts pre;
    if (url_parse(entry, n, &pre) != 0 || pre.has_query)
        return false;
    return pre.https == url->https && strcmp(pre.host, url->host) == 0 &&
           pre.port == url->port && path_within(url->path, pre.path);
}

bool mcp_url_allowed(const char *allowlist, const char *url)
{
    if (allowlist == NULL || url == NULL)
        return false;
    url_parts u;
    if (url_parse(url, strlen(url), &u) != 0)
        return false;
    const char *p = allowlist;
    while (*p != '\0') {
        const char *comma = strchr(p, ',');
        size_t n = comma != NULL ? (size_t)(comma - p) : strlen(p);
        /* Spaces around an entry are the operator's formatting. */
        const char *e = p;
        size_t en = n;
        while (en > 0 && (*e == ' ' || *e == '\t')) {
            e++;
            en--;
        }
        while (en > 0 && (e[en - 1] == ' ' || e[en - 1] == '\t'))
            en--;
        if (en > 0 && within_prefix(&u, e, en))
            return true;
        if (comma == NULL)
            break;
        p = comma + 1;
    }
    return false;
}
