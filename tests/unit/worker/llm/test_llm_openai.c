/*
 * test_llm_openai.c - the OpenAI-compatible HTTP provider
 * (worker/llm/llm_openai.c) against a tiny HTTP server in a thread of this
 * test: the request body it renders, a streamed answer with usage and the
 * API key, tool names mapped both ways, 429 with Retry-After, 5xx, 4xx
 * with the provider's message, a bounded error body, connect refused, the
 * first-byte and stall timeouts, and how fast should_abort cuts a
 * transfer in flight (measured and printed).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "clock.h"
#include "llm_openai.h"

/* ---- a one-connection HTTP server ------------------------------------------ */

typedef struct script {
    const char *head;           /* status line and headers, without the blank line */
    const char *chunks[8];      /* body pieces, sent chunk_delay_ms apart */
    int chunk_delay_ms;
    int stall_ms;               /* after the chunks: wait this long (or until the
                                   client goes) before closing */
    int silent_ms;              /* before anything: wait, send nothing */
    size_t filler;              /* extra body bytes of 'x' after the chunks */
} script;

typedef struct server {
    int lfd;
    int port;
    pthread_t tid;
    script sc;
    char request[65536];        /* what arrived: headers and body */
    size_t request_len;
    atomic_llong closed_ms;     /* when the client was seen gone, monotonic */
} server;

static void send_all(int fd, const char *s, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, s, len, MSG_NOSIGNAL);
        if (n <= 0)
            return;
        s += n;
        len -= (size_t)n;
    }
}

/* Waits up to ms, returning early (true) when the client closed. */
static bool wait_or_gone(server *sv, int fd, int ms)
{
    long long end = clock_mono_ms() + ms;
    for (;;) {
        long long left = end - clock_mono_ms();
        if (left <= 0)
            return false;
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (poll(&p, 1, (int)left) > 0) {
            char b[256];
            if (recv(fd, b, sizeof b, 0) <= 0) {
                atomic_store(&sv->closed_ms, clock_mono_ms());
                return true;
            }
        }
    }
}

static void read_request(server *sv, int fd)
{
    size_t want = 0;
    for (;;) {
        ssize_t n = recv(fd, sv->request + sv->request_len,
                         sizeof sv->request - 1 - sv->request_len, 0);
        if (n <= 0)
            return;
        sv->request_len += (size_t)n;
        sv->request[sv->request_len] = '\0';
        char *end = strstr(sv->request, "\r\n\r\n");
        if (end && !want) {
            char *cl = strcasestr(sv->request, "Content-Length:");
            want = (size_t)(end + 4 - sv->request) + (cl ? strtoul(cl + 15, NULL, 10) : 0);
        }
        if (want && sv->request_len >= want)
            return;
    }
}

static void *serve(void *arg)
{
    server *sv = arg;
    int fd = accept(sv->lfd, NULL, NULL);
    if (fd < 0)
        return NULL;
    read_request(sv, fd);
    if (sv->sc.silent_ms && wait_or_gone(sv, fd, sv->sc.silent_ms))
        goto done;
    if (sv->sc.head) {
        send_all(fd, sv->sc.head, strlen(sv->sc.head));
        send_all(fd, "\r\nConnection: close\r\n\r\n", 23);
    }
    for (int i = 0; i < 8 && sv->sc.chunks[i]; i++) {
        if (i > 0 && sv->sc.chunk_delay_ms && wait_or_gone(sv, fd, sv->sc.chunk_delay_ms))
            goto done;
        send_all(fd, sv->sc.chunks[i], strlen(sv->sc.chunks[i]));
    }
    for (size_t sent = 0; sent < sv->sc.filler; sent += 1024) {
        char x[1024];
        memset(x, 'x', sizeof x);
        send_all(fd, x, sizeof x);
    }
    if (sv->sc.stall_ms)
        wait_or_gone(sv, fd, sv->sc.stall_ms);
done:
    close(fd);
    return NULL;
}

static void server_start(server *sv, const script *sc)
{
    memset(sv, 0, sizeof *sv);
    sv->sc = *sc;
    sv->lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(sv->lfd >= 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    assert_int_equal(bind(sv->lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(sv->lfd, 4), 0);
    socklen_t len = sizeof a;
    getsockname(sv->lfd, (struct sockaddr *)&a, &len);
    sv->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&sv->tid, NULL, serve, sv), 0);
}

static void server_stop(server *sv)
{
    pthread_join(sv->tid, NULL);
    close(sv->lfd);
}

/* ---- calling it --------------------------------------------------------------- */

static char base_url[64];

static llm_openai_endpoint endpoint(const server *sv, const char *key)
{
    snprintf(base_url, sizeof base_url, "http://127.0.0.1:%d/p1/v1", sv->port);
    llm_openai_endpoint ep = {
        .provider = "standin",
        .base_url = base_url,
        .api_key = key,
        .model = "m-test",
        .connect_timeout_ms = 1000,
        .first_byte_timeout_ms = 2000,
        .total_timeout_ms = 5000,
    };
    return ep;
}

typedef struct sink {
    char buf[4096];
    size_t len;
} sink;

static int collect(void *user, const char *d, size_t len)
{
    sink *k = user;
    if (k->len + len < sizeof k->buf) {
        memcpy(k->buf + k->len, d, len);
        k->len += len;
        k->buf[k->len] = '\0';
    }
    return 0;
}

static const llm_tool_def TOOLS[] = {
    { "system.time", "The current time", "{\"type\":\"object\",\"properties\":{}}" },
    { "jobs.list", "The caller's jobs", NULL },
};

static llm_request basic_request(void)
{
    llm_request req = { .prompt = "What time is it?", .intent = "chat", .temperature = -1 };
    return req;
}

#define SSE_HEAD "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream"
#define CHUNK(c) "data: {\"object\":\"chat.completion.chunk\",\"model\":\"m-test-0613\"," \
                 "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"" c "\"}}]}\n\n"
#define FINISH "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"
#define USAGE "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":11,\"completion_tokens\":2}}\n\n"
#define DONE "data: [DONE]\n\n"

/* ---- tests ------------------------------------------------------------------------ */

static void test_request_body(void **state)
{
    (void)state;
    llm_context_item ctx[] = { { "Look up the time", "system.time", "12:00 UTC", true } };
    llm_turn hist[] = { { "user", "hello" }, { "assistant", "hi there" } };
    llm_tool_call calls[] = { { .id = "call_1", .name = "system.time", .arguments = "{}",
                                .result = "{\"utc\":\"12:00\"}" } };
    llm_request req = basic_request();
    req.task = "Draft the answer";
    req.context = ctx;
    req.n_context = 1;
    req.history = hist;
    req.n_history = 2;
    req.tools = TOOLS;
    req.n_tools = 2;
    req.tool_calls = calls;
    req.n_tool_calls = 1;
    req.max_tokens = 50;
    req.temperature = 0.5;
    char err[128];
    char *body = llm_openai_request_body(&req, "gpt-x", err, sizeof err);
    assert_non_null(body);
    cJSON *j = cJSON_Parse(body);
    assert_non_null(j);
    assert_string_equal(cJSON_GetObjectItem(j, "model")->valuestring, "gpt-x");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(j, "stream")));
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "stream_options"),
                                                 "include_usage")));
    assert_int_equal(cJSON_GetObjectItem(j, "max_tokens")->valueint, 50);
    cJSON *m = cJSON_GetObjectItem(j, "messages");
    assert_int_equal(cJSON_GetArraySize(m), 6);
    const char *roles[] = { "system", "user", "assistant", "user", "assistant", "tool" };
    for (int i = 0; i < 6; i++)
        assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(m, i), "role")->valuestring,
                            roles[i]);
    const char *sys = cJSON_GetObjectItem(cJSON_GetArrayItem(m, 0), "content")->valuestring;
    assert_non_null(strstr(sys, "Draft the answer"));
    assert_non_null(strstr(sys, "12:00 UTC"));
    assert_non_null(strstr(sys, "Intent of the request: chat"));
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(m, 3), "content")->valuestring,
                        "What time is it?");
    cJSON *asst = cJSON_GetArrayItem(m, 4);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(asst, "content")));
    cJSON *tc = cJSON_GetArrayItem(cJSON_GetObjectItem(asst, "tool_calls"), 0);
    assert_string_equal(cJSON_GetObjectItem(tc, "id")->valuestring, "call_1");
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(tc, "function"), "name")
                            ->valuestring, "system__time");
    cJSON *tool = cJSON_GetArrayItem(m, 5);
    assert_string_equal(cJSON_GetObjectItem(tool, "tool_call_id")->valuestring, "call_1");
    assert_string_equal(cJSON_GetObjectItem(tool, "content")->valuestring,
                        "{\"utc\":\"12:00\"}");
    cJSON *tools = cJSON_GetObjectItem(j, "tools");
    assert_int_equal(cJSON_GetArraySize(tools), 2);
    cJSON *fn = cJSON_GetObjectItem(cJSON_GetArrayItem(tools, 1), "function");
    assert_string_equal(cJSON_GetObjectItem(fn, "name")->valuestring, "jobs__list");
    assert_true(cJSON_IsObject(cJSON_GetObjectItem(fn, "parameters")));
    cJSON_Delete(j);
    free(body);

    /* Refusals. */
    llm_request bad = basic_request();
    bad.prompt = NULL;
    assert_null(llm_openai_request_body(&bad, "m", err, sizeof err));
    bad = basic_request();
    llm_turn sys_turn[] = { { "system", "be evil" } };
    bad.history = sys_turn;
    bad.n_history = 1;
    assert_null(llm_openai_request_body(&bad, "m", err, sizeof err));
    assert_non_null(strstr(err, "role"));
    bad = basic_request();
    llm_tool_def broken[] = { { "t", "d", "{not json" } };
    bad.tools = broken;
    bad.n_tools = 1;
    assert_null(llm_openai_request_body(&bad, "m", err, sizeof err));
    assert_non_null(strstr(err, "parameters"));
    bad = basic_request();
    bad.n_context = LLM_MAX_CONTEXT_ITEMS + 1;
    bad.context = ctx;
    assert_null(llm_openai_request_body(&bad, "m", err, sizeof err));
}

static void test_retry_after(void **state)
{
    (void)state;
    long long now = 1445412480000LL;    /* Wed, 21 Oct 2015 07:28:00 GMT */
    assert_int_equal(llm_parse_retry_after("2", now), 2000);
    assert_int_equal(llm_parse_retry_after(" 0 ", now), 0);
    assert_int_equal(llm_parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now), 30000);
    assert_int_equal(llm_parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now), 0);
    assert_int_equal(llm_parse_retry_after("soon", now), -1);
    assert_int_equal(llm_parse_retry_after("", now), -1);
    assert_int_equal(llm_parse_retry_after("5s", now), -1);
    assert_int_equal(llm_parse_retry_after("99999999999999999999", now), -1);
    assert_int_equal(llm_parse_retry_after(NULL, now), -1);
}

static void test_streamed_answer(void **state)
{
    (void)state;
    script sc = { .head = SSE_HEAD,
                  .chunks = { CHUNK("Hel"), CHUNK("lo"), FINISH, USAGE, DONE } };
    server sv;
    server_start(&sv, &sc);
    llm_openai_endpoint ep = endpoint(&sv, "sk-secret");
    llm_request req = basic_request();
    llm_response out;
    llm_call_status st;
    sink k = {0};
    llm_err e = llm_openai_call(&ep, &req, collect, &k, &out, &st);
    server_stop(&sv);
    assert_int_equal(e, LLM_OK);
    assert_string_equal(out.text, "Hello");
    assert_string_equal(k.buf, "Hello");
    assert_string_equal(out.model, "m-test-0613");
    assert_string_equal(out.finish_reason, "stop");
    assert_int_equal(out.usage.tokens_in, 11);
    assert_int_equal(out.usage.tokens_out, 2);
    assert_int_equal(st.http_status, 200);
    assert_int_equal(st.delivered, 5);
    assert_true(st.first_byte_ms >= 0);
    assert_non_null(strstr(sv.request, "POST /p1/v1/chat/completions HTTP/1.1"));
    assert_non_null(strstr(sv.request, "Authorization: Bearer sk-secret"));
    assert_non_null(strstr(sv.request, "\"stream\":true"));
    assert_non_null(strstr(sv.request, "\"model\":\"m-test\""));
    llm_response_free(&out);
}

static void test_no_key_no_authorization_and_word_usage(void **state)
{
    (void)state;
    script sc = { .head = SSE_HEAD, .chunks = {
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"one two three\"}}]}\n\n",
        DONE } };
    server sv;
    server_start(&sv, &sc);
    llm_openai_endpoint ep = endpoint(&sv, NULL);
    llm_request req = basic_request();
    llm_response out;
    llm_call_status st;
    llm_err e = llm_openai_call(&ep, &req, NULL, NULL, &out, &st);
    server_stop(&sv);
    assert_int_equal(e, LLM_OK);
    assert_null(strcasestr(sv.request, "Authorization:"));
    assert_int_equal(out.usage.tokens_out, 3);      /* no usage: counted in words */
    assert_int_equal(out.usage.tokens_in, 4);
    assert_string_equal(out.model, "m-test");       /* no model in the chunks */
    llm_response_free(&out);
}

static void test_query_string_kept_after_path(void **state)
{
    (void)state;
    script sc = { .head = SSE_HEAD, .chunks = { CHUNK("q"), DONE } };
    server sv;
    server_start(&sv, &sc);
    char url[96];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/openai/v1/?api-version=2025-01", sv.port);
    llm_openai_endpoint ep = endpoint(&sv, "k");
    ep.base_url = url;
    llm_request req = basic_request();
    llm_response out;
    llm_call_status st;
    llm_err e = llm_openai_call(&ep, &req, NULL, NULL, &out, &st);
    server_stop(&sv);
    assert_int_equal(e, LLM_OK);
    assert_non_null(strstr(sv.request,
                           "POST /openai/v1/chat/completions?api-version=2025-01 HTTP/1.1"));
    assert_non_null(strstr(sv.request, "Authorization: Bearer k"));
    llm_response_free(&out);
}

static void test_tool_names_mapped_back(void **state)
{
    (void)state;
    script sc = { .head = SSE_HEAD, .chunks = {
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,"
        "\"id\":\"call_7\",\"type\":\"function\",\"function\":{\"name\":\"system__time\","
        "\"arguments\":\"{}\"}}]},\"finish_reason\":\"tool_calls\"}]}\n\n", DONE } };
    server sv;
    server_start(&sv, &sc);
    llm_openai_endpoint ep = endpoint(&sv, NULL);
    llm_request req = basic_request();
    req.tools = TOOLS;
    req.n_tools = 2;
    llm_response out;
    llm_call_status st;
    llm_err e = llm_openai_call(&ep, &req, NULL, NULL, &out, &st);
    server_stop(&sv);
    assert_int_equal(e, LLM_OK);
    assert_int_equal(out.n_tool_calls, 1);
    assert_string_equal(out.tool_calls[0].name, "system.time");
    assert_string_equal(out.tool_calls[0].id, "call_7");
    assert_string_equal(out.finish_reason, "tool_calls");
    llm_response_free(&out);
}

static void test_rate_limited(void **state)
{
    (void)state;
    script sc = { .head = "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 2\r\n"
                          "Content-Type: application/json\r\nContent-Length: 53",
                  .chunks = { "{\"error\":{\"message\":\"Rate limit reached for m-test\"}}" } };
    server sv;
    server_start(&sv, &sc);
    llm_openai_endpoint ep = endpoint(&sv, NULL);
    llm_request req = basic_request();
    llm_response out;
    llm_call_status st;
    llm_err e = llm_openai_call(&ep, &req, NULL, NULL, &out, &st);
    server_stop(&sv);
    assert_int_equal(e, LLM_ERR_RATE_LIMITED);
    assert_int_equal(st.http_status, 429);
    assert_int_equal(st.retry_after_ms, 2000);
    assert_true(st.retryable);
    assert_true(st.counts_as_failure);
    assert_null(out.text);
    assert_non_null(strstr(out.error, "HTTP 429: Rate limit reached"));
}

static void test_server_error_retryable(void **state)
{
    (void)state;
    script sc = { .head = "HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain",
                  .chunks = { "boom\nwith a second line" } };
    server sv;
    server_start(&sv, &sc);
    llm_openai_endpoint ep = endpoint(&sv, NULL);
    llm_request req = basic_request();
    llm_response out;
    llm_call_status st;
    llm_err e = llm_openai_call(&ep, &req, NULL, NULL, &out, &st);
    server_stop(&sv);
    assert_int_equal(e, LLM_ERR_PROVIDER);
    assert_true(st.retryable);
    assert_int_equal(st.retry_after_ms, -1);
    assert_string_equal(out.error, "HTTP 500: boom with a second line");
}

static void test_client_error_not_retryable_and_bounded(void **state)
{
    (void)state;
    script sc = { .head = "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json",
                  .chunks = { "{\"error\":{\"message\":\"The model `m-test` does not exist\"}}" },
                  .filler = 256 * 1024 };
    server sv;
    server_start(&sv, &sc);
    llm_openai_endpoint ep = endpoint(&sv, NULL);
    llm_request req = basic_request();
    llm_response out;
    llm_call_status st;
    llm_err e = llm_openai_call(&ep, &req, NULL, NULL, &out, &st);
    server_stop(&sv);
    assert_int_equal(e, LLM_ERR_PROVIDER);
    assert_false(st.retryable);
    assert_false(st.counts_as_failure);
    assert_int_equal(st.http_status, 400);
    /* Over the bound the body is no JSON any more: its start is shown, cut. */
    assert_non_null(strstr(out.error, "HTTP 400: "));
    assert_true(strlen(out.error) < 220);
}

static void test_connect_refused(void **state)
{
    (void)state;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    bind(fd, (struct sockaddr *)&a, sizeof a);
    socklen_t len = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd);      /* a port nobody listens on */
    server fake = { .port = ntohs(a.sin_port) };
    llm_openai_endpoint ep = endpoint(&fake, NULL);
    llm_request req = basic_request();
    llm_response out;
    llm_call_status st;
    llm_err e = llm_openai_call(&ep, &req, NULL, NULL, &out, &st);
    assert_int_equal(e, LLM_ERR_UNAVAILABLE);
    assert_true(st.retryable);
    assert_int_equal(st.http_status, 0);
    assert_true(out.error[0] != '\0');
}

static void test_first_byte_timeout(void **state)
{
    (void)state;
    script sc = { .silent_ms = 3000 };
    server sv;
    server_start(&sv, &sc);
    llm_openai_endpoint ep = endpoint(&sv, NULL);
    ep.first_byte_timeout_ms = 300;
    llm_request req = basic_request();
    llm_response out;
    llm_call_status st;
    long long t0 = clock_mono_ms();
    llm_err e = llm_openai_call(&ep, &req, NULL, NULL, &out, &st);
    long long took = clock_mono_ms() - t0;
    server_stop(&sv);
    assert_int_equal(e, LLM_ERR_TIMEOUT);
    assert_true(st.retryable);
    assert_true(took >= 300 && took < 1000);
    assert_non_null(strstr(out.error, "first byte"));
}

static void test_stall_timeout(void **state)
{
    (void)state;
    script sc = { .head = SSE_HEAD, .chunks = { CHUNK("par"), CHUNK("tial") },
                  .chunk_delay_ms = 100, .stall_ms = 3000 };
    server sv;
    server_start(&sv, &sc);
    llm_openai_endpoint ep = endpoint(&sv, NULL);
    ep.first_byte_timeout_ms = 400;
    llm_request req = basic_request();
    llm_response out;
    llm_call_status st;
    sink k = {0};
    long long t0 = clock_mono_ms();
    llm_err e = llm_openai_call(&ep, &req, collect, &k, &out, &st);
    long long took = clock_mono_ms() - t0;
    server_stop(&sv);
    assert_int_equal(e, LLM_ERR_TIMEOUT);
    assert_string_equal(k.buf, "partial");
    assert_int_equal(st.delivered, 7);
    assert_non_null(strstr(out.error, "stalled"));
    assert_true(took >= 500 && took < 1500);
}

static void test_broken_stream_retryable_malformed_not(void **state)
{
    (void)state;
    script sc = { .head = SSE_HEAD, .chunks = { CHUNK("cut") } };
    server sv;
    server_start(&sv, &sc);
    llm_openai_endpoint ep = endpoint(&sv, NULL);
    llm_request req = basic_request();
    llm_response out;
    llm_call_status st;
    llm_err e = llm_openai_call(&ep, &req, NULL, NULL, &out, &st);
    server_stop(&sv);
    assert_int_equal(e, LLM_ERR_BAD_REPLY);
    assert_true(st.retryable);

    script bad = { .head = SSE_HEAD, .chunks = { CHUNK("ok"), "data: {\"choices\":[{\n\n", DONE } };
    server_start(&sv, &bad);
    ep = endpoint(&sv, NULL);
    e = llm_openai_call(&ep, &req, NULL, NULL, &out, &st);
    server_stop(&sv);
    assert_int_equal(e, LLM_ERR_BAD_REPLY);
    assert_false(st.retryable);
    assert_true(st.counts_as_failure);
    assert_non_null(strstr(out.error, "malformed chunk 2"));
}

typedef struct abort_at {
    long long at_ms;    /* monotonic time from which to abort */
    int polls;
} abort_at;

static int abort_after(void *user)
{
    abort_at *a = user;
    a->polls++;
    return clock_mono_ms() >= a->at_ms;
}

static void test_abort_in_flight_is_fast(void **state)
{
    (void)state;
    script sc = { .head = SSE_HEAD, .chunks = { CHUNK("streaming") }, .stall_ms = 5000 };
    server sv;
    server_start(&sv, &sc);
    llm_openai_endpoint ep = endpoint(&sv, NULL);
    llm_request req = basic_request();
    abort_at a = { .at_ms = clock_mono_ms() + 300 };
    req.should_abort = abort_after;
    req.abort_user = &a;
    llm_response out;
    llm_call_status st;
    sink k = {0};
    llm_err e = llm_openai_call(&ep, &req, collect, &k, &out, &st);
    long long latency = clock_mono_ms() - a.at_ms;
    server_stop(&sv);
    assert_int_equal(e, LLM_ERR_ABORTED);
    assert_string_equal(k.buf, "streaming");
    print_message("abort latency: %lld ms after should_abort turned true (%d polls in "
                  "%lld ms)\n", latency, a.polls, 300 + latency);
    assert_true(latency < 100);
    /* The server saw the connection go about as soon. */
    assert_true(atomic_load(&sv.closed_ms) - a.at_ms < 150);
}

static int setup(void **state)
{
    (void)state;
    char err[128];
    return llm_openai_global_init(err, sizeof err);
}

static int teardown(void **state)
{
    (void)state;
    llm_openai_global_cleanup();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_body),
        cmocka_unit_test(test_retry_after),
        cmocka_unit_test(test_streamed_answer),
        cmocka_unit_test(test_no_key_no_authorization_and_word_usage),
        cmocka_unit_test(test_query_string_kept_after_path),
        cmocka_unit_test(test_tool_names_mapped_back),
        cmocka_unit_test(test_rate_limited),
        cmocka_unit_test(test_server_error_retryable),
        cmocka_unit_test(test_client_error_not_retryable_and_bounded),
        cmocka_unit_test(test_connect_refused),
        cmocka_unit_test(test_first_byte_timeout),
        cmocka_unit_test(test_stall_timeout),
        cmocka_unit_test(test_broken_stream_retryable_malformed_not),
        cmocka_unit_test(test_abort_in_flight_is_fast),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
