/*
 * run_store.h - an agent run's rows in PostgreSQL: its agent_runs row
 * (loaded at the start, the TODO list stored as it changes, the end state
 * written on every way out), the session's earlier runs, which model
 * serves the run, the tool catalog, and the one statement runner the
 * steps' rows go through. Above run_state.h; see it for the conventions.
 */
#ifndef AG_RUN_STORE_H
#define AG_RUN_STORE_H

#include "run_state.h"

/* Runs sql, which returns no rows, with params on the job's connection as
 * the job's tenant; a broken connection is replaced and the statement
 * tried once more. Returns 0 or -1 (db_unavailable, db_error, or
 * cancelled while there was no connection). */
int run_db_command(run *r, const char *sql, int nparams, const char *const *params);

/* Runs sql, which returns rows, as run_db_command does. Returns the
 * result (the caller PQclears it), or NULL with the run stopped. */
PGresult *run_db_query(run *r, const char *sql, int nparams, const char *const *params);

/* Loads the run r->id (this tenant's, this job's) and marks it started,
 * clearing what an earlier attempt wrote to its row: fills the run's
 * options, principal, iteration cap and deadline. Returns 0 or -1
 * (run_not_found, invalid_run, a database failure, out of memory). */
int load_run(run *r);

/* Deletes the steps an earlier attempt of the run left (for a run resumed
 * after a wait, those past r->replay_steps). Returns 0 or -1. */
int clear_old_steps(run *r);

/* Loads the session's earlier finished runs into r->history as user and
 * assistant turns, oldest first, the newest kept within
 * session_context_bytes; nothing for a run outside a session. Returns 0
 * or -1. Freed by history_free. */
int load_history(run *r);

/* Frees r->history and the text it borrows. */
void history_free(run *r);

/* Decides through the router whether model calls are made (r->llm_on) and
 * whether a real language model makes them (r->language_model); when
 * none does, r->route_note says why, which is not a failure. Returns 0 or
 * -1 (PostgreSQL unreachable, cancelled). */
int resolve_route(run *r);

/* Loads the tenant's tool catalog into r->catalog and the tools offered to
 * a model into r->tool_defs (those the principal may call and the run
 * enables, borrowed from the catalog). Returns 0 or -1
 * (tools_unavailable, db_unavailable, cancelled, out of memory). */
int load_catalog(run *r);

/* Stores the TODO list (todos_json) and the intent in the run's row.
 * Returns 0 or -1. */
int save_todos(run *r);

/* Writes the run's end state to its row: intent, output (NULL for a run
 * that stopped), TODOs, metrics and finished_at; for a run that stopped to
 * wait (JOB_WAITING), resume_steps instead of finished_at. Used on every way out
 * once the row is loaded. Returns 0 or -1 (run_not_found when the row is
 * gone, a database failure, out of memory). */
int persist_run(run *r, const char *output);

#endif
