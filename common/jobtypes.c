/*
 * jobtypes.c - the registry of job types: names, payload schemas and
 * defaults (see jobtypes.h).
 *
 * Schemas are JSON Schema text so they can be shown to users as they are
 * (GET /openapi.json) and checked by common/schema.c. Every object schema
 * says additionalProperties false: a misspelt payload field is an error
 * at submission rather than a silently ignored option.
 */
#include <string.h>

#include "jobtypes.h"

static const char demo_schema[] =
    "{\"type\":\"object\","
    "\"properties\":{"
      "\"events\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":10000,\"default\":5},"
      "\"duration_ms\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":600000,\"default\":1000}"
    "},"
    "\"additionalProperties\":false}";

static const char test_schema[] =
    "{\"type\":\"object\","
    "\"properties\":{"
      "\"outcome\":{\"type\":\"string\",\"enum\":[\"succeed\",\"fail\"]},"
      "\"result\":{},"
      "\"error\":{\"type\":\"object\","
        "\"properties\":{"
          "\"code\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":64},"
          "\"message\":{\"type\":\"string\",\"minLength\":0,\"maxLength\":500}"
        "},"
        "\"required\":[\"code\"],"
        "\"additionalProperties\":false},"
      "\"sleep_ms\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":600000},"
      "\"retryable\":{\"type\":\"boolean\"},"
      "\"fail_attempts\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":100},"
      "\"fail_until_ms\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":100000000000000}"
    "},"
    "\"required\":[\"outcome\"],"
    "\"additionalProperties\":false}";

static const char long_running_schema[] =
    "{\"type\":\"object\","
    "\"properties\":{"
      "\"duration_ms\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":3600000,\"default\":60000},"
      "\"progress_interval_ms\":{\"type\":\"integer\",\"minimum\":10,\"maximum\":60000,\"default\":1000}"
    "},"
    "\"additionalProperties\":false}";

static const char agent_run_schema[] =
    "{\"type\":\"object\","
    "\"properties\":{"
      "\"run_id\":{\"type\":\"string\",\"format\":\"uuid\",\"minLength\":36,\"maxLength\":36},"
      "\"prompt\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":32000},"
      "\"session_id\":{\"type\":\"string\",\"format\":\"uuid\",\"minLength\":36,\"maxLength\":36},"
      "\"model\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":128},"
      "\"temperature\":{\"type\":\"number\",\"minimum\":0,\"maximum\":2},"
      "\"max_tokens\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":32768},"
      "\"planning_mode\":{\"type\":\"string\",\"enum\":[\"full\",\"optional\",\"none\"]},"
      "\"response_mode\":{\"type\":\"string\","
        "\"enum\":[\"fallback-only\",\"llm-best-effort\",\"llm-required\"]},"
      "\"tools\":{\"type\":\"array\",\"maxItems\":64,"
        "\"items\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":128}}"
    "},"
    "\"required\":[\"run_id\",\"prompt\"],"
    "\"additionalProperties\":false}";

/* bench/run's fan-out emitter: events at a fixed rate, each stamped. */
static const char bench_ticker_schema[] =
    "{\"type\":\"object\","
    "\"properties\":{"
      "\"rate\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":10000,\"default\":10},"
      "\"duration_s\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":600,\"default\":10}"
    "},"
    "\"additionalProperties\":false}";

/* A discovery of one of the tenant's MCP servers, queued by the gateway
 * when the server is registered, changed or refreshed. The name is the
 * server's in mcp_servers (mcp_server_name_valid: the pattern with
 * maxLength says [a-z0-9][a-z0-9_-]{0,47} without a counted repeat); the
 * worker reads the rest from the row. */
static const char mcp_discover_schema[] =
    "{\"type\":\"object\","
    "\"properties\":{"
      "\"server\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":48,"
        "\"pattern\":\"^[a-z0-9][a-z0-9_-]*$\"}"
    "},"
    "\"required\":[\"server\"],"
    "\"additionalProperties\":false}";

static job_type registry[] = {
    { "demo", "Emits `events` progress events over `duration_ms`, then succeeds.",
      demo_schema, 3, 300, false, NULL },
    { "test", "Succeeds or fails as its payload says, after `sleep_ms`. Its first "
      "`fail_attempts` attempts fail retryably; any attempt before the wall-clock time "
      "`fail_until_ms` (Unix ms) fails for good; `retryable` makes a failure retryable. "
      "With no `result` given, the result is {\"attempt\": N}.",
      test_schema, 1, 300, false, NULL },
    { "long-running", "Emits progress every `progress_interval_ms` for `duration_ms`.",
      long_running_schema, 1, 3700, false, NULL },
    { "agent.run", "An agent run; built by the gateway for POST /v1/agent-runs.",
      agent_run_schema, 1, 600, true, NULL },
    { "bench.ticker", "Emits `rate` job.progress events a second for `duration_s` seconds, "
      "each with data {\"i\": n, \"sent_us\": CLOCK_REALTIME microseconds when emitted}, "
      "then succeeds. For measuring event delivery (bench/run).",
      bench_ticker_schema, 1, 660, false, NULL },
    /* Internal: only the gateway creates it (POST /v1/mcp-servers, PATCH,
     * .../refresh), with the server's row in the same transaction. */
    { "mcp.discover", "Connects to the tenant's MCP server `server`, lists its tools and "
      "records them (status, tools, tool manifests {server}.{tool}); queued by the gateway "
      "for POST /v1/mcp-servers, PATCH and .../refresh, and by a worker whose client heard "
      "notifications/tools/list_changed.",
      mcp_discover_schema, 3, 120, true, NULL },
};

#define REGISTRY_COUNT (sizeof registry / sizeof *registry)

int jobtypes_init(void)
{
    for (size_t i = 0; i < REGISTRY_COUNT; i++) {
        if (registry[i].schema != NULL)
            continue;   /* already done: init may be called more than once */
        cJSON *schema = cJSON_Parse(registry[i].schema_json);
        if (!cJSON_IsObject(schema)) {
            cJSON_Delete(schema);
            return -1;
        }
        registry[i].schema = schema;
    }
    return 0;
}

const job_type *jobtypes_find(const char *name)
{
    if (name == NULL)
        return NULL;
    for (size_t i = 0; i < REGISTRY_COUNT; i++)
        if (strcmp(registry[i].name, name) == 0)
            return &registry[i];
    return NULL;
}

const job_type *jobtypes_all(size_t *count)
{
    if (count)
        *count = REGISTRY_COUNT;
    return registry;
}
