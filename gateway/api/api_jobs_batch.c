/*
 * api_jobs_batch.c - POST /v1/jobs/batch: up to API_BATCH_MAX jobs in one
 * request, all or nothing.
 *
 * Every item is validated by api_job_validate, the same check POST
 * /v1/jobs makes, before anything is written; the first item at fault is
 * answered 422 with its index in the JSON pointer (/jobs/3/payload/n).
 * Then the jobs and their job.queued events go to PostgreSQL as one
 * statement of their own (job_batch_send_group), so one transaction holds
 * them all: either every job exists or none does. Only after that commit
 * is each id enqueued in Redis (gw_job_committed), and 202 answers the
 * jobs in the order they were sent. Idempotency-Key works here as on any
 * POST (admit/idempotency.c keys the whole answer).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "api_util.h"
#include "api_submit.h"
#include "http.h"
#include "job_batch.h"
#include "query.h"
#include "job_publish.h"
#include "events.h"
#include "jsonutil.h"
#include "strbuf.h"
#include "uuid.h"
#include "log.h"

#define API_BATCH_MAX 1000

typedef struct batch_state batch_state;

/* One job of the batch: its id, type and event, and its JSON once inserted. */
typedef struct batch_item {
    batch_state *st;
    char id[UUID_STR_LEN];
    const char *type;           /* a registered type's name (static) */
    long long priority;         /* its queue band follows it */
    long long run_at_ms;
    char *event_body;
    char *json;
    size_t json_len;
} batch_item;

struct batch_state {
    int n;
    int answered;               /* rows whose outcome came back */
    bool failed;
    char err[256];
    char sqlstate[8];
    batch_item *items;
};

static void batch_state_free(void *p)
{
    batch_state *st = p;
    for (int i = 0; i < st->n; i++) {
        free(st->items[i].event_body);
        free(st->items[i].json);
    }
    free(st->items);
    free(st);
}

/* Every row has come back: enqueue and answer, or answer the failure. */
static void batch_finish(gw_req *r, batch_state *st)
{
    snprintf(r->audit_resource, sizeof r->audit_resource, "jobs/batch/%d", st->n);
    if (st->failed) {
        gw_reply_db_error(r, st->err, st->sqlstate);
        return;
    }
    /* Committed: the jobs exist whether or not the client waits. */
    for (int i = 0; i < st->n; i++) {
        batch_item *it = &st->items[i];
        gw_job_committed(r->thr, it->id, it->type, r->who.tenant_id, it->priority,
                         it->event_body, it->run_at_ms);
    }
    log_info("batch of %d jobs queued", st->n);
    strbuf out = {0};
    strbuf_add(&out, "{\"jobs\":[");
    for (int i = 0; i < st->n; i++) {
        if (i) strbuf_add(&out, ",");
        strbuf_addn(&out, st->items[i].json, st->items[i].json_len);
    }
    strbuf_add(&out, "]}");
    if (out.oom)
        http_reply_problem(r, 503, "unavailable", "out of memory", NULL);
    else
        http_reply_json(r, 202, out.s, out.len);
    strbuf_free(&out);
}

static void on_row(gw_req *r, void *arg, const char *job_json, size_t len, const char *err,
                   const char *sqlstate)
{
    batch_item *it = arg;
    batch_state *st = it->st;
    if (job_json && !st->failed) {
        it->json = malloc(len);
        if (it->json) {
            memcpy(it->json, job_json, len);
            it->json_len = len;
        } else {
            /* Inserted, but it cannot be shown: the jobs are committed and
             * reconciliation enqueues them; the client is told to look. */
            st->failed = true;
            snprintf(st->err, sizeof st->err, "out of memory");
            snprintf(st->sqlstate, sizeof st->sqlstate, "53200");
        }
    } else if (!job_json && !st->failed) {
        st->failed = true;
        snprintf(st->err, sizeof st->err, "%s", err ? err : "the batch was not inserted");
        snprintf(st->sqlstate, sizeof st->sqlstate, "%s", sqlstate ? sqlstate : "XX000");
    }
    if (++st->answered == st->n)
        batch_finish(r, st);
}

/* Answers 422 for item i's problem p, its pointer under /jobs/i. */
static void reply_item_problem(gw_req *r, int i, const api_job_problem *p)
{
    if (!p->slug) { http_reply_problem(r, 503, "unavailable", "out of memory", NULL); return; }
    char pointer[sizeof p->pointer + 32], detail[sizeof p->detail + 32];
    snprintf(pointer, sizeof pointer, "/jobs/%d%s", i, p->pointer);
    snprintf(detail, sizeof detail, "jobs/%d: %s", i, p->detail);
    http_reply_problem(r, 422, p->slug, detail, pointer);
}

void api_jobs_batch_create(gw_req *r)
{
    static const char *const fields[] = { "jobs", NULL };
    cJSON *body = api_parse_body(r, fields);
    if (!body) return;
    job_row *rows = NULL;
    void **args = NULL;
    char **payloads = NULL;
    int n = 0;

    const cJSON *jobs = cJSON_GetObjectItemCaseSensitive(body, "jobs");
    if (!cJSON_IsArray(jobs)) {
        http_reply_problem(r, 422, "validation-failed", "jobs is required and must be an array",
                           "/jobs");
        goto done;
    }
    n = cJSON_GetArraySize(jobs);
    if (n < 1 || n > API_BATCH_MAX) {
        char detail[96];
        snprintf(detail, sizeof detail, "jobs must hold from 1 to %d jobs (it holds %d)",
                 API_BATCH_MAX, n);
        http_reply_problem(r, 422, "validation-failed", detail, "/jobs");
        n = 0;
        goto done;
    }

    batch_state *st = calloc(1, sizeof *st);
    if (!st) { http_reply_problem(r, 503, "unavailable", "out of memory", NULL); n = 0; goto done; }
    r->state = st;
    r->state_free = batch_state_free;
    st->items = calloc((size_t)n, sizeof *st->items);
    rows = calloc((size_t)n, sizeof *rows);
    args = calloc((size_t)n, sizeof *args);
    payloads = calloc((size_t)n, sizeof *payloads);
    if (!st->items || !rows || !args || !payloads) {
        http_reply_problem(r, 503, "unavailable", "out of memory", NULL);
        goto done;
    }
    st->n = n;

    /* Everything is checked before anything is written. */
    int i = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, jobs) {
        api_new_job job;
        api_job_problem p;
        if (api_job_validate(r, item, &job, &payloads[i], &p) != 0) {
            reply_item_problem(r, i, &p);
            goto done;
        }
        batch_item *it = &st->items[i];
        it->st = st;
        uuid_v7(it->id);
        it->type = job.type;
        it->run_at_ms = job.run_at_ms;
        it->priority = job.priority;
        it->event_body = job_queued_event(it->id, job.type, job.priority);
        if (!it->event_body) {
            http_reply_problem(r, 503, "unavailable", "out of memory", NULL);
            goto done;
        }
        api_job_row_of(&rows[i], &job, it->id, it->event_body);
        args[i] = it;
        i++;
    }
    if (job_batch_send_group(r->thr->batch, r, rows, n, on_row, args) != 0)
        http_reply_problem(r, 503, "unavailable", "out of memory", NULL);
done:
    for (int k = 0; payloads && k < n; k++) free(payloads[k]);
    free(payloads);
    free(rows);
    free(args);
    cJSON_Delete(body);
}
