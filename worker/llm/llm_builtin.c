/*
 * llm_builtin.c - the built-in deterministic provider.
 *
 * This provider stands in for a real language model so that agentgate
 * runs end to end with no network and no model configured. It is not a
 * model and never pretends to be one:
 *
 *   - every text it produces starts with the line LLM_BUILTIN_BANNER
 *     ("[agentgate built-in deterministic provider: no language model was
 *     called]");
 *   - it composes its text only from the request: it restates what was
 *     asked (a quote of the prompt and its key terms), says what the
 *     current TODO is for under the request's intent, quotes results that
 *     tools produced (the time from system.time, the failed jobs from
 *     jobs.list, ...), recalls the session's previous question, and for
 *     the final answer lists the plan and what each step gave;
 *   - it never asks for tools (the orchestrator offers it none);
 *   - it is deterministic: the same request gives the same text, byte for
 *     byte (temperature is ignored);
 *   - it streams its text through on_delta three words at a time, and it
 *     reports usage as whitespace-separated words in and out.
 *
 * max_tokens caps the words after the banner line (finish_reason
 * "length"); the banner itself is always kept.
 */
#include "llm.h"

#include <stdio.h>
#include <string.h>

#include "strbuf.h"
#include "utf8.h"

#define BUILTIN_MODEL          "builtin-deterministic-1"
#define BUILTIN_DEFAULT_TOKENS 1024
#define BUILTIN_DELTA_WORDS    3
#define QUOTE_MAX_BYTES        200
#define ITEM_MAX_BYTES         240
#define TOOL_RESULT_MAX_BYTES  1500     /* of a tool's result quoted in an answer */
#define KEY_TERMS_MAX          6
#define KEY_TERM_MAX_BYTES     32

/* ---- reading the request ---------------------------------------------- */

static const char *const stopwords[] = {
    "a", "about", "after", "again", "all", "also", "am", "an", "and", "any", "are", "as",
    "at", "be", "been", "before", "being", "between", "both", "but", "by", "can", "could",
    "did", "do",
    "does", "down", "each", "explain", "few", "for", "from", "get", "give", "got", "had",
    "has", "have", "he", "her", "here", "him", "his", "how", "i", "if", "in", "into", "is",
    "it", "its", "just", "know", "let", "like", "may", "me", "might", "more", "most",
    "much", "must", "my", "need", "no", "not", "now", "of", "on", "only", "or", "other",
    "our", "out", "over", "please", "right", "shall", "she", "should", "show", "so", "some",
    "such", "tell", "than", "that", "the", "their", "them", "then", "there", "these",
    "they", "this", "those", "to", "too", "up", "us", "very", "want", "was", "we",
    "were", "what", "when", "where", "which", "who", "whom", "whose", "why", "will",
    "with", "would", "yes", "you", "your",
};

static bool is_stopword(const char *w)
{
    for (size_t i = 0; i < sizeof(stopwords) / sizeof(stopwords[0]); i++)
        if (strcmp(w, stopwords[i]) == 0)
            return true;
    return false;
}

typedef struct key_terms {
    char term[KEY_TERMS_MAX][KEY_TERM_MAX_BYTES + 1];
    int n;
} key_terms;

static bool is_word_byte(unsigned char c)
{
    return c >= 0x80 || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
           (c >= 'A' && c <= 'Z');
}

/* The first KEY_TERMS_MAX distinct words of prompt that are not stop
 * words, lowercased: what the request is about, as far as words show. */
static void find_key_terms(const char *prompt, key_terms *kt)
{
    const unsigned char *p = (const unsigned char *)prompt;

    kt->n = 0;
    while (*p && kt->n < KEY_TERMS_MAX) {
        while (*p && !is_word_byte(*p))
            p++;
        const unsigned char *start = p;
        while (*p && is_word_byte(*p))
            p++;
        size_t len = (size_t)(p - start);
        if (len < 2 || len > KEY_TERM_MAX_BYTES)
            continue;
        char w[KEY_TERM_MAX_BYTES + 1];
        for (size_t i = 0; i < len; i++)
            w[i] = (char)((start[i] >= 'A' && start[i] <= 'Z') ? start[i] + 32 : start[i]);
        w[len] = '\0';
        if (is_stopword(w))
            continue;
        bool seen = false;
        for (int i = 0; i < kt->n && !seen; i++)
            seen = strcmp(kt->term[i], w) == 0;
        if (!seen)
            memcpy(kt->term[kt->n++], w, len + 1);
    }
}

static void add_terms(strbuf *b, const key_terms *kt)
{
    if (kt->n == 0) {
        strbuf_add(b, "the request as stated");
        return;
    }
    for (int i = 0; i < kt->n; i++) {
        if (i > 0)
            strbuf_add(b, i == kt->n - 1 ? " and " : ", ");
        strbuf_add(b, kt->term[i]);
    }
}

static bool is_intent(const llm_request *req, const char *name)
{
    return req->intent && strcmp(req->intent, name) == 0;
}

/* ---- composing ---------------------------------------------------------- */

/* One sentence on what a step is for under the request's intent. */
static void add_step_purpose(strbuf *b, const llm_request *req, const key_terms *kt)
{
    if (is_intent(req, "graph")) {
        strbuf_add(b, "A graph question: the entities and links to trace involve ");
        add_terms(b, kt);
        strbuf_add(b, ".");
    } else if (is_intent(req, "security")) {
        strbuf_add(b, "A security question: the subject to assess is ");
        add_terms(b, kt);
        strbuf_add(b, ", framed as assets, risks and controls.");
    } else if (is_intent(req, "admin")) {
        strbuf_add(b, "An administrative request concerning ");
        add_terms(b, kt);
        strbuf_add(b, ": any change needs an operator with the right role and an audit record.");
    } else {
        strbuf_add(b, "A general question about ");
        add_terms(b, kt);
        strbuf_add(b, ": a language model would reason about it here; this provider restates "
                   "it so the plan can continue.");
    }
}

static bool item_is_tool(const llm_context_item *it, const char *tool)
{
    return it->ok && it->text && it->tool && strcmp(it->tool, tool) == 0;
}

/* A sentence quoting a tool's result, or nothing for a model step. */
static void add_tool_result(strbuf *b, const llm_context_item *it)
{
    if (!it->tool)
        return;
    if (!it->ok) {
        strbuf_addf(b, "\n%s did not run: ", it->tool);
        strbuf_add_flat(b, it->text ? it->text : "no reason given", ITEM_MAX_BYTES);
        strbuf_add(b, ".");
    } else if (item_is_tool(it, "system.time")) {
        strbuf_add(b, "\nThe current UTC time is ");
        strbuf_add_flat(b, it->text, ITEM_MAX_BYTES);
        strbuf_add(b, " (from system.time).");
    } else {
        strbuf_addf(b, "\n%s reported: ", it->tool);
        strbuf_add_flat(b, it->text ? it->text : "nothing", TOOL_RESULT_MAX_BYTES);
        strbuf_add(b, ".");
    }
}

/* The session's previous question, when there was one. */
static void add_history(strbuf *b, const llm_request *req)
{
    const char *last = NULL;
    size_t asked = 0;
    for (size_t i = 0; i < req->n_history; i++)
        if (req->history[i].role && strcmp(req->history[i].role, "user") == 0 &&
            req->history[i].content) {
            last = req->history[i].content;
            asked++;
        }
    if (!last)
        return;
    strbuf_addf(b, "\nEarlier in this session (%zu earlier request%s) you asked: \"", asked,
                asked == 1 ? "" : "s");
    strbuf_add_flat(b, last, QUOTE_MAX_BYTES);
    strbuf_add(b, "\".");
}

static void compose_step(strbuf *b, const llm_request *req, const key_terms *kt)
{
    strbuf_add(b, "Task: ");
    strbuf_add_flat(b, req->task, ITEM_MAX_BYTES);
    strbuf_add(b, ".\nRequest: \"");
    strbuf_add_flat(b, req->prompt, QUOTE_MAX_BYTES);
    strbuf_addf(b, "\" (intent: %s).\n", req->intent ? req->intent : "unknown");
    add_step_purpose(b, req, kt);
    if (req->n_context > 0)
        strbuf_addf(b, " It builds on %zu earlier step%s.", req->n_context,
                    req->n_context == 1 ? "" : "s");
    for (size_t i = 0; i < req->n_context; i++)
        add_tool_result(b, &req->context[i]);
}

/* The closing "Answer:" line: tool results where there are any, else
 * what an answer under this intent has to cover. */
static void add_answer(strbuf *b, const llm_request *req, const key_terms *kt)
{
    bool quoted = false;

    strbuf_add(b, "\nAnswer: ");
    for (size_t i = 0; i < req->n_context; i++) {
        const llm_context_item *it = &req->context[i];
        if (!it->tool || !it->ok || !it->text)
            continue;
        strbuf_add(b, quoted ? " " : "");
        if (item_is_tool(it, "system.time")) {
            strbuf_add(b, "The current UTC time is ");
            strbuf_add_flat(b, it->text, ITEM_MAX_BYTES);
        } else if (item_is_tool(it, "system.health")) {
            strbuf_add(b, "Worker health: ");
            strbuf_add_flat(b, it->text, ITEM_MAX_BYTES);
        } else {
            strbuf_addf(b, "%s reported: ", it->tool);
            strbuf_add_flat(b, it->text, TOOL_RESULT_MAX_BYTES);
        }
        strbuf_add(b, ".");
        quoted = true;
    }
    if (quoted)
        return;
    if (is_intent(req, "graph")) {
        strbuf_add(b, "To answer, trace how ");
        add_terms(b, kt);
        strbuf_add(b, " connect: list the nodes, the edges between them and any path asked for.");
    } else if (is_intent(req, "security")) {
        strbuf_add(b, "Review ");
        add_terms(b, kt);
        strbuf_add(b, " by naming the assets involved, the risks to them and the controls that "
                   "reduce those risks.");
    } else if (is_intent(req, "admin")) {
        strbuf_add(b, "For ");
        add_terms(b, kt);
        strbuf_add(b, ", an operator should make the change through the admin API, check its "
                   "effect and keep the audit record.");
    } else {
        strbuf_add(b, "Your question concerns ");
        add_terms(b, kt);
        strbuf_add(b, ". A configured language model would answer it here.");
    }
}

static void compose_final(strbuf *b, const llm_request *req, const key_terms *kt)
{
    strbuf_add(b, "You asked: \"");
    strbuf_add_flat(b, req->prompt, QUOTE_MAX_BYTES);
    strbuf_addf(b, "\"\nIntent: %s. Key terms: ", req->intent ? req->intent : "unknown");
    add_terms(b, kt);
    strbuf_add(b, ".");
    add_history(b, req);
    if (req->n_context > 0)
        strbuf_add(b, "\nPlan:");
    for (size_t i = 0; i < req->n_context; i++) {
        const llm_context_item *it = &req->context[i];
        strbuf_addf(b, "\n%zu. ", i + 1);
        strbuf_add_flat(b, it->title ? it->title : "step", ITEM_MAX_BYTES);
        if (!it->ok) {
            strbuf_add(b, ": not completed (");
            strbuf_add_flat(b, it->text ? it->text : "no reason given", ITEM_MAX_BYTES);
            strbuf_add(b, ")");
        } else {
            strbuf_add(b, it->tool ? ": done (result below)" : ": done");
        }
    }
    add_answer(b, req, kt);
    strbuf_add(b, "\nNote: no language model is configured, so this answer restates your request "
               "and what the plan gathered; it contains no generated reasoning.");
}

/* Cuts b after max_words words following its first line. Returns true
 * when it cut anything. */
static bool cap_words(strbuf *b, long long max_words)
{
    char *nl = strchr(b->s, '\n');
    if (!nl)
        return false;
    long long n = 0;
    bool in = false;
    for (char *p = nl + 1; *p; p++) {
        bool sp = utf8_is_space((unsigned char)*p);
        if (!sp && !in && ++n > max_words) {
            char *end = p;
            while (end > nl + 1 && utf8_is_space((unsigned char)end[-1]))
                end--;
            *end = '\0';
            b->len = (size_t)(end - b->s);
            return true;
        }
        in = !sp;
    }
    return false;
}

static long long request_words(const llm_request *req)
{
    long long n = llm_count_words(req->prompt) + llm_count_words(req->intent) +
                  llm_count_words(req->task);
    for (size_t i = 0; i < req->n_context; i++)
        n += llm_count_words(req->context[i].title) + llm_count_words(req->context[i].tool) +
             llm_count_words(req->context[i].text);
    for (size_t i = 0; i < req->n_history; i++)
        n += llm_count_words(req->history[i].content);
    return n;
}

/* Hands text to on_delta BUILTIN_DELTA_WORDS words at a time, each piece
 * ending where the next word starts, so the pieces add up to the text and
 * never split a UTF-8 sequence. Returns non-zero when on_delta aborted. */
static int stream_text(const char *text, llm_delta_fn on_delta, void *user)
{
    const char *p = text, *start = text;
    int words = 0;

    while (*p) {
        while (*p && utf8_is_space((unsigned char)*p))
            p++;
        if (!*p)
            break;
        if (words == BUILTIN_DELTA_WORDS) {
            if (on_delta(user, start, (size_t)(p - start)) != 0)
                return 1;
            start = p;
            words = 0;
        }
        while (*p && !utf8_is_space((unsigned char)*p))
            p++;
        words++;
    }
    if (p > start && on_delta(user, start, (size_t)(p - start)) != 0)
        return 1;
    return 0;
}

static llm_err builtin_complete(const llm_provider *self, const llm_request *req,
                                llm_delta_fn on_delta, void *user, llm_response *out)
{
    strbuf b = {0};
    key_terms kt;

    if (!out)
        return LLM_ERR_INVALID_REQUEST;
    memset(out, 0, sizeof(*out));
    if (!req || !req->prompt || req->n_context > LLM_MAX_CONTEXT_ITEMS ||
        (req->n_context > 0 && !req->context) || (req->n_history > 0 && !req->history))
        return LLM_ERR_INVALID_REQUEST;

    find_key_terms(req->prompt, &kt);
    strbuf_add(&b, LLM_BUILTIN_BANNER "\n");
    if (req->task)
        compose_step(&b, req, &kt);
    else
        compose_final(&b, req, &kt);
    if (b.oom) {
        strbuf_free(&b);
        return LLM_ERR_NOMEM;
    }
    bool cut = cap_words(&b, req->max_tokens > 0 ? req->max_tokens : BUILTIN_DEFAULT_TOKENS);

    if (on_delta && stream_text(b.s, on_delta, user) != 0) {
        strbuf_free(&b);
        return LLM_ERR_ABORTED;
    }
    out->text = strbuf_take(&b, &out->text_len);
    out->usage.tokens_in = request_words(req);
    out->usage.tokens_out = llm_count_words(out->text);
    snprintf(out->model, sizeof(out->model), "%s", self->default_model);
    snprintf(out->finish_reason, sizeof(out->finish_reason), "%s", cut ? "length" : "stop");
    return LLM_OK;
}

static const llm_provider builtin_provider = {
    .name = "builtin",
    .default_model = BUILTIN_MODEL,
    .is_language_model = false,
    .complete = builtin_complete,
    .impl = NULL,
};

const llm_provider *llm_builtin_provider(void)
{
    return &builtin_provider;
}
