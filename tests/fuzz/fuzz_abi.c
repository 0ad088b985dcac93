// SPDX-License-Identifier: MIT
/* The string[] decoder, on whatever return data an RPC endpoint hands over. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "abi.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct abi_str *s;
	size_t n, end = 0;
	char why[256];

	if (abi_decode_strings(data, size, 245, 4096, &s, &n, why, sizeof(why))) {
		if (s || n || !memchr(why, '\0', sizeof(why)))
			__builtin_trap();
		return 0;
	}
	if (!s || n > 245)
		__builtin_trap();
	/* Canonical: the strings lie in order, inside the data, none overlapping. */
	for (size_t i = 0; i < n; i++) {
		size_t at = (size_t)(s[i].p - data);

		if (s[i].p < data || at < end || s[i].len > 4096 || at + s[i].len > size)
			__builtin_trap();
		end = at + s[i].len;
	}
	free(s);
	return 0;
}
