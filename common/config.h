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

typedef struct ag_config {
    /* Dependencies. */
    char database_url[512];   /* AGENTGATE_DATABASE_URL: libpq conninfo or URI */
    char redis_host[256];     /* from AGENTGATE_REDIS_URL redis://host:port/db */
    int  redis_port;
    int  redis_db;

    /* Gateway. */
    char listen_addr[128];    /* AGENTGATE_LISTEN host:port, default 127.0.0.1:8080 */
    int  listen_port;
    int  gateway_threads;     /* AGENTGATE_GATEWAY_THREADS, default: online cores */
    int  pg_pool_size;        /* AGENTGATE_PG_POOL_SIZE, connections per loop thread */
    size_t max_body_bytes;    /* AGENTGATE_MAX_BODY_BYTES, default 1 MiB */
    int  sse_keepalive_ms;    /* AGENTGATE_SSE_KEEPALIVE_MS, default 15000 */
    size_t sse_max_buffer_bytes; /* AGENTGATE_SSE_MAX_BUFFER_BYTES: slow subscriber bound */

    /* Auth. */
    char jwt_alg[16];         /* AGENTGATE_JWT_ALG, pinned; default HS256 */
    char jwt_secret[512];     /* AGENTGATE_JWT_SECRET (HS256) */
    char jwt_issuer[256];     /* AGENTGATE_JWT_ISSUER, checked when set */
    char jwt_audience[256];   /* AGENTGATE_JWT_AUDIENCE, checked when set */
    int  jwt_leeway_s;        /* AGENTGATE_JWT_LEEWAY_S, default 30 */

    /* Events. */
    int  event_ring_size;     /* AGENTGATE_EVENT_RING_SIZE, events kept in Redis per job */
    int  event_ttl_s;         /* AGENTGATE_EVENT_TTL_S, Redis ring/state lifetime */

    /* Worker. */
    char worker_id[128];      /* AGENTGATE_WORKER_ID, default host:pid */
    char worker_queues[512];  /* AGENTGATE_WORKER_QUEUES, comma list of job types */
    int  worker_concurrency;  /* AGENTGATE_WORKER_CONCURRENCY, jobs at once per process */
    int  heartbeat_ms;        /* AGENTGATE_HEARTBEAT_MS, default 2000 */
    int  lease_ms;            /* AGENTGATE_LEASE_MS, default 30000 */
    int  cancel_poll_ms;      /* AGENTGATE_CANCEL_POLL_MS, default 50 */
    int  shutdown_grace_ms;   /* AGENTGATE_SHUTDOWN_GRACE_MS, default 30000 */

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

#endif
