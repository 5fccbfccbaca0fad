/*
 * main.c - agentgate-gateway: the HTTP side of agentgate.
 *
 * One listening socket, served by N libevhtp loop threads; each thread
 * gets its own PostgreSQL pool, Redis links and SSE hub when it starts.
 * The main thread only waits for SIGTERM/SIGINT.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <evhtp.h>
#include <evhtp/thread.h>
#include <event2/thread.h>

#include "gateway.h"
#include "audit.h"
#include "auth.h"
#include "guard.h"
#include "http.h"
#include "sse.h"
#include "job_batch.h"
#include "job_publish.h"
#include "pg_async.h"
#include "redis_async.h"
#include "cliopt.h"
#include "clock.h"
#include "config.h"
#include "jobtypes.h"
#include "log.h"
#include "mcp_config.h"
#include "api.h"
#include "openapi.h"
#include "notify.h"
#include "access_log.h"
#include "otlp_export.h"
#include "gw_metrics.h"

#define PROG "agentgate-gateway"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: " PROG " [--config FILE]\n"
            "       " PROG " --openapi\n"
            "       " PROG " --help | --version\n"
            "\n"
            "Serves the agentgate HTTP API. Settings come from AGENTGATE_*\n"
            "environment variables; FILE holds the same KEY=VALUE lines\n"
            "(deploy/agentgate.env.example lists them all).\n"
            "\n"
            "  -c, --config FILE  KEY=VALUE settings file; the environment overrides it\n"
            "  -h, --help         show this help\n"
            "  -V, --version      show the version\n"
            "      --openapi      print the API's OpenAPI document (GET /openapi.json) and exit\n"
            "\n"
            "SIGTERM/SIGINT: stop accepting, tell event-stream clients to reconnect,\n"
            "let requests in flight finish for half a second, then exit.\n"
            "Exit status: 0 after a clean stop, 1 when the gateway could not start,\n"
            "2 for a usage or configuration error.\n");
}

/* The guard (slow clients, caps, CORS) and the audit trail, at the points
 * of a connection's and a reply's life the HTTP core offers. */
static void install_http_hooks(void)
{
    http_hooks h = {
        .connection_begin = guard_connection_begin,
        .request_read = guard_request_read,
        .connection_idle = guard_connection_idle,
        .connection_end = guard_connection_end,
        .reply_headers = guard_add_cors_headers,
        .replied = audit_on_reply,
    };
    http_set_hooks(&h);
}

static void thread_init(evhtp_t *htp, evthr_t *thr, void *arg)
{
    (void)htp;
    static atomic_int next_index;
    gw_server *srv = arg;
    gw_thread *t = calloc(1, sizeof *t);
    if (!t) { log_error("out of memory starting a loop thread"); abort(); }
    t->srv = srv;
    t->base = evthr_get_base(thr);
    t->index = atomic_fetch_add(&next_index, 1);
    if (t->index >= GW_MAX_THREADS) { log_error("too many loop threads"); abort(); }
    t->pg = pg_pool_new(t->base, srv->cfg.database_url, srv->cfg.pg_pool_size);
    t->hub = sse_hub_new(t);
    t->batch = job_batch_new(t);
    t->new_jobs = new_jobs_new(t);
    rds_handlers h = { .on_message = sse_on_message, .on_subscribed = sse_on_subscribed,
                       .on_unsubscribed = sse_on_unsubscribed,
                       .on_resubscribe = sse_on_resubscribe, .arg = t->hub,
                       .on_pubsub_lost = sse_on_pubsub_lost };
    t->redis = rds_new(t->base, &srv->cfg, &h);
    if (!t->pg || !t->hub || !t->batch || !t->new_jobs || !t->redis) { log_error("out of memory starting a loop thread"); abort(); }
    evthr_set_aux(thr, t);
    srv->threads[t->index] = t;
    gw_notify_thread_start(t);
    atomic_fetch_add(&srv->nthreads, 1);
}

static void thread_exit(evhtp_t *htp, evthr_t *thr, void *arg)
{
    (void)htp; (void)arg;
    gw_thread *t = evthr_get_aux(thr);
    if (!t) return;
    gw_notify_thread_stop(t);
    sse_hub_free(t->hub);
    job_batch_free(t->batch);
    audit_thread_done();
    new_jobs_free(t->new_jobs);
    t->new_jobs = NULL;
    rds_free(t->redis);
    pg_pool_free(t->pg);
    free(t);
}

#define DRAIN_MS 500

/* Runs on each loop thread: its streams end with a retry: hint. */
static void close_streams(evutil_socket_t fd, short what, void *arg)
{
    (void)fd; (void)what;
    gw_thread *t = arg;
    sse_hub_close_all(t->hub);
}

/* Runs on each loop thread at the end of the drain: whatever connection
 * is still open (idle keep-alive, a client that never read) is closed. */
static void close_connections(evutil_socket_t fd, short what, void *arg)
{
    (void)fd; (void)what;
    http_close_all(arg);
}

/* SIGTERM/SIGINT: stop accepting, tell every SSE client to reconnect
 * elsewhere, give in-flight requests DRAIN_MS to finish, then stop. */
static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    gw_server *srv = arg;
    log_info("signal %d: draining for %d ms, then stopping", (int)sig, DRAIN_MS);
    gw_notify_stopping(srv);
    evhtp_unbind_socket(srv->htp);
    struct timeval now = { 0, 0 }, last = { 0, (DRAIN_MS - 100) * 1000 },
                   drain = { 0, DRAIN_MS * 1000 };
    int n = atomic_load(&srv->nthreads);
    for (int i = 0; i < n; i++) {
        event_base_once(srv->threads[i]->base, -1, EV_TIMEOUT, close_streams, srv->threads[i], &now);
        event_base_once(srv->threads[i]->base, -1, EV_TIMEOUT, close_connections, srv->threads[i], &last);
    }
    event_base_loopexit(srv->base, &drain);
}

/* JWT settings, and the RS256/ES256 key set (file, or URL fetcher): auth.c. */
static int setup_auth(gw_server *srv)
{
    char err[512];
    if (auth_setup(srv, err, sizeof err) != 0) {
        fprintf(stderr, "agentgate-gateway: %s\n", err);
        return -1;
    }
    return 0;
}

/*
 * The operator's MCP settings, checked before anything starts: the stdio
 * servers file is loaded (and kept, read-only, for the handlers), and
 * every entry of the URL allow-list must be a URL prefix, since one that
 * does not parse would silently allow nothing. A fault is a one-line
 * reason in err.
 */
static int setup_mcp(const ag_config *cfg, mcp_servers_file *servers, char *err, size_t size)
{
    const char *p = cfg->mcp_url_allowlist;
    while (*p) {
        size_t n = strcspn(p, ",");
        /* Spaces around an entry are formatting, as mcp_url_allowed reads it. */
        size_t lead = strspn(p, " \t"), len = n > lead ? n - lead : 0;
        while (len && (p[lead + len - 1] == ' ' || p[lead + len - 1] == '\t')) len--;
        char entry[sizeof cfg->mcp_url_allowlist];
        snprintf(entry, sizeof entry, "%.*s", (int)len, p + lead);
        /* An entry that parses as a prefix allows itself. */
        if (len > 0 && !mcp_url_allowed(entry, entry)) {
            snprintf(err, size, "AGENTGATE_MCP_URL_ALLOWLIST: '%.200s' is not an http:// or "
                     "https:// URL prefix (no user information, query, fragment or dot segments)",
                     entry);
            return -1;
        }
        p += n;
        if (*p == ',') p++;
    }
    char why[512];
    if (mcp_servers_file_load(cfg->mcp_servers_file, servers, why, sizeof why) != 0) {
        snprintf(err, size, "AGENTGATE_MCP_SERVERS_FILE: %s", why);
        return -1;
    }
    api_mcp_servers_setup(servers);
    return 0;
}

/* libevhtp names IPv6 listeners "ipv6:ADDR". */
static int bind_listener(gw_server *srv)
{
    char addr[160];
    const char *host = srv->cfg.listen_addr;
    if (strchr(host, ':')) snprintf(addr, sizeof addr, "ipv6:%s", host);
    else snprintf(addr, sizeof addr, "%s", host);
    if (evhtp_bind_socket(srv->htp, addr, (uint16_t)srv->cfg.listen_port, 4096) != 0) {
        fprintf(stderr, "agentgate-gateway: cannot listen on %s:%d: %s\n", host,
                srv->cfg.listen_port, strerror(errno));
        return -1;
    }
    return 0;
}

/* --openapi: the document GET /openapi.json serves, with no settings,
 * database or network, for linters and code generators. */
static int print_openapi(void)
{
    size_t len;
    const char *doc = jobtypes_init() == 0 ? openapi_document(&len) : NULL;
    if (!doc) {
        fprintf(stderr, PROG ": the OpenAPI document could not be built\n");
        return 1;
    }
    fwrite(doc, 1, len, stdout);
    fputc('\n', stdout);
    return fflush(stdout) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    const char *config_file;
    if (argc == 2 && strcmp(argv[1], "--openapi") == 0)
        return print_openapi();
    int rc = cliopt_parse_daemon(argc, argv, PROG, usage, &config_file);
    if (rc != 0)
        return rc == 1 ? 0 : 2;

    static gw_server srv;
    char err[256];
    if (config_load(&srv.cfg, config_file, err, sizeof err) != 0) {
        fprintf(stderr, "agentgate-gateway: %s\n", err);
        return 2;
    }
    log_init("gateway", srv.cfg.log_level);
    access_log_enable(strcmp(srv.cfg.access_log, "on") == 0);
    static mcp_servers_file mcp_servers;
    char mcp_err[768];
    if (setup_mcp(&srv.cfg, &mcp_servers, mcp_err, sizeof mcp_err) != 0) {
        fprintf(stderr, "agentgate-gateway: %s\n", mcp_err);
        return 2;
    }
    if (setup_auth(&srv) != 0) { mcp_servers_file_free(&mcp_servers); return 2; }
    if (jobtypes_init() != 0) { fprintf(stderr, "agentgate-gateway: job type registry is broken\n"); auth_teardown(); return 1; }
    /* Built before the threads start; a route without a description is a
     * defect the unit tests name, so it costs /openapi.json (500), not the API. */
    if (!openapi_document(NULL)) log_error("the OpenAPI document could not be built");
    signal(SIGPIPE, SIG_IGN);
    srv.started_ms = clock_mono_ms();
    gw_metrics_init(&srv);
    if (otlp_export_start(&srv.cfg, "agentgate-gateway", err, sizeof err) != 0) {
        fprintf(stderr, "agentgate-gateway: %s\n", err);
        auth_teardown();
        return 1;
    }

    evthread_use_pthreads(); /* the signal handler posts work to loop threads */
    srv.base = event_base_new();
    srv.htp = srv.base ? evhtp_new(srv.base, NULL) : NULL;
    if (!srv.htp) { fprintf(stderr, "agentgate-gateway: cannot create the event loop\n"); auth_teardown(); return 1; }
    evhtp_set_gencb(srv.htp, gw_handle_request, &srv);
    /* Bodies past max_body_bytes are discarded and answered 413 (http.c);
     * libevhtp's own cap, far above it, only bounds what is read at all. */
    install_http_hooks();
    evhtp_set_post_accept_cb(srv.htp, http_on_accept, &srv);
    evhtp_set_max_body_size(srv.htp, srv.cfg.max_body_bytes * 64);
    evhtp_use_threads_wexit(srv.htp, thread_init, thread_exit, srv.cfg.gateway_threads, &srv);
    if (bind_listener(&srv) != 0) { auth_teardown(); return 1; }

    struct event *sigterm = evsignal_new(srv.base, SIGTERM, on_signal, &srv);
    struct event *sigint = evsignal_new(srv.base, SIGINT, on_signal, &srv);
    event_add(sigterm, NULL);
    event_add(sigint, NULL);
    log_info("listening on %s:%d with %d loop threads", srv.cfg.listen_addr,
             srv.cfg.listen_port, srv.cfg.gateway_threads);

    if (gw_notify_start(&srv) != 0) { auth_teardown(); return 1; }
    event_base_loop(srv.base, 0);

    gw_notify_stop();
    event_free(sigterm);
    event_free(sigint);
    evhtp_free(srv.htp);
    event_base_free(srv.base);
    otlp_export_stop();   /* after the loops: their last spans go out too */
    auth_teardown();
    mcp_servers_file_free(&mcp_servers);
    log_info("stopped");
    return 0;
}
