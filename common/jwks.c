/*
 * jwks.c - parsing a JSON Web Key Set (RFC 7517, RFC 7518 section 6) into
 * mbedTLS public keys, and writing one key back out (see jwks.h).
 *
 * A key set comes from a file or over the network, so it is treated as
 * input: every member is checked for type and shape, key material is
 * checked the way mbedTLS checks public keys (RSA modulus and exponent, EC
 * point on the curve), and a set that is wrong anywhere is refused whole
 * rather than half used. Keys we cannot or must not verify with (another
 * type or curve, "use":"enc", a symmetric "oct" key - the HS256 secret is
 * only ever the configured one) are skipped.
 */
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/ecdsa.h>
#include <mbedtls/ecp.h>
#include <mbedtls/rsa.h>

#include "base64url.h"
#include "jsonutil.h"
#include "jwks.h"

#define JWKS_JSON_DEPTH   8
#define RSA_MIN_BITS      2048
#define RSA_MAX_BITS      8192
#define RSA_MAX_E_BYTES   4
#define P256_COORD_BYTES  32

typedef struct jwk {
    char kid[JWKS_MAX_KID + 1];
    bool has_kid;
    unsigned algs;              /* jwk_alg bits it serves */
    mbedtls_pk_context pk;
} jwk;

struct jwks {
    atomic_int refs;
    size_t n;
    jwk keys[];
};

#define parse_fail(...) (snprintf(err, err_size, __VA_ARGS__), -1)

/* --- members ------------------------------------------------------------- */

/* Reads optional string member name: 1 present (in *out), 0 absent, -1 not a string. */
static int optional_string(const cJSON *obj, const char *name, const char **out)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (m == NULL)
        return 0;
    if (!cJSON_IsString(m))
        return -1;
    *out = m->valuestring;
    return 1;
}

/* A kid goes into logs: 1..JWKS_MAX_KID printable ASCII bytes. */
static bool valid_kid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > JWKS_MAX_KID)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
            return false;
    return true;
}

/* Decodes the base64url string member name into buf (cap bytes). Returns
 * the byte count, or -1 with the reason in err. */
static long decode_member(const cJSON *key, size_t idx, const char *name,
                          unsigned char *buf, size_t cap, char *err, size_t err_size)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(key, name);
    if (m == NULL)
        return parse_fail("key %zu: \"%s\" is missing", idx, name);
    if (!cJSON_IsString(m))
        return parse_fail("key %zu: \"%s\" is not a string", idx, name);
    size_t len = strlen(m->valuestring);
    long n = b64url_decode(m->valuestring, len, buf, cap);
    if (n < 0)
        return parse_fail("key %zu: \"%s\" is not base64url or too long", idx, name);
    if (n == 0)
        return parse_fail("key %zu: \"%s\" is empty", idx, name);
    return n;
}

/* --- key material -------------------------------------------------------- */

static int load_rsa(const cJSON *obj, size_t idx, jwk *k, char *err, size_t err_size)
{
    unsigned char n[RSA_MAX_BITS / 8 + 8], e[RSA_MAX_E_BYTES + 4];
    long nlen = decode_member(obj, idx, "n", n, sizeof n, err, err_size);
    if (nlen < 0)
        return -1;
    long elen = decode_member(obj, idx, "e", e, sizeof e, err, err_size);
    if (elen < 0)
        return -1;
    if (elen > RSA_MAX_E_BYTES)
        return parse_fail("key %zu: \"e\" is longer than %d bytes", idx, RSA_MAX_E_BYTES);

    if (mbedtls_pk_setup(&k->pk, mbedtls_pk_info_from_type(MBEDTLS_PK_RSA)) != 0)
        return parse_fail("key %zu: out of memory", idx);
    mbedtls_rsa_context *rsa = mbedtls_pk_rsa(k->pk);
    if (mbedtls_rsa_import_raw(rsa, n, (size_t)nlen, NULL, 0, NULL, 0, NULL, 0,
                               e, (size_t)elen) != 0 ||
        mbedtls_rsa_complete(rsa) != 0 || mbedtls_rsa_check_pubkey(rsa) != 0)
        return parse_fail("key %zu: not a valid RSA public key", idx);
    size_t bits = mbedtls_pk_get_bitlen(&k->pk);
    if (bits < RSA_MIN_BITS || bits > RSA_MAX_BITS)
        return parse_fail("key %zu: RSA modulus of %zu bits (need %d..%d)", idx, bits,
                          RSA_MIN_BITS, RSA_MAX_BITS);
    k->algs = JWK_ALG_RS256;
    return 0;
}

/* mbedTLS computes a table for the curve's generator on first use and
 * keeps it in the group. Doing that now, while the set is still private
 * to its parser, leaves verification read-only on the key, so threads can
 * share it. The dummy signature's result does not matter. */
static void precompute_ec_tables(mbedtls_ecp_keypair *ec)
{
    unsigned char hash[32];
    mbedtls_mpi r, s;
    memset(hash, 0x5a, sizeof hash);
    mbedtls_mpi_init(&r);
    mbedtls_mpi_init(&s);
    if (mbedtls_mpi_lset(&r, 1) == 0 && mbedtls_mpi_lset(&s, 1) == 0)
        (void)mbedtls_ecdsa_verify(&ec->grp, hash, sizeof hash, &ec->Q, &r, &s);
    mbedtls_mpi_free(&r);
    mbedtls_mpi_free(&s);
}

static int load_ec_p256(const cJSON *obj, size_t idx, jwk *k, char *err, size_t err_size)
{
    unsigned char x[P256_COORD_BYTES + 4], y[P256_COORD_BYTES + 4];
    long xl = decode_member(obj, idx, "x", x, sizeof x, err, err_size);
    if (xl < 0)
        return -1;
    long yl = decode_member(obj, idx, "y", y, sizeof y, err, err_size);
    if (yl < 0)
        return -1;
    /* RFC 7518 section 6.2.1.2: the full coordinate size, even with leading zeros. */
    if (xl != P256_COORD_BYTES || yl != P256_COORD_BYTES)
        return parse_fail("key %zu: \"x\" and \"y\" must be %d bytes for P-256", idx,
                          P256_COORD_BYTES);

    if (mbedtls_pk_setup(&k->pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)) != 0)
        return parse_fail("key %zu: out of memory", idx);
    mbedtls_ecp_keypair *ec = mbedtls_pk_ec(k->pk);
    if (mbedtls_ecp_group_load(&ec->grp, MBEDTLS_ECP_DP_SECP256R1) != 0 ||
        mbedtls_mpi_read_binary(&ec->Q.X, x, P256_COORD_BYTES) != 0 ||
        mbedtls_mpi_read_binary(&ec->Q.Y, y, P256_COORD_BYTES) != 0 ||
        mbedtls_mpi_lset(&ec->Q.Z, 1) != 0)
        return parse_fail("key %zu: out of memory", idx);
    if (mbedtls_ecp_check_pubkey(&ec->grp, &ec->Q) != 0)
        return parse_fail("key %zu: the point is not on P-256", idx);
    precompute_ec_tables(ec);
    k->algs = JWK_ALG_ES256;
    return 0;
}

/* --- one key ------------------------------------------------------------- */

/* Checks the members every key may carry. 0, or -1 with the reason. */
static int check_common_members(const cJSON *obj, size_t idx, char *err, size_t err_size)
{
    static const char *const strings[] = { "kty", "kid", "use", "alg", "crv" };
    for (size_t i = 0; i < sizeof strings / sizeof *strings; i++) {
        const char *v;
        if (optional_string(obj, strings[i], &v) < 0)
            return parse_fail("key %zu: \"%s\" is not a string", idx, strings[i]);
    }
    if (cJSON_GetObjectItemCaseSensitive(obj, "kty") == NULL)
        return parse_fail("key %zu: \"kty\" is missing", idx);
    const char *kid;
    if (optional_string(obj, "kid", &kid) == 1 && !valid_kid(kid))
        return parse_fail("key %zu: \"kid\" must be 1-%d printable ASCII bytes", idx,
                          JWKS_MAX_KID);
    const cJSON *ops = cJSON_GetObjectItemCaseSensitive(obj, "key_ops");
    if (ops != NULL) {
        if (!cJSON_IsArray(ops))
            return parse_fail("key %zu: \"key_ops\" is not an array", idx);
        for (const cJSON *o = ops->child; o != NULL; o = o->next)
            if (!cJSON_IsString(o))
                return parse_fail("key %zu: \"key_ops\" holds a non-string", idx);
    }
    /* A public key set that carries a private key has leaked it. */
    if (cJSON_GetObjectItemCaseSensitive(obj, "d") != NULL)
        return parse_fail("key %zu: holds private key material (\"d\")", idx);
    return 0;
}

/* True when "use" and "key_ops" (already checked for shape) allow verifying. */
static bool usable_for_verify(const cJSON *obj)
{
    const char *use;
    if (optional_string(obj, "use", &use) == 1 && strcmp(use, "sig") != 0)
        return false;
    const cJSON *ops = cJSON_GetObjectItemCaseSensitive(obj, "key_ops");
    if (ops == NULL)
        return true;
    for (const cJSON *o = ops->child; o != NULL; o = o->next)
        if (strcmp(o->valuestring, "verify") == 0)
            return true;
    return false;
}

/* Parses key idx into *k. Returns 1 usable, 0 skipped, -1 invalid. */
static int parse_key(const cJSON *obj, size_t idx, jwk *k, char *err, size_t err_size)
{
    if (!cJSON_IsObject(obj))
        return parse_fail("key %zu is not an object", idx);
    if (check_common_members(obj, idx, err, err_size) != 0)
        return -1;
    if (!usable_for_verify(obj))
        return 0;

    const char *kty = json_get_string(obj, "kty"), *alg = NULL, *crv = NULL, *kid = NULL;
    bool has_alg = optional_string(obj, "alg", &alg) == 1;
    int rc;
    if (strcmp(kty, "RSA") == 0) {
        if (has_alg && strcmp(alg, "RS256") != 0)
            return 0;
        rc = load_rsa(obj, idx, k, err, err_size);
    } else if (strcmp(kty, "EC") == 0) {
        if (optional_string(obj, "crv", &crv) != 1)
            return parse_fail("key %zu: \"crv\" is missing", idx);
        if (strcmp(crv, "P-256") != 0 || (has_alg && strcmp(alg, "ES256") != 0))
            return 0;
        rc = load_ec_p256(obj, idx, k, err, err_size);
    } else {
        return 0;
    }
    if (rc != 0)
        return -1;
    if (optional_string(obj, "kid", &kid) == 1) {
        k->has_kid = true;
        memcpy(k->kid, kid, strlen(kid) + 1);   /* valid_kid bounded it */
    }
    return 1;
}

/* --- the set ------------------------------------------------------------- */

static void jwks_free(jwks *set)
{
    for (size_t i = 0; i < set->n; i++)
        mbedtls_pk_free(&set->keys[i].pk);
    free(set);
}

/* Two usable keys under one kid would make lookups depend on order. */
static int find_duplicate_kid(const jwks *set)
{
    for (size_t i = 0; i < set->n; i++)
        for (size_t j = i + 1; j < set->n; j++)
            if (set->keys[i].has_kid && set->keys[j].has_kid &&
                strcmp(set->keys[i].kid, set->keys[j].kid) == 0)
                return (int)j;
    return -1;
}

static int parse_keys(const cJSON *keys, jwks *set, char *err, size_t err_size)
{
    size_t idx = 0;
    for (const cJSON *item = keys->child; item != NULL; item = item->next, idx++) {
        jwk *k = &set->keys[set->n];
        memset(k, 0, sizeof *k);
        mbedtls_pk_init(&k->pk);
        int rc = parse_key(item, idx, k, err, err_size);
        if (rc == 1) {
            set->n++;
            continue;
        }
        mbedtls_pk_free(&k->pk);
        if (rc < 0)
            return -1;
    }
    if (set->n == 0)
        return parse_fail("no usable RS256 or ES256 signing key in the set");
    if (find_duplicate_kid(set) >= 0)
        return parse_fail("two keys share a kid");
    return 0;
}

jwks *jwks_parse(const char *json, size_t len, char *err, size_t err_size)
{
    char perr[128] = "";
    if (json == NULL || len > JWKS_MAX_BYTES) {
        snprintf(err, err_size, "the key set is larger than %d bytes", JWKS_MAX_BYTES);
        return NULL;
    }
    cJSON *root = json_parse_bounded(json, len, JWKS_MAX_BYTES, JWKS_JSON_DEPTH,
                                     perr, sizeof perr);
    if (root == NULL) {
        snprintf(err, err_size, "the key set is not valid JSON: %s", perr);
        return NULL;
    }
    jwks *set = NULL;
    const cJSON *keys = cJSON_GetObjectItemCaseSensitive(root, "keys");
    /* json_parse_bounded refuses repeated member names anywhere: cJSON
     * would keep both and answer lookups with the first, so two readers of
     * one text could disagree about it. */
    if (!cJSON_IsObject(root)) {
        snprintf(err, err_size, "the key set is not a JSON object");
    } else if (!cJSON_IsArray(keys)) {
        snprintf(err, err_size, "the key set has no \"keys\" array");
    } else if (cJSON_GetArraySize(keys) > JWKS_MAX_KEYS) {
        snprintf(err, err_size, "the key set has more than %d keys", JWKS_MAX_KEYS);
    } else if ((set = calloc(1, sizeof *set + (size_t)cJSON_GetArraySize(keys) * sizeof(jwk)))
               == NULL) {
        snprintf(err, err_size, "out of memory");
    } else if (parse_keys(keys, set, err, err_size) != 0) {
        jwks_free(set);
        set = NULL;
    } else {
        atomic_init(&set->refs, 1);
    }
    cJSON_Delete(root);
    return set;
}

jwks *jwks_retain(jwks *set)
{
    if (set != NULL)
        atomic_fetch_add_explicit(&set->refs, 1, memory_order_relaxed);
    return set;
}

void jwks_release(jwks *set)
{
    /* acq_rel: the last owner must see every other owner's reads finished. */
    if (set != NULL && atomic_fetch_sub_explicit(&set->refs, 1, memory_order_acq_rel) == 1)
        jwks_free(set);
}

size_t jwks_count(const jwks *set)
{
    return set != NULL ? set->n : 0;
}

size_t jwks_count_for(const jwks *set, jwk_alg alg)
{
    size_t c = 0;
    for (size_t i = 0; set != NULL && i < set->n; i++)
        if (set->keys[i].algs & (unsigned)alg)
            c++;
    return c;
}

const mbedtls_pk_context *jwks_find(const jwks *set, const char *kid, jwk_alg alg)
{
    if (set == NULL)
        return NULL;
    if (kid == NULL) {
        if (jwks_count_for(set, alg) != 1)
            return NULL;
        for (size_t i = 0; i < set->n; i++)
            if (set->keys[i].algs & (unsigned)alg)
                return &set->keys[i].pk;
        return NULL;
    }
    for (size_t i = 0; i < set->n; i++)
        if (set->keys[i].has_kid && (set->keys[i].algs & (unsigned)alg) &&
            strcmp(set->keys[i].kid, kid) == 0)
            return &set->keys[i].pk;
    return NULL;
}

/* --- export -------------------------------------------------------------- */

/* Adds the big number m as a base64url member of size bytes (0: its own size). */
static void add_mpi(cJSON *o, const char *name, const mbedtls_mpi *m, size_t size, bool *ok)
{
    size_t n = size != 0 ? size : mbedtls_mpi_size(m);
    unsigned char *buf = malloc(n != 0 ? n : 1);
    char *s = NULL;
    if (buf != NULL && mbedtls_mpi_write_binary(m, buf, n) == 0)
        s = b64url_encode(buf, n);
    if (s == NULL)
        *ok = false;
    json_add_str(o, name, s, ok);
    free(s);
    free(buf);
}

/* Fills key with the members for pk. 0, or -1 with the reason. */
static int export_members(cJSON *key, const mbedtls_pk_context *pk, bool *ok,
                          char *err, size_t err_size)
{
    mbedtls_pk_type_t type = mbedtls_pk_get_type(pk);
    if (type == MBEDTLS_PK_RSA) {
        if (mbedtls_pk_get_bitlen(pk) < RSA_MIN_BITS || mbedtls_pk_get_bitlen(pk) > RSA_MAX_BITS)
            return parse_fail("RSA keys must have %d..%d bits", RSA_MIN_BITS, RSA_MAX_BITS);
        mbedtls_mpi n, e;
        mbedtls_mpi_init(&n);
        mbedtls_mpi_init(&e);
        if (mbedtls_rsa_export(mbedtls_pk_rsa(*pk), &n, NULL, NULL, NULL, &e) != 0)
            *ok = false;
        json_add_str(key, "kty", "RSA", ok);
        json_add_str(key, "alg", "RS256", ok);
        add_mpi(key, "n", &n, 0, ok);
        add_mpi(key, "e", &e, 0, ok);
        mbedtls_mpi_free(&n);
        mbedtls_mpi_free(&e);
        return 0;
    }
    if (type == MBEDTLS_PK_ECKEY || type == MBEDTLS_PK_ECDSA) {
        const mbedtls_ecp_keypair *ec = mbedtls_pk_ec(*pk);
        if (ec->grp.id != MBEDTLS_ECP_DP_SECP256R1)
            return parse_fail("EC keys must be on P-256");
        json_add_str(key, "kty", "EC", ok);
        json_add_str(key, "alg", "ES256", ok);
        json_add_str(key, "crv", "P-256", ok);
        add_mpi(key, "x", &ec->Q.X, P256_COORD_BYTES, ok);
        add_mpi(key, "y", &ec->Q.Y, P256_COORD_BYTES, ok);
        return 0;
    }
    return parse_fail("only RSA and P-256 EC keys can be exported");
}

char *jwks_export_public(const mbedtls_pk_context *key, const char *kid,
                         char *err, size_t err_size)
{
    if (key == NULL || kid == NULL || !valid_kid(kid)) {
        snprintf(err, err_size, "a kid of 1-%d printable ASCII bytes is required", JWKS_MAX_KID);
        return NULL;
    }
    bool ok = true;
    cJSON *root = cJSON_CreateObject(), *keys = cJSON_CreateArray(), *k = cJSON_CreateObject();
    if (root == NULL || keys == NULL || k == NULL ||
        export_members(k, key, &ok, err, err_size) != 0) {
        if (root == NULL || keys == NULL || k == NULL)
            snprintf(err, err_size, "out of memory");
        cJSON_Delete(k);
        cJSON_Delete(keys);
        cJSON_Delete(root);
        return NULL;
    }
    json_add_str(k, "kid", kid, &ok);
    json_add_str(k, "use", "sig", &ok);
    json_append(keys, k, &ok);
    json_add_item(root, "keys", keys, &ok);
    root = json_done(root, ok);
    char *text = root != NULL ? json_print(root) : NULL;
    cJSON_Delete(root);
    if (text == NULL)
        snprintf(err, err_size, "out of memory");
    return text;
}
