/*
 * http_client.h - the agentgate CLI's HTTP calls to the gateway, over
 * libcurl: one bounded request/answer (a timeout, a cap on the answer's
 * size), and one event stream whose bytes are handed on as they arrive and
 * which a signal can interrupt at once.
 *
 * A client holds the gateway's base URL and the bearer token; every call
 * takes a path ("/v1/jobs?limit=5") that the caller has already escaped.
 * Nothing here prints: failures come back as a code and a one-line reason.
 */
#ifndef AG_HTTP_CLIENT_H
#define AG_HTTP_CLIENT_H

#include <stddef.h>

/* Results of agc_request and agc_stream. An answer with any HTTP status
 * (404, 500, ...) is AGC_OK: the caller looks at the status. */
enum {
    AGC_OK = 0,
    AGC_ERR_CONNECT,       /* no answer: refused, DNS, TLS, timeout, cut off */
    AGC_ERR_TOO_LARGE,     /* the answer passed max_body */
    AGC_ERR_INTERRUPTED,   /* the wake fd became readable (a signal) */
    AGC_ERR_STOPPED,       /* the stream's callback asked to stop */
    AGC_ERR_NOMEM,
};

typedef struct agc {
    char *base;             /* the base URL without a trailing '/' */
    char *auth;             /* "Authorization: Bearer ..." or NULL */
    long timeout_ms;        /* whole request, non-stream calls */
    long connect_timeout_ms;
    long stall_s;           /* a stream silent this long is dropped (keepalives count) */
    size_t max_body;        /* cap on an answer read whole */
    int wake_fd;            /* readable = interrupt a stream; -1 for none */
} agc;

/* An answer read whole. body is malloc'd and NUL-terminated (may be "" but
 * never NULL after AGC_OK). */
typedef struct agc_response {
    long status;
    char *body;
    size_t len;
    char content_type[128];   /* media type only, lowercased, without parameters */
    char location[512];
    char retry_after[32];
} agc_response;

/* Called with each piece of a 200 event stream's body; a non-zero return
 * ends the stream (agc_stream then returns AGC_ERR_STOPPED). */
typedef int (*agc_chunk_fn)(void *ud, const char *buf, size_t n);

/* Sets up c for base_url (http:// or https://) and token (NULL or "" for
 * none). Returns 0, or -1 with a reason in err. Call curl_global_init
 * first. */
int agc_init(agc *c, const char *base_url, const char *token, char *err, size_t err_size);

/* Frees what agc_init allocated. */
void agc_free(agc *c);

/*
 * Sends method path with json_body (NULL for none) and reads the whole
 * answer into *out (which the caller frees with agc_response_free, also
 * after a failure). Returns AGC_OK or an error with a reason in err.
 */
int agc_request(agc *c, const char *method, const char *path, const char *json_body,
                agc_response *out, char *err, size_t err_size);

/*
 * GETs path as an event stream, with Last-Event-ID: last_event_id unless
 * it is NULL or "". A 200 text/event-stream answer's body goes to fn as it
 * arrives; any other answer (204, a problem) is read whole into *out, as
 * agc_request would. out->status is set either way once the head arrived.
 * Returns AGC_OK when the server ended the stream, AGC_ERR_STOPPED when fn
 * stopped it, AGC_ERR_INTERRUPTED when c->wake_fd became readable,
 * AGC_ERR_CONNECT when the connection failed or stalled.
 */
int agc_stream(agc *c, const char *path, const char *last_event_id, agc_chunk_fn fn,
               void *ud, agc_response *out, char *err, size_t err_size);

/* Frees out's body and clears it. */
void agc_response_free(agc_response *out);

#endif
