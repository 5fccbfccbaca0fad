/*
 * jsonutil.h - bounded JSON parsing and small cJSON helpers.
 *
 * Every JSON document from outside (HTTP bodies, Redis payloads, LLM
 * replies) goes through json_parse_bounded, which refuses oversize input
 * and nesting deeper than a limit before cJSON builds anything.
 */
#ifndef AG_JSONUTIL_H
#define AG_JSONUTIL_H

#include <stddef.h>
#include <stdbool.h>
#include <cjson/cJSON.h>

#include "strbuf.h"

#define JSON_MAX_DEPTH 32

/*
 * Parses len bytes (not NUL-terminated necessarily) as one JSON value,
 * refusing more than max_bytes, nesting deeper than max_depth, invalid
 * UTF-8 and trailing garbage. Returns a tree the caller frees with
 * cJSON_Delete, or NULL with a one-line reason in err (err_size bytes).
 */
cJSON *json_parse_bounded(const char *buf, size_t len, size_t max_bytes,
                          int max_depth, char *err, size_t err_size);

/*
 * True when len bytes of JSON text nest arrays and objects deeper than
 * max_depth. Brackets inside strings (escapes included) do not count, and
 * nothing is allocated, so it is safe on any input before a parser sees
 * it; it does not check that the text is otherwise valid.
 */
bool json_depth_exceeds(const char *buf, size_t len, int max_depth);

/*
 * Finds the first number in root whose value as agentgate keeps it would
 * differ from the decimal written in text. root must be the tree
 * json_parse_bounded made of text (len bytes): each number node is
 * matched with its own spelling there. A number is kept as cJSON holds it
 * (a double) and as json_print prints it back (the shortest of 15 to 17
 * significant digits that reads back as that double), so it differs when
 * it is out of range (1e400 would become null), below the smallest double
 * (1e-400 would become 0), or more precise than that printing
 * (123456789012345678901234567890, 9007199254740993, or 17 digits where
 * 16 already name the double). Spellings of the same value are kept as
 * that value: 1E2 is 100, 0.10 is 0.1, -0 is 0. Returns 0 when every
 * number is kept exactly; 1 with the number's RFC 6901 JSON Pointer (e.g.
 * "/payload/n") set in *pointer (a strbuf the caller frees); -1 when out
 * of memory (or when root is not the tree of text).
 */
int json_find_inexact_number(const char *text, size_t len, const cJSON *root,
                             strbuf *pointer);

/*
 * True when the number n, kept exactly as json_find_inexact_number
 * requires, is also kept exactly by a single-precision float (PostgreSQL's
 * real): its shortest float spelling is the same decimal. Writes that
 * spelling into out (at least 32 bytes) either way.
 */
bool json_number_fits_float(const cJSON *n, char *out, size_t out_size);

/* Returns the string member name of obj, or NULL if absent or not a string. */
const char *json_get_string(const cJSON *obj, const char *name);

/* Reads the integer member name of obj into *out. Returns 1 when present and
 * a whole number within [min, max], 0 when absent, -1 when present but bad. */
int json_get_int(const cJSON *obj, const char *name, long long min,
                 long long max, long long *out);

/*
 * Building objects without checking every call: each adder is a no-op
 * once *ok is false, and sets it false when cJSON fails. json_add_item and
 * json_append take ownership of item (a NULL item fails), freeing it when
 * it cannot be added. json_done returns o when *ok held throughout, else
 * frees o and returns NULL. A NULL string v adds null.
 */
void json_add_str(cJSON *o, const char *k, const char *v, bool *ok);
void json_add_num(cJSON *o, const char *k, double v, bool *ok);
void json_add_bool(cJSON *o, const char *k, bool v, bool *ok);
void json_add_item(cJSON *o, const char *k, cJSON *item, bool *ok);
void json_append(cJSON *a, cJSON *item, bool *ok);
cJSON *json_done(cJSON *o, bool ok);

/*
 * Prints item compactly, every finite number as text that reads back as
 * exactly its value (cJSON's own printer may round one to 15 digits; an
 * infinity still prints as null). Returns a malloc'd string the caller
 * frees, or NULL.
 */
char *json_print(const cJSON *item);

/*
 * The one rule for escaping text into a JSON string, PostgreSQL's
 * escape_json: quote and backslash escaped, \b \f \n \r \t, other bytes
 * below 0x20 as \u00xx, everything else (UTF-8 included) as is. Text
 * escaped here is byte for byte what PostgreSQL prints for the same
 * string, which the gateway's own renderings of rows rely on.
 *
 * json_escape_byte writes the escape for c to out and returns its length,
 * or returns 0 when c stands for itself. json_escaped_len is the bytes s
 * takes escaped (without quotes); json_escape_to writes them at out (room
 * for json_escaped_len(s)) and returns the end. json_quote writes s quoted
 * and NUL-terminated into out and returns its length without the NUL, or
 * 0 when size bytes are too few (6 * strlen(s) + 3 always suffice).
 */
size_t json_escape_byte(unsigned char c, char out[6]);
size_t json_escaped_len(const char *s);
char *json_escape_to(char *out, const char *s);
size_t json_quote(const char *s, char *out, size_t size);

/*
 * Removes the white space between the tokens of the JSON text at text
 * (len bytes), in place, and returns the new length: what PostgreSQL's
 * json_build_object and jsonb print (" : ", ", ") becomes the compact form
 * every answer of the API has. Strings are copied as they are. The text
 * must be valid JSON (it is not checked); nothing is allocated.
 */
size_t json_compact(char *text, size_t len);

#endif
