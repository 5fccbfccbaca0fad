/*
 * audit.c - one audit_logs row for every mutating API call (see audit.h).
 *
 * The row is built from what the request context already holds (principal,
 * route, permission, request id, status) and queued on the request's own
 * loop thread; the rows gathered over a few ms are inserted together once
 * the replies are on their way, so neither the insert nor its failure can
 * delay or change an answer, and a burst of calls costs one commit, not
 * one each.
 * audit_insert_batch sets each row's tenant, so row-level security checks
 * every row.
 *
 * An insert that cannot be sent, or that fails, is logged at warn with the
 * row's fields, so the event still exists somewhere.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <event2/buffer.h>
#include <event2/event.h>

#include "audit.h"
#include "jsonutil.h"
#include "log.h"
#include "pg_async.h"

#define AUDIT_PATH_MAX 512   /* bytes of the path kept in detail */

typedef struct audit_row {
    gw_thread *thr;
    char tenant[sizeof(((principal *)0)->tenant_id)];
    char principal[sizeof(((principal *)0)->sub)];
    char action[96];
    char resource[256];      /* audit_resource, or collection/param */
    const char *outcome;     /* static string */
    char request_id[sizeof(((gw_req *)0)->request_id)];
    /* detail: {"status","method","path"} */
    int status;
    char method[16];
    char path[AUDIT_PATH_MAX + 1];
} audit_row;

static void audit_row_free(audit_row *a)
{
    free(a);
}

static const char *outcome_of(int status)
{
    if (status < 400) return "ok";
    if (status == 401 || status == 403 || status == 404 || status == 429) return "denied";
    if (status < 500) return "rejected";
    return "error";
}

/*
 * The action the call performs: the route's permission when RBAC names one,
 * else what the method means (a POST creates, PATCH/PUT update, DELETE
 * deletes), so a route RBAC does not know yet is still audited. NULL for a
 * call that changes nothing.
 */
static const char *mutating_action(const gw_req *r)
{
    switch (r->perm.act) {
    case ACT_CREATE: case ACT_UPDATE: case ACT_DELETE: {
        const char *n = rbac_action_name(r->perm.act);
        if (n && n[0]) return n;
        return r->perm.act == ACT_CREATE ? "create"
             : r->perm.act == ACT_UPDATE ? "update" : "delete";
    }
    case ACT_READ:
        return NULL;
    default:
        break;   /* no permission named (public or unknown route): the method */
    }
    switch (evhtp_request_get_method(r->req)) {
    case htp_method_POST: return "create";
    case htp_method_PATCH: case htp_method_PUT: return "update";
    case htp_method_DELETE: return "delete";
    default: return NULL;
    }
}

static const char *request_path(const gw_req *r)
{
    const evhtp_request_t *req = r->req;
    return req->uri && req->uri->path && req->uri->path->full ? req->uri->path->full : "";
}

/* The collection the path names: "jobs" for /v1/jobs/{id}/events. */
static void collection_of(const char *path, char *out, size_t size)
{
    if (strncmp(path, "/v1/", 4) == 0) path += 4;
    else if (*path == '/') path++;
    size_t n = strcspn(path, "/");
    if (n == 0) { snprintf(out, size, "api"); return; }
    snprintf(out, size, "%.*s", (int)n, path);
}

static void fill_action(const gw_req *r, const char *act, const char *collection,
                        audit_row *a)
{
    const char *res = rbac_resource_name(r->perm.res);
    snprintf(a->action, sizeof a->action, "%s.%s", res && res[0] ? res : collection, act);
}

static void fill_resource(const gw_req *r, const char *collection, audit_row *a)
{
    if (r->audit_resource[0]) {
        snprintf(a->resource, sizeof a->resource, "%s", r->audit_resource);
        return;
    }
    const char *id = r->route.param[0] ? r->route.param : r->route.name;
    if (id[0]) snprintf(a->resource, sizeof a->resource, "%s/%s", collection, id);
    else snprintf(a->resource, sizeof a->resource, "%s", collection);
}

/* Appends s to b as a JSON string. */
static void add_string(struct evbuffer *b, const char *s)
{
    char esc[6 * AUDIT_PATH_MAX + 8];
    size_t n = strlen(s) < AUDIT_PATH_MAX + 1 ? json_quote(s, esc, sizeof esc) : 0;
    if (n == 0) { evbuffer_add(b, "\"\"", 2); return; }   /* longer than any field */
    evbuffer_add(b, esc, n);
}

/* Appends "name":value-as-a-JSON-string to b, after a comma unless first. */
static void add_member(struct evbuffer *b, bool first, const char *name, const char *value)
{
    evbuffer_add_printf(b, "%s\"%s\":", first ? "" : ",", name);
    add_string(b, value);
}

/* Appends the row's detail, {"status","method","path"}, to b. */
static void add_detail(struct evbuffer *b, const audit_row *a)
{
    evbuffer_add_printf(b, "{\"status\":%d", a->status);
    add_member(b, false, "method", a->method);
    add_member(b, false, "path", a->path);
    evbuffer_add(b, "}", 1);
}

static void log_unwritten(const audit_row *a, const char *why)
{
    struct evbuffer *b = evbuffer_new();
    if (b) {
        add_detail(b, a);
        evbuffer_add(b, "", 1);
    }
    const char *detail = b ? (const char *)evbuffer_pullup(b, -1) : NULL;
    log_warn("audit row not written (%s): tenant=%s principal=%s action=%s resource=%s"
             " outcome=%s request_id=%s detail=%s",
             why, a->tenant, a->principal, a->action, a->resource, a->outcome,
             a->request_id, detail ? detail : "{}");
    if (b) evbuffer_free(b);
}

/*
 * The rows of a few ms, inserted together: one statement, one
 * transaction, one WAL flush for all of them (sql/migrations/008_audit_batch.sql).
 * Each loop thread has its own batch; only that thread touches it.
 */
#define AUDIT_BATCH_MAX 512
/* Rows wait this long for company before they are sent. Nobody waits on an
 * audit row, and under load a turn's worth of rows would still be one
 * commit per loop turn beside the submissions' own: gathering them for a
 * few ms makes it one commit per few ms instead. */
#define AUDIT_FLUSH_MS 10

typedef struct audit_batch {
    audit_row *rows[AUDIT_BATCH_MAX];
    int n;
    bool scheduled;          /* a flush is due at the end of this turn */
} audit_batch;

static __thread audit_batch *thread_batch;

typedef struct audit_sent {
    audit_row *rows[AUDIT_BATCH_MAX];
    int n;
} audit_sent;

static void sent_free(audit_sent *s)
{
    for (int i = 0; i < s->n; i++) audit_row_free(s->rows[i]);
    free(s);
}

static void log_all_unwritten(audit_row *const *rows, int n, const char *why)
{
    for (int i = 0; i < n; i++) log_unwritten(rows[i], why);
}

static void on_inserted(PGresult *res, const char *err, const char *sqlstate, void *arg)
{
    audit_sent *s = arg;
    if (!res) {
        char why[256];
        snprintf(why, sizeof why, "%s%s%s", err ? err : "query failed",
                 sqlstate && sqlstate[0] ? ", SQLSTATE " : "", sqlstate ? sqlstate : "");
        log_all_unwritten(s->rows, s->n, why);
    }
    sent_free(s);
}

/* The rows as the JSON array audit_insert_batch takes; malloc'd, or NULL.
 * Written directly: a tree per row only to print it cost more than the
 * rest of the row. */
static char *rows_json(audit_row *const *rows, int n)
{
    struct evbuffer *b = evbuffer_new();
    if (!b) return NULL;
    evbuffer_add(b, "[", 1);
    for (int i = 0; i < n; i++) {
        const audit_row *a = rows[i];
        evbuffer_add(b, i ? ",{" : "{", i ? 2 : 1);
        add_member(b, true, "tenant_id", a->tenant);
        add_member(b, false, "principal", a->principal);
        add_member(b, false, "action", a->action);
        add_member(b, false, "resource", a->resource);
        add_member(b, false, "outcome", a->outcome);
        add_member(b, false, "request_id", a->request_id);
        evbuffer_add(b, ",\"detail\":", 10);
        add_detail(b, a);
        evbuffer_add(b, "}", 1);
    }
    evbuffer_add(b, "]", 2);    /* and the NUL */
    size_t len = evbuffer_get_length(b);
    char *text = malloc(len);
    if (text && evbuffer_remove(b, text, len) != (int)len) { free(text); text = NULL; }
    evbuffer_free(b);
    return text;
}

static void flush_batch(evutil_socket_t fd, short what, void *arg)
{
    (void)fd; (void)what;
    gw_thread *thr = arg;
    audit_batch *b = thread_batch;
    if (!b) return;
    b->scheduled = false;
    if (b->n == 0) return;
    audit_sent *s = malloc(sizeof *s);
    if (!s) {
        log_all_unwritten(b->rows, b->n, "out of memory");
        for (int i = 0; i < b->n; i++) audit_row_free(b->rows[i]);
        b->n = 0;
        return;
    }
    memcpy(s->rows, b->rows, (size_t)b->n * sizeof b->rows[0]);
    s->n = b->n;
    b->n = 0;
    char *json = rows_json(s->rows, s->n);
    const char *params[1] = { json };
    static const char sql[] = "SELECT audit_insert_batch($1::jsonb)";
    if (!json) {
        log_all_unwritten(s->rows, s->n, "out of memory");
        sent_free(s);
    } else if (!thr->pg || pg_pool_send(thr->pg, sql, 1, params, &(pg_send_opts){ .prepared = true },
                                        on_inserted, s) != 0) {
        log_all_unwritten(s->rows, s->n, "database unavailable");
        sent_free(s);
    }
    free(json);
}

/* Queues a for the thread's batch, sent AUDIT_FLUSH_MS after its first
 * row (or at once when full); the reply is long on its way by then. */
static void batch_add(gw_thread *thr, audit_row *a)
{
    audit_batch *b = thread_batch;
    if (!b && !(b = thread_batch = calloc(1, sizeof *b))) {
        log_unwritten(a, "out of memory");
        audit_row_free(a);
        return;
    }
    if (b->n == AUDIT_BATCH_MAX) flush_batch(-1, 0, thr);
    b->rows[b->n++] = a;
    if (b->scheduled) return;
    struct timeval soon = { 0, AUDIT_FLUSH_MS * 1000 };
    if (!thr->base || event_base_once(thr->base, -1, EV_TIMEOUT, flush_batch, thr, &soon) != 0) {
        flush_batch(-1, 0, thr);     /* cannot wait for the turn's end: send now */
        return;
    }
    b->scheduled = true;
}

/* Frees this loop thread's batch at shutdown, logging rows never sent. */
void audit_thread_done(void)
{
    audit_batch *b = thread_batch;
    if (!b) return;
    log_all_unwritten(b->rows, b->n, "gateway stopping");
    for (int i = 0; i < b->n; i++) audit_row_free(b->rows[i]);
    free(b);
    thread_batch = NULL;
}

void audit_on_reply(gw_req *r, int status)
{
    if (!r || !r->req || !r->authenticated || !r->who.tenant_id[0]) return;
    const char *act = mutating_action(r);
    if (!act) return;

    audit_row *a = calloc(1, sizeof *a);
    if (!a) { log_warn("audit row not written (out of memory): request_id=%s", r->request_id); return; }
    const char *path = request_path(r);
    char collection[64];
    collection_of(path, collection, sizeof collection);

    a->thr = r->thr;
    snprintf(a->tenant, sizeof a->tenant, "%s", r->who.tenant_id);
    snprintf(a->principal, sizeof a->principal, "%s", r->who.sub[0] ? r->who.sub : "unknown");
    fill_action(r, act, collection, a);
    fill_resource(r, collection, a);
    a->outcome = outcome_of(status);
    snprintf(a->request_id, sizeof a->request_id, "%s", r->request_id);
    const char *method = htparser_get_methodstr_m(evhtp_request_get_method(r->req));
    a->status = status;
    snprintf(a->method, sizeof a->method, "%s", method ? method : "?");
    snprintf(a->path, sizeof a->path, "%s", path);

    batch_add(r->thr, a);
}
