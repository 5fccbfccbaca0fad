/*
 * jsregex.c - a bounded, backtracking-free matcher for JSON Schema
 * patterns (see jsregex.h for the syntax it takes).
 *
 * Compiling is two passes. A recursive-descent parser, its depth bounded
 * by the group nesting limit, builds a syntax tree; an emitter turns the
 * tree into a program of the kind Thompson described: CHAR, ANY and CLASS
 * consume one code point, SPLIT and JMP branch, the anchors test the
 * position, MATCH ends. A counted repeat {n,m} is emitted as n copies and
 * m-n optional ones, so the program's size, not the pattern's, is what
 * the limits bound.
 *
 * Matching runs the program as a Pike VM: the set of live instructions
 * is carried from one code point to the next, each instruction at most
 * once per position, so the work is at most (text length + 1) times the
 * program's size whatever the pattern; every instruction visited costs
 * one unit of the caller's budget, which ends hopeless searches sooner,
 * and so does clearing the sets (the program's size, once a search).
 * A new thread starts at every position, which makes the search
 * unanchored, as ECMA-262's RegExp.prototype.test is.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "jsregex.h"
#include "utf8.h"

#define NO_CP  0xFFFFFFFFu  /* the "code point" before the start and after the end */
#define MAX_CP 0x10FFFFu
/* Emitting costs at most this many steps, so that nested repeats of
 * something empty, which add no instructions, still end. */
#define MAX_EMIT_STEPS (8 * JSREGEX_MAX_PROGRAM)

enum op { OP_CHAR, OP_ANY, OP_CLASS, OP_BOL, OP_EOL, OP_WORDB, OP_NWORDB,
          OP_SPLIT, OP_JMP, OP_MATCH };

typedef struct inst {
    uint8_t op;
    int32_t x;      /* CHAR: code point; CLASS: class index; SPLIT, JMP: target */
    int32_t y;      /* SPLIT: the other target */
} inst;

typedef struct crange { uint32_t lo, hi; } crange;

typedef struct cclass {
    uint32_t first, count;  /* a slice of the ranges */
    bool negated;
} cclass;

struct jsregex {
    inst *prog;
    size_t n;
    size_t cost;            /* steps compiling took */
    crange *ranges;
    size_t n_ranges;
    cclass *classes;
    size_t n_classes;
};

/* ---- the syntax tree ------------------------------------------------------ */

enum nkind { N_CHAR, N_ANY, N_CLASS, N_ASSERT, N_CAT, N_ALT, N_REPEAT };

typedef struct rnode {
    uint8_t kind;
    int32_t value;      /* N_CHAR: code point; N_CLASS: class; N_ASSERT: an OP_ */
    int32_t min, max;   /* N_REPEAT; max -1 for no upper bound */
    int32_t child;      /* N_CAT, N_ALT: first child; N_REPEAT: what repeats */
    int32_t last;       /* N_CAT, N_ALT: last child, to append in O(1) */
    int32_t next;       /* the next sibling, -1 at the end */
} rnode;

typedef struct parser {
    const unsigned char *p, *end;
    rnode *nodes;
    size_t n_nodes, cap_nodes;
    crange *ranges;
    size_t n_ranges, cap_ranges;
    cclass *classes;
    size_t n_classes, cap_classes;
    int nesting;
    char *err;
    size_t err_size;
    bool failed;
} parser;

static int perr(parser *ps, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Records the first error only: later ones are its consequences. */
static int perr(parser *ps, const char *fmt, ...)
{
    if (!ps->failed && ps->err != NULL && ps->err_size > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ps->err, ps->err_size, fmt, ap);
        va_end(ap);
    }
    ps->failed = true;
    return -1;
}

static int new_node(parser *ps, enum nkind kind, int32_t value)
{
    if (array_grow((void **)&ps->nodes, &ps->cap_nodes, ps->n_nodes, sizeof *ps->nodes) != 0)
        return perr(ps, "out of memory");
    rnode *nd = &ps->nodes[ps->n_nodes];
    memset(nd, 0, sizeof *nd);
    nd->kind = (uint8_t)kind;
    nd->value = value;
    nd->child = nd->last = nd->next = -1;
    return (int)ps->n_nodes++;
}

static void append_child(parser *ps, int parent, int child)
{
    rnode *p = &ps->nodes[parent];
    if (p->child < 0)
        p->child = child;
    else
        ps->nodes[p->last].next = child;
    p->last = child;
}

static int add_range(parser *ps, uint32_t lo, uint32_t hi)
{
    if (array_grow((void **)&ps->ranges, &ps->cap_ranges, ps->n_ranges, sizeof *ps->ranges) != 0)
        return perr(ps, "out of memory");
    ps->ranges[ps->n_ranges++] = (crange){lo, hi};
    return 0;
}

/* Starts a class whose ranges are the ones added next; returns its index. */
static int new_class(parser *ps, bool negated)
{
    if (array_grow((void **)&ps->classes, &ps->cap_classes, ps->n_classes, sizeof *ps->classes) != 0)
        return perr(ps, "out of memory");
    ps->classes[ps->n_classes] = (cclass){(uint32_t)ps->n_ranges, 0, negated};
    return (int)ps->n_classes++;
}

static void end_class(parser *ps, int cls)
{
    ps->classes[cls].count = (uint32_t)ps->n_ranges - ps->classes[cls].first;
}

/* ---- the shorthand classes, as ECMA-262 defines them ------------------------ */

static const crange digit_ranges[] = {{'0', '9'}};
static const crange word_ranges[] = {{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}};
static const crange space_ranges[] = {
    {0x09, 0x0D}, {0x20, 0x20}, {0xA0, 0xA0}, {0x1680, 0x1680}, {0x2000, 0x200A},
    {0x2028, 0x2029}, {0x202F, 0x202F}, {0x205F, 0x205F}, {0x3000, 0x3000},
    {0xFEFF, 0xFEFF},
};

/* Adds the ranges of \d \w \s, or of their complements \D \W \S (the
 * tables are sorted, so the gaps between them are the complement). */
static int add_shorthand(parser *ps, char which)
{
    const crange *r;
    size_t n;
    switch (which | 0x20) {
    case 'd': r = digit_ranges; n = sizeof digit_ranges / sizeof *r; break;
    case 'w': r = word_ranges;  n = sizeof word_ranges / sizeof *r;  break;
    default:  r = space_ranges; n = sizeof space_ranges / sizeof *r; break;
    }
    if (which >= 'a') {
        for (size_t i = 0; i < n; i++)
            if (add_range(ps, r[i].lo, r[i].hi) != 0)
                return -1;
        return 0;
    }
    uint32_t from = 0;
    for (size_t i = 0; i < n; i++) {
        if (r[i].lo > from && add_range(ps, from, r[i].lo - 1) != 0)
            return -1;
        from = r[i].hi + 1;
    }
    return add_range(ps, from, MAX_CP);
}

/* ---- reading the pattern ---------------------------------------------------- */

static bool at_end(const parser *ps)
{
    return ps->p >= ps->end;
}

/* Reads one code point of the pattern; the pattern must be valid UTF-8. */
static int read_cp(parser *ps, uint32_t *cp)
{
    size_t n = utf8_sequence_len(ps->p, (size_t)(ps->end - ps->p));
    if (n == 0)
        return perr(ps, "the pattern is not valid UTF-8");
    uint32_t c = ps->p[0];
    if (n > 1) {
        c &= 0xFFu >> (n + 1);
        for (size_t i = 1; i < n; i++)
            c = (c << 6) | (ps->p[i] & 0x3F);
    }
    ps->p += n;
    *cp = c;
    return 0;
}

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Reads exactly n hex digits; -1 when they are not there. */
static long read_hex(parser *ps, int n)
{
    long v = 0;
    for (int i = 0; i < n; i++) {
        if (at_end(ps) || hex_value(*ps->p) < 0)
            return -1;
        v = v * 16 + hex_value(*ps->p++);
    }
    return v;
}

/* \uHHHH, \u{H...}, and a surrogate pair written as two \uHHHH. */
static int read_unicode_escape(parser *ps, uint32_t *cp)
{
    if (!at_end(ps) && *ps->p == '{') {
        long v = 0;
        int digits = 0;
        ps->p++;
        while (!at_end(ps) && hex_value(*ps->p) >= 0 && v <= (long)MAX_CP) {
            v = v * 16 + hex_value(*ps->p++);
            digits++;
        }
        if (digits == 0 || v > (long)MAX_CP || at_end(ps) || *ps->p != '}')
            return perr(ps, "\\u{...} needs hex digits up to 10FFFF");
        ps->p++;
        *cp = (uint32_t)v;
        return 0;
    }
    long v = read_hex(ps, 4);
    if (v < 0)
        return perr(ps, "\\u needs four hex digits");
    if (v >= 0xD800 && v <= 0xDBFF && ps->end - ps->p >= 6 && ps->p[0] == '\\' &&
        ps->p[1] == 'u') {
        const unsigned char *save = ps->p;
        ps->p += 2;
        long lo = read_hex(ps, 4);
        if (lo >= 0xDC00 && lo <= 0xDFFF) {
            *cp = (uint32_t)(0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00));
            return 0;
        }
        ps->p = save;
    }
    *cp = (uint32_t)v;
    return 0;
}

typedef enum { ESC_CP, ESC_SHORTHAND, ESC_ASSERT } esc_kind;

typedef struct esc {
    esc_kind kind;
    uint32_t cp;        /* ESC_CP */
    char shorthand;     /* ESC_SHORTHAND: d D w W s S */
    int op;             /* ESC_ASSERT: OP_WORDB or OP_NWORDB */
} esc;

/* Reads what follows a backslash (already consumed). */
static int read_escape(parser *ps, bool in_class, esc *e)
{
    uint32_t c;
    if (at_end(ps))
        return perr(ps, "the pattern ends with a backslash");
    if (read_cp(ps, &c) != 0)
        return -1;
    e->kind = ESC_CP;
    switch (c) {
    case 'd': case 'D': case 'w': case 'W': case 's': case 'S':
        e->kind = ESC_SHORTHAND;
        e->shorthand = (char)c;
        return 0;
    case 'b':
        if (in_class) {
            e->cp = 0x08;       /* [\b] is backspace */
            return 0;
        }
        e->kind = ESC_ASSERT;
        e->op = OP_WORDB;
        return 0;
    case 'B':
        if (in_class)
            return perr(ps, "\\B cannot stand in a class");
        e->kind = ESC_ASSERT;
        e->op = OP_NWORDB;
        return 0;
    case 't': e->cp = 0x09; return 0;
    case 'n': e->cp = 0x0A; return 0;
    case 'v': e->cp = 0x0B; return 0;
    case 'f': e->cp = 0x0C; return 0;
    case 'r': e->cp = 0x0D; return 0;
    case '0':
        if (!at_end(ps) && *ps->p >= '0' && *ps->p <= '9')
            return perr(ps, "octal escapes are not supported");
        e->cp = 0;
        return 0;
    case 'x': {
        long v = read_hex(ps, 2);
        if (v < 0)
            return perr(ps, "\\x needs two hex digits");
        e->cp = (uint32_t)v;
        return 0;
    }
    case 'u':
        return read_unicode_escape(ps, &e->cp);
    case 'c':
        if (at_end(ps) || !((*ps->p | 0x20) >= 'a' && (*ps->p | 0x20) <= 'z'))
            return perr(ps, "\\c needs a letter");
        e->cp = (uint32_t)(*ps->p++ % 32);
        return 0;
    case 'k':
        return perr(ps, "named backreferences (\\k) are not supported");
    case 'p': case 'P':
        return perr(ps, "Unicode property escapes (\\%c{...}) are not supported", (char)c);
    default:
        break;
    }
    if (c >= '1' && c <= '9')
        return perr(ps, "backreferences (\\%c) are not supported", (char)c);
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return perr(ps, "unknown escape \\%c", (char)c);
    e->cp = c;          /* \. \/ \- \\ ...: the character itself */
    return 0;
}

/* One member of a class: a code point, or a shorthand (*shorthand set). */
static int read_class_atom(parser *ps, uint32_t *cp, char *shorthand)
{
    *shorthand = 0;
    if (*ps->p != '\\')
        return read_cp(ps, cp);
    ps->p++;
    esc e;
    if (read_escape(ps, true, &e) != 0)
        return -1;
    if (e.kind == ESC_SHORTHAND)
        *shorthand = e.shorthand;
    *cp = e.cp;
    return 0;
}

/* [...] or [^...], the '[' consumed. */
static int parse_class(parser *ps)
{
    bool negated = !at_end(ps) && *ps->p == '^';
    if (negated)
        ps->p++;
    int cls = new_class(ps, negated);
    if (cls < 0)
        return -1;
    for (;;) {
        if (at_end(ps))
            return perr(ps, "a class is missing its ]");
        if (*ps->p == ']') {
            ps->p++;
            break;
        }
        uint32_t lo, hi;
        char sh;
        if (read_class_atom(ps, &lo, &sh) != 0)
            return -1;
        bool range = ps->end - ps->p >= 2 && ps->p[0] == '-' && ps->p[1] != ']';
        if (sh != 0) {
            if (range)
                return perr(ps, "a class range cannot start at \\%c", sh);
            if (add_shorthand(ps, sh) != 0)
                return -1;
            continue;
        }
        hi = lo;
        if (range) {
            ps->p++;
            if (read_class_atom(ps, &hi, &sh) != 0)
                return -1;
            if (sh != 0)
                return perr(ps, "a class range cannot end at \\%c", sh);
            if (hi < lo)
                return perr(ps, "a class range is out of order");
        }
        if (add_range(ps, lo, hi) != 0)
            return -1;
    }
    end_class(ps, cls);
    return new_node(ps, N_CLASS, cls);
}

/* Reads a decimal repeat count, saturating above the limit. */
static long read_count(const unsigned char **p, const unsigned char *end)
{
    long v = 0;
    while (*p < end && **p >= '0' && **p <= '9') {
        if (v <= JSREGEX_MAX_REPEAT)
            v = v * 10 + (**p - '0');
        (*p)++;
    }
    return v;
}

/*
 * Reads a quantifier at the current position into *min and *max (-1 for
 * none). Returns 1 when there is one, 0 when not (a '{' that does not
 * open {n}, {n,} or {n,m} is a literal, as ECMA-262's Annex B has it),
 * -1 on error. With consume false it only looks.
 */
static int read_quantifier(parser *ps, long *min, long *max, bool consume)
{
    const unsigned char *p = ps->p;
    if (p >= ps->end)
        return 0;
    if (*p == '*' || *p == '+' || *p == '?') {
        *min = *p == '+' ? 1 : 0;
        *max = *p == '?' ? 1 : -1;
        if (consume)
            ps->p = p + 1;
        return 1;
    }
    if (*p != '{' || p + 1 >= ps->end || p[1] < '0' || p[1] > '9')
        return 0;
    p++;
    *min = read_count(&p, ps->end);
    *max = *min;
    if (p < ps->end && *p == ',') {
        p++;
        *max = p < ps->end && *p >= '0' && *p <= '9' ? read_count(&p, ps->end) : -1;
    }
    if (p >= ps->end || *p != '}')
        return 0;
    if (!consume)
        return 1;
    ps->p = p + 1;
    if (*min > JSREGEX_MAX_REPEAT || *max > JSREGEX_MAX_REPEAT)
        return perr(ps, "a repeat count is above %d", JSREGEX_MAX_REPEAT);
    if (*max >= 0 && *max < *min)
        return perr(ps, "a repeat {n,m} has m below n");
    return 1;
}

static int parse_alt(parser *ps);

/* (...), (?:...) or (?<name>...), the '(' consumed. */
static int parse_group(parser *ps)
{
    if (++ps->nesting > JSREGEX_MAX_NESTING)
        return perr(ps, "groups nest deeper than %d", JSREGEX_MAX_NESTING);
    if (!at_end(ps) && *ps->p == '?') {
        const unsigned char *q = ps->p + 1;
        if (q < ps->end && *q == ':') {
            ps->p += 2;
        } else if (q < ps->end && (*q == '=' || *q == '!')) {
            return perr(ps, "lookahead (?%c is not supported", *q);
        } else if (q < ps->end && *q == '<' && q + 1 < ps->end && (q[1] == '=' || q[1] == '!')) {
            return perr(ps, "lookbehind (?<%c is not supported", q[1]);
        } else if (q < ps->end && *q == '<') {
            /* A named group: the name only matters to captures, which a
             * yes/no match does not report. */
            const unsigned char *name = ++q;
            while (q < ps->end && (*q == '_' || *q == '$' || (*q >= '0' && *q <= '9') ||
                                   ((*q | 0x20) >= 'a' && (*q | 0x20) <= 'z')))
                q++;
            if (q == name || q >= ps->end || *q != '>')
                return perr(ps, "a group name must be letters, digits, _ or $ closed by >");
            ps->p = q + 1;
        } else {
            return perr(ps, "inline flags and other (? groups are not supported");
        }
    }
    int inner = parse_alt(ps);
    if (inner < 0)
        return -1;
    if (at_end(ps) || *ps->p != ')')
        return perr(ps, "a group is missing its )");
    ps->p++;
    ps->nesting--;
    return inner;
}

static int parse_atom(parser *ps)
{
    long min, max;
    unsigned char c = *ps->p;
    switch (c) {
    case '(':
        ps->p++;
        return parse_group(ps);
    case '[':
        ps->p++;
        return parse_class(ps);
    case '.':
        ps->p++;
        return new_node(ps, N_ANY, 0);
    case '^':
        ps->p++;
        return new_node(ps, N_ASSERT, OP_BOL);
    case '$':
        ps->p++;
        return new_node(ps, N_ASSERT, OP_EOL);
    case '*': case '+': case '?':
        return perr(ps, "%c has nothing to repeat", c);
    case '{':
        if (read_quantifier(ps, &min, &max, false) > 0)
            return perr(ps, "{ has nothing to repeat");
        ps->p++;
        return new_node(ps, N_CHAR, '{');
    case '\\': {
        esc e;
        ps->p++;
        if (read_escape(ps, false, &e) != 0)
            return -1;
        if (e.kind == ESC_ASSERT)
            return new_node(ps, N_ASSERT, e.op);
        if (e.kind == ESC_CP)
            return new_node(ps, N_CHAR, (int32_t)e.cp);
        int cls = new_class(ps, false);
        if (cls < 0 || add_shorthand(ps, e.shorthand) != 0)
            return -1;
        end_class(ps, cls);
        return new_node(ps, N_CLASS, cls);
    }
    default: {
        uint32_t cp;
        if (read_cp(ps, &cp) != 0)
            return -1;
        return new_node(ps, N_CHAR, (int32_t)cp);
    }
    }
}

/* An atom and its quantifier, if any. */
static int parse_repeat(parser *ps)
{
    long min, max;
    int atom = parse_atom(ps);
    if (atom < 0)
        return -1;
    int q = read_quantifier(ps, &min, &max, true);
    if (q <= 0)
        return q < 0 ? -1 : atom;
    if (ps->nodes[atom].kind == N_ASSERT)
        return perr(ps, "an anchor or \\b cannot be repeated");
    if (!at_end(ps) && *ps->p == '?')
        ps->p++;        /* lazy: the same yes/no answer as greedy */
    long min2, max2;
    if (read_quantifier(ps, &min2, &max2, false) > 0)
        return perr(ps, "a quantifier has nothing to repeat");
    int rep = new_node(ps, N_REPEAT, 0);
    if (rep < 0)
        return -1;
    ps->nodes[rep].child = atom;
    ps->nodes[rep].min = (int32_t)min;
    ps->nodes[rep].max = (int32_t)max;
    return rep;
}

static int parse_cat(parser *ps)
{
    int cat = new_node(ps, N_CAT, 0);
    if (cat < 0)
        return -1;
    while (!at_end(ps) && *ps->p != '|' && *ps->p != ')') {
        int item = parse_repeat(ps);
        if (item < 0)
            return -1;
        append_child(ps, cat, item);
    }
    return cat;
}

static int parse_alt(parser *ps)
{
    int first = parse_cat(ps), alt = -1;
    if (first < 0)
        return -1;
    while (!at_end(ps) && *ps->p == '|') {
        ps->p++;
        if (alt < 0) {
            if ((alt = new_node(ps, N_ALT, 0)) < 0)
                return -1;
            append_child(ps, alt, first);
        }
        int next = parse_cat(ps);
        if (next < 0)
            return -1;
        append_child(ps, alt, next);
    }
    return alt >= 0 ? alt : first;
}

/* ---- emitting the program ------------------------------------------------- */

typedef struct emitter {
    jsregex *re;
    size_t cap;
    const rnode *nodes;
    long steps;
    parser *ps;         /* for errors */
} emitter;

static int emit_inst(emitter *e, enum op op, int32_t x, int32_t y)
{
    if (e->ps->failed)
        return -1;
    if (e->re->n >= JSREGEX_MAX_PROGRAM)
        return perr(e->ps, "the pattern is too large once its repeats are expanded "
                    "(more than %d steps)", JSREGEX_MAX_PROGRAM);
    if (array_grow((void **)&e->re->prog, &e->cap, e->re->n, sizeof *e->re->prog) != 0)
        return perr(e->ps, "out of memory");
    e->re->prog[e->re->n] = (inst){(uint8_t)op, x, y};
    return (int)e->re->n++;
}

static void emit(emitter *e, int idx);

/* a|b|c: SPLIT to each alternative in turn, each JMPing to the end. The
 * JMPs wait for the end's address chained through their x. */
static void emit_alt(emitter *e, const rnode *nd)
{
    int32_t holes = -1;
    for (int c = nd->child; c >= 0 && !e->ps->failed; c = e->nodes[c].next) {
        if (e->nodes[c].next < 0) {
            emit(e, c);
            break;
        }
        int split = emit_inst(e, OP_SPLIT, 0, 0);
        if (split < 0)
            return;
        e->re->prog[split].x = split + 1;
        emit(e, c);
        int jmp = emit_inst(e, OP_JMP, holes, 0);
        if (jmp < 0)
            return;
        holes = jmp;
        e->re->prog[split].y = (int32_t)e->re->n;
    }
    while (!e->ps->failed && holes >= 0) {
        int32_t next = e->re->prog[holes].x;
        e->re->prog[holes].x = (int32_t)e->re->n;
        holes = next;
    }
}

/* x{min,max}: min copies of x, then a loop (no upper bound) or max-min
 * optional copies whose SPLITs all skip to the end (chained through y). */
static void emit_repeat(emitter *e, const rnode *nd)
{
    for (int i = 0; i < nd->min && !e->ps->failed; i++)
        emit(e, nd->child);
    if (nd->max < 0) {
        int loop = emit_inst(e, OP_SPLIT, 0, 0);
        if (loop < 0)
            return;
        e->re->prog[loop].x = loop + 1;
        emit(e, nd->child);
        if (emit_inst(e, OP_JMP, loop, 0) < 0)
            return;
        e->re->prog[loop].y = (int32_t)e->re->n;
        return;
    }
    int32_t holes = -1;
    for (int i = nd->min; i < nd->max && !e->ps->failed; i++) {
        int split = emit_inst(e, OP_SPLIT, 0, holes);
        if (split < 0)
            return;
        e->re->prog[split].x = split + 1;
        holes = split;
        emit(e, nd->child);
    }
    while (!e->ps->failed && holes >= 0) {
        int32_t next = e->re->prog[holes].y;
        e->re->prog[holes].y = (int32_t)e->re->n;
        holes = next;
    }
}

static void emit(emitter *e, int idx)
{
    if (e->ps->failed)
        return;
    if (++e->steps > MAX_EMIT_STEPS) {
        perr(e->ps, "the pattern is too large once its repeats are expanded");
        return;
    }
    const rnode *nd = &e->nodes[idx];
    switch (nd->kind) {
    case N_CHAR:   emit_inst(e, OP_CHAR, nd->value, 0); break;
    case N_ANY:    emit_inst(e, OP_ANY, 0, 0); break;
    case N_CLASS:  emit_inst(e, OP_CLASS, nd->value, 0); break;
    case N_ASSERT: emit_inst(e, (enum op)nd->value, 0, 0); break;
    case N_CAT:
        for (int c = nd->child; c >= 0 && !e->ps->failed; c = e->nodes[c].next)
            emit(e, c);
        break;
    case N_ALT:    emit_alt(e, nd); break;
    case N_REPEAT: emit_repeat(e, nd); break;
    }
}

jsregex *jsregex_compile(const char *pattern, char *err, size_t err_size)
{
    parser ps;
    memset(&ps, 0, sizeof ps);
    ps.err = err;
    ps.err_size = err_size;
    if (err != NULL && err_size > 0)
        err[0] = '\0';

    size_t len = pattern != NULL ? strlen(pattern) : 0;
    jsregex *re = calloc(1, sizeof *re);
    if (pattern == NULL || re == NULL) {
        perr(&ps, pattern == NULL ? "no pattern" : "out of memory");
        free(re);
        return NULL;
    }
    if (len > JSREGEX_MAX_SOURCE) {
        perr(&ps, "the pattern is longer than %d bytes", JSREGEX_MAX_SOURCE);
        free(re);
        return NULL;
    }
    ps.p = (const unsigned char *)pattern;
    ps.end = ps.p + len;

    int top = parse_alt(&ps);
    if (top >= 0 && !at_end(&ps))
        perr(&ps, "a ) has no matching (");
    if (!ps.failed) {
        emitter e = {re, 0, ps.nodes, 0, &ps};
        emit(&e, top);
        emit_inst(&e, OP_MATCH, 0, 0);
        re->cost = ps.n_nodes + (size_t)e.steps + re->n;
    }
    free(ps.nodes);
    re->ranges = ps.ranges;
    re->n_ranges = ps.n_ranges;
    re->classes = ps.classes;
    re->n_classes = ps.n_classes;
    if (ps.failed) {
        jsregex_free(re);
        return NULL;
    }
    return re;
}

size_t jsregex_size(const jsregex *re)
{
    return re != NULL ? re->n : 0;
}

size_t jsregex_cost(const jsregex *re)
{
    return re != NULL ? re->cost : 0;
}

void jsregex_free(jsregex *re)
{
    if (re == NULL)
        return;
    free(re->prog);
    free(re->ranges);
    free(re->classes);
    free(re);
}

/* ---- matching ------------------------------------------------------------- */

/* A set of instruction indexes, cleared in O(1) (Briggs and Torczon). */
typedef struct tset {
    int *dense, *sparse;
    size_t size;
} tset;

static bool tset_has(const tset *t, int pc)
{
    size_t i = (size_t)t->sparse[pc];
    return i < t->size && t->dense[i] == pc;
}

static void tset_add(tset *t, int pc)
{
    t->sparse[pc] = (int)t->size;
    t->dense[t->size++] = pc;
}

/* Where in the text a thread stands: the code points either side. */
typedef struct place {
    uint32_t before, after;     /* NO_CP at the start and the end */
} place;

static bool is_word(uint32_t c)
{
    return c < 128 &&
           (c == '_' || (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z'));
}

static bool is_line_terminator(uint32_t c)
{
    return c == 0x0A || c == 0x0D || c == 0x2028 || c == 0x2029;
}

static bool assertion_holds(enum op op, const place *at)
{
    switch (op) {
    case OP_BOL:    return at->before == NO_CP;
    case OP_EOL:    return at->after == NO_CP;
    case OP_WORDB:  return is_word(at->before) != is_word(at->after);
    default:        return is_word(at->before) == is_word(at->after);
    }
}

/*
 * Adds pc to t and, through branches and the anchors that hold at, every
 * instruction reachable from it without consuming text. stack has room
 * for the whole program: each instruction enters t, and the stack, once.
 * Returns 1 when MATCH is reached, -1 when the budget ran out, else 0.
 */
static int add_thread(const jsregex *re, tset *t, int *stack, int pc, const place *at,
                      long long *budget)
{
    size_t sp = 0;
    if (tset_has(t, pc))
        return 0;
    tset_add(t, pc);
    stack[sp++] = pc;
    while (sp > 0) {
        if (--*budget < 0)
            return -1;
        int cur = stack[--sp];
        const inst *in = &re->prog[cur];
        int next[2], nn = 0;
        switch ((enum op)in->op) {
        case OP_MATCH:
            return 1;
        case OP_JMP:
            next[nn++] = in->x;
            break;
        case OP_SPLIT:
            next[nn++] = in->x;
            next[nn++] = in->y;
            break;
        case OP_BOL: case OP_EOL: case OP_WORDB: case OP_NWORDB:
            if (assertion_holds((enum op)in->op, at))
                next[nn++] = cur + 1;
            break;
        default:
            break;      /* consumes text: waits in t for the next code point */
        }
        for (int k = 0; k < nn; k++) {
            if (!tset_has(t, next[k])) {
                tset_add(t, next[k]);
                stack[sp++] = next[k];
            }
        }
    }
    return 0;
}

static bool class_has(const jsregex *re, int32_t idx, uint32_t c)
{
    const cclass *cl = &re->classes[idx];
    bool in = false;
    for (uint32_t i = 0; i < cl->count && !in; i++) {
        const crange *r = &re->ranges[cl->first + i];
        in = c >= r->lo && c <= r->hi;
    }
    return in != cl->negated;
}

static bool consumes(const jsregex *re, const inst *in, uint32_t c)
{
    if (c == NO_CP)
        return false;
    switch ((enum op)in->op) {
    case OP_CHAR:  return (uint32_t)in->x == c;
    case OP_ANY:   return !is_line_terminator(c);
    case OP_CLASS: return class_has(re, in->x, c);
    default:       return false;
    }
}

/* The code point at s[pos] and its length in *adv; a byte that does not
 * start valid UTF-8 stands for itself (and matches only what it equals). */
static uint32_t decode_at(const unsigned char *s, size_t len, size_t pos, size_t *adv)
{
    if (pos >= len) {
        *adv = 0;
        return NO_CP;
    }
    size_t n = utf8_sequence_len(s + pos, len - pos);
    if (n <= 1) {
        *adv = 1;
        return s[pos];
    }
    uint32_t c = s[pos] & (0xFFu >> (n + 1));
    for (size_t i = 1; i < n; i++)
        c = (c << 6) | (s[pos + i] & 0x3F);
    *adv = n;
    return c;
}

/* Runs the program over the text with the two sets and stack in mem. */
static int run(const jsregex *re, const unsigned char *s, size_t len, int *mem,
               long long *budget)
{
    size_t n = re->n;
    tset a = {mem, mem + n, 0}, b = {mem + 2 * n, mem + 3 * n, 0};
    tset *now = &a, *next = &b;
    int *stack = mem + 4 * n;
    /* A program that starts with ^ can only begin at the start. */
    bool anchored = re->prog[0].op == OP_BOL;
    size_t pos = 0, adv, nadv;
    uint32_t before = NO_CP, cur = decode_at(s, len, 0, &adv);

    for (;;) {
        place here = {before, cur};
        if (pos == 0 || !anchored) {
            int rc = add_thread(re, now, stack, 0, &here, budget);
            if (rc != 0)
                return rc;
        }
        if (pos == len || (anchored && now->size == 0))
            return 0;
        size_t npos = pos + adv;
        uint32_t after = decode_at(s, len, npos, &nadv);
        place there = {cur, after};
        next->size = 0;
        for (size_t k = 0; k < now->size; k++) {
            if (--*budget < 0)
                return -1;
            int pc = now->dense[k];
            if (consumes(re, &re->prog[pc], cur)) {
                int rc = add_thread(re, next, stack, pc + 1, &there, budget);
                if (rc != 0)
                    return rc;
            }
        }
        tset *t = now;
        now = next;
        next = t;
        before = cur;
        cur = after;
        pos = npos;
        adv = nadv;
    }
}

int jsregex_search(const jsregex *re, const char *s, size_t len, long long *budget)
{
    enum { SMALL = 64 };
    int small[5 * SMALL];
    if (re == NULL || s == NULL || budget == NULL || *budget < 0)
        return -1;
    size_t n = re->n;
    /* Clearing the sets below costs the program's size, every search. */
    *budget -= (long long)n;
    if (*budget < 0)
        return -1;
    int *mem = n <= SMALL ? small : malloc(5 * n * sizeof *mem);
    if (mem == NULL)
        return -1;
    /* The sparse halves are read before they are written (that is how the
     * set works), so they start zeroed for the tools that check. */
    memset(mem, 0, 5 * n * sizeof *mem);
    int rc = run(re, (const unsigned char *)s, len, mem, budget);
    if (mem != small)
        free(mem);
    return rc;
}
