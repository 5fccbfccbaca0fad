/*
 * run_plan.c - an agent run's TODO list (see run_plan.h; orchestrator.c
 * has the whole picture): phase 2, making it (plan:todos, by the
 * deterministic planner or by the model) and planning a TODO's steps when
 * the model plans them (plan:steps), and phase 3, carrying the TODOs out
 * in order, their llm:call and tool:invoke steps made by run_calls.c, the
 * list stored after each (run_store.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "jsonutil.h"
#include "plan.h"
#include "run_calls.h"
#include "run_plan.h"
#include "run_state.h"
#include "run_steps.h"
#include "run_store.h"
#include "strbuf.h"
#include "tools.h"

#define PLAN_TOOLS_TEXT_MAX 4096 /* bytes of the tool list in a planning task */
#define PLAN_MAX_TOKENS    1024

/* ---- TODOs ----------------------------------------------------------------- */

static void todo_finish(run *r, todo *t, todo_state state, const char *result)
{
    t->state = state;
    free(t->result);
    t->result = result ? strdup(result) : NULL;
    if (result && !t->result)
        run_oom(r);
}

/* Marks every TODO not yet finished skipped, for a run that stops. */
void skip_pending_todos(run *r, const char *why)
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

/* ---- tools in planning tasks ---------------------------------------------- */

/* A tool a model may plan: in the catalog and enabled for the run. */
static bool tool_plannable(void *user, const char *name)
{
    const run *r = user;
    return tools_catalog_has(r->catalog, name) && run_tool_enabled(r, name);
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

/* What the deterministic plan reads of the tenant's knowledge graph. */
typedef struct graph_reads {
    char tool[2][130];                          /* search_nodes, read_graph */
    char title[PLAN_GRAPH_TERMS][PLAN_TERM_MAX + 256];
} graph_reads;

/* The names of the tools of the tenant's graph server (its MCP server
 * whose resource is "graph") that the deterministic planner knows. */
#define GRAPH_RESOURCE "graph"
#define GRAPH_SEARCH   "search_nodes"
#define GRAPH_READ     "read_graph"

/*
 * A graph question reads the tenant's knowledge graph first: a search
 * for each of the prompt's key terms, or the whole graph when it has
 * none (or the server cannot search). Fills out (room for max) with
 * titles and names kept in g. Returns how many, or -1 (out of memory).
 */
static int plan_graph_reads(run *r, graph_reads *g, plan_tool *out, int max)
{
    char terms[PLAN_GRAPH_TERMS][PLAN_TERM_MAX + 1];
    bool search = tools_catalog_mcp_tool(r->catalog, GRAPH_RESOURCE, GRAPH_SEARCH,
                                         g->tool[0], sizeof(g->tool[0]));
    bool read = tools_catalog_mcp_tool(r->catalog, GRAPH_RESOURCE, GRAPH_READ, g->tool[1],
                                       sizeof(g->tool[1]));
    int nterms = search ? plan_graph_terms(r->prompt, terms, PLAN_GRAPH_TERMS) : 0;
    int n = 0;

    for (int i = 0; i < nterms && n < max; i++, n++) {
        snprintf(g->title[i], sizeof(g->title[i]), "Search the knowledge graph for \"%s\" "
                 "(%s)", terms[i], g->tool[0]);
        out[n] = (plan_tool){g->tool[0], g->title[i], cJSON_CreateObject()};
        if (!out[n].args || !cJSON_AddStringToObject(out[n].args, "query", terms[i])) {
            plan_tools_free(out, n + 1);
            return -1;
        }
    }
    if (n == 0 && read && max > 0) {
        out[n] = (plan_tool){g->tool[1], "Read the whole knowledge graph", cJSON_CreateObject()};
        if (!out[n++].args)
            return -1;
    }
    return n;
}

/*
 * The deterministic plan: the intent's model TODOs around the tools the
 * prompt asks for (plan.c), a graph question's reads of the knowledge
 * graph first. When it would take more iterations than the run may, the
 * model TODOs before the tools go first, then tools from the end. note
 * (note_size bytes) says what was dropped.
 */
static int make_plan(run *r, char *note, size_t note_size)
{
    const struct plan_template *pt = &plan_templates[0];
    for (size_t i = 0; i < sizeof(plan_templates) / sizeof(plan_templates[0]); i++)
        if (plan_templates[i].cls == r->intent.cls)
            pt = &plan_templates[i];

    plan_tool tools[PLAN_MAX_TOOLS];
    graph_reads graph;
    int ng = r->intent.cls == INTENT_GRAPH
                 ? plan_graph_reads(r, &graph, tools, PLAN_MAX_TOOLS) : 0;
    if (ng < 0)
        return run_oom(r);
    int nt = plan_match_tools(r->prompt, clock_wall_ms(), tools + ng, PLAN_MAX_TOOLS - ng);
    if (nt < 0) {
        plan_tools_free(tools, ng);
        return run_oom(r);
    }
    nt += ng;
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
static int plan_by_llm(run *r, step *s, cJSON *o, bool *ok, char *why, size_t why_size)
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
    char *raw = run_dup_cut(resp.text, RAW_REPLY_BYTES);
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
int phase_plan(run *r, bool by_llm, const char *reason)
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
    } else if (!run_smart(r)) {
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
        char *raw = run_dup_cut(resp.text, RAW_REPLY_BYTES);
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
        return run_result_add(r, t->title, ps->tool, to.text, to.ok);
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
        return step_end(r, &s, "skipped", run_message_json("reason", r->route_note));
    }
    char why[320] = "";
    char *text = NULL;
    llm_end end = run_llm_task(r, t->id, t->title, ps->task, false, &text, why, sizeof(why));
    if (end == LLM_END_STOPPED)
        return -1;
    if (end == LLM_END_FAILED) {
        if (run_llm_required(r))
            return run_llm_unavailable(r, why);
        char msg[400];
        snprintf(msg, sizeof(msg), "the model call failed: %s", why);
        *result = strdup(msg);
        if (!*result)
            return run_oom(r);
        return run_result_add(r, t->title, NULL, msg, false);
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

int phase_execute(run *r)
{
    for (int i = 0; i < r->n_todos; i++) {
        todo *t = &r->todos[i];
        if (run_check_stop(r) < 0)
            return -1;
        if (run_todo(r, t) < 0)
            return -1;
        if (save_todos(r) < 0)
            return -1;
        if (!r->replaying && job_progress(r->ctx, i + 1, r->n_todos, t->title) < 0)
            return run_fail(r, "event_write_failed", "a job.progress event could not be stored");
    }
    return 0;
}
