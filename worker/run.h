/*
 * run.h - the inside of an agent run, shared by the files that carry one
 * out (not an API of the worker: the handler's entry point is
 * handle_agent_run in handlers.h, and nothing but these files includes
 * this header):
 *
 *   orchestrator.c  the phases (intent, response, refusal) and the handler;
 *   run_store.c     the run's rows in PostgreSQL: loading, history, which
 *                   model, the tool catalog, the TODO list and final state;
 *   run_steps.c     how the run stops, its steps and their events, what
 *                   finished steps produced, cleaning text;
 *   run_plan.c      the TODO list: plan:todos, plan:steps and carrying the
 *                   TODOs out;
 *   run_calls.c     model calls with their llm.delta events, tool calls,
 *                   and llm:call steps with the tool loop.
 *
 * Conventions: r is the run being carried out, and a function returning
 * int returns 0, or -1 with the run stopped (r->stopped; r->outcome,
 * r->code and r->message say why, the first reason winning). Strings
 * passed in are borrowed unless a comment says otherwise. "*ok" arguments
 * follow jsonutil.h: they become false when a JSON value could not be
 * built, and nothing more is added once they are.
 */
#ifndef AG_RUN_H
#define AG_RUN_H

#include <stdbool.h>
#include <stddef.h>
#include <cjson/cJSON.h>

#include "config.h"
#include "intent.h"
#include "job_ctx.h"
#include "llm.h"
#include "output_guard.h"
#include "pii.h"
#include "plan.h"
#include "tools.h"
#include "uuid.h"

#define MAX_TODOS          12   /* two model TODOs, PLAN_MAX_TOOLS tools, the last one */
#define MAX_RESULTS        64   /* step results kept for later calls */
#define DEFAULT_TIMEOUT_MS 120000 /* a run's timeout when neither it nor the config sets one */
#define RAW_REPLY_BYTES    2000 /* of a planning reply kept in a step's output */
#define DELTA_BUDGET       60   /* llm.delta events of the built-in provider per run (run_calls.c) */

/* ---- the run ------------------------------------------------------------ */

typedef enum todo_state { TODO_PENDING, TODO_DONE, TODO_FAILED, TODO_SKIPPED } todo_state;

/* One TODO of the run's plan. */
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

/* What the run counts, stored as agent_runs.metrics. */
typedef struct run_metrics {
    long long llm_calls, tool_calls, tokens_in, tokens_out, iterations;
    long long pii_redacted, guard_findings;
} run_metrics;

/* One agent run being carried out, on the handler's stack: what its row
 * asked for, what it has done so far, and how it stopped. */
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

/* A step between step_begin and step_end. */
typedef struct step {
    char id[UUID_STR_LEN];
    int idx;
    const char *action;
    long long t0;
    bool open;                  /* inserted, not yet ended */
} step;

/* ---- run_steps.c: how the run stops ------------------------------------- */

/* Records the first reason the run stops: marks it failed with code and
 * the formatted message (cut to fit r->message). A run already stopped
 * keeps its reason (later ones are consequences). Returns -1, so a caller
 * can "return run_fail(...)". */
int run_fail(run *r, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Stops the run as cancelled (code "cancelled"), unless it stopped
 * already. Returns -1. */
int run_cancelled(run *r);

/* Stops the run as failed with out_of_memory, unless it stopped already.
 * Returns -1. */
int run_oom(run *r);

/* Stops the run as failed with llm_unavailable, for a run whose
 * response_mode is llm-required when no model answered (why says how),
 * unless it stopped already. Returns -1. */
int run_llm_unavailable(run *r, const char *why);

/* True once the run passed its deadline (r->deadline, clock_mono_ms). */
bool run_expired(const run *r);

/* Stops the run as failed with run_timeout, unless it stopped already.
 * Returns -1. */
int run_timed_out(run *r);

/* Checked before every step: returns -1 when the run stopped, was
 * cancelled or passed its deadline (stopping it so), else 0. */
int run_check_stop(run *r);

/* True when the run's response_mode is llm-required. */
bool run_llm_required(const run *r);

/* True when a real language model serves the run's model calls: only
 * then does a model classify, plan and get tools. */
bool run_smart(const run *r);

/* A copy of at most max bytes of s, cut on a UTF-8 character boundary;
 * malloc'd, the caller frees it. NULL when out of memory (the run is not
 * stopped for it: the caller decides). */
char *run_dup_cut(const char *s, size_t max);

/* ---- run_steps.c: step results -------------------------------------------- */

/* Keeps copies of what a finished step produced (title, NULL taken as
 * "step"; tool, NULL for a model step; text) for the model calls after it.
 * Past MAX_RESULTS the oldest is dropped. Returns 0 or -1 (out of
 * memory). */
int run_result_add(run *r, const char *title, const char *tool, const char *text, bool ok);

/* Fills items (room for LLM_MAX_CONTEXT_ITEMS) with the newest results,
 * oldest first, their strings borrowed from r. Returns how many. */
size_t run_build_context(const run *r, llm_context_item *items);

/* ---- run_steps.c: steps --------------------------------------------------- */

/* Appends an event of type with data (borrowed) to the job's log
 * (job_emit). Returns 0, or -1 with the run failed (event_write_failed). */
int run_emit(run *r, const char *type, const cJSON *data);

/*
 * Starts step s (filled here) of action (a string that outlives the step)
 * with input (owned; NULL means out of memory): its steps row, status
 * 'running', then step.started. Returns 0 or -1 (too_many_steps past the
 * run's step limit, a database or event failure, out of memory). s is
 * open once its row is in, even when the event then fails: close it with
 * step_end or step_abandon.
 */
int step_begin(run *r, step *s, const char *action, cJSON *input);

/*
 * Ends step s with status ("completed", "failed", "skipped") and output
 * (owned; NULL means out of memory): its row (status, output, latency in
 * ms, finished_at), then step.completed. A step not open is left alone
 * (output freed, 0 returned). Also used on the way out of a stopped run,
 * where it does its best and keeps the first failure. Returns 0 or -1.
 */
int step_end(run *r, step *s, const char *status, cJSON *output);

/* Ends s as 'failed', saying why the run stopped, when it is still open. */
void step_abandon(run *r, step *s);

/* A new object {key: message}, owned by the caller; NULL when out of
 * memory. */
cJSON *run_message_json(const char *key, const char *message);

/* Lets an execution step (llm:call, tool:invoke) start: the run may go on
 * (run_check_stop) and is under its max_iterations, and the step is
 * counted. Returns 0 or -1 (iteration_limit, cancelled, run_timeout). */
int iteration_begin(run *r);

/* ---- run_steps.c: cleaning text before it is stored or sent --------------- */

/* Text cleaned by run_clean, with what was found in it. */
typedef struct clean_text {
    char *text;             /* malloc'd */
    pii_counts pii;
    guard_report guard;
} clean_text;

/* Fills *out with text (NULL taken as "") scrubbed of personal data, then
 * through the output guard (UTF-8 repaired, markers found, cut to
 * output_max_bytes); out->text is malloc'd, the caller frees it. Counts
 * what was found in the run's metrics. Returns 0 or -1 (out of memory). */
int run_clean(run *r, const char *text, clean_text *out);

/* Adds c's "text" to o and, when anything was found, "pii_redacted" and
 * "guard". */
void j_clean(cJSON *o, const clean_text *c, bool *ok);

/* ---- run_store.c: the run's rows in PostgreSQL ---------------------------- */

/* Runs sql, which returns no rows, with params on the job's connection as
 * the job's tenant; a broken connection is replaced and the statement
 * tried once more. Returns 0 or -1 (db_unavailable, db_error, or
 * cancelled while there was no connection). */
int run_db_command(run *r, const char *sql, int nparams, const char *const *params);

/* Loads the run r->id (this tenant's, this job's) and marks it started,
 * clearing what an earlier attempt wrote to its row: fills the run's
 * options, principal, iteration cap and deadline. Returns 0 or -1
 * (run_not_found, invalid_run, a database failure, out of memory). */
int load_run(run *r);

/* Deletes the steps an earlier attempt of the run left. Returns 0 or -1. */
int clear_old_steps(run *r);

/* Loads the session's earlier finished runs into r->history as user and
 * assistant turns, oldest first, the newest kept within
 * session_context_bytes; nothing for a run outside a session. Returns 0
 * or -1. Freed by history_free. */
int load_history(run *r);

/* Frees r->history and the text it borrows. */
void history_free(run *r);

/* Decides through the router whether model calls are made (r->llm_on) and
 * whether a real language model makes them (r->language_model); when
 * none does, r->route_note says why, which is not a failure. Returns 0 or
 * -1 (PostgreSQL unreachable, cancelled). */
int resolve_route(run *r);

/* True when the run's own tool list (agent_runs.tools) enables tool name;
 * a run without one enables every tool. */
bool run_tool_enabled(const run *r, const char *name);

/* Loads the tenant's tool catalog into r->catalog and the tools offered to
 * a model into r->tool_defs (those the principal may call and the run
 * enables, borrowed from the catalog). Returns 0 or -1
 * (tools_unavailable, db_unavailable, cancelled, out of memory). */
int load_catalog(run *r);

/* Stores the TODO list (todos_json) and the intent in the run's row.
 * Returns 0 or -1. */
int save_todos(run *r);

/* Writes the run's end state to its row: intent, output (NULL for a run
 * that stopped), TODOs, metrics and finished_at. Used on every way out
 * once the row is loaded. Returns 0 or -1 (run_not_found when the row is
 * gone, a database failure, out of memory). */
int persist_run(run *r, const char *output);

/* ---- run_plan.c: the TODO list -------------------------------------------- */

/* "pending", "done", "failed" or "skipped" (a static string). */
const char *todo_state_name(todo_state s);

/* The TODO list as [{"id":1,"title":"...","status":"..."}, ...], owned by
 * the caller; NULL when out of memory. */
cJSON *todos_json(const run *r);

/* Marks every TODO not yet finished skipped, with why as its result. */
void skip_pending_todos(run *r, const char *why);

/* Frees the TODOs (titles, results, steps) and empties the list. */
void todos_free(run *r);

/* plan:todos: makes the TODO list, by the model when by_llm (falling back
 * to the deterministic planner when its plan cannot be used, saying so),
 * else by the deterministic planner; reason (NULL: none) goes in the
 * step's input. Then stores the list (save_todos). Returns 0 or -1. */
int phase_plan(run *r, bool by_llm, const char *reason);

/* Carries out the TODOs in order, each by its steps (planned by the model
 * first, plan:steps, when they are not yet), storing the list and emitting
 * job.progress after each. Returns 0 or -1. */
int phase_execute(run *r);

/* ---- run_calls.c: model calls --------------------------------------------- */

/* What call_llm sends besides the prompt and the run's own options. */
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

/* True when text is exactly NEED_PLAN, whitespace around it aside, the
 * direct path's model asking for a plan. NULL: false. */
bool is_need_plan(const char *text);

/*
 * One model call through the router, for step s, its text streamed as
 * llm.delta events when o->stream. Returns LLM_OK with *resp filled (the
 * caller frees it with llm_response_free; resp->text is never NULL), or
 * an error with why (why_size bytes) saying it in one line and nothing in
 * *resp to free. A cancel or the deadline seen during the call stops the
 * run (r->stopped), as does a failure to store an event or out of memory.
 * Under llm-required an answer from the built-in provider is no answer
 * (LLM_ERR_UNAVAILABLE).
 */
llm_err call_llm(run *r, const step *s, const call_opts *o, llm_response *resp, char *why,
                 size_t why_size);

/* Adds what a model call answered (provider, model, language_model,
 * finish_reason, usage) to a step's output o; the text is the caller's to
 * add. */
void j_llm_answer(cJSON *o, const run *r, const llm_response *resp, bool *ok);

/* ---- run_calls.c: tool calls ---------------------------------------------- */

/* What a tool call gave back: the text a model reads, and whether it ran. */
typedef struct tool_outcome {
    char *text;             /* malloc'd */
    bool ok;
} tool_outcome;

/*
 * Runs one tool call as its own tool:invoke step (an iteration): through
 * tools_call (the whole pipeline, audit and tool.called included) unless
 * its arguments are not a JSON object or the tool is not enabled for the
 * run. args_text is the model's raw argument text (args NULL then); for a
 * planned call args is the object (borrowed) and args_text NULL. call_id
 * (may be NULL) is the model's id of the call; for_model says the model
 * asked for it (and reads its output as JSON). Fills *out with what the
 * model or the next step reads: the result, or the refusal in words
 * (out->text malloc'd, the caller frees it). Returns 0, or -1 with the run
 * stopped and out->text NULL.
 */
int run_tool_call(run *r, const char *title, const char *tool, const cJSON *args,
                  const char *args_text, const char *call_id, bool for_model,
                  tool_outcome *out);

/* ---- run_calls.c: llm:call steps and the tool loop ------------------------ */

/* How an llm:call sequence ended. */
typedef enum llm_end {
    LLM_END_ANSWER,         /* *text holds the model's (raw) answer */
    LLM_END_FAILED,         /* the provider failed; why says how */
    LLM_END_STOPPED,        /* the run stopped */
} llm_end;

/*
 * Carries out one model task as llm:call steps: the model is called (with
 * the tools offered when a real model serves the run); when it asks for
 * tools they run, each a tool:invoke step, and the next llm:call sends
 * them back, until it answers without a tool call. todo_id (0: none) and
 * title label the steps; direct: the optional mode's direct path (task
 * unused, the answer not kept as a result, a bare NEED_PLAN not
 * streamed). Returns how it ended; on LLM_END_ANSWER *text is the raw
 * answer (malloc'd, the caller frees), on LLM_END_FAILED why (why_size
 * bytes) says why.
 */
llm_end run_llm_task(run *r, int todo_id, const char *title, const char *task,
                     bool direct, char **text, char *why, size_t why_size);

#endif
