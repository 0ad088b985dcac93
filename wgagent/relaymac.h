/* SPDX-License-Identifier: MIT */
/*
 * relaymac: the agent's answer to RelayAuth. A MAC over a challenge chosen by
 * controld, keyed by a KDF of the static X25519 secret between this node's
 * private key and a peer's public key; only that peer can compute the same,
 * and the private key never leaves the agent.
 */
#ifndef P2PWG_RELAYMAC_H
#define P2PWG_RELAYMAC_H

#include <stddef.h>
#include <stdint.h>

#define RELAYMAC_LEN 32
#define RELAYMAC_CHALLENGE_MIN 16
#define RELAYMAC_CHALLENGE_MAX 128

/* mac = HMAC-SHA256(pairkey_derive(priv, peer, "p2pwg relay auth v1"), challenge).
 * 0; -EINVAL for a challenge length outside MIN..MAX or a low-order peer key
 * (an all-zero shared secret); -EIO if libcrypto fails. */
int relaymac_compute(const uint8_t priv[32], const uint8_t peer[32], const uint8_t *challenge,
		     size_t len, uint8_t mac[RELAYMAC_LEN]);

#endif
