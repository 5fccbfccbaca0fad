/*
 * admit.h - the steps between authentication and a request's handler
 * that may wait on Redis: rate limits, then Idempotency-Key. Each step
 * either answers the request itself (429, 409, 422, a replay) or calls
 * next(r) - at once or from a Redis callback on the same loop thread.
 */
#ifndef AG_ADMIT_H
#define AG_ADMIT_H

#include <stdbool.h>

#include "gateway.h"
#include "tenant_settings.h"

typedef void (*gw_next_fn)(gw_req *r);

/*
 * Takes one token from each bucket that applies to r (per principal and
 * action, per tenant and action; limits configurable per tenant). Refused:
 * answers 429 with Retry-After and RateLimit-Limit/-Remaining/-Reset.
 * Admitted: sets the RateLimit-* headers and calls next(r). Fails open
 * (calls next) when Redis cannot answer: limits protect, they must not
 * take the API down with Redis. gateway/admit/limits.c.
 */
void limits_admit(gw_req *r, gw_next_fn next);

/*
 * For a POST carrying Idempotency-Key: claims the key
 * (idempotency:{tenant}:{key}) or answers from it - the first answer again
 * with Idempotent-Replayed: true, 422 for the same key with another body,
 * 409 while the first request is still in flight. When claimed, sets
 * r->on_reply so the final answer is stored for 24 h, then calls next(r).
 * Without the header, calls next(r) at once. gateway/admit/idempotency.c.
 */
void idem_begin(gw_req *r, gw_next_fn next);

#define IDEM_KEY_MAX 255

/*
 * The key an Idempotency-Key field value carries: the value without the
 * optional white space around it (RFC 9110 section 5.5), which must then
 * be 1 to IDEM_KEY_MAX visible ASCII characters (0x21-0x7E): no space,
 * control or non-ASCII byte. The IETF draft's sf-string form ("abc",
 * quotes and all) fits the rule and is taken as sent. Copies the key to
 * out and returns true; false for an empty or malformed value.
 */
bool idem_key_read(const char *value, char out[IDEM_KEY_MAX + 1]);

/*
 * The configured rate limits (AGENTGATE_RATE_LIMITS) of cfg, parsed once
 * per thread: the ceiling a tenant's own limits can only lower. NULL when
 * none are configured.
 */
const tenant_settings *limits_configured(const ag_config *cfg);

#endif
