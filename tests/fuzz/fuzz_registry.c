// SPDX-License-Identifier: MIT
/* The JSON-RPC answers of a registry's endpoint (eth_blockNumber, eth_call),
 * and the list eth_call's bytes make, on whatever the endpoint sends. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "registry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct peerlist *l;
	uint8_t *bytes;
	uint64_t block;
	size_t n;
	char why[256];

	if (registry_parse_block((const char *)data, size, 1, &block, why, sizeof(why)) &&
	    !memchr(why, '\0', sizeof(why)))
		__builtin_trap();
	if (registry_parse_call((const char *)data, size, 1, &bytes, &n, why, sizeof(why))) {
		if (bytes)
			__builtin_trap();
		return 0;
	}
	for (int allow_http = 0; allow_http < 2; allow_http++) {
		if (registry_parse_list(bytes, n, allow_http, &l, why, sizeof(why))) {
			if (l)
				__builtin_trap();
			continue;
		}
		if (l->n > PEERLIST_MAX_PEERS)
			__builtin_trap();
		for (size_t i = 0; i < l->n; i++) {
			if (!l->urls[i] != !!l->why[i])
				__builtin_trap();
			if (l->urls[i] && strncmp(l->urls[i], allow_http ? "http" : "https://",
						  allow_http ? 4 : 8))
				__builtin_trap();
		}
		peerlist_free(l);
	}
	free(bytes);
	return 0;
}
