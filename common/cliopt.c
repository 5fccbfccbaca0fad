/*
 * cliopt.c - the failure lines of the agentgate programs' command lines
 * (see cliopt.h); the parsing itself is getopt_long's.
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cliopt.h"
#include "version.h"

void cliopt_fail(const char *prog, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void cliopt_bad_option(const char *prog, int c, int opt, const char *arg)
{
    char name[72];
    /* A long option as written, without any "=VALUE"; a short one (alone
     * or in a cluster such as -sd) as the letter getopt stopped at. */
    if (arg != NULL && strncmp(arg, "--", 2) == 0)
        snprintf(name, sizeof name, "%.*s", (int)strcspn(arg, "="), arg);
    else if (opt > ' ' && opt < 0x7f)
        snprintf(name, sizeof name, "-%c", opt);
    else
        snprintf(name, sizeof name, "%s", arg != NULL ? arg : "?");

    if (c == ':')
        cliopt_fail(prog, "option '%s' needs a value (see --help)", name);
    else if (arg != NULL && strncmp(arg, "--", 2) == 0 && opt != 0)
        /* getopt_long sets optopt only for a long option it knows: here
         * one that takes no value, given one with "=". */
        cliopt_fail(prog, "option '%s' takes no value (see --help)", name);
    else
        cliopt_fail(prog, "unknown option '%s' (see --help)", name);
}

int cliopt_parse_daemon(int argc, char **argv, const char *prog, void (*usage)(FILE *out),
                        const char **config_file)
{
    static const struct option longopts[] = {
        { "config",  required_argument, NULL, 'c' },
        { "help",    no_argument,       NULL, 'h' },
        { "version", no_argument,       NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    *config_file = NULL;
    opterr = 0;
    for (;;) {
        const char *arg = optind < argc ? argv[optind] : NULL;
        int c = getopt_long(argc, argv, "+:c:hV", longopts, NULL);
        if (c == -1)
            break;
        switch (c) {
        case 'c':
            *config_file = optarg;
            break;
        case 'h':
            usage(stdout);
            return 1;
        case 'V':
            printf("%s %s\n", prog, AGENTGATE_VERSION);
            return 1;
        default:
            cliopt_bad_option(prog, c, optopt, arg);
            return 2;
        }
    }
    if (optind < argc) {
        cliopt_fail(prog, "unexpected argument '%s' (see --help)", argv[optind]);
        return 2;
    }
    return 0;
}
