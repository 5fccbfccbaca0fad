/*
 * orchestrator.c - the agent-run orchestrator, the handler of job type
 * "agent.run" (handle_agent_run, orchestrator.h).
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
 * A tool call that needs approval (tools_catalog_needs_approval: its
 * manifest, or the run's approval "write-tools") stops the run before the
 * call: an approval request is recorded, the run's row keeps how many
 * steps it took, and the handler returns JOB_WAITING, so the job parks
 * (waiting) and gives its worker slot back. The decision (or the
 * approval's timeout, which counts as a denial) queues the job again; the
 * run then starts over on whichever worker takes it, replaying the model
 * and tool calls it made before from its journal (run_memo.h), without
 * writing or announcing those steps again, and carries out the call (or
 * tells the model it was denied, with the decider's note).
 *
 * A run in a session gets its session's earlier runs (prompt and output,
 * oldest first, the newest kept within AGENTGATE_SESSION_CONTEXT_BYTES) as
 * history.
 *
 * Finally agent_runs gets intent, output, todos, metrics and finished_at.
 * Every statement filters by the job's tenant and the run must belong to
 * this job (agent_runs.job_id), so a payload naming some other run, of
 * this tenant or another, finds nothing: run_not_found.
 *
 * This file has phase 1 (intent), phase 4 (the response, or the refusal)
 * and the handler, on top of the rest of the run, lowest first:
 * run_state.c (the run and why it stopped), run_store.c (its rows in
 * PostgreSQL), run_steps.c (its steps, the checks before each, cleaning
 * text), run_calls.c (model calls and their deltas, tool calls, the tool
 * loop) and run_plan.c (the TODO list: phases 2 and 3), each with its own
 * header and using only those below it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "intent.h"
#include "jsonutil.h"
#include "llm.h"
#include "log.h"
#include "output_guard.h"
#include "orchestrator.h"
#include "plan.h"
#include "run_calls.h"
#include "run_memo.h"
#include "run_plan.h"
#include "run_state.h"
#include "run_steps.h"
#include "run_store.h"
#include "strbuf.h"
#include "tools.h"
#include "uuid.h"

#define CLASSIFY_MAX_TOKENS 8
#define PREVIEW_BYTES      500  /* of the prompt, in step inputs and events */
#define QUOTE_BYTES        200  /* of the prompt, in the template response */

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
static int classify_by_llm(run *r, step *s, cJSON *o, bool *ok)
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
    if (!intent_is_confident(&r->intent) && run_smart(r)) {
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
        if (rc > 0 && run_llm_required(r)) {
            cJSON_Delete(o);
            step_end(r, &s, "failed", run_message_json("error", why));
            return run_llm_unavailable(r, why);
        }
    } else if (run_llm_required(r)) {
        cJSON_Delete(o);
        step_end(r, &s, "failed", run_message_json("error", r->route_note));
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
    if (!raw || run_clean(r, raw, &ct) < 0) {
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

/* ---- the handler ----------------------------------------------------------- */

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
    run_results_free(r);
    memo_free(r);
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
        if (run_llm_required(r))
            return run_llm_unavailable(r, why);
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
    if (run_llm_required(r) && !run_smart(r))
        return run_fail(r, "llm_unavailable", "response_mode is llm-required and %s",
                        r->route_note[0] ? r->route_note : "no language model serves the run");
    if (run_check_stop(r) < 0 || load_catalog(r) < 0)
        return -1;

    char *direct = NULL;
    if (run_smart(r) && strcmp(r->planning_mode, "optional") == 0) {
        char reason[400] = "";
        if (direct_path(r, &direct, reason, sizeof(reason)) < 0)
            return -1;
        if (!direct && (run_check_stop(r) < 0 || phase_plan(r, true, reason) < 0))
            return -1;
    } else if (run_check_stop(r) < 0 ||
               phase_plan(r, run_smart(r) && strcmp(r->planning_mode, "full") == 0, NULL) < 0) {
        return -1;
    }
    if (!direct && phase_execute(r) < 0)
        return -1;
    if (run_check_stop(r) < 0) {
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

    if (load_run(&r) < 0 || clear_old_steps(&r) < 0 || memo_begin(&r) < 0 ||
        load_history(&r) < 0 || resolve_route(&r) < 0) {
        job_outcome early = r.outcome == JOB_CANCELLED ? JOB_CANCELLED
                                                       : fail_now(out, r.code, r.message);
        if (r.prompt)           /* the row was loaded: record how it ended */
            persist_run(&r, NULL);
        run_free(&r);
        return early;
    }

    char *output = NULL;
    int rc = run_phases(&r, &output);
    if (rc < 0 && r.outcome == JOB_WAITING) {
        /* Parked: the row keeps how far it got; the approval.requested
         * event goes with the job's move to waiting. */
        if (memo_save(&r) < 0 || persist_run(&r, NULL) < 0 || !r.waiting) {
            job_outcome o = fail_now(out, "db_error", "the waiting run's state could not be "
                                     "stored");
            run_free(&r);
            return o;
        }
        out->result = r.waiting;
        r.waiting = NULL;
        run_free(&r);
        return JOB_WAITING;
    }
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
