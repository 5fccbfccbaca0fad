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

#include <stdbool.h>
#include <stddef.h>

/* The most sentinels AGENTGATE_REDIS_SENTINELS may list. */
#define CONFIG_REDIS_SENTINELS_MAX 8

/* One field per setting. The defaults are written once, in the settings
 * table of config.c (config_setting_default), and shown with every
 * setting in deploy/agentgate.env.example. */
typedef struct ag_config {
    /* Dependencies. */
    char database_url[512];   /* AGENTGATE_DATABASE_URL: libpq conninfo or URI; the
                                 services' non-owner role (row-level security applies) */
    char migrate_database_url[512]; /* AGENTGATE_MIGRATE_DATABASE_URL: the owner role that
                                 migrations run as; empty: database_url */
    char database_password[256]; /* AGENTGATE_DATABASE_PASSWORD: the services' password
                                 apart from the URL (a file or credential); config_load
                                 merges it into database_url and wipes this field */
    int  migrate_wait_s;      /* AGENTGATE_MIGRATE_WAIT_S: how long agentgate-migrate
                                 waits for PostgreSQL to accept connections; 0: one try */
    char redis_host[256];     /* from AGENTGATE_REDIS_URL
                                 redis://[user:password@]host:port/db */
    int  redis_port;
    int  redis_db;
    char redis_url_username[128]; /* the URL's user, percent-decoded; "" when none */
    char redis_url_password[512]; /* the URL's password, percent-decoded */

    /* Redis credentials and Sentinel (common/redis_conn.h uses them). */
    char redis_username[128]; /* AGENTGATE_REDIS_USERNAME: ACL user; "" sends AUTH
                                 with the password alone (the default user) */
    char redis_password[512]; /* AGENTGATE_REDIS_PASSWORD (or _FILE): "" is no AUTH;
                                 set either these two or the URL's user:password */
    char redis_sentinels[1024]; /* AGENTGATE_REDIS_SENTINELS: "host:port,..."; when set,
                                 the master is asked of them and the URL's host
                                 and port are not used */
    char redis_sentinel_master[128]; /* AGENTGATE_REDIS_SENTINEL_MASTER: its name */
    char redis_sentinel_password[512]; /* AGENTGATE_REDIS_SENTINEL_PASSWORD (or _FILE):
                                 the sentinels' own requirepass; "" is none */

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
    int  priority_fair_every; /* AGENTGATE_PRIORITY_FAIR_EVERY: every Nth job a tenant
                                 takes of a type comes from its lowest waiting
                                 priority band (common/jobq.h); 0: strictly by band */

    /* Retention (worker maintenance; sql/migrations/016_retention.sql). */
    int  retention_days;      /* AGENTGATE_RETENTION_DAYS: finished jobs, their events,
                                 runs and steps kept this long, unless the tenant's
                                 settings.retention_days says otherwise */
    int  audit_retention_days;/* AGENTGATE_AUDIT_RETENTION_DAYS: audit rows kept */
    int  retention_interval_ms; /* AGENTGATE_RETENTION_INTERVAL_MS: how often a worker
                                 deletes what is past retention; 0: never (off) */
    int  retention_batch;     /* AGENTGATE_RETENTION_BATCH: jobs (or audit rows) per
                                 deleting transaction */

    /* Worker metrics endpoint. */
    char worker_metrics_listen[160]; /* AGENTGATE_WORKER_METRICS_LISTEN: host:port the
                                 worker serves GET /metrics on; empty: off */
    char worker_metrics_port_offset_text[8]; /* AGENTGATE_WORKER_METRICS_PORT_OFFSET
                                 as given: 0..65534, empty for 0. Empty by default
                                 so that the env file need not set it, as a value
                                 there would override every worker@N unit's %i */
    int  worker_metrics_port_offset; /* the same, parsed by config_load: added to that
                                 port, so worker@N units each get their own port */

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
    int  builtin_delta_pause_ms; /* AGENTGATE_BUILTIN_DELTA_PAUSE_MS: the built-in
                                 provider's pause after each llm.delta event; 0: none */
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

    /* Traces: OpenTelemetry spans exported over OTLP/HTTP (common/otlp_export.h). */
    char otlp_endpoint[512];  /* AGENTGATE_OTLP_ENDPOINT: collector base URL
                                 ("http://127.0.0.1:4318"), /v1/traces appended;
                                 empty: tracing off */
    char otlp_headers[2048];  /* AGENTGATE_OTLP_HEADERS (or _FILE): "name=value,..."
                                 sent with every export (a collector's API key) */
    int  otlp_sample_percent; /* AGENTGATE_OTLP_SAMPLE_PERCENT: share of new traces
                                 kept; a caller's traceparent decides for its own */
    int  otlp_queue_size;     /* AGENTGATE_OTLP_QUEUE_SIZE: ended spans waiting for
                                 export; more are dropped and counted */
    int  otlp_batch_size;     /* AGENTGATE_OTLP_BATCH_SIZE: spans per POST */
    int  otlp_interval_ms;    /* AGENTGATE_OTLP_INTERVAL_MS: a partial batch waits at most */
    int  otlp_timeout_ms;     /* AGENTGATE_OTLP_TIMEOUT_MS: one POST, connect included */
    /* Completion webhooks (gateway: the allow-list; worker: delivery). */
    char webhook_url_allowlist[4096]; /* AGENTGATE_WEBHOOK_URL_ALLOWLIST: comma list of
                                 URL prefixes a job's webhook may be under (as
                                 AGENTGATE_MCP_URL_ALLOWLIST); empty: webhooks refused */
    int  webhook_timeout_ms;  /* AGENTGATE_WEBHOOK_TIMEOUT_MS: one delivery attempt, whole */
    int  webhook_retry_base_ms; /* AGENTGATE_WEBHOOK_RETRY_BASE_MS: the first retry's delay;
                                 each next one doubles it */
    int  webhook_retry_max_ms; /* AGENTGATE_WEBHOOK_RETRY_MAX_MS: the longest delay */
    int  webhook_retry_window_s; /* AGENTGATE_WEBHOOK_RETRY_WINDOW_S: no retry starts later
                                 than this after the job ended */
    int  webhook_poll_ms;     /* AGENTGATE_WEBHOOK_POLL_MS: how often a worker looks for due
                                 deliveries when it found none */

    /* Logging. */
    char log_level[16];       /* AGENTGATE_LOG_LEVEL: debug|info|warn|error */
    char access_log[4];       /* AGENTGATE_ACCESS_LOG: on|off; on: the gateway logs
                                 every answer at info (method, route, status,
                                 latency_ms) */
} ag_config;

/*
 * Loads defaults, then the file at env_file (may be NULL), then the
 * environment, into *cfg. Returns 0, or -1 with a one-line reason in
 * err (err_size bytes) for an unreadable file or a malformed value.
 */
int config_load(ag_config *cfg, const char *env_file, char *err, size_t err_size);

/*
 * Parses "redis://[user:password@]host:port/db" (credentials, port and db
 * optional; user and password percent-decoded, user may be empty as in
 * "redis://:password@host") into cfg's redis_host, redis_port, redis_db,
 * redis_url_username and redis_url_password. Returns 0, or -1 when the URL
 * is malformed (a "rediss://" URL too: TLS goes through a local tunnel).
 */
int config_parse_redis_url(ag_config *cfg, const char *url);

/*
 * Splits "host:port" or "[v6addr]:port" (port 1..65535 required) into host
 * (without brackets, host_size bytes) and *port. Returns 0, or -1 when s
 * is malformed or the host does not fit.
 */
int config_parse_host_port(const char *s, char *host, size_t host_size, int *port);

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

/*
 * True when setting i is a secret: besides its variable it may be read
 * from the file named by its NAME_FILE variable or from the systemd
 * credential NAME ($CREDENTIALS_DIRECTORY/NAME), and is never echoed in
 * an error. False when i is out of range.
 */
bool config_setting_secret(size_t i);

#endif
