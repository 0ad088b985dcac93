// SPDX-License-Identifier: MIT
/* mesh: who this node is, which address each position gets, which peers to configure. */
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

#include "mesh.h"

#define SELF 0xee
#define UNKNOWN 0 /* an entry whose node.json was never fetched */

static struct mesh_params def;
static uint8_t self_key[32];
static struct mesh_input in[MESH_MAX_PEERS + 2];
static struct mesh_state st, st2;

static int setup(void **state)
{
	inet_pton(AF_INET, "10.88.0.0", &def.overlay_net);
	def.overlay_len = 24;
	def.base_offset = 10;
	memset(self_key, SELF, 32);
	memset(in, 0, sizeof(in));
	return 0;
}

/* Fill entries from a list of key bytes (UNKNOWN for never fetched); returns n. */
static size_t list(const uint8_t *keys, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		memset(&in[i], 0, sizeof(in[i]));
		in[i].url = "https://x.example/node.json";
		in[i].known = keys[i] != UNKNOWN;
		memset(in[i].info.wg_pubkey, keys[i], 32);
		in[i].info.wg_listen_port = 51820;
		in[i].info.self_index = -1;
	}
	return n;
}

#define LIST(...)                                                                                  \
	list((const uint8_t[]){ __VA_ARGS__ }, sizeof((const uint8_t[]){ __VA_ARGS__ }))

static void public(size_t i, const char *ip, uint16_t port)
{
	in[i].info.has_public = true;
	inet_pton(AF_INET, ip, &in[i].info.public_ip);
	in[i].info.public_port = port;
}

static void assert_ip(struct in_addr a, const char *want)
{
	char s[INET_ADDRSTRLEN];

	assert_string_equal(inet_ntop(AF_INET, &a, s, sizeof(s)), want);
}

/* Peer number k of the state is the node with key byte key at address ip. */
static void assert_peer(size_t k, uint8_t key, size_t index, const char *ip)
{
	assert_true(k < st.n_peers);
	assert_int_equal(st.peers[k].key[0], key);
	assert_int_equal(st.peers[k].key[31], key);
	assert_int_equal(st.peers[k].index, index);
	assert_ip(st.peers[k].overlay, ip);
}

static void test_self_first(void **state)
{
	mesh_compute(&def, self_key, in, LIST(SELF, 0xb1, 0xc1), &st);
	assert_true(st.found_self);
	assert_int_equal(st.self_index, 0);
	assert_ip(st.self_addr, "10.88.0.10");
	assert_int_equal(st.n_peers, 2);
	assert_peer(0, 0xb1, 1, "10.88.0.11");
	assert_peer(1, 0xc1, 2, "10.88.0.12");
	assert_int_equal(st.n_unknown + st.n_duplicate + st.n_out_of_range, 0);
}

static void test_self_fourth(void **state)
{
	mesh_compute(&def, self_key, in, LIST(0xb1, 0xc1, 0xd1, SELF, 0xe1), &st);
	assert_true(st.found_self);
	assert_int_equal(st.self_index, 3);
	assert_ip(st.self_addr, "10.88.0.13");
	assert_int_equal(st.n_peers, 4);
	assert_peer(0, 0xb1, 0, "10.88.0.10");
	assert_peer(1, 0xc1, 1, "10.88.0.11");
	assert_peer(2, 0xd1, 2, "10.88.0.12");
	assert_peer(3, 0xe1, 4, "10.88.0.14");
}

static void test_reorder(void **state)
{
	mesh_compute(&def, self_key, in, LIST(0xb1, SELF, 0xc1), &st);
	assert_ip(st.self_addr, "10.88.0.11");
	assert_peer(0, 0xb1, 0, "10.88.0.10");
	assert_peer(1, 0xc1, 2, "10.88.0.12");
	mesh_compute(&def, self_key, in, LIST(0xc1, 0xb1, SELF), &st);
	assert_ip(st.self_addr, "10.88.0.12");
	assert_peer(0, 0xc1, 0, "10.88.0.10");
	assert_peer(1, 0xb1, 1, "10.88.0.11");
}

static void test_self_absent(void **state)
{
	mesh_compute(&def, self_key, in, LIST(0xb1, 0xc1, UNKNOWN), &st);
	assert_false(st.found_self);
	assert_int_equal(st.n_peers, 0);
	assert_int_equal(st.n_unknown, 1);
	/* Listed, but its own node.json not fetched yet: not found either. */
	mesh_compute(&def, self_key, in, LIST(UNKNOWN, 0xb1), &st);
	assert_false(st.found_self);
	assert_int_equal(st.n_peers, 0);
	mesh_compute(&def, self_key, in, 0, &st);
	assert_false(st.found_self);
	assert_int_equal(st.n_peers, 0);
}

static void test_unknown_keeps_position(void **state)
{
	mesh_compute(&def, self_key, in, LIST(SELF, UNKNOWN, 0xc1, UNKNOWN, 0xe1), &st);
	assert_true(st.found_self);
	assert_int_equal(st.n_peers, 2);
	assert_peer(0, 0xc1, 2, "10.88.0.12");
	assert_peer(1, 0xe1, 4, "10.88.0.14");
	assert_int_equal(st.n_unknown, 2);
}

static void test_duplicate_key(void **state)
{
	/* Two URLs for node b1: its first position counts. */
	mesh_compute(&def, self_key, in, LIST(SELF, 0xb1, 0xc1, 0xb1, 0xd1), &st);
	assert_int_equal(st.n_peers, 3);
	assert_peer(0, 0xb1, 1, "10.88.0.11");
	assert_peer(1, 0xc1, 2, "10.88.0.12");
	assert_peer(2, 0xd1, 4, "10.88.0.14");
	assert_int_equal(st.n_duplicate, 1);
	/* This node listed twice: its first position too. */
	mesh_compute(&def, self_key, in, LIST(0xb1, SELF, SELF), &st);
	assert_int_equal(st.self_index, 1);
	assert_ip(st.self_addr, "10.88.0.11");
	assert_int_equal(st.n_peers, 1);
	assert_int_equal(st.n_duplicate, 1);
}

static size_t full_list(size_t n, size_t self_at)
{
	for (size_t i = 0; i < n; i++) {
		memset(&in[i], 0, sizeof(in[i]));
		in[i].known = true;
		in[i].info.wg_pubkey[0] = (uint8_t)(i >> 8);
		in[i].info.wg_pubkey[1] = (uint8_t)i;
		in[i].info.wg_pubkey[2] = 1;
	}
	memcpy(in[self_at].info.wg_pubkey, self_key, 32);
	return n;
}

static void test_full_prefix(void **state)
{
	struct in_addr a;

	assert_int_equal(mesh_address(&def, 0, &a), 0);
	assert_ip(a, "10.88.0.10");
	assert_int_equal(mesh_address(&def, 244, &a), 0);
	assert_ip(a, "10.88.0.254");
	assert_int_equal(mesh_address(&def, 245, &a), -ERANGE); /* the broadcast address */
	assert_int_equal(mesh_address(&def, 246, &a), -ERANGE);
	assert_int_equal(mesh_address(&def, (size_t)-1, &a), -ERANGE);

	mesh_compute(&def, self_key, in, full_list(245, 244), &st);
	assert_true(st.found_self);
	assert_ip(st.self_addr, "10.88.0.254");
	assert_int_equal(st.n_peers, 244);
	assert_ip(st.peers[243].overlay, "10.88.0.253");
	assert_int_equal(st.n_out_of_range, 0);

	/* A longer input: position 245 has no address and is left out. */
	mesh_compute(&def, self_key, in, full_list(246, 0), &st);
	assert_true(st.found_self);
	assert_int_equal(st.n_peers, 244);
	assert_int_equal(st.peers[243].index, 244);
	assert_int_equal(st.n_out_of_range, 1);
	/* ... and when this node is there, it has no address and no peers. */
	mesh_compute(&def, self_key, in, full_list(246, 245), &st);
	assert_false(st.found_self);
	assert_int_equal(st.n_peers, 0);
	assert_int_equal(st.n_out_of_range, 1);
}

static void test_endpoints(void **state)
{
	const struct mesh_peer *p;

	LIST(SELF, 0xb1, 0xc1);
	public(0, "192.0.2.1", 51820);
	public(1, "198.51.100.7", 40123);
	mesh_compute(&def, self_key, in, 3, &st);
	p = &st.peers[0];
	assert_true(p->has_endpoint);
	assert_int_equal(p->endpoint.sin_family, AF_INET);
	assert_ip(p->endpoint.sin_addr, "198.51.100.7");
	assert_int_equal(ntohs(p->endpoint.sin_port), 40123);
	assert_int_equal(p->keepalive, MESH_KEEPALIVE);
	assert_int_equal(p->keepalive, 25);
	p = &st.peers[1];
	assert_false(p->has_endpoint);
	assert_int_equal(p->keepalive, 0);
}

static void test_state_equal(void **state)
{
	LIST(SELF, 0xb1, 0xc1, UNKNOWN);
	public(1, "198.51.100.7", 40123);
	mesh_compute(&def, self_key, in, 4, &st);
	mesh_compute(&def, self_key, in, 4, &st2);
	assert_true(mesh_state_equal(&st, &st2));
	/* An unknown entry at the end changes nothing to configure. */
	mesh_compute(&def, self_key, in, 3, &st2);
	assert_true(mesh_state_equal(&st, &st2));
	in[1].info.public_port = 40124;
	mesh_compute(&def, self_key, in, 4, &st2);
	assert_false(mesh_state_equal(&st, &st2));
	public(1, "198.51.100.8", 40123);
	mesh_compute(&def, self_key, in, 4, &st2);
	assert_false(mesh_state_equal(&st, &st2));
	in[1].info.has_public = false;
	mesh_compute(&def, self_key, in, 4, &st2);
	assert_false(mesh_state_equal(&st, &st2));
	/* Same peers, but this node moved. */
	LIST(UNKNOWN, SELF, 0xb1, 0xc1);
	public(2, "198.51.100.7", 40123);
	mesh_compute(&def, self_key, in, 4, &st2);
	assert_false(mesh_state_equal(&st, &st2));
}

static void test_custom_params(void **state)
{
	struct mesh_params p = { .overlay_len = 16, .base_offset = 100 };
	struct in_addr a;

	inet_pton(AF_INET, "10.99.0.0", &p.overlay_net);
	assert_int_equal(mesh_address(&p, 0, &a), 0);
	assert_ip(a, "10.99.0.100");
	assert_int_equal(mesh_address(&p, 200, &a), 0);
	assert_ip(a, "10.99.1.44");
	assert_int_equal(mesh_address(&p, 65434, &a), 0);
	assert_ip(a, "10.99.255.254");
	assert_int_equal(mesh_address(&p, 65435, &a), -ERANGE);
	/* Host bits in the configured network are ignored. */
	inet_pton(AF_INET, "10.99.3.4", &p.overlay_net);
	assert_int_equal(mesh_address(&p, 1, &a), 0);
	assert_ip(a, "10.99.0.101");

	mesh_compute(&p, self_key, in, LIST(0xb1, SELF, 0xc1), &st);
	assert_ip(st.self_addr, "10.99.0.101");
	assert_peer(0, 0xb1, 0, "10.99.0.100");
	assert_peer(1, 0xc1, 2, "10.99.0.102");
	/* An offset past the prefix leaves no position at all. */
	p.overlay_len = 24;
	p.base_offset = 255;
	assert_int_equal(mesh_address(&p, 0, &a), -ERANGE);
	mesh_compute(&p, self_key, in, 3, &st);
	assert_false(st.found_self);
	assert_int_equal(st.n_out_of_range, 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_self_first, setup),
		cmocka_unit_test_setup(test_self_fourth, setup),
		cmocka_unit_test_setup(test_reorder, setup),
		cmocka_unit_test_setup(test_self_absent, setup),
		cmocka_unit_test_setup(test_unknown_keeps_position, setup),
		cmocka_unit_test_setup(test_duplicate_key, setup),
		cmocka_unit_test_setup(test_full_prefix, setup),
		cmocka_unit_test_setup(test_endpoints, setup),
		cmocka_unit_test_setup(test_state_equal, setup),
		cmocka_unit_test_setup(test_custom_params, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
