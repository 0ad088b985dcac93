// SPDX-License-Identifier: MIT
/* abi: the string[] a registry contract returns, and every way it can lie. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "abi.h"
#include "abi_build.h"

static char why[256];

/* nodes() of the reference contract on anvil, holding two URLs (solc 0.8.28). */
static const char real_hex[] = "0000000000000000000000000000000000000000000000000000000000000020"
			       "0000000000000000000000000000000000000000000000000000000000000002"
			       "0000000000000000000000000000000000000000000000000000000000000040"
			       "0000000000000000000000000000000000000000000000000000000000000080"
			       "0000000000000000000000000000000000000000000000000000000000000013"
			       "68747470733a2f2f632f6e6f64652e6a736f6e00000000000000000000000000"
			       "0000000000000000000000000000000000000000000000000000000000000013"
			       "68747470733a2f2f622f6e6f64652e6a736f6e00000000000000000000000000";

static size_t unhex(const char *h, uint8_t *out)
{
	size_t n = strlen(h) / 2;

	for (size_t i = 0; i < n; i++)
		sscanf(h + 2 * i, "%2hhx", &out[i]);
	return n;
}

static void refused(const uint8_t *d, size_t len, const char *want)
{
	struct abi_str *s = (struct abi_str *)1;
	size_t n = 99;

	why[0] = '\0';
	assert_int_equal(abi_decode_strings(d, len, 245, 4096, &s, &n, why, sizeof(why)), -EINVAL);
	assert_null(s);
	assert_int_equal(n, 0);
	if (!strstr(why, want))
		fail_msg("reason \"%s\" does not contain \"%s\"", why, want);
}

static void test_what_solc_returns_decodes(void **state)
{
	uint8_t d[sizeof(real_hex) / 2];
	size_t len = unhex(real_hex, d), n;
	struct abi_str *s;

	assert_int_equal(abi_decode_strings(d, len, 245, 4096, &s, &n, why, sizeof(why)), 0);
	assert_int_equal(n, 2);
	assert_int_equal(s[0].len, 19);
	assert_memory_equal(s[0].p, "https://c/node.json", 19);
	assert_memory_equal(s[1].p, "https://b/node.json", 19);
	free(s);
}

static void test_empty_list_and_empty_strings(void **state)
{
	const char *v[] = {"", "https://a/", ""};
	size_t len, n;
	uint8_t *d = abi_build(NULL, NULL, 0, &len);
	struct abi_str *s;

	assert_int_equal(abi_decode_strings(d, len, 245, 4096, &s, &n, why, sizeof(why)), 0);
	assert_int_equal(n, 0);
	free(s);
	free(d);
	d = abi_build(v, NULL, 3, &len);
	assert_int_equal(abi_decode_strings(d, len, 245, 4096, &s, &n, why, sizeof(why)), 0);
	assert_int_equal(n, 3);
	assert_int_equal(s[0].len, 0);
	assert_int_equal(s[1].len, 10);
	assert_int_equal(s[2].len, 0);
	free(s);
	free(d);
}

/* An address without code answers eth_call with no bytes at all. */
static void test_no_contract_refused(void **state)
{
	refused((const uint8_t *)"", 0, "no contract");
}

static void test_shape_refused(void **state)
{
	const char *v[] = {"https://a/node.json"};
	size_t len;
	uint8_t *d = abi_build(v, NULL, 1, &len);

	refused(d, len - 1, "whole 32-byte words");
	refused(d, 32, "no array length");
	abi_put_word(d, 64); /* the head must point right after itself */
	refused(d, len, "0x20");
	abi_put_word(d, 32);
	d[0] = 1; /* a head of 2^248 + 32: high bytes must be zero */
	refused(d, len, "0x20");
	free(d);
}

static void test_count_bounds(void **state)
{
	const char *v[246];
	size_t len, n;
	uint8_t *d;
	struct abi_str *s;

	for (size_t i = 0; i < 246; i++)
		v[i] = "https://x/";
	d = abi_build(v, NULL, 245, &len);
	assert_int_equal(abi_decode_strings(d, len, 245, 4096, &s, &n, why, sizeof(why)), 0);
	assert_int_equal(n, 245);
	free(s);
	free(d);
	d = abi_build(v, NULL, 246, &len);
	refused(d, len, "more than 245 entries");
	free(d);
	/* A length that claims more entries than there are bytes for their offsets. */
	d = abi_build(v, NULL, 2, &len);
	abi_put_word(d + 32, 200);
	refused(d, len, "200 entries but only");
	abi_put_word(d + 32, UINT64_MAX);
	refused(d, len, "more than 245");
	free(d);
}

/* Offsets must be canonical: no aliasing, no gaps, no pointing backwards. */
static void test_offsets_canonical(void **state)
{
	const char *v[] = {"https://a/node.json", "https://b/node.json"};
	size_t len;
	uint8_t *d = abi_build(v, NULL, 2, &len);

	abi_put_word(d + 96, 64); /* entry 1 aliases entry 0 */
	refused(d, len, "entry 1: offset");
	abi_put_word(d + 96, 160); /* a gap */
	refused(d, len, "entry 1: offset");
	abi_put_word(d + 96, 128);
	abi_put_word(d + 64, 0); /* entry 0 pointing at the offsets */
	refused(d, len, "entry 0: offset");
	free(d);
}

static void test_string_bounds(void **state)
{
	const char *v[] = {"https://a/node.json"};
	size_t len, n;
	uint8_t *d = abi_build(v, NULL, 1, &len), *longer;
	struct abi_str *s;

	abi_put_word(d + 96, 33); /* runs past the end */
	refused(d, len, "past the end");
	abi_put_word(d + 96, UINT64_MAX);
	refused(d, len, "longer than 4096");
	abi_put_word(d + 96, 19);
	d[96] = 0x80; /* 2^255 + 19: no wrap-around into a small length */
	refused(d, len, "no string length");
	abi_put_word(d + 96, 19);
	d[128 + 19] = 'x'; /* a byte hidden in the padding */
	refused(d, len, "padding is not zero");
	d[128 + 19] = 0;
	assert_int_equal(abi_decode_strings(d, len, 245, 4096, &s, &n, why, sizeof(why)), 0);
	free(s);
	longer = calloc(1, len + 32); /* a word after the last entry */
	memcpy(longer, d, len);
	refused(longer, len + 32, "32 bytes after the last entry");
	free(longer);
	free(d);
}

static void test_string_length_cap(void **state)
{
	static char big[4098];
	const char *v[] = {big};
	size_t len, n;
	uint8_t *d;
	struct abi_str *s;

	memset(big, 'a', 4096);
	d = abi_build(v, NULL, 1, &len);
	assert_int_equal(abi_decode_strings(d, len, 245, 4096, &s, &n, why, sizeof(why)), 0);
	assert_int_equal(s[0].len, 4096);
	free(s);
	free(d);
	big[4096] = 'a';
	d = abi_build(v, NULL, 1, &len);
	refused(d, len, "longer than 4096");
	free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_what_solc_returns_decodes),
	    cmocka_unit_test(test_empty_list_and_empty_strings),
	    cmocka_unit_test(test_no_contract_refused),
	    cmocka_unit_test(test_shape_refused),
	    cmocka_unit_test(test_count_bounds),
	    cmocka_unit_test(test_offsets_canonical),
	    cmocka_unit_test(test_string_bounds),
	    cmocka_unit_test(test_string_length_cap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
