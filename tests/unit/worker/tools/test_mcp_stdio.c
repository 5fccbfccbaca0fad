/*
 * test_mcp_stdio.c - the stdio transport with real child processes
 * (/bin/sh and cat stand in for servers): lines both ways, stderr into
 * the log, a child that dies (clear error, restart with backoff), one
 * killed by a signal, a dead reader (EPIPE, never SIGPIPE), shutdown
 * escalating to SIGKILL, an overlong line skipped in step, a command that
 * cannot run, and after all of it no zombie and no leaked descriptor.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "clock.h"
#include "log.h"
#include "mcp_stdio.h"

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n++;
    closedir(d);
    return n;
}

static mcp_transport *open_sh(const char *script, long long grace_ms)
{
    char *argv[] = { "sh", "-c", (char *)script, NULL };
    mcp_stdio_config cfg = { .name = "test-sh", .argv = argv, .shutdown_grace_ms = grace_ms,
                             .restart_backoff_ms = 100, .max_message_bytes = 1000 };
    char err[256];
    mcp_transport *t = mcp_stdio_open(&cfg, err, sizeof err);
    assert_non_null(t);
    return t;
}

static long long deadline_in(long long ms)
{
    return clock_mono_ms() + ms;
}

static void assert_no_children(void)
{
    errno = 0;
    assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
    assert_int_equal(errno, ECHILD);
}

static void test_round_trip_with_cat(void **state)
{
    int fds = count_fds();
    char *argv[] = { "cat", NULL };
    mcp_stdio_config cfg = { .name = "cat", .argv = argv };
    char err[256] = "";
    mcp_transport *t = mcp_stdio_open(&cfg, err, sizeof err);
    assert_int_equal(t->ops->connect(t, deadline_in(2000), err, sizeof err), 1);
    assert_true(mcp_stdio_pid(t) > 0);
    assert_int_equal(t->ops->connect(t, deadline_in(2000), err, sizeof err), 0);
    const char *msg = "{\"jsonrpc\":\"2.0\",\"method\":\"x\"}";
    assert_int_equal(t->ops->send(t, msg, strlen(msg), deadline_in(2000), err, sizeof err),
                     MCP_OK);
    assert_int_equal(t->ops->send(t, msg, strlen(msg), deadline_in(2000), err, sizeof err),
                     MCP_OK);
    for (int i = 0; i < 2; i++) {
        char *got = NULL;
        size_t len = 0;
        assert_int_equal(t->ops->receive(t, &got, &len, deadline_in(2000), err, sizeof err), 1);
        assert_string_equal(got, msg);
        assert_int_equal(len, strlen(msg));
        free(got);
    }
    /* Nothing more: the deadline passes. */
    char *got = NULL;
    size_t len;
    long long t0 = clock_mono_ms();
    assert_int_equal(t->ops->receive(t, &got, &len, deadline_in(100), err, sizeof err), 0);
    assert_true(clock_mono_ms() - t0 >= 90);
    /* A message with a line break would break the framing. */
    assert_int_equal(t->ops->send(t, "a\nb", 3, deadline_in(100), err, sizeof err),
                     MCP_ERR_INVALID);
    t->ops->close(t);
    assert_no_children();
    assert_int_equal(count_fds(), fds);
}

static void test_stderr_goes_to_log(void **state)
{
    /* The log writes to fd 2: point it at a file for the test. */
    char path[] = "/tmp/test_mcp_stdio_XXXXXX";
    int fd = mkstemp(path);
    int saved = dup(2);
    dup2(fd, 2);
    mcp_transport *t = open_sh("echo 'first problem' >&2; printf 'no newline' >&2; exec cat", 500);
    char err[256];
    assert_int_equal(t->ops->connect(t, deadline_in(2000), err, sizeof err), 1);
    clock_sleep_ms(200);
    t->ops->close(t);
    dup2(saved, 2);
    close(saved);
    char buf[4096] = "";
    lseek(fd, 0, SEEK_SET);
    ssize_t n = read(fd, buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = '\0';
    close(fd);
    unlink(path);
    assert_non_null(strstr(buf, "mcp server test-sh stderr: first problem"));
    assert_non_null(strstr(buf, "stderr: no newline"));
    assert_non_null(strstr(buf, "\"level\":\"warn\""));
}

static void test_child_exit_then_restart_with_backoff(void **state)
{
    mcp_transport *t = open_sh("read line; exit 3", 500);
    char err[256] = "";
    assert_int_equal(t->ops->connect(t, deadline_in(2000), err, sizeof err), 1);
    pid_t first = mcp_stdio_pid(t);
    const char *msg = "{}";
    assert_int_equal(t->ops->send(t, msg, 2, deadline_in(2000), err, sizeof err), MCP_OK);
    char *got = NULL;
    size_t len;
    assert_int_equal(t->ops->receive(t, &got, &len, deadline_in(2000), err, sizeof err),
                     MCP_ERR_TRANSPORT);
    assert_non_null(strstr(err, "test-sh exited with status 3"));
    assert_int_equal(mcp_stdio_pid(t), -1);

    /* The next connect starts a new child, after the backoff (100 ms). */
    long long t0 = clock_mono_ms();
    assert_int_equal(t->ops->connect(t, deadline_in(2000), err, sizeof err), 1);
    assert_true(clock_mono_ms() - t0 >= 80);
    assert_true(mcp_stdio_pid(t) > 0 && mcp_stdio_pid(t) != first);

    /* A deadline shorter than the backoff fails clearly instead. */
    kill(mcp_stdio_pid(t), SIGKILL);
    clock_sleep_ms(50);
    assert_int_equal(t->ops->connect(t, deadline_in(10), err, sizeof err), MCP_ERR_TRANSPORT);
    assert_non_null(strstr(err, "restarting"));
    t->ops->close(t);
    assert_no_children();
}

static void test_killed_child_reported(void **state)
{
    mcp_transport *t = open_sh("exec cat", 500);
    char err[256] = "";
    assert_int_equal(t->ops->connect(t, deadline_in(2000), err, sizeof err), 1);
    kill(mcp_stdio_pid(t), SIGKILL);
    char *got = NULL;
    size_t len;
    assert_int_equal(t->ops->receive(t, &got, &len, deadline_in(2000), err, sizeof err),
                     MCP_ERR_TRANSPORT);
    assert_non_null(strstr(err, "killed by signal 9"));
    t->ops->close(t);
    assert_no_children();
}

/* Writing to a child that is gone is an error, not a SIGPIPE that ends
 * the process (the test would die). */
static void test_dead_reader_is_epipe_not_sigpipe(void **state)
{
    mcp_transport *t = open_sh("exec 0<&-; sleep 0.3; exit 0", 500);
    char err[256] = "";
    assert_int_equal(t->ops->connect(t, deadline_in(2000), err, sizeof err), 1);
    clock_sleep_ms(100);
    int rc = MCP_OK;
    for (int i = 0; i < 100 && rc == MCP_OK; i++)
        rc = t->ops->send(t, "{}", 2, deadline_in(2000), err, sizeof err);
    assert_int_equal(rc, MCP_ERR_TRANSPORT);
    sigset_t pending;
    sigpending(&pending);
    assert_false(sigismember(&pending, SIGPIPE));
    t->ops->close(t);
    assert_no_children();
}

/* A server that ignores end of input and SIGTERM gets SIGKILL. */
static void test_shutdown_escalates_to_sigkill(void **state)
{
    mcp_transport *t = open_sh("trap '' TERM; exec 0<&-; while :; do sleep 0.05; done", 150);
    char err[256] = "";
    assert_int_equal(t->ops->connect(t, deadline_in(2000), err, sizeof err), 1);
    clock_sleep_ms(100);                        /* let the trap be set */
    long long t0 = clock_mono_ms();
    t->ops->close(t);
    long long took = clock_mono_ms() - t0;
    assert_true(took >= 300 && took < 3000);    /* two grace periods */
    assert_no_children();
}

static void test_overlong_line_skipped_in_step(void **state)
{
    mcp_transport *t = open_sh("head -c 3000 /dev/zero | tr '\\0' a; echo; echo '{\"ok\":1}';"
                               " exec cat", 500);
    char err[256] = "";
    assert_int_equal(t->ops->connect(t, deadline_in(2000), err, sizeof err), 1);
    char *got = NULL;
    size_t len;
    assert_int_equal(t->ops->receive(t, &got, &len, deadline_in(2000), err, sizeof err),
                     MCP_ERR_TOO_LARGE);
    assert_non_null(strstr(err, "over 1000 bytes"));
    assert_int_equal(t->ops->receive(t, &got, &len, deadline_in(2000), err, sizeof err), 1);
    assert_string_equal(got, "{\"ok\":1}");
    free(got);
    t->ops->close(t);
}

static void test_command_that_cannot_run(void **state)
{
    int fds = count_fds();
    char *argv[] = { "/nonexistent/mcp-server", NULL };
    mcp_stdio_config cfg = { .name = "ghost", .argv = argv };
    char err[256] = "";
    mcp_transport *t = mcp_stdio_open(&cfg, err, sizeof err);
    assert_int_equal(t->ops->connect(t, deadline_in(2000), err, sizeof err), MCP_ERR_TRANSPORT);
    assert_non_null(strstr(err, "cannot run /nonexistent/mcp-server"));
    t->ops->close(t);

    char *argv2[] = { "no-such-program-in-path-xyz", NULL };
    cfg.argv = argv2;
    t = mcp_stdio_open(&cfg, err, sizeof err);
    assert_int_equal(t->ops->connect(t, deadline_in(2000), err, sizeof err), MCP_ERR_TRANSPORT);
    assert_non_null(strstr(err, "cannot find"));
    t->ops->close(t);
    assert_no_children();
    assert_int_equal(count_fds(), fds);

    mcp_stdio_config none = { .name = "x" };
    assert_null(mcp_stdio_open(&none, err, sizeof err));
}

/* Every descriptor the transport opens is O_CLOEXEC: beyond 0, 1 and 2
 * the child has only what this process had before (what the test runner
 * itself lets children inherit), never a pipe of its own transport. */
static void fd_set_of(const char *dir, bool *set, size_t n)
{
    memset(set, 0, n * sizeof *set);
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d))) {
        int fd = atoi(e->d_name);
        if (e->d_name[0] != '.' && fd >= 0 && (size_t)fd < n)
            set[fd] = true;
    }
    closedir(d);
}

static void test_child_inherits_only_stdio(void **state)
{
    bool before[1024], child[1024];
    fd_set_of("/proc/self/fd", before, 1024);
    char *argv[] = { "cat", NULL };
    mcp_stdio_config cfg = { .name = "cat", .argv = argv };
    char err[256] = "";
    mcp_transport *t = mcp_stdio_open(&cfg, err, sizeof err);
    assert_int_equal(t->ops->connect(t, deadline_in(2000), err, sizeof err), 1);
    char dir[64];
    snprintf(dir, sizeof dir, "/proc/%d/fd", (int)mcp_stdio_pid(t));
    fd_set_of(dir, child, 1024);
    for (int fd = 3; fd < 1024; fd++)
        if (child[fd] && !before[fd])
            fail_msg("the child inherited fd %d", fd);
    assert_true(child[0] && child[1] && child[2]);
    t->ops->close(t);
}

int main(void)
{
    log_init("test", "info");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_with_cat),
        cmocka_unit_test(test_stderr_goes_to_log),
        cmocka_unit_test(test_child_exit_then_restart_with_backoff),
        cmocka_unit_test(test_killed_child_reported),
        cmocka_unit_test(test_dead_reader_is_epipe_not_sigpipe),
        cmocka_unit_test(test_shutdown_escalates_to_sigkill),
        cmocka_unit_test(test_overlong_line_skipped_in_step),
        cmocka_unit_test(test_command_that_cannot_run),
        cmocka_unit_test(test_child_inherits_only_stdio),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
