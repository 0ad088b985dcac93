/* SPDX-License-Identifier: MIT */
/*
 * abi: a small, strict decoder of Ethereum ABI return data, for the one shape
 * the registry contract returns: a single string[]. Only the canonical
 * encoding (what solc and every mainstream encoder produce) is accepted: each
 * offset exactly where the previous value ended, every word's unused high
 * bytes and every padding byte zero, nothing after the last string. So one
 * list has one encoding, and no offset can point back into or across others.
 */
#ifndef P2PWG_ABI_H
#define P2PWG_ABI_H

#include <stddef.h>
#include <stdint.h>

/* One decoded string: bytes inside the caller's buffer, not NUL-terminated. */
struct abi_str {
	const uint8_t *p;
	size_t len;
};

/*
 * Decode len bytes of d as the return data of a function returning string[].
 * Refused (-EINVAL, one-line reason in why): not canonical as above, more
 * than max_n strings, a string longer than max_len bytes. On success *out
 * (malloc'd array, free() it; never NULL) holds *n strings pointing into d.
 * 0, -EINVAL or -ENOMEM.
 */
int abi_decode_strings(const uint8_t *d, size_t len, size_t max_n, size_t max_len,
		       struct abi_str **out, size_t *n, char *why, size_t whylen);

#endif
