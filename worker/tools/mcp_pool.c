/*
 * mcp_pool.c - the worker's pool of MCP clients (see mcp_pool.h).
 *
 * One list of entries under one mutex. An entry is a client with its key,
 * whether a thread holds it, and since when it is idle. Acquire takes the
 * first idle entry with an equal key; otherwise it makes a client with the
 * caller's maker while holding no lock (making reads PostgreSQL), then
 * adds it busy. Every acquire and release also collects, under the lock,
 * the entries to close (idle ones past MCP_POOL_IDLE_MS, idle ones made
 * from a server's older settings, the least recently used idle ones over
 * the cap) and closes them after unlocking: closing a stdio child waits
 * for it to exit, and deleting an HTTP session is a request.
 *
 * A client's log callback is fixed when it is made, but the job that
 * should receive its server's log messages changes with every lease; the
 * client is made with the entry's trampoline, which forwards to whatever
 * the current lease set.
 */
#include "mcp_pool.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "strbuf.h"

struct mcp_lease {
    struct mcp_lease *next;
    mcp_pool_key key;
    mcp_client *client;
    bool busy;
    long long idle_since;       /* clock_mono_ms when released */
    mcp_log_fn log_fn;          /* the current lease's, or NULL */
    void *log_user;
};

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static struct mcp_lease *g_entries;
static size_t g_count;
static bool g_closed;
static size_t g_max = MCP_POOL_MAX_CLIENTS;
static long long g_idle_ms = MCP_POOL_IDLE_MS;

void mcp_pool_set_limits(size_t max_clients, long long idle_ms)
{
    pthread_mutex_lock(&g_lock);
    g_max = max_clients ? max_clients : MCP_POOL_MAX_CLIENTS;
    g_idle_ms = idle_ms > 0 ? idle_ms : MCP_POOL_IDLE_MS;
    pthread_mutex_unlock(&g_lock);
}

/* The log messages of a client whose entry is leased go to the lease's
 * callback; between leases nobody is waiting for them. */
static void entry_log(void *user, const char *level, const char *logger, const char *text)
{
    struct mcp_lease *e = user;
    if (e->log_fn)
        e->log_fn(e->log_user, level, logger, text);
    else
        log_debug("mcp server %s: %s: %s", e->key.server, level ? level : "?",
                  text ? text : "");
}

static bool same_server(const mcp_pool_key *a, const mcp_pool_key *b)
{
    return strcmp(a->tenant, b->tenant) == 0 && strcmp(a->server, b->server) == 0;
}

static bool same_key(const mcp_pool_key *a, const mcp_pool_key *b)
{
    return same_server(a, b) && strcmp(a->config_id, b->config_id) == 0;
}

/* Unlinks e from the list (locked) and pushes it on *doomed. */
static void doom(struct mcp_lease **link, struct mcp_lease **doomed)
{
    struct mcp_lease *e = *link;
    *link = e->next;
    e->next = *doomed;
    *doomed = e;
    g_count--;
}

/*
 * Collects (locked) the idle entries to close: past the idle time, made
 * from other settings of fresh's server (fresh: a client just made from
 * the server's current row, or NULL), and the least recently used ones
 * while the pool is over its cap.
 */
static struct mcp_lease *collect_doomed(const mcp_pool_key *fresh, long long now)
{
    struct mcp_lease *doomed = NULL;

    for (struct mcp_lease **link = &g_entries; *link;) {
        struct mcp_lease *e = *link;
        bool stale = fresh && same_server(&e->key, fresh) && !same_key(&e->key, fresh);
        if (!e->busy && (g_closed || stale || now - e->idle_since >= g_idle_ms))
            doom(link, &doomed);
        else
            link = &e->next;
    }
    while (g_count > g_max) {
        struct mcp_lease **oldest = NULL;
        for (struct mcp_lease **link = &g_entries; *link; link = &(*link)->next)
            if (!(*link)->busy && (!oldest || (*link)->idle_since < (*oldest)->idle_since))
                oldest = link;
        if (!oldest)
            break;              /* every client is in use: none may go */
        doom(oldest, &doomed);
    }
    return doomed;
}

/* Closes what collect_doomed gathered; no lock held. */
static void close_doomed(struct mcp_lease *doomed)
{
    while (doomed) {
        struct mcp_lease *e = doomed;
        doomed = e->next;
        log_debug("mcp pool: closing the client of %s/%s", e->key.tenant, e->key.server);
        mcp_client_free(e->client);
        free(e);
    }
}

/* An idle entry with key, marked busy; or NULL (locked). */
static struct mcp_lease *take_idle(const mcp_pool_key *key)
{
    for (struct mcp_lease *e = g_entries; e; e = e->next)
        if (!e->busy && same_key(&e->key, key)) {
            e->busy = true;
            return e;
        }
    return NULL;
}

/* A new busy entry with a client from make, added to the pool. */
static int make_entry(const mcp_pool_key *key, mcp_pool_make_fn make, void *user,
                      mcp_lease **out, bool *retryable, char *err, size_t err_size)
{
    struct mcp_lease *e = calloc(1, sizeof(*e));
    if (!e) {
        errbuf_printf(err, err_size, "out of memory");
        return -1;
    }
    e->key = *key;
    e->busy = true;
    mcp_client_options opt = {.on_log = entry_log, .log_user = e};
    char config_id[sizeof(e->key.config_id)] = "";
    e->client = make(user, key, &opt, config_id, retryable, err, err_size);
    if (!e->client) {
        free(e);
        return -1;
    }
    if (config_id[0])
        snprintf(e->key.config_id, sizeof(e->key.config_id), "%s", config_id);

    pthread_mutex_lock(&g_lock);
    e->next = g_entries;
    g_entries = e;
    g_count++;
    struct mcp_lease *doomed = collect_doomed(&e->key, clock_mono_ms());
    pthread_mutex_unlock(&g_lock);
    close_doomed(doomed);
    *out = e;
    return 0;
}

int mcp_pool_acquire(const mcp_pool_key *key, mcp_pool_make_fn make, void *user,
                     mcp_lease **out, bool *retryable, char *err, size_t err_size)
{
    *out = NULL;
    *retryable = false;
    pthread_mutex_lock(&g_lock);
    if (g_closed) {
        pthread_mutex_unlock(&g_lock);
        *retryable = true;
        errbuf_printf(err, err_size, "the worker is shutting down");
        return -1;
    }
    struct mcp_lease *e = take_idle(key);
    /* Not by key: the caller's settings id may be older than the row's
     * (a run's catalog), and a client of the current ones must stay. */
    struct mcp_lease *doomed = collect_doomed(NULL, clock_mono_ms());
    pthread_mutex_unlock(&g_lock);
    close_doomed(doomed);
    if (e) {
        *out = e;
        return 0;
    }
    return make_entry(key, make, user, out, retryable, err, err_size);
}

mcp_client *mcp_lease_client(const mcp_lease *l)
{
    return l ? l->client : NULL;
}

void mcp_lease_set_log(mcp_lease *l, mcp_log_fn fn, void *user)
{
    if (!l)
        return;
    l->log_fn = fn;
    l->log_user = user;
}

void mcp_pool_release(mcp_lease *l, bool discard)
{
    if (!l)
        return;
    struct mcp_lease *doomed = NULL;
    pthread_mutex_lock(&g_lock);
    l->log_fn = NULL;
    l->log_user = NULL;
    l->busy = false;
    l->idle_since = clock_mono_ms();
    if (discard) {
        for (struct mcp_lease **link = &g_entries; *link; link = &(*link)->next)
            if (*link == l) {
                doom(link, &doomed);
                break;
            }
    }
    struct mcp_lease *more = collect_doomed(NULL, l->idle_since);
    pthread_mutex_unlock(&g_lock);
    close_doomed(doomed);
    close_doomed(more);
}

void mcp_pool_shutdown(void)
{
    pthread_mutex_lock(&g_lock);
    g_closed = true;
    size_t busy = 0;
    for (struct mcp_lease *e = g_entries; e; e = e->next)
        busy += e->busy;
    struct mcp_lease *doomed = collect_doomed(NULL, clock_mono_ms());
    pthread_mutex_unlock(&g_lock);
    if (doomed || busy)
        log_info("mcp pool: closing its clients (%zu still in use close when released)",
                 busy);
    close_doomed(doomed);
}

void mcp_pool_reopen(void)
{
    pthread_mutex_lock(&g_lock);
    g_closed = false;
    pthread_mutex_unlock(&g_lock);
}

size_t mcp_pool_size(void)
{
    pthread_mutex_lock(&g_lock);
    size_t n = g_count;
    pthread_mutex_unlock(&g_lock);
    return n;
}
