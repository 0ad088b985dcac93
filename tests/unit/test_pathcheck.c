// SPDX-License-Identifier: MIT
/* pathcheck: candidates, pacing and the choice of a peer's path. */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "pathcheck.h"

static struct pathcheck pc;
static struct nodeinfo info[64];
static uint8_t keys[64][32];
static struct pathcheck_in in[64];

static struct sockaddr_in ep(const char *ip, uint16_t port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};

	inet_pton(AF_INET, ip, &a.sin_addr);
	return a;
}

static void assert_ep(const struct sockaddr_in *a, const char *ip, uint16_t port)
{
	char s[INET_ADDRSTRLEN];

	assert_string_equal(inet_ntop(AF_INET, &a->sin_addr, s, sizeof(s)), ip);
	assert_int_equal(ntohs(a->sin_port), port);
}

/* Peer i: key bytes 0xa0+i, public ip:port (NULL: none), local endpoints. */
static void peer(size_t i, const char *pub, uint16_t port, const char *l1, const char *l2)
{
	memset(&info[i], 0, sizeof(info[i]));
	memset(keys[i], 0xa0 + (int)i, 32);
	memcpy(info[i].wg_pubkey, keys[i], 32);
	if (pub) {
		info[i].has_public = true;
		inet_pton(AF_INET, pub, &info[i].public_ip);
		info[i].public_port = port;
	}
	if (l1)
		info[i].local[info[i].n_local++] = ep(l1, 51820);
	if (l2)
		info[i].local[info[i].n_local++] = ep(l2, 51820);
	in[i] = (struct pathcheck_in){.key = keys[i], .info = &info[i]};
}

static int setup(void **state)
{
	pathcheck_init(&pc, 10);
	return 0;
}

static int teardown(void **state)
{
	pathcheck_free(&pc);
	return 0;
}

static void next_is(uint64_t now, size_t i, const char *ip, uint16_t port)
{
	uint8_t k[32];
	struct sockaddr_in e;
	uint64_t wait;

	assert_int_equal(pathcheck_next(&pc, now, k, &e, &wait), 0);
	assert_memory_equal(k, keys[i], 32);
	assert_ep(&e, ip, port);
}

static uint64_t nothing_now(uint64_t now)
{
	uint8_t k[32];
	struct sockaddr_in e;
	uint64_t wait = 0;

	assert_int_equal(pathcheck_next(&pc, now, k, &e, &wait), -EAGAIN);
	return wait;
}

/* Local endpoints first in the peer's order, then its public one; this
 * node's own addresses (another home's LAN often looks the same) never. */
static void test_candidates_lan_first_own_skipped(void **state)
{
	struct sockaddr_in self = ep("192.168.1.2", 51820);

	pathcheck_set_self(&pc, &self, 1);
	peer(0, "198.51.100.1", 40001, "192.168.1.2", "192.168.1.3");
	assert_int_equal(pathcheck_update(&pc, in, 1, 0), 0);
	next_is(0, 0, "192.168.1.3", 51820);
	next_is(0, 0, "198.51.100.1", 40001);
	assert_int_equal(nothing_now(0), UINT64_MAX);
}

/* A node without NAT lists its public address among its own: that is its
 * direct path, checked once. */
static void test_public_address_listed_locally_is_direct(void **state)
{
	struct sockaddr_in e;

	peer(0, "198.51.100.1", 51820, "198.51.100.1", NULL);
	assert_int_equal(pathcheck_update(&pc, in, 1, 0), 0);
	next_is(0, 0, "198.51.100.1", 51820);
	assert_int_equal(nothing_now(0), UINT64_MAX);
	e = ep("198.51.100.1", 51820);
	assert_true(pathcheck_result(&pc, keys[0], &e, true, 3, 10));
	assert_int_equal(pathcheck_choose(&pc, keys[0], &e), PATHCHECK_DIRECT);
}

/* lan beats direct, only answered candidates count, and a lost path goes
 * only after several unanswered checks in a row. */
static void test_choice_lan_over_direct_only_answered(void **state)
{
	struct sockaddr_in lan = ep("192.168.1.3", 51820), pub = ep("198.51.100.1", 40001), e;

	peer(0, "198.51.100.1", 40001, "192.168.1.3", NULL);
	assert_int_equal(pathcheck_update(&pc, in, 1, 0), 0);
	assert_int_equal(pathcheck_choose(&pc, keys[0], &e), PATHCHECK_NONE);
	next_is(0, 0, "192.168.1.3", 51820);
	next_is(0, 0, "198.51.100.1", 40001);
	assert_true(pathcheck_result(&pc, keys[0], &pub, true, 5, 100));
	assert_int_equal(pathcheck_choose(&pc, keys[0], &e), PATHCHECK_DIRECT);
	assert_ep(&e, "198.51.100.1", 40001);
	assert_false(pathcheck_result(&pc, keys[0], &lan, false, 0, 1000));
	assert_int_equal(pathcheck_choose(&pc, keys[0], &e), PATHCHECK_DIRECT);
	next_is(2000, 0, "192.168.1.3", 51820); /* retried a second later */
	assert_true(pathcheck_result(&pc, keys[0], &lan, true, 1, 2001));
	assert_int_equal(pathcheck_choose(&pc, keys[0], &e), PATHCHECK_LAN);
	assert_ep(&e, "192.168.1.3", 51820);
	/* Two lost checks keep the LAN path; the third in a row undoes it. */
	for (int i = 0; i < PATHCHECK_LOST_AFTER; i++) {
		uint64_t t = 2001 + PATHCHECK_RECHECK_MS + (uint64_t)i * 2000;

		next_is(t, 0, "192.168.1.3", 51820);
		assert_int_equal(pathcheck_result(&pc, keys[0], &lan, false, 0, t + 1000),
				 i == PATHCHECK_LOST_AFTER - 1);
		assert_int_equal(pathcheck_choose(&pc, keys[0], &e),
				 i == PATHCHECK_LOST_AFTER - 1 ? PATHCHECK_DIRECT : PATHCHECK_LAN);
	}
}

/* 60 peers with two local candidates each: never more than the budget
 * (10 a second here) goes out, and every peer gets its turn. */
static void test_pacing_budget_round_robin(void **state)
{
	uint8_t k[32], seen[60] = {0};
	struct sockaddr_in e;
	uint64_t wait, now;
	unsigned sent = 0;

	for (size_t i = 0; i < 60; i++) {
		char a[32], b[32];

		snprintf(a, sizeof(a), "10.1.%zu.2", i);
		snprintf(b, sizeof(b), "10.2.%zu.2", i);
		peer(i, "198.51.100.1", (uint16_t)(40000 + i), a, b);
	}
	assert_int_equal(pathcheck_update(&pc, in, 60, 0), 0);
	for (now = 0; now <= 6000; now += 50) {
		while (pathcheck_next(&pc, now, k, &e, &wait) == 0) {
			sent++;
			seen[k[0] - 0xa0] = 1;
			/* Nothing answers. */
			pathcheck_result(&pc, k, &e, false, 0, now);
		}
	}
	/* A burst of 10 at start, then 10 a second: 70 in 6 s. */
	assert_in_range(sent, 69, 71);
	for (size_t i = 0; i < 60; i++)
		if (!seen[i])
			fail_msg("peer %zu never checked", i);
	assert_int_equal(pc.m_sent, sent);
}

/* Unanswered candidates are retried quickly at first, then ever more
 * slowly, up to PATHCHECK_RETRY_MAX_MS. */
static void test_unanswered_backoff(void **state)
{
	struct sockaddr_in pub = ep("198.51.100.1", 40001);
	uint64_t now = 0, gap[10];

	pathcheck_init(&pc, 1000);
	peer(0, "198.51.100.1", 40001, NULL, NULL);
	assert_int_equal(pathcheck_update(&pc, in, 1, 0), 0);
	for (int i = 0; i < 10; i++) {
		next_is(now, 0, "198.51.100.1", 40001);
		pathcheck_result(&pc, keys[0], &pub, false, 0, now);
		gap[i] = nothing_now(now);
		now += gap[i];
	}
	assert_int_equal(gap[0], PATHCHECK_RETRY_MIN_MS);
	assert_int_equal(gap[2], PATHCHECK_RETRY_MIN_MS);
	assert_int_equal(gap[3], 2 * PATHCHECK_RETRY_MIN_MS);
	assert_int_equal(gap[4], 4 * PATHCHECK_RETRY_MIN_MS);
	assert_int_equal(gap[9], PATHCHECK_RETRY_MAX_MS);
}

/* On a steady mesh an answered path is checked once a minute, and a LAN
 * address that never answered once every few minutes while the public one
 * does; a failed /test (pathcheck_suspect) checks the peer's candidates at
 * once, and when the last path is gone the others are tried at once too. */
static void test_steady_paths_are_checked_rarely_and_at_once_when_suspect(void **state)
{
	struct sockaddr_in lan = ep("192.168.1.3", 51820), pub = ep("198.51.100.1", 40001), e;
	uint64_t now = 0;

	pathcheck_init(&pc, 1000);
	peer(0, "198.51.100.1", 40001, "192.168.1.3", NULL);
	assert_int_equal(pathcheck_update(&pc, in, 1, 0), 0);
	next_is(0, 0, "192.168.1.3", 51820);
	next_is(0, 0, "198.51.100.1", 40001);
	pathcheck_result(&pc, keys[0], &pub, true, 5, 0);
	pathcheck_result(&pc, keys[0], &lan, false, 0, 0);
	/* Half an hour in which the public path answers and the LAN address
	 * never does: its pause grows past the 20 s of a peer with no path,
	 * up to PATHCHECK_RETRY_SPARE_MS. */
	{
		unsigned n_pub = 0, n_lan = 0;
		uint64_t wait, last_lan = 0, lan_gap = 0;
		uint8_t k[32];

		while (now < 30 * 60 * 1000) {
			if (pathcheck_next(&pc, now, k, &e, &wait)) {
				now += wait;
				continue;
			}
			if (e.sin_addr.s_addr == pub.sin_addr.s_addr) {
				n_pub++;
				pathcheck_result(&pc, keys[0], &pub, true, 5, now);
			} else {
				n_lan++;
				lan_gap = now - last_lan;
				last_lan = now;
				pathcheck_result(&pc, keys[0], &lan, false, 0, now);
			}
		}
		assert_in_range(n_pub, 29, 31); /* once a minute */
		assert_int_equal(lan_gap, PATHCHECK_RETRY_SPARE_MS);
		assert_in_range(n_lan, 5, 20);
	}
	assert_int_equal(pathcheck_choose(&pc, keys[0], &e), PATHCHECK_DIRECT);
	/* A failed /test: both are checked at once... */
	assert_true(pathcheck_suspect(&pc, keys[0], now));
	next_is(now, 0, "192.168.1.3", 51820);
	next_is(now, 0, "198.51.100.1", 40001);
	assert_false(pathcheck_suspect(&pc, keys[0], now)); /* in flight */
	pathcheck_result(&pc, keys[0], &lan, false, 0, now);
	/* ...and the public path is lost after PATHCHECK_LOST_AFTER unanswered
	 * ones, 1 s apart. */
	for (int i = 0; i < PATHCHECK_LOST_AFTER; i++) {
		if (i)
			next_is(now, 0, "198.51.100.1", 40001);
		pathcheck_result(&pc, keys[0], &pub, false, 0, now);
		if (i < PATHCHECK_LOST_AFTER - 1) {
			assert_int_equal(nothing_now(now), PATHCHECK_RETRY_MIN_MS);
			now += PATHCHECK_RETRY_MIN_MS;
		}
	}
	assert_int_equal(pathcheck_choose(&pc, keys[0], &e), PATHCHECK_NONE);
	/* Nothing answers any more: the LAN address is tried now, not in minutes. */
	next_is(now, 0, "192.168.1.3", 51820);
	pathcheck_result(&pc, keys[0], &lan, false, 0, now);
	/* A peer with no path (relayed): suspecting it checks every candidate now. */
	now += 1;
	assert_true(nothing_now(now) > 0);
	assert_true(pathcheck_suspect(&pc, keys[0], now));
	next_is(now, 0, "192.168.1.3", 51820);
	next_is(now, 0, "198.51.100.1", 40001);
	assert_false(pathcheck_suspect(&pc, keys[0], now)); /* both in flight */
}

/* A new node.json keeps what was learnt about candidates that stay; a
 * candidate that goes is forgotten, and a peer that leaves has no path. */
static void test_update_keeps_state(void **state)
{
	struct sockaddr_in lan = ep("192.168.1.3", 51820), e;

	peer(0, "198.51.100.1", 40001, "192.168.1.3", NULL);
	peer(1, "198.51.100.2", 40002, NULL, NULL);
	assert_int_equal(pathcheck_update(&pc, in, 2, 0), 0);
	next_is(0, 0, "192.168.1.3", 51820);
	pathcheck_result(&pc, keys[0], &lan, true, 1, 10);
	peer(0, "198.51.100.9", 40001, "10.9.9.9", "192.168.1.3");
	assert_int_equal(pathcheck_update(&pc, in, 2, 20), 0);
	assert_int_equal(pathcheck_choose(&pc, keys[0], &e), PATHCHECK_LAN);
	assert_ep(&e, "192.168.1.3", 51820);
	assert_int_equal(pathcheck_update(&pc, &in[1], 1, 30), 0);
	assert_int_equal(pathcheck_choose(&pc, keys[0], &e), PATHCHECK_NONE);
	assert_string_equal(pathcheck_kind_name(PATHCHECK_LAN), "lan");
	assert_string_equal(pathcheck_kind_name(PATHCHECK_NONE), "none");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_candidates_lan_first_own_skipped, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_public_address_listed_locally_is_direct, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_choice_lan_over_direct_only_answered, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_pacing_budget_round_robin, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unanswered_backoff, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_update_keeps_state, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_steady_paths_are_checked_rarely_and_at_once_when_suspect, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
