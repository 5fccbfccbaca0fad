/*
 * jsregex.h - a bounded matcher for the regular expressions of JSON
 * Schema's "pattern" and "patternProperties" (ECMA-262 syntax, a subset).
 *
 * Supported: literals and escaped punctuation; "." (any code point but a
 * line terminator); classes [...] and [^...] with ranges; \d \D \w \W \s
 * \S; \t \n \v \f \r \0 \cX \xHH \uHHHH \u{H...}; anchors ^ $; \b \B;
 * groups (...), (?:...) and (?<name>...); alternation |; quantifiers
 * * + ? {n} {n,} {n,m}, greedy or lazy (the same for a yes/no answer).
 * Refused with a reason: lookaround, backreferences, Unicode property
 * escapes, inline flags, and anything else outside that list.
 *
 * Text is matched as Unicode code points (as with ECMA-262's "u" flag),
 * by simulating the compiled automaton over all its states at once: time
 * is at most the text's length times the program's size, with no
 * backtracking, and the caller's budget stops it sooner.
 */
#ifndef AG_JSREGEX_H
#define AG_JSREGEX_H

#include <stddef.h>

#define JSREGEX_MAX_SOURCE  8192    /* bytes of pattern text */
#define JSREGEX_MAX_PROGRAM 16384   /* instructions, counted repeats expanded */
#define JSREGEX_MAX_REPEAT  1000    /* largest n or m in {n,m} */
#define JSREGEX_MAX_NESTING 32      /* groups within groups */

typedef struct jsregex jsregex;

/*
 * Compiles pattern (NUL-terminated UTF-8). Returns the matcher, or NULL
 * with a one-line reason in err ("lookahead (?= is not supported").
 */
jsregex *jsregex_compile(const char *pattern, char *err, size_t err_size);

/*
 * Whether the pattern matches anywhere in the len bytes at s (unanchored,
 * as JSON Schema's "pattern" is). Each unit of work takes one from
 * *budget: an instruction visited, and the program's size for setting up
 * each search. Returns 1 for a match, 0 for none, -1 when the budget ran
 * out or memory did (the answer is then unknown). Safe to call from
 * several threads on the same matcher.
 */
int jsregex_search(const jsregex *re, const char *s, size_t len, long long *budget);

/* The number of instructions of the compiled program. */
size_t jsregex_size(const jsregex *re);

/* The steps compiling it took (syntax tree, emitting, instructions): what
 * a caller that compiles many patterns bounds in total. */
size_t jsregex_cost(const jsregex *re);

void jsregex_free(jsregex *re);

#endif
