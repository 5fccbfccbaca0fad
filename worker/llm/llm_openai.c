/*
 * llm_openai.c - one streamed chat completion against an OpenAI-compatible
 * server, over libcurl (llm_openai.h).
 *
 * The request. POST {base_url}/chat/completions (a query string in
 * base_url stays at the end, as Azure's api-version needs) with
 *
 *   {"model": M, "stream": true, "stream_options": {"include_usage": true},
 *    "messages": [
 *      {"role": "system", "content": intent, task and earlier results},
 *      ...the session's earlier turns (user/assistant)...,
 *      {"role": "user", "content": prompt},
 *      {"role": "assistant", "content": null, "tool_calls": [...]},  \ only when
 *      {"role": "tool", "tool_call_id": id, "content": result}, ...  / sent back
 *    ],
 *    "tools": [{"type": "function", "function": {name, description,
 *                                                parameters}}],
 *    "temperature": t, "max_tokens": n}   (the last two only when set)
 *
 * OpenAI allows only [A-Za-z0-9_-] in function names, and agentgate's
 * tools are named like "system.time", so each '.' goes out as "__" and a
 * name the model sends back is mapped to the tool it stands for.
 *
 * The transfer runs on a curl multi handle driven by this thread, waking
 * at least every LLM_POLL_MS: libcurl's own progress callback comes only
 * about once a second while nothing arrives, too seldom to honour a
 * cancel quickly. Each wake checks req->should_abort and the timeouts:
 * connect (libcurl's), first byte (request start to the first response
 * byte), stall (no byte for first_byte_timeout_ms once the answer began)
 * and total.
 *
 * The API key goes as "Authorization: Bearer KEY", or, to a host under
 * .openai.azure.com, as "api-key: KEY", which Azure OpenAI expects.
 *
 * The answer. 200 with an event stream is fed to llm_stream as it comes
 * (200 with application/json, from a server that ignored stream, is parsed
 * whole). Any other status: 429 is RATE_LIMITED, 408 TIMEOUT, 5xx and the
 * rest PROVIDER, with the provider's own message (bounded) in out->error
 * and Retry-After kept for the router. Usage comes from the final chunk;
 * a server that sends none is counted in words, as the built-in provider
 * does.
 */
#include "llm_openai.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "clock.h"
#include "jsonutil.h"
#include "llm_stream.h"
#include "strbuf.h"
#include "trace.h"

#define LLM_POLL_MS          50          /* longest wait between abort checks */
#define DONE_GRACE_MS        250         /* after [DONE], for the body's end */
#define CONTEXT_TEXT_MAX     (32 * 1024) /* bytes of one earlier result sent */
#define MAX_SENT_TOOL_CALLS  64
#define HEADER_VALUE_MAX     128
#define SCHEMA_MAX           (64 * 1024)

/* ---- per-thread curl handles -------------------------------------------------- */

typedef struct curl_cache {
    CURLM *multi;   /* owns the connection pool, so a thread reuses connections */
    CURL *easy;
} curl_cache;

static pthread_key_t cache_key;
static bool cache_key_made;

static void cache_free(void *p)
{
    curl_cache *c = p;
    if (!c)
        return;
    if (c->easy)
        curl_easy_cleanup(c->easy);
    if (c->multi)
        curl_multi_cleanup(c->multi);
    free(c);
}

int llm_openai_global_init(char *err, size_t err_size)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        errbuf_printf(err, err_size, "libcurl failed to initialise");
        return -1;
    }
    if (!cache_key_made) {
        if (pthread_key_create(&cache_key, cache_free) != 0) {
            curl_global_cleanup();
            errbuf_printf(err, err_size, "cannot create a thread key for curl handles");
            return -1;
        }
        cache_key_made = true;
    }
    return 0;
}

void llm_openai_global_cleanup(void)
{
    if (cache_key_made) {
        /* Threads that ended freed their own; this is the caller's. */
        cache_free(pthread_getspecific(cache_key));
        pthread_setspecific(cache_key, NULL);
        pthread_key_delete(cache_key);
        cache_key_made = false;
    }
    curl_global_cleanup();
}

static curl_cache *thread_cache(void)
{
    curl_cache *c = cache_key_made ? pthread_getspecific(cache_key) : NULL;
    if (c || !cache_key_made)
        return c;
    c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->multi = curl_multi_init();
    c->easy = curl_easy_init();
    if (!c->multi || !c->easy || pthread_setspecific(cache_key, c) != 0) {
        cache_free(c);
        return NULL;
    }
    return c;
}

/* ---- the request body ------------------------------------------------------- */

/* "system.time" -> "system__time": what OpenAI accepts as a function name. */
static void encode_tool_name(const char *name, char *out, size_t size)
{
    size_t o = 0;
    for (const char *p = name; *p && o + 3 < size; p++) {
        if (*p == '.') {
            out[o++] = '_';
            out[o++] = '_';
        } else {
            out[o++] = *p;
        }
    }
    out[o] = '\0';
}

static bool add_str(cJSON *o, const char *name, const char *v)
{
    return cJSON_AddItemToObject(o, name, v ? cJSON_CreateString(v) : cJSON_CreateNull());
}

static bool add_message(cJSON *msgs, const char *role, const char *content)
{
    cJSON *m = cJSON_CreateObject();
    if (!m || !cJSON_AddItemToArray(msgs, m))
        return (cJSON_Delete(m), false);
    return add_str(m, "role", role) && add_str(m, "content", content);
}

static char *system_text(const llm_request *req)
{
    strbuf b = {0};
    strbuf_add(&b, "You are the assistant of agentgate, an agent-run platform. Answer the "
                   "user's request accurately and concisely; use the tools offered when "
                   "they give facts you need.\n");
    if (req->intent && req->intent[0])
        strbuf_addf(&b, "Intent of the request: %s.\n", req->intent);
    if (req->task && req->task[0]) {
        strbuf_add(&b, "Your current task (one step of a plan): ");
        strbuf_add(&b, req->task);
        strbuf_add(&b, "\n");
    } else {
        strbuf_add(&b, "Your task: write the final answer to the user's request.\n");
    }
    if (req->n_context > 0)
        strbuf_add(&b, "Results of the earlier steps:\n");
    for (size_t i = 0; i < req->n_context; i++) {
        const llm_context_item *c = &req->context[i];
        strbuf_addf(&b, "%zu. %s", i + 1, c->title ? c->title : "(step)");
        if (c->tool)
            strbuf_addf(&b, " [tool %s]", c->tool);
        strbuf_add(&b, c->ok ? ": " : " (failed): ");
        if (c->text) {
            size_t len = strlen(c->text);
            if (len > CONTEXT_TEXT_MAX) {
                /* Cut before a UTF-8 continuation byte, never inside. */
                len = CONTEXT_TEXT_MAX;
                while (len > 0 && ((unsigned char)c->text[len] & 0xc0) == 0x80)
                    len--;
                strbuf_addn(&b, c->text, len);
                strbuf_add(&b, " [...cut]");
            } else {
                strbuf_addn(&b, c->text, len);
            }
        } else {
            strbuf_add(&b, "(nothing)");
        }
        strbuf_add(&b, "\n");
    }
    return strbuf_take(&b, NULL);
}

static bool add_tools(cJSON *root, const llm_request *req, char *err, size_t err_size)
{
    if (req->n_tools == 0)
        return true;
    cJSON *tools = cJSON_AddArrayToObject(root, "tools");
    if (!tools)
        return false;
    for (size_t i = 0; i < req->n_tools; i++) {
        const llm_tool_def *t = &req->tools[i];
        char name[160];
        if (!t->name || !t->name[0] || strlen(t->name) > 64) {
            errbuf_printf(err, err_size, "tool %zu has no name or one over 64 bytes", i + 1);
            return false;
        }
        encode_tool_name(t->name, name, sizeof name);
        cJSON *params;
        if (t->parameters_json && t->parameters_json[0]) {
            char why[128];
            params = json_parse_bounded(t->parameters_json, strlen(t->parameters_json),
                                        SCHEMA_MAX, JSON_MAX_DEPTH, why, sizeof why);
            if (!params || !cJSON_IsObject(params)) {
                cJSON_Delete(params);
                errbuf_printf(err, err_size, "tool %s: parameters are not a JSON object "
                              "schema", t->name);
                return false;
            }
        } else {
            params = cJSON_Parse("{\"type\":\"object\",\"properties\":{}}");
        }
        cJSON *tool = cJSON_CreateObject(), *fn = cJSON_CreateObject();
        bool ok = tool && fn && params && cJSON_AddItemToArray(tools, tool);
        if (!ok) {
            cJSON_Delete(tool);
            cJSON_Delete(fn);
            cJSON_Delete(params);
            return false;
        }
        ok = add_str(tool, "type", "function") && cJSON_AddItemToObject(tool, "function", fn);
        if (!ok) {
            cJSON_Delete(fn);
            cJSON_Delete(params);
            return false;
        }
        ok = add_str(fn, "name", name) &&
             (!t->description || add_str(fn, "description", t->description));
        if (!ok || !cJSON_AddItemToObject(fn, "parameters", params)) {
            cJSON_Delete(params);
            return false;
        }
    }
    return true;
}

/* The assistant's earlier tool calls, then one tool message per result. */
static bool add_tool_exchange(cJSON *msgs, const llm_request *req, char *err, size_t err_size)
{
    if (req->n_tool_calls == 0)
        return true;
    if (req->n_tool_calls > MAX_SENT_TOOL_CALLS) {
        errbuf_printf(err, err_size, "more than %d tool calls to send back",
                      MAX_SENT_TOOL_CALLS);
        return false;
    }
    cJSON *m = cJSON_CreateObject();
    if (!m || !cJSON_AddItemToArray(msgs, m))
        return (cJSON_Delete(m), false);
    cJSON *calls;
    if (!add_str(m, "role", "assistant") || !add_str(m, "content", NULL) ||
        !(calls = cJSON_AddArrayToObject(m, "tool_calls")))
        return false;
    for (size_t i = 0; i < req->n_tool_calls; i++) {
        const llm_tool_call *tc = &req->tool_calls[i];
        char name[sizeof tc->name * 2];
        if (!tc->id[0] || !tc->name[0]) {
            errbuf_printf(err, err_size, "tool call %zu to send back has no id or name", i + 1);
            return false;
        }
        encode_tool_name(tc->name, name, sizeof name);
        cJSON *c = cJSON_CreateObject(), *fn = cJSON_CreateObject();
        if (!c || !fn || !cJSON_AddItemToArray(calls, c)) {
            cJSON_Delete(c);
            cJSON_Delete(fn);
            return false;
        }
        if (!cJSON_AddItemToObject(c, "function", fn))
            return (cJSON_Delete(fn), false);
        if (!add_str(c, "id", tc->id) || !add_str(c, "type", "function") ||
            !add_str(fn, "name", name) ||
            !add_str(fn, "arguments", tc->arguments ? tc->arguments : "{}"))
            return false;
    }
    for (size_t i = 0; i < req->n_tool_calls; i++) {
        const llm_tool_call *tc = &req->tool_calls[i];
        cJSON *t = cJSON_CreateObject();
        if (!t || !cJSON_AddItemToArray(msgs, t))
            return (cJSON_Delete(t), false);
        if (!add_str(t, "role", "tool") || !add_str(t, "tool_call_id", tc->id) ||
            !add_str(t, "content", tc->result ? tc->result : ""))
            return false;
    }
    return true;
}

static bool add_messages(cJSON *root, const llm_request *req, char *err, size_t err_size)
{
    cJSON *msgs = cJSON_AddArrayToObject(root, "messages");
    if (!msgs)
        return false;
    char *sys = system_text(req);
    bool ok = sys && add_message(msgs, "system", sys);
    free(sys);
    for (size_t i = 0; ok && i < req->n_history; i++) {
        const llm_turn *t = &req->history[i];
        if (!t->role || (strcmp(t->role, "user") != 0 && strcmp(t->role, "assistant") != 0)) {
            errbuf_printf(err, err_size, "history turn %zu has role '%.16s', not user or "
                          "assistant", i + 1, t->role ? t->role : "(none)");
            return false;
        }
        if (t->content)
            ok = add_message(msgs, t->role, t->content);
    }
    return ok && add_message(msgs, "user", req->prompt) &&
           add_tool_exchange(msgs, req, err, err_size);
}

char *llm_openai_request_body(const llm_request *req, const char *model,
                              char *err, size_t err_size)
{
    if (err && err_size)
        err[0] = '\0';
    if (!req->prompt) {
        errbuf_printf(err, err_size, "request without a prompt");
        return NULL;
    }
    if (!model || !model[0]) {
        errbuf_printf(err, err_size, "request without a model");
        return NULL;
    }
    if (req->n_context > LLM_MAX_CONTEXT_ITEMS || (req->n_context && !req->context) ||
        (req->n_history && !req->history) || (req->n_tools && !req->tools) ||
        (req->n_tool_calls && !req->tool_calls)) {
        errbuf_printf(err, err_size, "malformed request (context, history or tools)");
        return NULL;
    }
    cJSON *root = cJSON_CreateObject();
    cJSON *opts = NULL;
    bool ok = root && add_str(root, "model", model) &&
              cJSON_AddBoolToObject(root, "stream", 1) &&
              (opts = cJSON_AddObjectToObject(root, "stream_options")) &&
              cJSON_AddBoolToObject(opts, "include_usage", 1) &&
              add_messages(root, req, err, err_size) &&
              add_tools(root, req, err, err_size);
    if (ok && req->temperature >= 0)
        ok = cJSON_AddNumberToObject(root, "temperature", req->temperature) != NULL;
    if (ok && req->max_tokens > 0)
        ok = cJSON_AddNumberToObject(root, "max_tokens", req->max_tokens) != NULL;
    char *body = ok ? json_print(root) : NULL;
    cJSON_Delete(root);
    if (!body && err && err_size && !err[0])
        errbuf_printf(err, err_size, "out of memory");
    return body;
}

/* ---- Retry-After --------------------------------------------------------------- */

long long llm_parse_retry_after(const char *value, long long now_wall_ms)
{
    if (!value)
        return -1;
    while (*value == ' ' || *value == '\t')
        value++;
    if (*value >= '0' && *value <= '9') {
        long long s = 0;
        const char *p = value;
        for (; *p >= '0' && *p <= '9'; p++) {
            if (s > 86400LL * 365)
                return -1;
            s = s * 10 + (*p - '0');
        }
        while (*p == ' ' || *p == '\t')
            p++;
        return *p ? -1 : s * 1000;
    }
    if (!*value)
        return -1;
    time_t t = curl_getdate(value, NULL);
    if (t == (time_t)-1)
        return -1;
    long long ms = (long long)t * 1000 - now_wall_ms;
    return ms > 0 ? ms : 0;
}

/* ---- the transfer ------------------------------------------------------------------ */

typedef struct transfer {
    const llm_request *req;
    llm_delta_fn on_delta;
    void *user;
    llm_stream stream;
    bool stream_ready;
    long status;                    /* of the final response, once known */
    char content_type[HEADER_VALUE_MAX];
    char retry_after[HEADER_VALUE_MAX];
    strbuf error_body;              /* a non-200 body, bounded */
    size_t delivered;
    long long start_ms, first_byte_ms, last_byte_ms;
    bool got_byte;                  /* of the answer, header or body */
    bool body_started;
    long long done_ms;              /* when [DONE] came, 0 before */
    CURL *easy;
} transfer;

static int transfer_delta(void *user, const char *delta, size_t len)
{
    transfer *t = user;
    t->delivered += len;
    return t->on_delta ? t->on_delta(t->user, delta, len) : 0;
}

/* Copies a header's value when line is "name: value". */
static void header_value(const char *line, size_t len, const char *name, char *out,
                         size_t size)
{
    size_t nlen = strlen(name);
    if (len <= nlen || strncasecmp(line, name, nlen) != 0 || line[nlen] != ':')
        return;
    const char *v = line + nlen + 1;
    size_t vlen = len - nlen - 1;
    while (vlen > 0 && (*v == ' ' || *v == '\t'))
        v++, vlen--;
    while (vlen > 0 && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' || v[vlen - 1] == ' '))
        vlen--;
    if (vlen >= size)
        vlen = size - 1;
    memcpy(out, v, vlen);
    out[vlen] = '\0';
}

static void note_byte(transfer *t)
{
    long long now = clock_mono_ms();
    if (!t->got_byte) {
        t->got_byte = true;
        t->first_byte_ms = now - t->start_ms;
    }
    t->last_byte_ms = now;
}

static size_t on_header(char *buf, size_t size, size_t n, void *user)
{
    transfer *t = user;
    size_t len = size * n;
    note_byte(t);
    if (len >= 5 && strncmp(buf, "HTTP/", 5) == 0) {
        /* A new response (after a 100 Continue, say): forget the last. */
        t->content_type[0] = t->retry_after[0] = '\0';
    }
    header_value(buf, len, "Content-Type", t->content_type, sizeof t->content_type);
    header_value(buf, len, "Retry-After", t->retry_after, sizeof t->retry_after);
    return len;
}

static bool is_json_type(const char *ct)
{
    return strncasecmp(ct, "application/json", 16) == 0;
}

static size_t on_body(char *buf, size_t size, size_t n, void *user)
{
    transfer *t = user;
    size_t len = size * n;
    note_byte(t);
    if (!t->body_started) {
        t->body_started = true;
        curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &t->status);
        if (t->status == 200) {
            llm_stream_init(&t->stream, is_json_type(t->content_type), transfer_delta, t);
            t->stream_ready = true;
        }
    }
    if (t->status != 200) {
        size_t room = LLM_OPENAI_ERROR_BODY_MAX - t->error_body.len;
        strbuf_addn(&t->error_body, buf, len < room ? len : room);
        return len < room ? len : 0;    /* enough of it: stop reading */
    }
    if (llm_stream_feed(&t->stream, buf, len) != LLM_OK)
        return 0;   /* stop the transfer; the stream says why */
    /* After [DONE] the rest (the end of the chunked body) is read and
     * dropped, so the connection can serve the next call. */
    if (llm_stream_done(&t->stream) && !t->done_ms)
        t->done_ms = clock_mono_ms();
    return len;
}

/* Azure OpenAI takes its key in an api-key header, not as a Bearer token. */
static bool is_azure(const char *base_url)
{
    const char *host = strstr(base_url, "://");
    host = host ? host + 3 : base_url;
    size_t len = strcspn(host, "/:?");
    const char suffix[] = ".openai.azure.com";
    size_t n = sizeof suffix - 1;
    return len > n && strncasecmp(host + len - n, suffix, n) == 0;
}

static struct curl_slist *request_headers(const llm_openai_endpoint *ep)
{
    struct curl_slist *h = NULL, *n;
    const char *fixed[] = { "Content-Type: application/json", "Accept: text/event-stream",
                            "Expect:" };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
        if (!(n = curl_slist_append(h, fixed[i])))
            goto fail;
        h = n;
    }
    if (ep->api_key && ep->api_key[0]) {
        strbuf auth = {0};
        strbuf_add(&auth, is_azure(ep->base_url) ? "api-key: " : "Authorization: Bearer ");
        strbuf_add(&auth, ep->api_key);
        n = auth.oom ? NULL : curl_slist_append(h, auth.s);
        if (auth.s)
            memset(auth.s, 0, auth.len);    /* the key, gone */
        strbuf_free(&auth);
        if (!n)
            goto fail;
        h = n;
    }
    /* The model call's span (llm_span.h), for a provider that traces. */
    char tp[TRACE_HEADER_LEN + 1];
    if (trace_current_header(tp)) {
        if (!(n = curl_slist_append(h, tp)))
            goto fail;
        h = n;
    }
    return h;
fail:
    curl_slist_free_all(h);
    return NULL;
}

static bool setup_easy(CURL *e, const llm_openai_endpoint *ep, const char *url,
                       const char *body, struct curl_slist *headers, transfer *t)
{
    return curl_easy_setopt(e, CURLOPT_URL, url) == CURLE_OK &&
           curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK &&
           curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
           curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers) == CURLE_OK &&
           curl_easy_setopt(e, CURLOPT_POSTFIELDS, body) == CURLE_OK &&
           curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body)) ==
               CURLE_OK &&
           curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body) == CURLE_OK &&
           curl_easy_setopt(e, CURLOPT_WRITEDATA, t) == CURLE_OK &&
           curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header) == CURLE_OK &&
           curl_easy_setopt(e, CURLOPT_HEADERDATA, t) == CURLE_OK &&
           curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)ep->connect_timeout_ms) ==
               CURLE_OK &&
           /* A backstop: the poll loop enforces the total first. */
           curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)ep->total_timeout_ms + 1000L) ==
               CURLE_OK &&
           curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L) == CURLE_OK &&
           curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L) == CURLE_OK &&
           curl_easy_setopt(e, CURLOPT_USERAGENT, "agentgate/0.1") == CURLE_OK;
}

enum { STOP_NONE = 0, STOP_ABORT, STOP_FIRST_BYTE, STOP_STALL, STOP_TOTAL };

/* Drives the transfer, waking every LLM_POLL_MS at most. Returns why it
 * was stopped (STOP_NONE: it ended by itself, *result saying how). */
static int drive(CURLM *m, transfer *t, const llm_openai_endpoint *ep, CURLcode *result)
{
    int running = 1;
    *result = CURLE_OK;
    for (;;) {
        CURLMcode mc = curl_multi_perform(m, &running);
        if (mc != CURLM_OK) {
            *result = CURLE_FAILED_INIT;
            return STOP_NONE;
        }
        if (!running)
            break;
        long long now = clock_mono_ms();
        if (t->req->should_abort && t->req->should_abort(t->req->abort_user))
            return STOP_ABORT;
        if (t->done_ms && now - t->done_ms >= DONE_GRACE_MS)
            return STOP_NONE;   /* [DONE] came and the server keeps the body open */
        if (now - t->start_ms >= ep->total_timeout_ms)
            return STOP_TOTAL;
        if (!t->got_byte && now - t->start_ms >= ep->first_byte_timeout_ms)
            return STOP_FIRST_BYTE;
        if (t->got_byte && now - t->last_byte_ms >= ep->first_byte_timeout_ms)
            return STOP_STALL;
        curl_multi_poll(m, NULL, 0, LLM_POLL_MS, NULL);
    }
    int left;
    CURLMsg *msg;
    while ((msg = curl_multi_info_read(m, &left)))
        if (msg->msg == CURLMSG_DONE)
            *result = msg->data.result;
    return STOP_NONE;
}

/* The provider's message from an error body: error.message, error,
 * message, or the body itself, flattened and bounded. */
static void error_from_body(const transfer *t, long status, char *out, size_t size)
{
    const char *msg = NULL;
    cJSON *root = NULL;
    if (t->error_body.len > 0) {
        root = json_parse_bounded(t->error_body.s, t->error_body.len,
                                  LLM_OPENAI_ERROR_BODY_MAX, JSON_MAX_DEPTH, NULL, 0);
        const cJSON *e = root ? cJSON_GetObjectItemCaseSensitive(root, "error") : NULL;
        if (cJSON_IsObject(e))
            msg = json_get_string(e, "message");
        else if (cJSON_IsString(e))
            msg = e->valuestring;
        if (!msg && root)
            msg = json_get_string(root, "message");
        if (!msg && !root)
            msg = t->error_body.s;
    }
    strbuf b = {0};
    strbuf_addf(&b, "HTTP %ld", status);
    if (msg && msg[0]) {
        strbuf_add(&b, ": ");
        strbuf_add_flat(&b, msg, 180);
    }
    errbuf_printf(out, size, "%s", b.oom ? "HTTP error" : b.s);
    strbuf_free(&b);
    cJSON_Delete(root);
}

/* Maps a non-200 answer. */
static llm_err http_failure(const transfer *t, llm_response *out, llm_call_status *st)
{
    long s = t->status;
    error_from_body(t, s, out->error, sizeof out->error);
    if (s == 429 || s == 503)
        st->retry_after_ms = llm_parse_retry_after(t->retry_after[0] ? t->retry_after : NULL,
                                                   clock_wall_ms());
    if (s == 429) {
        st->retryable = st->counts_as_failure = true;
        return LLM_ERR_RATE_LIMITED;
    }
    if (s == 408) {
        st->retryable = st->counts_as_failure = true;
        return LLM_ERR_TIMEOUT;
    }
    if (s >= 500) {
        st->retryable = st->counts_as_failure = true;
        return LLM_ERR_PROVIDER;
    }
    return LLM_ERR_PROVIDER;   /* a refusal: 4xx, or a redirect not followed */
}

/* Maps a transfer that ended with no usable HTTP answer. */
static llm_err transport_failure(const transfer *t, CURLcode rc, llm_response *out,
                                 llm_call_status *st)
{
    st->retryable = st->counts_as_failure = true;
    errbuf_printf(out->error, sizeof out->error, "%s", curl_easy_strerror(rc));
    if (rc == CURLE_OPERATION_TIMEDOUT) {
        if (!t->got_byte)
            errbuf_printf(out->error, sizeof out->error, "timed out after %lld ms",
                          clock_mono_ms() - t->start_ms);
        return LLM_ERR_TIMEOUT;
    }
    if (rc == CURLE_UNSUPPORTED_PROTOCOL || rc == CURLE_URL_MALFORMAT) {
        st->retryable = false;
        return LLM_ERR_UNAVAILABLE;
    }
    return LLM_ERR_UNAVAILABLE;
}

/* Words in what the request sends: the usage of a server that reports none. */
static long long count_request_words(const llm_request *req)
{
    long long n = llm_count_words(req->prompt) + llm_count_words(req->task);
    for (size_t i = 0; i < req->n_context; i++)
        n += llm_count_words(req->context[i].title) + llm_count_words(req->context[i].text);
    for (size_t i = 0; i < req->n_history; i++)
        n += llm_count_words(req->history[i].content);
    for (size_t i = 0; i < req->n_tool_calls; i++)
        n += llm_count_words(req->tool_calls[i].result);
    return n;
}

/* Maps the names the model used back to the tools they stand for. */
static void decode_tool_names(const llm_request *req, llm_response *out)
{
    for (size_t i = 0; i < out->n_tool_calls; i++) {
        char *name = out->tool_calls[i].name;
        for (size_t k = 0; k < req->n_tools; k++) {
            char enc[160];
            if (!req->tools[k].name)
                continue;
            encode_tool_name(req->tools[k].name, enc, sizeof enc);
            if (strcmp(enc, name) == 0) {
                snprintf(name, sizeof out->tool_calls[i].name, "%s", req->tools[k].name);
                break;
            }
        }
    }
}

/* Finishes a 200 answer: the stream's outcome. */
static llm_err stream_outcome(transfer *t, CURLcode rc, const llm_openai_endpoint *ep,
                              llm_response *out, llm_call_status *st)
{
    bool cut = rc != CURLE_OK && !llm_stream_done(&t->stream) && t->stream.err == LLM_OK;
    llm_err e = llm_stream_finish(&t->stream, out);
    if (e != LLM_OK) {
        if (cut && t->stream.truncated)
            errbuf_printf(out->error, sizeof out->error, "stream broken (%s) after %zu "
                          "chunks", curl_easy_strerror(rc), t->stream.chunks);
        /* A broken or failed stream is worth another try; malformed
         * content is not (it would be malformed again). */
        st->retryable = e == LLM_ERR_PROVIDER || t->stream.truncated;
        st->counts_as_failure = e != LLM_ERR_ABORTED && e != LLM_ERR_NOMEM;
        return e;
    }
    if (!out->model[0])
        snprintf(out->model, sizeof out->model, "%.*s", (int)sizeof out->model - 1, ep->model);
    if (!t->stream.have_usage) {
        out->usage.tokens_in = count_request_words(t->req);
        out->usage.tokens_out = llm_count_words(out->text);
        for (size_t i = 0; i < out->n_tool_calls; i++)
            out->usage.tokens_out += llm_count_words(out->tool_calls[i].arguments);
    }
    decode_tool_names(t->req, out);
    return LLM_OK;
}

static llm_err stopped(int why, transfer *t, const llm_openai_endpoint *ep,
                       llm_response *out, llm_call_status *st)
{
    if (why == STOP_ABORT) {
        errbuf_printf(out->error, sizeof out->error, "aborted while the provider was "
                      "answering");
        return LLM_ERR_ABORTED;
    }
    st->retryable = st->counts_as_failure = true;
    if (why == STOP_FIRST_BYTE)
        errbuf_printf(out->error, sizeof out->error, "no answer within %d ms (first byte "
                      "timeout)", ep->first_byte_timeout_ms);
    else if (why == STOP_STALL)
        errbuf_printf(out->error, sizeof out->error, "stream stalled: nothing for %d ms "
                      "after %zu chunks", ep->first_byte_timeout_ms,
                      t->stream_ready ? t->stream.chunks : 0);
    else
        errbuf_printf(out->error, sizeof out->error, "total timeout of %d ms reached",
                      ep->total_timeout_ms);
    return LLM_ERR_TIMEOUT;
}

static llm_err run_transfer(curl_cache *cc, transfer *t, const llm_openai_endpoint *ep,
                            const char *url, const char *body, llm_response *out,
                            llm_call_status *st)
{
    struct curl_slist *headers = request_headers(ep);
    if (!headers) {
        errbuf_printf(out->error, sizeof out->error, "out of memory");
        return LLM_ERR_NOMEM;
    }
    curl_easy_reset(cc->easy);
    t->easy = cc->easy;
    if (!setup_easy(cc->easy, ep, url, body, headers, t) ||
        curl_multi_add_handle(cc->multi, cc->easy) != CURLM_OK) {
        curl_slist_free_all(headers);
        errbuf_printf(out->error, sizeof out->error, "libcurl refused the request setup");
        return LLM_ERR_UNAVAILABLE;
    }
    CURLcode rc;
    t->start_ms = clock_mono_ms();
    int why = drive(cc->multi, t, ep, &rc);
    curl_multi_remove_handle(cc->multi, cc->easy);
    curl_slist_free_all(headers);
    st->first_byte_ms = t->got_byte ? t->first_byte_ms : -1;
    st->http_status = (int)t->status;

    llm_err e;
    if (why != STOP_NONE) {
        e = stopped(why, t, ep, out, st);
    } else if (t->body_started && t->status != 200) {
        e = http_failure(t, out, st);
    } else if (t->stream_ready) {
        e = stream_outcome(t, rc, ep, out, st);
    } else if (rc == CURLE_OK) {
        /* 200 with an empty body, or headers alone. */
        curl_easy_getinfo(cc->easy, CURLINFO_RESPONSE_CODE, &t->status);
        st->http_status = (int)t->status;
        if (t->status != 200) {
            e = http_failure(t, out, st);
        } else {
            errbuf_printf(out->error, sizeof out->error, "empty reply");
            st->retryable = st->counts_as_failure = true;
            e = LLM_ERR_BAD_REPLY;
        }
    } else {
        e = transport_failure(t, rc, out, st);
    }
    return e;
}

/* base_url + "/chat/completions", before any query string (Azure's
 * "...?api-version=..."). */
static void completions_url(strbuf *url, const char *base)
{
    const char *q = strchr(base, '?');
    size_t len = q ? (size_t)(q - base) : strlen(base);
    while (len > 0 && base[len - 1] == '/')
        len--;
    strbuf_addn(url, base, len);
    strbuf_add(url, "/chat/completions");
    if (q)
        strbuf_add(url, q);
}

llm_err llm_openai_call(const llm_openai_endpoint *ep, const llm_request *req,
                        llm_delta_fn on_delta, void *user, llm_response *out,
                        llm_call_status *st)
{
    memset(out, 0, sizeof *out);
    memset(st, 0, sizeof *st);
    st->retry_after_ms = -1;
    st->first_byte_ms = -1;
    char *body = llm_openai_request_body(req, ep->model, out->error, sizeof out->error);
    if (!body)
        return strcmp(out->error, "out of memory") == 0 ? LLM_ERR_NOMEM
                                                        : LLM_ERR_INVALID_REQUEST;
    strbuf url = {0};
    completions_url(&url, ep->base_url);
    curl_cache *cc = thread_cache();
    if (url.oom || !cc) {
        free(body);
        strbuf_free(&url);
        errbuf_printf(out->error, sizeof out->error, "%s", cc ? "out of memory"
                      : "libcurl is not initialised or out of memory");
        return cc ? LLM_ERR_NOMEM : LLM_ERR_UNAVAILABLE;
    }
    transfer t = { .req = req, .on_delta = on_delta, .user = user };
    llm_err e = run_transfer(cc, &t, ep, url.s, body, out, st);
    st->delivered = t.delivered;
    if (t.stream_ready)
        llm_stream_free(&t.stream);
    strbuf_free(&t.error_body);
    strbuf_free(&url);
    free(body);
    if (e != LLM_OK)
        llm_response_free(out);
    return e;
}
