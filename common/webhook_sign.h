/*
 * webhook_sign.h - Standard Webhooks signatures (standardwebhooks.com):
 * a secret "whsec_<base64 key>" signs "{id}.{timestamp}.{body}" with
 * HMAC-SHA256, and the webhook-signature header carries "v1,<base64 MAC>".
 * The receiver recomputes it with the same secret and compares.
 */
#ifndef AG_WEBHOOK_SIGN_H
#define AG_WEBHOOK_SIGN_H

#include <stddef.h>

/* "v1," + base64 of 32 bytes + NUL. */
#define WEBHOOK_SIGNATURE_MAX 64

/*
 * Writes the webhook-signature header's value for message id msg_id,
 * timestamp ts (seconds since the epoch, as sent in webhook-timestamp) and
 * body (body_len bytes) into out. secret is "whsec_" followed by the
 * base64 key (the prefix may be absent). Returns 0, or -1 when the secret
 * is not valid base64 or a key cannot be used (out is then empty).
 */
int webhook_sign(const char *secret, const char *msg_id, long long ts, const char *body,
                 size_t body_len, char out[WEBHOOK_SIGNATURE_MAX]);

#endif
