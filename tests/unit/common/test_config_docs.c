/*
 * test_config_docs.c - docs/operations.md's settings reference against the
 * settings table: under "## Settings reference" every setting has exactly
 * one row, "| `AGENTGATE_X` | default | meaning |", whose default cell is
 * the table's default in backticks ("(empty)" for an empty one), and
 * whose meaning says "secret" for a secret setting (config_setting_secret);
 * the reference names no setting the table does not know, and no other
 * table row of the file documents a setting, so each is documented once.
 *
 * Run from the repository root, as tests/unit/run and make do.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "config.h"

#define DOC_PATH     "docs/operations.md"
#define SECTION      "## Settings reference"
#define ROW_START    "| `AGENTGATE_"
#define MAX_SETTINGS 256

typedef struct report {
    int problems;
    char text[16384];
    size_t len;
} report;

static void problem(report *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(report *r, const char *fmt, ...)
{
    r->problems++;
    if (r->len >= sizeof r->text - 2)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(r->text + r->len, sizeof r->text - r->len - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    size_t room = sizeof r->text - r->len - 2;
    r->len += (size_t)n < room ? (size_t)n : room;
    r->text[r->len++] = '\n';
    r->text[r->len] = '\0';
}

static long setting_index(const char *name, size_t len)
{
    for (size_t i = 0; i < config_setting_count(); i++) {
        const char *n = config_setting_name(i);
        if (strlen(n) == len && memcmp(n, name, len) == 0)
            return (long)i;
    }
    return -1;
}

/* The cell of a row after the '|' at *p: trimmed into out; *p moves to the
 * next '|'. Returns false when the row has no further cell. */
static bool next_cell(const char **p, const char *end, char *out, size_t size)
{
    if (*p >= end || **p != '|')
        return false;
    const char *s = *p + 1;
    const char *bar = memchr(s, '|', (size_t)(end - s));
    if (bar == NULL)
        return false;
    const char *e = bar;
    while (s < e && *s == ' ')
        s++;
    while (e > s && e[-1] == ' ')
        e--;
    snprintf(out, size, "%.*s", (int)(e - s), s);
    *p = bar;
    return true;
}

/* Checks the text of the document against the settings table, one line of
 * r per problem. */
static void check_doc(const char *text, report *r)
{
    size_t count = config_setting_count();
    int seen_at[MAX_SETTINGS] = {0};
    assert_true(count <= MAX_SETTINGS);
    bool in_section = false, section_found = false;

    int lineno = 0;
    for (const char *line = text; *line;) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        const char *next = nl ? nl + 1 : line + len;
        const char *end = line + len;
        lineno++;

        if (len >= 3 && strncmp(line, "## ", 3) == 0) {
            in_section = len == strlen(SECTION) && strncmp(line, SECTION, len) == 0;
            section_found |= in_section;
        }
        if (len < strlen(ROW_START) || strncmp(line, ROW_START, strlen(ROW_START)) != 0) {
            line = next;
            continue;
        }
        const char *name = line + 3;
        const char *tick = memchr(name, '`', (size_t)(end - name));
        if (tick == NULL) {
            problem(r, "line %d: a setting's name without its closing backtick", lineno);
            line = next;
            continue;
        }
        size_t nlen = (size_t)(tick - name);
        if (!in_section) {
            problem(r, "line %d: %.*s is documented in a table outside \"%s\" (document "
                    "each setting once, there)", lineno, (int)nlen, name, SECTION);
            line = next;
            continue;
        }
        long i = setting_index(name, nlen);
        if (i < 0) {
            problem(r, "line %d: %.*s is not a setting agentgate knows", lineno, (int)nlen, name);
            line = next;
            continue;
        }
        char cell_name[160], cell_def[600], cell_meaning[2048];
        const char *p = line;
        if (!next_cell(&p, end, cell_name, sizeof cell_name) ||
            !next_cell(&p, end, cell_def, sizeof cell_def) ||
            !next_cell(&p, end, cell_meaning, sizeof cell_meaning)) {
            problem(r, "line %d: %.*s: the row needs three cells (setting, default, meaning)",
                    lineno, (int)nlen, name);
            line = next;
            continue;
        }
        const char *sname = config_setting_name((size_t)i), *def = config_setting_default((size_t)i);
        char want[600];
        if (def[0] == '\0')
            snprintf(want, sizeof want, "(empty)");
        else
            snprintf(want, sizeof want, "`%s`", def);
        size_t tick_name = strlen(sname) + 2;
        if (seen_at[i])
            problem(r, "line %d: %s is listed again (first on line %d)", lineno, sname, seen_at[i]);
        else if (strlen(cell_name) != tick_name)
            problem(r, "line %d: the first cell must be `%s` alone", lineno, sname);
        else if (strcmp(cell_def, want) != 0)
            problem(r, "line %d: %s shows default %s, but it is %s", lineno, sname, cell_def, want);
        else if (cell_meaning[0] == '\0')
            problem(r, "line %d: %s has no meaning", lineno, sname);
        else if (config_setting_secret((size_t)i) && strstr(cell_meaning, "secret") == NULL)
            problem(r, "line %d: %s is a secret (it may come from %s_FILE or a credential): "
                    "say so", lineno, sname, sname);
        if (!seen_at[i])
            seen_at[i] = lineno;
        line = next;
    }
    if (!section_found)
        problem(r, "no \"%s\" section", SECTION);
    for (size_t i = 0; i < count; i++)
        if (!seen_at[i])
            problem(r, "%s is missing from the settings reference (default \"%s\")",
                    config_setting_name(i), config_setting_default(i));
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open %s (run the unit tests from the repository root)", path);
    static char buf[524288];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    assert_false(ferror(f));
    assert_true(feof(f) || n < sizeof buf - 1);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

static void print_problems(const report *r)
{
    for (const char *p = r->text; *p;) {
        size_t n = strcspn(p, "\n");
        print_error("%.*s\n", (int)n, p);
        p += n + (p[n] == '\n');
    }
}

static void test_reference_lists_every_setting_once(void **state)
{
    (void)state;
    report r = {0};
    check_doc(read_file(DOC_PATH), &r);
    if (r.problems > 0) {
        print_problems(&r);
        fail_msg("%s: %d problem%s (listed above)", DOC_PATH, r.problems,
                 r.problems == 1 ? "" : "s");
    }
}

/* A correct reference for the current table, with prose around it. */
static size_t correct_doc(char *text, size_t size)
{
    size_t len = (size_t)snprintf(text, size, "# Ops\n\nProse on `AGENTGATE_LISTEN`.\n\n"
                                  SECTION "\n\n| setting | default | meaning |\n|---|---|---|\n");
    for (size_t i = 0; i < config_setting_count(); i++) {
        const char *name = config_setting_name(i), *def = config_setting_default(i);
        int w = snprintf(text + len, size - len, "| `%s` | %s%s%s | what it does%s |\n", name,
                         def[0] ? "`" : "(empty)", def, def[0] ? "`" : "",
                         config_setting_secret(i) ? " (secret)" : "");
        assert_true(w > 0 && (size_t)w < size - len);
        len += (size_t)w;
    }
    len += (size_t)snprintf(text + len, size - len, "\n## Next\n\nMore prose.\n");
    return len;
}

/* Replaces the first occurrence of from in text (size bytes) with to. */
static void replace(char *text, size_t size, const char *from, const char *to)
{
    char *at = strstr(text, from);
    assert_non_null(at);
    size_t fl = strlen(from), tl = strlen(to), rest = strlen(at + fl);
    assert_true((size_t)(at - text) + tl + rest < size);
    memmove(at + tl, at + fl, rest + 1);
    memcpy(at, to, tl);
}

static void expect_problem(const char *text, const char *want)
{
    report r = {0};
    check_doc(text, &r);
    if (r.problems == 0 || strstr(r.text, want) == NULL)
        fail_msg("wanted a problem with \"%s\"; got %d:\n%s", want, r.problems, r.text);
}

/* The checker itself: it must pass a correct reference and catch each
 * kind of mistake. */
static void test_checker_catches_mistakes(void **state)
{
    (void)state;
    static char good[65536], bad[65536];
    correct_doc(good, sizeof good);
    report ok = {0};
    check_doc(good, &ok);
    if (ok.problems)
        fail_msg("a correct reference was refused:\n%s", ok.text);

    memcpy(bad, good, sizeof bad);
    replace(bad, sizeof bad, "| `AGENTGATE_PG_POOL_SIZE` | `2` |", "| `AGENTGATE_PG_POOL_SIZE` | `3` |");
    expect_problem(bad, "AGENTGATE_PG_POOL_SIZE shows default `3`, but it is `2`");

    memcpy(bad, good, sizeof bad);
    replace(bad, sizeof bad, "| `AGENTGATE_PG_POOL_SIZE` |", "| `AGENTGATE_PG_POOLSIZE` |");
    expect_problem(bad, "AGENTGATE_PG_POOLSIZE is not a setting");
    expect_problem(bad, "AGENTGATE_PG_POOL_SIZE is missing");

    memcpy(bad, good, sizeof bad);
    replace(bad, sizeof bad, "More prose.", "| `AGENTGATE_LISTEN` | `127.0.0.1:8080` | again |");
    expect_problem(bad, "AGENTGATE_LISTEN is documented in a table outside");

    memcpy(bad, good, sizeof bad);
    replace(bad, sizeof bad, "|---|---|---|\n", "|---|---|---|\n| `AGENTGATE_LISTEN` | `127.0.0.1:8080` | twice |\n");
    expect_problem(bad, "AGENTGATE_LISTEN is listed again");

    memcpy(bad, good, sizeof bad);
    replace(bad, sizeof bad, "| `AGENTGATE_JWT_SECRET` | (empty) | what it does (secret) |",
            "| `AGENTGATE_JWT_SECRET` | (empty) | what it does |");
    expect_problem(bad, "AGENTGATE_JWT_SECRET is a secret");

    memcpy(bad, good, sizeof bad);
    replace(bad, sizeof bad, "| `AGENTGATE_JWT_SECRET` | (empty) |", "| `AGENTGATE_JWT_SECRET` | `` |");
    expect_problem(bad, "AGENTGATE_JWT_SECRET shows default ``, but it is (empty)");

    memcpy(bad, good, sizeof bad);
    replace(bad, sizeof bad, SECTION, "## Settings");
    expect_problem(bad, "no \"## Settings reference\" section");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_checker_catches_mistakes),
        cmocka_unit_test(test_reference_lists_every_setting_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
