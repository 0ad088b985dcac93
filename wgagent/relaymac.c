// SPDX-License-Identifier: MIT
#include "relaymac.h"

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>

#define LABEL "p2pwg relay auth v1"

int relaymac_compute(const uint8_t priv[32], const uint8_t peer[32], const uint8_t *challenge,
		     size_t len, uint8_t mac[RELAYMAC_LEN])
{
	EVP_PKEY *mine = NULL, *theirs = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	uint8_t shared[32], key[32];
	size_t slen = sizeof(shared);
	unsigned int klen = sizeof(key), mlen = RELAYMAC_LEN;
	int ret = -EIO;

	if (len < RELAYMAC_CHALLENGE_MIN || len > RELAYMAC_CHALLENGE_MAX)
		return -EINVAL;
	mine = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, priv, 32);
	theirs = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, peer, 32);
	if (!mine || !theirs)
		goto out;
	ctx = EVP_PKEY_CTX_new(mine, NULL);
	if (!ctx || EVP_PKEY_derive_init(ctx) != 1 || EVP_PKEY_derive_set_peer(ctx, theirs) != 1)
		goto out;
	/* libcrypto refuses an all-zero result (RFC 7748 section 6.1): a
	 * low-order key would give every node the same secret. */
	if (EVP_PKEY_derive(ctx, shared, &slen) != 1 || slen != sizeof(shared)) {
		ret = -EINVAL;
		goto out;
	}
	if (!HMAC(EVP_sha256(), LABEL, sizeof(LABEL) - 1, shared, sizeof(shared), key, &klen) ||
	    !HMAC(EVP_sha256(), key, sizeof(key), challenge, len, mac, &mlen))
		goto out;
	ret = 0;
out:
	explicit_bzero(shared, sizeof(shared));
	explicit_bzero(key, sizeof(key));
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(mine);
	EVP_PKEY_free(theirs);
	return ret;
}
