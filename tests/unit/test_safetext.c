// SPDX-License-Identifier: MIT
/* safetext: what a peer sends reaches logs and /status only as printable ASCII. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "safetext.h"

static void test_escape_sequences_are_defused(void **state)
{
	char out[64];

	safetext_copy(out, sizeof(out), "\x1b]0;owned\x07ok\x1b[2J", SIZE_MAX);
	assert_string_equal(out, "?]0;owned?ok?[2J");
	safetext_copy(out, sizeof(out), "caf\xc3\xa9\r\n\t\x7f", SIZE_MAX);
	assert_string_equal(out, "caf??????");
}

static void test_length_is_bounded(void **state)
{
	char out[8], big[100];

	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	safetext_copy(out, sizeof(out), big, SIZE_MAX);
	assert_string_equal(out, "aaaa...");
	safetext_copy(out, sizeof(out), "abcdef", 3);
	assert_string_equal(out, "abc");
	safetext_copy(out, sizeof(out), "abc", SIZE_MAX);
	assert_string_equal(out, "abc");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape_sequences_are_defused),
		cmocka_unit_test(test_length_is_bounded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
