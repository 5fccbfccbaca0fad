/*
 * mcp_stdio.c - the MCP stdio transport: one child process per transport,
 * JSON-RPC messages as lines on its stdin and stdout.
 *
 * Starting: four pipes, all O_CLOEXEC (stdin, stdout, stderr, and one
 * that tells the parent whether execve failed), then fork. Between fork
 * and exec the child calls only async-signal-safe functions, since the
 * worker forks from a process with many threads. The program path is
 * looked up in PATH before the fork for the same reason.
 *
 * Reading: stdout is non-blocking; receive polls it until the deadline
 * and cuts lines out of a buffer. A line longer than the message limit is
 * reported once and skipped up to its newline, so the stream stays in
 * step. End of file means the child is gone: it is reaped and the reason
 * (exit status or signal) becomes the error.
 *
 * Writing: non-blocking with poll, SIGPIPE blocked in this thread for
 * the duration and any SIGPIPE it raised consumed, so a dead child is an
 * EPIPE error and never a signal that kills the worker.
 *
 * stderr: a thread per child reads it and logs each line; a stop pipe
 * wakes the thread when a grandchild keeps stderr open after the child
 * has gone.
 *
 * Waiting uses waitid(WNOWAIT) to see that the child ended without
 * reaping it, so its process group id stays reserved while the rest of
 * the group (grandchildren) is killed; then waitpid reaps it.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "mcp_stdio.h"
#include "strbuf.h"

extern char **environ;

#define STDIO_READ_CHUNK       65536
#define STDIO_STDERR_LINE_MAX  2000     /* bytes of one stderr line logged */
#define STDIO_STABLE_MS        30000    /* a child this old resets the backoff */
#define STDIO_WAIT_STEP_MS     10

typedef struct stderr_reader {
    int fd;                     /* the child's stderr, read end */
    int stop_fd;                /* readable when the reader must stop */
    char name[64];
} stderr_reader;

typedef struct stdio_transport {
    mcp_transport base;
    char **argv;
    char **envp;                /* NULL: inherit */
    char *cwd;
    size_t max_msg;
    long long grace_ms, backoff_ms, backoff_max_ms;

    pid_t pid;                  /* -1 when no child runs */
    int in_fd, out_fd;          /* child's stdin (we write), stdout (we read) */
    long long started_ms;
    int quick_deaths;           /* children in a row that died young */
    long long next_start_ms;    /* no restart before this */

    strbuf rbuf;                /* stdout bytes not yet handed out */
    size_t rpos;                /* where the unread bytes start */
    size_t scanned;             /* bytes after rpos known to hold no '\n' */
    bool discarding;            /* skipping the tail of an overlong line */

    pthread_t err_thread;
    bool err_thread_running;
    stderr_reader *reader;
    int stop_pipe[2];
} stdio_transport;

static void sleep_ms(long long ms)
{
    if (ms > 0)
        clock_sleep_ms(ms);
}

/* ---------- configuration copies ---------- */

static void free_strv(char **v)
{
    if (!v)
        return;
    for (char **p = v; *p; p++)
        free(*p);
    free(v);
}

static char **copy_strv(char *const *v)
{
    size_t n = 0;
    while (v[n])
        n++;
    char **c = calloc(n + 1, sizeof *c);
    if (!c)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (!(c[i] = strdup(v[i]))) {
            free_strv(c);
            return NULL;
        }
    }
    return c;
}

/* Finds argv0 in PATH as execvp would, but in the parent, where malloc
 * is allowed. Returns a malloc'd path or NULL. */
static char *find_program(const char *argv0)
{
    if (strchr(argv0, '/'))
        return strdup(argv0);
    const char *path = getenv("PATH");
    if (!path || !*path)
        path = "/usr/local/bin:/usr/bin:/bin";
    const char *p = path;
    while (*p) {
        const char *end = strchr(p, ':');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        strbuf b = {0};
        if (n == 0)
            strbuf_add(&b, ".");
        else
            strbuf_addn(&b, p, n);
        strbuf_addf(&b, "/%s", argv0);
        char *cand = strbuf_take(&b, NULL);
        struct stat st;
        if (cand && stat(cand, &st) == 0 && S_ISREG(st.st_mode) &&
            access(cand, X_OK) == 0)
            return cand;
        free(cand);
        p += n;
        if (*p == ':')
            p++;
    }
    return NULL;
}

/* ---------- SIGPIPE-safe, deadline-bounded writes ---------- */

/* Writes n bytes to the non-blocking fd by deadline_ms. Returns 0, or
 * -1 with errno (ETIMEDOUT when the deadline passed). */
static int write_all(int fd, const char *buf, size_t n, long long deadline_ms)
{
    while (n > 0) {
        ssize_t w = write(fd, buf, n);
        if (w > 0) {
            buf += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            return -1;
        long long left = deadline_ms - clock_mono_ms();
        if (left <= 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        struct pollfd pfd = { .fd = fd, .events = POLLOUT };
        if (poll(&pfd, 1, (int)(left > 1000 ? 1000 : left)) < 0 && errno != EINTR)
            return -1;
    }
    return 0;
}

/* write_all with SIGPIPE blocked in this thread; a SIGPIPE the write
 * raised is taken off the pending set before unblocking, one that was
 * pending before is left alone. */
static int write_all_nosigpipe(int fd, const char *buf, size_t n, long long deadline_ms)
{
    sigset_t pipe_set, old, pending;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    sigpending(&pending);
    bool was_pending = sigismember(&pending, SIGPIPE);

    int rc = write_all(fd, buf, n, deadline_ms);
    int saved = errno;
    if (rc < 0 && saved == EPIPE && !was_pending) {
        struct timespec zero = {0, 0};
        while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
            ;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = saved;
    return rc;
}

/* ---------- the stderr reader thread ---------- */

static void log_stderr_line(const stderr_reader *r, const char *line, size_t n,
                            bool cut)
{
    char tmp[STDIO_STDERR_LINE_MAX + 1];
    if (n > STDIO_STDERR_LINE_MAX)
        n = STDIO_STDERR_LINE_MAX;
    memcpy(tmp, line, n);
    tmp[n] = '\0';
    strbuf b = {0};
    strbuf_add_flat(&b, tmp, STDIO_STDERR_LINE_MAX);
    if (b.len > 0 && !b.oom)
        log_warn("mcp server %s stderr: %s%s", r->name, b.s, cut ? "..." : "");
    strbuf_free(&b);
}

static void *stderr_reader_main(void *arg)
{
    stderr_reader *r = arg;
    char line[STDIO_STDERR_LINE_MAX];
    size_t len = 0;
    bool skipping = false;      /* dropping the rest of a long line */
    int drained = 0;
    char chunk[4096];
    for (;;) {
        struct pollfd pfd[2] = {
            { .fd = r->fd, .events = POLLIN },
            { .fd = r->stop_fd, .events = POLLIN },
        };
        if (poll(pfd, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        /* Asked to stop: what is already in the pipe (often the reason
         * the server died) is still logged, up to a bound, since a
         * grandchild could keep writing forever. */
        if (pfd[1].revents && (!pfd[0].revents || ++drained > 64))
            break;
        ssize_t n = read(r->fd, chunk, sizeof chunk);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0)
            break;
        for (ssize_t i = 0; i < n; i++) {
            char c = chunk[i];
            if (c == '\n') {
                if (!skipping)
                    log_stderr_line(r, line, len, false);
                len = 0;
                skipping = false;
            } else if (!skipping) {
                line[len++] = c;
                if (len == sizeof line) {
                    log_stderr_line(r, line, len, true);
                    len = 0;
                    skipping = true;
                }
            }
        }
    }
    if (len > 0 && !skipping)
        log_stderr_line(r, line, len, false);
    return NULL;
}

static void stop_stderr_reader(stdio_transport *s)
{
    if (s->err_thread_running) {
        ssize_t w;
        do
            w = write(s->stop_pipe[1], "x", 1);
        while (w < 0 && errno == EINTR);
        pthread_join(s->err_thread, NULL);
        s->err_thread_running = false;
    }
    if (s->reader) {
        close(s->reader->fd);
        free(s->reader);
        s->reader = NULL;
    }
    for (int i = 0; i < 2; i++) {
        if (s->stop_pipe[i] >= 0)
            close(s->stop_pipe[i]);
        s->stop_pipe[i] = -1;
    }
}

static int start_stderr_reader(stdio_transport *s, int err_fd, char *err,
                               size_t err_size)
{
    s->reader = calloc(1, sizeof *s->reader);
    if (!s->reader || pipe2(s->stop_pipe, O_CLOEXEC) < 0) {
        close(err_fd);
        errbuf_printf(err, err_size, "cannot set up the stderr reader: %s",
                      strerror(errno ? errno : ENOMEM));
        free(s->reader);
        s->reader = NULL;
        return -1;
    }
    s->reader->fd = err_fd;
    s->reader->stop_fd = s->stop_pipe[0];
    snprintf(s->reader->name, sizeof s->reader->name, "%s", s->base.name);
    int rc = pthread_create(&s->err_thread, NULL, stderr_reader_main, s->reader);
    if (rc != 0) {
        errbuf_printf(err, err_size, "cannot start the stderr reader: %s", strerror(rc));
        stop_stderr_reader(s);
        return -1;
    }
    s->err_thread_running = true;
    return 0;
}

/* ---------- the child process ---------- */

/* True once the child has ended, without reaping it (WNOWAIT), so its
 * pid and process group id cannot be reused yet. */
static bool child_ended(pid_t pid)
{
    siginfo_t si;
    memset(&si, 0, sizeof si);
    for (;;) {
        if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0)
            return si.si_pid == pid;
        if (errno != EINTR)
            return true;        /* ECHILD: nothing left to wait for */
    }
}

static bool wait_child_ended(pid_t pid, long long ms)
{
    long long until = clock_mono_ms() + ms;
    for (;;) {
        if (child_ended(pid))
            return true;
        if (clock_mono_ms() >= until)
            return false;
        sleep_ms(STDIO_WAIT_STEP_MS);
    }
}

static void describe_status(int status, char *out, size_t out_size)
{
    if (WIFEXITED(status))
        errbuf_printf(out, out_size, "exited with status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        errbuf_printf(out, out_size, "was killed by signal %d (%s)", WTERMSIG(status),
                      strsignal(WTERMSIG(status)));
    else
        errbuf_printf(out, out_size, "ended");
}

/* Kills what is left of the child's process group, reaps the child and
 * describes how it ended. The child must have ended already. */
static void reap_child(stdio_transport *s, char *how, size_t how_size)
{
    kill(-s->pid, SIGKILL);     /* grandchildren it left behind, if any */
    int status = 0;
    pid_t r;
    do
        r = waitpid(s->pid, &status, 0);
    while (r < 0 && errno == EINTR);
    if (r == s->pid)
        describe_status(status, how, how_size);
    else
        errbuf_printf(how, how_size, "ended");
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* Forgets the child's pipes and buffered output once it is reaped. */
static void release_child(stdio_transport *s)
{
    close_fd(&s->in_fd);
    close_fd(&s->out_fd);
    stop_stderr_reader(s);
    strbuf_reset(&s->rbuf);
    s->rpos = s->scanned = 0;
    s->discarding = false;
    s->pid = -1;
}

/* The shutdown the specification asks for: close stdin, wait; SIGTERM,
 * wait; SIGKILL. Then reap. */
static void stop_child(stdio_transport *s)
{
    if (s->pid <= 0)
        return;
    close_fd(&s->in_fd);
    if (!wait_child_ended(s->pid, s->grace_ms)) {
        kill(-s->pid, SIGTERM);
        kill(s->pid, SIGTERM);
        if (!wait_child_ended(s->pid, s->grace_ms)) {
            kill(-s->pid, SIGKILL);
            kill(s->pid, SIGKILL);
            wait_child_ended(s->pid, 5000);
        }
    }
    char how[128];
    reap_child(s, how, sizeof how);
    log_info("mcp server %s stopped (%s)", s->base.name, how);
    release_child(s);
}

static long long backoff_delay(const stdio_transport *s)
{
    if (s->quick_deaths <= 0)
        return 0;
    long long d = s->backoff_ms;
    for (int i = 1; i < s->quick_deaths && d < s->backoff_max_ms; i++)
        d *= 2;
    return d < s->backoff_max_ms ? d : s->backoff_max_ms;
}

/* The child went away on its own (end of file on stdout, EPIPE on
 * stdin): reap it, count it for the backoff and say how it ended. */
static int child_gone(stdio_transport *s, char *err, size_t err_size)
{
    if (!wait_child_ended(s->pid, s->grace_ms)) {
        /* It closed stdout but lives on: no use, stop it. */
        stop_child(s);
        errbuf_printf(err, err_size, "MCP server %s closed its output", s->base.name);
    } else {
        char how[128];
        reap_child(s, how, sizeof how);
        release_child(s);
        errbuf_printf(err, err_size, "MCP server %s %s", s->base.name, how);
    }
    long long now = clock_mono_ms();
    if (now - s->started_ms >= STDIO_STABLE_MS)
        s->quick_deaths = 0;
    s->quick_deaths++;
    s->next_start_ms = now + backoff_delay(s);
    log_warn("%s", err);
    return MCP_ERR_TRANSPORT;
}

/* Moves fd to a number of at least 3 so the dup2s onto 0, 1 and 2 cannot
 * overwrite one another. Async-signal-safe. */
static int lift_fd(int fd)
{
    return fcntl(fd, F_DUPFD_CLOEXEC, 3);
}

static void reset_signals_in_child(void)
{
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    static const int sigs[] = { SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGCHLD };
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaction(sigs[i], &dfl, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

/* Runs in the child after fork; never returns. */
static void exec_child(const char *path, char *const *argv, char *const *envp,
                       const char *cwd, int in_r, int out_w, int err_w, int report_w)
{
    reset_signals_in_child();
    setpgid(0, 0);
    int a = lift_fd(in_r), b = lift_fd(out_w), c = lift_fd(err_w);
    int e = 0;
    if (a < 0 || b < 0 || c < 0 || dup2(a, 0) < 0 || dup2(b, 1) < 0 || dup2(c, 2) < 0)
        e = errno;
    else if (cwd && chdir(cwd) < 0)
        e = errno;
    else {
        execve(path, argv, envp ? envp : environ);
        e = errno;
    }
    ssize_t w;
    do
        w = write(report_w, &e, sizeof e);
    while (w < 0 && errno == EINTR);
    _exit(127);
}

static void close_pair(int p[2])
{
    close_fd(&p[0]);
    close_fd(&p[1]);
}

/* Reads the errno the child reports when execve fails; 0 when the pipe
 * closed because execve succeeded. */
static int read_exec_report(int fd)
{
    int e = 0;
    ssize_t n;
    do
        n = read(fd, &e, sizeof e);
    while (n < 0 && errno == EINTR);
    return n == (ssize_t)sizeof e ? e : 0;
}

static int spawn_child(stdio_transport *s, char *err, size_t err_size)
{
    char *path = find_program(s->argv[0]);
    if (!path) {
        errbuf_printf(err, err_size, "MCP server %s: cannot find %s in PATH",
                      s->base.name, s->argv[0]);
        return MCP_ERR_TRANSPORT;
    }
    int in_p[2] = {-1, -1}, out_p[2] = {-1, -1}, err_p[2] = {-1, -1}, rep_p[2] = {-1, -1};
    if (pipe2(in_p, O_CLOEXEC) < 0 || pipe2(out_p, O_CLOEXEC) < 0 ||
        pipe2(err_p, O_CLOEXEC) < 0 || pipe2(rep_p, O_CLOEXEC) < 0) {
        errbuf_printf(err, err_size, "MCP server %s: pipe: %s", s->base.name,
                      strerror(errno));
        close_pair(in_p); close_pair(out_p); close_pair(err_p); close_pair(rep_p);
        free(path);
        return MCP_ERR_TRANSPORT;
    }
    pid_t pid = fork();
    if (pid == 0)
        exec_child(path, s->argv, s->envp, s->cwd, in_p[0], out_p[1], err_p[1], rep_p[1]);
    int fork_errno = errno;
    free(path);
    close_fd(&in_p[0]);
    close_fd(&out_p[1]);
    close_fd(&err_p[1]);
    close_fd(&rep_p[1]);
    if (pid < 0) {
        errbuf_printf(err, err_size, "MCP server %s: fork: %s", s->base.name,
                      strerror(fork_errno));
        close_fd(&in_p[1]); close_fd(&out_p[0]); close_fd(&err_p[0]); close_fd(&rep_p[0]);
        return MCP_ERR_TRANSPORT;
    }
    setpgid(pid, pid);          /* also here: no race with the first kill */
    int exec_errno = read_exec_report(rep_p[0]);
    close_fd(&rep_p[0]);
    s->pid = pid;
    s->in_fd = in_p[1];
    s->out_fd = out_p[0];
    s->started_ms = clock_mono_ms();
    fcntl(s->in_fd, F_SETFL, fcntl(s->in_fd, F_GETFL) | O_NONBLOCK);
    fcntl(s->out_fd, F_SETFL, fcntl(s->out_fd, F_GETFL) | O_NONBLOCK);
    if (start_stderr_reader(s, err_p[0], err, err_size) < 0) {
        stop_child(s);
        return MCP_ERR_TRANSPORT;
    }
    if (exec_errno != 0) {
        char how[128];
        wait_child_ended(pid, 5000);
        reap_child(s, how, sizeof how);
        release_child(s);
        errbuf_printf(err, err_size, "MCP server %s: cannot run %s: %s", s->base.name,
                      s->argv[0], strerror(exec_errno));
        return MCP_ERR_TRANSPORT;
    }
    log_info("mcp server %s started (pid %d)", s->base.name, (int)pid);
    return MCP_OK;
}

/* ---------- transport operations ---------- */

static int stdio_connect(mcp_transport *t, long long deadline_ms, char *err,
                         size_t err_size)
{
    stdio_transport *s = (stdio_transport *)t;
    if (s->pid > 0 && child_ended(s->pid)) {
        char why[256];
        child_gone(s, why, sizeof why);
    }
    if (s->pid > 0)
        return 0;
    long long now = clock_mono_ms();
    long long wait = s->next_start_ms - now;
    if (wait > 0) {
        if (now + wait > deadline_ms) {
            errbuf_printf(err, err_size,
                          "MCP server %s is restarting: next start in %lld ms "
                          "(after %d failures in a row)",
                          s->base.name, wait, s->quick_deaths);
            return MCP_ERR_TRANSPORT;
        }
        sleep_ms(wait);
    }
    int rc = spawn_child(s, err, err_size);
    if (rc != MCP_OK) {
        s->quick_deaths++;
        s->next_start_ms = clock_mono_ms() + backoff_delay(s);
        return rc;
    }
    return 1;
}

static int stdio_send(mcp_transport *t, const char *msg, size_t len,
                      long long deadline_ms, char *err, size_t err_size)
{
    stdio_transport *s = (stdio_transport *)t;
    if (s->pid <= 0) {
        errbuf_printf(err, err_size, "MCP server %s is not running", s->base.name);
        return MCP_ERR_TRANSPORT;
    }
    if (memchr(msg, '\n', len) || memchr(msg, '\r', len)) {
        errbuf_printf(err, err_size, "message holds a line break");
        return MCP_ERR_INVALID;
    }
    if (write_all_nosigpipe(s->in_fd, msg, len, deadline_ms) < 0 ||
        write_all_nosigpipe(s->in_fd, "\n", 1, deadline_ms) < 0) {
        if (errno == ETIMEDOUT) {
            /* Half a line is in the pipe: the stream is out of step. */
            stop_child(s);
            errbuf_printf(err, err_size, "MCP server %s stopped reading its input",
                          s->base.name);
            return MCP_ERR_TIMEOUT;
        }
        if (errno == EPIPE)
            return child_gone(s, err, err_size);
        errbuf_printf(err, err_size, "MCP server %s: write: %s", s->base.name,
                      strerror(errno));
        stop_child(s);
        return MCP_ERR_TRANSPORT;
    }
    return MCP_OK;
}

/* Drops consumed bytes from the front once they are half the buffer. */
static void compact(stdio_transport *s)
{
    if (s->rpos == 0 || s->rpos < s->rbuf.len / 2)
        return;
    memmove(s->rbuf.s, s->rbuf.s + s->rpos, s->rbuf.len - s->rpos);
    s->rbuf.len -= s->rpos;
    s->rbuf.s[s->rbuf.len] = '\0';
    s->rpos = 0;
}

/*
 * Takes the next line out of the buffer. Returns 1 with *msg, 0 when no
 * complete line is buffered, or MCP_ERR_TOO_LARGE once for a line over
 * the limit (its rest is then skipped), MCP_ERR_NOMEM.
 */
static int next_line(stdio_transport *s, char **msg, size_t *len, char *err,
                     size_t err_size)
{
    for (;;) {
        size_t avail = s->rbuf.len - s->rpos;
        const char *start = s->rbuf.s ? s->rbuf.s + s->rpos : "";
        const char *nl = avail > s->scanned
                         ? memchr(start + s->scanned, '\n', avail - s->scanned) : NULL;
        if (!nl) {
            s->scanned = avail;
            if (s->discarding || avail > s->max_msg) {
                bool first = !s->discarding;
                s->discarding = true;
                s->rpos = s->rbuf.len;
                s->scanned = 0;
                compact(s);
                if (first) {
                    errbuf_printf(err, err_size,
                                  "MCP server %s sent a message over %zu bytes",
                                  s->base.name, s->max_msg);
                    return MCP_ERR_TOO_LARGE;
                }
            }
            return 0;
        }
        size_t n = (size_t)(nl - start);
        s->rpos += n + 1;
        s->scanned = 0;
        if (s->discarding) {
            s->discarding = false;      /* that was the tail of a long line */
            compact(s);
            continue;
        }
        if (n > 0 && start[n - 1] == '\r')
            n--;
        if (n == 0) {
            compact(s);
            continue;                   /* blank lines carry nothing */
        }
        if (n > s->max_msg) {
            compact(s);
            errbuf_printf(err, err_size, "MCP server %s sent a message over %zu bytes",
                          s->base.name, s->max_msg);
            return MCP_ERR_TOO_LARGE;
        }
        char *copy = malloc(n + 1);
        if (!copy) {
            errbuf_printf(err, err_size, "out of memory");
            return MCP_ERR_NOMEM;
        }
        memcpy(copy, start, n);
        copy[n] = '\0';
        compact(s);
        *msg = copy;
        *len = n;
        return 1;
    }
}

static int stdio_receive(mcp_transport *t, char **msg, size_t *len,
                         long long deadline_ms, char *err, size_t err_size)
{
    stdio_transport *s = (stdio_transport *)t;
    for (;;) {
        int rc = next_line(s, msg, len, err, err_size);
        if (rc != 0)
            return rc;
        if (s->pid <= 0) {
            errbuf_printf(err, err_size, "MCP server %s is not running", s->base.name);
            return MCP_ERR_TRANSPORT;
        }
        long long left = deadline_ms - clock_mono_ms();
        if (left <= 0)
            return 0;
        struct pollfd pfd = { .fd = s->out_fd, .events = POLLIN };
        int pr = poll(&pfd, 1, (int)(left > 1000 ? 1000 : left));
        if (pr < 0 && errno != EINTR) {
            errbuf_printf(err, err_size, "poll: %s", strerror(errno));
            return MCP_ERR_TRANSPORT;
        }
        if (pr <= 0)
            continue;
        char *dst = strbuf_extend(&s->rbuf, STDIO_READ_CHUNK);
        if (!dst) {
            errbuf_printf(err, err_size, "out of memory");
            return MCP_ERR_NOMEM;
        }
        ssize_t n = read(s->out_fd, dst, STDIO_READ_CHUNK);
        s->rbuf.len -= STDIO_READ_CHUNK - (n > 0 ? (size_t)n : 0);
        s->rbuf.s[s->rbuf.len] = '\0';
        if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
            continue;
        if (n < 0) {
            errbuf_printf(err, err_size, "MCP server %s: read: %s", s->base.name,
                          strerror(errno));
            stop_child(s);
            return MCP_ERR_TRANSPORT;
        }
        if (n == 0)
            return child_gone(s, err, err_size);
    }
}

static void stdio_set_protocol_version(mcp_transport *t, const char *version)
{
    (void)t;
    (void)version;              /* nothing on stdio carries it */
}

static void stdio_reset(mcp_transport *t)
{
    stop_child((stdio_transport *)t);
}

static void stdio_close(mcp_transport *t)
{
    stdio_transport *s = (stdio_transport *)t;
    if (!s)
        return;
    stop_child(s);
    strbuf_free(&s->rbuf);
    free_strv(s->argv);
    free_strv(s->envp);
    free(s->cwd);
    free(s);
}

static const mcp_transport_ops stdio_ops = {
    .connect = stdio_connect,
    .send = stdio_send,
    .receive = stdio_receive,
    .set_protocol_version = stdio_set_protocol_version,
    .reset = stdio_reset,
    .close = stdio_close,
};

mcp_transport *mcp_stdio_open(const mcp_stdio_config *cfg, char *err, size_t err_size)
{
    if (!cfg || !cfg->argv || !cfg->argv[0] || !cfg->argv[0][0]) {
        errbuf_printf(err, err_size, "stdio MCP server: no command given");
        return NULL;
    }
    stdio_transport *s = calloc(1, sizeof *s);
    if (!s) {
        errbuf_printf(err, err_size, "out of memory");
        return NULL;
    }
    s->base.ops = &stdio_ops;
    snprintf(s->base.name, sizeof s->base.name, "%s",
             cfg->name && cfg->name[0] ? cfg->name : "stdio");
    s->pid = -1;
    s->in_fd = s->out_fd = -1;
    s->stop_pipe[0] = s->stop_pipe[1] = -1;
    s->max_msg = cfg->max_message_bytes ? cfg->max_message_bytes : MCP_MSG_MAX_DEFAULT;
    s->grace_ms = cfg->shutdown_grace_ms > 0 ? cfg->shutdown_grace_ms : 2000;
    s->backoff_ms = cfg->restart_backoff_ms > 0 ? cfg->restart_backoff_ms : 250;
    s->backoff_max_ms = cfg->restart_backoff_max_ms > 0 ? cfg->restart_backoff_max_ms
                                                        : 10000;
    s->argv = copy_strv(cfg->argv);
    s->envp = cfg->envp ? copy_strv(cfg->envp) : NULL;
    s->cwd = cfg->cwd ? strdup(cfg->cwd) : NULL;
    if (!s->argv || (cfg->envp && !s->envp) || (cfg->cwd && !s->cwd)) {
        errbuf_printf(err, err_size, "out of memory");
        stdio_close(&s->base);
        return NULL;
    }
    return &s->base;
}

pid_t mcp_stdio_pid(const mcp_transport *t)
{
    const stdio_transport *s = (const stdio_transport *)t;
    return s && s->pid > 0 ? s->pid : -1;
}
