/*
 * schema.c - a JSON Schema (2020-12) subset for job payload contracts.
 *
 * The validator walks schema and instance together and stops at the first
 * failure, which it reports as a JSON Pointer (RFC 6901) and a short
 * message a client can show as is: "/steps" "must be at most 1000".
 *
 * The schemas are ours, built into the binary; a keyword of the wrong
 * shape in one is a defect, reported as "invalid schema: ..." rather than
 * skipped, so a broken contract fails every request instead of none.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema.h"

/* Instances are bounded by json_parse_bounded; this bounds the walk even
 * for a tree built some other way. */
#define SCHEMA_MAX_DEPTH 64

typedef struct validator {
    char path[sizeof(((schema_error *)0)->path)];
    size_t path_len;
    schema_error *err;
} validator;

static int fail(validator *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Records the current path and a message; returns -1 for the caller to pass up. */
static int fail(validator *v, const char *fmt, ...)
{
    if (v->err != NULL) {
        memcpy(v->err->path, v->path, v->path_len + 1);
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(v->err->message, sizeof v->err->message, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/*
 * Appends "/" and token, escaped per RFC 6901 (~ as ~0, / as ~1), to the
 * path. A path too long for the buffer ends in "..." so it is never
 * mistaken for a shorter, real one. Returns the length to restore after.
 */
static size_t path_push(validator *v, const char *token)
{
    size_t saved = v->path_len;
    size_t cap = sizeof v->path - 1;
    size_t len = v->path_len;
    int truncated = 0;

    if (len < cap)
        v->path[len++] = '/';
    else
        truncated = 1;
    for (const char *p = token; *p != '\0' && !truncated; p++) {
        const char *rep = *p == '~' ? "~0" : *p == '/' ? "~1" : NULL;
        size_t need = rep != NULL ? 2 : 1;
        if (len + need > cap) {
            truncated = 1;
            break;
        }
        if (rep != NULL) {
            memcpy(v->path + len, rep, 2);
        } else {
            v->path[len] = *p;
        }
        len += need;
    }
    if (truncated) {
        len = cap;
        memcpy(v->path + cap - 3, "...", 3);
    }
    v->path[len] = '\0';
    v->path_len = len;
    return saved;
}

static void path_pop(validator *v, size_t saved)
{
    v->path_len = saved;
    v->path[saved] = '\0';
}

static int is_integer_value(const cJSON *item)
{
    if (!cJSON_IsNumber(item))
        return 0;
    double d = item->valuedouble;
    return isfinite(d) && d == floor(d);
}

/* Whether instance is of the JSON Schema type called name; -1 for a name
 * that is no type. */
static int type_matches(const char *name, const cJSON *instance)
{
    if (strcmp(name, "null") == 0)    return cJSON_IsNull(instance);
    if (strcmp(name, "boolean") == 0) return cJSON_IsBool(instance);
    if (strcmp(name, "object") == 0)  return cJSON_IsObject(instance);
    if (strcmp(name, "array") == 0)   return cJSON_IsArray(instance);
    if (strcmp(name, "number") == 0)  return cJSON_IsNumber(instance);
    if (strcmp(name, "integer") == 0) return is_integer_value(instance);
    if (strcmp(name, "string") == 0)  return cJSON_IsString(instance);
    return -1;
}

/* "an integer", "a string", "null": the phrase after "must be". */
static const char *type_phrase(const char *name)
{
    if (strcmp(name, "null") == 0)    return "null";
    if (strcmp(name, "boolean") == 0) return "a boolean";
    if (strcmp(name, "object") == 0)  return "an object";
    if (strcmp(name, "array") == 0)   return "an array";
    if (strcmp(name, "number") == 0)  return "a number";
    if (strcmp(name, "integer") == 0) return "an integer";
    return "a string";
}

/* Appends s to buf (size cap) at *len, ending in "..." if it does not fit. */
static void text_append(char *buf, size_t cap, size_t *len, const char *s)
{
    size_t n = strlen(s);
    if (*len + n + 1 > cap) {
        if (cap >= 4) {
            *len = cap - 4;
            memcpy(buf + *len, "...", 4);
            *len += 3;
        }
        return;
    }
    memcpy(buf + *len, s, n + 1);
    *len += n;
}

static int check_type(validator *v, const cJSON *type, const cJSON *instance)
{
    if (cJSON_IsString(type)) {
        int m = type_matches(type->valuestring, instance);
        if (m < 0)
            return fail(v, "invalid schema: unknown type \"%.40s\"", type->valuestring);
        return m ? 0 : fail(v, "must be %s", type_phrase(type->valuestring));
    }
    if (!cJSON_IsArray(type) || type->child == NULL)
        return fail(v, "invalid schema: type must be a string or a non-empty array");

    int count = cJSON_GetArraySize(type), i = 0;
    char want[200];
    size_t len = 0;
    want[0] = '\0';
    for (const cJSON *t = type->child; t != NULL; t = t->next, i++) {
        if (!cJSON_IsString(t))
            return fail(v, "invalid schema: type names must be strings");
        int m = type_matches(t->valuestring, instance);
        if (m < 0)
            return fail(v, "invalid schema: unknown type \"%.40s\"", t->valuestring);
        if (m > 0)
            return 0;
        if (i > 0)
            text_append(want, sizeof want, &len, i == count - 1 ? " or " : ", ");
        text_append(want, sizeof want, &len, type_phrase(t->valuestring));
    }
    return fail(v, "must be %s", want);
}

/* Deep equality as JSON Schema defines it: numbers by value (1 == 1.0),
 * object members regardless of order. */
static int json_equal(const cJSON *a, const cJSON *b, int depth)
{
    if (depth > SCHEMA_MAX_DEPTH)
        return 0;
    if (cJSON_IsNumber(a) && cJSON_IsNumber(b))
        return a->valuedouble == b->valuedouble;
    if (cJSON_IsString(a) && cJSON_IsString(b))
        return strcmp(a->valuestring, b->valuestring) == 0;
    if (cJSON_IsBool(a) && cJSON_IsBool(b))
        return cJSON_IsTrue(a) == cJSON_IsTrue(b);
    if (cJSON_IsNull(a) && cJSON_IsNull(b))
        return 1;
    if (cJSON_IsArray(a) && cJSON_IsArray(b)) {
        const cJSON *x = a->child, *y = b->child;
        for (; x != NULL && y != NULL; x = x->next, y = y->next)
            if (!json_equal(x, y, depth + 1))
                return 0;
        return x == NULL && y == NULL;
    }
    if (cJSON_IsObject(a) && cJSON_IsObject(b)) {
        if (cJSON_GetArraySize(a) != cJSON_GetArraySize(b))
            return 0;
        for (const cJSON *x = a->child; x != NULL; x = x->next) {
            const cJSON *y = cJSON_GetObjectItemCaseSensitive(b, x->string);
            if (y == NULL || !json_equal(x, y, depth + 1))
                return 0;
        }
        return 1;
    }
    return 0;
}

/* Appends value to buf for a message: strings bare, the rest as JSON. */
static void value_append(char *buf, size_t cap, size_t *len, const cJSON *value)
{
    if (cJSON_IsString(value)) {
        text_append(buf, cap, len, value->valuestring);
        return;
    }
    char *text = cJSON_PrintUnformatted(value);
    text_append(buf, cap, len, text != NULL ? text : "?");
    free(text);
}

static int check_enum(validator *v, const cJSON *values, const cJSON *instance)
{
    if (!cJSON_IsArray(values))
        return fail(v, "invalid schema: enum must be an array");
    for (const cJSON *e = values->child; e != NULL; e = e->next)
        if (json_equal(e, instance, 0))
            return 0;

    char list[200];
    size_t len = 0;
    list[0] = '\0';
    for (const cJSON *e = values->child; e != NULL; e = e->next) {
        if (e != values->child)
            text_append(list, sizeof list, &len, ", ");
        value_append(list, sizeof list, &len, e);
    }
    return fail(v, "must be one of: %s", list);
}

static int check_const(validator *v, const cJSON *value, const cJSON *instance)
{
    if (json_equal(value, instance, 0))
        return 0;
    char text[200];
    size_t len = 0;
    text[0] = '\0';
    value_append(text, sizeof text, &len, value);
    return fail(v, "must be %s", text);
}

/* Formats a bound for a message: 1000 as "1000", 0.5 as "0.5". */
static const char *format_number(double d, char *buf, size_t size)
{
    if (d == floor(d) && fabs(d) < 9007199254740992.0) {
        snprintf(buf, size, "%lld", (long long)d);
        return buf;
    }
    snprintf(buf, size, "%.15g", d);
    if (strtod(buf, NULL) != d)
        snprintf(buf, size, "%.17g", d);
    return buf;
}

/* Reads the number keyword name of schema into *out: 1 present, 0 absent,
 * -1 present but not a number (already reported). */
static int number_keyword(validator *v, const cJSON *schema, const char *name, double *out)
{
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(schema, name);
    if (k == NULL)
        return 0;
    if (!cJSON_IsNumber(k)) {
        fail(v, "invalid schema: %s must be a number", name);
        return -1;
    }
    *out = k->valuedouble;
    return 1;
}

/* Like number_keyword, for the counts (minLength, maxItems, ...), which
 * must be non-negative integers. */
static int count_keyword(validator *v, const cJSON *schema, const char *name, double *out)
{
    int rc = number_keyword(v, schema, name, out);
    if (rc > 0 && (!is_integer_value(cJSON_GetObjectItemCaseSensitive(schema, name)) || *out < 0)) {
        fail(v, "invalid schema: %s must be a non-negative integer", name);
        return -1;
    }
    return rc;
}

static int check_number(validator *v, const cJSON *schema, double x)
{
    char nb[40];
    double b;
    int rc;

    if ((rc = number_keyword(v, schema, "minimum", &b)) < 0) return -1;
    if (rc > 0 && !(x >= b)) return fail(v, "must be at least %s", format_number(b, nb, sizeof nb));
    if ((rc = number_keyword(v, schema, "maximum", &b)) < 0) return -1;
    if (rc > 0 && !(x <= b)) return fail(v, "must be at most %s", format_number(b, nb, sizeof nb));
    if ((rc = number_keyword(v, schema, "exclusiveMinimum", &b)) < 0) return -1;
    if (rc > 0 && !(x > b)) return fail(v, "must be greater than %s", format_number(b, nb, sizeof nb));
    if ((rc = number_keyword(v, schema, "exclusiveMaximum", &b)) < 0) return -1;
    if (rc > 0 && !(x < b)) return fail(v, "must be less than %s", format_number(b, nb, sizeof nb));
    return 0;
}

/* Code points in a UTF-8 string: every byte that is not a continuation. */
static double utf8_length(const char *s)
{
    double n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++)
        if ((*p & 0xC0) != 0x80)
            n++;
    return n;
}

static int check_string(validator *v, const cJSON *schema, const char *s)
{
    double b, n = utf8_length(s);
    int rc;

    if ((rc = count_keyword(v, schema, "minLength", &b)) < 0) return -1;
    if (rc > 0 && n < b)
        return fail(v, "must be at least %.0f character%s", b, b == 1 ? "" : "s");
    if ((rc = count_keyword(v, schema, "maxLength", &b)) < 0) return -1;
    if (rc > 0 && n > b)
        return fail(v, "must be at most %.0f character%s", b, b == 1 ? "" : "s");
    return 0;
}

static int validate_node(validator *v, const cJSON *schema, const cJSON *instance, int depth);

/* Validates instance as the member or item named token. */
static int validate_child(validator *v, const cJSON *schema, const cJSON *instance,
                          const char *token, int depth)
{
    size_t saved = path_push(v, token);
    int rc = validate_node(v, schema, instance, depth + 1);
    path_pop(v, saved);
    return rc;
}

static int check_object(validator *v, const cJSON *schema, const cJSON *instance, int depth)
{
    const cJSON *required = cJSON_GetObjectItemCaseSensitive(schema, "required");
    const cJSON *props = cJSON_GetObjectItemCaseSensitive(schema, "properties");
    const cJSON *additional = cJSON_GetObjectItemCaseSensitive(schema, "additionalProperties");

    if (required != NULL && !cJSON_IsArray(required))
        return fail(v, "invalid schema: required must be an array");
    if (props != NULL && !cJSON_IsObject(props))
        return fail(v, "invalid schema: properties must be an object");
    if (additional != NULL && !cJSON_IsBool(additional) && !cJSON_IsObject(additional))
        return fail(v, "invalid schema: additionalProperties must be a boolean or a schema");

    for (const cJSON *r = required != NULL ? required->child : NULL; r != NULL; r = r->next) {
        if (!cJSON_IsString(r))
            return fail(v, "invalid schema: required names must be strings");
        if (cJSON_GetObjectItemCaseSensitive(instance, r->valuestring) == NULL) {
            size_t saved = path_push(v, r->valuestring);
            fail(v, "is required");
            path_pop(v, saved);
            return -1;
        }
    }

    for (const cJSON *m = instance->child; m != NULL; m = m->next) {
        const char *name = m->string != NULL ? m->string : "";
        const cJSON *sub = props != NULL ? cJSON_GetObjectItemCaseSensitive(props, name) : NULL;
        if (sub == NULL)
            sub = additional;   /* NULL (absent) allows anything, as does true */
        if (sub == NULL)
            continue;
        if (validate_child(v, sub, m, name, depth) != 0)
            return -1;
    }
    return 0;
}

static int check_array(validator *v, const cJSON *schema, const cJSON *instance, int depth)
{
    double n = cJSON_GetArraySize(instance), b;
    int rc;

    if ((rc = count_keyword(v, schema, "minItems", &b)) < 0) return -1;
    if (rc > 0 && n < b)
        return fail(v, "must have at least %.0f item%s", b, b == 1 ? "" : "s");
    if ((rc = count_keyword(v, schema, "maxItems", &b)) < 0) return -1;
    if (rc > 0 && n > b)
        return fail(v, "must have at most %.0f item%s", b, b == 1 ? "" : "s");

    const cJSON *items = cJSON_GetObjectItemCaseSensitive(schema, "items");
    if (items == NULL)
        return 0;
    if (!cJSON_IsBool(items) && !cJSON_IsObject(items))
        return fail(v, "invalid schema: items must be a schema");
    size_t index = 0;
    for (const cJSON *e = instance->child; e != NULL; e = e->next, index++) {
        char token[24];
        snprintf(token, sizeof token, "%zu", index);
        if (validate_child(v, items, e, token, depth) != 0)
            return -1;
    }
    return 0;
}

static int validate_node(validator *v, const cJSON *schema, const cJSON *instance, int depth)
{
    if (depth > SCHEMA_MAX_DEPTH)
        return fail(v, "is nested too deeply");
    if (cJSON_IsBool(schema))   /* true accepts everything, false nothing */
        return cJSON_IsTrue(schema) ? 0 : fail(v, "is not allowed");
    if (!cJSON_IsObject(schema))
        return fail(v, "invalid schema: a schema must be an object or a boolean");

    const cJSON *k;
    if ((k = cJSON_GetObjectItemCaseSensitive(schema, "type")) != NULL &&
        check_type(v, k, instance) != 0)
        return -1;
    if ((k = cJSON_GetObjectItemCaseSensitive(schema, "const")) != NULL &&
        check_const(v, k, instance) != 0)
        return -1;
    if ((k = cJSON_GetObjectItemCaseSensitive(schema, "enum")) != NULL &&
        check_enum(v, k, instance) != 0)
        return -1;

    if (cJSON_IsNumber(instance))
        return check_number(v, schema, instance->valuedouble);
    if (cJSON_IsString(instance))
        return check_string(v, schema, instance->valuestring);
    if (cJSON_IsObject(instance))
        return check_object(v, schema, instance, depth);
    if (cJSON_IsArray(instance))
        return check_array(v, schema, instance, depth);
    return 0;
}

int schema_validate(const cJSON *schema, const cJSON *instance, schema_error *err)
{
    validator v;
    v.path[0] = '\0';
    v.path_len = 0;
    v.err = err;
    if (err != NULL) {
        err->path[0] = '\0';
        err->message[0] = '\0';
    }
    if (schema == NULL || instance == NULL)
        return fail(&v, schema == NULL ? "invalid schema: none given" : "is required");
    return validate_node(&v, schema, instance, 0);
}
