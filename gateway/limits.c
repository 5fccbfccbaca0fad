/*
 * limits.c - per-principal and per-tenant rate limits (see admit.h).
 * STUB until issue 4's rate limits land: admits everything.
 */
#include "admit.h"

void limits_admit(gw_req *r, gw_next_fn next) { next(r); }
