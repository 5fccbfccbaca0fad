/*
 * plan.c - the deterministic planner's tool choice and strict parsing of
 * model-made plans (see plan.h).
 *
 * Tool choice reads the prompt as words (intent_match's patterns, so case,
 * punctuation and invisible characters do not matter) and asks, in this
 * order:
 *
 *   system.time        time, clock, utc, date, timestamp, timezone, "what
 *                      day", and "today" when it is not about jobs
 *   system.health      health, uptime, alive, liveness, heartbeat
 *   jobs.get           "job" with a UUID in the prompt: {"id"}
 *   jobs.list          "job(s)" with a status word (failed, succeeded,
 *                      running, queued, cancelled, or a synonym):
 *                      {"status"}, plus "since" = today 00:00 UTC when the
 *                      prompt says today; "job(s)" with list, show, recent,
 *                      my, which or what: {}
 *   agent.history      history, or earlier/previous/prior/past/last +
 *                      run(s)/turn(s)/question(s)/conversation/message(s),
 *                      or "what did I ask/say"
 *   model.list         models, llm(s), or which/what/available/list + model
 *   security.describe_principal
 *                      "who am I", principal, scopes, permissions, "my
 *                      role(s)/identity/access"
 *   catalog.search     tool(s), capabilities, "what can you/agentgate do":
 *                      {"query": the prompt}
 *
 * A graph question also reads the tenant's knowledge graph, whose tools
 * the catalog knows (run_plan.c); plan_graph_terms picks what to search
 * it for.
 */
#include "plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "clock.h"
#include "intent.h"
#include "jsonutil.h"
#include "uuid.h"

#define QUERY_MAX 1000      /* catalog.search's own limit */

/* ---- deterministic tool choice ------------------------------------------ */

typedef struct status_words {
    const char *status;
    const char *pattern;
} status_words;

static const status_words job_statuses[] = {
    {"failed", "failed|fail|fails|failing|failure|failures|errored|crashed|broken"},
    {"succeeded", "succeeded|succeed|successful|successfully|success|completed|finished|"
                  "passed"},
    {"running", "running|active|ongoing|executing|inflight"},
    {"queued", "queued|pending|waiting|enqueued"},
    {"cancelled", "cancelled|canceled|aborted|cancellations"},
};

#define JOB_WORD        "job|jobs"
#define TODAY_WORD      "today|todays"
#define TIME_WORDS      "time|clock|utc|gmt|date|timestamp|datetime|timezone"
#define HEALTH_WORDS    "health|healthy|uptime|alive|liveness|heartbeat"
#define JOB_LIST_WORDS  "list|show|recent|latest|my|which|what|all|any"
#define HISTORY_WORDS   "history"
#define HISTORY_PHRASE  "earlier|previous|prior|past|last run|runs|turn|turns|question|" \
                        "questions|conversation|conversations|message|messages|answer|answers"
#define ASKED_PHRASE    "what did i ask|say|asked|said"
#define MODEL_WORDS     "models|llm|llms"
#define MODEL_PHRASE    "which|what|available|list model"
#define WHOAMI_PHRASE   "who am i"
#define PRINCIPAL_WORDS "principal|scopes|permissions|entitlements"
#define MY_PHRASE       "my scope|role|roles|identity|access|permission|token|claims"
#define TOOL_WORDS      "tool|tools|capabilities|capability"
#define CAN_DO_PHRASE   "what can you|agentgate|it do"

typedef struct words_of {
    const char *prompt;
    size_t len;
    bool oom;
} words_of;

/* 1 when the prompt matches pattern; records running out of memory. */
static bool has(words_of *w, const char *pattern)
{
    int r = intent_match(w->prompt, w->len, pattern);
    if (r < 0)
        w->oom = true;
    return r == 1;
}

static bool is_hex(int c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* The first UUID standing alone in s, lowercased into out. */
static bool find_uuid(const char *s, char out[UUID_STR_LEN])
{
    size_t len = strlen(s);
    for (size_t i = 0; i + 36 <= len; i++) {
        if (i > 0 && (is_hex((unsigned char)s[i - 1]) || s[i - 1] == '-'))
            continue;
        if (i + 36 < len && (is_hex((unsigned char)s[i + 36]) || s[i + 36] == '-'))
            continue;
        char buf[37];
        memcpy(buf, s + i, 36);
        buf[36] = '\0';
        if (uuid_parse(buf, out))
            return true;
    }
    return false;
}

/* Start of the UTC day of now_ms, RFC 3339. */
static void start_of_day(long long now_ms, char *out, size_t size)
{
    long long day = now_ms / 86400000LL * 86400000LL;
    clock_format_rfc3339(day, out, size);
}

/* Adds a tool with args (owned; NULL stands for running out of memory). */
static int add_tool(plan_tool *out, int *n, int max, const char *tool, const char *title,
                    cJSON *args)
{
    if (!args)
        return -1;
    if (*n >= max) {
        cJSON_Delete(args);
        return 0;
    }
    out[*n].tool = tool;
    out[*n].title = title;
    out[*n].args = args;
    (*n)++;
    return 0;
}

static cJSON *args_with(const char *k1, const char *v1, const char *k2, const char *v2)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    if ((k1 && !cJSON_AddStringToObject(o, k1, v1)) ||
        (k2 && !cJSON_AddStringToObject(o, k2, v2))) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* jobs.get, jobs.list or nothing. Returns whether one was chosen. */
static int choose_jobs_tool(words_of *w, long long now_ms, plan_tool *out, int *n, int max,
                            bool *chosen)
{
    char id[UUID_STR_LEN];

    *chosen = false;
    if (!has(w, JOB_WORD))
        return 0;
    if (find_uuid(w->prompt, id)) {
        *chosen = true;
        return add_tool(out, n, max, "jobs.get", "Look the job up (jobs.get)",
                        args_with("id", id, NULL, NULL));
    }
    const char *status = NULL;
    for (size_t i = 0; !status && i < sizeof(job_statuses) / sizeof(job_statuses[0]); i++)
        if (has(w, job_statuses[i].pattern))
            status = job_statuses[i].status;
    if (!status && !has(w, JOB_LIST_WORDS))
        return 0;
    *chosen = true;
    char since[32];
    bool today = has(w, TODAY_WORD);
    if (today)
        start_of_day(now_ms, since, sizeof(since));
    return add_tool(out, n, max, "jobs.list",
                    status ? "List the matching jobs (jobs.list)" : "List the jobs (jobs.list)",
                    args_with(status ? "status" : NULL, status, today ? "since" : NULL, since));
}

int plan_match_tools(const char *prompt, long long now_ms, plan_tool *out, int max)
{
    words_of w = {prompt ? prompt : "", prompt ? strlen(prompt) : 0, false};
    int n = 0;
    bool jobs;

    if (max <= 0)
        return 0;
    /* Jobs first only to know whether "today" is about them. */
    plan_tool jobs_tool[1];
    int nj = 0;
    if (choose_jobs_tool(&w, now_ms, jobs_tool, &nj, 1, &jobs) < 0)
        goto oom;

    bool wants_time = has(&w, TIME_WORDS) || has(&w, "what day") ||
                      (!jobs && has(&w, TODAY_WORD));
    if (wants_time && add_tool(out, &n, max, "system.time",
                               "Look up the current UTC time (system.time)",
                               cJSON_CreateObject()) < 0)
        goto oom;
    if (has(&w, HEALTH_WORDS) &&
        add_tool(out, &n, max, "system.health", "Check the worker's health (system.health)",
                 cJSON_CreateObject()) < 0)
        goto oom;
    if (nj > 0) {
        if (n < max)
            out[n++] = jobs_tool[0];
        else
            cJSON_Delete(jobs_tool[0].args);
        nj = 0;
    }
    if ((has(&w, HISTORY_WORDS) || has(&w, HISTORY_PHRASE) || has(&w, ASKED_PHRASE)) &&
        add_tool(out, &n, max, "agent.history", "Read the session's earlier runs "
                 "(agent.history)", cJSON_CreateObject()) < 0)
        goto oom;
    if ((has(&w, MODEL_WORDS) || has(&w, MODEL_PHRASE)) &&
        add_tool(out, &n, max, "model.list", "List the available models (model.list)",
                 cJSON_CreateObject()) < 0)
        goto oom;
    if ((has(&w, WHOAMI_PHRASE) || has(&w, PRINCIPAL_WORDS) || has(&w, MY_PHRASE)) &&
        add_tool(out, &n, max, "security.describe_principal",
                 "Describe who the run acts for (security.describe_principal)",
                 cJSON_CreateObject()) < 0)
        goto oom;
    if (has(&w, TOOL_WORDS) || has(&w, CAN_DO_PHRASE)) {
        char query[QUERY_MAX + 1];
        size_t len = strlen(w.prompt);
        if (len > QUERY_MAX) {
            len = QUERY_MAX;
            while (len > 0 && ((unsigned char)w.prompt[len] & 0xC0) == 0x80)
                len--;
        }
        memcpy(query, w.prompt, len);
        query[len] = '\0';
        if (add_tool(out, &n, max, "catalog.search", "Find the tools that fit "
                     "(catalog.search)", args_with("query", query, NULL, NULL)) < 0)
            goto oom;
    }
    if (w.oom)
        goto oom;
    return n;
oom:
    if (nj > 0)
        cJSON_Delete(jobs_tool[0].args);
    plan_tools_free(out, n);
    return -1;
}

void plan_tools_free(plan_tool *t, int n)
{
    for (int i = 0; i < n; i++) {
        cJSON_Delete(t[i].args);
        t[i].args = NULL;
    }
}

/* ---- knowledge graph search terms ------------------------------------------ */

/* Words no graph search is about: common English, and the words of the
 * question itself (graphs, entities, connections). */
static const char *const graph_stopwords[] = {
    "a", "about", "all", "also", "am", "an", "and", "any", "are", "as", "at", "be", "been",
    "between", "both", "but", "by", "can", "could", "did", "do", "does", "each", "every",
    "explain", "find", "for", "from", "get", "give", "has", "have", "he", "her", "him",
    "his", "how", "i", "if", "in", "into", "is", "it", "its", "just", "know", "knows",
    "let", "like", "list", "look", "may", "me", "my", "of", "on", "or", "our", "please",
    "say", "says", "search", "she", "show", "so", "some", "tell", "than", "that", "the",
    "their", "them", "then", "there", "these", "they", "this", "those", "to", "up", "us",
    "was", "we", "were", "what", "whats", "when", "where", "which", "who", "whom", "whose",
    "why", "will", "with", "would", "you", "your",
    "graph", "graphs", "knowledge", "base", "memory", "entity", "entities", "node", "nodes",
    "relation", "relations", "relationship", "relationships", "edge", "edges",
    "observation", "observations", "connected", "connection", "connections", "linked",
    "link", "links", "related", "tied", "attached", "recorded", "stored", "known",
    "information", "info", "facts", "fact", "data",
    "whole", "entire", "everything", "full", "complete", "contents", "content", "summary",
    "summarize", "summarise", "describe", "overview",
};

static bool graph_stopword(const char *w, size_t n)
{
    char low[PLAN_TERM_MAX + 1];
    for (size_t i = 0; i < n; i++)
        low[i] = (char)((w[i] >= 'A' && w[i] <= 'Z') ? w[i] + 32 : w[i]);
    low[n] = '\0';
    for (size_t i = 0; i < sizeof(graph_stopwords) / sizeof(graph_stopwords[0]); i++)
        if (strcmp(low, graph_stopwords[i]) == 0)
            return true;
    return false;
}

static bool term_byte(unsigned char c)
{
    return c >= 0x80 || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
           (c >= 'A' && c <= 'Z');
}

static bool seen_term(char terms[][PLAN_TERM_MAX + 1], int n, const char *w, size_t len)
{
    for (int i = 0; i < n; i++)
        if (strlen(terms[i]) == len && strncasecmp(terms[i], w, len) == 0)
            return true;
    return false;
}

/* One pass over the prompt's words: capitalised ones or the others. */
static int collect_terms(const char *prompt, bool capitalised, char terms[][PLAN_TERM_MAX + 1],
                         int n, int max)
{
    const unsigned char *p = (const unsigned char *)prompt;
    while (*p && n < max) {
        while (*p && !term_byte(*p))
            p++;
        const unsigned char *start = p;
        while (*p && term_byte(*p))
            p++;
        size_t len = (size_t)(p - start);
        const char *w = (const char *)start;
        if (len < 2 || len > PLAN_TERM_MAX || (*start >= 'A' && *start <= 'Z') != capitalised ||
            graph_stopword(w, len) || seen_term(terms, n, w, len))
            continue;
        memcpy(terms[n], w, len);
        terms[n][len] = '\0';
        n++;
    }
    return n;
}

int plan_graph_terms(const char *prompt, char terms[][PLAN_TERM_MAX + 1], int max)
{
    if (!prompt || max <= 0)
        return 0;
    int n = collect_terms(prompt, true, terms, 0, max);
    return collect_terms(prompt, false, terms, n, max);
}

/* ---- parsing a model's plan --------------------------------------------- */

static bool is_space(int c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Narrows [*s, *s + *len) to the JSON inside: whitespace trimmed, and one
 * Markdown fence (```json ... ```) taken off. */
static void unfence(const char **s, size_t *len)
{
    const char *p = *s;
    size_t n = *len;

    while (n > 0 && is_space((unsigned char)p[0])) {
        p++;
        n--;
    }
    while (n > 0 && is_space((unsigned char)p[n - 1]))
        n--;
    if (n >= 6 && memcmp(p, "```", 3) == 0 && memcmp(p + n - 3, "```", 3) == 0) {
        const char *nl = memchr(p, '\n', n - 3);
        if (nl) {
            n -= (size_t)(nl + 1 - p) + 3;
            p = nl + 1;
            while (n > 0 && is_space((unsigned char)p[n - 1]))
                n--;
        }
    }
    *s = p;
    *len = n;
}

/* The object of a reply, with its one member key (an array). */
static cJSON *reply_array(const char *text, size_t len, const char *key, cJSON **root,
                          char *err, size_t err_size)
{
    char why[160];

    *root = NULL;
    if (!text) {
        snprintf(err, err_size, "the reply is empty");
        return NULL;
    }
    unfence(&text, &len);
    if (len == 0) {
        snprintf(err, err_size, "the reply is empty");
        return NULL;
    }
    if (len > PLAN_REPLY_MAX) {
        snprintf(err, err_size, "the reply is longer than %d bytes", PLAN_REPLY_MAX);
        return NULL;
    }
    *root = json_parse_bounded(text, len, PLAN_REPLY_MAX, 8, why, sizeof(why));
    if (!*root) {
        snprintf(err, err_size, "the reply is not JSON: %s", why);
        return NULL;
    }
    cJSON *arr = cJSON_IsObject(*root) ? cJSON_GetObjectItemCaseSensitive(*root, key) : NULL;
    if (!cJSON_IsArray(arr)) {
        snprintf(err, err_size, "the reply is not an object with a \"%s\" array", key);
        cJSON_Delete(*root);
        *root = NULL;
        return NULL;
    }
    return arr;
}

/* A trimmed copy of a string member of 1..max bytes with no control
 * characters, or NULL with the reason in err. */
static char *text_member(const cJSON *o, const char *key, size_t max, const char *what,
                         int index, char *err, size_t err_size)
{
    const char *v = json_get_string(o, key);
    if (!v) {
        snprintf(err, err_size, "%s %d has no \"%s\" string", what, index, key);
        return NULL;
    }
    while (is_space((unsigned char)*v))
        v++;
    size_t n = strlen(v);
    while (n > 0 && is_space((unsigned char)v[n - 1]))
        n--;
    if (n == 0 || n > max) {
        snprintf(err, err_size, "%s %d: \"%s\" must be 1 to %zu bytes", what, index, key, max);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c < 0x20 || c == 0x7F) {
            snprintf(err, err_size, "%s %d: \"%s\" holds a control character", what, index,
                     key);
            return NULL;
        }
    }
    char *copy = strndup(v, n);
    if (!copy)
        snprintf(err, err_size, "out of memory");
    return copy;
}

int plan_parse_todos(const char *text, size_t len, plan_todos *out, char *err,
                     size_t err_size)
{
    cJSON *root;

    memset(out, 0, sizeof(*out));
    cJSON *arr = reply_array(text, len, "todos", &root, err, err_size);
    if (!arr)
        return -1;
    int n = cJSON_GetArraySize(arr);
    if (n < 1 || n > PLAN_MAX_TODOS) {
        snprintf(err, err_size, "the plan has %d TODOs, not 1 to %d", n, PLAN_MAX_TODOS);
        cJSON_Delete(root);
        return -1;
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, arr) {
        char *title = cJSON_IsObject(it)
                          ? text_member(it, "title", PLAN_TITLE_MAX, "TODO", out->n + 1, err,
                                        err_size)
                          : (snprintf(err, err_size, "TODO %d is not an object", out->n + 1),
                             NULL);
        if (!title) {
            cJSON_Delete(root);
            plan_todos_free(out);
            return -1;
        }
        out->title[out->n++] = title;
    }
    cJSON_Delete(root);
    return 0;
}

void plan_todos_free(plan_todos *t)
{
    for (int i = 0; i < t->n; i++)
        free(t->title[i]);
    memset(t, 0, sizeof(*t));
}

static int parse_step(const cJSON *it, int index, plan_tool_known_fn known, void *user,
                      plan_step *st, char *err, size_t err_size)
{
    memset(st, 0, sizeof(*st));
    if (!cJSON_IsObject(it)) {
        snprintf(err, err_size, "step %d is not an object", index);
        return -1;
    }
    const char *action = json_get_string(it, "action");
    if (action && strcmp(action, "llm:call") == 0) {
        st->action = PLAN_LLM_CALL;
        st->task = text_member(it, "task", PLAN_TASK_MAX, "step", index, err, err_size);
        return st->task ? 0 : -1;
    }
    if (!action || strcmp(action, "tool:invoke") != 0) {
        snprintf(err, err_size, "step %d: \"action\" must be \"llm:call\" or \"tool:invoke\"",
                 index);
        return -1;
    }
    st->action = PLAN_TOOL_INVOKE;
    st->tool = text_member(it, "tool", 128, "step", index, err, err_size);
    if (!st->tool)
        return -1;
    if (!known || !known(user, st->tool)) {
        snprintf(err, err_size, "step %d names the tool \"%.128s\", which is not in the "
                 "catalog", index, st->tool);
        return -1;
    }
    const cJSON *args = cJSON_GetObjectItemCaseSensitive(it, "arguments");
    if (args && !cJSON_IsObject(args)) {
        snprintf(err, err_size, "step %d: \"arguments\" must be an object", index);
        return -1;
    }
    st->args = args ? cJSON_Duplicate(args, true) : cJSON_CreateObject();
    char *printed = st->args ? json_print(st->args) : NULL;
    if (!printed) {
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    size_t plen = strlen(printed);
    free(printed);
    if (plen > PLAN_ARGS_MAX) {
        snprintf(err, err_size, "step %d: the arguments are longer than %d bytes", index,
                 PLAN_ARGS_MAX);
        return -1;
    }
    return 0;
}

int plan_parse_steps(const char *text, size_t len, plan_tool_known_fn known, void *user,
                     plan_steps *out, char *err, size_t err_size)
{
    cJSON *root;

    memset(out, 0, sizeof(*out));
    cJSON *arr = reply_array(text, len, "steps", &root, err, err_size);
    if (!arr)
        return -1;
    int n = cJSON_GetArraySize(arr);
    if (n < 1 || n > PLAN_MAX_STEPS) {
        snprintf(err, err_size, "the TODO has %d steps, not 1 to %d", n, PLAN_MAX_STEPS);
        cJSON_Delete(root);
        return -1;
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, arr) {
        int rc = parse_step(it, out->n + 1, known, user, &out->step[out->n], err, err_size);
        out->n++;               /* so a half-parsed step is freed too */
        if (rc < 0) {
            cJSON_Delete(root);
            plan_steps_free(out);
            return -1;
        }
    }
    cJSON_Delete(root);
    return 0;
}

void plan_steps_free(plan_steps *s)
{
    for (int i = 0; i < s->n; i++) {
        free(s->step[i].task);
        free(s->step[i].tool);
        cJSON_Delete(s->step[i].args);
    }
    memset(s, 0, sizeof(*s));
}
