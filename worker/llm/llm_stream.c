/*
 * llm_stream.c - incremental parser for OpenAI chat-completion replies
 * (llm_stream.h).
 *
 * The event stream is read as the SSE specification says: lines end in
 * LF, CRLF or CR (a CR at the end of one piece and an LF at the start of
 * the next are one line end); "data:" lines accumulate, a blank line
 * dispatches the event; comments (":...") and other fields are ignored.
 * Each event's data is one chat.completion.chunk:
 *
 *   {"id":"...","object":"chat.completion.chunk","model":"m",
 *    "choices":[{"index":0,"delta":{"content":"Hel",
 *                "tool_calls":[{"index":0,"id":"call_1","type":"function",
 *                               "function":{"name":"f","arguments":"{\""}}]},
 *                "finish_reason":null}],
 *    "usage":{"prompt_tokens":9,"completion_tokens":2}}
 *
 * or the literal [DONE] that ends the stream, or {"error":{...}}, which
 * some servers send when a stream fails part way. Only choice 0 is read
 * (agentgate never asks for n > 1). Tool calls arrive in pieces keyed by
 * index: the id and name with the first piece, the arguments spread over
 * many; they are put back together here.
 *
 * A chunk is valid JSON, and JSON text is UTF-8, so the text of each
 * chunk is whole characters: a UTF-8 sequence cut between two network
 * reads is joined again by the line buffer before the chunk is parsed,
 * and no delta ever ends inside a character. Invalid UTF-8 inside a chunk
 * makes the chunk malformed (json_parse_bounded refuses it).
 */
#include "llm_stream.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "jsonutil.h"

static llm_err fail(llm_stream *s, llm_err e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static llm_err fail(llm_stream *s, llm_err e, const char *fmt, ...)
{
    if (s->err != LLM_OK)
        return s->err;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->error, sizeof s->error, fmt, ap);
    va_end(ap);
    s->err = e;
    return e;
}

void llm_stream_init(llm_stream *s, bool json_body, llm_delta_fn on_delta, void *user)
{
    memset(s, 0, sizeof *s);
    s->line_max = LLM_STREAM_LINE_MAX;
    s->body_max = LLM_STREAM_BODY_MAX;
    s->text_max = LLM_STREAM_TEXT_MAX;
    s->args_max = LLM_STREAM_ARGS_MAX;
    s->json_body = json_body;
    s->on_delta = on_delta;
    s->user = user;
}

void llm_stream_free(llm_stream *s)
{
    strbuf_free(&s->line);
    strbuf_free(&s->data);
    strbuf_free(&s->text);
    for (size_t i = 0; i < s->n_calls; i++)
        strbuf_free(&s->calls[i].args);
    s->n_calls = 0;
}

bool llm_stream_done(const llm_stream *s)
{
    return s->done;
}

/* ---- one chunk ------------------------------------------------------------ */

static llm_err emit_text(llm_stream *s, const char *t, size_t len)
{
    if (len == 0)
        return LLM_OK;
    if (len > s->text_max - s->text.len)
        return fail(s, LLM_ERR_BAD_REPLY, "reply text longer than %zu bytes", s->text_max);
    strbuf_addn(&s->text, t, len);
    if (s->text.oom)
        return fail(s, LLM_ERR_NOMEM, "out of memory");
    if (s->on_delta && s->on_delta(s->user, t, len) != 0)
        return fail(s, LLM_ERR_ABORTED, "aborted by the caller");
    return LLM_OK;
}

/* The one-line message of an error object or string. */
static llm_err provider_error(llm_stream *s, const cJSON *error)
{
    const char *msg = NULL;
    if (cJSON_IsString(error))
        msg = error->valuestring;
    else if (cJSON_IsObject(error))
        msg = json_get_string(error, "message");
    strbuf b = {0};
    strbuf_add(&b, "provider error in stream: ");
    strbuf_add_flat(&b, msg ? msg : "(no message)", 200);
    llm_err e = fail(s, LLM_ERR_PROVIDER, "%s", b.oom ? "provider error in stream" : b.s);
    strbuf_free(&b);
    return e;
}

/* Copies a bounded string field into dst, or fails. */
static llm_err copy_field(llm_stream *s, char *dst, size_t size, const char *what,
                          const char *v, bool append)
{
    size_t have = append ? strlen(dst) : 0;
    size_t len = strlen(v);
    if (len >= size - have)
        return fail(s, LLM_ERR_BAD_REPLY, "%s longer than %zu bytes", what, size - 1);
    memcpy(dst + have, v, len + 1);
    return LLM_OK;
}

static llm_stream_call *call_slot(llm_stream *s, long long index)
{
    for (size_t i = 0; i < s->n_calls; i++)
        if (s->calls[i].index == index)
            return &s->calls[i];
    if (s->n_calls == LLM_MAX_TOOL_CALLS) {
        s->dropped_calls++;
        return NULL;
    }
    llm_stream_call *c = &s->calls[s->n_calls++];
    memset(c, 0, sizeof *c);
    c->index = index;
    return c;
}

/* One element of delta.tool_calls (or message.tool_calls). */
static llm_err tool_call_piece(llm_stream *s, const cJSON *tc, long long ordinal)
{
    if (!cJSON_IsObject(tc))
        return fail(s, LLM_ERR_BAD_REPLY, "tool_calls holds a non-object");
    long long index;
    int r = json_get_int(tc, "index", 0, 1000000, &index);
    if (r < 0)
        return fail(s, LLM_ERR_BAD_REPLY, "tool call index is not a small whole number");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(tc, "id");
    const cJSON *fn = cJSON_GetObjectItemCaseSensitive(tc, "function");
    if ((id && !cJSON_IsString(id) && !cJSON_IsNull(id)) ||
        (fn && !cJSON_IsObject(fn) && !cJSON_IsNull(fn)))
        return fail(s, LLM_ERR_BAD_REPLY, "tool call with a malformed id or function");
    if (r == 0) {
        /* No index (some servers): a new id starts a new call, otherwise
         * the piece continues the last one. */
        if (ordinal >= 0)
            index = ordinal;
        else if (cJSON_IsString(id) && (s->n_calls == 0 ||
                 (s->calls[s->n_calls - 1].id[0] &&
                  strcmp(s->calls[s->n_calls - 1].id, id->valuestring) != 0)))
            index = s->n_calls ? s->calls[s->n_calls - 1].index + 1 : 0;
        else
            index = s->n_calls ? s->calls[s->n_calls - 1].index : 0;
    }
    llm_stream_call *c = call_slot(s, index);
    if (!c)
        return LLM_OK;
    if (cJSON_IsString(id) && id->valuestring[0] && !c->id[0] &&
        copy_field(s, c->id, sizeof c->id, "tool call id", id->valuestring, false) != LLM_OK)
        return s->err;
    if (!cJSON_IsObject(fn))
        return LLM_OK;
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(fn, "name");
    const cJSON *args = cJSON_GetObjectItemCaseSensitive(fn, "arguments");
    if ((name && !cJSON_IsString(name) && !cJSON_IsNull(name)) ||
        (args && !cJSON_IsString(args) && !cJSON_IsNull(args)))
        return fail(s, LLM_ERR_BAD_REPLY, "tool call with a malformed name or arguments");
    if (cJSON_IsString(name) &&
        copy_field(s, c->name, sizeof c->name, "tool name", name->valuestring, true) != LLM_OK)
        return s->err;
    if (cJSON_IsString(args)) {
        size_t len = strlen(args->valuestring);
        if (len > s->args_max - c->args.len)
            return fail(s, LLM_ERR_BAD_REPLY, "tool call arguments longer than %zu bytes",
                        s->args_max);
        strbuf_addn(&c->args, args->valuestring, len);
        if (c->args.oom)
            return fail(s, LLM_ERR_NOMEM, "out of memory");
    }
    return LLM_OK;
}

static llm_err tool_calls(llm_stream *s, const cJSON *arr, bool whole)
{
    if (!arr || cJSON_IsNull(arr))
        return LLM_OK;
    if (!cJSON_IsArray(arr))
        return fail(s, LLM_ERR_BAD_REPLY, "tool_calls is not an array");
    long long ordinal = 0;
    for (const cJSON *tc = arr->child; tc; tc = tc->next, ordinal++)
        if (tool_call_piece(s, tc, whole ? ordinal : -1) != LLM_OK)
            return s->err;
    return LLM_OK;
}

static llm_err read_usage(llm_stream *s, const cJSON *usage)
{
    if (!usage || cJSON_IsNull(usage))
        return LLM_OK;
    long long in, out;
    if (!cJSON_IsObject(usage) ||
        json_get_int(usage, "prompt_tokens", 0, 1LL << 40, &in) < 0 ||
        json_get_int(usage, "completion_tokens", 0, 1LL << 40, &out) < 0)
        return fail(s, LLM_ERR_BAD_REPLY, "malformed usage");
    if (json_get_int(usage, "prompt_tokens", 0, 1LL << 40, &in) == 1 &&
        json_get_int(usage, "completion_tokens", 0, 1LL << 40, &out) == 1) {
        s->usage.tokens_in = in;
        s->usage.tokens_out = out;
        s->have_usage = true;
    }
    return LLM_OK;
}

/* choices[i]: its delta (or message, in a whole reply) and finish_reason. */
static llm_err read_choice(llm_stream *s, const cJSON *ch)
{
    if (!cJSON_IsObject(ch))
        return fail(s, LLM_ERR_BAD_REPLY, "a choice is not an object");
    long long index = 0;
    if (json_get_int(ch, "index", 0, 1000000, &index) < 0)
        return fail(s, LLM_ERR_BAD_REPLY, "choice index is not a whole number");
    if (index != 0)
        return LLM_OK;  /* n > 1 is never asked for */
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(ch, s->json_body ? "message" : "delta");
    if (d && !cJSON_IsNull(d)) {
        if (!cJSON_IsObject(d))
            return fail(s, LLM_ERR_BAD_REPLY, "%s is not an object",
                        s->json_body ? "message" : "delta");
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(d, "content");
        if (content && !cJSON_IsString(content) && !cJSON_IsNull(content))
            return fail(s, LLM_ERR_BAD_REPLY, "content is not a string");
        if (cJSON_IsString(content) &&
            emit_text(s, content->valuestring, strlen(content->valuestring)) != LLM_OK)
            return s->err;
        if (tool_calls(s, cJSON_GetObjectItemCaseSensitive(d, "tool_calls"), s->json_body) !=
            LLM_OK)
            return s->err;
    }
    const cJSON *fr = cJSON_GetObjectItemCaseSensitive(ch, "finish_reason");
    if (fr && !cJSON_IsString(fr) && !cJSON_IsNull(fr))
        return fail(s, LLM_ERR_BAD_REPLY, "finish_reason is not a string");
    if (cJSON_IsString(fr) && fr->valuestring[0]) {
        /* Cut a long unknown reason rather than fail: it is only a label. */
        snprintf(s->finish_reason, sizeof s->finish_reason, "%.*s",
                 (int)sizeof s->finish_reason - 1, fr->valuestring);
    }
    return LLM_OK;
}

/* One chunk (or a whole reply), already cut out of the stream. */
static llm_err parse_chunk(llm_stream *s, const char *json, size_t len)
{
    char why[128];
    cJSON *root = json_parse_bounded(json, len, s->line_max > s->body_max ? s->line_max
                                                                          : s->body_max,
                                     JSON_MAX_DEPTH, why, sizeof why);
    if (!root)
        return fail(s, LLM_ERR_BAD_REPLY, "malformed chunk %zu: %s", s->chunks + 1, why);
    s->chunks++;
    llm_err e = LLM_OK;
    const cJSON *error = cJSON_GetObjectItemCaseSensitive(root, "error");
    const cJSON *choices = cJSON_GetObjectItemCaseSensitive(root, "choices");
    if (!cJSON_IsObject(root)) {
        e = fail(s, LLM_ERR_BAD_REPLY, "chunk %zu is not a JSON object", s->chunks);
    } else if (error && !cJSON_IsNull(error)) {
        e = provider_error(s, error);
    } else if (choices && !cJSON_IsArray(choices) && !cJSON_IsNull(choices)) {
        e = fail(s, LLM_ERR_BAD_REPLY, "chunk %zu: choices is not an array", s->chunks);
    } else if (!choices && !cJSON_GetObjectItemCaseSensitive(root, "usage")) {
        e = fail(s, LLM_ERR_BAD_REPLY, "chunk %zu has neither choices nor usage", s->chunks);
    } else {
        const char *model = json_get_string(root, "model");
        if (model && !s->model[0])
            snprintf(s->model, sizeof s->model, "%.*s", (int)sizeof s->model - 1, model);
        for (const cJSON *ch = choices ? choices->child : NULL; ch && e == LLM_OK;
             ch = ch->next)
            e = read_choice(s, ch);
        if (e == LLM_OK)
            e = read_usage(s, cJSON_GetObjectItemCaseSensitive(root, "usage"));
    }
    cJSON_Delete(root);
    return e;
}

/* ---- the event stream ------------------------------------------------------- */

static llm_err dispatch_event(llm_stream *s)
{
    llm_err e = LLM_OK;
    if (s->have_data) {
        if (s->data.len == 6 && memcmp(s->data.s, "[DONE]", 6) == 0)
            s->done = true;
        else if (strcmp(s->event, "error") == 0 && s->data.len > 0 && s->data.s[0] != '{')
            e = fail(s, LLM_ERR_PROVIDER, "provider error event in stream");
        else
            e = parse_chunk(s, s->data.s, s->data.len);
    }
    strbuf_reset(&s->data);
    s->have_data = false;
    s->event[0] = '\0';
    return e;
}

/* One complete line (without its end). */
static llm_err handle_line(llm_stream *s, const char *l, size_t len)
{
    if (len == 0)
        return dispatch_event(s);
    if (l[0] == ':')
        return LLM_OK;  /* a comment: keepalives and the like */
    const char *colon = memchr(l, ':', len);
    size_t flen = colon ? (size_t)(colon - l) : len;
    const char *v = colon ? colon + 1 : l + len;
    size_t vlen = colon ? len - flen - 1 : 0;
    if (vlen > 0 && v[0] == ' ') {
        v++;
        vlen--;
    }
    if (flen == 4 && memcmp(l, "data", 4) == 0) {
        if (s->have_data)
            strbuf_addn(&s->data, "\n", 1);
        strbuf_addn(&s->data, v, vlen);
        s->have_data = true;
        if (s->data.oom)
            return fail(s, LLM_ERR_NOMEM, "out of memory");
        if (s->data.len > s->line_max)
            return fail(s, LLM_ERR_BAD_REPLY, "SSE event longer than %zu bytes", s->line_max);
    } else if (flen == 5 && memcmp(l, "event", 5) == 0) {
        snprintf(s->event, sizeof s->event, "%.*s",
                 (int)(vlen < sizeof s->event ? vlen : sizeof s->event - 1), v);
    }
    return LLM_OK;  /* id:, retry: and unknown fields mean nothing here */
}

static llm_err feed_events(llm_stream *s, const char *buf, size_t len)
{
    size_t i = 0;
    if (s->after_cr && len > 0 && buf[0] == '\n')
        i = 1;  /* the LF of a CRLF cut between two pieces */
    s->after_cr = false;
    while (i < len && !s->done && s->err == LLM_OK) {
        const char *start = buf + i;
        size_t left = len - i, n = 0;
        while (n < left && start[n] != '\n' && start[n] != '\r')
            n++;
        if (n > s->line_max - s->line.len)
            return fail(s, LLM_ERR_BAD_REPLY, "SSE line longer than %zu bytes", s->line_max);
        if (n == left) {        /* no line end yet: keep the piece */
            strbuf_addn(&s->line, start, n);
            if (s->line.oom)
                return fail(s, LLM_ERR_NOMEM, "out of memory");
            break;
        }
        const char *l = start;
        size_t llen = n;
        if (s->line.len > 0) {
            strbuf_addn(&s->line, start, n);
            if (s->line.oom)
                return fail(s, LLM_ERR_NOMEM, "out of memory");
            l = s->line.s;
            llen = s->line.len;
        }
        llm_err e = handle_line(s, l, llen);
        strbuf_reset(&s->line);
        if (e != LLM_OK)
            return e;
        i += n + 1;
        if (start[n] == '\r') {
            if (i < len && buf[i] == '\n')
                i++;
            else if (i == len)
                s->after_cr = true;
        }
    }
    return s->err;
}

llm_err llm_stream_feed(llm_stream *s, const char *buf, size_t len)
{
    if (s->err != LLM_OK || s->done)
        return s->err;
    if (len > s->body_max - s->body_bytes)
        return fail(s, LLM_ERR_BAD_REPLY, "reply longer than %zu bytes", s->body_max);
    s->body_bytes += len;
    if (s->json_body) {
        strbuf_addn(&s->data, buf, len);
        return s->data.oom ? fail(s, LLM_ERR_NOMEM, "out of memory") : LLM_OK;
    }
    return feed_events(s, buf, len);
}

/* ---- the end --------------------------------------------------------------- */

/* Hands the assembled calls to out. */
static llm_err take_calls(llm_stream *s, llm_response *out)
{
    if (s->n_calls == 0)
        return LLM_OK;
    for (size_t i = 0; i < s->n_calls; i++)
        if (!s->calls[i].name[0])
            return fail(s, LLM_ERR_BAD_REPLY, "tool call %zu has no function name", i + 1);
    out->tool_calls = calloc(s->n_calls, sizeof *out->tool_calls);
    if (!out->tool_calls)
        return fail(s, LLM_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < s->n_calls; i++) {
        llm_stream_call *c = &s->calls[i];
        llm_tool_call *t = &out->tool_calls[i];
        if (c->id[0])
            memcpy(t->id, c->id, sizeof t->id);
        else
            snprintf(t->id, sizeof t->id, "call_%zu", i);  /* servers that send none */
        memcpy(t->name, c->name, sizeof t->name);
        if (c->args.len == 0)
            strbuf_add(&c->args, "{}");  /* no arguments: an empty object */
        t->arguments = strbuf_take(&c->args, NULL);
        out->n_tool_calls = i + 1;
        if (!t->arguments)
            return fail(s, LLM_ERR_NOMEM, "out of memory");
    }
    return LLM_OK;
}

llm_err llm_stream_finish(llm_stream *s, llm_response *out)
{
    out->text = NULL;
    out->text_len = 0;
    out->tool_calls = NULL;
    out->n_tool_calls = 0;
    if (s->err == LLM_OK && s->json_body) {
        if (s->data.len == 0)
            fail(s, LLM_ERR_BAD_REPLY, "empty reply");
        else
            parse_chunk(s, s->data.s, s->data.len);
    } else if (s->err == LLM_OK && !s->done) {
        /* A last line without its end, then the last event, as if the
         * server had finished them. */
        if (s->line.len > 0) {
            handle_line(s, s->line.s, s->line.len);
            strbuf_reset(&s->line);
        }
        if (s->err == LLM_OK)
            dispatch_event(s);
        if (s->err == LLM_OK && !s->done && !s->finish_reason[0]) {
            s->truncated = true;
            fail(s, LLM_ERR_BAD_REPLY, "the stream ended before data: [DONE]");
        }
    }
    if (s->err == LLM_OK)
        take_calls(s, out);
    if (s->err == LLM_OK) {
        out->text = strbuf_take(&s->text, &out->text_len);
        if (!out->text)
            fail(s, LLM_ERR_NOMEM, "out of memory");
    }
    if (s->err != LLM_OK) {
        llm_response_free(out);
        snprintf(out->error, sizeof out->error, "%s", s->error);
        return s->err;
    }
    if (!s->finish_reason[0])
        snprintf(s->finish_reason, sizeof s->finish_reason, "%s",
                 out->n_tool_calls ? "tool_calls" : "stop");
    memcpy(out->finish_reason, s->finish_reason, sizeof out->finish_reason);
    if (s->model[0])
        memcpy(out->model, s->model, sizeof out->model);
    if (s->have_usage)
        out->usage = s->usage;
    return LLM_OK;
}
