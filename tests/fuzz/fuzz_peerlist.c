// SPDX-License-Identifier: MIT
/* The peer list parser, on whatever the Gist (or whoever controls it) serves. */
#include <stdint.h>
#include <string.h>

#include "peerlist.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct peerlist *l;
	char why[256];

	for (int allow_http = 0; allow_http < 2; allow_http++) {
		if (peerlist_parse((const char *)data, size, allow_http, &l, why, sizeof(why))) {
			if (l || !memchr(why, '\0', sizeof(why)))
				__builtin_trap();
			continue;
		}
		if (!l || l->n > PEERLIST_MAX_PEERS || !peerlist_equal(l, l))
			__builtin_trap();
		for (size_t i = 0; i < l->n; i++) {
			size_t len;

			/* A skipped slot keeps its position and says why. */
			if (!l->urls[i] != !!l->why[i])
				__builtin_trap();
			if (!l->urls[i])
				continue;
			len = strlen(l->urls[i]);
			if (len == 0 || len > PEERLIST_MAX_URL || strncmp(l->urls[i], "http", 4))
				__builtin_trap();
			for (size_t k = 0; k < len; k++)
				if (l->urls[i][k] <= 0x20 || l->urls[i][k] >= 0x7f)
					__builtin_trap();
			for (size_t j = 0; j < i; j++)
				if (l->urls[j] && !strcmp(l->urls[i], l->urls[j]))
					__builtin_trap();
		}
		peerlist_free(l);
	}
	return 0;
}
