/*
 * fuzz_router.c - libFuzzer target for the request router: router_match
 * with an arbitrary verb and path (not NUL-terminated, so a read past the
 * path's length is caught), and router_allow_header into small buffers.
 *
 * Input: byte 0 picks the verb (or an unknown verb bit), byte 1 the
 * Allow buffer's size, the rest is the path.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "router.h"

static const http_verb verbs[] = { VERB_GET, VERB_POST, VERB_DELETE, VERB_HEAD,
                                   VERB_OTHER, VERB_PATCH, VERB_PUT, VERB_OPTIONS };

static void check_match(http_verb verb, const char *path, size_t len, int rc,
                        const route_match *m)
{
    http_verb want = verb == VERB_HEAD ? VERB_GET : verb;
    if (rc != 200 && rc != 404 && rc != 405) abort();
    if (strnlen(m->param, sizeof m->param) >= sizeof m->param) abort();
    if (strnlen(m->name, sizeof m->name) >= sizeof m->name) abort();
    if (rc == 200) {
        if (m->id == ROUTE_NONE || !(m->allowed & want)) abort();
        /* An id or name is one whole segment of the path, never a slash. */
        if (strchr(m->param, '/') || strchr(m->name, '/')) abort();
        if (m->param[0] && !memmem(path, len, m->param, strlen(m->param))) abort();
        if (m->name[0] && !memmem(path, len, m->name, strlen(m->name))) abort();
    } else {
        if (m->id != ROUTE_NONE || m->param[0] || m->name[0]) abort();
        if ((rc == 405) != (m->allowed != 0)) abort();
        if (rc == 405 && (m->allowed & want)) abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    /* The HTTP layer passes one verb bit; past the known ones, unknown bits. */
    http_verb verb = data[0] < 0xf0 ? verbs[data[0] % 8] : (http_verb)(1u << (data[0] & 0x0f));
    size_t allow_size = (size_t)data[1] % 48 + 1;
    size_t len = size - 2;
    char *path = malloc(len ? len : 1);    /* exactly len bytes: no NUL */
    if (!path) return 0;
    memcpy(path, data + 2, len);

    route_match m, again;
    int rc = router_match(verb, path, len, &m);
    check_match(verb, path, len, rc, &m);
    if (router_match(verb, path, len, &again) != rc || memcmp(&m, &again, sizeof m) != 0)
        abort();                            /* pure: same input, same answer */

    char *allow = malloc(allow_size);
    if (allow) {
        router_allow_header(m.allowed, allow, allow_size);
        if (strnlen(allow, allow_size) >= allow_size) abort();
        free(allow);
    }
    free(path);
    return 0;
}
