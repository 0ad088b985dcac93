/* SPDX-License-Identifier: MIT */
/*
 * pairkey: a key only this node and one peer can compute, from the static
 * X25519 secret between this node's private key and the peer's public key,
 * bound to a purpose by a label. The relay's proof of membership and the path
 * checks' tags are keyed by it; the private key never leaves the agent.
 */
#ifndef P2PWG_PAIRKEY_H
#define P2PWG_PAIRKEY_H

#include <stdint.h>

/* out = HMAC-SHA256(key = X25519(priv, peer), label). 0; -EINVAL for a
 * low-order peer key (libcrypto refuses an all-zero secret) or a bad key. */
int pairkey_derive(const uint8_t priv[32], const uint8_t peer[32], const char *label,
		   uint8_t out[32]);

#endif
