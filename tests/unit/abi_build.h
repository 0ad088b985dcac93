/* SPDX-License-Identifier: MIT */
/* Test helper: the canonical ABI encoding of a string[] return value, as solc
 * produces it, so tests can build lists and then break them one byte at a time. */
#ifndef P2PWG_TEST_ABI_BUILD_H
#define P2PWG_TEST_ABI_BUILD_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static inline void abi_put_word(uint8_t *w, uint64_t v)
{
	memset(w, 0, 32);
	for (int i = 0; i < 8; i++)
		w[31 - i] = (uint8_t)(v >> (8 * i));
}

/* n strings s[i] of lens[i] bytes (lens NULL: strlen); malloc'd, *len set. */
static inline uint8_t *abi_build(const char *const *s, const size_t *lens, size_t n, size_t *len)
{
	size_t total = 64 + 32 * n, at;
	uint8_t *d;

	for (size_t i = 0; i < n; i++)
		total += 32 + ((lens ? lens[i] : strlen(s[i])) + 31) / 32 * 32;
	d = calloc(1, total);
	abi_put_word(d, 32);
	abi_put_word(d + 32, n);
	at = 32 * n;
	for (size_t i = 0; i < n; i++) {
		size_t l = lens ? lens[i] : strlen(s[i]);

		abi_put_word(d + 64 + 32 * i, at);
		abi_put_word(d + 64 + at, l);
		memcpy(d + 64 + at + 32, s[i], l);
		at += 32 + (l + 31) / 32 * 32;
	}
	*len = total;
	return d;
}

#endif
