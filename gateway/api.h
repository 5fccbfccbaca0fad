/*
 * api.h - the handlers of the HTTP API, one per route (see router.h).
 * Each runs on the request's loop thread after authentication, answers
 * through http.h, and never blocks: database and Redis steps continue in
 * callbacks.
 */
#ifndef AG_API_H
#define AG_API_H

#include "gateway.h"

void api_jobs_create(gw_req *r);
void api_jobs_list(gw_req *r);
void api_job_get(gw_req *r);
void api_job_cancel(gw_req *r);
void api_job_events(gw_req *r);

void api_runs_create(gw_req *r);
void api_run_get(gw_req *r);
void api_run_cancel(gw_req *r);
void api_run_events(gw_req *r);

void api_health_live(gw_req *r);
void api_health_ready(gw_req *r);
void api_health_components(gw_req *r);
void api_metrics(gw_req *r);

#endif
