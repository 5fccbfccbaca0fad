/*
 * run_calls.h - an agent run's calls out: model calls through the router
 * (their text streamed as llm.delta events), tool calls (each its own
 * tool:invoke step through tools_call), and llm:call steps whose model
 * asks for tools, round after round. Above run_steps.h; see run_state.h
 * for the conventions.
 */
#ifndef AG_RUN_CALLS_H
#define AG_RUN_CALLS_H

#include <stdbool.h>
#include <stddef.h>
#include <cjson/cJSON.h>

#include "llm.h"
#include "run_state.h"
#include "run_steps.h"

#define DELTA_BUDGET       60   /* llm.delta events of the built-in provider per run */

/* ---- model calls ---------------------------------------------------------- */

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
 * (LLM_ERR_UNAVAILABLE). A call made (not replayed from the run's journal)
 * is counted in s->model_calls and its time added to s->model_ms.
 */
llm_err call_llm(run *r, step *s, const call_opts *o, llm_response *resp, char *why,
                 size_t why_size);

/* Adds what a model call answered (provider, model, language_model,
 * finish_reason, usage) to a step's output o; the text is the caller's to
 * add. */
void j_llm_answer(cJSON *o, const run *r, const llm_response *resp, bool *ok);

/* ---- tool calls ----------------------------------------------------------- */

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

/* ---- llm:call steps and the tool loop ------------------------------------- */

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
