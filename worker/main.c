/*
 * main.c - agentgate-worker: the daemon that runs jobs.
 *
 *   agentgate-worker [--config FILE] [--help] [--version]
 *
 * Reads its settings (AGENTGATE_* environment, then FILE), picks its
 * worker id and queues, and hands over to worker_run until SIGTERM or
 * SIGINT. Exit codes: 0 after a clean shutdown, 1 when the worker could
 * not start, 2 for a usage or configuration error.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cliopt.h"
#include "config.h"
#include "handler_table.h"
#include "jobtypes.h"
#include "llm_router.h"
#include "log.h"
#include "mcp_pool.h"
#include "mcp_server.h"
#include "otlp_export.h"
#include "queues.h"
#include "sd_notify.h"
#include "worker.h"
#include "worker_metrics.h"
#include "worker_metrics_http.h"

#define PROG "agentgate-worker"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: agentgate-worker [--config FILE]\n"
            "       agentgate-worker --help | --version\n"
            "\n"
            "Takes job ids from the Redis queues jobs:queue:{type}:{tenant}, a turn\n"
            "per tenant, runs each job's handler, and records its events and\n"
            "outcome in PostgreSQL and Redis.\n"
            "\n"
            "  -c, --config FILE  KEY=VALUE settings file; the environment overrides it\n"
            "  -h, --help         show this help\n"
            "  -V, --version      show the version\n"
            "\n"
            "Settings: AGENTGATE_DATABASE_URL, AGENTGATE_REDIS_URL, AGENTGATE_WORKER_ID\n"
            "(default host:pid), AGENTGATE_WORKER_QUEUES (comma list of job types;\n"
            "default all), AGENTGATE_WORKER_CONCURRENCY, AGENTGATE_HEARTBEAT_MS,\n"
            "AGENTGATE_LEASE_MS, AGENTGATE_CANCEL_POLL_MS, AGENTGATE_SHUTDOWN_GRACE_MS,\n"
            "AGENTGATE_EVENT_RING_SIZE, AGENTGATE_EVENT_TTL_S, AGENTGATE_LOG_LEVEL,\n"
            "AGENTGATE_WORKER_METRICS_LISTEN (host:port for GET /metrics; default off),\n"
            "AGENTGATE_WORKER_METRICS_PORT_OFFSET (added to that port).\n"
            "SIGTERM/SIGINT: stop taking jobs, let running ones finish within the\n"
            "grace, then hand the rest back to their queues; a second signal hands\n"
            "them back at once.\n");
}

static void default_worker_id(char *out, size_t size)
{
    char host[256];
    if (gethostname(host, sizeof host) != 0)
        snprintf(host, sizeof host, "localhost");
    host[sizeof host - 1] = '\0';
    snprintf(out, size, "%.100s:%ld", host, (long)getpid());
}

int main(int argc, char **argv)
{
    const char *config_file;
    int rc = cliopt_parse_daemon(argc, argv, PROG, usage, &config_file);
    if (rc != 0)
        return rc == 1 ? 0 : 2;

    static ag_config cfg;
    char err[512];
    if (config_load(&cfg, config_file, err, sizeof err) < 0) {
        fprintf(stderr, "agentgate-worker: %s\n", err);
        return 2;
    }
    log_init("worker", cfg.log_level);
    if (jobtypes_init() < 0) {
        log_error("job type registry failed to load");
        return 1;
    }

    queue_set queues;
    if (queues_parse(cfg.worker_queues, &queues, err, sizeof err) < 0) {
        fprintf(stderr, "agentgate-worker: %s\n", err);
        return 2;
    }

    char worker_id[WORKER_ID_MAX];
    if (cfg.worker_id[0])
        snprintf(worker_id, sizeof worker_id, "%s", cfg.worker_id);
    else
        default_worker_id(worker_id, sizeof worker_id);

    /* Blocked before any thread starts, so every thread inherits the mask
     * and only worker_run's sigtimedwait ever takes these signals. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    /* Test hook (sd_notify.h): SIGUSR2 stalls the supervisor. */
    if (sdn_test_hooks())
        sigaddset(&sigs, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    /* A write to a Redis socket the server closed must fail, not kill. */
    signal(SIGPIPE, SIG_IGN);

    if (llm_router_init(&cfg, err, sizeof err) < 0) {
        fprintf(stderr, "agentgate-worker: %s\n", err);
        return 2;
    }
    /* The operator's MCP servers: a bad file stops the worker here, not
     * the first job that needs it. */
    if (mcp_servers_setup(&cfg, err, sizeof err) < 0) {
        fprintf(stderr, "agentgate-worker: %s\n", err);
        llm_router_shutdown();
        return 2;
    }

    handler_table_register();
    if (otlp_export_start(&cfg, "agentgate-worker", err, sizeof err) < 0) {
        fprintf(stderr, "agentgate-worker: %s\n", err);
        mcp_servers_teardown();
        llm_router_shutdown();
        return 1;
    }
    /* Every series exists before the listener serves them and before any
     * thread reports; the listener is up before the worker says it is. */
    worker_metrics_init();
    metrics_http *metrics = metrics_http_start(&cfg, err, sizeof err);
    if (metrics == NULL && err[0] != '\0') {
        fprintf(stderr, "agentgate-worker: %s\n", err);
        otlp_export_stop();
        mcp_servers_teardown();
        llm_router_shutdown();
        return 1;
    }
    static worker w;
    if (worker_init(&w, &cfg, worker_id, &queues) < 0) {
        metrics_http_stop(metrics);
        otlp_export_stop();
        mcp_servers_teardown();
        llm_router_shutdown();
        return 1;
    }
    worker_metrics_watch(&w);
    rc = worker_run(&w, &sigs);
    /* Before worker_free: a scrape reads the worker's running jobs. */
    metrics_http_stop(metrics);
    worker_free(&w);
    /* Every job thread has stopped: no client is leased any more, so each
     * stdio server is stopped and each HTTP session deleted now. */
    mcp_pool_shutdown();
    mcp_servers_teardown();
    llm_router_shutdown();
    otlp_export_stop();   /* after the job threads: their last spans go out too */
    return rc;
}
