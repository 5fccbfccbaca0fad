/*
 * plan.h - the pure parts of an agent run's planning, kept apart from the
 * orchestrator so they can be tested without a database or a model:
 *
 *   - the deterministic planner's tool choice: which built-in tools a
 *     prompt asks for, with their arguments ("what jobs failed today?" is
 *     jobs.list {"status":"failed","since":"<today 00:00Z>"});
 *   - strict parsing of what a model answers when asked to plan: a TODO
 *     list, and for one TODO a list of steps (llm:call or tool:invoke).
 *
 * Anything a model sends that does not fit exactly (wrong shape, too many
 * items, strings too long, a tool that is not in the catalog) is refused
 * with a one-line reason; the orchestrator then falls back to the
 * deterministic plan and says so. The functions are thread-safe.
 */
#ifndef AG_WORKER_PLAN_H
#define AG_WORKER_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <cjson/cJSON.h>

#define PLAN_MAX_TODOS      6       /* TODOs a model may plan */
#define PLAN_MAX_STEPS      4       /* steps a model may plan for one TODO */
#define PLAN_TITLE_MAX      200     /* bytes of a TODO title */
#define PLAN_TASK_MAX       600     /* bytes of an llm:call step's task */
#define PLAN_ARGS_MAX       4096    /* bytes of a tool step's arguments, as JSON */
#define PLAN_REPLY_MAX      16384   /* bytes of a whole planning reply */
#define PLAN_MAX_TOOLS      8       /* tools the deterministic planner picks */

/* What the planning calls ask of the model: PLAN_TODOS_TASK, then the
 * tools it may use, one per line ("- name: description"). */
#define PLAN_TODOS_TASK \
    "Plan how to answer the user's request. Reply with JSON only, exactly of the form " \
    "{\"todos\":[{\"title\":\"...\"}]}: 1 to 6 TODOs in the order to do them, each title " \
    "one short imperative sentence (under 200 characters). The last TODO prepares the " \
    "answer. Tools that later steps can use:"

#define PLAN_STEPS_TASK \
    "Choose the steps for one TODO of the plan. Reply with JSON only, exactly of the form " \
    "{\"steps\":[...]} with 1 to 4 steps, each either {\"action\":\"llm:call\",\"task\":" \
    "\"what to work out\"} or {\"action\":\"tool:invoke\",\"tool\":\"<name>\"," \
    "\"arguments\":{...}} naming one of these tools:"

/* A tool the deterministic planner chose. */
typedef struct plan_tool {
    const char *tool;           /* static: "jobs.list" */
    const char *title;          /* static: the TODO's title */
    cJSON *args;                /* owned: the arguments object */
} plan_tool;

/*
 * Picks the built-in tools prompt asks for (see plan.c for the words),
 * at most max, into out, in a fixed order. now_ms (epoch ms) dates
 * "today". Returns how many, or -1 when memory runs out (out then holds
 * nothing to free). Free each args with plan_tools_free.
 */
int plan_match_tools(const char *prompt, long long now_ms, plan_tool *out, int max);

void plan_tools_free(plan_tool *t, int n);

#define PLAN_GRAPH_TERMS    2       /* searches of a knowledge graph planned */
#define PLAN_TERM_MAX       64      /* bytes of one search term */

/*
 * The words of prompt to search a knowledge graph for, at most max into
 * terms: words that are neither common English words nor the vocabulary
 * of graphs ("entities", "connected", "graph"), capitalised ones (names)
 * first, each once (ignoring ASCII case), as written. Returns how many
 * (0: nothing to search for; read the whole graph instead).
 */
int plan_graph_terms(const char *prompt, char terms[][PLAN_TERM_MAX + 1], int max);

/* A model's TODO list. */
typedef struct plan_todos {
    char *title[PLAN_MAX_TODOS];    /* malloc'd */
    int n;
} plan_todos;

/*
 * Parses len bytes of a model's reply to PLAN_TODOS_TASK: one JSON object
 * {"todos":[{"title":str}, ...]} (optionally inside a ``` fence), 1 to
 * PLAN_MAX_TODOS TODOs, each title 1 to PLAN_TITLE_MAX bytes after
 * trimming, no control characters. Returns 0 with *out filled (free with
 * plan_todos_free), or -1 with a reason in err (err_size bytes) and *out
 * empty.
 */
int plan_parse_todos(const char *text, size_t len, plan_todos *out, char *err,
                     size_t err_size);

void plan_todos_free(plan_todos *t);

typedef enum plan_action { PLAN_LLM_CALL, PLAN_TOOL_INVOKE } plan_action;

typedef struct plan_step {
    plan_action action;
    char *task;                 /* PLAN_LLM_CALL: what to work out; malloc'd */
    char *tool;                 /* PLAN_TOOL_INVOKE: the tool's name; malloc'd */
    cJSON *args;                /* PLAN_TOOL_INVOKE: an object; owned */
} plan_step;

typedef struct plan_steps {
    plan_step step[PLAN_MAX_STEPS];
    int n;
} plan_steps;

/* Tells whether a tool of that name may be planned. */
typedef bool (*plan_tool_known_fn)(void *user, const char *name);

/*
 * Parses a model's reply to PLAN_STEPS_TASK: {"steps":[...]} (optionally
 * fenced), 1 to PLAN_MAX_STEPS steps, each {"action":"llm:call","task":
 * str of 1..PLAN_TASK_MAX bytes} or {"action":"tool:invoke","tool":name
 * for which known(user, name) is true,"arguments"?: object of at most
 * PLAN_ARGS_MAX bytes}. Returns 0 with *out filled (free with
 * plan_steps_free), or -1 with a reason in err and *out empty.
 */
int plan_parse_steps(const char *text, size_t len, plan_tool_known_fn known, void *user,
                     plan_steps *out, char *err, size_t err_size);

void plan_steps_free(plan_steps *s);

#endif
