// SPDX-License-Identifier: MIT
/* The descriptor budget: it covers every cap, and RLIMIT_NOFILE is raised to it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <sys/resource.h>

#include "fdbudget.h"
#include "httpd.h"
#include "loop.h"

static void set_nofile(rlim_t soft, rlim_t hard)
{
	struct rlimit r = {.rlim_cur = soft, .rlim_max = hard};

	assert_int_equal(setrlimit(RLIMIT_NOFILE, &r), 0);
}

static rlim_t soft_now(void)
{
	struct rlimit r;

	getrlimit(RLIMIT_NOFILE, &r);
	return r.rlim_cur;
}

static void test_budget_covers_245_peers_and_the_server(void **state)
{
	unsigned need = fdbudget_need();

	/* node.json and /test for 245 peers, each connection twice (curl + h2o's dup). */
	assert_true(LOOP_MAX_CONNECTIONS >= 2 * 245 + 1);
	assert_true(need >= 2 * LOOP_MAX_CONNECTIONS + HTTPD_MAX_CONNECTIONS +
				HTTPD_MAX_STATUS_CONNECTIONS);
	/* More than the usual default soft limit: it must be raised at start. */
	assert_true(need > 1024);
}

static void test_soft_limit_raised_to_the_budget(void **state)
{
	struct rlimit r;
	rlim_t soft;

	getrlimit(RLIMIT_NOFILE, &r);
	if (r.rlim_max != RLIM_INFINITY && r.rlim_max < 4096)
		skip();
	set_nofile(1024, r.rlim_max);
	assert_int_equal(fdbudget_apply(2000, &soft), 0);
	assert_int_equal(soft, 2000);
	assert_int_equal(soft_now(), 2000);
}

static void test_soft_limit_never_lowered(void **state)
{
	struct rlimit r;
	rlim_t soft;

	getrlimit(RLIMIT_NOFILE, &r);
	if (r.rlim_max != RLIM_INFINITY && r.rlim_max < 4096)
		skip();
	set_nofile(4096, r.rlim_max);
	assert_int_equal(fdbudget_apply(2000, &soft), 0);
	assert_int_equal(soft, 4096);
	assert_int_equal(soft_now(), 4096);
}

/* Last: a lowered hard limit cannot be raised again by this process. */
static void test_hard_limit_below_budget_is_reported(void **state)
{
	rlim_t soft;

	set_nofile(256, 1000);
	assert_int_equal(fdbudget_apply(2000, &soft), -ERANGE);
	assert_int_equal(soft, 1000);
	assert_int_equal(soft_now(), 1000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_budget_covers_245_peers_and_the_server),
	    cmocka_unit_test(test_soft_limit_raised_to_the_budget),
	    cmocka_unit_test(test_soft_limit_never_lowered),
	    cmocka_unit_test(test_hard_limit_below_budget_is_reported),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
