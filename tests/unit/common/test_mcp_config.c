/*
 * test_mcp_config.c - the operator's MCP settings: server names, the URL
 * allow-list (a table of URLs each prefix must allow or refuse) and the
 * stdio servers file (a good file read back member by member, and each
 * way a file can be wrong refused with a reason naming the member).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "mcp_config.h"

/* ------------------------------------------------------------------ */
/* Names                                                              */
/* ------------------------------------------------------------------ */

static void test_server_names(void **state)
{
    (void)state;
    const char *good[] = { "a", "0", "everything", "my-server_2", "x-", "a_",
        "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuv" /* 48 */ };
    const char *bad[] = { "", "-a", "_a", "A", "aB", "a.b", "a b", "a/b", "é",
        "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvw" /* 49 */, "a\n" };
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        if (!mcp_server_name_valid(good[i]))
            fail_msg("refused good name \"%s\"", good[i]);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (mcp_server_name_valid(bad[i]))
            fail_msg("allowed bad name \"%s\"", bad[i]);
    assert_false(mcp_server_name_valid(NULL));
}

/* ------------------------------------------------------------------ */
/* The allow-list                                                     */
/* ------------------------------------------------------------------ */

typedef struct url_case {
    const char *allowlist;
    const char *url;
    bool allowed;
} url_case;

#define LIST "https://mcp.example.com/,http://127.0.0.1:18600/mcp"

static const url_case url_cases[] = {
    /* Within. */
    { LIST, "https://mcp.example.com/", true },
    { LIST, "https://mcp.example.com", true },                /* empty path is "/" */
    { LIST, "https://mcp.example.com/a/b", true },
    { LIST, "https://MCP.Example.COM/x", true },              /* host in any case */
    { LIST, "HTTPS://mcp.example.com/x", true },              /* scheme in any case */
    { LIST, "https://mcp.example.com:443/x", true },          /* default port spelt out */
    { LIST, "https://mcp.example.com/x?key=1", true },        /* a query is fine */
    { LIST, "http://127.0.0.1:18600/mcp", true },
    { LIST, "http://127.0.0.1:18600/mcp/", true },
    { LIST, "http://127.0.0.1:18600/mcp/sub", true },
    { LIST, "http://127.0.0.1:18600/mcp?x=%41", true },
    { LIST, "http://127.0.0.1:18600/mcp/a%20b", true },       /* other escapes are fine */
    { " https://a.example/ , http://b.example/p ", "http://b.example/p/q", true },
    { "http://[::1]:9000/mcp", "http://[::1]:9000/mcp", true },
    { "https://mcp.example.com:443", "https://mcp.example.com/x", true },
    { "http://h.example/mcp/", "http://h.example/mcp/x", true },
    { "http://h.example:80/", "http://h.example/x", true },

    /* Outside. */
    { "", "https://mcp.example.com/", false },                /* empty list: none */
    { LIST, "http://mcp.example.com/", false },               /* scheme differs */
    { LIST, "https://mcp.example.com:8443/", false },         /* port differs */
    { LIST, "https://mcp.example.com./", false },             /* host differs (trailing dot) */
    { LIST, "https://evil.example.com/", false },
    { LIST, "https://mcp.example.com.evil.com/", false },
    { LIST, "http://127.0.0.1:18601/mcp", false },
    { LIST, "http://127.0.0.1/mcp", false },                  /* port 80, not 18600 */
    { LIST, "http://localhost:18600/mcp", false },            /* a name is not the address */
    { LIST, "http://127.0.0.1:18600/mcpx", false },           /* not at a segment boundary */
    { LIST, "http://127.0.0.1:18600/", false },
    { LIST, "http://127.0.0.1:18600/MCP", false },            /* paths compare exactly */
    { LIST, "http://127.0.0.1:18600?x=/mcp", false },
    { "http://h.example/mcp/", "http://h.example/mcp", false },
    { LIST, "ftp://mcp.example.com/", false },
    { LIST, "mcp.example.com/", false },
    { LIST, "//mcp.example.com/", false },
    { LIST, "https:/mcp.example.com/", false },
    { LIST, "", false },

    /* Never, whatever the list. */
    { LIST, "https://user@mcp.example.com/", false },         /* user information */
    { LIST, "https://mcp.example.com@evil.com/", false },
    { LIST, "http://127.0.0.1:18600@evil.com/mcp", false },
    { LIST, "https://user:pw@mcp.example.com/", false },
    { LIST, "https://mcp.example.com/#frag", false },         /* fragment */
    { LIST, "https://mcp.example.com/x#", false },
    { LIST, "https://mcp.example.com\\@evil.com/", false },   /* backslash */
    { LIST, "https://mcp.example.com/a\\b", false },
    { LIST, "https://mcp.example.com/a b", false },           /* space */
    { LIST, "https://mcp.example.com/a\tb", false },          /* control characters */
    { LIST, "https://mcp.example.com/a\nb", false },
    { LIST, "https://mcp.example.com/a\x7f", false },
    { LIST, "https://mcp.example.com/\xc3\xa9", false },      /* non-ASCII */
    { LIST, "http://127.0.0.1:18600/mcp/../admin", false },   /* dot segments */
    { LIST, "http://127.0.0.1:18600/mcp/..", false },
    { LIST, "http://127.0.0.1:18600/mcp/./x", false },
    { LIST, "http://127.0.0.1:18600/mcp/%2e%2e/admin", false }, /* encoded dots */
    { LIST, "http://127.0.0.1:18600/mcp/%2E%2E/admin", false },
    { LIST, "http://127.0.0.1:18600/mcp/.%2e/admin", false },
    { LIST, "http://127.0.0.1:18600/mcp%2f..%2fadmin", false }, /* encoded slash */
    { LIST, "http://127.0.0.1:18600/mcp%2Fx", false },
    { LIST, "http://127.0.0.1:18600/mcp%5cx", false },        /* encoded backslash */
    { LIST, "http://127.0.0.1:18600/mcp/%00", false },        /* encoded control */
    { LIST, "http://127.0.0.1:18600/mcp/%zz", false },        /* broken escape */
    { LIST, "http://127.0.0.1:18600/mcp/%4", false },
    { LIST, "http://127.0.0.1:18600/mcp?u=%2f", false },      /* in the query too */
    { LIST, "http://127.0.0.1:18600:80/mcp", false },         /* two ports */
    { LIST, "http://127.0.0.1:/mcp", false },                 /* empty port */
    { LIST, "http://127.0.0.1:0/mcp", false },
    { LIST, "http://127.0.0.1:65536/mcp", false },
    { LIST, "http://127.0.0.1:018600/mcp", false },           /* six digits */
    { LIST, "http://127.0.0.1:+18600/mcp", false },
    { LIST, "http:///mcp", false },                           /* no host */
    { LIST, "http://[::1/mcp", false },
    { LIST, "http://%31%32%37.0.0.1:18600/mcp", false },      /* encoded host */

    /* A bad entry allows nothing, but the others still count. */
    { "https://user@a.example/", "https://a.example/", false },
    { "https://a.example/?q=1", "https://a.example/?q=1", false },
    { "https://a.example/../", "https://a.example/x", false },
    { "nonsense,https://a.example/", "https://a.example/x", true },
    { ",,https://a.example/,,", "https://a.example/x", true },
};

static void test_url_allowlist(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof url_cases / sizeof *url_cases; i++) {
        const url_case *c = &url_cases[i];
        if (mcp_url_allowed(c->allowlist, c->url) != c->allowed)
            fail_msg("case %zu: \"%s\" within \"%s\": expected %s", i, c->url,
                     c->allowlist, c->allowed ? "allowed" : "refused");
    }
}

static void test_url_bounds(void **state)
{
    (void)state;
    assert_false(mcp_url_allowed(NULL, "https://a.example/"));
    assert_false(mcp_url_allowed("https://a.example/", NULL));
    /* A very long URL is refused, not truncated into a match. */
    size_t n = 5000;
    char *url = malloc(n + 1);
    assert_non_null(url);
    memcpy(url, "https://a.example/", 18);
    memset(url + 18, 'x', n - 18);
    url[n] = '\0';
    assert_false(mcp_url_allowed("https://a.example/", url));
    free(url);
    /* A host longer than any DNS name. */
    char host[400];
    int len = snprintf(host, sizeof host, "https://");
    memset(host + len, 'h', 300);
    strcpy(host + len + 300, "/");
    assert_false(mcp_url_allowed(host, host));
}

/* ------------------------------------------------------------------ */
/* The servers file                                                   */
/* ------------------------------------------------------------------ */

/* Writes text to a fresh temporary file; its path goes in path. */
static void write_temp(char path[64], const char *text)
{
    strcpy(path, "/tmp/test_mcp_config_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t n = strlen(text);
    assert_int_equal(write(fd, text, n), (ssize_t)n);
    close(fd);
}

static const char good_file[] =
    "{\"servers\": ["
    " {\"name\": \"everything\", \"command\": \"/usr/bin/node\","
    "  \"args\": [\"/opt/mcp/everything/dist/index.js\", \"stdio\"],"
    "  \"env\": {\"MEMORY_FILE_PATH\": \"/tmp/m.json\", \"DEBUG\": \"\"},"
    "  \"cwd\": \"/var/lib/agentgate\", \"tenants\": [\"*\"]},"
    " {\"name\": \"memory\", \"command\": \"/usr/bin/node\","
    "  \"tenants\": [\"acme\", \"t-2.b_c\"]},"
    " {\"name\": \"parked\", \"command\": \"/bin/true\", \"tenants\": []}"
    "]}";

static void test_file_good(void **state)
{
    (void)state;
    char path[64];
    write_temp(path, good_file);
    mcp_servers_file f;
    char err[256] = "";
    assert_int_equal(mcp_servers_file_load(path, &f, err, sizeof err), 0);
    unlink(path);
    assert_int_equal(f.count, 3);

    const mcp_stdio_server *e = mcp_servers_file_find(&f, "everything");
    assert_non_null(e);
    assert_string_equal(e->command, "/usr/bin/node");
    assert_int_equal(e->nargs, 2);
    assert_string_equal(e->args[0], "/opt/mcp/everything/dist/index.js");
    assert_string_equal(e->args[1], "stdio");
    assert_null(e->args[2]);
    assert_int_equal(e->nenv, 2);
    assert_string_equal(e->env[0], "MEMORY_FILE_PATH=/tmp/m.json");
    assert_string_equal(e->env[1], "DEBUG=");
    assert_null(e->env[2]);
    assert_string_equal(e->cwd, "/var/lib/agentgate");
    assert_true(mcp_stdio_server_allows(e, "acme"));
    assert_true(mcp_stdio_server_allows(e, "anyone"));
    assert_false(mcp_stdio_server_allows(e, ""));
    assert_false(mcp_stdio_server_allows(e, NULL));

    const mcp_stdio_server *m = mcp_servers_file_find(&f, "memory");
    assert_non_null(m);
    assert_int_equal(m->nargs, 0);
    assert_null(m->args[0]);
    assert_int_equal(m->nenv, 0);
    assert_null(m->env[0]);
    assert_null(m->cwd);
    assert_true(mcp_stdio_server_allows(m, "acme"));
    assert_true(mcp_stdio_server_allows(m, "t-2.b_c"));
    assert_false(mcp_stdio_server_allows(m, "ACME"));
    assert_false(mcp_stdio_server_allows(m, "acme2"));

    const mcp_stdio_server *p = mcp_servers_file_find(&f, "parked");
    assert_non_null(p);
    assert_false(mcp_stdio_server_allows(p, "acme"));

    assert_null(mcp_servers_file_find(&f, "nope"));
    assert_null(mcp_servers_file_find(&f, NULL));
    mcp_servers_file_free(&f);
    assert_int_equal(f.count, 0);
    mcp_servers_file_free(&f);   /* twice is harmless */
}

static void test_file_empty_path(void **state)
{
    (void)state;
    mcp_servers_file f;
    char err[64] = "";
    assert_int_equal(mcp_servers_file_load("", &f, err, sizeof err), 0);
    assert_int_equal(f.count, 0);
    assert_null(mcp_servers_file_find(&f, "x"));
    mcp_servers_file_free(&f);
    assert_int_equal(mcp_servers_file_load(NULL, &f, err, sizeof err), 0);
    assert_int_equal(f.count, 0);

    char path[64];
    write_temp(path, "{\"servers\": []}");
    assert_int_equal(mcp_servers_file_load(path, &f, err, sizeof err), 0);
    unlink(path);
    assert_int_equal(f.count, 0);
    mcp_servers_file_free(&f);
}

typedef struct file_case {
    const char *text;
    const char *reason;     /* a part the error must hold */
} file_case;

#define SRV(extra) "{\"servers\": [{\"name\": \"s\", \"command\": \"/bin/x\", \"tenants\": [\"*\"]" extra "}]}"

static const file_case file_cases[] = {
    { "", "empty JSON" },
    { "{", "malformed" },
    { "[]", "must be a JSON object" },
    { "{\"servers\": []} []", "trailing" },
    { "{}", "servers: is required" },
    { "{\"servers\": {}}", "servers: must be an array" },
    { "{\"servers\": [], \"extra\": 1}", "unknown member \"extra\"" },
    { "{\"servers\": [], \"servers\": []}", "duplicate member" },
    { "{\"servers\": [1]}", "servers[0]: must be an object" },
    { "{\"servers\": [{\"command\": \"/bin/x\", \"tenants\": []}]}", "servers[0].name: is required" },
    { "{\"servers\": [{\"name\": \"Bad\", \"command\": \"/bin/x\", \"tenants\": []}]}", "servers[0].name: must match" },
    { "{\"servers\": [{\"name\": 7, \"command\": \"/bin/x\", \"tenants\": []}]}", "servers[0].name: must match" },
    { "{\"servers\": [{\"name\": \"a\", \"command\": \"/bin/x\", \"tenants\": []},"
      " {\"name\": \"a\", \"command\": \"/bin/y\", \"tenants\": []}]}", "servers[1].name: is used by an earlier server" },
    { "{\"servers\": [{\"name\": \"s\", \"tenants\": []}]}", "servers[0].command: is required" },
    { "{\"servers\": [{\"name\": \"s\", \"command\": \"node\", \"tenants\": []}]}", "servers[0].command: must be an absolute path" },
    { "{\"servers\": [{\"name\": \"s\", \"command\": [\"/bin/x\"], \"tenants\": []}]}", "servers[0].command: must be a string" },
    { "{\"servers\": [{\"name\": \"s\", \"command\": \"/bin/x\\n\", \"tenants\": []}]}", "servers[0].command: holds a control character" },
    { "{\"servers\": [{\"name\": \"s\", \"command\": \"/bin/\\u0000x\", \"tenants\": []}]}", "\\u0000" },
    { SRV(", \"args\": \"stdio\""), "servers[0].args: must be an array" },
    { SRV(", \"args\": [\"a\", 1]"), "servers[0].args[1]: must be a string" },
    { SRV(", \"args\": [\"a\\u001b\"]"), "servers[0].args[0]: holds a control character" },
    { SRV(", \"args\": [\"0\",\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\",\"0\",\"1\",\"2\",\"3\",\"4\",\"5\","
          "\"6\",\"7\",\"8\",\"9\",\"0\",\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\",\"0\",\"1\",\"2\"]"),
      "servers[0].args: has more than 32 entries" },
    { SRV(", \"env\": []"), "servers[0].env: must be an object" },
    { SRV(", \"env\": {\"A\": 1}"), "servers[0].env.A: must be a string" },
    { SRV(", \"env\": {\"1A\": \"x\"}"), "servers[0].env: has a name" },
    { SRV(", \"env\": {\"A=B\": \"x\"}"), "servers[0].env: has a name" },
    { SRV(", \"env\": {\"\": \"x\"}"), "servers[0].env: has a name" },
    { SRV(", \"env\": {\"A\": \"x\\ny\"}"), "servers[0].env.A: holds a control character" },
    { SRV(", \"cwd\": \"relative\""), "servers[0].cwd: must be an absolute path" },
    { SRV(", \"cwd\": 3"), "servers[0].cwd: must be a string" },
    { SRV(", \"extra\": true"), "servers[0]: unknown member \"extra\"" },
    { SRV(", \"Command\": \"/x\""), "servers[0]: unknown member \"Command\"" },
    { "{\"servers\": [{\"name\": \"s\", \"command\": \"/bin/x\"}]}", "servers[0].tenants: is required" },
    { "{\"servers\": [{\"name\": \"s\", \"command\": \"/bin/x\", \"tenants\": \"*\"}]}", "servers[0].tenants: must be an array" },
    { "{\"servers\": [{\"name\": \"s\", \"command\": \"/bin/x\", \"tenants\": [\"a\", 2]}]}", "servers[0].tenants[1]: must be a string" },
    { "{\"servers\": [{\"name\": \"s\", \"command\": \"/bin/x\", \"tenants\": [\"a b\"]}]}", "servers[0].tenants[0]: must be \"*\" or a tenant id" },
    { "{\"servers\": [{\"name\": \"s\", \"command\": \"/bin/x\", \"tenants\": [\"\"]}]}", "servers[0].tenants[0]: must be \"*\" or a tenant id" },
    { "{\"servers\": [{\"name\": \"s\", \"command\": \"/bin/x\", \"tenants\": [\"*a\"]}]}", "servers[0].tenants[0]: must be \"*\" or a tenant id" },
    { "{\"servers\": [{\"name\": \"ok\", \"command\": \"/bin/x\", \"tenants\": []},"
      " {\"name\": \"s\", \"command\": \"/bin/x\", \"tenants\": [], \"cwd\": \"x\"}]}", "servers[1].cwd: must be an absolute path" },
};

static void test_file_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof file_cases / sizeof *file_cases; i++) {
        const file_case *c = &file_cases[i];
        char path[64];
        write_temp(path, c->text);
        mcp_servers_file f;
        char err[256] = "";
        int rc = mcp_servers_file_load(path, &f, err, sizeof err);
        unlink(path);
        if (rc != -1)
            fail_msg("case %zu (%s) loaded", i, c->text);
        if (strstr(err, path) == NULL)
            fail_msg("case %zu: the reason \"%s\" does not name the file", i, err);
        if (strstr(err, c->reason) == NULL)
            fail_msg("case %zu: the reason \"%s\" does not hold \"%s\"", i, err, c->reason);
        if (strchr(err, '\n') != NULL)
            fail_msg("case %zu: the reason spans lines", i);
        assert_int_equal(f.count, 0);
        assert_null(f.servers);
    }
}

static void test_file_too_many_servers(void **state)
{
    (void)state;
    size_t cap = 64 * 100 + 64;
    char *text = malloc(cap);
    assert_non_null(text);
    size_t n = (size_t)snprintf(text, cap, "{\"servers\": [");
    for (int i = 0; i <= MCP_SERVERS_MAX; i++)
        n += (size_t)snprintf(text + n, cap - n, "%s{\"name\": \"s%d\", \"command\": \"/x\", \"tenants\": []}",
                              i ? "," : "", i);
    snprintf(text + n, cap - n, "]}");
    char path[64];
    write_temp(path, text);
    free(text);
    mcp_servers_file f;
    char err[256] = "";
    assert_int_equal(mcp_servers_file_load(path, &f, err, sizeof err), -1);
    unlink(path);
    assert_non_null(strstr(err, "more than 64 servers"));
}

static void test_file_too_large(void **state)
{
    (void)state;
    size_t n = MCP_SERVERS_FILE_MAX + 10;
    char *text = malloc(n + 1);
    assert_non_null(text);
    memset(text, ' ', n);
    text[n] = '\0';
    memcpy(text, "{\"servers\": []}", 15);
    char path[64];
    write_temp(path, text);
    free(text);
    mcp_servers_file f;
    char err[256] = "";
    assert_int_equal(mcp_servers_file_load(path, &f, err, sizeof err), -1);
    unlink(path);
    assert_non_null(strstr(err, "larger than"));
}

static void test_file_missing(void **state)
{
    (void)state;
    mcp_servers_file f;
    char err[256] = "";
    assert_int_equal(mcp_servers_file_load("/nonexistent/mcp.json", &f, err, sizeof err), -1);
    assert_non_null(strstr(err, "/nonexistent/mcp.json: cannot open"));
    assert_int_equal(f.count, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_server_names),
        cmocka_unit_test(test_url_allowlist),
        cmocka_unit_test(test_url_bounds),
        cmocka_unit_test(test_file_good),
        cmocka_unit_test(test_file_empty_path),
        cmocka_unit_test(test_file_errors),
        cmocka_unit_test(test_file_too_many_servers),
        cmocka_unit_test(test_file_too_large),
        cmocka_unit_test(test_file_missing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
