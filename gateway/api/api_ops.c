/*
 * api_ops.c - the operator's view: GET /v1/queues and GET /v1/workers.
 *
 * Queue depths come from PostgreSQL, the authority on every job's status,
 * in one statement run as the caller's tenant (row-level security holds
 * it there too): one item per job type the caller may read, in the
 * registry's order, even when the type has no jobs. Redis's lists are
 * left alone: they hold ids that may already be claimed or cancelled,
 * and no tenant's count may come from a structure other tenants share.
 *
 * Workers come from the registry the worker daemons keep in Redis
 * (worker/runtime/worker_registry.c, the record in common/worker_reg.h):
 * one script reads every registered worker's hash in one round trip and
 * drops from the workers set each id whose hash has expired, so a worker
 * that died without saying so is skipped from the first read after its
 * TTL and forgotten by it. A worker's job list shows only the caller's
 * tenant's jobs; its running count is every tenant's.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "api_util.h"
#include "http.h"
#include "jobtypes.h"
#include "keys.h"
#include "log.h"
#include "pg_array.h"
#include "query.h"
#include "rbac.h"
#include "redis_async.h"
#include "strbuf.h"
#include "worker_reg.h"

/* --- GET /v1/queues ------------------------------------------------------ */

/*
 * $1 the tenant, $2 the types to show, in order. A queued job is
 * "delayed" while its run_at (a scheduled start, a retry's backoff, a
 * running cap's wait) is ahead, and "queued" from then on; a queued job's
 * age runs from when it last became due: its queued_at (submitted,
 * retried, handed back) or its later run_at. Dead letters are the failed
 * jobs nobody has retried or discarded yet (dead_resolved_at NULL), the
 * entries of GET /v1/dead-letters. Both parts read partial indexes
 * (jobs_unfinished, jobs_dead_letters) rather than the tenant's whole
 * history. "bands" splits "queued" by priority band, with the bounds of
 * common/jobq.c (jobq_band_of): the order workers take them in.
 */
/* One band's entry of "bands": its name and its due queued jobs. */
#define BAND_COUNT(name, cond) \
    " '" name "', count(*) FILTER (WHERE j.status = 'queued'" \
    "   AND (j.run_at IS NULL OR j.run_at <= now()) AND " cond ")"

static const char SQL_QUEUES[] =
    "WITH t AS (SELECT type, ord FROM unnest($2::text[]) WITH ORDINALITY AS u(type, ord)),"
    " live AS (SELECT j.type,"
    "   count(*) FILTER (WHERE j.status = 'queued'"
    "                      AND (j.run_at IS NULL OR j.run_at <= now())) AS queued,"
    "   count(*) FILTER (WHERE j.status = 'queued' AND j.run_at > now()) AS delayed,"
    "   count(*) FILTER (WHERE j.status = 'running') AS running,"
    "   min(greatest(j.queued_at, coalesce(j.run_at, j.queued_at)))"
    "     FILTER (WHERE j.status = 'queued'"
    "               AND (j.run_at IS NULL OR j.run_at <= now())) AS oldest,"
    "   json_build_object("
    BAND_COUNT("urgent", "j.priority >= 100") ","
    BAND_COUNT("high", "j.priority BETWEEN 1 AND 99") ","
    BAND_COUNT("normal", "j.priority = 0") ","
    BAND_COUNT("low", "j.priority BETWEEN -99 AND -1") ","
    BAND_COUNT("bulk", "j.priority <= -100") ") AS bands"
    "   FROM jobs j WHERE j.tenant_id = $1 AND j.status IN ('queued', 'running')"
    "   GROUP BY j.type),"
    " dead AS (SELECT j.type, count(*) AS dead FROM jobs j"
    "   WHERE j.tenant_id = $1 AND j.status = 'failed' AND j.dead_resolved_at IS NULL"
    "   GROUP BY j.type)"
    " SELECT json_build_object('items', coalesce(json_agg(json_build_object("
    "   'type', t.type,"
    "   'queued', coalesce(live.queued, 0),"
    "   'bands', coalesce(live.bands, json_build_object("
    "     'urgent', 0, 'high', 0, 'normal', 0, 'low', 0, 'bulk', 0)),"
    "   'delayed', coalesce(live.delayed, 0),"
    "   'running', coalesce(live.running, 0),"
    "   'dead', coalesce(dead.dead, 0),"
    "   'oldest_queued_age_ms', CASE WHEN live.oldest IS NULL THEN NULL ELSE"
    "     greatest(0, floor(extract(epoch FROM now() - live.oldest) * 1000))::bigint END)"
    "   ORDER BY t.ord), '[]'::json))"
    " FROM t LEFT JOIN live ON live.type = t.type LEFT JOIN dead ON dead.type = t.type";

/* True when the caller may read jobs of type (some types' jobs belong to
 * another resource: rbac_job_perm), as GET /v1/jobs decides. */
static bool type_readable(gw_req *r, const char *type)
{
    rbac_perm need = rbac_job_perm(r->perm, type);
    char detail[160];
    return need.res == r->perm.res || rbac_allows(&r->who, need, detail, sizeof detail);
}

/* The registered types the caller may read, as a PostgreSQL array
 * literal ("{}" when none). Returns NULL when out of memory. */
static char *readable_job_types(gw_req *r)
{
    size_t n;
    const job_type *types = jobtypes_all(&n);
    strbuf b = {0};
    strbuf_add(&b, "{");
    bool first = true;
    for (size_t i = 0; i < n; i++) {
        if (!type_readable(r, types[i].name))
            continue;
        if (!first) strbuf_add(&b, ",");
        pg_array_element_add(&b, types[i].name);
        first = false;
    }
    strbuf_add(&b, "}");
    return strbuf_take(&b, NULL);
}

static void on_queues(gw_req *r, PGresult *res, const char *err, const char *sqlstate)
{
    if (!res) { gw_reply_db_error(r, err, sqlstate); return; }
    api_reply_row(r, 200, res, 0, 0);
}

void api_queues_list(gw_req *r)
{
    char *types = readable_job_types(r);
    if (!types) { http_reply_problem(r, 503, "unavailable", "out of memory", NULL); return; }
    const char *params[2] = { r->who.tenant_id, types };
    gw_query_static(r, SQL_QUEUES, 2, params, on_queues);
    free(types);
}

/* --- GET /v1/workers ----------------------------------------------------- */

/* The most workers one answer lists. */
#define WORKERS_MAX "1000"

/*
 * KEYS[1] the workers set; ARGV[1] the hashes' key prefix, ARGV[2] the
 * most records to return. Answers each live worker's HGETALL, in id
 * order; an id whose hash is gone (its TTL ran out: the worker stopped
 * beating) leaves the set.
 */
static const char workers_lua[] =
    "local ids = redis.call('ZRANGE', KEYS[1], 0, -1)\n"
    "table.sort(ids)\n"
    "local out = {}\n"
    "local max = tonumber(ARGV[2])\n"
    "for _, id in ipairs(ids) do\n"
    "  local h = redis.call('HGETALL', ARGV[1] .. id)\n"
    "  if #h == 0 then\n"
    "    redis.call('ZREM', KEYS[1], id)\n"
    "  elseif #out < max then\n"
    "    out[#out + 1] = h\n"
    "  end\n"
    "end\n"
    "return out\n";

/* The most fields of one record that are looked at (worker_reg.h has
 * nine; more means someone else wrote the hash). */
#define RECORD_FIELDS_MAX 32

/* Appends worker record rec (an HGETALL answer) as an item for tenant;
 * returns whether one was appended. */
static bool add_worker(strbuf *b, const redisReply *rec, const char *tenant, bool first)
{
    if (rec->type != REDIS_REPLY_ARRAY)
        return false;
    wreg_text names[RECORD_FIELDS_MAX], values[RECORD_FIELDS_MAX];
    size_t n = 0;
    for (size_t i = 0; i + 1 < rec->elements && n < RECORD_FIELDS_MAX; i += 2) {
        const redisReply *k = rec->element[i], *v = rec->element[i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
            continue;
        names[n] = (wreg_text){ k->str, k->len };
        values[n] = (wreg_text){ v->str, v->len };
        n++;
    }
    size_t mark = b->len;
    if (!first) strbuf_add(b, ",");
    if (worker_reg_json(b, names, values, n, tenant) != 0) {
        if (!b->oom) { b->len = mark; b->s[mark] = '\0'; }
        return false;
    }
    return true;
}

static void registry_unavailable(gw_req *r)
{
    http_set_header(r, "Retry-After", "1");
    http_reply_problem(r, 503, "unavailable",
                       "the worker registry (Redis) cannot be reached right now; retry shortly",
                       NULL);
}

static void on_workers(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    gw_req *r = privdata;
    const redisReply *rep = reply;
    gw_req_log_context(r);
    if (rep == NULL || rep->type != REDIS_REPLY_ARRAY) {
        if (rep != NULL && rep->type == REDIS_REPLY_ERROR)
            log_warn("redis refused the worker registry read: %s", rep->str);
        registry_unavailable(r);
    } else {
        strbuf b = {0};
        strbuf_add(&b, "{\"items\":[");
        bool first = true;
        for (size_t i = 0; i < rep->elements; i++)
            if (add_worker(&b, rep->element[i], r->who.tenant_id, first))
                first = false;
        strbuf_add(&b, "]}");
        size_t len;
        char *json = strbuf_take(&b, &len);
        if (json)
            http_reply_json(r, 200, json, len);
        else
            http_reply_problem(r, 503, "unavailable", "out of memory", NULL);
        free(json);
    }
    gw_req_release(r);
    log_set_context(NULL, NULL);
}

void api_workers_list(gw_req *r)
{
    redis_argv cmd;
    redis_argv_of(&cmd, "EVAL", workers_lua, "1", KEY_WORKERS, KEY_WORKER_PREFIX,
                  WORKERS_MAX, (const char *)NULL);
    if (rds_command(r->thr->redis, on_workers, r, &cmd) != 0) {
        registry_unavailable(r);
        return;
    }
    gw_req_hold(r);
    gw_req_defer(r);
}
