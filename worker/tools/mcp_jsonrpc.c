/*
 * mcp_jsonrpc.c - building and validating JSON-RPC 2.0 messages for MCP.
 *
 * Incoming text goes through json_parse_bounded first (size, nesting,
 * UTF-8, strict number grammar, duplicate names), so the checks here are
 * about shape only: which members are present and of which type. The
 * kind of a message follows from its members: method with id is a
 * request, method without id a notification, result or error a response;
 * a message with both result and error, or with method and either, is
 * refused rather than guessed at.
 *
 * Outgoing text is printed by cJSON without formatting, so it never holds
 * a raw newline (cJSON escapes them inside strings) and can be written to
 * a stdio server as one line.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonutil.h"
#include "mcp_jsonrpc.h"
#include "strbuf.h"

/* Doubles hold every integer of magnitude below 2^53 exactly. */
#define MCP_ID_NUM_LIMIT 9007199254740991.0

const char *mcp_status_name(int status)
{
    switch (status) {
    case MCP_OK:                return "ok";
    case MCP_ERR_TRANSPORT:     return "transport error";
    case MCP_ERR_SESSION_LOST:  return "session lost";
    case MCP_ERR_TIMEOUT:       return "timeout";
    case MCP_ERR_CANCELLED:     return "cancelled";
    case MCP_ERR_PROTOCOL:      return "protocol error";
    case MCP_ERR_RPC:           return "server error";
    case MCP_ERR_TOO_LARGE:     return "too large";
    case MCP_ERR_VERSION:       return "unsupported protocol version";
    case MCP_ERR_INVALID:       return "invalid argument";
    case MCP_ERR_NOMEM:         return "out of memory";
    default:                    return "unknown error";
    }
}

bool mcp_id_equal(const mcp_id *a, const mcp_id *b)
{
    if (a->kind != b->kind)
        return false;
    switch (a->kind) {
    case MCP_ID_NUM: return a->num == b->num;
    case MCP_ID_STR: return strcmp(a->str, b->str) == 0;
    default:         return true;
    }
}

void mcp_id_format(const mcp_id *id, char *out, size_t out_size)
{
    if (id->kind == MCP_ID_NUM) {
        errbuf_printf(out, out_size, "%lld", id->num);
    } else if (id->kind == MCP_ID_STR) {
        strbuf b = {0};
        strbuf_add(&b, "\"");
        strbuf_add_flat(&b, id->str, 40);
        strbuf_add(&b, "\"");
        errbuf_printf(out, out_size, "%s", b.oom ? "\"?\"" : b.s);
        strbuf_free(&b);
    } else {
        errbuf_printf(out, out_size, "null");
    }
}

int mcp_id_from_json(const cJSON *v, mcp_id *out)
{
    memset(out, 0, sizeof *out);
    if (cJSON_IsString(v)) {
        size_t n = strlen(v->valuestring);
        if (n > MCP_ID_STR_MAX)
            return MCP_ERR_PROTOCOL;
        memcpy(out->str, v->valuestring, n + 1);
        out->kind = MCP_ID_STR;
        return MCP_OK;
    }
    if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (!isfinite(d) || d != floor(d) || fabs(d) > MCP_ID_NUM_LIMIT)
            return MCP_ERR_PROTOCOL;
        out->num = (long long)d;
        out->kind = MCP_ID_NUM;
        return MCP_OK;
    }
    return MCP_ERR_PROTOCOL;
}

cJSON *mcp_id_to_json(const mcp_id *id)
{
    switch (id->kind) {
    case MCP_ID_NUM: return cJSON_CreateNumber((double)id->num);
    case MCP_ID_STR: return cJSON_CreateString(id->str);
    default:         return cJSON_CreateNull();
    }
}

/* 1..MCP_METHOD_MAX visible ASCII characters: enough for every MCP method
 * ("notifications/tools/list_changed") and safe to put in a log line. */
static bool method_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > MCP_METHOD_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
            return false;
    return true;
}

void mcp_message_free(mcp_message *m)
{
    if (!m)
        return;
    cJSON_Delete(m->root);
    memset(m, 0, sizeof *m);
}

static int refuse(mcp_message *out, char *err, size_t err_size, const char *why)
{
    errbuf_printf(err, err_size, "malformed JSON-RPC message: %s", why);
    mcp_message_free(out);
    return MCP_ERR_PROTOCOL;
}

static int parse_error_object(mcp_message *out, const cJSON *e, char *err,
                              size_t err_size)
{
    if (!cJSON_IsObject(e))
        return refuse(out, err, err_size, "error is not an object");
    long long code;
    if (json_get_int(e, "code", -2147483648LL, 2147483647LL, &code) != 1)
        return refuse(out, err, err_size, "error.code is not an integer");
    const char *msg = json_get_string(e, "message");
    if (!msg)
        return refuse(out, err, err_size, "error.message is not a string");
    out->error_code = code;
    /* Flattened to one line without control characters: it ends up in
     * logs and in the one-line reasons this client gives. */
    strbuf b = {0};
    strbuf_add_flat(&b, msg, MCP_ERR_MESSAGE_MAX - 3);
    errbuf_printf(out->error_message, sizeof out->error_message, "%s",
                  b.s && !b.oom ? b.s : "");
    strbuf_free(&b);
    out->error_data = cJSON_GetObjectItemCaseSensitive(e, "data");
    return MCP_OK;
}

static int parse_response(mcp_message *out, const cJSON *id, const cJSON *result,
                          const cJSON *error, char *err, size_t err_size)
{
    if (result && error)
        return refuse(out, err, err_size, "both result and error");
    if (result) {
        if (!id || mcp_id_from_json(id, &out->id) != MCP_OK)
            return refuse(out, err, err_size, "response id is not a string or integer");
        if (!cJSON_IsObject(result))
            return refuse(out, err, err_size, "result is not an object");
        out->kind = MCP_MSG_RESULT;
        out->result = (cJSON *)result;
        return MCP_OK;
    }
    /* An error answers a request whose id could not be read with a null
     * (or, from lax servers, absent) id. */
    if (id && !cJSON_IsNull(id) && mcp_id_from_json(id, &out->id) != MCP_OK)
        return refuse(out, err, err_size, "response id is not a string or integer");
    out->kind = MCP_MSG_ERROR;
    return parse_error_object(out, error, err, err_size);
}

static int parse_call(mcp_message *out, const cJSON *id, const cJSON *method,
                      const cJSON *params, char *err, size_t err_size)
{
    if (!cJSON_IsString(method) || !method_name_ok(method->valuestring))
        return refuse(out, err, err_size, "method is not a name of 1-128 visible characters");
    memcpy(out->method, method->valuestring, strlen(method->valuestring) + 1);
    if (params && !cJSON_IsObject(params))
        return refuse(out, err, err_size, "params is not an object");
    out->params = (cJSON *)params;
    if (!id) {
        out->kind = MCP_MSG_NOTIFICATION;
        return MCP_OK;
    }
    if (mcp_id_from_json(id, &out->id) != MCP_OK)
        return refuse(out, err, err_size, "request id is not a string or integer");
    out->kind = MCP_MSG_REQUEST;
    return MCP_OK;
}

int mcp_jsonrpc_parse(const char *buf, size_t len, size_t max_bytes,
                      mcp_message *out, char *err, size_t err_size)
{
    memset(out, 0, sizeof *out);
    if (len > max_bytes) {
        errbuf_printf(err, err_size, "message of %zu bytes exceeds the %zu-byte limit",
                      len, max_bytes);
        return MCP_ERR_TOO_LARGE;
    }
    char why[160];
    out->root = json_parse_bounded(buf, len, max_bytes, MCP_JSON_MAX_DEPTH, why,
                                   sizeof why);
    if (!out->root)
        return refuse(out, err, err_size, why);
    if (cJSON_IsArray(out->root))
        return refuse(out, err, err_size, "batches are not supported");
    if (!cJSON_IsObject(out->root))
        return refuse(out, err, err_size, "not an object");

    const char *version = json_get_string(out->root, "jsonrpc");
    if (!version || strcmp(version, "2.0") != 0)
        return refuse(out, err, err_size, "jsonrpc is not \"2.0\"");

    const cJSON *id = cJSON_GetObjectItemCaseSensitive(out->root, "id");
    const cJSON *method = cJSON_GetObjectItemCaseSensitive(out->root, "method");
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(out->root, "params");
    const cJSON *result = cJSON_GetObjectItemCaseSensitive(out->root, "result");
    const cJSON *error = cJSON_GetObjectItemCaseSensitive(out->root, "error");

    if (method) {
        if (result || error)
            return refuse(out, err, err_size, "method together with result or error");
        return parse_call(out, id, method, params, err, err_size);
    }
    if (result || error) {
        if (params)
            return refuse(out, err, err_size, "params in a response");
        return parse_response(out, id, result, error, err, err_size);
    }
    return refuse(out, err, err_size, "neither method nor result nor error");
}

/* Prints o (taken over) compactly, or NULL; *len gets the length. */
static char *print_message(cJSON *o, bool ok, size_t *len)
{
    o = json_done(o, ok);
    char *text = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (len)
        *len = text ? strlen(text) : 0;
    return text;
}

static cJSON *envelope(bool *ok)
{
    cJSON *o = cJSON_CreateObject();
    *ok = o != NULL;
    json_add_str(o, "jsonrpc", "2.0", ok);
    return o;
}

char *mcp_jsonrpc_request(const mcp_id *id, const char *method, cJSON *params,
                          size_t *len)
{
    if (!id || id->kind == MCP_ID_NONE || !method || !method_name_ok(method) ||
        (params && !cJSON_IsObject(params))) {
        cJSON_Delete(params);
        if (len)
            *len = 0;
        return NULL;
    }
    bool ok;
    cJSON *o = envelope(&ok);
    json_add_item(o, "id", mcp_id_to_json(id), &ok);
    json_add_str(o, "method", method, &ok);
    if (params)
        json_add_item(o, "params", params, &ok);
    return print_message(o, ok, len);
}

char *mcp_jsonrpc_notification(const char *method, cJSON *params, size_t *len)
{
    if (!method || !method_name_ok(method) || (params && !cJSON_IsObject(params))) {
        cJSON_Delete(params);
        if (len)
            *len = 0;
        return NULL;
    }
    bool ok;
    cJSON *o = envelope(&ok);
    json_add_str(o, "method", method, &ok);
    if (params)
        json_add_item(o, "params", params, &ok);
    return print_message(o, ok, len);
}

char *mcp_jsonrpc_result(const mcp_id *id, cJSON *result, size_t *len)
{
    if (!id || id->kind == MCP_ID_NONE || (result && !cJSON_IsObject(result))) {
        cJSON_Delete(result);
        if (len)
            *len = 0;
        return NULL;
    }
    bool ok;
    cJSON *o = envelope(&ok);
    json_add_item(o, "id", mcp_id_to_json(id), &ok);
    json_add_item(o, "result", result ? result : cJSON_CreateObject(), &ok);
    return print_message(o, ok, len);
}

char *mcp_jsonrpc_error(const mcp_id *id, long long code, const char *message,
                        size_t *len)
{
    static const mcp_id none;
    bool ok;
    cJSON *o = envelope(&ok);
    json_add_item(o, "id", mcp_id_to_json(id ? id : &none), &ok);
    cJSON *e = cJSON_CreateObject();
    json_add_num(e, "code", (double)code, &ok);
    json_add_str(e, "message", message ? message : "", &ok);
    json_add_item(o, "error", e, &ok);
    return print_message(o, ok, len);
}
