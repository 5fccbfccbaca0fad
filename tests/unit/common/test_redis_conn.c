/*
 * test_redis_conn.c - the handshake a new Redis connection sends (AUTH
 * with or without a user, SELECT, ROLE or PING), how its replies are
 * judged, the sentinels' list and commands, and the reading of a
 * sentinel's answer. Replies are built by hand, as hiredis would.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "redis_conn.h"

static ag_config base_config(void)
{
    ag_config c;
    memset(&c, 0, sizeof c);
    strcpy(c.redis_host, "cache");
    c.redis_port = 6379;
    return c;
}

/* The words of cmd joined with spaces. */
static const char *words(const redis_argv *cmd)
{
    static char buf[512];
    buf[0] = '\0';
    for (int i = 0; i < cmd->argc; i++) {
        if (i > 0)
            strcat(buf, " ");
        strncat(buf, cmd->argv[i], cmd->argvlen[i]);
    }
    return buf;
}

static void test_handshake_commands(void **state)
{
    (void)state;
    redis_argv cmds[REDIS_HANDSHAKE_MAX];
    ag_config c = base_config();
    assert_int_equal(redis_handshake_commands(&c, cmds), 1);
    assert_string_equal(words(&cmds[0]), "PING");

    strcpy(c.redis_password, "pw");
    c.redis_db = 3;
    assert_int_equal(redis_handshake_commands(&c, cmds), 3);
    assert_string_equal(words(&cmds[0]), "AUTH pw");
    assert_string_equal(words(&cmds[1]), "SELECT 3");
    assert_string_equal(words(&cmds[2]), "PING");

    strcpy(c.redis_username, "app");
    assert_string_equal((redis_handshake_commands(&c, cmds), words(&cmds[0])), "AUTH app pw");

    /* The URL's credentials are the ones in force when it has them. */
    c = base_config();
    strcpy(c.redis_url_username, "u");
    strcpy(c.redis_url_password, "p w");
    strcpy(c.redis_sentinels, "s1:26379");
    strcpy(c.redis_sentinel_master, "m");
    assert_int_equal(redis_handshake_commands(&c, cmds), 2);
    assert_string_equal(words(&cmds[0]), "AUTH u p w");
    assert_int_equal(cmds[0].argc, 3);
    assert_string_equal(words(&cmds[1]), "ROLE");
}

static redisReply *reply(int type, const char *str)
{
    redisReply *r = calloc(1, sizeof *r);
    r->type = type;
    if (str != NULL) {
        r->str = strdup(str);
        r->len = strlen(str);
    }
    return r;
}

static redisReply *array(size_t n, ...)
{
    redisReply *r = reply(REDIS_REPLY_ARRAY, NULL);
    r->elements = n;
    r->element = calloc(n ? n : 1, sizeof *r->element);
    va_list ap;
    va_start(ap, n);
    for (size_t i = 0; i < n; i++)
        r->element[i] = va_arg(ap, redisReply *);
    va_end(ap);
    return r;
}

static void test_handshake_replies(void **state)
{
    (void)state;
    redis_argv auth, role, ping;
    redis_argv_of(&auth, "AUTH", "secretpw", (const char *)NULL);
    redis_argv_of(&role, "ROLE", (const char *)NULL);
    redis_argv_of(&ping, "PING", (const char *)NULL);
    char why[256];

    redisReply *ok = reply(REDIS_REPLY_STATUS, "OK");
    assert_true(redis_handshake_ok(&auth, ok, why, sizeof why));
    redisReply *wrong = reply(REDIS_REPLY_ERROR, "WRONGPASS invalid username-password pair");
    assert_false(redis_handshake_ok(&auth, wrong, why, sizeof why));
    assert_non_null(strstr(why, "AUTH refused: WRONGPASS"));
    assert_null(strstr(why, "secretpw"));
    assert_false(redis_handshake_ok(&auth, NULL, why, sizeof why));

    redisReply *noauth = reply(REDIS_REPLY_ERROR, "NOAUTH Authentication required.");
    assert_false(redis_handshake_ok(&ping, noauth, why, sizeof why));
    assert_non_null(strstr(why, "NOAUTH"));

    redisReply *master = array(3, reply(REDIS_REPLY_STRING, "master"),
                               reply(REDIS_REPLY_INTEGER, NULL), array(0));
    assert_true(redis_handshake_ok(&role, master, why, sizeof why));
    redisReply *slave = array(5, reply(REDIS_REPLY_STRING, "slave"),
                              reply(REDIS_REPLY_STRING, "10.0.0.1"),
                              reply(REDIS_REPLY_INTEGER, NULL),
                              reply(REDIS_REPLY_STRING, "connected"),
                              reply(REDIS_REPLY_INTEGER, NULL));
    assert_false(redis_handshake_ok(&role, slave, why, sizeof why));
    assert_non_null(strstr(why, "not a master"));

    redisReply *ro = reply(REDIS_REPLY_ERROR, "READONLY You can't write against a read only replica.");
    assert_true(redis_reply_readonly(ro));
    assert_false(redis_reply_readonly(noauth));
    assert_false(redis_reply_readonly(NULL));

    freeReplyObject(ok);
    freeReplyObject(wrong);
    freeReplyObject(noauth);
    freeReplyObject(master);
    freeReplyObject(slave);
    freeReplyObject(ro);
}

static void test_sentinels(void **state)
{
    (void)state;
    ag_config c = base_config();
    redis_addr s[CONFIG_REDIS_SENTINELS_MAX];
    assert_false(redis_uses_sentinel(&c));
    assert_int_equal(redis_sentinel_addrs(&c, s), 0);

    strcpy(c.redis_sentinels, "s1:26379,[::1]:26380");
    strcpy(c.redis_sentinel_master, "mymaster");
    assert_true(redis_uses_sentinel(&c));
    assert_int_equal(redis_sentinel_addrs(&c, s), 2);
    assert_string_equal(s[0].host, "s1");
    assert_int_equal(s[0].port, 26379);
    assert_string_equal(s[1].host, "::1");
    assert_int_equal(s[1].port, 26380);

    redis_argv cmds[2];
    assert_int_equal(redis_sentinel_commands(&c, cmds), 1);
    assert_string_equal(words(&cmds[0]), "SENTINEL get-master-addr-by-name mymaster");
    strcpy(c.redis_sentinel_password, "spw");
    assert_int_equal(redis_sentinel_commands(&c, cmds), 2);
    assert_string_equal(words(&cmds[0]), "AUTH spw");

    char why[256];
    redis_addr m;
    redisReply *good = array(2, reply(REDIS_REPLY_STRING, "10.0.0.7"),
                             reply(REDIS_REPLY_STRING, "6380"));
    assert_int_equal(redis_sentinel_reply(good, &m, why, sizeof why), 0);
    assert_string_equal(m.host, "10.0.0.7");
    assert_int_equal(m.port, 6380);

    redisReply *nil = reply(REDIS_REPLY_NIL, NULL);
    assert_int_equal(redis_sentinel_reply(nil, &m, why, sizeof why), -1);
    assert_non_null(strstr(why, "no master"));
    redisReply *badport = array(2, reply(REDIS_REPLY_STRING, "h"),
                                reply(REDIS_REPLY_STRING, "70000"));
    assert_int_equal(redis_sentinel_reply(badport, &m, why, sizeof why), -1);
    redisReply *err = reply(REDIS_REPLY_ERROR, "NOAUTH Authentication required.");
    assert_int_equal(redis_sentinel_reply(err, &m, why, sizeof why), -1);
    assert_non_null(strstr(why, "NOAUTH"));
    assert_int_equal(redis_sentinel_reply(NULL, &m, why, sizeof why), -1);
    freeReplyObject(good);
    freeReplyObject(nil);
    freeReplyObject(badport);
    freeReplyObject(err);
}

static void test_switch_master(void **state)
{
    (void)state;
    redis_addr to;
    const char *msg = "mymaster 10.0.0.1 6379 10.0.0.2 6380";
    assert_int_equal(redis_switch_master_parse(msg, strlen(msg), "mymaster", &to), 0);
    assert_string_equal(to.host, "10.0.0.2");
    assert_int_equal(to.port, 6380);
    assert_int_equal(redis_switch_master_parse(msg, strlen(msg), "other", &to), -1);
    assert_int_equal(redis_switch_master_parse(msg, strlen(msg), "mymaste", &to), -1);
    const char *bad[] = { "", "mymaster", "mymaster 10.0.0.1 6379 10.0.0.2",
                          "mymaster 10.0.0.1 6379 10.0.0.2 0",
                          "mymaster 10.0.0.1 6379 10.0.0.2 65536" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(redis_switch_master_parse(bad[i], strlen(bad[i]), "mymaster", &to), -1);
    /* Without Sentinel nothing is watched and nothing switches. */
    ag_config c = base_config();
    redis_sentinel_watch(&c);
    assert_int_equal(redis_master_epoch(), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handshake_commands),
        cmocka_unit_test(test_handshake_replies),
        cmocka_unit_test(test_sentinels),
        cmocka_unit_test(test_switch_master),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
