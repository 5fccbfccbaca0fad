/*
 * uuid.c - RFC 9562 UUIDs: generating v7 (time-ordered) and v4 (random),
 * and checking ids that come from outside.
 *
 * Randomness comes from getrandom(2), taken RANDOM_POOL_BYTES at a time
 * into a per-thread pool: a gateway makes several ids per request, and a
 * system call each was a measurable part of a request's cost. A forked
 * child never uses its parent's pool (see pool_generation). Within one
 * process v7 ids are also
 * strictly increasing: the 12 rand_a bits after the timestamp are a counter
 * (RFC 9562 section 6.2, method 1), so rows inserted in the same
 * millisecond stay in creation order.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "clock.h"
#include "uuid.h"

/* Reads from /dev/urandom, for kernels without getrandom(2). */
static int urandom_fill(unsigned char *buf, size_t len)
{
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(fd, buf + got, len - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            close(fd);
            return -1;
        }
        got += (size_t)n;
    }
    close(fd);
    return 0;
}

/* Fills buf with len random bytes. An id without randomness could collide
 * with another job's, so when no source works the process stops. */
static void random_fill(unsigned char *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = getrandom(buf + got, len - got, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (urandom_fill(buf + got, len - got) == 0)
                return;
            fprintf(stderr, "uuid: no source of randomness: %s\n", strerror(errno));
            abort();
        }
        got += (size_t)n;   /* a short read: ask again for the rest */
    }
}

#define RANDOM_POOL_BYTES 512

/* Bumped in a forked child, so that its copy of a thread's pool - the
 * same bytes the parent will hand out - is thrown away. */
static _Atomic unsigned pool_generation = 1;
static pthread_once_t pool_once = PTHREAD_ONCE_INIT;

static void pool_after_fork(void)
{
    pool_generation++;
}

static void pool_register_fork_handler(void)
{
    pthread_atfork(NULL, NULL, pool_after_fork);
}

typedef struct random_pool {
    unsigned char bytes[RANDOM_POOL_BYTES];
    size_t used;                /* bytes handed out; RANDOM_POOL_BYTES when empty */
    unsigned generation;        /* pool_generation when filled */
} random_pool;

static _Thread_local random_pool pool = { .used = RANDOM_POOL_BYTES };

/* Fills buf with len (at most RANDOM_POOL_BYTES) random bytes from this
 * thread's pool, refilling it when it runs short. Each byte is handed out
 * once and wiped from the pool. */
static void random_take(unsigned char *buf, size_t len)
{
    pthread_once(&pool_once, pool_register_fork_handler);
    unsigned gen = pool_generation;
    if (pool.generation != gen || RANDOM_POOL_BYTES - pool.used < len) {
        random_fill(pool.bytes, sizeof pool.bytes);
        pool.used = 0;
        pool.generation = gen;
    }
    memcpy(buf, pool.bytes + pool.used, len);
    memset(pool.bytes + pool.used, 0, len);
    pool.used += len;
}

void uuid_random_bytes(unsigned char *buf, size_t len)
{
    random_take(buf, len);
}

static void uuid_format(const unsigned char b[16], char out[UUID_STR_LEN])
{
    static const char hex[] = "0123456789abcdef";
    char *p = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *p++ = '-';
        *p++ = hex[b[i] >> 4];
        *p++ = hex[b[i] & 0x0f];
    }
    *p = '\0';
}

static void uuid_set_version(unsigned char b[16], int version)
{
    b[6] = (unsigned char)((b[6] & 0x0f) | (version << 4));
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);   /* variant 10xx */
}

void uuid_v4(char out[UUID_STR_LEN])
{
    unsigned char b[16];
    random_take(b, sizeof b);
    uuid_set_version(b, 4);
    uuid_format(b, out);
}

static pthread_mutex_t v7_lock = PTHREAD_MUTEX_INITIALIZER;
static long long v7_last_ms = -1;
static unsigned v7_counter;     /* 12 bits, in rand_a */

/* Picks the timestamp and counter of the next v7 id so that ids never go
 * backwards in this process, even if the wall clock does. */
static void v7_next(long long now_ms, long long *ms, unsigned *counter,
                    unsigned seed)
{
    pthread_mutex_lock(&v7_lock);
    if (now_ms > v7_last_ms) {
        v7_last_ms = now_ms;
        v7_counter = seed & 0x7ff;  /* random start, top bit left for growth */
    } else if (++v7_counter > 0xfff) {
        v7_last_ms++;               /* counter spent: borrow the next ms */
        v7_counter = seed & 0x7ff;
    }
    *ms = v7_last_ms;
    *counter = v7_counter;
    pthread_mutex_unlock(&v7_lock);
}

void uuid_v7(char out[UUID_STR_LEN])
{
    unsigned char b[16];
    random_take(b, sizeof b);

    long long ms;
    unsigned counter;
    v7_next(clock_wall_ms(), &ms, &counter, (unsigned)b[0] << 8 | b[1]);

    uint64_t t = (uint64_t)ms;
    for (int i = 0; i < 6; i++)
        b[i] = (unsigned char)(t >> (40 - 8 * i));
    b[6] = (unsigned char)(counter >> 8);
    b[7] = (unsigned char)(counter & 0xff);
    uuid_set_version(b, 7);
    uuid_format(b, out);
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

bool uuid_parse(const char *s, char out[UUID_STR_LEN])
{
    if (s == NULL || strnlen(s, UUID_STR_LEN) != UUID_STR_LEN - 1)
        return false;
    char tmp[UUID_STR_LEN];
    for (int i = 0; i < UUID_STR_LEN - 1; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return false;
            tmp[i] = '-';
            continue;
        }
        int v = hex_value(s[i]);
        if (v < 0)
            return false;
        tmp[i] = "0123456789abcdef"[v];
    }
    tmp[UUID_STR_LEN - 1] = '\0';
    if (out)
        memcpy(out, tmp, UUID_STR_LEN);
    return true;
}
