/*
 * run_plan.h - an agent run's TODO list: making it (plan:todos), planning
 * a TODO's steps when the model plans them (plan:steps), and carrying the
 * TODOs out. Above run_calls.h, whose calls carry the steps out; see
 * run_state.h for the conventions.
 */
#ifndef AG_RUN_PLAN_H
#define AG_RUN_PLAN_H

#include <stdbool.h>

#include "run_state.h"

/* Marks every TODO not yet finished skipped, with why as its result. */
void skip_pending_todos(run *r, const char *why);

/* plan:todos: makes the TODO list, by the model when by_llm (falling back
 * to the deterministic planner when its plan cannot be used, saying so),
 * else by the deterministic planner; reason (NULL: none) goes in the
 * step's input. Then stores the list (save_todos). Returns 0 or -1. */
int phase_plan(run *r, bool by_llm, const char *reason);

/* Carries out the TODOs in order, each by its steps (planned by the model
 * first, plan:steps, when they are not yet), storing the list and emitting
 * job.progress after each. Returns 0 or -1. */
int phase_execute(run *r);

#endif
