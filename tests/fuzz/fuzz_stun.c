// SPDX-License-Identifier: MIT
/* The STUN response parser, on bytes any server (or spoofer) may send. */
#include <stdint.h>
#include <string.h>

#include "stun.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sockaddr_storage mapped;
	uint8_t txid[STUN_TXID_LEN] = { 0 };

	/* Use the input's own transaction id, so parsing goes past that check. */
	if (size >= STUN_HEADER_LEN)
		memcpy(txid, data + 8, STUN_TXID_LEN);
	stun_parse_response(data, size, txid, &mapped);
	return 0;
}
