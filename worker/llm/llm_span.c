/*
 * llm_span.c - a model request's span, named "chat <model>" (kind client)
 * as the generative-AI conventions name an inference span, with:
 *
 *   gen_ai.operation.name       "chat"
 *   gen_ai.provider.name        the provider asked ("openai", "builtin"...);
 *   gen_ai.system               the same, under its earlier name
 *   gen_ai.request.model        the model asked for
 *   gen_ai.request.max_tokens, gen_ai.request.temperature   when set
 *   gen_ai.response.model       the model that answered
 *   gen_ai.response.finish_reasons  the finish reason (one, as a string)
 *   gen_ai.usage.input_tokens, gen_ai.usage.output_tokens
 *   error.type                  llm_err_name() of a failure
 *
 * Prompts and answers are not recorded: they may hold personal data, and
 * the run's steps already keep what may be kept.
 */
#include <stdio.h>

#include "llm_span.h"

span *llm_span_begin(const llm_request *req, const char *model)
{
    char name[96];
    snprintf(name, sizeof name, "chat %s", model && model[0] ? model : "default");
    span *s = span_start_current(name, SPAN_KIND_CLIENT);
    span_set_str(s, "gen_ai.operation.name", "chat");
    if (model && model[0]) span_set_str(s, "gen_ai.request.model", model);
    if (req->max_tokens > 0) span_set_int(s, "gen_ai.request.max_tokens", req->max_tokens);
    if (req->temperature >= 0) span_set_double(s, "gen_ai.request.temperature", req->temperature);
    if (req->n_tools > 0) span_set_int(s, "agentgate.llm.tools_offered", (long long)req->n_tools);
    return s;
}

void llm_span_end(span *s, const char *provider, llm_err e, const llm_response *out,
                  double first_token_s)
{
    if (!s) return;
    span_set_str(s, "gen_ai.provider.name", provider);
    span_set_str(s, "gen_ai.system", provider);
    if (out->model[0]) span_set_str(s, "gen_ai.response.model", out->model);
    if (out->finish_reason[0]) span_set_str(s, "gen_ai.response.finish_reasons", out->finish_reason);
    span_set_int(s, "gen_ai.usage.input_tokens", out->usage.tokens_in);
    span_set_int(s, "gen_ai.usage.output_tokens", out->usage.tokens_out);
    if (first_token_s >= 0) span_set_double(s, "agentgate.llm.time_to_first_token_s", first_token_s);
    if (e != LLM_OK) {
        span_set_str(s, "error.type", llm_err_name(e));
        span_set_error(s, out->error[0] ? out->error : llm_strerror(e));
    }
    span_end(s);
}
