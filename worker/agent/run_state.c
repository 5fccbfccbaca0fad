/*
 * run_state.c - the small helpers of an agent run's state (see
 * run_state.h): recording why the run stopped, reading what its row asked
 * for, and its TODO list and step results as data. Nothing here touches
 * PostgreSQL, emits an event or calls a model; the files above do that
 * and come here to read or change the run.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "jsonutil.h"
#include "output_guard.h"
#include "run_state.h"

/* ---- why the run stopped -------------------------------------------------- */

/* Records the first reason the run stops; later ones are consequences. */
int run_fail(run *r, const char *code, const char *fmt, ...)
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

int run_cancelled(run *r)
{
    if (r->stopped)
        return -1;
    r->stopped = true;
    r->outcome = JOB_CANCELLED;
    snprintf(r->code, sizeof(r->code), "cancelled");
    snprintf(r->message, sizeof(r->message), "the run was cancelled");
    return -1;
}

int run_wait(run *r, cJSON *data)
{
    if (r->stopped) {
        cJSON_Delete(data);
        return -1;
    }
    r->stopped = true;
    r->outcome = JOB_WAITING;
    r->waiting = data;
    snprintf(r->code, sizeof(r->code), "waiting");
    snprintf(r->message, sizeof(r->message), "the run waits for approval of a tool call");
    return -1;
}

int run_oom(run *r)
{
    return run_fail(r, "out_of_memory", "the worker ran out of memory");
}

int run_llm_unavailable(run *r, const char *why)
{
    return run_fail(r, "llm_unavailable", "response_mode is llm-required and no "
                    "language model answered: %s", why);
}

bool run_expired(const run *r)
{
    return clock_mono_ms() >= r->deadline;
}

int run_timed_out(run *r)
{
    return run_fail(r, "run_timeout", "the run passed its timeout of %lld ms",
                    r->timeout_ms);
}

/* ---- what the run asked for ----------------------------------------------- */

bool run_llm_required(const run *r)
{
    return strcmp(r->response_mode, "llm-required") == 0;
}

/* The model plans, classifies and gets tools: a real one answers. */
bool run_smart(const run *r)
{
    return r->llm_on && r->language_model;
}

bool run_tool_enabled(const run *r, const char *name)
{
    const cJSON *it;
    if (!r->tools)
        return true;
    cJSON_ArrayForEach(it, r->tools)
        if (cJSON_IsString(it) && strcmp(it->valuestring, name) == 0)
            return true;
    return false;
}

/* A copy of at most max bytes of s, cut on a character boundary. */
char *run_dup_cut(const char *s, size_t max)
{
    size_t len = strlen(s);
    return strndup(s, output_guard_utf8_cut(s, len, max));
}

/* ---- the TODO list as data ------------------------------------------------ */

const char *todo_state_name(todo_state s)
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
cJSON *todos_json(const run *r)
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

void todos_free(run *r)
{
    for (int i = 0; i < r->n_todos; i++) {
        free(r->todos[i].title);
        free(r->todos[i].result);
        plan_steps_free(&r->todos[i].steps);
    }
    r->n_todos = 0;
}

/* ---- step results --------------------------------------------------------- */

static void result_clear(result_item *it)
{
    free(it->title);
    free(it->tool);
    free(it->text);
}

/* Keeps what a step produced for the calls after it (copies). */
int run_result_add(run *r, const char *title, const char *tool, const char *text, bool ok)
{
    if (r->n_results == MAX_RESULTS) {
        result_clear(&r->results[0]);
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
size_t run_build_context(const run *r, llm_context_item *items)
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

void run_results_free(run *r)
{
    for (int i = 0; i < r->n_results; i++)
        result_clear(&r->results[i]);
    r->n_results = 0;
}
