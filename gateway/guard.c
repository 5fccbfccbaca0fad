/*
 * guard.c - pre-routing defences (see guard.h).
 * STUB until issue 4's hostile-HTTP work lands.
 */
#include "guard.h"

int guard_request(gw_req *r) { (void)r; return 0; }
