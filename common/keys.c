/*
 * keys.c - builds agentgate's Redis key and channel names (see keys.h).
 *
 * Callers pass only ids checked by uuid_parse and type names from the job
 * type registry, so every name fits KEY_MAX; snprintf still bounds the
 * write should a caller ever break that rule.
 */
#include <stdio.h>

#include "keys.h"

static char *key_build(char *out, const char *prefix, const char *suffix)
{
    snprintf(out, KEY_MAX, "%s%s", prefix, suffix ? suffix : "");
    return out;
}

char *key_queue(char *out, const char *type)    { return key_build(out, "jobs:queue:", type); }
char *key_state(char *out, const char *job_id)  { return key_build(out, "jobs:state:", job_id); }
char *key_events(char *out, const char *job_id) { return key_build(out, "jobs:events:", job_id); }
char *key_notify(char *out, const char *job_id) { return key_build(out, "jobs:notify:", job_id); }
char *key_lease(char *out, const char *job_id)  { return key_build(out, "jobs:lease:", job_id); }
char *key_cancel(char *out, const char *job_id) { return key_build(out, "cancel:", job_id); }
char *key_delayed(char *out, const char *type)  { return key_build(out, "jobs:delayed:", type); }
