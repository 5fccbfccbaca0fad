/*
 * run_steps.c - an agent run's steps (see run_steps.h; orchestrator.c has
 * the whole picture): the checks before each (a cancel or the deadline
 * stops the run, recorded once in run_state.c; execution steps are
 * capped), the steps themselves (a steps row, written through
 * run_db_command, and a pair of events step.started / step.completed
 * each), and cleaning text (personal data scrubbed, output guard) before
 * the run stores or sends it. Each step is a trace span too, a child of
 * the job attempt's.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "jsonutil.h"
#include "output_guard.h"
#include "pii.h"
#include "run_state.h"
#include "run_steps.h"
#include "run_store.h"
#include "trace.h"
#include "uuid.h"

#define MAX_RUN_STEPS      200  /* step rows per run: a backstop under the iteration cap */

/* ---- may the run go on --------------------------------------------------- */

/* Checked before every step. Returns -1 (run stopped) or 0. */
int run_check_stop(run *r)
{
    if (r->stopped)
        return -1;
    if (job_cancelled(r->ctx))
        return run_cancelled(r);
    if (run_expired(r))
        return run_timed_out(r);
    return 0;
}

/* An execution step (llm:call, tool:invoke) may start: the cap on them
 * and the deadline are checked, and it is counted. */
int iteration_begin(run *r)
{
    if (run_check_stop(r) < 0)
        return -1;
    if (r->m.iterations >= r->max_iterations)
        return run_fail(r, "iteration_limit",
                        "the run reached its limit of %d iterations (llm:call and "
                        "tool:invoke steps) before it finished", r->max_iterations);
    r->m.iterations++;
    return 0;
}

/* ---- steps ---------------------------------------------------------------- */

int run_emit(run *r, const char *type, const cJSON *data)
{
    if (r->replaying)           /* sent before the run waited */
        return 0;
    if (job_emit(r->ctx, type, data) < 0)
        return run_fail(r, "event_write_failed",
                        "a %s event could not be stored (storage failed or the job "
                        "is no longer this attempt's)", type);
    return 0;
}

/* A step's span ("step <action>"), started once its row is in so that
 * every span started is ended by step_end. */
static void step_span_begin(const run *r, step *s)
{
    char name[96];
    snprintf(name, sizeof name, "step %s", s->action);
    s->span = span_start_current(name, SPAN_KIND_INTERNAL);
    span_set_str(s->span, "agentgate.step.action", s->action);
    span_set_int(s->span, "agentgate.step.index", s->idx);
    span_set_str(s->span, "agentgate.step.id", s->id);
    span_set_str(s->span, "agentgate.run_id", r->id);
}

static void step_span_end(step *s, const char *status)
{
    span_set_str(s->span, "agentgate.step.status", status);
    if (strcmp(status, "failed") == 0) span_set_error(s->span, NULL);
    span_end(s->span);
    s->span = NULL;
}

/*
 * Starts a step: its row, status 'running', and step.started. Takes
 * ownership of input. Returns 0, or -1 with the run stopped.
 */
int step_begin(run *r, step *s, const char *action, cJSON *input)
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
    if (r->replaying) {
        if (s->idx < r->replay_steps) {
            /* Recorded before the run waited: its row stays as it is. */
            cJSON_Delete(input);
            return 0;
        }
        r->replaying = false;
    }

    char idx[16];
    snprintf(idx, sizeof(idx), "%d", s->idx);
    char *input_text = json_print(input);
    if (!input_text) {
        cJSON_Delete(input);
        return run_oom(r);
    }
    const char *params[6] = {s->id, r->job->tenant_id, r->id, idx, action, input_text};
    int rc = run_db_command(r, sql, 6, params);
    free(input_text);
    if (rc < 0) {
        cJSON_Delete(input);
        return -1;
    }
    s->open = true;
    step_span_begin(r, s);

    cJSON *ev = cJSON_CreateObject();
    bool ok = ev != NULL;
    json_add_str(ev, "step_id", s->id, &ok);
    json_add_num(ev, "index", s->idx, &ok);
    json_add_str(ev, "action", action, &ok);
    json_add_item(ev, "input", input, &ok);
    ev = json_done(ev, ok);
    if (!ev)
        return run_oom(r);
    rc = run_emit(r, "step.started", ev);
    cJSON_Delete(ev);
    return rc;
}

/* ms to the microsecond, as the step's output shows it. */
static double ms_rounded(double ms)
{
    return floor(ms * 1000.0 + 0.5) / 1000.0;
}

/* Adds to a step's output the time its model and tool calls took
 * (model_ms, tool_ms: members only of steps that made such calls), so
 * that latency_ms less them is the time agentgate itself spent. */
static bool add_call_times(const step *s, cJSON *output)
{
    bool ok = true;
    if (!cJSON_IsObject(output))
        return true;
    if (s->model_calls > 0 && !cJSON_HasObjectItem(output, "model_ms"))
        json_add_num(output, "model_ms", ms_rounded(s->model_ms), &ok);
    if (s->tool_calls > 0 && !cJSON_HasObjectItem(output, "tool_ms"))
        json_add_num(output, "tool_ms", ms_rounded(s->tool_ms), &ok);
    return ok;
}

/*
 * Ends a step with status ('completed', 'failed', 'skipped') and output
 * (owned): the row, then step.completed. Also used on the way out of a
 * stopped run, where it does its best and keeps the first failure.
 */
int step_end(run *r, step *s, const char *status, cJSON *output)
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
    step_span_end(s, status);
    if (!output)
        return run_oom(r);
    if (!add_call_times(s, output)) {
        cJSON_Delete(output);
        return run_oom(r);
    }
    long long latency = clock_mono_ms() - s->t0;
    char lat[24];
    snprintf(lat, sizeof(lat), "%lld", latency);
    char *out_text = json_print(output);
    if (!out_text) {
        cJSON_Delete(output);
        return run_oom(r);
    }
    const char *params[6] = {status, out_text, lat, s->id, r->job->tenant_id, r->id};
    int rc = run_db_command(r, sql, 6, params);
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
    rc = run_emit(r, "step.completed", ev);
    cJSON_Delete(ev);
    return rc;
}

/* {key: message}. */
cJSON *run_message_json(const char *key, const char *message)
{
    cJSON *o = cJSON_CreateObject();
    bool ok = o != NULL;
    json_add_str(o, key, message, &ok);
    return json_done(o, ok);
}

/* Closes a step left open by a stop: 'failed', saying why. */
void step_abandon(run *r, step *s)
{
    if (s->open)
        step_end(r, s, "failed", run_message_json("error", r->stopped ? r->message : "stopped"));
}

/* ---- cleaning text before it is stored or sent ---------------------------- */

/* Scrubs personal data, then guards (UTF-8, markers, size cap). Counts
 * what was found in the run's metrics. Returns 0 or -1 (out of memory). */
int run_clean(run *r, const char *text, clean_text *out)
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
void j_clean(cJSON *o, const clean_text *c, bool *ok)
{
    json_add_str(o, "text", c->text, ok);
    if (pii_total(&c->pii) > 0)
        json_add_item(o, "pii_redacted", pii_json(&c->pii), ok);
    if (c->guard.n_markers > 0 || c->guard.truncated || c->guard.invalid_utf8 > 0)
        json_add_item(o, "guard", guard_json(&c->guard), ok);
}
