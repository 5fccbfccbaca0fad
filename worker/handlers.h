/*
 * handlers.h - the job handlers this worker can run, by job type name.
 */
#ifndef AG_HANDLERS_H
#define AG_HANDLERS_H

#include "job_ctx.h"

/* The handler for the registered job type name, or NULL if none. */
job_handler_fn handler_for_type(const char *type);

/* Built-in handlers (worker/handlers_builtin.c). */
job_outcome handle_demo(job_ctx *ctx, job_result *out);
job_outcome handle_test(job_ctx *ctx, job_result *out);
job_outcome handle_long_running(job_ctx *ctx, job_result *out);
job_outcome handle_bench_ticker(job_ctx *ctx, job_result *out);

/* The agent-run orchestrator (worker/orchestrator.c). */
job_outcome handle_agent_run(job_ctx *ctx, job_result *out);

#endif
