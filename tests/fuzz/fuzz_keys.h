/*
 * fuzz_keys.h - the fixed signing keys of the JWT and JWKS fuzz targets:
 * an RSA 2048 and a P-256 key made for these tests only (they sign
 * nothing but fuzz inputs), and the public JWKS built from them, so that
 * every run verifies against the same key set.
 */
#ifndef AG_FUZZ_KEYS_H
#define AG_FUZZ_KEYS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <mbedtls/pk.h>

#include "jwks.h"

static const char FUZZ_RSA_PEM[] =
    "-----BEGIN RSA PRIVATE KEY-----\n"
    "MIIEowIBAAKCAQEAsdn415FjdORAjnqs5ZP3C8UDUUrxRIIaI+624smLK9HqFjxQ\n"
    "WK4pmpdqsNXUcA6fGchBa/DG/qlPY5qifbQBeO9YBBMBNj+8yuYtX/DcRYMfJsxQ\n"
    "+Oqffs+81D3b9C8xETWR1noCUb8zlNFbqUZdXftALgTg3fuMu0t/hyMyFwqrEOb1\n"
    "KyT452soiLODq5pJTvVs3DHcE5NDgDcd9vXWoHa1pHAdIbq1RiFxR+Oa3AEYST5v\n"
    "R76BSY85AT2nMTVqteLWEDthFCfjJ2H2JL/4xkUvyIQq3jCZTbO9lMeFwbJawnOM\n"
    "bDwpKj1y1elOKOnlCMkBdv9eYuPBkULQeBblxQIDAQABAoIBABN1gGMBnsqi0Kdm\n"
    "J7Wkt1J7102VMAmpXHfS/gKZP5dnS7/sEHRrddTavUsk0i4Cg4jcHsBTI0qotq10\n"
    "tVOglsqnEU+8zpSja6Idhhhpr4gRfR6PG0rozNOgog3syLyST0GNRWwchFVyYI/n\n"
    "SiqerseCHncKhJn1FGRHsefUw32+t+A/I/W2xkgCCzDF33LZohX2vmxjCD/LhZ+7\n"
    "sXlqPcM4mn7qEfecwdGwrqByMUsazeZt+pQVy688snem2xkS62iI+ewkygWb3umF\n"
    "5Vmp6BI1WoErJGVnvx6i/0INcudocDucR26HJenwoMaXGz4VtNgCGGjVkkfSQVCD\n"
    "9QSKki8CgYEA1r9vLOD6aPtxiQdSX3CD72tPoejF7OdJT+S7iM21rmR+ZlUv5AG6\n"
    "FYCLK8i/z6vy2CyAa0aDs2B4Id8SZ1pQzGzmFSgqFcbIqcTQovRXF/W4eY+96OCp\n"
    "UEvXdvOw/kTnGjHJ3Dw07F7NGpgafhCPK2rsgUnal2Pp7xzNlYDy5OMCgYEA1AQZ\n"
    "9+vQ1/nQ2DBHzZw2ExI6DHWFS6ouhIMRuCUjIA9UYIj6d0sRlb3SYc2525mWOH/a\n"
    "2DbXKzK/T2MZWpUlwcY7xM/D0LSt1r6ht3SgcJBg2DD35hwn0U2dllTySx7r7qU+\n"
    "mVz5Wf7iOdDQep4888j9xxm9ipeiuP1mhR4/szcCgYAZhcUD03VPdtrmi0059Jhp\n"
    "oxpixtSHNHHdIfU77B70rBLtvKAlfCMOnSltOb26Q9hn4tocZdQPRJ7if62jRPOn\n"
    "aCXsS8q8rdR5gN+/DkUvns+e+vt6KwFUfr8L7yiQ/8VrspEoMKulkBrWV0+GvhcV\n"
    "9O5I62skZQaPmZ/BbgLwOwKBgF+UbcSX2fHT3HPp6CToXHRijirZvDrtQMVadV2H\n"
    "2Hr2jjpq5kdrX0Uba0HORhCa/97+vMEmkAAYg6ida2uru3bNEFrcs1FectRR4oPb\n"
    "Hw0/+XjdMpTZcpXoILgKGaUGDqTqd/sZsAwDXSdlXOc6eQ4KOWZN02YskB5HlrVC\n"
    "esMnAoGBAJMfVBTEPWf/BYNp7nR49laChAcU+TIr4WD+iZy2ySgUiW0vOhiV8gJx\n"
    "vaN84//TrUcNeEaFb8tfXrCiRdBDrqk6xu77GOBY4wwRsc3pCGKuf/bAr4gB/TE8\n"
    "JeCbUtpmaxZabjI1L9kyoNIjWHzO5UGU3o5SFiVz8rOPR0XGr/BV\n"
    "-----END RSA PRIVATE KEY-----\n";

static const char FUZZ_EC_PEM[] =
    "-----BEGIN EC PRIVATE KEY-----\n"
    "MHcCAQEEIEPrrD5QxL1b/iMZqPo8IgEVxruFvCRSGxe+eWhKqYitoAoGCCqGSM49\n"
    "AwEHoUQDQgAEFjYpvq70YAs46ZINlt9n755SAsoRLul0y/XZowmerKPGmfg5UoCG\n"
    "dnKHm37k6PQYD6I1nvFZ+BTOQZy0bvSSIA==\n"
    "-----END EC PRIVATE KEY-----\n";

/* Loads pem into key; aborts when it cannot (the harness is broken). */
static inline void fuzz_load_key(mbedtls_pk_context *key, const char *pem, size_t size)
{
    mbedtls_pk_init(key);
    if (mbedtls_pk_parse_key(key, (const unsigned char *)pem, size, NULL, 0) != 0) {
        fprintf(stderr, "fuzz_keys: a built-in key does not parse\n");
        abort();
    }
}

/*
 * The JWKS text holding the public halves of rsa (kid "rsa-1") and ec
 * (kid "ec-1"), malloc'd. Aborts on failure.
 */
static inline char *fuzz_jwks_text(const mbedtls_pk_context *rsa, const mbedtls_pk_context *ec)
{
    char err[160];
    char *a = jwks_export_public(rsa, "rsa-1", err, sizeof err);
    char *b = jwks_export_public(ec, "ec-1", err, sizeof err);
    if (!a || !b) { fprintf(stderr, "fuzz_keys: export failed: %s\n", err); abort(); }
    /* Each is {"keys":[K]}: splice the two key objects into one set. */
    const char *ka = strchr(a, '['), *kb = strchr(b, '[');
    const char *ea = strrchr(a, ']'), *eb = strrchr(b, ']');
    if (!ka || !kb || !ea || !eb) abort();
    size_t la = (size_t)(ea - ka - 1), lb = (size_t)(eb - kb - 1);
    char *set = malloc(la + lb + 32);
    if (!set) abort();
    snprintf(set, la + lb + 32, "{\"keys\":[%.*s,%.*s]}", (int)la, ka + 1, (int)lb, kb + 1);
    free(a);
    free(b);
    return set;
}

#endif
