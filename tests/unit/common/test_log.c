/*
 * test_log.c - unit tests for the log's access_token redaction: the value
 * is cut wherever the parameter appears, to the next '&', quote, space or
 * the end, in log_redact itself and in the lines log_write puts out.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "log.h"

static void expect_redacted(const char *in, const char *want, size_t cuts)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s", in);
    assert_int_equal(log_redact(buf), cuts);
    assert_string_equal(buf, want);
}

static void test_redacts_query_values(void **state)
{
    (void)state;
    expect_redacted("GET /v1/jobs/x/events?access_token=SECRETSECRETSECRET",
                    "GET /v1/jobs/x/events?access_token=[redacted]", 1);
    expect_redacted("GET /e?after=3&access_token=SECRETSECRETSECRET&x=1 done",
                    "GET /e?after=3&access_token=[redacted]&x=1 done", 1);
    expect_redacted("a access_token=SECRETSECRETSECRET b",
                    "a access_token=[redacted] b", 1);
    expect_redacted("\"access_token=SECRETSECRETSECRET\"",
                    "\"access_token=[redacted]\"", 1);
}

static void test_every_occurrence_any_case(void **state)
{
    (void)state;
    expect_redacted("ACCESS_TOKEN=SECRETSECRETSECRET&Access_Token=OTHERSECRETVALUE",
                    "ACCESS_TOKEN=[redacted]&Access_Token=[redacted]", 2);
}

static void test_short_value_is_cut_without_growing(void **state)
{
    (void)state;
    /* The mark never makes the message longer than it was. */
    expect_redacted("x?access_token=SECRET&y=1", "x?access_token=[redac&y=1", 1);
    expect_redacted("x?access_token=S", "x?access_token=[", 1);
}

static void test_leaves_other_text_alone(void **state)
{
    (void)state;
    expect_redacted("nothing to see", "nothing to see", 0);
    expect_redacted("access_token= empty", "access_token= empty", 0);
    expect_redacted("access_token=", "access_token=", 0);
    expect_redacted("my_access_tokens=1", "my_access_tokens=1", 0);
}

/* Captures what log_write puts on stderr. */
static char *capture_log_line(const char *secret)
{
    char path[] = "/tmp/test_log_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_true(dup2(fd, STDERR_FILENO) >= 0);
    log_init("test", "debug");
    log_info("request GET /v1/runs/1/events?access_token=%s&after=2 failed", secret);
    assert_true(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);
    char *out = calloc(1, 65536);
    assert_non_null(out);
    assert_true(lseek(fd, 0, SEEK_SET) == 0);
    ssize_t n = read(fd, out, 65535);
    assert_true(n > 0);
    close(fd);
    unlink(path);
    return out;
}

static void test_log_write_redacts_every_line(void **state)
{
    (void)state;
    const char *secret = "eyJhbGciOiJIUzI1NiJ9.SECRETPAYLOAD.SIGNATURE";
    char *line = capture_log_line(secret);
    assert_null(strstr(line, "SECRETPAYLOAD"));
    assert_non_null(strstr(line, "access_token=[redacted]&after=2"));
    free(line);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_redacts_query_values),
        cmocka_unit_test(test_every_occurrence_any_case),
        cmocka_unit_test(test_short_value_is_cut_without_growing),
        cmocka_unit_test(test_leaves_other_text_alone),
        cmocka_unit_test(test_log_write_redacts_every_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
