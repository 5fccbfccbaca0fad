/*
 * events.h - a job's events: their encoding, and the Redis script that
 * appends one to the job's ring and announces it.
 *
 * An event body is one JSON object, encoded once by its writer and kept
 * byte for byte in Redis and in job_events:
 *   {"id":7,"job_id":"...","type":"step.completed","ts":"...Z","data":{...}}
 * Event ids are the job's sequence numbers 1, 2, 3... with no gaps.
 */
#ifndef AG_EVENTS_H
#define AG_EVENTS_H

#include <stddef.h>
#include <stdbool.h>
#include "keys.h"

#define EVENT_TYPE_MAX 32
#define EVENT_MAX_BYTES (256 * 1024)

/* True for the types DESIGN.md lists (job.queued ... job.cancelled). */
bool event_type_known(const char *type);

/* True for job.succeeded, job.failed and job.cancelled. */
bool event_type_terminal(const char *type);

/* Every known event type, in the order DESIGN.md lists them (static
 * strings); *count gets their number. */
const char *const *event_types_all(size_t *count);

/*
 * Encodes an event. data_json is the text of a JSON value (NULL means {}),
 * inserted as is: the caller passes JSON it produced itself. ts_ms is epoch
 * milliseconds. Returns a malloc'd NUL-terminated body the caller frees,
 * or NULL on allocation failure.
 */
char *event_encode(const char *job_id, long long seq, const char *type,
                   long long ts_ms, const char *data_json);

/* Encodes event 1 of a new job, now: job.queued {"type","priority"}.
 * type is a registered type name. Returns the event body (caller frees),
 * or NULL when out of memory. */
char *job_queued_event(const char *job_id, const char *type, long long priority);

/*
 * Reads the id and type of an encoded body (len bytes) from Redis or
 * PostgreSQL, validating it is a JSON object with a positive integer "id"
 * and a known "type". type gets up to type_size bytes. Returns 0 or -1.
 */
int event_peek(const char *body, size_t len, long long *seq, char *type,
               size_t type_size);

/*
 * The data objects of the events the system writes itself, as compact JSON
 * text (malloc'd, the caller frees; NULL when memory runs out):
 *   job.failed     {"error":{"code","message"}}
 *   job.cancelled  {"reason"}
 *   job.retrying   {"attempt","reason","delay_ms","error"?:{"code","message"}}
 * attempt is the attempt that ended; code may be NULL for no error.
 */
char *event_failed_data(const char *code, const char *message);
char *event_cancelled_data(const char *reason);
char *event_retrying_data(int attempt, const char *reason, long long delay_ms,
                          const char *code, const char *message);

/* The most arguments one redis_argv holds. */
#define REDIS_ARGV_MAX 16

/* One Redis command as an argv array over caller-owned strings, the shape
 * redisAppendCommandArgv and redisAsyncCommandArgv take. */
typedef struct redis_argv {
    int argc;
    const char *argv[REDIS_ARGV_MAX];
    size_t argvlen[REDIS_ARGV_MAX];
    char numbuf[3][24];     /* storage for numeric arguments */
} redis_argv;

/* Fills cmd from the strings that follow (at most REDIS_ARGV_MAX), ending
 * with a (const char *)NULL; they are borrowed and must outlive cmd's use. */
void redis_argv_of(redis_argv *cmd, ...);

/* Key storage for one job's event commands, kept alive by the caller
 * until the commands are sent. */
typedef struct event_keys {
    char events[KEY_MAX];
    char notify[KEY_MAX];
    char state[KEY_MAX];
} event_keys;

/*
 * The Lua script that appends one event to a job's ring and announces it,
 * atomically and in one command:
 *   RPUSH jobs:events:{id} body; LTRIM to the last ring_size; EXPIRE ttl_s;
 *   HSET jobs:state:{id} last_event_id seq [status status]; EXPIRE ttl_s;
 *   PUBLISH jobs:notify:{id} body.
 * Being one script, no reader ever sees the ring, the state hash and the
 * announcement disagree, and a writer pays one round trip per event.
 */
extern const char event_append_lua[];

/* The append as a Lua function, append(ring, state, channel, keep, ttl,
 * seq, body, status): the body of event_append_lua, and of every script
 * that appends events among other work (jobq's for new jobs). keep is the
 * ring size (a number), status '' leaves the state's status. */
#define EVENT_APPEND_FUNCTION \
    "local function append(ring,state,channel,keep,ttl,seq,body,status)\n" \
    "redis.call('RPUSH',ring,body)\n" \
    "redis.call('LTRIM',ring,-keep,-1)\n" \
    "redis.call('EXPIRE',ring,ttl)\n" \
    "if status~='' then\n" \
    "redis.call('HSET',state,'last_event_id',seq,'status',status)\n" \
    "else\n" \
    "redis.call('HSET',state,'last_event_id',seq)\n" \
    "end\n" \
    "redis.call('EXPIRE',state,ttl)\n" \
    "return redis.call('PUBLISH',channel,body)\n" \
    "end\n"

/* The SHA1 (40 lowercase hex digits) of event_append_lua, as EVALSHA
 * names it. Static storage, computed once; thread-safe. */
const char *event_append_sha(void);

/*
 * Fills cmd with the script call that appends event seq (body, body_len
 * bytes, any bytes) of job_id to its ring: EVALSHA when use_sha, else EVAL
 * with the script's text (the fallback when Redis answers NOSCRIPT).
 * status, when not NULL, is also written to the state hash. ring_size and
 * ttl_s below 1 count as 1. keys holds the key names cmd points at.
 */
void event_append_command(redis_argv *cmd, bool use_sha, const char *job_id,
                          long long seq, const char *body, size_t body_len,
                          const char *status, int ring_size, int ttl_s,
                          event_keys *keys);

#endif
