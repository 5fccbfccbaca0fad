/*
 * handlers.h - which handler runs which job type. The runtime knows no
 * handler by name: the program registers its table at start-up
 * (worker/handler_table.c lists every one) and job_run.c looks each
 * claimed job's type up in it.
 */
#ifndef AG_HANDLERS_H
#define AG_HANDLERS_H

#include <stddef.h>

#include "job_info.h"

/* One row of a handler table: the registered job type name and its handler. */
typedef struct job_handler_entry {
    const char *type;
    job_handler_fn fn;
} job_handler_entry;

/*
 * Makes table (n rows, borrowed: it must outlive every job) the handlers
 * handler_for_type looks in, replacing any table registered before. Call
 * before the job threads start: the table is read without a lock.
 */
void handlers_register(const job_handler_entry *table, size_t n);

/* The handler registered for the job type name, or NULL if none. */
job_handler_fn handler_for_type(const char *type);

#endif
