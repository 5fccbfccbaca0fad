/*
 * mcp_discovery_job.c - makes an mcp.discover job (see
 * mcp_discovery_job.h) from the job type registry's entry, as any
 * submitted job is made: the payload is checked against the type's
 * schema even though it is ours, so a schema change that would refuse it
 * shows here first.
 */
#include "mcp_discovery_job.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "events.h"
#include "jobtypes.h"
#include "jsonutil.h"
#include "log.h"
#include "schema.h"

void mcp_discovery_job_free(mcp_discovery_job *j)
{
    free(j->payload);
    free(j->event);
    j->payload = j->event = NULL;
}

int mcp_discovery_job_make(mcp_discovery_job *j, const char *server)
{
    memset(j, 0, sizeof *j);
    const job_type *type = jobtypes_find(MCP_DISCOVER_TYPE);
    if (!type) {
        log_error("job type %s is not registered", MCP_DISCOVER_TYPE);
        return -1;
    }
    uuid_v7(j->id);
    snprintf(j->attempts, sizeof j->attempts, "%d", type->default_max_attempts);
    snprintf(j->timeout, sizeof j->timeout, "%d", type->default_timeout_s);
    cJSON *p = cJSON_CreateObject();
    bool ok = p != NULL;
    json_add_str(p, "server", server, &ok);
    p = json_done(p, ok);
    schema_error serr;
    if (p && schema_validate(type->schema, p, &serr) != 0) {
        log_error("%s payload outside its job schema: %s %s", MCP_DISCOVER_TYPE, serr.path,
                  serr.message);
        cJSON_Delete(p);
        return -1;
    }
    j->payload = p ? json_print(p) : NULL;
    cJSON_Delete(p);
    j->event = job_queued_event(j->id, MCP_DISCOVER_TYPE, 0);
    if (!j->payload || !j->event) {
        log_error("%s job for %s: out of memory", MCP_DISCOVER_TYPE, server);
        mcp_discovery_job_free(j);
        return -1;
    }
    return 0;
}
