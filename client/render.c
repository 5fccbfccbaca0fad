/*
 * render.c - the CLI's output (see render.h).
 *
 * Tables are collected whole, measured in characters (UTF-8 code points,
 * not bytes), cut at a column cap, then printed aligned. The follow
 * display keeps two facts about the terminal: whether the progress line is
 * drawn (so the next line first erases it) and whether model text is
 * mid-line (so a permanent line first ends it); every change of the
 * display goes through those two, which keeps tokens, permanent lines and
 * the progress line from overwriting each other. On a pipe the same events
 * become one plain line each, and model text is gathered into whole lines.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "clock.h"
#include "jsonutil.h"
#include "render.h"

#define CELL_MAX    48      /* characters of a table cell */
#define SUMMARY_MAX 300     /* bytes of one string in an event's summary */
#define PENDING_MAX 4096    /* bytes of model text held back waiting for a line end */

#define CLEAR_LINE "\r\033[2K"

static const char *c_on(const render_opts *o, const char *code)
{
    return o->color ? code : "";
}

static const char *c_off(const render_opts *o)
{
    return o->color ? "\033[0m" : "";
}

void render_text(FILE *f, const char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        /* A run of bytes that are safe as they are. */
        while (j < n) {
            unsigned char c = (unsigned char)s[j];
            if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f)
                break;
            if (c == 0xc2 && j + 1 < n && (unsigned char)s[j + 1] >= 0x80 &&
                (unsigned char)s[j + 1] <= 0x9f)
                break;                          /* a C1 control in UTF-8 */
            j++;
        }
        fwrite(s + i, 1, j - i, f);
        if (j >= n)
            break;
        i = j + ((unsigned char)s[j] == 0xc2 ? 2 : 1);
    }
}

/* --------------------------------------------------------------------- */
/* Errors                                                                 */
/* --------------------------------------------------------------------- */

void render_problem(const char *prog, const agc_response *r)
{
    strbuf line = {0};
    strbuf_addf(&line, "%s: HTTP %ld", prog, r->status);
    cJSON *p = NULL;
    if (r->body != NULL && r->len > 0)
        p = json_parse_bounded(r->body, r->len, r->len, JSON_MAX_DEPTH, NULL, 0);
    const char *title = json_get_string(p, "title");
    const char *detail = json_get_string(p, "detail");
    if (title != NULL) {
        strbuf_add(&line, " ");
        strbuf_add_flat(&line, title, 100);
    }
    if (detail != NULL) {
        strbuf_add(&line, ": ");
        strbuf_add_flat(&line, detail, 500);
    }
    if (title == NULL && detail == NULL && r->status == 0)
        strbuf_add(&line, " (no answer)");
    cJSON_Delete(p);
    if (!line.oom)
        fprintf(stderr, "%s\n", line.s);
    strbuf_free(&line);
}

/* --------------------------------------------------------------------- */
/* Tables                                                                 */
/* --------------------------------------------------------------------- */

typedef struct table {
    int ncols;
    size_t nrows;            /* the header counts as a row */
    char **cells;            /* nrows * ncols, malloc'd */
    size_t cap;
} table;

/* Characters in s (UTF-8 code points). */
static size_t width_of(const char *s)
{
    size_t w = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xc0) != 0x80)
            w++;
    return w;
}

/* Cuts s to at most max characters, at a character boundary. */
static void cut_to_width(char *s, size_t max)
{
    size_t w = 0;
    for (size_t i = 0; s[i]; i++)
        if (((unsigned char)s[i] & 0xc0) != 0x80 && ++w > max) {
            s[i] = '\0';
            return;
        }
}

/* A cell: s on one line, cut to CELL_MAX characters. */
static char *cell(const char *s)
{
    strbuf b = {0};
    strbuf_add_flat(&b, s != NULL ? s : "", CELL_MAX * 4);
    char *out = strbuf_take(&b, NULL);
    if (out != NULL && width_of(out) > CELL_MAX) {
        size_t w = 0, i = 0;
        for (; out[i]; i++)
            if (((unsigned char)out[i] & 0xc0) != 0x80 && ++w > CELL_MAX - 3)
                break;
        strcpy(out + i, "...");                 /* i <= strlen(out) - 3 here */
    }
    return out;
}

static void table_row(table *t, const char *const *values)
{
    if (t->nrows * (size_t)t->ncols + (size_t)t->ncols > t->cap) {
        size_t cap = t->cap ? t->cap * 2 : (size_t)t->ncols * 16;
        char **c = realloc(t->cells, cap * sizeof *c);
        if (c == NULL)
            return;                             /* the row is left out */
        t->cells = c;
        t->cap = cap;
    }
    for (int i = 0; i < t->ncols; i++)
        t->cells[t->nrows * (size_t)t->ncols + (size_t)i] = cell(values[i]);
    t->nrows++;
}

static void table_free(table *t)
{
    for (size_t i = 0; i < t->nrows * (size_t)t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    memset(t, 0, sizeof *t);
}

/* Prints the table aligned, or `none` when it has no row under its
 * header; frees it either way. */
static void table_print(FILE *f, table *t, const render_opts *o, const char *none)
{
    if (t->nrows <= 1) {
        fprintf(f, "%s\n", none);
        table_free(t);
        return;
    }
    size_t w[16] = {0};
    for (size_t r = 0; r < t->nrows; r++)
        for (int c = 0; c < t->ncols; c++) {
            const char *s = t->cells[r * (size_t)t->ncols + (size_t)c];
            size_t cw = s != NULL ? width_of(s) : 0;
            if (cw > w[c])
                w[c] = cw;
        }
    for (size_t r = 0; r < t->nrows; r++) {
        if (r == 0)
            fputs(c_on(o, "\033[1m"), f);
        for (int c = 0; c < t->ncols; c++) {
            const char *s = t->cells[r * (size_t)t->ncols + (size_t)c];
            if (s == NULL)
                s = "";
            fputs(s, f);
            if (c + 1 < t->ncols)
                fprintf(f, "%*s", (int)(w[c] - width_of(s) + 2), "");
        }
        if (r == 0)
            fputs(c_off(o), f);
        fputc('\n', f);
    }
    table_free(t);
}

/* Formats a member as text for a cell: strings as they are, numbers as
 * integers, null as "-", anything else as compact JSON. */
static void member_text(const cJSON *obj, const char *name, char *out, size_t size)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (v == NULL || cJSON_IsNull(v))
        snprintf(out, size, "-");
    else if (cJSON_IsString(v))
        snprintf(out, size, "%s", v->valuestring);
    else if (cJSON_IsNumber(v))
        snprintf(out, size, "%.0f", v->valuedouble);
    else if (cJSON_IsBool(v))
        snprintf(out, size, "%s", cJSON_IsTrue(v) ? "true" : "false");
    else {
        char *s = cJSON_PrintUnformatted(v);
        snprintf(out, size, "%s", s != NULL ? s : "?");
        free(s);
    }
}

static void progress_text(const cJSON *job, char *out, size_t size)
{
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(job, "progress");
    const cJSON *cur = cJSON_GetObjectItemCaseSensitive(p, "current");
    const cJSON *tot = cJSON_GetObjectItemCaseSensitive(p, "total");
    if (cJSON_IsNumber(cur) && cJSON_IsNumber(tot) && tot->valuedouble > 0)
        snprintf(out, size, "%.0f/%.0f", cur->valuedouble, tot->valuedouble);
    else
        snprintf(out, size, "-");
}

static void print_next_cursor(FILE *f, const cJSON *page)
{
    const char *next = json_get_string(page, "next_cursor");
    if (next != NULL)
        fprintf(f, "next cursor: %s\n", next);
}

void render_jobs(FILE *f, const cJSON *page, const render_opts *o)
{
    static const char *const head[] = { "ID", "TYPE", "STATUS", "ATTEMPTS", "PROGRESS", "CREATED" };
    table t = { .ncols = 6 };
    table_row(&t, head);
    const cJSON *job;
    cJSON_ArrayForEach(job, cJSON_GetObjectItemCaseSensitive(page, "items")) {
        char id[64], type[160], status[32], att[32], prog[48], created[48], a[16], m[16];
        member_text(job, "id", id, sizeof id);
        member_text(job, "type", type, sizeof type);
        member_text(job, "status", status, sizeof status);
        member_text(job, "attempts", a, sizeof a);
        member_text(job, "max_attempts", m, sizeof m);
        snprintf(att, sizeof att, "%s/%s", a, m);
        progress_text(job, prog, sizeof prog);
        member_text(job, "created_at", created, sizeof created);
        const char *row[] = { id, type, status, att, prog, created };
        table_row(&t, row);
    }
    table_print(f, &t, o, "no jobs");
    print_next_cursor(f, page);
}

void render_queues(FILE *f, const cJSON *answer, const render_opts *o)
{
    static const char *const head[] = { "TYPE", "QUEUED", "DELAYED", "RUNNING", "DEAD", "OLDEST QUEUED" };
    static const char *const keys[] = { "type", "queued", "delayed", "running", "dead" };
    table t = { .ncols = 6 };
    table_row(&t, head);
    const cJSON *q;
    cJSON_ArrayForEach(q, cJSON_GetObjectItemCaseSensitive(answer, "items")) {
        char v[5][160], age[48];
        for (int i = 0; i < 5; i++)
            member_text(q, keys[i], v[i], sizeof v[i]);
        const cJSON *ms = cJSON_GetObjectItemCaseSensitive(q, "oldest_queued_age_ms");
        if (cJSON_IsNumber(ms))
            snprintf(age, sizeof age, "%.1f s", ms->valuedouble / 1000.0);
        else
            snprintf(age, sizeof age, "-");
        const char *row[] = { v[0], v[1], v[2], v[3], v[4], age };
        table_row(&t, row);
    }
    table_print(f, &t, o, "no job types");
}

/* A JSON array of strings as "a,b,c" (or "-"). */
static void list_text(const cJSON *arr, char *out, size_t size)
{
    strbuf b = {0};
    const cJSON *it;
    cJSON_ArrayForEach(it, arr) {
        if (!cJSON_IsString(it))
            continue;
        if (b.len > 0)
            strbuf_add(&b, ",");
        strbuf_add(&b, it->valuestring);
    }
    snprintf(out, size, "%s", b.len > 0 && !b.oom ? b.s : "-");
    strbuf_free(&b);
}

void render_workers(FILE *f, const cJSON *answer, const render_opts *o)
{
    static const char *const head[] = { "ID", "HOST", "PID", "RUNNING", "HEARTBEAT", "STARTED", "QUEUES", "JOBS" };
    table t = { .ncols = 8 };
    table_row(&t, head);
    const cJSON *w;
    cJSON_ArrayForEach(w, cJSON_GetObjectItemCaseSensitive(answer, "items")) {
        char id[128], host[128], pid[32], run[48], r[16], c[16], hb[48], st[48], qs[256], jobs[256];
        member_text(w, "id", id, sizeof id);
        member_text(w, "host", host, sizeof host);
        member_text(w, "pid", pid, sizeof pid);
        member_text(w, "running", r, sizeof r);
        member_text(w, "concurrency", c, sizeof c);
        snprintf(run, sizeof run, "%s/%s", r, c);
        member_text(w, "heartbeat_at", hb, sizeof hb);
        member_text(w, "started_at", st, sizeof st);
        list_text(cJSON_GetObjectItemCaseSensitive(w, "queues"), qs, sizeof qs);
        list_text(cJSON_GetObjectItemCaseSensitive(w, "jobs"), jobs, sizeof jobs);
        const char *row[] = { id, host, pid, run, hb, st, qs, jobs };
        table_row(&t, row);
    }
    table_print(f, &t, o, "no live workers");
}

/* --------------------------------------------------------------------- */
/* One object                                                             */
/* --------------------------------------------------------------------- */

static void kv(FILE *f, const render_opts *o, const char *name, const char *value)
{
    fprintf(f, "%s%-13s%s ", c_on(o, "\033[1m"), name, c_off(o));
    render_text(f, value, strlen(value));
    fputc('\n', f);
}

static void kv_member(FILE *f, const render_opts *o, const cJSON *obj, const char *name)
{
    char v[4096];
    member_text(obj, name, v, sizeof v);
    kv(f, o, name, v);
}

static void error_text(const cJSON *err, char *out, size_t size)
{
    const char *code = json_get_string(err, "code");
    const char *msg = json_get_string(err, "message");
    if (code == NULL && msg == NULL)
        snprintf(out, size, "-");
    else
        snprintf(out, size, "%s: %s", code ? code : "?", msg ? msg : "");
}

void render_job(FILE *f, const cJSON *job, const render_opts *o)
{
    static const char *const first[] = { "id", "type", "status" };
    static const char *const later[] = { "priority", "created_at", "started_at", "finished_at",
                                         "heartbeat_at", "worker_id", "run_at", "retry_of",
                                         "last_event_id", "payload", "result" };
    for (size_t i = 0; i < sizeof first / sizeof *first; i++)
        kv_member(f, o, job, first[i]);
    char a[16], m[16], v[64];
    member_text(job, "attempts", a, sizeof a);
    member_text(job, "max_attempts", m, sizeof m);
    snprintf(v, sizeof v, "%s of %s", a, m);
    kv(f, o, "attempts", v);
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(job, "progress");
    if (cJSON_IsObject(p)) {
        char prog[48], msg[600];
        progress_text(job, prog, sizeof prog);
        member_text(p, "message", msg, sizeof msg);
        char line[700];
        snprintf(line, sizeof line, "%s %s", prog, msg);
        kv(f, o, "progress", line);
    }
    for (size_t i = 0; i < sizeof later / sizeof *later; i++)
        if (cJSON_GetObjectItemCaseSensitive(job, later[i]) != NULL)
            kv_member(f, o, job, later[i]);
    char e[1024];
    error_text(cJSON_GetObjectItemCaseSensitive(job, "error"), e, sizeof e);
    kv(f, o, "error", e);
}

void render_job_ids(FILE *f, const cJSON *answer, const render_opts *o)
{
    (void)o;
    const cJSON *job;
    cJSON_ArrayForEach(job, cJSON_GetObjectItemCaseSensitive(answer, "jobs")) {
        char id[64];
        member_text(job, "id", id, sizeof id);
        render_text(f, id, strlen(id));
        fputc('\n', f);
    }
}

void render_deliveries(FILE *f, const cJSON *answer, const render_opts *o)
{
    kv_member(f, o, answer, "job_id");
    kv_member(f, o, answer, "webhook");
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(answer, "items");
    if (cJSON_GetArraySize(items) == 0) {
        fprintf(f, "no deliveries\n");
        return;
    }
    const cJSON *d;
    cJSON_ArrayForEach(d, items) {
        char id[64], ev[64], state[32], n[16], st[16], next[48], err[600], line[900];
        member_text(d, "id", id, sizeof id);
        member_text(d, "event_type", ev, sizeof ev);
        member_text(d, "state", state, sizeof state);
        member_text(d, "attempts", n, sizeof n);
        member_text(d, "last_status", st, sizeof st);
        member_text(d, "next_attempt_at", next, sizeof next);
        snprintf(line, sizeof line, "%s %s %s, %s attempts, last status %s%s%s", id, ev, state,
                 n, st, strcmp(state, "pending") == 0 ? ", next at " : "",
                 strcmp(state, "pending") == 0 ? next : "");
        kv(f, o, "delivery", line);
        const cJSON *a;
        cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(d, "attempt_log")) {
            char num[16], worker[128], at[48], code[16], ms[32];
            member_text(a, "attempt", num, sizeof num);
            member_text(a, "worker_id", worker, sizeof worker);
            member_text(a, "started_at", at, sizeof at);
            member_text(a, "status_code", code, sizeof code);
            member_text(a, "duration_ms", ms, sizeof ms);
            member_text(a, "error", err, sizeof err);
            snprintf(line, sizeof line, "  attempt %s at %s by %s: status %s, %s ms, error %s",
                     num, at, worker, code, ms, err);
            render_text(f, line, strlen(line));
            fputc('\n', f);
        }
    }
}

void render_decision(FILE *f, const cJSON *answer, const render_opts *o)
{
    static const char *const names[] = { "id", "job_id", "tool_call_id", "decision", "status" };
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        kv_member(f, o, answer, names[i]);
}

/* A schedule's latest tick: its time and its job's status. */
static void last_tick_text(const cJSON *s, char *out, size_t size)
{
    char at[48], st[32];
    member_text(s, "last_tick_at", at, sizeof at);
    const cJSON *tick = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(s, "recent_ticks"), 0);
    if (tick == NULL) {
        snprintf(out, size, "%s", at);
        return;
    }
    member_text(tick, "status", st, sizeof st);
    snprintf(out, size, "%s %s", at, st);
}

void render_schedules(FILE *f, const cJSON *page, const render_opts *o)
{
    static const char *const head[] = { "ID", "CRON", "TIMEZONE", "PAUSED", "NEXT RUN", "LAST TICK" };
    table t = { .ncols = 6 };
    table_row(&t, head);
    const cJSON *s;
    cJSON_ArrayForEach(s, cJSON_GetObjectItemCaseSensitive(page, "items")) {
        char id[64], cron[300], tz[128], paused[8], next[48], last[96];
        member_text(s, "id", id, sizeof id);
        member_text(s, "cron", cron, sizeof cron);
        member_text(s, "timezone", tz, sizeof tz);
        member_text(s, "paused", paused, sizeof paused);
        member_text(s, "next_run_at", next, sizeof next);
        last_tick_text(s, last, sizeof last);
        const char *row[] = { id, cron, tz, paused, next, last };
        table_row(&t, row);
    }
    table_print(f, &t, o, "no schedules");
    print_next_cursor(f, page);
}

void render_schedule(FILE *f, const cJSON *schedule, const render_opts *o)
{
    static const char *const names[] = { "id", "name", "cron", "timezone", "paused",
                                         "next_run_at", "last_tick_at", "job", "agent_run",
                                         "created_by", "created_at" };
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        kv_member(f, o, schedule, names[i]);
    const cJSON *tick;
    cJSON_ArrayForEach(tick, cJSON_GetObjectItemCaseSensitive(schedule, "recent_ticks")) {
        char at[48], job[64], run[64], st[32], line[256];
        member_text(tick, "tick_at", at, sizeof at);
        member_text(tick, "job_id", job, sizeof job);
        member_text(tick, "run_id", run, sizeof run);
        member_text(tick, "status", st, sizeof st);
        snprintf(line, sizeof line, "%s job %s run %s %s", at, job, run, st);
        kv(f, o, "tick", line);
    }
}

void render_run_output(FILE *f, const cJSON *run, const render_opts *o)
{
    const char *output = json_get_string(run, "output");
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(run, "error");
    if (output != NULL) {
        if (o->tty) {
            fputc('\n', f);            /* set apart from the steps above */
            render_text(f, output, strlen(output));
        } else {
            fputs(output, f);
        }
        if (output[0] != '\0' && output[strlen(output) - 1] != '\n')
            fputc('\n', f);
    } else if (cJSON_IsObject(err)) {
        char e[1024];
        error_text(err, e, sizeof e);
        fprintf(f, "error: ");
        render_text(f, e, strlen(e));
        fputc('\n', f);
    }
}

void render_job_result(FILE *f, const cJSON *job, const render_opts *o)
{
    const cJSON *result = cJSON_GetObjectItemCaseSensitive(job, "result");
    if (result == NULL || cJSON_IsNull(result))
        return;
    char *s = cJSON_PrintUnformatted(result);
    if (s == NULL)
        return;
    if (o->tty)
        fprintf(f, "%sresult:%s ", c_on(o, "\033[1m"), c_off(o));
    render_text(f, s, strlen(s));
    fputc('\n', f);
    free(s);
}

/* --------------------------------------------------------------------- */
/* Following events                                                       */
/* --------------------------------------------------------------------- */

void render_follow_init(render_follow *rf, FILE *out, const render_opts *o)
{
    memset(rf, 0, sizeof *rf);
    rf->out = out;
    rf->o = *o;
    rf->started_ms = clock_mono_ms();
}

void render_follow_free(render_follow *rf)
{
    strbuf_free(&rf->pending);
}

static void add_member_flat(strbuf *b, const cJSON *obj, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (cJSON_IsString(v))
        strbuf_add_flat(b, v->valuestring, SUMMARY_MAX);
    else if (cJSON_IsNumber(v))
        strbuf_addf(b, "%.0f", v->valuedouble);
    else
        strbuf_add(b, "?");
}

/* One line saying what an event means. */
static void summarize(strbuf *b, const char *type, const cJSON *d)
{
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(d, "error");
    if (strcmp(type, "job.queued") == 0) {
        strbuf_add(b, "queued");
    } else if (strcmp(type, "job.started") == 0) {
        strbuf_add(b, "started attempt ");
        add_member_flat(b, d, "attempt");
        strbuf_add(b, " on ");
        add_member_flat(b, d, "worker_id");
    } else if (strcmp(type, "job.progress") == 0) {
        if (cJSON_GetObjectItemCaseSensitive(d, "current") != NULL) {
            strbuf_add(b, "progress ");
            add_member_flat(b, d, "current");
            strbuf_add(b, "/");
            add_member_flat(b, d, "total");
            if (json_get_string(d, "message") != NULL) {
                strbuf_add(b, " ");
                add_member_flat(b, d, "message");
            }
        } else {
            strbuf_add(b, "progress");
        }
    } else if (strcmp(type, "job.retrying") == 0) {
        strbuf_add(b, "retrying after attempt ");
        add_member_flat(b, d, "attempt");
        strbuf_add(b, ": ");
        add_member_flat(b, d, "reason");
        strbuf_add(b, ", in ");
        add_member_flat(b, d, "delay_ms");
        strbuf_add(b, " ms");
    } else if (strcmp(type, "step.started") == 0 || strcmp(type, "step.completed") == 0) {
        strbuf_add(b, "step ");
        add_member_flat(b, d, "index");
        strbuf_add(b, " ");
        add_member_flat(b, d, "action");
        if (type[5] == 's') {
            strbuf_add(b, " started");
        } else {
            strbuf_add(b, " ");
            add_member_flat(b, d, "status");
            strbuf_add(b, " in ");
            add_member_flat(b, d, "latency_ms");
            strbuf_add(b, " ms");
        }
    } else if (strcmp(type, "tool.called") == 0) {
        strbuf_add(b, "tool ");
        add_member_flat(b, d, "tool");
        strbuf_add(b, " ");
        add_member_flat(b, d, "status");
        strbuf_add(b, " in ");
        add_member_flat(b, d, "latency_ms");
        strbuf_add(b, " ms");
    } else if (strcmp(type, "log") == 0) {
        add_member_flat(b, d, "level");
        strbuf_add(b, ": ");
        add_member_flat(b, d, "message");
    } else if (strcmp(type, "approval.requested") == 0) {
        strbuf_add(b, "waiting for approval of ");
        add_member_flat(b, d, "tool");
        strbuf_add(b, " (tool_call_id ");
        add_member_flat(b, d, "tool_call_id");
        strbuf_add(b, ")");
    } else if (strcmp(type, "approval.resolved") == 0) {
        strbuf_add(b, "tool call ");
        add_member_flat(b, d, "tool_call_id");
        strbuf_add(b, " ");
        add_member_flat(b, d, "decision");
    } else if (strcmp(type, "job.succeeded") == 0) {
        strbuf_add(b, "succeeded");
    } else if (strcmp(type, "job.cancelled") == 0) {
        strbuf_add(b, "cancelled: ");
        add_member_flat(b, d, "reason");
    } else if (strcmp(type, "job.failed") == 0) {
        strbuf_add(b, "failed");
    } else {
        char *s = cJSON_PrintUnformatted(d);
        strbuf_add_flat(b, s, SUMMARY_MAX);
        free(s);
    }
    if (cJSON_IsObject(err)) {
        strbuf_add(b, " (");
        add_member_flat(b, err, "code");
        strbuf_add(b, ": ");
        add_member_flat(b, err, "message");
        strbuf_add(b, ")");
    } else if (cJSON_IsString(err)) {
        strbuf_add(b, " (");
        strbuf_add_flat(b, err->valuestring, SUMMARY_MAX);
        strbuf_add(b, ")");
    }
}

/* Erases the progress line and ends model text, so a permanent line can
 * start at the left edge. */
static void tty_settle(render_follow *rf)
{
    if (rf->status_shown) {
        fputs(CLEAR_LINE, rf->out);
        rf->status_shown = false;
    }
    if (rf->text_open) {
        fputc('\n', rf->out);
        rf->text_open = false;
    }
}

/* Draws the progress line (what is happening, the TODOs done, the time
 * so far), unless model text is mid-line: it is drawn again at the next
 * permanent line. */
static void tty_status(render_follow *rf)
{
    if (rf->text_open || rf->phase[0] == '\0')
        return;
    char line[400], elapsed[32];
    snprintf(line, sizeof line, "%s%s%s", rf->phase, rf->progress[0] ? " \xc2\xb7 " : "",
             rf->progress);
    snprintf(elapsed, sizeof elapsed, "  %.1fs",
             (double)(clock_mono_ms() - rf->started_ms) / 1000.0);
    /* The line must not wrap: erasing it would then leave its first part
     * on the screen. */
    struct winsize ws;
    if (ioctl(fileno(rf->out), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        cut_to_width(line, (size_t)ws.ws_col > strlen(elapsed) + 3
                               ? (size_t)ws.ws_col - strlen(elapsed) - 3 : 1);
    fprintf(rf->out, CLEAR_LINE "%s\xe2\x80\xa6 %s%s%s", c_on(&rf->o, "\033[36m"), line,
            elapsed, c_off(&rf->o));
    rf->status_shown = true;
}

/* Model text on the terminal, each of its lines behind a gutter that sets
 * it apart from the CLI's own lines. */
static void tty_text(render_follow *rf, const char *s)
{
    if (rf->status_shown) {
        fputs(CLEAR_LINE, rf->out);
        rf->status_shown = false;
    }
    while (*s != '\0') {
        if (!rf->text_open) {
            fprintf(rf->out, "%s\xe2\x94\x82%s ", c_on(&rf->o, "\033[2m"), c_off(&rf->o));
            rf->text_open = true;
        }
        const char *nl = strchr(s, '\n');
        size_t n = nl != NULL ? (size_t)(nl - s) + 1 : strlen(s);
        render_text(rf->out, s, n);
        if (nl != NULL)
            rf->text_open = false;
        s += n;
    }
}

/* Sets the progress line's "what is happening" (out, size bytes) from an
 * event that changes it; other events leave it as it was. */
static void phase_of(char *out, size_t size, const char *type, const cJSON *d)
{
    strbuf b = {0};
    if (strcmp(type, "job.queued") == 0) {
        strbuf_add(&b, "queued");
    } else if (strcmp(type, "job.started") == 0) {
        strbuf_add(&b, "running, attempt ");
        add_member_flat(&b, d, "attempt");
    } else if (strcmp(type, "job.retrying") == 0) {
        strbuf_add(&b, "waiting to retry");
    } else if (strcmp(type, "approval.requested") == 0) {
        strbuf_add(&b, "waiting for approval");
    } else if (strcmp(type, "step.started") == 0 || strcmp(type, "step.completed") == 0) {
        strbuf_add(&b, "step ");
        add_member_flat(&b, d, "index");
        strbuf_add(&b, " ");
        add_member_flat(&b, d, "action");
        if (type[5] == 'c')
            strbuf_add(&b, " done");
    } else {
        return;
    }
    snprintf(out, size, "%s", b.oom || b.s == NULL ? "" : b.s);
    strbuf_free(&b);
}

static void tty_line(render_follow *rf, const char *color, const char *mark, const char *text)
{
    tty_settle(rf);
    fprintf(rf->out, "%s%s%s %s\n", c_on(&rf->o, color), mark, c_off(&rf->o), text);
}

static bool follow_ends(const char *type)
{
    return strcmp(type, "job.succeeded") == 0 || strcmp(type, "job.failed") == 0 ||
           strcmp(type, "job.cancelled") == 0;
}

static void tty_event(render_follow *rf, const char *type, const cJSON *d, const char *summary)
{
    if (strcmp(type, "llm.delta") == 0) {
        const char *delta = json_get_string(d, "delta");
        if (delta != NULL)
            tty_text(rf, delta);
        return;
    }
    phase_of(rf->phase, sizeof rf->phase, type, d);
    char ended[360];
    if (follow_ends(type)) {
        /* The outcome, and how long it was watched. */
        snprintf(ended, sizeof ended, "%s after %.1f s", summary,
                 (double)(clock_mono_ms() - rf->started_ms) / 1000.0);
        summary = ended;
    }
    if (strcmp(type, "step.completed") == 0) {
        const char *st = json_get_string(d, "status");
        bool ok = st != NULL && strcmp(st, "completed") == 0;
        tty_line(rf, ok ? "\033[32m" : "\033[33m", ok ? "\xe2\x9c\x93" : "\xe2\x9c\x97", summary);
    } else if (strcmp(type, "tool.called") == 0 || strcmp(type, "log") == 0 ||
               strcmp(type, "job.retrying") == 0 || strncmp(type, "approval.", 9) == 0) {
        tty_line(rf, "\033[35m", "\xe2\x80\xa2", summary);
    } else if (strcmp(type, "job.succeeded") == 0) {
        tty_line(rf, "\033[1;32m", "\xe2\x9c\x93", summary);
        rf->phase[0] = '\0';
    } else if (strcmp(type, "job.failed") == 0) {
        tty_line(rf, "\033[1;31m", "\xe2\x9c\x97", summary);
        rf->phase[0] = '\0';
    } else if (strcmp(type, "job.cancelled") == 0) {
        tty_line(rf, "\033[1;33m", "\xe2\x96\xa0", summary);
        rf->phase[0] = '\0';
    } else if (strcmp(type, "job.progress") == 0) {
        /* "progress 2/3 Look up ...": the part after the word. */
        snprintf(rf->progress, sizeof rf->progress, "%.*s", (int)sizeof rf->progress - 1,
                 strncmp(summary, "progress ", 9) == 0 ? summary + 9 : summary);
    }
    tty_status(rf);
}

/* Plain mode: prints the model text gathered so far as whole lines;
 * all of it when flush_all (a non-delta event ends the text). */
static void plain_text_lines(render_follow *rf, bool flush_all)
{
    char *s = rf->pending.s;
    size_t used = 0;
    while (s != NULL && used < rf->pending.len) {
        char *nl = memchr(s + used, '\n', rf->pending.len - used);
        if (nl == NULL && !flush_all)
            break;
        size_t n = nl != NULL ? (size_t)(nl - (s + used)) : rf->pending.len - used;
        strbuf line = {0};
        strbuf_addn(&line, s + used, n);
        if (!line.oom && line.len > 0) {
            strbuf flat = {0};
            strbuf_add_flat(&flat, line.s, line.len);
            if (!flat.oom && flat.len > 0)
                fprintf(rf->out, "%-4s %-14s %s\n", rf->pending_id, "llm.delta", flat.s);
            strbuf_free(&flat);
        }
        strbuf_free(&line);
        used += n + (nl != NULL ? 1 : 0);
    }
    if (used > 0) {
        memmove(s, s + used, rf->pending.len - used);
        rf->pending.len -= used;
        s[rf->pending.len] = '\0';
    }
}

static void plain_event(render_follow *rf, const char *type, const char *id, const cJSON *d,
                        const char *summary)
{
    if (strcmp(type, "llm.delta") == 0) {
        const char *delta = json_get_string(d, "delta");
        if (delta == NULL)
            return;
        if (rf->pending.len == 0)
            snprintf(rf->pending_id, sizeof rf->pending_id, "%s", id);
        strbuf_add(&rf->pending, delta);
        /* A line is printed when it ends, or once it is long enough. */
        plain_text_lines(rf, rf->pending.len >= PENDING_MAX);
        return;
    }
    plain_text_lines(rf, true);
    fprintf(rf->out, "%-4s %-14s %s\n", id, type, summary);
}

void render_follow_event(render_follow *rf, const char *type, const char *id,
                         const char *raw, const cJSON *env)
{
    if (rf->o.json) {
        fputs(raw, rf->out);
        fputc('\n', rf->out);
        fflush(rf->out);
        return;
    }
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(env, "data");
    strbuf summary = {0};
    summarize(&summary, type, d);
    const char *text = summary.oom || summary.s == NULL ? "" : summary.s;
    if (rf->o.tty)
        tty_event(rf, type, d, text);
    else
        plain_event(rf, type, id, d, text);
    strbuf_free(&summary);
    fflush(rf->out);
}

void render_follow_end(render_follow *rf)
{
    if (rf->o.tty)
        tty_settle(rf);
    else
        plain_text_lines(rf, true);
    fflush(rf->out);
}
