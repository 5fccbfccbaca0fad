/*
 * orchestrator.c - the agent-run orchestrator, the handler of job type
 * "agent.run" (handle_agent_run in handlers.h).
 *
 * The gateway stored the run as an agent_runs row and queued a job whose
 * payload names it (run_id). A run goes through phases, each step a row in
 * `steps` (inserted 'running', updated when it ends) and a pair of events
 * step.started / step.completed:
 *
 *   intent:classify   rules first (intent.c); when they are unsure and a
 *                     real language model serves the run, the model is
 *                     asked for a label, parsed strictly. A dangerous goal
 *                     is refused here: nothing runs, the response step
 *                     says why and the run succeeds with refused=true.
 *   plan:todos        the TODO list, by planning_mode:
 *                       none      the deterministic planner (plan.c maps
 *                                 the prompt to built-in tools);
 *                       full      the model plans the TODOs, then for each
 *                                 TODO its steps (plan:steps); a plan that
 *                                 does not parse falls back to the
 *                                 deterministic one, saying so;
 *                       optional  first the direct path: one llm:call with
 *                                 the tools offered. A model that answers
 *                                 is done (no plan); one that asks for
 *                                 tools gets them run and sent back, round
 *                                 after round; one that replies NEED_PLAN
 *                                 gets the full planner.
 *                     With only the built-in provider (or fallback-only)
 *                     planning is deterministic whatever the mode.
 *   llm:call / tool:invoke
 *                     the execution steps. Every tool call, planned or
 *                     asked for by the model, is its own tool:invoke step
 *                     through tools_call (validation, scopes, rate limit,
 *                     audit, tool.called); the model's calls go back to it
 *                     with their results (or the refusal, which it can
 *                     explain) in the next llm:call. Their number is
 *                     capped (agent_runs.max_iterations, else
 *                     AGENTGATE_AGENT_MAX_ITERATIONS) and the run has a
 *                     deadline (agent_runs.timeout_s, else
 *                     AGENTGATE_AGENT_RUN_TIMEOUT_MS): passing either fails
 *                     the run (iteration_limit, run_timeout), steps kept.
 *   response:build    the final text by response_mode: fallback-only, the
 *                     deterministic template; llm-best-effort, the model,
 *                     falling back to the template when it fails;
 *                     llm-required, the model or the run fails with
 *                     llm_unavailable (also when only the built-in
 *                     provider is configured).
 *
 * Every model call goes through the router (llm_router.h). Calls of
 * llm:call steps and of the response stream their text as llm.delta
 * events; a DELETE aborts a call in flight (should_abort) and the run ends
 * cancelled. Text the run stores or sends is scrubbed of personal data
 * (pii.h) and passed through the output guard (output_guard.h): deltas are
 * scrubbed as they stream, holding back a word that could be the start of
 * a match until the next delta shows it is not.
 *
 * A run in a session gets its session's earlier runs (prompt and output,
 * oldest first, the newest kept within AGENTGATE_SESSION_CONTEXT_BYTES) as
 * history.
 *
 * Finally agent_runs gets intent, output, todos, metrics and finished_at.
 * Every statement filters by the job's tenant and the run must belong to
 * this job (agent_runs.job_id), so a payload naming some other run, of
 * this tenant or another, finds nothing: run_not_found.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "handlers.h"
#include "intent.h"
#include "jsonutil.h"
#include "llm.h"
#include "llm_router.h"
#include "log.h"
#include "output_guard.h"
#include "pii.h"
#include "plan.h"
#include "strbuf.h"
#include "tools.h"
#include "tools_builtin.h"
#include "job_store.h"
#include "utf8.h"
#include "uuid.h"

#define MAX_RUN_STEPS      200  /* step rows per run: a backstop under the iteration cap */
#define MAX_TODOS          12   /* two model TODOs, PLAN_MAX_TOOLS tools, the last one */
#define MAX_RESULTS        64   /* step results kept for later calls */
#define MAX_EXCHANGE       32   /* tool calls sent back to the model in one llm:call */
#define DEFAULT_ITERATIONS 8
#define DEFAULT_TIMEOUT_MS 120000
#define HISTORY_MAX_RUNS   50   /* earlier runs of a session read at most */
#define TOOL_RESULT_MAX    16384 /* bytes of a tool result sent to a model */
#define PLAN_TOOLS_TEXT_MAX 4096 /* bytes of the tool list in a planning task */
#define CLASSIFY_MAX_TOKENS 8
#define PLAN_MAX_TOKENS    1024
#define PREVIEW_BYTES      500  /* of the prompt, in step inputs and events */
#define QUOTE_BYTES        200  /* of the prompt, in the template response */
#define RAW_REPLY_BYTES    2000 /* of a planning reply kept in a step's output */

/* Delta events. The built-in provider produces its text at once; its
 * deltas are gathered into DELTA_BUDGET events per run and spaced out so a
 * terminal on the SSE stream sees them arrive and a cancel can land
 * mid-stream. A real model's deltas go out as they come, each as soon as
 * the PII hold-back lets it, until DELTA_SOFT_MAX events, after which they
 * are gathered into pieces of DELTA_COALESCE_BYTES. */
#define DELTA_BUDGET          60
#define DELTA_MIN_WORDS       3
#define DELTA_EXPECT_WORDS    120
#define BUILTIN_DELTA_PACE_MS 10
#define DELTA_SOFT_MAX        2000
#define DELTA_COALESCE_BYTES  256

/* What the direct path's model replies when it wants a plan. */
#define NEED_PLAN "NEED_PLAN"
#define DIRECT_TASK \
    "Answer the user's request directly. Call the tools offered when they give facts you " \
    "need. If a good answer needs a plan of several distinct steps, reply with exactly " \
    NEED_PLAN " and nothing else."

/* A copy of at most max bytes of s, cut on a character boundary. */
static char *dup_cut(const char *s, size_t max)
{
    size_t len = strlen(s);
    return strndup(s, output_guard_utf8_cut(s, len, max));
}

/* ---- the run ------------------------------------------------------------ */

typedef enum todo_state { TODO_PENDING, TODO_DONE, TODO_FAILED, TODO_SKIPPED } todo_state;

typedef struct todo {
    int id;                 /* 1, 2, ... */
    char *title;            /* malloc'd */
    plan_steps steps;       /* what carries it out, once planned */
    bool planned;           /* steps holds its steps (else the model plans them) */
    todo_state state;
    char *result;           /* malloc'd: the last step's result, or why not */
} todo;

/* What one finished step produced, for the calls after it. */
typedef struct result_item {
    char *title;            /* malloc'd */
    char *tool;             /* malloc'd; NULL for a model step */
    char *text;             /* malloc'd */
    bool ok;
} result_item;

typedef struct run_metrics {
    long long llm_calls, tool_calls, tokens_in, tokens_out, iterations;
    long long pii_redacted, guard_findings;
} run_metrics;

typedef struct run {
    job_ctx *ctx;
    const job_info *job;
    const ag_config *cfg;
    char id[UUID_STR_LEN];
    long long t0;               /* clock_mono_ms at the start */
    long long deadline;         /* clock_mono_ms when the run times out */

    /* From the agent_runs row. */
    char *prompt;
    char *model;                /* NULL: the tenant's default */
    double temperature;         /* < 0: unset */
    int max_tokens;             /* 0: unset */
    char planning_mode[16];
    char response_mode[24];
    cJSON *tools;               /* array of enabled tool names; NULL: all */
    char session_id[UUID_STR_LEN]; /* "" when none */
    int max_iterations;
    long long timeout_ms;
    tool_principal principal;

    /* The session's earlier turns, oldest first. */
    llm_turn *history;
    char **history_text;        /* what history borrows */
    size_t n_history;

    /* Which model answers. */
    bool llm_on;                /* model calls are made (not fallback-only, routable) */
    bool language_model;        /* and a real model is among the providers */
    char route_model[128];
    char route_note[320];       /* why no model is called, when none is */

    tool_catalog *catalog;
    llm_tool_def *tool_defs;    /* offered to the model: callable and enabled */
    size_t n_tool_defs;

    intent_result intent;
    bool classified;
    todo todos[MAX_TODOS];
    int n_todos;
    result_item results[MAX_RESULTS];
    int n_results;
    int next_idx;               /* the next step's index */
    int deltas_left;            /* built-in pacing budget */
    long long delta_events;
    run_metrics m;

    /* How it stopped, when it stopped early. */
    bool stopped;
    job_outcome outcome;
    char code[64];
    char message[512];
} run;

typedef struct step {
    char id[UUID_STR_LEN];
    int idx;
    const char *action;
    long long t0;
    bool open;                  /* inserted, not yet ended */
} step;

/* Records the first reason the run stops; later ones are consequences. */
static int run_fail(run *r, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int run_fail(run *r, const char *code, const char *fmt, ...)
{
    if (r->stopped)
        return -1;
    r->stopped = true;
    r->outcome = JOB_FAILED;
    snprintf(r->code, sizeof(r->code), "%s", code);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->message, sizeof(r->message), fmt, ap);
    va_end(ap);
    return -1;
}

static int run_cancelled(run *r)
{
    if (r->stopped)
        return -1;
    r->stopped = true;
    r->outcome = JOB_CANCELLED;
    snprintf(r->code, sizeof(r->code), "cancelled");
    snprintf(r->message, sizeof(r->message), "the run was cancelled");
    return -1;
}

static int run_oom(run *r)
{
    return run_fail(r, "out_of_memory", "the worker ran out of memory");
}

static bool run_expired(const run *r)
{
    return clock_mono_ms() >= r->deadline;
}

static int run_timed_out(run *r)
{
    return run_fail(r, "run_timeout", "the run passed its timeout of %lld ms",
                    r->timeout_ms);
}

/* Checked before every step. Returns -1 (run stopped) or 0. */
static int check_stop(run *r)
{
    if (r->stopped)
        return -1;
    if (job_cancelled(r->ctx))
        return run_cancelled(r);
    if (run_expired(r))
        return run_timed_out(r);
    return 0;
}

static bool llm_required(const run *r)
{
    return strcmp(r->response_mode, "llm-required") == 0;
}

/* The model plans, classifies and gets tools: a real one answers. */
static bool smart(const run *r)
{
    return r->llm_on && r->language_model;
}

/* ---- PostgreSQL ----------------------------------------------------------- */

/*
 * Runs one statement on the job's connection and returns its result when
 * it has status want. A connection that broke is replaced and the
 * statement tried once more: every statement here is safe to repeat (the
 * step INSERT skips an id already there). Otherwise records the failure
 * and returns NULL.
 */
static PGresult *db_exec(run *r, const char *sql, int nparams, const char *const *params,
                         ExecStatusType want)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        PGconn *c = job_db(r->ctx);
        if (!c) {
            if (job_cancelled(r->ctx))
                run_cancelled(r);
            else
                run_fail(r, "db_unavailable", "PostgreSQL is unreachable");
            return NULL;
        }
        /* As the job's tenant (row-level security), in the statement's
         * own transaction: no round trip added, nothing left behind. */
        PGresult *res = store_exec_as(c, r->job->tenant_id, sql, nparams, params);
        if (res && PQresultStatus(res) == want)
            return res;
        if (PQstatus(c) == CONNECTION_BAD && attempt == 0) {
            PQclear(res);
            continue;
        }
        char msg[256];
        snprintf(msg, sizeof(msg), "%s", res ? PQresultErrorMessage(res) : PQerrorMessage(c));
        msg[strcspn(msg, "\n")] = '\0';
        log_error("agent run %s: statement failed: %s", r->id, msg);
        run_fail(r, "db_error", "a database statement of the run failed: %s", msg);
        PQclear(res);
        return NULL;
    }
    return NULL;
}

/* Runs a statement that returns no rows. Returns 0 or -1. */
static int db_command(run *r, const char *sql, int nparams, const char *const *params)
{
    PGresult *res = db_exec(r, sql, nparams, params, PGRES_COMMAND_OK);
    if (!res)
        return -1;
    PQclear(res);
    return 0;
}

static char *dup_or_null(PGresult *res, int col)
{
    if (PQgetisnull(res, 0, col))
        return NULL;
    return strdup(PQgetvalue(res, 0, col));
}

/* Validates agent_runs.tools: null, or an array of strings. */
static int load_tools(run *r, PGresult *res, int col)
{
    if (PQgetisnull(res, 0, col))
        return 0;
    const char *text = PQgetvalue(res, 0, col);
    cJSON *t = cJSON_ParseWithLength(text, (size_t)PQgetlength(res, 0, col));
    bool valid = cJSON_IsArray(t) || cJSON_IsNull(t);
    if (cJSON_IsArray(t)) {
        const cJSON *it;
        cJSON_ArrayForEach(it, t)
            valid = valid && cJSON_IsString(it);
    }
    if (!valid) {
        cJSON_Delete(t);
        return run_fail(r, "invalid_run", "the run's tools are not an array of tool names");
    }
    if (cJSON_IsNull(t)) {
        cJSON_Delete(t);
        return 0;
    }
    r->tools = t;
    return 0;
}

/* Appends the strings of a JSON array to dst (size bytes), space-separated. */
static void join_words(char *dst, size_t size, const cJSON *arr)
{
    size_t used = strlen(dst);
    const cJSON *it;
    cJSON_ArrayForEach(it, arr) {
        if (!cJSON_IsString(it) || strchr(it->valuestring, ' '))
            continue;
        int n = snprintf(dst + used, size - used, "%s%s", used ? " " : "", it->valuestring);
        if (n < 0 || (size_t)n >= size - used) {
            dst[used] = '\0';       /* never a cut word */
            return;
        }
        used += (size_t)n;
    }
}

/* agent_runs.principal {"sub","roles":[...],"scope":"a b"}: whom the tools
 * act for. A row without one acts for its creator with no scopes. */
static void load_principal(run *r, PGresult *res, int col, const char *created_by)
{
    tool_principal *p = &r->principal;
    memset(p, 0, sizeof(*p));
    snprintf(p->tenant_id, sizeof(p->tenant_id), "%s", r->job->tenant_id);
    snprintf(p->sub, sizeof(p->sub), "%s", created_by);
    if (PQgetisnull(res, 0, col))
        return;
    cJSON *j = cJSON_ParseWithLength(PQgetvalue(res, 0, col), (size_t)PQgetlength(res, 0, col));
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return;
    }
    const char *sub = json_get_string(j, "sub");
    const char *scope = json_get_string(j, "scope");
    if (sub && strlen(sub) < sizeof(p->sub))
        snprintf(p->sub, sizeof(p->sub), "%s", sub);
    if (scope && strlen(scope) < sizeof(p->scope))
        snprintf(p->scope, sizeof(p->scope), "%s", scope);
    join_words(p->roles, sizeof(p->roles), cJSON_GetObjectItemCaseSensitive(j, "roles"));
    cJSON_Delete(j);
}

/*
 * Loads the run and marks it started. A retried attempt starts the run
 * over, so what an earlier attempt wrote to the row is cleared (its
 * events stay in the job's log).
 */
static int load_run(run *r)
{
    static const char sql[] =
        "UPDATE agent_runs SET started_at = clock_timestamp(), finished_at = NULL,"
        " intent = NULL, output = NULL, todos = '[]'::jsonb, metrics = '{}'::jsonb"
        " WHERE id = $1 AND tenant_id = $2 AND job_id = $3"
        " RETURNING prompt, model, temperature, max_tokens, planning_mode,"
        " response_mode, tools::text, session_id, principal::text, max_iterations,"
        " timeout_s, created_by";
    const char *params[3] = {r->id, r->job->tenant_id, r->job->id};

    PGresult *res = db_exec(r, sql, 3, params, PGRES_TUPLES_OK);
    if (!res)
        return -1;
    if (PQntuples(res) != 1) {
        PQclear(res);
        return run_fail(r, "run_not_found", "agent run %s does not exist for this job", r->id);
    }
    r->prompt = strdup(PQgetvalue(res, 0, 0));
    r->model = dup_or_null(res, 1);
    r->temperature = PQgetisnull(res, 0, 2) ? -1.0 : strtod(PQgetvalue(res, 0, 2), NULL);
    r->max_tokens = PQgetisnull(res, 0, 3) ? 0 : atoi(PQgetvalue(res, 0, 3));
    snprintf(r->planning_mode, sizeof(r->planning_mode), "%s", PQgetvalue(res, 0, 4));
    snprintf(r->response_mode, sizeof(r->response_mode), "%s", PQgetvalue(res, 0, 5));
    int rc = load_tools(r, res, 6);
    if (!PQgetisnull(res, 0, 7) && !uuid_parse(PQgetvalue(res, 0, 7), r->session_id))
        r->session_id[0] = '\0';
    load_principal(r, res, 8, PQgetvalue(res, 0, 11));
    int iters = PQgetisnull(res, 0, 9) ? 0 : atoi(PQgetvalue(res, 0, 9));
    long long timeout_s = PQgetisnull(res, 0, 10) ? 0 : atoll(PQgetvalue(res, 0, 10));
    bool model_oom = !PQgetisnull(res, 0, 1) && !r->model;
    PQclear(res);
    if (rc < 0)
        return -1;
    if (!r->prompt || model_oom)
        return run_oom(r);
    if (r->max_tokens < 0)
        r->max_tokens = 0;
    r->max_iterations = iters > 0 ? iters
                      : r->cfg->agent_max_iterations > 0 ? r->cfg->agent_max_iterations
                                                         : DEFAULT_ITERATIONS;
    r->timeout_ms = timeout_s > 0 ? timeout_s * 1000
                  : r->cfg->agent_run_timeout_ms > 0 ? r->cfg->agent_run_timeout_ms
                                                     : DEFAULT_TIMEOUT_MS;
    r->deadline = r->t0 + r->timeout_ms;
    return 0;
}

/* Steps of an earlier attempt of this run would collide on (run_id, idx). */
static int clear_old_steps(run *r)
{
    static const char sql[] = "DELETE FROM steps WHERE run_id = $1 AND tenant_id = $2";
    const char *params[2] = {r->id, r->job->tenant_id};
    return db_command(r, sql, 2, params);
}

/* ---- session history ------------------------------------------------------ */

/* Adds one turn; text is copied, cut to max bytes. */
static int history_add(run *r, const char *role, const char *text, size_t max)
{
    size_t i = r->n_history;
    r->history_text[i] = dup_cut(text, max);
    if (!r->history_text[i])
        return -1;
    r->history[i].role = role;
    r->history[i].content = r->history_text[i];
    r->n_history++;
    return 0;
}

/*
 * The session's earlier finished runs, as user/assistant turns, oldest
 * first. The newest are kept: runs are taken newest first while their
 * prompt and output fit session_context_bytes; when not even the newest
 * fits, a cut of it is.
 */
static int load_history(run *r)
{
    static const char sql[] =
        "SELECT prompt, output FROM agent_runs"
        " WHERE session_id = $1 AND tenant_id = $2 AND id <> $3 AND output IS NOT NULL"
        "   AND created_at <= (SELECT created_at FROM agent_runs"
        "                       WHERE id = $3 AND tenant_id = $2)"
        " ORDER BY created_at DESC, id DESC LIMIT 50";
    if (!r->session_id[0])
        return 0;
    const char *params[3] = {r->session_id, r->job->tenant_id, r->id};
    PGresult *res = db_exec(r, sql, 3, params, PGRES_TUPLES_OK);
    if (!res)
        return -1;
    int rows = PQntuples(res);
    size_t budget = r->cfg->session_context_bytes;
    size_t used = 0;
    int take = 0;
    bool cut_newest = false;
    for (int i = 0; i < rows && i < HISTORY_MAX_RUNS; i++) {
        size_t need = (size_t)PQgetlength(res, i, 0) + (size_t)PQgetlength(res, i, 1);
        if (used + need > budget) {
            cut_newest = take == 0 && budget > 0;
            break;
        }
        used += need;
        take++;
    }
    int n = cut_newest ? 1 : take;
    if (n > 0) {
        r->history = calloc((size_t)n * 2, sizeof(*r->history));
        r->history_text = calloc((size_t)n * 2, sizeof(*r->history_text));
        if (!r->history || !r->history_text) {
            PQclear(res);
            return run_oom(r);
        }
    }
    for (int i = n - 1; i >= 0; i--) {
        const char *prompt = PQgetvalue(res, i, 0), *output = PQgetvalue(res, i, 1);
        size_t pmax = cut_newest ? budget / 2 : (size_t)-1;
        size_t omax = cut_newest ? budget - output_guard_utf8_cut(prompt, strlen(prompt), pmax)
                                 : (size_t)-1;
        if (history_add(r, "user", prompt, pmax) < 0 ||
            history_add(r, "assistant", output, omax) < 0) {
            PQclear(res);
            return run_oom(r);
        }
    }
    PQclear(res);
    return 0;
}

static void history_free(run *r)
{
    for (size_t i = 0; i < r->n_history; i++)
        free(r->history_text[i]);
    free(r->history_text);
    free(r->history);
}

/* ---- which model ---------------------------------------------------------- */

/* Decides whether model calls are made and whether a real model is among
 * those that answer them. */
static int resolve_route(run *r)
{
    if (strcmp(r->response_mode, "fallback-only") == 0) {
        snprintf(r->route_note, sizeof(r->route_note),
                 "response_mode is fallback-only: no model is called");
        return 0;
    }
    PGconn *pg = job_db(r->ctx);
    if (!pg) {
        if (job_cancelled(r->ctx))
            return run_cancelled(r);
        return run_fail(r, "db_unavailable", "PostgreSQL is unreachable");
    }
    llm_route_info info;
    char err[256] = "";
    llm_err e = llm_router_resolve(pg, r->job->tenant_id, r->model, &info, err, sizeof(err));
    if (e != LLM_OK) {
        snprintf(r->route_note, sizeof(r->route_note), "no provider serves model \"%.64s\": %s",
                 r->model ? r->model : "(default)", err[0] ? err : llm_strerror(e));
        return 0;
    }
    r->llm_on = true;
    r->language_model = info.language_model;
    snprintf(r->route_model, sizeof(r->route_model), "%s", info.model);
    if (!info.language_model)
        snprintf(r->route_note, sizeof(r->route_note),
                 "no language model is configured: only the built-in deterministic provider "
                 "serves model \"%.64s\"", info.model);
    return 0;
}

/* ---- tools ---------------------------------------------------------------- */

static bool tool_enabled(const run *r, const char *name)
{
    const cJSON *it;
    if (!r->tools)
        return true;
    cJSON_ArrayForEach(it, r->tools)
        if (cJSON_IsString(it) && strcmp(it->valuestring, name) == 0)
            return true;
    return false;
}

/* Loads the catalog and the tools a model is offered: those the principal
 * may call, narrowed to the run's own list. */
static int load_catalog(run *r)
{
    PGconn *pg = job_db(r->ctx);
    char err[256] = "";
    if (!pg) {
        if (job_cancelled(r->ctx))
            return run_cancelled(r);
        return run_fail(r, "db_unavailable", "PostgreSQL is unreachable");
    }
    r->catalog = tools_catalog_load(pg, r->job->tenant_id, err, sizeof(err));
    if (!r->catalog)
        return run_fail(r, "tools_unavailable", "the tool catalog could not be loaded: %s",
                        err);
    size_t n = 0;
    const llm_tool_def *defs = tools_catalog_defs(r->catalog, &r->principal, &n);
    if (n == 0)
        return 0;
    r->tool_defs = calloc(n, sizeof(*r->tool_defs));
    if (!r->tool_defs)
        return run_oom(r);
    for (size_t i = 0; i < n; i++)
        if (tool_enabled(r, defs[i].name))
            r->tool_defs[r->n_tool_defs++] = defs[i];
    return 0;
}

/* A tool a model may plan: in the catalog and enabled for the run. */
static bool tool_plannable(void *user, const char *name)
{
    const run *r = user;
    return tools_catalog_has(r->catalog, name) && tool_enabled(r, name);
}

/* "- name: description" lines of the tools offered, for planning tasks. */
static void add_tool_list(strbuf *b, const run *r)
{
    size_t start = b->len;
    if (r->n_tool_defs == 0)
        strbuf_add(b, "\n(none)");
    for (size_t i = 0; i < r->n_tool_defs; i++) {
        if (b->len - start > PLAN_TOOLS_TEXT_MAX) {
            strbuf_add(b, "\n...");
            break;
        }
        strbuf_addf(b, "\n- %s: ", r->tool_defs[i].name);
        strbuf_add_flat(b, r->tool_defs[i].description, 200);
    }
}

/* ---- step results --------------------------------------------------------- */

/* Keeps what a step produced for the calls after it (copies). */
static int result_add(run *r, const char *title, const char *tool, const char *text, bool ok)
{
    if (r->n_results == MAX_RESULTS) {
        result_item *old = &r->results[0];
        free(old->title);
        free(old->tool);
        free(old->text);
        memmove(r->results, r->results + 1, (MAX_RESULTS - 1) * sizeof(*r->results));
        r->n_results--;
    }
    result_item *it = &r->results[r->n_results];
    it->title = strdup(title ? title : "step");
    it->tool = tool ? strdup(tool) : NULL;
    it->text = strdup(text ? text : "");
    it->ok = ok;
    r->n_results++;
    if (!it->title || (tool && !it->tool) || !it->text)
        return run_oom(r);
    return 0;
}

/* The newest LLM_MAX_CONTEXT_ITEMS results, borrowed, oldest first. */
static size_t build_context(const run *r, llm_context_item *items)
{
    int first = r->n_results > LLM_MAX_CONTEXT_ITEMS ? r->n_results - LLM_MAX_CONTEXT_ITEMS : 0;
    size_t n = 0;
    for (int i = first; i < r->n_results; i++) {
        items[n].title = r->results[i].title;
        items[n].tool = r->results[i].tool;
        items[n].text = r->results[i].text;
        items[n].ok = r->results[i].ok;
        n++;
    }
    return n;
}

/* ---- TODOs ----------------------------------------------------------------- */

static const char *todo_state_name(todo_state s)
{
    switch (s) {
    case TODO_DONE: return "done";
    case TODO_FAILED: return "failed";
    case TODO_SKIPPED: return "skipped";
    case TODO_PENDING: break;
    }
    return "pending";
}

/* [{"id":1,"title":"...","status":"pending|done|failed|skipped"}, ...] */
static cJSON *todos_json(const run *r)
{
    cJSON *a = cJSON_CreateArray();
    bool ok = a != NULL;
    for (int i = 0; ok && i < r->n_todos; i++) {
        const todo *t = &r->todos[i];
        cJSON *o = cJSON_CreateObject();
        bool ook = o != NULL;
        json_add_num(o, "id", t->id, &ook);
        json_add_str(o, "title", t->title, &ook);
        json_add_str(o, "status", todo_state_name(t->state), &ook);
        json_append(a, json_done(o, ook), &ok);
    }
    return json_done(a, ok);
}

static int save_todos(run *r)
{
    static const char sql[] =
        "UPDATE agent_runs SET todos = $1::jsonb, intent = $2"
        " WHERE id = $3 AND tenant_id = $4 AND job_id = $5";
    cJSON *a = todos_json(r);
    char *text = a ? json_print(a) : NULL;
    cJSON_Delete(a);
    if (!text)
        return run_oom(r);
    const char *params[5] = {text, intent_name(r->intent.cls), r->id, r->job->tenant_id,
                             r->job->id};
    int rc = db_command(r, sql, 5, params);
    free(text);
    return rc;
}

static void todo_finish(run *r, todo *t, todo_state state, const char *result)
{
    t->state = state;
    free(t->result);
    t->result = result ? strdup(result) : NULL;
    if (result && !t->result)
        run_oom(r);
}

/* Marks every TODO not yet finished skipped, for a run that stops. */
static void skip_pending_todos(run *r, const char *why)
{
    for (int i = 0; i < r->n_todos; i++)
        if (r->todos[i].state == TODO_PENDING)
            todo_finish(r, &r->todos[i], TODO_SKIPPED, why);
}

/* Adds a TODO with a copy of title; its steps are filled by the caller. */
static todo *todo_add(run *r, const char *title)
{
    if (r->n_todos == MAX_TODOS)
        return NULL;
    todo *t = &r->todos[r->n_todos];
    memset(t, 0, sizeof(*t));
    t->title = strdup(title);
    if (!t->title) {
        run_oom(r);
        return NULL;
    }
    t->id = r->n_todos + 1;
    t->state = TODO_PENDING;
    r->n_todos++;
    return t;
}

/* One llm:call step with task (copied). */
static int todo_set_llm(run *r, todo *t, const char *task)
{
    plan_step *s = &t->steps.step[0];
    memset(&t->steps, 0, sizeof(t->steps));
    s->action = PLAN_LLM_CALL;
    s->task = strdup(task);
    t->steps.n = 1;
    t->planned = true;
    return s->task ? 0 : run_oom(r);
}

/* One tool:invoke step (args owned from here on). */
static int todo_set_tool(run *r, todo *t, const char *tool, cJSON *args)
{
    plan_step *s = &t->steps.step[0];
    memset(&t->steps, 0, sizeof(t->steps));
    s->action = PLAN_TOOL_INVOKE;
    s->tool = strdup(tool);
    s->args = args;
    t->steps.n = 1;
    t->planned = true;
    return s->tool ? 0 : run_oom(r);
}

static void todos_free(run *r)
{
    for (int i = 0; i < r->n_todos; i++) {
        free(r->todos[i].title);
        free(r->todos[i].result);
        plan_steps_free(&r->todos[i].steps);
    }
    r->n_todos = 0;
}

/* ---- steps ---------------------------------------------------------------- */

static int emit(run *r, const char *type, const cJSON *data)
{
    if (job_emit(r->ctx, type, data) < 0)
        return run_fail(r, "event_write_failed",
                        "a %s event could not be stored (storage failed or the job "
                        "is no longer this attempt's)", type);
    return 0;
}

/*
 * Starts a step: its row, status 'running', and step.started. Takes
 * ownership of input. Returns 0, or -1 with the run stopped.
 */
static int step_begin(run *r, step *s, const char *action, cJSON *input)
{
    static const char sql[] =
        "INSERT INTO steps (id, tenant_id, run_id, idx, action, input, status, started_at)"
        " VALUES ($1, $2, $3, $4, $5, $6::jsonb, 'running', clock_timestamp())"
        " ON CONFLICT (id) DO NOTHING";

    memset(s, 0, sizeof(*s));
    if (!input)
        return run_oom(r);
    if (r->next_idx >= MAX_RUN_STEPS) {
        cJSON_Delete(input);
        return run_fail(r, "too_many_steps", "the run reached its limit of %d steps",
                        MAX_RUN_STEPS);
    }
    uuid_v7(s->id);
    s->idx = r->next_idx++;
    s->action = action;
    s->t0 = clock_mono_ms();

    char idx[16];
    snprintf(idx, sizeof(idx), "%d", s->idx);
    char *input_text = json_print(input);
    if (!input_text) {
        cJSON_Delete(input);
        return run_oom(r);
    }
    const char *params[6] = {s->id, r->job->tenant_id, r->id, idx, action, input_text};
    int rc = db_command(r, sql, 6, params);
    free(input_text);
    if (rc < 0) {
        cJSON_Delete(input);
        return -1;
    }
    s->open = true;

    cJSON *ev = cJSON_CreateObject();
    bool ok = ev != NULL;
    json_add_str(ev, "step_id", s->id, &ok);
    json_add_num(ev, "index", s->idx, &ok);
    json_add_str(ev, "action", action, &ok);
    json_add_item(ev, "input", input, &ok);
    ev = json_done(ev, ok);
    if (!ev)
        return run_oom(r);
    rc = emit(r, "step.started", ev);
    cJSON_Delete(ev);
    return rc;
}

/*
 * Ends a step with status ('completed', 'failed', 'skipped') and output
 * (owned): the row, then step.completed. Also used on the way out of a
 * stopped run, where it does its best and keeps the first failure.
 */
static int step_end(run *r, step *s, const char *status, cJSON *output)
{
    static const char sql[] =
        "UPDATE steps SET status = $1, output = $2::jsonb, latency_ms = $3,"
        " finished_at = clock_timestamp()"
        " WHERE id = $4 AND tenant_id = $5 AND run_id = $6";

    if (!s->open) {
        cJSON_Delete(output);
        return 0;
    }
    s->open = false;
    if (!output)
        return run_oom(r);
    long long latency = clock_mono_ms() - s->t0;
    char lat[24];
    snprintf(lat, sizeof(lat), "%lld", latency);
    char *out_text = json_print(output);
    if (!out_text) {
        cJSON_Delete(output);
        return run_oom(r);
    }
    const char *params[6] = {status, out_text, lat, s->id, r->job->tenant_id, r->id};
    int rc = db_command(r, sql, 6, params);
    free(out_text);
    if (rc < 0) {
        cJSON_Delete(output);
        return -1;
    }
    cJSON *ev = cJSON_CreateObject();
    bool ok = ev != NULL;
    json_add_str(ev, "step_id", s->id, &ok);
    json_add_num(ev, "index", s->idx, &ok);
    json_add_str(ev, "action", s->action, &ok);
    json_add_str(ev, "status", status, &ok);
    json_add_item(ev, "output", output, &ok);
    json_add_num(ev, "latency_ms", (double)latency, &ok);
    ev = json_done(ev, ok);
    if (!ev)
        return run_oom(r);
    rc = emit(r, "step.completed", ev);
    cJSON_Delete(ev);
    return rc;
}

/* {key: message}. */
static cJSON *message_json(const char *key, const char *message)
{
    cJSON *o = cJSON_CreateObject();
    bool ok = o != NULL;
    json_add_str(o, key, message, &ok);
    return json_done(o, ok);
}

/* Closes a step left open by a stop: 'failed', saying why. */
static void step_abandon(run *r, step *s)
{
    if (s->open)
        step_end(r, s, "failed", message_json("error", r->stopped ? r->message : "stopped"));
}

/* An execution step (llm:call, tool:invoke) may start: the cap on them
 * and the deadline are checked, and it is counted. */
static int iteration_begin(run *r)
{
    if (check_stop(r) < 0)
        return -1;
    if (r->m.iterations >= r->max_iterations)
        return run_fail(r, "iteration_limit",
                        "the run reached its limit of %d iterations (llm:call and "
                        "tool:invoke steps) before it finished", r->max_iterations);
    r->m.iterations++;
    return 0;
}

/* ---- cleaning text before it is stored or sent ---------------------------- */

typedef struct clean_text {
    char *text;             /* malloc'd */
    pii_counts pii;
    guard_report guard;
} clean_text;

/* Scrubs personal data, then guards (UTF-8, markers, size cap). Counts
 * what was found in the run's metrics. Returns 0 or -1 (out of memory). */
static int clean(run *r, const char *text, clean_text *out)
{
    memset(out, 0, sizeof(*out));
    size_t n = 0;
    char *scrubbed = pii_scrub(text ? text : "", text ? strlen(text) : 0, &n, &out->pii);
    if (!scrubbed)
        return run_oom(r);
    out->text = output_guard_apply(scrubbed, n, r->cfg->output_max_bytes, NULL, &out->guard);
    free(scrubbed);
    if (!out->text)
        return run_oom(r);
    r->m.pii_redacted += pii_total(&out->pii);
    r->m.guard_findings += out->guard.n_markers;
    return 0;
}

static cJSON *pii_json(const pii_counts *c)
{
    cJSON *o = cJSON_CreateObject();
    bool ok = o != NULL;
    json_add_num(o, "email", c->email, &ok);
    json_add_num(o, "phone", c->phone, &ok);
    json_add_num(o, "ssn", c->ssn, &ok);
    json_add_num(o, "national_id", c->national_id, &ok);
    json_add_num(o, "card", c->card, &ok);
    return json_done(o, ok);
}

static cJSON *guard_json(const guard_report *g)
{
    cJSON *o = cJSON_CreateObject(), *f = cJSON_CreateArray();
    bool ok = o != NULL && f != NULL;
    for (int i = 0; ok && i < g->n_findings; i++) {
        cJSON *x = cJSON_CreateObject();
        bool xok = x != NULL;
        json_add_str(x, "marker", g->findings[i].marker, &xok);
        json_add_num(x, "offset", (double)g->findings[i].offset, &xok);
        json_append(f, json_done(x, xok), &ok);
    }
    json_add_item(o, "findings", f, &ok);
    json_add_num(o, "markers", g->n_markers, &ok);
    json_add_bool(o, "truncated", g->truncated, &ok);
    json_add_num(o, "input_bytes", (double)g->input_bytes, &ok);
    json_add_num(o, "invalid_utf8", g->invalid_utf8, &ok);
    return json_done(o, ok);
}

/* Adds "text" and, when anything was found, "pii_redacted" and "guard". */
static void j_clean(cJSON *o, const clean_text *c, bool *ok)
{
    json_add_str(o, "text", c->text, ok);
    if (pii_total(&c->pii) > 0)
        json_add_item(o, "pii_redacted", pii_json(&c->pii), ok);
    if (c->guard.n_markers > 0 || c->guard.truncated || c->guard.invalid_utf8 > 0)
        json_add_item(o, "guard", guard_json(&c->guard), ok);
}

/* ---- streaming deltas ------------------------------------------------------ */

/* One model call's llm.delta events: the provider's text, scrubbed as it
 * comes (pii_stream), gathered in pending until it may go out. */
typedef struct delta_stream {
    run *r;
    const step *s;
    bool on;                    /* events are sent at all */
    pii_stream pii;
    strbuf pending;             /* scrubbed, not yet sent */
    size_t sent_bytes;
    bool builtin;               /* pace and gather as for the built-in provider */
    int pending_words;
    bool in_word;
    int chunk_words;
    int budget;
    int sent;
    bool cancelled;
    bool expired;
} delta_stream;

static bool blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!utf8_is_space((unsigned char)s[i]))
            return false;
    return true;
}

/* Sends pending as one llm.delta: nothing when it is empty, when it is
 * blank (unless last: whitespace waits for the next word), or once the
 * output cap is reached. */
static int delta_flush(delta_stream *ds, bool last)
{
    if (ds->pending.len == 0 || (!last && blank(ds->pending.s, ds->pending.len)))
        return 0;
    if (ds->builtin && ds->sent >= ds->budget)
        return 0;
    size_t cap = ds->r->cfg->output_max_bytes;
    if (cap > 0 && ds->sent_bytes >= cap) {
        strbuf_reset(&ds->pending);
        return 0;
    }
    strbuf text = {0};
    output_guard_repair_utf8(&text, ds->pending.s, ds->pending.len);
    if (text.oom) {
        strbuf_free(&text);
        return run_oom(ds->r);
    }
    if (cap > 0 && ds->sent_bytes + text.len > cap) {
        text.len = output_guard_utf8_cut(text.s, text.len, cap - ds->sent_bytes);
        text.s[text.len] = '\0';
    }
    cJSON *ev = cJSON_CreateObject();
    bool ok = ev != NULL;
    json_add_str(ev, "step_id", ds->s->id, &ok);
    json_add_num(ev, "index", ds->s->idx, &ok);
    json_add_str(ev, "delta", text.s ? text.s : "", &ok);
    ev = json_done(ev, ok);
    ds->sent_bytes += text.len;
    strbuf_free(&text);
    if (!ev)
        return run_oom(ds->r);
    int rc = emit(ds->r, "llm.delta", ev);
    cJSON_Delete(ev);
    if (rc < 0)
        return -1;
    ds->sent++;
    ds->r->delta_events++;
    if (ds->builtin)
        ds->r->deltas_left--;
    strbuf_reset(&ds->pending);
    ds->pending_words = 0;
    return 0;
}

static void count_words(delta_stream *ds, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        bool sp = utf8_is_space((unsigned char)s[i]);
        if (!sp && !ds->in_word)
            ds->pending_words++;
        ds->in_word = !sp;
    }
}

static int on_delta(void *user, const char *delta, size_t len)
{
    delta_stream *ds = user;

    if (job_cancelled(ds->r->ctx)) {
        ds->cancelled = true;
        return 1;
    }
    if (run_expired(ds->r)) {
        ds->expired = true;
        return 1;
    }
    if (!ds->on)
        return 0;
    size_t before = ds->pending.len;
    if (pii_stream_feed(&ds->pii, delta, len, &ds->pending) < 0) {
        run_oom(ds->r);
        return 1;
    }
    if (ds->builtin) {
        count_words(ds, ds->pending.s + before, ds->pending.len - before);
        /* Keep the last event of the budget for the rest of the text. */
        if (ds->pending_words >= ds->chunk_words && ds->sent < ds->budget - 1) {
            if (delta_flush(ds, false) < 0)
                return 1;
            if (job_sleep_ms(ds->r->ctx, BUILTIN_DELTA_PACE_MS)) {
                ds->cancelled = true;
                return 1;
            }
        }
        return 0;
    }
    if (ds->r->delta_events >= DELTA_SOFT_MAX && ds->pending.len < DELTA_COALESCE_BYTES)
        return 0;
    return delta_flush(ds, false) < 0 ? 1 : 0;
}

/* The model calls still to come that stream, this one included. */
static int streamed_calls_left(const run *r)
{
    int n = 1;                  /* response:build */
    for (int i = 0; i < r->n_todos; i++) {
        const todo *t = &r->todos[i];
        if (t->state != TODO_PENDING)
            continue;
        for (int k = 0; k < t->steps.n; k++)
            n += t->steps.step[k].action == PLAN_LLM_CALL;
    }
    return n;
}

static void delta_stream_init(delta_stream *ds, run *r, const step *s, bool on)
{
    memset(ds, 0, sizeof(*ds));
    ds->r = r;
    ds->s = s;
    ds->on = on;
    ds->builtin = !r->language_model;
    if (!ds->builtin)
        return;
    int calls = streamed_calls_left(r);
    ds->budget = r->deltas_left > 0 ? r->deltas_left / calls : 0;
    if (ds->budget < 1 && r->deltas_left > 0)
        ds->budget = 1;
    int expect = r->max_tokens > 0 && r->max_tokens < DELTA_EXPECT_WORDS ? r->max_tokens
                                                                         : DELTA_EXPECT_WORDS;
    ds->chunk_words = ds->budget > 0 ? (expect + ds->budget - 1) / ds->budget : expect;
    if (ds->chunk_words < DELTA_MIN_WORDS)
        ds->chunk_words = DELTA_MIN_WORDS;
}

/* The call is over: what was held back goes out, unless discard. */
static int delta_stream_finish(delta_stream *ds, bool discard)
{
    int rc = 0;
    if (ds->on && !discard) {
        if (pii_stream_finish(&ds->pii, &ds->pending) < 0)
            rc = run_oom(ds->r);
        else
            rc = delta_flush(ds, true);
    }
    pii_stream_free(&ds->pii);
    strbuf_free(&ds->pending);
    return rc;
}

/* ---- model calls ---------------------------------------------------------- */

static int should_abort(void *user)
{
    run *r = user;
    return job_cancelled(r->ctx) || run_expired(r);
}

typedef struct call_opts {
    const char *task;               /* NULL: the final answer */
    bool stream;                    /* llm.delta events */
    bool tools;                     /* offer the run's tools */
    bool history;                   /* send the session's turns */
    const llm_tool_call *calls;     /* sent back with their results */
    size_t n_calls;
    int max_tokens;                 /* 0: the run's */
    bool hold_need_plan;            /* a reply of only NEED_PLAN is not streamed */
} call_opts;

static bool is_need_plan(const char *text)
{
    if (!text)
        return false;
    while (utf8_is_space((unsigned char)*text))
        text++;
    size_t n = strlen(text);
    while (n > 0 && utf8_is_space((unsigned char)text[n - 1]))
        n--;
    return n == strlen(NEED_PLAN) && memcmp(text, NEED_PLAN, n) == 0;
}

/*
 * One model call through the router. Returns LLM_OK with *resp filled, or
 * an error with why (why_size bytes) saying it in one line. A cancel or
 * the deadline seen during the call stops the run (r->stopped), as does a
 * failure to store an event. Under llm-required an answer from the
 * built-in provider is no answer (LLM_ERR_UNAVAILABLE).
 */
static llm_err call_llm(run *r, const step *s, const call_opts *o, llm_response *resp,
                        char *why, size_t why_size)
{
    llm_context_item items[LLM_MAX_CONTEXT_ITEMS];
    llm_request req = {
        .model = r->model,
        .prompt = r->prompt,
        .intent = r->classified ? intent_name(r->intent.cls) : NULL,
        .task = o->task,
        .context = items,
        .n_context = build_context(r, items),
        .temperature = r->temperature,
        .max_tokens = o->max_tokens > 0 ? o->max_tokens : r->max_tokens,
        .tenant_id = r->job->tenant_id,
        .history = o->history ? r->history : NULL,
        .n_history = o->history ? r->n_history : 0,
        .tools = o->tools ? r->tool_defs : NULL,
        .n_tools = o->tools ? r->n_tool_defs : 0,
        .tool_calls = o->calls,
        .n_tool_calls = o->n_calls,
        .should_abort = should_abort,
        .abort_user = r,
    };
    delta_stream ds;

    memset(resp, 0, sizeof(*resp));
    delta_stream_init(&ds, r, s, o->stream);
    redisContext *rd = job_redis_conn(r->ctx);
    llm_err e = llm_router_complete(job_db(r->ctx), rd, &req, on_delta, &ds, resp);
    if (rd && rd->err)
        job_redis_conn_failed(r->ctx);
    r->m.llm_calls++;
    if (e == LLM_OK) {
        r->m.tokens_in += resp->usage.tokens_in;
        r->m.tokens_out += resp->usage.tokens_out;
        bool discard = o->hold_need_plan && resp->n_tool_calls == 0 && is_need_plan(resp->text);
        if (delta_stream_finish(&ds, discard) < 0) {
            llm_response_free(resp);
            errbuf_printf(why, why_size, "%s", r->message);
            return LLM_ERR_ABORTED;
        }
        if (!resp->text) {
            resp->text = strdup("");
            if (!resp->text) {
                llm_response_free(resp);
                run_oom(r);
                return LLM_ERR_NOMEM;
            }
        }
        if (llm_required(r) && strcmp(resp->provider, "builtin") == 0) {
            llm_response_free(resp);
            errbuf_printf(why, why_size, "no language model answered: only the built-in "
                     "deterministic provider did");
            return LLM_ERR_UNAVAILABLE;
        }
        return LLM_OK;
    }
    delta_stream_finish(&ds, true);
    if (ds.cancelled || (e == LLM_ERR_ABORTED && job_cancelled(r->ctx)))
        run_cancelled(r);
    else if (ds.expired || (e == LLM_ERR_ABORTED && run_expired(r)))
        run_timed_out(r);
    else if (e == LLM_ERR_NOMEM)
        run_oom(r);
    errbuf_printf(why, why_size, "%s%s%s", llm_strerror(e), resp->error[0] ? ": " : "",
             resp->error);
    return e;
}

static cJSON *usage_json(const llm_response *resp)
{
    cJSON *u = cJSON_CreateObject();
    bool ok = u != NULL;
    json_add_num(u, "tokens_in", (double)resp->usage.tokens_in, &ok);
    json_add_num(u, "tokens_out", (double)resp->usage.tokens_out, &ok);
    return json_done(u, ok);
}

/* What a model call answered, for a step's output (text added by caller). */
static void j_llm_answer(cJSON *o, const run *r, const llm_response *resp, bool *ok)
{
    json_add_str(o, "provider", resp->provider[0] ? resp->provider : NULL, ok);
    json_add_str(o, "model", resp->model[0] ? resp->model : NULL, ok);
    json_add_bool(o, "language_model", strcmp(resp->provider, "builtin") != 0 && r->language_model,
           ok);
    json_add_str(o, "finish_reason", resp->finish_reason[0] ? resp->finish_reason : NULL, ok);
    json_add_item(o, "usage", usage_json(resp), ok);
}

/* ---- tool calls ----------------------------------------------------------- */

/* What a tool call gave back: the text a model reads, and whether it ran. */
typedef struct tool_outcome {
    char *text;             /* malloc'd */
    bool ok;
} tool_outcome;

/* A tool's output as text of at most TOOL_RESULT_MAX bytes. */
static char *output_text(const cJSON *output)
{
    char *s = json_print(output);
    if (!s || strlen(s) <= TOOL_RESULT_MAX)
        return s;
    size_t cut = output_guard_utf8_cut(s, strlen(s), TOOL_RESULT_MAX - 16);
    memcpy(s + cut, " ...[cut]", 10);
    return s;
}

/*
 * Runs one tool call as its own tool:invoke step: through tools_call (the
 * whole pipeline, audit and tool.called included) unless its arguments are
 * not JSON or the tool is not enabled for the run. args_text is the
 * model's raw argument text (args NULL then); for a planned call args is
 * the object and args_text NULL. Fills *out with what the model or the
 * next step reads: the result, or the refusal in words. Returns 0, or -1
 * with the run stopped.
 */
static int run_tool_call(run *r, const char *title, const char *tool, const cJSON *args,
                         const char *args_text, const char *call_id, bool for_model,
                         tool_outcome *out)
{
    step s;
    char why[600];
    cJSON *parsed = NULL;

    memset(out, 0, sizeof(*out));
    if (iteration_begin(r) < 0)
        return -1;
    if (!args && args_text) {
        char perr[160] = "";
        parsed = json_parse_bounded(args_text, strlen(args_text), PLAN_ARGS_MAX * 4,
                                    JSON_MAX_DEPTH, perr, sizeof(perr));
        if (parsed && !cJSON_IsObject(parsed)) {
            cJSON_Delete(parsed);
            parsed = NULL;
            snprintf(perr, sizeof(perr), "not a JSON object");
        }
        if (!parsed)
            snprintf(why, sizeof(why), "the arguments are not a JSON object (%s)", perr);
        args = parsed;
    }

    cJSON *in = cJSON_CreateObject();
    bool ok = in != NULL;
    json_add_str(in, "title", title, &ok);
    json_add_str(in, "tool", tool, &ok);
    if (args) {
        json_add_item(in, "arguments", cJSON_Duplicate(args, true), &ok);
    } else {
        char *shown = dup_cut(args_text ? args_text : "", RAW_REPLY_BYTES);
        json_add_str(in, "arguments_text", shown, &ok);
        ok = ok && shown;
        free(shown);
    }
    json_add_str(in, "requested_by", for_model ? "model" : "plan", &ok);
    if (call_id)
        json_add_str(in, "call_id", call_id, &ok);
    if (step_begin(r, &s, "tool:invoke", json_done(in, ok)) < 0) {
        cJSON_Delete(parsed);
        return -1;
    }

    cJSON *o = cJSON_CreateObject();
    ok = o != NULL;
    json_add_str(o, "tool", tool, &ok);
    const char *status;
    if (!args) {
        status = "failed";
        json_add_str(o, "status", "invalid", &ok);
        json_add_str(o, "message", why, &ok);
    } else if (!tool_enabled(r, tool)) {
        status = "skipped";
        snprintf(why, sizeof(why), "tool \"%s\" is not enabled for this run", tool);
        json_add_str(o, "status", "not_enabled", &ok);
        json_add_str(o, "message", why, &ok);
    } else {
        tool_run_env env = {r->id, r->session_id[0] ? r->session_id : NULL};
        tool_call_result res;
        memset(&res, 0, sizeof(res));
        tools_call(r->ctx, r->catalog, &r->principal, &env, tool, args, &res);
        r->m.tool_calls++;
        json_add_str(o, "status", tool_status_name(res.status), &ok);
        json_add_num(o, "latency_ms", (double)res.latency_ms, &ok);
        if (res.status == TOOL_CALL_OK) {
            status = "completed";
            char *summary = tools_builtin_summary(tool, res.output);
            char *json = output_text(res.output);
            json_add_str(o, "summary", summary, &ok);
            json_add_item(o, "output", res.output, &ok);
            res.output = NULL;
            out->ok = true;
            if (summary && json) {
                /* A model reads the data; the built-in provider quotes
                 * the summary. */
                strbuf t = {0};
                if (for_model)
                    strbuf_add(&t, json);
                else if (r->language_model)
                    strbuf_addf(&t, "%s\n%s", summary, json);
                else
                    strbuf_add(&t, summary);
                out->text = strbuf_take(&t, NULL);
            }
            free(summary);
            free(json);
            if (!out->text)
                ok = false;
        } else {
            status = "failed";
            snprintf(why, sizeof(why), "%s", res.message);
            json_add_str(o, "message", res.message, &ok);
        }
        tool_call_result_free(&res);
    }
    cJSON_Delete(parsed);
    if (!out->ok) {
        char text[700];
        snprintf(text, sizeof(text), "error: the tool call was not carried out: %s", why);
        out->text = strdup(text);
        if (!out->text)
            ok = false;
    }
    if (!ok) {
        cJSON_Delete(o);
        free(out->text);
        out->text = NULL;
        run_oom(r);
        step_abandon(r, &s);
        return -1;
    }
    return step_end(r, &s, status, o);
}

/* ---- llm:call steps and the tool loop -------------------------------------- */

/* The tool calls of one llm:call sequence, sent back round after round. */
typedef struct exchange {
    llm_tool_call call[MAX_EXCHANGE];
    size_t n;
} exchange;

static void exchange_free(exchange *x)
{
    for (size_t i = 0; i < x->n; i++) {
        free(x->call[i].arguments);
        free(x->call[i].result);
    }
    x->n = 0;
}

static cJSON *tool_calls_json(const llm_response *resp)
{
    cJSON *a = cJSON_CreateArray();
    bool ok = a != NULL;
    for (size_t i = 0; ok && i < resp->n_tool_calls; i++) {
        const llm_tool_call *c = &resp->tool_calls[i];
        cJSON *o = cJSON_CreateObject();
        bool ook = o != NULL;
        json_add_str(o, "id", c->id, &ook);
        json_add_str(o, "name", c->name, &ook);
        json_add_str(o, "arguments", c->arguments ? c->arguments : "", &ook);
        json_append(a, json_done(o, ook), &ok);
    }
    return json_done(a, ok);
}

/* How an llm:call sequence ended. */
typedef enum llm_end {
    LLM_END_ANSWER,         /* *text holds the model's (raw) answer */
    LLM_END_FAILED,         /* the provider failed; why says how */
    LLM_END_STOPPED,        /* the run stopped */
} llm_end;

/*
 * The catalog name of a tool the model called. A provider that cannot
 * send a name as it is ("system.time" goes out as "system__time") maps it
 * back only for the tools it offered; a call of a tool that was not
 * offered, such as one the principal may not call, comes back encoded.
 * It is mapped here, so the call is refused for what it is (denied), not
 * as a tool that does not exist.
 */
static void catalog_name(const run *r, const char *called, char *out, size_t size)
{
    snprintf(out, size, "%s", called);
    if (tools_catalog_has(r->catalog, called) || !strstr(called, "__"))
        return;
    char dotted[128];
    size_t o = 0;
    for (const char *p = called; *p && o + 1 < sizeof(dotted); p++) {
        if (p[0] == '_' && p[1] == '_') {
            dotted[o++] = '.';
            p++;
        } else {
            dotted[o++] = *p;
        }
    }
    dotted[o] = '\0';
    if (tools_catalog_has(r->catalog, dotted))
        snprintf(out, size, "%s", dotted);
}

/* Runs the model's tool calls of resp, each a tool:invoke step, and adds
 * them with their results to x. */
static int run_requested_tools(run *r, const char *title, const llm_response *resp,
                               exchange *x)
{
    for (size_t i = 0; i < resp->n_tool_calls; i++) {
        const llm_tool_call *c = &resp->tool_calls[i];
        if (x->n == MAX_EXCHANGE)
            return run_fail(r, "iteration_limit", "the model asked for more than %d tool "
                            "calls in one step", MAX_EXCHANGE);
        tool_outcome to;
        char name[sizeof(c->name)];
        catalog_name(r, c->name, name, sizeof(name));
        if (run_tool_call(r, title, name, NULL, c->arguments ? c->arguments : "{}", c->id,
                          true, &to) < 0)
            return -1;
        llm_tool_call *k = &x->call[x->n];
        memset(k, 0, sizeof(*k));
        snprintf(k->id, sizeof(k->id), "%s", c->id);
        snprintf(k->name, sizeof(k->name), "%s", name);
        k->arguments = strdup(c->arguments ? c->arguments : "{}");
        k->result = to.text;
        x->n++;
        if (!k->arguments)
            return run_oom(r);
        if (result_add(r, title, name, to.text, to.ok) < 0)
            return -1;
    }
    return 0;
}

/*
 * Carries out one model task as llm:call steps: the model is called (with
 * the tools offered when a real model serves the run); when it asks for
 * tools they run, each a tool:invoke step, and the next llm:call sends
 * them back, until it answers without a tool call. Returns how it ended;
 * on LLM_END_ANSWER *text is the raw answer (malloc'd, the caller frees).
 */
static llm_end run_llm_task(run *r, int todo_id, const char *title, const char *task,
                            bool direct, char **text, char *why, size_t why_size)
{
    exchange x = {.n = 0};
    llm_end end = LLM_END_STOPPED;

    *text = NULL;
    for (int round = 1;; round++) {
        step s;
        if (iteration_begin(r) < 0)
            break;
        cJSON *in = cJSON_CreateObject();
        bool ok = in != NULL;
        if (todo_id > 0)
            json_add_num(in, "todo_id", todo_id, &ok);
        json_add_str(in, "title", title, &ok);
        json_add_str(in, "task", direct ? "direct answer" : task, &ok);
        json_add_str(in, "model", r->route_model[0] ? r->route_model : r->model, &ok);
        json_add_str(in, "response_mode", r->response_mode, &ok);
        json_add_num(in, "round", round, &ok);
        json_add_num(in, "tools_offered", smart(r) ? (double)r->n_tool_defs : 0, &ok);
        json_add_num(in, "tool_results", (double)x.n, &ok);
        if (r->max_tokens > 0)
            json_add_num(in, "max_tokens", r->max_tokens, &ok);
        if (step_begin(r, &s, "llm:call", json_done(in, ok)) < 0)
            break;

        call_opts o = {.task = direct ? DIRECT_TASK : task, .stream = true,
                       .tools = smart(r), .history = true, .calls = x.call,
                       .n_calls = x.n, .hold_need_plan = direct};
        llm_response resp;
        llm_err e = call_llm(r, &s, &o, &resp, why, why_size);
        if (e != LLM_OK) {
            if (r->stopped) {
                step_abandon(r, &s);
                break;
            }
            if (step_end(r, &s, "failed", message_json("error", why)) < 0)
                break;
            end = LLM_END_FAILED;
            break;
        }
        clean_text ct;
        if (clean(r, resp.text, &ct) < 0) {
            llm_response_free(&resp);
            step_abandon(r, &s);
            break;
        }
        cJSON *out = cJSON_CreateObject();
        ok = out != NULL;
        j_clean(out, &ct, &ok);
        j_llm_answer(out, r, &resp, &ok);
        if (resp.n_tool_calls > 0)
            json_add_item(out, "tool_calls", tool_calls_json(&resp), &ok);
        if (step_end(r, &s, "completed", json_done(out, ok)) < 0) {
            free(ct.text);
            llm_response_free(&resp);
            break;
        }
        if (resp.n_tool_calls == 0) {
            /* The model's own words go on as context; the raw text is the
             * answer, cleaned once more where it is stored as output. */
            int rc = direct ? 0 : result_add(r, title, NULL, ct.text, true);
            free(ct.text);
            *text = resp.text;
            resp.text = NULL;
            llm_response_free(&resp);
            end = rc < 0 ? LLM_END_STOPPED : LLM_END_ANSWER;
            if (rc < 0) {
                free(*text);
                *text = NULL;
            }
            break;
        }
        free(ct.text);
        int rc = run_requested_tools(r, title, &resp, &x);
        llm_response_free(&resp);
        if (rc < 0)
            break;
    }
    exchange_free(&x);
    return end;
}

/* ---- phase 1: intent ------------------------------------------------------ */

static cJSON *prompt_preview_json(const run *r)
{
    size_t len = strlen(r->prompt);
    size_t cut = output_guard_utf8_cut(r->prompt, len, PREVIEW_BYTES);
    char *preview = strndup(r->prompt, cut);
    cJSON *o = cJSON_CreateObject();
    bool ok = o != NULL && preview != NULL;
    json_add_str(o, "prompt", preview, &ok);
    json_add_num(o, "prompt_bytes", (double)len, &ok);
    json_add_bool(o, "prompt_truncated", cut < len, &ok);
    free(preview);
    return json_done(o, ok);
}

/* Asks the model for a label; keeps the rules' result unless it answers
 * with exactly one. Adds what happened to o. */
static int classify_by_llm(run *r, const step *s, cJSON *o, bool *ok)
{
    call_opts opts = {.task = INTENT_LLM_TASK, .max_tokens = CLASSIFY_MAX_TOKENS};
    llm_response resp;
    char why[320];
    const intent_result rules = r->intent;

    llm_err e = call_llm(r, s, &opts, &resp, why, sizeof(why));
    if (r->stopped)
        return -1;
    if (e != LLM_OK) {
        json_add_str(o, "method", "rules", ok);
        json_add_str(o, "llm_error", why, ok);
        return 0;
    }
    intent_class cls;
    char answer[80];
    snprintf(answer, sizeof(answer), "%s", resp.text);
    bool parsed = intent_parse_label(resp.text, resp.text_len, &cls) == 0;
    llm_response_free(&resp);
    json_add_str(o, "llm_answer", answer, ok);
    if (!parsed) {
        json_add_str(o, "method", "rules", ok);
        json_add_str(o, "note", "the model's answer is not one of the five labels; the rules' "
              "result stands", ok);
        return 0;
    }
    intent_set_from_llm(&r->intent, cls);
    json_add_str(o, "method", "llm", ok);
    json_add_str(o, "rules_intent", intent_name(rules.cls), ok);
    json_add_str(o, "rules_rule", rules.rule_id, ok);
    return 0;
}

static int phase_intent(run *r)
{
    step s;

    if (step_begin(r, &s, "intent:classify", prompt_preview_json(r)) < 0)
        return -1;
    if (intent_classify(r->prompt, strlen(r->prompt), &r->intent) < 0) {
        run_oom(r);
        step_abandon(r, &s);
        return -1;
    }
    cJSON *o = cJSON_CreateObject();
    bool ok = o != NULL;
    if (!intent_is_confident(&r->intent) && smart(r)) {
        if (classify_by_llm(r, &s, o, &ok) < 0) {
            cJSON_Delete(o);
            step_abandon(r, &s);
            return -1;
        }
    } else {
        json_add_str(o, "method", "rules", &ok);
    }
    r->classified = true;
    json_add_str(o, "intent", intent_name(r->intent.cls), &ok);
    json_add_str(o, "rule", r->intent.rule_id, &ok);
    json_add_str(o, "description", r->intent.description, &ok);
    json_add_num(o, "confidence", r->intent.confidence, &ok);
    json_add_num(o, "hits", r->intent.hits, &ok);
    return step_end(r, &s, "completed", json_done(o, ok));
}

/* ---- phase 2: the plan ---------------------------------------------------- */

/* The model TODOs of each intent's deterministic plan: one or two before
 * the tools, one after them that pulls everything together. */
static const struct plan_template {
    intent_class cls;
    const char *before[2];
    const char *last;
    bool health_check;      /* always check the worker (admin work) */
} plan_templates[] = {
    {INTENT_CHAT, {"Understand the question", NULL}, "Draft the answer", false},
    {INTENT_GRAPH,
     {"Identify the nodes and edges involved",
      "Trace the relationships, dependencies or paths asked about"},
     "Summarise the graph findings", false},
    {INTENT_SECURITY, {"Identify the assets involved", "List the risks to them"},
     "Recommend controls", false},
    {INTENT_ADMIN, {"Identify the administrative change or lookup requested", NULL},
     "Describe the steps, their impact and the approval they need", true},
};

/*
 * The deterministic plan: the intent's model TODOs around the tools the
 * prompt asks for (plan.c). When it would take more iterations than the
 * run may, the model TODOs before the tools go first, then tools from the
 * end. note (note_size bytes) says what was dropped.
 */
static int make_plan(run *r, char *note, size_t note_size)
{
    const struct plan_template *pt = &plan_templates[0];
    for (size_t i = 0; i < sizeof(plan_templates) / sizeof(plan_templates[0]); i++)
        if (plan_templates[i].cls == r->intent.cls)
            pt = &plan_templates[i];

    plan_tool tools[PLAN_MAX_TOOLS];
    int nt = plan_match_tools(r->prompt, clock_wall_ms(), tools, PLAN_MAX_TOOLS);
    if (nt < 0)
        return run_oom(r);
    bool health = false;
    for (int i = 0; i < nt; i++)
        health = health || strcmp(tools[i].tool, "system.health") == 0;
    if (pt->health_check && !health && nt < PLAN_MAX_TOOLS) {
        tools[nt].tool = "system.health";
        tools[nt].title = "Check the worker's health (system.health)";
        tools[nt].args = cJSON_CreateObject();
        if (!tools[nt].args) {
            plan_tools_free(tools, nt);
            return run_oom(r);
        }
        nt++;
    }
    int before = (pt->before[0] != NULL) + (pt->before[1] != NULL);
    int budget = r->max_iterations;
    int keep_before = before, keep_tools = nt;
    while (keep_before + keep_tools + 1 > budget && keep_before > 0)
        keep_before--;
    while (keep_before + keep_tools + 1 > budget && keep_tools > 0)
        keep_tools--;
    if (keep_before < before || keep_tools < nt)
        errbuf_printf(note, note_size, "the run may take %d iterations, so %d of the plan's "
                 "model steps and %d of its tools were left out", budget,
                 before - keep_before, nt - keep_tools);

    int rc = 0;
    for (int i = 0; rc == 0 && i < keep_before; i++) {
        todo *t = todo_add(r, pt->before[i]);
        rc = t ? todo_set_llm(r, t, pt->before[i]) : -1;
    }
    for (int i = 0; i < nt; i++) {
        if (rc == 0 && i < keep_tools) {
            todo *t = todo_add(r, tools[i].title);
            rc = t ? todo_set_tool(r, t, tools[i].tool, tools[i].args) : -1;
            if (t)
                tools[i].args = NULL;       /* the TODO owns them now */
        }
    }
    plan_tools_free(tools, nt);
    if (rc == 0) {
        todo *t = todo_add(r, pt->last);
        rc = t ? todo_set_llm(r, t, pt->last) : -1;
    }
    return rc < 0 ? (r->stopped ? -1 : run_oom(r)) : 0;
}

/* Asks the model for the TODO list. Returns 0 with the TODOs added, or 1
 * with why the plan could not be used, or -1 with the run stopped. */
static int plan_by_llm(run *r, const step *s, cJSON *o, bool *ok, char *why, size_t why_size)
{
    strbuf task = {0};
    strbuf_add(&task, PLAN_TODOS_TASK);
    add_tool_list(&task, r);
    if (task.oom) {
        strbuf_free(&task);
        return run_oom(r);
    }
    call_opts opts = {.task = task.s, .history = true, .max_tokens = PLAN_MAX_TOKENS};
    llm_response resp;
    llm_err e = call_llm(r, s, &opts, &resp, why, why_size);
    strbuf_free(&task);
    if (r->stopped)
        return -1;
    if (e != LLM_OK)
        return 1;
    char *raw = dup_cut(resp.text, RAW_REPLY_BYTES);
    json_add_str(o, "llm_reply", raw, ok);
    free(raw);
    plan_todos todos;
    char err[256];
    int rc = plan_parse_todos(resp.text, resp.text_len, &todos, err, sizeof(err));
    llm_response_free(&resp);
    if (rc < 0) {
        errbuf_printf(why, why_size, "the model's plan could not be used: %s", err);
        return 1;
    }
    for (int i = 0; i < todos.n; i++)
        if (!todo_add(r, todos.title[i])) {
            plan_todos_free(&todos);
            return run_oom(r);
        }
    plan_todos_free(&todos);
    return 0;
}

/* plan:todos. by_llm: the model plans (else the deterministic planner). */
static int phase_plan(run *r, bool by_llm, const char *reason)
{
    step s;
    cJSON *in = cJSON_CreateObject();
    bool ok = in != NULL;
    json_add_str(in, "planning_mode", r->planning_mode, &ok);
    json_add_str(in, "intent", intent_name(r->intent.cls), &ok);
    if (reason)
        json_add_str(in, "reason", reason, &ok);
    if (step_begin(r, &s, "plan:todos", json_done(in, ok)) < 0)
        return -1;

    cJSON *o = cJSON_CreateObject();
    ok = o != NULL;
    char note[400] = "";
    const char *planner = "deterministic";
    if (by_llm) {
        char why[320] = "";
        int rc = plan_by_llm(r, &s, o, &ok, why, sizeof(why));
        if (rc < 0) {
            cJSON_Delete(o);
            step_abandon(r, &s);
            return -1;
        }
        if (rc == 0) {
            planner = "llm";
        } else {
            errbuf_printf(note, sizeof(note), "%s; the deterministic plan was used instead", why);
            json_add_bool(o, "fallback", true, &ok);
        }
    } else if (!smart(r)) {
        errbuf_printf(note, sizeof(note), "planning_mode \"%s\" was requested; the deterministic "
                 "planner was used because %s", r->planning_mode,
                 r->route_note[0] ? r->route_note : "no language model serves the run");
    }
    if (strcmp(planner, "deterministic") == 0) {
        char trimmed[200] = "";
        if (make_plan(r, trimmed, sizeof(trimmed)) < 0) {
            cJSON_Delete(o);
            step_abandon(r, &s);
            return -1;
        }
        if (trimmed[0])
            json_add_str(o, "trimmed", trimmed, &ok);
    }
    json_add_str(o, "planner", planner, &ok);
    json_add_str(o, "planning_mode", r->planning_mode, &ok);
    if (note[0])
        json_add_str(o, "note", note, &ok);
    json_add_item(o, "todos", todos_json(r), &ok);
    if (step_end(r, &s, "completed", json_done(o, ok)) < 0)
        return -1;
    return save_todos(r);
}

/* plan:steps: the model's steps for TODO t, or one llm:call when its
 * answer does not parse. */
static int plan_todo_steps(run *r, todo *t)
{
    step s;
    cJSON *in = cJSON_CreateObject();
    bool ok = in != NULL;
    json_add_num(in, "todo_id", t->id, &ok);
    json_add_str(in, "title", t->title, &ok);
    if (step_begin(r, &s, "plan:steps", json_done(in, ok)) < 0)
        return -1;

    strbuf task = {0};
    strbuf_add(&task, PLAN_STEPS_TASK);
    add_tool_list(&task, r);
    strbuf_add(&task, "\nThe TODO: ");
    strbuf_add_flat(&task, t->title, PLAN_TITLE_MAX);
    if (task.oom) {
        strbuf_free(&task);
        run_oom(r);
        step_abandon(r, &s);
        return -1;
    }
    call_opts opts = {.task = task.s, .history = true, .max_tokens = PLAN_MAX_TOKENS};
    llm_response resp;
    char why[320] = "";
    llm_err e = call_llm(r, &s, &opts, &resp, why, sizeof(why));
    strbuf_free(&task);
    if (r->stopped) {
        step_abandon(r, &s);
        return -1;
    }
    cJSON *o = cJSON_CreateObject();
    ok = o != NULL;
    if (e == LLM_OK) {
        char *raw = dup_cut(resp.text, RAW_REPLY_BYTES);
        json_add_str(o, "llm_reply", raw, &ok);
        free(raw);
        char err[256];
        if (plan_parse_steps(resp.text, resp.text_len, tool_plannable, r, &t->steps, err,
                             sizeof(err)) == 0)
            t->planned = true;
        else
            snprintf(why, sizeof(why), "the model's steps could not be used: %s", err);
        llm_response_free(&resp);
    }
    if (!t->planned) {
        char note[400];
        errbuf_printf(note, sizeof(note), "%s; the TODO runs as one llm:call instead", why);
        json_add_str(o, "note", note, &ok);
        json_add_bool(o, "fallback", true, &ok);
        if (todo_set_llm(r, t, t->title) < 0) {
            cJSON_Delete(o);
            step_abandon(r, &s);
            return -1;
        }
    }
    cJSON *steps = cJSON_CreateArray();
    bool sok = steps != NULL;
    for (int i = 0; sok && i < t->steps.n; i++) {
        const plan_step *ps = &t->steps.step[i];
        cJSON *x = cJSON_CreateObject();
        bool xok = x != NULL;
        json_add_str(x, "action", ps->action == PLAN_LLM_CALL ? "llm:call" : "tool:invoke", &xok);
        if (ps->action == PLAN_LLM_CALL) {
            json_add_str(x, "task", ps->task, &xok);
        } else {
            json_add_str(x, "tool", ps->tool, &xok);
            json_add_item(x, "arguments", cJSON_Duplicate(ps->args, true), &xok);
        }
        json_append(steps, json_done(x, xok), &sok);
    }
    json_add_item(o, "steps", json_done(steps, sok), &ok);
    json_add_str(o, "planner", e == LLM_OK && !cJSON_HasObjectItem(o, "fallback") ? "llm"
                                                                           : "fallback", &ok);
    return step_end(r, &s, "completed", json_done(o, ok));
}

/* ---- phase 3: execution --------------------------------------------------- */

/* One planned step of TODO t. Sets *result (malloc'd) and *ok. */
static int run_plan_step(run *r, todo *t, const plan_step *ps, char **result, bool *ok)
{
    *result = NULL;
    *ok = false;
    if (ps->action == PLAN_TOOL_INVOKE) {
        tool_outcome to;
        if (run_tool_call(r, t->title, ps->tool, ps->args, NULL, NULL, false, &to) < 0)
            return -1;
        *ok = to.ok;
        *result = to.text;
        return result_add(r, t->title, ps->tool, to.text, to.ok);
    }
    if (!r->llm_on) {
        /* No model is called: the step is recorded as skipped. */
        step s;
        if (iteration_begin(r) < 0)
            return -1;
        cJSON *in = cJSON_CreateObject();
        bool jok = in != NULL;
        json_add_num(in, "todo_id", t->id, &jok);
        json_add_str(in, "title", t->title, &jok);
        json_add_str(in, "task", ps->task, &jok);
        if (step_begin(r, &s, "llm:call", json_done(in, jok)) < 0)
            return -1;
        *result = strdup(r->route_note);
        if (!*result) {
            step_abandon(r, &s);
            return run_oom(r);
        }
        return step_end(r, &s, "skipped", message_json("reason", r->route_note));
    }
    char why[320] = "";
    char *text = NULL;
    llm_end end = run_llm_task(r, t->id, t->title, ps->task, false, &text, why, sizeof(why));
    if (end == LLM_END_STOPPED)
        return -1;
    if (end == LLM_END_FAILED) {
        if (llm_required(r))
            return run_fail(r, "llm_unavailable", "response_mode is llm-required and no "
                            "language model answered: %s", why);
        char msg[400];
        snprintf(msg, sizeof(msg), "the model call failed: %s", why);
        *result = strdup(msg);
        if (!*result)
            return run_oom(r);
        return result_add(r, t->title, NULL, msg, false);
    }
    free(text);                 /* kept, cleaned, among the results */
    *ok = true;
    *result = strdup(r->results[r->n_results - 1].text);
    return *result ? 0 : run_oom(r);
}

static int run_todo(run *r, todo *t)
{
    if (!t->planned && plan_todo_steps(r, t) < 0)
        return -1;
    char *last = NULL;
    bool all_ok = true, any = false;
    for (int k = 0; k < t->steps.n; k++) {
        char *res;
        bool ok;
        int rc = run_plan_step(r, t, &t->steps.step[k], &res, &ok);
        if (rc < 0) {
            free(res);
            free(last);
            return -1;
        }
        free(last);
        last = res;
        all_ok = all_ok && ok;
        any = true;
    }
    todo_state st = !any ? TODO_SKIPPED
                  : all_ok ? TODO_DONE
                  : (!r->llm_on && t->steps.n == 1 && t->steps.step[0].action == PLAN_LLM_CALL)
                        ? TODO_SKIPPED : TODO_FAILED;
    todo_finish(r, t, st, last);
    free(last);
    return r->stopped ? -1 : 0;
}

static int phase_execute(run *r)
{
    for (int i = 0; i < r->n_todos; i++) {
        todo *t = &r->todos[i];
        if (check_stop(r) < 0)
            return -1;
        if (run_todo(r, t) < 0)
            return -1;
        if (save_todos(r) < 0)
            return -1;
        if (job_progress(r->ctx, i + 1, r->n_todos, t->title) < 0)
            return run_fail(r, "event_write_failed", "a job.progress event could not be stored");
    }
    return 0;
}

/* ---- phase 4: the response ---------------------------------------------- */

/* The answer without a model: what was asked, what the plan did, and the
 * tool results, labelled as such. */
static char *template_response(const run *r)
{
    strbuf b = {0};
    bool quoted = false;

    strbuf_add(&b, "[agentgate deterministic template: no language model was called]\n");
    strbuf_add(&b, "You asked: \"");
    strbuf_add_flat(&b, r->prompt, QUOTE_BYTES);
    strbuf_addf(&b, "\"\nIntent: %s.", intent_name(r->intent.cls));
    if (r->n_todos > 0)
        strbuf_add(&b, "\nPlan:");
    for (int i = 0; i < r->n_todos; i++) {
        const todo *t = &r->todos[i];
        strbuf_addf(&b, "\n%d. ", t->id);
        strbuf_add_flat(&b, t->title, PLAN_TITLE_MAX);
        strbuf_addf(&b, ": %s", todo_state_name(t->state));
    }
    strbuf_add(&b, "\nAnswer: ");
    for (int i = 0; i < r->n_results; i++) {
        const result_item *it = &r->results[i];
        if (!it->tool)
            continue;
        strbuf_add(&b, quoted ? " " : "");
        if (!it->ok) {
            strbuf_addf(&b, "%s did not run: ", it->tool);
            strbuf_add_flat(&b, it->text, 300);
            strbuf_add(&b, ".");
        } else if (strcmp(it->tool, "system.time") == 0) {
            strbuf_add(&b, "The current UTC time is ");
            strbuf_add_flat(&b, it->text, 64);
            strbuf_add(&b, ".");
        } else {
            strbuf_addf(&b, "%s reported: ", it->tool);
            strbuf_add_flat(&b, it->text, 1500);
            strbuf_add(&b, ".");
        }
        quoted = true;
    }
    if (!quoted)
        strbuf_add(&b, "no language model was used, so none was generated; the plan above is "
                   "what agentgate did with your request.");
    return strbuf_take(&b, NULL);   /* NULL when out of memory */
}

/* The final model call: the answer from everything the steps produced. */
static int response_by_llm(run *r, step *s, char **raw, cJSON *o, bool *ok, char *why,
                           size_t why_size)
{
    call_opts opts = {.task = NULL, .stream = true, .history = true};
    llm_response resp;
    llm_err e = call_llm(r, s, &opts, &resp, why, why_size);
    if (e != LLM_OK)
        return r->stopped ? -1 : 1;
    json_add_str(o, "method", "llm", ok);
    j_llm_answer(o, r, &resp, ok);
    *raw = resp.text;
    resp.text = NULL;
    llm_response_free(&resp);
    return 0;
}

/*
 * response:build. direct: the direct path's answer (owned), used as it is.
 * Leaves the cleaned output in *output.
 */
static int phase_response(run *r, char *direct, char **output)
{
    step s;
    cJSON *in = cJSON_CreateObject();
    bool ok = in != NULL;
    json_add_str(in, "response_mode", r->response_mode, &ok);
    json_add_str(in, "model", r->llm_on ? r->route_model : NULL, &ok);
    json_add_num(in, "todos", r->n_todos, &ok);
    json_add_num(in, "results", r->n_results, &ok);
    if (step_begin(r, &s, "response:build", json_done(in, ok)) < 0) {
        free(direct);
        return -1;
    }

    cJSON *o = cJSON_CreateObject();
    ok = o != NULL;
    char *raw = direct;
    char why[320] = "";
    if (raw) {
        json_add_str(o, "method", "direct", &ok);
    } else if (r->llm_on) {
        int rc = response_by_llm(r, &s, &raw, o, &ok, why, sizeof(why));
        if (rc < 0) {
            cJSON_Delete(o);
            step_abandon(r, &s);
            return -1;
        }
        if (rc > 0 && llm_required(r)) {
            cJSON_Delete(o);
            step_end(r, &s, "failed", message_json("error", why));
            return run_fail(r, "llm_unavailable", "response_mode is llm-required and no "
                            "language model answered: %s", why);
        }
    } else if (llm_required(r)) {
        cJSON_Delete(o);
        step_end(r, &s, "failed", message_json("error", r->route_note));
        return run_fail(r, "llm_unavailable", "response_mode is llm-required and %s",
                        r->route_note);
    }
    if (!raw) {
        raw = template_response(r);
        json_add_str(o, "method", "template", &ok);
        if (why[0]) {
            char note[400];
            errbuf_printf(note, sizeof(note), "the model failed (%s); the deterministic template "
                     "answered instead", why);
            json_add_str(o, "llm_error", why, &ok);
            json_add_str(o, "note", note, &ok);
        } else if (r->route_note[0]) {
            json_add_str(o, "note", r->route_note, &ok);
        }
    }
    clean_text ct;
    if (!raw || clean(r, raw, &ct) < 0) {
        free(raw);
        cJSON_Delete(o);
        run_oom(r);
        step_abandon(r, &s);
        return -1;
    }
    free(raw);
    *output = ct.text;
    j_clean(o, &ct, &ok);
    return step_end(r, &s, "completed", json_done(o, ok));
}

static int phase_refuse(run *r, char **output)
{
    step s;
    cJSON *in = cJSON_CreateObject();
    bool ok = in != NULL;
    json_add_str(in, "response_mode", r->response_mode, &ok);
    json_add_bool(in, "refused", true, &ok);
    if (step_begin(r, &s, "response:build", json_done(in, ok)) < 0)
        return -1;
    char buf[512];
    snprintf(buf, sizeof(buf),
             "This request was refused: it asks to %s. agentgate does not run destructive "
             "or abusive actions.", r->intent.description);
    *output = strdup(buf);
    if (!*output) {
        run_oom(r);
        step_abandon(r, &s);
        return -1;
    }
    cJSON *o = cJSON_CreateObject();
    ok = o != NULL;
    json_add_str(o, "text", *output, &ok);
    json_add_str(o, "method", "refusal", &ok);
    json_add_str(o, "rule", r->intent.rule_id, &ok);
    return step_end(r, &s, "completed", json_done(o, ok));
}

/* ---- phase 5: persisting ------------------------------------------------- */

static cJSON *metrics_json(const run *r)
{
    cJSON *o = cJSON_CreateObject();
    bool ok = o != NULL;
    json_add_num(o, "overall_ms", (double)(clock_mono_ms() - r->t0), &ok);
    json_add_num(o, "llm_calls", (double)r->m.llm_calls, &ok);
    json_add_num(o, "tool_calls", (double)r->m.tool_calls, &ok);
    json_add_num(o, "tokens_in", (double)r->m.tokens_in, &ok);
    json_add_num(o, "tokens_out", (double)r->m.tokens_out, &ok);
    json_add_num(o, "iterations", (double)r->m.iterations, &ok);
    json_add_num(o, "max_iterations", r->max_iterations, &ok);
    json_add_num(o, "pii_redacted", (double)r->m.pii_redacted, &ok);
    json_add_num(o, "guard_findings", (double)r->m.guard_findings, &ok);
    return json_done(o, ok);
}

/* Writes the run's end state; output NULL for a run that stopped. Used
 * on every way out once the row is loaded. */
static int persist_run(run *r, const char *output)
{
    static const char sql[] =
        "UPDATE agent_runs SET intent = $1, output = $2, todos = $3::jsonb,"
        " metrics = $4::jsonb, finished_at = clock_timestamp()"
        " WHERE id = $5 AND tenant_id = $6 AND job_id = $7";
    cJSON *todos = todos_json(r), *metrics = metrics_json(r);
    char *todos_text = todos ? json_print(todos) : NULL;
    char *metrics_text = metrics ? json_print(metrics) : NULL;
    cJSON_Delete(todos);
    cJSON_Delete(metrics);
    if (!todos_text || !metrics_text) {
        free(todos_text);
        free(metrics_text);
        return run_oom(r);
    }
    const char *params[7] = {r->classified ? intent_name(r->intent.cls) : NULL, output,
                             todos_text, metrics_text, r->id, r->job->tenant_id, r->job->id};
    PGresult *res = db_exec(r, sql, 7, params, PGRES_COMMAND_OK);
    free(todos_text);
    free(metrics_text);
    if (!res)
        return -1;
    bool found = strcmp(PQcmdTuples(res), "1") == 0;
    PQclear(res);
    if (!found)
        return run_fail(r, "run_not_found", "agent run %s disappeared while it ran", r->id);
    return 0;
}

static cJSON *result_json(const run *r, const char *output)
{
    cJSON *o = cJSON_CreateObject();
    bool ok = o != NULL;
    json_add_str(o, "run_id", r->id, &ok);
    json_add_str(o, "intent", intent_name(r->intent.cls), &ok);
    json_add_str(o, "output", output, &ok);
    json_add_bool(o, "refused", r->intent.cls == INTENT_DANGEROUS, &ok);
    if (r->intent.cls == INTENT_DANGEROUS)
        json_add_str(o, "rule", r->intent.rule_id, &ok);
    return json_done(o, ok);
}

/* ---- the handler ----------------------------------------------------------- */

static job_outcome fail_now(job_result *out, const char *code, const char *message)
{
    snprintf(out->error_code, sizeof(out->error_code), "%s", code);
    snprintf(out->error_message, sizeof(out->error_message), "%s", message);
    return JOB_FAILED;
}

static void run_free(run *r)
{
    free(r->prompt);
    free(r->model);
    cJSON_Delete(r->tools);
    history_free(r);
    free(r->tool_defs);
    tools_catalog_free(r->catalog);
    todos_free(r);
    for (int i = 0; i < r->n_results; i++) {
        free(r->results[i].title);
        free(r->results[i].tool);
        free(r->results[i].text);
    }
}

/* The optional mode's direct path. Returns 0 with *answer set when the
 * model answered, 0 with *answer NULL when it wants a plan (or failed:
 * the plan goes on without it), -1 when the run stopped. */
static int direct_path(run *r, char **answer, char *reason, size_t reason_size)
{
    char why[320] = "";
    char *text = NULL;

    *answer = NULL;
    llm_end end = run_llm_task(r, 0, "Answer directly", NULL, true, &text, why, sizeof(why));
    if (end == LLM_END_STOPPED)
        return -1;
    if (end == LLM_END_FAILED) {
        if (llm_required(r))
            return run_fail(r, "llm_unavailable", "response_mode is llm-required and no "
                            "language model answered: %s", why);
        snprintf(reason, reason_size, "the direct answer failed (%s)", why);
        return 0;
    }
    if (is_need_plan(text)) {
        snprintf(reason, reason_size, "the model asked for a plan");
        free(text);
        return 0;
    }
    *answer = text;
    return 0;
}

/* Phases 1-4. Returns 0 with *output set, or -1 with the run stopped. */
static int run_phases(run *r, char **output)
{
    if (phase_intent(r) < 0)
        return -1;
    if (r->intent.cls == INTENT_DANGEROUS) {
        log_info("agent run %s: refused (%s)", r->id, r->intent.rule_id);
        return phase_refuse(r, output);
    }
    if (llm_required(r) && !smart(r))
        return run_fail(r, "llm_unavailable", "response_mode is llm-required and %s",
                        r->route_note[0] ? r->route_note : "no language model serves the run");
    if (check_stop(r) < 0 || load_catalog(r) < 0)
        return -1;

    char *direct = NULL;
    if (smart(r) && strcmp(r->planning_mode, "optional") == 0) {
        char reason[400] = "";
        if (direct_path(r, &direct, reason, sizeof(reason)) < 0)
            return -1;
        if (!direct && (check_stop(r) < 0 || phase_plan(r, true, reason) < 0))
            return -1;
    } else if (check_stop(r) < 0 ||
               phase_plan(r, smart(r) && strcmp(r->planning_mode, "full") == 0, NULL) < 0) {
        return -1;
    }
    if (!direct && phase_execute(r) < 0)
        return -1;
    if (check_stop(r) < 0) {
        free(direct);
        return -1;
    }
    return phase_response(r, direct, output);
}

job_outcome handle_agent_run(job_ctx *ctx, job_result *out)
{
    run r;
    memset(&r, 0, sizeof(r));
    r.ctx = ctx;
    r.job = job_get_info(ctx);
    r.cfg = job_config(ctx);
    r.t0 = clock_mono_ms();
    r.deadline = r.t0 + DEFAULT_TIMEOUT_MS;
    r.deltas_left = DELTA_BUDGET;

    const char *run_id = json_get_string(r.job->payload, "run_id");
    if (!run_id || !uuid_parse(run_id, r.id))
        return fail_now(out, "invalid_payload", "payload field \"run_id\" must be a UUID");

    if (load_run(&r) < 0 || clear_old_steps(&r) < 0 || load_history(&r) < 0 ||
        resolve_route(&r) < 0) {
        job_outcome early = r.outcome == JOB_CANCELLED ? JOB_CANCELLED
                                                       : fail_now(out, r.code, r.message);
        if (r.prompt)           /* the row was loaded: record how it ended */
            persist_run(&r, NULL);
        run_free(&r);
        return early;
    }

    char *output = NULL;
    int rc = run_phases(&r, &output);
    if (rc < 0)
        skip_pending_todos(&r, r.outcome == JOB_CANCELLED ? "the run was cancelled"
                                                          : "the run stopped early");
    /* A stopped run still records how far it got; its own failure wins. */
    if (persist_run(&r, rc == 0 ? output : NULL) < 0 && rc == 0)
        rc = -1;

    job_outcome outcome;
    if (rc == 0) {
        out->result = result_json(&r, output);
        outcome = out->result ? JOB_SUCCEEDED
                              : fail_now(out, "out_of_memory", "the worker ran out of memory");
        log_info("agent run %s: %s, intent %s (%s), %d todos, %lld llm calls, %lld tool calls",
                 r.id, outcome == JOB_SUCCEEDED ? "succeeded" : "failed",
                 intent_name(r.intent.cls), r.intent.rule_id, r.n_todos, r.m.llm_calls,
                 r.m.tool_calls);
    } else if (r.outcome == JOB_CANCELLED) {
        log_info("agent run %s: cancelled after %d steps", r.id, r.next_idx);
        outcome = JOB_CANCELLED;
    } else {
        log_warn("agent run %s: failed: %s: %s", r.id, r.code, r.message);
        outcome = fail_now(out, r.code, r.message);
    }
    free(output);
    run_free(&r);
    return outcome;
}
