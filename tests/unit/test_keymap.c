// SPDX-License-Identifier: MIT
/* keymap: every key put is found with its first value, through growth, clearing
 * and keys that share all but their last byte; absent keys are not found. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "keymap.h"

#define N 1000

static uint8_t keys[N][32];

static void fill(int same_prefix)
{
	for (int i = 0; i < N; i++) {
		if (same_prefix) {
			memset(keys[i], 0xab, 32);
			keys[i][30] = (uint8_t)(i >> 8);
			keys[i][31] = (uint8_t)i;
		} else {
			arc4random_buf(keys[i], 32);
		}
	}
}

static void put_all_and_find(int same_prefix)
{
	struct keymap m = { 0 };
	uint8_t absent[32];

	fill(same_prefix);
	for (int i = 0; i < N; i++)
		assert_int_equal(keymap_put(&m, keys[i], &keys[i]), 0);
	assert_int_equal(m.n, N);
	assert_true(m.cap >= 2 * N);
	for (int i = 0; i < N; i++)
		assert_ptr_equal(keymap_get(&m, keys[i]), &keys[i]);
	/* A copy of a key finds it too: keys are compared, not pointers. */
	memcpy(absent, keys[7], 32);
	assert_ptr_equal(keymap_get(&m, absent), &keys[7]);
	absent[31] ^= 0x80;
	if (!same_prefix)
		assert_null(keymap_get(&m, absent));
	memset(absent, 0x11, 32);
	assert_null(keymap_get(&m, absent));
	keymap_free(&m);
}

static void test_random_keys(void **state)
{
	put_all_and_find(0);
}

static void test_keys_sharing_a_prefix(void **state)
{
	put_all_and_find(1);
}

static void test_first_value_stays(void **state)
{
	struct keymap m = { 0 };
	uint8_t k[32] = { 1 }, again[32] = { 1 };
	int a, b;

	assert_int_equal(keymap_put(&m, k, &a), 0);
	assert_int_equal(keymap_put(&m, again, &b), 0);
	assert_int_equal(m.n, 1);
	assert_ptr_equal(keymap_get(&m, k), &a);
	keymap_free(&m);
}

static void test_clear_and_empty(void **state)
{
	struct keymap m = { 0 };
	uint8_t k[32] = { 2 };
	int a;

	assert_null(keymap_get(&m, k)); /* never filled: no table */
	assert_int_equal(keymap_put(&m, k, &a), 0);
	keymap_clear(&m);
	assert_int_equal(m.n, 0);
	assert_null(keymap_get(&m, k));
	assert_int_equal(keymap_put(&m, k, &a), 0);
	assert_ptr_equal(keymap_get(&m, k), &a);
	keymap_free(&m);
	assert_null(keymap_get(&m, k));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_random_keys),
		cmocka_unit_test(test_keys_sharing_a_prefix),
		cmocka_unit_test(test_first_value_stays),
		cmocka_unit_test(test_clear_and_empty),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
