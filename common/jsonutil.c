/*
 * jsonutil.c - bounded JSON parsing and small cJSON helpers.
 *
 * cJSON is a convenient tree builder but a lenient parser: it does not
 * check UTF-8, accepts numbers such as "01" or "1.", lets "\u0000" cut a
 * string short, and keeps both members of {"a":1,"a":2}, of which it
 * reads the first while PostgreSQL's jsonb keeps the last. So before cJSON
 * sees a byte, one pass over the input checks the size, the nesting depth,
 * the UTF-8, the bare tokens (literals and numbers) and the characters
 * inside strings; after it, a walk over the tree refuses duplicate member
 * names. What passes is strict RFC 8259 JSON that every reader sees alike.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonutil.h"
#include "utf8.h"
#include "strbuf.h"

/* Doubles hold every integer below 2^53 exactly; from there on two
 * different numbers in the text can become the same value. */
#define JSON_EXACT_INT_LIMIT 9007199254740992.0

static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* Characters that can be part of a literal or a number outside strings. */
static int is_bare_token_char(unsigned char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           c == '-' || c == '+' || c == '.';
}

/* True when s (n bytes) is a number in RFC 8259 grammar:
 * -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static int is_json_number(const unsigned char *s, size_t n)
{
    size_t i = 0;
    if (i < n && s[i] == '-')
        i++;
    if (i >= n || !is_digit(s[i]))
        return 0;
    if (s[i] == '0') {
        i++;
    } else {
        while (i < n && is_digit(s[i]))
            i++;
    }
    if (i < n && s[i] == '.') {
        i++;
        if (i >= n || !is_digit(s[i]))
            return 0;
        while (i < n && is_digit(s[i]))
            i++;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        if (i >= n || !is_digit(s[i]))
            return 0;
        while (i < n && is_digit(s[i]))
            i++;
    }
    return i == n;
}

static int is_json_bare_token(const unsigned char *s, size_t n)
{
    if ((n == 4 && memcmp(s, "true", 4) == 0) ||
        (n == 5 && memcmp(s, "false", 5) == 0) ||
        (n == 4 && memcmp(s, "null", 4) == 0))
        return 1;
    return is_json_number(s, n);
}

static int is_json_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int is_hex(unsigned char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/*
 * The single pass before cJSON. Brackets are counted only outside strings,
 * so "[[[" inside a string value costs nothing. Returns 0, or -1 with a
 * reason in err.
 */
static int json_precheck(const unsigned char *s, size_t len, int max_depth,
                         char *err, size_t err_size)
{
    int in_string = 0, escaped = 0, depth = 0;
    size_t token_start = SIZE_MAX, string_start = 0;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = s[i];

        if (c >= 0x80) {
            size_t n = utf8_sequence_len(s + i, len - i);
            if (n == 0) {
                errbuf_printf(err, err_size, "invalid UTF-8 at byte %zu", i);
                return -1;
            }
            if (!in_string) {
                errbuf_printf(err, err_size, "malformed JSON at byte %zu", i);
                return -1;
            }
            if (escaped) {
                errbuf_printf(err, err_size, "malformed JSON at byte %zu", i - 1);
                return -1;
            }
            i += n - 1;
            continue;
        }

        if (in_string) {
            if (escaped) {
                escaped = 0;
                if (strchr("\"\\/bfnrtu", c) == NULL || c == '\0') {
                    errbuf_printf(err, err_size, "malformed JSON at byte %zu", i - 1);
                    return -1;
                }
                /* A NUL inside a C string would silently shorten it. */
                if (c == 'u' && len - i > 4 && s[i + 1] == '0' && s[i + 2] == '0' &&
                    s[i + 3] == '0' && s[i + 4] == '0') {
                    errbuf_printf(err, err_size, "JSON string contains \\u0000 at byte %zu", i - 1);
                    return -1;
                }
                if (c == 'u' && (len - i <= 4 || !is_hex(s[i + 1]) || !is_hex(s[i + 2]) ||
                                 !is_hex(s[i + 3]) || !is_hex(s[i + 4]))) {
                    errbuf_printf(err, err_size, "malformed JSON at byte %zu", i - 1);
                    return -1;
                }
            } else if (c == '\\') {
                escaped = 1;
            } else if (c == '"') {
                in_string = 0;
            } else if (c < 0x20) {
                errbuf_printf(err, err_size, "control character in JSON string at byte %zu", i);
                return -1;
            }
            continue;
        }

        if (is_bare_token_char(c)) {
            if (token_start == SIZE_MAX)
                token_start = i;
            continue;
        }
        if (token_start != SIZE_MAX) {
            if (!is_json_bare_token(s + token_start, i - token_start)) {
                errbuf_printf(err, err_size, "malformed JSON at byte %zu", token_start);
                return -1;
            }
            token_start = SIZE_MAX;
        }

        switch (c) {
        case '"':
            in_string = 1;
            string_start = i;
            break;
        case '[':
        case '{':
            if (++depth > max_depth) {
                errbuf_printf(err, err_size, "JSON nested deeper than %d levels", max_depth);
                return -1;
            }
            break;
        case ']':
        case '}':
            if (depth > 0)  /* a stray closer is cJSON's to report */
                depth--;
            break;
        case ',':
        case ':':
            break;
        default:
            if (!is_json_space(c)) {
                errbuf_printf(err, err_size, "malformed JSON at byte %zu", i);
                return -1;
            }
        }
    }
    if (token_start != SIZE_MAX && !is_json_bare_token(s + token_start, len - token_start)) {
        errbuf_printf(err, err_size, "malformed JSON at byte %zu", token_start);
        return -1;
    }
    if (in_string) {
        errbuf_printf(err, err_size, "unterminated JSON string at byte %zu", string_start);
        return -1;
    }
    return 0;
}

bool json_depth_exceeds(const char *buf, size_t len, int max_depth)
{
    int depth = 0;
    bool in_string = false, escaped = false;
    for (size_t i = 0; i < len; i++) {
        char c = buf[i];
        if (in_string) {
            if (escaped) escaped = false;
            else if (c == '\\') escaped = true;
            else if (c == '"') in_string = false;
            continue;
        }
        if (c == '"') in_string = true;
        else if (c == '[' || c == '{') {
            if (++depth > max_depth) return true;
        } else if ((c == ']' || c == '}') && depth > 0) {
            depth--;
        }
    }
    return false;
}

static int compare_names(const void *a, const void *b)
{
    const char *x = *(const char *const *)a;
    const char *y = *(const char *const *)b;
    return strcmp(x, y);
}

/* Copies name into out as printable ASCII, for an error message. */
static void printable_name(const char *name, char *out, size_t out_size)
{
    size_t i = 0;
    for (; name[i] != '\0' && i + 1 < out_size; i++) {
        unsigned char c = (unsigned char)name[i];
        out[i] = (c >= 0x20 && c < 0x7F && c != '"') ? (char)c : '?';
    }
    out[i] = '\0';
}

/*
 * Looks for a member name used twice in obj. Sorting the names keeps this
 * O(n log n): an object with 100k members must not cost 10^10 compares.
 * Returns 0 when all differ, 1 with the name in *dup, -1 out of memory.
 */
static int object_duplicate_name(const cJSON *obj, const char **dup)
{
    size_t n = 0;
    for (const cJSON *m = obj->child; m != NULL; m = m->next)
        n++;
    if (n < 2)
        return 0;

    const char **names = malloc(n * sizeof *names);
    if (names == NULL)
        return -1;
    size_t i = 0;
    for (const cJSON *m = obj->child; m != NULL; m = m->next)
        names[i++] = m->string != NULL ? m->string : "";
    qsort(names, n, sizeof *names, compare_names);

    int found = 0;
    for (i = 1; i < n && !found; i++) {
        if (strcmp(names[i - 1], names[i]) == 0) {
            *dup = names[i];
            found = 1;
        }
    }
    free(names);
    return found;
}

/* Walks the tree (its depth is already bounded) for duplicate names. */
static int check_unique_names(const cJSON *item, char *err, size_t err_size)
{
    if (cJSON_IsObject(item)) {
        const char *dup = NULL;
        int rc = object_duplicate_name(item, &dup);
        if (rc < 0) {
            errbuf_printf(err, err_size, "out of memory checking JSON");
            return -1;
        }
        if (rc > 0) {
            char shown[48];
            printable_name(dup, shown, sizeof shown);
            errbuf_printf(err, err_size, "duplicate member \"%s\" in JSON object", shown);
            return -1;
        }
    }
    if (cJSON_IsObject(item) || cJSON_IsArray(item)) {
        for (const cJSON *c = item->child; c != NULL; c = c->next)
            if (check_unique_names(c, err, err_size) != 0)
                return -1;
    }
    return 0;
}

cJSON *json_parse_bounded(const char *buf, size_t len, size_t max_bytes,
                          int max_depth, char *err, size_t err_size)
{
    if (len > max_bytes) {
        errbuf_printf(err, err_size, "body larger than %zu bytes", max_bytes);
        return NULL;
    }
    if (buf == NULL || len == 0) {
        errbuf_printf(err, err_size, "empty JSON document");
        return NULL;
    }
    const unsigned char *s = (const unsigned char *)buf;
    if (json_precheck(s, len, max_depth, err, err_size) != 0)
        return NULL;

    size_t first = 0;
    while (first < len && is_json_space(s[first]))
        first++;
    if (first == len) {
        errbuf_printf(err, err_size, "empty JSON document");
        return NULL;
    }

    /* Not require_null_terminated: cJSON 1.7.15 then insists on a NUL
     * inside the length, which a counted buffer need not have. The
     * trailing bytes are checked here instead. */
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(buf, len, &end, 0);
    if (root == NULL) {
        size_t at = (end != NULL && end >= buf && end <= buf + len) ? (size_t)(end - buf) : 0;
        errbuf_printf(err, err_size, "malformed JSON at byte %zu", at);
        return NULL;
    }
    size_t pos = (size_t)(end - buf);
    while (pos < len && is_json_space(s[pos]))
        pos++;
    if (pos < len) {
        errbuf_printf(err, err_size, "trailing data after JSON at byte %zu", pos);
        cJSON_Delete(root);
        return NULL;
    }
    if (check_unique_names(root, err, err_size) != 0) {
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

const char *json_get_string(const cJSON *obj, const char *name)
{
    if (!cJSON_IsObject(obj) || name == NULL)
        return NULL;
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (!cJSON_IsString(item) || item->valuestring == NULL)
        return NULL;
    return item->valuestring;
}

int json_get_int(const cJSON *obj, const char *name, long long min,
                 long long max, long long *out)
{
    if (!cJSON_IsObject(obj) || name == NULL)
        return 0;
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (item == NULL)
        return 0;
    if (!cJSON_IsNumber(item))
        return -1;
    double v = item->valuedouble;
    /* Past 2^53 the value may not be the number that was written, and the
     * bound also keeps the conversion below defined. */
    if (!isfinite(v) || v != floor(v) || fabs(v) >= JSON_EXACT_INT_LIMIT)
        return -1;
    long long n = (long long)v;
    if (n < min || n > max)
        return -1;
    if (out != NULL)
        *out = n;
    return 1;
}

char *json_print(const cJSON *item)
{
    if (item == NULL)
        return NULL;
    return cJSON_PrintUnformatted(item);
}

void json_add_str(cJSON *o, const char *k, const char *v, bool *ok)
{
    if (*ok && !(v ? cJSON_AddStringToObject(o, k, v) : cJSON_AddNullToObject(o, k)))
        *ok = false;
}

void json_add_num(cJSON *o, const char *k, double v, bool *ok)
{
    if (*ok && !cJSON_AddNumberToObject(o, k, v))
        *ok = false;
}

void json_add_bool(cJSON *o, const char *k, bool v, bool *ok)
{
    if (*ok && !cJSON_AddBoolToObject(o, k, v))
        *ok = false;
}

void json_add_item(cJSON *o, const char *k, cJSON *item, bool *ok)
{
    if (!item) {
        *ok = false;
        return;
    }
    if (!*ok || !cJSON_AddItemToObject(o, k, item)) {
        cJSON_Delete(item);
        *ok = false;
    }
}

void json_append(cJSON *a, cJSON *item, bool *ok)
{
    if (!item) {
        *ok = false;
        return;
    }
    if (!*ok || !cJSON_AddItemToArray(a, item)) {
        cJSON_Delete(item);
        *ok = false;
    }
}

cJSON *json_done(cJSON *o, bool ok)
{
    if (ok)
        return o;
    cJSON_Delete(o);
    return NULL;
}

size_t json_escape_byte(unsigned char c, char out[6])
{
    static const char hex[] = "0123456789abcdef";
    char short_form = c == '"' ? '"' : c == '\\' ? '\\' : c == '\b' ? 'b' : c == '\f' ? 'f'
                    : c == '\n' ? 'n' : c == '\r' ? 'r' : c == '\t' ? 't' : 0;
    if (short_form) {
        out[0] = '\\';
        out[1] = short_form;
        return 2;
    }
    if (c >= 0x20)
        return 0;
    memcpy(out, "\\u00", 4);
    out[4] = hex[c >> 4];
    out[5] = hex[c & 0xf];
    return 6;
}

size_t json_escaped_len(const char *s)
{
    size_t n = 0;
    char esc[6];
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        size_t e = json_escape_byte(*p, esc);
        n += e ? e : 1;
    }
    return n;
}

char *json_escape_to(char *out, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        size_t e = json_escape_byte(*p, out);
        if (e == 0)
            *out++ = (char)*p;
        else
            out += e;
    }
    return out;
}

size_t json_quote(const char *s, char *out, size_t size)
{
    size_t need = json_escaped_len(s) + 3;      /* quotes and NUL */
    if (need > size)
        return 0;
    out[0] = '"';
    char *end = json_escape_to(out + 1, s);
    *end++ = '"';
    *end = '\0';
    return (size_t)(end - out);
}

size_t json_compact(char *text, size_t len)
{
    size_t out = 0;
    bool in_string = false, escaped = false;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (in_string) {
            if (escaped) escaped = false;
            else if (c == '\\') escaped = true;
            else if (c == '"') in_string = false;
        } else if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            continue;
        } else if (c == '"') {
            in_string = true;
        }
        text[out++] = c;
    }
    return out;
}
