// SPDX-License-Identifier: MIT
/* peerset: which peers controld hands the agent, against a fake interface. */
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

#include "peerset.h"

#define SELF 0xee
#define NOW 1000000

static struct mesh_params def;
static uint8_t self_key[32];
static struct peerset ps;
static struct peerset_entry in[16];
static char why[16][PEERSET_WHY];
static struct mesh_state st;
static enum peerset_verdict v;
static const char *urls[16] = {
	"https://n0/node.json", "https://n1/node.json", "https://n2/node.json",
	"https://n3/node.json", "https://n4/node.json", "https://n5/node.json",
};

static int setup(void **state)
{
	inet_pton(AF_INET, "10.88.0.0", &def.overlay_net);
	def.overlay_len = 24;
	def.base_offset = 10;
	memset(self_key, SELF, 32);
	memset(in, 0, sizeof(in));
	peerset_init(&ps, &def, self_key, NULL, 3);
	return 0;
}

static int teardown(void **state)
{
	peerset_free(&ps);
	return 0;
}

/* Slot i read with the key of bytes k (0: never read). */
static void slot(size_t i, uint8_t k)
{
	memset(&in[i], 0, sizeof(in[i]));
	in[i].url = urls[i];
	in[i].known = k != 0;
	memset(in[i].info.wg_pubkey, k, 32);
	in[i].info.self_index = -1;
}

static void published(size_t i, const char *ip, uint16_t port)
{
	in[i].info.has_public = true;
	inet_pton(AF_INET, ip, &in[i].info.public_ip);
	in[i].info.public_port = port;
}

/* The fake interface: peers of key bytes k at overlay host h, endpoint ip:port. */
static struct peerset_devpeer dev[8];
static size_t n_dev;

static void dev_peer(uint8_t k, unsigned h, const char *ip, uint16_t port, int64_t hs)
{
	struct peerset_devpeer *d = &dev[n_dev++];
	char a[32];

	memset(d, 0, sizeof(*d));
	memset(d->key, k, 32);
	snprintf(a, sizeof(a), "10.88.0.%u", h);
	inet_pton(AF_INET, a, &d->aip);
	if (ip) {
		d->has_ep = true;
		d->ep.sin_family = AF_INET;
		inet_pton(AF_INET, ip, &d->ep.sin_addr);
		d->ep.sin_port = htons(port);
	}
	d->handshake = hs;
}

static void dev_commit(void)
{
	assert_int_equal(peerset_set_device(&ps, dev, n_dev), 0);
	n_dev = 0;
}

static void decide(size_t n, bool full)
{
	assert_int_equal(peerset_decide(&ps, in, n, full, NOW, &st, &v, why), 0);
}

static const struct mesh_peer *peer(uint8_t k)
{
	for (size_t i = 0; i < st.n_peers; i++)
		if (st.peers[i].key[0] == k)
			return &st.peers[i];
	return NULL;
}

static void assert_overlay(const struct mesh_peer *p, const char *want)
{
	char s[INET_ADDRSTRLEN];

	assert_non_null(p);
	inet_ntop(AF_INET, &p->overlay, s, sizeof(s));
	assert_string_equal(s, want);
}

static void assert_why(size_t i, const char *want)
{
	if (!strstr(why[i], want))
		fail_msg("why[%zu] \"%s\" does not contain \"%s\"", i, why[i], want);
}

/* ==== item: nothing one entry says can stop the others ==== */

static void test_zero_key_dropped_alone(void **state)
{
	slot(0, SELF);
	slot(1, 0xa1);
	slot(2, 0xa2);
	memset(in[1].info.wg_pubkey, 0, 32);
	decide(3, true);
	assert_int_equal(v, PEERSET_APPLY);
	assert_int_equal(st.n_peers, 1);
	assert_overlay(peer(0xa2), "10.88.0.12");
	assert_why(1, "all zero");
	assert_string_equal(why[2], "");
}

static void test_unusable_public_ip_dropped_alone(void **state)
{
	static const char *bad[] = { "10.88.0.20", "127.0.0.1", "0.1.2.3", "224.0.0.1",
				     "239.1.1.1", "255.255.255.255", "169.254.1.1", "240.0.0.1" };

	for (size_t b = 0; b < sizeof(bad) / sizeof(bad[0]); b++) {
		slot(0, 0xa0);
		slot(1, SELF);
		slot(2, 0xa2);
		slot(3, 0xa3);
		published(0, "198.51.100.1", 51820);
		published(2, bad[b], 51820);
		published(3, "203.0.113.9", 51820);
		decide(4, true);
		assert_int_equal(v, PEERSET_APPLY);
		assert_int_equal(st.n_peers, 2);
		assert_non_null(peer(0xa0));
		assert_null(peer(0xa2));
		assert_overlay(peer(0xa3), "10.88.0.13");
		assert_why(2, "public_ip");
		assert_why(2, bad[b]);
	}
	assert_true(peerset_public_ok(&def, (struct in_addr){ htonl(0xc0a80101) })); /* 192.168.1.1 */
}

static void test_own_key_at_another_url_with_self_url(void **state)
{
	peerset_free(&ps);
	peerset_init(&ps, &def, self_key, urls[1], 3);
	slot(0, SELF); /* claims to be this node, but P2PWG_SELF_URL is entry 1 */
	slot(1, SELF);
	slot(2, 0xa2);
	decide(3, true);
	assert_int_equal(v, PEERSET_APPLY);
	assert_int_equal(st.self_index, 1);
	assert_int_equal(st.n_peers, 1);
	assert_why(0, "claims this node's key");
}

/* ==== item: stand-ins by key ==== */

static void test_standin_keeps_unreadable_peer(void **state)
{
	dev_peer(0xa1, 11, "198.51.100.1", 51820, NOW - 5);
	dev_commit();
	slot(0, SELF);
	slot(1, 0); /* unreadable since controld started */
	decide(2, false);
	assert_int_equal(v, PEERSET_APPLY);
	assert_overlay(peer(0xa1), "10.88.0.11");
	assert_false(peer(0xa1)->send_endpoint); /* the interface has it already */
}

static void test_dead_url_inserted_does_not_move_live_peer(void **state)
{
	/* P (0xa2) was at position 2 (.12); a dead URL is inserted before it. */
	dev_peer(0xa1, 11, "198.51.100.1", 51820, NOW - 5);
	dev_peer(0xa2, 12, "198.51.100.2", 51820, NOW - 5);
	dev_commit();
	slot(0, SELF);
	slot(1, 0xa1);
	slot(2, 0);    /* the new dead URL */
	slot(3, 0xa2); /* P, read at its new position */
	decide(4, true);
	assert_int_equal(v, PEERSET_APPLY);
	assert_int_equal(st.n_peers, 2);
	assert_overlay(peer(0xa2), "10.88.0.13");
	assert_int_equal(peer(0xa2)->index, 3);
}

/* ==== item: leaving the mesh takes several full polls ==== */

static void test_leave_only_after_three_full_polls(void **state)
{
	slot(0, 0xa0); /* our URL answering another key (a misrouted gateway) */
	slot(1, 0xa1);
	decide(2, true);
	assert_int_equal(v, PEERSET_HOLD_ABSENT);
	assert_int_equal(ps.absent_polls, 1);
	decide(2, false); /* not a full poll: does not count */
	assert_int_equal(v, PEERSET_HOLD_ABSENT);
	assert_int_equal(ps.absent_polls, 1);
	decide(2, true);
	assert_int_equal(v, PEERSET_HOLD_ABSENT);
	assert_int_equal(ps.absent_polls, 2);
	slot(0, SELF); /* found again: the count starts over */
	decide(2, true);
	assert_int_equal(v, PEERSET_APPLY);
	assert_int_equal(ps.absent_polls, 0);
	slot(0, 0xa0);
	decide(2, true);
	decide(2, true);
	assert_int_equal(v, PEERSET_HOLD_ABSENT);
	decide(2, true);
	assert_int_equal(v, PEERSET_LEAVE);
	assert_false(st.found_self);
	assert_int_equal(st.n_peers, 0);
}

static void test_hold_while_entries_unread(void **state)
{
	slot(0, 0);
	slot(1, 0xa1);
	for (int i = 0; i < 5; i++) {
		decide(2, true);
		assert_int_equal(v, PEERSET_HOLD_UNREAD);
	}
	assert_int_equal(ps.absent_polls, 0);
}

static void test_self_url_answering_another_key_does_not_leave_at_once(void **state)
{
	peerset_free(&ps);
	peerset_init(&ps, &def, self_key, urls[0], 2);
	slot(0, 0xa0); /* P2PWG_SELF_URL answers another key */
	slot(1, 0xa1);
	slot(2, 0);    /* another entry unread: with SELF_URL that does not matter */
	decide(3, true);
	assert_int_equal(v, PEERSET_HOLD_ABSENT);
	assert_why(0, "P2PWG_SELF_URL but answers key");
	decide(3, true);
	assert_int_equal(v, PEERSET_LEAVE);
	slot(0, SELF);
	decide(3, true);
	assert_int_equal(v, PEERSET_APPLY);
	assert_int_equal(st.self_index, 0);
	assert_string_equal(why[0], "");
}

/* ==== item: endpoints only with news (roaming stays) ==== */

static void test_new_peer_gets_its_endpoint(void **state)
{
	slot(0, SELF);
	slot(1, 0xa1);
	published(1, "198.51.100.1", 51820);
	decide(2, true);
	assert_true(peer(0xa1)->send_endpoint);
	assert_true(peerset_has_news(&st));
	assert_int_equal(peerset_applied(&ps, &st), 0);
	decide(2, true); /* the interface has it now */
	assert_false(peer(0xa1)->send_endpoint);
	assert_false(peerset_has_news(&st));
}

static void test_roamed_endpoint_is_left_alone(void **state)
{
	slot(0, SELF);
	slot(1, 0xa1);
	published(1, "198.51.100.1", 51820);
	decide(2, true);
	assert_int_equal(peerset_applied(&ps, &st), 0);
	/* WireGuard learnt another endpoint from the peer's packets. */
	dev_peer(0xa1, 11, "198.51.100.77", 40000, NOW - 10);
	dev_commit();
	decide(2, true);
	assert_true(peer(0xa1)->has_endpoint);
	assert_false(peer(0xa1)->send_endpoint);
	/* The peer publishes a new endpoint: that is news. */
	published(1, "198.51.100.5", 51820);
	decide(2, true);
	assert_true(peer(0xa1)->send_endpoint);
}

static void test_endpoint_roamed_to_the_relay_socket_is_replaced(void **state)
{
	slot(0, SELF);
	slot(1, 0xa1);
	published(1, "198.51.100.1", 51820);
	decide(2, true);
	assert_int_equal(peerset_applied(&ps, &st), 0);
	/* The peer was relayed, the relay left it (its published endpoint went
	 * back, as sent above), and packets the relay still carried made
	 * WireGuard roam to this node's relay socket, with a fresh handshake.
	 * That socket closes with the stream: the published endpoint goes back. */
	dev_peer(0xa1, 11, "127.0.0.1", 46655, NOW - 10);
	dev_commit();
	decide(2, true);
	assert_true(peer(0xa1)->send_endpoint);
	assert_int_equal(peer(0xa1)->endpoint.sin_port, htons(51820));
}

static void test_restarted_controld_keeps_roamed_endpoint(void **state)
{
	/* A fresh peerset (controld restarted) sees the interface with a roamed
	 * endpoint and a live handshake. */
	dev_peer(0xa1, 11, "198.51.100.77", 40000, NOW - 10);
	dev_commit();
	slot(0, SELF);
	slot(1, 0xa1);
	published(1, "198.51.100.1", 51820);
	decide(2, true);
	assert_false(peer(0xa1)->send_endpoint);
	/* but a silent tunnel gets the published endpoint back */
	dev_peer(0xa1, 11, "198.51.100.77", 40000, NOW - PEERSET_STALE_S - 1);
	dev_commit();
	decide(2, true);
	assert_true(peer(0xa1)->send_endpoint);
}

static void test_restarted_agent_with_empty_interface_gets_endpoints(void **state)
{
	slot(0, SELF);
	slot(1, 0xa1);
	published(1, "198.51.100.1", 51820);
	decide(2, true);
	assert_int_equal(peerset_applied(&ps, &st), 0);
	dev_commit(); /* the agent came back with no peers (userspace backend) */
	decide(2, true);
	assert_true(peer(0xa1)->send_endpoint);
}

/* ==== a path that answered a check (pathcheck_choose) ==== */

static void answered_path(size_t i, const char *ip, uint16_t port)
{
	in[i].has_path = true;
	in[i].path.sin_family = AF_INET;
	inet_pton(AF_INET, ip, &in[i].path.sin_addr);
	in[i].path.sin_port = htons(port);
}

static void assert_endpoint(const struct mesh_peer *p, const char *ip, uint16_t port)
{
	char s[INET_ADDRSTRLEN];

	assert_non_null(p);
	assert_true(p->has_endpoint);
	inet_ntop(AF_INET, &p->endpoint.sin_addr, s, sizeof(s));
	assert_string_equal(s, ip);
	assert_int_equal(ntohs(p->endpoint.sin_port), port);
}

/* Two nodes behind one NAT: the LAN path that answered replaces the public
 * endpoint once, and stays while it answers. */
static void test_answered_lan_path_moves_endpoint_once(void **state)
{
	slot(0, SELF);
	slot(1, 0xa1);
	published(1, "198.51.100.1", 51820);
	decide(2, true);
	assert_int_equal(peerset_applied(&ps, &st), 0);
	dev_peer(0xa1, 11, "198.51.100.1", 51820, 0);
	dev_commit();
	answered_path(1, "192.168.1.3", 51820);
	decide(2, true);
	assert_endpoint(peer(0xa1), "192.168.1.3", 51820);
	assert_true(peer(0xa1)->send_endpoint);
	assert_int_equal(peer(0xa1)->keepalive, MESH_KEEPALIVE);
	assert_int_equal(peerset_applied(&ps, &st), 0);
	decide(2, true);
	assert_false(peer(0xa1)->send_endpoint);
	/* The path stops answering: back to the published endpoint. */
	in[1].has_path = false;
	decide(2, true);
	assert_endpoint(peer(0xa1), "198.51.100.1", 51820);
	assert_true(peer(0xa1)->send_endpoint);
}

/* Issue 8's rule still holds with checks: an answered direct path equal to
 * the published endpoint does not overwrite what WireGuard roamed to. */
static void test_answered_direct_path_keeps_roamed_endpoint(void **state)
{
	slot(0, SELF);
	slot(1, 0xa1);
	published(1, "198.51.100.1", 51820);
	decide(2, true);
	assert_int_equal(peerset_applied(&ps, &st), 0);
	dev_peer(0xa1, 11, "198.51.100.77", 40000, NOW - 10);
	dev_commit();
	answered_path(1, "198.51.100.1", 51820);
	decide(2, true);
	assert_false(peer(0xa1)->send_endpoint);
}

/* A peer with no answered path gets its published endpoint, as before. */
static void test_no_answered_path_keeps_published_endpoint(void **state)
{
	slot(0, SELF);
	slot(1, 0xa1);
	published(1, "198.51.100.1", 51820);
	decide(2, true);
	assert_endpoint(peer(0xa1), "198.51.100.1", 51820);
	assert_true(peer(0xa1)->send_endpoint);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_zero_key_dropped_alone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unusable_public_ip_dropped_alone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_own_key_at_another_url_with_self_url, setup, teardown),
		cmocka_unit_test_setup_teardown(test_standin_keeps_unreadable_peer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dead_url_inserted_does_not_move_live_peer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_leave_only_after_three_full_polls, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hold_while_entries_unread, setup, teardown),
		cmocka_unit_test_setup_teardown(test_self_url_answering_another_key_does_not_leave_at_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_new_peer_gets_its_endpoint, setup, teardown),
		cmocka_unit_test_setup_teardown(test_roamed_endpoint_is_left_alone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_endpoint_roamed_to_the_relay_socket_is_replaced, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restarted_controld_keeps_roamed_endpoint, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restarted_agent_with_empty_interface_gets_endpoints, setup, teardown),
		cmocka_unit_test_setup_teardown(test_answered_lan_path_moves_endpoint_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_answered_direct_path_keeps_roamed_endpoint, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_answered_path_keeps_published_endpoint, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
