/*
 * mcp_jsonrpc.h - JSON-RPC 2.0 messages as the Model Context Protocol uses
 * them: building the requests, notifications and responses the client
 * sends, and parsing and validating every message a server sends.
 *
 * Parsing is bounded and strict about the parts MCP defines: one object
 * per message (no batches), "jsonrpc" exactly "2.0", an id that is a
 * string (at most MCP_ID_STR_MAX bytes) or a whole number within +-2^53,
 * a method name of 1..MCP_METHOD_MAX printable ASCII bytes, params and
 * result objects, and an error object with an integer code and a string
 * message. Members MCP does not define are ignored. Anything else is a
 * one-line reason, never a crash.
 *
 * The status codes every MCP module returns live here too, since every
 * module includes this header.
 */
#ifndef AG_MCP_JSONRPC_H
#define AG_MCP_JSONRPC_H

#include <stdbool.h>
#include <stddef.h>
#include <cjson/cJSON.h>

/* Results of MCP functions: 0 or one of these negative codes. */
enum {
    MCP_OK = 0,
    MCP_ERR_TRANSPORT = -1,     /* cannot reach the server, or it died */
    MCP_ERR_SESSION_LOST = -2,  /* HTTP 404 for our session: initialize again */
    MCP_ERR_TIMEOUT = -3,       /* the deadline passed before the answer */
    MCP_ERR_CANCELLED = -4,     /* the caller's cancel check said stop */
    MCP_ERR_PROTOCOL = -5,      /* the server broke the protocol */
    MCP_ERR_RPC = -6,           /* the server answered with a JSON-RPC error */
    MCP_ERR_TOO_LARGE = -7,     /* a message or list went past a limit */
    MCP_ERR_VERSION = -8,       /* no protocol version in common */
    MCP_ERR_INVALID = -9,       /* the caller passed something unusable */
    MCP_ERR_NOMEM = -10,        /* out of memory */
};

/* JSON-RPC error codes the client sends or recognises. */
#define MCP_RPC_PARSE_ERROR      (-32700)
#define MCP_RPC_INVALID_REQUEST  (-32600)
#define MCP_RPC_METHOD_NOT_FOUND (-32601)
#define MCP_RPC_INVALID_PARAMS   (-32602)
#define MCP_RPC_INTERNAL_ERROR   (-32603)

#define MCP_MSG_MAX_DEFAULT   (4u * 1024 * 1024)  /* bytes of one message */
#define MCP_JSON_MAX_DEPTH    64                  /* nesting (schemas nest) */
#define MCP_METHOD_MAX        128                 /* bytes of a method name */
#define MCP_ID_STR_MAX        128                 /* bytes of a string id */
#define MCP_ERR_MESSAGE_MAX   512                 /* bytes of an error message kept */

/* Short English name of a status code ("timeout"), for messages. */
const char *mcp_status_name(int status);

typedef enum mcp_id_kind {
    MCP_ID_NONE = 0,            /* absent or null (only in error responses) */
    MCP_ID_NUM,
    MCP_ID_STR,
} mcp_id_kind;

/* A request id. Zero-initialised it is MCP_ID_NONE. */
typedef struct mcp_id {
    mcp_id_kind kind;
    long long num;
    char str[MCP_ID_STR_MAX + 1];
} mcp_id;

/* True when a and b are the same id (same kind and value). */
bool mcp_id_equal(const mcp_id *a, const mcp_id *b);

/* Writes id as text for messages ("7", "\"abc\"", "null") into out. */
void mcp_id_format(const mcp_id *id, char *out, size_t out_size);

typedef enum mcp_msg_kind {
    MCP_MSG_REQUEST = 1,
    MCP_MSG_NOTIFICATION,
    MCP_MSG_RESULT,
    MCP_MSG_ERROR,
} mcp_msg_kind;

/*
 * One parsed message. params, result and error_data point into root and
 * live as long as it; mcp_message_free frees root and clears the struct.
 */
typedef struct mcp_message {
    mcp_msg_kind kind;
    mcp_id id;                          /* requests and responses */
    char method[MCP_METHOD_MAX + 1];    /* requests and notifications */
    cJSON *params;                      /* object or NULL when absent */
    cJSON *result;                      /* MCP_MSG_RESULT: an object */
    long long error_code;               /* MCP_MSG_ERROR */
    char error_message[MCP_ERR_MESSAGE_MAX + 1];  /* on one line, cut to fit */
    cJSON *error_data;                  /* MCP_MSG_ERROR: any value or NULL */
    cJSON *root;                        /* the whole message, owned */
} mcp_message;

/*
 * Parses and validates len bytes of buf as one JSON-RPC 2.0 message of at
 * most max_bytes. Returns MCP_OK with *out filled (free it with
 * mcp_message_free), MCP_ERR_TOO_LARGE, or MCP_ERR_PROTOCOL with a
 * one-line reason in err (err_size bytes); on failure *out is left empty.
 */
int mcp_jsonrpc_parse(const char *buf, size_t len, size_t max_bytes,
                      mcp_message *out, char *err, size_t err_size);

/* Frees what a parse gave and zeroes m. Safe on a zeroed message. */
void mcp_message_free(mcp_message *m);

/*
 * Builders. Each returns the message as compact JSON text with no newline
 * in it (malloc'd, the caller frees it), its length in *len when len is
 * not NULL, or NULL when memory runs out or an argument is invalid (a
 * method that parsing would refuse, an id of kind MCP_ID_NONE for a
 * request). params and result are taken over (freed in all cases) and may
 * be NULL: params is then left out, a result becomes {}.
 */
char *mcp_jsonrpc_request(const mcp_id *id, const char *method, cJSON *params,
                          size_t *len);
char *mcp_jsonrpc_notification(const char *method, cJSON *params, size_t *len);
char *mcp_jsonrpc_result(const mcp_id *id, cJSON *result, size_t *len);
/* An error response; id may be NULL or MCP_ID_NONE for "id": null. */
char *mcp_jsonrpc_error(const mcp_id *id, long long code, const char *message,
                        size_t *len);

/* The id as a new cJSON value (number or string), or NULL. */
cJSON *mcp_id_to_json(const mcp_id *id);

/*
 * Reads a JSON value as an id: a string of at most MCP_ID_STR_MAX bytes or
 * a whole number within +-2^53. Returns MCP_OK or MCP_ERR_PROTOCOL.
 */
int mcp_id_from_json(const cJSON *v, mcp_id *out);

#endif
