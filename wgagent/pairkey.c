// SPDX-License-Identifier: MIT
#include "pairkey.h"

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>

int pairkey_derive(const uint8_t priv[32], const uint8_t peer[32], const char *label,
		   uint8_t out[32])
{
	EVP_PKEY *mine = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, priv, 32);
	EVP_PKEY *theirs = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, peer, 32);
	EVP_PKEY_CTX *ctx = mine ? EVP_PKEY_CTX_new(mine, NULL) : NULL;
	uint8_t shared[32];
	size_t len = sizeof(shared);
	unsigned int mlen = 32;
	int ret = -EINVAL;

	/* libcrypto refuses an all-zero shared secret (RFC 7748 section 6.1):
	 * a low-order key would give every node the same secret. */
	if (!theirs || !ctx || EVP_PKEY_derive_init(ctx) != 1 ||
	    EVP_PKEY_derive_set_peer(ctx, theirs) != 1 || EVP_PKEY_derive(ctx, shared, &len) != 1 ||
	    len != 32)
		goto out;
	if (!HMAC(EVP_sha256(), shared, 32, (const uint8_t *)label, strlen(label), out, &mlen) ||
	    mlen != 32)
		goto out;
	ret = 0;
out:
	explicit_bzero(shared, sizeof(shared));
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(mine);
	EVP_PKEY_free(theirs);
	return ret;
}
