/*
 * llm_openai.h - one call to an OpenAI-compatible chat-completions server
 * (OpenAI, Azure OpenAI, Ollama, vLLM, llama.cpp's server) over libcurl.
 *
 * The call renders an llm_request as a streamed chat completion (see
 * llm_openai.c for the message layout), feeds the reply through the SSE
 * parser (llm_stream.h) and reports, besides the llm_response, what the
 * router needs to decide on a retry: the HTTP status, Retry-After, whether
 * the failure is worth retrying and whether text already reached the
 * caller. Retries, fallback and circuits are the router's business, not
 * this file's.
 *
 * llm_openai_global_init must run before the first call; llm_router_init
 * does it. Calls are safe from several threads at
 * once: each thread keeps its own curl handles, so connections to a
 * provider are reused between the calls one thread makes.
 */
#ifndef AG_WORKER_LLM_OPENAI_H
#define AG_WORKER_LLM_OPENAI_H

#include <stdbool.h>
#include <stddef.h>

#include "llm.h"

#define LLM_OPENAI_ERROR_BODY_MAX  4096   /* bytes of a non-200 body kept */

/* Where and how to call. Strings are borrowed for the call. */
typedef struct llm_openai_endpoint {
    const char *provider;       /* the provider's name, for out->provider */
    const char *base_url;       /* e.g. "https://api.openai.com/v1"; the call
                                   POSTs to base_url + "/chat/completions"
                                   (before a "?query" of base_url, kept) */
    const char *api_key;        /* sent as "Authorization: Bearer" (as
                                   "api-key" to *.openai.azure.com); NULL or
                                   "" sends none. Never logged. */
    const char *model;          /* the model asked for; required */
    int connect_timeout_ms;     /* TCP (and TLS) connect */
    int first_byte_timeout_ms;  /* request sent -> first response byte, and
                                   the longest silence allowed mid-stream */
    int total_timeout_ms;       /* the whole call */
} llm_openai_endpoint;

/* How a call went, beyond its llm_err. */
typedef struct llm_call_status {
    int http_status;            /* 0 when no HTTP answer arrived */
    long long retry_after_ms;   /* Retry-After of a 429/503, -1 when absent */
    bool retryable;             /* transient: 429, 5xx, timeout, connect
                                   failure, stream broken */
    bool counts_as_failure;     /* the provider misbehaved (for its circuit);
                                   false for a refusal such as 400 or 401 */
    size_t delivered;           /* text bytes handed to on_delta */
    long long first_byte_ms;    /* request start -> first byte, -1 if none */
} llm_call_status;

/*
 * Runs req against ep, streaming content to on_delta (may be NULL).
 * req->model is ignored in favour of ep->model. Returns as
 * llm_provider.complete; *st (required) is filled in every case, and
 * out->error carries a one-line reason on an error. Errors: INVALID_REQUEST
 * (a request that cannot be rendered), NOMEM, ABORTED (on_delta or
 * req->should_abort said stop), UNAVAILABLE (connect failure, DNS, TLS),
 * TIMEOUT, RATE_LIMITED (429), PROVIDER (other non-200, or an error inside
 * the stream), BAD_REPLY (a malformed or oversize reply).
 */
llm_err llm_openai_call(const llm_openai_endpoint *ep, const llm_request *req,
                        llm_delta_fn on_delta, void *user, llm_response *out,
                        llm_call_status *st);

/*
 * Builds the JSON request body for req against model (as sent by
 * llm_openai_call, stream on). Returns a malloc'd string the caller frees,
 * or NULL with a reason in err for a request that cannot be rendered
 * (missing prompt, too many context items) or out of memory.
 */
char *llm_openai_request_body(const llm_request *req, const char *model,
                              char *err, size_t err_size);

/*
 * Parses a Retry-After value: delta-seconds ("120") or an HTTP date
 * ("Wed, 21 Oct 2015 07:28:00 GMT") against now_wall_ms (epoch ms).
 * Returns milliseconds to wait (0 for a date in the past), or -1 when
 * the value is neither.
 */
long long llm_parse_retry_after(const char *value, long long now_wall_ms);

/*
 * Initialises libcurl and the per-thread handle cache. Call once, before
 * any thread calls llm_openai_call (llm_router_init does). Returns 0, or
 * -1 with a reason in err.
 */
int llm_openai_global_init(char *err, size_t err_size);

/* Releases what llm_openai_global_init took, after every calling thread
 * has ended (each thread's handles are freed when it exits). */
void llm_openai_global_cleanup(void);

#endif
