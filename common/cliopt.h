/*
 * cliopt.h - command-line option values for the agentgate tools, which
 * all take "--name VALUE" and "--name=VALUE" alike.
 */
#ifndef AG_CLIOPT_H
#define AG_CLIOPT_H

#include <stdbool.h>

/* Returns the value of option name (e.g. "--config") when argv[*i] is that
 * option: the text after "=" in "--name=V" (possibly empty), or argv[*i+1]
 * for "--name V", in which case *i is advanced past the value. Returns NULL
 * when argv[*i] is some other argument (including "--namefoo"), leaving *i
 * alone. When argv[*i] is exactly name but is the last argument, sets
 * *missing to true and returns NULL; *missing is otherwise left as is.
 * The result points into argv; nothing is allocated. */
const char *cliopt_value(int argc, char **argv, int *i, const char *name, bool *missing);

/* Writes one line to stderr, "PROG: message", the form every failure of a
 * tool takes. */
void cliopt_fail(const char *prog, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
