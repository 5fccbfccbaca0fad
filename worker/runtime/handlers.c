/*
 * handlers.c - looks job types up in the handler table the program
 * registered (see handlers.h).
 *
 * A worker asked to listen on a type without a row fails such jobs with
 * "no_handler" rather than guessing; with no table registered at all,
 * that is every job.
 */
#include <string.h>

#include "handlers.h"

/* Written once at start-up, before the job threads exist; only read after. */
static const job_handler_entry *registered;
static size_t n_registered;

void handlers_register(const job_handler_entry *table, size_t n)
{
    registered = table;
    n_registered = table != NULL ? n : 0;
}

job_handler_fn handler_for_type(const char *type)
{
    if (type == NULL)
        return NULL;
    for (size_t i = 0; i < n_registered; i++)
        if (registered[i].type != NULL && strcmp(registered[i].type, type) == 0)
            return registered[i].fn;
    return NULL;
}
