// SPDX-License-Identifier: MIT
#include "abi.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#include "reason.h"

#define WORD 32

/* The word at off as a number, if its high 24 bytes are zero (any value we
 * accept fits in 64 bits; a larger one is never canonical here). */
static bool word_at(const uint8_t *d, size_t len, size_t off, uint64_t *v)
{
	if (off > len || len - off < WORD)
		return false;
	for (size_t i = 0; i < WORD - 8; i++)
		if (d[off + i])
			return false;
	*v = 0;
	for (size_t i = WORD - 8; i < WORD; i++)
		*v = *v << 8 | d[off + i];
	return true;
}

static size_t padded(size_t n)
{
	return (n + WORD - 1) / WORD * WORD;
}

int abi_decode_strings(const uint8_t *d, size_t len, size_t max_n, size_t max_len,
		       struct abi_str **out, size_t *n, char *why, size_t whylen)
{
	struct abi_str *s = NULL;
	uint64_t head, count, off, slen;
	size_t base, at;
	int ret = -EINVAL;

	*out = NULL;
	*n = 0;
	if (len == 0) {
		reason_set(why, whylen, "empty return data (no contract at that address?)");
		goto out;
	}
	if (len % WORD) {
		reason_set(why, whylen, "return data of %zu bytes, not whole 32-byte words", len);
		goto out;
	}
	/* One dynamic return value: its head is the offset of its tail, 0x20. */
	if (!word_at(d, len, 0, &head) || head != WORD) {
		reason_set(why, whylen, "not a single string[] (first word is not 0x20)");
		goto out;
	}
	if (!word_at(d, len, WORD, &count)) {
		reason_set(why, whylen, "no array length");
		goto out;
	}
	if (count > max_n) {
		reason_set(why, whylen, "more than %zu entries", max_n);
		goto out;
	}
	base = 2 * WORD; /* element offsets count from here */
	if ((len - base) / WORD < count) {
		reason_set(why, whylen, "%llu entries but only %zu bytes",
			   (unsigned long long)count, len);
		goto out;
	}
	ret = -ENOMEM;
	s = calloc(count ? count : 1, sizeof(*s));
	if (!s)
		goto out;
	ret = -EINVAL;
	at = count * WORD; /* where string 0 must start, relative to base */
	for (size_t i = 0; i < count; i++) {
		if (!word_at(d, len, base + i * WORD, &off) || off != at) {
			reason_set(why, whylen,
				   "entry %zu: offset is not where the one before ended", i);
			goto out;
		}
		if (!word_at(d, len, base + at, &slen)) {
			reason_set(why, whylen, "entry %zu: no string length", i);
			goto out;
		}
		if (slen > max_len) {
			reason_set(why, whylen, "entry %zu: string longer than %zu bytes", i,
				   max_len);
			goto out;
		}
		at += WORD;
		if (len - base - at < padded(slen)) {
			reason_set(why, whylen, "entry %zu: string runs past the end", i);
			goto out;
		}
		s[i] = (struct abi_str){.p = d + base + at, .len = slen};
		for (size_t k = slen; k < padded(slen); k++)
			if (d[base + at + k]) {
				reason_set(why, whylen, "entry %zu: padding is not zero", i);
				goto out;
			}
		at += padded(slen);
	}
	if (base + at != len) {
		reason_set(why, whylen, "%zu bytes after the last entry", len - base - at);
		goto out;
	}
	*out = s;
	*n = count;
	s = NULL;
	ret = 0;
out:
	if (ret == -ENOMEM)
		reason_set(why, whylen, "out of memory");
	free(s);
	return ret;
}
