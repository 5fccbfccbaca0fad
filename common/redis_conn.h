/*
 * redis_conn.h - how any agentgate process reaches its Redis: where the
 * master is (the URL's host and port, or asked of Redis Sentinel), and the
 * handshake every new connection starts with (AUTH, SELECT, then ROLE
 * when Sentinel named the server, to refuse one demoted since).
 *
 * The gateway's async connections (gateway/store/redis_async.c) and the
 * worker's blocking ones (worker/runtime/job_redis.c) both build their
 * commands and judge the replies here, so both follow a failover alike;
 * redis_connect_sync is the whole blocking sequence for the worker. With
 * Sentinel, one thread per process (redis_sentinel_watch) also hears of a
 * new master at once and counts the switches (redis_master_epoch), so
 * connections to a master demoted while still up are replaced.
 */
#ifndef AG_REDIS_CONN_H
#define AG_REDIS_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <hiredis/hiredis.h>

#include "config.h"
#include "events.h"

/* A host and port (host without IPv6 brackets). */
typedef struct redis_addr {
    char host[256];
    int port;
} redis_addr;

/* True when cfg names sentinels (the master is asked of them). */
bool redis_uses_sentinel(const ag_config *cfg);

/*
 * The sentinels of AGENTGATE_REDIS_SENTINELS into out (room for
 * CONFIG_REDIS_SENTINELS_MAX), in the order given. Returns their count
 * (0 without Sentinel); config_load has already checked the list.
 */
int redis_sentinel_addrs(const ag_config *cfg, redis_addr *out);

/* The most commands redis_handshake_commands writes. */
#define REDIS_HANDSHAKE_MAX 3

/*
 * The commands a new connection to the data Redis sends before any other,
 * in order: AUTH [user] password (when a password is set), SELECT db (when
 * db is not 0), and a last one whose reply says the connection is usable:
 * ROLE when the address came from Sentinel (redis_handshake_ok checks it
 * says master), else PING. Returns how many it wrote into out (room for
 * REDIS_HANDSHAKE_MAX); the strings point into cfg, which must outlive the
 * commands' sending.
 */
int redis_handshake_commands(const ag_config *cfg, redis_argv *out);

/*
 * Judges the reply to handshake command i of n (as written by
 * redis_handshake_commands; r may be NULL for a lost connection). Returns
 * true when it is good, else false with a one-line reason in why (never
 * the password).
 */
bool redis_handshake_ok(const redis_argv *cmd, const redisReply *r, char *why,
                        size_t why_size);

/* True for the error a replica answers a write with (READONLY): the
 * connection reaches a demoted master and must be made anew. */
bool redis_reply_readonly(const redisReply *r);

/*
 * The commands sent to a sentinel, in order: AUTH password (when
 * AGENTGATE_REDIS_SENTINEL_PASSWORD is set) and SENTINEL
 * get-master-addr-by-name <master>. Returns how many (1 or 2) were written
 * into out (room for 2); strings point into cfg.
 */
int redis_sentinel_commands(const ag_config *cfg, redis_argv *out);

/*
 * Reads the master's address out of a sentinel's reply to the last of
 * redis_sentinel_commands (an array of host and port). Returns 0, or -1
 * with a one-line reason in why (the sentinel does not know the master,
 * refused the password, or answered something else).
 */
int redis_sentinel_reply(const redisReply *r, redis_addr *master, char *why,
                         size_t why_size);

/*
 * Blocking: asks the sentinels in turn for the master's address, each
 * within timeout_ms to connect and to answer, until one knows it. Returns
 * 0 with *master set, or -1 with the last reason in why.
 */
int redis_sentinel_resolve(const ag_config *cfg, int timeout_ms, redis_addr *master,
                           char *why, size_t why_size);

/*
 * Blocking: a ready connection to the data Redis: the master's address
 * (the URL's, or redis_sentinel_resolve's), connected within
 * connect_timeout_ms, reads and writes then timing out after io_timeout_ms,
 * TCP keepalive on, and the handshake done. Returns the connection (the
 * caller frees it with redisFree), or NULL with a one-line reason in why.
 * *where (may be NULL) gets the address tried.
 */
redisContext *redis_connect_sync(const ag_config *cfg, int connect_timeout_ms,
                                 int io_timeout_ms, redis_addr *where, char *why,
                                 size_t why_size);

/*
 * Sentinel's announcements, followed for the whole process: the first call
 * (with cfg naming sentinels; a no-op without) starts one background
 * thread that subscribes to +switch-master on a sentinel (the next one
 * when it is lost) and counts the switches of cfg's master; cfg must live
 * as long as the process. Thread-safe; later calls do nothing.
 */
void redis_sentinel_watch(const ag_config *cfg);

/*
 * The number of master switches seen so far (0 without Sentinel). A
 * connection made when it was n reaches a demoted master once it is
 * greater: its owner closes it and connects anew. Lock-free.
 */
unsigned long redis_master_epoch(void);

/*
 * Reads a +switch-master message ("name old-ip old-port new-ip new-port")
 * for the master named master. Returns 0 with *to set, or -1 when it is
 * malformed or names another master.
 */
int redis_switch_master_parse(const char *msg, size_t len, const char *master,
                              redis_addr *to);

#endif
