/*
 * fuzz_jwt_pk.c - libFuzzer target for RS256 and ES256 tokens with valid
 * signatures: fuzz_jwt.c's modes 3 and 4 alone (see there). The harness
 * signs each input's header and claims with the fixed keys of fuzz_keys.h
 * and verifies the token against their JWKS.
 */
#define FUZZ_JWT_PK 1
#include "fuzz_jwt.c"
