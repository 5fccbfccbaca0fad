/*
 * run_calls.c - an agent run's calls out (see run_calls.h; orchestrator.c
 * has the whole picture): model calls through the router, their text
 * streamed as llm.delta events (scrubbed of personal data as it comes,
 * paced for the built-in provider); tool calls, each its own tool:invoke
 * step through tools_call; and llm:call steps whose model asks for tools,
 * which run and go back to it with their results, round after round,
 * until it answers. Every call is numbered and, for a run that may wait,
 * recorded in its journal (run_memo.h); a call the journal already has
 * (a run resumed after a wait) is answered from it instead of being made
 * again. A tool call that needs approval and has none stops the run
 * before its step (approval_request).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "jsonutil.h"
#include "llm.h"
#include "llm_router.h"
#include "run_memo.h"
#include "output_guard.h"
#include "pii.h"
#include "run_calls.h"
#include "run_state.h"
#include "run_steps.h"
#include "strbuf.h"
#include "tools.h"
#include "utf8.h"

#define MAX_EXCHANGE       32   /* tool calls sent back to the model in one llm:call */
#define TOOL_RESULT_MAX    16384 /* bytes of a tool result sent to a model */

/* Delta events. The built-in provider produces its text at once; its
 * deltas are gathered into DELTA_BUDGET (run_calls.h) events per run and
 * spaced out by AGENTGATE_BUILTIN_DELTA_PAUSE_MS so a terminal on the SSE
 * stream sees them arrive and a cancel can land mid-stream; the pauses are
 * counted in metrics.builtin_pause_ms so overall_ms never passes them off
 * as work. A real model's deltas go out as they come, each as
 * soon as the PII hold-back lets it, until DELTA_SOFT_MAX events, after
 * which they are gathered into pieces of DELTA_COALESCE_BYTES. */
#define DELTA_MIN_WORDS       3
#define DELTA_EXPECT_WORDS    120
#define DELTA_SOFT_MAX        2000
#define DELTA_COALESCE_BYTES  256

/* What the direct path's model replies when it wants a plan. */
#define NEED_PLAN "NEED_PLAN"
#define DIRECT_TASK \
    "Answer the user's request directly. Call the tools offered when they give facts you " \
    "need. If a good answer needs a plan of several distinct steps, reply with exactly " \
    NEED_PLAN " and nothing else."

/* ---- streaming deltas ------------------------------------------------------ */

/* One model call's llm.delta events: the provider's text, scrubbed as it
 * comes (pii_stream), gathered in pending until it may go out. */
typedef struct delta_stream {
    run *r;
    const step *s;
    bool on;                    /* events are sent at all */
    pii_stream pii;
    strbuf pending;             /* scrubbed, not yet sent */
    size_t sent_bytes;
    bool builtin;               /* pace and gather as for the built-in provider */
    int pending_words;
    bool in_word;
    int chunk_words;
    int budget;
    int sent;
    bool cancelled;
    bool expired;
} delta_stream;

static bool blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!utf8_is_space((unsigned char)s[i]))
            return false;
    return true;
}

/* Sends pending as one llm.delta: nothing when it is empty, when it is
 * blank (unless last: whitespace waits for the next word), or once the
 * output cap is reached. */
static int delta_flush(delta_stream *ds, bool last)
{
    if (ds->pending.len == 0 || (!last && blank(ds->pending.s, ds->pending.len)))
        return 0;
    if (ds->builtin && ds->sent >= ds->budget)
        return 0;
    size_t cap = ds->r->cfg->output_max_bytes;
    if (cap > 0 && ds->sent_bytes >= cap) {
        strbuf_reset(&ds->pending);
        return 0;
    }
    strbuf text = {0};
    output_guard_repair_utf8(&text, ds->pending.s, ds->pending.len);
    if (text.oom) {
        strbuf_free(&text);
        return run_oom(ds->r);
    }
    if (cap > 0 && ds->sent_bytes + text.len > cap) {
        text.len = output_guard_utf8_cut(text.s, text.len, cap - ds->sent_bytes);
        text.s[text.len] = '\0';
    }
    cJSON *ev = cJSON_CreateObject();
    bool ok = ev != NULL;
    json_add_str(ev, "step_id", ds->s->id, &ok);
    json_add_num(ev, "index", ds->s->idx, &ok);
    json_add_str(ev, "delta", text.s ? text.s : "", &ok);
    ev = json_done(ev, ok);
    ds->sent_bytes += text.len;
    strbuf_free(&text);
    if (!ev)
        return run_oom(ds->r);
    int rc = run_emit(ds->r, "llm.delta", ev);
    cJSON_Delete(ev);
    if (rc < 0)
        return -1;
    ds->sent++;
    ds->r->delta_events++;
    if (ds->builtin)
        ds->r->deltas_left--;
    strbuf_reset(&ds->pending);
    ds->pending_words = 0;
    return 0;
}

static void count_words(delta_stream *ds, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        bool sp = utf8_is_space((unsigned char)s[i]);
        if (!sp && !ds->in_word)
            ds->pending_words++;
        ds->in_word = !sp;
    }
}

static int on_delta(void *user, const char *delta, size_t len)
{
    delta_stream *ds = user;

    if (job_cancelled(ds->r->ctx)) {
        ds->cancelled = true;
        return 1;
    }
    if (run_expired(ds->r)) {
        ds->expired = true;
        return 1;
    }
    if (!ds->on)
        return 0;
    size_t before = ds->pending.len;
    if (pii_stream_feed(&ds->pii, delta, len, &ds->pending) < 0) {
        run_oom(ds->r);
        return 1;
    }
    if (ds->builtin) {
        count_words(ds, ds->pending.s + before, ds->pending.len - before);
        /* Keep the last event of the budget for the rest of the text. */
        if (ds->pending_words >= ds->chunk_words && ds->sent < ds->budget - 1) {
            if (delta_flush(ds, false) < 0)
                return 1;
            int pause = ds->r->cfg->builtin_delta_pause_ms;
            if (pause > 0) {
                long long t = clock_mono_ms();
                bool stopped = job_sleep_ms(ds->r->ctx, pause);
                ds->r->m.builtin_pause_ms += clock_mono_ms() - t;
                if (stopped) {
                    ds->cancelled = true;
                    return 1;
                }
            }
        }
        return 0;
    }
    if (ds->r->delta_events >= DELTA_SOFT_MAX && ds->pending.len < DELTA_COALESCE_BYTES)
        return 0;
    return delta_flush(ds, false) < 0 ? 1 : 0;
}

/* The model calls still to come that stream, this one included. */
static int streamed_calls_left(const run *r)
{
    int n = 1;                  /* response:build */
    for (int i = 0; i < r->n_todos; i++) {
        const todo *t = &r->todos[i];
        if (t->state != TODO_PENDING)
            continue;
        for (int k = 0; k < t->steps.n; k++)
            n += t->steps.step[k].action == PLAN_LLM_CALL;
    }
    return n;
}

static void delta_stream_init(delta_stream *ds, run *r, const step *s, bool on)
{
    memset(ds, 0, sizeof(*ds));
    ds->r = r;
    ds->s = s;
    ds->on = on;
    ds->builtin = !r->language_model;
    if (!ds->builtin)
        return;
    int calls = streamed_calls_left(r);
    ds->budget = r->deltas_left > 0 ? r->deltas_left / calls : 0;
    if (ds->budget < 1 && r->deltas_left > 0)
        ds->budget = 1;
    int expect = r->max_tokens > 0 && r->max_tokens < DELTA_EXPECT_WORDS ? r->max_tokens
                                                                         : DELTA_EXPECT_WORDS;
    ds->chunk_words = ds->budget > 0 ? (expect + ds->budget - 1) / ds->budget : expect;
    if (ds->chunk_words < DELTA_MIN_WORDS)
        ds->chunk_words = DELTA_MIN_WORDS;
}

/* The call is over: what was held back goes out, unless discard. */
static int delta_stream_finish(delta_stream *ds, bool discard)
{
    int rc = 0;
    if (ds->on && !discard) {
        if (pii_stream_finish(&ds->pii, &ds->pending) < 0)
            rc = run_oom(ds->r);
        else
            rc = delta_flush(ds, true);
    }
    pii_stream_free(&ds->pii);
    strbuf_free(&ds->pending);
    return rc;
}

/* ---- model calls ---------------------------------------------------------- */

static int should_abort(void *user)
{
    run *r = user;
    return job_cancelled(r->ctx) || run_expired(r);
}

bool is_need_plan(const char *text)
{
    if (!text)
        return false;
    while (utf8_is_space((unsigned char)*text))
        text++;
    size_t n = strlen(text);
    while (n > 0 && utf8_is_space((unsigned char)text[n - 1]))
        n--;
    return n == strlen(NEED_PLAN) && memcmp(text, NEED_PLAN, n) == 0;
}

/* ---- the journal of model calls (run_memo.h) ------------------------------ */

/* Records what call seq answered (e, and *resp when LLM_OK). Returns 0 or
 * -1 (the run stopped). */
static int journal_llm(run *r, int seq, llm_err e, const llm_response *resp)
{
    cJSON *o = cJSON_CreateObject();
    bool ok = o != NULL;
    json_add_num(o, "err", e, &ok);
    json_add_str(o, "error", resp->error, &ok);
    if (e == LLM_OK) {
        json_add_str(o, "text", resp->text ? resp->text : "", &ok);
        json_add_str(o, "model", resp->model, &ok);
        json_add_str(o, "provider", resp->provider, &ok);
        json_add_str(o, "finish_reason", resp->finish_reason, &ok);
        json_add_num(o, "tokens_in", (double)resp->usage.tokens_in, &ok);
        json_add_num(o, "tokens_out", (double)resp->usage.tokens_out, &ok);
        cJSON *calls = cJSON_CreateArray();
        for (size_t i = 0; calls && i < resp->n_tool_calls; i++) {
            cJSON *c = cJSON_CreateObject();
            bool cok = c != NULL;
            json_add_str(c, "id", resp->tool_calls[i].id, &cok);
            json_add_str(c, "name", resp->tool_calls[i].name, &cok);
            json_add_str(c, "arguments", resp->tool_calls[i].arguments, &cok);
            json_append(calls, json_done(c, cok), &ok);
        }
        json_add_item(o, "tool_calls", calls, &ok);
    }
    o = json_done(o, ok);
    if (!o)
        return run_oom(r);
    int rc = memo_put(r, seq, "llm", o);
    cJSON_Delete(o);
    return rc;
}

/* Fills *resp from a journal entry. Returns the recorded outcome
 * (LLM_ERR_NOMEM when memory ran out). */
static llm_err llm_from_journal(const cJSON *j, llm_response *resp)
{
    long long e = LLM_ERR_BAD_REPLY;
    json_get_int(j, "err", 0, LLM_ERR_PROVIDER, &e);
    snprintf(resp->error, sizeof(resp->error), "%s",
             json_get_string(j, "error") ? json_get_string(j, "error") : "");
    if (e != LLM_OK)
        return (llm_err)e;
    const char *text = json_get_string(j, "text");
    resp->text = strdup(text ? text : "");
    resp->text_len = resp->text ? strlen(resp->text) : 0;
    snprintf(resp->model, sizeof(resp->model), "%s",
             json_get_string(j, "model") ? json_get_string(j, "model") : "");
    snprintf(resp->provider, sizeof(resp->provider), "%s",
             json_get_string(j, "provider") ? json_get_string(j, "provider") : "");
    snprintf(resp->finish_reason, sizeof(resp->finish_reason), "%s",
             json_get_string(j, "finish_reason") ? json_get_string(j, "finish_reason") : "");
    json_get_int(j, "tokens_in", 0, 1LL << 50, &resp->usage.tokens_in);
    json_get_int(j, "tokens_out", 0, 1LL << 50, &resp->usage.tokens_out);
    const cJSON *calls = cJSON_GetObjectItemCaseSensitive(j, "tool_calls");
    int n = cJSON_IsArray(calls) ? cJSON_GetArraySize(calls) : 0;
    if (n > LLM_MAX_TOOL_CALLS)
        n = LLM_MAX_TOOL_CALLS;
    if (n > 0 && !(resp->tool_calls = calloc((size_t)n, sizeof(*resp->tool_calls)))) {
        llm_response_free(resp);
        return LLM_ERR_NOMEM;
    }
    for (int i = 0; i < n; i++) {
        const cJSON *c = cJSON_GetArrayItem(calls, i);
        llm_tool_call *k = &resp->tool_calls[resp->n_tool_calls++];
        snprintf(k->id, sizeof(k->id), "%s", json_get_string(c, "id") ? json_get_string(c, "id") : "");
        snprintf(k->name, sizeof(k->name), "%s",
                 json_get_string(c, "name") ? json_get_string(c, "name") : "");
        const char *args = json_get_string(c, "arguments");
        k->arguments = strdup(args ? args : "{}");
        if (!k->arguments) {
            llm_response_free(resp);
            return LLM_ERR_NOMEM;
        }
    }
    if (!resp->text) {
        llm_response_free(resp);
        return LLM_ERR_NOMEM;
    }
    return LLM_OK;
}

/*
 * One model call through the router. Returns LLM_OK with *resp filled, or
 * an error with why (why_size bytes) saying it in one line. A cancel or
 * the deadline seen during the call stops the run (r->stopped), as does a
 * failure to store an event. Under llm-required an answer from the
 * built-in provider is no answer (LLM_ERR_UNAVAILABLE).
 */
llm_err call_llm(run *r, step *s, const call_opts *o, llm_response *resp,
                 char *why, size_t why_size)
{
    llm_context_item items[LLM_MAX_CONTEXT_ITEMS];
    llm_request req = {
        .model = r->model,
        .prompt = r->prompt,
        .intent = r->classified ? intent_name(r->intent.cls) : NULL,
        .task = o->task,
        .context = items,
        .n_context = run_build_context(r, items),
        .temperature = r->temperature,
        .max_tokens = o->max_tokens > 0 ? o->max_tokens : r->max_tokens,
        .tenant_id = r->job->tenant_id,
        .history = o->history ? r->history : NULL,
        .n_history = o->history ? r->n_history : 0,
        .tools = o->tools ? r->tool_defs : NULL,
        .n_tools = o->tools ? r->n_tool_defs : 0,
        .tool_calls = o->calls,
        .n_tool_calls = o->n_calls,
        .should_abort = should_abort,
        .abort_user = r,
    };
    delta_stream ds;
    llm_err e;
    int seq;

    memset(resp, 0, sizeof(*resp));
    const cJSON *memo = memo_next(r, "llm", &seq);
    if (r->stopped) {
        errbuf_printf(why, why_size, "%s", r->message);
        return LLM_ERR_ABORTED;
    }
    if (memo) {
        /* Made before the run waited: answered as it was then. */
        delta_stream_init(&ds, r, s, false);
        e = llm_from_journal(memo, resp);
    } else {
        delta_stream_init(&ds, r, s, o->stream);
        redisContext *rd = job_redis_conn(r->ctx);
        e = llm_router_complete(job_db(r->ctx), rd, &req, on_delta, &ds, resp);
        s->model_calls++;
        s->model_ms += resp->model_ms;
        if (rd && rd->err)
            job_redis_conn_failed(r->ctx);
        if (e != LLM_ERR_ABORTED && e != LLM_ERR_NOMEM && journal_llm(r, seq, e, resp) < 0) {
            delta_stream_finish(&ds, true);
            llm_response_free(resp);
            errbuf_printf(why, why_size, "%s", r->message);
            return LLM_ERR_ABORTED;
        }
    }
    r->m.llm_calls++;
    if (e == LLM_OK) {
        r->m.tokens_in += resp->usage.tokens_in;
        r->m.tokens_out += resp->usage.tokens_out;
        bool discard = o->hold_need_plan && resp->n_tool_calls == 0 && is_need_plan(resp->text);
        if (delta_stream_finish(&ds, discard) < 0) {
            llm_response_free(resp);
            errbuf_printf(why, why_size, "%s", r->message);
            return LLM_ERR_ABORTED;
        }
        if (!resp->text) {
            resp->text = strdup("");
            if (!resp->text) {
                llm_response_free(resp);
                run_oom(r);
                return LLM_ERR_NOMEM;
            }
        }
        if (run_llm_required(r) && strcmp(resp->provider, "builtin") == 0) {
            llm_response_free(resp);
            errbuf_printf(why, why_size, "no language model answered: only the built-in "
                     "deterministic provider did");
            return LLM_ERR_UNAVAILABLE;
        }
        return LLM_OK;
    }
    delta_stream_finish(&ds, true);
    if (ds.cancelled || (e == LLM_ERR_ABORTED && job_cancelled(r->ctx)))
        run_cancelled(r);
    else if (ds.expired || (e == LLM_ERR_ABORTED && run_expired(r)))
        run_timed_out(r);
    else if (e == LLM_ERR_NOMEM)
        run_oom(r);
    errbuf_printf(why, why_size, "%s%s%s", llm_strerror(e), resp->error[0] ? ": " : "",
             resp->error);
    return e;
}

static cJSON *usage_json(const llm_response *resp)
{
    cJSON *u = cJSON_CreateObject();
    bool ok = u != NULL;
    json_add_num(u, "tokens_in", (double)resp->usage.tokens_in, &ok);
    json_add_num(u, "tokens_out", (double)resp->usage.tokens_out, &ok);
    return json_done(u, ok);
}

/* What a model call answered, for a step's output (text added by caller). */
void j_llm_answer(cJSON *o, const run *r, const llm_response *resp, bool *ok)
{
    json_add_str(o, "provider", resp->provider[0] ? resp->provider : NULL, ok);
    json_add_str(o, "model", resp->model[0] ? resp->model : NULL, ok);
    json_add_bool(o, "language_model", strcmp(resp->provider, "builtin") != 0 && r->language_model,
           ok);
    json_add_str(o, "finish_reason", resp->finish_reason[0] ? resp->finish_reason : NULL, ok);
    json_add_item(o, "usage", usage_json(resp), ok);
}

/* ---- tool calls ----------------------------------------------------------- */

/* A tool's output as text of at most TOOL_RESULT_MAX bytes. */
static char *output_text(const cJSON *output)
{
    char *s = json_print(output);
    if (!s || strlen(s) <= TOOL_RESULT_MAX)
        return s;
    size_t cut = output_guard_utf8_cut(s, strlen(s), TOOL_RESULT_MAX - 16);
    memcpy(s + cut, " ...[cut]", 10);
    return s;
}

/* Records what tool call seq gave back (run_memo.h). Returns 0 or -1. */
static int journal_tool(run *r, int seq, const tool_call_result *res)
{
    cJSON *o = cJSON_CreateObject();
    bool ok = o != NULL;
    json_add_num(o, "status", res->status, &ok);
    json_add_str(o, "message", res->message, &ok);
    json_add_num(o, "latency_ms", (double)res->latency_ms, &ok);
    if (res->output)
        json_add_item(o, "output", cJSON_Duplicate(res->output, true), &ok);
    o = json_done(o, ok);
    if (!o)
        return run_oom(r);
    int rc = memo_put(r, seq, "tool", o);
    cJSON_Delete(o);
    return rc;
}

/* Fills *res from a journal entry; an entry it cannot use reads as a
 * failed call. */
static void tool_from_journal(const cJSON *j, tool_call_result *res)
{
    long long st = TOOL_CALL_FAILED, ms = 0;
    json_get_int(j, "status", 0, TOOL_CALL_FAILED, &st);
    json_get_int(j, "latency_ms", 0, 1LL << 40, &ms);
    res->status = (tool_status)st;
    res->latency_ms = ms;
    const char *msg = json_get_string(j, "message");
    snprintf(res->message, sizeof(res->message), "%s", msg ? msg : "");
    const cJSON *out = cJSON_GetObjectItemCaseSensitive(j, "output");
    res->output = out ? cJSON_Duplicate(out, true) : NULL;
    if (res->status == TOOL_CALL_OK && !res->output) {
        res->status = TOOL_CALL_FAILED;
        snprintf(res->message, sizeof(res->message), "the call's recorded result was lost");
    }
}

/*
 * Runs one tool call as its own tool:invoke step: through tools_call (the
 * whole pipeline, audit and tool.called included) unless its arguments are
 * not JSON or the tool is not enabled for the run. args_text is the
 * model's raw argument text (args NULL then); for a planned call args is
 * the object and args_text NULL. Fills *out with what the model or the
 * next step reads: the result, or the refusal in words. Returns 0, or -1
 * with the run stopped.
 */
int run_tool_call(run *r, const char *title, const char *tool, const cJSON *args,
                  const char *args_text, const char *call_id, bool for_model,
                  tool_outcome *out)
{
    step s;
    char why[2600];
    cJSON *parsed = NULL;

    memset(out, 0, sizeof(*out));
    if (iteration_begin(r) < 0)
        return -1;
    if (!args && args_text) {
        char perr[160] = "";
        parsed = json_parse_bounded(args_text, strlen(args_text), PLAN_ARGS_MAX * 4,
                                    JSON_MAX_DEPTH, perr, sizeof(perr));
        if (parsed && !cJSON_IsObject(parsed)) {
            cJSON_Delete(parsed);
            parsed = NULL;
            snprintf(perr, sizeof(perr), "not a JSON object");
        }
        if (!parsed)
            snprintf(why, sizeof(why), "the arguments are not a JSON object (%s)", perr);
        args = parsed;
    }

    cJSON *in = cJSON_CreateObject();
    bool ok = in != NULL;
    json_add_str(in, "title", title, &ok);
    json_add_str(in, "tool", tool, &ok);
    if (args) {
        json_add_item(in, "arguments", cJSON_Duplicate(args, true), &ok);
    } else {
        char *shown = run_dup_cut(args_text ? args_text : "", RAW_REPLY_BYTES);
        json_add_str(in, "arguments_text", shown, &ok);
        ok = ok && shown;
        free(shown);
    }
    json_add_str(in, "requested_by", for_model ? "model" : "plan", &ok);
    if (call_id)
        json_add_str(in, "call_id", call_id, &ok);

    /* A call that needs approval and has none waits before its step. */
    int seq = 0;
    const cJSON *memo = NULL;
    approval ap = {.state = APPROVAL_NONE};
    if (args && run_tool_enabled(r, tool)) {
        memo = memo_next(r, "tool", &seq);
        if (!r->stopped && !memo
            && tools_catalog_needs_approval(r->catalog, tool, r->approve_writes)
            && approval_find(r, seq, &ap) == 0
            && (ap.state == APPROVAL_NONE || ap.state == APPROVAL_PENDING))
            approval_request(r, seq, tool, args);
        if (r->stopped) {
            cJSON_Delete(in);
            cJSON_Delete(parsed);
            return -1;
        }
        if (ap.state != APPROVAL_NONE)
            json_add_item(in, "approval", approval_json(&ap), &ok);
    }
    if (step_begin(r, &s, "tool:invoke", json_done(in, ok)) < 0) {
        cJSON_Delete(parsed);
        return -1;
    }

    cJSON *o = cJSON_CreateObject();
    ok = o != NULL;
    json_add_str(o, "tool", tool, &ok);
    const char *status;
    if (!args) {
        status = "failed";
        json_add_str(o, "status", "invalid", &ok);
        json_add_str(o, "message", why, &ok);
    } else if (!run_tool_enabled(r, tool)) {
        status = "skipped";
        snprintf(why, sizeof(why), "tool \"%s\" is not enabled for this run", tool);
        json_add_str(o, "status", "not_enabled", &ok);
        json_add_str(o, "message", why, &ok);
    } else if (ap.state == APPROVAL_DENIED || ap.state == APPROVAL_EXPIRED) {
        status = "failed";
        bool expired = ap.state == APPROVAL_EXPIRED;
        json_add_str(o, "status", expired ? "approval_expired" : "denied_by_approver", &ok);
        if (expired)
            snprintf(why, sizeof(why), "nobody approved it within %lld s", r->approval_timeout_s);
        else
            snprintf(why, sizeof(why), "a person denied it%s%.2000s", ap.note[0] ? ": " : "",
                     ap.note);
        json_add_str(o, "message", why, &ok);
    } else {
        tool_run_env env = {r->id, r->session_id[0] ? r->session_id : NULL, r->deadline};
        tool_call_result res;
        memset(&res, 0, sizeof(res));
        if (memo) {
            tool_from_journal(memo, &res);
        } else {
            tools_call(r->ctx, r->catalog, &r->principal, &env, tool, args, &res);
            s.tool_calls++;
            s.tool_ms += res.handler_ms;
            if (journal_tool(r, seq, &res) < 0) {
                tool_call_result_free(&res);
                cJSON_Delete(parsed);
                cJSON_Delete(o);
                step_abandon(r, &s);
                return -1;
            }
        }
        r->m.tool_calls++;
        json_add_str(o, "status", tool_status_name(res.status), &ok);
        json_add_num(o, "latency_ms", (double)res.latency_ms, &ok);
        if (res.status == TOOL_CALL_OK) {
            status = "completed";
            char *summary = tools_output_summary(r->catalog, tool, res.output);
            char *json = output_text(res.output);
            json_add_str(o, "summary", summary, &ok);
            json_add_item(o, "output", res.output, &ok);
            res.output = NULL;
            out->ok = true;
            if (summary && json) {
                /* A model reads the data; the built-in provider quotes
                 * the summary. */
                strbuf t = {0};
                if (for_model)
                    strbuf_add(&t, json);
                else if (r->language_model)
                    strbuf_addf(&t, "%s\n%s", summary, json);
                else
                    strbuf_add(&t, summary);
                out->text = strbuf_take(&t, NULL);
            }
            free(summary);
            free(json);
            if (!out->text)
                ok = false;
        } else {
            status = "failed";
            snprintf(why, sizeof(why), "%s", res.message);
            json_add_str(o, "message", res.message, &ok);
        }
        tool_call_result_free(&res);
    }
    cJSON_Delete(parsed);
    if (!out->ok) {
        char text[2700];
        snprintf(text, sizeof(text), "error: the tool call was not carried out: %s", why);
        out->text = strdup(text);
        if (!out->text)
            ok = false;
    }
    if (!ok) {
        cJSON_Delete(o);
        free(out->text);
        out->text = NULL;
        run_oom(r);
        step_abandon(r, &s);
        return -1;
    }
    if (step_end(r, &s, status, o) < 0) {
        free(out->text);        /* the run stopped: nobody reads it */
        out->text = NULL;
        return -1;
    }
    return 0;
}

/* ---- llm:call steps and the tool loop -------------------------------------- */

/* The tool calls of one llm:call sequence, sent back round after round. */
typedef struct exchange {
    llm_tool_call call[MAX_EXCHANGE];
    size_t n;
} exchange;

static void exchange_free(exchange *x)
{
    for (size_t i = 0; i < x->n; i++) {
        free(x->call[i].arguments);
        free(x->call[i].result);
    }
    x->n = 0;
}

static cJSON *tool_calls_json(const llm_response *resp)
{
    cJSON *a = cJSON_CreateArray();
    bool ok = a != NULL;
    for (size_t i = 0; ok && i < resp->n_tool_calls; i++) {
        const llm_tool_call *c = &resp->tool_calls[i];
        cJSON *o = cJSON_CreateObject();
        bool ook = o != NULL;
        json_add_str(o, "id", c->id, &ook);
        json_add_str(o, "name", c->name, &ook);
        json_add_str(o, "arguments", c->arguments ? c->arguments : "", &ook);
        json_append(a, json_done(o, ook), &ok);
    }
    return json_done(a, ok);
}

/*
 * The catalog name of a tool the model called. A provider that cannot
 * send a name as it is ("system.time" goes out as "system__time") maps it
 * back only for the tools it offered; a call of a tool that was not
 * offered, such as one the principal may not call, comes back encoded.
 * It is mapped here, so the call is refused for what it is (denied), not
 * as a tool that does not exist.
 */
static void catalog_name(const run *r, const char *called, char *out, size_t size)
{
    snprintf(out, size, "%s", called);
    if (tools_catalog_has(r->catalog, called) || !strstr(called, "__"))
        return;
    char dotted[128];
    size_t o = 0;
    for (const char *p = called; *p && o + 1 < sizeof(dotted); p++) {
        if (p[0] == '_' && p[1] == '_') {
            dotted[o++] = '.';
            p++;
        } else {
            dotted[o++] = *p;
        }
    }
    dotted[o] = '\0';
    if (tools_catalog_has(r->catalog, dotted))
        snprintf(out, size, "%s", dotted);
}

/* Runs the model's tool calls of resp, each a tool:invoke step, and adds
 * them with their results to x. */
static int run_requested_tools(run *r, const char *title, const llm_response *resp,
                               exchange *x)
{
    for (size_t i = 0; i < resp->n_tool_calls; i++) {
        const llm_tool_call *c = &resp->tool_calls[i];
        if (x->n == MAX_EXCHANGE)
            return run_fail(r, "iteration_limit", "the model asked for more than %d tool "
                            "calls in one step", MAX_EXCHANGE);
        tool_outcome to;
        char name[sizeof(c->name)];
        catalog_name(r, c->name, name, sizeof(name));
        if (run_tool_call(r, title, name, NULL, c->arguments ? c->arguments : "{}", c->id,
                          true, &to) < 0)
            return -1;
        llm_tool_call *k = &x->call[x->n];
        memset(k, 0, sizeof(*k));
        snprintf(k->id, sizeof(k->id), "%s", c->id);
        snprintf(k->name, sizeof(k->name), "%s", name);
        k->arguments = strdup(c->arguments ? c->arguments : "{}");
        k->result = to.text;
        x->n++;
        if (!k->arguments)
            return run_oom(r);
        if (run_result_add(r, title, name, to.text, to.ok) < 0)
            return -1;
    }
    return 0;
}

/*
 * Carries out one model task as llm:call steps: the model is called (with
 * the tools offered when a real model serves the run); when it asks for
 * tools they run, each a tool:invoke step, and the next llm:call sends
 * them back, until it answers without a tool call. Returns how it ended;
 * on LLM_END_ANSWER *text is the raw answer (malloc'd, the caller frees).
 */
llm_end run_llm_task(run *r, int todo_id, const char *title, const char *task,
                     bool direct, char **text, char *why, size_t why_size)
{
    exchange x = {.n = 0};
    llm_end end = LLM_END_STOPPED;

    *text = NULL;
    for (int round = 1;; round++) {
        step s;
        if (iteration_begin(r) < 0)
            break;
        cJSON *in = cJSON_CreateObject();
        bool ok = in != NULL;
        if (todo_id > 0)
            json_add_num(in, "todo_id", todo_id, &ok);
        json_add_str(in, "title", title, &ok);
        json_add_str(in, "task", direct ? "direct answer" : task, &ok);
        json_add_str(in, "model", r->route_model[0] ? r->route_model : r->model, &ok);
        json_add_str(in, "response_mode", r->response_mode, &ok);
        json_add_num(in, "round", round, &ok);
        json_add_num(in, "tools_offered", run_smart(r) ? (double)r->n_tool_defs : 0, &ok);
        json_add_num(in, "tool_results", (double)x.n, &ok);
        if (r->max_tokens > 0)
            json_add_num(in, "max_tokens", r->max_tokens, &ok);
        if (step_begin(r, &s, "llm:call", json_done(in, ok)) < 0)
            break;

        call_opts o = {.task = direct ? DIRECT_TASK : task, .stream = true,
                       .tools = run_smart(r), .history = true, .calls = x.call,
                       .n_calls = x.n, .hold_need_plan = direct};
        llm_response resp;
        llm_err e = call_llm(r, &s, &o, &resp, why, why_size);
        if (e != LLM_OK) {
            if (r->stopped) {
                step_abandon(r, &s);
                break;
            }
            if (step_end(r, &s, "failed", run_message_json("error", why)) < 0)
                break;
            end = LLM_END_FAILED;
            break;
        }
        clean_text ct;
        if (run_clean(r, resp.text, &ct) < 0) {
            llm_response_free(&resp);
            step_abandon(r, &s);
            break;
        }
        cJSON *out = cJSON_CreateObject();
        ok = out != NULL;
        j_clean(out, &ct, &ok);
        j_llm_answer(out, r, &resp, &ok);
        if (resp.n_tool_calls > 0)
            json_add_item(out, "tool_calls", tool_calls_json(&resp), &ok);
        if (step_end(r, &s, "completed", json_done(out, ok)) < 0) {
            free(ct.text);
            llm_response_free(&resp);
            break;
        }
        if (resp.n_tool_calls == 0) {
            /* The model's own words go on as context; the raw text is the
             * answer, cleaned once more where it is stored as output. */
            int rc = direct ? 0 : run_result_add(r, title, NULL, ct.text, true);
            free(ct.text);
            *text = resp.text;
            resp.text = NULL;
            llm_response_free(&resp);
            end = rc < 0 ? LLM_END_STOPPED : LLM_END_ANSWER;
            if (rc < 0) {
                free(*text);
                *text = NULL;
            }
            break;
        }
        free(ct.text);
        int rc = run_requested_tools(r, title, &resp, &x);
        llm_response_free(&resp);
        if (rc < 0)
            break;
    }
    exchange_free(&x);
    return end;
}
