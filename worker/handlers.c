/*
 * handlers.c - which handler runs which job type (see handlers.h).
 *
 * Every type in the registry (common/jobtypes.c) should have a row here;
 * a worker asked to listen on a type without one fails such jobs with
 * "no_handler" rather than guessing.
 */
#include <string.h>

#include "handlers.h"

static const struct {
    const char *type;
    job_handler_fn fn;
} handler_table[] = {
    { "demo",         handle_demo },
    { "test",         handle_test },
    { "long-running", handle_long_running },
    { "agent.run",    handle_agent_run },
    { "bench.ticker", handle_bench_ticker },
};

job_handler_fn handler_for_type(const char *type)
{
    if (type == NULL)
        return NULL;
    for (size_t i = 0; i < sizeof handler_table / sizeof *handler_table; i++)
        if (strcmp(handler_table[i].type, type) == 0)
            return handler_table[i].fn;
    return NULL;
}
