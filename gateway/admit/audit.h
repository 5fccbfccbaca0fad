/*
 * audit.h - one audit_logs row for every mutating API call: who (principal
 * sub), tenant, action ("jobs.create"), resource ("jobs/<id>"), outcome
 * (the status answered: "ok" for 2xx, else "denied" for 401/403/404/429,
 * "rejected" for other 4xx, "error" for 5xx) and the request id.
 */
#ifndef AG_AUDIT_H
#define AG_AUDIT_H

#include "gateway.h"

/*
 * Called by the HTTP layer for every reply (status as sent). Writes the
 * row when r's route mutates (create, update or delete) and the caller was
 * authenticated; reads nothing else and never delays the reply: the insert
 * goes out on r's thread pool after the answer. gateway/admit/audit.c.
 */
void audit_on_reply(gw_req *r, int status);

/* Frees the calling loop thread's pending rows at shutdown (each logged at
 * warn as unwritten). Called once per loop thread as it exits. */
void audit_thread_done(void);

#endif
