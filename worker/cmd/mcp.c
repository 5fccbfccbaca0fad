/*
 * mcp.c - agentgate-mcp, the operator's command-line MCP client: lists a
 * server's tools or calls one, over Streamable HTTP or with the server as
 * a child process (stdio), through the same client the worker uses.
 *
 *   agentgate-mcp [options] list URL
 *   agentgate-mcp [options] call TOOL 'JSON' URL
 *   agentgate-mcp [options] list --stdio -- COMMAND [ARGS...]
 *   agentgate-mcp [options] call TOOL 'JSON' --stdio -- COMMAND [ARGS...]
 *
 * Output is a table of tools or the call's text (and structuredContent as
 * JSON), or with --json the JSON itself. Exit status: 0 success, 1 the
 * tool reported an error (isError), 2 usage, 3 connection or protocol
 * failure (timeouts and cancellation included); every failure prints one
 * line "agentgate-mcp: reason" on stderr. Ctrl-C cancels a call in flight
 * (notifications/cancelled is sent).
 */
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonutil.h"
#include "log.h"
#include "mcp_client.h"
#include "mcp_http.h"
#include "mcp_stdio.h"
#include "strbuf.h"

#define PROG "agentgate-mcp"

enum { EXIT_TOOL_ERROR = 1, EXIT_USAGE = 2, EXIT_FAILURE_MCP = 3 };

#define MAX_HEADERS        32
#define ARGS_JSON_MAX      (1024 * 1024)
#define TABLE_DESC_MAX     100
#define TABLE_NAME_MAX     40

static volatile sig_atomic_t interrupted;

typedef struct cli {
    const char *headers[MAX_HEADERS + 1];
    int n_headers;
    long long timeout_ms;
    bool json;
    bool stdio;
    bool progress;
    bool verbose;
    const char *command;        /* "list" or "call" */
    const char *tool;
    const char *args_json;
    const char *url;
    char **server_argv;         /* --stdio: COMMAND ARGS..., NULL-terminated */
} cli;

static void usage(FILE *out)
{
    fputs(
        "usage: " PROG " [options] list URL\n"
        "       " PROG " [options] call TOOL 'JSON' URL\n"
        "       " PROG " [options] list --stdio -- COMMAND [ARGS...]\n"
        "       " PROG " [options] call TOOL 'JSON' --stdio -- COMMAND [ARGS...]\n"
        "\n"
        "Lists the tools of a Model Context Protocol server, or calls one with\n"
        "JSON object arguments. URL is a Streamable HTTP endpoint (http:// or\n"
        "https://); with --stdio the server is COMMAND, run without a shell,\n"
        "speaking MCP on its stdin and stdout.\n"
        "\n"
        "options:\n"
        "  -H, --header 'Name: value'  send this HTTP header too (repeatable), e.g.\n"
        "                              'Authorization: Bearer TOKEN'; never printed\n"
        "      --timeout MS            per-request timeout in milliseconds, connecting\n"
        "                              and initializing included (default 30000)\n"
        "      --json                  print JSON: the tools array, or the call result\n"
        "      --stdio                 run the server as a child process: COMMAND and\n"
        "                              its ARGS follow \"--\"\n"
        "      --progress              print the server's progress reports on stderr\n"
        "  -v, --verbose               log connection events and the server's stderr\n"
        "  -h, --help                  show this help and exit\n"
        "      --version               show the version and exit\n"
        "\n"
        "exit status:\n"
        "  0  success\n"
        "  1  the tool ran and reported an error (isError)\n"
        "  2  usage error (bad option, tool name or JSON arguments)\n"
        "  3  connection or protocol failure, timeout, or cancelled (Ctrl-C)\n",
        out);
}

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, PROG ": ");
    fprintf(stderr, fmt, arg ? arg : "");
    fprintf(stderr, " (see " PROG " --help)\n");
    return EXIT_USAGE;
}

static bool parse_ms(const char *s, long long *out)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end || v <= 0 || v > 24LL * 3600 * 1000)
        return false;
    *out = v;
    return true;
}

/* Parses argv into *c. Returns -1 to go on, or an exit status. */
static int parse_args(int argc, char **argv, cli *c)
{
    enum { OPT_TIMEOUT = 256, OPT_JSON, OPT_STDIO, OPT_VERSION, OPT_PROGRESS };
    static const struct option opts[] = {
        { "header",   required_argument, NULL, 'H' },
        { "timeout",  required_argument, NULL, OPT_TIMEOUT },
        { "json",     no_argument,       NULL, OPT_JSON },
        { "stdio",    no_argument,       NULL, OPT_STDIO },
        { "progress", no_argument,       NULL, OPT_PROGRESS },
        { "verbose",  no_argument,       NULL, 'v' },
        { "help",     no_argument,       NULL, 'h' },
        { "version",  no_argument,       NULL, OPT_VERSION },
        { NULL, 0, NULL, 0 },
    };
    c->timeout_ms = 30000;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, ":H:vh", opts, NULL)) != -1) {
        switch (ch) {
        case 'H':
            if (c->n_headers == MAX_HEADERS)
                return usage_error("too many --header options%s", NULL);
            c->headers[c->n_headers++] = optarg;
            break;
        case OPT_TIMEOUT:
            if (!parse_ms(optarg, &c->timeout_ms))
                return usage_error("--timeout wants milliseconds, got '%s'", optarg);
            break;
        case OPT_JSON:     c->json = true; break;
        case OPT_STDIO:    c->stdio = true; break;
        case OPT_PROGRESS: c->progress = true; break;
        case 'v':          c->verbose = true; break;
        case 'h':
            usage(stdout);
            return 0;
        case OPT_VERSION:
            printf(PROG " %s (MCP %s, %s)\n", MCP_CLIENT_VERSION, MCP_PROTOCOL_LATEST,
                   MCP_PROTOCOL_PREVIOUS);
            return 0;
        case ':':
            return usage_error("option %s needs a value", argv[optind - 1]);
        default:
            return usage_error("unknown option %s", argv[optind - 1]);
        }
    }
    char **rest = argv + optind;
    int n = argc - optind;
    if (n < 1)
        return usage_error("no command given: list or call%s", NULL);
    c->command = rest[0];
    int used = 1;
    if (strcmp(c->command, "call") == 0) {
        if (n < 3 || (!c->stdio && n < 4))
            return usage_error(c->stdio ? "call needs TOOL and 'JSON' arguments%s"
                                        : "call needs TOOL, 'JSON' and the server URL%s", NULL);
        c->tool = rest[1];
        c->args_json = rest[2];
        used = 3;
    } else if (strcmp(c->command, "list") != 0) {
        return usage_error("unknown command '%s': list or call", c->command);
    }
    if (c->stdio) {
        if (n - used < 1)
            return usage_error("--stdio needs a COMMAND after --%s", NULL);
        c->server_argv = rest + used;
    } else {
        if (n - used != 1)
            return usage_error(n - used < 1 ? "no server URL given (or use --stdio -- COMMAND)%s"
                                            : "too many arguments%s", NULL);
        c->url = rest[used];
    }
    return -1;
}

/* host[:port] of the URL, without user info, as the server's log name. */
static void name_from_url(const char *url, char *out, size_t out_size)
{
    const char *p = strstr(url, "://");
    p = p ? p + 3 : url;
    size_t n = strcspn(p, "/?#");
    const char *at = memchr(p, '@', n);
    if (at) {
        n -= (size_t)(at + 1 - p);
        p = at + 1;
    }
    snprintf(out, out_size, "%.*s", (int)n, p);
}

static void name_from_command(const char *argv0, char *out, size_t out_size)
{
    const char *slash = strrchr(argv0, '/');
    snprintf(out, out_size, "%s", slash ? slash + 1 : argv0);
}

static mcp_transport *open_transport(const cli *c, char *err, size_t err_size)
{
    char name[64];
    if (c->stdio) {
        name_from_command(c->server_argv[0], name, sizeof name);
        /* A shorter grace than the worker's: an operator is waiting. */
        mcp_stdio_config cfg = { .name = name, .argv = c->server_argv,
                                 .shutdown_grace_ms = 1000 };
        return mcp_stdio_open(&cfg, err, err_size);
    }
    name_from_url(c->url, name, sizeof name);
    mcp_http_config cfg = {
        .name = name,
        .url = c->url,
        .headers = c->headers,
        .connect_timeout_ms = c->timeout_ms < 10000 ? c->timeout_ms : 10000,
        .user_agent = PROG "/" MCP_CLIENT_VERSION,
    };
    return mcp_http_open(&cfg, err, err_size);
}

static const char *hint_word(mcp_hint h)
{
    return h == MCP_HINT_TRUE ? "yes" : h == MCP_HINT_FALSE ? "no" : "-";
}

static void print_table(const mcp_tool_list *l)
{
    int w = 4;
    for (size_t i = 0; i < l->count; i++) {
        int n = (int)strlen(l->tools[i].name);
        if (n > w)
            w = n > TABLE_NAME_MAX ? TABLE_NAME_MAX : n;
    }
    printf("%-*s  %-9s  %s\n", w, "NAME", "READ-ONLY", "DESCRIPTION");
    for (size_t i = 0; i < l->count; i++) {
        const mcp_tool *t = &l->tools[i];
        strbuf d = {0};
        const char *src = t->description ? t->description : t->title;
        if (src) {
            size_t first_line = strcspn(src, "\n");
            char *line = strndup(src, first_line);
            strbuf_add_flat(&d, line, TABLE_DESC_MAX);
            free(line);
        }
        printf("%-*s  %-9s  %s\n", w, t->name, hint_word(t->read_only),
               d.s && !d.oom ? d.s : "");
        strbuf_free(&d);
    }
    printf("(%zu tool%s%s)\n", l->count, l->count == 1 ? "" : "s",
           l->skipped ? ", some invalid definitions skipped" : "");
}

static cJSON *hint_json(mcp_hint h)
{
    return h == MCP_HINT_UNSET ? NULL : cJSON_CreateBool(h == MCP_HINT_TRUE);
}

static void add_hint(cJSON *o, const char *k, mcp_hint h, bool *ok)
{
    if (h != MCP_HINT_UNSET)
        json_add_item(o, k, hint_json(h), ok);
}

static int print_tools_json(const mcp_tool_list *l)
{
    bool ok = true;
    cJSON *arr = cJSON_CreateArray();
    ok = arr != NULL;
    for (size_t i = 0; ok && i < l->count; i++) {
        const mcp_tool *t = &l->tools[i];
        cJSON *o = cJSON_CreateObject();
        json_add_str(o, "name", t->name, &ok);
        if (t->title)
            json_add_str(o, "title", t->title, &ok);
        if (t->description)
            json_add_str(o, "description", t->description, &ok);
        json_add_item(o, "inputSchema", cJSON_Duplicate(t->input_schema, 1), &ok);
        if (t->output_schema)
            json_add_item(o, "outputSchema", cJSON_Duplicate(t->output_schema, 1), &ok);
        cJSON *ann = cJSON_CreateObject();
        add_hint(ann, "readOnlyHint", t->read_only, &ok);
        add_hint(ann, "destructiveHint", t->destructive, &ok);
        add_hint(ann, "idempotentHint", t->idempotent, &ok);
        add_hint(ann, "openWorldHint", t->open_world, &ok);
        json_add_item(o, "annotations", ann, &ok);
        json_append(arr, o, &ok);
    }
    cJSON *root = cJSON_CreateObject();
    json_add_item(root, "tools", arr, &ok);
    char *text = ok && root ? cJSON_Print(root) : NULL;
    cJSON_Delete(root);
    if (!text) {
        fprintf(stderr, PROG ": out of memory\n");
        return EXIT_FAILURE_MCP;
    }
    puts(text);
    free(text);
    return 0;
}

static void on_progress(void *user, double progress, double total, const char *message)
{
    if (total >= 0)
        fprintf(stderr, PROG ": progress %g/%g%s%s\n", progress, total,
                message ? " " : "", message ? message : "");
    else
        fprintf(stderr, PROG ": progress %g%s%s\n", progress, message ? " " : "",
                message ? message : "");
}

static bool is_interrupted(void *user)
{
    return interrupted != 0;
}

static void on_signal(int sig)
{
    interrupted = 1;
}

static void catch_interrupts(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

static int fail(int rc, const char *err)
{
    fprintf(stderr, PROG ": %s\n", err && err[0] ? err : mcp_status_name(rc));
    return rc == MCP_ERR_INVALID ? EXIT_USAGE : EXIT_FAILURE_MCP;
}

static int run_list(mcp_client *mc, const cli *c)
{
    char err[512] = "";
    mcp_tool_list l;
    int rc = mcp_client_list_tools(mc, &l, err, sizeof err);
    if (rc != MCP_OK)
        return fail(rc, err);
    int status = c->json ? print_tools_json(&l) : (print_table(&l), 0);
    mcp_tool_list_free(&l);
    return status;
}

static int print_call_result(const mcp_call_result *r, const cli *c)
{
    if (c->json) {
        char *text = cJSON_Print(r->raw);
        if (!text) {
            fprintf(stderr, PROG ": out of memory\n");
            return EXIT_FAILURE_MCP;
        }
        puts(text);
        free(text);
    } else {
        fwrite(r->text, 1, r->text_len, stdout);
        if (r->text_len == 0 || r->text[r->text_len - 1] != '\n')
            putchar('\n');
        if (r->structured) {
            char *sc = cJSON_Print(r->structured);
            if (sc)
                printf("structuredContent:\n%s\n", sc);
            free(sc);
        }
    }
    return 0;
}

static int run_call(mcp_client *mc, const cli *c, const cJSON *args)
{
    char err[512] = "";
    mcp_call_options opt = {
        .timeout_ms = c->timeout_ms,
        .on_progress = c->progress ? on_progress : NULL,
        .is_cancelled = is_interrupted,
        .keep_raw = c->json,
    };
    mcp_call_result r;
    int rc = mcp_client_call_tool(mc, c->tool, args, &opt, &r, err, sizeof err);
    if (rc != MCP_OK)
        return fail(rc, err);
    int status = print_call_result(&r, c);
    if (status == 0 && r.is_error) {
        fprintf(stderr, PROG ": tool %s reported an error\n", c->tool);
        status = EXIT_TOOL_ERROR;
    }
    mcp_call_result_free(&r);
    return status;
}

int main(int argc, char **argv)
{
    cli c;
    memset(&c, 0, sizeof c);
    int status = parse_args(argc, argv, &c);
    if (status >= 0)
        return status;
    log_init(PROG, c.verbose ? "info" : "error");

    cJSON *args = NULL;
    if (c.tool) {
        if (!mcp_tool_name_ok(c.tool))
            return usage_error("tool name '%s' is not 1-128 of [A-Za-z0-9_.-]", c.tool);
        char why[200];
        args = json_parse_bounded(c.args_json, strlen(c.args_json), ARGS_JSON_MAX,
                                  MCP_JSON_MAX_DEPTH, why, sizeof why);
        if (!args)
            return usage_error("arguments are not valid JSON: %s", why);
        if (!cJSON_IsObject(args)) {
            cJSON_Delete(args);
            return usage_error("arguments must be a JSON object, like '{}'%s", NULL);
        }
    }

    char err[512] = "";
    mcp_transport *t = open_transport(&c, err, sizeof err);
    if (!t) {
        cJSON_Delete(args);
        return usage_error("%s", err);
    }
    mcp_client_options copt = {
        .request_timeout_ms = c.timeout_ms,
        .call_timeout_ms = c.timeout_ms,
    };
    mcp_client *mc = mcp_client_new(t, &copt, err, sizeof err);
    if (!mc) {
        cJSON_Delete(args);
        return fail(MCP_ERR_NOMEM, err);
    }
    catch_interrupts();
    status = c.tool ? run_call(mc, &c, args) : run_list(mc, &c);
    mcp_client_free(mc);
    cJSON_Delete(args);
    fflush(stdout);
    return status;
}
