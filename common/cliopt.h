/*
 * cliopt.h - what the agentgate programs share in reading their command
 * lines with getopt_long (the options themselves are each program's): the
 * one-line failure, and the report of an option getopt_long refused, so
 * every program says the same thing the same way.
 *
 * Each program calls getopt_long with opterr = 0 and an optstring that
 * begins with "+:" (stop at the first non-option; ':' tells a missing
 * value from an unknown option), handles --help (exit 0), --version
 * ("PROG AGENTGATE_VERSION", exit 0), and on anything else calls
 * cliopt_bad_option and exits 2.
 */
#ifndef AG_CLIOPT_H
#define AG_CLIOPT_H

#include <stdio.h>

/* Writes one line to stderr, "PROG: message", the form every failure of a
 * tool takes. */
void cliopt_fail(const char *prog, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Reports, with cliopt_fail, the option getopt_long just refused:
 *   PROG: unknown option '--nope' (see --help)
 *   PROG: option '--dir' needs a value (see --help)
 *   PROG: option '--status' takes no value (see --help)
 * c is what getopt_long returned (':' or '?'), opt the optopt it set, and
 * arg the argument it was reading: argv[optind] as it was before the call.
 * A value written as --name=VALUE is never echoed.
 */
void cliopt_bad_option(const char *prog, int c, int opt, const char *arg);

/*
 * The command line of a daemon (agentgate-gateway, agentgate-worker):
 * -c/--config FILE, -h/--help (usage(stdout)), -V/--version ("PROG
 * AGENTGATE_VERSION"). Returns 0 to run, with *config_file the file or
 * NULL; 1 when help or the version was printed (exit 0); 2 on a usage
 * error, reported in one line (exit 2).
 */
int cliopt_parse_daemon(int argc, char **argv, const char *prog, void (*usage)(FILE *out),
                        const char **config_file);

#endif
