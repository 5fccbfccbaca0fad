/*
 * llm_router.h - which provider answers a model request, and how hard it
 * is tried.
 *
 * Candidates for a request come from model_defaults (the tenant's rows,
 * then global ones) and from the configuration (AGENTGATE_LLM_PROVIDERS,
 * AGENTGATE_LLM_MODEL, AGENTGATE_LLM_API_KEYS). Each candidate is tried
 * in order: transient failures (429, 5xx, timeouts, a broken stream
 * before its first delta) are retried with exponential backoff and jitter,
 * honouring Retry-After; a provider whose circuit is open (circuit:{name}
 * in Redis, shared by every worker) is skipped; when one gives up the next
 * is asked. Once a delta has reached the caller, a failure is final: text
 * already streamed to clients is never streamed twice.
 */
#ifndef AG_WORKER_LLM_ROUTER_H
#define AG_WORKER_LLM_ROUTER_H

#include <stdbool.h>
#include <stddef.h>
#include <hiredis/hiredis.h>
#include <libpq-fe.h>

#include "config.h"
#include "llm.h"

/*
 * Sets the process-wide router up from cfg (borrowed for the process's
 * lifetime): parses the provider list and keys and initialises libcurl.
 * Call once at worker start, before any job thread. Returns 0, or -1 with
 * a one-line reason in err (err_size bytes) for a malformed setting.
 */
int llm_router_init(const ag_config *cfg, char *err, size_t err_size);

/* Releases what llm_router_init took. After every job thread has ended. */
void llm_router_shutdown(void);

/* What a request for a model would be answered by. */
typedef struct llm_route_info {
    char model[128];            /* the resolved model name */
    size_t n_candidates;        /* providers that could answer, in order */
    bool language_model;        /* some candidate is a real model, not the
                                   built-in deterministic provider */
} llm_route_info;

/*
 * Resolves model (NULL or "": the tenant's default) for tenant_id.
 * Returns LLM_OK with *info filled, LLM_ERR_INVALID_REQUEST when no
 * provider serves that model, or LLM_ERR_UNAVAILABLE when PostgreSQL
 * failed; err (err_size bytes) then says why in one line.
 */
llm_err llm_router_resolve(PGconn *pg, const char *tenant_id, const char *model,
                           llm_route_info *info, char *err, size_t err_size);

/*
 * Runs req (req->tenant_id and req->model select the candidates) through
 * the chain above, on this thread's connections: pg for model_defaults,
 * rd for circuit state (NULL, or an I/O error on it: this process's own
 * view of the circuits is used; the caller checks rd->err afterwards and
 * drops a broken connection). Returns as llm_provider.complete, with
 * out->provider naming the provider that answered and, on an error,
 * out->error saying what the last candidate reported.
 */
llm_err llm_router_complete(PGconn *pg, redisContext *rd, const llm_request *req,
                            llm_delta_fn on_delta, void *user, llm_response *out);

#endif
