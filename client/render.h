/*
 * render.h - what the agentgate CLI prints: tables of jobs, queues and
 * workers, one job, a run's output, the one-line error for a refused call,
 * and the live display of a job's events while following it.
 *
 * Two audiences: a person at a terminal (tty: a progress line redrawn in
 * place, the model's tokens as they arrive, aligned tables) and a program
 * reading a pipe (plain lines, one per event). Every string that came from
 * the gateway is printed without terminal control characters, so a job's
 * payload or a model's output cannot move the cursor or retitle the
 * terminal.
 */
#ifndef AG_RENDER_H
#define AG_RENDER_H

#include <stdbool.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "http_client.h"
#include "strbuf.h"

typedef struct render_opts {
    bool tty;      /* a person's terminal: progress line, colour */
    bool color;    /* tty and NO_COLOR unset */
    bool json;     /* raw JSON instead of tables and lines */
} render_opts;

/* Writes n bytes of s to f without control characters (C0 other than
 * newline and tab, DEL, and C1 in UTF-8), so text from the gateway cannot
 * drive the terminal. */
void render_text(FILE *f, const char *s, size_t n);

/*
 * Reports a refused or failed call on one line on stderr: "PROG: HTTP 404
 * Not Found: no job with this id" from a problem+json answer's title and
 * detail, or the status alone when the body is not a problem.
 */
void render_problem(const char *prog, const agc_response *r);

/* A page of jobs as a table (ID, TYPE, STATUS, ATTEMPTS, PROGRESS,
 * CREATED), then the next cursor, if any, on its own line. */
void render_jobs(FILE *f, const cJSON *page, const render_opts *o);

/* One job, a "name: value" line per member that matters. */
void render_job(FILE *f, const cJSON *job, const render_opts *o);

/* GET /v1/queues's items as a table. */
void render_queues(FILE *f, const cJSON *answer, const render_opts *o);

/* GET /v1/workers's items as a table. */
void render_workers(FILE *f, const cJSON *answer, const render_opts *o);

/* A finished agent run: its output (or its error). */
void render_run_output(FILE *f, const cJSON *run, const render_opts *o);

/* A finished job followed to its end: its result line. */
void render_job_result(FILE *f, const cJSON *job, const render_opts *o);

/* POST /v1/jobs/batch's answer: each new job's id on its own line, in the
 * order the jobs were sent. */
void render_job_ids(FILE *f, const cJSON *answer, const render_opts *o);

/* A job's webhook deliveries: the URL, then each delivery's state and a
 * line per attempt. */
void render_deliveries(FILE *f, const cJSON *answer, const render_opts *o);

/* The answer to an approval decision: the tool call, the decision, the
 * run's new status. */
void render_decision(FILE *f, const cJSON *answer, const render_opts *o);

/* A page of schedules as a table (ID, CRON, TIMEZONE, PAUSED, NEXT RUN,
 * LAST TICK), then the next cursor, if any. */
void render_schedules(FILE *f, const cJSON *page, const render_opts *o);

/* One schedule, a "name: value" line per member, then its recent ticks. */
void render_schedule(FILE *f, const cJSON *schedule, const render_opts *o);

/* The live display of a followed job's events. */
typedef struct render_follow {
    FILE *out;
    render_opts o;
    bool status_shown;       /* the progress line is drawn and the cursor is at its end */
    bool text_open;          /* model text is mid-line on the terminal */
    char phase[160];         /* the progress line: the current step or state */
    char progress[200];      /* ... and the latest job.progress ("2/3 Draft the answer") */
    strbuf pending;          /* plain: model text not yet printed as a whole line */
    char pending_id[24];     /* the id of the delta that started pending */
    long long started_ms;
} render_follow;

void render_follow_init(render_follow *rf, FILE *out, const render_opts *o);

/* Shows one event: type and id as the stream framed them, raw its data
 * line, env the envelope parsed from it (NULL when it was not JSON). */
void render_follow_event(render_follow *rf, const char *type, const char *id,
                         const char *raw, const cJSON *env);

/* Ends the display (the progress line cleared, model text ended); call
 * before printing anything else. */
void render_follow_end(render_follow *rf);

void render_follow_free(render_follow *rf);

#endif
