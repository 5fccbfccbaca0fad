/*
 * config.h - the settings of every agentgate process.
 *
 * Settings come from AGENTGATE_* environment variables; a file given with
 * --config holds the same KEY=VALUE lines (systemd EnvironmentFile syntax)
 * and fills in whatever the environment does not set. One struct serves the
 * gateway, the worker and the tools, so a setting has one name everywhere.
 */
#ifndef AG_CONFIG_H
#define AG_CONFIG_H

#include <stddef.h>

/* One field per setting. The defaults are written once, in the settings
 * table of config.c (config_setting_default), and shown with every
 * setting in deploy/agentgate.env.example. */
typedef struct ag_config {
    /* Dependencies. */
    char database_url[512];   /* AGENTGATE_DATABASE_URL: libpq conninfo or URI; the
                                 services' non-owner role (row-level security applies) */
    char migrate_database_url[512]; /* AGENTGATE_MIGRATE_DATABASE_URL: the owner role that
                                 migrations run as; empty: database_url */
    int  migrate_wait_s;      /* AGENTGATE_MIGRATE_WAIT_S: how long agentgate-migrate
                                 waits for PostgreSQL to accept connections; 0: one try */
    char redis_host[256];     /* from AGENTGATE_REDIS_URL redis://host:port/db */
    int  redis_port;
    int  redis_db;

    /* Gateway. */
    char listen_addr[128];    /* AGENTGATE_LISTEN host:port */
    int  listen_port;
    int  gateway_threads;     /* AGENTGATE_GATEWAY_THREADS; default: online cores */
    int  pg_pool_size;        /* AGENTGATE_PG_POOL_SIZE, connections per loop thread */
    size_t max_body_bytes;    /* AGENTGATE_MAX_BODY_BYTES */
    int  sse_keepalive_ms;    /* AGENTGATE_SSE_KEEPALIVE_MS */
    size_t sse_max_buffer_bytes; /* AGENTGATE_SSE_MAX_BUFFER_BYTES: slow subscriber bound */

    /* Auth. */
    char jwt_alg[24];         /* AGENTGATE_JWT_ALG, pinned: a comma list of
                                 HS256, RS256, ES256 */
    char jwt_secret[512];     /* AGENTGATE_JWT_SECRET (HS256) */
    char jwt_issuer[256];     /* AGENTGATE_JWT_ISSUER, checked when set */
    char jwt_audience[256];   /* AGENTGATE_JWT_AUDIENCE, checked when set */
    int  jwt_leeway_s;        /* AGENTGATE_JWT_LEEWAY_S */
    char jwt_jwks_file[512];  /* AGENTGATE_JWT_JWKS_FILE: RS256/ES256 keys (RFC 7517) */
    char jwt_jwks_url[512];   /* AGENTGATE_JWT_JWKS_URL: fetched with libcurl, cached */
    int  jwt_jwks_cache_s;    /* AGENTGATE_JWT_JWKS_CACHE_S: refetch after */
    int  jwt_jwks_min_refresh_s; /* AGENTGATE_JWT_JWKS_MIN_REFRESH_S: at most one fetch
                                 this often, even for unknown kids */
    int  jwt_jwks_timeout_ms; /* AGENTGATE_JWT_JWKS_TIMEOUT_MS: one fetch */

    /* Hostile input (gateway). */
    size_t max_uri_bytes;     /* AGENTGATE_MAX_URI_BYTES: request target */
    size_t max_header_bytes;  /* AGENTGATE_MAX_HEADER_BYTES: all headers */
    int  max_headers;         /* AGENTGATE_MAX_HEADERS: header count */
    int  max_json_depth;      /* AGENTGATE_MAX_JSON_DEPTH: nesting of a body */
    int  header_timeout_ms;   /* AGENTGATE_HEADER_TIMEOUT_MS: a request's head must arrive
                                 within this (slowloris) */
    int  idle_timeout_ms;     /* AGENTGATE_IDLE_TIMEOUT_MS: an idle keep-alive connection
                                 is closed after */
    int  body_timeout_ms;     /* AGENTGATE_BODY_TIMEOUT_MS: a request's body must arrive
                                 within this of its head (408 after) */
    int  sse_max_per_principal; /* AGENTGATE_SSE_MAX_PER_PRINCIPAL: open streams per
                                 tenant+sub across the gateway */
    char cors_origins[1024];  /* AGENTGATE_CORS_ORIGINS: comma list of allowed origins
                                 ("https://app.example.com"); empty: no CORS */

    /* Limits (gateway; a tenant may lower them in tenants.settings). */
    char rate_limits[1024];   /* AGENTGATE_RATE_LIMITS: "scope:action=capacity/period_ms,..."
                                 e.g. "principal:jobs.create=100/1000,tenant:*=2000/1000" */
    int  tenant_settings_cache_ms; /* AGENTGATE_TENANT_SETTINGS_CACHE_MS */
    int  idempotency_ttl_s;   /* AGENTGATE_IDEMPOTENCY_TTL_S: keys kept */
    int  tenant_max_running;  /* AGENTGATE_TENANT_MAX_RUNNING: jobs of one tenant running at
                                 once across all workers, a ceiling that
                                 tenants.settings.max_running can only lower; 0: no cap */

    /* Events. */
    int  event_ring_size;     /* AGENTGATE_EVENT_RING_SIZE, events kept in Redis per job */
    int  event_ttl_s;         /* AGENTGATE_EVENT_TTL_S, Redis ring/state lifetime */

    /* Worker. */
    char worker_id[128];      /* AGENTGATE_WORKER_ID; empty: host:pid */
    char worker_queues[512];  /* AGENTGATE_WORKER_QUEUES, comma list of job types */
    int  worker_concurrency;  /* AGENTGATE_WORKER_CONCURRENCY, jobs at once per process */
    int  heartbeat_ms;        /* AGENTGATE_HEARTBEAT_MS */
    int  lease_ms;            /* AGENTGATE_LEASE_MS */
    int  worker_registry_ttl_ms; /* AGENTGATE_WORKER_REGISTRY_TTL_MS: a worker drops out
                                 of the registry (GET /v1/workers) once it has not
                                 renewed its entry for this long, at least three
                                 heartbeats (worker_registry.h) */
    int  cancel_poll_ms;      /* AGENTGATE_CANCEL_POLL_MS */
    int  shutdown_grace_ms;   /* AGENTGATE_SHUTDOWN_GRACE_MS */
    int  reaper_interval_ms;  /* AGENTGATE_REAPER_INTERVAL_MS: how often expired leases
                                 are looked for */
    int  reconcile_interval_ms; /* AGENTGATE_RECONCILE_INTERVAL_MS: how often queued jobs
                                 missing from Redis are re-enqueued */
    int  retry_base_ms;       /* AGENTGATE_RETRY_BASE_MS: first retry delay */
    int  retry_max_ms;        /* AGENTGATE_RETRY_MAX_MS: retry delay cap */
    int  dead_letter_max;     /* AGENTGATE_DEAD_LETTER_MAX: ids kept in jobs:dead */

    /* Language-model providers (worker). */
    char llm_providers[1024]; /* AGENTGATE_LLM_PROVIDERS: "name=base_url,..." in
                                 fallback order; empty: built-in provider only */
    char llm_api_keys[2048];  /* AGENTGATE_LLM_API_KEYS: "name=key,..." */
    char llm_model[128];      /* AGENTGATE_LLM_MODEL: model when none is named */
    int  llm_connect_timeout_ms;    /* AGENTGATE_LLM_CONNECT_TIMEOUT_MS */
    int  llm_first_byte_timeout_ms; /* AGENTGATE_LLM_FIRST_BYTE_TIMEOUT_MS */
    int  llm_total_timeout_ms;      /* AGENTGATE_LLM_TOTAL_TIMEOUT_MS */
    int  llm_max_retries;     /* AGENTGATE_LLM_MAX_RETRIES: per provider */
    int  llm_retry_base_ms;   /* AGENTGATE_LLM_RETRY_BASE_MS */
    int  llm_retry_max_ms;    /* AGENTGATE_LLM_RETRY_MAX_MS */
    int  llm_circuit_failures;/* AGENTGATE_LLM_CIRCUIT_FAILURES: failures in a row
                                 that open a provider's circuit */
    int  llm_circuit_open_ms; /* AGENTGATE_LLM_CIRCUIT_OPEN_MS */

    /* Agent runs (worker). */
    int  agent_max_iterations;/* AGENTGATE_AGENT_MAX_ITERATIONS: steps per run */
    int  agent_run_timeout_ms;/* AGENTGATE_AGENT_RUN_TIMEOUT_MS */
    size_t session_context_bytes; /* AGENTGATE_SESSION_CONTEXT_BYTES: earlier turns
                                 given to a run in a session */
    size_t output_max_bytes;  /* AGENTGATE_OUTPUT_MAX_BYTES: a run's output cap */
    int  approval_timeout_s;  /* AGENTGATE_APPROVAL_TIMEOUT_S: how long a tool call
                                 waits for approval before it counts as denied */

    /* MCP servers (gateway and worker). */
    char mcp_url_allowlist[4096]; /* AGENTGATE_MCP_URL_ALLOWLIST: comma list of URL
                                 prefixes tenants may register HTTP servers under;
                                 empty: none (see mcp_config.h) */
    char mcp_servers_file[512]; /* AGENTGATE_MCP_SERVERS_FILE: the operator's JSON file
                                 of stdio servers; empty: none */
    int  mcp_call_timeout_ms; /* AGENTGATE_MCP_CALL_TIMEOUT_MS: one request to a server */
    int  mcp_connect_timeout_ms; /* AGENTGATE_MCP_CONNECT_TIMEOUT_MS: connecting or
                                 starting a server, initialize included */
    size_t mcp_result_max_bytes; /* AGENTGATE_MCP_RESULT_MAX_BYTES: one answer's cap */
    int  mcp_max_servers;     /* AGENTGATE_MCP_MAX_SERVERS: servers one tenant may
                                 register */

    /* Logging. */
    char log_level[16];       /* AGENTGATE_LOG_LEVEL: debug|info|warn|error */
} ag_config;

/*
 * Loads defaults, then the file at env_file (may be NULL), then the
 * environment, into *cfg. Returns 0, or -1 with a one-line reason in
 * err (err_size bytes) for an unreadable file or a malformed value.
 */
int config_load(ag_config *cfg, const char *env_file, char *err, size_t err_size);

/*
 * Parses "redis://host:port/db" (port and db optional) into cfg.
 * Returns 0, or -1 when the URL is malformed.
 */
int config_parse_redis_url(ag_config *cfg, const char *url);

/*
 * The settings table, read-only: for documentation, the example env file's
 * test, and tools that list the settings. Settings are numbered 0 to
 * config_setting_count() - 1, grouped as in ag_config.
 */
size_t config_setting_count(void);

/* The variable name of setting i ("AGENTGATE_LISTEN"); NULL when i is
 * out of range. */
const char *config_setting_name(size_t i);

/*
 * The default of setting i as an env file would write it ("127.0.0.1:8080",
 * "1048576", "info"), which config_load parses like any value; "" for an
 * empty string, and for the one default computed at start,
 * AGENTGATE_GATEWAY_THREADS (the number of online cores). NULL when i is
 * out of range. Static storage; never freed.
 */
const char *config_setting_default(size_t i);

#endif
