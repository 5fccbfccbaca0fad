/*
 * test_cliopt.c - the command-line failure lines (cliopt_fail and
 * cliopt_bad_option) on what getopt_long really returns, parsed the way
 * the agentgate programs parse: opterr 0, an optstring beginning "+:",
 * "--name VALUE" and "--name=VALUE" alike.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <getopt.h>
#include <cmocka.h>

#include "cliopt.h"

#define ARGC(a) ((int)(sizeof(a) / sizeof *(a)) - 1)   /* without the NULL */

static char captured[1024];

/* Runs fn(arg) with stderr sent to a temporary file, and leaves what it
 * wrote in captured. */
static void capture_stderr(void (*fn)(void *), void *arg)
{
    char path[] = "/tmp/agentgate-test-cliopt-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    fflush(stderr);
    int saved = dup(2);
    assert_true(saved >= 0);
    assert_int_equal(dup2(fd, 2), 2);
    fn(arg);
    fflush(stderr);
    assert_int_equal(dup2(saved, 2), 2);
    close(saved);
    ssize_t n = pread(fd, captured, sizeof captured - 1, 0);
    assert_true(n >= 0);
    captured[n] = '\0';
    close(fd);
}

/* A tool with the shape of agentgate-migrate: --config/-c FILE,
 * --dir/-d DIR, --status/-s, --help/-h, --version. */
enum { OPT_VERSION = 0x100 };
static const struct option longopts[] = {
    { "config",  required_argument, NULL, 'c' },
    { "dir",     required_argument, NULL, 'd' },
    { "status",  no_argument,       NULL, 's' },
    { "help",    no_argument,       NULL, 'h' },
    { "version", no_argument,       NULL, OPT_VERSION },
    { NULL, 0, NULL, 0 },
};

typedef struct parsed {
    char **argv;
    int argc;
    const char *config, *dir;
    bool status, help, version;
    int rc;             /* 0 ok, 2 refused */
} parsed;

static void parse(void *arg)
{
    parsed *p = arg;
    optind = 0;         /* glibc: start afresh */
    opterr = 0;
    for (;;) {
        const char *cur = optind < p->argc ? p->argv[optind] : NULL;
        if (optind == 0)
            cur = p->argc > 1 ? p->argv[1] : NULL;
        int c = getopt_long(p->argc, p->argv, "+:c:d:sh", longopts, NULL);
        if (c == -1)
            break;
        switch (c) {
        case 'c': p->config = optarg; break;
        case 'd': p->dir = optarg; break;
        case 's': p->status = true; break;
        case 'h': p->help = true; break;
        case OPT_VERSION: p->version = true; break;
        default:
            cliopt_bad_option("prog", c, optopt, cur);
            p->rc = 2;
            return;
        }
    }
    if (optind < p->argc) {
        cliopt_fail("prog", "unexpected argument '%s' (see --help)", p->argv[optind]);
        p->rc = 2;
    }
}

static parsed run(char **argv, int argc)
{
    parsed p = { .argv = argv, .argc = argc };
    capture_stderr(parse, &p);
    return p;
}

static void test_values_both_spellings(void **state)
{
    (void)state;
    char *argv[] = { "prog", "--dir", "sql", "--config=a.env", "--status", NULL };
    parsed p = run(argv, ARGC(argv));
    assert_int_equal(p.rc, 0);
    assert_string_equal(p.dir, "sql");
    assert_string_equal(p.config, "a.env");
    assert_true(p.status);
    assert_string_equal(captured, "");

    char *shorts[] = { "prog", "-c", "b.env", "-dmig", "-s", NULL };
    p = run(shorts, ARGC(shorts));
    assert_int_equal(p.rc, 0);
    assert_string_equal(p.config, "b.env");
    assert_string_equal(p.dir, "mig");
    assert_true(p.status);

    /* A value may be empty, or begin with a dash. */
    char *odd[] = { "prog", "--config=", "--dir", "-x", NULL };
    p = run(odd, ARGC(odd));
    assert_int_equal(p.rc, 0);
    assert_string_equal(p.config, "");
    assert_string_equal(p.dir, "-x");
}

static void test_unknown_option(void **state)
{
    (void)state;
    char *a[] = { "prog", "--status", "--nope", NULL };
    assert_int_equal(run(a, ARGC(a)).rc, 2);
    assert_string_equal(captured, "prog: unknown option '--nope' (see --help)\n");

    /* The value of an unknown --name=VALUE is not echoed. */
    char *b[] = { "prog", "--password=hunter2", NULL };
    assert_int_equal(run(b, ARGC(b)).rc, 2);
    assert_string_equal(captured, "prog: unknown option '--password' (see --help)\n");

    char *c[] = { "prog", "-x", NULL };
    assert_int_equal(run(c, ARGC(c)).rc, 2);
    assert_string_equal(captured, "prog: unknown option '-x' (see --help)\n");

    /* In a cluster, the letter that is wrong. */
    char *d[] = { "prog", "--config", "f", "-sx", NULL };
    assert_int_equal(run(d, ARGC(d)).rc, 2);
    assert_string_equal(captured, "prog: unknown option '-x' (see --help)\n");

    /* An old-style prefix that is no option ("--dirs" is not "--dir"). */
    char *e[] = { "prog", "--dirs", "x", NULL };
    assert_int_equal(run(e, ARGC(e)).rc, 2);
    assert_string_equal(captured, "prog: unknown option '--dirs' (see --help)\n");
}

static void test_missing_value(void **state)
{
    (void)state;
    char *a[] = { "prog", "--status", "--dir", NULL };
    assert_int_equal(run(a, ARGC(a)).rc, 2);
    assert_string_equal(captured, "prog: option '--dir' needs a value (see --help)\n");

    char *b[] = { "prog", "-c", NULL };
    assert_int_equal(run(b, ARGC(b)).rc, 2);
    assert_string_equal(captured, "prog: option '-c' needs a value (see --help)\n");

    char *c[] = { "prog", "-sd", NULL };
    assert_int_equal(run(c, ARGC(c)).rc, 2);
    assert_string_equal(captured, "prog: option '-d' needs a value (see --help)\n");
}

static void test_value_not_taken(void **state)
{
    (void)state;
    char *a[] = { "prog", "--status=yes", NULL };
    assert_int_equal(run(a, ARGC(a)).rc, 2);
    assert_string_equal(captured, "prog: option '--status' takes no value (see --help)\n");
}

static void test_positional_refused(void **state)
{
    (void)state;
    /* "+": parsing stops at the first non-option, which is then refused,
     * options after it included (nothing is silently reordered). */
    char *a[] = { "prog", "--status", "extra", "--dir", "x", NULL };
    parsed p = run(a, ARGC(a));
    assert_int_equal(p.rc, 2);
    assert_null(p.dir);
    assert_string_equal(captured, "prog: unexpected argument 'extra' (see --help)\n");
}

static void fail_line(void *arg)
{
    cliopt_fail("agentgate-x", "%s: %d", (const char *)arg, 3);
}

static void test_fail_line(void **state)
{
    (void)state;
    capture_stderr(fail_line, "n");
    assert_string_equal(captured, "agentgate-x: n: 3\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values_both_spellings),
        cmocka_unit_test(test_unknown_option),
        cmocka_unit_test(test_missing_value),
        cmocka_unit_test(test_value_not_taken),
        cmocka_unit_test(test_positional_refused),
        cmocka_unit_test(test_fail_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
