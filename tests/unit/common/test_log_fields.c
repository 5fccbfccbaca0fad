/*
 * test_log_fields.c - the log line's own fields and its journald prefix:
 * job_id and tenant_id from the thread's context (set, kept across
 * log_set_job, cleared by the next log_set_context), extra fields of
 * log_write_fields escaped as JSON, and the "<N>" priority prefix only
 * when stderr is the stream $JOURNAL_STREAM names.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "log.h"

/* stderr goes to a temporary file between capture_begin and capture_end. */
typedef struct capture {
    char path[32];
    int fd, saved;
} capture;

static void capture_begin(capture *c)
{
    snprintf(c->path, sizeof c->path, "/tmp/test_log_XXXXXX");
    c->fd = mkstemp(c->path);
    assert_true(c->fd >= 0);
    c->saved = dup(STDERR_FILENO);
    assert_true(dup2(c->fd, STDERR_FILENO) >= 0);
}

/* The file's (and so the stream's) "device:inode", as systemd writes it. */
static void journal_stream_of(const capture *c, char *out, size_t size)
{
    struct stat st;
    assert_int_equal(fstat(c->fd, &st), 0);
    snprintf(out, size, "%llu:%llu", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino);
}

/* Restores stderr; returns what was written (caller frees). */
static char *capture_end(capture *c)
{
    assert_true(dup2(c->saved, STDERR_FILENO) >= 0);
    close(c->saved);
    char *out = calloc(1, 65536);
    assert_non_null(out);
    assert_true(lseek(c->fd, 0, SEEK_SET) == 0);
    assert_true(read(c->fd, out, 65535) >= 0);
    close(c->fd);
    unlink(c->path);
    return out;
}

static void test_job_and_tenant_fields(void **state)
{
    (void)state;
    unsetenv("JOURNAL_STREAM");
    capture c;
    capture_begin(&c);
    log_init("test", "debug");
    log_set_context("req-1", NULL);
    log_set_job("0b6f5c1e-2a43-4c1a-9d1e-1f2a3b4c5d6e", "acme");
    log_info("one");
    log_set_job(NULL, "acme");
    log_info("two");
    log_set_job("j", "t");
    log_set_context(NULL, NULL);
    log_info("three");
    char *out = capture_end(&c);

    char *l1 = out, *l2 = strchr(l1, '\n') + 1, *l3 = strchr(l2, '\n') + 1;
    assert_non_null(strstr(l1, "\"request_id\":\"req-1\",\"job_id\":"
                               "\"0b6f5c1e-2a43-4c1a-9d1e-1f2a3b4c5d6e\",\"tenant_id\":\"acme\","
                               "\"msg\":\"one\"}\n"));
    assert_true(strncmp(l2, "{\"ts\":", 6) == 0);
    assert_non_null(strstr(l2, "\"request_id\":\"req-1\",\"tenant_id\":\"acme\",\"msg\":\"two\"}"));
    assert_null(strstr(l3, "job_id"));
    assert_null(strstr(l3, "tenant_id"));
    assert_null(strstr(l3, "request_id"));
    free(out);
}

static void test_extra_fields(void **state)
{
    (void)state;
    unsetenv("JOURNAL_STREAM");
    capture c;
    capture_begin(&c);
    log_init("test", "info");
    log_set_context(NULL, NULL);
    log_field f[] = {
        { "method", "GET", 0 },
        { "route", "/v1/jobs/{id}\"x", 0 },
        { "status", NULL, 404 },
        { "latency_ms", NULL, 3 },
    };
    log_write_fields(LOG_INFO, f, 4, "request");
    log_write_fields(LOG_DEBUG, f, 4, "below the level");
    char *out = capture_end(&c);
    assert_non_null(strstr(out, ",\"method\":\"GET\",\"route\":\"/v1/jobs/{id}\\\"x\","
                                "\"status\":404,\"latency_ms\":3,\"msg\":\"request\"}\n"));
    assert_null(strstr(out, "below the level"));
    free(out);
}

static void test_journal_prefix_only_on_the_journal_stream(void **state)
{
    (void)state;
    capture c;
    char stream[64];

    /* stderr is the stream JOURNAL_STREAM names: every line is prefixed. */
    capture_begin(&c);
    journal_stream_of(&c, stream, sizeof stream);
    setenv("JOURNAL_STREAM", stream, 1);
    log_init("test", "debug");
    assert_true(log_journal_prefix());
    log_debug("d");
    log_info("i");
    log_warn("w");
    log_error("e");
    char *out = capture_end(&c);
    assert_non_null(strstr(out, "<7>{\"ts\":"));
    assert_non_null(strstr(out, "<6>{\"ts\":"));
    assert_non_null(strstr(out, "<4>{\"ts\":"));
    assert_non_null(strstr(out, "<3>{\"ts\":"));
    assert_true(strncmp(out, "<7>{", 4) == 0);
    free(out);

    /* Inherited by a process whose stderr is something else: no prefix. */
    capture_begin(&c);
    setenv("JOURNAL_STREAM", "1:2", 1);
    log_init("test", "debug");
    assert_false(log_journal_prefix());
    log_error("e");
    out = capture_end(&c);
    assert_true(strncmp(out, "{\"ts\":", 6) == 0);
    free(out);

    /* Malformed or absent: no prefix. */
    setenv("JOURNAL_STREAM", stream, 1);
    strcat(stream, "x");
    setenv("JOURNAL_STREAM", stream, 1);
    log_init("test", "debug");
    assert_false(log_journal_prefix());
    unsetenv("JOURNAL_STREAM");
    log_init("test", "debug");
    assert_false(log_journal_prefix());
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_job_and_tenant_fields),
        cmocka_unit_test(test_extra_fields),
        cmocka_unit_test(test_journal_prefix_only_on_the_journal_stream),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
