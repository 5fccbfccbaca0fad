/*
 * main.c - agentgate, the command-line client of the agentgate gateway:
 * start an agent run and watch it, approve or deny its tool calls, submit
 * (one or a batch), list, inspect, cancel and retry jobs, see a job's
 * webhook deliveries, follow a job's events, manage schedules, and look at
 * queues and workers.
 *
 * The command line is read in one getopt_long pass that lets options and
 * arguments mix (`agentgate run "hi" --follow`); each command then checks
 * that the options given apply to it and that its arguments are well
 * formed (ids are UUIDs, numbers are numbers) before anything is sent, so
 * a usage error never reaches the gateway. Each command is one function
 * that makes its calls through http_client, prints through render, and
 * returns the exit status; following a job is follow.c. Ctrl-C while
 * following is caught (a byte down a pipe wakes the stream at once) so the
 * CLI can ask the gateway to cancel before it exits.
 */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cliopt.h"
#include "follow.h"
#include "http_client.h"
#include "jsonutil.h"
#include "render.h"
#include "uuid.h"
#include "version.h"

#define PROG "agentgate"
#define DEFAULT_URL "http://127.0.0.1:8080"   /* the gateway's AGENTGATE_LISTEN default */
#define MAX_PROMPT_BYTES (32000 * 4)          /* 32000 characters of UTF-8 at most */
#define MAX_TIMEOUT_S 3600

#define fail(...) cliopt_fail(PROG, __VA_ARGS__)

static void usage(FILE *f)
{
    fprintf(f,
        "usage: " PROG " [OPTIONS] COMMAND [ARGS]\n"
        "\n"
        "Commands:\n"
        "  run PROMPT [--model M] [--planning full|optional|none]\n"
        "      [--response-mode fallback-only|llm-best-effort|llm-required]\n"
        "      [--session ID [--multitask reject|enqueue|interrupt|rollback]]\n"
        "      [--follow [--cancel-on-interrupt]]\n"
        "                            start an agent run; with --follow, show its steps\n"
        "                            and the model's tokens as they stream, then its output.\n"
        "                            --multitask says what to do when the session has a run\n"
        "                            still active: refuse (reject, the default), run after\n"
        "                            it (enqueue), or cancel it (interrupt keeps it in the\n"
        "                            session's context, rollback drops it)\n"
        "  jobs submit TYPE JSON [--follow [--cancel-on-interrupt]]\n"
        "                            submit a job of TYPE with the payload JSON\n"
        "  jobs list [--status S] [--type T] [--limit N] [--cursor C]\n"
        "                            the tenant's jobs, newest first\n"
        "  jobs get ID               one job\n"
        "  jobs cancel ID            cancel a job\n"
        "  jobs retry ID [--follow]  run a failed or cancelled job again, as a new job\n"
        "  jobs submit-batch FILE|-  submit the jobs of FILE (- for stdin: a JSON array of\n"
        "                            job bodies, or {\"jobs\":[...]}) all or none; prints\n"
        "                            their ids in order\n"
        "  jobs deliveries ID        a job's webhook deliveries and their attempts\n"
        "  approve RUN_ID TOOL_CALL_ID [--note TEXT]\n"
        "  deny RUN_ID TOOL_CALL_ID [--note TEXT]\n"
        "                            decide a tool call a waiting run asks approval for\n"
        "  schedules list [--limit N] [--cursor C]\n"
        "  schedules get ID\n"
        "  schedules create --cron EXPR [--timezone TZ]\n"
        "      (--job-type TYPE [--payload JSON] [--priority N] | --prompt TEXT)\n"
        "                            a job, or an agent run, at every tick of EXPR\n"
        "  schedules pause ID | resume ID | delete ID\n"
        "  events ID [--after N] [--cancel-on-interrupt]\n"
        "                            print a job's events, following it to its end\n"
        "  queues                    jobs queued, delayed, running and dead, per type\n"
        "  workers                   the live workers\n"
        "\n"
        "Options:\n"
        "  --url URL              the gateway (default: $AGENTGATE_URL, else " DEFAULT_URL ")\n"
        "  --token TOKEN          bearer token (default: $AGENTGATE_TOKEN)\n"
        "  --json                 print the gateway's JSON as it is (events: one per line)\n"
        "  --timeout SECONDS      limit on each call that is not an event stream (default 30)\n"
        "  -f, --follow           follow the job or run to its end\n"
        "  --cancel-on-interrupt  on Ctrl-C while following, ask the gateway to cancel it\n"
        "  -h, --help             show this help\n"
        "  -V, --version          show the version\n"
        "\n"
        "On a terminal, following shows a progress line with the current step and\n"
        "prints the model's tokens as they arrive; otherwise one plain line per event.\n"
        "\n"
        "Exit status:\n"
        "  0    done; a followed job or run succeeded\n"
        "  1    the followed job or run failed\n"
        "  2    usage error (bad command, option or argument)\n"
        "  3    the followed job or run was cancelled (also after --cancel-on-interrupt)\n"
        "  4    connection error: no answer from the gateway (refused, timed out, lost)\n"
        "  5    HTTP error: the gateway refused the call (its problem is printed on\n"
        "       stderr), or answered something unusable\n"
        "  130  interrupted (Ctrl-C while following, without --cancel-on-interrupt)\n");
}

/* ------------------------------------------------------------------------ */
/* The command line                                                          */
/* ------------------------------------------------------------------------ */

enum opt_id {
    O_URL = 256, O_TOKEN, O_JSON, O_TIMEOUT, O_MODEL, O_PLANNING, O_RESPONSE, O_SESSION,
    O_CANCEL, O_STATUS, O_TYPE, O_LIMIT, O_CURSOR, O_AFTER, O_MULTITASK, O_CRON, O_TIMEZONE,
    O_JOB_TYPE, O_PAYLOAD, O_PRIORITY, O_PROMPT, O_NOTE,
    O_FOLLOW = 'f', O_HELP = 'h', O_VERSION = 'V',
};

/* Bits of the options given, to check they apply to the command. */
#define BIT(o) (1u << ((o) >= 256 ? (o) - 256 : (o) == O_FOLLOW ? 30 : 31))

typedef struct cli {
    const char *url, *token, *model, *planning, *response, *session, *multitask;
    const char *status, *type, *limit, *cursor, *after, *timeout;
    const char *cron, *timezone, *job_type, *payload, *priority, *prompt, *note;
    bool json, follow, cancel;
    unsigned given;                 /* BIT() of each option given */
    char **args;                    /* the arguments, command first */
    int nargs;
    /* set up by main */
    agc client;
    render_opts ro;
} cli;

static const struct option longopts[] = {
    { "url",                 required_argument, NULL, O_URL },
    { "token",               required_argument, NULL, O_TOKEN },
    { "json",                no_argument,       NULL, O_JSON },
    { "timeout",             required_argument, NULL, O_TIMEOUT },
    { "model",               required_argument, NULL, O_MODEL },
    { "planning",            required_argument, NULL, O_PLANNING },
    { "response-mode",       required_argument, NULL, O_RESPONSE },
    { "session",             required_argument, NULL, O_SESSION },
    { "multitask",           required_argument, NULL, O_MULTITASK },
    { "follow",              no_argument,       NULL, O_FOLLOW },
    { "cancel-on-interrupt", no_argument,       NULL, O_CANCEL },
    { "status",              required_argument, NULL, O_STATUS },
    { "type",                required_argument, NULL, O_TYPE },
    { "limit",               required_argument, NULL, O_LIMIT },
    { "cursor",              required_argument, NULL, O_CURSOR },
    { "after",               required_argument, NULL, O_AFTER },
    { "cron",                required_argument, NULL, O_CRON },
    { "timezone",            required_argument, NULL, O_TIMEZONE },
    { "job-type",            required_argument, NULL, O_JOB_TYPE },
    { "payload",             required_argument, NULL, O_PAYLOAD },
    { "priority",            required_argument, NULL, O_PRIORITY },
    { "prompt",              required_argument, NULL, O_PROMPT },
    { "note",                required_argument, NULL, O_NOTE },
    { "help",                no_argument,       NULL, O_HELP },
    { "version",             no_argument,       NULL, O_VERSION },
    { NULL, 0, NULL, 0 },
};

static const char *option_name(unsigned bit)
{
    for (const struct option *o = longopts; o->name != NULL; o++)
        if (BIT(o->val) == bit)
            return o->name;
    return "?";
}

/* Reads argv into *c. Returns -1 to go on, else the exit status (0 after
 * --help or --version, 2 after a usage error, reported). */
static int parse_command_line(int argc, char **argv, cli *c)
{
    opterr = 0;
    for (;;) {
        int ch = getopt_long(argc, argv, ":fhV", longopts, NULL);
        if (ch == -1)
            break;
        if (ch == O_HELP) {
            usage(stdout);
            return 0;
        }
        if (ch == O_VERSION) {
            printf(PROG " %s\n", AGENTGATE_VERSION);
            return 0;
        }
        if (ch == '?' || ch == ':') {
            /* With arguments permuted, the element just read is the one
             * before optind. */
            const char *arg = optind > 0 && optind <= argc ? argv[optind - 1] : NULL;
            cliopt_bad_option(PROG, ch, optopt,
                              arg != NULL && strncmp(arg, "--", 2) == 0 ? arg : NULL);
            return EXIT_USAGE;
        }
        c->given |= BIT(ch);
        switch (ch) {
        case O_URL:      c->url = optarg; break;
        case O_TOKEN:    c->token = optarg; break;
        case O_JSON:     c->json = true; break;
        case O_TIMEOUT:  c->timeout = optarg; break;
        case O_MODEL:    c->model = optarg; break;
        case O_PLANNING: c->planning = optarg; break;
        case O_RESPONSE: c->response = optarg; break;
        case O_SESSION:  c->session = optarg; break;
        case O_MULTITASK: c->multitask = optarg; break;
        case O_FOLLOW:   c->follow = true; break;
        case O_CANCEL:   c->cancel = true; break;
        case O_STATUS:   c->status = optarg; break;
        case O_TYPE:     c->type = optarg; break;
        case O_LIMIT:    c->limit = optarg; break;
        case O_CURSOR:   c->cursor = optarg; break;
        case O_AFTER:    c->after = optarg; break;
        case O_CRON:     c->cron = optarg; break;
        case O_TIMEZONE: c->timezone = optarg; break;
        case O_JOB_TYPE: c->job_type = optarg; break;
        case O_PAYLOAD:  c->payload = optarg; break;
        case O_PRIORITY: c->priority = optarg; break;
        case O_PROMPT:   c->prompt = optarg; break;
        case O_NOTE:     c->note = optarg; break;
        default:         break;
        }
    }
    c->args = argv + optind;
    c->nargs = argc - optind;
    return -1;
}

/* Checks that only options in `allowed` (besides the global ones) were
 * given to the command named cmd. */
static bool options_apply(const cli *c, const char *cmd, unsigned allowed)
{
    allowed |= BIT(O_URL) | BIT(O_TOKEN) | BIT(O_JSON) | BIT(O_TIMEOUT);
    unsigned extra = c->given & ~allowed;
    if (extra == 0)
        return true;
    unsigned bit = extra & -extra;
    fail("option '--%s' does not apply to '%s' (see --help)", option_name(bit), cmd);
    return false;
}

static bool want_args(const cli *c, int n, const char *cmd, const char *what)
{
    if (c->nargs == n)
        return true;
    if (c->nargs < n)
        fail("'%s' needs %s (see --help)", cmd, what);
    else
        fail("'%s' takes %s, not also '%s' (see --help)", cmd, what, c->args[n]);
    return false;
}

static bool one_of(const char *v, const char *const *allowed)
{
    for (; *allowed != NULL; allowed++)
        if (strcmp(v, *allowed) == 0)
            return true;
    return false;
}

/* A job, run or session id: a UUID (also keeps the path clean). */
static bool check_id(const char *what, const char *v, char out[UUID_STR_LEN])
{
    if (uuid_parse(v, out))
        return true;
    fail("'%s' is not a %s id (a UUID)", v, what);
    return false;
}

/* A whole number of 1..18 digits within [min, max]; a leading '-' only
 * when min is negative. */
static bool check_number(const char *opt, const char *v, long long min, long long max)
{
    const char *d = min < 0 && v[0] == '-' ? v + 1 : v;
    size_t n = strlen(d);
    bool ok = n > 0 && n <= 18 && strspn(d, "0123456789") == n;
    long long x = ok ? strtoll(v, NULL, 10) : 0;
    if (ok && x >= min && x <= max)
        return true;
    fail("--%s takes a whole number from %lld to %lld, not '%s'", opt, min, max, v);
    return false;
}

/* ------------------------------------------------------------------------ */
/* Calls                                                                     */
/* ------------------------------------------------------------------------ */

/*
 * Makes one call and checks its answer: a 2xx with a JSON body, parsed
 * into *json when json is not NULL. Prints why on stderr and returns
 * EXIT_CONNECT or EXIT_HTTP otherwise; EXIT_OK on success. *resp (freed by
 * the caller) keeps the answer for a raw --json print.
 */
static int call(cli *c, const char *method, const char *path, const char *body,
                agc_response *resp, cJSON **json)
{
    char err[512];
    int rc = agc_request(&c->client, method, path, body, resp, err, sizeof err);
    if (rc != AGC_OK) {
        fail("%s", err);
        return rc == AGC_ERR_CONNECT ? EXIT_CONNECT : EXIT_HTTP;
    }
    if (resp->status < 200 || resp->status > 299) {
        render_problem(PROG, resp);
        return EXIT_HTTP;
    }
    if (json == NULL)
        return EXIT_OK;
    *json = json_parse_bounded(resp->body, resp->len, resp->len, 128, err, sizeof err);
    if (*json == NULL) {
        fail("%s %s: the answer is not JSON: %s", method, path, err);
        return EXIT_HTTP;
    }
    return EXIT_OK;
}

/*
 * Sends body (taken over and freed; ok false when building it ran out of
 * memory) with method to path as call() does. *resp is always set, for the
 * caller to free.
 */
static int send_json(cli *c, const char *method, const char *path, cJSON *body, bool ok,
                     agc_response *resp, cJSON **json)
{
    memset(resp, 0, sizeof *resp);
    char *text = ok ? cJSON_PrintUnformatted(body) : NULL;
    cJSON_Delete(body);
    if (text == NULL) {
        fail("out of memory");
        return EXIT_HTTP;
    }
    int rc = call(c, method, path, text, resp, json);
    free(text);
    return rc;
}

static int post_json(cli *c, const char *path, cJSON *body, bool ok, agc_response *resp,
                     cJSON **json)
{
    return send_json(c, "POST", path, body, ok, resp, json);
}

/* Prints an answer's body as it came (--json). */
static void print_raw(const agc_response *r)
{
    fwrite(r->body, 1, r->len, stdout);
    if (r->len == 0 || r->body[r->len - 1] != '\n')
        fputc('\n', stdout);
}

typedef void (*render_fn)(FILE *, const cJSON *, const render_opts *);

/* Prints a call's answer r (parsed: j) when rc is EXIT_OK, by render or raw
 * with --json; frees both. Returns rc. */
static int print_answer(cli *c, int rc, agc_response *r, cJSON *j, render_fn render)
{
    if (rc == EXIT_OK) {
        if (c->json)
            print_raw(r);
        else
            render(stdout, j, &c->ro);
    }
    cJSON_Delete(j);
    agc_response_free(r);
    return rc;
}

/* A GET whose answer is printed by render (or raw with --json). */
static int show(cli *c, const char *path, render_fn render)
{
    agc_response r;
    cJSON *j = NULL;
    int rc = call(c, "GET", path, NULL, &r, &j);
    return print_answer(c, rc, &r, j, render);
}

/* Appends "?name=value&..." to path for the values that are not NULL,
 * escaped. Returns false when out of memory (reported). */
static bool add_query(strbuf *path, const char *const *names, const char *const *values,
                      int n)
{
    char sep = '?';
    for (int i = 0; i < n; i++) {
        if (values[i] == NULL)
            continue;
        char *esc = curl_easy_escape(NULL, values[i], 0);
        if (esc == NULL) {
            path->oom = true;
            break;
        }
        strbuf_addf(path, "%c%s=%s", sep, names[i], esc);
        curl_free(esc);
        sep = '&';
    }
    if (path->oom)
        fail("out of memory");
    return !path->oom;
}

/* ------------------------------------------------------------------------ */
/* Ctrl-C while following                                                    */
/* ------------------------------------------------------------------------ */

static int wake_pipe[2] = { -1, -1 };

static void on_interrupt(int sig)
{
    int saved = errno;
    char b = 1;
    ssize_t n = write(wake_pipe[1], &b, 1);
    (void)n;
    (void)sig;
    errno = saved;
}

/* From now on Ctrl-C wakes the stream instead of killing the process; a
 * second Ctrl-C kills it as usual (SA_RESETHAND). */
static void catch_interrupts(cli *c)
{
    if (pipe2(wake_pipe, O_CLOEXEC | O_NONBLOCK) != 0)
        return;                     /* Ctrl-C then just ends the process */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_interrupt;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    c->client.wake_fd = wake_pipe[0];
}

/* After Ctrl-C: asks the gateway to cancel the job or run at path (which
 * also reads it) when --cancel-on-interrupt was given; otherwise says how
 * to cancel its job (job_id) later. Returns the exit status. */
static int interrupted(cli *c, const char *path, const char *id, const char *job_id)
{
    if (!c->cancel) {
        fprintf(stderr, PROG ": interrupted; %s is still running (cancel it with: "
                        PROG " jobs cancel %s)\n", id, job_id);
        return EXIT_INTERRUPTED;
    }
    agc_response r;
    cJSON *j = NULL;
    char err[512];
    int rc = agc_request(&c->client, "DELETE", path, NULL, &r, err, sizeof err);
    if (rc != AGC_OK) {
        fail("interrupted, and the cancel request failed: %s", err);
        agc_response_free(&r);
        return rc == AGC_ERR_CONNECT ? EXIT_CONNECT : EXIT_HTTP;
    }
    int out = EXIT_CANCELLED;
    if (r.status == 200 || r.status == 202) {
        j = json_parse_bounded(r.body, r.len, r.len, 128, NULL, 0);
        const char *st = json_get_string(j, "status");
        fprintf(stderr, PROG ": interrupted; cancel requested, %s is %s\n", id,
                st != NULL ? st : "cancelling");
    } else if (r.status == 409) {
        /* It finished before the cancel arrived: exit as it ended. */
        agc_response g;
        cJSON *job = NULL;
        if (call(c, "GET", path, NULL, &g, &job) == EXIT_OK) {
            const char *st = json_get_string(job, "status");
            int code = follow_exit_for_status(st);
            fprintf(stderr, PROG ": interrupted; %s had already %s\n", id, st ? st : "ended");
            out = code >= 0 ? code : EXIT_HTTP;
        } else {
            out = EXIT_HTTP;
        }
        cJSON_Delete(job);
        agc_response_free(&g);
    } else {
        render_problem(PROG, &r);
        out = EXIT_HTTP;
    }
    cJSON_Delete(j);
    agc_response_free(&r);
    return out;
}

/*
 * Follows a job (or a run: base_path "/v1/agent-runs", and job_id its job)
 * to its end from after the event id after (NULL: the start), then prints
 * the final object with print_final (NULL: nothing). Returns the exit
 * status.
 */
static int follow_and_show(cli *c, const char *base_path, const char *id, const char *job_id,
                           const char *after,
                           void (*print_final)(FILE *, const cJSON *, const render_opts *))
{
    char events[160], self[160];
    snprintf(events, sizeof events, "%s/%s/events", base_path, id);
    snprintf(self, sizeof self, "%s/%s", base_path, id);
    catch_interrupts(c);
    render_follow rf;
    render_follow_init(&rf, stdout, &c->ro);
    int rc = follow_job(&c->client, PROG, events, self, after, &rf);
    render_follow_free(&rf);
    if (rc == EXIT_INTERRUPTED)
        return interrupted(c, self, id, job_id);
    if (rc != EXIT_OK && rc != EXIT_FAILED && rc != EXIT_CANCELLED)
        return rc;
    if (print_final == NULL)
        return rc;
    agc_response r;
    cJSON *j = NULL;
    int got = call(c, "GET", self, NULL, &r, &j);
    if (got == EXIT_OK) {
        if (c->json)
            print_raw(&r);
        else
            print_final(stdout, j, &c->ro);
    }
    cJSON_Delete(j);
    agc_response_free(&r);
    return got == EXIT_OK ? rc : got;
}

/* ------------------------------------------------------------------------ */
/* Commands                                                                  */
/* ------------------------------------------------------------------------ */

static int cmd_run(cli *c)
{
    static const char *const planning[] = { "full", "optional", "none", NULL };
    static const char *const response[] = { "fallback-only", "llm-best-effort", "llm-required", NULL };
    static const char *const multitask[] = { "reject", "enqueue", "interrupt", "rollback", NULL };
    if (!options_apply(c, "run", BIT(O_MODEL) | BIT(O_PLANNING) | BIT(O_RESPONSE) |
                                     BIT(O_SESSION) | BIT(O_MULTITASK) | BIT(O_FOLLOW) |
                                     BIT(O_CANCEL)) ||
        !want_args(c, 2, "run", "one PROMPT"))
        return EXIT_USAGE;
    const char *prompt = c->args[1];
    char session[UUID_STR_LEN];
    if (prompt[0] == '\0' || strlen(prompt) > MAX_PROMPT_BYTES) {
        fail("the prompt must be 1 to 32000 characters");
        return EXIT_USAGE;
    }
    if (c->planning != NULL && !one_of(c->planning, planning)) {
        fail("--planning takes full, optional or none, not '%s'", c->planning);
        return EXIT_USAGE;
    }
    if (c->response != NULL && !one_of(c->response, response)) {
        fail("--response-mode takes fallback-only, llm-best-effort or llm-required, not '%s'",
             c->response);
        return EXIT_USAGE;
    }
    if (c->session != NULL && !check_id("session", c->session, session))
        return EXIT_USAGE;
    if (c->multitask != NULL && !one_of(c->multitask, multitask)) {
        fail("--multitask takes reject, enqueue, interrupt or rollback, not '%s'", c->multitask);
        return EXIT_USAGE;
    }
    if (c->multitask != NULL && c->session == NULL) {
        fail("--multitask goes with --session");
        return EXIT_USAGE;
    }
    if (c->cancel && !c->follow) {
        fail("--cancel-on-interrupt goes with --follow");
        return EXIT_USAGE;
    }

    cJSON *body = cJSON_CreateObject();
    bool ok = body != NULL;
    json_add_str(body, "prompt", prompt, &ok);
    if (c->model != NULL)
        json_add_str(body, "model", c->model, &ok);
    if (c->planning != NULL)
        json_add_str(body, "planning_mode", c->planning, &ok);
    if (c->response != NULL)
        json_add_str(body, "response_mode", c->response, &ok);
    if (c->session != NULL)
        json_add_str(body, "session_id", session, &ok);
    if (c->multitask != NULL)
        json_add_str(body, "multitask_strategy", c->multitask, &ok);

    agc_response r;
    cJSON *run = NULL;
    int rc = post_json(c, "/v1/agent-runs", body, ok, &r, &run);
    const char *id = json_get_string(run, "id");
    const char *job = json_get_string(run, "job_id");
    char run_id[UUID_STR_LEN], job_id[UUID_STR_LEN];
    if (rc == EXIT_OK && (id == NULL || !uuid_parse(id, run_id) || job == NULL ||
                          !uuid_parse(job, job_id))) {
        fail("POST /v1/agent-runs: the answer has no run and job id");
        rc = EXIT_HTTP;
    }
    if (rc == EXIT_OK && !c->follow) {
        if (c->json)
            print_raw(&r);
        else
            printf("run %s started (job %s)\nfollow it with: " PROG " events %s\n", run_id,
                   job_id, job_id);
    } else if (rc == EXIT_OK) {
        if (!c->json && c->ro.tty)
            printf("%srun %s%s\n", c->ro.color ? "\033[2m" : "", run_id,
                   c->ro.color ? "\033[0m" : "");
        else if (!c->json)
            printf("run %s job %s\n", run_id, job_id);
        fflush(stdout);
    }
    cJSON_Delete(run);
    agc_response_free(&r);
    if (rc != EXIT_OK || !c->follow)
        return rc;
    return follow_and_show(c, "/v1/agent-runs", run_id, job_id, NULL, render_run_output);
}

/* Prints a job just submitted or retried, or follows it to its end. */
static int job_started(cli *c, agc_response *r, const cJSON *job)
{
    char id[UUID_STR_LEN];
    const char *s = json_get_string(job, "id");
    if (s == NULL || !uuid_parse(s, id)) {
        fail("the answer has no job id");
        return EXIT_HTTP;
    }
    if (!c->follow) {
        if (c->json)
            print_raw(r);
        else
            render_job(stdout, job, &c->ro);
        return EXIT_OK;
    }
    if (!c->json) {
        printf("job %s\n", id);
        fflush(stdout);
    }
    return follow_and_show(c, "/v1/jobs", id, id, NULL, render_job_result);
}

/* A job's payload given on the command line: a JSON object, else NULL
 * (reported). */
static cJSON *parse_payload(const char *text)
{
    char err[256];
    cJSON *payload = json_parse_bounded(text, strlen(text), 16u << 20, 128, err, sizeof err);
    if (payload == NULL) {
        fail("the payload is not JSON: %s", err);
        return NULL;
    }
    if (!cJSON_IsObject(payload)) {
        cJSON_Delete(payload);
        fail("the payload must be a JSON object, e.g. '{\"events\":3}'");
        return NULL;
    }
    return payload;
}

static int cmd_jobs_submit(cli *c)
{
    if (!options_apply(c, "jobs submit", BIT(O_FOLLOW) | BIT(O_CANCEL)) ||
        !want_args(c, 4, "jobs submit", "TYPE and JSON"))
        return EXIT_USAGE;
    if (c->cancel && !c->follow) {
        fail("--cancel-on-interrupt goes with --follow");
        return EXIT_USAGE;
    }
    cJSON *payload = parse_payload(c->args[3]);
    if (payload == NULL)
        return EXIT_USAGE;
    cJSON *body = cJSON_CreateObject();
    bool ok = body != NULL;
    json_add_str(body, "type", c->args[2], &ok);
    json_add_item(body, "payload", payload, &ok);
    agc_response r;
    cJSON *job = NULL;
    int rc = post_json(c, "/v1/jobs", body, ok, &r, &job);
    if (rc == EXIT_OK)
        rc = job_started(c, &r, job);
    cJSON_Delete(job);
    agc_response_free(&r);
    return rc;
}

static int cmd_jobs_list(cli *c)
{
    static const char *const statuses[] = { "queued", "running", "waiting", "succeeded",
                                            "failed", "cancelled", NULL };
    if (!options_apply(c, "jobs list", BIT(O_STATUS) | BIT(O_TYPE) | BIT(O_LIMIT) |
                                           BIT(O_CURSOR)) ||
        !want_args(c, 2, "jobs list", "no arguments"))
        return EXIT_USAGE;
    if (c->status != NULL && !one_of(c->status, statuses)) {
        fail("--status takes queued, running, waiting, succeeded, failed or cancelled, "
             "not '%s'",
             c->status);
        return EXIT_USAGE;
    }
    if (c->limit != NULL && !check_number("limit", c->limit, 1, 200))
        return EXIT_USAGE;
    strbuf path = {0};
    strbuf_add(&path, "/v1/jobs");
    const char *const names[] = { "status", "type", "limit", "cursor" };
    const char *const values[] = { c->status, c->type, c->limit, c->cursor };
    if (!add_query(&path, names, values, 4)) {
        strbuf_free(&path);
        return EXIT_HTTP;
    }
    int rc = show(c, path.s, render_jobs);
    strbuf_free(&path);
    return rc;
}

/* jobs get|cancel|retry ID */
static int cmd_job_id(cli *c, const char *sub)
{
    char cmd[32], id[UUID_STR_LEN], path[128];
    snprintf(cmd, sizeof cmd, "jobs %s", sub);
    bool retry = strcmp(sub, "retry") == 0;
    if (!options_apply(c, cmd, retry ? BIT(O_FOLLOW) | BIT(O_CANCEL) : 0) ||
        !want_args(c, 3, cmd, "one job ID") || !check_id("job", c->args[2], id))
        return EXIT_USAGE;
    if (c->cancel && !c->follow) {
        fail("--cancel-on-interrupt goes with --follow");
        return EXIT_USAGE;
    }
    snprintf(path, sizeof path, "/v1/jobs/%s%s", id, retry ? "/retry" : "");
    if (strcmp(sub, "get") == 0)
        return show(c, path, render_job);

    agc_response r;
    cJSON *job = NULL;
    int rc = call(c, retry ? "POST" : "DELETE", path, NULL, &r, &job);
    if (rc == EXIT_OK && retry) {
        if (!c->json)
            printf("retried %s as a new job\n", id);
        rc = job_started(c, &r, job);
    } else if (rc == EXIT_OK) {
        if (c->json)
            print_raw(&r);
        else
            render_job(stdout, job, &c->ro);
    }
    cJSON_Delete(job);
    agc_response_free(&r);
    return rc;
}

/* The batch file's bytes: the gateway takes at most AGENTGATE_MAX_BODY_BYTES
 * (1 MiB by default), so a file far past that is refused here. */
#define MAX_BATCH_BYTES (16u << 20)

/* Reads the file name ("-": stdin) whole into b. Returns false (reported)
 * when it cannot be read or is too long. */
static bool read_file(const char *name, strbuf *b)
{
    bool std = strcmp(name, "-") == 0;
    FILE *f = std ? stdin : fopen(name, "rb");
    if (f == NULL) {
        fail("cannot read '%s': %s", name, strerror(errno));
        return false;
    }
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0 && b->len <= MAX_BATCH_BYTES)
        strbuf_addn(b, buf, n);
    bool err = ferror(f) != 0;
    if (!std)
        fclose(f);
    if (err)
        fail("cannot read '%s'", name);
    else if (b->len > MAX_BATCH_BYTES)
        fail("'%s' is over %u bytes", name, MAX_BATCH_BYTES);
    else if (b->oom)
        fail("out of memory");
    return !err && b->len <= MAX_BATCH_BYTES && !b->oom;
}

static int cmd_jobs_submit_batch(cli *c)
{
    if (!options_apply(c, "jobs submit-batch", 0) ||
        !want_args(c, 3, "jobs submit-batch", "one FILE (or - for stdin)"))
        return EXIT_USAGE;
    strbuf text = {0};
    if (!read_file(c->args[2], &text)) {
        strbuf_free(&text);
        return EXIT_USAGE;
    }
    char err[256];
    cJSON *doc = json_parse_bounded(text.s != NULL ? text.s : "", text.len, MAX_BATCH_BYTES,
                                    128, err, sizeof err);
    strbuf_free(&text);
    if (doc == NULL) {
        fail("'%s' is not JSON: %s", c->args[2], err);
        return EXIT_USAGE;
    }
    /* The gateway checks each job; only the shape is checked here. */
    cJSON *body = doc;
    bool ok = true;
    if (cJSON_IsArray(doc)) {
        body = cJSON_CreateObject();
        ok = body != NULL;
        json_add_item(body, "jobs", doc, &ok);
    } else if (!cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(doc, "jobs"))) {
        cJSON_Delete(doc);
        fail("'%s' must hold a JSON array of jobs or {\"jobs\":[...]}", c->args[2]);
        return EXIT_USAGE;
    }
    agc_response r;
    cJSON *answer = NULL;
    int rc = post_json(c, "/v1/jobs/batch", body, ok, &r, &answer);
    const cJSON *jobs = cJSON_GetObjectItemCaseSensitive(answer, "jobs");
    if (rc == EXIT_OK && !cJSON_IsArray(jobs)) {
        fail("POST /v1/jobs/batch: the answer has no jobs");
        rc = EXIT_HTTP;
    }
    return print_answer(c, rc, &r, answer, render_job_ids);
}

/* jobs deliveries ID */
static int cmd_jobs_deliveries(cli *c)
{
    char id[UUID_STR_LEN], path[128];
    if (!options_apply(c, "jobs deliveries", 0) ||
        !want_args(c, 3, "jobs deliveries", "one job ID") || !check_id("job", c->args[2], id))
        return EXIT_USAGE;
    snprintf(path, sizeof path, "/v1/jobs/%s/webhook-deliveries", id);
    return show(c, path, render_deliveries);
}

static int cmd_jobs(cli *c)
{
    const char *sub = c->nargs > 1 ? c->args[1] : NULL;
    if (sub == NULL) {
        fail("'jobs' needs submit, submit-batch, list, get, cancel, retry or deliveries "
             "(see --help)");
        return EXIT_USAGE;
    }
    if (strcmp(sub, "submit") == 0)
        return cmd_jobs_submit(c);
    if (strcmp(sub, "submit-batch") == 0)
        return cmd_jobs_submit_batch(c);
    if (strcmp(sub, "deliveries") == 0)
        return cmd_jobs_deliveries(c);
    if (strcmp(sub, "list") == 0)
        return cmd_jobs_list(c);
    if (strcmp(sub, "get") == 0 || strcmp(sub, "cancel") == 0 || strcmp(sub, "retry") == 0)
        return cmd_job_id(c, sub);
    fail("unknown command 'jobs %s' (see --help)", sub);
    return EXIT_USAGE;
}

static int cmd_events(cli *c)
{
    char id[UUID_STR_LEN];
    if (!options_apply(c, "events", BIT(O_AFTER) | BIT(O_CANCEL)) ||
        !want_args(c, 2, "events", "one job ID") || !check_id("job", c->args[1], id))
        return EXIT_USAGE;
    if (c->after != NULL && !check_number("after", c->after, 0, 999999999999999999LL))
        return EXIT_USAGE;
    return follow_and_show(c, "/v1/jobs", id, id, c->after, NULL);
}

static int cmd_list(cli *c, const char *cmd, const char *path,
                    void (*render)(FILE *, const cJSON *, const render_opts *))
{
    if (!options_apply(c, cmd, 0) || !want_args(c, 1, cmd, "no arguments"))
        return EXIT_USAGE;
    return show(c, path, render);
}

/* approve|deny RUN_ID TOOL_CALL_ID [--note TEXT] */
static int cmd_decide(cli *c, const char *cmd)
{
    char run[UUID_STR_LEN], call_id[UUID_STR_LEN], path[128];
    if (!options_apply(c, cmd, BIT(O_NOTE)) ||
        !want_args(c, 3, cmd, "RUN_ID and TOOL_CALL_ID") || !check_id("run", c->args[1], run) ||
        !check_id("tool call", c->args[2], call_id))
        return EXIT_USAGE;
    if (c->note != NULL && strlen(c->note) > 2000 * 4) {
        fail("--note takes at most 2000 characters");
        return EXIT_USAGE;
    }
    cJSON *body = cJSON_CreateObject();
    bool ok = body != NULL;
    json_add_str(body, "tool_call_id", call_id, &ok);
    json_add_str(body, "decision", strcmp(cmd, "approve") == 0 ? "approve" : "deny", &ok);
    if (c->note != NULL)
        json_add_str(body, "note", c->note, &ok);
    snprintf(path, sizeof path, "/v1/agent-runs/%s/approvals", run);
    agc_response r;
    cJSON *answer = NULL;
    int rc = post_json(c, path, body, ok, &r, &answer);
    return print_answer(c, rc, &r, answer, render_decision);
}

static int cmd_schedules_create(cli *c)
{
    if (!options_apply(c, "schedules create", BIT(O_CRON) | BIT(O_TIMEZONE) | BIT(O_JOB_TYPE) |
                                                  BIT(O_PAYLOAD) | BIT(O_PRIORITY) |
                                                  BIT(O_PROMPT)) ||
        !want_args(c, 2, "schedules create", "no arguments"))
        return EXIT_USAGE;
    if (c->cron == NULL) {
        fail("'schedules create' needs --cron EXPR");
        return EXIT_USAGE;
    }
    if ((c->job_type == NULL) == (c->prompt == NULL)) {
        fail("'schedules create' needs one of --job-type and --prompt");
        return EXIT_USAGE;
    }
    if (c->prompt != NULL && (c->payload != NULL || c->priority != NULL)) {
        fail("--%s goes with --job-type, not --prompt", c->payload != NULL ? "payload" : "priority");
        return EXIT_USAGE;
    }
    if (c->prompt != NULL && (c->prompt[0] == '\0' || strlen(c->prompt) > MAX_PROMPT_BYTES)) {
        fail("the prompt must be 1 to 32000 characters");
        return EXIT_USAGE;
    }
    if (c->priority != NULL && !check_number("priority", c->priority, -1000, 1000))
        return EXIT_USAGE;
    cJSON *payload = NULL;
    if (c->payload != NULL && (payload = parse_payload(c->payload)) == NULL)
        return EXIT_USAGE;

    cJSON *body = cJSON_CreateObject();
    cJSON *what = cJSON_CreateObject();
    bool ok = body != NULL && what != NULL;
    json_add_str(body, "cron", c->cron, &ok);
    if (c->timezone != NULL)
        json_add_str(body, "timezone", c->timezone, &ok);
    if (c->job_type != NULL) {
        json_add_str(what, "type", c->job_type, &ok);
        if (payload != NULL)
            json_add_item(what, "payload", payload, &ok);
        if (c->priority != NULL)
            json_add_num(what, "priority", (double)strtoll(c->priority, NULL, 10), &ok);
    } else {
        json_add_str(what, "prompt", c->prompt, &ok);
    }
    json_add_item(body, c->job_type != NULL ? "job" : "agent_run", what, &ok);
    agc_response r;
    cJSON *answer = NULL;
    int rc = post_json(c, "/v1/schedules", body, ok, &r, &answer);
    return print_answer(c, rc, &r, answer, render_schedule);
}

/* schedules get|pause|resume|delete ID */
static int cmd_schedule_id(cli *c, const char *sub)
{
    char cmd[32], id[UUID_STR_LEN], path[128];
    snprintf(cmd, sizeof cmd, "schedules %s", sub);
    if (!options_apply(c, cmd, 0) || !want_args(c, 3, cmd, "one schedule ID") ||
        !check_id("schedule", c->args[2], id))
        return EXIT_USAGE;
    snprintf(path, sizeof path, "/v1/schedules/%s", id);
    if (strcmp(sub, "get") == 0)
        return show(c, path, render_schedule);
    agc_response r;
    if (strcmp(sub, "delete") == 0) {
        int rc = call(c, "DELETE", path, NULL, &r, NULL);
        if (rc == EXIT_OK && !c->json)
            printf("schedule %s deleted\n", id);
        agc_response_free(&r);
        return rc;
    }
    cJSON *body = cJSON_CreateObject();
    bool ok = body != NULL;
    json_add_bool(body, "paused", strcmp(sub, "pause") == 0, &ok);
    cJSON *answer = NULL;
    int rc = send_json(c, "PATCH", path, body, ok, &r, &answer);
    return print_answer(c, rc, &r, answer, render_schedule);
}

static int cmd_schedules(cli *c)
{
    static const char *const with_id[] = { "get", "pause", "resume", "delete", NULL };
    const char *sub = c->nargs > 1 ? c->args[1] : NULL;
    if (sub == NULL) {
        fail("'schedules' needs list, get, create, pause, resume or delete (see --help)");
        return EXIT_USAGE;
    }
    if (strcmp(sub, "create") == 0)
        return cmd_schedules_create(c);
    if (one_of(sub, with_id))
        return cmd_schedule_id(c, sub);
    if (strcmp(sub, "list") != 0) {
        fail("unknown command 'schedules %s' (see --help)", sub);
        return EXIT_USAGE;
    }
    if (!options_apply(c, "schedules list", BIT(O_LIMIT) | BIT(O_CURSOR)) ||
        !want_args(c, 2, "schedules list", "no arguments"))
        return EXIT_USAGE;
    if (c->limit != NULL && !check_number("limit", c->limit, 1, 200))
        return EXIT_USAGE;
    strbuf path = {0};
    strbuf_add(&path, "/v1/schedules");
    const char *const names[] = { "limit", "cursor" };
    const char *const values[] = { c->limit, c->cursor };
    if (!add_query(&path, names, values, 2)) {
        strbuf_free(&path);
        return EXIT_HTTP;
    }
    int rc = show(c, path.s, render_schedules);
    strbuf_free(&path);
    return rc;
}

static int dispatch(cli *c)
{
    const char *cmd = c->args[0];
    if (strcmp(cmd, "run") == 0)
        return cmd_run(c);
    if (strcmp(cmd, "jobs") == 0)
        return cmd_jobs(c);
    if (strcmp(cmd, "events") == 0)
        return cmd_events(c);
    if (strcmp(cmd, "schedules") == 0)
        return cmd_schedules(c);
    if (strcmp(cmd, "approve") == 0 || strcmp(cmd, "deny") == 0)
        return cmd_decide(c, cmd);
    if (strcmp(cmd, "queues") == 0)
        return cmd_list(c, "queues", "/v1/queues", render_queues);
    if (strcmp(cmd, "workers") == 0)
        return cmd_list(c, "workers", "/v1/workers", render_workers);
    fail("unknown command '%s' (see --help)", cmd);
    return EXIT_USAGE;
}

int main(int argc, char **argv)
{
    cli c;
    memset(&c, 0, sizeof c);
    int rc = parse_command_line(argc, argv, &c);
    if (rc >= 0)
        return rc;
    if (c.nargs == 0) {
        fail("no command given (see --help)");
        return EXIT_USAGE;
    }
    if (c.timeout != NULL && !check_number("timeout", c.timeout, 1, MAX_TIMEOUT_S))
        return EXIT_USAGE;
    const char *url = c.url ? c.url : getenv("AGENTGATE_URL");
    const char *token = c.token ? c.token : getenv("AGENTGATE_TOKEN");
    if (url == NULL || url[0] == '\0')
        url = DEFAULT_URL;

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fail("cannot initialise libcurl");
        return EXIT_CONNECT;
    }
    char err[256];
    if (agc_init(&c.client, url, token, err, sizeof err) != 0) {
        fail("%s", err);
        curl_global_cleanup();
        return EXIT_USAGE;
    }
    if (c.timeout != NULL)
        c.client.timeout_ms = strtol(c.timeout, NULL, 10) * 1000;
    c.ro.tty = isatty(STDOUT_FILENO) == 1;
    const char *no_color = getenv("NO_COLOR");
    c.ro.color = c.ro.tty && (no_color == NULL || no_color[0] == '\0');
    c.ro.json = c.json;

    rc = dispatch(&c);
    fflush(stdout);
    agc_free(&c.client);
    curl_global_cleanup();
    return rc;
}
