/*
 * test_config_example.c - deploy/agentgate.env.example against the
 * settings table: every setting is listed once, an active line shows
 * exactly the table's default, a commented-out line ("#AGENTGATE_X=...",
 * no blank after the '#') is allowed only for a setting whose default is
 * empty or computed (its value is then an example), and the file names no
 * setting the table does not know. The file also loads as a --config file
 * and yields the defaults.
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

#define EXAMPLE_PATH "deploy/agentgate.env.example"
#define MAX_SETTINGS 256

extern char **environ;

/* What check_example found: a count and one line per problem. */
typedef struct report {
    int problems;
    char text[16384];
    size_t len;
} report;

static void problem(report *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(report *r, const char *fmt, ...)
{
    r->problems++;
    if (r->len >= sizeof r->text - 1)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(r->text + r->len, sizeof r->text - r->len - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    r->len += (size_t)n < sizeof r->text - r->len - 1 ? (size_t)n : sizeof r->text - r->len - 2;
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

/*
 * Checks the text of an example file against the settings table, adding
 * one line to *r for each problem: a setting missing, listed twice, shown
 * with a value other than its default, commented out though it has a
 * default, or unknown to the table. Lines that are neither
 * "AGENTGATE_X=..." nor "#AGENTGATE_X=..." (prose, "#   AGENTGATE_X=..."
 * examples inside a comment, blank lines) are not looked at.
 */
static void check_example(const char *text, report *r)
{
    size_t count = config_setting_count();
    int seen_at[MAX_SETTINGS] = {0};
    assert_true(count <= MAX_SETTINGS);

    int lineno = 0;
    for (const char *line = text; *line;) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        const char *next = nl ? nl + 1 : line + len;
        lineno++;
        while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t'))
            len--;

        const char *p = line, *end = line + len;
        bool commented = false;
        if (len > 0 && p[0] == '#' && (size_t)(end - p) > 10 && strncmp(p + 1, "AGENTGATE_", 10) == 0) {
            commented = true;
            p++;
        }
        if ((size_t)(end - p) < 10 || strncmp(p, "AGENTGATE_", 10) != 0) {
            line = next;
            continue;
        }

        const char *eq = memchr(p, '=', (size_t)(end - p));
        if (eq == NULL) {
            problem(r, "line %d: %.*s has no '='", lineno, (int)(end - p), p);
            line = next;
            continue;
        }
        const char *value = eq + 1;
        size_t vlen = (size_t)(end - value);
        if (vlen >= 2 && (value[0] == '"' || value[0] == '\'') && value[vlen - 1] == value[0]) {
            value++;
            vlen -= 2;
        }

        long i = setting_index(p, (size_t)(eq - p));
        if (i < 0) {
            problem(r, "line %d: %.*s is not a setting agentgate knows", lineno,
                    (int)(eq - p), p);
            line = next;
            continue;
        }
        const char *name = config_setting_name((size_t)i), *def = config_setting_default((size_t)i);
        if (seen_at[i]) {
            problem(r, "line %d: %s is listed again (first on line %d)", lineno, name, seen_at[i]);
        } else if (commented && def[0] != '\0') {
            problem(r, "line %d: %s is commented out, but it has a default: write %s=%s",
                    lineno, name, name, def);
        } else if (!commented && (strlen(def) != vlen || memcmp(def, value, vlen) != 0)) {
            problem(r, "line %d: %s shows \"%.*s\", but its default is \"%s\"", lineno, name,
                    (int)vlen, value, def);
        }
        if (!seen_at[i])
            seen_at[i] = lineno;
        line = next;
    }

    for (size_t i = 0; i < count; i++)
        if (!seen_at[i])
            problem(r, "%s is missing (default \"%s\")", config_setting_name(i),
                    config_setting_default(i));
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open %s (run the unit tests from the repository root)", path);
    static char buf[131072];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    assert_false(ferror(f));
    assert_true(feof(f) || n < sizeof buf - 1);  /* the whole file */
    fclose(f);
    buf[n] = '\0';
    return buf;
}

/* Removes every AGENTGATE_* variable so the host environment cannot leak
 * into a test. */
static int clear_env(void **state)
{
    (void)state;
    for (;;) {
        char name[256] = "";
        for (char **e = environ; *e; e++) {
            if (strncmp(*e, "AGENTGATE_", 10) == 0) {
                size_t n = strcspn(*e, "=");
                if (n < sizeof name) {
                    memcpy(name, *e, n);
                    name[n] = '\0';
                }
                break;
            }
        }
        if (name[0] == '\0')
            return 0;
        unsetenv(name);
    }
}

/* ------------------------------------------------------------------------ */

static void test_example_lists_every_setting_with_its_default(void **state)
{
    (void)state;
    report r = {0};
    check_example(read_file(EXAMPLE_PATH), &r);
    if (r.problems > 0) {
        /* One problem a line (cmocka cuts a long message). */
        for (const char *p = r.text; *p;) {
            size_t n = strcspn(p, "\n");
            print_error("%.*s\n", (int)n, p);
            p += n + (p[n] == '\n');
        }
        fail_msg("%s: %d problem%s (listed above)", EXAMPLE_PATH, r.problems,
                 r.problems == 1 ? "" : "s");
    }
}

static void test_example_loads_as_the_defaults(void **state)
{
    (void)state;
    ag_config want, got;
    char err[512] = "";
    memset(&want, 0, sizeof want);
    memset(&got, 0, sizeof got);
    assert_int_equal(config_load(&want, NULL, err, sizeof err), 0);
    if (config_load(&got, EXAMPLE_PATH, err, sizeof err) != 0)
        fail_msg("%s does not load: %s", EXAMPLE_PATH, err);
    assert_memory_equal(&got, &want, sizeof got);
}

/* The checker itself: it must catch each kind of mistake. */
static void test_checker_catches_mistakes(void **state)
{
    (void)state;
    size_t n = config_setting_count();
    static char text[32768];
    size_t len = 0;
    /* A complete, correct file first: every setting active with its default,
     * except those with an empty default, which are commented out. */
    for (size_t i = 0; i < n; i++) {
        const char *name = config_setting_name(i), *def = config_setting_default(i);
        int w = snprintf(text + len, sizeof text - len, "# about %s\n%s%s=%s\n", name,
                         def[0] ? "" : "#", name, def[0] ? def : "example");
        assert_true(w > 0 && (size_t)w < sizeof text - len);
        len += (size_t)w;
    }
    report ok = {0};
    check_example(text, &ok);
    if (ok.problems)
        fail_msg("a correct file was refused:\n%s", ok.text);

    /* Then one of each mistake, on top of it. */
    static char bad[40000];
    snprintf(bad, sizeof bad,
             "%s"
             "AGENTGATE_NO_SUCH_SETTING=1\n"        /* unknown */
             "#AGENTGATE_NOR_THIS=2\n"              /* unknown, commented */
             "AGENTGATE_LISTEN=127.0.0.1:8080\n"    /* twice */
             "#   AGENTGATE_LISTEN=0.0.0.0:80\n",   /* prose: not counted */
             text);
    /* A default that differs, and one commented out though it has one. */
    char *pool = strstr(bad, "\nAGENTGATE_PG_POOL_SIZE=");
    assert_non_null(pool);
    pool[strlen("\nAGENTGATE_PG_POOL_SIZE=")] = '3';
    char *level = strstr(bad, "\nAGENTGATE_LOG_LEVEL=");
    assert_non_null(level);
    memmove(level + 2, level + 1, strlen(level + 1) + 1);
    level[1] = '#';
    /* And one missing altogether. */
    char *lease = strstr(bad, "\nAGENTGATE_LEASE_MS=");
    assert_non_null(lease);
    lease[1] = 'X';

    report r = {0};
    check_example(bad, &r);
    const char *want[] = {
        "AGENTGATE_NO_SUCH_SETTING is not a setting",
        "AGENTGATE_NOR_THIS is not a setting",
        "AGENTGATE_LISTEN is listed again",
        "AGENTGATE_PG_POOL_SIZE shows \"3\", but its default is \"2\"",
        "AGENTGATE_LOG_LEVEL is commented out, but it has a default",
        "AGENTGATE_LEASE_MS is missing",
    };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++)
        if (strstr(r.text, want[i]) == NULL)
            fail_msg("no \"%s\" in:\n%s", want[i], r.text);
    assert_int_equal(r.problems, (int)(sizeof want / sizeof *want));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_example_lists_every_setting_with_its_default, clear_env),
        cmocka_unit_test_setup(test_example_loads_as_the_defaults, clear_env),
        cmocka_unit_test_setup(test_checker_catches_mistakes, clear_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
