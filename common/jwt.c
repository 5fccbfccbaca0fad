/*
 * jwt.c - verifying (and, for tools and tests, signing) HS256, RS256 and
 * ES256 JSON Web Tokens (RFC 7519, RFC 7515 compact form, RFC 7518).
 *
 * Everything in a token is hostile until its signature checks out, and the
 * signature means nothing unless the algorithm is one configured. So:
 * the length is capped before any decoding; the header is parsed only to
 * see that its "alg" is one of the pinned ones ("none" and every other
 * value are refused, whatever the token claims) and to read its "kid";
 * the key follows from the algorithm, never the other way round: HS256
 * uses the configured secret and nothing else (so a token "signed" with a
 * public key as an HMAC secret fails), RS256 and ES256 use a key of the
 * matching type from the key set. The signature is checked over the exact
 * bytes received; only then are the claims read, each checked for type and
 * shape before it is copied into a fixed-size principal.
 */
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/entropy.h>
#include <mbedtls/md.h>
#include <mbedtls/pk.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/rsa.h>

#include "base64url.h"
#include "jsonutil.h"
#include "jwks.h"
#include "jwt.h"

#define HS256_MAC_BYTES 32
#define HS256_SIG_CHARS 43   /* base64url of 32 bytes, unpadded */
#define ES256_SIG_BYTES 64   /* r || s, 32 bytes each (RFC 7518 section 3.4) */
#define RSA_SIG_MAX     1024 /* an 8192-bit modulus, the largest jwks.c takes */
#define SHA256_BYTES    32

/* The algorithms, as bits, so a pinned list is a mask. */
enum { ALG_HS256 = 1, ALG_RS256 = 2, ALG_ES256 = 4 };
/* The largest part of a token, decoded, with the slack b64url_decode wants. */
#define JWT_DECODED_MAX (JWT_MAX_TOKEN_BYTES / 4 * 3 + 4)
/* Claims are flat; a little nesting is allowed for custom claims. */
#define JWT_JSON_DEPTH 8

/* --- signatures ---------------------------------------------------------- */

static int hmac_sha256(const unsigned char *key, size_t key_len,
                       const unsigned char *msg, size_t msg_len,
                       unsigned char mac[HS256_MAC_BYTES])
{
    const mbedtls_md_info_t *md = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
    if (md == NULL)
        return -1;
    return mbedtls_md_hmac(md, key, key_len, msg, msg_len, mac) == 0 ? 0 : -1;
}

/*
 * HMAC-SHA256 for verifying, with mbedTLS's HMAC context kept per thread
 * and key instead of made per token: mbedtls_md_hmac_reset then starts
 * each message from the key's padded blocks, which spares the context's
 * allocations and the key setup of mbedtls_md_hmac. The context is the
 * thread's own (no lock) and is freed, with the key wiped, when the
 * thread ends.
 */
typedef struct hmac_keyed {
    unsigned char *key;            /* the key it was made for */
    size_t key_len;
    mbedtls_md_context_t md;       /* HMAC-SHA256 started with key */
} hmac_keyed;

static pthread_key_t hmac_key;
static pthread_once_t hmac_key_once = PTHREAD_ONCE_INIT;
static bool hmac_key_ok;

static void hmac_keyed_free(void *p)
{
    hmac_keyed *k = p;
    if (k == NULL)
        return;
    if (k->key != NULL) {
        mbedtls_platform_zeroize(k->key, k->key_len);
        free(k->key);
    }
    mbedtls_md_free(&k->md);
    free(k);
}

static void hmac_key_create(void)
{
    hmac_key_ok = pthread_key_create(&hmac_key, hmac_keyed_free) == 0;
}

/* This thread's keyed context for key, made (or remade, for another key)
 * on demand; NULL when it cannot be. */
static hmac_keyed *hmac_keyed_for(const unsigned char *key, size_t key_len)
{
    pthread_once(&hmac_key_once, hmac_key_create);
    if (!hmac_key_ok)
        return NULL;
    hmac_keyed *k = pthread_getspecific(hmac_key);
    if (k != NULL && k->key_len == key_len && memcmp(k->key, key, key_len) == 0)
        return k;
    if (k != NULL) {
        pthread_setspecific(hmac_key, NULL);
        hmac_keyed_free(k);
    }
    k = calloc(1, sizeof *k);
    if (k == NULL)
        return NULL;
    mbedtls_md_init(&k->md);
    k->key = malloc(key_len ? key_len : 1);
    if (k->key == NULL) {
        hmac_keyed_free(k);
        return NULL;
    }
    memcpy(k->key, key, key_len);
    k->key_len = key_len;
    const mbedtls_md_info_t *md = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
    if (md == NULL || mbedtls_md_setup(&k->md, md, 1) != 0
        || mbedtls_md_hmac_starts(&k->md, key, key_len) != 0
        || pthread_setspecific(hmac_key, k) != 0) {
        hmac_keyed_free(k);
        return NULL;
    }
    return k;
}

/* HMAC-SHA256 of msg under key: from this thread's keyed context when it
 * can have one, else the one-shot way. */
static int hmac_sha256_verify(const unsigned char *key, size_t key_len,
                              const unsigned char *msg, size_t msg_len,
                              unsigned char mac[HS256_MAC_BYTES])
{
    hmac_keyed *k = hmac_keyed_for(key, key_len);
    if (k == NULL)
        return hmac_sha256(key, key_len, msg, msg_len, mac);
    return mbedtls_md_hmac_reset(&k->md) == 0
        && mbedtls_md_hmac_update(&k->md, msg, msg_len) == 0
        && mbedtls_md_hmac_finish(&k->md, mac) == 0 ? 0 : -1;
}

/* Compares n bytes without an early exit, so the time taken says nothing
 * about how many leading bytes of a forged MAC were right. */
static int equal_const_time(const unsigned char *a, const unsigned char *b, size_t n)
{
    volatile unsigned char diff = 0;
    for (size_t i = 0; i < n; i++)
        diff |= a[i] ^ b[i];
    return diff == 0;
}

char *jwt_sign_hs256(const char *claims_json, const unsigned char *secret,
                     size_t secret_len)
{
    static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    if (claims_json == NULL)
        return NULL;
    char *h = b64url_encode((const unsigned char *)header, strlen(header));
    char *c = b64url_encode((const unsigned char *)claims_json, strlen(claims_json));
    char *token = NULL, *s = NULL;
    unsigned char mac[HS256_MAC_BYTES];

    if (h == NULL || c == NULL)
        goto out;
    size_t hl = strlen(h), cl = strlen(c);
    token = malloc(hl + 1 + cl + 1 + HS256_SIG_CHARS + 1);
    if (token == NULL)
        goto out;
    memcpy(token, h, hl);
    token[hl] = '.';
    memcpy(token + hl + 1, c, cl);
    if (hmac_sha256(secret, secret_len, (const unsigned char *)token, hl + 1 + cl, mac) != 0 ||
        (s = b64url_encode(mac, sizeof mac)) == NULL) {
        free(token);
        token = NULL;
        goto out;
    }
    token[hl + 1 + cl] = '.';
    memcpy(token + hl + 1 + cl + 1, s, HS256_SIG_CHARS + 1);
out:
    free(h);
    free(c);
    free(s);
    return token;
}

/* --- parsing ------------------------------------------------------------- */

/* The three dot-separated parts of a compact token. */
typedef struct jwt_parts {
    const char *header;  size_t header_len;
    const char *payload; size_t payload_len;
    const char *sig;     size_t sig_len;
} jwt_parts;

/* Splits token at exactly two dots; header and payload must be non-empty
 * (the signature may be empty, as in alg "none", refused later). */
static int split_token(const char *token, size_t len, jwt_parts *p)
{
    const char *d1 = memchr(token, '.', len);
    if (d1 == NULL)
        return -1;
    const char *rest = d1 + 1;
    size_t rest_len = len - (size_t)(rest - token);
    const char *d2 = memchr(rest, '.', rest_len);
    if (d2 == NULL)
        return -1;
    const char *sig = d2 + 1;
    size_t sig_len = len - (size_t)(sig - token);
    if (memchr(sig, '.', sig_len) != NULL)   /* five-part JWE or junk */
        return -1;

    p->header = token;   p->header_len = (size_t)(d1 - token);
    p->payload = rest;   p->payload_len = (size_t)(d2 - rest);
    p->sig = sig;        p->sig_len = sig_len;
    return p->header_len > 0 && p->payload_len > 0 ? 0 : -1;
}

/* Decodes one base64url part into buf and parses it as a JSON object.
 * Returns the tree (caller deletes) or NULL. json_parse_bounded refuses a
 * repeated member name: cJSON would keep both and answer with the first,
 * where another reader of the same token might take the second. */
static cJSON *decode_json_object(const char *part, size_t len, unsigned char *buf)
{
    long n = b64url_decode(part, len, buf, JWT_DECODED_MAX);
    if (n <= 0)
        return NULL;
    cJSON *obj = json_parse_bounded((const char *)buf, (size_t)n, (size_t)n,
                                    JWT_JSON_DEPTH, NULL, 0);
    if (obj != NULL && !cJSON_IsObject(obj)) {
        cJSON_Delete(obj);
        return NULL;
    }
    return obj;
}

/* The header nearly every HS256 token carries (the one jwt_sign writes),
 * base64url-encoded, and its tree, parsed once: a token whose header part
 * is exactly these bytes is checked against that tree, read-only and
 * shared by every thread, instead of decoding and parsing its own. Any
 * other header takes the full path. */
static const char common_header_b64[] = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";
static const char common_header_json[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
static cJSON *common_header;
static pthread_once_t common_header_once = PTHREAD_ONCE_INIT;

static void parse_common_header(void)
{
    common_header = cJSON_Parse(common_header_json);
}

/* The parsed header of part (len bytes): the shared tree (*shared true,
 * not to be deleted) or a new one (caller deletes); NULL when malformed. */
static cJSON *header_object(const char *part, size_t len, unsigned char *buf, bool *shared)
{
    *shared = false;
    if (len == sizeof common_header_b64 - 1 && memcmp(part, common_header_b64, len) == 0) {
        pthread_once(&common_header_once, parse_common_header);
        if (common_header != NULL) {
            *shared = true;
            return common_header;
        }
    }
    return decode_json_object(part, len, buf);
}

/* --- algorithms ---------------------------------------------------------- */

static unsigned alg_bit(const char *name, size_t len)
{
    static const struct { const char *name; unsigned bit; } algs[] = {
        { "HS256", ALG_HS256 }, { "RS256", ALG_RS256 }, { "ES256", ALG_ES256 },
    };
    for (size_t i = 0; i < sizeof algs / sizeof algs[0]; i++)
        if (strlen(algs[i].name) == len && memcmp(algs[i].name, name, len) == 0)
            return algs[i].bit;
    return 0;
}

/* The mask of a pinned list, or 0 when the list is empty or malformed
 * (an unknown name, an empty item, a repeat). */
static unsigned alg_mask(const char *list)
{
    unsigned mask = 0;
    if (list == NULL || *list == '\0')
        return 0;
    for (const char *p = list;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);
        unsigned bit = alg_bit(p, len);
        if (bit == 0 || (mask & bit))
            return 0;
        mask |= bit;
        if (comma == NULL)
            return mask;
        p = comma + 1;
    }
}

bool jwt_alg_list_valid(const char *list)
{
    return alg_mask(list) != 0;
}

bool jwt_alg_list_has(const char *list, const char *alg)
{
    unsigned bit = alg != NULL ? alg_bit(alg, strlen(alg)) : 0;
    return bit != 0 && (alg_mask(list) & bit) != 0;
}

const char *jwt_alg_for_key(const mbedtls_pk_context *key)
{
    if (key == NULL)
        return NULL;
    mbedtls_pk_type_t t = mbedtls_pk_get_type(key);
    if (t == MBEDTLS_PK_RSA)
        return "RS256";
    if ((t == MBEDTLS_PK_ECKEY || t == MBEDTLS_PK_ECDSA) &&
        mbedtls_pk_ec(*key)->grp.id == MBEDTLS_ECP_DP_SECP256R1)
        return "ES256";
    return NULL;
}

/* --- header -------------------------------------------------------------- */

/* What the header says, once checked. */
typedef struct jwt_header {
    unsigned alg;                 /* one ALG_* bit, within the pinned mask */
    bool has_kid;
    char kid[JWKS_MAX_KID + 1];
} jwt_header;

/* Header members that would have us take a key, or a meaning, from the
 * token itself: refused rather than ignored, since their presence means
 * the issuer expects something we do not do. "crit" extensions cannot be
 * honoured (RFC 7515 section 4.1.11); "cty" would nest a token. */
static bool has_refused_member(const cJSON *header)
{
    static const char *const refused[] = { "crit", "jku", "jwk", "x5u", "x5c", "cty", "b64",
                                           "enc", "zip" };
    for (size_t i = 0; i < sizeof refused / sizeof *refused; i++)
        if (cJSON_GetObjectItemCaseSensitive(header, refused[i]) != NULL)
            return true;
    return false;
}

/* Checks the JOSE header: alg must be one of the pinned ones; typ, when
 * present, must say JWT; kid, when present, a short printable string. */
static jwt_err check_header(unsigned pinned, const cJSON *header, jwt_header *h)
{
    const cJSON *alg = cJSON_GetObjectItemCaseSensitive(header, "alg");
    if (!cJSON_IsString(alg))
        return JWT_BAD_ALG;
    h->alg = alg_bit(alg->valuestring, strlen(alg->valuestring));
    if (h->alg == 0 || (pinned & h->alg) == 0)
        return JWT_BAD_ALG;

    const cJSON *typ = cJSON_GetObjectItemCaseSensitive(header, "typ");
    /* Media type names are case-insensitive (RFC 7515 section 4.1.9). */
    if (typ != NULL && (!cJSON_IsString(typ) || strcasecmp(typ->valuestring, "JWT") != 0))
        return JWT_MALFORMED;
    if (has_refused_member(header))
        return JWT_MALFORMED;

    const cJSON *kid = cJSON_GetObjectItemCaseSensitive(header, "kid");
    if (kid != NULL) {
        if (!cJSON_IsString(kid))
            return JWT_MALFORMED;
        size_t n = strlen(kid->valuestring);
        if (n == 0 || n > JWKS_MAX_KID)
            return JWT_MALFORMED;
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)kid->valuestring[i] < 0x20 ||
                (unsigned char)kid->valuestring[i] > 0x7e)
                return JWT_MALFORMED;
        memcpy(h->kid, kid->valuestring, n + 1);
        h->has_kid = true;
    }
    return JWT_OK;
}

/* --- signature ----------------------------------------------------------- */

static jwt_err check_hs256(const jwt_config *cfg, const char *token, const jwt_parts *p)
{
    unsigned char got[HS256_MAC_BYTES + 4], want[HS256_MAC_BYTES];

    if (cfg->secret == NULL || cfg->secret_len == 0)   /* anyone could sign with "" */
        return JWT_BAD_SIGNATURE;
    if (p->sig_len != HS256_SIG_CHARS)
        return JWT_BAD_SIGNATURE;
    if (b64url_decode(p->sig, p->sig_len, got, sizeof got) != HS256_MAC_BYTES)
        return JWT_MALFORMED;
    size_t signed_len = p->header_len + 1 + p->payload_len;
    if (hmac_sha256_verify(cfg->secret, cfg->secret_len, (const unsigned char *)token,
                           signed_len, want) != 0)
        return JWT_BAD_SIGNATURE;
    return equal_const_time(got, want, HS256_MAC_BYTES) ? JWT_OK : JWT_BAD_SIGNATURE;
}

/* The key for h from the set: by kid, or the only candidate without one. */
static jwt_err find_key(const jwt_config *cfg, const jwt_header *h,
                        const mbedtls_pk_context **key)
{
    jwk_alg want = h->alg == ALG_RS256 ? JWK_ALG_RS256 : JWK_ALG_ES256;
    *key = jwks_find(cfg->keys, h->has_kid ? h->kid : NULL, want);
    if (*key != NULL)
        return JWT_OK;
    if (!h->has_kid && jwks_count_for(cfg->keys, want) > 1)
        return JWT_KID_REQUIRED;
    return JWT_UNKNOWN_KID;
}

/* Decodes the signature part, which must be exactly want bytes. */
static jwt_err decode_signature(const jwt_parts *p, unsigned char *sig, size_t want)
{
    /* The unpadded base64url length of want bytes; anything else is
     * truncated or padded, and checked before decoding a byte of it. */
    size_t chars = want / 3 * 4 + (want % 3 == 0 ? 0 : want % 3 + 1);
    if (p->sig_len != chars)
        return JWT_BAD_SIGNATURE;
    if (b64url_decode(p->sig, p->sig_len, sig, RSA_SIG_MAX + 4) != (long)want)
        return JWT_MALFORMED;
    return JWT_OK;
}

static int sha256(const char *msg, size_t len, unsigned char out[SHA256_BYTES])
{
    const mbedtls_md_info_t *md = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
    return md != NULL && mbedtls_md(md, (const unsigned char *)msg, len, out) == 0 ? 0 : -1;
}

/* The key set is shared by loop threads, so keys are const; verification
 * does not change a key (the RSA context locks its own blinding state and
 * jwks.c precomputed the EC tables), hence the casts. */
static jwt_err verify_rs256(const mbedtls_pk_context *key, const unsigned char *hash,
                            const unsigned char *sig)
{
    mbedtls_rsa_context *rsa = mbedtls_pk_rsa(*key);
    int rc = mbedtls_rsa_rsassa_pkcs1_v15_verify(rsa, NULL, NULL, MBEDTLS_RSA_PUBLIC,
                                                 MBEDTLS_MD_SHA256, SHA256_BYTES, hash, sig);
    return rc == 0 ? JWT_OK : JWT_BAD_SIGNATURE;
}

static jwt_err verify_es256(const mbedtls_pk_context *key, const unsigned char *hash,
                            const unsigned char *sig)
{
    mbedtls_ecp_keypair *ec = mbedtls_pk_ec(*key);
    mbedtls_mpi r, s;
    mbedtls_mpi_init(&r);
    mbedtls_mpi_init(&s);
    int rc = mbedtls_mpi_read_binary(&r, sig, ES256_SIG_BYTES / 2);
    if (rc == 0)
        rc = mbedtls_mpi_read_binary(&s, sig + ES256_SIG_BYTES / 2, ES256_SIG_BYTES / 2);
    /* ecdsa_verify refuses r or s outside [1, n-1] itself. */
    if (rc == 0)
        rc = mbedtls_ecdsa_verify(&ec->grp, hash, SHA256_BYTES, &ec->Q, &r, &s);
    mbedtls_mpi_free(&r);
    mbedtls_mpi_free(&s);
    return rc == 0 ? JWT_OK : JWT_BAD_SIGNATURE;
}

static jwt_err check_public_key_signature(const jwt_config *cfg, const jwt_header *h,
                                          const char *token, const jwt_parts *p)
{
    const mbedtls_pk_context *key;
    jwt_err rc = find_key(cfg, h, &key);
    if (rc != JWT_OK)
        return rc;
    size_t want = h->alg == ALG_ES256 ? ES256_SIG_BYTES : mbedtls_pk_get_len(key);
    if (want == 0 || want > RSA_SIG_MAX)
        return JWT_BAD_SIGNATURE;
    unsigned char sig[RSA_SIG_MAX + 4], hash[SHA256_BYTES];
    if ((rc = decode_signature(p, sig, want)) != JWT_OK)
        return rc;
    if (sha256(token, p->header_len + 1 + p->payload_len, hash) != 0)
        return JWT_BAD_SIGNATURE;
    return h->alg == ALG_ES256 ? verify_es256(key, hash, sig) : verify_rs256(key, hash, sig);
}

static jwt_err check_signature(const jwt_config *cfg, const jwt_header *h,
                               const char *token, const jwt_parts *p)
{
    /* The key follows from the algorithm alone: HS256 never sees key-set
     * material, RS256/ES256 never see the secret. */
    if (h->alg == ALG_HS256)
        return check_hs256(cfg, token, p);
    return check_public_key_signature(cfg, h, token, p);
}

/* Reads a NumericDate claim. 1 present (in *out), 0 absent, -1 malformed.
 * Fractions are allowed (RFC 7519 section 2); absurd magnitudes are not. */
static int numeric_date(const cJSON *claims, const char *name, double *out)
{
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(claims, name);
    if (c == NULL)
        return 0;
    if (!cJSON_IsNumber(c) || !isfinite(c->valuedouble) ||
        fabs(c->valuedouble) > 9007199254740992.0)
        return -1;
    *out = c->valuedouble;
    return 1;
}

static jwt_err check_times(const jwt_config *cfg, const cJSON *claims,
                           long long now_s, principal *out)
{
    double exp, nbf, now = (double)now_s, leeway = cfg->leeway_s > 0 ? cfg->leeway_s : 0;

    if (numeric_date(claims, "exp", &exp) != 1)
        return JWT_BAD_CLAIMS;
    int has_nbf = numeric_date(claims, "nbf", &nbf);
    if (has_nbf < 0)
        return JWT_BAD_CLAIMS;
    /* "The current time MUST be before" exp: at exp it has expired. */
    if (now >= exp + leeway)
        return JWT_EXPIRED;
    if (has_nbf && now + leeway < nbf)
        return JWT_NOT_YET_VALID;
    out->exp = (long long)floor(exp);
    return JWT_OK;
}

static jwt_err check_issuer(const jwt_config *cfg, const cJSON *claims)
{
    if (cfg->issuer == NULL || cfg->issuer[0] == '\0')
        return JWT_OK;
    const char *iss = json_get_string(claims, "iss");
    return iss != NULL && strcmp(iss, cfg->issuer) == 0 ? JWT_OK : JWT_BAD_ISSUER;
}

/* "aud" is one string or an array of strings (RFC 7519 section 4.1.3). */
static jwt_err check_audience(const jwt_config *cfg, const cJSON *claims)
{
    if (cfg->audience == NULL || cfg->audience[0] == '\0')
        return JWT_OK;
    const cJSON *aud = cJSON_GetObjectItemCaseSensitive(claims, "aud");
    if (cJSON_IsString(aud))
        return strcmp(aud->valuestring, cfg->audience) == 0 ? JWT_OK : JWT_BAD_AUDIENCE;
    if (!cJSON_IsArray(aud))
        return JWT_BAD_AUDIENCE;
    int found = 0;
    for (const cJSON *a = aud->child; a != NULL; a = a->next) {
        if (!cJSON_IsString(a))
            return JWT_BAD_AUDIENCE;
        if (strcmp(a->valuestring, cfg->audience) == 0)
            found = 1;
    }
    return found ? JWT_OK : JWT_BAD_AUDIENCE;
}

/* The subject goes into logs and rate-limit keys: 1..127 bytes, no
 * control characters. */
static int valid_subject(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > sizeof(((principal *)0)->sub) - 1)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7F)
            return 0;
    }
    return 1;
}

/* A tenant id becomes part of Redis keys and SQL parameters:
 * [A-Za-z0-9._-]{1,64}. */
static int valid_tenant_id(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* The ROLE_* bit for the role name (len bytes), or 0 for an unknown one. */
static unsigned role_bit(const char *name, size_t len)
{
    static const struct { const char *name; unsigned bit; } roles[] = {
        { "admin", ROLE_ADMIN }, { "operator", ROLE_OPERATOR },
        { "user", ROLE_USER },   { "viewer", ROLE_VIEWER },
    };
    for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++)
        if (strlen(roles[i].name) == len && memcmp(roles[i].name, name, len) == 0)
            return roles[i].bit;
    return 0;
}

unsigned principal_role_bits(const char *names)
{
    unsigned bits = 0;
    const char *p = names ? names : "";
    while (*p != '\0') {
        while (*p == ' ')
            p++;
        const char *start = p;
        while (*p != '\0' && *p != ' ')
            p++;
        if (p > start)
            bits |= role_bit(start, (size_t)(p - start));
    }
    return bits;
}

/* Reads "roles": an array of names or one space-separated string. Unknown
 * names are skipped (an issuer may know roles we do not); at least one
 * known role is needed. Returns the bits, or 0 when none or malformed. */
static unsigned parse_roles(const cJSON *claims)
{
    const cJSON *roles = cJSON_GetObjectItemCaseSensitive(claims, "roles");
    unsigned bits = 0;

    if (cJSON_IsString(roles))
        return principal_role_bits(roles->valuestring);
    if (!cJSON_IsArray(roles))
        return 0;
    for (const cJSON *r = roles->child; r != NULL; r = r->next) {
        if (!cJSON_IsString(r))
            return 0;
        bits |= role_bit(r->valuestring, strlen(r->valuestring));
    }
    return bits;
}

static jwt_err read_identity(const cJSON *claims, principal *out)
{
    const char *sub = json_get_string(claims, "sub");
    if (sub == NULL || !valid_subject(sub))
        return JWT_BAD_CLAIMS;
    const char *tenant = json_get_string(claims, "tenant_id");
    if (tenant == NULL || !valid_tenant_id(tenant))
        return JWT_BAD_CLAIMS;
    unsigned roles = parse_roles(claims);
    if (roles == 0)
        return JWT_BAD_CLAIMS;

    const cJSON *scope = cJSON_GetObjectItemCaseSensitive(claims, "scope");
    if (scope != NULL && (!cJSON_IsString(scope) ||
                          strlen(scope->valuestring) >= sizeof out->scope))
        return JWT_BAD_CLAIMS;

    /* Lengths were checked above, so these copies always fit. */
    strcpy(out->sub, sub);
    strcpy(out->tenant_id, tenant);
    out->roles = roles;
    if (scope != NULL)
        strcpy(out->scope, scope->valuestring);
    return JWT_OK;
}

jwt_err jwt_verify(const jwt_config *cfg, const char *token, size_t len,
                   long long now_s, principal *out)
{
    if (len > JWT_MAX_TOKEN_BYTES)
        return JWT_TOO_LARGE;
    if (cfg == NULL || token == NULL || out == NULL)
        return JWT_MALFORMED;
    memset(out, 0, sizeof *out);
    /* A malformed pin admits nothing. */
    unsigned pinned = alg_mask(cfg->alg);
    if (pinned == 0)
        return JWT_BAD_ALG;

    jwt_parts parts;
    if (split_token(token, len, &parts) != 0)
        return JWT_MALFORMED;

    unsigned char buf[JWT_DECODED_MAX];
    bool shared;
    cJSON *header = header_object(parts.header, parts.header_len, buf, &shared);
    if (header == NULL)
        return JWT_MALFORMED;
    jwt_header h;
    memset(&h, 0, sizeof h);
    jwt_err rc = check_header(pinned, header, &h);
    if (!shared)
        cJSON_Delete(header);
    if (rc != JWT_OK)
        return rc;

    if ((rc = check_signature(cfg, &h, token, &parts)) != JWT_OK)
        return rc;

    cJSON *claims = decode_json_object(parts.payload, parts.payload_len, buf);
    if (claims == NULL)
        return JWT_MALFORMED;
    if ((rc = check_times(cfg, claims, now_s, out)) == JWT_OK &&
        (rc = check_issuer(cfg, claims)) == JWT_OK &&
        (rc = check_audience(cfg, claims)) == JWT_OK)
        rc = read_identity(claims, out);
    cJSON_Delete(claims);
    return rc;
}

const char *jwt_strerror(jwt_err err)
{
    switch (err) {
    case JWT_OK:            return "ok";
    case JWT_TOO_LARGE:     return "token too large";
    case JWT_MALFORMED:     return "malformed token";
    case JWT_BAD_ALG:       return "token algorithm not accepted";
    case JWT_BAD_SIGNATURE: return "invalid token signature";
    case JWT_EXPIRED:       return "token expired";
    case JWT_NOT_YET_VALID: return "token not yet valid";
    case JWT_BAD_ISSUER:    return "token issuer not accepted";
    case JWT_BAD_AUDIENCE:  return "token audience not accepted";
    case JWT_BAD_CLAIMS:    return "token claims missing or malformed";
    case JWT_UNKNOWN_KID:   return "token key id (kid) not known";
    case JWT_KID_REQUIRED:  return "token has no key id (kid) and several keys could verify it";
    }
    return "unknown token error";
}

bool principal_has_scope(const principal *p, const char *want)
{
    if (p == NULL || want == NULL)
        return false;
    size_t want_len = strlen(want);
    if (want_len == 0 || strchr(want, ' ') != NULL)
        return false;

    const char *s = p->scope;
    while (*s != '\0') {
        while (*s == ' ')
            s++;
        const char *start = s;
        while (*s != '\0' && *s != ' ')
            s++;
        if ((size_t)(s - start) == want_len && memcmp(start, want, want_len) == 0)
            return true;
    }
    return false;
}

/* --- signing with a private key (tools and tests) ------------------------ */

/* Joins header and claims, base64url-encoded, with a dot. Caller frees. */
static char *signing_input(const char *header_json, const char *claims_json)
{
    char *h = b64url_encode((const unsigned char *)header_json, strlen(header_json));
    char *c = b64url_encode((const unsigned char *)claims_json, strlen(claims_json));
    char *out = NULL;
    if (h != NULL && c != NULL && (out = malloc(strlen(h) + 1 + strlen(c) + 1)) != NULL)
        sprintf(out, "%s.%s", h, c);
    free(h);
    free(c);
    return out;
}

/* Writes the signature of hash with key into sig (*sig_len bytes). */
static int sign_hash(mbedtls_pk_context *key, const char *alg, const unsigned char *hash,
                     unsigned char *sig, size_t *sig_len, mbedtls_ctr_drbg_context *drbg)
{
    if (strcmp(alg, "RS256") == 0) {
        if (mbedtls_pk_get_len(key) > RSA_SIG_MAX)
            return -1;
        return mbedtls_pk_sign(key, MBEDTLS_MD_SHA256, hash, SHA256_BYTES, sig, sig_len,
                               mbedtls_ctr_drbg_random, drbg) == 0 ? 0 : -1;
    }
    /* ES256: deterministic (RFC 6979) r and s, each written as 32 bytes. */
    mbedtls_ecp_keypair *ec = mbedtls_pk_ec(*key);
    mbedtls_mpi r, s;
    mbedtls_mpi_init(&r);
    mbedtls_mpi_init(&s);
    int rc = mbedtls_ecdsa_sign_det_ext(&ec->grp, &r, &s, &ec->d, hash, SHA256_BYTES,
                                        MBEDTLS_MD_SHA256, mbedtls_ctr_drbg_random, drbg);
    if (rc == 0)
        rc = mbedtls_mpi_write_binary(&r, sig, ES256_SIG_BYTES / 2);
    if (rc == 0)
        rc = mbedtls_mpi_write_binary(&s, sig + ES256_SIG_BYTES / 2, ES256_SIG_BYTES / 2);
    mbedtls_mpi_free(&r);
    mbedtls_mpi_free(&s);
    *sig_len = ES256_SIG_BYTES;
    return rc == 0 ? 0 : -1;
}

char *jwt_sign_pk(const char *header_json, const char *claims_json,
                  mbedtls_pk_context *key, char *err, size_t err_size)
{
    const char *alg = jwt_alg_for_key(key);
    if (alg == NULL || header_json == NULL || claims_json == NULL) {
        snprintf(err, err_size, "only RSA and P-256 EC private keys can sign");
        return NULL;
    }
    if (!mbedtls_pk_can_do(key, MBEDTLS_PK_RSA) && !mbedtls_pk_can_do(key, MBEDTLS_PK_ECDSA)) {
        snprintf(err, err_size, "the key cannot sign");
        return NULL;
    }
    static const char pers[] = "agentgate-jwt-sign";
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    mbedtls_entropy_init(&entropy);
    mbedtls_ctr_drbg_init(&drbg);
    char *input = signing_input(header_json, claims_json), *sig_text = NULL, *token = NULL;
    unsigned char hash[SHA256_BYTES], sig[RSA_SIG_MAX + 4];
    size_t sig_len = 0;

    if (input == NULL) {
        snprintf(err, err_size, "out of memory");
    } else if (mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy,
                                     (const unsigned char *)pers, sizeof pers - 1) != 0 ||
               sha256(input, strlen(input), hash) != 0 ||
               sign_hash(key, alg, hash, sig, &sig_len, &drbg) != 0) {
        snprintf(err, err_size, "signing failed (is it a private key?)");
    } else if ((sig_text = b64url_encode(sig, sig_len)) == NULL ||
               (token = malloc(strlen(input) + 1 + strlen(sig_text) + 1)) == NULL) {
        snprintf(err, err_size, "out of memory");
    } else {
        sprintf(token, "%s.%s", input, sig_text);
    }
    free(input);
    free(sig_text);
    mbedtls_ctr_drbg_free(&drbg);
    mbedtls_entropy_free(&entropy);
    return token;
}
