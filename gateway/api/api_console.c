/*
 * api_console.c - the web console: GET /console/ (its page) and
 * /console/{file} (its scripts, styles and icon), served from memory
 * (console_assets.h), and /console, which redirects to /console/ so the
 * page's relative links resolve under it.
 *
 * The files are public: the page signs in in the browser with a token the
 * user pastes, and calls the API with it like any client. What keeps a
 * hostile page or a stray script away from that token is the reply's
 * Content-Security-Policy: scripts, styles, images and connections from
 * this origin only, no inline script or style, no plugins, no <base>, no
 * form posting anywhere, and no framing (frame-ancestors, X-Frame-Options).
 * Every file carries a strong ETag and Cache-Control: no-cache, so a
 * browser revalidates on each load (304 when unchanged) and a new build's
 * files are never mixed with the old ones' from a cache.
 */
#include <stdbool.h>
#include <string.h>

#include "api.h"
#include "http.h"
#include "console_assets.h"

static const char console_csp[] =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'";

static const console_asset *asset_named(const char *name)
{
    for (size_t i = 0; i < console_assets_count; i++)
        if (strcmp(console_assets[i].name, name) == 0) return &console_assets[i];
    return NULL;
}

/* True when the If-None-Match value list holds etag or is "*". The
 * comparison is the weak one RFC 9110 prescribes for this header, so a
 * W/ prefix a proxy added still matches. */
static bool etag_listed(const char *list, const char *etag)
{
    size_t elen = strlen(etag);
    const char *p = list;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',') p++;
        if (*p == '*') return true;
        if (strncmp(p, "W/", 2) == 0) p += 2;
        const char *end = p + strcspn(p, ",");
        const char *last = end;
        while (last > p && (last[-1] == ' ' || last[-1] == '\t')) last--;
        if ((size_t)(last - p) == elen && memcmp(p, etag, elen) == 0) return true;
        p = end;
    }
    return false;
}

static void serve_asset(gw_req *r, const console_asset *a)
{
    http_set_header(r, "Content-Security-Policy", console_csp);
    http_set_header(r, "Cache-Control", "no-cache");
    http_set_header(r, "ETag", a->etag);
    const char *inm = http_header(r, "If-None-Match");
    if (inm && etag_listed(inm, a->etag)) {
        http_reply_no_content(r, 304);
        return;
    }
    http_reply(r, 200, a->content_type, (const char *)a->data, a->len);
}

void api_console_redirect(gw_req *r)
{
    static const char body[] = "the console is at /console/\n";
    http_set_header(r, "Location", "/console/");
    http_reply(r, 301, "text/plain; charset=utf-8", body, sizeof body - 1);
}

void api_console_index(gw_req *r)
{
    const console_asset *a = asset_named("index.html");
    if (!a) {
        http_reply_problem(r, 404, "not-found", "this gateway was built without the console", NULL);
        return;
    }
    serve_asset(r, a);
}

void api_console_asset(gw_req *r)
{
    const console_asset *a = asset_named(r->route.param);
    if (!a) {
        http_reply_problem(r, 404, "not-found", "no such file in the console", NULL);
        return;
    }
    serve_asset(r, a);
}
