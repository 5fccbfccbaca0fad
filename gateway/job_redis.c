/*
 * job_redis.c - the gateway's Redis writes for jobs (see job_redis.h).
 */
#include <stdio.h>
#include <string.h>

#include "job_redis.h"
#include "clock.h"
#include "events.h"
#include "keys.h"
#include "log.h"

static void send_or_log(gw_thread *thr, const redis_argv *cmd)
{
    if (rds_command(thr->redis, NULL, NULL, cmd) != 0)
        log_warn("redis unavailable: %s not sent", cmd->argv[0]);
}

void gw_redis_append_event(gw_thread *thr, const char *job_id, long long seq,
                           const char *body, const char *status)
{
    const ag_config *cfg = &thr->srv->cfg;
    event_keys keys;
    redis_argv cmds[EVENT_APPEND_CMDS];
    int n = event_append_commands(job_id, seq, body, strlen(body), cfg->event_ring_size,
                                  cfg->event_ttl_s, &keys, cmds);
    for (int i = 0; i < n; i++) send_or_log(thr, &cmds[i]);
    if (status) {
        char ttl[24];
        snprintf(ttl, sizeof ttl, "%d", cfg->event_ttl_s);
        redis_argv hset, expire;
        redis_argv_of(&hset, "HSET", keys.state, "status", status, (const char *)NULL);
        redis_argv_of(&expire, "EXPIRE", keys.state, ttl, (const char *)NULL);
        send_or_log(thr, &hset);
        send_or_log(thr, &expire);
    }
}

void gw_redis_enqueue(gw_thread *thr, const char *job_id, const char *type)
{
    char key[KEY_MAX];
    key_queue(key, type);
    redis_argv cmd;
    redis_argv_of(&cmd, "LPUSH", key, job_id, (const char *)NULL);
    send_or_log(thr, &cmd);
}

void gw_redis_enqueue_at(gw_thread *thr, const char *job_id, const char *type,
                         long long run_at_ms)
{
    if (run_at_ms <= clock_wall_ms()) {
        gw_redis_enqueue(thr, job_id, type);
        return;
    }
    char key[KEY_MAX], score[24];
    key_delayed(key, type);
    snprintf(score, sizeof score, "%lld", run_at_ms);
    redis_argv cmd;
    redis_argv_of(&cmd, "ZADD", key, score, job_id, (const char *)NULL);
    send_or_log(thr, &cmd);
}

void gw_redis_flag_cancel(gw_thread *thr, const char *job_id)
{
    char key[KEY_MAX], ttl[24];
    key_cancel(key, job_id);
    snprintf(ttl, sizeof ttl, "%d", thr->srv->cfg.event_ttl_s);
    redis_argv cmd;
    redis_argv_of(&cmd, "SET", key, "1", "EX", ttl, (const char *)NULL);
    send_or_log(thr, &cmd);
}
