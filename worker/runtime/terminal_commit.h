/*
 * terminal_commit.h - the worker's group commit: the terminal transitions
 * of several job threads written in one transaction (one round trip, one
 * commit, one WAL flush for the group) on one PostgreSQL connection of
 * the committer's, by whichever of those job threads leads at the moment,
 * and each job thread given its own outcome.
 *
 * Each write stays fenced by its own attempt and is answered on its own:
 * a job fenced out does not touch the others, and a group that fails as a
 * whole (one job's error, a lost connection) is written again one job at
 * a time, so one bad job never fails another.
 */
#ifndef AG_WORKER_TERMINAL_COMMIT_H
#define AG_WORKER_TERMINAL_COMMIT_H

#include "backoff.h"
#include "job_store.h"

typedef struct terminal_commit terminal_commit;

/*
 * Makes a committer that connects to database_url (borrowed for the
 * committer's life) when its first write comes. At most max_group writes
 * go in one transaction. Returns the committer, or NULL when memory ran
 * out (logged): job threads then write themselves.
 */
terminal_commit *terminal_commit_start(const char *database_url, int max_group);

/*
 * Writes job id's terminal transition f (as store_finish) through the
 * committer and waits for its own outcome; the calling thread may write
 * other threads' writes with its own. Like a job thread's own final write
 * it reconnects as needed, and after a connection lost mid-commit it asks
 * PostgreSQL whether the write landed; it gives up when over(arg) becomes
 * true. over may be called on another job thread while this one waits,
 * at any moment or not at all for a while: its answer must depend on the
 * clock, not on when it was first asked.
 * Every pointer is borrowed until it returns. Returns STORE_OK, STORE_NONE
 * when the job is no longer this attempt's, or STORE_ERROR (PostgreSQL
 * unreachable until over, or the write failed).
 */
store_rc terminal_commit_finish(terminal_commit *tc, const char *id, const char *tenant_id,
                                int attempt, const job_final *f, stop_fn over, void *arg);

/*
 * Closes the committer's connection, logs its totals and frees tc. Call
 * it once no job thread can call terminal_commit_finish any more (each
 * call returns only once answered, so nothing is left waiting then).
 * NULL is ignored.
 */
void terminal_commit_stop(terminal_commit *tc);

#endif
