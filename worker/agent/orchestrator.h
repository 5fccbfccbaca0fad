/*
 * orchestrator.h - the handler of job type "agent.run" (see orchestrator.c
 * for how a run goes). The program lists it in its handler table
 * (worker/handler_table.c).
 */
#ifndef AG_ORCHESTRATOR_H
#define AG_ORCHESTRATOR_H

#include "job_ctx.h"

/* Carries out the agent run the job's payload names (run_id). */
job_outcome handle_agent_run(job_ctx *ctx, job_result *out);

#endif
