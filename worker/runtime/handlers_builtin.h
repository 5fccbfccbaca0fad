/*
 * handlers_builtin.h - the handlers of the job types that exercise the
 * platform itself (see handlers_builtin.c for what each does). The program
 * lists them in its handler table (worker/handler_table.c).
 */
#ifndef AG_HANDLERS_BUILTIN_H
#define AG_HANDLERS_BUILTIN_H

#include "job_ctx.h"

job_outcome handle_demo(job_ctx *ctx, job_result *out);
job_outcome handle_test(job_ctx *ctx, job_result *out);
job_outcome handle_long_running(job_ctx *ctx, job_result *out);
job_outcome handle_bench_ticker(job_ctx *ctx, job_result *out);

#endif
