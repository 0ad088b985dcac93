// SPDX-License-Identifier: MIT
/* diff: the change list between what the interface has and what is wanted. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "diff.h"

static struct wg_peer *add_peer(struct wg_device *d, uint8_t key, const char *ep, uint16_t port,
				uint16_t ka)
{
	struct wg_peer *p = wg_device_add_peer(d);

	assert_non_null(p);
	memset(p->public_key, key, WG_KEY_LEN);
	p->keepalive = ka;
	if (ep) {
		p->endpoint.sin.sin_family = AF_INET;
		inet_pton(AF_INET, ep, &p->endpoint.sin.sin_addr);
		p->endpoint.sin.sin_port = htons(port);
	}
	return p;
}

static void add_aip(struct wg_peer *p, const char *ip, uint8_t cidr)
{
	struct wg_allowedip a = { .family = AF_INET, .cidr = cidr };

	inet_pton(AF_INET, ip, &a.ip4);
	assert_int_equal(wg_peer_add_allowedip(p, &a), 0);
}

/* cur and want with two peers each, configured identically. */
static void two_peers(struct wg_device *d)
{
	struct wg_peer *p = add_peer(d, 1, "198.51.100.1", 51820, 25);

	add_aip(p, "10.88.0.2", 32);
	add_aip(p, "10.88.0.64", 26);
	p = add_peer(d, 2, "198.51.100.2", 51820, 0);
	add_aip(p, "10.88.0.3", 32);
}

static struct wg_device *diff(const struct wg_device *cur, const struct wg_device *want)
{
	struct wg_device *c = NULL;

	assert_int_equal(diff_device(cur, want, &c), 0);
	assert_non_null(c);
	return c;
}

static void test_identical_is_empty(void **state)
{
	struct wg_device *cur = wg_device_new("wg0"), *want = wg_device_new("wg0"), *c;

	two_peers(cur);
	two_peers(want);
	cur->flags = want->flags = WGDEV_HAS_PRIVATE_KEY | WGDEV_HAS_LISTEN_PORT;
	memset(cur->private_key, 7, WG_KEY_LEN);
	memset(want->private_key, 7, WG_KEY_LEN);
	cur->listen_port = want->listen_port = 51820;
	c = diff(cur, want);
	assert_true(diff_is_empty(c));
	assert_int_equal(c->n_peers, 0);
	wg_device_free(c);
	wg_device_free(cur);
	wg_device_free(want);
}

static void test_new_peer_added(void **state)
{
	struct wg_device *cur = wg_device_new("wg0"), *want = wg_device_new("wg0"), *c;
	struct wg_peer *p;

	two_peers(cur);
	two_peers(want);
	p = add_peer(want, 3, "203.0.113.9", 4000, 15);
	add_aip(p, "10.88.0.4", 32);
	c = diff(cur, want);
	assert_false(diff_is_empty(c));
	assert_int_equal(c->n_peers, 1);
	p = &c->peers[0];
	assert_memory_equal(p->public_key, want->peers[2].public_key, WG_KEY_LEN);
	assert_int_equal(p->flags, WGPEER_REPLACE_ALLOWEDIPS | WGPEER_HAS_KEEPALIVE);
	assert_int_equal(p->keepalive, 15);
	assert_true(wg_endpoint_equal(&p->endpoint, &want->peers[2].endpoint));
	assert_int_equal(p->n_allowedips, 1);
	assert_int_equal(p->allowedips[0].cidr, 32);
	assert_int_equal(p->allowedips[0].ip4.s_addr, inet_addr("10.88.0.4"));
	wg_device_free(c);
	wg_device_free(cur);
	wg_device_free(want);
}

static void test_missing_peer_removed(void **state)
{
	struct wg_device *cur = wg_device_new("wg0"), *want = wg_device_new("wg0"), *c;
	struct wg_peer *p;

	two_peers(cur);
	p = add_peer(want, 2, "198.51.100.2", 51820, 0);
	add_aip(p, "10.88.0.3", 32);
	c = diff(cur, want);
	assert_int_equal(c->n_peers, 1);
	assert_int_equal(c->peers[0].flags, WGPEER_REMOVE_ME);
	assert_memory_equal(c->peers[0].public_key, cur->peers[0].public_key, WG_KEY_LEN);
	wg_device_free(c);
	wg_device_free(cur);
	wg_device_free(want);
}

static void test_allowedips_other_order(void **state)
{
	struct wg_device *cur = wg_device_new("wg0"), *want = wg_device_new("wg0"), *c;
	struct wg_peer *p;

	two_peers(cur);
	p = add_peer(want, 1, "198.51.100.1", 51820, 25);
	add_aip(p, "10.88.0.64", 26);
	add_aip(p, "10.88.0.2", 32);
	p = add_peer(want, 2, "198.51.100.2", 51820, 0);
	add_aip(p, "10.88.0.3", 32);
	c = diff(cur, want);
	assert_true(diff_is_empty(c));
	wg_device_free(c);
	/* Same count but a different set: replaced, and only for that peer. */
	want->peers[0].allowedips[0].cidr = 27;
	c = diff(cur, want);
	assert_int_equal(c->n_peers, 1);
	assert_int_equal(c->peers[0].flags, WGPEER_UPDATE_ONLY | WGPEER_REPLACE_ALLOWEDIPS);
	assert_int_equal(c->peers[0].n_allowedips, 2);
	assert_int_equal(c->peers[0].endpoint.sa.sa_family, AF_UNSPEC);
	wg_device_free(c);
	wg_device_free(cur);
	wg_device_free(want);
}

static void test_no_endpoint_keeps_current(void **state)
{
	struct wg_device *cur = wg_device_new("wg0"), *want = wg_device_new("wg0"), *c;

	two_peers(cur);
	two_peers(want);
	memset(&want->peers[0].endpoint, 0, sizeof(want->peers[0].endpoint));
	c = diff(cur, want);
	assert_true(diff_is_empty(c));
	wg_device_free(c);
	/* A different endpoint is an update of that peer alone. */
	want->peers[1].endpoint.sin.sin_port = htons(51821);
	c = diff(cur, want);
	assert_int_equal(c->n_peers, 1);
	assert_memory_equal(c->peers[0].public_key, cur->peers[1].public_key, WG_KEY_LEN);
	assert_int_equal(c->peers[0].flags, WGPEER_UPDATE_ONLY);
	assert_int_equal(ntohs(c->peers[0].endpoint.sin.sin_port), 51821);
	assert_int_equal(c->peers[0].n_allowedips, 0);
	wg_device_free(c);
	/* A keepalive change carries HAS_KEEPALIVE, and nothing else. */
	want->peers[1].endpoint.sin.sin_port = htons(51820);
	want->peers[1].keepalive = 10;
	c = diff(cur, want);
	assert_int_equal(c->n_peers, 1);
	assert_int_equal(c->peers[0].flags, WGPEER_UPDATE_ONLY | WGPEER_HAS_KEEPALIVE);
	assert_int_equal(c->peers[0].keepalive, 10);
	assert_int_equal(c->peers[0].endpoint.sa.sa_family, AF_UNSPEC);
	wg_device_free(c);
	wg_device_free(cur);
	wg_device_free(want);
}

static void test_private_key_and_port(void **state)
{
	struct wg_device *cur = wg_device_new("wg0"), *want = wg_device_new("wg0"), *c;

	cur->flags = WGDEV_HAS_PRIVATE_KEY | WGDEV_HAS_LISTEN_PORT;
	memset(cur->private_key, 7, WG_KEY_LEN);
	cur->listen_port = 51820;
	/* Not meant: differing values are ignored. */
	memset(want->private_key, 8, WG_KEY_LEN);
	want->listen_port = 1234;
	c = diff(cur, want);
	assert_true(diff_is_empty(c));
	wg_device_free(c);
	/* Meant and equal: nothing. */
	want->flags = WGDEV_HAS_PRIVATE_KEY | WGDEV_HAS_LISTEN_PORT;
	memset(want->private_key, 7, WG_KEY_LEN);
	want->listen_port = 51820;
	c = diff(cur, want);
	assert_true(diff_is_empty(c));
	wg_device_free(c);
	/* Only the key differs. */
	want->private_key[5] = 9;
	c = diff(cur, want);
	assert_false(diff_is_empty(c));
	assert_int_equal(c->flags, WGDEV_HAS_PRIVATE_KEY);
	assert_memory_equal(c->private_key, want->private_key, WG_KEY_LEN);
	wg_device_free(c);
	/* Only the port differs. */
	want->private_key[5] = 7;
	want->listen_port = 51821;
	c = diff(cur, want);
	assert_int_equal(c->flags, WGDEV_HAS_LISTEN_PORT);
	assert_int_equal(c->listen_port, 51821);
	wg_device_free(c);
	/* The interface has no key yet: set it. */
	cur->flags = WGDEV_HAS_LISTEN_PORT;
	memset(cur->private_key, 0, WG_KEY_LEN);
	want->listen_port = 51820;
	c = diff(cur, want);
	assert_int_equal(c->flags, WGDEV_HAS_PRIVATE_KEY);
	wg_device_free(c);
	wg_device_free(cur);
	wg_device_free(want);
}

/* The reply to a SetPeers describes the interface after the change without
 * reading it again: the change applied to the read made for the diff must be
 * what the interface then holds (every peer, endpoint, keepalive, allowed IP). */
static void test_change_applied_in_memory_is_the_wanted_state(void **state)
{
	struct wg_device *cur = wg_device_new("wg0"), *want = wg_device_new("wg0"), *c;
	uint8_t gone[WG_KEY_LEN];
	struct wg_peer *p;

	(void)state;
	two_peers(cur);
	p = add_peer(cur, 3, "198.51.100.3", 51820, 25);
	add_aip(p, "10.88.0.4", 32);
	p = add_peer(want, 2, "203.0.113.2", 40002, 25); /* moved, keepalive on */
	add_aip(p, "10.88.0.3", 32);
	add_aip(p, "10.88.0.64", 26); /* taken from peer 1, which leaves */
	p = add_peer(want, 3, NULL, 0, 25);      /* no endpoint: keeps its own */
	add_aip(p, "10.88.0.4", 32);
	p = add_peer(want, 4, "198.51.100.4", 51820, 25);
	add_aip(p, "10.88.0.5", 32);
	c = diff(cur, want);
	assert_int_equal(diff_apply(cur, c), 0);

	assert_int_equal(cur->n_peers, 3);
	memset(gone, 1, sizeof(gone));
	assert_null(wg_device_find_peer(cur, gone));
	for (size_t i = 0; i < want->n_peers; i++) {
		const struct wg_peer *w = &want->peers[i];
		struct wg_peer *got = wg_device_find_peer(cur, w->public_key);

		assert_non_null(got);
		assert_int_equal(got->keepalive, w->keepalive);
		assert_int_equal(got->n_allowedips, w->n_allowedips);
		for (size_t j = 0; j < w->n_allowedips; j++)
			assert_memory_equal(&got->allowedips[j], &w->allowedips[j], sizeof(w->allowedips[j]));
		if (w->endpoint.sa.sa_family != AF_UNSPEC)
			assert_true(wg_endpoint_equal(&got->endpoint, &w->endpoint));
	}
	assert_int_equal(ntohs(wg_device_find_peer(cur, want->peers[1].public_key)->endpoint.sin.sin_port),
			 51820); /* peer 3 kept the endpoint the interface had */
	wg_device_free(c);
	wg_device_free(cur);
	wg_device_free(want);
}

/* The agent's view of the interface follows WireGuard: an allowed IP given to
 * one peer leaves the peer that had it, and is kept without host bits. A view
 * that kept it on both would differ from every read and be "put back" forever. */
static void test_apply_moves_an_allowed_ip_as_wireguard_does(void **state)
{
	struct wg_device *dev = wg_device_new("wg0"), *change = wg_device_new("wg0");
	struct wg_peer *p;
	uint8_t key[WG_KEY_LEN];

	(void)state;
	two_peers(dev);
	p = add_peer(change, 3, "198.51.100.3", 51820, 0);
	p->flags = WGPEER_REPLACE_ALLOWEDIPS;
	add_aip(p, "10.88.0.2", 32);
	add_aip(p, "10.88.1.77", 24);
	assert_int_equal(diff_apply(dev, change), 0);
	memset(key, 1, sizeof(key));
	p = wg_device_find_peer(dev, key);
	assert_int_equal(p->n_allowedips, 1); /* 10.88.0.2 moved to peer 3 */
	assert_int_equal(p->allowedips[0].ip4.s_addr, inet_addr("10.88.0.64"));
	memset(key, 3, sizeof(key));
	p = wg_device_find_peer(dev, key);
	assert_int_equal(p->n_allowedips, 2);
	assert_int_equal(p->allowedips[0].ip4.s_addr, inet_addr("10.88.0.2"));
	assert_int_equal(p->allowedips[1].ip4.s_addr, inet_addr("10.88.1.0"));
	wg_device_free(dev);
	wg_device_free(change);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_identical_is_empty),
		cmocka_unit_test(test_new_peer_added),
		cmocka_unit_test(test_missing_peer_removed),
		cmocka_unit_test(test_allowedips_other_order),
		cmocka_unit_test(test_no_endpoint_keeps_current),
		cmocka_unit_test(test_private_key_and_port),
		cmocka_unit_test(test_change_applied_in_memory_is_the_wanted_state),
		cmocka_unit_test(test_apply_moves_an_allowed_ip_as_wireguard_does),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
