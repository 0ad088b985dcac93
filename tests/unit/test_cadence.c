// SPDX-License-Identifier: MIT
/* Timers of nodes started together drift apart; /test checks are spread. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cadence.h"

static void test_jitter_shortens_by_at_most_ten_percent(void **state)
{
	static const uint32_t rnd[] = {0, 1, 999, 1000, 2000, 12345, 0x7fffffff, 0xffffffff};

	(void)state;
	for (size_t i = 0; i < sizeof(rnd) / sizeof(rnd[0]); i++) {
		uint64_t t = cadence_jitter(10000, rnd[i]);

		assert_true(t >= 9000 && t <= 10000);
	}
	assert_int_equal(cadence_jitter(10000, 0), 10000);
	assert_int_equal(cadence_jitter(10000, 1000), 9000);
	assert_int_equal(cadence_jitter(0, 12345), 0);
}

static void test_two_nodes_started_together_drift_apart(void **state)
{
	(void)state;
	/* Different random draws give different periods: after a few cycles
	 * the two nodes no longer fire together. */
	assert_int_not_equal(cadence_jitter(10000, 100), cadence_jitter(10000, 900));
}

static void test_checks_spread_over_the_interval(void **state)
{
	(void)state;
	assert_int_equal(cadence_step(10000, 29), 344);
	assert_int_equal(cadence_step(10000, 245), 40);
	assert_int_equal(cadence_step(10000, 0), 10000);
	assert_int_equal(cadence_step(100, 245), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_jitter_shortens_by_at_most_ten_percent),
	    cmocka_unit_test(test_two_nodes_started_together_drift_apart),
	    cmocka_unit_test(test_checks_spread_over_the_interval),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
