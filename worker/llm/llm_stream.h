/*
 * llm_stream.h - an incremental parser for OpenAI chat-completion replies:
 * the Server-Sent Events stream of chat.completion.chunk objects that
 * stream=true gives, or one chat.completion object from a server that
 * answered without streaming.
 *
 * It does no I/O: bytes go in through llm_stream_feed in whatever pieces
 * the network delivers (a line, a UTF-8 sequence or a JSON string may be
 * cut anywhere between two calls), text comes out through on_delta as
 * each chunk is complete, and llm_stream_finish assembles the response.
 * Everything is bounded: each line, the whole body, the text, each tool
 * call's arguments. Anything malformed or oversize makes the stream fail
 * with LLM_ERR_BAD_REPLY; an error object inside the stream with
 * LLM_ERR_PROVIDER. The first error sticks.
 */
#ifndef AG_WORKER_LLM_STREAM_H
#define AG_WORKER_LLM_STREAM_H

#include <stdbool.h>
#include <stddef.h>

#include "llm.h"
#include "strbuf.h"

#define LLM_STREAM_LINE_MAX  (256 * 1024)        /* bytes per SSE line */
#define LLM_STREAM_BODY_MAX  (16 * 1024 * 1024)  /* bytes of a whole reply */
#define LLM_STREAM_TEXT_MAX  (4 * 1024 * 1024)   /* bytes of generated text */
#define LLM_STREAM_ARGS_MAX  (64 * 1024)         /* bytes of one call's arguments */

typedef struct llm_stream_call {
    long long index;            /* the provider's index for the call */
    char id[sizeof(((llm_tool_call *)0)->id)];
    char name[sizeof(((llm_tool_call *)0)->name)];
    strbuf args;
} llm_stream_call;

typedef struct llm_stream {
    /* Limits, set by llm_stream_init to the defaults above; a test may
     * lower them before the first feed. */
    size_t line_max, body_max, text_max, args_max;

    llm_delta_fn on_delta;
    void *user;
    bool json_body;             /* one JSON object, not an event stream */

    strbuf line;                /* the line being received */
    bool after_cr;              /* the last byte was CR: an LF next is its pair */
    strbuf data;                /* the current event's data (or the JSON body) */
    bool have_data;
    char event[32];             /* the current event's type, "" for message */
    size_t body_bytes;

    strbuf text;                /* all content so far */
    llm_stream_call calls[LLM_MAX_TOOL_CALLS];
    size_t n_calls;
    size_t dropped_calls;       /* calls past LLM_MAX_TOOL_CALLS */
    size_t chunks;              /* events parsed */
    bool done;                  /* data: [DONE] seen */
    bool have_usage;
    llm_usage usage;
    char model[64];
    char finish_reason[16];

    llm_err err;                /* LLM_OK until something fails */
    bool truncated;             /* the reply ended before it was complete */
    char error[256];
} llm_stream;

/* Sets s up to parse an event stream, or with json_body one JSON
 * completion object. on_delta (may be NULL) gets the text as it comes. */
void llm_stream_init(llm_stream *s, bool json_body, llm_delta_fn on_delta, void *user);

/*
 * Feeds the next len bytes of the reply. Returns LLM_OK, or the stream's
 * error (sticky: later feeds do nothing and return it again): BAD_REPLY,
 * PROVIDER, NOMEM, or ABORTED when on_delta asked to stop. Bytes after
 * data: [DONE] are ignored.
 */
llm_err llm_stream_feed(llm_stream *s, const char *buf, size_t len);

/* True once data: [DONE] was seen: the caller may stop reading. */
bool llm_stream_done(const llm_stream *s);

/*
 * Ends the reply (the connection closed or [DONE] came) and fills *out:
 * text (never NULL on LLM_OK, "" when the model only called tools), model
 * (when the reply named one), finish_reason ("stop" or "tool_calls" when
 * the reply gave none), the tool calls, and usage when the reply had it
 * (s->have_usage says whether). A stream that ended with neither [DONE]
 * nor a finish_reason is BAD_REPLY with s->truncated set. On an error
 * *out is left without text or calls and s->error says why. Call
 * llm_stream_free afterwards either way.
 */
llm_err llm_stream_finish(llm_stream *s, llm_response *out);

/* Frees what the parser holds. */
void llm_stream_free(llm_stream *s);

#endif
