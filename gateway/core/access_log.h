/*
 * access_log.h - the gateway's request log: one info line per answer when
 * AGENTGATE_ACCESS_LOG=on, with method, route template, status,
 * latency_ms, request_id and (once authenticated) tenant_id as fields.
 */
#ifndef AG_ACCESS_LOG_H
#define AG_ACCESS_LOG_H

#include <stdbool.h>

#include "gateway.h"

/* Turns the log on or off; call once at start, before the loop threads. */
void access_log_enable(bool on);

/* Writes r's line for the answer status (the head of an event stream
 * included), when on. Called on r's loop thread while r still holds its
 * request; the thread's log context is left as it was. */
void access_log_request(const gw_req *r, int status);

#endif
