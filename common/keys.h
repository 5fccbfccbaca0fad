/*
 * keys.h - the names of agentgate's Redis keys and channels, built in one
 * place and only from ids already checked by uuid_parse, type names from
 * the registry, or tenant ids checked against their rule
 * ([A-Za-z0-9._-]{1,64}, so never a ':'), so no outside string ever
 * shapes a key.
 *
 *   jobs:queue:{type}:{tenant}
 *                          LIST    one tenant's job ids waiting for a worker,
 *                                  oldest at the right (job_queue.h)
 *   jobs:ready:{type}      LIST    the ring: tenants of the type with ids
 *                                  waiting, each once, next turn at the right
 *   jobs:active:{type}     SET     the tenants with ids waiting
 *   jobs:turns:{type}      HASH    per tenant, the jobs it took since its
                                  lists were last empty (the bands' rule)
 *   jobs:state:{id}        HASH    status, last_event_id, worker_id (cache)
 *   jobs:events:{id}       LIST    capped ring of encoded events
 *   jobs:notify:{id}       channel one message per appended event (its body)
 *   jobs:lease:{id}        STRING  worker id holding the job, PX lease
 *   cancel:{id}            STRING  set when cancellation is requested
 *   cancel:requests        channel one message (the job id) per requested
 *                                  cancellation, so workers act at once
 *   jobs:delayed:{type}    ZSET    "{tenant}:{id}" of jobs waiting for their
 *                                  run_at or retry backoff, scored by due
 *                                  time (epoch ms)
 *   jobs:dead              LIST    ids of failed jobs, newest first, capped
 *   lock:reconciler        STRING  the worker running reconciliation, PX
 *   workers                ZSET    the registered worker ids, scored by their
 *                                  last heartbeat (epoch ms)
 *   worker:{id}            HASH    one worker's registry record
 *                                  (worker_reg.h), PX a few heartbeats
 *   idempotency:{tenant}:{sha256(key)}
 *                          STRING  an Idempotency-Key's record (gateway)
 */
#ifndef AG_KEYS_H
#define AG_KEYS_H

#include <stddef.h>

#define KEY_MAX 160

/* The longest tenant id, NUL excluded. */
#define KEY_TENANT_MAX 64

/* The channel the gateway publishes a job's id on after setting its
 * cancel:{id} flag: a worker's supervisor wakes on it instead of waiting
 * for its next poll. */
#define CHANNEL_CANCEL_REQUESTS "cancel:requests"

/* True when s is a tenant id keys may carry: 1..KEY_TENANT_MAX bytes of
 * [A-Za-z0-9._-]. */
int key_tenant_valid(const char *s);

/* "jobs:queue:{type}:{tenant}" into out (KEY_MAX bytes): the tenant's own
 * list of ids of that type. Returns out, or NULL with out holding "" when
 * tenant breaks its rule. */
char *key_queue(char *out, const char *type, const char *tenant);

/* key_queue, then ":{band}" when band (a priority band's name, from
 * jobq.c) is not NULL. Returns out, or NULL with out holding "". */
char *key_queue_band(char *out, const char *type, const char *tenant, const char *band);

/* Each writes the key into out (KEY_MAX bytes) and returns out. */
char *key_ready(char *out, const char *type);
char *key_active(char *out, const char *type);
char *key_state(char *out, const char *job_id);
char *key_events(char *out, const char *job_id);
char *key_notify(char *out, const char *job_id);
char *key_lease(char *out, const char *job_id);
char *key_cancel(char *out, const char *job_id);
char *key_delayed(char *out, const char *type);
char *key_turns(char *out, const char *type);

/* The longest priority band name a key or member carries, NUL excluded. */
#define KEY_BAND_MAX 15

/* The bytes of a delayed set's member: "[{band}/]{tenant}:{id}", NUL
 * included. */
#define KEY_MEMBER_MAX (KEY_BAND_MAX + 1 + KEY_TENANT_MAX + 1 + 36 + 1)

/* A delayed set's member for job id (a checked UUID) of tenant, into out
 * (KEY_MEMBER_MAX bytes): the promotion needs the tenant to know which
 * list the id goes to. Returns out, or NULL with out holding "" when
 * tenant breaks its rule. */
char *key_delayed_member(char *out, const char *tenant, const char *id);

/* key_delayed_member with band's name (1..KEY_BAND_MAX of [a-z], NULL for
 * none) and a '/' in front, so the promotion knows which of the tenant's
 * lists the id joins. Returns out, or NULL with out holding "". */
char *key_delayed_member_band(char *out, const char *band, const char *tenant,
                              const char *id);

/* Splits a delayed set's member (len bytes, outside input) into tenant
 * (KEY_TENANT_MAX + 1 bytes) and id (37 bytes, lowercase). Returns 0, or
 * -1 when it is not "{tenant}:{uuid}" (the tenant then holds ""). */
int key_delayed_member_split(const char *member, size_t len, char *tenant, char *id);

/* key_delayed_member_split for members that may name a band: band
 * (KEY_BAND_MAX + 1 bytes) gets it, or "" when the member names none. */
int key_delayed_member_parse(const char *member, size_t len, char *band, char *tenant,
                             char *id);

/*
 * "idempotency:{tenant}:{h}", h the SHA-256 of client_key in 64 lowercase
 * hex digits, so any key the client chose fits and none reshapes ours.
 * tenant must be 1..64 of [A-Za-z0-9._-], client_key 1..255 printable
 * ASCII bytes (0x20..0x7e). Returns out (KEY_MAX bytes), or NULL with out
 * holding "" when either breaks its rule.
 */
char *key_idempotency(char *out, const char *tenant, const char *client_key);

/* True when s is a valid Idempotency-Key value: 1..255 bytes 0x20..0x7e. */
int key_idempotency_valid(const char *s);

/* The longest worker id a registry key carries, NUL excluded: a worker id
 * is the operator's setting (or host:pid), so it is checked, not trusted
 * to fit. */
#define KEY_WORKER_ID_MAX 127

/* True when s is a worker id the registry may carry: 1..KEY_WORKER_ID_MAX
 * bytes of visible ASCII (0x21..0x7e). */
int key_worker_id_valid(const char *s);

/* "worker:{id}" into out (KEY_MAX bytes): the worker's registry hash.
 * Returns out, or NULL with out holding "" when worker_id breaks its rule. */
char *key_worker(char *out, const char *worker_id);

/* The prefix of key_worker's keys: the gateway's registry read builds
 * them in Lua from the ids in KEY_WORKERS. */
#define KEY_WORKER_PREFIX   "worker:"
#define KEY_WORKERS         "workers"
#define KEY_DEAD_LETTER     "jobs:dead"
#define KEY_RECONCILE_LOCK  "lock:reconciler"

#endif
