// SPDX-License-Identifier: MIT
#include "b64.h"

#include <errno.h>
#include <openssl/evp.h>
#include <string.h>

char *b64_key_encode(const uint8_t key[32], char *out)
{
	EVP_EncodeBlock((unsigned char *)out, key, 32);
	out[B64_KEY_LEN] = '\0';
	return out;
}

int b64_key_decode(const char *in, uint8_t key[32])
{
	unsigned char buf[33];

	if (!in || strlen(in) != B64_KEY_LEN || in[43] != '=' || in[42] == '=')
		return -EINVAL;
	/* EVP_DecodeBlock keeps the padding bytes: 44 chars always give 33. */
	if (EVP_DecodeBlock(buf, (const unsigned char *)in, B64_KEY_LEN) != 33)
		return -EINVAL;
	memcpy(key, buf, 32);
	explicit_bzero(buf, sizeof(buf));
	return 0;
}
