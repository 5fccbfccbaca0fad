/*
 * run_steps.h - an agent run's steps: each a steps row and a pair of
 * events (step.started, step.completed), the checks made before one starts
 * (the run may go on; the cap on execution steps), and cleaning text
 * before the run stores or sends it. Above run_store.h, which writes the
 * rows; see run_state.h for the conventions.
 */
#ifndef AG_RUN_STEPS_H
#define AG_RUN_STEPS_H

#include <stdbool.h>
#include <cjson/cJSON.h>

#include "output_guard.h"
#include "pii.h"
#include "run_state.h"
#include "uuid.h"

#define RAW_REPLY_BYTES    2000 /* of a model's raw reply or arguments kept in a step */

/* A step between step_begin and step_end. */
typedef struct step {
    char id[UUID_STR_LEN];
    int idx;
    const char *action;
    long long t0;
    bool open;                  /* inserted, not yet ended */
    int model_calls;            /* model calls made during the step */
    double model_ms;            /* their time, ms (llm_response.model_ms) */
    int tool_calls;             /* tool calls made during the step */
    double tool_ms;             /* the tools' own time, ms (tool_call_result.handler_ms) */
    struct span *span;          /* its trace span while open (the thread's
                                   current context: model and tool calls
                                   made during the step are its children) */
} step;

/* ---- may the run go on ---------------------------------------------------- */

/* Checked before every step: returns -1 when the run stopped, was
 * cancelled or passed its deadline (stopping it so), else 0. */
int run_check_stop(run *r);

/* Lets an execution step (llm:call, tool:invoke) start: the run may go on
 * (run_check_stop) and is under its max_iterations, and the step is
 * counted. Returns 0 or -1 (iteration_limit, cancelled, run_timeout). */
int iteration_begin(run *r);

/* ---- steps and their events ----------------------------------------------- */

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

/* ---- cleaning text before it is stored or sent ---------------------------- */

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

#endif
