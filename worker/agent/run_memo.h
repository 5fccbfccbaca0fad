/*
 * run_memo.h - what lets a run stop to wait for a person and go on later
 * on any worker: the journal of its calls (run_memo rows: every model call
 * and tool call the run made, in order, with what it answered) and its
 * approval requests (tool_approvals rows).
 *
 * The journal is kept in memory while the run goes and written only when
 * it stops to wait (memo_save), so a run that never waits pays nothing
 * for it. A resumed run starts over from its first phase, but the calls it
 * made before it waited are answered from the journal rather than made
 * again,
 * so it takes the same path to the same place (the steps it recorded are
 * neither written nor announced again: r->replaying), and carries on from
 * the call it waited on. Above run_store.h; see run_state.h for the
 * conventions.
 */
#ifndef AG_RUN_MEMO_H
#define AG_RUN_MEMO_H

#include <stdbool.h>
#include <stddef.h>
#include <cjson/cJSON.h>
#include "run_state.h"
#include "uuid.h"

/* Starts the run's journal: empty, or for a resumed run (r->replay_steps
 * > 0) the one it saved when it stopped to wait. Returns 0 or -1. */
int memo_begin(run *r);

/* Writes the calls made since the journal was loaded to run_memo, for a
 * run that stops to wait. Returns 0 or -1. */
int memo_save(run *r);

/* Frees r->journal and r->waiting. */
void memo_free(run *r);

/*
 * The next call of kind ("llm" or "tool"): *seq gets its place in the
 * journal. Returns its recorded value (borrowed from r) when the run made
 * it before it waited, else NULL. A recorded call of another kind means
 * the run took another path than before: the run fails (resume_diverged)
 * and NULL is returned with r->stopped set.
 */
const cJSON *memo_next(run *r, const char *kind, int *seq);

/* Records a copy of value (borrowed) as call seq of kind in the journal
 * (memory only: memo_save writes it). Returns 0 or -1 (out of memory). */
int memo_put(run *r, int seq, const char *kind, const cJSON *value);

/* A tool call's approval, as the run finds it. */
typedef enum approval_state {
    APPROVAL_NONE,          /* not asked yet */
    APPROVAL_PENDING,
    APPROVAL_APPROVED,
    APPROVAL_DENIED,
    APPROVAL_EXPIRED,       /* nobody decided in time: counts as denied */
} approval_state;

/* What a decided approval says. */
typedef struct approval {
    approval_state state;
    char id[UUID_STR_LEN];  /* the tool_call_id */
    char note[2048];        /* the decider's note, cut; "" when none */
    char decided_by[128];
} approval;

/* Reads the approval of call seq into *a. Returns 0 or -1. */
int approval_find(run *r, int seq, approval *a);

/*
 * Asks for approval of call seq (tool with args, borrowed): a pending
 * tool_approvals row expiring after r->approval_timeout_s (an existing
 * pending one is asked again), then stops the run to wait (run_wait) with
 * the approval.requested data {tool_call_id, tool, arguments, run_id,
 * expires_at}. Returns -1 (the run stopped).
 */
int approval_request(run *r, int seq, const char *tool, const cJSON *args);

/* The approval as {tool_call_id, decision, note?, decided_by?}, for a
 * step's output; NULL when out of memory. */
cJSON *approval_json(const approval *a);

#endif
