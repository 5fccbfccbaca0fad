/*
 * console_assets.h - the web console's files (console/ in the source
 * tree) as the gateway serves them: compiled in from a source that the
 * build generates (gateway/api/console_embed.py), so the gateway needs no
 * files at run time and a file always matches the binary that serves it.
 */
#ifndef AG_CONSOLE_ASSETS_H
#define AG_CONSOLE_ASSETS_H

#include <stddef.h>

typedef struct console_asset {
    const char *name;                  /* file name under /console/: "app.js" */
    const char *content_type;          /* "text/javascript; charset=utf-8" */
    const unsigned char *data;         /* the file's bytes */
    size_t len;                        /* their number */
    const char *etag;                  /* strong ETag of the bytes, quoted */
} console_asset;

/* Every file, sorted by name; console_assets_count of them. Static data. */
extern const console_asset console_assets[];
extern const size_t console_assets_count;

#endif
