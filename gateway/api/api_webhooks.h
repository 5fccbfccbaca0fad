/*
 * api_webhooks.h - the check of a submission's completion webhook, shared
 * by POST /v1/jobs and POST /v1/agent-runs (api_webhooks.c).
 */
#ifndef AG_API_WEBHOOKS_H
#define AG_API_WEBHOOKS_H

#include <cjson/cJSON.h>
#include "api_submit.h"
#include "gateway.h"

/* The longest webhook URL accepted, in bytes (jobs.webhook_url's CHECK). */
#define API_WEBHOOK_URL_MAX 2048

/*
 * Checks body's optional "webhook" member: an http(s) URL of at most
 * API_WEBHOOK_URL_MAX bytes within the operator's allow-list and the
 * tenant's (r's), when it has one. Sets *out to the URL (borrowed from
 * body) or to NULL when absent or null. Returns 0, or -1 with *p filled
 * (a 422's slug, pointer "/webhook" and detail).
 */
int api_check_webhook(gw_req *r, const cJSON *body, const char **out, api_job_problem *p);

/* api_check_webhook that answers the 422 itself: returns 0, or -1 when it
 * has answered. */
int api_read_webhook(gw_req *r, const cJSON *body, const char **out);

#endif
