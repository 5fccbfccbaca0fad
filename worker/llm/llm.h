/*
 * llm.h - the interface between the orchestrator and a language-model
 * provider.
 *
 * A provider is a small vtable: a name, the model it answers with when the
 * request names none, and complete(), which turns one request into text,
 * handing the text to an on_delta callback piece by piece as it is
 * produced and returning the whole of it at the end. Two kinds are meant
 * to sit behind it:
 *
 *   - the built-in deterministic provider (llm_builtin.c): offline, no
 *     model at all, always available, labels its own output as such;
 *   - the OpenAI-compatible HTTP provider (llm_openai.c, libcurl): maps a
 *     request to /v1/chat/completions with stream=true, a system message
 *     carrying intent, task and context, the session's earlier turns, the
 *     prompt as the user message, and the tools the model may call; each
 *     streamed chunk's content becomes an on_delta call.
 *
 * Which provider answers, with retries, a circuit breaker per provider and
 * a fallback chain, is decided by the router (llm_router.h).
 *
 * The request describes the work (prompt, intent, the TODO being done,
 * what earlier steps produced) rather than a ready-made message list, so
 * the built-in provider can compose from it and an HTTP provider can
 * render it into messages its own way.
 *
 * complete() must be safe to call from several job threads at once.
 */
#ifndef AG_LLM_H
#define AG_LLM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>

typedef enum llm_err {
    LLM_OK = 0,
    LLM_ERR_INVALID_REQUEST,  /* missing prompt, too many context items, ... */
    LLM_ERR_NOMEM,
    LLM_ERR_ABORTED,          /* on_delta returned non-zero */
    LLM_ERR_UNAVAILABLE,      /* provider not configured or unreachable */
    LLM_ERR_TIMEOUT,
    LLM_ERR_RATE_LIMITED,     /* provider said 429 */
    LLM_ERR_BAD_REPLY,        /* provider answered with something malformed */
    LLM_ERR_PROVIDER,         /* provider reported an error (5xx, refusal) */
} llm_err;

/* What an earlier step produced, for the model to build on. */
typedef struct llm_context_item {
    const char *title;  /* the TODO that produced it, e.g. "Draft the answer" */
    const char *tool;   /* the tool that ran ("system.time"), NULL for a model step */
    const char *text;   /* its result as text, NULL for none */
    bool ok;            /* false when the step failed or was skipped (text says why) */
} llm_context_item;

#define LLM_MAX_CONTEXT_ITEMS 32

/* A tool the model may call. Strings are borrowed. */
typedef struct llm_tool_def {
    const char *name;             /* "system.time" */
    const char *description;
    const char *parameters_json;  /* JSON Schema of the arguments, as text */
} llm_tool_def;

/* A tool call the model asked for. In a response every string is owned by
 * the response (llm_response_free); in a request (an earlier exchange of
 * the same step, sent back with its result) they are borrowed. */
typedef struct llm_tool_call {
    char id[96];                  /* the provider's call id, e.g. "call_abc" */
    char name[128];               /* the tool's name */
    char *arguments;              /* JSON text as the model wrote it */
    char *result;                 /* request only: the tool's result as text */
} llm_tool_call;

#define LLM_MAX_TOOL_CALLS 8      /* per response; more are dropped */

/* One earlier turn of a session. Strings are borrowed. */
typedef struct llm_turn {
    const char *role;             /* "user" or "assistant" */
    const char *content;
} llm_turn;

/* Polled while a call is in flight, at least every 100 ms and also while
 * nothing arrives; non-zero aborts the call (LLM_ERR_ABORTED). */
typedef int (*llm_abort_fn)(void *user);

typedef struct llm_request {
    const char *model;      /* requested model; NULL or "" for the provider's default */
    const char *prompt;     /* the user's request, UTF-8; required */
    const char *intent;     /* the classifier's label ("chat", ...), may be NULL */
    const char *task;       /* the TODO this call carries out; NULL asks for the
                               final answer to the prompt */
    const llm_context_item *context;  /* n_context items, may be NULL when 0 */
    size_t n_context;       /* at most LLM_MAX_CONTEXT_ITEMS */
    double temperature;     /* < 0: provider default */
    int max_tokens;         /* <= 0: provider default; a cap on generated tokens */
    const char *tenant_id;  /* whose model defaults and limits apply; may be NULL */
    const llm_turn *history;        /* the session's earlier turns, oldest first */
    size_t n_history;
    const llm_tool_def *tools;      /* tools the model may call; NULL when none */
    size_t n_tools;
    const llm_tool_call *tool_calls;/* calls the model made earlier in this step,
                                       with results, sent back in order */
    size_t n_tool_calls;
    llm_abort_fn should_abort;      /* may be NULL */
    void *abort_user;
} llm_request;

typedef struct llm_usage {
    long long tokens_in;    /* tokens the provider counted in the request */
    long long tokens_out;   /* tokens it produced */
} llm_usage;

typedef struct llm_response {
    char *text;             /* malloc'd, NUL-terminated; owned by the caller
                               (llm_response_free); NULL unless LLM_OK */
    size_t text_len;        /* bytes, without the NUL */
    llm_usage usage;
    char model[64];         /* the model that answered */
    char finish_reason[16]; /* "stop", "length" (cut at max_tokens) or "tool_calls" */
    char provider[32];      /* the provider that answered (after any fallback) */
    llm_tool_call *tool_calls;  /* malloc'd array, owned by the response */
    size_t n_tool_calls;
    double model_ms;        /* time in requests to providers, ms: every retry
                               and fallback, less the time the caller's
                               delta function took; set by the router */
    char error[256];        /* on an error: a one-line reason; may be filled
                               even though text is NULL */
} llm_response;

/*
 * Receives the next len bytes of generated text (not NUL-terminated, never
 * split inside a UTF-8 sequence). The pieces, concatenated, are exactly
 * the final response text. Return 0 to go on, non-zero to abort the call
 * (complete then returns LLM_ERR_ABORTED).
 */
typedef int (*llm_delta_fn)(void *user, const char *delta, size_t len);

typedef struct llm_provider llm_provider;

struct llm_provider {
    const char *name;           /* "builtin", "openai", ... */
    const char *default_model;  /* used when the request names none */
    bool is_language_model;     /* false for the built-in stand-in */
    /*
     * Runs req. on_delta may be NULL. On LLM_OK fills *out (the caller
     * frees it with llm_response_free); on any error *out is left empty
     * (text NULL) and nothing needs freeing.
     */
    llm_err (*complete)(const llm_provider *self, const llm_request *req,
                        llm_delta_fn on_delta, void *user, llm_response *out);
    void *impl;                 /* provider state */
};

/* The built-in deterministic offline provider (llm_builtin.c). A static
 * object: never freed, safe to share between threads. */
const llm_provider *llm_builtin_provider(void);

/* The first line of every text the built-in provider produces. */
#define LLM_BUILTIN_BANNER \
    "[agentgate built-in deterministic provider: no language model was called]"

/* Frees r's text and tool calls and empties them. r may be NULL. */
static inline void llm_response_free(llm_response *r)
{
    if (!r)
        return;
    free(r->text);
    r->text = NULL;
    r->text_len = 0;
    for (size_t i = 0; i < r->n_tool_calls; i++)
        free(r->tool_calls[i].arguments);
    free(r->tool_calls);
    r->tool_calls = NULL;
    r->n_tool_calls = 0;
}

/* A short English description of err, for step outputs and logs. */
static inline const char *llm_strerror(llm_err err)
{
    switch (err) {
    case LLM_OK: return "ok";
    case LLM_ERR_INVALID_REQUEST: return "invalid request";
    case LLM_ERR_NOMEM: return "out of memory";
    case LLM_ERR_ABORTED: return "aborted by the caller";
    case LLM_ERR_UNAVAILABLE: return "provider unavailable";
    case LLM_ERR_TIMEOUT: return "provider timed out";
    case LLM_ERR_RATE_LIMITED: return "provider rate limit reached";
    case LLM_ERR_BAD_REPLY: return "malformed reply from provider";
    case LLM_ERR_PROVIDER: return "provider error";
    }
    return "unknown error";
}

/* A stable one-word name of err ("ok", "timeout", "rate_limited"...), for
 * metric labels and trace attributes, where llm_strerror's words would
 * not do. */
static inline const char *llm_err_name(llm_err err)
{
    switch (err) {
    case LLM_OK: return "ok";
    case LLM_ERR_INVALID_REQUEST: return "invalid_request";
    case LLM_ERR_NOMEM: return "out_of_memory";
    case LLM_ERR_ABORTED: return "aborted";
    case LLM_ERR_UNAVAILABLE: return "unavailable";
    case LLM_ERR_TIMEOUT: return "timeout";
    case LLM_ERR_RATE_LIMITED: return "rate_limited";
    case LLM_ERR_BAD_REPLY: return "bad_reply";
    case LLM_ERR_PROVIDER: return "provider_error";
    }
    return "unknown";
}

/* Counts whitespace-separated words in s (NULL counts 0): the token
 * measure of the built-in provider and the fallback path. */
static inline long long llm_count_words(const char *s)
{
    long long n = 0;
    bool in = false;

    for (; s && *s; s++) {
        bool sp = *s == ' ' || *s == '\t' || *s == '\n' || *s == '\r' ||
                  *s == '\v' || *s == '\f';
        if (!sp && !in)
            n++;
        in = !sp;
    }
    return n;
}

#endif
