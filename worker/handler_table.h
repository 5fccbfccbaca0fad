/*
 * handler_table.h - the handler of every job type this worker runs, from
 * every layer that has one, and its registration with the runtime.
 */
#ifndef AG_HANDLER_TABLE_H
#define AG_HANDLER_TABLE_H

#include <stddef.h>

#include "handlers.h"

/* The table: one row per job type, static; *n gets its number of rows. */
const job_handler_entry *handler_table(size_t *n);

/* Registers the table with the runtime (handlers_register). Call once,
 * before worker_run starts the job threads. */
void handler_table_register(void);

#endif
