/*
 * jwks_fetch.h - where the gateway's RS256/ES256 keys come from: a JWKS
 * file read once at start, or a JWKS URL fetched by a background thread.
 *
 * Loop threads never do I/O for keys. They take a reference on the current
 * key set (jwks_source_get), verify with it and drop it; the fetch thread
 * swaps a newer set in under a mutex, and the old one is freed by whoever
 * drops the last reference. A failed fetch keeps the set there was.
 */
#ifndef AG_JWKS_FETCH_H
#define AG_JWKS_FETCH_H

#include <stddef.h>

#include "jwks.h"

typedef struct jwks_source jwks_source;

typedef struct jwks_fetch_opts {
    const char *url;       /* http:// or https:// */
    int cache_s;           /* refetch this long after a good fetch, seconds */
    int min_refresh_s;     /* never two fetches closer than this, seconds */
    int timeout_ms;        /* one whole fetch, connect included */
    size_t max_bytes;      /* a larger answer fails the fetch */
} jwks_fetch_opts;

/*
 * Reads and parses the JWKS file at path (at most JWKS_MAX_BYTES). Returns
 * a set with one reference the caller owns, or NULL with a one-line reason
 * in err.
 */
jwks *jwks_load_file(const char *path, char *err, size_t err_size);

/* A source that always answers set; it takes over the caller's reference.
 * Returns NULL when out of memory (the reference is then dropped). */
jwks_source *jwks_source_fixed(jwks *set);

/*
 * Starts the fetch thread for opts->url (the strings are copied) and waits
 * for its first fetch, at most opts->timeout_ms and a little more. A failed
 * first fetch is logged and retried; the gateway runs meanwhile, answering
 * 401 to RS256/ES256 tokens. After a good fetch the next is due cache_s
 * later; after a failed one, min_refresh_s later (at least 1 s, at most
 * cache_s). Needs curl_global_init done by the caller. Returns NULL with
 * the reason in err when the thread cannot start.
 */
jwks_source *jwks_source_fetch(const jwks_fetch_opts *opts, char *err, size_t err_size);

/* The current set with a reference the caller drops with jwks_release, or
 * NULL while there is none. Thread-safe; takes the mutex briefly. */
jwks *jwks_source_get(jwks_source *src);

/*
 * Tells the source a token named a kid it does not have: a fetching source
 * then fetches as soon as min_refresh_s has passed since its last fetch (at
 * once, if it has); more calls before that fetch add nothing. Thread-safe,
 * never blocks on I/O. A fixed source ignores it.
 */
void jwks_source_unknown_kid(jwks_source *src);

/* Fetches attempted so far (0 for a fixed source). For logs and tests. */
long long jwks_source_fetch_count(jwks_source *src);

/* Stops the fetch thread (aborting a fetch in progress), drops the set and
 * frees src. NULL is a no-op. */
void jwks_source_free(jwks_source *src);

#endif
