/* SPDX-License-Identifier: MIT */
/*
 * keyfile: the node's X25519 key pair. The private key lives in
 * <state dir>/private.key (base64, as `wg genkey` writes it, mode 0600) and
 * never leaves the agent; only the public key is handed out.
 */
#ifndef P2PWG_KEYFILE_H
#define P2PWG_KEYFILE_H

#include <stdbool.h>
#include <stdint.h>

#define KEYFILE_NAME "private.key"

/* Load the private key from dir, or generate and store one (creating dir with
 * mode 0700) if there is none. *created tells which. Refuses (-EPERM) a key
 * file that another user owns or that group or others may read, and -EINVAL
 * one that does not hold a key. 0 or -errno. */
int keyfile_load_or_create(const char *dir, uint8_t priv[32], uint8_t pub[32], bool *created);

/* Derive the public key of a private key. 0 or -EINVAL. */
int keyfile_public(const uint8_t priv[32], uint8_t pub[32]);

/* Generate a new clamped private key from getrandom(). 0 or -errno. */
int keyfile_generate(uint8_t priv[32]);

#endif
