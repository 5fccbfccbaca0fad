/*
 * run_state.h - an agent run being carried out: the `run` struct (what its
 * row asked for, what it has done so far, how it stopped) and the small
 * helpers that only read or set it. The bottom of the files that carry a
 * run out, each with its own header and using only those below it:
 *
 *   run_state     this: the run, why it stopped, its TODO list and step
 *                 results as data;
 *   run_store     the run's rows in PostgreSQL: loading, history, which
 *                 model, the tool catalog, the TODO list and final state;
 *   run_memo      the journal of its calls and its approval requests, for
 *                 waiting on a person and resuming;
 *   run_steps     its steps and their events, the checks before each,
 *                 cleaning text;
 *   run_calls     model calls with their llm.delta events, tool calls,
 *                 and llm:call steps with the tool loop;
 *   run_plan      the TODO list: plan:todos, plan:steps and carrying the
 *                 TODOs out;
 *   orchestrator  the phases (intent, response, refusal) and the handler.
 *
 * Conventions: r is the run being carried out, and a function returning
 * int returns 0, or -1 with the run stopped (r->stopped; r->outcome,
 * r->code and r->message say why, the first reason winning). Strings
 * passed in are borrowed unless a comment says otherwise. "*ok" arguments
 * follow jsonutil.h: they become false when a JSON value could not be
 * built, and nothing more is added once they are.
 */
#ifndef AG_RUN_STATE_H
#define AG_RUN_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <cjson/cJSON.h>

#include "config.h"
#include "intent.h"
#include "job_ctx.h"
#include "llm.h"
#include "plan.h"
#include "tools.h"
#include "uuid.h"

#define MAX_TODOS          12   /* two model TODOs, PLAN_MAX_TOOLS tools, the last one */
#define MAX_RESULTS        64   /* step results kept for later calls */
#define DEFAULT_TIMEOUT_MS 120000 /* a run's timeout when neither it nor the config sets one */
#define DEFAULT_APPROVAL_TIMEOUT_S 86400 /* a tool call's wait for approval, likewise */

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
    long long builtin_pause_ms;     /* of overall_ms, the built-in provider's
                                       deliberate pauses between deltas */
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
    /* Approval of tool calls, and resuming after one (run_memo.h). */
    bool approve_writes;        /* approval "write-tools": every write tool waits */
    long long approval_timeout_s;
    int replay_steps;           /* steps an earlier stretch of the run recorded */
    bool replaying;             /* re-making them from the journal: no rows, no events */
    cJSON *journal;             /* the calls made, seq 1 first (null: none kept) */
    int journal_saved;          /* how many of them PostgreSQL has */
    int call_seq;               /* the last call's place in the journal */
    cJSON *waiting;             /* approval.requested data once the run waits */
    int deltas_left;            /* built-in pacing budget (run_calls.h) */
    long long delta_events;
    run_metrics m;

    /* How it stopped, when it stopped early. */
    bool stopped;
    job_outcome outcome;
    char code[64];
    char message[512];
} run;

/* ---- why the run stopped -------------------------------------------------- */

/* Records the first reason the run stops: marks it failed with code and
 * the formatted message (cut to fit r->message). A run already stopped
 * keeps its reason (later ones are consequences). Returns -1, so a caller
 * can "return run_fail(...)". */
int run_fail(run *r, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Stops the run as cancelled (code "cancelled"), unless it stopped
 * already. Returns -1. */
int run_cancelled(run *r);

/* Stops the run to wait for a person's approval (outcome JOB_WAITING,
 * code "waiting") with the approval.requested event's data (owned),
 * unless it stopped already (data is then freed). Returns -1. */
int run_wait(run *r, cJSON *data);

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

/* ---- what the run asked for ----------------------------------------------- */

/* True when the run's response_mode is llm-required. */
bool run_llm_required(const run *r);

/* True when a real language model serves the run's model calls: only
 * then does a model classify, plan and get tools. */
bool run_smart(const run *r);

/* True when the run's own tool list (agent_runs.tools) enables tool name;
 * a run without one enables every tool. */
bool run_tool_enabled(const run *r, const char *name);

/* A copy of at most max bytes of s, cut on a UTF-8 character boundary;
 * malloc'd, the caller frees it. NULL when out of memory (the run is not
 * stopped for it: the caller decides). */
char *run_dup_cut(const char *s, size_t max);

/* ---- the TODO list as data ------------------------------------------------ */

/* "pending", "done", "failed" or "skipped" (a static string). */
const char *todo_state_name(todo_state s);

/* The TODO list as [{"id":1,"title":"...","status":"..."}, ...], owned by
 * the caller; NULL when out of memory. */
cJSON *todos_json(const run *r);

/* Frees the TODOs (titles, results, steps) and empties the list. */
void todos_free(run *r);

/* ---- step results --------------------------------------------------------- */

/* Keeps copies of what a finished step produced (title, NULL taken as
 * "step"; tool, NULL for a model step; text) for the model calls after it.
 * Past MAX_RESULTS the oldest is dropped. Returns 0 or -1 (out of
 * memory). */
int run_result_add(run *r, const char *title, const char *tool, const char *text, bool ok);

/* Fills items (room for LLM_MAX_CONTEXT_ITEMS) with the newest results,
 * oldest first, their strings borrowed from r. Returns how many. */
size_t run_build_context(const run *r, llm_context_item *items);

/* Frees the results and empties the list. */
void run_results_free(run *r);

#endif
