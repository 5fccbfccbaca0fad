/*
 * run_memo.c - the journal of a run's calls and its approval requests
 * (see run_memo.h; orchestrator.c has the whole picture).
 *
 * The journal lives in memory (r->journal) and reaches PostgreSQL only
 * when the run stops to wait (memo_save, one statement), so runs that never
 * wait pay nothing for it. A worker that dies while a resumed run goes on
 * loses the calls made since the resume: they are made again, as any job
 * is run again after its worker died. Calls are numbered in the order the
 * run makes them; a run takes the same path when every call answers as
 * before, so the numbers line up on resume.
 * A call that waited or was denied has no journal entry: its approval row
 * (keyed by the same number) says what became of it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonutil.h"
#include "log.h"
#include "run_memo.h"
#include "run_store.h"

#define JOURNAL_MAX 4096            /* calls a journal holds; more is a broken row */
#define JOURNAL_VALUE_MAX (16 * 1024 * 1024)

/* Puts value at seq (1-based) in the array, padding with nulls. */
static int journal_set(cJSON *journal, int seq, cJSON *item)
{
    while (cJSON_GetArraySize(journal) < seq - 1) {
        cJSON *pad = cJSON_CreateNull();
        if (!pad || !cJSON_AddItemToArray(journal, pad)) {
            cJSON_Delete(pad);
            cJSON_Delete(item);
            return -1;
        }
    }
    if (!cJSON_AddItemToArray(journal, item)) {
        cJSON_Delete(item);
        return -1;
    }
    return 0;
}

static int journal_load(run *r)
{
    static const char sql[] =
        "SELECT seq, kind, value::text FROM run_memo"
        " WHERE run_id = $1 AND tenant_id = $2 ORDER BY seq LIMIT $3::int";
    char limit[16];
    snprintf(limit, sizeof(limit), "%d", JOURNAL_MAX);
    const char *params[3] = {r->id, r->job->tenant_id, limit};
    PGresult *res = run_db_query(r, sql, 3, params);
    if (!res)
        return -1;
    r->journal = cJSON_CreateArray();
    int rc = r->journal ? 0 : -1;
    for (int i = 0; rc == 0 && i < PQntuples(res); i++) {
        int seq = atoi(PQgetvalue(res, i, 0));
        if (seq <= cJSON_GetArraySize(r->journal) || seq > JOURNAL_MAX)
            continue;
        const char *text = PQgetvalue(res, i, 2);
        cJSON *value = json_parse_bounded(text, strlen(text), JOURNAL_VALUE_MAX,
                                          JSON_MAX_DEPTH, NULL, 0);
        cJSON *item = cJSON_CreateObject();
        bool ok = item != NULL && value != NULL;
        json_add_str(item, "kind", PQgetvalue(res, i, 1), &ok);
        json_add_item(item, "value", value, &ok);
        if (!ok) {
            if (!item)
                cJSON_Delete(value);
            cJSON_Delete(item);
            rc = -1;
            break;
        }
        rc = journal_set(r->journal, seq, item);
    }
    PQclear(res);
    return rc < 0 ? run_oom(r) : 0;
}

/* A run starts over (resume_steps null) only before it ever waited: once
 * it waits, its row keeps resume_steps until it ends, and an ended run's
 * job never runs again. So a fresh journal finds no rows to clear. */
int memo_begin(run *r)
{
    if (r->replay_steps > 0 && journal_load(r) < 0)
        return -1;
    if (!r->journal && !(r->journal = cJSON_CreateArray()))
        return run_oom(r);
    r->journal_saved = cJSON_GetArraySize(r->journal);
    return 0;
}

int memo_save(run *r)
{
    static const char sql[] =
        "INSERT INTO run_memo (run_id, tenant_id, seq, kind, value)"
        " SELECT $1, $2, ($3::int + e.ord)::int, e.v->>'kind', e.v->'value'"
        " FROM jsonb_array_elements($4::jsonb) WITH ORDINALITY AS e(v, ord)"
        " WHERE jsonb_typeof(e.v) = 'object'"
        " ON CONFLICT DO NOTHING";
    int n = r->journal ? cJSON_GetArraySize(r->journal) : 0;
    if (n <= r->journal_saved)
        return 0;
    cJSON *fresh = cJSON_CreateArray();
    bool ok = fresh != NULL;
    for (int i = r->journal_saved; ok && i < n; i++)
        json_append(fresh, cJSON_Duplicate(cJSON_GetArrayItem(r->journal, i), true), &ok);
    char *text = ok ? json_print(fresh) : NULL;
    cJSON_Delete(fresh);
    if (!text)
        return run_oom(r);
    char offset[16];
    snprintf(offset, sizeof(offset), "%d", r->journal_saved);
    const char *params[4] = {r->id, r->job->tenant_id, offset, text};
    int rc = run_db_command(r, sql, 4, params);
    free(text);
    if (rc == 0)
        r->journal_saved = n;
    return rc;
}

void memo_free(run *r)
{
    cJSON_Delete(r->journal);
    cJSON_Delete(r->waiting);
    r->journal = r->waiting = NULL;
}

const cJSON *memo_next(run *r, const char *kind, int *seq)
{
    *seq = ++r->call_seq;
    if (!r->journal || *seq > cJSON_GetArraySize(r->journal))
        return NULL;
    const cJSON *item = cJSON_GetArrayItem(r->journal, *seq - 1);
    if (!cJSON_IsObject(item))
        return NULL;
    const char *was = json_get_string(item, "kind");
    if (!was || strcmp(was, kind) != 0) {
        run_fail(r, "resume_diverged", "the resumed run made a %s call where it had made a "
                 "%s call before it waited", kind, was ? was : "different");
        return NULL;
    }
    return cJSON_GetObjectItemCaseSensitive(item, "value");
}

int memo_put(run *r, int seq, const char *kind, const cJSON *value)
{
    if (!r->journal || seq <= cJSON_GetArraySize(r->journal) || seq > JOURNAL_MAX)
        return 0;   /* already there (a replayed call), or past what is kept */
    cJSON *item = cJSON_CreateObject();
    bool ok = item != NULL;
    json_add_str(item, "kind", kind, &ok);
    json_add_item(item, "value", cJSON_Duplicate(value, true), &ok);
    item = json_done(item, ok);
    if (!item || journal_set(r->journal, seq, item) < 0)
        return run_oom(r);
    return 0;
}

static approval_state state_of(const char *s)
{
    if (strcmp(s, "pending") == 0)
        return APPROVAL_PENDING;
    if (strcmp(s, "approved") == 0)
        return APPROVAL_APPROVED;
    if (strcmp(s, "expired") == 0)
        return APPROVAL_EXPIRED;
    return APPROVAL_DENIED;
}

int approval_find(run *r, int seq, approval *a)
{
    static const char sql[] =
        "SELECT id, status, coalesce(note, ''), coalesce(decided_by, '') FROM tool_approvals"
        " WHERE run_id = $1 AND tenant_id = $2 AND memo_seq = $3::int";
    char seq_s[16];
    snprintf(seq_s, sizeof(seq_s), "%d", seq);
    const char *params[3] = {r->id, r->job->tenant_id, seq_s};
    memset(a, 0, sizeof(*a));
    PGresult *res = run_db_query(r, sql, 3, params);
    if (!res)
        return -1;
    if (PQntuples(res) == 1) {
        snprintf(a->id, sizeof(a->id), "%s", PQgetvalue(res, 0, 0));
        a->state = state_of(PQgetvalue(res, 0, 1));
        char *note = run_dup_cut(PQgetvalue(res, 0, 2), sizeof(a->note) - 1);
        snprintf(a->note, sizeof(a->note), "%s", note ? note : "");
        free(note);
        snprintf(a->decided_by, sizeof(a->decided_by), "%s", PQgetvalue(res, 0, 3));
    }
    PQclear(res);
    return 0;
}

int approval_request(run *r, int seq, const char *tool, const cJSON *args)
{
    /* A pending request asked again (the job was queued while it still
     * waited) keeps its id and deadline. */
    static const char sql[] =
        "INSERT INTO tool_approvals (id, tenant_id, run_id, job_id, memo_seq, tool, arguments,"
        " expires_at) VALUES ($1, $2, $3, $4, $5::int, $6, $7::jsonb,"
        " now() + $8::bigint * interval '1 second')"
        " ON CONFLICT (run_id, memo_seq) DO UPDATE SET tool = tool_approvals.tool"
        " RETURNING id, api_ts(expires_at)";
    char id[UUID_STR_LEN], seq_s[16], timeout[24];
    uuid_v7(id);
    snprintf(seq_s, sizeof(seq_s), "%d", seq);
    snprintf(timeout, sizeof(timeout), "%lld", r->approval_timeout_s);
    char *args_text = json_print(args);
    if (!args_text)
        return run_oom(r);
    const char *params[8] = {id, r->job->tenant_id, r->id, r->job->id, seq_s, tool, args_text,
                             timeout};
    PGresult *res = run_db_query(r, sql, 8, params);
    free(args_text);
    if (!res)
        return -1;
    if (PQntuples(res) != 1) {
        PQclear(res);
        return run_fail(r, "db_error", "the approval request was not recorded");
    }
    cJSON *d = cJSON_CreateObject();
    bool ok = d != NULL;
    json_add_str(d, "tool_call_id", PQgetvalue(res, 0, 0), &ok);
    json_add_str(d, "tool", tool, &ok);
    json_add_item(d, "arguments", cJSON_Duplicate(args, true), &ok);
    json_add_str(d, "run_id", r->id, &ok);
    json_add_str(d, "expires_at", PQgetvalue(res, 0, 1), &ok);
    log_info("agent run %s: tool call %s (%s) waits for approval", r->id,
             PQgetvalue(res, 0, 0), tool);
    PQclear(res);
    d = json_done(d, ok);
    if (!d)
        return run_oom(r);
    return run_wait(r, d);
}

cJSON *approval_json(const approval *a)
{
    static const char *const names[] = {"none", "pending", "approved", "denied", "expired"};
    cJSON *o = cJSON_CreateObject();
    bool ok = o != NULL;
    json_add_str(o, "tool_call_id", a->id, &ok);
    json_add_str(o, "decision", names[a->state], &ok);
    if (a->note[0])
        json_add_str(o, "note", a->note, &ok);
    if (a->decided_by[0])
        json_add_str(o, "decided_by", a->decided_by, &ok);
    return json_done(o, ok);
}
