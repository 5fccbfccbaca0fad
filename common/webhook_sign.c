/*
 * webhook_sign.c - Standard Webhooks signing (see webhook_sign.h).
 *
 * The signed content is id, timestamp and body joined by dots, fed to
 * the HMAC in three pieces so the body is never copied.
 */
#include <stdio.h>
#include <string.h>
#include <mbedtls/base64.h>
#include <mbedtls/md.h>

#include "webhook_sign.h"

#define WEBHOOK_KEY_MAX 128   /* decoded bytes; the platform's keys are 32 */

int webhook_sign(const char *secret, const char *msg_id, long long ts, const char *body,
                 size_t body_len, char out[WEBHOOK_SIGNATURE_MAX])
{
    out[0] = '\0';
    if (strncmp(secret, "whsec_", 6) == 0) secret += 6;
    unsigned char key[WEBHOOK_KEY_MAX];
    size_t key_len = 0;
    if (mbedtls_base64_decode(key, sizeof key, &key_len, (const unsigned char *)secret,
                              strlen(secret)) != 0 || key_len == 0)
        return -1;
    char ts_s[24];
    int ts_n = snprintf(ts_s, sizeof ts_s, "%lld", ts);
    const mbedtls_md_info_t *md = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
    mbedtls_md_context_t ctx;
    mbedtls_md_init(&ctx);
    unsigned char mac[32];
    int ok = md != NULL && mbedtls_md_setup(&ctx, md, 1) == 0
          && mbedtls_md_hmac_starts(&ctx, key, key_len) == 0
          && mbedtls_md_hmac_update(&ctx, (const unsigned char *)msg_id, strlen(msg_id)) == 0
          && mbedtls_md_hmac_update(&ctx, (const unsigned char *)".", 1) == 0
          && mbedtls_md_hmac_update(&ctx, (const unsigned char *)ts_s, (size_t)ts_n) == 0
          && mbedtls_md_hmac_update(&ctx, (const unsigned char *)".", 1) == 0
          && mbedtls_md_hmac_update(&ctx, (const unsigned char *)body, body_len) == 0
          && mbedtls_md_hmac_finish(&ctx, mac) == 0;
    mbedtls_md_free(&ctx);
    memset(key, 0, sizeof key);
    if (!ok) return -1;
    size_t n = 0;
    memcpy(out, "v1,", 3);
    if (mbedtls_base64_encode((unsigned char *)out + 3, WEBHOOK_SIGNATURE_MAX - 3, &n, mac,
                              sizeof mac) != 0) {
        out[0] = '\0';
        return -1;
    }
    out[3 + n] = '\0';
    return 0;
}
