/*
 * run_store.c - an agent run's rows in PostgreSQL (see run_store.h;
 * orchestrator.c has the whole picture): loading the run (its agent_runs
 * row: options, tool list, principal) and clearing the steps of an earlier
 * attempt, the session's earlier runs as history, which model serves the
 * run, the tool catalog, and writing the TODO list and the run's end state
 * back. The steps' own rows are written by run_steps.c through
 * run_db_command. What is written is read off the run (run_state.h):
 * nothing here calls up into the files that build it.
 *
 * Every statement runs as the job's tenant and filters by its tenant_id,
 * and the run must belong to this job (agent_runs.job_id).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "job_store.h"
#include "jsonutil.h"
#include "llm_router.h"
#include "log.h"
#include "output_guard.h"
#include "run_state.h"
#include "run_store.h"
#include "tools.h"
#include "uuid.h"

#define DEFAULT_ITERATIONS 8
#define HISTORY_MAX_RUNS   50   /* earlier runs of a session read at most */

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
         * own transaction: no round trip added, nothing left behind. Its
         * commit does not wait for the WAL flush: the job's next move
         * (waiting, or its end) is a synchronous commit, which makes
         * every earlier write of the run durable with it; and a run whose
         * writes are lost in a database crash before that is a job whose
         * attempt did not end, so it runs again and starts the run over
         * (load_run, clear_old_steps) or, after a wait, from what its
         * wait stored. So a step costs no fsync of its own. */
        PGresult *res = store_exec_as_unflushed(c, r->job->tenant_id, sql, nparams, params);
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
int run_db_command(run *r, const char *sql, int nparams, const char *const *params)
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
int load_run(run *r)
{
    static const char sql[] =
        "UPDATE agent_runs SET started_at = clock_timestamp(), finished_at = NULL,"
        " intent = NULL, output = NULL, todos = '[]'::jsonb, metrics = '{}'::jsonb"
        " WHERE id = $1 AND tenant_id = $2 AND job_id = $3"
        " RETURNING prompt, model, temperature, max_tokens, planning_mode,"
        " response_mode, tools::text, session_id, principal::text, max_iterations,"
        " timeout_s, created_by, approval, approval_timeout_s, resume_steps";
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
    r->approve_writes = strcmp(PQgetvalue(res, 0, 12), "write-tools") == 0;
    r->approval_timeout_s = PQgetisnull(res, 0, 13) ? 0 : atoll(PQgetvalue(res, 0, 13));
    if (r->approval_timeout_s <= 0)
        r->approval_timeout_s = r->cfg->approval_timeout_s > 0 ? r->cfg->approval_timeout_s
                                                                : DEFAULT_APPROVAL_TIMEOUT_S;
    r->replay_steps = PQgetisnull(res, 0, 14) ? 0 : atoi(PQgetvalue(res, 0, 14));
    r->replaying = r->replay_steps > 0;
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

/* Steps of an earlier attempt of this run would collide on (run_id, idx).
 * A run resumed after a wait keeps the steps it replays. */
int clear_old_steps(run *r)
{
    static const char sql[] =
        "DELETE FROM steps WHERE run_id = $1 AND tenant_id = $2 AND idx >= $3::int";
    char from[16];
    snprintf(from, sizeof(from), "%d", r->replay_steps);
    const char *params[3] = {r->id, r->job->tenant_id, from};
    return run_db_command(r, sql, 3, params);
}

PGresult *run_db_query(run *r, const char *sql, int nparams, const char *const *params)
{
    return db_exec(r, sql, nparams, params, PGRES_TUPLES_OK);
}

/* ---- session history ------------------------------------------------------ */

/* Adds one turn; text is copied, cut to max bytes. */
static int history_add(run *r, const char *role, const char *text, size_t max)
{
    size_t i = r->n_history;
    r->history_text[i] = run_dup_cut(text, max);
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
 *
 * A run a later one interrupted (multitask_strategy interrupt) counts
 * with what it did before it stopped: its output if it has one, else its
 * steps so far, marked as interrupted. A run a later one rolled back is
 * left out, whatever it wrote.
 */
int load_history(run *r)
{
    static const char sql[] =
        "SELECT a.prompt, coalesce(a.output, '[interrupted before it finished] ' ||"
        "   coalesce((SELECT string_agg(s.action || ': ' || left(s.output::text, 2000), E'\\n'"
        "                               ORDER BY s.idx)"
        "               FROM steps s WHERE s.run_id = a.id AND s.tenant_id = a.tenant_id"
        "                AND s.output IS NOT NULL), 'nothing yet'))"
        " FROM agent_runs a"
        " WHERE a.session_id = $1 AND a.tenant_id = $2 AND a.id <> $3"
        "   AND (a.output IS NOT NULL OR a.superseded = 'interrupted')"
        "   AND a.superseded IS DISTINCT FROM 'rolled_back'"
        "   AND a.created_at <= (SELECT created_at FROM agent_runs"
        "                         WHERE id = $3 AND tenant_id = $2)"
        " ORDER BY a.created_at DESC, a.id DESC LIMIT 50";
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

void history_free(run *r)
{
    for (size_t i = 0; i < r->n_history; i++)
        free(r->history_text[i]);
    free(r->history_text);
    free(r->history);
}

/* ---- which model ---------------------------------------------------------- */

/* Decides whether model calls are made and whether a real model is among
 * those that answer them. */
int resolve_route(run *r)
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

/* Loads the catalog and the tools a model is offered: those the principal
 * may call, narrowed to the run's own list. */
int load_catalog(run *r)
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
        if (run_tool_enabled(r, defs[i].name))
            r->tool_defs[r->n_tool_defs++] = defs[i];
    return 0;
}

/* ---- the TODO list and the end state ------------------------------------- */

int save_todos(run *r)
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
    int rc = run_db_command(r, sql, 5, params);
    free(text);
    return rc;
}

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
    json_add_num(o, "builtin_pause_ms", (double)r->m.builtin_pause_ms, &ok);
    return json_done(o, ok);
}

/* Writes the run's end state; output NULL for a run that stopped. Used
 * on every way out once the row is loaded. */
int persist_run(run *r, const char *output)
{
    static const char sql[] =
        "UPDATE agent_runs SET intent = $1, output = $2, todos = $3::jsonb,"
        " metrics = $4::jsonb, resume_steps = $8::int,"
        " finished_at = CASE WHEN $8::int IS NULL THEN clock_timestamp() END"
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
    /* A run that waits records how far it got, to be replayed. */
    char resume[16];
    snprintf(resume, sizeof(resume), "%d", r->next_idx);
    bool waits = r->stopped && r->outcome == JOB_WAITING;
    const char *params[8] = {r->classified ? intent_name(r->intent.cls) : NULL, output,
                             todos_text, metrics_text, r->id, r->job->tenant_id, r->job->id,
                             waits ? resume : NULL};
    PGresult *res = db_exec(r, sql, 8, params, PGRES_COMMAND_OK);
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
