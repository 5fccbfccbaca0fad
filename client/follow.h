/*
 * follow.h - follows a job's event stream to its end for the agentgate
 * CLI: reads the stream with the SSE parser, shows each event, resumes
 * with Last-Event-ID when the connection drops, and tells how the job
 * ended.
 *
 * Also the CLI's exit statuses, since a followed job's outcome is what
 * most commands exit with.
 */
#ifndef AG_FOLLOW_H
#define AG_FOLLOW_H

#include "http_client.h"
#include "render.h"

/* Exit statuses of the agentgate CLI (documented in its --help). */
enum {
    EXIT_OK = 0,             /* done; a followed job or run succeeded */
    EXIT_FAILED = 1,         /* the followed job or run failed */
    EXIT_USAGE = 2,          /* bad command line */
    EXIT_CANCELLED = 3,      /* the followed job or run was cancelled */
    EXIT_CONNECT = 4,        /* no answer from the gateway (refused, timeout, stream lost) */
    EXIT_HTTP = 5,           /* the gateway refused the call, or answered something unusable */
    EXIT_INTERRUPTED = 130,  /* Ctrl-C while following, without --cancel-on-interrupt */
};

/*
 * Follows the events at events_path (e.g. "/v1/jobs/ID/events") from
 * after the event id `after` (NULL or "" for the start) until the job's
 * terminal event, showing each with rf. When a stream ends without one,
 * status_path (the job or the run, whose JSON has "status" and
 * "last_event_id") tells whether the job is over already (a resume point
 * at or past its end); otherwise the stream is opened again after the
 * server's retry delay, from the last id seen.
 *
 * Returns EXIT_OK, EXIT_FAILED or EXIT_CANCELLED by the job's outcome;
 * EXIT_INTERRUPTED when c->wake_fd became readable; EXIT_CONNECT or
 * EXIT_HTTP after printing why on stderr (as prog).
 */
int follow_job(agc *c, const char *prog, const char *events_path, const char *status_path,
               const char *after, render_follow *rf);

/* The exit status for a job or run status string: EXIT_OK, EXIT_FAILED,
 * EXIT_CANCELLED, or -1 when it is not terminal. */
int follow_exit_for_status(const char *status);

#endif
