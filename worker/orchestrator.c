/*
 * orchestrator.c - the agent-run orchestrator, the handler of job type
 * "agent.run" (handle_agent_run in handlers.h).
 *
 * The gateway stored the run as an agent_runs row and queued a job whose
 * payload names it (run_id). A run goes through phases, each one a row in
 * `steps` (inserted 'running', updated when it ends) and a pair of events
 * step.started / step.completed:
 *
 *   intent:classify   rule-based intent (intent.c); a dangerous prompt is
 *                     refused here: no plan runs, the response step says
 *                     why and the run succeeds with refused=true
 *   plan:todos        the deterministic planner's TODO list, kept in
 *                     agent_runs.todos and updated as TODOs finish
 *   llm:call / tool:invoke
 *                     one step per TODO: the provider (streamed as
 *                     llm.delta events) or a built-in tool (tool.called)
 *   response:build    the final text: the provider composing an answer
 *                     from the steps' results, or a deterministic
 *                     template when response_mode is fallback-only
 *
 * and finally agent_runs gets intent, output, todos, metrics and
 * finished_at. Every statement filters by the job's tenant and the run
 * must belong to this job (agent_runs.job_id), so a payload naming some
 * other run, of this tenant or another, finds nothing: run_not_found.
 *
 * Cancellation is checked between steps and between streamed deltas: the
 * step in progress ends 'failed', TODOs not started end 'skipped', and the
 * handler returns JOB_CANCELLED.
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
#include "log.h"
#include "strbuf.h"
#include "utf8.h"
#include "tools_builtin.h"
#include "uuid.h"

#define MAX_STEPS          16   /* every step of a run, intent and response included */
#define MAX_TODOS          (MAX_STEPS - 3)  /* intent, plan and response take three */
#define DELTA_BUDGET       60   /* llm.delta events per run, all calls together */
#define DELTA_MIN_WORDS    3    /* words per delta at the least */
#define DELTA_EXPECT_WORDS 120  /* words a call is expected to produce, for pacing */
/* The built-in provider produces its text at once; spacing its deltas out
 * lets a terminal on the SSE stream see them arrive and gives a cancel a
 * moment to land mid-stream. At most DELTA_BUDGET * this per run. A real
 * provider's stream has its own pace and gets no added delay. */
#define BUILTIN_DELTA_PACE_MS 10
#define PREVIEW_BYTES      500  /* of the prompt, in step inputs and events */
#define QUOTE_BYTES        200  /* of the prompt, in the template response */

/* ---- small helpers ------------------------------------------------------ */

/* Length of the longest prefix of s (len bytes) of at most max bytes that
 * does not end inside a UTF-8 sequence. */
static size_t utf8_cut(const char *s, size_t len, size_t max)
{
    if (len <= max)
        return len;
    size_t n = max;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    return n;
}

/* ---- JSON building: each helper is a no-op once *ok is false ------------ */

static void j_str(cJSON *o, const char *k, const char *v, bool *ok)
{
    if (*ok && !(v ? cJSON_AddStringToObject(o, k, v) : cJSON_AddNullToObject(o, k)))
        *ok = false;
}

static void j_num(cJSON *o, const char *k, double v, bool *ok)
{
    if (*ok && !cJSON_AddNumberToObject(o, k, v))
        *ok = false;
}

static void j_bool(cJSON *o, const char *k, bool v, bool *ok)
{
    if (*ok && !cJSON_AddBoolToObject(o, k, v))
        *ok = false;
}

/* Adds item (owned) under k; frees it when it cannot. */
static void j_item(cJSON *o, const char *k, cJSON *item, bool *ok)
{
    if (!item) {
        *ok = false;
        return;
    }
    if (!*ok || !cJSON_AddItemToObject(o, k, item)) {
        cJSON_Delete(item);
        *ok = false;
    }
}

/* Returns o when every addition succeeded, else frees it and returns NULL. */
static cJSON *j_done(cJSON *o, bool ok)
{
    if (ok)
        return o;
    cJSON_Delete(o);
    return NULL;
}

/* ---- the run ------------------------------------------------------------ */

typedef enum todo_kind { TODO_LLM, TODO_TOOL } todo_kind;
typedef enum todo_state { TODO_PENDING, TODO_DONE, TODO_SKIPPED } todo_state;

typedef struct todo {
    int id;                 /* 1, 2, ... */
    const char *title;      /* static */
    todo_kind kind;
    const char *tool;       /* TODO_TOOL: the built-in tool */
    todo_state state;
    char *result;           /* malloc'd: model text, tool summary, or why not */
    bool ok;                /* result is a real result, not a reason */
} todo;

typedef struct run_metrics {
    long long llm_calls, tool_calls, tokens_in, tokens_out;
} run_metrics;

typedef struct run {
    job_ctx *ctx;
    const job_info *job;
    char id[UUID_STR_LEN];
    long long t0;               /* clock_mono_ms at the start */

    /* From the agent_runs row. */
    char *prompt;
    char *model;                /* NULL: provider default */
    double temperature;         /* < 0: unset */
    int max_tokens;             /* 0: unset */
    char planning_mode[16];
    char response_mode[24];
    cJSON *tools;               /* array of enabled tool names; NULL: all */
    char *worker_id;            /* from the job's claim; NULL if unknown */

    const llm_provider *llm;    /* NULL when response_mode is fallback-only */
    intent_result intent;
    bool classified;            /* intent holds a real classification */
    todo todos[MAX_TODOS];
    int n_todos;
    int next_idx;               /* the next step's index */
    int deltas_left;
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

static bool llm_required(const run *r)
{
    return strcmp(r->response_mode, "llm-required") == 0;
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
        PGresult *res = PQexecParams(c, sql, nparams, NULL, params, NULL, NULL, 0);
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
        " response_mode, tools::text";
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
    bool model_oom = !PQgetisnull(res, 0, 1) && !r->model;
    PQclear(res);
    if (rc < 0)
        return -1;
    if (!r->prompt || model_oom)
        return run_oom(r);
    if (r->max_tokens < 0)
        r->max_tokens = 0;
    return 0;
}

/* The worker that claimed the job, for system.health. */
static int load_worker_id(run *r)
{
    static const char sql[] = "SELECT worker_id FROM jobs WHERE id = $1 AND tenant_id = $2";
    const char *params[2] = {r->job->id, r->job->tenant_id};

    PGresult *res = db_exec(r, sql, 2, params, PGRES_TUPLES_OK);
    if (!res)
        return -1;
    if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 0)) {
        r->worker_id = strdup(PQgetvalue(res, 0, 0));
        if (!r->worker_id) {
            PQclear(res);
            return run_oom(r);
        }
    }
    PQclear(res);
    return 0;
}

/* Steps of an earlier attempt of this run would collide on (run_id, idx). */
static int clear_old_steps(run *r)
{
    static const char sql[] = "DELETE FROM steps WHERE run_id = $1 AND tenant_id = $2";
    const char *params[2] = {r->id, r->job->tenant_id};
    return db_command(r, sql, 2, params);
}

/* ---- TODOs ----------------------------------------------------------------- */

static const char *todo_state_name(todo_state s)
{
    return s == TODO_DONE ? "done" : s == TODO_SKIPPED ? "skipped" : "pending";
}

/* [{"id":1,"title":"...","status":"pending|done|skipped"}, ...] */
static cJSON *todos_json(const run *r)
{
    cJSON *a = cJSON_CreateArray();
    if (!a)
        return NULL;
    for (int i = 0; i < r->n_todos; i++) {
        const todo *t = &r->todos[i];
        cJSON *o = cJSON_CreateObject();
        bool ok = o != NULL;
        j_num(o, "id", t->id, &ok);
        j_str(o, "title", t->title, &ok);
        j_str(o, "status", todo_state_name(t->state), &ok);
        o = j_done(o, ok);
        if (!o || !cJSON_AddItemToArray(a, o)) {
            cJSON_Delete(o);
            cJSON_Delete(a);
            return NULL;
        }
    }
    return a;
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

static void todo_finish(todo *t, todo_state state, bool ok, const char *result)
{
    t->state = state;
    t->ok = ok;
    free(t->result);
    t->result = result ? strdup(result) : NULL;
}

/* Marks every TODO not yet finished skipped, for a run that stops. */
static void skip_pending_todos(run *r, const char *why)
{
    for (int i = 0; i < r->n_todos; i++)
        if (r->todos[i].state == TODO_PENDING)
            todo_finish(&r->todos[i], TODO_SKIPPED, false, why);
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
    if (r->next_idx >= MAX_STEPS) {
        cJSON_Delete(input);
        return run_fail(r, "too_many_steps", "the run reached its limit of %d steps",
                        MAX_STEPS);
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
    j_str(ev, "step_id", s->id, &ok);
    j_num(ev, "index", s->idx, &ok);
    j_str(ev, "action", action, &ok);
    j_item(ev, "input", input, &ok);
    ev = j_done(ev, ok);
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
    j_str(ev, "step_id", s->id, &ok);
    j_num(ev, "index", s->idx, &ok);
    j_str(ev, "action", s->action, &ok);
    j_str(ev, "status", status, &ok);
    j_item(ev, "output", output, &ok);
    j_num(ev, "latency_ms", (double)latency, &ok);
    ev = j_done(ev, ok);
    if (!ev)
        return run_oom(r);
    rc = emit(r, "step.completed", ev);
    cJSON_Delete(ev);
    return rc;
}

/* {"error": message} or {"reason": message}. */
static cJSON *message_json(const char *key, const char *message)
{
    cJSON *o = cJSON_CreateObject();
    bool ok = o != NULL;
    j_str(o, key, message, &ok);
    return j_done(o, ok);
}

/* Closes a step left open by a stop: 'failed', saying why. */
static void step_abandon(run *r, step *s)
{
    if (s->open)
        step_end(r, s, "failed", message_json("error", r->stopped ? r->message : "stopped"));
}

/* Checked between steps. Returns -1 (run stopped as cancelled) or 0. */
static int check_cancel(run *r)
{
    return job_cancelled(r->ctx) ? run_cancelled(r) : 0;
}

/* ---- phase 1: intent ------------------------------------------------------ */

static cJSON *prompt_preview_json(const run *r)
{
    size_t len = strlen(r->prompt);
    size_t cut = utf8_cut(r->prompt, len, PREVIEW_BYTES);
    char *preview = strndup(r->prompt, cut);
    cJSON *o = cJSON_CreateObject();
    bool ok = o != NULL && preview != NULL;
    j_str(o, "prompt", preview, &ok);
    j_num(o, "prompt_bytes", (double)len, &ok);
    j_bool(o, "prompt_truncated", cut < len, &ok);
    free(preview);
    return j_done(o, ok);
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
    r->classified = true;
    cJSON *o = cJSON_CreateObject();
    bool ok = o != NULL;
    j_str(o, "intent", intent_name(r->intent.cls), &ok);
    j_str(o, "rule", r->intent.rule_id, &ok);
    j_str(o, "description", r->intent.description, &ok);
    j_num(o, "confidence", r->intent.confidence, &ok);
    j_num(o, "hits", r->intent.hits, &ok);
    return step_end(r, &s, "completed", j_done(o, ok));
}

/* ---- phase 2: the plan ---------------------------------------------------- */

/* The model steps of each intent's plan: one or two before the tools, one
 * after them that pulls everything together. */
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

#define TIME_WORDS   "time|date|clock|today|utc|timestamp|datetime|timezone"
#define HEALTH_WORDS "health|healthy|uptime|alive|liveness|heartbeat"

static void plan_add(run *r, const char *title, todo_kind kind, const char *tool)
{
    if (r->n_todos == MAX_TODOS)
        return;
    todo *t = &r->todos[r->n_todos];
    memset(t, 0, sizeof(*t));
    t->id = r->n_todos + 1;
    t->title = title;
    t->kind = kind;
    t->tool = tool;
    t->state = TODO_PENDING;
    r->n_todos++;
}

static int make_plan(run *r)
{
    const struct plan_template *pt = &plan_templates[0];
    for (size_t i = 0; i < sizeof(plan_templates) / sizeof(plan_templates[0]); i++)
        if (plan_templates[i].cls == r->intent.cls)
            pt = &plan_templates[i];

    size_t plen = strlen(r->prompt);
    int wants_time = intent_match(r->prompt, plen, TIME_WORDS);
    int wants_health = intent_match(r->prompt, plen, HEALTH_WORDS);
    if (wants_time < 0 || wants_health < 0)
        return run_oom(r);

    for (int i = 0; i < 2; i++)
        if (pt->before[i])
            plan_add(r, pt->before[i], TODO_LLM, NULL);
    if (wants_time)
        plan_add(r, "Look up the current UTC time (system.time)", TODO_TOOL, "system.time");
    if (wants_health || pt->health_check)
        plan_add(r, "Check the worker's health (system.health)", TODO_TOOL, "system.health");
    plan_add(r, pt->last, TODO_LLM, NULL);
    return 0;
}

static int phase_plan(run *r)
{
    step s;
    cJSON *in = cJSON_CreateObject();
    bool ok = in != NULL;
    j_str(in, "planning_mode", r->planning_mode, &ok);
    j_str(in, "intent", intent_name(r->intent.cls), &ok);
    if (step_begin(r, &s, "plan:todos", j_done(in, ok)) < 0)
        return -1;
    if (make_plan(r) < 0) {
        step_abandon(r, &s);
        return -1;
    }
    char note[256];
    snprintf(note, sizeof(note),
             "planning_mode \"%s\" was requested; the deterministic planner was used "
             "(no model-based planner is configured)", r->planning_mode);
    cJSON *o = cJSON_CreateObject();
    ok = o != NULL;
    j_str(o, "planner", "deterministic", &ok);
    j_str(o, "planning_mode", r->planning_mode, &ok);
    j_str(o, "note", note, &ok);
    j_item(o, "todos", todos_json(r), &ok);
    if (step_end(r, &s, "completed", j_done(o, ok)) < 0)
        return -1;
    return save_todos(r);
}

/* ---- phase 3: execution --------------------------------------------------- */

/* Context for a provider call: what the TODOs finished so far produced.
 * Items borrow the TODOs' strings. */
static size_t build_context(const run *r, llm_context_item *items)
{
    size_t n = 0;
    for (int i = 0; i < r->n_todos && n < LLM_MAX_CONTEXT_ITEMS; i++) {
        const todo *t = &r->todos[i];
        if (t->state == TODO_PENDING)
            continue;
        items[n].title = t->title;
        items[n].tool = t->tool;
        items[n].text = t->result;
        items[n].ok = t->ok;
        n++;
    }
    return n;
}

/* Delta events of one provider call: text is gathered until it holds
 * chunk_words words, then sent as one llm.delta, up to budget events; the
 * last one carries whatever is left. */
typedef struct delta_stream {
    run *r;
    const step *s;
    strbuf pending;
    int pending_words;
    bool in_word;
    int chunk_words;
    int budget;
    int sent;
    bool pace;
    bool cancelled;
} delta_stream;

static int delta_flush(delta_stream *ds)
{
    if (ds->pending.len == 0 || ds->sent >= ds->budget)
        return 0;
    cJSON *ev = cJSON_CreateObject();
    bool ok = ev != NULL;
    j_str(ev, "step_id", ds->s->id, &ok);
    j_num(ev, "index", ds->s->idx, &ok);
    j_str(ev, "delta", ds->pending.s, &ok);
    ev = j_done(ev, ok);
    if (!ev)
        return run_oom(ds->r);
    int rc = emit(ds->r, "llm.delta", ev);
    cJSON_Delete(ev);
    if (rc < 0)
        return -1;
    ds->sent++;
    ds->r->deltas_left--;
    strbuf_reset(&ds->pending);
    ds->pending_words = 0;
    return 0;
}

static int on_delta(void *user, const char *delta, size_t len)
{
    delta_stream *ds = user;

    if (job_cancelled(ds->r->ctx)) {
        ds->cancelled = true;
        return 1;
    }
    strbuf_addn(&ds->pending, delta, len);
    if (ds->pending.oom) {
        run_oom(ds->r);
        return 1;
    }
    for (size_t i = 0; i < len; i++) {
        bool sp = utf8_is_space((unsigned char)delta[i]);
        if (!sp && !ds->in_word)
            ds->pending_words++;
        ds->in_word = !sp;
    }
    /* Keep the last event of the budget for the rest of the text. */
    if (ds->pending_words >= ds->chunk_words && ds->sent < ds->budget - 1) {
        if (delta_flush(ds) < 0)
            return 1;
        if (ds->pace && job_sleep_ms(ds->r->ctx, BUILTIN_DELTA_PACE_MS)) {
            ds->cancelled = true;
            return 1;
        }
    }
    return 0;
}

/* Provider calls still to come, this one included. */
static int llm_calls_left(const run *r)
{
    int n = r->llm ? 1 : 0;     /* response:build */
    for (int i = 0; r->llm && i < r->n_todos; i++)
        if (r->todos[i].state == TODO_PENDING && r->todos[i].kind == TODO_LLM)
            n++;
    return n;
}

static void delta_stream_init(delta_stream *ds, run *r, const step *s, int max_tokens)
{
    memset(ds, 0, sizeof(*ds));
    ds->r = r;
    ds->s = s;
    int calls = llm_calls_left(r);
    ds->budget = (r->deltas_left > 0 && calls > 0) ? r->deltas_left / calls : 0;
    if (ds->budget < 1 && r->deltas_left > 0)
        ds->budget = 1;
    int expect = max_tokens > 0 && max_tokens < DELTA_EXPECT_WORDS ? max_tokens
                                                                   : DELTA_EXPECT_WORDS;
    ds->chunk_words = ds->budget > 0 ? (expect + ds->budget - 1) / ds->budget : expect;
    if (ds->chunk_words < DELTA_MIN_WORDS)
        ds->chunk_words = DELTA_MIN_WORDS;
    ds->pace = !r->llm->is_language_model;
}

/*
 * Calls the provider for one step, streaming its text as llm.delta events.
 * Returns LLM_OK with *resp filled, or the provider's error; a cancel seen
 * during the stream stops the run (run->stopped) and returns
 * LLM_ERR_ABORTED, as does a failure to store an event.
 */
static llm_err call_provider(run *r, const step *s, const char *task, llm_response *resp)
{
    llm_context_item items[LLM_MAX_CONTEXT_ITEMS];
    llm_request req = {
        .model = r->model,
        .prompt = r->prompt,
        .intent = intent_name(r->intent.cls),
        .task = task,
        .context = items,
        .n_context = build_context(r, items),
        .temperature = r->temperature,
        .max_tokens = r->max_tokens,
    };
    delta_stream ds;

    delta_stream_init(&ds, r, s, r->max_tokens);
    llm_err e = r->llm->complete(r->llm, &req, on_delta, &ds, resp);
    r->m.llm_calls++;
    if (e == LLM_OK) {
        r->m.tokens_in += resp->usage.tokens_in;
        r->m.tokens_out += resp->usage.tokens_out;
        if (delta_flush(&ds) < 0) {
            llm_response_free(resp);
            e = LLM_ERR_ABORTED;
        }
    } else if (ds.cancelled) {
        run_cancelled(r);
    }
    strbuf_free(&ds.pending);
    return e;
}

/* {"todo_id","title",...} input of a TODO's step. */
static cJSON *todo_input(const run *r, const todo *t)
{
    cJSON *o = cJSON_CreateObject();
    bool ok = o != NULL;
    j_num(o, "todo_id", t->id, &ok);
    j_str(o, "title", t->title, &ok);
    if (t->kind == TODO_TOOL) {
        j_str(o, "tool", t->tool, &ok);
        j_item(o, "input", cJSON_CreateObject(), &ok);
    } else {
        j_str(o, "provider", r->llm ? r->llm->name : NULL, &ok);
        j_str(o, "requested_model", r->model, &ok);
        j_str(o, "response_mode", r->response_mode, &ok);
        if (r->max_tokens > 0)
            j_num(o, "max_tokens", r->max_tokens, &ok);
    }
    return j_done(o, ok);
}

static cJSON *llm_output_json(const run *r, const llm_response *resp, const char *method)
{
    cJSON *o = cJSON_CreateObject(), *u = cJSON_CreateObject();
    bool ok = o != NULL;
    j_str(o, "text", resp->text, &ok);
    if (method)
        j_str(o, "method", method, &ok);
    j_str(o, "provider", r->llm->name, &ok);
    j_str(o, "model", resp->model, &ok);
    j_bool(o, "language_model", r->llm->is_language_model, &ok);
    j_str(o, "finish_reason", resp->finish_reason, &ok);
    bool uok = u != NULL;
    j_num(u, "tokens_in", (double)resp->usage.tokens_in, &uok);
    j_num(u, "tokens_out", (double)resp->usage.tokens_out, &uok);
    j_item(o, "usage", j_done(u, uok), &ok);
    return j_done(o, ok);
}

static int run_llm_todo(run *r, todo *t)
{
    step s;

    if (step_begin(r, &s, "llm:call", todo_input(r, t)) < 0)
        return -1;
    if (!r->llm) {
        const char *why = "response_mode is fallback-only: no model is called";
        todo_finish(t, TODO_SKIPPED, false, why);
        return step_end(r, &s, "skipped", message_json("reason", why));
    }
    llm_response resp;
    llm_err e = call_provider(r, &s, t->title, &resp);
    if (e == LLM_OK) {
        todo_finish(t, TODO_DONE, true, resp.text);
        cJSON *out = llm_output_json(r, &resp, NULL);
        llm_response_free(&resp);
        if (!t->result)
            run_oom(r);
        if (r->stopped) {
            cJSON_Delete(out);
            step_abandon(r, &s);
            return -1;
        }
        return step_end(r, &s, "completed", out);
    }
    if (r->stopped) {               /* cancelled, or an event could not be stored */
        todo_finish(t, TODO_SKIPPED, false, r->message);
        step_abandon(r, &s);
        return -1;
    }
    char why[160];
    snprintf(why, sizeof(why), "the %s provider failed: %s", r->llm->name, llm_strerror(e));
    todo_finish(t, TODO_SKIPPED, false, why);
    if (step_end(r, &s, "failed", message_json("error", why)) < 0)
        return -1;
    if (llm_required(r))
        return run_fail(r, "llm_failed", "response_mode is llm-required and %s", why);
    return 0;                       /* best effort: go on without this step */
}

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

static int emit_tool_called(run *r, const todo *t, const cJSON *output, const char *error,
                            long long latency)
{
    cJSON *ev = cJSON_CreateObject();
    bool ok = ev != NULL;
    j_str(ev, "tool", t->tool, &ok);
    j_item(ev, "input", cJSON_CreateObject(), &ok);
    if (output)
        j_item(ev, "output", cJSON_Duplicate(output, true), &ok);
    else
        j_str(ev, "output", NULL, &ok);
    if (error)
        j_str(ev, "error", error, &ok);
    j_num(ev, "latency_ms", (double)latency, &ok);
    ev = j_done(ev, ok);
    if (!ev)
        return run_oom(r);
    int rc = emit(r, "tool.called", ev);
    cJSON_Delete(ev);
    return rc;
}

static int run_tool_todo(run *r, todo *t)
{
    step s;
    char why[256];

    if (step_begin(r, &s, "tool:invoke", todo_input(r, t)) < 0)
        return -1;
    if (!tool_enabled(r, t->tool)) {
        snprintf(why, sizeof(why), "tool \"%s\" is not enabled for this run", t->tool);
        todo_finish(t, TODO_SKIPPED, false, why);
        return step_end(r, &s, "skipped", message_json("reason", why));
    }
    tool_env env = {r->worker_id, r->job->tenant_id, r->job->id};
    cJSON *output = NULL;
    char err[200] = "";
    long long t0 = clock_mono_ms();
    tool_err e = tools_builtin_invoke(t->tool, &env, NULL, &output, err, sizeof(err));
    long long latency = clock_mono_ms() - t0;
    r->m.tool_calls++;

    if (emit_tool_called(r, t, output, e == TOOL_OK ? NULL : err, latency) < 0) {
        cJSON_Delete(output);
        step_abandon(r, &s);
        return -1;
    }
    cJSON *o = cJSON_CreateObject();
    bool ok = o != NULL;
    j_str(o, "tool", t->tool, &ok);
    if (e != TOOL_OK) {
        snprintf(why, sizeof(why), "%s: %s", tool_strerror(e), err);
        todo_finish(t, TODO_SKIPPED, false, why);
        j_str(o, "error", why, &ok);
        return step_end(r, &s, "failed", j_done(o, ok));
    }
    char *summary = tools_builtin_summary(t->tool, output);
    todo_finish(t, TODO_DONE, true, summary);
    j_str(o, "summary", summary, &ok);
    j_item(o, "output", output, &ok);
    free(summary);
    if (!t->result)
        ok = false;
    return step_end(r, &s, "completed", j_done(o, ok));
}

static int phase_execute(run *r)
{
    for (int i = 0; i < r->n_todos; i++) {
        todo *t = &r->todos[i];
        if (check_cancel(r) < 0)
            return -1;
        int rc = t->kind == TODO_TOOL ? run_tool_todo(r, t) : run_llm_todo(r, t);
        if (rc < 0)
            return -1;
        if (save_todos(r) < 0)
            return -1;
        int done = i + 1;
        if (job_progress(r->ctx, done, r->n_todos, t->title) < 0)
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
        strbuf_addf(&b, "\n%d. %s: ", t->id, t->title);
        if (t->state == TODO_DONE && t->kind == TODO_TOOL && t->result)
            strbuf_add_flat(&b, t->result, 240);
        else
            strbuf_add(&b, todo_state_name(t->state));
    }
    strbuf_add(&b, "\nAnswer: ");
    for (int i = 0; i < r->n_todos; i++) {
        const todo *t = &r->todos[i];
        if (t->state != TODO_DONE || t->kind != TODO_TOOL || !t->result)
            continue;
        if (strcmp(t->tool, "system.time") == 0)
            strbuf_addf(&b, "%sThe current UTC time is %.64s.", quoted ? " " : "", t->result);
        else
            strbuf_addf(&b, "%s%s reported: %.200s.", quoted ? " " : "", t->tool, t->result);
        quoted = true;
    }
    if (!quoted)
        strbuf_add(&b, "no language model was used, so none was generated; the plan above is "
                   "what agentgate did with your request.");
    return strbuf_take(&b, NULL);   /* NULL when out of memory */
}

static cJSON *template_output_json(const char *text, const char *method, const char *llm_error)
{
    cJSON *o = cJSON_CreateObject();
    bool ok = o != NULL;
    j_str(o, "text", text, &ok);
    j_str(o, "method", method, &ok);
    if (llm_error)
        j_str(o, "llm_error", llm_error, &ok);
    return j_done(o, ok);
}

/* Builds the final text into *output (malloc'd). */
static int phase_response(run *r, char **output)
{
    step s;
    cJSON *in = cJSON_CreateObject();
    bool ok = in != NULL;
    j_str(in, "response_mode", r->response_mode, &ok);
    j_str(in, "provider", r->llm ? r->llm->name : NULL, &ok);
    j_num(in, "todos", r->n_todos, &ok);
    if (step_begin(r, &s, "response:build", j_done(in, ok)) < 0)
        return -1;

    char why[160] = "";
    if (r->llm) {
        llm_response resp;
        llm_err e = call_provider(r, &s, NULL, &resp);
        if (e == LLM_OK) {
            *output = resp.text;        /* ownership moves to the caller */
            cJSON *out = llm_output_json(r, &resp, "llm");
            return step_end(r, &s, "completed", out);
        }
        if (r->stopped) {
            step_abandon(r, &s);
            return -1;
        }
        snprintf(why, sizeof(why), "the %s provider failed: %s", r->llm->name,
                 llm_strerror(e));
        if (llm_required(r)) {
            step_end(r, &s, "failed", message_json("error", why));
            return run_fail(r, "llm_failed", "response_mode is llm-required and %s", why);
        }
    }
    *output = template_response(r);
    if (!*output) {
        run_oom(r);
        step_abandon(r, &s);
        return -1;
    }
    return step_end(r, &s, "completed",
                    template_output_json(*output, "template", why[0] ? why : NULL));
}

static char *refusal_text(const run *r)
{
    char buf[512];
    snprintf(buf, sizeof(buf),
             "This request was refused: it asks to %s. agentgate does not run destructive "
             "or abusive actions.", r->intent.description);
    return strdup(buf);
}

static int phase_refuse(run *r, char **output)
{
    step s;
    cJSON *in = cJSON_CreateObject();
    bool ok = in != NULL;
    j_str(in, "response_mode", r->response_mode, &ok);
    j_bool(in, "refused", true, &ok);
    if (step_begin(r, &s, "response:build", j_done(in, ok)) < 0)
        return -1;
    *output = refusal_text(r);
    if (!*output) {
        run_oom(r);
        step_abandon(r, &s);
        return -1;
    }
    cJSON *o = template_output_json(*output, "refusal", NULL);
    ok = o != NULL;
    j_str(o, "rule", r->intent.rule_id, &ok);
    return step_end(r, &s, "completed", j_done(o, ok));
}

/* ---- phase 5: persisting ------------------------------------------------- */

static cJSON *metrics_json(const run *r)
{
    cJSON *o = cJSON_CreateObject();
    bool ok = o != NULL;
    j_num(o, "overall_ms", (double)(clock_mono_ms() - r->t0), &ok);
    j_num(o, "llm_calls", (double)r->m.llm_calls, &ok);
    j_num(o, "tool_calls", (double)r->m.tool_calls, &ok);
    j_num(o, "tokens_in", (double)r->m.tokens_in, &ok);
    j_num(o, "tokens_out", (double)r->m.tokens_out, &ok);
    return j_done(o, ok);
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
    j_str(o, "run_id", r->id, &ok);
    j_str(o, "intent", intent_name(r->intent.cls), &ok);
    j_str(o, "output", output, &ok);
    j_bool(o, "refused", r->intent.cls == INTENT_DANGEROUS, &ok);
    if (r->intent.cls == INTENT_DANGEROUS)
        j_str(o, "rule", r->intent.rule_id, &ok);
    return j_done(o, ok);
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
    free(r->worker_id);
    cJSON_Delete(r->tools);
    for (int i = 0; i < r->n_todos; i++)
        free(r->todos[i].result);
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
    if (check_cancel(r) < 0 || phase_plan(r) < 0)
        return -1;
    if (phase_execute(r) < 0)
        return -1;
    if (check_cancel(r) < 0)
        return -1;
    return phase_response(r, output);
}

job_outcome handle_agent_run(job_ctx *ctx, job_result *out)
{
    run r;
    memset(&r, 0, sizeof(r));
    r.ctx = ctx;
    r.job = job_get_info(ctx);
    r.t0 = clock_mono_ms();
    r.deltas_left = DELTA_BUDGET;

    const char *run_id = json_get_string(r.job->payload, "run_id");
    if (!run_id || !uuid_parse(run_id, r.id))
        return fail_now(out, "invalid_payload", "payload field \"run_id\" must be a UUID");

    if (load_run(&r) < 0 || load_worker_id(&r) < 0 || clear_old_steps(&r) < 0) {
        run_free(&r);
        return r.outcome == JOB_CANCELLED ? JOB_CANCELLED
                                          : fail_now(out, r.code, r.message);
    }
    /* The only provider this build has. An OpenAI-compatible one will be
     * picked here from the run's model and model_defaults. */
    r.llm = strcmp(r.response_mode, "fallback-only") == 0 ? NULL : llm_builtin_provider();

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
