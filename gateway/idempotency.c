/*
 * idempotency.c - Idempotency-Key on POST (see admit.h).
 * STUB until issue 4's idempotency lands: passes through.
 */
#include "admit.h"

void idem_begin(gw_req *r, gw_next_fn next) { next(r); }
