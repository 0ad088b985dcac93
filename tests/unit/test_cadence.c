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

/* A node's checks of an interval leave at one tick, up to CADENCE_GROUP_MAX
 * peers; a larger mesh's in as few even groups as fit. */
static void test_checks_leave_in_groups(void **state)
{
	(void)state;
	assert_int_equal(cadence_group(0), 0);
	assert_int_equal(cadence_group(1), 1);
	assert_int_equal(cadence_group(19), 19);
	assert_int_equal(cadence_group(CADENCE_GROUP_MAX), CADENCE_GROUP_MAX);
	assert_int_equal(cadence_group(CADENCE_GROUP_MAX + 1), 33);
	assert_int_equal(cadence_group(245), 62);
	for (size_t n = 1; n <= 245; n++) {
		size_t per = cadence_group(n), ticks = (n + per - 1) / per;

		/* every peer once per interval, no group past the most, no
		 * more ticks than needed */
		assert_true(per >= 1 && per <= CADENCE_GROUP_MAX);
		assert_int_equal(ticks, (n + CADENCE_GROUP_MAX - 1) / CADENCE_GROUP_MAX);
	}
}

static void test_new_peers_are_checked_within_a_moment_not_an_interval(void **state)
{
	(void)state;
	/* 19 peers configured together (a 20-node mesh, /test every 10 s): the
	 * last one's first check leaves within half a second, not 10 s later. */
	assert_int_equal(cadence_prompt(0, 19, 10000, 12345), 0);
	for (uint32_t rnd = 0; rnd < 40; rnd++) {
		uint64_t last = cadence_prompt(18, 19, 10000, rnd);

		assert_true(last >= 18 * CADENCE_PROMPT_GAP_MS - CADENCE_PROMPT_GAP_MS / 2 &&
			    last <= 18 * CADENCE_PROMPT_GAP_MS);
		assert_true(last < 500);
	}
	/* Still spread, never all at the same instant. */
	assert_true(cadence_prompt(1, 19, 10000, 0) > 0);
	/* 245 peers with a 2 s interval: no faster than the spread itself. */
	assert_int_equal(cadence_prompt(244, 245, 2000, 0), 244 * 8);
}

static void test_failed_checks_retried_sooner_then_left_to_the_spread(void **state)
{
	(void)state;
	assert_int_equal(cadence_retry(1, 10000, 0), 1000);
	assert_int_equal(cadence_retry(2, 10000, 0), 2000);
	assert_int_equal(cadence_retry(3, 10000, 0), 4000);
	assert_int_equal(cadence_retry(4, 10000, 0), 8000);
	assert_int_equal(cadence_retry(5, 10000, 0), 0);
	assert_int_equal(cadence_retry(1000, 10000, 0), 0);
	assert_true(cadence_retry(1, 10000, 100) >= 900 && cadence_retry(1, 10000, 100) <= 1000);
	/* An interval no longer than the first retry: the spread alone. */
	assert_int_equal(cadence_retry(1, 1000, 0), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_jitter_shortens_by_at_most_ten_percent),
	    cmocka_unit_test(test_two_nodes_started_together_drift_apart),
	    cmocka_unit_test(test_checks_spread_over_the_interval),
	    cmocka_unit_test(test_checks_leave_in_groups),
	    cmocka_unit_test(test_new_peers_are_checked_within_a_moment_not_an_interval),
	    cmocka_unit_test(test_failed_checks_retried_sooner_then_left_to_the_spread),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
