/* SPDX-License-Identifier: MIT */
/* b64: WireGuard keys as standard base64 (44 characters), via libcrypto. */
#ifndef P2PWG_B64_H
#define P2PWG_B64_H

#include <stddef.h>
#include <stdint.h>

#define B64_KEY_LEN 44 /* without the terminating NUL */

/* Encode a 32-byte key into out (at least B64_KEY_LEN + 1 bytes). Returns out. */
char *b64_key_encode(const uint8_t key[32], char *out);

/* Decode exactly 44 characters of base64 holding 32 bytes. 0 or -EINVAL. */
int b64_key_decode(const char *in, uint8_t key[32]);

#endif
