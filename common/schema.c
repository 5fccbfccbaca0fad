/*
 * schema.c - JSON Schema (2020-12, draft-07 spellings too) for payloads,
 * tool inputs and MCP servers' tool schemas; see schema.h for the
 * keywords.
 *
 * Two passes. Compiling walks the schema once and turns every subschema
 * into a node: each member is looked up in the keyword table, and one not
 * there, or of the wrong shape, refuses the whole schema with its JSON
 * Pointer. A node records what its keywords ask (bounds, a bit mask of
 * types, patterns compiled by common/jsregex.c, properties sorted for
 * binary search) and links to its subschemas' nodes. A $ref is resolved
 * here, once: the JSON Pointer is walked to a subschema, whose node is
 * shared through a table keyed by the cJSON item, so recursive schemas
 * become cycles of nodes rather than endless copies. A cycle that never
 * descends into the instance ({"$ref": "#"}, or allOf/anyOf/oneOf/not
 * chains that loop) could only recurse forever, so it is refused here.
 *
 * Checking walks nodes and instance together and stops at the first
 * failure, reported as the instance's JSON Pointer (RFC 6901) and a
 * message a client can show as is: "/items/2/name" "must be at most 64
 * characters". anyOf and oneOf try every alternative and, when none fits,
 * say briefly why each failed.
 *
 * Every node applied and $ref followed costs a step of a budget, and so
 * does the rest of the work a visit can do: values compared, members
 * looked at, 64 bytes of text read, messages formatted (most of them are
 * thrown away by anyOf, oneOf and not). Pattern matching has a budget of
 * its own. Running out, or applying subschemas deeper than a limit, ends
 * the check as a failure whose message begins "invalid schema: ", which
 * no "not" or "anyOf" can turn into a success. Time is thus bounded for
 * any schema and instance (tens of milliseconds at worst); nothing grows
 * exponentially or overflows the stack.
 */
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "jsregex.h"
#include "schema.h"
#include "schema_format.h"

#define PATH_SIZE sizeof(((schema_error *)0)->path)
#define REF_MAX   1024      /* bytes of a $ref's JSON Pointer */

/* ---- text that fits its buffer ------------------------------------------------ */

/* The length of the first max bytes of s, shortened so that no UTF-8
 * sequence is cut. */
static size_t utf8_clip(const char *s, size_t max)
{
    size_t n = strnlen(s, max + 1);
    if (n <= max)
        return n;
    n = max;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    return n;
}

/* Ends buf (size bytes, holding a string that was cut) in "...", at a
 * character boundary. */
static void mark_cut(char *buf, size_t size)
{
    if (size < 4)
        return;
    size_t n = utf8_clip(buf, size - 4);
    memcpy(buf + n, "...", 4);
}

/* s for a message: at most max bytes, "..." after when cut. */
static const char *clipped(const char *s, size_t max, char *buf, size_t size)
{
    size_t n = utf8_clip(s, max < size - 4 ? max : size - 4);
    memcpy(buf, s, n);
    strcpy(buf + n, s[n] != '\0' ? "..." : "");
    return buf;
}

/* Appends s to buf (size bytes) at *len, ending in "..." if it does not
 * fit; *len is then size, so that nothing more is added after the "...". */
static void text_append(char *buf, size_t size, size_t *len, const char *s)
{
    size_t n = strlen(s);
    if (*len >= size)
        return;
    if (*len + n + 1 > size) {
        size_t room = size - 1 - *len;
        memcpy(buf + *len, s, room);
        buf[size - 1] = '\0';
        mark_cut(buf, size);
        *len = size;
        return;
    }
    memcpy(buf + *len, s, n + 1);
    *len += n;
}

/* ---- JSON Pointers (RFC 6901) ------------------------------------------------ */

typedef struct pointer {
    char text[PATH_SIZE];
    size_t len;
} pointer;

/*
 * Appends "/" and token, escaped (~ as ~0, / as ~1). A pointer too long
 * for the buffer ends in "..." so it is never mistaken for a shorter,
 * real one. Returns the length to restore with ptr_pop.
 */
static size_t ptr_push(pointer *p, const char *token)
{
    size_t saved = p->len, cap = sizeof p->text - 1, len = p->len;
    bool cut = len >= cap;

    if (!cut)
        p->text[len++] = '/';
    for (const char *t = token; *t != '\0' && !cut; t++) {
        const char *rep = *t == '~' ? "~0" : *t == '/' ? "~1" : NULL;
        size_t need = rep != NULL ? 2 : 1;
        if (len + need > cap) {
            cut = true;
            break;
        }
        if (rep != NULL)
            memcpy(p->text + len, rep, 2);
        else
            p->text[len] = *t;
        len += need;
    }
    if (cut) {
        p->text[len] = '\0';
        mark_cut(p->text, sizeof p->text);
        len = strlen(p->text);
    }
    p->text[len] = '\0';
    p->len = len;
    return saved;
}

static size_t ptr_push_index(pointer *p, size_t index)
{
    char token[24];
    snprintf(token, sizeof token, "%zu", index);
    return ptr_push(p, token);
}

static void ptr_pop(pointer *p, size_t saved)
{
    p->len = saved;
    p->text[saved] = '\0';
}

/* ---- an arena for the compiled form ------------------------------------------ */

typedef struct chunk {
    struct chunk *next;
    size_t used, cap;
    max_align_t align;      /* makes sizeof(chunk) a multiple of the alignment */
} chunk;

#define CHUNK_BYTES 16384

/* Zeroed memory that lives as long as the compiled schema. */
static void *arena_alloc(chunk **arena, size_t size)
{
    size_t a = _Alignof(max_align_t);
    size = (size + a - 1) / a * a;
    chunk *c = *arena;
    if (c == NULL || c->cap - c->used < size) {
        size_t cap = size > CHUNK_BYTES ? size : CHUNK_BYTES;
        c = malloc(sizeof *c + cap);
        if (c == NULL)
            return NULL;
        c->used = 0;
        c->cap = cap;
        /* A big block gets a chunk of its own behind the current one, so
         * the current one's free space is not lost. */
        if (size > CHUNK_BYTES && *arena != NULL) {
            c->next = (*arena)->next;
            (*arena)->next = c;
        } else {
            c->next = *arena;
            *arena = c;
        }
    }
    void *p = (unsigned char *)(c + 1) + c->used;
    c->used += size;
    memset(p, 0, size);
    return p;
}

static void arena_free(chunk *c)
{
    while (c != NULL) {
        chunk *next = c->next;
        free(c);
        c = next;
    }
}

/* ---- the compiled form --------------------------------------------------------- */

typedef struct snode snode;

typedef struct node_list {
    snode **v;
    size_t n;
} node_list;

typedef struct prop {
    const char *name;
    snode *schema;
} prop;

typedef struct pattern_prop {
    const jsregex *re;
    snode *schema;
} pattern_prop;

typedef struct dependency {
    const char *name;       /* when this member is present... */
    const cJSON *names;     /* ...these are required (strings) */
} dependency;

enum type_bit {
    T_NULL = 1, T_BOOLEAN = 2, T_OBJECT = 4, T_ARRAY = 8,
    T_NUMBER = 16, T_INTEGER = 32, T_STRING = 64,
};

/* Which of the numeric bounds a node has. */
enum has_bit {
    H_MINIMUM = 1 << 0, H_MAXIMUM = 1 << 1, H_XMIN = 1 << 2, H_XMAX = 1 << 3,
    H_MULTIPLE = 1 << 4, H_MIN_LENGTH = 1 << 5, H_MAX_LENGTH = 1 << 6,
    H_MIN_ITEMS = 1 << 7, H_MAX_ITEMS = 1 << 8, H_MIN_PROPS = 1 << 9,
    H_MAX_PROPS = 1 << 10,
};

struct snode {
    int id;                     /* index among object nodes; -1 for true/false */
    signed char verdict;        /* 1 the true schema, 0 false, -1 an object */
    unsigned types;             /* type_bits; 0 when no "type" */
    const cJSON *type_kw;       /* for the message */
    const cJSON *enum_values;
    const cJSON *const_value;
    unsigned has;               /* has_bits */
    double minimum, maximum, xmin, xmax, multiple;
    double min_length, max_length, min_items, max_items, min_props, max_props;
    const jsregex *pattern;
    const char *pattern_src;
    schema_format format;
    node_list prefix;           /* prefixItems, or a draft-07 array "items" */
    snode *items;               /* the items after those */
    bool unique;
    prop *props;                /* sorted by name */
    size_t n_props;
    pattern_prop *pprops;
    size_t n_pprops;
    snode *additional;
    snode *names;               /* propertyNames */
    const cJSON *required;
    dependency *deps;
    size_t n_deps;
    node_list all_of, any_of, one_of;
    snode *not_schema;
    snode *ref;
    const char *ref_text;
};

struct schema_compiled {
    chunk *arena;
    snode *root;
    jsregex **regexes;          /* owned: freed with the schema */
    size_t n_regexes, cap_regexes;
};

/* ---- compiling: state and errors ---------------------------------------------- */

typedef struct memo_entry {
    const cJSON *json;
    snode *node;
} memo_entry;

/* A $ref target met before its own place in the walk: filled in later. */
typedef struct pending {
    snode *node;
    const cJSON *json;
    const char *ref;
} pending;

typedef struct compiler {
    schema_compiled *s;
    const cJSON *root;
    schema_error *err;
    pointer where;              /* the subschema being compiled */
    int depth;
    bool failed;
    snode *yes, *no;            /* the true and false schemas, shared */
    snode **nodes;              /* the object nodes, by id */
    size_t n_nodes, cap_nodes;
    memo_entry *memo;           /* open addressing, keyed by cJSON item */
    size_t memo_cap, memo_used;
    pending *queue;
    size_t queue_head, n_queue, cap_queue;
    size_t pattern_cost;
} compiler;

static int refuse(compiler *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Records why the schema is refused, with where, the first time only:
 * "invalid schema: <why> at <pointer>". Returns -1. */
static int refuse(compiler *c, const char *fmt, ...)
{
    if (!c->failed && c->err != NULL) {
        char why[200];
        va_list ap;
        va_start(ap, fmt);
        if (vsnprintf(why, sizeof why, fmt, ap) >= (int)sizeof why)
            mark_cut(why, sizeof why);
        va_end(ap);
        c->err->path[0] = '\0';
        if (snprintf(c->err->message, sizeof c->err->message, "invalid schema: %s at %s", why,
                     c->where.len > 0 ? c->where.text : "the root") >=
            (int)sizeof c->err->message)
            mark_cut(c->err->message, sizeof c->err->message);
    }
    c->failed = true;
    return -1;
}

/* For failures that have no place in the schema. */
static int refuse_plain(compiler *c, const char *message)
{
    if (!c->failed && c->err != NULL) {
        c->err->path[0] = '\0';
        if (snprintf(c->err->message, sizeof c->err->message, "%s", message) >=
            (int)sizeof c->err->message)
            mark_cut(c->err->message, sizeof c->err->message);
    }
    c->failed = true;
    return -1;
}

/* ---- compiling: nodes and the table of compiled items ---------------------------- */

static size_t memo_slot(const compiler *c, const cJSON *json)
{
    uint64_t h = (uint64_t)(uintptr_t)json * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 17) & (c->memo_cap - 1);
}

static snode *memo_find(const compiler *c, const cJSON *json)
{
    if (c->memo_cap == 0)
        return NULL;
    for (size_t i = memo_slot(c, json);; i = (i + 1) & (c->memo_cap - 1)) {
        if (c->memo[i].json == json)
            return c->memo[i].node;
        if (c->memo[i].json == NULL)
            return NULL;
    }
}

static int memo_put(compiler *c, const cJSON *json, snode *node)
{
    if ((c->memo_used + 1) * 2 > c->memo_cap) {
        size_t old_cap = c->memo_cap, cap = old_cap ? old_cap * 2 : 64;
        memo_entry *old = c->memo;
        c->memo = calloc(cap, sizeof *c->memo);
        if (c->memo == NULL) {
            c->memo = old;
            return refuse_plain(c, "out of memory");
        }
        c->memo_cap = cap;
        for (size_t i = 0; i < old_cap; i++) {
            if (old[i].json == NULL)
                continue;
            size_t j = memo_slot(c, old[i].json);
            while (c->memo[j].json != NULL)
                j = (j + 1) & (cap - 1);
            c->memo[j] = old[i];
        }
        free(old);
    }
    size_t i = memo_slot(c, json);
    while (c->memo[i].json != NULL)
        i = (i + 1) & (c->memo_cap - 1);
    c->memo[i] = (memo_entry){json, node};
    c->memo_used++;
    return 0;
}

static void *alloc(compiler *c, size_t size)
{
    void *p = arena_alloc(&c->s->arena, size);
    if (p == NULL)
        refuse_plain(c, "out of memory");
    return p;
}

/* A new, empty object node for json, known from now on by its item. */
static snode *new_node(compiler *c, const cJSON *json)
{
    if (c->n_nodes >= SCHEMA_MAX_NODES) {
        refuse(c, "more than %d subschemas", SCHEMA_MAX_NODES);
        return NULL;
    }
    snode *n = alloc(c, sizeof *n);
    if (n == NULL)
        return NULL;
    if (array_grow((void **)&c->nodes, &c->cap_nodes, c->n_nodes, sizeof *c->nodes) != 0) {
        refuse_plain(c, "out of memory");
        return NULL;
    }
    n->id = (int)c->n_nodes;
    n->verdict = -1;
    c->nodes[c->n_nodes++] = n;
    return memo_put(c, json, n) == 0 ? n : NULL;
}

static int fill_node(compiler *c, snode *n, const cJSON *json);

/* The node of the subschema json, compiled now unless it already was. */
static snode *compile(compiler *c, const cJSON *json)
{
    if (cJSON_IsBool(json))
        return cJSON_IsTrue(json) ? c->yes : c->no;
    if (!cJSON_IsObject(json)) {
        refuse(c, "a schema must be an object or a boolean");
        return NULL;
    }
    snode *n = memo_find(c, json);
    if (n != NULL)
        return n;
    if (c->depth >= SCHEMA_MAX_NESTING) {
        refuse(c, "subschemas nest deeper than %d levels", SCHEMA_MAX_NESTING);
        return NULL;
    }
    if ((n = new_node(c, json)) == NULL)
        return NULL;
    c->depth++;
    int rc = fill_node(c, n, json);
    c->depth--;
    return rc == 0 ? n : NULL;
}

/* compile() for the member key of the current subschema. */
static snode *compile_at(compiler *c, const char *key, const cJSON *json)
{
    size_t saved = ptr_push(&c->where, key);
    snode *n = compile(c, json);
    if (n != NULL)
        ptr_pop(&c->where, saved);      /* on error, where stays for the message */
    return n;
}

/* A non-empty array of subschemas (allOf, anyOf, oneOf, prefixItems). */
static int compile_list(compiler *c, const cJSON *array, node_list *out)
{
    const char *key = array->string;
    int count = cJSON_IsArray(array) ? cJSON_GetArraySize(array) : 0;
    if (count == 0)
        return refuse(c, "%s must be a non-empty array of schemas", key);
    out->v = alloc(c, (size_t)count * sizeof *out->v);
    if (out->v == NULL)
        return -1;
    size_t saved = ptr_push(&c->where, key);
    for (const cJSON *e = array->child; e != NULL; e = e->next) {
        size_t at = ptr_push_index(&c->where, out->n);
        if ((out->v[out->n] = compile(c, e)) == NULL)
            return -1;
        out->n++;
        ptr_pop(&c->where, at);
    }
    ptr_pop(&c->where, saved);
    return 0;
}

/* ---- compiling: the keywords ---------------------------------------------------------- */

/* Annotations: accepted and without effect on validation. */
static int kw_note(compiler *c, snode *n, const cJSON *v)
{
    return 0;
}

/* Checked in finish_node, where they are seen together. */
static int kw_later(compiler *c, snode *n, const cJSON *v)
{
    return 0;
}

static bool dialect_known(const char *uri)
{
    static const char *const known[] = {
        "json-schema.org/draft-07/schema",
        "json-schema.org/draft/2019-09/schema",
        "json-schema.org/draft/2020-12/schema",
    };
    if (strncmp(uri, "https://", 8) == 0)
        uri += 8;
    else if (strncmp(uri, "http://", 7) == 0)
        uri += 7;
    else
        return false;
    for (size_t i = 0; i < sizeof known / sizeof *known; i++) {
        size_t n = strlen(known[i]);
        if (strncmp(uri, known[i], n) == 0 && (uri[n] == '\0' || strcmp(uri + n, "#") == 0))
            return true;
    }
    return false;
}

/* $schema: the dialects whose keywords mean here what they mean there. */
static int kw_dialect(compiler *c, snode *n, const cJSON *v)
{
    char b[104];
    if (c->where.len > 0)
        return refuse(c, "unsupported keyword '$schema' (only the root may have one)");
    if (!cJSON_IsString(v))
        return refuse(c, "$schema must be a string");
    if (!dialect_known(v->valuestring))
        return refuse(c, "unsupported $schema \"%s\" (draft-07, 2019-09 and 2020-12 are)",
                      clipped(v->valuestring, 80, b, sizeof b));
    return 0;
}

/* $id names the document; elsewhere it would start a new base URI for
 * $ref, which local references do not follow. */
static int kw_id(compiler *c, snode *n, const cJSON *v)
{
    if (c->where.len > 0)
        return refuse(c, "unsupported keyword '$id' (only the root may have one)");
    return cJSON_IsString(v) ? 0 : refuse(c, "$id must be a string");
}

/* $defs, definitions: every definition is compiled, used or not, so a
 * keyword it cannot check is refused there too. */
static int kw_defs(compiler *c, snode *n, const cJSON *v)
{
    if (!cJSON_IsObject(v))
        return refuse(c, "%s must be an object of schemas", v->string);
    size_t saved = ptr_push(&c->where, v->string);
    for (const cJSON *d = v->child; d != NULL; d = d->next)
        if (compile_at(c, d->string, d) == NULL)
            return -1;
    ptr_pop(&c->where, saved);
    return 0;
}

/* Percent-decodes the fragment of a $ref (RFC 6901 section 6) into out. */
static int decode_fragment(compiler *c, const char *in, char *out, size_t size)
{
    size_t n = 0;
    for (const char *p = in; *p != '\0'; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch == '%') {
            unsigned hi, lo;
            if (sscanf(p + 1, "%1x%1x", &hi, &lo) != 2)
                return refuse(c, "$ref has a bad %% escape");
            ch = (unsigned char)(hi * 16 + lo);
            p += 2;
            if (ch == 0)
                return refuse(c, "$ref has a NUL in it");
        }
        if (n + 1 >= size)
            return refuse(c, "$ref is longer than %d bytes", REF_MAX);
        out[n++] = (char)ch;
    }
    out[n] = '\0';
    return 0;
}

/* Undoes ~1 and ~0 in a reference token, in place. */
static int unescape_token(compiler *c, char *tok)
{
    char *w = tok;
    for (const char *r = tok; *r != '\0'; r++) {
        if (*r == '~') {
            if (r[1] != '0' && r[1] != '1')
                return refuse(c, "$ref has a ~ not followed by 0 or 1");
            *w++ = r[1] == '0' ? '~' : '/';
            r++;
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
    return 0;
}

/* The item a reference token names in cur, or NULL. */
static const cJSON *step_into(const cJSON *cur, const char *tok)
{
    if (cJSON_IsObject(cur))
        return cJSON_GetObjectItemCaseSensitive(cur, tok);
    if (!cJSON_IsArray(cur) || tok[0] == '\0' || (tok[0] == '0' && tok[1] != '\0'))
        return NULL;
    long i = 0;
    for (const char *p = tok; *p != '\0'; p++) {
        if (*p < '0' || *p > '9' || i > 1000000)
            return NULL;
        i = i * 10 + (*p - '0');
    }
    return cJSON_GetArrayItem(cur, (int)i);
}

/* Walks a local $ref ("#" or "#/a/b") from the root to the item it names. */
static const cJSON *resolve_ref(compiler *c, const char *ref)
{
    char b[104], buf[REF_MAX];
    if (ref[0] != '#') {
        refuse(c, "remote $ref \"%s\" is not supported (only #/... within the schema)",
               clipped(ref, 80, b, sizeof b));
        return NULL;
    }
    if (ref[1] == '\0')
        return c->root;
    if (ref[1] != '/') {
        refuse(c, "$ref \"%s\" names an anchor; only JSON Pointers (#/...) are supported",
               clipped(ref, 80, b, sizeof b));
        return NULL;
    }
    if (decode_fragment(c, ref + 1, buf, sizeof buf) != 0)
        return NULL;
    const cJSON *cur = c->root;
    char *tok = buf + 1;
    for (;;) {
        char *slash = strchr(tok, '/');
        if (slash != NULL)
            *slash = '\0';
        if (unescape_token(c, tok) != 0)
            return NULL;
        if ((cur = step_into(cur, tok)) == NULL) {
            refuse(c, "$ref \"%s\" points at nothing", clipped(ref, 80, b, sizeof b));
            return NULL;
        }
        if (slash == NULL)
            return cur;
        tok = slash + 1;
    }
}

/* The node a $ref stands for: shared when its target is compiled already,
 * else a new node filled in once this walk is done. */
static snode *ref_target(compiler *c, const cJSON *target, const char *ref)
{
    char b[104];
    if (cJSON_IsBool(target))
        return cJSON_IsTrue(target) ? c->yes : c->no;
    if (!cJSON_IsObject(target)) {
        refuse(c, "$ref \"%s\" does not point at a schema", clipped(ref, 80, b, sizeof b));
        return NULL;
    }
    snode *n = memo_find(c, target);
    if (n != NULL)
        return n;
    if ((n = new_node(c, target)) == NULL)
        return NULL;
    if (array_grow((void **)&c->queue, &c->cap_queue, c->n_queue, sizeof *c->queue) != 0) {
        refuse_plain(c, "out of memory");
        return NULL;
    }
    c->queue[c->n_queue++] = (pending){n, target, ref};
    return n;
}

static int kw_ref(compiler *c, snode *n, const cJSON *v)
{
    if (!cJSON_IsString(v))
        return refuse(c, "$ref must be a string");
    const cJSON *target = resolve_ref(c, v->valuestring);
    if (target == NULL)
        return -1;
    n->ref_text = v->valuestring;
    n->ref = ref_target(c, target, v->valuestring);
    return n->ref != NULL ? 0 : -1;
}

static const struct {
    const char *name;
    unsigned bit;
    const char *phrase;     /* after "must be" */
} type_names[] = {
    {"null",    T_NULL,    "null"},
    {"boolean", T_BOOLEAN, "a boolean"},
    {"object",  T_OBJECT,  "an object"},
    {"array",   T_ARRAY,   "an array"},
    {"number",  T_NUMBER,  "a number"},
    {"integer", T_INTEGER, "an integer"},
    {"string",  T_STRING,  "a string"},
};

#define N_TYPES (sizeof type_names / sizeof type_names[0])

/* The type_names entry called name, or N_TYPES. */
static size_t type_find(const char *name)
{
    size_t i = 0;
    while (i < N_TYPES && strcmp(type_names[i].name, name) != 0)
        i++;
    return i;
}

static int kw_type(compiler *c, snode *n, const cJSON *v)
{
    char b[64];
    if (!cJSON_IsString(v) && !(cJSON_IsArray(v) && v->child != NULL))
        return refuse(c, "type must be a string or a non-empty array of strings");
    const cJSON *first = cJSON_IsString(v) ? v : v->child;
    for (const cJSON *t = first; t != NULL; t = cJSON_IsString(v) ? NULL : t->next) {
        if (!cJSON_IsString(t))
            return refuse(c, "type names must be strings");
        size_t i = type_find(t->valuestring);
        if (i == N_TYPES)
            return refuse(c, "unknown type \"%s\"", clipped(t->valuestring, 40, b, sizeof b));
        if (n->types & type_names[i].bit)
            return refuse(c, "type names \"%s\" twice", type_names[i].name);
        n->types |= type_names[i].bit;
    }
    n->type_kw = v;
    return 0;
}

static int kw_enum(compiler *c, snode *n, const cJSON *v)
{
    if (!cJSON_IsArray(v))
        return refuse(c, "enum must be an array");
    n->enum_values = v;
    return 0;
}

static int kw_const(compiler *c, snode *n, const cJSON *v)
{
    n->const_value = v;
    return 0;
}

static bool is_integer_value(const cJSON *item)
{
    if (!cJSON_IsNumber(item))
        return false;
    double d = item->valuedouble;
    return isfinite(d) && d == floor(d);
}

/* The numeric keywords: where each goes in a node, and what it may be. */
static const struct bound {
    const char *name;
    unsigned bit;
    size_t offset;
    bool count;             /* a non-negative integer, else any finite number */
} bounds[] = {
    {"minimum",          H_MINIMUM,    offsetof(snode, minimum),    false},
    {"maximum",          H_MAXIMUM,    offsetof(snode, maximum),    false},
    {"exclusiveMinimum", H_XMIN,       offsetof(snode, xmin),       false},
    {"exclusiveMaximum", H_XMAX,       offsetof(snode, xmax),       false},
    {"multipleOf",       H_MULTIPLE,   offsetof(snode, multiple),   false},
    {"minLength",        H_MIN_LENGTH, offsetof(snode, min_length), true},
    {"maxLength",        H_MAX_LENGTH, offsetof(snode, max_length), true},
    {"minItems",         H_MIN_ITEMS,  offsetof(snode, min_items),  true},
    {"maxItems",         H_MAX_ITEMS,  offsetof(snode, max_items),  true},
    {"minProperties",    H_MIN_PROPS,  offsetof(snode, min_props),  true},
    {"maxProperties",    H_MAX_PROPS,  offsetof(snode, max_props),  true},
};

static int kw_bound(compiler *c, snode *n, const cJSON *v)
{
    const struct bound *b = bounds;
    while (strcmp(b->name, v->string) != 0)
        b++;
    if (cJSON_IsBool(v) && (b->bit & (H_XMIN | H_XMAX)))
        return refuse(c, "%s must be a number (the draft-04 boolean form is not supported)",
                      b->name);
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return refuse(c, "%s must be a number", b->name);
    if (b->count && (!is_integer_value(v) || v->valuedouble < 0))
        return refuse(c, "%s must be a non-negative integer", b->name);
    if (b->bit == H_MULTIPLE && !(v->valuedouble > 0))
        return refuse(c, "multipleOf must be greater than 0");
    *(double *)((char *)n + b->offset) = v->valuedouble;
    n->has |= b->bit;
    return 0;
}

/* Compiles a pattern for the schema, which then owns it. */
static const jsregex *compile_pattern(compiler *c, const char *source)
{
    char why[160], b[64];
    jsregex *re = jsregex_compile(source, why, sizeof why);
    if (re == NULL) {
        refuse(c, "unsupported pattern \"%s\" (%s)", clipped(source, 40, b, sizeof b), why);
        return NULL;
    }
    c->pattern_cost += jsregex_cost(re);
    if (array_grow((void **)&c->s->regexes, &c->s->cap_regexes, c->s->n_regexes,
             sizeof *c->s->regexes) != 0) {
        jsregex_free(re);
        refuse_plain(c, "out of memory");
        return NULL;
    }
    c->s->regexes[c->s->n_regexes++] = re;
    if (c->pattern_cost > SCHEMA_MAX_PATTERN_COST) {
        refuse(c, "patterns that take more than %d steps to compile in all",
               SCHEMA_MAX_PATTERN_COST);
        return NULL;
    }
    return re;
}

static int kw_pattern(compiler *c, snode *n, const cJSON *v)
{
    if (!cJSON_IsString(v))
        return refuse(c, "pattern must be a string");
    n->pattern_src = v->valuestring;
    n->pattern = compile_pattern(c, v->valuestring);
    return n->pattern != NULL ? 0 : -1;
}

/* A format this validator does not check is an annotation, as 2020-12's
 * format-annotation vocabulary has it: accepted, nothing checked. */
static int kw_format(compiler *c, snode *n, const cJSON *v)
{
    if (!cJSON_IsString(v))
        return refuse(c, "format must be a string");
    n->format = schema_format_find(v->valuestring);
    return 0;
}

static int kw_unique(compiler *c, snode *n, const cJSON *v)
{
    if (!cJSON_IsBool(v))
        return refuse(c, "uniqueItems must be a boolean");
    n->unique = cJSON_IsTrue(v);
    return 0;
}

/* An array of property names (required, and dependentRequired's). */
static int check_name_list(compiler *c, const cJSON *v, const char *what)
{
    if (!cJSON_IsArray(v))
        return refuse(c, "%s must be an array of strings", what);
    for (const cJSON *r = v->child; r != NULL; r = r->next)
        if (!cJSON_IsString(r))
            return refuse(c, "%s must be an array of strings", what);
    return 0;
}

static int kw_required(compiler *c, snode *n, const cJSON *v)
{
    n->required = v;
    return check_name_list(c, v, "required");
}

static int prop_cmp(const void *a, const void *b)
{
    return strcmp(((const prop *)a)->name, ((const prop *)b)->name);
}

static int kw_properties(compiler *c, snode *n, const cJSON *v)
{
    if (!cJSON_IsObject(v))
        return refuse(c, "properties must be an object of schemas");
    size_t count = (size_t)cJSON_GetArraySize(v);
    if (count == 0)
        return 0;
    if ((n->props = alloc(c, count * sizeof *n->props)) == NULL)
        return -1;
    size_t saved = ptr_push(&c->where, "properties");
    for (const cJSON *p = v->child; p != NULL; p = p->next) {
        prop *pr = &n->props[n->n_props];
        pr->name = p->string != NULL ? p->string : "";
        if ((pr->schema = compile_at(c, pr->name, p)) == NULL)
            return -1;
        n->n_props++;
    }
    ptr_pop(&c->where, saved);
    qsort(n->props, n->n_props, sizeof *n->props, prop_cmp);
    for (size_t i = 1; i < n->n_props; i++)
        if (strcmp(n->props[i - 1].name, n->props[i].name) == 0)
            return refuse(c, "properties names \"%s\" twice", n->props[i].name);
    return 0;
}

static int kw_pattern_properties(compiler *c, snode *n, const cJSON *v)
{
    if (!cJSON_IsObject(v))
        return refuse(c, "patternProperties must be an object of schemas");
    size_t count = (size_t)cJSON_GetArraySize(v);
    if (count == 0)
        return 0;
    if ((n->pprops = alloc(c, count * sizeof *n->pprops)) == NULL)
        return -1;
    size_t saved = ptr_push(&c->where, "patternProperties");
    for (const cJSON *p = v->child; p != NULL; p = p->next) {
        pattern_prop *pp = &n->pprops[n->n_pprops];
        const char *source = p->string != NULL ? p->string : "";
        size_t at = ptr_push(&c->where, source);
        if ((pp->re = compile_pattern(c, source)) == NULL)
            return -1;
        ptr_pop(&c->where, at);
        if ((pp->schema = compile_at(c, source, p)) == NULL)
            return -1;
        n->n_pprops++;
    }
    ptr_pop(&c->where, saved);
    return 0;
}

static int kw_additional(compiler *c, snode *n, const cJSON *v)
{
    n->additional = compile_at(c, "additionalProperties", v);
    return n->additional != NULL ? 0 : -1;
}

static int kw_property_names(compiler *c, snode *n, const cJSON *v)
{
    n->names = compile_at(c, "propertyNames", v);
    return n->names != NULL ? 0 : -1;
}

static int kw_dependent_required(compiler *c, snode *n, const cJSON *v)
{
    if (!cJSON_IsObject(v))
        return refuse(c, "dependentRequired must be an object of arrays");
    size_t count = (size_t)cJSON_GetArraySize(v);
    if (count == 0)
        return 0;
    if ((n->deps = alloc(c, count * sizeof *n->deps)) == NULL)
        return -1;
    for (const cJSON *d = v->child; d != NULL; d = d->next) {
        if (check_name_list(c, d, "each of dependentRequired") != 0)
            return -1;
        n->deps[n->n_deps++] = (dependency){d->string != NULL ? d->string : "", d};
    }
    return 0;
}

static int kw_all_of(compiler *c, snode *n, const cJSON *v)
{
    return compile_list(c, v, &n->all_of);
}

static int kw_any_of(compiler *c, snode *n, const cJSON *v)
{
    return compile_list(c, v, &n->any_of);
}

static int kw_one_of(compiler *c, snode *n, const cJSON *v)
{
    return compile_list(c, v, &n->one_of);
}

static int kw_not(compiler *c, snode *n, const cJSON *v)
{
    n->not_schema = compile_at(c, "not", v);
    return n->not_schema != NULL ? 0 : -1;
}

typedef int (*keyword_fn)(compiler *c, snode *n, const cJSON *v);

static const struct keyword {
    const char *name;
    keyword_fn fn;
} keywords[] = {
    {"$schema", kw_dialect}, {"$id", kw_id}, {"$defs", kw_defs}, {"definitions", kw_defs},
    {"$ref", kw_ref},
    {"$comment", kw_note}, {"title", kw_note}, {"description", kw_note}, {"default", kw_note},
    {"examples", kw_note}, {"readOnly", kw_note}, {"writeOnly", kw_note},
    {"deprecated", kw_note}, {"contentMediaType", kw_note}, {"contentEncoding", kw_note},
    {"discriminator", kw_note},
    {"type", kw_type}, {"enum", kw_enum}, {"const", kw_const},
    {"minimum", kw_bound}, {"maximum", kw_bound}, {"exclusiveMinimum", kw_bound},
    {"exclusiveMaximum", kw_bound}, {"multipleOf", kw_bound},
    {"minLength", kw_bound}, {"maxLength", kw_bound}, {"pattern", kw_pattern},
    {"format", kw_format},
    {"items", kw_later}, {"prefixItems", kw_later}, {"additionalItems", kw_later},
    {"minItems", kw_bound}, {"maxItems", kw_bound}, {"uniqueItems", kw_unique},
    {"required", kw_required}, {"properties", kw_properties},
    {"patternProperties", kw_pattern_properties}, {"additionalProperties", kw_additional},
    {"propertyNames", kw_property_names}, {"dependentRequired", kw_dependent_required},
    {"minProperties", kw_bound}, {"maxProperties", kw_bound},
    {"allOf", kw_all_of}, {"anyOf", kw_any_of}, {"oneOf", kw_one_of}, {"not", kw_not},
};

#define N_KEYWORDS (sizeof keywords / sizeof keywords[0])
_Static_assert(N_KEYWORDS <= 64, "a keyword's bit in fill_node's mask");

/* items, prefixItems and additionalItems, which depend on one another:
 * a draft-07 "items" array is 2020-12's prefixItems, and its
 * additionalItems is then 2020-12's items. */
static int finish_items(compiler *c, snode *n, const cJSON *json)
{
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(json, "items");
    const cJSON *prefix = cJSON_GetObjectItemCaseSensitive(json, "prefixItems");
    const cJSON *extra = cJSON_GetObjectItemCaseSensitive(json, "additionalItems");

    if (cJSON_IsArray(items)) {
        if (prefix != NULL)
            return refuse(c, "an array 'items' (draft-07) beside 'prefixItems'");
        if (items->child == NULL) {
            n->items = extra != NULL ? compile_at(c, "additionalItems", extra) : c->yes;
            return n->items != NULL ? 0 : -1;
        }
        if (compile_list(c, items, &n->prefix) != 0)
            return -1;
        if (extra != NULL && (n->items = compile_at(c, "additionalItems", extra)) == NULL)
            return -1;
        return 0;
    }
    if (extra != NULL)
        return refuse(c, "unsupported keyword 'additionalItems' (only beside an array 'items')");
    if (prefix != NULL && compile_list(c, prefix, &n->prefix) != 0)
        return -1;
    if (items != NULL && (n->items = compile_at(c, "items", items)) == NULL)
        return -1;
    return 0;
}

static size_t keyword_find(const char *name)
{
    size_t i = 0;
    while (i < N_KEYWORDS && strcmp(keywords[i].name, name) != 0)
        i++;
    return i;
}

/* Reads every member of the schema object json into n. */
static int fill_node(compiler *c, snode *n, const cJSON *json)
{
    uint64_t seen = 0;
    char b[64];
    for (const cJSON *m = json->child; m != NULL; m = m->next) {
        const char *name = m->string != NULL ? m->string : "";
        size_t k = keyword_find(name);
        if (k == N_KEYWORDS)
            return refuse(c, "unsupported keyword '%s'", clipped(name, 40, b, sizeof b));
        if (seen & (UINT64_C(1) << k))
            return refuse(c, "keyword '%s' appears twice", name);
        seen |= UINT64_C(1) << k;
        if (keywords[k].fn(c, n, m) != 0)
            return -1;
    }
    return finish_items(c, n, json);
}

/* Compiles the $ref targets met before their place, as their own roots. */
static int drain_queue(compiler *c)
{
    while (c->queue_head < c->n_queue) {
        pending p = c->queue[c->queue_head++];
        ptr_pop(&c->where, 0);
        /* The reference is the target's own pointer (still %-escaped). */
        snprintf(c->where.text, sizeof c->where.text, "%s", p.ref + 1);
        c->where.len = strlen(c->where.text);
        c->depth = 1;
        if (fill_node(c, p.node, p.json) != 0)
            return -1;
    }
    return 0;
}

/* ---- compiling: refusing cycles that never reach the instance ------------------- */

/* The k-th subschema applied to the same instance as n, or NULL past the
 * last: $ref, not, allOf, anyOf, oneOf. */
static snode *same_instance_child(const snode *n, size_t k)
{
    if (n->ref != NULL && k-- == 0)
        return n->ref;
    if (n->not_schema != NULL && k-- == 0)
        return n->not_schema;
    const node_list *lists[] = {&n->all_of, &n->any_of, &n->one_of};
    for (size_t i = 0; i < 3; i++) {
        if (k < lists[i]->n)
            return lists[i]->v[k];
        k -= lists[i]->n;
    }
    return NULL;
}

/*
 * A depth-first search over those edges, without recursion: a cycle
 * among them would apply the same subschemas to the same value forever.
 * Every such cycle goes through a $ref (the rest follows the tree of the
 * JSON), which the message names.
 */
static int check_cycles(compiler *c)
{
    enum { WHITE, GREY, BLACK };
    struct frame { snode *node; size_t edge; };
    size_t n = c->n_nodes;
    unsigned char *color = calloc(n ? n : 1, 1);
    size_t *at = calloc(n ? n : 1, sizeof *at);
    struct frame *stack = calloc(n ? n : 1, sizeof *stack);
    int rc = 0;

    if (color == NULL || at == NULL || stack == NULL)
        rc = refuse_plain(c, "out of memory");
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (color[i] != WHITE)
            continue;
        size_t sp = 0;
        stack[sp++] = (struct frame){c->nodes[i], 0};
        color[i] = GREY;
        at[i] = 0;
        while (sp > 0 && rc == 0) {
            struct frame *top = &stack[sp - 1];
            snode *child = same_instance_child(top->node, top->edge++);
            if (child == NULL) {
                color[top->node->id] = BLACK;
                sp--;
            } else if (child->id < 0 || color[child->id] == BLACK) {
                continue;
            } else if (color[child->id] == GREY) {
                /* The frames from child's up to the top are the cycle; the
                 * $ref is the one whose edge taken was its first. */
                const char *ref = "?";
                for (size_t f = at[child->id]; f < sp; f++)
                    if (stack[f].node->ref != NULL && stack[f].edge == 1)
                        ref = stack[f].node->ref_text;
                char msg[200], b[104];
                snprintf(msg, sizeof msg, "invalid schema: $ref \"%s\" loops back to itself "
                         "without descending into the instance", clipped(ref, 80, b, sizeof b));
                rc = refuse_plain(c, msg);
            } else {
                color[child->id] = GREY;
                at[child->id] = sp;
                stack[sp++] = (struct frame){child, 0};
            }
        }
    }
    free(color);
    free(at);
    free(stack);
    return rc;
}

/* ---- checking: state and errors ---------------------------------------------- */

enum { VALID = 0, INVALID = -1, FATAL = -2 };

typedef struct validator {
    pointer path;               /* of the value being checked */
    schema_error *err;
    long steps;                 /* left of SCHEMA_MAX_STEPS */
    long long match_steps;      /* left of SCHEMA_MAX_MATCH_STEPS */
    int frames;                 /* subschemas applied within one another */
    int depth;                  /* of the value in the instance */
} validator;

static void vrecord(validator *v, const char *fmt, va_list ap)
{
    if (v->err == NULL)
        return;
    memcpy(v->err->path, v->path.text, v->path.len + 1);
    if (vsnprintf(v->err->message, sizeof v->err->message, fmt, ap) >=
        (int)sizeof v->err->message)
        mark_cut(v->err->message, sizeof v->err->message);
}

static int fail(validator *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fatal(validator *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The check cannot go on (a limit, memory): FATAL passes through every
 * applicator unchanged, so it can never become a success. */
static int fatal(validator *v, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vrecord(v, fmt, ap);
    va_end(ap);
    return FATAL;
}

/* Takes n steps of the budget; FATAL when it is spent. Work that grows
 * with the size of a value (a string's bytes, an object's members) is
 * charged too, and so are messages, so that the budget bounds time and
 * not only visits. What is charged never depends on whether the caller
 * reads the message: err NULL or not, a check takes the same path. */
static int spend_n(validator *v, size_t n)
{
    if (n <= (size_t)v->steps) {
        v->steps -= (long)n;
        return VALID;
    }
    v->steps = -1;
    return fatal(v, "invalid schema: checking takes more than %d steps", SCHEMA_MAX_STEPS);
}

/* What formatting a message costs, in steps: many are formatted only to
 * be thrown away, by anyOf, oneOf and not. */
#define FAIL_STEPS 2

/* The value does not fit: records where and why; returns INVALID (or
 * FATAL when the budget cannot pay for the message). */
static int fail(validator *v, const char *fmt, ...)
{
    int rc = spend_n(v, FAIL_STEPS);
    if (rc != VALID)
        return rc;
    va_list ap;
    va_start(ap, fmt);
    vrecord(v, fmt, ap);
    va_end(ap);
    return INVALID;
}

static int spend(validator *v)
{
    return spend_n(v, 1);
}

/* Bytes of text cost a step per 64. */
static int spend_text(validator *v, size_t len)
{
    return spend_n(v, 1 + len / 64);
}

/* ---- checking: comparing values ------------------------------------------------ */

/* The member called name of obj, paying a step per member looked at. */
static const cJSON *find_member(validator *v, const cJSON *obj, const char *name, int *rc)
{
    *rc = VALID;
    for (const cJSON *m = obj->child; m != NULL; m = m->next) {
        if ((*rc = spend(v)) != VALID)
            return NULL;
        if (m->string != NULL && strcmp(m->string, name) == 0)
            return m;
    }
    return NULL;
}

/* Deep equality as JSON Schema defines it: numbers by value (1 == 1.0),
 * object members regardless of order. 1 equal, 0 not, FATAL. */
static int json_equal(validator *v, const cJSON *a, const cJSON *b, int depth)
{
    int rc;
    if ((rc = spend(v)) != VALID)
        return rc;
    if (depth > SCHEMA_MAX_DEPTH)
        return fatal(v, "is nested too deeply");
    if (cJSON_IsNumber(a) && cJSON_IsNumber(b))
        return a->valuedouble == b->valuedouble;
    if (cJSON_IsString(a) && cJSON_IsString(b)) {
        if ((rc = spend_text(v, strlen(a->valuestring))) != VALID)
            return rc;
        return strcmp(a->valuestring, b->valuestring) == 0;
    }
    if (cJSON_IsBool(a) && cJSON_IsBool(b))
        return cJSON_IsTrue(a) == cJSON_IsTrue(b);
    if (cJSON_IsNull(a) && cJSON_IsNull(b))
        return 1;
    if (cJSON_IsArray(a) && cJSON_IsArray(b)) {
        const cJSON *x = a->child, *y = b->child;
        for (; x != NULL && y != NULL; x = x->next, y = y->next)
            if ((rc = json_equal(v, x, y, depth + 1)) != 1)
                return rc;
        return x == NULL && y == NULL;
    }
    if (cJSON_IsObject(a) && cJSON_IsObject(b)) {
        const cJSON *x = a->child, *y = b->child;
        for (; x != NULL && y != NULL; x = x->next, y = y->next)
            ;
        if (x != NULL || y != NULL)
            return 0;   /* not as many members */
        for (x = a->child; x != NULL; x = x->next) {
            y = find_member(v, b, x->string != NULL ? x->string : "", &rc);
            if (y == NULL)
                return rc == VALID ? 0 : rc;
            if ((rc = json_equal(v, x, y, depth + 1)) != 1)
                return rc;
        }
        return 1;
    }
    return 0;
}

static uint64_t mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xFF51AFD7ED558CCDull;
    h ^= h >> 33;
    h *= 0xC4CEB9FE1A85EC53ull;
    return h ^ (h >> 33);
}

static uint64_t hash_text(const char *s)
{
    uint64_t h = 0xCBF29CE484222325ull;
    for (; *s != '\0'; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001B3ull;
    return h;
}

/* A hash that agrees with json_equal: equal values hash alike (numbers by
 * value, members in any order). FATAL in *rc when the budget ends. */
static uint64_t json_hash(validator *v, const cJSON *x, int depth, int *rc)
{
    if ((*rc = spend(v)) != VALID)
        return 0;
    if (depth > SCHEMA_MAX_DEPTH) {
        *rc = fatal(v, "is nested too deeply");
        return 0;
    }
    if (cJSON_IsNumber(x)) {
        double d = x->valuedouble == 0 ? 0.0 : x->valuedouble;   /* -0 == 0 */
        uint64_t bits;
        memcpy(&bits, &d, sizeof bits);
        return mix(bits ^ 1);
    }
    if (cJSON_IsString(x)) {
        if ((*rc = spend_text(v, strlen(x->valuestring))) != VALID)
            return 0;
        return mix(hash_text(x->valuestring) ^ 2);
    }
    if (cJSON_IsBool(x))
        return mix(cJSON_IsTrue(x) ? 3 : 4);
    uint64_t h = cJSON_IsArray(x) ? 5 : cJSON_IsObject(x) ? 6 : 7;
    for (const cJSON *e = x->child; e != NULL && (cJSON_IsArray(x) || cJSON_IsObject(x));
         e = e->next) {
        uint64_t eh = json_hash(v, e, depth + 1, rc);
        if (*rc != VALID)
            return 0;
        if (cJSON_IsArray(x))
            h = mix(h * 31 + eh);
        else
            h += mix(hash_text(e->string != NULL ? e->string : "") ^ eh);  /* order-free */
    }
    return mix(h);
}

/* ---- checking: messages -------------------------------------------------------- */

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

/* Appends s as a JSON string, escaped, as far as it fits. */
static void quoted_append(char *buf, size_t size, size_t *len, const char *s)
{
    char one[8];
    text_append(buf, size, len, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0' && *len < size; p++) {
        if (*p == '"' || *p == '\\')
            snprintf(one, sizeof one, "\\%c", *p);
        else if (*p < 0x20)
            snprintf(one, sizeof one, "\\u%04x", *p);
        else
            one[0] = (char)*p, one[1] = '\0';
        text_append(buf, size, len, one);
    }
    text_append(buf, size, len, "\"");
}

/*
 * Appends x to buf for a message, as JSON (a string at the top bare, as
 * "must be one of: a, b" shows it), only as far as the buffer goes, so a
 * large value costs no more than a small one. Each value printed is
 * charged, a fraction more (printing it exactly takes longer).
 */
static int value_append(validator *v, char *buf, size_t size, size_t *len, const cJSON *x,
                        int depth)
{
    char nb[40];
    int rc;
    if (*len >= size)
        return VALID;       /* full: the rest is "..." already */
    if (cJSON_IsNumber(x)) {
        if ((rc = spend_n(v, is_integer_value(x) ? 1 : 4)) != VALID)
            return rc;
        text_append(buf, size, len, format_number(x->valuedouble, nb, sizeof nb));
        return VALID;
    }
    if ((rc = spend(v)) != VALID)
        return rc;
    if (cJSON_IsString(x)) {
        if ((rc = spend_text(v, strlen(x->valuestring))) != VALID)
            return rc;
        if (depth == 0)
            text_append(buf, size, len, x->valuestring);
        else
            quoted_append(buf, size, len, x->valuestring);
        return VALID;
    }
    if (!cJSON_IsArray(x) && !cJSON_IsObject(x)) {
        text_append(buf, size, len, cJSON_IsTrue(x) ? "true" : cJSON_IsFalse(x) ? "false"
                                                                               : "null");
        return VALID;
    }
    if (depth >= SCHEMA_MAX_DEPTH) {
        text_append(buf, size, len, "...");
        return VALID;
    }
    bool object = cJSON_IsObject(x);
    text_append(buf, size, len, object ? "{" : "[");
    for (const cJSON *e = x->child; e != NULL && *len < size; e = e->next) {
        if (e != x->child)
            text_append(buf, size, len, ",");
        if (object) {
            quoted_append(buf, size, len, e->string != NULL ? e->string : "");
            text_append(buf, size, len, ":");
        }
        if ((rc = value_append(v, buf, size, len, e, depth + 1)) != VALID)
            return rc;
    }
    text_append(buf, size, len, object ? "}" : "]");
    return VALID;
}

/* ---- checking: the keywords ---------------------------------------------------- */

static int validate(validator *v, const snode *n, const cJSON *x);

static unsigned type_of(const cJSON *x)
{
    if (cJSON_IsNull(x))   return T_NULL;
    if (cJSON_IsBool(x))   return T_BOOLEAN;
    if (cJSON_IsObject(x)) return T_OBJECT;
    if (cJSON_IsArray(x))  return T_ARRAY;
    if (cJSON_IsString(x)) return T_STRING;
    if (cJSON_IsNumber(x)) return is_integer_value(x) ? T_NUMBER | T_INTEGER : T_NUMBER;
    return 0;
}

static int check_type(validator *v, const snode *n, const cJSON *x)
{
    if (n->types & type_of(x))
        return VALID;
    const cJSON *t = n->type_kw;
    if (cJSON_IsString(t))
        return fail(v, "must be %s", type_names[type_find(t->valuestring)].phrase);
    /* "must be a string, an integer or null", in the schema's order */
    char want[200];
    size_t len = 0;
    int count = cJSON_GetArraySize(t), i = 0;
    want[0] = '\0';
    for (t = t->child; t != NULL; t = t->next, i++) {
        if (i > 0)
            text_append(want, sizeof want, &len, i == count - 1 ? " or " : ", ");
        text_append(want, sizeof want, &len, type_names[type_find(t->valuestring)].phrase);
    }
    return fail(v, "must be %s", want);
}

static int check_const(validator *v, const cJSON *value, const cJSON *x)
{
    int rc = json_equal(v, value, x, 0);
    if (rc != 0)
        return rc == 1 ? VALID : rc;
    char text[200];
    size_t len = 0;
    text[0] = '\0';
    if ((rc = value_append(v, text, sizeof text, &len, value, 0)) != VALID)
        return rc;
    return fail(v, "must be %s", text);
}

static int check_enum(validator *v, const cJSON *values, const cJSON *x)
{
    for (const cJSON *e = values->child; e != NULL; e = e->next) {
        int rc = json_equal(v, e, x, 0);
        if (rc != 0)
            return rc == 1 ? VALID : rc;
    }
    char list[200];
    size_t len = 0;
    list[0] = '\0';
    for (const cJSON *e = values->child; e != NULL && len < sizeof list; e = e->next) {
        if (e != values->child)
            text_append(list, sizeof list, &len, ", ");
        int rc = value_append(v, list, sizeof list, &len, e, 0);
        if (rc != VALID)
            return rc;
    }
    return fail(v, "must be one of: %s", values->child != NULL ? list : "(no value)");
}

/* Whether x is a whole multiple of m. The quotient is tested with a
 * tolerance relative to its size: in binary 0.3 / 0.1 is 2.9999999999999996,
 * and 0.3 is a multiple of 0.1 to whoever wrote the schema. */
static bool is_multiple(double x, double m)
{
    double q = x / m;
    if (!isfinite(q))
        return false;
    return fabs(q - nearbyint(q)) <= 1e-12 * fmax(1.0, fabs(q));
}

static int check_number(validator *v, const snode *n, double x)
{
    char nb[40];
    if ((n->has & H_MINIMUM) && !(x >= n->minimum))
        return fail(v, "must be at least %s", format_number(n->minimum, nb, sizeof nb));
    if ((n->has & H_MAXIMUM) && !(x <= n->maximum))
        return fail(v, "must be at most %s", format_number(n->maximum, nb, sizeof nb));
    if ((n->has & H_XMIN) && !(x > n->xmin))
        return fail(v, "must be greater than %s", format_number(n->xmin, nb, sizeof nb));
    if ((n->has & H_XMAX) && !(x < n->xmax))
        return fail(v, "must be less than %s", format_number(n->xmax, nb, sizeof nb));
    if ((n->has & H_MULTIPLE) && !is_multiple(x, n->multiple))
        return fail(v, "must be a multiple of %s", format_number(n->multiple, nb, sizeof nb));
    return VALID;
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

/* Searches s for re: 1 found, 0 not, FATAL when the budget ran out. */
static int search(validator *v, const jsregex *re, const char *s)
{
    int rc = jsregex_search(re, s, strlen(s), &v->match_steps);
    if (rc >= 0)
        return rc;
    if (v->match_steps < 0)
        return fatal(v, "invalid schema: its patterns take more than %d steps to match",
                     SCHEMA_MAX_MATCH_STEPS);
    return fatal(v, "out of memory");
}

static int check_string(validator *v, const snode *n, const char *s)
{
    int rc;
    if (!(n->has & (H_MIN_LENGTH | H_MAX_LENGTH)) && n->pattern == NULL &&
        n->format == SCHEMA_FORMAT_NONE)
        return VALID;
    /* Lengths, the pattern's scan and the format's each read it once. */
    if ((rc = spend_text(v, strlen(s))) != VALID)
        return rc;
    if (n->has & (H_MIN_LENGTH | H_MAX_LENGTH)) {
        double len = utf8_length(s);
        if ((n->has & H_MIN_LENGTH) && len < n->min_length)
            return fail(v, "must be at least %.0f character%s", n->min_length,
                        n->min_length == 1 ? "" : "s");
        if ((n->has & H_MAX_LENGTH) && len > n->max_length)
            return fail(v, "must be at most %.0f character%s", n->max_length,
                        n->max_length == 1 ? "" : "s");
    }
    if (n->pattern != NULL) {
        rc = search(v, n->pattern, s);
        if (rc < 0)
            return rc;
        if (rc == 0) {
            char b[120];
            return fail(v, "must match the pattern %s", clipped(n->pattern_src, 100, b, sizeof b));
        }
    }
    if (n->format != SCHEMA_FORMAT_NONE && !schema_format_check(n->format, s))
        return fail(v, "must be %s", schema_format_phrase(n->format));
    return VALID;
}

/* Checks x as the member or item named token of the current value. */
static int validate_child(validator *v, const snode *n, const cJSON *x, const char *token)
{
    if (v->depth >= SCHEMA_MAX_DEPTH)
        return fatal(v, "is nested too deeply");
    size_t saved = ptr_push(&v->path, token);
    v->depth++;
    int rc = validate(v, n, x);
    v->depth--;
    ptr_pop(&v->path, saved);
    return rc;
}

static int validate_item(validator *v, const snode *n, const cJSON *x, size_t index)
{
    char token[24];
    snprintf(token, sizeof token, "%zu", index);
    return validate_child(v, n, x, token);
}

typedef struct hashed {
    uint64_t hash;
    size_t index;
    const cJSON *item;
} hashed;

static int hashed_cmp(const void *a, const void *b)
{
    const hashed *x = a, *y = b;
    if (x->hash != y->hash)
        return x->hash < y->hash ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* Among items of equal hash (sorted by index), the first equal pair. */
static int find_duplicate(validator *v, const hashed *run, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        for (size_t j = i + 1; j < n; j++) {
            int rc = json_equal(v, run[i].item, run[j].item, 0);
            if (rc == 1)
                return fail(v, "must not contain duplicates (items %zu and %zu are equal)",
                            run[i].index, run[j].index);
            if (rc != 0)
                return rc;
        }
    }
    return VALID;
}

/* uniqueItems: hashed and sorted, so only items of equal hash are
 * compared, in O(n log n) rather than every pair. */
static int check_unique(validator *v, const cJSON *array)
{
    size_t n = 0;
    for (const cJSON *e = array->child; e != NULL; e = e->next)
        n++;
    if (n < 2)
        return VALID;
    int rc = spend_n(v, n);     /* the sort */
    if (rc != VALID)
        return rc;
    hashed *h = malloc(n * sizeof *h);
    if (h == NULL)
        return fatal(v, "out of memory");
    size_t i = 0;
    for (const cJSON *e = array->child; e != NULL && rc == VALID; e = e->next, i++)
        h[i] = (hashed){json_hash(v, e, 0, &rc), i, e};
    if (rc == VALID)
        qsort(h, n, sizeof *h, hashed_cmp);
    for (size_t start = 0; start < n && rc == VALID;) {
        size_t end = start + 1;
        while (end < n && h[end].hash == h[start].hash)
            end++;
        if (end - start > 1)
            rc = find_duplicate(v, h + start, end - start);
        start = end;
    }
    free(h);
    return rc;
}

/* The members or items of x, a step each. */
static int count_children(validator *v, const cJSON *x, double *count)
{
    size_t n = 0;
    for (const cJSON *e = x->child; e != NULL; e = e->next)
        n++;
    *count = (double)n;
    return spend_n(v, n);
}

static int check_array(validator *v, const snode *n, const cJSON *x)
{
    double count;
    int rc;
    if (n->has & (H_MIN_ITEMS | H_MAX_ITEMS)) {
        if ((rc = count_children(v, x, &count)) != VALID)
            return rc;
        if ((n->has & H_MIN_ITEMS) && count < n->min_items)
            return fail(v, "must have at least %.0f item%s", n->min_items,
                        n->min_items == 1 ? "" : "s");
        if ((n->has & H_MAX_ITEMS) && count > n->max_items)
            return fail(v, "must have at most %.0f item%s", n->max_items,
                        n->max_items == 1 ? "" : "s");
    }
    if (n->unique && (rc = check_unique(v, x)) != VALID)
        return rc;
    size_t i = 0;
    const cJSON *e = x->child;
    for (; e != NULL && i < n->prefix.n; e = e->next, i++)
        if ((rc = validate_item(v, n->prefix.v[i], e, i)) != VALID)
            return rc;
    for (; e != NULL && n->items != NULL; e = e->next, i++)
        if ((rc = validate_item(v, n->items, e, i)) != VALID)
            return rc;
    return VALID;
}

/* 1 when obj has the member name, 0 when not, FATAL; a step per member
 * looked at. */
static int has_member(validator *v, const cJSON *obj, const char *name)
{
    int rc;
    const cJSON *m = find_member(v, obj, name, &rc);
    return rc != VALID ? rc : m != NULL;
}

/* Reports the member name as missing: "/name" "is required...". */
static int fail_missing(validator *v, const char *name, const char *because)
{
    char b[64];
    size_t saved = ptr_push(&v->path, name);
    if (because == NULL)
        fail(v, "is required");
    else
        fail(v, "is required when \"%s\" is present", clipped(because, 40, b, sizeof b));
    ptr_pop(&v->path, saved);
    return INVALID;
}

static int check_required(validator *v, const snode *n, const cJSON *x)
{
    int rc;
    for (const cJSON *r = n->required != NULL ? n->required->child : NULL; r; r = r->next)
        if ((rc = has_member(v, x, r->valuestring)) != 1)
            return rc == 0 ? fail_missing(v, r->valuestring, NULL) : rc;
    for (size_t i = 0; i < n->n_deps; i++) {
        if ((rc = has_member(v, x, n->deps[i].name)) != 1) {
            if (rc == 0)
                continue;
            return rc;
        }
        for (const cJSON *r = n->deps[i].names->child; r != NULL; r = r->next)
            if ((rc = has_member(v, x, r->valuestring)) != 1)
                return rc == 0 ? fail_missing(v, r->valuestring, n->deps[i].name) : rc;
    }
    return VALID;
}

/* propertyNames: the name, as a string value, against its schema; a
 * failure is reported at the member, its message starting "name ". */
static int check_name(validator *v, const snode *names, const char *name)
{
    cJSON key;
    memset(&key, 0, sizeof key);
    key.type = cJSON_String;
    key.valuestring = (char *)name;     /* read only: nothing frees or writes it */
    size_t saved = ptr_push(&v->path, name);
    int rc = validate(v, names, &key);
    if (rc == INVALID && v->err != NULL) {
        static const char prefix[] = "name ";
        char *msg = v->err->message;
        size_t len = strlen(msg), room = sizeof v->err->message - sizeof prefix;
        if (len > room) {
            len = utf8_clip(msg, room);
            msg[len] = '\0';
        }
        memmove(msg + sizeof prefix - 1, msg, len + 1);
        memcpy(msg, prefix, sizeof prefix - 1);
        memcpy(v->err->path, v->path.text, v->path.len + 1);
    }
    ptr_pop(&v->path, saved);
    return rc;
}

static const prop *find_prop(const snode *n, const char *name)
{
    prop key = {name, NULL};
    return n->n_props > 0 ? bsearch(&key, n->props, n->n_props, sizeof *n->props, prop_cmp)
                          : NULL;
}

/* properties, patternProperties and additionalProperties for one member. */
static int check_member(validator *v, const snode *n, const cJSON *m)
{
    const char *name = m->string != NULL ? m->string : "";
    bool matched = false;
    int rc;

    if (n->names != NULL && (rc = check_name(v, n->names, name)) != VALID)
        return rc;
    const prop *p = find_prop(n, name);
    if (p != NULL) {
        matched = true;
        if ((rc = validate_child(v, p->schema, m, name)) != VALID)
            return rc;
    }
    for (size_t i = 0; i < n->n_pprops; i++) {
        if ((rc = search(v, n->pprops[i].re, name)) < 0)
            return rc;
        if (rc == 0)
            continue;
        matched = true;
        if ((rc = validate_child(v, n->pprops[i].schema, m, name)) != VALID)
            return rc;
    }
    if (!matched && n->additional != NULL)
        return validate_child(v, n->additional, m, name);
    return VALID;
}

static int check_object(validator *v, const snode *n, const cJSON *x)
{
    int rc;
    if ((rc = check_required(v, n, x)) != VALID)
        return rc;
    if (n->has & (H_MIN_PROPS | H_MAX_PROPS)) {
        double count;
        if ((rc = count_children(v, x, &count)) != VALID)
            return rc;
        if ((n->has & H_MIN_PROPS) && count < n->min_props)
            return fail(v, "must have at least %.0f propert%s", n->min_props,
                        n->min_props == 1 ? "y" : "ies");
        if ((n->has & H_MAX_PROPS) && count > n->max_props)
            return fail(v, "must have at most %.0f propert%s", n->max_props,
                        n->max_props == 1 ? "y" : "ies");
    }
    if (n->names == NULL && n->n_props == 0 && n->n_pprops == 0 && n->additional == NULL)
        return VALID;
    for (const cJSON *m = x->child; m != NULL; m = m->next)
        if ((rc = spend(v)) != VALID || (rc = check_member(v, n, m)) != VALID)
            return rc;
    return VALID;
}

/* Adds "i: /where: why" for a failed alternative to buf, the path
 * relative to the value the alternatives are applied to. */
static void note_failure(validator *v, char *buf, size_t size, size_t *len, size_t i)
{
    if (v->err == NULL)
        return;
    char head[40];
    snprintf(head, sizeof head, "%s%zu: ", *len > 0 ? "; " : "", i);
    text_append(buf, size, len, head);
    const char *rel = strlen(v->err->path) > v->path.len ? v->err->path + v->path.len : "";
    if (*rel != '\0') {
        text_append(buf, size, len, rel);
        text_append(buf, size, len, ": ");
    }
    text_append(buf, size, len, v->err->message);
}

static int check_any_of(validator *v, const node_list *alts, const cJSON *x)
{
    char why[200];
    size_t len = 0;
    why[0] = '\0';
    for (size_t i = 0; i < alts->n; i++) {
        int rc = validate(v, alts->v[i], x);
        if (rc != INVALID)
            return rc;
        note_failure(v, why, sizeof why, &len, i);
    }
    return fail(v, "must match at least one of anyOf (%s)", why);
}

static int check_one_of(validator *v, const node_list *alts, const cJSON *x)
{
    char why[200];
    size_t len = 0, first = alts->n;
    why[0] = '\0';
    for (size_t i = 0; i < alts->n; i++) {
        int rc = validate(v, alts->v[i], x);
        if (rc == FATAL)
            return rc;
        if (rc == INVALID) {
            note_failure(v, why, sizeof why, &len, i);
        } else if (first == alts->n) {
            first = i;
        } else {
            return fail(v, "must match exactly one of oneOf, but matches %zu and %zu", first, i);
        }
    }
    if (first < alts->n)
        return VALID;
    return fail(v, "must match exactly one of oneOf (%s)", why);
}

/* $ref, allOf, anyOf, oneOf, not: subschemas applied to the same value. */
static int check_applicators(validator *v, const snode *n, const cJSON *x)
{
    int rc;
    if (n->ref != NULL) {
        if ((rc = spend(v)) != VALID || (rc = validate(v, n->ref, x)) != VALID)
            return rc;
    }
    for (size_t i = 0; i < n->all_of.n; i++)
        if ((rc = validate(v, n->all_of.v[i], x)) != VALID)
            return rc;
    if (n->any_of.n > 0 && (rc = check_any_of(v, &n->any_of, x)) != VALID)
        return rc;
    if (n->one_of.n > 0 && (rc = check_one_of(v, &n->one_of, x)) != VALID)
        return rc;
    if (n->not_schema != NULL) {
        rc = validate(v, n->not_schema, x);
        if (rc == FATAL)
            return rc;
        if (rc == VALID)
            return fail(v, "must not match the schema in \"not\"");
    }
    return VALID;
}

static int validate_object_node(validator *v, const snode *n, const cJSON *x)
{
    int rc = VALID;
    if (n->types != 0 && (rc = check_type(v, n, x)) != VALID)
        return rc;
    if (n->const_value != NULL && (rc = check_const(v, n->const_value, x)) != VALID)
        return rc;
    if (n->enum_values != NULL && (rc = check_enum(v, n->enum_values, x)) != VALID)
        return rc;
    if (cJSON_IsNumber(x))
        rc = check_number(v, n, x->valuedouble);
    else if (cJSON_IsString(x))
        rc = check_string(v, n, x->valuestring);
    else if (cJSON_IsArray(x))
        rc = check_array(v, n, x);
    else if (cJSON_IsObject(x))
        rc = check_object(v, n, x);
    if (rc != VALID)
        return rc;
    return check_applicators(v, n, x);
}

static int validate(validator *v, const snode *n, const cJSON *x)
{
    int rc;
    if ((rc = spend(v)) != VALID)
        return rc;
    if (n->verdict >= 0)    /* true accepts everything, false nothing */
        return n->verdict ? VALID : fail(v, "is not allowed");
    if (v->frames >= SCHEMA_MAX_FRAMES)
        return fatal(v, "invalid schema: subschemas apply within one another more than %d "
                     "deep", SCHEMA_MAX_FRAMES);
    v->frames++;
    rc = validate_object_node(v, n, x);
    v->frames--;
    return rc;
}

/* ---- the interface --------------------------------------------------------------- */

static void clear_error(schema_error *err)
{
    if (err != NULL) {
        err->path[0] = '\0';
        err->message[0] = '\0';
    }
}

static void compiler_done(compiler *c)
{
    free(c->nodes);
    free(c->memo);
    free(c->queue);
}

schema_compiled *schema_compile(const cJSON *root, schema_error *err)
{
    compiler c;
    memset(&c, 0, sizeof c);
    c.err = err;
    c.root = root;
    clear_error(err);
    if (root == NULL) {
        refuse_plain(&c, "invalid schema: none given");
        return NULL;
    }
    if ((c.s = calloc(1, sizeof *c.s)) == NULL) {
        refuse_plain(&c, "out of memory");
        return NULL;
    }
    c.yes = alloc(&c, sizeof *c.yes);
    c.no = alloc(&c, sizeof *c.no);
    if (c.yes != NULL && c.no != NULL) {
        *c.yes = (snode){.id = -1, .verdict = 1};
        *c.no = (snode){.id = -1, .verdict = 0};
        c.s->root = compile(&c, root);
    }
    if (!c.failed)
        drain_queue(&c);
    if (!c.failed)
        check_cycles(&c);
    compiler_done(&c);
    if (c.failed) {
        schema_free(c.s);
        return NULL;
    }
    return c.s;
}

void schema_free(schema_compiled *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n_regexes; i++)
        jsregex_free(s->regexes[i]);
    free(s->regexes);
    arena_free(s->arena);
    free(s);
}

int schema_check(const schema_compiled *s, const cJSON *instance, schema_error *err)
{
    validator v;
    memset(&v, 0, sizeof v);
    v.err = err;
    v.steps = SCHEMA_MAX_STEPS;
    v.match_steps = SCHEMA_MAX_MATCH_STEPS;
    clear_error(err);
    if (s == NULL) {
        fail(&v, "invalid schema: none given");
        return -1;
    }
    if (instance == NULL) {
        fail(&v, "is required");
        return -1;
    }
    int rc = validate(&v, s->root, instance);
    if (rc == VALID) {
        clear_error(err);   /* alternatives that failed on the way leave no trace */
        return 0;
    }
    return -1;
}

int schema_validate(const cJSON *schema, const cJSON *instance, schema_error *err)
{
    clear_error(err);
    if (schema != NULL && instance == NULL) {
        if (err != NULL)
            snprintf(err->message, sizeof err->message, "is required");
        return -1;
    }
    schema_compiled *s = schema_compile(schema, err);
    if (s == NULL)
        return -1;
    int rc = schema_check(s, instance, err);
    schema_free(s);
    return rc;
}
