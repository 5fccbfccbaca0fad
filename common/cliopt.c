/*
 * cliopt.c - the one parser of "--name VALUE" / "--name=VALUE" options,
 * shared by agentgate-token and agentgate-migrate so both read their
 * command lines the same way.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cliopt.h"

const char *cliopt_value(int argc, char **argv, int *i, const char *name, bool *missing)
{
    size_t n = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, name, n) != 0)
        return NULL;
    if (a[n] == '=')
        return a + n + 1;
    if (a[n] != '\0')
        return NULL;    /* "--name" is only a prefix of a longer option */
    if (*i + 1 >= argc) {
        *missing = true;
        return NULL;
    }
    return argv[++*i];
}

void cliopt_fail(const char *prog, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}
