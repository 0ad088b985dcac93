// SPDX-License-Identifier: MIT
#include "relaymac.h"
#include "pairkey.h"

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>

#define LABEL "p2pwg relay auth v1"

int relaymac_compute(const uint8_t priv[32], const uint8_t peer[32], const uint8_t *challenge,
		     size_t len, uint8_t mac[RELAYMAC_LEN])
{
	uint8_t key[32];
	unsigned int mlen = RELAYMAC_LEN;
	int ret;

	if (len < RELAYMAC_CHALLENGE_MIN || len > RELAYMAC_CHALLENGE_MAX)
		return -EINVAL;
	ret = pairkey_derive(priv, peer, LABEL, key);
	if (ret == 0 && !HMAC(EVP_sha256(), key, sizeof(key), challenge, len, mac, &mlen))
		ret = -EIO;
	explicit_bzero(key, sizeof(key));
	return ret;
}
