/*
 * handler_table.c - which handler runs which job type (see
 * handler_table.h). The runtime cannot name the agent layer's handler
 * (it sits below it), so the table is kept here, at the top, where every
 * layer is in view, and handed down at start-up.
 *
 * Every type in the registry (common/jobtypes.c) should have a row here,
 * and every row a registered type; tests/unit/worker/test_handler_table.c
 * checks both.
 */
#include "handler_table.h"
#include "handlers.h"
#include "handlers_builtin.h"
#include "mcp_discover.h"
#include "orchestrator.h"

static const job_handler_entry table[] = {
    { "demo",         handle_demo },
    { "test",         handle_test },
    { "long-running", handle_long_running },
    { "agent.run",    handle_agent_run },
    { "bench.ticker", handle_bench_ticker },
    { "mcp.discover", handle_mcp_discover },
};

const job_handler_entry *handler_table(size_t *n)
{
    *n = sizeof table / sizeof *table;
    return table;
}

void handler_table_register(void)
{
    size_t n;
    const job_handler_entry *t = handler_table(&n);
    handlers_register(t, n);
}
