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

/* ---- numbers kept exactly ------------------------------------------------ */

/* The most significant digits a double's printing (number_text) has; a
 * decimal with more cannot come back the same. */
#define PRINTED_DIGITS_MAX 17
/* Exponents beyond this are the same "out of any range" to the compare. */
#define DECIMAL_EXP_LIMIT 1000000000LL
#define NUMBER_TEXT_MAX 32

/*
 * d as JSON text that reads back as exactly d: the shortest of %.15g,
 * %.16g and %.17g that does. cJSON's own printer tries %.15g and keeps it
 * when it reads back merely close to d (9007199254740991 comes out as
 * 9.00719925474099e+15), which would silently change a number; %.15g is
 * what it prints whenever that is exact, so the two agree there. False for
 * infinities and NaN, which JSON cannot hold.
 */
static bool number_text(double d, char out[NUMBER_TEXT_MAX])
{
    if (!isfinite(d)) return false;
    for (int digits = 15; digits <= 17; digits++) {
        snprintf(out, NUMBER_TEXT_MAX, "%1.*g", digits, d);
        if (strtod(out, NULL) == d) return true;
    }
    return true;    /* %.17g always reads back exactly */
}

/* A decimal's value, spelling aside: 0.<digits> x 10^exp, with no leading
 * or trailing zero digit; zero has none (and no sign: -0 is 0). */
typedef struct decimal {
    bool neg, zero, too_precise;
    char digits[PRINTED_DIGITS_MAX];
    int n;
    long long exp;
} decimal;

/* Reads the RFC 8259 number s (n bytes, already checked) into *d. */
static void decimal_read(const char *s, size_t n, decimal *d)
{
    memset(d, 0, sizeof *d);
    size_t i = 0;
    if (i < n && s[i] == '-') { d->neg = true; i++; }
    long long int_digits = 0, lead_zeros = 0;
    bool seen_nonzero = false, after_point = false;
    int trailing_zeros = 0;
    for (; i < n && (is_digit((unsigned char)s[i]) || s[i] == '.'); i++) {
        if (s[i] == '.') { after_point = true; continue; }
        if (!after_point) int_digits++;
        if (!seen_nonzero && s[i] == '0') { lead_zeros++; continue; }
        seen_nonzero = true;
        if (s[i] == '0') { trailing_zeros++; continue; }
        /* A nonzero digit: the zeros before it were significant. */
        for (; trailing_zeros > 0; trailing_zeros--) {
            if (d->n < PRINTED_DIGITS_MAX) d->digits[d->n] = '0';
            d->n++;
        }
        if (d->n < PRINTED_DIGITS_MAX) d->digits[d->n] = s[i];
        d->n++;
    }
    if (!seen_nonzero) { d->zero = true; d->neg = false; return; }
    d->too_precise = d->n > PRINTED_DIGITS_MAX;
    long long e = 0;
    bool e_neg = false;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-')) e_neg = s[i++] == '-';
        for (; i < n && is_digit((unsigned char)s[i]); i++)
            if (e < DECIMAL_EXP_LIMIT) e = e * 10 + (s[i] - '0');
    }
    d->exp = (int_digits - lead_zeros) + (e_neg ? -e : e);
}

static bool decimal_equal(const decimal *a, const decimal *b)
{
    if (a->zero || b->zero) return a->zero && b->zero;
    return !a->too_precise && !b->too_precise && a->neg == b->neg && a->n == b->n &&
           a->exp == b->exp && memcmp(a->digits, b->digits, (size_t)a->n) == 0;
}

/* The decimal a number node is printed as (json_print); false when it
 * cannot be printed as a number at all (an infinity). */
static bool printed_decimal(const cJSON *num, decimal *d)
{
    char buf[NUMBER_TEXT_MAX];
    if (!number_text(num->valuedouble, buf)) return false;
    decimal_read(buf, strlen(buf), d);
    return true;
}

/* The numbers of a JSON text in document order, the order of the nodes
 * of its tree. Between calls the scan is always outside a string. */
typedef struct number_scan {
    const char *s;
    size_t len, pos;
} number_scan;

static bool next_number(number_scan *ns, const char **tok, size_t *tok_len)
{
    bool in_string = false, escaped = false;
    for (; ns->pos < ns->len; ns->pos++) {
        unsigned char c = (unsigned char)ns->s[ns->pos];
        if (in_string) {
            if (escaped) escaped = false;
            else if (c == '\\') escaped = true;
            else if (c == '"') in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == '-' || is_digit(c)) {
            size_t start = ns->pos;
            while (ns->pos < ns->len && is_bare_token_char((unsigned char)ns->s[ns->pos]))
                ns->pos++;
            *tok = ns->s + start;
            *tok_len = ns->pos - start;
            return true;
        }
    }
    return false;
}

/* Appends one reference token to a JSON Pointer, ~ and / escaped. */
static void pointer_push(strbuf *p, const char *name)
{
    strbuf_add(p, "/");
    for (; *name; name++) {
        if (*name == '~') strbuf_add(p, "~0");
        else if (*name == '/') strbuf_add(p, "~1");
        else strbuf_addn(p, name, 1);
    }
}

/* Walks item in document order; 1 at the first inexact number (pointer
 * then names it), 0 when none, -1 when the text and the tree disagree
 * (not the text the tree was parsed from) or memory runs out. */
static int find_inexact(const cJSON *item, number_scan *ns, strbuf *pointer)
{
    if (cJSON_IsNumber(item)) {
        const char *tok;
        size_t tok_len;
        if (!next_number(ns, &tok, &tok_len)) return -1;
        decimal sent, kept;
        decimal_read(tok, tok_len, &sent);
        return printed_decimal(item, &kept) && decimal_equal(&sent, &kept) ? 0 : 1;
    }
    if (!cJSON_IsArray(item) && !cJSON_IsObject(item)) return 0;
    int index = 0;
    for (const cJSON *c = item->child; c; c = c->next, index++) {
        size_t mark = pointer->len;
        if (cJSON_IsObject(item)) {
            pointer_push(pointer, c->string ? c->string : "");
        } else {
            strbuf_addf(pointer, "/%d", index);
        }
        if (pointer->oom) return -1;
        int rc = find_inexact(c, ns, pointer);
        if (rc != 0) return rc;
        pointer->len = mark;
        if (pointer->s) pointer->s[mark] = '\0';
    }
    return 0;
}

int json_find_inexact_number(const char *text, size_t len, const cJSON *root,
                             strbuf *pointer)
{
    number_scan ns = { text, len, 0 };
    strbuf_reset(pointer);
    strbuf_add(pointer, "");
    if (pointer->oom) return -1;
    return find_inexact(root, &ns, pointer);
}

bool json_number_fits_float(const cJSON *n, char *out, size_t out_size)
{
    out[0] = '\0';
    decimal want, got;
    if (!cJSON_IsNumber(n) || !printed_decimal(n, &want) || out_size < NUMBER_TEXT_MAX)
        return false;
    float f = (float)n->valuedouble;
    if (!isfinite(f)) return false;
    /* The shortest spelling that reads back as the same float: what
     * PostgreSQL prints for a real. */
    for (int digits = 1; digits <= 9; digits++) {
        snprintf(out, out_size, "%.*g", digits, (double)f);
        if (strtof(out, NULL) == f) break;
    }
    decimal_read(out, strlen(out), &got);
    return decimal_equal(&want, &got);
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

/* True when cJSON's printer might not print num as exactly its value:
 * when %.15g does not read back as it (see number_text). */
static bool number_needs_exact_text(const cJSON *num)
{
    char buf[NUMBER_TEXT_MAX];
    double d = num->valuedouble;
    if (!isfinite(d)) return false;          /* null either way */
    snprintf(buf, sizeof buf, "%1.15g", d);
    return strtod(buf, NULL) != d;
}

static bool tree_needs_exact_numbers(const cJSON *item)
{
    if (cJSON_IsNumber(item)) return number_needs_exact_text(item);
    if (cJSON_IsArray(item) || cJSON_IsObject(item))
        for (const cJSON *c = item->child; c; c = c->next)
            if (tree_needs_exact_numbers(c)) return true;
    return false;
}

/* Turns every number of item that needs it into raw text that reads back
 * as exactly its value (cJSON prints raw nodes verbatim). False when out
 * of memory. */
static bool make_numbers_exact(cJSON *item)
{
    if (cJSON_IsNumber(item)) {
        char buf[NUMBER_TEXT_MAX];
        if (!number_needs_exact_text(item) || !number_text(item->valuedouble, buf)) return true;
        char *raw = strdup(buf);
        if (!raw) return false;
        item->type = cJSON_Raw;
        item->valuestring = raw;             /* freed by cJSON_Delete */
        return true;
    }
    for (cJSON *c = item->child; c; c = c->next)
        if (!make_numbers_exact(c)) return false;
    return true;
}

char *json_print(const cJSON *item)
{
    if (item == NULL)
        return NULL;
    if (!tree_needs_exact_numbers(item))
        return cJSON_PrintUnformatted(item);
    cJSON *copy = cJSON_Duplicate(item, 1);
    char *text = copy && make_numbers_exact(copy) ? cJSON_PrintUnformatted(copy) : NULL;
    cJSON_Delete(copy);
    return text;
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
