/*
 * redis_conn.c - the master's address and a new connection's handshake
 * (see redis_conn.h).
 *
 * Credentials come from the URL (redis://user:password@host) or from
 * AGENTGATE_REDIS_USERNAME and AGENTGATE_REDIS_PASSWORD; config_load lets
 * only one of the two be set. With Sentinel the address is asked anew on
 * every connect, so a reconnect after a failover reaches the new master;
 * the ROLE check catches the window in which a sentinel still names the
 * old one. A demoted master that is still up keeps its clients until
 * Sentinel reconfigures it (seconds later), so one thread per process
 * also listens for +switch-master and counts the switches: connections
 * made before the latest switch are closed by their owners.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

#include "log.h"
#include "redis_conn.h"

#define WATCH_TIMEOUT_MS      2000
#define WATCH_BACKOFF_MIN_MS  100
#define WATCH_BACKOFF_MAX_MS  5000

bool redis_uses_sentinel(const ag_config *cfg)
{
    return cfg->redis_sentinels[0] != '\0';
}

int redis_sentinel_addrs(const ag_config *cfg, redis_addr *out)
{
    int n = 0;
    for (const char *p = cfg->redis_sentinels; *p != '\0' && n < CONFIG_REDIS_SENTINELS_MAX;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char item[sizeof cfg->redis_sentinels];
        memcpy(item, p, len);
        item[len] = '\0';
        if (config_parse_host_port(item, out[n].host, sizeof out[n].host, &out[n].port) == 0)
            n++;
        if (comma == NULL)
            break;
        p = comma + 1;
    }
    return n;
}

/* The credentials in force: the URL's, else the settings'. */
static void redis_credentials(const ag_config *cfg, const char **user, const char **password)
{
    bool from_url = cfg->redis_url_password[0] != '\0';
    *user = from_url ? cfg->redis_url_username : cfg->redis_username;
    *password = from_url ? cfg->redis_url_password : cfg->redis_password;
}

int redis_handshake_commands(const ag_config *cfg, redis_argv *out)
{
    int n = 0;
    const char *user, *password;
    redis_credentials(cfg, &user, &password);
    if (password[0] != '\0') {
        if (user[0] != '\0')
            redis_argv_of(&out[n++], "AUTH", user, password, (const char *)NULL);
        else
            redis_argv_of(&out[n++], "AUTH", password, (const char *)NULL);
    }
    if (cfg->redis_db != 0) {
        redis_argv *c = &out[n++];
        snprintf(c->numbuf[0], sizeof c->numbuf[0], "%d", cfg->redis_db);
        redis_argv_of(c, "SELECT", c->numbuf[0], (const char *)NULL);
    }
    redis_argv_of(&out[n++], redis_uses_sentinel(cfg) ? "ROLE" : "PING", (const char *)NULL);
    return n;
}

bool redis_handshake_ok(const redis_argv *cmd, const redisReply *r, char *why,
                        size_t why_size)
{
    const char *verb = cmd->argv[0];
    if (r == NULL) {
        snprintf(why, why_size, "connection lost before %s was answered", verb);
        return false;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        /* Redis's own words never repeat the password it was sent. */
        snprintf(why, why_size, "%s refused: %.200s", verb, r->str);
        return false;
    }
    if (strcmp(verb, "ROLE") == 0) {
        bool master = r->type == REDIS_REPLY_ARRAY && r->elements > 0
                      && r->element[0]->type == REDIS_REPLY_STRING
                      && strcmp(r->element[0]->str, "master") == 0;
        if (!master)
            snprintf(why, why_size, "the server Sentinel named is not a master (ROLE: %.32s)",
                     r->type == REDIS_REPLY_ARRAY && r->elements > 0
                     && r->element[0]->type == REDIS_REPLY_STRING ? r->element[0]->str : "?");
        return master;
    }
    if (r->type != REDIS_REPLY_STATUS) {
        snprintf(why, why_size, "%s: unexpected reply", verb);
        return false;
    }
    return true;
}

bool redis_reply_readonly(const redisReply *r)
{
    return r != NULL && r->type == REDIS_REPLY_ERROR && r->len >= 8
           && strncmp(r->str, "READONLY", 8) == 0;
}

int redis_sentinel_commands(const ag_config *cfg, redis_argv *out)
{
    int n = 0;
    if (cfg->redis_sentinel_password[0] != '\0')
        redis_argv_of(&out[n++], "AUTH", cfg->redis_sentinel_password, (const char *)NULL);
    redis_argv_of(&out[n++], "SENTINEL", "get-master-addr-by-name",
                  cfg->redis_sentinel_master, (const char *)NULL);
    return n;
}

int redis_sentinel_reply(const redisReply *r, redis_addr *master, char *why,
                         size_t why_size)
{
    if (r == NULL) {
        snprintf(why, why_size, "the sentinel closed the connection");
        return -1;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        snprintf(why, why_size, "the sentinel refused: %.200s", r->str);
        return -1;
    }
    if (r->type == REDIS_REPLY_NIL) {
        snprintf(why, why_size, "the sentinel knows no master of that name");
        return -1;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2
        || r->element[0]->type != REDIS_REPLY_STRING
        || r->element[1]->type != REDIS_REPLY_STRING
        || r->element[0]->len == 0 || r->element[0]->len >= sizeof master->host) {
        snprintf(why, why_size, "the sentinel's answer is not a host and a port");
        return -1;
    }
    char *end = NULL;
    long port = strtol(r->element[1]->str, &end, 10);
    if (end == r->element[1]->str || *end != '\0' || port < 1 || port > 65535) {
        snprintf(why, why_size, "the sentinel's answer is not a host and a port");
        return -1;
    }
    memcpy(master->host, r->element[0]->str, r->element[0]->len + 1);
    master->port = (int)port;
    return 0;
}

static struct timeval ms_timeval(int ms)
{
    struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };
    return tv;
}

/* Sends the n commands as one pipeline on c and hands each reply to
 * judge (the handshake's or the sentinel's). Returns 0 when all were
 * judged good, else -1 with why set. */
static int pipeline_checked(redisContext *c, const redis_argv *cmds, int n,
                            redisReply **last, char *why, size_t why_size)
{
    for (int i = 0; i < n; i++)
        if (redisAppendCommandArgv(c, cmds[i].argc, (const char **)cmds[i].argv,
                                   cmds[i].argvlen) != REDIS_OK) {
            snprintf(why, why_size, "%s", c->errstr);
            return -1;
        }
    int rc = 0;
    for (int i = 0; i < n; i++) {
        redisReply *r = NULL;
        if (redisGetReply(c, (void **)&r) != REDIS_OK) {
            snprintf(why, why_size, "%s", c->errstr[0] ? c->errstr : "I/O error");
            return -1;
        }
        if (i + 1 == n && last != NULL) {
            *last = r;   /* the caller judges and frees it */
            continue;
        }
        if (rc == 0 && !redis_handshake_ok(&cmds[i], r, why, why_size))
            rc = -1;
        freeReplyObject(r);
    }
    return rc;
}

int redis_sentinel_resolve(const ag_config *cfg, int timeout_ms, redis_addr *master,
                           char *why, size_t why_size)
{
    redis_addr sentinels[CONFIG_REDIS_SENTINELS_MAX];
    int count = redis_sentinel_addrs(cfg, sentinels);
    snprintf(why, why_size, "no sentinel configured");
    for (int i = 0; i < count; i++) {
        char reason[256];
        redisContext *c = redisConnectWithTimeout(sentinels[i].host, sentinels[i].port,
                                                  ms_timeval(timeout_ms));
        int rc = -1;
        if (c == NULL) {
            snprintf(reason, sizeof reason, "out of memory");
        } else if (c->err != 0 || redisSetTimeout(c, ms_timeval(timeout_ms)) != REDIS_OK) {
            snprintf(reason, sizeof reason, "%s", c->errstr);
        } else {
            redis_argv cmds[2];
            int n = redis_sentinel_commands(cfg, cmds);
            redisReply *last = NULL;
            rc = pipeline_checked(c, cmds, n, &last, reason, sizeof reason);
            if (last != NULL) {
                if (rc == 0)
                    rc = redis_sentinel_reply(last, master, reason, sizeof reason);
                freeReplyObject(last);
            }
        }
        if (c != NULL)
            redisFree(c);
        if (rc == 0)
            return 0;
        snprintf(why, why_size, "sentinel %s:%d: %s", sentinels[i].host, sentinels[i].port,
                 reason);
    }
    return -1;
}

redisContext *redis_connect_sync(const ag_config *cfg, int connect_timeout_ms,
                                 int io_timeout_ms, redis_addr *where, char *why,
                                 size_t why_size)
{
    redis_addr addr;
    if (redis_uses_sentinel(cfg)) {
        if (redis_sentinel_resolve(cfg, connect_timeout_ms, &addr, why, why_size) != 0) {
            if (where != NULL) {
                snprintf(where->host, sizeof where->host, "(master %s unknown)",
                         cfg->redis_sentinel_master);
                where->port = 0;
            }
            return NULL;
        }
    } else {
        snprintf(addr.host, sizeof addr.host, "%s", cfg->redis_host);
        addr.port = cfg->redis_port;
    }
    if (where != NULL)
        *where = addr;

    redisContext *c = redisConnectWithTimeout(addr.host, addr.port, ms_timeval(connect_timeout_ms));
    if (c == NULL) {
        snprintf(why, why_size, "out of memory");
        return NULL;
    }
    if (c->err != 0 || redisSetTimeout(c, ms_timeval(io_timeout_ms)) != REDIS_OK) {
        snprintf(why, why_size, "%s", c->errstr);
        redisFree(c);
        return NULL;
    }
    redisEnableKeepAlive(c);
    redis_argv cmds[REDIS_HANDSHAKE_MAX];
    int n = redis_handshake_commands(cfg, cmds);
    if (pipeline_checked(c, cmds, n, NULL, why, why_size) != 0) {
        redisFree(c);
        return NULL;
    }
    return c;
}

/* ---------------------------------------------------------------------------
 * Following +switch-master
 * ------------------------------------------------------------------------- */

static atomic_ulong master_epoch;
static pthread_once_t watch_once = PTHREAD_ONCE_INIT;
static _Atomic(const ag_config *) watch_cfg;
static redisContext *watch_ctx;     /* a global, so leak checkers see it held */

unsigned long redis_master_epoch(void)
{
    return atomic_load(&master_epoch);
}

int redis_switch_master_parse(const char *msg, size_t len, const char *master,
                              redis_addr *to)
{
    char buf[768], name[256], old_host[256], new_host[256];
    int old_port, new_port;
    if (len >= sizeof buf)
        return -1;
    memcpy(buf, msg, len);
    buf[len] = '\0';
    if (sscanf(buf, "%255s %255s %d %255s %d", name, old_host, &old_port, new_host,
               &new_port) != 5 || strcmp(name, master) != 0 || new_port < 1 || new_port > 65535)
        return -1;
    snprintf(to->host, sizeof to->host, "%s", new_host);
    to->port = new_port;
    return 0;
}

static void sleep_ms(int ms)
{
    struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* Counts a switch to *to, unless the master is already known there. */
static void watch_note_master(const ag_config *cfg, redis_addr *known, const redis_addr *to,
                              const char *how)
{
    if (known->port != 0 && (known->port != to->port || strcmp(known->host, to->host) != 0)) {
        atomic_fetch_add(&master_epoch, 1);
        log_info("redis: Sentinel %s master %s at %s:%d; reconnecting", how,
                 cfg->redis_sentinel_master, to->host, to->port);
    }
    *known = *to;
}

/* One sentinel: asks for the master (a switch missed while no sentinel
 * was heard is noticed here), subscribes, and reads announcements until
 * the connection fails. Returns whether it got as far as subscribing. */
static bool watch_one(const ag_config *cfg, const redis_addr *s, redis_addr *known)
{
    bool subscribed = false;
    char why[300];
    watch_ctx = redisConnectWithTimeout(s->host, s->port, ms_timeval(WATCH_TIMEOUT_MS));
    redisContext *c = watch_ctx;
    if (c == NULL || c->err != 0
        || redisSetTimeout(c, ms_timeval(WATCH_TIMEOUT_MS)) != REDIS_OK)
        goto out;
    redis_argv cmds[3];
    int n = redis_sentinel_commands(cfg, cmds);
    redis_argv_of(&cmds[n++], "SUBSCRIBE", "+switch-master", (const char *)NULL);
    redisReply *r = NULL;
    /* The last reply judged here is the master's address, before SUBSCRIBE. */
    if (pipeline_checked(c, cmds, n - 1, &r, why, sizeof why) != 0) {
        if (r)
            freeReplyObject(r);
        log_warn("redis: sentinel %s:%d: %s", s->host, s->port, why);
        goto out;
    }
    redis_addr now;
    int rc = redis_sentinel_reply(r, &now, why, sizeof why);
    freeReplyObject(r);
    if (rc != 0)
        goto out;
    watch_note_master(cfg, known, &now, "names");
    r = redisCommandArgv(c, cmds[n - 1].argc, (const char **)cmds[n - 1].argv,
                         cmds[n - 1].argvlen);
    if (r == NULL)
        goto out;
    freeReplyObject(r);
    subscribed = true;
    /* Announcements come rarely: no read timeout, keepalive finds a dead peer. */
    struct timeval none = { 0, 0 };
    if (redisSetTimeout(c, none) != REDIS_OK || redisEnableKeepAlive(c) != REDIS_OK)
        goto out;
    while (redisGetReply(c, (void **)&r) == REDIS_OK && r != NULL) {
        redis_addr to;
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 3
            && r->element[2]->type == REDIS_REPLY_STRING
            && redis_switch_master_parse(r->element[2]->str, r->element[2]->len,
                                         cfg->redis_sentinel_master, &to) == 0)
            watch_note_master(cfg, known, &to, "switched to");
        freeReplyObject(r);
    }
out:
    watch_ctx = NULL;
    if (c != NULL)
        redisFree(c);
    return subscribed;
}

static void *watch_main(void *arg)
{
    (void)arg;
    const ag_config *cfg = atomic_load(&watch_cfg);
    redis_addr sentinels[CONFIG_REDIS_SENTINELS_MAX];
    redis_addr known = { "", 0 };
    int count = redis_sentinel_addrs(cfg, sentinels);
    int backoff = WATCH_BACKOFF_MIN_MS;
    for (int i = 0; count > 0; i = (i + 1) % count) {
        if (watch_one(cfg, &sentinels[i], &known))
            backoff = WATCH_BACKOFF_MIN_MS;
        sleep_ms(backoff);
        backoff = backoff * 2 > WATCH_BACKOFF_MAX_MS ? WATCH_BACKOFF_MAX_MS : backoff * 2;
    }
    return NULL;
}

static void watch_start(void)
{
    pthread_attr_t attr;
    pthread_t t;
    if (pthread_attr_init(&attr) != 0)
        return;
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &attr, watch_main, NULL) != 0)
        log_error("redis: cannot start the Sentinel watch thread; a failover is "
                  "followed on the next reconnect only");
    pthread_attr_destroy(&attr);
}

void redis_sentinel_watch(const ag_config *cfg)
{
    if (!redis_uses_sentinel(cfg))
        return;
    const ag_config *none = NULL;
    /* The first caller's; every caller passes the process's one config. */
    atomic_compare_exchange_strong(&watch_cfg, &none, cfg);
    pthread_once(&watch_once, watch_start);
}
